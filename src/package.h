/*
 * package.h - driver packages as they come from the host: a package folder
 * (DriverStore\FileRepository\<inf>_<arch>_<hash>), a folder of them, or
 * an archive (zip, cab, tar, tar.gz) of either, read with libarchive.
 * Also the INF facts the manifest records, and the manifest itself.
 */
#ifndef GPUPV_PACKAGE_H
#define GPUPV_PACKAGE_H

#include "util.h"

struct pkg_file {
	char *rel;			/* path inside the package, '/' separated */
	char *src;			/* host path to read */
	bool is_dir;
	uint64_t size;
	int64_t mtime_ns;
	int64_t crtime_ns;		/* 0 when the host does not know */
	char sha256[65];		/* "" until hashed */
};

struct pkg {
	char *name;			/* folder name */
	char *inf;			/* its INF file name */
	char *driver_ver;		/* DriverVer of the INF, or NULL */
	struct pkg_file *files;		/* folders before their contents */
	size_t nfiles;
	uint64_t bytes;
};

struct pkg_set {
	struct pkg *v;
	size_t n;
	char **tmpdirs;			/* archives unpacked here; removed */
	size_t ntmp;
};

/* Add the package(s) that arg (folder or archive) holds. */
int	pkg_collect(struct pkg_set *set, const char *arg);
void	pkg_set_free(struct pkg_set *set);

/* DriverVer from the [Version] section of an INF (UTF-16 or 8-bit). */
char	*inf_driver_ver(const char *path);

/* The manifest, HostDriverStore\gpupv-prep.json. */
struct man_pkg {
	char *name;
	char *inf;
	char *driver_ver;
	char *staged_at;
	struct pkg_file *files;		/* rel, is_dir, size, mtime_ns, sha256 */
	size_t nfiles;
	uint64_t bytes;
};

struct manifest {
	struct man_pkg *v;
	size_t n;
};

int	manifest_parse(const char *text, size_t len, struct manifest *m);
/* The manifest as JSON text (malloc'd). */
char	*manifest_format(const struct manifest *m, size_t *len);
void	manifest_free(struct manifest *m);
void	man_pkg_free(struct man_pkg *p);
struct man_pkg *manifest_find(struct manifest *m, const char *name);

#endif
