/*
 * inspect.h - what inspect found in an image, for its report
 * (report-inspect.c): the packages of the guest's HostDriverStore.
 */
#ifndef GPUPV_INSPECT_H
#define GPUPV_INSPECT_H

#include "cli.h"

struct hds_pkg {
	char *name;
	uint64_t files;
	uint64_t bytes;
	char *driver_ver;		/* of its INF, or NULL */
	char *wddm;
	const char *role;		/* from the manifest (a bundle's) */
	char *gpu;			/* its GPU, from the manifest */
};

struct pkgs {
	struct hds_pkg *v;
	size_t n;
	const char *root;		/* HDS_PATH or WSL_DRIVERS */
};

struct json;
/* The image alone (also for a differencing image without its parent). */
void	inspect_json_image(struct json *j, const struct gp_image_info *info,
	    const gp_image *img);
void	inspect_human_image(const struct gp_image_info *info,
	    const gp_image *img);
/* The whole report: the image, its partitions, the guest and its
 * packages (lx: a Linux guest, or NULL). */
void	inspect_print_json(const struct gp_image_info *info,
	    const gp_image *img, const struct gp_partition_table *pt,
	    const struct gp_windows *w, bool have_windows,
	    const struct gp_linux *lx, const struct pkgs *pk);
void	inspect_print_human(const struct gp_image_info *info,
	    const gp_image *img, const struct gp_partition_table *pt,
	    const struct gp_windows *w, bool have_windows,
	    const struct gp_linux *lx, const struct pkgs *pk);

#endif
