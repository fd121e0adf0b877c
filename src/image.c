/*
 * image.c - the public image API (gp_image_* in gpupv-prep.h), in one
 * place: opening (a writable open is a session: txn.c decides what may
 * bypass the overlay of blk-cow.c), reading, writing, committing,
 * aborting, compacting and closing, facts about the image and its chain,
 * and new images.  Below it, blk.c opens files with their drivers.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "blk.h"
#include "txn.h"

int
gp_image_get_info(const gp_image *img, struct gp_image_info *info)
{
	*info = img->info;
	return 0;
}

const gp_image *
gp_image_parent(const gp_image *img)
{
	return img->parent;
}

/* How many entries of a folder gp_image_children looks at. */
#define CHILDREN_MAX_ENTRIES 4096

int
gp_image_children(const char *path, void (*fn)(void *ctx,
    const char *child), void *ctx)
{
	char *dir = path_dirname(path);
	struct stat self, st;
	struct dirent *e;
	unsigned seen = 0;
	int n = 0;
	DIR *d;

	if (stat(path, &self) < 0 || !(d = opendir(dir))) {
		free(dir);
		return 0;
	}
	while ((e = readdir(d)) && seen++ < CHILDREN_MAX_ENTRIES) {
		struct gp_open_opts oo = { .flags = GP_OPEN_NO_PARENT };
		const char *ext = strrchr(e->d_name, '.');
		char *c, *hint, *t;
		gp_image *img;
		struct gp_error err;
		bool child = false;

		if (!ext || (strcasecmp(ext, ".avhdx") && strcasecmp(ext, ".vhdx") &&
		    strcasecmp(ext, ".vhd") && strcasecmp(ext, ".avhd")))
			continue;
		c = path_join(dir, e->d_name);
		if (stat(c, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (st.st_dev == self.st_dev && st.st_ino == self.st_ino)) {
			free(c);
			continue;
		}
		/* A file that does not open is not a child of ours; why
		 * it does not is no one's error. */
		error_try(&err);
		img = gp_image_open(c, &oo);
		if (img && img->parent_hint) {
			/* The name it gives, relative to its folder, or the
			 * last part of an absolute one. */
			hint = xstrdup(img->parent_hint);
			for (t = hint; *t; t++)
				if (*t == '\\')
					*t = '/';
			t = path_join(dir, hint[0] == '.' && hint[1] == '/' ?
			    hint + 2 : hint);
			if (stat(t, &st) < 0 || st.st_dev != self.st_dev ||
			    st.st_ino != self.st_ino) {
				free(t);
				t = path_join(dir, path_basename(hint));
			}
			child = stat(t, &st) == 0 &&
			    st.st_dev == self.st_dev && st.st_ino == self.st_ino;
			free(t);
			free(hint);
		}
		if (img)
			gp_image_close(img);
		error_end(&err);
		/* Outside the scope: what fn records is its caller's. */
		if (child) {
			fn(ctx, c);
			n++;
		}
		free(c);
	}
	closedir(d);
	free(dir);
	return n;
}

int
gp_image_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	return blk_read(img, buf, len, off);
}

int
gp_image_block_status(gp_image *img, uint64_t off, uint64_t len,
    uint64_t *pnum)
{
	return blk_block_status(img, off, len, pnum);
}

int
gp_image_allocated(gp_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
	gp_image *lvl;
	uint64_t lim = len, p;
	int r;

	for (lvl = img; lvl; lvl = lvl->parent) {
		r = blk_block_status(lvl, off, lim, &p);
		if (r != 0) {
			*pnum = p;
			return r;
		}
		lim = p;
	}
	*pnum = lim;
	return 0;
}

int
gp_image_flush(gp_image *img)
{
	return blk_flush(img);
}

int
gp_image_create(const char *path, const struct gp_create_opts *o)
{
	return blk_create(path, o);
}

gp_image *
gp_image_open(const char *path, const struct gp_open_opts *opts)
{
	struct gp_open_opts o = { 0 };
	gp_image *img;

	if (opts)
		o = *opts;
	if (o.flags & GP_OPEN_DRY_RUN)
		o.flags |= GP_OPEN_RDWR;
	img = blk_open(path, &o);
	if (!img || !(o.flags & GP_OPEN_RDWR))
		return img;
	img->txn = xcalloc(1, sizeof(*img->txn));
	img->txn->dry_run = o.flags & GP_OPEN_DRY_RUN;
	blk_cow_begin(img, img->txn->dry_run);
	return img;
}

