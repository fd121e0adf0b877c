/*
 * ntfs.c - NTFS through libntfs-3g (the only file that includes its
 * headers).  The volume is reached through our own ntfs_device_operations
 * over a slice of the virtual disk, so no loop device, FUSE or root is
 * involved.  Read-write mounts refuse what libntfs-3g cannot safely change:
 * a hibernated or Fast Startup volume (EPERM) and an unclean journal
 * (EOPNOTSUPP); NTFS_MNT_RECOVER is never passed, since it discards the
 * journal.  libntfs-3g's log output is routed into our error reporting.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/bitmap.h>
#include <ntfs-3g/cache.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/logfile.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/mst.h>
#include <ntfs-3g/ntfstime.h>
#include <ntfs-3g/index.h>
#include <ntfs-3g/runlist.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>

#include "acl.h"
#include "fs.h"
#include "ntfs.h"
#include "winname.h"
#include "place.h"

#define GP_NTFS_EPOCH_DELTA	116444736000000000LL	/* 1601 -> 1970, 100 ns */
/* Caps on walking a volume that may be hostile: path depth, and the
 * entries of one folder (System32 has about 5000). */
#define NTFS_MAX_PATH_DEPTH	64
#define NTFS_MAX_DIR_ENTRIES	(1u << 20)
#define NTFS_IO_CHUNK		(1024 * 1024)
/* Runs one file's data may be split into when no free extent holds it
 * whole (each costs a few bytes of mapping pairs; libntfs-3g moves them
 * into extension records when the base record is full). */
#define NTFS_MAX_RUNS		4096
/* Room left in an MFT record after a resident value: an 8.3 name still
 * has to fit (its FILE_NAME attribute is about 112 bytes). */
#define NTFS_RESIDENT_SLACK	160
#define NTFS_MAX_ALIAS		1000000	/* "~N" candidates tried */

/* The driver's handle from the one fs.c passes (its first member). */
#define NV(pv)	((struct ntfs_vol *)(pv))

struct slice {
	gp_image *img;
	uint64_t start;
	uint64_t size;
	int64_t pos;
	bool io_error;
};

struct ntfs_vol {
	struct gp_volume pub;		/* first: the handle fs.c dispatches on */
	struct slice sl;
	struct ntfs_device *dev;
	ntfs_volume *vol;
	bool writable;
	bool secure_open;		/* $Secure indexes opened for new ids */
	bool secure_checked;
	struct {			/* inherited ids stored (inherited_id) */
		le32 parent, id;
		u64 ino;
		bool is_dir;
	} inherit[64];
	size_t ninherit;
	char *secure_bad;		/* why $Secure cannot be written, or
					   NULL (check_secure) */
	bool short_names;		/* give new names 8.3 aliases */
	struct PERMISSIONS_CACHE *seccache;
	char *where;			/* "IMAGE (offset N)" for messages */
	/* Placement (place.c), made at the first allocation. */
	struct place *place;
	uint64_t block_size;		/* of the image, 0: none */
	/* Clusters the session freed: kept marked in use until the end. */
	struct place_run *pinned;
	size_t npinned, pinned_cap;
};

/* ---- libntfs-3g logging ------------------------------------------- */

static char ntfs_last_msg[512];

static int
log_handler(const char *function, const char *file, int line, u32 level,
    void *data, const char *format, va_list args)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), format, args);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (level & (NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
	    NTFS_LOG_LEVEL_CRITICAL | NTFS_LOG_LEVEL_WARNING) && n)
		memcpy(ntfs_last_msg, msg, n + 1);
	if (debug_enabled())
		debug("libntfs-3g: %s: %s", function, msg);
	return (int)n;
}

static void
log_setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	ntfs_log_set_handler(log_handler);
	ntfs_log_set_levels(NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
	    NTFS_LOG_LEVEL_CRITICAL | NTFS_LOG_LEVEL_WARNING |
	    (debug_enabled() ? NTFS_LOG_LEVEL_INFO | NTFS_LOG_LEVEL_VERBOSE |
	    NTFS_LOG_LEVEL_QUIET : 0));
}

/* ---- device operations over a slice of the image ------------------- */

static int
dev_open(struct ntfs_device *dev, int flags)
{
	if (NDevOpen(dev)) {
		errno = EBUSY;
		return -1;
	}
	if ((flags & O_ACCMODE) == O_RDONLY)
		NDevSetReadOnly(dev);
	else
		NDevClearReadOnly(dev);
	NDevSetOpen(dev);
	return 0;
}

static int
dev_close(struct ntfs_device *dev)
{
	struct slice *sl = dev->d_private;

	if (!NDevOpen(dev)) {
		errno = EBADF;
		return -1;
	}
	NDevClearOpen(dev);
	if (!NDevReadOnly(dev) && gp_image_flush(sl->img) < 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static s64
dev_pread(struct ntfs_device *dev, void *buf, s64 count, s64 off)
{
	struct slice *sl = dev->d_private;

	if (off < 0 || count < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)off >= sl->size)
		return 0;
	if ((uint64_t)count > sl->size - (uint64_t)off)
		count = (s64)(sl->size - (uint64_t)off);
	if (gp_image_read(sl->img, buf, (size_t)count,
	    sl->start + (uint64_t)off) < 0) {
		sl->io_error = true;
		errno = EIO;
		return -1;
	}
	return count;
}

static s64
dev_pwrite(struct ntfs_device *dev, const void *buf, s64 count, s64 off)
{
	struct slice *sl = dev->d_private;

	if (NDevReadOnly(dev)) {
		errno = EROFS;
		return -1;
	}
	if (off < 0 || count < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)off >= sl->size) {
		errno = ENOSPC;
		return -1;
	}
	if ((uint64_t)count > sl->size - (uint64_t)off)
		count = (s64)(sl->size - (uint64_t)off);
	NDevSetDirty(dev);
	if (gp_image_write(sl->img, buf, (size_t)count,
	    sl->start + (uint64_t)off) < 0) {
		sl->io_error = true;
		errno = EIO;
		return -1;
	}
	return count;
}

static s64
dev_seek(struct ntfs_device *dev, s64 off, int whence)
{
	struct slice *sl = dev->d_private;
	s64 np;

	switch (whence) {
	case SEEK_SET:
		np = off;
		break;
	case SEEK_CUR:
		np = sl->pos + off;
		break;
	case SEEK_END:
		np = (s64)sl->size + off;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (np < 0) {
		errno = EINVAL;
		return -1;
	}
	sl->pos = np;
	return np;
}

static s64
dev_read(struct ntfs_device *dev, void *buf, s64 count)
{
	struct slice *sl = dev->d_private;
	s64 r = dev_pread(dev, buf, count, sl->pos);

	if (r > 0)
		sl->pos += r;
	return r;
}

static s64
dev_write(struct ntfs_device *dev, const void *buf, s64 count)
{
	struct slice *sl = dev->d_private;
	s64 r = dev_pwrite(dev, buf, count, sl->pos);

	if (r > 0)
		sl->pos += r;
	return r;
}

static int
dev_sync(struct ntfs_device *dev)
{
	struct slice *sl = dev->d_private;

	if (!NDevReadOnly(dev) && gp_image_flush(sl->img) < 0) {
		errno = EIO;
		return -1;
	}
	NDevClearDirty(dev);
	return 0;
}

static int
dev_stat(struct ntfs_device *dev, struct stat *st)
{
	struct slice *sl = dev->d_private;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFBLK | 0600;
	st->st_size = (off_t)sl->size;
	st->st_blksize = 4096;
	return 0;
}

static int
dev_ioctl(struct ntfs_device *dev, unsigned long request, void *argp)
{
	struct slice *sl = dev->d_private;
	struct gp_image_info info;

	switch (request) {
	case BLKGETSIZE64:
		*(uint64_t *)argp = sl->size;
		return 0;
	case BLKGETSIZE:
		*(unsigned long *)argp = (unsigned long)(sl->size / 512);
		return 0;
	case BLKSSZGET:
		gp_image_get_info(sl->img, &info);
		*(int *)argp = (int)info.logical_sector_size;
		return 0;
	case BLKBSZSET:
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

static struct ntfs_device_operations slice_ops = {
	.open = dev_open,
	.close = dev_close,
	.seek = dev_seek,
	.read = dev_read,
	.write = dev_write,
	.pread = dev_pread,
	.pwrite = dev_pwrite,
	.sync = dev_sync,
	.stat = dev_stat,
	.ioctl = dev_ioctl,
};

/* ---- the cluster bitmap as the session sees it ---------------------- */

static int ntfs_fail(struct ntfs_vol *v, int code, int err, const char *what);

/*
 * How many clusters from lcn (at most n) have their $Bitmap bit equal to
 * set.  Read through libntfs-3g, so it sees what the session allocated;
 * small reads first, larger ones while the run goes on.
 */
static int64_t
bm_run(struct ntfs_vol *v, int64_t lcn, int64_t n, bool set)
{
	uint8_t buf[8192];
	int64_t done = 0, chunk = 64;
	const uint8_t all = set ? 0xff : 0;

	if (lcn < 0 || lcn >= v->vol->nr_clusters)
		return 0;
	n = MIN(n, v->vol->nr_clusters - lcn);
	while (done < n) {
		int64_t c = lcn + done, byte = c >> 3, i;
		int64_t nb = MIN(chunk, ((lcn + n + 7) >> 3) - byte);

		if (ntfs_attr_pread(v->vol->lcnbmp_na, byte, nb, buf) != nb) {
			errno = EIO;
			return -1;
		}
		for (i = c - byte * 8; i < nb * 8 && done < n; i++) {
			if (!(i & 7) && n - done >= 8 && buf[i >> 3] == all) {
				done += 8;
				i += 7;
				continue;
			}
			if ((bool)((buf[i >> 3] >> (i & 7)) & 1) != set)
				return done;
			done++;
		}
		chunk = MIN(chunk * 4, (int64_t)sizeof(buf));
	}
	return done;
}

static int
bm_set(struct ntfs_vol *v, int64_t lcn, int64_t len, bool set)
{
	if ((set ? ntfs_bitmap_set_run : ntfs_bitmap_clear_run)(
	    v->vol->lcnbmp_na, lcn, len) < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
		    "cannot update the cluster bitmap");
	v->vol->free_clusters += set ? -len : len;
	return 0;
}

/*
 * After the session freed runs (a deletion, a truncation), mark what
 * became free in use again until the session ends: then nothing later in
 * the session, ours or libntfs-3g's, allocates space that the old state
 * still uses.  Clusters still in use (another hard link) stay as they are.
 */
static int
pin_freed(struct ntfs_vol *v, const struct place_run *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t c = r[i].lcn, end = r[i].lcn + r[i].len, f, u;

		while (c < end) {
			f = bm_run(v, c, end - c, false);
			if (f < 0)
				return ntfs_fail(v, GP_EXIT_CORRUPT, EIO,
				    "cannot read the cluster bitmap");
			if (f > 0) {
				if (bm_set(v, c, f, true) < 0)
					return -1;
				if (v->npinned == v->pinned_cap) {
					v->pinned_cap = v->pinned_cap ?
					    v->pinned_cap * 2 : 64;
					v->pinned = xrealloc(v->pinned,
					    v->pinned_cap * sizeof(*v->pinned));
				}
				v->pinned[v->npinned].lcn = c;
				v->pinned[v->npinned++].len = f;
				c += f;
			}
			u = bm_run(v, c, end - c, true);
			if (u < 0)
				return -1;
			if (f == 0 && u == 0)
				break;
			c += u;
		}
	}
	return 0;
}

/* The session ends: what it freed is free. */
static int
unpin(struct ntfs_vol *v)
{
	size_t i;

	for (i = 0; i < v->npinned; i++)
		if (bm_set(v, v->pinned[i].lcn, v->pinned[i].len, false) < 0)
			return -1;
	v->npinned = 0;
	return 0;
}

static void
runs_add(struct place_run **r, size_t *n, int64_t lcn, int64_t len)
{
	*r = xrealloc(*r, (*n + 1) * sizeof(**r));
	(*r)[*n].lcn = lcn;
	(*r)[*n].len = len;
	(*n)++;
}

/* The clusters of every non-resident attribute of ni (deletion frees them). */
static int
inode_runs(struct ntfs_vol *v, ntfs_inode *ni, struct place_run **r, size_t *n)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	runlist_element *rl, *e;
	int err;

	if (!ctx)
		return ntfs_fail(v, GP_EXIT_FAILURE, errno, "out of memory");
	while (!(err = ntfs_attrs_walk(ctx))) {
		if (!ctx->attr->non_resident)
			continue;
		rl = ntfs_mapping_pairs_decompress(v->vol, ctx->attr, NULL);
		if (!rl) {
			ntfs_attr_put_search_ctx(ctx);
			return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "bad mapping "
			    "pairs in an attribute");
		}
		for (e = rl; e->length; e++)
			if (e->lcn >= 0)
				runs_add(r, n, e->lcn, e->length);
		free(rl);
	}
	ntfs_attr_put_search_ctx(ctx);
	if (errno != ENOENT)
		return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot walk the "
		    "attributes of an inode");
	return 0;
}

