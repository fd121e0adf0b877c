/*
 * ext4.c - ext2, ext3 and ext4 through libext2fs (the only file that
 * includes its headers), for Linux guests.  The file system is reached
 * through an io_manager of our own over a slice of the virtual disk, so
 * every write goes into the image's session (txn.c) like NTFS's: blocks
 * free when the session began go straight to the file, the rest through
 * the overlay, and one atomic commit makes the change stick.
 *
 * What is refused, before anything is written: a journal that needs
 * recovery (libext2fs writes around it without complaint, and the next
 * mount's replay would then put old blocks back over what we wrote), an
 * external journal, features this libext2fs does not know (it says so
 * when opening), a file system not cleanly unmounted or with errors
 * recorded, multi-mount protection, and a size past the partition's end.
 *
 * Blocks freed in a session are not handed out again in it (a bitmap of
 * what is busy: in use at the start or allocated since), so an update's
 * new files land in space the committed state does not use.  Paths are
 * matched exactly; intermediate symbolic links are followed inside the
 * guest's own tree (ext2fs_namei), the last component only when reading.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "fs.h"

#define EXT_MAX_DEPTH		64
#define EXT_MAX_DIR_ENTRIES	(1u << 20)
#define EXT_IO_CHUNK		(1024 * 1024)
#define EXT_MAX_LINK		4095

struct ext_vol {
	struct gp_volume pub;		/* first: the handle fs.c dispatches on */
	gp_image *img;
	uint64_t start, size;
	ext2_filsys fs;
	bool writable;
	bool io_error;
	char *where;			/* "IMAGE: partition at offset N" */
	char label[EXT2_LABEL_LEN + 1];
	ext2fs_block_bitmap busy;	/* in use at the start, or since */
	void (*old_stats)(ext2_filsys fs, blk64_t blk, int inuse);
	void (*old_range_stats)(ext2_filsys fs, blk64_t blk, blk_t num,
	    int inuse);
	blk64_t goal;			/* after the last file's data: the next
					   one is packed behind it */
};

#define EV(pv)	((struct ext_vol *)(pv))

/* Record err (a libext2fs errcode_t or an errno) as the failure. */
static int
ext_fail(struct ext_vol *v, int code, errcode_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
ext_fail(struct ext_vol *v, int code, errcode_t err, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	int e = err > 0 && err < 4096 ? (int)err : EIO;

	/* A read or write of ours that failed under libext2fs recorded the
	 * cause: it keeps the message, with the volume named. */
	if (v->io_error)
		error_prefix("%s", v->where);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err)
		error_setc(code, e, "%s: %s: %s", v->where, what,
		    error_message(err));
	else
		error_setc(code, e, "%s: %s", v->where, what);
	return -1;
}

/* ---- the io_manager over the image ------------------------------- */

static struct struct_io_manager gp_io_manager;

static errcode_t
xio_open(const char *name, int flags, io_channel *channel)
{
	void *p = NULL;
	io_channel io;
	errcode_t e;

	if (!name || sscanf(name, "gpupv:%p", &p) != 1 || !p)
		return EXT2_ET_BAD_DEVICE_NAME;
	e = ext2fs_get_memzero(sizeof(*io), &io);
	if (e)
		return e;
	e = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (e) {
		ext2fs_free_mem(&io);
		return e;
	}
	strcpy(io->name, name);
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &gp_io_manager;
	io->block_size = 1024;
	io->refcount = 1;
	io->flags = flags;
	io->private_data = p;
	*channel = io;
	return 0;
}

static errcode_t
xio_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t
xio_set_blksize(io_channel io, int blksize)
{
	if (blksize <= 0 || blksize > 65536)
		return EXT2_ET_INVALID_ARGUMENT;
	io->block_size = blksize;
	return 0;
}

/* The byte range of count blocks at block (count < 0: -count bytes). */
static errcode_t
xio_range(io_channel io, unsigned long long block, int count, uint64_t *off,
    size_t *len)
{
	struct ext_vol *v = io->private_data;
	uint64_t n = count < 0 ? (uint64_t)-(int64_t)count :
	    (uint64_t)count * (uint64_t)io->block_size;

	if (block > UINT64_MAX / (uint64_t)io->block_size)
		return EXT2_ET_LLSEEK_FAILED;
	*off = block * (uint64_t)io->block_size;
	if (*off > v->size || n > v->size - *off)
		return EXT2_ET_SHORT_READ;
	*len = (size_t)n;
	return 0;
}

static errcode_t
xio_read64(io_channel io, unsigned long long block, int count, void *data)
{
	struct ext_vol *v = io->private_data;
	uint64_t off;
	size_t len;
	errcode_t e = xio_range(io, block, count, &off, &len);

	if (e)
		return e;
	if (gp_image_read(v->img, data, len, v->start + off) < 0) {
		v->io_error = true;
		return EXT2_ET_SHORT_READ;
	}
	return 0;
}

static errcode_t
xio_write64(io_channel io, unsigned long long block, int count,
    const void *data)
{
	struct ext_vol *v = io->private_data;
	uint64_t off;
	size_t len;
	errcode_t e;

	if (!v->writable)
		return EXT2_ET_RO_FILSYS;
	e = xio_range(io, block, count, &off, &len);
	if (e)
		return e == EXT2_ET_SHORT_READ ? EXT2_ET_SHORT_WRITE : e;
	if (gp_image_write(v->img, data, len, v->start + off) < 0) {
		v->io_error = true;
		return EXT2_ET_SHORT_WRITE;
	}
	return 0;
}

static errcode_t
xio_read(io_channel io, unsigned long block, int count, void *data)
{
	return xio_read64(io, block, count, data);
}

static errcode_t
xio_write(io_channel io, unsigned long block, int count, const void *data)
{
	return xio_write64(io, block, count, data);
}

static errcode_t
xio_write_byte(io_channel io, unsigned long offset, int count,
    const void *data)
{
	struct ext_vol *v = io->private_data;

	if (!v->writable)
		return EXT2_ET_RO_FILSYS;
	if (count < 0 || offset > v->size || (uint64_t)count > v->size - offset)
		return EXT2_ET_SHORT_WRITE;
	if (gp_image_write(v->img, data, (size_t)count, v->start + offset) < 0) {
		v->io_error = true;
		return EXT2_ET_SHORT_WRITE;
	}
	return 0;
}

/* The session's commit is the flush that counts (gp_image_commit). */
static errcode_t
xio_flush(io_channel io)
{
	(void)io;
	return 0;
}

