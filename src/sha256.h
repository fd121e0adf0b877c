/* sha256.h - SHA-256 (FIPS 180-4). */
#ifndef GPUPV_SHA256_H
#define GPUPV_SHA256_H

#include <sys/stat.h>

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

/* A whole file to hash. */
struct sha256_job {
	const char *path;		/* in */
	uint64_t size;			/* in: the size it must have */
	uint8_t digest[32];		/* out */
	struct stat st;			/* out: fstat after reading */
	int err;			/* out: errno; EIO when the size differs */
};

/*
 * Hash every job's file, eight at a time where the CPU has AVX2.  Meant
 * for a thread of its own: it touches nothing but the jobs and never
 * records an error message.  Returns early, leaving later jobs with
 * ECANCELED, once *stop is set.
 */
void	sha256_files(struct sha256_job *jobs, size_t n, volatile int *stop);

/* Internal: the round constants, and the eight-lane compression. */
extern const uint32_t sha256_k[64];
typedef void (*sha256_x8_fn)(struct sha256 *ctx[8], const uint8_t *p[8],
    size_t nblocks);
sha256_x8_fn sha256_x8_get(void);

#endif