/* ---- placement: place.c over this volume ----------------------------- */

static int64_t
op_free_run(void *ctx, int64_t lcn, int64_t n)
{
	return bm_run(ctx, lcn, n, false);
}

static int
op_stored(void *ctx, int64_t lcn, int64_t n, int64_t *pn)
{
	struct ntfs_vol *v = ctx;
	uint64_t cs = v->vol->cluster_size, got = 0;
	int r = gp_image_block_status(v->sl.img, v->sl.start +
	    (uint64_t)lcn * cs, (uint64_t)n * cs, &got);

	/* A cluster across a block boundary counts as not stored. */
	*pn = (int64_t)(got / cs);
	if (*pn == 0) {
		*pn = 1;
		return 0;
	}
	return r;
}

static int64_t
op_block_end(void *ctx, int64_t lcn)
{
	struct ntfs_vol *v = ctx;
	uint64_t cs = v->vol->cluster_size, off;

	if (!v->block_size)
		return INT64_MAX;
	off = v->sl.start + (uint64_t)lcn * cs;
	off = (off / v->block_size + 1) * v->block_size;
	return (int64_t)((off - v->sl.start) / cs);
}

static const struct place_ops place_ops = {
	.free_run = op_free_run,
	.stored = op_stored,
	.block_end = op_block_end,
};

/* Each run of free clusters now, to fn, lowest first. */
static int
free_runs(struct ntfs_vol *v, int (*fn)(void *ctx, int64_t lcn, int64_t len),
    void *ctx)
{
	int64_t lcn = 0, nr = v->vol->nr_clusters, u, f;

	while (lcn < nr) {
		u = bm_run(v, lcn, nr - lcn, true);
		if (u < 0)
			goto fail;
		lcn += u;
		if (lcn >= nr)
			break;
		f = bm_run(v, lcn, nr - lcn, false);
		if (f < 0)
			goto fail;
		if (fn(ctx, lcn, f) < 0)
			return -1;
		lcn += f;
	}
	return 0;
fail:
	return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read the cluster "
	    "bitmap");
}

static int
place_run(void *ctx, int64_t lcn, int64_t len)
{
	return place_add_free(ctx, lcn, len);
}

/* The free space as the session found it, before its first allocation. */
static int
place_build(struct ntfs_vol *v)
{
	struct gp_image_info info;

	gp_image_get_info(v->sl.img, &info);
	v->block_size = info.block_size;
	v->place = place_new(&place_ops, v, v->vol->mft_zone_start,
	    v->vol->mft_zone_end);
	if (free_runs(v, place_run, v->place) < 0) {
		place_free(v->place);
		v->place = NULL;
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read the "
		    "cluster bitmap");
		return -1;
	}
	debug("%s: %lld clusters free to place data in", v->where,
	    (long long)place_available(v->place));
	return 0;
}

/* Whether size bytes of data fit in the file's MFT record. */
static bool
fits_resident(ntfs_inode *ni, uint64_t size)
{
	uint64_t room = le32_to_cpu(ni->mrec->bytes_allocated) -
	    le32_to_cpu(ni->mrec->bytes_in_use);

	return ((size + 7) & ~(uint64_t)7) + NTFS_RESIDENT_SLACK <= room;
}

/*
 * Empty the data attribute.  The clusters it held stay in use until the
 * session ends (pin_freed), so new contents never overwrite old ones in
 * place: the old state survives until the commit.
 */
static int
release_data(struct ntfs_vol *v, ntfs_attr *na)
{
	struct place_run *runs = NULL;
	size_t n = 0;
	runlist_element *e;
	int ret = -1;

	if (NAttrNonResident(na)) {
		if (ntfs_attr_map_whole_runlist(na) < 0) {
			ntfs_fail(v, GP_EXIT_CORRUPT, errno, "cannot read a "
			    "file's runlist");
			goto out;
		}
		for (e = na->rl; e && e->length; e++)
			if (e->lcn >= 0)
				runs_add(&runs, &n, e->lcn, e->length);
		/* A zero size with clusters still allocated: grow it by a
		 * byte so that the truncation below frees them. */
		if (!na->data_size && n && ntfs_attr_truncate(na, 1) < 0)
			goto fail;
	}
	if (na->data_size && ntfs_attr_truncate(na, 0) < 0)
		goto fail;
	ret = pin_freed(v, runs, n);
	goto out;
fail:
	ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot truncate a file");
out:
	free(runs);
	return ret;
}

/*
 * Give an empty data attribute size bytes of clusters chosen by place.c,
 * marked in the bitmap and described by its mapping pairs, before any
 * byte is written.
 */
static int
place_data(struct ntfs_vol *v, ntfs_inode *ni, ntfs_attr *na, uint64_t size)
{
	int64_t clusters = (int64_t)((size + v->vol->cluster_size - 1) >>
	    v->vol->cluster_size_bits), vcn = 0;
	struct place_run *runs = NULL;
	runlist_element *rl;
	ntfs_attr_search_ctx *ctx;
	size_t nr = 0, i;
	int ret = -1;

	if (!v->place && place_build(v) < 0)
		return -1;
	runs = xmalloc(NTFS_MAX_RUNS * sizeof(*runs));
	if (place_alloc(v->place, clusters, runs, NTFS_MAX_RUNS, &nr) < 0) {
		if (errno == ENOSPC)
			ntfs_fail(v, GP_EXIT_FAILURE, ENOSPC,
			    "NTFS volume is full (free space the session may "
			    "use: space free when it began)");
		else
			ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot place "
			    "the file's clusters");
		goto out;
	}
	for (i = 0; i < nr; i++)
		if (bm_set(v, runs[i].lcn, runs[i].len, true) < 0)
			goto out;
	if (debug_enabled())
		debug("%s: inode %llu: %lld clusters at %lld in %zu run(s)",
		    v->where, (unsigned long long)ni->mft_no,
		    (long long)clusters, (long long)runs[0].lcn, nr);
	if (!NAttrNonResident(na)) {
		ctx = ntfs_attr_get_search_ctx(ni, NULL);
		if (!ctx || ntfs_attr_lookup(AT_DATA, AT_UNNAMED, 0,
		    CASE_SENSITIVE, 0, NULL, 0, ctx) < 0 ||
		    ntfs_attr_make_non_resident(na, ctx) < 0) {
			if (ctx)
				ntfs_attr_put_search_ctx(ctx);
			ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
			    "cannot make the file's data non-resident");
			goto out;
		}
		ntfs_inode_mark_dirty(ctx->ntfs_ino);
		ntfs_attr_put_search_ctx(ctx);
	}
	/* libntfs-3g frees runlists with free(). */
	rl = xcalloc(nr + 1, sizeof(*rl));
	for (i = 0; i < nr; i++) {
		rl[i].vcn = vcn;
		rl[i].lcn = runs[i].lcn;
		rl[i].length = runs[i].len;
		vcn += runs[i].len;
	}
	rl[nr].vcn = vcn;
	rl[nr].lcn = LCN_ENOENT;
	rl[nr].length = 0;
	free(na->rl);
	na->rl = rl;
	na->allocated_size = clusters << v->vol->cluster_size_bits;
	NAttrSetFullyMapped(na);
	if (ntfs_attr_update_mapping_pairs(na, 0) < 0 ||
	    ntfs_attr_truncate_solid(na, (s64)size) < 0) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
		    "cannot record the file's clusters");
		goto out;
	}
	ret = 0;
out:
	free(runs);
	return ret;
}

/* ---- mount -------------------------------------------------------- */

/*
 * Whether $Bitmap or $MFT's bitmap has a size no volume has: $Bitmap
 * holds a bit per cluster (Windows rounds it up to 8 bytes; what a volume
 * shrunk to half its size could keep is allowed), the MFT bitmap a bit
 * per record of the MFT.
 */
static bool
bitmaps_bad(ntfs_volume *vol)
{
	s64 need = (vol->nr_clusters + 7) / 8;
	s64 records;

	if (!vol->lcnbmp_na || !vol->mftbmp_na || !vol->mft_na ||
	    vol->lcnbmp_na->data_size < need ||
	    vol->lcnbmp_na->data_size > MAX(2 * need, need + 1024 * 1024) ||
	    vol->lcnbmp_na->data_size > vol->lcnbmp_na->allocated_size + 8)
		return true;
	records = vol->mft_na->data_size >> vol->mft_record_size_bits;
	return vol->mftbmp_na->data_size < 0 ||
	    vol->mftbmp_na->data_size > records / 8 + 1024 * 1024;
}

static int
ntfs_fail(struct ntfs_vol *v, int code, int err, const char *what)
{
	if (ntfs_last_msg[0])
		error_setc(code, err, "%s: %s (libntfs-3g: %s)", v->where, what,
		    ntfs_last_msg);
	else
		error_setc(code, err, "%s: %s", v->where, what);
	return -1;
}

/*
 * Tell the image layer which clusters the volume's committed state leaves
 * free: file data written there cannot change what the old state means,
 * so it may bypass the session overlay.  Read before anything allocates.
 */
static void
declare_unused(struct ntfs_vol *v)
{
	const s64 piece = 1024 * 1024;
	s64 bytes = (v->vol->nr_clusters + 7) / 8, off;
	uint8_t *map;

	if (!v->vol->lcnbmp_na || bytes <= 0)
		return;
	gp_image_set_unused_map(v->sl.img, v->sl.start, v->vol->cluster_size,
	    (uint64_t)v->vol->nr_clusters);
	map = xmalloc((size_t)piece);
	for (off = 0; off < bytes; off += piece) {
		s64 n = MIN(piece, bytes - off);

		/* Unreadable: everything counts as in use (nothing direct). */
		if (ntfs_attr_pread(v->vol->lcnbmp_na, off, n, map) != n)
			memset(map, 0xff, (size_t)n);
		gp_image_map_used(v->sl.img, (uint64_t)off * 8, map,
		    (uint64_t)n * 8);
	}
	free(map);
}

