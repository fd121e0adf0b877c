/*
 * blk.c - the image layer's front: probing, opening with the right driver,
 * bounds checks, and the differencing chain.
 */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/falloc.h>

#include "blk.h"

static const struct blk_driver *const drivers[] = {
	&blk_vhdx_driver,
	&blk_vhd_driver,
	&blk_raw_driver,
	&blk_vhdi_driver,		/* only when asked for by name */
};

#define PROBE_HEAD (64 * 1024)
#define WRITEBACK_STEP (16u * 1024 * 1024)

static gp_image *image_open(const char *path, const struct gp_open_opts *opts,
	    unsigned depth);

int
blk_file_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	if (off > img->file_size || len > img->file_size - off) {
		error_setc(GP_EXIT_CORRUPT, EIO,
		    "%s: read of %zu bytes at offset %llu lies past the end "
		    "of the file (%llu bytes); the file is truncated or corrupt",
		    img->path, len, (unsigned long long)off,
		    (unsigned long long)img->file_size);
		return -1;
	}
	if (img->cow)
		return blk_cow_read(img, buf, len, off);
	if (file_pread(img->fd, buf, len, off) < 0) {
		error_set(errno, "%s: read at offset %llu: %s", img->path,
		    (unsigned long long)off, strerror(errno));
		return -1;
	}
	return 0;
}

