/* sha256.h - SHA-256 (FIPS 180-4). */
#ifndef GPUPV_SHA256_H
#define GPUPV_SHA256_H

#include "util.h"

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t used;
};

void	sha256_init(struct sha256 *s);
void	sha256_update(struct sha256 *s, const void *data, size_t n);
void	sha256_final(struct sha256 *s, uint8_t out[32]);
void	sha256_hex(const uint8_t d[32], char out[65]);

#endif
