/*
 * blk-cow.c - the copy-on-write overlay under the image drivers.
 *
 * While a session is open every write to the host file that could change
 * what the old state of the image means is held here, in 4 KiB pages
 * (the VHDX log sector), and later reads see it.  Writes the old state
 * cannot see go straight to the file: past the file's size when the
 * session began, or into space the caller declares unreferenced (free
 * NTFS clusters).  Commit (txn.c and the drivers) later moves the held
 * pages into place atomically; abort just forgets them.
 *
 * Pages live in memory up to a cap, then in an unlinked temporary file,
 * so a large dry run does not grow the process without bound.
 *
 * The drivers read and write the host file through the functions at the
 * end of this file (blk_file_read, blk_file_write, blk_data_write,
 * blk_file_truncate, blk_file_move), which go through the overlay while
 * a session is open; blk-file.c writes the file straight.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "blk.h"

#define PAGE		BLK_COW_PAGE
#define MEM_PAGES	(16u * 1024 * 1024 / PAGE)	/* 16 MiB in memory */
#define ARENA_PAGES	256u				/* 1 MiB per malloc */

struct blk_cow {
	uint64_t base_size;	/* file size when the session began */
	bool direct_ok;		/* false for dry runs and read-only images */
	bool direct_used;
	/* open addressing: page number + 1 (0 = empty) -> slot */
	uint64_t *keys;
	uint32_t *vals;
	size_t cap;
	/* slot -> page number, in order of creation */
	uint64_t *pages;
	size_t n, pages_cap;
	size_t meta;		/* pages a real run would hold too */
	uint8_t **arenas;
	size_t narenas;
	int spill_fd;
	char *spill_dir;
};

static size_t
hash_page(uint64_t p, size_t cap)
{
	p ^= p >> 33;
	p *= 0xff51afd7ed558ccdull;
	p ^= p >> 33;
	return (size_t)(p & (cap - 1));
}

static bool
cow_lookup(const struct blk_cow *c, uint64_t page, uint32_t *slot)
{
	size_t i;

	if (!c->n)
		return false;
	for (i = hash_page(page, c->cap); c->keys[i];
	    i = (i + 1) & (c->cap - 1)) {
		if (c->keys[i] == page + 1) {
			*slot = c->vals[i];
			return true;
		}
	}
	return false;
}

static void
cow_grow(struct blk_cow *c)
{
	uint64_t *ok = c->keys;
	uint32_t *ov = c->vals;
	size_t ocap = c->cap, i, j;

	c->cap = ocap ? ocap * 2 : 1024;
	c->keys = xcalloc(c->cap, sizeof(*c->keys));
	c->vals = xcalloc(c->cap, sizeof(*c->vals));
	for (i = 0; i < ocap; i++) {
		if (!ok[i])
			continue;
		for (j = hash_page(ok[i] - 1, c->cap); c->keys[j];
		    j = (j + 1) & (c->cap - 1))
			;
		c->keys[j] = ok[i];
		c->vals[j] = ov[i];
	}
	free(ok);
	free(ov);
}