static errcode_t
xio_set_option(io_channel io, const char *option, const char *arg)
{
	(void)io;
	(void)option;
	(void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager gp_io_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "gpupv-prep image slice",
	.open = xio_open,
	.close = xio_close,
	.set_blksize = xio_set_blksize,
	.read_blk = xio_read,
	.write_blk = xio_write,
	.flush = xio_flush,
	.write_byte = xio_write_byte,
	.set_option = xio_set_option,
	.read_blk64 = xio_read64,
	.write_blk64 = xio_write64,
};

/* ---- allocation: nothing freed in the session is used again ------ */

/*
 * busy is kept by the two stats callbacks; the allocators also check the
 * file system's own bitmap, so that a block marked in use by a path that
 * does not call back (libext2fs versions differ) is never handed out.
 */
static errcode_t
get_alloc_block(ext2_filsys fs, blk64_t goal, blk64_t *ret)
{
	struct ext_vol *v = fs->priv_data;
	errcode_t e;

	for (;;) {
		e = ext2fs_new_block2(fs, goal, v->busy, ret);
		if (e)
			return e;
		ext2fs_mark_block_bitmap2(v->busy, *ret);
		if (!ext2fs_test_block_bitmap2(fs->block_map, *ret))
			return 0;
		goal = *ret + 1;
	}
}

static void
block_stats(ext2_filsys fs, blk64_t blk, int inuse)
{
	struct ext_vol *v = fs->priv_data;

	if (inuse > 0)
		ext2fs_mark_block_bitmap2(v->busy, blk);
	if (v->old_stats)
		v->old_stats(fs, blk, inuse);
}

static errcode_t
new_range(ext2_filsys fs, int flags, blk64_t goal, blk64_t len,
    blk64_t *pblk, blk64_t *plen)
{
	struct ext_vol *v = fs->priv_data;
	errcode_t e;

	for (;;) {
		blk64_t b;

		e = ext2fs_new_range(fs, flags, goal, len, v->busy, pblk, plen);
		if (e)
			return e;
		if (ext2fs_test_block_bitmap_range2(fs->block_map, *pblk,
		    (unsigned)*plen))
			return 0;
		/* In use after all: busy learns it, and the search goes on. */
		for (b = *pblk; b < *pblk + *plen; b++)
			if (ext2fs_test_block_bitmap2(fs->block_map, b))
				ext2fs_mark_block_bitmap2(v->busy, b);
		if (flags & EXT2_NEWRANGE_FIXED_GOAL)
			return EXT2_ET_BLOCK_ALLOC_FAIL;
	}
}

static void
range_stats(ext2_filsys fs, blk64_t blk, blk_t num, int inuse)
{
	struct ext_vol *v = fs->priv_data;

	if (inuse > 0)
		ext2fs_mark_block_bitmap_range2(v->busy, blk, num);
	if (v->old_range_stats)
		v->old_range_stats(fs, blk, num, inuse);
}

/* Tell the session which blocks are free now: writes there bypass the
 * overlay (nothing the committed state reads is in them). */
static int
declare_unused(struct ext_vol *v)
{
	ext2_filsys fs = v->fs;
	blk64_t first = fs->super->s_first_data_block;
	blk64_t n = ext2fs_blocks_count(fs->super) - first, i;
	const blk64_t chunk = 8u * 65536;
	uint8_t *map = xmalloc((size_t)(chunk / 8));

	if (gp_image_set_unused_map(v->img, v->start + first * fs->blocksize,
	    fs->blocksize, n) < 0) {
		free(map);
		return -1;
	}
	for (i = 0; i < n; i += chunk) {
		blk64_t k = MIN(chunk, n - i);
		errcode_t e;

		k = (k + 7) & ~(blk64_t)7;
		/* Past the last block the bitmap has no bits: in use. */
		memset(map, 0xff, (size_t)(k / 8));
		if (i + k <= n) {
			e = ext2fs_get_block_bitmap_range2(fs->block_map,
			    first + i, (unsigned)k, map);
		} else {
			e = ext2fs_get_block_bitmap_range2(fs->block_map,
			    first + i, (unsigned)(n - i), map);
			if (!e && (n - i) % 8)
				map[(n - i) / 8] |= (uint8_t)(0xff <<
				    ((n - i) % 8));
		}
		if (e) {
			free(map);
			return ext_fail(v, GP_EXIT_CORRUPT, e, "cannot read "
			    "the block bitmap");
		}
		if (gp_image_map_used(v->img, i, map, k) < 0) {
			free(map);
			return -1;
		}
	}
	free(map);
	return 0;
}

/* ---- open and close ------------------------------------------------ */

static const char *
fs_name(ext2_filsys fs)
{
	if (ext2fs_has_feature_extents(fs->super) ||
	    ext2fs_has_feature_64bit(fs->super) ||
	    ext2fs_has_feature_flex_bg(fs->super) ||
	    ext2fs_has_feature_huge_file(fs->super))
		return "ext4";
	if (ext2fs_has_feature_journal(fs->super))
		return "ext3";
	return "ext2";
}

static gp_volume *
ev_open(gp_image *img, uint64_t start, uint64_t size, bool writable)
{
	struct ext_vol *v = xcalloc(1, sizeof(*v));
	struct gp_image_info info;
	char name[64];
	errcode_t e;
	/* MMP is refused below, by name, not tried on our device. */
	int flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP;
	struct ext2_super_block *sb;
	size_t i;

	initialize_ext2_error_table();
	gp_image_get_info(img, &info);
	v->pub.ops = &ext4_fs_ops;
	v->img = img;
	v->start = start;
	v->size = size;
	v->writable = writable;
	v->where = xasprintf("%s: partition at offset %llu", info.path,
	    (unsigned long long)start);
	snprintf(name, sizeof(name), "gpupv:%p", (void *)v);
	if (writable)
		flags |= EXT2_FLAG_RW;
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	/* The fuzz harness reaches what the checksums cover. */
	flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
#endif
	e = ext2fs_open2(name, NULL, flags, 0, 0, &gp_io_manager, &v->fs);
	if (e) {
		v->fs = NULL;
		const char *ver = "?";

		ext2fs_get_library_version(&ver, NULL);
		if (e == EXT2_ET_UNSUPP_FEATURE || e == EXT2_ET_RO_UNSUPP_FEATURE)
			ext_fail(v, GP_EXIT_CORRUPT, e, "the ext file system "
			    "uses a feature libext2fs %s does not know; "
			    "nothing was written", ver);
		else
			ext_fail(v, GP_EXIT_CORRUPT, e, "cannot open the ext "
			    "file system");
		goto fail;
	}
	v->fs->priv_data = v;
	sb = v->fs->super;
	memcpy(v->label, sb->s_volume_name, EXT2_LABEL_LEN);
	for (i = 0; v->label[i]; i++)
		if ((unsigned char)v->label[i] < 0x20 ||
		    (unsigned char)v->label[i] > 0x7e)
			v->label[i] = '?';
	/* What libext2fs 1.47.0 takes on trust when it reads the bitmaps
	 * (a first data block past 1 made it copy past its buffer). */
	if (sb->s_first_data_block > 1 || (v->fs->blocksize > 1024 &&
	    sb->s_first_data_block != 0) ||
	    sb->s_first_data_block >= ext2fs_blocks_count(sb) ||
	    sb->s_blocks_per_group == 0 ||
	    sb->s_blocks_per_group > 8 * v->fs->blocksize ||
	    sb->s_clusters_per_group > 8 * v->fs->blocksize ||
	    sb->s_inodes_per_group > 8 * v->fs->blocksize) {
		ext_fail(v, GP_EXIT_CORRUPT, 0, "the ext superblock's group "
		    "layout is impossible (first data block %u, %u blocks and "
		    "%u inodes per group of %u-byte blocks)",
		    sb->s_first_data_block, sb->s_blocks_per_group,
		    sb->s_inodes_per_group, v->fs->blocksize);
		goto fail;
	}
	if (ext2fs_blocks_count(sb) > size / v->fs->blocksize) {
		ext_fail(v, GP_EXIT_CORRUPT, 0, "the %s file system claims "
		    "%llu blocks of %u bytes, more than its partition holds",
		    fs_name(v->fs), (unsigned long long)ext2fs_blocks_count(sb),
		    v->fs->blocksize);
		goto fail;
	}
	if (!writable)
		return &v->pub;
	if (ext2fs_has_feature_journal_needs_recovery(sb)) {
		ext_fail(v, GP_EXIT_UNCLEAN, 0, "the %s journal needs "
		    "recovery (the guest did not shut down cleanly, or is "
		    "running); writing around it would let the next mount's "
		    "replay undo the change: boot the guest and shut it down "
		    "cleanly, or run e2fsck on the partition", fs_name(v->fs));
		goto fail;
	}
	if (ext2fs_has_feature_journal_dev(sb) || (sb->s_journal_inum == 0 &&
	    ext2fs_has_feature_journal(sb))) {
		ext_fail(v, GP_EXIT_CORRUPT, 0, "the file system keeps its "
		    "journal on another device, which this tool does not "
		    "open; nothing was written");
		goto fail;
	}
	if (!(sb->s_state & EXT2_VALID_FS) || (sb->s_state & EXT2_ERROR_FS)) {
		ext_fail(v, GP_EXIT_UNCLEAN, 0, "the %s file system %s; run "
		    "e2fsck -f on the partition (or boot the guest) first",
		    fs_name(v->fs), sb->s_state & EXT2_ERROR_FS ?
		    "has errors recorded" : "was not cleanly unmounted");
		goto fail;
	}
	if (ext2fs_has_feature_mmp(sb)) {
		ext_fail(v, GP_EXIT_CORRUPT, 0, "the file system uses "
		    "multi-mount protection (mmp), which this tool does not "
		    "take part in; nothing was written");
		goto fail;
	}
	e = ext2fs_read_bitmaps(v->fs);
	if (e) {
		ext_fail(v, GP_EXIT_CORRUPT, e, "cannot read the bitmaps");
		goto fail;
	}
	e = ext2fs_copy_bitmap(v->fs->block_map, &v->busy);
	if (e) {
		ext_fail(v, GP_EXIT_FAILURE, e, "cannot copy the block bitmap");
		goto fail;
	}
	ext2fs_set_alloc_block_callback(v->fs, get_alloc_block, NULL);
	ext2fs_set_block_alloc_stats_callback(v->fs, block_stats,
	    &v->old_stats);
	ext2fs_set_new_range_callback(v->fs, new_range, NULL);
	ext2fs_set_block_alloc_stats_range_callback(v->fs, range_stats,
	    &v->old_range_stats);
	if (declare_unused(v) < 0)
		goto fail;
	return &v->pub;
fail:
	if (v->busy)
		ext2fs_free_block_bitmap(v->busy);
	if (v->fs) {
		/* Nothing of a refused open is written back. */
		v->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY |
		    EXT2_FLAG_BB_DIRTY);
		v->writable = false;
		ext2fs_close_free(&v->fs);
	}
	free(v->where);
	free(v);
	return NULL;
}

