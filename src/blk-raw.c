/*
 * blk-raw.c - raw images: the virtual disk is the file.  Bids lowest, so
 * it is what an image no other driver claims is taken to be.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "blk.h"

static int
raw_probe(const uint8_t *head, size_t headlen, const uint8_t tail[512],
    uint64_t file_size)
{
	return 1;
}

static int
raw_open(gp_image *img, const struct gp_open_opts *opts)
{
	img->info.subformat = NULL;
	img->info.virtual_size = img->file_size;
	img->info.logical_sector_size = 512;
	img->info.physical_sector_size = 512;
	img->info.block_size = 0;
	img->priv = NULL;
	return 0;
}

static int
raw_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	return blk_file_read(img, buf, len, off);
}

static int
raw_write(gp_image *img, const void *buf, size_t len, uint64_t off)
{
	return blk_data_write(img, buf, len, off);
}

static int
raw_flush(gp_image *img)
{
	return blk_file_sync(img);
}

static void
raw_close(gp_image *img)
{
}

/* A sparse file: holes are not stored (SEEK_DATA, SEEK_HOLE). */
static int
raw_block_status(gp_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
	off_t d = lseek(img->fd, (off_t)off, SEEK_DATA), h;

	if (d < 0 && errno == ENXIO) {		/* a hole to the end */
		*pnum = len;
		return 0;
	}
	if (d < 0) {				/* no hole support: stored */
		*pnum = len;
		return 1;
	}
	if ((uint64_t)d > off) {
		*pnum = MIN(len, (uint64_t)d - off);
		return 0;
	}
	h = lseek(img->fd, (off_t)off, SEEK_HOLE);
	*pnum = h < 0 || (uint64_t)h <= off ? len : MIN(len, (uint64_t)h - off);
	return 1;
}

/* A new raw image: a sparse file of the virtual size. */
static int
raw_create(const char *path, const struct blk_new *n)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 || ftruncate(fd, (off_t)n->vsize) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	if (close(fd) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

const struct blk_driver blk_raw_driver = {
	.name = "raw",
	.create = raw_create,
	.block_status = raw_block_status,
	.probe = raw_probe,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.close = raw_close,
};