static gp_volume *
nv_open(gp_image *img, uint64_t start, uint64_t size, bool writable)
{
	struct ntfs_vol *v = xcalloc(1, sizeof(*v));
	struct gp_image_info info;
	uint8_t boot[512];
	struct gp_error me;
	int e;

	log_setup();
	ntfs_last_msg[0] = '\0';
	gp_image_get_info(img, &info);
	v->pub.ops = &ntfs_fs_ops;
	v->where = xasprintf("%s: partition at offset %llu", info.path,
	    (unsigned long long)start);
	v->sl.img = img;
	v->sl.start = start;
	v->sl.size = size;
	v->writable = writable;
	if (size < 512 || gp_image_read(img, boot, sizeof(boot), start) < 0) {
		ntfs_fail(v, GP_EXIT_FAILURE, EINVAL,
		    "partition too small for a file system");
		goto fail;
	}
	if (memcmp(boot + 3, "-FVE-FS-", 8) == 0) {
		ntfs_fail(v, GP_EXIT_BITLOCKER, EACCES, "volume is encrypted "
		    "with BitLocker; decrypt it in the guest (manage-bde -off) "
		    "before preparing it offline");
		goto fail;
	}
	if (memcmp(boot + 3, "NTFS    ", 8) != 0) {
		ntfs_fail(v, GP_EXIT_FAILURE, EINVAL, "not an NTFS file system");
		goto fail;
	}
	v->dev = ntfs_device_alloc(v->where, 0, &slice_ops, &v->sl);
	if (!v->dev) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot set up the device");
		goto fail;
	}
	/* A read of ours that failed under the mount is its cause. */
	error_try(&me);
	v->vol = ntfs_device_mount(v->dev, writable ? NTFS_MNT_EXCLUSIVE :
	    NTFS_MNT_RDONLY);
	e = errno;
	error_end(&me);
	if (!v->vol) {
		if (v->sl.io_error && me.set) {
			error_pass(&me);
			error_prefix("%s", v->where);
		} else if (e == EPERM)
			error_setc(GP_EXIT_HIBERNATED, e, "%s: NTFS volume is "
			    "hibernated (Windows Fast Startup or hibernation); "
			    "boot the guest and shut it down fully (shutdown "
			    "/s /t 0, or disable Fast Startup: powercfg /h off)",
			    v->where);
		else if (e == EOPNOTSUPP)
			error_setc(GP_EXIT_UNCLEAN, e, "%s: NTFS journal is "
			    "unclean (Windows did not shut down cleanly); boot "
			    "the guest and shut it down cleanly, or run chkdsk",
			    v->where);
		else
			ntfs_fail(v, GP_EXIT_CORRUPT, e ? e : EIO,
			    "cannot mount the NTFS volume");
		ntfs_device_free(v->dev);
		v->dev = NULL;
		goto fail;
	}
	/*
	 * ntfs_mount() does these two; ntfs_device_mount() does not.  The
	 * inode caches only for reading: with them, deletions through
	 * ntfs_delete() without a path leave a stale directory in the cache.
	 */
	if (!writable)
		ntfs_create_lru_caches(v->vol);
	/* The two bitmaps are read whole below and on every allocation:
	 * their sizes must be what the volume and the MFT need, not what a
	 * damaged record claims (a 2 MiB volume claiming a bitmap of 2^40
	 * bytes kept libntfs-3g counting for minutes). */
	if (bitmaps_bad(v->vol)) {
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "the cluster or MFT bitmap "
		    "is not of the size the volume needs");
		ntfs_umount(v->vol, TRUE);
		goto fail;
	}
	if (ntfs_volume_get_free_space(v->vol) < 0) {
		ntfs_fail(v, GP_EXIT_CORRUPT, errno, "cannot read the cluster "
		    "bitmap");
		ntfs_umount(v->vol, TRUE);
		goto fail;
	}
	/*
	 * Look names up case-insensitively, as Windows does.  Not through
	 * ntfs_set_ignore_case(): it also makes readdir return every name in
	 * lower case, and we must see names as they are stored.
	 */
	NVolClearCaseSensitive(v->vol);
	if (writable) {
		/* Inherited security descriptors are stored in $Secure. */
		if (ntfs_open_secure(v->vol) == 0)
			v->secure_open = true;
		declare_unused(v);
	}
	return &v->pub;
fail:
	free(v->where);
	free(v);
	return NULL;
}

static int
nv_close(gp_volume *pv)
{
	struct ntfs_vol *v = NV(pv);
	int ret = 0;

	if (!v)
		return 0;
	ntfs_last_msg[0] = '\0';
	if (v->writable && unpin(v) < 0)
		ret = -1;
	if (v->secure_open)
		ntfs_close_secure(v->vol);
	free(v->secure_bad);
	if (ntfs_umount(v->vol, FALSE) < 0) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno, "unmount failed");
		ret = -1;
	}
	if (v->sl.io_error && ret == 0) {
		ntfs_fail(v, GP_EXIT_FAILURE, EIO, "I/O error on the image");
		ret = -1;
	}
	place_free(v->place);
	free(v->pinned);
	free(v->where);
	free(v);
	return ret;
}

static enum gp_volume_state
nv_state(gp_volume *pv)
{
	struct ntfs_vol *v = NV(pv);
	enum gp_volume_state st = GP_VOL_CLEAN;
	RESTART_PAGE_HEADER *rp = NULL;
	struct gp_error e;
	ntfs_inode *ni;
	ntfs_attr *na;

	/* The state is the answer: a read that fails on the way makes it
	 * "dirty" and is recorded nowhere. */
	error_try(&e);
	if (ntfs_volume_check_hiberfile(v->vol, 0) < 0 && errno == EPERM) {
		error_end(&e);
		return GP_VOL_HIBERNATED;
	}
	if (v->vol->flags & VOLUME_IS_DIRTY)
		st = GP_VOL_DIRTY;
	ni = ntfs_inode_open(v->vol, FILE_LogFile);
	na = ni ? ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0) : NULL;
	if (!na || !ntfs_check_logfile(na, &rp) ||
	    !ntfs_is_logfile_clean(na, rp))
		st = GP_VOL_DIRTY;
	free(rp);
	if (na)
		ntfs_attr_close(na);
	if (ni)
		ntfs_inode_close(ni);
	error_end(&e);
	return st;
}

static const char *
nv_label(gp_volume *pv)
{
	struct ntfs_vol *v = NV(pv);
	return v->vol->vol_name ? v->vol->vol_name : "";
}

/* ---- paths -------------------------------------------------------- */

/* Split a path on '/' and '\\' into components (modifies s). */
static size_t
split_path(char *s, char **comp, size_t max)
{
	size_t n = 0;
	char *p = s, *start;

	for (;;) {
		while (*p == '/' || *p == '\\')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != '/' && *p != '\\')
			p++;
		if (n == max)
			return max + 1;
		comp[n++] = start;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

/*
 * Look a name up in a directory, case-insensitively (upcase table): 1
 * found, 0 absent (errno ENOENT, nothing recorded), -1 with an error (the
 * index could not be read: the block layer under libntfs-3g recorded it).
 */
static int
lookup(struct ntfs_vol *v, ntfs_inode *dir, const char *name, MFT_REF *mref)
{
	struct gp_error e;
	ntfschar *uname = NULL;
	int ulen;
	u64 r;

	ulen = ntfs_mbstoucs(name, &uname);
	if (ulen < 0) {
		error_set(EILSEQ, "%s: name '%s' is not valid text", v->where,
		    name);
		return -1;
	}
	error_try(&e);
	r = ntfs_inode_lookup_by_name(dir, uname, ulen);
	free(uname);
	if (error_end(&e))
		return error_pass(&e);
	if (r == (u64)-1) {
		errno = ENOENT;
		return 0;
	}
	*mref = r;
	return 1;
}

/* Open the inode at path; NULL with errno ENOENT (no message) if absent. */
static ntfs_inode *
open_path(struct ntfs_vol *v, const char *path)
{
	char *copy = xstrdup(path), *comp[NTFS_MAX_PATH_DEPTH];
	size_t n = split_path(copy, comp, NTFS_MAX_PATH_DEPTH), i;
	ntfs_inode *ni, *next;
	MFT_REF mref;

	if (n > NTFS_MAX_PATH_DEPTH) {
		free(copy);
		error_set(ENAMETOOLONG, "%s: path %s is too deep", v->where,
		    path);
		return NULL;
	}
	ni = ntfs_inode_open(v->vol, FILE_root);
	if (!ni) {
		free(copy);
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot open the root "
		    "directory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (!(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
			ntfs_inode_close(ni);
			free(copy);
			errno = ENOTDIR;
			return NULL;
		}
		if (lookup(v, ni, comp[i], &mref) <= 0) {
			int e = errno;

			ntfs_inode_close(ni);
			free(copy);
			errno = e;
			return NULL;
		}
		next = ntfs_inode_open(v->vol, MREF(mref));
		ntfs_inode_close(ni);
		if (!next) {
			free(copy);
			ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot open an inode "
			    "on the path");
			return NULL;
		}
		ni = next;
	}
	free(copy);
	return ni;
}

static void
fill_stat(ntfs_inode *ni, struct gp_stat *st)
{
	ntfs_attr *na;

	memset(st, 0, sizeof(*st));
	st->is_dir = ni->mrec->flags & MFT_RECORD_IS_DIRECTORY;
	st->attributes = le32_to_cpu(ni->flags);
	st->is_link = (ni->flags & FILE_ATTR_REPARSE_POINT) != 0;
	/* Any 64-bit value a record holds; divided first, so none
	 * overflows. */
	st->mtime = (int64_t)((uint64_t)sle64_to_cpu(ni->last_data_change_time)
	    / 10000000) - GP_NTFS_EPOCH_DELTA / 10000000;
	if (!st->is_dir) {
		na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
		if (na) {
			st->size = (uint64_t)na->data_size;
			ntfs_attr_close(na);
		}
	}
}

/*
 * A data size read from the volume, checked before anything loops over it
 * or allocates by it: not negative, and no larger than the volume (a
 * sparse file claiming 2^62 bytes would read zeros for ever).
 */
static int
size_ok(struct ntfs_vol *v, const ntfs_attr *na, const char *path)
{
	uint64_t vol = (uint64_t)v->vol->nr_clusters * v->vol->cluster_size;

	if (na->data_size >= 0 && (uint64_t)na->data_size <= vol)
		return 0;
	error_setc(GP_EXIT_CORRUPT, EINVAL, "%s: %s claims %lld bytes, more "
	    "than the volume holds; the file system is corrupt", v->where,
	    path, (long long)na->data_size);
	return -1;
}

static int
nv_stat(gp_volume *pv, const char *path, struct gp_stat *st)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni = open_path(v, path);

	if (!ni)
		return -1;
	fill_stat(ni, st);
	ntfs_inode_close(ni);
	return 0;
}

