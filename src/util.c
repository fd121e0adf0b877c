/*
 * util.c - error recording, allocation, CRC-32C, GUIDs, UTF-16 and host
 * file helpers used by every layer.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "util.h"

#define WARN_MAX 64

/*
 * Errors are recorded into the innermost scope open on the calling thread
 * (error_try).  The thread's own base scope takes what no scope was opened
 * for: the CLI's command, or the hashing thread, which reports through its
 * own result and never reads it.
 */
static _Thread_local struct gp_error base_scope;
static _Thread_local struct gp_error *cur_scope;
static char *warnings[WARN_MAX];
static size_t nwarnings;

static struct gp_error *
scope(void)
{
	return cur_scope ? cur_scope : &base_scope;
}

void
error_try(struct gp_error *e)
{
	memset(e, 0, sizeof(*e));
	e->outer = cur_scope;
	cur_scope = e;
}

bool
error_end(struct gp_error *e)
{
	/* Scopes close in the order they opened; anything else is a bug
	 * that would send errors to a dead frame. */
	if (cur_scope != e)
		abort();
	cur_scope = e->outer;
	e->outer = NULL;
	if (e->set)
		errno = e->err;
	return e->set;
}

int
error_pass(const struct gp_error *e)
{
	if (e->set)
		error_setc(e->code, e->err, "%s", e->msg);
	return -1;
}

int
error_unless(const struct gp_error *e, int r, int saved, int ok, int ok2)
{
	int why = e->set ? e->err : saved;

	if (r >= 0 && !e->set)
		return 0;
	if (why && (why == ok || why == ok2)) {
		errno = why;
		return 1;
	}
	if (e->set)
		return error_pass(e);
	errno = why;
	return -1;
}

