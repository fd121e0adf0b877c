/*
 * blk-file.c - the host file under an image, straight: writes past the
 * overlay (headers, a commit, a session's direct data), flushes and
 * holes; the parent's bytes of a differencing image; and the small
 * algorithms the formats share (a sector bitmap's runs, the plan that
 * packs a file).  It calls nothing of the image layer above it; reads and
 * writes as a session sees the file are blk-cow.c's.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "blk.h"

#define WRITEBACK_STEP (16u * 1024 * 1024)

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

void
blk_want_parent(gp_image *img, const char *path)
{
	img->wants_parent = true;
	if (path && img->nparent_cand < BLK_MAX_PARENT_CAND)
		img->parent_cand[img->nparent_cand++] = xstrdup(path);
}