struct dirent_list {
	char **names;
	MFT_REF *mrefs;
	size_t n;
	bool overflow;
};

static int
collect(void *ctx, const ntfschar *name, const int name_len,
    const int name_type, const s64 pos, const MFT_REF mref,
    const unsigned dt_type)
{
	struct dirent_list *l = ctx;
	char *s = NULL;

	if (name_type == FILE_NAME_DOS)
		return 0;
	if (l->n >= NTFS_MAX_DIR_ENTRIES) {
		l->overflow = true;
		return -1;
	}
	if (ntfs_ucstombs(name, name_len, &s, 0) < 0 || !s)
		return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		free(s);
		return 0;
	}
	l->names = xrealloc(l->names, (l->n + 1) * sizeof(char *));
	l->mrefs = xrealloc(l->mrefs, (l->n + 1) * sizeof(MFT_REF));
	l->names[l->n] = s;
	l->mrefs[l->n] = mref;
	l->n++;
	return 0;
}

static void
list_free(struct dirent_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->mrefs);
}

static int
read_dir(struct ntfs_vol *v, ntfs_inode *dir, struct dirent_list *l)
{
	s64 pos = 0;

	memset(l, 0, sizeof(*l));
	if (ntfs_readdir(dir, &pos, l, collect) < 0 && !l->overflow) {
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read a directory");
		list_free(l);
		return -1;
	}
	if (l->overflow) {
		error_set(E2BIG, "%s: directory has more than %u entries",
		    v->where, NTFS_MAX_DIR_ENTRIES);
		list_free(l);
		return -1;
	}
	return 0;
}

static int
nv_list(gp_volume *pv, const char *path,
    int (*fn)(void *ctx, const char *name, const struct gp_stat *st), void *ctx)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *dir = open_path(v, path), *ni;
	struct dirent_list l;
	struct gp_stat st;
	size_t i;
	int ret = 0;

	if (!dir)
		return -1;
	if (!(dir->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
		ntfs_inode_close(dir);
		errno = ENOTDIR;
		return -1;
	}
	ret = read_dir(v, dir, &l);
	ntfs_inode_close(dir);
	if (ret < 0)
		return -1;
	for (i = 0; i < l.n && ret == 0; i++) {
		/* Metadata files ($MFT, ...) are not part of any listing. */
		if (MREF(l.mrefs[i]) < FILE_first_user &&
		    MREF(l.mrefs[i]) != FILE_root)
			continue;
		ni = ntfs_inode_open(v->vol, MREF(l.mrefs[i]));
		if (!ni)
			continue;
		fill_stat(ni, &st);
		ntfs_inode_close(ni);
		ret = fn(ctx, l.names[i], &st);
	}
	list_free(&l);
	return ret < 0 ? -1 : 0;
}

static char *
nv_realpath(gp_volume *pv, const char *path)
{
	struct ntfs_vol *v = NV(pv);
	char *copy = xstrdup(path), *comp[NTFS_MAX_PATH_DEPTH];
	size_t n = split_path(copy, comp, NTFS_MAX_PATH_DEPTH), i, j;
	char *out = xstrdup("");
	ntfs_inode *ni = NULL, *next;
	struct dirent_list l;
	MFT_REF mref;

	if (n > NTFS_MAX_PATH_DEPTH)
		goto fail_noent;
	ni = ntfs_inode_open(v->vol, FILE_root);
	if (!ni)
		goto fail_noent;
	for (i = 0; i < n; i++) {
		const char *actual = NULL;
		char *t;

		if (lookup(v, ni, comp[i], &mref) <= 0)
			goto fail_noent;
		/* The index holds the stored case; find the entry's name. */
		if (read_dir(v, ni, &l) < 0)
			goto fail;
		for (j = 0; j < l.n; j++)
			if (MREF(l.mrefs[j]) == MREF(mref)) {
				actual = l.names[j];
				break;
			}
		t = xasprintf("%s/%s", out, actual ? actual : comp[i]);
		free(out);
		out = t;
		list_free(&l);
		next = ntfs_inode_open(v->vol, MREF(mref));
		ntfs_inode_close(ni);
		ni = next;
		if (!ni)
			goto fail_noent;
	}
	ntfs_inode_close(ni);
	free(copy);
	if (!*out) {
		free(out);
		out = xstrdup("/");
	}
	return out;
fail_noent:
	errno = ENOENT;
fail:
	if (ni)
		ntfs_inode_close(ni);
	free(copy);
	free(out);
	return NULL;
}

static int
nv_extract(gp_volume *pv, const char *path, const char *host_path)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni = open_path(v, path);
	ntfs_attr *na = NULL;
	uint8_t *buf = NULL;
	int fd = -1, ret = -1;
	s64 off = 0, r;

	if (!ni) {
		error_set(errno, "%s: %s: %s", v->where, path,
		    strerror(errno));
		return -1;
	}
	na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot open file data");
		goto out;
	}
	if (size_ok(v, na, path) < 0)
		goto out;
	fd = open(host_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_set(errno, "%s: %s", host_path, strerror(errno));
		goto out;
	}
	buf = xmalloc(NTFS_IO_CHUNK);
	while (off < na->data_size) {
		s64 want = MIN((s64)NTFS_IO_CHUNK, na->data_size - off);

		r = ntfs_attr_pread(na, off, want, buf);
		if (r <= 0) {
			ntfs_fail(v, GP_EXIT_FAILURE, EIO, "read error in a "
			    "file");
			error_prefix("%s", path);
			goto out;
		}
		if (file_pwrite(fd, buf, (size_t)r, (uint64_t)off) < 0) {
			error_set(errno, "%s: %s", host_path, strerror(errno));
			goto out;
		}
		off += r;
	}
	ret = 0;
out:
	free(buf);
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		error_set(errno, "%s: %s", host_path, strerror(errno));
		ret = -1;
	}
	if (na)
		ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return ret;
}

/* ---- writing ------------------------------------------------------ */

/* Name of $Secure's descriptor stream. */
static ntfschar sds_name[] = { const_cpu_to_le16('$'), const_cpu_to_le16('S'),
	const_cpu_to_le16('D'), const_cpu_to_le16('S') };

/*
 * $Secure's two indexes ($SII by id, $SDH by hash), walked once before
 * the first descriptor is looked up or added: libntfs-3g trusts them
 * (an entry it takes the size of a descriptor from, an index block left
 * half-read by a failed lookup that it later writes back through a
 * NULL attribute).  Every index block in use must carry a valid update
 * sequence, every entry must lie inside its block with the key and data
 * sizes these indexes have, point into $SDS within its bounds, and name
 * only blocks that exist.  Returns NULL, or why not (allocated).
 */
#define SECURE_MAX_BLOCKS 65536		/* 256 MiB of index at 4 KiB */

struct sec_index {
	const char *name;
	ntfschar uname[4];
	COLLATION_RULES collation;
	unsigned key_len, data_off;	/* of every entry but the last */
	uint32_t bs, vcn_unit;		/* block size; bytes per VCN */
};

static char *
check_entries(const u8 *p, size_t len, const struct sec_index *x,
    uint64_t sds_size, uint64_t nblocks, bool inner, const char *where)
{
	size_t o = 0;

	while (o + sizeof(INDEX_ENTRY_HEADER) <= len) {
		const INDEX_ENTRY *ie = (const INDEX_ENTRY *)(p + o);
		size_t elen = le16_to_cpu(ie->length);
		bool node = ie->ie_flags & INDEX_ENTRY_NODE;

		if (elen < sizeof(INDEX_ENTRY_HEADER) + (node ? 8 : 0) ||
		    elen % 8 || o + elen > len)
			return xasprintf("%s %s: an entry overruns it", x->name,
			    where);
		/* Every entry of an inner node has a child, none of a leaf
		 * has (libntfs-3g walks down from any that says so). */
		if (node != inner)
			return xasprintf("%s %s: an entry %s a child its node "
			    "%s", x->name, where, node ? "names" : "lacks",
			    inner ? "needs" : "cannot have");
		if (node) {
			s64 vcn = sle64_to_cpu(*(const sle64 *)(p + o + elen -
			    8));

			if (vcn < 0 || (uint64_t)vcn > UINT64_MAX / x->vcn_unit ||
			    (uint64_t)vcn * x->vcn_unit % x->bs ||
			    (uint64_t)vcn * x->vcn_unit / x->bs >= nblocks)
				return xasprintf("%s %s: an entry names a block "
				    "the index does not have", x->name, where);
		}
		if (ie->ie_flags & INDEX_ENTRY_END)
			return NULL;
		{
			unsigned doff = le16_to_cpu(ie->data_offset);
			unsigned dlen = le16_to_cpu(ie->data_length);
			const SECURITY_DESCRIPTOR_HEADER *h;
			uint64_t off, dl;

			if (le16_to_cpu(ie->key_length) != x->key_len ||
			    doff != x->data_off || dlen < sizeof(*h) ||
			    doff + dlen > elen - (node ? 8 : 0))
				return xasprintf("%s %s: an entry of the wrong "
				    "shape", x->name, where);
			h = (const SECURITY_DESCRIPTOR_HEADER *)(p + o + doff);
			off = le64_to_cpu(h->offset);
			dl = le32_to_cpu(h->length);
			if (dl < sizeof(*h) + sizeof(SECURITY_DESCRIPTOR_RELATIVE) ||
			    dl > 256 * 1024 || off > sds_size ||
			    dl > sds_size - off ||
			    off / (256 * 1024) != (off + dl - 1) / (256 * 1024))
				return xasprintf("%s %s: entry for id %u places "
				    "its descriptor outside $SDS", x->name, where,
				    le32_to_cpu(h->security_id));
		}
		o += elen;
	}
	return xasprintf("%s %s: no last entry", x->name, where);
}

/* The entries an INDEX_HEADER at hp (inside a buffer of avail bytes
 * from hp) describes. */
static char *
check_header(const INDEX_HEADER *ih, size_t avail, const struct sec_index *x,
    uint64_t sds_size, uint64_t nblocks, const char *where)
{
	size_t eo = le32_to_cpu(ih->entries_offset);
	size_t il = le32_to_cpu(ih->index_length);

	if (eo < sizeof(*ih) || eo > il || il > avail ||
	    le32_to_cpu(ih->allocated_size) > avail)
		return xasprintf("%s %s: its header overruns it", x->name,
		    where);
	/* LARGE_INDEX in the root, INDEX_NODE in a block: the same bit. */
	return check_entries((const u8 *)ih + eo, il - eo, x, sds_size,
	    nblocks, ih->ih_flags & LARGE_INDEX, where);
}