int
gp_image_set_unused_map(gp_image *img, uint64_t start, uint64_t unit,
    uint64_t units)
{
	if (img->txn)
		txn_set_map(img->txn, start, unit,
		    start > img->info.virtual_size ? 0 : units);
	return 0;
}

int
gp_image_map_used(gp_image *img, uint64_t first, const uint8_t *in_use,
    uint64_t n)
{
	txn_map_used(img->txn, first, in_use, n);
	return 0;
}



int
gp_image_write(gp_image *img, const void *vbuf, size_t len, uint64_t off)
{
	const uint8_t *buf = vbuf;
	struct txn *t = img->txn;
	int r;

	if (t && t->dead) {
		error_set(EBADF, "%s: the session was aborted", img->path);
		return -1;
	}
	if (!t || !t->chunk)
		return blk_write(img, buf, len, off);
	while (len) {
		bool unused;
		size_t n = txn_run(t, off, len, &unused);

		img->unreferenced = unused;
		r = blk_write(img, buf, n, off);
		img->unreferenced = false;
		if (r < 0)
			return -1;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

bool
gp_image_dry_run(const gp_image *img)
{
	return img->txn && img->txn->dry_run;
}

uint64_t
gp_image_pending(const gp_image *img)
{
	return (uint64_t)blk_cow_count(img) * BLK_COW_PAGE;
}

int
gp_image_commit(gp_image *img)
{
	struct txn *t = img->txn;
	double t0;
	int r;

	if (!t)
		return blk_flush(img);
	if (t->dead) {
		error_set(EBADF, "%s: the session was aborted", img->path);
		return -1;
	}
	/* Moves the driver's pending metadata (BAT pages) into the overlay. */
	if (img->drv->flush && img->drv->flush(img) < 0)
		return -1;
	/* A dry run fails where the real run would. */
	if (t->dry_run)
		return blk_cow_check_limit(img);
	if (!blk_cow_count(img) && !blk_cow_direct_used(img))
		return 0;
	fault_point("commit");
	t0 = mono_ms();
	r = img->drv->commit ? img->drv->commit(img) : blk_journal_commit(img);
	debug("%s: committed %zu held pages in %.1f ms", img->path,
	    blk_cow_count(img), mono_ms() - t0);
	if (r < 0) {
		/* Before the commit point nothing of the change is visible;
		 * after it the next open completes it.  Either way this
		 * session's view is no longer the file's. */
		t->dead = true;
		return -1;
	}
	blk_cow_reset(img);
	/* What the session allocated is in use now. */
	txn_map_drop(t);
	return 0;
}

int
gp_image_discard(gp_image *img, uint64_t off, uint64_t len)
{
	if (!img->txn || img->txn->dead) {
		error_set(EBADF, "%s: not open for writing", img->path);
		return -1;
	}
	if (off >= img->info.virtual_size || !len)
		return 0;
	len = MIN(len, img->info.virtual_size - off);
	if (img->drv->discard)
		return img->drv->discard(img, off, len);
	return blk_file_punch(img, off, len);
}

int
gp_image_compact(gp_image *img)
{
	if (gp_image_commit(img) < 0)
		return -1;
	if (img->txn && img->txn->dry_run)
		return 0;
	fault_point("compact-discarded");
	if (img->drv->pack && (img->drv->pack(img) < 0 ||
	    gp_image_commit(img) < 0))
		return -1;
	fault_point("compact-packed");
	if (img->drv->trim && img->drv->trim(img) < 0)
		return -1;
	return 0;
}

int
gp_image_abort(gp_image *img)
{
	struct txn *t = img->txn;
	uint64_t base;

	if (!t || t->dead)
		return 0;
	base = blk_cow_base_size(img);
	t->dead = true;
	blk_cow_end(img);
	/* Give back the space the session appended (new blocks). */
	if (img->phys_size > base && !t->dry_run &&
	    ftruncate(img->fd, (off_t)base) == 0) {
		img->phys_size = img->file_size = base;
		fdatasync(img->fd);
	}
	return 0;
}

int
gp_image_close(gp_image *img)
{
	if (!img)
		return 0;
	struct txn *t = img->txn;
	int ret;

	if (t) {
		gp_image_abort(img);
		/* Nothing of an aborted session may reach the file. */
		img->flags &= ~(unsigned)GP_OPEN_RDWR;
	}
	ret = blk_close(img);
	if (t) {
		txn_map_drop(t);
		free(t);
	}
	return ret;
}
