/*
 * package.h - driver packages as they come from the host: a package folder
 * (DriverStore\FileRepository\<inf>_<arch>_<hash>), a folder of them, or
 * an archive (zip, cab, tar, tar.gz) of either, read with libarchive.
 * The manifest (manifest.h) and the host's VM settings (hostcfg.h) have
 * headers of their own.
 */
#ifndef GPUPV_PACKAGE_H
#define GPUPV_PACKAGE_H

#include "hive.h"
#include "hostcfg.h"

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
	char *inf_path;			/* ... on the host */
	char *driver_ver;		/* DriverVer of the INF, or NULL */
	struct pkg_file *files;		/* folders before their contents */
	size_t nfiles;
	uint64_t bytes;
	struct inf *parsed;		/* its INF, parsed once (pkg_inf) */
	/* From a host bundle: what the package is to its GPU, and the GPU
	 * (instance path); NULL for a package given on its own. */
	const char *role;
	char *gpu;
};

/* What a package is to the GPU that uses it (a bundle's "role"). */
extern const char *const pkg_roles[];	/* NULL-terminated */
const char *pkg_role(const char *s);	/* the constant, or NULL */

struct inf;
/* The package's INF, parsed at the first call and kept; NULL with an
 * error when it cannot be read. */
const struct inf *pkg_inf(const struct pkg *p);

/* A bundle made by the host collector (gpupv-bundle.json at its root). */
struct bundle {
	bool present;
	char *source;			/* the folder or archive given */
	struct host_cfg host;		/* its first GPU */
	char *install_section;
	char *driver_version;
	char **reg;			/* .reg exports it holds (host paths) */
	size_t nreg;
	size_t ngpus;
	/* Every package of every GPU with its role ("packages" of a GPU;
	 * a bundle without them names the device's "package" alone). */
	struct bundle_pkg {
		char *folder;
		const char *role;
		char *gpu;			/* instance path */
	} *pkgs;
	size_t npkgs;
	/* Files of a GPU's driver outside the store (the collector takes
	 * those in System32 and SysWOW64): where they came from. */
	struct bundle_extra {
		char *src;			/* host path in the bundle */
		bool wow64;			/* SysWOW64, else System32 */
		char *name;			/* file name there */
		char *gpu;
	} *extras;
	size_t nextras;
	char *wsl_lib;			/* its copy of the host's WSL libraries
					   ("wsl_lib"), or NULL */
};

struct pkg_set {
	struct pkg *v;
	size_t n;
	struct bundle bundle;
	/* The host's WSL libraries (C:\\Program Files\\WSL\\lib: libdxcore.so,
	 * libd3d12.so, libd3d12core.so) for a Linux guest: from a bundle,
	 * or a folder given that holds them; files only, NULL when none. */
	struct pkg *wsl_lib;
	/* A bundle's extras as files ("System32/NAME", "SysWOW64/NAME"), in
	 * the order of bundle.extras; NULL when none. */
	struct pkg *extras;
	/* --dkms DIR: a DKMS source tree (dxgkrnl) for a Linux guest's
	 * /usr/src/NAME-VERSION; its name is "NAME-VERSION" from dkms.conf. */
	struct pkg *dkms;
	char *dkms_module, *dkms_version;
	char **tmpdirs;			/* archives unpacked here; removed */
	size_t ntmp;
};

/* gpupv-bundle.json text of the bundle at dir (arg names it in
 * messages); its .reg files must be in dir. */
int	bundle_parse(struct bundle *b, const char *text, size_t len,
	    const char *arg, const char *dir);
/* Add the package(s) that arg (folder or archive) holds. */
int	pkg_collect(struct pkg_set *set, const char *arg);
/* Read a DKMS source tree (its dkms.conf names module and version). */
int	pkg_load_dkms(struct pkg_set *set, const char *dir);
void	pkg_set_free(struct pkg_set *set);


#endif