static int
ev_close(gp_volume *pv)
{
	struct ext_vol *v = EV(pv);
	int ret = 0;
	errcode_t e;

	if (!v->writable)
		v->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY |
		    EXT2_FLAG_BB_DIRTY);
	e = ext2fs_close_free(&v->fs);
	if (e)
		ret = ext_fail(v, GP_EXIT_FAILURE, e, "cannot write the file "
		    "system's metadata");
	if (v->io_error && ret == 0)
		ret = ext_fail(v, GP_EXIT_FAILURE, EIO, "I/O error on the "
		    "image");
	if (v->busy)
		ext2fs_free_block_bitmap(v->busy);
	free(v->where);
	free(v);
	return ret;
}

static const char *
ev_fs_name(gp_volume *pv)
{
	return fs_name(EV(pv)->fs);
}

static enum gp_volume_state
ev_state(gp_volume *pv)
{
	struct ext2_super_block *sb = EV(pv)->fs->super;

	if (ext2fs_has_feature_journal_needs_recovery(sb) ||
	    !(sb->s_state & EXT2_VALID_FS) || (sb->s_state & EXT2_ERROR_FS))
		return GP_VOL_DIRTY;
	return GP_VOL_CLEAN;
}

static const char *
ev_label(gp_volume *pv)
{
	return EV(pv)->label;
}

/* ---- paths and inodes -------------------------------------------- */

/*
 * path as "a/b/c" relative to the root: '/' and '\\' separate, empty
 * components drop; "." and ".." and over-long names are refused.
 */
static char *
norm_path(struct ext_vol *v, const char *path)
{
	char *out = xmalloc(strlen(path) + 1), *o = out;
	const char *p = path;
	unsigned depth = 0;

	while (*p) {
		const char *s;
		size_t n;

		while (*p == '/' || *p == '\\')
			p++;
		if (!*p)
			break;
		for (s = p; *p && *p != '/' && *p != '\\'; p++)
			;
		n = (size_t)(p - s);
		if ((n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)) ||
		    n > EXT2_NAME_LEN || ++depth > EXT_MAX_DEPTH) {
			error_set(EINVAL, "%s: %.200s: not a path this tool "
			    "writes (\".\", \"..\", a name over %d bytes, or "
			    "deeper than %d)", v->where, path, EXT2_NAME_LEN,
			    EXT_MAX_DEPTH);
			free(out);
			return NULL;
		}
		if (o != out)
			*o++ = '/';
		memcpy(o, s, n);
		o += n;
	}
	*o = '\0';
	return out;
}

/* Look path up: 1 with *ino, 0 with errno ENOENT or ENOTDIR (nothing
 * recorded) when absent, -1 with an error recorded otherwise. */