static char *
check_sec_index(struct ntfs_vol *v, struct sec_index *x, uint64_t sds_size)
{
	ntfs_inode *ni = v->vol->secure_ni;
	INDEX_ROOT *ir = NULL;
	u8 *bmp = NULL, *blk = NULL;
	s64 rsize = 0, bsize = 0;
	uint64_t nblocks = 0, i;
	uint32_t bs;
	ntfs_attr *na = NULL;
	char *why = NULL, where[48];

	ir = ntfs_attr_readall(ni, AT_INDEX_ROOT, (ntfschar *)x->uname, 4,
	    &rsize);
	if (!ir || rsize < (s64)sizeof(INDEX_ROOT) || rsize > 65536) {
		why = xasprintf("%s: no index root", x->name);
		goto out;
	}
	if (ir->type != AT_UNUSED || ir->collation_rule != x->collation) {
		why = xasprintf("%s: not a view index sorted as $Secure's are",
		    x->name);
		goto out;
	}
	bs = le32_to_cpu(ir->index_block_size);
	if (bs < 512 || bs > 65536 || (bs & (bs - 1))) {
		why = xasprintf("%s: index blocks of %u bytes", x->name, bs);
		goto out;
	}
	/* Child blocks are named in clusters, or in 512-byte units when a
	 * block is smaller than a cluster. */
	x->bs = bs;
	x->vcn_unit = bs >= v->vol->cluster_size ? v->vol->cluster_size : 512;
	if (ir->index.ih_flags & LARGE_INDEX) {
		na = ntfs_attr_open(ni, AT_INDEX_ALLOCATION,
		    (ntfschar *)x->uname, 4);
		if (!na || na->data_size < 0 || na->data_size % bs ||
		    (uint64_t)na->data_size / bs > SECURE_MAX_BLOCKS) {
			why = xasprintf("%s: its allocation is missing or of a "
			    "size no index has", x->name);
			goto out;
		}
		nblocks = (uint64_t)na->data_size / bs;
		bmp = ntfs_attr_readall(ni, AT_BITMAP, (ntfschar *)x->uname, 4,
		    &bsize);
		if (!bmp || (uint64_t)bsize * 8 < nblocks) {
			why = xasprintf("%s: its block bitmap is missing",
			    x->name);
			goto out;
		}
	}
	why = check_header(&ir->index, (size_t)rsize - offsetof(INDEX_ROOT,
	    index), x, sds_size, nblocks, "root");
	blk = xmalloc(bs);
	for (i = 0; !why && i < nblocks; i++) {
		INDEX_BLOCK *ib = (INDEX_BLOCK *)blk;

		if (!(bmp[i / 8] & (1u << (i % 8))))
			continue;
		snprintf(where, sizeof(where), "block %llu",
		    (unsigned long long)i);
		if (ntfs_attr_pread(na, (s64)(i * bs), bs, blk) != (s64)bs ||
		    !ntfs_is_indx_record(ib->magic) ||
		    ntfs_mst_post_read_fixup((NTFS_RECORD *)blk, bs) < 0) {
			why = xasprintf("%s %s: not an index block", x->name,
			    where);
			break;
		}
		why = check_header(&ib->index, bs - offsetof(INDEX_BLOCK,
		    index), x, sds_size, nblocks, where);
	}
out:
	free(blk);
	free(bmp);
	free(ir);
	if (na)
		ntfs_attr_close(na);
	return why;
}

/* Sets v->secure_bad when $Secure's indexes cannot be trusted. */
static void
check_secure(struct ntfs_vol *v)
{
	static const struct sec_index sii = { "$SII", { const_cpu_to_le16('$'),
	    const_cpu_to_le16('S'), const_cpu_to_le16('I'),
	    const_cpu_to_le16('I') }, COLLATION_NTOFS_ULONG,
	    sizeof(SII_INDEX_KEY), 0, 0, 0 };
	static const struct sec_index sdh = { "$SDH", { const_cpu_to_le16('$'),
	    const_cpu_to_le16('S'), const_cpu_to_le16('D'),
	    const_cpu_to_le16('H') }, COLLATION_NTOFS_SECURITY_HASH,
	    sizeof(SDH_INDEX_KEY), 0, 0, 0 };
	SII_INDEX_KEY last_id = { const_cpu_to_le32(0xffffffff) };
	SDH_INDEX_KEY last_hash = { const_cpu_to_le32(0xffffffff),
	    const_cpu_to_le32(0xffffffff) };
	struct sec_index x;
	ntfs_attr *na;
	uint64_t sds;

	na = ntfs_attr_open(v->vol->secure_ni, AT_DATA, sds_name, 4);
	if (!na || na->data_size < 0) {
		if (na)
			ntfs_attr_close(na);
		v->secure_bad = xstrdup("$SDS: missing");
		return;
	}
	sds = (uint64_t)na->data_size;
	ntfs_attr_close(na);
	/* Data follows the 16-byte entry header and the key. */
	x = sii;
	x.data_off = 16 + x.key_len;
	v->secure_bad = check_sec_index(v, &x, sds);
	if (!v->secure_bad) {
		x = sdh;
		x.data_off = 16 + x.key_len;
		v->secure_bad = check_sec_index(v, &x, sds);
	}
	/* The lookups libntfs-3g makes to add a descriptor (past the last
	 * id, past the last hash), tried first: one that fails leaves its
	 * context half-set, and libntfs-3g would add entries through it. */
	if (!v->secure_bad) {
		ntfs_index_ctx_reinit(v->vol->secure_xsii);
		if (ntfs_index_lookup(&last_id, sizeof(last_id),
		    v->vol->secure_xsii) < 0 && errno != ENOENT)
			v->secure_bad = xstrdup("$SII: a lookup fails");
		ntfs_index_ctx_reinit(v->vol->secure_xsii);
	}
	if (!v->secure_bad) {
		ntfs_index_ctx_reinit(v->vol->secure_xsdh);
		if (ntfs_index_lookup(&last_hash, sizeof(last_hash),
		    v->vol->secure_xsdh) < 0 && errno != ENOENT)
			v->secure_bad = xstrdup("$SDH: a lookup fails");
		ntfs_index_ctx_reinit(v->vol->secure_xsdh);
	}
}

/*
 * Check, before libntfs-3g reads it, the $SII entry that gives the place
 * and size of dir's descriptor in $Secure:$SDS: libntfs-3g allocates and
 * reads what the entry says (a size below the header wraps around; one
 * past the stream is read from elsewhere).  A descriptor is at least a
 * header and a SECURITY_DESCRIPTOR_RELATIVE, never crosses a 256 KiB
 * boundary of $SDS, and lies inside the stream.  A folder without a
 * $Secure id has its descriptor in its own $SECURITY_DESCRIPTOR
 * attribute (NTFS 1.x), which libntfs-3g reads whole: its size must be
 * one a descriptor can have.  0 if it is sound (or not in $SII, which
 * libntfs-3g handles), -1 with the error recorded.
 */
static int
check_secure_entry(struct ntfs_vol *v, ntfs_inode *dir)
{
	ntfs_index_context *x = v->vol->secure_xsii;
	const SECURITY_DESCRIPTOR_HEADER *h;
	SII_INDEX_KEY key;
	unsigned doff, dlen, elen;
	uint64_t off, len;
	ntfs_attr *na;
	bool ok;

	if (!test_nino_flag(dir, v3_Extensions) || !dir->security_id ||
	    !x || !v->vol->secure_ni) {
		na = ntfs_attr_open(dir, AT_SECURITY_DESCRIPTOR, AT_UNNAMED, 0);
		ok = !na || (na->data_size >= (s64)sizeof(
		    SECURITY_DESCRIPTOR_RELATIVE) && na->data_size <= 65536);
		if (na)
			ntfs_attr_close(na);
		if (!ok)
			return error_setc(GP_EXIT_CORRUPT, EIO, "%s: the "
			    "security descriptor of a folder on the path "
			    "(inode %llu) has an impossible size; run chkdsk "
			    "/f in the guest", v->where,
			    (unsigned long long)dir->mft_no), -1;
		return 0;
	}
	key.security_id = dir->security_id;
	ntfs_index_ctx_reinit(x);
	if (ntfs_index_lookup(&key, sizeof(key), x) < 0 || !x->entry) {
		bool absent = errno == ENOENT;

		ntfs_index_ctx_reinit(x);
		if (absent)
			return 0;
		return error_setc(GP_EXIT_CORRUPT, EIO, "%s: $Secure: the "
		    "security id %u of a folder on the path cannot be looked "
		    "up; run chkdsk /f in the guest", v->where,
		    le32_to_cpu(key.security_id)), -1;
	}
	/* libntfs-3g takes the data at its usual place (after the 16-byte
	 * entry header and the 4-byte key), whatever data_offset says; so
	 * does Windows write it. */
	doff = le16_to_cpu(x->entry->data_offset);
	dlen = le16_to_cpu(x->entry->data_length);
	elen = le16_to_cpu(x->entry->length);
	h = (const SECURITY_DESCRIPTOR_HEADER *)((const u8 *)x->entry + doff);
	ok = doff == 16 + sizeof(key) && dlen >= sizeof(*h) &&
	    (size_t)doff + dlen <= elen;
	off = ok ? le64_to_cpu(h->offset) : 0;
	len = ok ? le32_to_cpu(h->length) : 0;
	ok = ok && h->security_id == key.security_id &&
	    len >= sizeof(*h) + sizeof(SECURITY_DESCRIPTOR_RELATIVE) &&
	    len <= 256 * 1024 && off / (256 * 1024) ==
	    (off + len - 1) / (256 * 1024);
	if (ok) {
		na = ntfs_attr_open(v->vol->secure_ni, AT_DATA, sds_name, 4);
		ok = na && na->data_size >= 0 &&
		    off + len <= (uint64_t)na->data_size;
		if (na)
			ntfs_attr_close(na);
	}
	ntfs_index_ctx_reinit(x);
	if (!ok)
		return error_setc(GP_EXIT_CORRUPT, EIO, "%s: $Secure: the "
		    "security descriptor of a folder on the path (id %u) is "
		    "damaged; run chkdsk /f in the guest", v->where,
		    le32_to_cpu(key.security_id)), -1;
	return 0;
}

/*
 * The security id a new entry in dir gets.  Its descriptor is derived
 * from dir's by Windows' rules (acl.c; libntfs-3g's own derivation leaves
 * generic rights and CREATOR OWNER unmapped), with Administrators as
 * owner and group, and shared through $Secure: the first entry of a kind
 * in a folder of a given descriptor stores it (*derive set: the caller
 * calls store_inherited on the new inode), the next ones reuse its id.
 */
static int
inherited_id(struct ntfs_vol *v, ntfs_inode *dir, bool is_dir, bool *derive,
    le32 *sid)
{
	size_t i;

	*derive = false;
	*sid = dir->security_id;		/* NTFS 1.x; or until
						   store_inherited */
	if (!v->secure_open)
		return 0;
	if (!v->secure_checked) {
		check_secure(v);
		v->secure_checked = true;
	}
	if (v->secure_bad) {
		error_setc(GP_EXIT_CORRUPT, EIO, "%s: $Secure is damaged (%s); "
		    "run chkdsk /f in the guest", v->where, v->secure_bad);
		return -1;
	}
	/* A folder with a descriptor of its own (no $Secure id, as a
	 * volume's root can have) is known by its record. */
	for (i = 0; i < v->ninherit; i++)
		if (v->inherit[i].parent == dir->security_id &&
		    (dir->security_id || v->inherit[i].ino == dir->mft_no) &&
		    v->inherit[i].is_dir == is_dir) {
			*sid = v->inherit[i].id;
			return 0;
		}
	/* Only a descriptor about to be read needs its entry checked: one
	 * in the list above was checked when it was stored. */
	if (check_secure_entry(v, dir) < 0)
		return -1;
	*derive = true;
	return 0;
}

