/*
 * stage-int.h - what the files of the stage layer share: stage.c (the
 * guest session, the packages, stage_run and stage_remove), stage-hash.c
 * (the hashing thread), stage-verify.c (reading back, verify),
 * stage-copies.c (files placed outside the store), stage-registry.c (the
 * hives), stage-linux.c (a Linux guest) and stage-junction.c (DriverStore
 * junctions).  Not part of any public interface.
 */
#ifndef GPUPV_STAGE_INT_H
#define GPUPV_STAGE_INT_H

#include <pthread.h>
#include <sys/stat.h>

#include "inf.h"
#include "registry.h"
#include "sha256.h"
#include "stage.h"

/* Where WSL puts what a Linux guest needs (microsoft/WSL's layout). */
#define WSL_ROOT	"/usr/lib/wsl"

struct guest {
	gp_image *img;
	struct gp_partition_table pt;
	struct gp_windows w;
	bool is_linux;			/* an ext2/3/4 Linux root */
	struct gp_linux lx;
	gp_volume *vol;
	unsigned partition;
	char *system32;			/* "\Windows\System32"; Linux:
					   /usr/lib/wsl/lib */
	char *hds;			/* ...\HostDriverStore */
	char *repo;			/* ...\HostDriverStore\FileRepository */
	char *manifest_path;
	struct manifest man;
	bool have_manifest;
	bool links;			/* DriverStore junctions wanted */
};

/* A system file the run places: a CopyToVm copy in System32/SysWOW64, or
 * in a Linux guest a library, link, tree file or generated file. */
struct copy_plan {
	const struct pkg *p;		/* NULL: generated (data) */
	const struct pkg_file *f;
	char *dest;			/* guest path */
	bool overwrite;
	/* Linux guests: */
	char *link;			/* a symbolic link to this name */
	bool host_lib;			/* from the host's WSL libraries */
	const char *data;		/* generated contents */
	char *owned;			/* data, when made for this run */
	uint32_t mode;			/* 0: the file system's default */
	char sha[65];			/* of data */
	char *package;			/* whose it is, when p is NULL */
	bool extra;			/* a bundle's file from outside the
					   store (sha set) */
};

/* stage.c */
/* The guest of a run: image, partition table, volume, manifest, opened
 * with gp_image_open's flags (a session unless read-only). */
int	guest_open(struct guest *g, const char *image,
	    const struct stage_opts *o, unsigned flags);
void	guest_close(struct guest *g);
/* A package's folder in the guest, or rel inside it (malloc'd). */
char	*guest_path(const struct guest *g, const char *pkg, const char *rel);
/* A long phase's progress, to the caller's callback. */
void	progress(const struct stage_opts *o, const char *phase,
	    uint64_t files, uint64_t nfiles, uint64_t bytes, uint64_t total);
/* A package line of the report (r->v may move). */
struct stage_item *add_item(struct stage_report *r, const char *name,
	    const char *inf, const char *ver, enum stage_action a);
/* A package file opened for copying, never through a link. */
int	open_package_file(const char *path);
/* Feeding a file's contents to create: from fd, counting progress. */
struct copy {
	int fd;
	const char *src;
	const struct stage_opts *o;
	uint64_t *files_done, nfiles, *bytes_done, total;
};
int	copy_fill(void *ctx, void *buf, size_t len);
struct hasher {
	struct sha256 sha;
};
int	hash_cb(void *ctx, const void *buf, size_t len);
int	read_manifest(struct guest *g, const char *image);
struct man_copy *copy_find(struct guest *g, const char *dest);
void	copy_plans_free(struct copy_plan *v, size_t n);
struct copy_plan *plan_add(struct copy_plan **out, size_t *nout);
/* An entry placing file f of package p at dest (which it takes). */
struct copy_plan *plan_file(struct copy_plan **out, size_t *nout,
	    const struct pkg *p, const struct pkg_file *f, char *dest);
