/*
 * blk-journal.c - the sidecar journal that makes a commit to a raw or VHD
 * image atomic (those formats have no log of their own).
 *
 * Commit: the payload that went straight to the file is flushed; the held
 * pages are written to IMAGE.gpupv-journal.tmp, flushed, and renamed to
 * IMAGE.gpupv-journal (the commit point; the directory is flushed too);
 * the pages are copied into the image, which is flushed, and the journal
 * is removed.  Any later open by gpupv-prep finds a journal left by a
 * crash and finishes it first: into the file when the image is opened for
 * writing, in memory otherwise.
 *
 * Layout (little-endian):
 *   0  "GPUPVJNL"   8  version (2)   12  page size (4096)
 *  16  page count  24  file size before  32  file size after  40..63 zero
 *  64  page offsets, 8 bytes each; then the CRC-32C of each page as the
 *      image held it before (4 bytes each); then the pages; then
 *      "GPUPVEND", CRC-32C of everything before it, 4 zero bytes.
 *
 * A journal is bound to the state it was written against, not to a name:
 * it is applied only while every page it covers holds either what it held
 * before (by its CRC) or what the journal holds (already applied).  An
 * image changed since (booted in a VM, written by something else) has a
 * stale journal, which is refused rather than pasted over newer data.
 * Version 1 journals (no CRCs) are still completed as they are.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "blk.h"

#define JNL_MAGIC	"GPUPVJNL"
#define JNL_END		"GPUPVEND"
#define JNL_HDR		64
#define JNL_TRAILER	16
#define JNL_SUFFIX	".gpupv-journal"
#define PAGE		BLK_COW_PAGE
/* Far beyond any metadata change we make; bounds what a bad file costs. */
#define JNL_MAX_PAGES	BLK_MAX_COMMIT_PAGES

/* Beside the file itself: through a symbolic link, the journal is the
 * target's, whatever name the image was opened by. */
char *
blk_journal_path(const char *image)
{
	char *real = realpath(image, NULL);
	char *j = xasprintf("%s%s", real ? real : image, JNL_SUFFIX);

	free(real);
	return j;
}

static int
sync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd >= 0) {
		if (fsync(fd) < 0 && errno != EINVAL)
			ret = -1;
		close(fd);
	}
	free(copy);
	return ret;
}

struct jwriter {
	int fd;
	const char *path;
	uint32_t crc;
	uint64_t pos;
	uint8_t *buf;
	size_t used;
};

#define JBUF (1024 * 1024)

static int
jw_flush(struct jwriter *w)
{
	if (w->used && file_pwrite(w->fd, w->buf, w->used, w->pos) < 0) {
		int e = errno;

		error_set(e, "%s: %s%s", w->path, strerror(e), e == ENOSPC ?
		    " (host file system full; the image is unchanged)" : "");
		return -1;
	}
	w->pos += w->used;
	w->used = 0;
	return 0;
}

static int
jw_put(struct jwriter *w, const void *p, size_t n)
{
	const uint8_t *b = p;

	w->crc = crc32c(w->crc, b, n);
	while (n) {
		size_t k = MIN(n, (size_t)JBUF - w->used);

		memcpy(w->buf + w->used, b, k);
		w->used += k;
		b += k;
		n -= k;
		if (w->used == JBUF && jw_flush(w) < 0)
			return -1;
	}
	return 0;
}

static int
put_offset(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	uint8_t le[8];

	(void)img;
	(void)page;
	put_le64(le, off);
	return jw_put(arg, le, sizeof(le));
}

/* The image's own bytes at off, zeros past its end (not the overlay). */
static int
disk_page(gp_image *img, uint64_t off, uint8_t *buf)
{
	size_t n = 0;

	if (off < img->phys_size)
		n = (size_t)MIN((uint64_t)PAGE, img->phys_size - off);
	memset(buf + n, 0, PAGE - n);
	if (n && file_pread(img->fd, buf, n, off) < 0) {
		error_set(errno, "%s: read at offset %llu: %s", img->path,
		    (unsigned long long)off, strerror(errno));
		return -1;
	}
	return 0;
}

static int
put_before(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	uint8_t old[PAGE], le[4];

	(void)page;
	if (disk_page(img, off, old) < 0)
		return -1;
	put_le32(le, crc32c(0, old, PAGE));
	return jw_put(arg, le, sizeof(le));
}

static int
put_page(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	(void)img;
	(void)off;
	return jw_put(arg, page, PAGE);
}