static int
spill_open(gp_image *img, struct blk_cow *c)
{
	const char *dir = getenv("TMPDIR");

	if (!dir || !*dir)
		dir = "/tmp";
	c->spill_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (c->spill_fd < 0) {
		char *tmpl = xasprintf("%s/gpupv-prep-XXXXXX", dir);

		c->spill_fd = mkostemp(tmpl, O_CLOEXEC);
		if (c->spill_fd >= 0)
			unlink(tmpl);
		free(tmpl);
	}
	if (c->spill_fd < 0) {
		error_set(errno, "%s: cannot create a temporary file in %s for "
		    "pending changes: %s", img->path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
slot_read(gp_image *img, struct blk_cow *c, uint32_t slot, uint8_t *dst)
{
	if (slot < MEM_PAGES) {
		memcpy(dst, c->arenas[slot / ARENA_PAGES] +
		    (size_t)(slot % ARENA_PAGES) * PAGE, PAGE);
		return 0;
	}
	if (file_pread(c->spill_fd, dst, PAGE,
	    (uint64_t)(slot - MEM_PAGES) * PAGE) < 0) {
		error_set(errno, "%s: reading pending changes back from the "
		    "temporary file: %s", img->path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
slot_write(gp_image *img, struct blk_cow *c, uint32_t slot,
    const uint8_t *src)
{
	if (slot < MEM_PAGES) {
		memcpy(c->arenas[slot / ARENA_PAGES] +
		    (size_t)(slot % ARENA_PAGES) * PAGE, src, PAGE);
		return 0;
	}
	if (file_pwrite(c->spill_fd, src, PAGE,
	    (uint64_t)(slot - MEM_PAGES) * PAGE) < 0) {
		int e = errno;

		error_set(e, "%s: writing pending changes to the temporary "
		    "file: %s%s", img->path, strerror(e), e == ENOSPC ?
		    " (the temporary directory is full; set TMPDIR)" : "");
		return -1;
	}
	return 0;
}

/* A new slot for page, holding page's current contents. */
static int
slot_new(gp_image *img, struct blk_cow *c, uint64_t page, uint32_t *slot,
    const uint8_t *contents)
{
	uint32_t s;
	size_t i;

	if (c->n >= UINT32_MAX - 1) {
		error_set(EFBIG, "%s: too many pending changes", img->path);
		return -1;
	}
	s = (uint32_t)c->n;
	if (s < MEM_PAGES && s / ARENA_PAGES >= c->narenas) {
		c->arenas = xrealloc(c->arenas, (c->narenas + 1) *
		    sizeof(*c->arenas));
		c->arenas[c->narenas++] = xmalloc((size_t)ARENA_PAGES * PAGE);
	}
	if (s >= MEM_PAGES && c->spill_fd < 0 && spill_open(img, c) < 0)
		return -1;
	if (slot_write(img, c, s, contents) < 0)
		return -1;
	if ((c->n + 1) * 2 > c->cap)
		cow_grow(c);
	for (i = hash_page(page, c->cap); c->keys[i]; i = (i + 1) & (c->cap - 1))
		;
	c->keys[i] = page + 1;
	c->vals[i] = s;
	if (c->n == c->pages_cap) {
		c->pages_cap = c->pages_cap ? c->pages_cap * 2 : 1024;
		c->pages = xrealloc(c->pages, c->pages_cap * sizeof(*c->pages));
	}
	c->pages[c->n++] = page;
	*slot = s;
	return 0;
}

/* The host file as it stands, zeros past its physical end. */
static int
file_read_padded(gp_image *img, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t phys = img->phys_size;
	size_t in = 0;

	if (off < phys)
		in = (size_t)MIN((uint64_t)len, phys - off);
	if (in && file_pread(img->fd, buf, in, off) < 0) {
		error_set(errno, "%s: read at offset %llu: %s", img->path,
		    (unsigned long long)off, strerror(errno));
		return -1;
	}
	memset(buf + in, 0, len - in);
	return 0;
}

int
blk_cow_begin(gp_image *img, bool dry_run)
{
	struct blk_cow *c;

	if (img->cow)
		return 0;
	c = xcalloc(1, sizeof(*c));
	c->spill_fd = -1;
	c->base_size = img->file_size;
	c->direct_ok = !dry_run && BLK_FILE_WRITABLE(img);
	img->cow = c;
	return 0;
}

static void
cow_free(struct blk_cow *c)
{
	size_t i;

	for (i = 0; i < c->narenas; i++)
		free(c->arenas[i]);
	free(c->arenas);
	free(c->keys);
	free(c->vals);
	free(c->pages);
	if (c->spill_fd >= 0)
		close(c->spill_fd);
	free(c);
}

void
blk_cow_end(gp_image *img)
{
	if (!img->cow)
		return;
	cow_free(img->cow);
	img->cow = NULL;
}

void
blk_cow_reset(gp_image *img)
{
	struct blk_cow *c = img->cow;
	bool direct_ok;

	if (!c)
		return;
	direct_ok = c->direct_ok;
	cow_free(c);
	img->cow = NULL;
	blk_cow_begin(img, !direct_ok);
}

size_t
blk_cow_count(const gp_image *img)
{
	return img->cow ? img->cow->n : 0;
}

bool
blk_cow_direct_used(const gp_image *img)
{
	return img->cow && img->cow->direct_used;
}

uint64_t
blk_cow_base_size(const gp_image *img)
{
	return img->cow ? img->cow->base_size : img->file_size;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
blk_cow_foreach(gp_image *img, int (*fn)(gp_image *img, uint64_t off,
    const uint8_t *page, void *arg), void *arg)
{
	struct blk_cow *c = img->cow;
	uint64_t *order;
	uint8_t *page;
	size_t i;
	int ret = 0;

	if (!c || !c->n)
		return 0;
	/* In file order, so applying the pages is a forward sweep. */
	order = xmalloc(c->n * sizeof(*order));
	memcpy(order, c->pages, c->n * sizeof(*order));
	qsort(order, c->n, sizeof(*order), cmp_u64);
	page = xmalloc(PAGE);
	for (i = 0; i < c->n && ret == 0; i++) {
		uint32_t slot;

		if (!cow_lookup(c, order[i], &slot) ||
		    slot_read(img, c, slot, page) < 0)
			ret = -1;
		else
			ret = fn(img, order[i] * PAGE, page, arg);
	}
	free(page);
	free(order);
	return ret;
}

static int
blk_cow_read(gp_image *img, void *vbuf, size_t len, uint64_t off)
{
	struct blk_cow *c = img->cow;
	uint8_t *buf = vbuf;

	while (len) {
		uint64_t page = off / PAGE, in = off % PAGE;
		size_t n = (size_t)MIN((uint64_t)len, PAGE - in);
		uint32_t slot;

		if (cow_lookup(c, page, &slot)) {
			uint8_t tmp[PAGE];

			if (slot_read(img, c, slot, tmp) < 0)
				return -1;
			memcpy(buf, tmp + in, n);
		} else {
			/* Runs of pages that are not held: one read. */
			uint64_t end = off + n;
			uint32_t s2;

			while (end < off + len && !cow_lookup(c, end / PAGE, &s2))
				end = MIN(off + len, (end / PAGE + 1) * PAGE);
			n = (size_t)(end - off);
			if (file_read_padded(img, buf, n, off) < 0)
				return -1;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static bool
blk_cow_may_write(const gp_image *img)
{
	return img->cow && img->cow->direct_ok;
}

static int
blk_cow_prepare_direct(gp_image *img)
{
	struct blk_cow *c = img->cow;

	if (c->direct_used)
		return 0;
	/* VHDX: a new FileWriteGuid before the first byte changes. */
	if (img->drv->begin_direct && img->drv->begin_direct(img) < 0)
		return -1;
	c->direct_used = true;
	return 0;
}

static int
direct_write(gp_image *img, const uint8_t *buf, size_t len, uint64_t off)
{
	if (blk_cow_prepare_direct(img) < 0)
		return -1;
	return blk_file_write_raw(img, buf, len, off);
}

static int
blk_cow_write(gp_image *img, const void *vbuf, size_t len, uint64_t off,
    bool unreferenced)
{
	struct blk_cow *c = img->cow;
	const uint8_t *buf = vbuf;

	while (len) {
		uint64_t page = off / PAGE, in = off % PAGE;
		size_t n = (size_t)MIN((uint64_t)len, PAGE - in);
		uint32_t slot;

		if (cow_lookup(c, page, &slot)) {
			uint8_t tmp[PAGE];

			if (slot_read(img, c, slot, tmp) < 0)
				return -1;
			memcpy(tmp + in, buf, n);
			if (slot_write(img, c, slot, tmp) < 0)
				return -1;
		} else if (c->direct_ok && (unreferenced ||
		    page * PAGE >= c->base_size)) {
			/* Gather the run that may go straight to the file. */
			uint64_t end = off + n;
			uint32_t s2;

			while (end < off + len && !cow_lookup(c, end / PAGE, &s2) &&
			    (unreferenced || end >= c->base_size))
				end = MIN(off + len, (end / PAGE + 1) * PAGE);
			n = (size_t)(end - off);
			if (direct_write(img, buf, n, off) < 0)
				return -1;
		} else {
			uint8_t tmp[PAGE];

			if (file_read_padded(img, tmp, PAGE, page * PAGE) < 0)
				return -1;
			memcpy(tmp + in, buf, n);
			if (slot_new(img, c, page, &slot, tmp) < 0)
				return -1;
			if (!unreferenced && page * PAGE < c->base_size)
				c->meta++;
		}
		buf += n;
		off += n;
		len -= n;
		if (off > img->file_size)
			img->file_size = off;
	}
	return 0;
}

static uint64_t
commit_limit(void)
{
	const char *e = getenv("GPUPV_PREP_COMMIT_LIMIT_MB");
	uint64_t lim = BLK_MAX_COMMIT_PAGES;
	char *end;

	if (e && *e) {
		unsigned long long mb = strtoull(e, &end, 10);

		if (!*end && mb * (1024 * 1024 / PAGE) < lim)
			lim = mb * (1024 * 1024 / PAGE);
	}
	return lim;
}

int
blk_cow_check_limit(gp_image *img)
{
	struct blk_cow *c = img->cow;
	uint64_t held = c->direct_ok ? c->n : c->meta, lim = commit_limit();

	if (held <= lim)
		return 0;
	error_set(EFBIG, "%s: the change holds %llu MiB of rewritten "
	    "metadata, more than one atomic commit takes (%llu MiB)",
	    img->path, (unsigned long long)(held * PAGE >> 20),
	    (unsigned long long)(lim * PAGE >> 20));
	return -1;
}

/* Load pages (a pending journal) into a fresh overlay. */
int
blk_cow_put(gp_image *img, uint64_t off, const uint8_t *page)
{
	uint32_t slot;

	if (cow_lookup(img->cow, off / PAGE, &slot))
		return slot_write(img, img->cow, slot, page);
	return slot_new(img, img->cow, off / PAGE, &slot, page);
}

/* ---- the host file as the session sees it ---------------------------- */

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