static int
lookup(struct ext_vol *v, const char *path, bool follow, ext2_ino_t *ino)
{
	char *n = norm_path(v, path);
	errcode_t e;

	if (!n)
		return -1;
	if (!*n) {
		*ino = EXT2_ROOT_INO;
		free(n);
		return 1;
	}
	e = follow ? ext2fs_namei_follow(v->fs, EXT2_ROOT_INO, EXT2_ROOT_INO,
	    n, ino) : ext2fs_namei(v->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, n, ino);
	free(n);
	if (e == EXT2_ET_FILE_NOT_FOUND || e == EXT2_ET_NO_DIRECTORY) {
		errno = e == EXT2_ET_NO_DIRECTORY ? ENOTDIR : ENOENT;
		return 0;
	}
	if (e)
		return ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
	return 1;
}

/* A lookup that failed (absent, or a file where a folder should be)
 * becomes the error, unless its own cause was recorded first. */
static int
missing(struct ext_vol *v, const char *path)
{
	error_set(errno, "%s: %s: %s", v->where, path, strerror(errno));
	return -1;
}

/* lookup, with absence an error too. */
static int
lookup_err(struct ext_vol *v, const char *path, bool follow, ext2_ino_t *ino)
{
	return lookup(v, path, follow, ino) <= 0 ? missing(v, path) : 0;
}

/* The folder of path and the last name in it (norm_path'd; caller frees
 * *name). */
static int
lookup_parent(struct ext_vol *v, const char *path, ext2_ino_t *dir,
    char **name)
{
	char *n = norm_path(v, path), *slash;
	int r;

	if (!n)
		return -1;
	if (!*n) {
		free(n);
		error_set(EINVAL, "%s: the root folder is not a file",
		    v->where);
		return -1;
	}
	slash = strrchr(n, '/');
	if (slash) {
		*slash = '\0';
		r = lookup(v, n, true, dir) > 0 ? 0 : -1;
		*name = xstrdup(slash + 1);
	} else {
		*dir = EXT2_ROOT_INO;
		*name = xstrdup(n);
		r = 0;
	}
	free(n);
	if (r < 0) {
		free(*name);
		*name = NULL;
	}
	return r;
}

static int
read_inode(struct ext_vol *v, ext2_ino_t ino, struct ext2_inode_large *in)
{
	errcode_t e;

	memset(in, 0, sizeof(*in));
	e = ext2fs_read_inode_full(v->fs, ino, (struct ext2_inode *)in,
	    sizeof(*in));
	if (e)
		return ext_fail(v, GP_EXIT_CORRUPT, e, "cannot read inode %u",
		    ino);
	return 0;
}

static int
write_inode(struct ext_vol *v, ext2_ino_t ino, struct ext2_inode_large *in)
{
	errcode_t e = ext2fs_write_inode_full(v->fs, ino,
	    (struct ext2_inode *)in, (int)MIN(sizeof(*in),
	    (size_t)EXT2_INODE_SIZE(v->fs->super)));

	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "cannot write inode %u",
		    ino);
	return 0;
}

static bool
has_extra(struct ext_vol *v, const struct ext2_inode_large *in,
    size_t field_end)
{
	return EXT2_INODE_SIZE(v->fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
	    EXT2_GOOD_OLD_INODE_SIZE + (size_t)in->i_extra_isize >= field_end;
}

static int64_t
get_time(uint32_t sec, uint32_t extra, bool have_extra)
{
	int64_t s = (int32_t)sec;

	if (have_extra)
		s += (int64_t)(extra & EXT4_EPOCH_MASK) << 32;
	return s;
}

static void
put_time(uint32_t *sec, uint32_t *extra, bool have_extra, int64_t ns)
{
	int64_t s = ns / 1000000000, n = ns % 1000000000;

	if (n < 0) {
		n += 1000000000;
		s--;
	}
	*sec = (uint32_t)s;
	if (have_extra)
		*extra = ((uint32_t)n << EXT4_EPOCH_BITS) |
		    ((uint32_t)((s - (int32_t)(uint32_t)s) >> 32) &
		    EXT4_EPOCH_MASK);
}

#define EXTRA_END(f)	(offsetof(struct ext2_inode_large, f) + \
			 sizeof(((struct ext2_inode_large *)0)->f))

/* Owner root, the mode, and every time set from m (crtime too). */
static void
set_inode_meta(struct ext_vol *v, struct ext2_inode_large *in, uint16_t type,
    uint32_t mode, int64_t ns, int64_t crns)
{
	in->i_mode = (uint16_t)(type | (mode & 07777));
	in->i_uid = 0;
	in->i_gid = 0;
	ext2fs_set_i_uid_high(*in, 0);
	ext2fs_set_i_gid_high(*in, 0);
	put_time(&in->i_mtime, &in->i_mtime_extra,
	    has_extra(v, in, EXTRA_END(i_mtime_extra)), ns);
	put_time(&in->i_atime, &in->i_atime_extra,
	    has_extra(v, in, EXTRA_END(i_atime_extra)), ns);
	put_time(&in->i_ctime, &in->i_ctime_extra,
	    has_extra(v, in, EXTRA_END(i_ctime_extra)), ns);
	if (has_extra(v, in, EXTRA_END(i_crtime_extra)))
		put_time(&in->i_crtime, &in->i_crtime_extra, true, crns);
}

static void
fill_stat(struct ext_vol *v, const struct ext2_inode_large *in,
    struct gp_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->is_dir = LINUX_S_ISDIR(in->i_mode);
	st->is_link = LINUX_S_ISLNK(in->i_mode);
	st->size = EXT2_I_SIZE(in);
	st->mode = in->i_mode & 07777;
	st->mtime = get_time(in->i_mtime, in->i_mtime_extra,
	    has_extra(v, in, EXTRA_END(i_mtime_extra)));
}

static int
require_writable(struct ext_vol *v)
{
	if (v->writable)
		return 0;
	error_set(EROFS, "%s: the volume is open read-only", v->where);
	return -1;
}

/* ---- reading ------------------------------------------------------- */

static int
ev_stat(gp_volume *pv, const char *path, struct gp_stat *st)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_ino_t ino;

	if (lookup(v, path, false, &ino) <= 0 || read_inode(v, ino, &in) < 0)
		return -1;
	fill_stat(v, &in, st);
	return 0;
}

/* "." or "..", which no listing reports. */
static bool
dot_entry(const struct ext2_dir_entry *de, int n)
{
	return (n == 1 && de->name[0] == '.') ||
	    (n == 2 && de->name[0] == '.' && de->name[1] == '.');
}

struct list_ctx {
	struct ext_vol *v;
	int (*fn)(void *ctx, const char *name, const struct gp_stat *st);
	void *ctx;
	unsigned count;
	int ret;
};

