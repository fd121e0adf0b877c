/*
 * blk.h - the image layer inside: drivers, the host file under them, the
 * overlay and the journal.  Each format (raw, VHD, VHDX) is a table of
 * function pointers that bids on an image by probing its first and last
 * bytes (the highest score wins; raw bids 1 and is the fallback), then
 * reads and writes the virtual disk.  A differencing driver names its
 * parent's candidates (blk_want_parent); blk.c opens it and the driver
 * checks it (parent_check), and reads go through img->parent.
 *
 * One way down: image.c (the public API) -> blk.c (open, table) ->
 * drivers -> blk-cow.c (the host file as the session sees it, through
 * the overlay) -> blk-file.c (the host file straight).  The overlay calls
 * a driver back only through its table (begin_direct).
 */
#ifndef GPUPV_BLK_H
#define GPUPV_BLK_H

#include "util.h"

/* The host file may change: writable and not a dry run. */
#define BLK_FILE_WRITABLE(img) \
	(((img)->flags & (GP_OPEN_RDWR | GP_OPEN_DRY_RUN)) == GP_OPEN_RDWR)

/* Longest differencing chain we follow; deeper means a loop or abuse. */
#define BLK_MAX_CHAIN 32

struct blk_new;

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
	/* Optional: before the first byte of a session goes to the file. */
	int (*begin_direct)(gp_image *img);
	/*
	 * Optional: make the pages held in the overlay part of the file
	 * atomically (VHDX: through its log).  Without it, txn.c uses the
	 * sidecar journal.
	 */
	int (*commit)(gp_image *img);
	/* Differencing: is parent the image the child was made from?
	 * Records why not. */
	int (*parent_check)(gp_image *child, gp_image *parent);
	/* Optional: make a new, empty image (blk_create). */
	int (*create)(const char *path, const struct blk_new *n);
	/* Optional: the identity a child records of its parent, "{...}"
	 * (VHDX: DataWriteGuid). */
	int (*data_write_guid)(const gp_image *img, char out[39]);
	/*
	 * Optional: whether the file stores virtual bytes [off, off+len)
	 * (1) or not (0, they read from the parent or as zeros), with the
	 * length of the run that has the same answer in *pnum.  Without
	 * it, everything is stored (raw, fixed).
	 */
	int (*block_status)(gp_image *img, uint64_t off, uint64_t len,
	    uint64_t *pnum);
	/*
	 * Optional (compaction): forget the blocks wholly inside [off,
	 * off+len), whose contents do not matter; pack the blocks the file
	 * holds toward its start (data to space no committed structure uses,
	 * table changes through the session); trim the file after a commit
	 * to the last structure it references.  Without discard, the bytes
	 * are punched out of the file at the same offsets (raw, fixed VHD).
	 */
	int (*discard)(gp_image *img, uint64_t off, uint64_t len);
	int (*pack)(gp_image *img);
	int (*trim)(gp_image *img);
};

/* A new, empty image (dynamic, fixed, or differencing with a parent). */
struct blk_new {
	uint64_t vsize;
	uint32_t block_size;		/* 0: the format's default */
	uint32_t lss, pss;		/* 0: 512, 4096 */
	bool fixed;
	const char *creator;
	/* Differencing: the parent's identity "{...}" and its paths. */
	const char *parent_linkage;
	const char *parent_relative;	/* ".\\base.vhdx" */
	const char *parent_absolute;	/* or NULL */
};

#define BLK_MAX_PARENT_CAND 8