/* Derive ni's descriptor from dir's, store it, and remember its id. */
static int
store_inherited(struct ntfs_vol *v, ntfs_inode *dir, ntfs_inode *ni, bool is_dir)
{
	struct SECURITY_CONTEXT scx;
	uint8_t *sd;
	char *pd;
	size_t len;
	int n;

	memset(&scx, 0, sizeof(scx));
	scx.vol = v->vol;
	scx.pseccache = &v->seccache;
	n = ntfs_get_ntfs_acl(&scx, dir, NULL, 0);
	if (n <= 0 || n > 65536)
		return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read a "
		    "folder's security descriptor");
	pd = xmalloc((size_t)n);
	if (ntfs_get_ntfs_acl(&scx, dir, pd, (size_t)n) != n) {
		free(pd);
		return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read a "
		    "folder's security descriptor");
	}
	sd = acl_inherit((const uint8_t *)pd, (size_t)n, is_dir,
	    acl_sid_administrators, acl_sid_administrators, &len);
	free(pd);
	if (!sd)
		return error_setc(GP_EXIT_CORRUPT, EIO, "%s: a folder's "
		    "security descriptor cannot be read", v->where), -1;
	/* Nothing inheritable: the folder's own descriptor, as before. */
	if ((sd[24] | sd[25] << 8) != 0 &&
	    ntfs_set_ntfs_acl(&scx, ni, (const char *)sd, len, 0) < 0) {
		free(sd);
		return ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot store a "
		    "security descriptor");
	}
	free(sd);
	if (v->ninherit < ARRAY_SIZE(v->inherit)) {
		v->inherit[v->ninherit].parent = dir->security_id;
		v->inherit[v->ninherit].ino = dir->mft_no;
		v->inherit[v->ninherit].is_dir = is_dir;
		v->inherit[v->ninherit++].id = ni->security_id;
	}
	return 0;
}

static ntfs_inode *
create_child(struct ntfs_vol *v, ntfs_inode *dir, const char *name, mode_t type)
{
	ntfschar *uname = NULL;
	ntfs_inode *ni;
	bool derive;
	le32 sid;
	int ulen;

	if (win_name_check(name) < 0) {
		error_set(EINVAL, "%s: '%s' is not a name Windows can hold",
		    v->where, name);
		return NULL;
	}
	ulen = ntfs_mbstoucs(name, &uname);
	if (ulen < 0) {
		error_set(EILSEQ, "%s: name '%s' is not valid text", v->where,
		    name);
		return NULL;
	}
	if (inherited_id(v, dir, type == S_IFDIR, &derive, &sid) < 0) {
		free(uname);
		return NULL;
	}
	ni = ntfs_create(dir, sid, uname, (u8)ulen, type);
	free(uname);
	if (!ni) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno,
		    errno == ENOSPC ? "NTFS volume is full" :
		    "cannot create an entry");
		return NULL;
	}
	if (derive && store_inherited(v, dir, ni, type == S_IFDIR) < 0) {
		/* The entry exists with the folder's descriptor; the run
		 * fails and the session is dropped. */
		ntfs_inode_close(ni);
		return NULL;
	}
	return ni;
}

/* Walk to (and create, when create is set) the directory at comp[0..n). */
static ntfs_inode *
walk_dirs(struct ntfs_vol *v, char **comp, size_t n, bool create)
{
	ntfs_inode *ni = ntfs_inode_open(v->vol, FILE_root), *next;
	MFT_REF mref;
	size_t i;

	if (!ni) {
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot open the root");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		int found = lookup(v, ni, comp[i], &mref);

		if (found > 0) {
			next = ntfs_inode_open(v->vol, MREF(mref));
			if (next && !(next->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
				ntfs_inode_close(next);
				ntfs_inode_close(ni);
				error_set(ENOTDIR, "%s: '%s' exists and is not a "
				    "directory", v->where, comp[i]);
				return NULL;
			}
			/* A junction or a link: what is written into its own
			 * index is where Windows never looks. */
			if (next && (next->flags & FILE_ATTR_REPARSE_POINT)) {
				ntfs_inode_close(next);
				ntfs_inode_close(ni);
				error_setc(GP_EXIT_CORRUPT, ELOOP, "%s: '%s' is a "
				    "reparse point (a junction or a link); "
				    "gpupv-prep does not write through it",
				    v->where, comp[i]);
				return NULL;
			}
		} else if (found < 0) {
			next = NULL;
		} else if (create) {
			next = create_child(v, ni, comp[i], S_IFDIR);
		} else {
			next = NULL;
			errno = ENOENT;
		}
		/* A folder whose record cannot be written back (a new entry
		 * changed it) is the error to report, not what follows. */
		if (ntfs_inode_close(ni) < 0) {
			ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot write a "
			    "folder's record");
			if (next)
				ntfs_inode_close(next);
			return NULL;
		}
		if (!next)
			return NULL;
		ni = next;
	}
	return ni;
}

static int
require_writable(struct ntfs_vol *v)
{
	if (!v->writable) {
		error_set(EROFS, "%s: volume is mounted read-only", v->where);
		return -1;
	}
	return 0;
}

static int
nv_mkdir_p(gp_volume *pv, const char *path)
{
	struct ntfs_vol *v = NV(pv);
	char *copy = xstrdup(path), *comp[NTFS_MAX_PATH_DEPTH];
	size_t n = split_path(copy, comp, NTFS_MAX_PATH_DEPTH);
	ntfs_inode *ni;

	if (require_writable(v) < 0 || n > NTFS_MAX_PATH_DEPTH) {
		error_set(ENAMETOOLONG, "%s: path %s is too deep",
		    v->where, path);
		free(copy);
		return -1;
	}
	ni = walk_dirs(v, comp, n, true);
	free(copy);
	if (!ni)
		return -1;
	ntfs_inode_close(ni);
	return 0;
}

/* ---- staging: entries with Windows' metadata ----------------------- */

static ntfs_time
ns_to_ntfs(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return timespec2ntfs(ts);
}

/* Times and attributes; the index copies follow on close (FileNameDirty). */
static void
apply_meta(ntfs_inode *ni, const struct gp_file_meta *m, bool is_dir)
{
	ntfs_time mt = ns_to_ntfs(m->mtime_ns);

	ni->creation_time = ns_to_ntfs(m->crtime_ns ? m->crtime_ns :
	    m->mtime_ns);
	ni->last_data_change_time = mt;
	ni->last_mft_change_time = mt;
	ni->last_access_time = mt;
	ni->flags &= ~(FILE_ATTR_READONLY | FILE_ATTR_ARCHIVE);
	if (m->readonly)
		ni->flags |= FILE_ATTR_READONLY;
	if (!is_dir)
		ni->flags |= FILE_ATTR_ARCHIVE;
	NInoSetDirty(ni);
	NInoFileNameSetDirty(ni);
}

/* The first alias candidate not taken in dir. */
static int
make_short_name(struct ntfs_vol *v, ntfs_inode *dir, const char *name, char *out)
{
	MFT_REF mref;
	unsigned n;
	int found;

	for (n = 1; n < NTFS_MAX_ALIAS; n++) {
		win_short_name(name, n, out);
		found = lookup(v, dir, out, &mref);
		if (found <= 0)
			return found;
	}
	error_set(EEXIST, "%s: no free 8.3 alias for %s", v->where, name);
	return -1;
}

/*
 * Give ni its 8.3 alias (the long name becomes Win32, the alias DOS; a
 * name that already is 8.3 becomes one Win32+DOS name).  libntfs-3g
 * closes both inodes here, whatever happens.
 */
static int
add_short_name(struct ntfs_vol *v, ntfs_inode *ni, ntfs_inode *dir,
    const char *name)
{
	char alias[24];

	if (win_is_short_name(name)) {
		size_t i;

		for (i = 0; name[i]; i++)
			alias[i] = (char)toupper((unsigned char)name[i]);
		alias[i] = '\0';
	} else if (make_short_name(v, dir, name, alias) < 0) {
		ntfs_inode_close(ni);
		ntfs_inode_close(dir);
		return -1;
	}
	if (ntfs_set_ntfs_dos_name(ni, dir, alias, strlen(alias), 0) < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, errno,
		    "cannot add an 8.3 name");
	return 0;
}

/* Split path into its parent (opened) and last component. */
static ntfs_inode *
open_parent(struct ntfs_vol *v, const char *path, char **copy, char **last)
{
	char *comp[NTFS_MAX_PATH_DEPTH];
	size_t n;
	ntfs_inode *dir;

	*copy = xstrdup(path);
	n = split_path(*copy, comp, NTFS_MAX_PATH_DEPTH);
	if (n == 0 || n > NTFS_MAX_PATH_DEPTH) {
		error_set(EINVAL, "%s: bad path %s", v->where, path);
		return NULL;
	}
	*last = comp[n - 1];
	dir = walk_dirs(v, comp, n - 1, false);
	if (!dir)
		error_set(errno ? errno : ENOENT, "%s: parent folder missing",
		    v->where);
	return dir;
}

/*
 * Give the unnamed data attribute of ni size bytes from fill: whatever it
 * held is released (and kept from reuse), clusters are placed for the
 * whole size at once, then the contents are written in pieces.  Data that
 * fits in the MFT record stays resident, as Windows keeps it.
 */
static int
write_data(struct ntfs_vol *v, ntfs_inode *ni, uint64_t size,
    int (*fill)(void *ctx, void *buf, size_t len), void *ctx)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	uint8_t *buf = NULL;
	uint64_t done = 0;
	int ret = -1;

	if (!na) {
		ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
		    "cannot open the file's data");
		goto out;
	}
	if (na->data_flags & (ATTR_COMPRESSION_MASK | ATTR_IS_SPARSE |
	    ATTR_IS_ENCRYPTED)) {
		/* Compressed, sparse or encrypted data has runs of its own
		 * shape: libntfs-3g lays it out as before (what it reuses of
		 * the old clusters goes through the overlay). */
		if (ntfs_attr_truncate_solid(na, (s64)size) < 0) {
			ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
			    errno == ENOSPC ? "NTFS volume is full" :
			    "cannot allocate the file");
			goto out;
		}
	} else if (release_data(v, na) < 0) {
		goto out;
	} else if (size && !fits_resident(ni, size) &&
	    place_data(v, ni, na, size) < 0) {
		goto out;
	}
	buf = xmalloc(NTFS_IO_CHUNK);
	while (done < size) {
		size_t want = (size_t)MIN(size - done, (uint64_t)NTFS_IO_CHUNK);
		s64 w;

		if (fill(ctx, buf, want) < 0)
			goto out;
		w = ntfs_attr_pwrite(na, (s64)done, (s64)want, buf);
		if (w != (s64)want) {
			ntfs_fail(v, GP_EXIT_FAILURE, errno ? errno : EIO,
			    errno == ENOSPC ? "NTFS volume is full" :
			    "write error");
			goto out;
		}
		done += want;
	}
	ret = 0;
out:
	free(buf);
	if (na)
		ntfs_attr_close(na);
	return ret;
}

/*
 * $Extend\$Reparse lists every reparse point of the volume in its $R index
 * (key: the tag and the file's reference, no data).  It is edited here
 * rather than through ntfs_set_ntfs_reparse_data() and
 * ntfs_remove_ntfs_reparse_data(): libntfs-3g 2022.10.3 finds $Reparse
 * with ntfs_inode_lookup_by_mbsname(), which leaks the Unicode name it
 * makes when the volume has no lookup cache, as a writable session has
 * not.
 */
