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
 * Copy what the input holds into the new image: chunks that read as
 * zeros are skipped, so only used data is allocated.  The new image is
 * empty, so its whole virtual disk is declared unused and the data goes
 * straight to the file; its block table is committed at the end.
 */
static int
copy_image(gp_image *in, const char *tmp, const char *fmt,
    const struct stage_opts *o)
{
	struct gp_open_opts oo = { .flags = GP_OPEN_RDWR, .format = fmt };
	struct gp_image_info info;
	gp_image *out;
	uint8_t *buf;
	uint64_t off, size;
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
	buf = xmalloc(COPY_CHUNK);
	for (off = 0; off < size;) {
		size_t n = (size_t)MIN((uint64_t)COPY_CHUNK, size - off);

		if (gp_image_read(in, buf, n, off) < 0)
			goto out;
		if (!is_zero(buf, n) && gp_image_write(out, buf, n, off) < 0)
			goto out;
		off += n;
		if (o->progress)
			o->progress(o->pctx, 0, 0, off, size);
	}
	if (gp_image_commit(out) < 0)
		goto out;
	ret = 0;
out:
	free(buf);
	if (gp_image_close(out) < 0 && ret == 0)
		ret = -1;
	return ret;
}

int
stage_derive(const char *image, struct pkg_set *set,
    const struct stage_opts *o, struct stage_report *r)
{
	struct gp_open_opts io = { .flags = GP_OPEN_RDONLY, .parent = o->parent,
	    .format = o->format };
	struct gp_create_opts co = { 0 };
	struct gp_image_info info;
	struct stage_opts so = *o;
	const char *out = o->output ? o->output : o->child;
	const char *fmt = NULL;
	char *dir, *tmp, *parent_real = NULL;
	struct stat st;
	gp_image *in;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	if (lstat(out, &st) == 0) {
		error_set(EEXIST, "%s: exists; gpupv-prep does not overwrite an "
		    "image (remove it or name another)", out);
		return -1;
	}
	if (errno != ENOENT) {
		error_set(errno, "%s: %s", out, strerror(errno));
		return -1;
	}
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
	gp_image_get_info(in, &info);
	dir = path_dirname(out);
	tmp = xasprintf("%s%s.%s.gpupv-tmp-%ld", dir, *dir ? "/" : "",
	    path_basename(out), (long)getpid());
	free(dir);
	if (o->child) {
		co.parent = in;
		parent_real = realpath(image, NULL);
	} else {
		co.format = fmt;
		co.virtual_size = info.virtual_size;
		co.logical_sector_size = info.logical_sector_size;
		co.physical_sector_size = info.physical_sector_size;
		if (strncmp(fmt, "vhdx", 4) == 0 && info.block_size &&
		    strcmp(info.format, "vhdx") == 0)
			co.block_size = info.block_size;
		if (strcmp(fmt, "vhd") == 0 && info.logical_sector_size != 512) {
			error_set(EINVAL, "%s: a VHD holds 512-byte sectors; the "
			    "input has %u-byte ones", out,
			    info.logical_sector_size);
			goto close_in;
		}
	}
	if (gp_image_create(tmp, &co) < 0)
		goto close_in;
	if (o->output && copy_image(in, tmp, fmt, o) < 0)
		goto drop;
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
	if (rename(tmp, out) < 0) {
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
	unlink(tmp);
	{
		char *j = xasprintf("%s.gpupv-journal", tmp);

		unlink(j);
		free(j);
	}
close_in:
	if (in)
		gp_image_close(in);
	free(tmp);
	free(parent_real);
	return ret;
}
