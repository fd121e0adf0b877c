/*
 * blk.c - the image layer's core under the public API (image.c): the
 * driver table, probing, opening a file with its driver and building the
 * differencing chain the driver asks for, bounds-checked I/O through the
 * table, closing, and new images by the driver of their format.  Drivers
 * are reached only through their table; they reach nothing here.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "blk.h"

static const struct blk_driver *const drivers[] = {
	&blk_vhdx_driver,
	&blk_vhd_driver,
	&blk_raw_driver,
	&blk_vhdi_driver,		/* only when asked for by name */
};

#define PROBE_HEAD (64 * 1024)

static gp_image *image_open(const char *path, const struct gp_open_opts *opts,
	    unsigned depth);

/*
 * Lock the image for the session with an open file description lock:
 * exclusive for writers, shared for readers.  QEMU takes shared OFD locks
 * on single bytes of the images it has open, so a writer here conflicts
 * with a running VM, and QEMU in turn refuses an image we are writing.
 */
static int
lock_image(gp_image *img)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = BLK_FILE_WRITABLE(img) ? F_WRLCK : F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;			/* the whole file */
	if (fcntl(img->fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES) {
		error_setc(GP_EXIT_BUSY, EBUSY, "%s: image is in use by another "
		    "process (a running VM, qemu, or another gpupv-prep)%s",
		    img->path, BLK_FILE_WRITABLE(img) ?
		    "; nothing was written" : "");
		return -1;
	}
	/* File systems without locking (some network mounts): go on. */
	debug("%s: cannot lock: %s", img->path, strerror(errno));
	return 0;
}

static bool
seen_before(const char *const *c, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (c[j] && strcmp(c[j], c[i]) == 0)
			return true;
	return false;
}

/*
 * Open the parent a differencing driver asked for (its candidates, in
 * order) and let the driver check it is the one the child was made
 * from.  The drivers never open images themselves: the chain is built
 * here, one level at a time.
 */
static int
open_parent(gp_image *img)
{
	const char *const *candidates = (const char *const *)img->parent_cand;
	size_t ncandidates = img->nparent_cand, i;
	struct gp_open_opts po = { .flags = GP_OPEN_RDONLY };
	struct stat st_child, st_par;
	gp_image *par;

	if (img->flags & GP_OPEN_NO_PARENT)
		return 0;
	if (img->depth + 1 >= BLK_MAX_CHAIN) {
		error_setc(GP_EXIT_PARENT, ELOOP,
		    "%s: differencing chain deeper than %d images (a loop?)",
		    img->path, BLK_MAX_CHAIN);
		return -1;
	}
	if (fstat(img->fd, &st_child) < 0) {
		error_set(errno, "%s: %s", img->path, strerror(errno));
		return -1;
	}
	for (i = 0; i < ncandidates; i++) {
		const char *c = candidates[i];

		if (!c || !*c)
			continue;
		if (stat(c, &st_par) < 0) {
			debug("%s: parent candidate %s: %s", img->path, c,
			    strerror(errno));
			continue;
		}
		if (st_par.st_dev == st_child.st_dev &&
		    st_par.st_ino == st_child.st_ino) {
			error_setc(GP_EXIT_PARENT, ELOOP,
			    "%s: names itself as its parent", img->path);
			return -1;
		}
		par = image_open(c, &po, img->depth + 1);
		if (!par) {
			error_prefix("%s: parent", img->path);
			return -1;
		}
		if (img->drv->parent_check &&
		    img->drv->parent_check(img, par) < 0) {
			blk_close(par);
			return -1;
		}
		img->parent = par;
		img->parent_path = xstrdup(c);
		img->info.parent = img->parent_path;
		return 0;
	}
	{
		char tried[600] = "";
		size_t used = 0;

		for (i = 0; i < ncandidates && used < sizeof(tried) - 1; i++)
			if (candidates[i] && *candidates[i] &&
			    !seen_before(candidates, i))
				used += (size_t)snprintf(tried + used,
				    sizeof(tried) - used, "%s%s",
				    used ? ", " : "", candidates[i]);
		error_setc(GP_EXIT_PARENT, ENOENT,
		    "%s: parent image not found: the file names %s; looked "
		    "for %s; give it with --parent FILE", img->path,
		    img->parent_hint ? img->parent_hint : "no parent path",
		    used ? tried : "nothing usable");
	}
	return -1;
}

