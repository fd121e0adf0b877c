/*
 * json.h - a small streaming JSON writer for --json reports: objects,
 * arrays, escaped strings, 64-bit integers, null.
 */
#ifndef GPUPV_JSON_H
#define GPUPV_JSON_H

#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>

#define JSON_MAX_DEPTH 32

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool after_key;
};

void	json_init(struct json *j, FILE *f);
void	json_obj_begin(struct json *j);
void	json_obj_end(struct json *j);
void	json_arr_begin(struct json *j);
void	json_arr_end(struct json *j);
void	json_key(struct json *j, const char *key);
void	json_str(struct json *j, const char *s);	/* NULL writes null */
void	json_u64(struct json *j, uint64_t v);
void	json_bool(struct json *j, bool v);
void	json_null(struct json *j);
void	json_end(struct json *j);	/* final newline */

#endif
