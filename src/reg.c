/*
 * reg.c - regedit's .reg files: "Windows Registry Editor Version 5.00"
 * (usually UTF-16LE with BOM and CRLF) and REGEDIT4 (ANSI), read into a
 * list of operations on the SYSTEM and SOFTWARE hives.  Nothing here
 * touches a hive; stage.c applies the list.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "reg.h"

/* Cap on a .reg file, and so on a line with its continuations and on a
 * value (the registry's own limit for a value is far below). */
#define REG_MAX_FILE	(64u * 1024 * 1024)

const char *
reg_hive_name(enum reg_hive h)
{
	return h == REG_HIVE_SYSTEM ? "SYSTEM" : "SOFTWARE";
}

uint8_t *
reg_utf16(const char *s, size_t *len)
{
	uint8_t *u = utf8_to_utf16le(s, strlen(s), len);

	put_le16(u + *len, 0);
	*len += 2;
	return u;
}

static bool
is_string_type(uint32_t t)
{
	return t == REG_SZ_ || t == REG_EXPAND_SZ_ || t == REG_MULTI_SZ_;
}

/* ASCII case-insensitive compare of UTF-16LE units with an ASCII word. */
static bool
units_match(const uint8_t *u, const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint16_t c = get_le16(u + 2 * i);

		if (c >= 0x80 || tolower(c) != tolower((unsigned char)w[i]))
			return false;
	}
	return true;
}

size_t
reg_rewrite_driverstore(struct hive_val *v)
{
	static const char word[] = "DriverStore";
	const size_t wl = sizeof(word) - 1;
	size_t n, i, count = 0, o = 0;
	uint8_t *out;

	if (!is_string_type(v->type) || v->len < 2 * wl)
		return 0;
	n = v->len / 2;
	out = xmalloc(v->len + 8 * (n / wl + 1) + 2);
	for (i = 0; i < n; i++) {
		uint16_t before = i ? get_le16(v->data + 2 * (i - 1)) : 0;
		uint16_t after = i + wl < n ? get_le16(v->data + 2 * (i + wl)) :
		    0;

		/* A whole path component only: "...\DriverStore\...". */
		if (i + wl <= n && (before == '\\' || before == 0) &&
		    (after == '\\' || after == 0) &&
		    units_match(v->data + 2 * i, word, wl)) {
			static const char host[] = "Host";

			for (size_t k = 0; k < 4; k++, o += 2)
				put_le16(out + o, (uint16_t)host[k]);
			memcpy(out + o, v->data + 2 * i, 2 * wl);
			o += 2 * wl;
			i += wl - 1;
			count++;
			continue;
		}
		memcpy(out + o, v->data + 2 * i, 2);
		o += 2;
	}
	if (v->len % 2)
		out[o++] = v->data[v->len - 1];
	if (!count) {
		free(out);
		return 0;
	}
	free(v->data);
	v->data = out;
	v->len = o;
	return count;
}

struct parser {
	const char *path;
	unsigned line;
	bool regedit4;
	bool rewrite;
	struct reg_file *out;
	/* The current key, or none (before the first, or after [-KEY]). */
	bool have_key, key_deleted;
	enum reg_hive hive;
	bool ccs;
	char *key;
};

static int
perr(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_input(EINVAL, "%s:%u: %s", p->path, p->line, msg);
	return -1;
}

static struct reg_op *
add_op(struct parser *p, enum reg_kind k)
{
	struct reg_file *f = p->out;
	struct reg_op *op;

	f->v = xrealloc(f->v, (f->n + 1) * sizeof(*op));
	op = &f->v[f->n++];
	memset(op, 0, sizeof(*op));
	op->line = p->line;
	op->kind = k;
	op->hive = p->hive;
	op->ccs = p->ccs;
	op->key = xstrdup(p->key);
	return op;
}

/* "a\\b\\\\c\\" -> "a\\b\\c": empty components dropped. */
static char *
norm_key(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && (o == 0 || out[o - 1] == '\\'))
			continue;
		out[o++] = s[i];
	}
	while (o && out[o - 1] == '\\')
		o--;
	out[o] = '\0';
	return out;
}