const struct pkg_file *pkg_find(const struct pkg *p, const char *rel);
bool	in_set(const struct pkg_set *set, const char *name);
/* The SHA-256 of a host file (no link followed, its size checked). */
int	hash_host_file(const struct pkg_file *f, char hex[65]);

/* stage-hash.c: the hashing thread of a run. */
struct hash_run {
	struct sha256_job *jobs;	/* in hashing order */
	size_t *slot;			/* copy order -> job */
	struct stat *copied;		/* the copier's fstat, by job */
	size_t n, next;			/* next: the copier's position */
	volatile int stop;
	pthread_t th;
	bool started;
};
/* Start hashing the files of the packages todo[] marks (a thread). */
int	hash_start(struct hash_run *h, const struct pkg_set *set,
	    const bool *todo);
/* Wait for it; with ok, put the hashes into the packages' files and
 * check each file is the one the copier read. */
int	hash_finish(struct hash_run *h, struct pkg_set *set, const bool *todo,
	    bool ok);

/* stage-verify.c: reading staged files back. */
struct readback {
	const struct stage_opts *o;
	const char *phase;
	uint64_t files, nfiles, bytes, total;
};
void	readback_init(struct readback *rb, const struct stage_opts *o,
	    const char *phase, const struct manifest *m,
	    const struct pkg_set *set);
/* Hash every file of mp as the volume holds it; the number that differ
 * (marked in bad_files when given), or -1. */
long	check_package(struct guest *g, const struct man_pkg *mp,
	    struct stage_report *r, bool *bad_files, struct readback *rb);

/* stage-copies.c: System32/SysWOW64 copies and the placing of every
 * planned file. */
/* What the INFs' CopyToVm lines and the bundle's extras place that is not
 * in place yet (restage[] marks packages staged afresh). */
int	plan_copies(struct guest *g, const struct pkg_set *set,
	    const bool *restage, const struct stage_opts *o,
	    struct copy_plan **out, size_t *nout, bool *changed,
	    uint64_t *kept);
/* Place the plan, record it; copies no longer wanted go. */
int	exec_copies(struct guest *g, struct copy_plan *plan, size_t n,
	    struct stage_report *r);
/* Take a placed file away, putting back what it replaced. */
int	undo_copy(struct guest *g, struct man_copy *rec);
void	copy_drop(struct manifest *m, struct man_copy *rec);

/* stage-registry.c: the guest's hives in one run. */
struct guest_reg {
	struct regs s;
	char *tmpdir;
	char *tmp[REG_NHIVES];		/* the hive copied out, on the host */
	char *gpath[REG_NHIVES];	/* ...and where it is in the guest */
	uint8_t *out[REG_NHIVES];		/* the edited hive, to be written */
	size_t outlen[REG_NHIVES];
};
void	guest_reg_free(struct guest_reg *gr);
/* Copy hive hv out of the guest (logs replayed when dirty) and open it. */
int	load_hive(struct guest *g, struct guest_reg *gr, enum reg_hive hv,
	    const char *image);
/* The edited hives as bytes, compacted (their size counts for space). */
int	commit_hives(struct guest_reg *gr);
/* Write the committed hives over the guest's files. */
int	store_hives(struct guest *g, struct guest_reg *gr,
	    struct stage_report *r);
/* 0: no registry edit; 1: a package holds nvlddmkm.sys (its service is
 * written); 2: options ask for edits (--reg, --copy-key, settings). */
int	wants_registry(const struct pkg_set *set, const struct stage_opts *o);
/* Every registry edit of the run, in memory. */
int	apply_registry(struct guest *g, struct guest_reg *gr,
	    struct pkg_set *set, const struct stage_opts *o, const char *image);

/* stage-junction.c */
/* Whether c is a DriverStore junction (a Windows guest's copy with a
 * link). */
