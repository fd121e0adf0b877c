/*
 * util.c - helpers of every layer: allocation that never returns NULL,
 * CRC-32C, GUIDs, host files read and written whole or at an offset, and
 * paths.  Errors and signals are error.c, text encodings text.c.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "util.h"

static void
oom(void)
{
	fputs("gpupv-prep: out of memory\n", stderr);
	abort();
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

