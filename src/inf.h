/*
 * inf.h - driver INF files (inf.c): sections, %strings%, DriverVer, the
 * CopyToVm AddReg lines of Microsoft's GPU-PV document, and service
 * install sections.  Part of the hive layer; reads host files only.
 */
#ifndef GPUPV_INF_H
#define GPUPV_INF_H

#include "util.h"

struct inf_line {
	unsigned line;
	char *key;			/* before an unquoted '=', or NULL */
	char **f;			/* fields: unquoted, %strings% applied */
	size_t nf;
};

struct inf_section {
	char *name;
	struct inf_line *v;
	size_t n;
};

struct inf {
	char *path;
	struct inf_section *s;
	size_t n;
};

/* Parse an INF (UTF-16LE with BOM, UTF-8, ANSI; CRLF or LF).  Errors
 * are "FILE:LINE: reason". */
int	inf_load(const char *path, struct inf *out);
int	inf_parse(const char *path, const void *text, size_t len,
	    struct inf *out);
void	inf_free(struct inf *inf);
const struct inf_section *inf_section(const struct inf *inf,
	    const char *name);
/* The first value of key in section, or NULL. */
const char *inf_value(const struct inf *inf, const char *section,
	    const char *key);

/* DriverVer of [Version]: "MM/DD/YYYY,a.b.c.d" as written. */
char	*inf_driver_ver(const char *path);
char	*inf_driver_ver_mem(const char *name, const void *buf, size_t len);
/* DriverVer of a parsed INF, or NULL (no error recorded). */
char	*inf_driver_ver_of(const struct inf *inf);
/* Whether DriverVer is "MM/DD/YYYY[,a.b.c.d]" with a real date and
 * version parts up to 65535, as Windows writes and compares it. */
bool	inf_driver_ver_valid(const char *dv);
/* "WDDM 3.1" from a DriverVer's version (its first number), or NULL. */
char	*inf_wddm_hint(const char *driver_ver);

struct copytovm {
	char *src;			/* path in the package, '\\' kept */
	char *dest;			/* file name in System32/SysWOW64 */
	bool wow64;
	bool overwrite;			/* else WhenNewer */
	char *section;			/* where the line was */
	unsigned line;
};

/*
 * The CopyToVm files of the install section (its AddReg sections), or
 * of all sections when section is NULL; conflicting destinations are
 * warned about and the first wins.
 */
int	inf_copytovm(const struct inf *inf, const char *section,
	    struct copytovm **v, size_t *n);
void	copytovm_free(struct copytovm *v, size_t n);

struct lxss_file {
	char *dest;			/* name in /usr/lib/wsl/lib */
	char *src;			/* file in the package */
	unsigned line;
};

/* The CopyFiles entries whose destination is 11,lxss\lib (the INF's
 * libraries for Linux guests under WSL), in INF order. */
int	inf_lxss_files(const struct inf *inf, struct lxss_file **v, size_t *n);
void	lxss_files_free(struct lxss_file *v, size_t n);

struct inf_service {
	uint32_t type, start, error_control;
	char *group;			/* LoadOrderGroup, or NULL */
	char *binary;			/* ServiceBinary, or NULL */
};

/* The service-install section of AddService = name (in section, or the
 * first in the file).  Returns 1, 0 when there is none. */
int	inf_service(const struct inf *inf, const char *name,
	    const char *section, struct inf_service *svc);
void	inf_service_free(struct inf_service *svc);

#endif