static void
parent_cand_free(gp_image *img)
{
	size_t i;

	for (i = 0; i < img->nparent_cand; i++)
		free(img->parent_cand[i]);
	img->nparent_cand = 0;
}

static const struct blk_driver *
probe(gp_image *img, const char *force)
{
	uint8_t *head, tail[512];
	size_t headlen;
	const struct blk_driver *best = NULL;
	int score, best_score = 0;
	size_t i;

	if (force) {
		for (i = 0; i < ARRAY_SIZE(drivers); i++)
			if (strcmp(drivers[i]->name, force) == 0)
				return drivers[i];
		error_setc(GP_EXIT_USAGE, EINVAL, "unknown image format '%s'",
		    force);
		return NULL;
	}
	headlen = (size_t)MIN(img->file_size, (uint64_t)PROBE_HEAD);
	head = xmalloc(PROBE_HEAD);
	memset(tail, 0, sizeof(tail));
	if (headlen && blk_file_read(img, head, headlen, 0) < 0)
		goto out;
	if (img->file_size >= 512 &&
	    blk_file_read(img, tail, 512, img->file_size - 512) < 0)
		goto out;
	for (i = 0; i < ARRAY_SIZE(drivers); i++) {
		score = drivers[i]->probe(head, headlen, tail, img->file_size);
		if (score > best_score) {
			best_score = score;
			best = drivers[i];
		}
	}
out:
	free(head);
	return best;
}