/* The part of path after its first component (which is n long), or
 * NULL when the first component is not name. */
static const char *
after_comp(const char *path, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(path, name, n) != 0 ||
	    (path[n] != '\0' && path[n] != '\\'))
		return NULL;
	return path[n] ? path + n + 1 : path + n;
}

static int
parse_key(struct parser *p, const char *s, size_t n)
{
	bool del = false;
	const char *rest, *r2;
	char *k;

	if (n && *s == '-') {
		del = true;
		s++;
		n--;
	}
	k = norm_key(s, n);
	free(p->key);
	p->key = NULL;
	p->have_key = false;
	rest = after_comp(k, "HKEY_LOCAL_MACHINE");
	if (!rest)
		rest = after_comp(k, "HKLM");
	if (!rest) {
		char *root = xstrdup(k), *bs = strchr(root, '\\');

		if (bs)
			*bs = '\0';
		perr(p, "%s is not a root gpupv-prep writes (only "
		    "HKEY_LOCAL_MACHINE\\SYSTEM and HKEY_LOCAL_MACHINE\\SOFTWARE "
		    "are in the guest's image)", *root ? root : "an empty key");
		free(root);
		free(k);
		return -1;
	}
	if ((r2 = after_comp(rest, "SYSTEM")) != NULL) {
		p->hive = REG_HIVE_SYSTEM;
	} else if ((r2 = after_comp(rest, "SOFTWARE")) != NULL) {
		p->hive = REG_HIVE_SOFTWARE;
	} else {
		char *root = xstrdup(rest), *bs = strchr(root, '\\');

		if (bs)
			*bs = '\0';
		perr(p, "HKEY_LOCAL_MACHINE\\%s is not a hive gpupv-prep "
		    "writes (only SYSTEM and SOFTWARE)", *root ? root :
		    "(the root itself)");
		free(root);
		free(k);
		return -1;
	}
	p->ccs = false;
	if (p->hive == REG_HIVE_SYSTEM) {
		const char *r3 = after_comp(r2, "CurrentControlSet");

		if (r3) {
			p->ccs = true;
			r2 = r3;
		}
	}
	if (del && !*r2 && !p->ccs) {
		perr(p, "deleting a whole hive is not allowed");
		free(k);
		return -1;
	}
	p->key = xstrdup(r2);
	free(k);
	p->have_key = true;
	p->key_deleted = del;
	add_op(p, del ? RK_DELKEY : RK_KEY);
	return 0;
}

/* A quoted string at *s (after the opening quote) up to the closing one;
 * \\ and \" are escapes.  Returns the unescaped text or NULL. */
static char *
quoted(struct parser *p, const char **s, const char *end)
{
	char *out = xmalloc((size_t)(end - *s) + 1);
	const char *c = *s;
	size_t o = 0;

	while (c < end && *c != '"') {
		if (*c == '\\' && c + 1 < end && (c[1] == '\\' || c[1] == '"')) {
			out[o++] = c[1];
			c += 2;
			continue;
		}
		if (*c == '\0') {
			free(out);
			perr(p, "NUL character in a string");
			return NULL;
		}
		out[o++] = *c++;
	}
	if (c >= end) {
		free(out);
		perr(p, "string without its closing quote");
		return NULL;
	}
	out[o] = '\0';
	*s = c + 1;
	return out;
}

static const char *
skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* Nothing but blanks or a ; comment may follow data. */
static int
expect_end(struct parser *p, const char *s, const char *end)
{
	s = skip_ws(s, end);
	if (s < end && *s != ';')
		return perr(p, "unexpected text after the value: \"%.20s\"", s);
	return 0;
}

static int
parse_hex_bytes(struct parser *p, const char *s, const char *end,
    struct hive_val *v)
{
	uint8_t *b = xmalloc((size_t)(end - s) / 2 + 1);
	size_t n = 0;

