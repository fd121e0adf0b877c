/*
 * json.c - streaming JSON writer (RFC 8259), pretty-printed with two
 * spaces so reports are readable and diff well.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

void
json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
	j->after_key = false;
}

static void
indent(struct json *j)
{
	int i;

	fputc('\n', j->f);
	for (i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Separator and indentation before a value or key. */
static void
pre(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	indent(j);
}

static void
open_(struct json *j, char c)
{
	pre(j);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void
close_(struct json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty)
		indent(j);
	fputc(c, j->f);
}

void json_obj_begin(struct json *j) { open_(j, '{'); }
void json_obj_end(struct json *j) { close_(j, '}'); }
void json_arr_begin(struct json *j) { open_(j, '['); }
void json_arr_end(struct json *j) { close_(j, ']'); }

/* A JSON string: escaped, and valid UTF-8 whatever the input held (a
 * byte that is not UTF-8 becomes U+FFFD). */
static void
write_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int len;

	fputc('"', f);
	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len);

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", (unsigned)c);
			else if (c == 0xfffd && len == 1)
				fputs("\\ufffd", f);
			else
				fwrite(p, 1, (size_t)len, f);
		}
	}
	fputc('"', f);
}

void
json_key(struct json *j, const char *key)
{
	pre(j);
	write_str(j->f, key);
	fputs(": ", j->f);
	j->after_key = true;
}

void
json_str(struct json *j, const char *s)
{
	pre(j);
	if (s)
		write_str(j->f, s);
	else
		fputs("null", j->f);
}

void
json_u64(struct json *j, uint64_t v)
{
	pre(j);
	fprintf(j->f, "%" PRIu64, v);
}

void
json_bool(struct json *j, bool v)
{
	pre(j);
	fputs(v ? "true" : "false", j->f);
}

void
json_null(struct json *j)
{
	pre(j);
	fputs("null", j->f);
}

void
json_end(struct json *j)
{
	fputc('\n', j->f);
}

void
json_i64(struct json *j, int64_t v)
{
	pre(j);
	fprintf(j->f, "%" PRId64, v);
}

/* ---- reader ------------------------------------------------------- */

struct jp {
	const char *p, *end;
	int depth;
};

