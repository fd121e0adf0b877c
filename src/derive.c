/*
 * derive.c - stage into a new image and leave the input untouched, for
 * golden-image pipelines: --output NEW (a full image of the input plus
 * the changes) and --child NEW (a differencing VHDX over the input).
 * NEW is built under a temporary name beside it and renamed into place
 * only after the run committed, so an interrupted run leaves no NEW.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "stage.h"

#define COPY_CHUNK	(1024 * 1024)

static const char *
format_for(const char *out, const char *given)
{
	const char *ext = strrchr(path_basename(out), '.');

	if (given)
		return given;
	if (ext && (!strcasecmp(ext, ".vhdx") || !strcasecmp(ext, ".avhdx")))
		return "vhdx";
	if (ext && !strcasecmp(ext, ".vhd"))
		return "vhd";
	if (ext && (!strcasecmp(ext, ".raw") || !strcasecmp(ext, ".img")))
		return "raw";
	return NULL;
}

/*
 * tmp becomes out only if out does not exist (it may have appeared while
 * the run went on): renameat2(RENAME_NOREPLACE), or link and unlink where
 * the file system lacks it.
 */
static int
rename_new(const char *tmp, const char *out)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(tmp, out) < 0)
		return -1;
	unlink(tmp);
	return 0;
}

