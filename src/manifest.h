/*
 * manifest.h - the manifest (manifest.c): what gpupv-prep staged into a
 * guest, read back from the guest and so checked like any input.
 */
#ifndef GPUPV_MANIFEST_H
#define GPUPV_MANIFEST_H

#include "hostcfg.h"
#include "package.h"

/* The manifest, HostDriverStore\gpupv-prep.json. */
struct man_pkg {
	char *name;
	char *inf;
	char *driver_ver;
	const char *role;		/* from a bundle, or NULL */
	char *gpu;			/* its GPU's instance path, or NULL */
	char *staged_at;
	struct pkg_file *files;		/* rel, is_dir, size, mtime_ns, sha256 */
	size_t nfiles;
	uint64_t bytes;
};

/*
 * A registry change, kept so that remove can undo it: a key we created
 * (undo: delete it), a key we deleted (undo: create it again), or a
 * value we set or deleted, with the value it replaced.  In order of
 * application; the first record of a value keeps its original.
 */
enum man_reg_kind { MR_KEY_CREATED, MR_KEY_DELETED, MR_VALUE };

struct man_reg {
	enum man_reg_kind kind;
	char *hive;			/* "SYSTEM", "SOFTWARE" */
	char *key;			/* below the hive's root */
	char *name;			/* MR_VALUE: value name ("" default) */
	bool had_old;			/* MR_VALUE: it existed before */
	struct hive_val old;
	char *origin;			/* what asked for it, for reports */
	bool values_recorded;		/* MR_KEY_CREATED: every value set in
					   it has its own record (older
					   manifests did not) */
};

/* A file a CopyToVm line placed in System32 or SysWOW64. */
struct man_copy {
	char *dest;			/* guest path, '\\'-separated */
	char *package;			/* source package and file in it */
	char *source;
	uint64_t size;
	char sha256[65];
	char *backup;			/* the file it replaced, kept here */
	char *link;			/* Linux: a symbolic link to this name
					   (size and sha256 are the file's) */
};

struct manifest {
	struct man_pkg *v;
	size_t n;
	struct host_cfg host;		/* as the last stage run set it */
	struct man_reg *reg;
	size_t nreg;
	struct man_copy *copies;
	size_t ncopies;
};

void	man_reg_free(struct man_reg *r);
void	man_copy_free(struct man_copy *c);
/* Whether the manifest records anything at all. */
bool	manifest_empty(const struct manifest *m);

int	manifest_parse(const char *text, size_t len, struct manifest *m);
/* Whether dest is one of the files gpupv-prep generates in a Linux guest
 * (loader configuration, first-boot unit and script). */
bool	manifest_linux_generated(const char *dest);
/* The manifest as JSON text (malloc'd). */
char	*manifest_format(const struct manifest *m, size_t *len);
void	manifest_free(struct manifest *m);
void	man_pkg_free(struct man_pkg *p);
struct man_pkg *manifest_find(struct manifest *m, const char *name);

#endif