void
error_setc(int code, int err, const char *fmt, ...)
{
	struct gp_error *e = scope();
	va_list ap;

	/* The first detector wins: a caller never overwrites the cause,
	 * and errno stays the cause's. */
	if (e->set) {
		errno = e->err;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = code;
	e->err = err;
	e->set = true;
	if (debug_enabled())
		fprintf(stderr, "gpupv-prep: debug: error: %s\n", e->msg);
	errno = err;
}

int
error_corrupt(const char *path, const char *fmt, ...)
{
	char buf[GP_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	error_setc(GP_EXIT_CORRUPT, EINVAL, "%s: %s", path, buf);
	return -1;
}

void
error_rename(const char *from, const char *to)
{
	struct gp_error *e = scope();
	char out[GP_ERROR_MAX];
	size_t o = 0, fl = strlen(from), tl = strlen(to);
	const char *p = e->msg;
	int saved = errno;

	if (!e->set || !fl)
		return;
	while (*p && o + 1 < sizeof(out)) {
		if (strncmp(p, from, fl) == 0 && o + tl + 1 < sizeof(out)) {
			memcpy(out + o, to, tl);
			o += tl;
			p += fl;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	memcpy(e->msg, out, o + 1);
	errno = saved;
}

void
error_prefix(const char *fmt, ...)
{
	struct gp_error *e = scope();
	char ctx[GP_ERROR_MAX], tmp[GP_ERROR_MAX];
	int saved = errno;
	va_list ap;

	if (!e->set)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* Do not repeat a context that is already there. */
	if (strncmp(e->msg, ctx, strlen(ctx)) != 0) {
		/* Truncation keeps the cause's start; the message stays one
		 * line either way. */
		size_t n = strlen(ctx);

		memcpy(tmp, e->msg, sizeof(tmp));
		if (n > sizeof(e->msg) / 2)
			n = sizeof(e->msg) / 2;
		memcpy(e->msg, ctx, n);
		memcpy(e->msg + n, ": ", 2);
		memcpy(e->msg + n + 2, tmp, sizeof(e->msg) - n - 3);
		e->msg[sizeof(e->msg) - 1] = '\0';
	}
	errno = saved;
}

const char *
gp_error_message(void)
{
	struct gp_error *e = scope();

	return e->set ? e->msg : "";
}

int
gp_error_code(void)
{
	struct gp_error *e = scope();

	return e->set ? e->code : GP_EXIT_FAILURE;
}

void
gp_error_clear(void)
{
	struct gp_error *e = scope(), *outer = e->outer;

	memset(e, 0, sizeof(*e));
	e->outer = outer;
}

void
warn_add(const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (nwarnings >= WARN_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	warnings[nwarnings++] = s;
}

size_t
gp_warnings(const char *const **list)
{
	*list = (const char *const *)warnings;
	return nwarnings;
}

void
gp_warnings_clear(void)
{
	size_t i;

	for (i = 0; i < nwarnings; i++)
		free(warnings[i]);
	nwarnings = 0;
}

/*
 * Text for a terminal: names, labels and messages come from images,
 * packages and hives, so control characters (escape sequences), C1
 * controls and bytes that are not UTF-8 are shown as \xNN; only the line
 * breaks and tabs of our own formats pass.
 */
void
fputs_term(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int len;

	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len);

		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ||
		    (c >= 0x80 && c < 0xa0) || (c == 0xfffd && len == 1)) {
			int i;

			for (i = 0; i < len; i++)
				fprintf(f, "\\x%02x", p[i]);
		} else {
			fwrite(p, 1, (size_t)len, f);
		}
	}
}

static int debug_on = -1;

void
debug_set(bool on)
{
	debug_on = on;
}

bool
debug_enabled(void)
{
	const char *e;

	if (debug_on < 0) {
		e = getenv("GPUPV_PREP_DEBUG");
		debug_on = e && *e && strcmp(e, "0") != 0;
	}
	return debug_on;
}

void
debug(const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!debug_enabled())
		return;
	fputs("gpupv-prep: debug: ", stderr);
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	fputs_term(stderr, s);	/* names from images and packages */
	free(s);
	fputc('\n', stderr);
}

static void
oom(void)
{
	fputs("gpupv-prep: out of memory\n", stderr);
	abort();
}

void
fault_point(const char *name)
{
	const char *f = getenv("GPUPV_PREP_FAULT");
	const char *sig = getenv("GPUPV_PREP_FAULT_SIGNAL");

	if (f && strcmp(f, name) == 0) {
		/* GPUPV_PREP_FAULT_SIGNAL=TERM: the signal a user or a CI
		 * timeout sends, which the run must handle. */
		debug("fault point %s: %s", name, sig ? "a signal" : "killing "
		    "the process");
		/* STOP: the process waits there for a SIGCONT, so a test
		 * can change the world in between. */
		raise(sig && strcmp(sig, "TERM") == 0 ? SIGTERM :
		    sig && strcmp(sig, "INT") == 0 ? SIGINT :
		    sig && strcmp(sig, "STOP") == 0 ? SIGSTOP : SIGKILL);
	}
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

/* Slicing-by-1 table, built on first use. */
static uint32_t crc32c_table[256];

static void
crc32c_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc32c_table[1])
		crc32c_init();
	crc = ~crc;
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void
guid_from_bytes(guid_t *g, const void *p)
{
	memcpy(g->b, p, 16);
}

bool
guid_eq(const guid_t *a, const guid_t *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

bool
guid_is_zero(const guid_t *g)
{
	return is_zero(g->b, 16);
}

void
guid_format(const guid_t *g, char out[39])
{
	const uint8_t *b = g->b;

	snprintf(out, 39,
	    "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
	    get_le32(b), get_le16(b + 4), get_le16(b + 6), b[8], b[9], b[10], b[11],
	    b[12], b[13], b[14], b[15]);
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

int
guid_parse(guid_t *g, const char *s)
{
	/* Byte order of the text form: Data1..3 are big-endian numbers. */
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6,
	    8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t raw[16];
	int n = 0, h, l;
	bool brace = false;

	if (*s == '{') {
		brace = true;
		s++;
	}
	while (n < 16) {
		if (*s == '-' && (n == 4 || n == 6 || n == 8 || n == 10))
			s++;
		h = hex_digit((unsigned char)s[0]);
		l = h < 0 ? -1 : hex_digit((unsigned char)s[1]);
		if (h < 0 || l < 0)
			goto bad;
		raw[n++] = (uint8_t)(h << 4 | l);
		s += 2;
	}
	if (brace && *s++ != '}')
		goto bad;
	if (*s)
		goto bad;
	for (n = 0; n < 16; n++)
		g->b[order[n]] = raw[n];
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
guid_generate(guid_t *g)
{
	size_t got = 0;
	ssize_t r;

	while (got < 16) {
		r = getrandom(g->b + got, 16 - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			error_set(errno, "cannot get random bytes for a GUID: %s",
			    strerror(errno));
			return -1;
		}
		got += (size_t)r;
	}
	/* RFC 4122 version 4, variant 1; Data3 is little-endian on disk. */
	g->b[7] = (uint8_t)((g->b[7] & 0x0f) | 0x40);
	g->b[8] = (uint8_t)((g->b[8] & 0x3f) | 0x80);
	return 0;
}

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

/* Windows-1252's 0x80..0x9F; the rest of the 8-bit range is Latin-1. */
static const uint16_t cp1252_hi[32] = {
	0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
	0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
};

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

int
file_read_all(const char *path, size_t max, const char *what, uint8_t **buf,
    size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 0;
	uint8_t *b = NULL;
	ssize_t r;

	*buf = NULL;
	*len = 0;
	if (fd < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				close(fd);
				free(b);
				error_set(EFBIG, "%s: larger than %zu MiB; %s", path,
				    max >> 20, what);
				return -1;
			}
			cap = cap ? cap * 2 : 65536;
			b = xrealloc(b, cap + 1);
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error_set(errno, "%s: %s", path, strerror(errno));
			close(fd);
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > max) {
		free(b);
		error_set(EFBIG, "%s: larger than %zu MiB; %s", path, max >> 20,
		    what);
		return -1;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int
file_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t r;

	while (len) {
		r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

int
file_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t r;

	while (len) {
		r = pwrite(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

char *
path_dirname(const char *path)
{
	const char *s = strrchr(path, '/');

	if (!s)
		return xstrdup(".");
	if (s == path)
		return xstrdup("/");
	return strndup(path, (size_t)(s - path));
}

const char *
path_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

char *
path_join(const char *dir, const char *rel)
{
	if (rel[0] == '/' || !dir[0])
		return xstrdup(rel);
	return xasprintf("%s%s%s", dir,
	    dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
}

const char *
gp_version(void)
{
	return PACKAGE_VERSION;
}

double
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
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

char *
path_canonical(const char *path)
{
	char *dir = path_dirname(path), *real, *out = NULL;

	real = realpath(*dir ? dir : ".", NULL);
	if (real)
		out = xasprintf("%s/%s", real, path_basename(path));
	free(real);
	free(dir);
	return out;
}

/* ---- stopping on a signal -------------------------------------------- */

static volatile sig_atomic_t caught_signal;

static void
on_signal(int sig)
{
	caught_signal = sig;
}

void
signals_catch(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

int
signal_caught(void)
{
	return caught_signal;
}

int
check_interrupt(void)
{
	if (!caught_signal)
		return 0;
	error_set(EINTR, "stopped by signal %d (%s); the image keeps its old "
	    "state", caught_signal, strsignal(caught_signal));
	return -1;
}