static int
list_cb(ext2_ino_t dirino, int entry, struct ext2_dir_entry *de, int offset,
    int blocksize, char *buf, void *priv)
{
	struct list_ctx *l = priv;
	struct ext2_inode_large in;
	struct gp_stat st;
	char name[EXT2_NAME_LEN + 1];
	int n = ext2fs_dirent_name_len(de);

	(void)dirino;
	(void)entry;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (dot_entry(de, n))
		return 0;
	if (++l->count > EXT_MAX_DIR_ENTRIES) {
		error_setc(GP_EXIT_CORRUPT, E2BIG, "%s: a folder holds more "
		    "than %u entries", l->v->where, EXT_MAX_DIR_ENTRIES);
		l->ret = -1;
		return DIRENT_ABORT;
	}
	memcpy(name, de->name, (size_t)n);
	name[n] = '\0';
	if (read_inode(l->v, de->inode, &in) < 0) {
		l->ret = -1;
		return DIRENT_ABORT;
	}
	fill_stat(l->v, &in, &st);
	if (l->fn(l->ctx, name, &st)) {
		l->ret = 1;
		return DIRENT_ABORT;
	}
	return 0;
}

static int
ev_list(gp_volume *pv, const char *path,
    int (*fn)(void *ctx, const char *name, const struct gp_stat *st),
    void *ctx)
{
	struct ext_vol *v = EV(pv);
	struct list_ctx l = { v, fn, ctx, 0, 0 };
	ext2_ino_t ino;
	errcode_t e;

	if (lookup_err(v, path, true, &ino) < 0)
		return -1;
	e = ext2fs_dir_iterate2(v->fs, ino, 0, NULL, list_cb, &l);
	if (l.ret < 0)
		return -1;
	if (e)
		return ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
	return 0;
}

static char *
ev_realpath(gp_volume *pv, const char *path)
{
	struct ext_vol *v = EV(pv);
	ext2_ino_t ino;
	char *n, *r;

	if (lookup(v, path, false, &ino) <= 0)
		return NULL;
	n = norm_path(v, path);
	if (!n)
		return NULL;
	r = xasprintf("/%s", n);
	free(n);
	return r;
}

static int
ev_read_cb(gp_volume *pv, const char *path,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_file_t f;
	ext2_ino_t ino;
	uint64_t left;
	char *buf;
	errcode_t e;
	int ret = 0;

	if (lookup_err(v, path, true, &ino) < 0)
		return -1;
	if (read_inode(v, ino, &in) < 0)
		return -1;
	if (!LINUX_S_ISREG(in.i_mode)) {
		error_set(EISDIR, "%s: %s is not a regular file", v->where,
		    path);
		return -1;
	}
	e = ext2fs_file_open(v->fs, ino, 0, &f);
	if (e)
		return ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
	buf = xmalloc(EXT_IO_CHUNK);
	left = EXT2_I_SIZE(&in);
	while (left > 0) {
		unsigned got = 0;
		unsigned want = (unsigned)MIN(left, (uint64_t)EXT_IO_CHUNK);

		e = ext2fs_file_read(f, buf, want, &got);
		if (e || got == 0) {
			ret = ext_fail(v, GP_EXIT_CORRUPT, e ? e : EIO,
			    "%.200s: cannot read", path);
			break;
		}
		left -= got;
		if (fn(ctx, buf, got) < 0) {
			ret = -1;
			break;
		}
	}
	free(buf);
	ext2fs_file_close(f);
	return ret;
}

struct mem_sink {
	uint8_t *p;
	size_t len, max;
};

static int
mem_sink(void *ctx, const void *buf, size_t len)
{
	struct mem_sink *m = ctx;

	if (len > m->max - m->len)
		return -1;
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int
ev_read(gp_volume *pv, const char *path, size_t max, void **data,
    size_t *len)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	struct mem_sink m = { 0 };
	ext2_ino_t ino;

	if (lookup(v, path, true, &ino) <= 0 || read_inode(v, ino, &in) < 0)
		return -1;
	if (EXT2_I_SIZE(&in) > max) {
		error_setc(GP_EXIT_CORRUPT, EFBIG, "%s: %s is larger than "
		    "%zu bytes", v->where, path, max);
		return -1;
	}
	m.max = (size_t)EXT2_I_SIZE(&in);
	m.p = xmalloc(m.max + 1);
	if (ev_read_cb(pv, path, mem_sink, &m) < 0 || m.len != m.max) {
		error_setc(GP_EXIT_CORRUPT, EIO, "%s: %s changed size "
		    "while read", v->where, path);
		free(m.p);
		return -1;
	}
	m.p[m.len] = '\0';
	*data = m.p;
	*len = m.len;
	return 0;
}

struct fd_sink {
	int fd;
	uint64_t off;
};

static int
fd_sink(void *ctx, const void *buf, size_t len)
{
	struct fd_sink *s = ctx;

	if (file_pwrite(s->fd, buf, len, s->off) < 0)
		return -1;
	s->off += len;
	return 0;
}

static int
ev_extract(gp_volume *pv, const char *path, const char *host_path)
{
	int fd = open(host_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	struct fd_sink sink = { fd, 0 };
	int r;

	if (fd < 0) {
		error_set(errno, "%s: %s", host_path, strerror(errno));
		return -1;
	}
	r = ev_read_cb(pv, path, fd_sink, &sink);
	if (r < 0)
		error_set(errno, "%s: %s", host_path, strerror(errno));
	if (close(fd) < 0 && r == 0) {
		error_set(errno, "%s: %s", host_path, strerror(errno));
		r = -1;
	}
	return r;
}

/* ---- writing ------------------------------------------------------- */

/* Link ino into dir as name, growing the folder when it is full. */
static errcode_t
link_in(struct ext_vol *v, ext2_ino_t dir, const char *name, ext2_ino_t ino,
    int type)
{
	errcode_t e = ext2fs_link(v->fs, dir, name, ino, type);

	if (e == EXT2_ET_DIR_NO_SPACE) {
		e = ext2fs_expand_dir(v->fs, dir);
		if (!e)
			e = ext2fs_link(v->fs, dir, name, ino, type);
	}
	return e;
}

static int
exists_error(struct ext_vol *v, ext2_ino_t dir, const char *name,
    const char *path)
{
	ext2_ino_t ino;
	errcode_t e = ext2fs_lookup(v->fs, dir, name, (int)strlen(name), NULL,
	    &ino);

	if (e == 0) {
		error_set(EEXIST, "%s: %s exists", v->where, path);
		return -1;
	}
	if (e != EXT2_ET_FILE_NOT_FOUND)
		return ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
	return 0;
}

static int
make_dir(struct ext_vol *v, ext2_ino_t dir, const char *name,
    const char *path, uint32_t mode, int64_t ns, int64_t crns)
{
	struct ext2_inode_large in;
	ext2_ino_t ino;
	errcode_t e = ext2fs_mkdir(v->fs, dir, 0, name);

	if (e == EXT2_ET_DIR_NO_SPACE) {
		e = ext2fs_expand_dir(v->fs, dir);
		if (!e)
			e = ext2fs_mkdir(v->fs, dir, 0, name);
	}
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "cannot make folder "
		    "%.200s", path);
	e = ext2fs_lookup(v->fs, dir, name, (int)strlen(name), NULL, &ino);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
	if (read_inode(v, ino, &in) < 0)
		return -1;
	set_inode_meta(v, &in, LINUX_S_IFDIR, mode ? mode : 0755, ns, crns);
	return write_inode(v, ino, &in);
}

