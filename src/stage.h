/*
 * stage.h - the plan and its execution for stage, remove and verify: a
 * guest session (image, Windows volume, HostDriverStore paths, manifest)
 * and what each command does in it.  Nothing here prints.
 */
#ifndef GPUPV_STAGE_H
#define GPUPV_STAGE_H

#include "compact.h"
#include "manifest.h"

struct stage_opts {
	bool dry_run;
	int partition;			/* -1: find Windows */
	const char *parent;
	const char *format;		/* force "raw", "vhd", "vhdx", "vhdi" */
	int short_names;		/* -1 as the volume does, 0, 1 */
	const struct host_cfg *host;	/* sidecar settings to record */
	/* The guest's registry and System32 (stage only): */
	char **reg_files;		/* --reg */
	size_t nreg_files;
	char **copy_keys;		/* --copy-key HIVEFILE:KEY */
	size_t ncopy_keys;
	bool no_rewrite;		/* keep DriverStore paths as given */
	bool all_control_sets;
	const char *inf_section;	/* --inf-section, or a bundle's */
	const char *dkms;		/* --dkms DIR (Linux guests) */
	bool inf_section_soft;		/* a bundle's: INFs without it are
					   read whole */
	int copy_mode;			/* DriverStoreCopyMode, -1 unset */
	int64_t virt_flags;		/* GpuVirtualizationFlags, -1 unset */
	bool disable_fast_startup;
	bool repair;			/* rewrite damaged staged files */
	bool force;			/* delete what the guest added inside
					   a staged folder */
	int driverstore_links;		/* DriverStore junctions: 1 make, -1
					   take away, 0 as they are */
	/* Leave the image untouched and write the result to a new file: */
	const char *output;		/* --output NEW: a full image */
	const char *output_format;	/* vhdx, vhdx-fixed, vhd, raw */
	const char *child;		/* --child NEW: a differencing VHDX */
	const char *parent_path;	/* --parent-path: the parent's Windows
					   path, for the child's locator */
	/* Progress of a long phase ("copying the image", "staging",
	 * "reading back", "verifying", "committing"): files and bytes done
	 * of the totals (0 when not counted). */
	void (*progress)(void *ctx, const char *phase, uint64_t files,
	    uint64_t nfiles, uint64_t bytes, uint64_t total);
	void *pctx;
};

enum stage_action {
	ACT_STAGE,			/* new */
	ACT_REPLACE,			/* staged before with other contents */
	ACT_UNCHANGED,
	ACT_REMOVE,			/* superseded or asked to remove */
	ACT_REPAIR,			/* some files rewritten (--repair) */
};

struct stage_item {
	char *name;
	char *inf;
	char *driver_ver;
	enum stage_action action;
	char *replaces;			/* older package of the same INF */
	const char *role;		/* from a bundle (pkg_roles), or NULL */
	char *gpu;			/* its GPU's instance path, or NULL */
	uint64_t files;
	uint64_t bytes;
	uint64_t repaired;		/* files rewritten (ACT_REPAIR) */
};

/* A System32/SysWOW64 file this run copied (stage) or took away
 * (remove). */
struct stage_sysfile {
	char *dest;			/* guest path */
	char *source;			/* "package\\file"; NULL for remove */
	bool restored;			/* remove: the guest's original is back */
	char *link;			/* Linux: a symbolic link to this */
};

struct stage_report {
	char *image;
	char *repo;			/* FileRepository path in the guest */
	bool linux_guest;		/* an ext2/3/4 Linux root */
	unsigned partition;
	struct stage_item *v;
	size_t n;
	bool changed;			/* something was (or would be) written */
	bool dry_run;
	bool verified;			/* read back and hashes matched */
	uint64_t bytes_written;		/* into FileRepository */
	uint64_t files_written;
	uint64_t free_before;		/* NTFS bytes free when it began */
	uint64_t space_needed;		/* what the run allocates (stage) */
	/* verify: */
	uint64_t files_checked;
	const char *reader;		/* "libvhdi" or "gpupv-prep" */
	uint64_t bad;			/* missing or different files */
	char **problems;
	size_t nproblems;
	struct manifest man;		/* stage: the manifest as it now is */
	/* Registry and System32 work of this run: */
	uint64_t reg_values_set, reg_values_deleted, reg_keys_created,
	    reg_keys_deleted;
	char **hives_written;		/* guest paths */
	size_t nhives_written;
	struct stage_sysfile *sysfiles;
	size_t nsysfiles;
	uint64_t sysfile_bytes;		/* bytes copied into System32/SysWOW64 */
	uint64_t sysfiles_kept;		/* WhenNewer: the guest's was newer */
};

const char *stage_action_name(enum stage_action a);
int	stage_run(const char *image, struct pkg_set *set,
	    const struct stage_opts *o, struct stage_report *r);
/* stage_run into o->output or o->child, leaving image as it is. */
int	stage_derive(const char *image, struct pkg_set *set,
	    const struct stage_opts *o, struct stage_report *r);

/*
 * A new image of in's size and sector sizes at out (never over an existing
 * file), in fmt (vhdx, vhdx-fixed, vhd, raw; NULL: from out's name),
 * holding what in holds except the skip ranges (compaction); built under a
 * temporary name and renamed into place.  Only what the chain holds is
 * read: blocks no file of it stores are not even looked at.
 */
struct derive_copy {
	const struct range *skip;	/* sorted; contents to leave out */
	size_t nskip;
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
};
int	derive_new_image(gp_image *in, const char *out, const char *fmt,
	    const struct derive_copy *dc);
/* Remove the named packages (all staged ones when n == 0). */
int	stage_remove(const char *image, char **names, size_t n,
	    const struct stage_opts *o, struct stage_report *r);
/* Re-read every staged file through libvhdi's view and check hashes. */
int	stage_verify(const char *image, const struct stage_opts *o,
	    struct stage_report *r);
void	stage_report_free(struct stage_report *r);
/* The manifest of a staged image (read-only; ENOENT when none). */
int	stage_manifest(const char *image, const struct stage_opts *o,
	    struct manifest *m);

#endif