/* Copy one page into the image, clipped to the file's final size. */
static int
apply_page(gp_image *img, uint64_t off, const uint8_t *page, uint64_t final)
{
	size_t n;

	if (off >= final)
		return 0;
	n = (size_t)MIN((uint64_t)PAGE, final - off);
	if (file_pwrite(img->fd, page, n, off) < 0) {
		error_set(errno, "%s: write at offset %llu: %s", img->path,
		    (unsigned long long)off, strerror(errno));
		return -1;
	}
	return 0;
}

static int
apply_cb(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	return apply_page(img, off, page, *(uint64_t *)arg);
}

static int
finish(gp_image *img, const char *jpath, uint64_t final)
{
	if (img->phys_size != final &&
	    ftruncate(img->fd, (off_t)final) < 0) {
		error_set(errno, "%s: %s", img->path, strerror(errno));
		return -1;
	}
	img->phys_size = img->file_size = final;
	if (fdatasync(img->fd) < 0) {
		error_set(errno, "%s: flush: %s", img->path, strerror(errno));
		return -1;
	}
	if (unlink(jpath) < 0 && errno != ENOENT) {
		error_set(errno, "%s: %s", jpath, strerror(errno));
		return -1;
	}
	sync_dir_of(jpath);
	return 0;
}

int
blk_journal_commit(gp_image *img)
{
	char *jpath = blk_journal_path(img->path);
	char *tmp = xasprintf("%s.tmp", jpath);
	struct jwriter w = { .fd = -1, .path = tmp };
	uint8_t h[JNL_HDR], t[JNL_TRAILER];
	uint64_t n = blk_cow_count(img), final = img->file_size;
	int ret = -1;

	if (blk_cow_check_limit(img) < 0)
		goto out;
	/* The payload written straight to the file must be stable before
	 * the journal makes anything point at it. */
	if (blk_file_sync(img) < 0)
		goto out;
	/* New, never through a link someone planted beside the image. */
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (w.fd < 0) {
		error_set(errno, "%s: cannot create the journal: %s", tmp,
		    strerror(errno));
		goto out;
	}
	w.buf = xmalloc(JBUF);
	memset(h, 0, sizeof(h));
	memcpy(h, JNL_MAGIC, 8);
	put_le32(h + 8, 2);
	put_le32(h + 12, PAGE);
	put_le64(h + 16, n);
	put_le64(h + 24, blk_cow_base_size(img));
	put_le64(h + 32, final);
	if (jw_put(&w, h, sizeof(h)) < 0 ||
	    blk_cow_foreach(img, put_offset, &w) < 0 ||
	    blk_cow_foreach(img, put_before, &w) < 0 ||
	    blk_cow_foreach(img, put_page, &w) < 0)
		goto fail;
	memset(t, 0, sizeof(t));
	memcpy(t, JNL_END, 8);
	put_le32(t + 8, w.crc);
	w.crc = 0;
	if (jw_put(&w, t, sizeof(t)) < 0 || jw_flush(&w) < 0)
		goto fail;
	if (fsync(w.fd) < 0) {
		error_set(errno, "%s: flush: %s", tmp, strerror(errno));
		goto fail;
	}
	close(w.fd);
	w.fd = -1;
	if (rename(tmp, jpath) < 0) {
		error_set(errno, "%s: %s", jpath, strerror(errno));
		goto fail;
	}
	if (sync_dir_of(jpath) < 0) {
		error_set(errno, "%s: flushing its directory: %s", jpath,
		    strerror(errno));
		goto out;	/* the journal stands; the next open finishes */
	}
	/* Committed.  From here a failure leaves the journal for the next
	 * open to finish. */
	fault_point("journal-committed");
	if (blk_cow_foreach(img, apply_cb, &final) < 0 ||
	    finish(img, jpath, final) < 0) {
		error_prefix("%s: the change is committed in %s and will be "
		    "completed by the next gpupv-prep run", img->path, jpath);
		goto out;
	}
	ret = 0;
	goto out;
fail:
	unlink(tmp);
out:
	if (w.fd >= 0)
		close(w.fd);
	free(w.buf);
	free(tmp);
	free(jpath);
	return ret;
}

/*
 * Read and check a journal; on success *data holds n offsets, then n
 * CRCs of the pages as they were (*crcs, NULL for version 1), then n
 * pages.  Returns 1 if valid, 0 if there is none, -1 on error.
 */
