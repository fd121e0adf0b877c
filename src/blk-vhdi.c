/*
 * blk-vhdi.c - VHD and VHDX read through libvhdi, a reader we did not
 * write.  `verify` uses it so that what was staged is checked by an
 * independent view of the container; it is never probed, only chosen with
 * format "vhdi".  Read-only.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <libvhdi.h>

#include "blk.h"

struct vhdi {
	libvhdi_file_t *files[BLK_MAX_CHAIN];
	int n;
};

static int
vhdi_fail(gp_image *img, const char *what, libvhdi_error_t *err)
{
	char msg[512] = "";

	if (err) {
		libvhdi_error_sprint(err, msg, sizeof(msg));
		libvhdi_error_free(&err);
	}
	error_setc(GP_EXIT_CORRUPT, EIO, "%s: libvhdi: %s%s%s", img->path, what,
	    *msg ? ": " : "", msg);
	return -1;
}

static int
vhdi_probe(const uint8_t *head, size_t headlen, const uint8_t tail[512],
    uint64_t file_size)
{
	(void)head;
	(void)headlen;
	(void)tail;
	(void)file_size;
	return 0;
}

/* The parent named by f, looked for beside child_path. */
static char *
parent_path(libvhdi_file_t *f, const char *child_path)
{
	size_t sz = 0;
	char *name, *base, *dir, *c, *out;

	if (libvhdi_file_get_utf8_parent_filename_size(f, &sz, NULL) != 1 ||
	    sz == 0 || sz > 4096)
		return NULL;
	name = xmalloc(sz + 1);
	if (libvhdi_file_get_utf8_parent_filename(f, (uint8_t *)name, sz,
	    NULL) != 1) {
		free(name);
		return NULL;
	}
	name[sz] = '\0';
	for (c = name; *c; c++)
		if (*c == '\\')
			*c = '/';
	base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	dir = path_dirname(child_path);
	out = path_join(dir, base);
	free(dir);
	free(name);
	return out;
}

static int
vhdi_open(gp_image *img, const struct gp_open_opts *opts)
{
	struct vhdi *h = xcalloc(1, sizeof(*h));
	libvhdi_error_t *err = NULL;
	size64_t size = 0;
	uint32_t bps = 0;
	char *path = xstrdup(img->path);

	img->priv = h;
	for (;;) {
		libvhdi_file_t *f = NULL;
		int has_parent = 0;
		uint32_t type = 0;

		if (h->n >= BLK_MAX_CHAIN) {
			free(path);
			return vhdi_fail(img, "differencing chain too deep", NULL);
		}
		if (libvhdi_file_initialize(&f, &err) != 1 ||
		    libvhdi_file_open(f, path, LIBVHDI_OPEN_READ, &err) != 1) {
			if (f)
				libvhdi_file_free(&f, NULL);
			vhdi_fail(img, path, err);
			free(path);
			return -1;
		}
		h->files[h->n++] = f;
		if (h->n > 1 && libvhdi_file_set_parent_file(h->files[h->n - 2],
		    f, &err) != 1) {
			free(path);
			return vhdi_fail(img, "linking the parent", err);
		}
		if (libvhdi_file_get_disk_type(f, &type, NULL) == 1 &&
		    type == LIBVHDI_DISK_TYPE_DIFFERENTIAL)
			has_parent = 1;
		if (!has_parent)
			break;
		{
			char *pp = h->n == 1 && opts->parent ?
			    xstrdup(opts->parent) : parent_path(f, path);

			free(path);
			path = pp;
		}
		if (!path)
			return vhdi_fail(img, "parent image not named", NULL);
	}
	free(path);
	if (libvhdi_file_get_media_size(h->files[0], &size, &err) != 1)
		return vhdi_fail(img, "media size", err);
	img->info.virtual_size = size;
	img->info.subformat = "libvhdi";
	/* The image's own sector size: a GPT is found at its LBA 1. */
	if (libvhdi_file_get_bytes_per_sector(h->files[0], &bps, &err) != 1 ||
	    (bps != 512 && bps != 4096))
		return vhdi_fail(img, "sector size", err);
	img->info.logical_sector_size = bps;
	img->info.physical_sector_size = bps;
	return 0;
}

static int
vhdi_read(gp_image *img, void *buf, size_t len, uint64_t off)
{
	struct vhdi *h = img->priv;
	libvhdi_error_t *err = NULL;
	ssize_t r;

	r = libvhdi_file_read_buffer_at_offset(h->files[0], buf, len,
	    (off64_t)off, &err);
	if (r != (ssize_t)len)
		return vhdi_fail(img, "read", err);
	return 0;
}

static void
vhdi_close(gp_image *img)
{
	struct vhdi *h = img->priv;
	int i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++) {
		libvhdi_file_close(h->files[i], NULL);
		libvhdi_file_free(&h->files[i], NULL);
	}
	free(h);
	img->priv = NULL;
}

const struct blk_driver blk_vhdi_driver = {
	.name = "vhdi",
	.probe = vhdi_probe,
	.open = vhdi_open,
	.read = vhdi_read,
	.close = vhdi_close,
};