static ntfs_index_context *
reparse_index(struct ntfs_vol *v, ntfs_inode **xr)
{
	ntfs_inode *ext = ntfs_inode_open(v->vol, FILE_Extend);
	ntfs_index_context *icx = NULL;
	MFT_REF mref;

	*xr = NULL;
	if (ext && lookup(v, ext, "$Reparse", &mref) > 0)
		*xr = ntfs_inode_open(v->vol, MREF(mref));
	if (ext)
		ntfs_inode_close(ext);
	if (*xr)
		icx = ntfs_index_ctx_get(*xr, NTFS_INDEX_R, 2);
	if (!icx) {
		if (*xr)
			ntfs_inode_close(*xr);
		*xr = NULL;
		ntfs_fail(v, GP_EXIT_CORRUPT, ENOENT, "has no usable "
		    "$Extend\\$Reparse index");
	}
	return icx;
}

static void
reparse_index_close(ntfs_index_context *icx, ntfs_inode *xr)
{
	ntfs_index_ctx_put(icx);
	ntfs_inode_close(xr);
}

static REPARSE_INDEX_KEY
reparse_key(ntfs_inode *ni, uint32_t tag)
{
	REPARSE_INDEX_KEY k;

	k.reparse_tag = cpu_to_le32(tag);
	k.file_id = MK_LE_MREF(ni->mft_no,
	    le16_to_cpu(ni->mrec->sequence_number));
	return k;
}

/* Give ni the reparse data (its first 4 bytes the tag) and index it. */
static int
set_reparse(struct ntfs_vol *v, ntfs_inode *ni, const uint8_t *data,
    size_t len)
{
	/* An entry of a view index: a 16-byte header, the key, no data,
	 * padded to 8 bytes (INDEX_ENTRY itself is larger: its key is a
	 * union of every index's). */
	enum { REPARSE_IE_LEN = 16 + sizeof(REPARSE_INDEX_KEY) + 4 };
	union {
		INDEX_ENTRY ie;
		uint8_t b[sizeof(INDEX_ENTRY) + REPARSE_IE_LEN];
	} e;
	REPARSE_INDEX_KEY k = reparse_key(ni, get_le32(data));
	ntfs_index_context *icx;
	ntfs_inode *xr;
	int r, err;

	if (ntfs_attr_add(ni, AT_REPARSE_POINT, AT_UNNAMED, 0, (const u8 *)data,
	    (s64)len) < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot add its "
		    "reparse point");
	ni->flags |= FILE_ATTR_REPARSE_POINT;
	NInoSetDirty(ni);
	NInoFileNameSetDirty(ni);
	memset(&e, 0, sizeof(e));
	e.ie.data_offset = cpu_to_le16(16 + sizeof(k));
	e.ie.length = cpu_to_le16(REPARSE_IE_LEN);
	e.ie.key_length = cpu_to_le16(sizeof(k));
	memcpy(&e.b[16], &k, sizeof(k));
	if (!(icx = reparse_index(v, &xr)))
		return -1;
	r = ntfs_ie_add(icx, &e.ie);
	err = errno;		/* before the close */
	reparse_index_close(icx, xr);
	if (r < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, err, "cannot index its "
		    "reparse point in $Reparse");
	return 0;
}

/* Take ni's reparse point and its $Reparse entry away. */
static int
remove_reparse(struct ntfs_vol *v, ntfs_inode *ni)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_REPARSE_POINT, AT_UNNAMED, 0);
	ntfs_index_context *icx;
	REPARSE_INDEX_KEY k;
	ntfs_inode *xr;
	uint8_t tag[4];
	int r = 0, e;

	if (!na || ntfs_attr_pread(na, 0, 4, tag) != 4) {
		if (na)
			ntfs_attr_close(na);
		return ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot read its "
		    "reparse point");
	}
	k = reparse_key(ni, get_le32(tag));
	if (!(icx = reparse_index(v, &xr))) {
		ntfs_attr_close(na);
		return -1;
	}
	if (ntfs_index_lookup(&k, sizeof(k), icx) == 0)
		r = ntfs_index_rm(icx);
	else if (errno != ENOENT)
		r = -1;
	e = errno;		/* before the closes below */
	reparse_index_close(icx, xr);
	if (r == 0) {
		r = ntfs_attr_rm(na);
		e = errno;
	}
	ntfs_attr_close(na);
	if (r < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, e, "cannot remove its "
		    "reparse point");
	ni->flags &= ~FILE_ATTR_REPARSE_POINT;
	NInoSetDirty(ni);
	NInoFileNameSetDirty(ni);
	return 0;
}

/* A new file or folder; with reparse (rlen bytes), a reparse point. */
static int
create_entry(struct ntfs_vol *v, const char *path, bool is_dir,
    uint64_t size, const struct gp_file_meta *m, int (*fill)(void *ctx,
    void *buf, size_t len), void *ctx, const void *reparse, size_t rlen)
{
	char *copy = NULL, *name;
	ntfs_inode *dir = NULL, *ni = NULL;
	MFT_REF mref;
	int ret = -1, found;

	if (require_writable(v) < 0)
		goto out;
	if (!is_dir && size && !fill) {
		error_set(EINVAL, "%s: no contents for a file of %llu bytes",
		    v->where, (unsigned long long)size);
		goto out;
	}
	dir = open_parent(v, path, &copy, &name);
	if (!dir)
		goto out;
	found = lookup(v, dir, name, &mref);
	if (found > 0)
		error_set(EEXIST, "%s: already exists", v->where);
	if (found != 0)
		goto out;
	ni = create_child(v, dir, name, is_dir ? S_IFDIR : S_IFREG);
	if (!ni)
		goto out;
	if (!is_dir && size && write_data(v, ni, size, fill, ctx) < 0)
		goto out;
	apply_meta(ni, m, is_dir);
	/* Also indexed in $Extend\$Reparse, and FILE_ATTRIBUTE_REPARSE_POINT
	 * set in the record and (at close) in the parent's entry. */
	if (reparse && set_reparse(v, ni, reparse, rlen) < 0)
		goto out;
	if (v->short_names) {
		ret = add_short_name(v, ni, dir, name);
		ni = dir = NULL;
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		error_prefix("%s", path);
	/* Through the parent still open: a second in-memory copy of it
	 * would not see the new index entry. */
	if (ni && (dir ? ntfs_inode_close_in_dir(ni, dir) :
	    ntfs_inode_close(ni)) < 0 && ret == 0)
		ret = ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot write an "
		    "inode");
	if (dir)
		ntfs_inode_close(dir);
	free(copy);
	return ret;
}

static int
nv_create(gp_volume *pv, const char *path, bool is_dir, uint64_t size,
    const struct gp_file_meta *m, int (*fill)(void *ctx, void *buf,
    size_t len), void *ctx)
{
	return create_entry(NV(pv), path, is_dir, size, m, fill, ctx, NULL, 0);
}

static int
nv_overwrite(gp_volume *pv, const char *path, const void *data,
    size_t len)
{
	struct ntfs_vol *v = NV(pv);
	struct fs_mem src = { data, len };
	ntfs_inode *ni;
	int ret = -1;

	if (require_writable(v) < 0)
		return -1;
	ni = open_path(v, path);
	if (!ni) {
		error_set(errno, "%s: %s: %s", v->where, path,
		    strerror(errno));
		return -1;
	}
	if (write_data(v, ni, len, fs_mem_fill, &src) < 0)
		goto out;
	ntfs_inode_update_times(ni, NTFS_UPDATE_MCTIME);
	ret = 0;
out:
	if (ret < 0)
		error_prefix("%s", path);
	if (ntfs_inode_close(ni) < 0 && ret == 0)
		ret = ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot write an "
		    "inode");
	return ret;
}

static int
nv_set_meta(gp_volume *pv, const char *path, const struct gp_file_meta *m)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni;

	if (require_writable(v) < 0)
		return -1;
	ni = open_path(v, path);
	if (!ni) {
		error_set(errno, "%s: %s: %s", v->where, path,
		    strerror(errno));
		return -1;
	}
	apply_meta(ni, m, ni->mrec->flags & MFT_RECORD_IS_DIRECTORY);
	if (ntfs_inode_close(ni) < 0)
		return ntfs_fail(v, GP_EXIT_FAILURE, errno, "cannot write an "
		    "inode");
	return 0;
}

/*
 * The name of ni in the folder dir as stored (its Win32 or POSIX name,
 * not the 8.3 alias), copied into *out; its length in characters, or -1.
 */
static int
stored_name(ntfs_inode *ni, u64 dir, ntfschar **out)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	int len = -1;

	if (!ctx)
		return -1;
	while (ntfs_attr_lookup(AT_FILE_NAME, AT_UNNAMED, 0, CASE_SENSITIVE, 0,
	    NULL, 0, ctx) == 0) {
		const FILE_NAME_ATTR *fn;

		if (ctx->attr->non_resident || le32_to_cpu(
		    ctx->attr->value_length) < sizeof(*fn))
			continue;
		fn = (const FILE_NAME_ATTR *)((const u8 *)ctx->attr +
		    le16_to_cpu(ctx->attr->value_offset));
		if (MREF_LE(fn->parent_directory) != dir ||
		    fn->file_name_type == FILE_NAME_DOS ||
		    offsetof(FILE_NAME_ATTR, file_name) + fn->file_name_length *
		    sizeof(ntfschar) > le32_to_cpu(ctx->attr->value_length))
			continue;
		len = fn->file_name_length;
		*out = xmalloc(((size_t)len + 1) * sizeof(ntfschar));
		memcpy(*out, fn->file_name, (size_t)len * sizeof(ntfschar));
		(*out)[len] = 0;
		break;
	}
	ntfs_attr_put_search_ctx(ctx);
	return len;
}

static int
nv_remove(gp_volume *pv, const char *path)
{
	struct ntfs_vol *v = NV(pv);
	char *copy = NULL, *name;
	ntfs_inode *dir = NULL, *ni = NULL;
	ntfschar *uname = NULL;
	struct place_run *freed = NULL;
	size_t nfreed = 0;
	MFT_REF mref;
	int ulen, ret = -1;

	if (require_writable(v) < 0)
		goto out;
	dir = open_parent(v, path, &copy, &name);
	if (!dir)
		goto out;
	if (lookup(v, dir, name, &mref) <= 0) {
		error_set(ENOENT, "%s: %s: not found", v->where, path);
		goto out;
	}
	ni = ntfs_inode_open(v->vol, MREF(mref));
	if (!ni) {
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "cannot open an entry");
		goto out;
	}
	/* ntfs_delete wants the name as stored: the inode's own long name
	 * in dir (not a listing of dir, which would make removing the files
	 * of a folder quadratic). */
	ulen = stored_name(ni, dir->mft_no, &uname);
	if (ulen < 0) {
		ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "entry has no name in its "
		    "folder");
		goto out;
	}
	if (inode_runs(v, ni, &freed, &nfreed) < 0)
		goto out;
	/* A junction's entry in $Extend\$Reparse goes with it. */
	if ((ni->flags & FILE_ATTR_REPARSE_POINT) && remove_reparse(v, ni) < 0)
		goto out;
	/* Deletes the 8.3 alias too; closes both inodes. */
	if (ntfs_delete(v->vol, NULL, ni, dir, uname, (u8)ulen) < 0) {
		int e = errno == ENOENT ? EIO : errno;

		ni = dir = NULL;
		ntfs_fail(v, GP_EXIT_FAILURE, e, e == ENOTEMPTY ?
		    "folder is not empty" : "cannot delete");
		errno = e;
		goto out;
	}
	ni = dir = NULL;
	ret = pin_freed(v, freed, nfreed);