static int
ev_mkdir_p(gp_volume *pv, const char *path)
{
	struct ext_vol *v = EV(pv);
	char *n, *p;
	int64_t now = (int64_t)time(NULL) * 1000000000;
	int ret = -1, found;

	if (require_writable(v) < 0 || !(n = norm_path(v, path)))
		return -1;
	for (p = n; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p, *slash;
			ext2_ino_t ino, dir = EXT2_ROOT_INO;
			*p = '\0';
			if (!*n)
				goto next;
			found = lookup(v, n, true, &ino);
			if (found > 0) {
				struct ext2_inode_large in;

				if (read_inode(v, ino, &in) < 0)
					goto out;
				if (!LINUX_S_ISDIR(in.i_mode)) {
					error_set(ENOTDIR, "%s: %s is not a "
					    "folder", v->where, n);
					goto out;
				}
				goto next;
			}
			if (found < 0)
				goto out;
			slash = strrchr(n, '/');
			if (slash) {
				*slash = '\0';
				if (lookup(v, n, true, &dir) <= 0) {
					*slash = '/';
					goto out;
				}
				*slash = '/';
			}
			if (make_dir(v, dir, slash ? slash + 1 : n, n, 0755, now,
			    now) < 0)
				goto out;
next:
			*p = save;
			if (!save)
				break;
		}
	}
	ret = 0;
out:
	if (ret < 0)
		missing(v, path);
	free(n);
	return ret;
}

/* A new inode of type in dir, linked as name; its inode is in *in. */
static int
new_inode(struct ext_vol *v, ext2_ino_t dir, const char *name,
    const char *path, uint16_t type, uint32_t mode, int64_t ns,
    int64_t crns, ext2_ino_t *pino, struct ext2_inode_large *in)
{
	ext2_ino_t ino;
	errcode_t e;

	e = ext2fs_new_inode(v->fs, dir, type | mode, NULL, &ino);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "no inode for %.200s",
		    path);
	e = link_in(v, dir, name, ino, type == LINUX_S_IFLNK ?
	    EXT2_FT_SYMLINK : EXT2_FT_REG_FILE);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "cannot link %.200s",
		    path);
	ext2fs_inode_alloc_stats2(v->fs, ino, +1, 0);
	memset(in, 0, sizeof(*in));
	in->i_links_count = 1;
	if (EXT2_INODE_SIZE(v->fs->super) > EXT2_GOOD_OLD_INODE_SIZE)
		in->i_extra_isize = sizeof(struct ext2_inode_large) -
		    EXT2_GOOD_OLD_INODE_SIZE;
	set_inode_meta(v, in, type, mode, ns, crns);
	/* Zero the whole on-disk inode first (in-inode attributes). */
	e = ext2fs_write_new_inode(v->fs, ino, (struct ext2_inode *)in);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "cannot write inode %u",
		    ino);
	*pino = ino;
	return 0;
}

/*
 * Write size bytes from fill into the empty extent-mapped inode ino: its
 * blocks allocated at once (ext2fs_fallocate, in runs as long as the free
 * space has), then written run by run in large pieces.  Nothing is
 * written twice, and the tail of the last block is zeros.
 */
static int
write_extents(struct ext_vol *v, ext2_ino_t ino, struct ext2_inode_large *in,
    const char *path, uint64_t size,
    int (*fill)(void *ctx, void *buf, size_t len), void *ctx)
{
	ext2_filsys fs = v->fs;
	uint64_t bs = fs->blocksize, nblk = (size + bs - 1) / bs;
	uint64_t next = 0, chunk = EXT_IO_CHUNK / bs;
	ext2_extent_handle_t h = NULL;
	struct ext2fs_extent ex;
	uint8_t *buf = NULL;
	errcode_t e;
	int ret = -1;

	in->i_size = (uint32_t)size;
	in->i_size_high = (uint32_t)(size >> 32);
	if (write_inode(v, ino, in) < 0)
		return -1;
	if (nblk == 0)
		return 0;
	e = ext2fs_fallocate(fs, EXT2_FALLOCATE_FORCE_INIT |
	    EXT2_FALLOCATE_INIT_BEYOND_EOF, ino, (struct ext2_inode *)in,
	    v->goal ? v->goal : ~0ULL, 0, nblk);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "cannot allocate %.200s",
		    path);
	e = ext2fs_extent_open(fs, ino, &h);
	if (!e)
		e = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ex);
	buf = xmalloc(EXT_IO_CHUNK);
	while (!e && next < nblk) {
		uint64_t k;

		if (!(ex.e_flags & EXT2_EXTENT_FLAGS_LEAF)) {
			e = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &ex);
			continue;
		}
		/* Claimed for the session whatever libext2fs reported. */
		ext2fs_mark_block_bitmap_range2(v->busy, ex.e_pblk, ex.e_len);
		if (ex.e_lblk != next || ex.e_len == 0 ||
		    (ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT)) {
			ext_fail(v, GP_EXIT_FAILURE, 0, "%.200s: blocks "
			    "allocated with a gap or uninitialized at %llu",
			    path, (unsigned long long)next);
			goto out;
		}
		for (k = 0; k < ex.e_len && next < nblk;) {
			uint64_t n = MIN(MIN(chunk, (uint64_t)ex.e_len - k),
			    nblk - next);
			uint64_t bytes = MIN(n * bs, size - next * bs);

			if (fill(ctx, buf, (size_t)bytes) < 0)
				goto out;
			memset(buf + bytes, 0, (size_t)(n * bs - bytes));
			e = io_channel_write_blk64(fs->io, ex.e_pblk + k,
			    (int)n, buf);
			if (e)
				break;
			v->goal = ex.e_pblk + k + n;
			k += n;
			next += n;
		}
		if (!e && next < nblk)
			e = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &ex);
	}
	if (e) {
		ext_fail(v, GP_EXIT_FAILURE, e, "cannot write %.200s", path);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	if (h)
		ext2fs_extent_free(h);
	return ret;
}