int
blk_file_write_raw(gp_image *img, const void *buf, size_t len, uint64_t off)
{
	if (!BLK_FILE_WRITABLE(img)) {
		error_set(EBADF, "%s: image is open read-only", img->path);
		return -1;
	}
	if (file_pwrite(img->fd, buf, len, off) < 0) {
		int e = errno;

		error_set(e, "%s: write at offset %llu: %s%s", img->path,
		    (unsigned long long)off, strerror(e),
		    e == ENOSPC || e == EFBIG ? " (host file system full or "
		    "file size limit reached; the image keeps its old state)" :
		    "");
		return -1;
	}
	if (off + len > img->phys_size)
		img->phys_size = off + len;
	if (off + len > img->file_size)
		img->file_size = off + len;
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start writeback as a large copy goes (without waiting for it), so
	 * the flush at commit finds little left to write instead of
	 * everything the kernel would otherwise hold back. */
	img->unflushed += len;
	if (img->unflushed >= WRITEBACK_STEP) {
		(void)sync_file_range(img->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		img->unflushed = 0;
	}
#endif
	return 0;
}

int
blk_file_write(gp_image *img, const void *buf, size_t len, uint64_t off)
{
	if (!(img->flags & GP_OPEN_RDWR)) {
		error_set(EBADF, "%s: image is open read-only", img->path);
		return -1;
	}
	if (img->cow)
		return blk_cow_write(img, buf, len, off, false);
	return blk_file_write_raw(img, buf, len, off);
}

int
blk_data_write(gp_image *img, const void *buf, size_t len, uint64_t off)
{
	if (!(img->flags & GP_OPEN_RDWR)) {
		error_set(EBADF, "%s: image is open read-only", img->path);
		return -1;
	}
	if (img->cow)
		return blk_cow_write(img, buf, len, off, img->unreferenced);
	return blk_file_write_raw(img, buf, len, off);
}

int
blk_file_sync(gp_image *img)
{
	if (!BLK_FILE_WRITABLE(img))
		return 0;
	if (fdatasync(img->fd) < 0) {
		error_set(errno, "%s: flush: %s", img->path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Set the file's size.  In a dry run the change stays in the session's
 * view; otherwise growing is safe (the old state never reads past its own
 * end) and happens at once.
 */
int
blk_file_truncate(gp_image *img, uint64_t size)
{
	if (img->cow && !blk_cow_may_write(img)) {
		img->file_size = size;
		return 0;
	}
	if (size == img->phys_size) {
		img->file_size = size;
		return 0;
	}
	if (img->cow && blk_cow_prepare_direct(img) < 0)
		return -1;
	if (ftruncate(img->fd, (off_t)size) < 0) {
		int e = errno;

		error_set(e, "%s: cannot resize the file to %llu bytes: %s%s",
		    img->path, (unsigned long long)size, strerror(e),
		    e == ENOSPC || e == EFBIG ? " (host file system full)" : "");
		return -1;
	}
	img->file_size = img->phys_size = size;
	return 0;
}

int
blk_file_punch(gp_image *img, uint64_t off, uint64_t len)
{
	uint64_t a = (off + 4095) / 4096 * 4096, b = (off + len) / 4096 * 4096;

	if (!BLK_FILE_WRITABLE(img) || b <= a)
		return 0;
	if (b > img->phys_size)
		b = img->phys_size / 4096 * 4096;
	if (b <= a)
		return 0;
	if (fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)a, (off_t)(b - a)) < 0 && errno != EOPNOTSUPP) {
		error_set(errno, "%s: cannot punch a hole at %llu: %s",
		    img->path, (unsigned long long)a, strerror(errno));
		return -1;
	}
	return 0;
}

int
blk_file_move(gp_image *img, uint64_t from, uint64_t to, uint64_t len)
{
	const size_t chunk = 1024 * 1024;
	uint8_t *buf = xmalloc(chunk);
	bool was = img->unreferenced;
	int ret = -1;

	img->unreferenced = true;
	while (len) {
		size_t n = (size_t)MIN((uint64_t)chunk, len);

		if (blk_file_read(img, buf, n, from) < 0 ||
		    blk_data_write(img, buf, n, to) < 0)
			goto out;
		from += n;
		to += n;
		len -= n;
	}
	ret = 0;
out:
	img->unreferenced = was;
	free(buf);
	return ret;
}

static int
ext_cmp(const void *a, const void *b)
{
	const struct blk_extent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

void
blk_pack_plan(struct blk_extent *v, size_t n, uint64_t align)
{
	struct { uint64_t start, end; } *gap;
	size_t ng = 0, lo = 0, i, g;
	uint64_t pos = 0;

	qsort(v, n, sizeof(*v), ext_cmp);
	gap = xmalloc((n + 1) * sizeof(*gap));
	for (i = 0; i < n; i++) {
		v[i].to = v[i].off;
		pos = (pos + align - 1) / align * align;
		if (v[i].off > pos) {
			gap[ng].start = pos;
			gap[ng++].end = v[i].off;
		}
		pos = MAX(pos, v[i].off + v[i].len);
	}
	for (i = n; i-- > 0;) {
		uint64_t need = (v[i].len + align - 1) / align * align;

		if (!v[i].movable)
			continue;
		while (lo < ng && gap[lo].end - gap[lo].start < align)
			lo++;
		for (g = lo; g < ng && gap[g].start < v[i].off; g++) {
			if (gap[g].end - gap[g].start < v[i].len)
				continue;
			v[i].to = gap[g].start;
			gap[g].start += MIN(need, gap[g].end - gap[g].start);
			break;
		}
	}
	free(gap);
}

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

static bool
bitmap_bit(const uint8_t *b, uint64_t s, bool msb_first)
{
	return b[s / 8] >> (msb_first ? 7 - s % 8 : s % 8) & 1;
}

uint64_t
blk_bitmap_run(const uint8_t *bitmap, uint64_t s, uint64_t max,
    bool msb_first, bool *set)
{
	uint64_t n = 1;

	*set = bitmap_bit(bitmap, s, msb_first);
	while (n < max && bitmap_bit(bitmap, s + n, msb_first) == *set)
		n++;
	return n;
}

int
blk_parent_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	if (!img->parent && (img->flags & GP_OPEN_NO_PARENT)) {
		error_setc(GP_EXIT_PARENT, ENOENT, "%s: opened without its "
		    "parent; this part of the disk is the parent's", img->path);
		return -1;
	}
	if (!img->parent) {
		memset(buf, 0, len);
		return 0;
	}
	/* A parent smaller than the child reads as zeros past its end. */
	if (off >= img->parent->info.virtual_size) {
		memset(buf, 0, len);
		return 0;
	}
	if (len > img->parent->info.virtual_size - off) {
		size_t in = (size_t)(img->parent->info.virtual_size - off);

		memset((uint8_t *)buf + in, 0, len - in);
		len = in;
	}
	return img->parent->drv->read(img->parent, buf, len, off);
}

int
blk_open_parent(gp_image *img, const char *const *candidates,
    size_t ncandidates, int (*check)(gp_image *child, gp_image *parent))
{
	struct gp_open_opts po = { .flags = GP_OPEN_RDONLY };
	struct stat st_child, st_par;
	gp_image *par;
	size_t i;

	if (img->flags & GP_OPEN_NO_PARENT)
		return 0;

	if (img->depth + 1 >= BLK_MAX_CHAIN) {
		error_setc(GP_EXIT_PARENT, ELOOP,
		    "%s: differencing chain deeper than %d images (a loop?)",
		    img->path, BLK_MAX_CHAIN);
		return -1;
	}
	if (fstat(img->fd, &st_child) < 0)
		return -1;
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
		if (check && check(img, par) < 0) {
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

int
gp_image_get_info(const gp_image *img, struct gp_image_info *info)
{
	*info = img->info;
	return 0;
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
			if (stat(t, &st) == 0 && st.st_dev == self.st_dev &&
			    st.st_ino == self.st_ino) {
				fn(ctx, c);
				n++;
			}
			free(t);
			free(hint);
		}
		if (img)
			gp_image_close(img);
		error_end(&err);
		free(c);
	}
	closedir(d);
	free(dir);
	return n;
}

const gp_image *
gp_image_parent(const gp_image *img)
{
	return img->parent;
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
gp_image_read(gp_image *img, void *buf, size_t len, uint64_t off)
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
	if (!img->drv->write) {
		error_set(EOPNOTSUPP, "%s: writing to %s %s images is not "
		    "supported", img->path, img->info.subformat ?
		    img->info.subformat : "", img->drv->name);
		return -1;
	}
	return img->drv->write(img, buf, len, off);
}

int
gp_image_block_status(gp_image *img, uint64_t off, uint64_t len,
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
gp_image_allocated(gp_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
	gp_image *lvl;
	uint64_t lim = len, p;
	int r;

	for (lvl = img; lvl; lvl = lvl->parent) {
		r = gp_image_block_status(lvl, off, lim, &p);
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
	if (!img->cow && gp_image_flush(img) < 0)
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

int
gp_image_create(const char *path, const struct gp_create_opts *o)
{
	const char *fmt = o->format ? o->format : "vhdx";
	int ret = -1;

	if (o->parent) {
		struct blk_vhdx_new n = { 0 };
		char guid[39], *dir = path_dirname(path), *abs = NULL, *rel;
		const gp_image *par = o->parent;

		if (blk_vhdx_data_write_guid(par, guid) < 0) {
			free(dir);
			return -1;
		}
		/* Lower case: Windows reads either, libvhdi only this. */
		for (char *c = guid; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		abs = realpath(par->path, NULL);
		rel = abs ? relative_to(dir, abs) : NULL;
		if (!rel) {
			error_set(errno, "%s: cannot name the parent %s relative "
			    "to it: %s", path, par->path, strerror(errno));
			free(dir);
			free(abs);
			return -1;
		}
		/* A host path is no Windows path: the absolute one is
		 * recorded only when the caller says where the parent will
		 * be. */
		free(abs);
		abs = o->parent_windows_path ?
		    xstrdup(o->parent_windows_path) : NULL;
		n.vsize = par->info.virtual_size;
		n.block_size = o->block_size ? o->block_size :
		    par->info.block_size ? par->info.block_size : 0;
		n.lss = par->info.logical_sector_size;
		n.pss = par->info.physical_sector_size;
		n.parent_linkage = guid;
		n.parent_relative = rel;
		n.parent_absolute = abs;
		ret = blk_vhdx_create(path, &n);
		free(rel);
		free(abs);
		free(dir);
		return ret;
	}
	if (strcmp(fmt, "vhdx") == 0 || strcmp(fmt, "vhdx-fixed") == 0) {
		struct blk_vhdx_new n = { .vsize = o->virtual_size,
		    .block_size = o->block_size,
		    .lss = o->logical_sector_size,
		    .pss = o->physical_sector_size,
		    .fixed = strcmp(fmt, "vhdx-fixed") == 0 };

		return blk_vhdx_create(path, &n);
	}
	if (strcmp(fmt, "vhd") == 0)
		return blk_vhd_create(path, o->virtual_size);
	if (strcmp(fmt, "raw") == 0) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

		if (fd < 0 || ftruncate(fd, (off_t)o->virtual_size) < 0) {
			error_set(errno, "%s: %s", path, strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(path);
			}
			return -1;
		}
		return close(fd);
	}
	error_setc(GP_EXIT_USAGE, EINVAL, "%s: unknown image format '%s' "
	    "(vhdx, vhdx-fixed, vhd or raw)", path, fmt);
	return -1;
}