static int
journal_load(gp_image *img, const char *jpath, uint64_t *np, uint64_t *final,
    uint8_t **data, bool *has_crcs)
{
	struct stat st;
	uint8_t h[JNL_HDR], *buf = NULL;
	uint64_t n, size;
	uint32_t ver;
	int fd;

	fd = open(jpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		error_set(errno, "%s: %s%s", jpath, strerror(errno),
		    errno == ELOOP ? " (a journal is never a symbolic link)" :
		    "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < JNL_HDR + JNL_TRAILER ||
	    file_pread(fd, h, sizeof(h), 0) < 0)
		goto bad;
	n = get_le64(h + 16);
	ver = get_le32(h + 8);
	if (memcmp(h, JNL_MAGIC, 8) != 0 || (ver != 1 && ver != 2) ||
	    get_le32(h + 12) != PAGE || n > JNL_MAX_PAGES)
		goto bad;
	*has_crcs = ver == 2;
	size = JNL_HDR + n * (8 + (*has_crcs ? 4 : 0) + PAGE) + JNL_TRAILER;
	if ((uint64_t)st.st_size != size)
		goto bad;
	buf = xmalloc((size_t)size);
	if (file_pread(fd, buf, (size_t)size, 0) < 0)
		goto bad;
	if (memcmp(buf + size - JNL_TRAILER, JNL_END, 8) != 0 ||
	    get_le32(buf + size - 8) != crc32c(0, buf, size - JNL_TRAILER))
		goto bad;
	*final = get_le64(h + 32);
	if (*final != img->phys_size) {
		error_corrupt(img->path, "the journal %s was written for a file "
		    "of %llu bytes, but the image has %llu; remove the journal "
		    "only if the image was replaced on purpose", jpath,
		    (unsigned long long)*final,
		    (unsigned long long)img->phys_size);
		goto fail;
	}
	close(fd);
	memmove(buf, buf + JNL_HDR, (size_t)(size - JNL_HDR - JNL_TRAILER));
	*np = n;
	*data = buf;
	return 1;
bad:
	/* The rename makes a journal whole or absent; this one is neither. */
	error_corrupt(img->path, "the journal %s is damaged; it cannot be "
	    "completed, and the image may be inconsistent", jpath);
fail:
	close(fd);
	free(buf);
	return -1;
}

int
blk_journal_recover(gp_image *img)
{
	char *jpath = blk_journal_path(img->path);
	char *tmp = xasprintf("%s.tmp", jpath);
	uint8_t *data = NULL;
	const uint8_t *pages;
	uint64_t n = 0, final = 0, i;
	bool rw = BLK_FILE_WRITABLE(img), has_crcs = false;
	int r, ret = -1;

	/* A journal never renamed into place was never committed. */
	if (rw && unlink(tmp) == 0)
		debug("%s: removed an uncommitted journal", tmp);
	r = journal_load(img, jpath, &n, &final, &data, &has_crcs);
	if (r <= 0) {
		ret = r;
		goto out;
	}
	pages = data + 8 * n + (has_crcs ? 4 * n : 0);
	/* Every page holds what it held before, or the journal's: anything
	 * else means the image changed after the interrupted run. */
	for (i = 0; i < n; i++) {
		uint64_t off = get_le64(data + 8 * i);
		uint8_t now[PAGE];

		if (off % PAGE || off >= final) {
			error_corrupt(img->path, "the journal %s names offset "
			    "%llu, outside the image", jpath,
			    (unsigned long long)off);
			goto out;
		}
		if (!has_crcs)
			continue;
		if (disk_page(img, off, now) < 0)
			goto out;
		if (memcmp(now, pages + i * PAGE, PAGE) != 0 &&
		    crc32c(0, now, PAGE) != get_le32(data + 8 * n + 4 * i)) {
			error_corrupt(img->path, "the journal %s is stale: the "
			    "image changed after the gpupv-prep run that left "
			    "it was interrupted (at offset %llu), perhaps in a "
			    "VM; it is not applied.  Move the journal away to "
			    "use the image as it is now", jpath,
			    (unsigned long long)off);
			goto out;
		}
	}
	if (!rw)
		blk_cow_begin(img, true);
	for (i = 0; i < n; i++) {
		uint64_t off = get_le64(data + 8 * i);
		const uint8_t *page = pages + i * PAGE;

		if (rw ? apply_page(img, off, page, final) < 0 :
		    blk_cow_put(img, off, page) < 0)
			goto out;
	}
	if (rw && finish(img, jpath, final) < 0)
		goto out;
	img->journal_replayed = true;
	debug("%s: completed the journal of an interrupted commit (%llu "
	    "pages)%s", img->path, (unsigned long long)n, rw ? "" :
	    " in memory");
	ret = 0;
out:
	free(data);
	free(tmp);
	free(jpath);
	return ret;
}