static void
jp_ws(struct jp *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static void
put_utf8(char **o, uint32_t c)
{
	char *q = *o;

	if (c < 0x80) {
		*q++ = (char)c;
	} else if (c < 0x800) {
		*q++ = (char)(0xc0 | c >> 6);
		*q++ = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		*q++ = (char)(0xe0 | c >> 12);
		*q++ = (char)(0x80 | (c >> 6 & 0x3f));
		*q++ = (char)(0x80 | (c & 0x3f));
	} else {
		*q++ = (char)(0xf0 | c >> 18);
		*q++ = (char)(0x80 | (c >> 12 & 0x3f));
		*q++ = (char)(0x80 | (c >> 6 & 0x3f));
		*q++ = (char)(0x80 | (c & 0x3f));
	}
	*o = q;
}

static int
jp_u4(struct jp *s, uint32_t *c)
{
	int i, h;

	if (s->end - s->p < 4)
		return -1;
	*c = 0;
	for (i = 0; i < 4; i++) {
		if ((h = hex_digit((unsigned char)s->p[i])) < 0)
			return -1;
		*c = *c << 4 | (uint32_t)h;
	}
	s->p += 4;
	return 0;
}

static char *
jp_string(struct jp *s)
{
	/* Escapes only shrink, so the raw length bounds the result. */
	const char *start = ++s->p;
	char *out, *o;

	while (s->p < s->end && *s->p != '"')
		s->p += *s->p == '\\' ? 2 : 1;
	if (s->p >= s->end)
		return NULL;
	out = o = malloc((size_t)(s->p - start) * 2 + 1);
	if (!out)
		return NULL;
	s->p = start;
	while (*s->p != '"') {
		char c = *s->p++;
		uint32_t u, lo;

		if ((unsigned char)c < 0x20)
			goto bad;
		if (c != '\\') {
			*o++ = c;
			continue;
		}
		switch (*s->p++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (jp_u4(s, &u) < 0)
				goto bad;
			if (u >= 0xd800 && u < 0xdc00) {
				if (s->end - s->p < 6 || s->p[0] != '\\' ||
				    s->p[1] != 'u')
					goto bad;
				s->p += 2;
				if (jp_u4(s, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					goto bad;
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			} else if (u >= 0xdc00 && u < 0xe000) {
				goto bad;
			}
			if (u == 0)
				goto bad;
			put_utf8(&o, u);
			break;
		default:
			goto bad;
		}
	}
	s->p++;
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static int jp_value(struct jp *s, struct jv *v);

static int
jp_push(struct jv *v, struct jv *item, char *key)
{
	struct jv *nv = realloc(v->v, (v->n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	v->v = nv;
	if (v->t == JV_OBJ) {
		char **nk = realloc(v->k, (v->n + 1) * sizeof(*nk));

		if (!nk)
			return -1;
		v->k = nk;
		v->k[v->n] = key;
	}
	v->v[v->n++] = *item;
	return 0;
}

static int
jp_container(struct jp *s, struct jv *v, bool obj)
{
	char close = obj ? '}' : ']';

	v->t = obj ? JV_OBJ : JV_ARR;
	if (++s->depth > JSON_MAX_DEPTH)
		return -1;
	s->p++;
	jp_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		struct jv item;
		char *key = NULL;

		memset(&item, 0, sizeof(item));
		if (obj) {
			jp_ws(s);
			if (s->p >= s->end || *s->p != '"' ||
			    !(key = jp_string(s)))
				return -1;
			jp_ws(s);
			if (s->p >= s->end || *s->p++ != ':') {
				free(key);
				return -1;
			}
		}
		if (jp_value(s, &item) < 0 || jp_push(v, &item, key) < 0) {
			jv_free_inner(&item);
			free(key);
			return -1;
		}
		jp_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p++ != close)
			return -1;
		s->depth--;
		return 0;
	}
}

static int
jp_value(struct jp *s, struct jv *v)
{
	jp_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		return jp_container(s, v, true);
	case '[':
		return jp_container(s, v, false);
	case '"':
		v->t = JV_STR;
		v->s = jp_string(s);
		return v->s ? 0 : -1;
	case 't':
	case 'f':
	case 'n': {
		static const char *const lit[] = { "true", "false", "null" };
		size_t i;

		for (i = 0; i < 3; i++) {
			size_t l = strlen(lit[i]);

			if ((size_t)(s->end - s->p) >= l &&
			    memcmp(s->p, lit[i], l) == 0) {
				s->p += l;
				v->t = i == 2 ? JV_NULL : JV_BOOL;
				v->b = i == 0;
				return 0;
			}
		}
		return -1;
	}
	default: {
		bool neg = false;
		uint64_t x = 0;

		v->t = JV_INT;
		if (*s->p == '-') {
			neg = true;
			s->p++;
		}
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return -1;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
			uint64_t d = (uint64_t)(*s->p++ - '0');

			/* Past INT64_MAX is no number we wrote. */
			if (x > ((uint64_t)INT64_MAX - d) / 10)
				return -1;
			x = x * 10 + d;
		}
		if (s->p < s->end && (*s->p == '.' || *s->p == 'e' ||
		    *s->p == 'E'))
			return -1;	/* we never write fractions */
		v->i = neg ? -(int64_t)x : (int64_t)x;
		return 0;
	}
	}
}

void
jv_free_inner(struct jv *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		jv_free_inner(&v->v[i]);
		if (v->k)
			free(v->k[i]);
	}
	free(v->v);
	free(v->k);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

void
jv_free(struct jv *v)
{
	if (!v)
		return;
	jv_free_inner(v);
	free(v);
}

struct jv *
jv_parse(const char *text, size_t len)
{
	struct jp s = { text, text + len, 0 };
	struct jv *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (jp_value(&s, v) < 0)
		goto bad;
	jp_ws(&s);
	if (s.p != s.end)
		goto bad;
	return v;
bad:
	jv_free(v);
	errno = EINVAL;
	return NULL;
}

const struct jv *
jv_get(const struct jv *obj, const char *key)
{
	size_t i;

	if (!obj || obj->t != JV_OBJ)
		return NULL;
	for (i = 0; i < obj->n; i++)
		if (strcmp(obj->k[i], key) == 0)
			return &obj->v[i];
	return NULL;
}

const char *
jv_str(const struct jv *obj, const char *key)
{
	const struct jv *v = jv_get(obj, key);

	return v && v->t == JV_STR ? v->s : NULL;
}

int64_t
jv_int(const struct jv *obj, const char *key, int64_t def)
{
	const struct jv *v = jv_get(obj, key);

	return v && v->t == JV_INT ? v->i : def;
}
