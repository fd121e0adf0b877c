/*
 * txn.c - sessions over a writable image: the public open, write, commit,
 * abort and close.
 *
 * A writable image is changed in one session.  Every write that could
 * alter what the image's old state means waits in the overlay of
 * blk-cow.c; payload written to space the old state does not use goes to
 * the file at once.  What is unused is known here from a map the file
 * system layer declares (free clusters when it was opened), plus the file
 * tail past its size when the session began.  gp_image_commit makes the
 * overlay part of the image atomically (the VHDX log, or the sidecar
 * journal); closing without a commit, or gp_image_abort, leaves the old
 * state.  A dry run keeps everything in the overlay and writes nothing.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"
#include "txn.h"

/*
 * The unused map in chunks of 2^15 units (4 KiB of bits each): a chunk
 * all free or all in use costs no more than its pointer, so a large,
 * mostly empty or mostly full volume costs little.
 */
#define CHUNK_SHIFT	15
#define CHUNK_UNITS	((uint64_t)1 << CHUNK_SHIFT)
#define CHUNK_BYTES	(CHUNK_UNITS / 8)
static uint8_t chunk_all_used;		/* its address marks a full chunk */
#define ALL_USED	(&chunk_all_used)

struct txn {
	bool dry_run;
	bool dead;			/* aborted: the driver state is stale */
	/* Unused map: bit set = unit in use by the old state. */
	uint64_t map_start, map_unit, map_units;
	uint8_t **chunk;		/* NULL = all free, ALL_USED, or bits */
	uint64_t nchunks;
};

static void
map_free(struct txn *t)
{
	uint64_t i;

	for (i = 0; i < t->nchunks; i++)
		if (t->chunk[i] != ALL_USED)
			free(t->chunk[i]);
	free(t->chunk);
	t->chunk = NULL;
	t->nchunks = 0;
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
	if (img->drv->session_start && img->drv->session_start(img) < 0) {
		gp_image_close(img);
		return NULL;
	}
	return img;
}

int
gp_image_set_unused_map(gp_image *img, uint64_t start, uint64_t unit,
    uint64_t units)
{
	struct txn *t = img->txn;

	if (!t)
		return 0;
	map_free(t);
	if (!unit || !units || start > img->info.virtual_size)
		return 0;
	t->map_start = start;
	t->map_unit = unit;
	t->map_units = units;
	t->nchunks = (units + CHUNK_UNITS - 1) / CHUNK_UNITS;
	t->chunk = xcalloc((size_t)t->nchunks, sizeof(*t->chunk));
	return 0;
}

int
gp_image_map_used(gp_image *img, uint64_t first, const uint8_t *in_use,
    uint64_t n)
{
	struct txn *t = img->txn;
	uint64_t u = first;

	if (!t || !t->chunk || first % 8)
		return 0;
	n = MIN(n, t->map_units > first ? t->map_units - first : 0);
	while (u < first + n) {
		uint64_t c = u >> CHUNK_SHIFT, in = u & (CHUNK_UNITS - 1);
		uint64_t k = MIN(CHUNK_UNITS - in, first + n - u), i;
		const uint8_t *src = in_use + (u - first) / 8;
		bool all0 = true, all1 = true;

		for (i = 0; i < k / 8 && (all0 || all1); i++) {
			all0 &= src[i] == 0;
			all1 &= src[i] == 0xff;
		}
		if (k % 8) {
			uint8_t m = (uint8_t)((1u << (k % 8)) - 1);

			all0 &= (src[k / 8] & m) == 0;
			all1 &= (src[k / 8] & m) == m;
		}
		if (!t->chunk[c] && all0) {
			/* stays all free */
		} else if (!t->chunk[c] && all1 && in == 0 &&
		    k == MIN(CHUNK_UNITS, t->map_units - (c << CHUNK_SHIFT))) {
			t->chunk[c] = ALL_USED;
		} else {
			if (t->chunk[c] == ALL_USED) {
				t->chunk[c] = xmalloc(CHUNK_BYTES);
				memset(t->chunk[c], 0xff, CHUNK_BYTES);
			} else if (!t->chunk[c]) {
				t->chunk[c] = xcalloc(1, CHUNK_BYTES);
			}
			memcpy(t->chunk[c] + in / 8, src, (size_t)((k + 7) / 8));
		}
		u += k;
	}
	return 0;
}

static bool
unit_used(const struct txn *t, uint64_t u)
{
	const uint8_t *c = t->chunk[u >> CHUNK_SHIFT];

	if (!c || c == ALL_USED)
		return c == ALL_USED;
	u &= CHUNK_UNITS - 1;
	return c[u / 8] >> (u % 8) & 1;
}

/* Length of the run from off that is all unused (or all not), and which. */
static size_t
run_at(const struct txn *t, uint64_t off, size_t len, bool *unused)
{
	uint64_t end = off + len, u, ue, pos;

	if (!t || !t->chunk || off < t->map_start ||
	    off >= t->map_start + t->map_units * t->map_unit) {
		*unused = false;
		return len;
	}
	u = (off - t->map_start) / t->map_unit;
	*unused = !unit_used(t, u);
	for (;;) {
		pos = t->map_start + (u + 1) * t->map_unit;
		if (pos >= end)
			return len;
		ue = u + 1;
		if (ue >= t->map_units || !unit_used(t, ue) != *unused)
			return (size_t)(pos - off);
		u = ue;
	}
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
		size_t n = run_at(t, off, len, &unused);

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
		return gp_image_flush(img);
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
	map_free(t);
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
		map_free(t);
		free(t);
	}
	return ret;
}