struct gp_image {
	const struct blk_driver *drv;
	char *path;
	int fd;
	unsigned flags;
	uint64_t file_size;		/* host file size as the session sees it */
	uint64_t phys_size;		/* host file size on disk */
	struct blk_cow *cow;		/* pending changes, or NULL */
	struct txn *txn;		/* session policy (txn.c), or NULL */
	bool journal_replayed;		/* a sidecar journal was replayed */
	bool unreferenced;		/* the write in progress is to space
					   the old state does not use */
	uint64_t unflushed;		/* written since writeback was started */
	struct gp_image_info info;	/* filled by the driver's open */
	char *parent_path;		/* resolved, owned */
	char *parent_hint;		/* as named in the file, owned */
	gp_image *parent;
	/* What a differencing driver's open asks blk.c to open as parent. */
	bool wants_parent;
	char *parent_cand[BLK_MAX_PARENT_CAND];
	size_t nparent_cand;
	unsigned depth;			/* position in a chain, 0 = top */
	void *priv;
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_vhd_driver;
extern const struct blk_driver blk_vhdx_driver;
extern const struct blk_driver blk_vhdi_driver;

/*
 * Host-file helpers that record an error naming the image.  blk-cow.c's
 * go through the overlay during a session: blk_file_write is for metadata
 * and anything the old state may refer to; blk_data_write is for payload
 * and honours img->unreferenced, the caller's word that the virtual range
 * being written is unused by the old state.  blk-file.c's bypass it:
 * blk_file_write_raw (header updates, commit), sync and punch.
 */
int	blk_file_read(gp_image *img, void *buf, size_t len, uint64_t off);
int	blk_file_write(gp_image *img, const void *buf, size_t len, uint64_t off);
int	blk_data_write(gp_image *img, const void *buf, size_t len, uint64_t off);
int	blk_file_write_raw(gp_image *img, const void *buf, size_t len,
	    uint64_t off);
int	blk_file_sync(gp_image *img);
int	blk_file_truncate(gp_image *img, uint64_t size);
/* Punch [off, off+len) out of the host file (whole 4 KiB pages inside). */
int	blk_file_punch(gp_image *img, uint64_t off, uint64_t len);
/* Copy len bytes of the file from one place to another that no committed
 * structure uses (straight to the file, not through the overlay). */
int	blk_file_move(gp_image *img, uint64_t from, uint64_t to, uint64_t len);

/*
 * Packing a file (compaction): the extents the file holds, which of them
 * may move, and the plan.  blk_pack_plan moves each movable extent, the
 * highest first, to the lowest gap (align-aligned) below it that holds it,
 * and sets to; extents that stay keep to = off.
 */
struct blk_extent {
	uint64_t off, len;
	uint64_t to;
	bool movable;
	uint64_t id;			/* the driver's (a BAT index) */
};
void	blk_pack_plan(struct blk_extent *v, size_t n, uint64_t align);

/* blk-cow.c: the overlay of a session. */
#define BLK_COW_PAGE 4096
/*
 * Pages one commit takes (1 GiB).  The overlay holds metadata only (file
 * data goes to space the old state does not use), about a page for every
 * few files and folders touched, so this is room for millions of them; it
 * bounds what a VHDX log or journal costs to replay.  GPUPV_PREP_COMMIT_
 * LIMIT_MB lowers it (the tests prove payload never goes through it).
 */
#define BLK_MAX_COMMIT_PAGES (256u * 1024)
/* Begin the overlay; one that is there already (what a replay at open
 * put there: a pending journal or VHDX log of a file that cannot change)
 * is the session's own bottom layer and stays. */
int	blk_cow_begin(gp_image *img, bool dry_run);
void	blk_cow_end(gp_image *img);
void	blk_cow_reset(gp_image *img);	/* after a commit: empty, new base */
size_t	blk_cow_count(const gp_image *img);
/* Pages this session would hold at its commit (a dry run counts what a
 * real run would hold), checked against the commit limit: -1 and an
 * error when over it. */
int	blk_cow_check_limit(gp_image *img);
bool	blk_cow_direct_used(const gp_image *img);
uint64_t blk_cow_base_size(const gp_image *img);
int	blk_cow_put(gp_image *img, uint64_t off, const uint8_t *page);
/* Each held page in file order; stops at the first nonzero return. */
int	blk_cow_foreach(gp_image *img, int (*fn)(gp_image *img, uint64_t off,
	    const uint8_t *page, void *arg), void *arg);

/* blk-journal.c: the sidecar journal of raw and VHD images. */
char	*blk_journal_path(const char *image);
int	blk_journal_recover(gp_image *img);	/* at open, before probing */
int	blk_journal_commit(gp_image *img);

/*
 * blk.c, for image.c: open and close a file with its driver (and its
 * parents), I/O checked against the virtual size, new images.
 */
gp_image *blk_open(const char *path, const struct gp_open_opts *opts);
int	blk_close(gp_image *img);
int	blk_read(gp_image *img, void *buf, size_t len, uint64_t off);
int	blk_write(gp_image *img, const void *buf, size_t len, uint64_t off);
int	blk_block_status(gp_image *img, uint64_t off, uint64_t len,
	    uint64_t *pnum);
int	blk_flush(gp_image *img);
int	blk_create(const char *path, const struct gp_create_opts *o);

/* blk-file.c, for a differencing driver's open: one more place its
 * parent may be (an override first when given), tried in order. */
void	blk_want_parent(gp_image *img, const char *path);
/* Read from the parent, or zeros when there is none. */
int	blk_parent_read(gp_image *img, void *buf, size_t len, uint64_t off);

/*
 * A differencing image's sector bitmap: the number of sectors from sector
 * s on (at most max, at least 1) whose bit equals s's, and in *set that
 * bit (set: the sector is in this file).  VHD numbers the bits from the
 * most significant of each byte (msb_first), VHDX from the least.
 */
uint64_t blk_bitmap_run(const uint8_t *bitmap, uint64_t s, uint64_t max,
	    bool msb_first, bool *set);

#endif