/* Write size bytes from fill into the (empty) regular inode ino. */
static int
write_data(struct ext_vol *v, ext2_ino_t ino, struct ext2_inode_large *in,
    const char *path, uint64_t size,
    int (*fill)(void *ctx, void *buf, size_t len), void *ctx)
{
	ext2_file_t f;
	uint64_t left = size;
	char *buf = NULL;
	errcode_t e;
	int ret = -1;

	if (ext2fs_has_feature_extents(v->fs->super)) {
		ext2_extent_handle_t h;

		in->i_flags &= ~EXT4_EXTENTS_FL;
		e = ext2fs_extent_open2(v->fs, ino, (struct ext2_inode *)in, &h);
		if (e)
			return ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
		ext2fs_extent_free(h);
		if (write_inode(v, ino, in) < 0)
			return -1;
		return write_extents(v, ino, in, path, size, fill, ctx);
	}
	e = ext2fs_file_open(v->fs, ino, EXT2_FILE_WRITE, &f);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
	if (size)
		buf = xmalloc(EXT_IO_CHUNK);
	while (left > 0) {
		size_t n = (size_t)MIN(left, (uint64_t)EXT_IO_CHUNK);
		size_t off = 0;

		if (fill(ctx, buf, n) < 0)
			goto out;
		while (off < n) {
			unsigned done = 0;

			e = ext2fs_file_write(f, buf + off, (unsigned)(n - off),
			    &done);
			if (e || done == 0) {
				ext_fail(v, GP_EXIT_FAILURE, e ? e : EIO,
				    "cannot write %.200s", path);
				goto out;
			}
			off += done;
		}
		left -= n;
	}
	e = ext2fs_file_set_size2(f, size);
	if (e) {
		ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	e = ext2fs_file_close(f);
	if (e && ret == 0)
		ret = ext_fail(v, GP_EXIT_FAILURE, e, "cannot write %.200s",
		    path);
	return ret;
}

static int
ev_create(gp_volume *pv, const char *path, bool is_dir, uint64_t size,
    const struct gp_file_meta *m, int (*fill)(void *ctx, void *buf,
    size_t len), void *ctx)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_ino_t dir, ino;
	char *name = NULL;
	int64_t ns = m ? m->mtime_ns : (int64_t)time(NULL) * 1000000000;
	int64_t crns = m && m->crtime_ns ? m->crtime_ns : ns;
	uint32_t mode = m && m->mode ? m->mode : is_dir ? 0755 : 0644;
	int ret = -1;

	if (require_writable(v) < 0)
		return -1;
	if (lookup_parent(v, path, &dir, &name) < 0)
		return missing(v, path);
	if (exists_error(v, dir, name, path) < 0)
		goto out;
	if (is_dir) {
		ret = make_dir(v, dir, name, path, mode, ns, crns);
		goto out;
	}
	if (new_inode(v, dir, name, path, LINUX_S_IFREG, mode, ns, crns, &ino,
	    &in) < 0 || write_data(v, ino, &in, path, size, fill, ctx) < 0)
		goto out;
	/* The data written, the times are put back (writing moved them). */
	if (read_inode(v, ino, &in) < 0)
		goto out;
	if (EXT2_I_SIZE(&in) != size) {
		error_set(EIO, "%s: %s: %llu bytes written, %llu stored",
		    v->where, path, (unsigned long long)size,
		    (unsigned long long)EXT2_I_SIZE(&in));
		goto out;
	}
	set_inode_meta(v, &in, LINUX_S_IFREG, mode, ns, crns);
	ret = write_inode(v, ino, &in);
out:
	free(name);
	return ret;
}

static int
ev_symlink(gp_volume *pv, const char *path, const char *target,
    const struct gp_file_meta *m)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_ino_t dir, ino;
	char *name = NULL;
	size_t len = strlen(target);
	int64_t ns = m ? m->mtime_ns : (int64_t)time(NULL) * 1000000000;
	int ret = -1;

	if (require_writable(v) < 0)
		return -1;
	if (len == 0 || len > EXT_MAX_LINK || len >= v->fs->blocksize) {
		error_set(ENAMETOOLONG, "%s: %s: link target of %zu bytes",
		    v->where, path, len);
		return -1;
	}
	if (lookup_parent(v, path, &dir, &name) < 0)
		return missing(v, path);
	if (exists_error(v, dir, name, path) < 0 ||
	    new_inode(v, dir, name, path, LINUX_S_IFLNK, 0777, ns, ns, &ino,
	    &in) < 0)
		goto out;
	if (len < sizeof(in.i_block)) {
		/* A fast link: the target in the inode itself. */
		memcpy(in.i_block, target, len);
		in.i_size = (uint32_t)len;
		ret = write_inode(v, ino, &in);
	} else {
		struct fs_mem src = { (const uint8_t *)target, len };

		ret = write_data(v, ino, &in, path, len, fs_mem_fill, &src);
	}
out:
	free(name);
	return ret;
}

static int
ev_set_meta(gp_volume *pv, const char *path, const struct gp_file_meta *m)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_ino_t ino;
	uint32_t mode;

	if (require_writable(v) < 0)
		return -1;
	if (lookup_err(v, path, false, &ino) < 0)
		return -1;
	if (read_inode(v, ino, &in) < 0)
		return -1;
	mode = m->mode ? m->mode : in.i_mode & 07777;
	set_inode_meta(v, &in, in.i_mode & LINUX_S_IFMT, mode, m->mtime_ns,
	    m->crtime_ns ? m->crtime_ns : m->mtime_ns);
	return write_inode(v, ino, &in);
}

static int
ev_overwrite(gp_volume *pv, const char *path, const void *data, size_t len)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in;
	ext2_ino_t ino;
	struct fs_mem src = { data, len };
	errcode_t e;

	if (require_writable(v) < 0)
		return -1;
	if (lookup_err(v, path, false, &ino) < 0)
		return -1;
	if (read_inode(v, ino, &in) < 0)
		return -1;
	if (!LINUX_S_ISREG(in.i_mode)) {
		error_set(EISDIR, "%s: %s is not a regular file", v->where,
		    path);
		return -1;
	}
	/* Emptied first: its blocks go, new ones are allocated afresh. */
	e = ext2fs_punch(v->fs, ino, (struct ext2_inode *)&in, NULL, 0, ~0ULL);
	if (e)
		return ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
	in.i_size = 0;
	in.i_size_high = 0;
	if (write_inode(v, ino, &in) < 0)
		return -1;
	if (write_data(v, ino, &in, path, len, fs_mem_fill, &src) < 0)
		return -1;
	return 0;
}

struct empty_ctx {
	unsigned n;
};

