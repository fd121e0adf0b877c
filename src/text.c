/*
 * text.c - text as the formats we read hold it: UTF-16 (LE and BE) and
 * UTF-8 checked and converted, a file's text in whatever encoding its
 * byte-order mark says, and the physical lines of INF and .reg files.
 */
#include <config.h>

#include <stdlib.h>

#include "util.h"

/* Windows-1252's 0x80..0x9F; the rest of the 8-bit range is Latin-1. */
static const uint16_t cp1252_hi[32] = {
	0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
	0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
};

static size_t
utf8_put(char *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

char *
utf16_to_utf8(const void *p, size_t nunits, bool big_endian)
{
	const uint8_t *b = p;
	char *out = xmalloc(nunits * 3 + 1);
	size_t i, o = 0;
	uint32_t c, c2;

	for (i = 0; i < nunits; i++) {
		c = big_endian ? get_be16(b + 2 * i) : get_le16(b + 2 * i);
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < nunits) {
			c2 = big_endian ? get_be16(b + 2 * i + 2) : get_le16(b + 2 * i + 2);
			if (c2 >= 0xdc00 && c2 < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
				i++;
			} else {
				c = 0xfffd;
			}
		} else if (c >= 0xd800 && c < 0xe000) {
			c = 0xfffd;
		}
		o += utf8_put(out + o, c);
	}
	out[o] = '\0';
	return out;
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_valid(const uint8_t *p, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		c = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		c = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c < 0xe000))
		return 0;
	*cp = c;
	return len;
}

void
text_lines_init(struct text_lines *r, const char *t, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	r->n = n;
}

int
text_lines_next(struct text_lines *r, const char **s, size_t *len)
{
	const char *line = r->t + r->i;
	size_t l = 0, e;

	if (r->i > r->n)
		return 0;
	while (r->i + l < r->n && line[l] != '\n')
		l++;
	r->i += l + 1;
	r->line++;
	if (r->len == 0)
		r->start = r->line;
	e = l;
	if (e && line[e - 1] == '\r')
		e--;
	*s = line;
	*len = e;
	return memchr(line, '\0', e) ? -1 : 1;
}

bool
text_lines_more(const struct text_lines *r)
{
	return r->i <= r->n;
}

void
text_lines_add(struct text_lines *r, const char *s, size_t len)
{
	if (r->len + len + 1 > r->cap) {
		r->cap = (r->len + len + 1) * 2;
		r->buf = xrealloc(r->buf, r->cap);
	}
	memcpy(r->buf + r->len, s, len);
	r->len += len;
	r->buf[r->len] = '\0';
}

const char *
text_lines_take(struct text_lines *r, size_t *len)
{
	text_lines_add(r, "", 0);	/* a buffer even for an empty line */
	*len = r->len;
	r->len = 0;
	return r->buf;
}

void
text_lines_free(struct text_lines *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

char *
text_to_utf8(const void *buf, size_t len, size_t *outlen,
    enum text_enc *enc)
{
	const uint8_t *b = buf;
	char *out;
	size_t i, o = 0;
	uint32_t c;

	if (len >= 2 && b[0] == 0xff && b[1] == 0xfe) {
		size_t n = (len - 2) / 2;

		*enc = TEXT_UTF16LE;
		out = xmalloc(n * 3 + 1);
		for (i = 0; i < n; i++) {
			c = get_le16(b + 2 + 2 * i);
			if (c >= 0xd800 && c < 0xdc00 && i + 1 < n &&
			    get_le16(b + 4 + 2 * i) >= 0xdc00 &&
			    get_le16(b + 4 + 2 * i) < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (get_le16(b + 4 + 2 * i) - 0xdc00u);
				i++;
			} else if (c >= 0xd800 && c < 0xe000) {
				c = 0xfffd;
			}
			o += utf8_put(out + o, c);
		}
		out[o] = '\0';
		*outlen = o;
		return out;
	}
	if (len >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) {
		b += 3;
		len -= 3;
		*enc = TEXT_UTF8_BOM;
	} else {
		*enc = TEXT_UTF8;
	}
	for (i = 0; i < len;) {
		size_t l = utf8_valid(b + i, len - i, &c);

		if (!l)
			break;
		i += l;
	}
	if (i == len || *enc == TEXT_UTF8_BOM) {
		/* Valid UTF-8 (invalid bytes after a BOM become U+FFFD). */
		out = xmalloc(len * 3 + 1);
		for (i = 0; i < len;) {
			size_t l = utf8_valid(b + i, len - i, &c);

			if (!l) {
				c = 0xfffd;
				l = 1;
			}
			o += utf8_put(out + o, c);
			i += l;
		}
		out[o] = '\0';
		*outlen = o;
		return out;
	}
	/* Not UTF-8: an ANSI file, read as Windows-1252. */
	*enc = TEXT_ANSI;
	out = xmalloc(len * 3 + 1);
	for (i = 0; i < len; i++) {
		c = b[i];
		if (c >= 0x80 && c < 0xa0)
			c = cp1252_hi[c - 0x80];
		o += utf8_put(out + o, c);
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

uint8_t *
utf8_to_utf16le(const char *s, size_t n, size_t *nbytes)
{
	const uint8_t *p = (const uint8_t *)s;
	uint8_t *out = xmalloc(n * 2 + 2);
	size_t i = 0, o = 0;
	uint32_t c;

	while (i < n) {
		size_t l = utf8_valid(p + i, n - i, &c);

		if (!l) {
			c = 0xfffd;
			l = 1;
		}
		i += l;
		if (c >= 0x10000) {
			c -= 0x10000;
			put_le16(out + o, (uint16_t)(0xd800 + (c >> 10)));
			put_le16(out + o + 2, (uint16_t)(0xdc00 + (c & 0x3ff)));
			o += 4;
		} else {
			put_le16(out + o, (uint16_t)c);
			o += 2;
		}
	}
	*nbytes = o;
	return out;
}

/*
 * One UTF-8 character of s: its code point and length; an invalid or
 * overlong sequence reads as U+FFFD, one byte long.
 */
uint32_t
utf8_decode(const unsigned char *s, int *len)
{
	uint32_t c = s[0];
	int n, i;

	*len = 1;
	if (c < 0x80)
		return c;
	n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 &&
	    c < 0xe0 ? 2 : 0;
	if (!n || (c >= 0xf0 && n != 4))
		return 0xfffd;
	c &= 0x3f >> (n - 1);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0xfffd;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 ||
	    c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0xfffd;
	*len = n;
	return c;
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