	s = skip_ws(s, end);
	while (s < end && *s != ';') {
		int hi, lo;

		hi = hex_digit((unsigned char)*s);
		lo = s + 1 < end ? hex_digit((unsigned char)s[1]) : -1;
		if (hi < 0) {
			free(b);
			return perr(p, "bad hex byte \"%.8s\"", s);
		}
		if (lo < 0) {
			/* A single digit is a byte too (regedit reads it). */
			b[n++] = (uint8_t)hi;
			s++;
		} else {
			b[n++] = (uint8_t)(hi << 4 | lo);
			s += 2;
		}
		s = skip_ws(s, end);
		if (s < end && *s == ',') {
			s = skip_ws(s + 1, end);
			if (s >= end || *s == ';')
				break;		/* a trailing comma */
			continue;
		}
		if (s < end && *s != ';') {
			free(b);
			return perr(p, "expected ',' between hex bytes, found "
			    "\"%.8s\"", s);
		}
	}
	v->data = b;
	v->len = n;
	return 0;
}

/* REGEDIT4 keeps string types as ANSI bytes; the registry holds UTF-16. */
static void
widen_ansi(struct hive_val *v)
{
	char *u;
	size_t n;
	enum text_enc enc;

	if (!is_string_type(v->type))
		return;
	u = text_to_utf8(v->data, v->len, &n, &enc);
	if (enc == TEXT_UTF16LE) {
		free(u);
		return;
	}
	free(v->data);
	v->data = utf8_to_utf16le(u, n, &v->len);
	free(u);
}

static int
parse_value(struct parser *p, const char *s, const char *end)
{
	struct hive_val v = { 0 };
	struct reg_op *op;
	char *name;

	if (*s == '@') {
		name = xstrdup("");
		s++;
	} else {
		s++;
		if (!(name = quoted(p, &s, end)))
			return -1;
	}
	s = skip_ws(s, end);
	if (s >= end || *s != '=') {
		free(name);
		return perr(p, "expected '=' after the value name");
	}
	s = skip_ws(s + 1, end);
	if (!p->have_key) {
		free(name);
		return perr(p, "a value before any [KEY] line");
	}
	if (p->key_deleted) {
		free(name);
		return perr(p, "a value under a key being deleted ([-KEY])");
	}
	if (s < end && *s == '-') {
		if (expect_end(p, s + 1, end) < 0) {
			free(name);
			return -1;
		}
		op = add_op(p, RK_DELVAL);
		op->name = name;
		return 0;
	}
	if (s < end && *s == '"') {
		char *str;

		s++;
		if (!(str = quoted(p, &s, end)) || expect_end(p, s, end) < 0) {
			free(str);
			free(name);
			return -1;
		}
		v.type = REG_SZ_;
		v.data = reg_utf16(str, &v.len);
		free(str);
	} else if ((size_t)(end - s) >= 6 && strncasecmp(s, "dword:", 6) == 0) {
		uint32_t d = 0;
		int digits = 0, h;

		s += 6;
		while (s < end && (h = hex_digit((unsigned char)*s)) >= 0) {
			if (++digits > 8)
				break;
			d = d << 4 | (uint32_t)h;
			s++;
		}
		if (digits == 0 || digits > 8 || expect_end(p, s, end) < 0) {
			free(name);
			/* expect_end's own complaint, when it made one, wins. */
			return perr(p, "dword: needs 1 to 8 hex digits");
		}
		v.type = REG_DWORD_;
		v.data = xmalloc(4);
		v.len = 4;
		put_le32(v.data, d);
	} else if ((size_t)(end - s) >= 3 && strncasecmp(s, "hex", 3) == 0) {
		uint32_t t = REG_BINARY_;

		s += 3;
		if (s < end && *s == '(') {
			int digits = 0, h;

			t = 0;
			s++;
			while (s < end && (h = hex_digit((unsigned char)*s)) >= 0) {
				if (++digits > 8)
					break;
				t = t << 4 | (uint32_t)h;
				s++;
			}
			if (digits == 0 || digits > 8 || s >= end || *s != ')') {
				free(name);
				return perr(p, "hex(N): N must be 1 to 8 hex "
				    "digits");
			}
			s++;
		}
		if (s >= end || *s != ':') {
			free(name);
			return perr(p, "expected ':' after hex");
		}
		v.type = t;
		if (parse_hex_bytes(p, s + 1, end, &v) < 0) {
			free(name);
			return -1;
		}
		if (p->regedit4)
			widen_ansi(&v);
	} else {
		free(name);
		return perr(p, "unknown data \"%.20s\" (expected \"string\", "
		    "dword:, hex:, hex(N): or -)", s);
	}
	if (p->rewrite)
		reg_rewrite_driverstore(&v);
	op = add_op(p, RK_SET);
	op->name = name;
	op->val = v;
	return 0;
}

