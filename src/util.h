/*
 * util.h - helpers shared by every layer: error recording and signals
 * (error.c), allocation, little/big-endian field access, CRC-32C, GUIDs and
 * host files (util.c), UTF-8/UTF-16 text (text.c).
 *
 * Error convention (as hivex and libntfs-3g): functions return -1 or NULL
 * and set errno.  The function that detects a failure records one message
 * with error_set() into the caller's scope (error_try); callers may prepend
 * context with error_prefix(), never replace the message.  A failure that
 * is tolerated is tried in a scope of its own, so it never hides nor
 * replaces another.  Layers never print.
 */
#ifndef GPUPV_UTIL_H
#define GPUPV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gpupv-prep.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* libntfs-3g's headers define these too, identically. */
#undef MIN
#undef MAX
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * A checksum comparison that holds.  Fuzzing builds (the conventional
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) take every checksum as good,
 * so that mutated input reaches the code the checksums guard.
 */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SUM_OK(a, b)	((void)(a), (void)(b), 1)
#else
#define SUM_OK(a, b)	((a) == (b))
#endif

/* Record a message in the current scope and set errno = err; code is a
 * GP_EXIT_* class.  When the scope holds one already, that first one
 * stays, and errno is set to its cause. */
void	error_setc(int code, int err, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
#define error_set(err, ...) error_setc(GP_EXIT_FAILURE, (err), __VA_ARGS__)
/* A host input file (package, INF, .reg, bundle) is not what it must be. */
#define error_input(err, ...) error_setc(GP_EXIT_INPUT, (err), __VA_ARGS__)
/* Prepend "context: " to the recorded message (keeps errno). */
void	error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Say "to" wherever the recorded message says "from" (a temporary name). */
void	error_rename(const char *from, const char *to);
/* error_setc(GP_EXIT_CORRUPT, EINVAL, "PATH: ...") and return -1. */
int	error_corrupt(const char *path, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * A scope for an attempt whose failure the caller may tolerate: between
 * error_try(&e) and error_end(&e) every error this thread records goes to
 * e (first one wins).  error_end returns whether one was, with errno set
 * to its cause; error_pass(&e) then hands it on to the enclosing scope
 * and returns -1.  Scopes close in the order they opened.
 */
void	error_try(struct gp_error *e);
bool	error_end(struct gp_error *e);
int	error_pass(const struct gp_error *e);
/*
 * After error_end(e) of an attempt that returned r, with saved the errno
 * right after it: 0 when it succeeded; 1 when it failed with errno ok or
 * ok2 (0: none), which is then recorded nowhere; otherwise -1, with the
 * failure handed on to the enclosing scope.
 */
int	error_unless(const struct gp_error *e, int r, int saved, int ok,
	    int ok2);

/* s for a terminal: control characters and bytes that are not UTF-8
 * shown as \xNN (line breaks and tabs pass). */
void	fputs_term(FILE *f, const char *s);

/* Debug tracing, on with GPUPV_PREP_DEBUG=1. */
bool	debug_enabled(void);
void	debug_set(bool on);		/* -v: as GPUPV_PREP_DEBUG=1 */
void	debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double	mono_ms(void);		/* a monotonic clock, for debug timings */
/*
 * Crash-test hook: when GPUPV_PREP_FAULT names this point, the process
 * kills itself there (SIGKILL, as a power cut or a CI timeout would; or
 * the signal GPUPV_PREP_FAULT_SIGNAL names, TERM or INT).
 */
void	fault_point(const char *name);

/*
 * SIGINT, SIGTERM and SIGHUP only set a flag (signals_catch); long loops
 * call check_interrupt(), which records an error once one came, so the run
 * stops through its ordinary failure path: temporaries removed, the image
 * left in its old state.  A run past its commit point finishes.
 */
void	signals_catch(void);
int	signal_caught(void);	/* the signal number, or 0 */
int	check_interrupt(void);	/* -1 with an error after a signal */

/* Warnings collected for the CLI to show (non-fatal). */
void	warn_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void	*xmalloc(size_t n);
void	*xcalloc(size_t n, size_t m);
void	*xrealloc(void *p, size_t n);
char	*xstrdup(const char *s);
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline uint16_t
get_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t
get_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[3] << 24;
}

static inline uint64_t
get_le64(const void *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32((const uint8_t *)p + 4) << 32;
}

static inline uint16_t
get_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t
get_be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static inline uint64_t
get_be64(const void *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32((const uint8_t *)p + 4);
}

static inline void
put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void
put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void
put_le64(void *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

static inline void
put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static inline void
put_be64(void *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32((uint8_t *)p + 4, (uint32_t)v);
}

static inline bool
is_pow2(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static inline bool
is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* CRC-32C (Castagnoli, reflected 0x82F63B78), as MS-VHDX 2.2.2 uses. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* Windows GUIDs: Data1..3 little-endian, Data4 as bytes (MS-DTYP 2.3.4). */
typedef struct guid {
	uint8_t b[16];
} guid_t;

void	guid_from_bytes(guid_t *g, const void *p);
/* The value of a hexadecimal digit, or -1. */
int	hex_digit(int c);
int	guid_parse(guid_t *g, const char *s);	/* "{...}" or bare */
void	guid_format(const guid_t *g, char out[39]);	/* "{XXXXXXXX-...}" */
bool	guid_eq(const guid_t *a, const guid_t *b);
bool	guid_is_zero(const guid_t *g);
int	guid_generate(guid_t *g);	/* random version 4 */

/*
 * UTF-16 (LE or BE) to UTF-8; nunits code units, stops at NUL.
 * Unpaired surrogates become U+FFFD.  Returns a new string.
 */
char	*utf16_to_utf8(const void *p, size_t nunits, bool big_endian);

/*
 * A text file's bytes as UTF-8: UTF-16LE with BOM, UTF-8 with or without
 * BOM, otherwise ANSI read as Windows-1252.  NULs are kept; *outlen
 * excludes the terminating NUL added.
 */
enum text_enc { TEXT_UTF8, TEXT_UTF8_BOM, TEXT_UTF16LE, TEXT_ANSI };
char	*text_to_utf8(const void *buf, size_t len, size_t *outlen,
	    enum text_enc *enc);
/*
 * The logical lines of a text (INF and .reg files): physical lines split
 * at '\n' with a trailing '\r' dropped, pieces of which the caller adds
 * to the logical line until its own rule says the line does not continue.
 */
struct text_lines {
	const char *t;
	size_t n, i;
	unsigned line;			/* physical line last read, from 1 */
	unsigned start;			/* first physical line of the logical */
	char *buf;			/* the logical line so far */
	size_t len, cap;
};
void	text_lines_init(struct text_lines *r, const char *t, size_t n);
/* The next physical line: 1; 0 at the end; -1 when it holds a NUL (a
 * UTF-16 file without its byte order mark). */
int	text_lines_next(struct text_lines *r, const char **s, size_t *len);
/* Whether a physical line follows the one last read. */
bool	text_lines_more(const struct text_lines *r);
void	text_lines_add(struct text_lines *r, const char *s, size_t len);
/* The logical line (NUL-terminated, *len bytes); the next one starts. */
const char *text_lines_take(struct text_lines *r, size_t *len);
void	text_lines_free(struct text_lines *r);
/* n bytes of UTF-8 as UTF-16LE, without a terminator (malloc'd; room
 * for one more unit). */
uint8_t	*utf8_to_utf16le(const char *s, size_t n, size_t *nbytes);
/* The code point at s (NUL-terminated) and its length in bytes; an
 * invalid or overlong sequence reads as U+FFFD, one byte long. */
uint32_t utf8_decode(const unsigned char *s, int *len);

/* A full pread/pwrite on a host file; short reads are EIO errors. */
int	file_pread(int fd, void *buf, size_t len, uint64_t off);
/* A whole host file of at most max bytes (what names it in a refusal:
 * "not a .reg file"); *buf is malloc'd with a NUL after it. */
int	file_read_all(const char *path, size_t max, const char *what,
	    uint8_t **buf, size_t *len);
int	file_pwrite(int fd, const void *buf, size_t len, uint64_t off);

/* Directory of path (new string), and joining. */
char	*path_dirname(const char *path);
/* The path with its folder resolved (symbolic links, ..), the last
 * component as given; NULL when the folder does not exist. */
char	*path_canonical(const char *path);
char	*path_join(const char *dir, const char *rel);
const char *path_basename(const char *path);

#endif