bool	copy_is_junction(const struct guest *g, const struct man_copy *c);
/*
 * The junctions the run makes: want 1 (--driverstore-links), -1
 * (--no-driverstore-links: they go), 0 (as the manifest has them).
 * Sets g->links.  A junction already in place is not planned again; an
 * entry of its name gpupv-prep did not make is refused.
 */
int	plan_junctions(struct guest *g, const struct pkg_set *set, int want,
	    struct copy_plan **out, size_t *nout, bool *changed);
/* Remove the junction rec records, if it still is that junction. */
int	undo_junction(struct guest *g, const struct man_copy *rec);
/* 1 with *what when the junction is missing or points elsewhere, 0, -1. */
int	check_junction(struct guest *g, const struct man_copy *c,
	    const char **what);

/* stage-linux.c */
/* The session's Linux root (g->lx found): volume, paths, manifest. */
int	linux_open(struct guest *g, const char *image, bool writable);
/*
 * A Linux guest's system files: the INFs' 11,lxss\lib files into
 * /usr/lib/wsl/lib, the host's WSL libraries, a DKMS tree, and the loader
 * configuration and first-boot unit; entries already in place are left
 * out, *changed set when any is not.
 */
int	plan_linux(struct guest *g, const struct pkg_set *set,
	    const bool *restage, struct copy_plan **out, size_t *nout,
	    bool *changed);
/* Whether a system-file record is still wanted: its package is staged,
 * or it is gpupv-prep's own (package "") and some package is. */
bool	copy_wanted(struct manifest *m, const struct man_copy *c);
/* Re-arm the first-boot unit after a change (on), or take it away with
 * its status (off: nothing is staged any more). */
int	linux_arm(struct guest *g, bool on);
/* After a DKMS tree's file went: its folders, as they empty. */
int	prune_src_dirs(struct guest *g, const char *dest);
/*
 * Read, before the first write, every folder and entry the run may touch
 * (libext2fs finds a damaged block or inode only when it reads it): damage
 * there is then a refusal that leaves the image byte-identical.
 */
int	linux_preflight(struct guest *g);
/* An entry gpupv-prep did not place is never replaced: EEXIST. */
int	linux_not_ours(struct guest *g, const char *dest);

/* stage-guest.c */
int	guest_commit(struct guest *g);
int	write_manifest(struct guest *g);

/* stage-pkg.c */
int	remove_package(struct guest *g, const struct man_pkg *mp, bool force);
void	manifest_drop(struct manifest *m, const char *name);
void	manifest_add(struct manifest *m, const struct pkg *p);
int	repair_package(struct guest *g, const struct pkg *p, const bool *bad,
	    struct stage_report *r);
void	bad_free(bool **bad, size_t n);
struct hash_run;
int	stage_package(struct guest *g, struct pkg *p,
	    const struct stage_opts *o, struct stage_report *r,
	    uint64_t nfiles, uint64_t total, struct hash_run *h);

/*
 * stage-plan.c: one stage run as it goes (stage.c tells its story: plan,
 * room, apply, commit): the guest, what the run will do, and the room it
 * needs.
 */
struct run {
	const char *image;
	const struct stage_opts *o;
	struct pkg_set *set;
	struct stage_report *r;
	struct guest g;
	struct guest_reg gr;
	struct copy_plan *plan;		/* files outside the store */
	size_t nplan;
	bool short_names;		/* the volume keeps 8.3 aliases */
	uint64_t nfiles, total;		/* of the packages to copy */
	uint64_t need_pkgs, need_copies, need_hives, need_meta;
	bool *restage;			/* per package of the set: copied in
					   (staged or replaced) */
	bool hashing;			/* hash_start was called */
	bool **bad;			/* --repair: the files to write again */
	struct hash_run h;
};
int	plan_packages(struct run *x);
struct stage_item *add_removal(struct stage_report *r,
	    const struct man_pkg *q);
int	plan_system(struct run *x);
int	check_space(struct run *x);

#endif