static int
parse_line(struct parser *p, const char *s, size_t n)
{
	const char *end = s + n;

	s = skip_ws(s, end);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (s == end || *s == ';')
		return 0;
	if (*s == '[') {
		const char *close = end;

		while (close > s && close[-1] != ']')
			close--;
		if (close == s || close - 1 == s)
			return perr(p, "key line without its closing ']'");
		if (expect_end(p, close, end) < 0)
			return -1;
		return parse_key(p, s + 1, (size_t)(close - 1 - (s + 1)));
	}
	if (*s == '"' || *s == '@')
		return parse_value(p, s, end);
	return perr(p, "neither a [KEY] nor a \"name\"=value line: \"%.30s\"",
	    s);
}

int
reg_parse(const char *path, const void *text, size_t len, bool rewrite,
    struct reg_file *out)
{
	struct parser p = { .path = path, .rewrite = rewrite, .out = out };
	enum text_enc enc;
	size_t n, e;
	char *t = text_to_utf8(text, len, &n, &enc);
	struct text_lines tl;
	const char *line;
	bool header = false;
	int ret = -1, rc;

	memset(out, 0, sizeof(*out));
	out->path = xstrdup(path);
	text_lines_init(&tl, t, n);
	while ((rc = text_lines_next(&tl, &line, &e)) != 0) {
		bool more;

		p.line = tl.line;
		if (rc < 0) {
			perr(&p, "NUL character (a UTF-16 file without its "
			    "byte order mark?)");
			goto out;
		}
		if (!header) {
			const char *h = line;
			size_t hl = e;

			while (hl && (*h == ' ' || *h == '\t')) {
				h++;
				hl--;
			}
			if (hl == 0 && text_lines_more(&tl))
				continue;
			if (hl == 36 && strncmp(h, "Windows Registry Editor "
			    "Version 5.00", 36) == 0) {
				header = true;
				continue;
			}
			if (hl == 8 && strncmp(h, "REGEDIT4", 8) == 0) {
				header = true;
				p.regedit4 = true;
				continue;
			}
			perr(&p, "not a .reg file (the first line must be "
			    "\"Windows Registry Editor Version 5.00\" or "
			    "\"REGEDIT4\")");
			goto out;
		}
		/* Continuations: a trailing backslash joins the next line. */
		while (e && (line[e - 1] == ' ' || line[e - 1] == '\t'))
			e--;
		more = e && line[e - 1] == '\\' && line[0] != ';' &&
		    line[0] != '[';
		{
			const char *c = line;
			size_t ce = more ? e - 1 : e;

			/* Continued lines lose their indentation. */
			if (tl.len)
				while (ce && (*c == ' ' || *c == '\t')) {
					c++;
					ce--;
				}
			text_lines_add(&tl, c, ce);
		}
		if (more && text_lines_more(&tl))
			continue;
		{
			size_t ll;
			const char *l;

			p.line = tl.start;
			l = text_lines_take(&tl, &ll);
			if (parse_line(&p, l, ll) < 0)
				goto out;
		}
	}
	if (!header) {
		p.line = 1;
		perr(&p, "empty file, not a .reg file");
		goto out;
	}
	ret = 0;
out:
	text_lines_free(&tl);
	free(t);
	free(p.key);
	if (ret < 0)
		reg_file_free(out);
	return ret;
}

int
reg_load(const char *path, bool rewrite, struct reg_file *out)
{
	uint8_t *buf;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if (file_read_all(path, REG_MAX_FILE, "not a registry export this "
	    "tool takes", &buf, &len) < 0)
		return -1;
	ret = reg_parse(path, buf, len, rewrite, out);
	free(buf);
	return ret;
}

void
reg_file_free(struct reg_file *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].name);
		hive_val_free(&f->v[i].val);
	}
	free(f->v);
	free(f->path);
	memset(f, 0, sizeof(*f));
}