static int
empty_cb(ext2_ino_t dirino, int entry, struct ext2_dir_entry *de, int offset,
    int blocksize, char *buf, void *priv)
{
	struct empty_ctx *c = priv;
	int n = ext2fs_dirent_name_len(de);

	(void)dirino;
	(void)entry;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (dot_entry(de, n))
		return 0;
	c->n++;
	return DIRENT_ABORT;
}

static int
ev_remove(gp_volume *pv, const char *path)
{
	struct ext_vol *v = EV(pv);
	struct ext2_inode_large in, pin;
	ext2_ino_t dir, ino;
	char *name = NULL;
	bool is_dir;
	errcode_t e;
	int ret = -1;

	if (require_writable(v) < 0)
		return -1;
	if (lookup_parent(v, path, &dir, &name) < 0)
		return -1;
	e = ext2fs_lookup(v->fs, dir, name, (int)strlen(name), NULL, &ino);
	if (e == EXT2_ET_FILE_NOT_FOUND) {
		errno = ENOENT;
		error_set(ENOENT, "%s: %s: %s", v->where, path,
		    strerror(ENOENT));
		goto out;
	}
	if (e) {
		ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
		goto out;
	}
	if (read_inode(v, ino, &in) < 0)
		goto out;
	is_dir = LINUX_S_ISDIR(in.i_mode);
	if (is_dir) {
		struct empty_ctx c = { 0 };

		e = ext2fs_dir_iterate2(v->fs, ino, 0, NULL, empty_cb, &c);
		if (e) {
			ext_fail(v, GP_EXIT_CORRUPT, e, "%.200s", path);
			goto out;
		}
		if (c.n) {
			errno = ENOTEMPTY;
			error_set(ENOTEMPTY, "%s: %s: %s", v->where, path,
			    strerror(ENOTEMPTY));
			goto out;
		}
	}
	e = ext2fs_unlink(v->fs, dir, name, ino, 0);
	if (e) {
		ext_fail(v, GP_EXIT_FAILURE, e, "cannot unlink %.200s", path);
		goto out;
	}
	if (is_dir) {
		/* Its ".." no longer counts in the parent. */
		if (read_inode(v, dir, &pin) < 0)
			goto out;
		if (pin.i_links_count > 2)
			pin.i_links_count--;
		if (write_inode(v, dir, &pin) < 0)
			goto out;
		in.i_links_count = 0;
	} else if (in.i_links_count > 0) {
		in.i_links_count--;
	}
	if (in.i_links_count == 0) {
		if (ext2fs_inode_has_valid_blocks2(v->fs,
		    (struct ext2_inode *)&in)) {
			e = ext2fs_punch(v->fs, ino, (struct ext2_inode *)&in,
			    NULL, 0, ~0ULL);
			if (e) {
				ext_fail(v, GP_EXIT_FAILURE, e, "cannot free "
				    "the blocks of %.200s", path);
				goto out;
			}
		}
		if (ext2fs_file_acl_block(v->fs, (struct ext2_inode *)&in)) {
			blk64_t b = ext2fs_file_acl_block(v->fs,
			    (struct ext2_inode *)&in);
			__u32 count = 1;

			e = ext2fs_adjust_ea_refcount3(v->fs, b, NULL, -1,
			    &count, ino);
			if (e) {
				ext_fail(v, GP_EXIT_FAILURE, e, "%.200s", path);
				goto out;
			}
			if (count == 0)
				ext2fs_block_alloc_stats2(v->fs, b, -1);
			ext2fs_file_acl_block_set(v->fs,
			    (struct ext2_inode *)&in, 0);
		}
		in.i_dtime = (uint32_t)time(NULL);
		ext2fs_inode_alloc_stats2(v->fs, ino, -1, is_dir);
	}
	ret = write_inode(v, ino, &in);
out:
	free(name);
	return ret;
}

/* ---- space --------------------------------------------------------- */

static int
ev_space(gp_volume *pv, uint64_t *unit, uint64_t *free_bytes)
{
	struct ext_vol *v = EV(pv);
	struct ext2_super_block *sb = v->fs->super;
	uint64_t fr = ext2fs_free_blocks_count(sb);
	uint64_t res = ext2fs_r_blocks_count(sb);

	*unit = v->fs->blocksize;
	/* Root may use the reserved blocks, but the guest's own root
	 * processes count on them: not ours to take. */
	*free_bytes = (fr > res ? fr - res : 0) * v->fs->blocksize;
	return 0;
}

static uint64_t
ev_stored_free(gp_volume *pv)
{
	(void)pv;
	return 0;
}

static int
ev_free_runs(gp_volume *pv, int (*fn)(void *ctx, uint64_t off,
    uint64_t len), void *ctx)
{
	struct ext_vol *v = EV(pv);
	ext2_filsys fs = v->fs;
	blk64_t b = fs->super->s_first_data_block;
	blk64_t end = ext2fs_blocks_count(fs->super) - 1;
	errcode_t e;

	if (!fs->block_map && (e = ext2fs_read_block_bitmap(fs)))
		return ext_fail(v, GP_EXIT_CORRUPT, e, "cannot read the block "
		    "bitmap");
	while (b <= end) {
		blk64_t z, s;

		if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, b, end,
		    &z))
			break;
		if (ext2fs_find_first_set_block_bitmap2(fs->block_map, z, end,
		    &s))
			s = end + 1;
		if (fn(ctx, z * fs->blocksize, (s - z) * fs->blocksize))
			return -1;
		b = s;
	}
	return 0;
}

static int
ev_short_names(gp_volume *pv, const char *dir_path, int mode)
{
	(void)pv;
	(void)dir_path;
	(void)mode;
	return 0;
}

/* Data blocks, and an extent block for a file long enough to be split
 * into more than the four extents an inode holds. */
static uint64_t
ev_file_cost(gp_volume *pv, uint64_t size)
{
	uint64_t bs = EV(pv)->fs->blocksize;
	uint64_t blocks = (size + bs - 1) / bs;

	return blocks * bs + (blocks > 4 * 32768 ? bs : 0);
}

const struct fs_ops ext4_fs_ops = {
	.name = "ext4",
	.kind = GP_FS_EXT,
	.open = ev_open,
	.close = ev_close,
	.fs_name = ev_fs_name,
	.state = ev_state,
	.label = ev_label,
	.stat = ev_stat,
	.list = ev_list,
	.extract = ev_extract,
	.realpath = ev_realpath,
	.mkdir_p = ev_mkdir_p,
	.overwrite = ev_overwrite,
	.create = ev_create,
	.symlink = ev_symlink,
	.set_meta = ev_set_meta,
	.remove = ev_remove,
	.space = ev_space,
	.stored_free = ev_stored_free,
	.free_runs = ev_free_runs,
	.read_cb = ev_read_cb,
	.read = ev_read,
	.short_names = ev_short_names,
	.file_cost = ev_file_cost,
};