static int
sync_dir(const char *path)
{
	char *dir = path_dirname(path);
	int fd = open(*dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0) {
		error_set(errno, "%s: %s", dir, strerror(errno));
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/*
 * Walk the ranges of in that copy_image reads (stored by the chain, not
 * skipped), in pieces of at most COPY_CHUNK: fn(ctx, off, len) for each;
 * with fn NULL, only their total.  Returns the total, or -1.
 */
static int64_t
data_ranges(gp_image *in, uint64_t size, const struct derive_copy *dc,
    int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
	uint64_t off, n, p, total = 0;
	size_t sk = 0;
	int st;

	for (off = 0; off < size;) {
		n = MIN((uint64_t)COPY_CHUNK, size - off);
		if (check_interrupt() < 0)
			return -1;
		/* Past skip ranges that end here; into one that covers off. */
		while (dc && sk < dc->nskip &&
		    dc->skip[sk].off + dc->skip[sk].len <= off)
			sk++;
		if (dc && sk < dc->nskip && dc->skip[sk].off <= off) {
			off = dc->skip[sk].off + dc->skip[sk].len;
			continue;
		}
		if (dc && sk < dc->nskip)
			n = MIN(n, dc->skip[sk].off - off);
		st = gp_image_allocated(in, off, n, &p);
		if (st < 0)
			return -1;
		n = MIN(n, MAX(p, (uint64_t)1));
		if (st == 1) {
			if (fn && fn(ctx, off, n) < 0)
				return -1;
			total += n;
		}
		off += n;
	}
	return (int64_t)total;
}

struct copy_ctx {
	gp_image *in, *out;
	uint8_t *buf;
	const struct derive_copy *dc;
	uint64_t done, total;		/* bytes of data, for progress */
};

static int
copy_range(void *ctx, uint64_t off, uint64_t n)
{
	struct copy_ctx *c = ctx;

	if (gp_image_read(c->in, c->buf, (size_t)n, off) < 0)
		return -1;
	if (!is_zero(c->buf, (size_t)n) &&
	    gp_image_write(c->out, c->buf, (size_t)n, off) < 0)
		return -1;
	c->done += n;
	if (c->dc && c->dc->progress)
		c->dc->progress(c->dc->pctx, c->done, c->total);
	return 0;
}

/*
 * Copy what the input holds into the new image: ranges no file of the
 * chain stores are not read at all (the driver says where its blocks
 * are), skip ranges are left out, and chunks that read as zeros are not
 * written, so only used data is allocated.  The new image is empty, so its
 * whole virtual disk is declared unused and the data goes straight to the
 * file; its block table is committed at the end.
 */
static int
copy_image(gp_image *in, const char *tmp, const char *fmt,
    const struct derive_copy *dc)
{
	struct gp_open_opts oo = { .flags = GP_OPEN_RDWR, .format = fmt };
	struct gp_image_info info;
	struct copy_ctx c = { .in = in, .dc = dc };
	gp_image *out;
	uint64_t size;
	int64_t total = 0;
	int ret = -1;

	gp_image_get_info(in, &info);
	size = info.virtual_size;
	if (strcmp(fmt, "vhdx-fixed") == 0)
		oo.format = "vhdx";
	out = gp_image_open(tmp, &oo);
	if (!out)
		return -1;
	/* Nothing in use: a map of one unit, unused. */
	gp_image_set_unused_map(out, 0, size, 1);
	c.out = out;
	c.buf = xmalloc(COPY_CHUNK);
	/* Progress counts the bytes that hold data, known first from the
	 * block tables alone. */
	if (dc && dc->progress &&
	    (total = data_ranges(in, size, dc, NULL, NULL)) < 0)
		goto out;
	c.total = (uint64_t)total;
	if (data_ranges(in, size, dc, copy_range, &c) < 0)
		goto out;
	if (gp_image_commit(out) < 0)
		goto out;
	ret = 0;
out:
	free(c.buf);
	if (gp_image_close(out) < 0 && ret == 0)
		ret = -1;
	return ret;
}

/* NEW must not exist. */
static int
check_new(const char *out)
{
	struct stat st;

	if (lstat(out, &st) == 0) {
		error_set(EEXIST, "%s: exists; gpupv-prep does not overwrite an "
		    "image (remove it or name another)", out);
		return -1;
	}
	if (errno != ENOENT) {
		error_set(errno, "%s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

static char *
tmp_name(const char *out)
{
	char *dir = path_dirname(out);
	char *tmp = xasprintf("%s%s.%s.gpupv-tmp-%ld", dir, *dir ? "/" : "",
	    path_basename(out), (long)getpid());

	free(dir);
	return tmp;
}

static void
drop_tmp(const char *tmp)
{
	char *j = xasprintf("%s.gpupv-journal", tmp);

	unlink(tmp);
	unlink(j);
	free(j);
}

/* An empty image like in, in fmt, at tmp. */
static int
create_like(gp_image *in, const char *tmp, const char *fmt)
{
	struct gp_create_opts co = { 0 };
	struct gp_image_info info;

	gp_image_get_info(in, &info);
	co.format = fmt;
	co.virtual_size = info.virtual_size;
	co.logical_sector_size = info.logical_sector_size;
	co.physical_sector_size = info.physical_sector_size;
	if (strncmp(fmt, "vhdx", 4) == 0 && info.block_size &&
	    strcmp(info.format, "vhdx") == 0)
		co.block_size = info.block_size;
	if (strcmp(fmt, "vhd") == 0 && info.logical_sector_size != 512) {
		error_set(EINVAL, "%s: a VHD holds 512-byte sectors; the input "
		    "has %u-byte ones", tmp, info.logical_sector_size);
		return -1;
	}
	return gp_image_create(tmp, &co);
}

int
derive_new_image(gp_image *in, const char *out, const char *fmt_given,
    const struct derive_copy *dc)
{
	const char *fmt = format_for(out, fmt_given);
	char *tmp;
	int ret = -1;

	if (check_new(out) < 0)
		return -1;
	if (!fmt) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: the format does not "
		    "follow from the name; give --output-format vhdx, "
		    "vhdx-fixed, vhd or raw", out);
		return -1;
	}
	tmp = tmp_name(out);
	if (create_like(in, tmp, fmt) < 0 || copy_image(in, tmp, fmt, dc) < 0)
		goto drop;
	fault_point("derive-copied");
	if (rename_new(tmp, out) < 0) {
		error_set(errno, "%s: cannot rename %s into place: %s", out, tmp,
		    strerror(errno));
		goto drop;
	}
	ret = sync_dir(out);
	free(tmp);
	return ret;
drop:
	error_rename(tmp, out);
	drop_tmp(tmp);
	free(tmp);
	return -1;
}

static void
copy_progress(void *ctx, uint64_t done, uint64_t total)
{
	const struct stage_opts *o = ctx;

	o->progress(o->pctx, "copying the image", 0, 0, done, total);
}

int
stage_derive(const char *image, struct pkg_set *set,
    const struct stage_opts *o, struct stage_report *r)
{
	struct gp_open_opts io = { .flags = GP_OPEN_RDONLY, .parent = o->parent,
	    .format = o->format };
	struct gp_create_opts co = { 0 };
	struct stage_opts so = *o;
	const char *out = o->output ? o->output : o->child;
	const char *fmt = NULL;
	char *tmp, *parent_real = NULL;
	gp_image *in;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	if (check_new(out) < 0)
		return -1;
	if (o->output && !(fmt = format_for(out, o->output_format))) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: the format does not "
		    "follow from the name; give --output-format vhdx, "
		    "vhdx-fixed, vhd or raw", out);
		return -1;
	}
	if (o->dry_run) {
		/* A dry run never writes: it can run on the input itself and
		 * copy nothing. */
		so.output = so.child = NULL;
		ret = stage_run(image, set, &so, r);
		free(r->image);
		r->image = xstrdup(out);
		return ret;
	}
	in = gp_image_open(image, &io);
	if (!in)
		return -1;
	tmp = tmp_name(out);
	if (o->child) {
		co.parent = in;
		co.parent_windows_path = o->parent_path;
		parent_real = realpath(image, NULL);
		if (gp_image_create(tmp, &co) < 0)
			goto close_in;
	} else {
		/* The free clusters of the input are not copied. */
		struct derive_copy dc = { .progress = o->progress ?
		    copy_progress : NULL, .pctx = (void *)o };
		struct range *skip = NULL;
		struct gp_error e;
		size_t nskip = 0;
		unsigned nvol;

		/* Unreadable volumes: everything is copied. */
		error_try(&e);
		if (image_unused_ranges(in, &skip, &nskip, &nvol) < 0) {
			skip = NULL;
			nskip = 0;
		}
		error_end(&e);
		dc.skip = skip;
		dc.nskip = nskip;
		ret = create_like(in, tmp, fmt);
		if (ret == 0)
			ret = copy_image(in, tmp, fmt, &dc);
		free(skip);
		if (ret < 0)
			goto drop;
		ret = -1;
	}
	fault_point("derive-copied");
	gp_image_close(in);
	in = NULL;
	/* The run itself, on the new file. */
	so.output = so.child = NULL;
	so.format = NULL;
	if (o->child)
		so.parent = parent_real;
	ret = stage_run(tmp, set, &so, r);
	if (ret < 0)
		goto drop;
	if (rename_new(tmp, out) < 0) {
		error_set(errno, "%s: cannot rename %s into place: %s", out, tmp,
		    strerror(errno));
		ret = -1;
		goto drop;
	}
	ret = sync_dir(out);
	free(r->image);
	r->image = xstrdup(out);
	r->changed = true;
	free(tmp);
	free(parent_real);
	return ret;
drop:
	if (ret < 0)
		error_rename(tmp, out);
	drop_tmp(tmp);
close_in:
	if (in)
		gp_image_close(in);
	free(tmp);
	free(parent_real);
	return ret;
}
