/*
 * package.h - driver packages as they come from the host: a package folder
 * (DriverStore\FileRepository\<inf>_<arch>_<hash>), a folder of them, or
 * an archive (zip, cab, tar, tar.gz) of either, read with libarchive.
 * Also the INF facts the manifest records, and the manifest itself.
 */
#ifndef GPUPV_PACKAGE_H
#define GPUPV_PACKAGE_H

#include "hive.h"

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

/*
 * The host side of the VM, for the sidecar script and the NanaBox file:
 * from options, a host bundle, and the manifest of an earlier run.
 */
struct host_cfg {
	char *vm_name;
	char *gpu;			/* GPU-PV instance path; NULL or ""
					   for Hyper-V's choice */
	char *gpu_name;
	char *hardware_id;
	char *dda;			/* DDA location path, or NULL */
	uint64_t low_mmio_mb;		/* 0: the default */
	uint64_t high_mmio_mb;
	uint64_t host_build;		/* 0: unknown */
};

void	host_cfg_free(struct host_cfg *h);
/* Fields set in src replace those of dst; true if anything changed. */
bool	host_cfg_merge(struct host_cfg *dst, const struct host_cfg *src);

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
