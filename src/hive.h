/*
 * hive.h - registry hive layer (gp_hive_* in the public header): the
 * regf base block and log replay (hive-log.c), compaction
 * (hive-compact.c), editing through hivex
 * (hive.c, the only file that includes hivex.h), the .reg reader
 * (reg.c) and the INF reader (inf.c).
 */
#ifndef GPUPV_HIVE_H
#define GPUPV_HIVE_H

#include "util.h"

/* Cap on a hive (and its logs) read into memory: no SYSTEM or SOFTWARE
 * hive comes near it. */
#define HIVE_MAX_SIZE	(1024u * 1024 * 1024)
/* hivex writes longer values as one cell, which Windows misreads (it
 * expects a big-data record); such values are refused. */
#define HIVE_MAX_CELL_DATA 16344u

/* ---- base block and transaction logs (hive-log.c) ---- */

struct hive_hdr {
	uint32_t seq1, seq2;		/* primary, secondary sequence */
	uint32_t major, minor, type;
	uint32_t root, bins_size;
	bool sum_ok;
};

int	hive_header(const uint8_t *buf, size_t len, struct hive_hdr *h);
/* Sequence numbers differ or the checksum is wrong. */
bool	hive_dirty(const struct hive_hdr *h);
void	hive_fix_checksum(uint8_t *base_block);
uint64_t marvin32(const void *data, size_t n, uint64_t seed);
/*
 * Replay the new-format log entries of log[0] (.LOG1) and log[1] (.LOG2;
 * either may be NULL) into the dirty primary hive *buf (resized as
 * needed) and mark it clean.  Returns the number of entries applied, or
 * -1 with a message (GP_EXIT_UNCLEAN when nothing can be replayed).
 */
int	hive_log_replay(uint8_t **buf, size_t *len, const uint8_t *const log[2],
	    const size_t loglen[2], const char *name);

/*
 * Rewrite the hive *buf with only the cells its root reaches, in new
 * bins (hive-compact.c).  Returns 1 when *buf and *len were replaced by
 * a smaller hive, 0 when they were left as they are: *why then says what
 * stood in the way, or is NULL when there was nothing to gain.
 */
int	hive_compact(uint8_t **buf, size_t *len, const char **why);

/* ---- editing (hive.c) ---- */

typedef struct hive hive;

struct hive_val {
	uint32_t type;			/* REG_*, or any 32-bit type */
	uint8_t *data;
	size_t len;
};

enum { REG_NONE_ = 0, REG_SZ_ = 1, REG_EXPAND_SZ_ = 2, REG_BINARY_ = 3,
	REG_DWORD_ = 4, REG_MULTI_SZ_ = 7, REG_QWORD_ = 11 };

/* Open a hive file; name is used in messages.  A guest's hive (writable or not) is part of the image: a file hivex
 * cannot read is a corrupt image.  A hive from the host (HIVE_HOST) is
 * an input file: then it is bad input. */
enum { HIVE_READ = 0, HIVE_WRITE = 1, HIVE_HOST = 2 };
hive	*hive_open(const char *path, const char *name, int how);
void	hive_close(hive *h);
/* Write the edited hive to path (a new file). */
int	hive_commit(hive *h, const char *path);
const char *hive_name(const hive *h);

/* Key paths are relative to the root, '\\'-separated, matched without
 * regard to case.  These return 1 (found), 0 (absent) or -1. */
int	hive_key_exists(hive *h, const char *key);
int	hive_get(hive *h, const char *key, const char *name,
	    struct hive_val *v);
/* Create key and missing parents; *created gets the topmost key that
 * was new (NULL when it all existed). */
int	hive_mkkey(hive *h, const char *key, char **created);
/* Set a value of an existing key (name "" is the default value). */
int	hive_set(hive *h, const char *key, const char *name,
	    const struct hive_val *v);
int	hive_delete_value(hive *h, const char *key, const char *name);
int	hive_delete_key(hive *h, const char *key);
/*
 * The subkey names and the values of key (names in *names, "" for the
 * default value).  Returns 1, 0 when the key is absent, or -1.
 */
int	hive_list(hive *h, const char *key, char ***subkeys, size_t *nsub,
	    char ***names, struct hive_val **vals, size_t *nval);
void	hive_val_free(struct hive_val *v);
bool	hive_val_eq(const struct hive_val *a, const struct hive_val *b);
void	hive_strv_free(char **v, size_t n);

#endif
