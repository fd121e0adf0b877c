/*
 * compact.c - finding the space of an image that holds nothing (see
 * compact.h) and giving it back, in place or into a new file.
 *
 * In place, every block wholly inside unused space is discarded in one
 * atomic session, then the blocks that remain are packed toward the start
 * of the file in a second one, and the file is cut after the last
 * structure it references: killed at any point, the image is valid and
 * reads as before, or as before with zeros (or the parent's data) where
 * nothing mattered.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "compact.h"
#include "stage.h"

struct ranges {
	struct range *v;
	size_t n, cap;
	uint64_t base, limit;		/* the partition being read */
};

static void
ranges_add(struct ranges *r, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	if (r->n && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
		r->v[r->n - 1].len += len;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n].off = off;
	r->v[r->n++].len = len;
}

static int
free_run(void *ctx, uint64_t off, uint64_t len)
{
	struct ranges *r = ctx;

	/* A volume that claims more clusters than its partition holds must
	 * not reach into the next one. */
	if (off >= r->limit)
		return 0;
	ranges_add(r, r->base + off, MIN(len, r->limit - off));
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int
part_cmp(const void *a, const void *b)
{
	const struct gp_partition *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int
image_unused_ranges(gp_image *img, struct range **out, size_t *nout,
    unsigned *nvol)
{
	struct gp_partition_table pt;
	struct gp_image_info info;
	struct ranges r = { 0 };
	struct gp_partition *sorted;
	size_t i, j;
	uint64_t pos;

	*out = NULL;
	*nout = 0;
	*nvol = 0;
	gp_image_get_info(img, &info);
	if (gp_partitions_read(img, &pt) < 0)
		return -1;
	for (i = 0; i < pt.count; i++) {
		struct gp_partition *p = &pt.parts[i];
		gp_volume *vol;
		enum gp_volume_state st;
		struct gp_error e;

		if (!p->filesystem || strcmp(p->filesystem, "ntfs") != 0)
			continue;
		error_try(&e);
		vol = gp_volume_open(img, p->start, p->size, false);
		if (error_end(&e) || !vol) {
			if (vol)
				gp_volume_close(vol);
			warn_add("%s: partition %u: %s; kept whole", info.path,
			    p->index, e.msg);
			continue;
		}
		st = gp_volume_state(vol);
		if (st != GP_VOL_CLEAN) {
			/* Its bitmap may not say what is in use. */
			warn_add("%s: partition %u: NTFS volume is %s; kept "
			    "whole", info.path, p->index,
			    gp_volume_state_name(st));
			gp_volume_close(vol);
			continue;
		}
		r.base = p->start;
		r.limit = p->size;
		if (gp_volume_free_runs(vol, free_run, &r) < 0) {
			gp_volume_close(vol);
			gp_partitions_free(&pt);
			free(r.v);
			return -1;
		}
		gp_volume_close(vol);
		(*nvol)++;
	}
	/* GPT: the space between partitions, past the first MiB (the
	 * tables) and before the last (the backup table). */
	if (pt.scheme == GP_SCHEME_GPT && info.virtual_size > 2 * 1024 * 1024) {
		uint64_t end = info.virtual_size - 1024 * 1024;

		sorted = xmalloc((pt.count + 1) * sizeof(*sorted));
		memcpy(sorted, pt.parts, pt.count * sizeof(*sorted));
		qsort(sorted, pt.count, sizeof(*sorted), part_cmp);
		pos = 1024 * 1024;
		for (j = 0; j <= pt.count; j++) {
			uint64_t s = j < pt.count ? sorted[j].start : end;

			if (s > end)
				s = end;
			if (s > pos)
				ranges_add(&r, pos, s - pos);
			if (j < pt.count)
				pos = MAX(pos, sorted[j].start + sorted[j].size);
		}
		free(sorted);
	}
	gp_partitions_free(&pt);
	/* Sorted and merged. */
	qsort(r.v, r.n, sizeof(*r.v), range_cmp);
	for (i = 0, j = 0; i < r.n; i++) {
		if (j && r.v[j - 1].off + r.v[j - 1].len >= r.v[i].off) {
			uint64_t e = MAX(r.v[j - 1].off + r.v[j - 1].len,
			    r.v[i].off + r.v[i].len);

			r.v[j - 1].len = e - r.v[j - 1].off;
		} else {
			r.v[j++] = r.v[i];
		}
	}
	*out = r.v;
	*nout = j;
	return 0;
}

static uint64_t
host_alloc(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static uint64_t
host_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Blocks the file holds that lie wholly inside unused space. */
static int
count_droppable(gp_image *img, const struct range *v, size_t n,
    uint64_t bs, uint64_t *blocks)
{
	size_t i;

	*blocks = 0;
	if (!bs)
		return 0;
	for (i = 0; i < n; i++) {
		uint64_t b = (v[i].off + bs - 1) / bs;
		uint64_t e = (v[i].off + v[i].len) / bs, p;

		while (b < e) {
			int st = gp_image_block_status(img, b * bs,
			    (e - b) * bs, &p);

			if (st < 0)
				return -1;
			p = MAX(p / bs, 1);
			if (st == 1)
				*blocks += p;
			b += p;
		}
	}
	return 0;
}

int
compact_run(const char *image, const struct compact_opts *o,
    struct compact_report *r)
{
	struct gp_open_opts oo = { .parent = o->parent, .format = o->format };
	struct gp_image_info info;
	struct range *v = NULL;
	size_t n = 0, i;
	gp_image *img;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	r->image = xstrdup(o->output ? o->output : image);
	r->dry_run = o->dry_run;
	r->size_before = host_size(image);
	r->alloc_before = host_alloc(image);
	if (o->output && !o->dry_run)
		oo.flags = GP_OPEN_RDONLY;
	else
		oo.flags = o->dry_run ? GP_OPEN_DRY_RUN : GP_OPEN_RDWR;
	img = gp_image_open(image, &oo);
	if (!img)
		return -1;
	gp_image_get_info(img, &info);
	r->block_size = strcmp(info.format, "raw") && info.subformat &&
	    strcmp(info.subformat, "fixed") ? info.block_size : 0;
	if (image_unused_ranges(img, &v, &n, &r->volumes) < 0)
		goto out;
	for (i = 0; i < n; i++)
		r->unused_bytes += v[i].len;
	if (count_droppable(img, v, n, r->block_size, &r->blocks_dropped) < 0)
		goto out;
	if (o->output && !o->dry_run) {
		struct derive_copy dc = { .skip = v, .nskip = n,
		    .progress = o->progress, .pctx = o->pctx };

		if (derive_new_image(img, o->output, o->output_format, &dc) < 0)
			goto out;
		r->size_after = host_size(o->output);
		r->alloc_after = host_alloc(o->output);
		ret = 0;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (gp_image_discard(img, v[i].off, v[i].len) < 0)
			goto out;
	if (gp_image_compact(img) < 0)
		goto out;
	ret = 0;
out:
	if (gp_image_close(img) < 0 && ret == 0)
		ret = -1;
	if (ret == 0 && !o->output) {
		r->size_after = o->dry_run ? r->size_before -
		    MIN(r->size_before, r->blocks_dropped * r->block_size) :
		    host_size(image);
		r->alloc_after = o->dry_run ? 0 : host_alloc(image);
	}
	free(v);
	return ret;
}

void
compact_report_free(struct compact_report *r)
{
	free(r->image);
	memset(r, 0, sizeof(*r));
}
