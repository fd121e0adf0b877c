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
void	json_i64(struct json *j, int64_t v);

/*
 * A small reader for the JSON we write ourselves (the manifest): the whole
 * text into a tree; numbers are integers.  Depth is capped; bad text gives
 * NULL with errno EINVAL.
 */
enum jv_type { JV_NULL, JV_BOOL, JV_INT, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type t;
	bool b;
	int64_t i;
	char *s;
	size_t n;			/* items of an array or object */
	struct jv *v;
	char **k;			/* keys of an object */
};

struct jv *jv_parse(const char *text, size_t len);
void	jv_free(struct jv *v);
void	jv_free_inner(struct jv *v);
const struct jv *jv_get(const struct jv *obj, const char *key);
/* Member of obj as a string / integer, or def when absent or mistyped. */
const char *jv_str(const struct jv *obj, const char *key);
int64_t	jv_int(const struct jv *obj, const char *key, int64_t def);

#endif