static gp_image *
image_open(const char *path, const struct gp_open_opts *opts, unsigned depth)
{
	gp_image *img = xcalloc(1, sizeof(*img));
	struct stat st;
	bool opened = false;

	img->path = xstrdup(path);
	img->flags = opts->flags;
	img->depth = depth;
	img->fd = -1;
	if ((img->flags & GP_OPEN_NO_PARENT) &&
	    (img->flags & (GP_OPEN_RDWR | GP_OPEN_DRY_RUN))) {
		error_set(EINVAL, "%s: an image opened without its parent "
		    "cannot be written", path);
		goto fail;
	}
	/* O_NONBLOCK: a FIFO (or a parent locator naming one) must not hang
	 * the open; it is refused below, and the flag cleared for files. */
	img->fd = open(path, (BLK_FILE_WRITABLE(img) ? O_RDWR : O_RDONLY) |
	    O_CLOEXEC | O_NONBLOCK);
	if (img->fd < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(img->fd, &st) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		error_set(EISDIR, "%s: is a directory, not a disk image", path);
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(img->fd, 0, SEEK_END);

		if (end < 0) {
			error_set(errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
		img->file_size = img->phys_size = (uint64_t)end;
	} else if (S_ISREG(st.st_mode)) {
		img->file_size = img->phys_size = (uint64_t)st.st_size;
	} else {
		error_set(EINVAL, "%s: not a regular file or block device (a "
		    "FIFO, socket or character device is no disk image)", path);
		goto fail;
	}
	if (fcntl(img->fd, F_SETFL, fcntl(img->fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (lock_image(img) < 0)
		goto fail;
	/* An interrupted commit is finished before anything reads the file. */
	if (blk_journal_recover(img) < 0)
		goto fail;
	img->drv = probe(img, opts->format);
	if (!img->drv)
		goto fail;
	img->info.path = img->path;
	img->info.format = img->drv->name;
	img->info.file_size = img->file_size;
	if (img->drv->open(img, opts) < 0)
		goto fail;
	opened = true;
	if (img->wants_parent && open_parent(img) < 0)
		goto fail;
	parent_cand_free(img);
	img->info.file_size = img->file_size;
	img->info.parent_hint = img->parent_hint;
	img->info.journal_replayed = img->journal_replayed;
	debug("%s: opened as %s%s%s, %llu bytes virtual", path, img->drv->name,
	    img->info.subformat ? " " : "",
	    img->info.subformat ? img->info.subformat : "",
	    (unsigned long long)img->info.virtual_size);
	return img;
fail:
	/* A driver's open frees its own state when it fails. */
	if (opened)
		img->drv->close(img);
	parent_cand_free(img);
	if (img->parent)
		blk_close(img->parent);
	blk_cow_end(img);
	if (img->fd >= 0)
		close(img->fd);
	free(img->parent_path);
	free(img->parent_hint);
	free(img->path);
	free(img);
	return NULL;
}

gp_image *
blk_open(const char *path, const struct gp_open_opts *opts)
{
	struct gp_open_opts def = { 0 };

	return image_open(path, opts ? opts : &def, 0);
}

static int
check_range(gp_image *img, size_t len, uint64_t off)
{
	if (off > img->info.virtual_size ||
	    len > img->info.virtual_size - off) {
		error_set(EINVAL, "%s: I/O of %zu bytes at offset %llu lies "
		    "outside the virtual disk (%llu bytes)", img->path, len,
		    (unsigned long long)off,
		    (unsigned long long)img->info.virtual_size);
		return -1;
	}
	return 0;
}

int
blk_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	if (check_range(img, len, off) < 0)
		return -1;
	if (!len)
		return 0;
	return img->drv->read(img, buf, len, off);
}

int
blk_write(gp_image *img, const void *buf, size_t len, uint64_t off)
{
	if (!(img->flags & GP_OPEN_RDWR)) {
		error_set(EBADF, "%s: image is open read-only", img->path);
		return -1;
	}
	if (check_range(img, len, off) < 0)
		return -1;
	if (!len)
		return 0;
	/* Writes happen in a session (image.c): the overlay decides what
	 * reaches the file, and tells the driver before the first byte
	 * does (begin_direct).  Drivers never ask. */
	if (!img->cow) {
		error_set(EBADF, "%s: not in a session", img->path);
		return -1;
	}
	if (!img->drv->write) {
		error_set(EOPNOTSUPP, "%s: writing to %s %s images is not "
		    "supported", img->path, img->info.subformat ?
		    img->info.subformat : "", img->drv->name);
		return -1;
	}
	return img->drv->write(img, buf, len, off);
}

int
blk_block_status(gp_image *img, uint64_t off, uint64_t len,
    uint64_t *pnum)
{
	int r;

	if (off >= img->info.virtual_size || !len) {
		*pnum = 0;
		return 0;
	}
	len = MIN(len, img->info.virtual_size - off);
	if (!img->drv->block_status) {
		*pnum = len;
		return 1;
	}
	r = img->drv->block_status(img, off, len, pnum);
	if (r >= 0 && (*pnum == 0 || *pnum > len))
		*pnum = len;
	return r;
}

int
blk_flush(gp_image *img)
{
	if (!(img->flags & GP_OPEN_RDWR))
		return 0;
	return img->drv->flush ? img->drv->flush(img) : blk_file_sync(img);
}

int
blk_close(gp_image *img)
{
	int ret = 0;

	if (!img)
		return 0;
	if (!img->cow && blk_flush(img) < 0)
		ret = -1;
	blk_cow_end(img);
	img->drv->close(img);
	if (img->parent)
		blk_close(img->parent);
	if (close(img->fd) < 0 && ret == 0) {
		error_set(errno, "%s: close: %s", img->path, strerror(errno));
		ret = -1;
	}
	free(img->parent_path);
	free(img->parent_hint);
	free(img->path);
	free(img);
	return ret;
}

/* ---- new images ----------------------------------------------------- */

/* The parent as a path relative to the child's folder, '\\'-separated
 * (".\\base.vhdx", "..\\golden\\base.vhdx"), as Hyper-V writes it. */
static char *
relative_to(const char *child_dir, const char *target)
{
	char *a = realpath(child_dir, NULL), *out, *p;
	const char *b = target, *ra, *rb;
	size_t common = 0, i, ups = 0, len;

	if (!a)
		return NULL;
	for (i = 0; a[i] && a[i] == b[i]; i++)
		if (a[i] == '/')
			common = i;
	if (!a[i] && b[i] == '/')
		common = i;
	ra = a + common;
	rb = b + common + 1;
	if (strcmp(a, "/") == 0) {
		ra = "";
		rb = b + 1;
	}
	for (p = (char *)ra; *p; p++)
		if (*p == '/')
			ups++;
	len = 3 * ups + strlen(rb) + 3;
	out = xmalloc(len);
	out[0] = '\0';
	if (!ups)
		strcat(out, ".\\");
	for (i = 0; i < ups; i++)
		strcat(out, "..\\");
	strcat(out, rb);
	for (p = out; *p; p++)
		if (*p == '/')
			*p = '\\';
	free(a);
	return out;
}

/* The driver a new image of format fmt is made by ("vhdx-fixed": VHDX). */
static const struct blk_driver *
create_driver(const char *fmt, bool *fixed)
{
	char name[16];
	size_t i;

	*fixed = strcmp(fmt, "vhdx-fixed") == 0;
	snprintf(name, sizeof(name), "%s", *fixed ? "vhdx" : fmt);
	for (i = 0; i < ARRAY_SIZE(drivers); i++)
		if (drivers[i]->create && strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

int
blk_create(const char *path, const struct gp_create_opts *o)
{
	const char *fmt = o->format ? o->format : "vhdx";
	const struct blk_driver *drv;
	struct blk_new n = { .vsize = o->virtual_size,
	    .block_size = o->block_size, .lss = o->logical_sector_size,
	    .pss = o->physical_sector_size };
	char guid[39], *dir, *abs, *rel;
	const gp_image *par = o->parent;
	int ret;

	if (!par) {
		drv = create_driver(fmt, &n.fixed);
		if (!drv) {
			error_setc(GP_EXIT_USAGE, EINVAL, "%s: unknown image "
			    "format '%s' (vhdx, vhdx-fixed, vhd or raw)", path,
			    fmt);
			return -1;
		}
		return drv->create(path, &n);
	}
	/* A child of par: the parent's format, linked by the identity its
	 * driver gives (VHDX: DataWriteGuid). */
	drv = par->drv;
	if (!drv->create || !drv->data_write_guid) {
		error_set(EINVAL, "%s: a differencing image needs a VHDX "
		    "parent, not %s", par->path, drv->name);
		return -1;
	}
	if (drv->data_write_guid(par, guid) < 0)
		return -1;
	/* Lower case: Windows reads either, libvhdi only this. */
	for (char *c = guid; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	dir = path_dirname(path);
	abs = realpath(par->path, NULL);
	rel = abs ? relative_to(dir, abs) : NULL;
	if (!rel) {
		error_set(errno, "%s: cannot name the parent %s relative to it: "
		    "%s", path, par->path, strerror(errno));
		free(dir);
		free(abs);
		return -1;
	}
	/* A host path is no Windows path: the absolute one is recorded only
	 * when the caller says where the parent will be. */
	free(abs);
	abs = o->parent_windows_path ? xstrdup(o->parent_windows_path) : NULL;
	n.vsize = par->info.virtual_size;
	n.block_size = o->block_size ? o->block_size : par->info.block_size;
	n.lss = par->info.logical_sector_size;
	n.pss = par->info.physical_sector_size;
	n.parent_linkage = guid;
	n.parent_relative = rel;
	n.parent_absolute = abs;
	ret = drv->create(path, &n);
	free(rel);
	free(abs);
	free(dir);
	return ret;
}