out:
	if (ret < 0)
		error_prefix("%s", path);
	if (ni)
		ntfs_inode_close(ni);
	if (dir)
		ntfs_inode_close(dir);
	free(freed);
	free(uname);
	free(copy);
	return ret;
}

static int
nv_read(gp_volume *pv, const char *path, size_t max, void **data,
    size_t *len)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni = open_path(v, path);
	ntfs_attr *na;
	uint8_t *buf;

	if (!ni)
		return -1;
	na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) {
		int e = errno;

		ntfs_inode_close(ni);
		return ntfs_fail(v, GP_EXIT_FAILURE, e, "cannot open file "
		    "data");
	}
	if (size_ok(v, na, path) < 0)
		goto fail;
	if ((uint64_t)na->data_size > max) {
		error_set(EFBIG, "%s: %s is larger than %zu bytes", v->where,
		    path, max);
		goto fail;
	}
	buf = xmalloc((size_t)na->data_size + 1);
	if (ntfs_attr_pread(na, 0, na->data_size, buf) != na->data_size) {
		free(buf);
		ntfs_fail(v, GP_EXIT_FAILURE, EIO, "read error");
		goto fail;
	}
	buf[na->data_size] = '\0';
	*data = buf;
	*len = (size_t)na->data_size;
	ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return 0;
fail:
	ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return -1;
}

/* Whether a directory's entries carry 8.3 aliases (see gp_volume_short_names). */
static int
saw_dos(void *ctx, const ntfschar *name, const int name_len,
    const int name_type, const s64 pos, const MFT_REF mref,
    const unsigned dt_type)
{
	(void)name;
	(void)name_len;
	(void)pos;
	(void)mref;
	(void)dt_type;
	if (name_type == FILE_NAME_DOS || name_type == FILE_NAME_WIN32_AND_DOS) {
		*(bool *)ctx = true;
		return -1;
	}
	return 0;
}

static int
nv_short_names(gp_volume *pv, const char *dir_path, int mode)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *dir;
	struct gp_error e;
	s64 pos = 0;
	bool seen = false;

	if (mode >= 0) {
		v->short_names = mode > 0;
		return v->short_names;
	}
	/* A folder that cannot be read shows no short names: the guess is
	 * "none", and the failure no one's error. */
	error_try(&e);
	dir = open_path(v, dir_path);
	if (dir) {
		ntfs_readdir(dir, &pos, &seen, saw_dos);
		ntfs_inode_close(dir);
	}
	error_end(&e);
	v->short_names = seen;
	return seen;
}

static uint64_t
nv_stored_free(gp_volume *pv)
{
	struct ntfs_vol *v = NV(pv);
	struct gp_error e;

	/* A figure for a report: unreadable counts as nothing stored. */
	error_try(&e);
	if (!v->place && place_build(v) < 0) {
		error_end(&e);
		return 0;
	}
	error_end(&e);
	return (uint64_t)place_stored(v->place) * v->vol->cluster_size;
}

static int
nv_space(gp_volume *pv, uint64_t *cluster, uint64_t *free_bytes)
{
	struct ntfs_vol *v = NV(pv);
	*cluster = v->vol->cluster_size;
	*free_bytes = v->vol->free_clusters > 0 ?
	    (uint64_t)v->vol->free_clusters * v->vol->cluster_size : 0;
	return 0;
}

static int
nv_read_cb(gp_volume *pv, const char *path,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni = open_path(v, path);
	ntfs_attr *na;
	uint8_t *buf;
	s64 off = 0;
	int ret = -1;

	if (!ni) {
		error_set(errno, "%s: %s: %s", v->where, path,
		    strerror(errno));
		return -1;
	}
	na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) {
		int e = errno;

		ntfs_inode_close(ni);
		ntfs_fail(v, GP_EXIT_FAILURE, e, "cannot open file data");
		error_prefix("%s", path);
		return -1;
	}
	if (size_ok(v, na, path) < 0) {
		ntfs_attr_close(na);
		ntfs_inode_close(ni);
		return -1;
	}
	buf = xmalloc(NTFS_IO_CHUNK);
	while (off < na->data_size) {
		s64 want = MIN((s64)NTFS_IO_CHUNK, na->data_size - off);

		if (ntfs_attr_pread(na, off, want, buf) != want) {
			ntfs_fail(v, GP_EXIT_CORRUPT, EIO, "read error");
			error_prefix("%s", path);
			goto out;
		}
		if (fn(ctx, buf, (size_t)want) < 0)
			goto out;
		off += want;
	}
	ret = 0;
out:
	free(buf);
	ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return ret;
}

uint64_t
ntfs_file_cost(uint64_t size, uint64_t cluster)
{
	/* What surely stays resident; past it, count the clusters. */
	const uint64_t resident = 400, record = 1024;

	if (size <= resident || !cluster)
		return record;
	return record + (size + cluster - 1) / cluster * cluster;
}

struct byte_runs {
	struct ntfs_vol *v;
	int (*fn)(void *ctx, uint64_t off, uint64_t len);
	void *ctx;
};

static int
byte_run(void *ctx, int64_t lcn, int64_t len)
{
	struct byte_runs *b = ctx;
	uint64_t cs = b->v->vol->cluster_size;

	return b->fn(b->ctx, (uint64_t)lcn * cs, (uint64_t)len * cs);
}

static int
nv_free_runs(gp_volume *pv, int (*fn)(void *ctx, uint64_t off,
    uint64_t len), void *ctx)
{
	struct ntfs_vol *v = NV(pv);
	struct byte_runs b = { v, fn, ctx };

	return free_runs(v, byte_run, &b);
}

static uint64_t
nv_file_cost(gp_volume *pv, uint64_t size)
{
	return ntfs_file_cost(size, NV(pv)->vol->cluster_size);
}

/*
 * A junction's reparse data (IO_REPARSE_TAG_MOUNT_POINT), as mklink /J
 * writes it: tag, data length, reserved; the substitute name's offset and
 * length, the print name's; then the substitute name "\??\X:\..." and the
 * print name "X:\...", each followed by a NUL the lengths leave out.
 */
#define JUNCTION_TAG	0xA0000003u
#define JUNCTION_MAX	16384u		/* Windows' MAXIMUM_REPARSE_DATA_BUFFER_SIZE */

static bool
windows_abs_path(const char *t)
{
	return isalpha((unsigned char)t[0]) && t[1] == ':' && t[2] == '\\' &&
	    t[3] && !strstr(t, "\\\\") && t[strlen(t) - 1] != '\\';
}

static uint8_t *
junction_data(const char *target, size_t *len)
{
	ntfschar *u = NULL;
	int n = ntfs_mbstoucs(target, &u);
	size_t subst, print;
	uint8_t *b;

	if (n <= 0)
		return NULL;
	subst = (4 + (size_t)n) * 2;
	print = (size_t)n * 2;
	*len = 16 + subst + 2 + print + 2;
	if (*len > JUNCTION_MAX) {
		free(u);
		errno = ENAMETOOLONG;
		return NULL;
	}
	b = xcalloc(1, *len);
	put_le32(b, JUNCTION_TAG);
	put_le16(b + 4, (uint16_t)(*len - 8));
	put_le16(b + 8, 0);
	put_le16(b + 10, (uint16_t)subst);
	put_le16(b + 12, (uint16_t)(subst + 2));
	put_le16(b + 14, (uint16_t)print);
	put_le16(b + 16, '\\');
	put_le16(b + 18, '?');
	put_le16(b + 20, '?');
	put_le16(b + 22, '\\');
	memcpy(b + 24, u, print);
	memcpy(b + 16 + subst + 2, u, print);
	free(u);
	return b;
}

/* NTFS: a directory junction at path to the absolute Windows path
 * target (a new, empty folder with the parent's inherited security). */
static int
nv_symlink(gp_volume *pv, const char *path, const char *target,
    const struct gp_file_meta *m)
{
	struct ntfs_vol *v = NV(pv);
	uint8_t *data;
	size_t len;
	int ret;

	if (!windows_abs_path(target)) {
		error_set(ENOTSUP, "%s: %s: only junctions to an absolute "
		    "Windows path (X:\\...) are made on NTFS, not to '%.80s'",
		    v->where, path, target);
		return -1;
	}
	data = junction_data(target, &len);
	if (!data) {
		error_set(errno ? errno : EINVAL, "%s: %s: junction target "
		    "'%.80s' cannot be stored: %s", v->where, path, target,
		    strerror(errno ? errno : EINVAL));
		return -1;
	}
	ret = create_entry(v, path, true, 0, m, NULL, NULL, data, len);
	free(data);
	return ret;
}

/* The target of the junction at path ("X:\..."), from its substitute
 * name; EINVAL when path is no junction. */
static char *
nv_link_target(gp_volume *pv, const char *path)
{
	struct ntfs_vol *v = NV(pv);
	ntfs_inode *ni = open_path(v, path);
	uint8_t *d = NULL;
	char *t = NULL;
	s64 len = 0;
	uint32_t off, n;

	if (!ni)
		return NULL;
	if (ni->flags & FILE_ATTR_REPARSE_POINT)
		d = ntfs_attr_readall(ni, AT_REPARSE_POINT, AT_UNNAMED, 0,
		    &len);
	ntfs_inode_close(ni);
	if (!d || len < 16 || len > JUNCTION_MAX + 8 ||
	    get_le32(d) != JUNCTION_TAG ||
	    get_le16(d + 4) != (uint64_t)len - 8)
		goto bad;
	off = 16u + get_le16(d + 8);
	n = get_le16(d + 10);
	if (off % 2 || n % 2 || n < 8 || off + n > (uint64_t)len ||
	    memcmp(d + off, "\\\0?\0?\0\\\0", 8) != 0 ||
	    ntfs_ucstombs((ntfschar *)(d + off + 8), (int)(n - 8) / 2, &t,
	    0) < 0 || !t)
		goto bad;
	free(d);
	return t;
bad:
	free(d);
	free(t);
	error_set(EINVAL, "%s: %s is not a junction gpupv-prep can read",
	    v->where, path);
	return NULL;
}

const struct fs_ops ntfs_fs_ops = {
	.name = "ntfs",
	.kind = GP_FS_NTFS,
	.open = nv_open,
	.close = nv_close,
	.state = nv_state,
	.label = nv_label,
	.stat = nv_stat,
	.list = nv_list,
	.extract = nv_extract,
	.realpath = nv_realpath,
	.mkdir_p = nv_mkdir_p,
	.overwrite = nv_overwrite,
	.create = nv_create,
	.symlink = nv_symlink,
	.link_target = nv_link_target,
	.set_meta = nv_set_meta,
	.remove = nv_remove,
	.space = nv_space,
	.stored_free = nv_stored_free,
	.free_runs = nv_free_runs,
	.read_cb = nv_read_cb,
	.read = nv_read,
	.short_names = nv_short_names,
	.file_cost = nv_file_cost,
};
