/*
 * fs.c - the gp_volume handle: which file system a partition holds, and
 * each call forwarded to its driver (ntfs.c or ext4.c).  What is the same
 * for every file system (writing a whole file from memory) is built here
 * on the drivers' operations.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fs.h"

/* The ext2/3/4 superblock: 1024 bytes in, magic 0xEF53 at 56. */
#define EXT_SB_OFF	1024
#define EXT_MAGIC_OFF	(EXT_SB_OFF + 56)

gp_volume *
gp_volume_open(gp_image *img, uint64_t start, uint64_t size, bool writable)
{
	uint8_t b[2048];
	struct gp_image_info info;

	if (size >= sizeof(b)) {
		if (gp_image_read(img, b, sizeof(b), start) < 0)
			return NULL;
		if (get_le16(b + EXT_MAGIC_OFF) == 0xEF53)
			return ext4_fs_ops.open(img, start, size, writable);
	}
	if (size < sizeof(b)) {
		gp_image_get_info(img, &info);
		error_set(EINVAL, "%s: partition at offset %llu: too small for "
		    "a file system", info.path, (unsigned long long)start);
		return NULL;
	}
	return ntfs_fs_ops.open(img, start, size, writable);
}

enum gp_fs_kind
gp_volume_kind(const gp_volume *v)
{
	return v->ops->kind;
}

const char *
gp_volume_fs_name(gp_volume *v)
{
	return v->ops->fs_name ? v->ops->fs_name(v) : v->ops->name;
}

int
gp_volume_close(gp_volume *v)
{
	return v ? v->ops->close(v) : 0;
}

const char *
gp_volume_state_name(enum gp_volume_state s)
{
	switch (s) {
	case GP_VOL_CLEAN:
		return "clean";
	case GP_VOL_HIBERNATED:
		return "hibernated";
	case GP_VOL_DIRTY:
		return "dirty";
	case GP_VOL_BITLOCKER:
		return "bitlocker";
	}
	return "unknown";
}

enum gp_volume_state
gp_volume_state(gp_volume *v)
{
	return v->ops->state(v);
}

const char *
gp_volume_label(gp_volume *v)
{
	return v->ops->label(v);
}

int
gp_volume_stat(gp_volume *v, const char *path, struct gp_stat *st)
{
	memset(st, 0, sizeof(*st));
	return v->ops->stat(v, path, st);
}

int
gp_volume_exists(gp_volume *v, const char *path, struct gp_stat *st)
{
	struct gp_error e;
	int r;

	/* stat says "absent" as a failure with nothing recorded. */
	error_try(&e);
	r = gp_volume_stat(v, path, st);
	if (error_end(&e))
		return error_pass(&e);
	return r == 0;
}

int
gp_volume_list(gp_volume *v, const char *path,
    int (*fn)(void *ctx, const char *name, const struct gp_stat *st),
    void *ctx)
{
	return v->ops->list(v, path, fn, ctx);
}

int
gp_volume_extract(gp_volume *v, const char *path, const char *host_path)
{
	return v->ops->extract(v, path, host_path);
}

char *
gp_volume_realpath(gp_volume *v, const char *path)
{
	return v->ops->realpath(v, path);
}

int
gp_volume_mkdir_p(gp_volume *v, const char *path)
{
	return v->ops->mkdir_p(v, path);
}

int
gp_volume_overwrite(gp_volume *v, const char *path, const void *data,
    size_t len)
{
	return v->ops->overwrite(v, path, data, len);
}

int
gp_volume_create(gp_volume *v, const char *path, bool is_dir, uint64_t size,
    const struct gp_file_meta *m, int (*fill)(void *ctx, void *buf,
    size_t len), void *ctx)
{
	return v->ops->create(v, path, is_dir, size, m, fill, ctx);
}

int
gp_volume_symlink(gp_volume *v, const char *path, const char *target,
    const struct gp_file_meta *m)
{
	return v->ops->symlink(v, path, target, m);
}

char *
gp_volume_link_target(gp_volume *v, const char *path)
{
	if (!v->ops->link_target) {
		error_set(ENOTSUP, "%s: reading a link's target is not done on "
		    "%s", path, v->ops->name);
		return NULL;
	}
	return v->ops->link_target(v, path);
}

int
gp_volume_set_meta(gp_volume *v, const char *path, const struct gp_file_meta *m)
{
	return v->ops->set_meta(v, path, m);
}

int
gp_volume_remove(gp_volume *v, const char *path)
{
	return v->ops->remove(v, path);
}

int
gp_volume_remove_any(gp_volume *v, const char *path, int ok_errno)
{
	struct gp_error e;
	int r, saved;

	/* The tolerated failure is tried in a scope of its own; any other
	 * is handed on as it was recorded. */
	error_try(&e);
	r = gp_volume_remove(v, path);
	saved = errno;
	error_end(&e);
	r = error_unless(&e, r, saved, ENOENT, ok_errno);
	if (r <= 0)
		return r;
	return errno == ENOENT ? 1 : 2;
}

int
gp_volume_space(gp_volume *v, uint64_t *unit, uint64_t *free_bytes)
{
	return v->ops->space(v, unit, free_bytes);
}

uint64_t
gp_volume_stored_free(gp_volume *v)
{
	return v->ops->stored_free(v);
}

int
gp_volume_free_runs(gp_volume *v, int (*fn)(void *ctx, uint64_t off,
    uint64_t len), void *ctx)
{
	return v->ops->free_runs(v, fn, ctx);
}

int
gp_volume_read_cb(gp_volume *v, const char *path,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx)
{
	return v->ops->read_cb(v, path, fn, ctx);
}

int
gp_volume_read(gp_volume *v, const char *path, size_t max, void **data,
    size_t *len)
{
	return v->ops->read(v, path, max, data, len);
}

int
gp_volume_short_names(gp_volume *v, const char *dir_path, int mode)
{
	return v->ops->short_names(v, dir_path, mode);
}

uint64_t
gp_volume_file_cost(gp_volume *v, uint64_t size)
{
	return v->ops->file_cost(v, size);
}

/* Create or replace: parents made as needed, then gp_volume_create. */
int
gp_volume_write_file(gp_volume *v, const char *path, const void *data,
    size_t len)
{
	struct gp_file_meta m = {
		.mtime_ns = (int64_t)time(NULL) * 1000000000,
	};
	struct fs_mem src = { data, len };
	char *copy = xstrdup(path), *parent, *c;
	struct gp_stat st;
	int ret = -1;

	for (c = copy; *c; c++)
		if (*c == '\\')
			*c = '/';
	parent = path_dirname(copy);
	free(copy);
	if (*parent && strcmp(parent, ".") != 0 && strcmp(parent, "/") != 0 &&
	    gp_volume_mkdir_p(v, parent) < 0)
		goto out;
	switch (gp_volume_exists(v, path, &st)) {
	case -1:
		goto out;
	case 1:
		if (st.is_dir) {
			error_set(EISDIR, "%s is a directory", path);
			goto out;
		}
		if (gp_volume_remove(v, path) < 0)
			goto out;
	}
	ret = gp_volume_create(v, path, false, len, &m, fs_mem_fill, &src);
out:
	free(parent);
	return ret;
}
