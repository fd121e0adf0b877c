/*
 * reg.h - regedit's .reg files (reg.c) and the DriverStore rewrite; part
 * of the hive layer, without hivex.
 */
#ifndef GPUPV_REG_H
#define GPUPV_REG_H

#include "hive.h"

enum reg_hive { REG_HIVE_SYSTEM, REG_HIVE_SOFTWARE, REG_NHIVES };

enum reg_kind {
	RK_KEY,				/* [KEY]: create */
	RK_DELKEY,			/* [-KEY] */
	RK_SET,				/* "name"=data */
	RK_DELVAL,			/* "name"=- */
};

struct reg_op {
	unsigned line;
	enum reg_kind kind;
	enum reg_hive hive;
	bool ccs;			/* key is below CurrentControlSet */
	char *key;			/* below the hive (or CurrentControlSet) */
	char *name;			/* value name, "" for @ */
	struct hive_val val;
};

struct reg_file {
	char *path;
	struct reg_op *v;
	size_t n;
};

/*
 * Parse a .reg file (UTF-16LE with BOM, UTF-8 with or without BOM, or
 * ANSI for REGEDIT4).  With rewrite set, \DriverStore\ in string data
 * becomes \HostDriverStore\.  Errors are "FILE:LINE: reason".
 */
int	reg_parse(const char *path, const void *text, size_t len, bool rewrite,
	    struct reg_file *out);
int	reg_load(const char *path, bool rewrite, struct reg_file *out);
void	reg_file_free(struct reg_file *f);
const char *reg_hive_name(enum reg_hive h);

/*
 * Rewrite path components "DriverStore" to "HostDriverStore" in UTF-16LE
 * string data of type REG_SZ, REG_EXPAND_SZ or REG_MULTI_SZ.  Returns
 * the number of replacements.
 */
size_t	reg_rewrite_driverstore(struct hive_val *v);

/* UTF-8 text as UTF-16LE with its terminating NUL (malloc'd). */
uint8_t	*reg_utf16(const char *s, size_t *len);

#endif
