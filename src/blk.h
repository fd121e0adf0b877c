/*
 * blk.h - image drivers.  Each format (raw, VHD, VHDX) is a table of
 * function pointers that bids on an image by probing its first and last
 * bytes (the highest score wins; raw bids 1 and is the fallback), then
 * reads and writes the virtual disk.  Differencing drivers read through
 * img->parent.
 */
#ifndef GPUPV_BLK_H
#define GPUPV_BLK_H

#include "util.h"

/* Longest differencing chain we follow; deeper means a loop or abuse. */
#define BLK_MAX_CHAIN 32

struct blk_driver {
	const char *name;
	/*
	 * head: first bytes of the file (up to 64 KiB), tail: last 512 bytes
	 * (zeros when the file is shorter).  Returns a score, 0 = not mine.
	 */
	int (*probe)(const uint8_t *head, size_t headlen,
	    const uint8_t tail[512], uint64_t file_size);
	int (*open)(gp_image *img, const struct gp_open_opts *opts);
	/* I/O lies within the virtual size (checked by blk.c). */
	int (*read)(gp_image *img, void *buf, size_t len, uint64_t off);
	int (*write)(gp_image *img, const void *buf, size_t len, uint64_t off);
	int (*flush)(gp_image *img);
	void (*close)(gp_image *img);
};

struct gp_image {
	const struct blk_driver *drv;
	char *path;
	int fd;
	unsigned flags;
	uint64_t file_size;		/* host file size, kept current */
	struct gp_image_info info;	/* filled by the driver's open */
	char *parent_path;		/* resolved, owned */
	char *parent_hint;		/* as named in the file, owned */
	gp_image *parent;
	unsigned depth;			/* position in a chain, 0 = top */
	void *priv;
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_vhd_driver;
extern const struct blk_driver blk_vhdx_driver;

/* Host-file helpers that record an error naming the image. */
int	blk_file_read(gp_image *img, void *buf, size_t len, uint64_t off);
int	blk_file_write(gp_image *img, const void *buf, size_t len, uint64_t off);
int	blk_file_sync(gp_image *img);
int	blk_file_truncate(gp_image *img, uint64_t size);

/*
 * Open the parent of a differencing image.  candidates: paths to try in
 * order (an override first when given); check() validates the opened
 * parent (linkage ids) and records an error when it does not match.
 */
int	blk_open_parent(gp_image *img, const char *const *candidates,
	    size_t ncandidates, int (*check)(gp_image *child, gp_image *parent));

/* Read from the parent, or zeros when there is none. */
int	blk_parent_read(gp_image *img, void *buf, size_t len, uint64_t off);

#endif
