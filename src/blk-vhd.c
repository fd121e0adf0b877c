/*
 * blk-vhd.c - VHD images (Microsoft "Virtual Hard Disk Image Format
 * Specification" 1.0): fixed, dynamic and differencing read; fixed and
 * dynamic write.  Every field is big-endian.
 *
 * Layout: a 512-byte footer at the end (and, for dynamic and
 * differencing disks, a copy at offset 0), a 1024-byte dynamic header,
 * the BAT of 32-bit sector offsets, and blocks each preceded by a sector
 * bitmap (bit set = sector present in this file, most significant bit
 * first).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "blk.h"

#define VHD_FOOTER_SIZE		512
#define VHD_DYNHDR_SIZE		1024
#define VHD_TYPE_FIXED		2
#define VHD_TYPE_DYNAMIC	3
#define VHD_TYPE_DIFF		4
#define VHD_BAT_UNUSED		0xFFFFFFFFu
#define VHD_MAX_SIZE		(2040ull * 1024 * 1024 * 1024)	/* spec limit */
#define VHD_MAX_BAT_ENTRIES	(1u << 24)	/* cap on what we load */
#define VHD_MAX_BLOCK		(256u * 1024 * 1024)

struct vhd {
	uint8_t footer[VHD_FOOTER_SIZE];
	uint32_t type;
	uint64_t size;
	uint64_t bat_off;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t bitmap_size;		/* bytes, padded to a sector */
	uint32_t *bat;			/* host order */
	uint8_t *bitmap;		/* cached bitmap of one block */
	uint32_t bitmap_block;
	bool data_unsynced;
	uint8_t parent_id[16];
};

static int reclaim_tail(gp_image *img, struct vhd *h, uint64_t dyn_off);
static int put_bat(gp_image *img, struct vhd *h, uint32_t blk);

static uint32_t
vhd_checksum(const uint8_t *p, size_t n, size_t skip_off)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (i < skip_off || i >= skip_off + 4)
			sum += p[i];
	return ~sum;
}

static bool
footer_valid(const uint8_t *f)
{
	return memcmp(f, "conectix", 8) == 0 &&
	    SUM_OK(get_be32(f + 64), vhd_checksum(f, VHD_FOOTER_SIZE, 64));
}

static int
vhd_probe(const uint8_t *head, size_t headlen, const uint8_t tail[512],
    uint64_t file_size)
{
	if (file_size >= VHD_FOOTER_SIZE && memcmp(tail, "conectix", 8) == 0)
		return 90;
	/* Dynamic disks keep a copy of the footer at 0; the tail may be torn. */
	if (headlen >= 8 && memcmp(head, "conectix", 8) == 0)
		return 80;
	/* Pre-2004 Virtual PC fixed disks wrote a 511-byte footer. */
	if (file_size >= 511 && memcmp(tail + 1, "conectix", 8) == 0)
		return 50;
	return 0;
}

#define corrupt(img, ...) error_corrupt((img)->path, __VA_ARGS__)

static void
vhd_free(struct vhd *h)
{
	if (!h)
		return;
	free(h->bat);
	free(h->bitmap);
	free(h);
}

static int
parent_check(gp_image *child, gp_image *parent)
{
	struct vhd *h = child->priv;
	uint8_t id[16];

	if (parent->drv != &blk_vhd_driver) {
		error_setc(GP_EXIT_PARENT, EINVAL, "%s: parent %s is a %s image, "
		    "not VHD", child->path, parent->path, parent->drv->name);
		return -1;
	}
	memcpy(id, ((struct vhd *)parent->priv)->footer + 68, 16);
	if (memcmp(id, h->parent_id, 16) != 0) {
		error_setc(GP_EXIT_PARENT, EINVAL, "%s: parent %s does not "
		    "match: its unique id differs from the one the child "
		    "records", child->path, parent->path);
		return -1;
	}
	return 0;
}

/* Parent locators (platform codes W2ru, W2ku: UTF-16LE paths). */
static int
open_parent(gp_image *img, struct vhd *h, const uint8_t *dh,
    const char *override)
{
	char *cand[BLK_MAX_PARENT_CAND] = { 0 }, *dir = path_dirname(img->path);
	char *name;
	size_t n = 0, i;
	int ret;

	if (override)
		cand[n++] = xstrdup(override);
	for (i = 0; i < 8 && n < BLK_MAX_PARENT_CAND - 1; i++) {
		const uint8_t *e = dh + 576 + 24 * i;
		uint32_t code = get_be32(e), len = get_be32(e + 8);
		uint64_t off = get_be64(e + 16);
		uint8_t *buf;
		char *p, *q;

		if ((code != 0x57327275 /* W2ru */ && code != 0x57326B75 /* W2ku */) ||
		    len == 0 || len > 4096 || off > img->file_size ||
		    len > img->file_size - off)
			continue;
		buf = xmalloc(len);
		if (blk_file_read(img, buf, len, off) < 0) {
			free(buf);
			goto out_fail;
		}
		p = utf16_to_utf8(buf, len / 2, false);
		free(buf);
		for (q = p; *q; q++)
			if (*q == '\\')
				*q = '/';
		if (!img->parent_hint)
			img->parent_hint = xstrdup(p);
		if (code == 0x57327275)
			cand[n++] = path_join(dir, p[0] == '.' && p[1] == '/' ?
			    p + 2 : p);
		else
			cand[n++] = path_join(dir, path_basename(p));
		free(p);
	}
	/* The parent's Unicode name (UTF-16BE) in the dynamic header. */
	name = utf16_to_utf8(dh + 64, 256, true);
	for (i = 0; name[i]; i++)
		if (name[i] == '\\')
			name[i] = '/';
	if (*name) {
		if (!img->parent_hint)
			img->parent_hint = xstrdup(name);
		cand[n++] = path_join(dir, path_basename(name));
	}
	free(name);
	/* blk.c opens the first that exists, and parent_check judges it. */
	for (i = 0; i < n; i++)
		blk_want_parent(img, cand[i]);
	ret = 0;
	goto out;
out_fail:
	ret = -1;
out:
	for (i = 0; i < n; i++)
		free(cand[i]);
	free(dir);
	return ret;
}

static int
vhd_open(gp_image *img, const struct gp_open_opts *opts)
{
	struct vhd *h = xcalloc(1, sizeof(*h));
	uint8_t dh[VHD_DYNHDR_SIZE], head[VHD_FOOTER_SIZE];
	uint64_t dyn_off, i, fsize = img->file_size;
	uint8_t *raw = NULL;

	img->priv = h;
	h->bitmap_block = UINT32_MAX;
	if (fsize < VHD_FOOTER_SIZE) {
		corrupt(img, "file too small for a VHD footer");
		goto fail;
	}
	if (blk_file_read(img, h->footer, VHD_FOOTER_SIZE,
	    fsize - VHD_FOOTER_SIZE) < 0)
		goto fail;
	if (!footer_valid(h->footer)) {
		/* A torn footer: dynamic disks keep a copy at offset 0. */
		if (blk_file_read(img, head, VHD_FOOTER_SIZE, 0) < 0)
			goto fail;
		if (!footer_valid(head)) {
			corrupt(img, "VHD footer is corrupt (bad cookie or "
			    "checksum) and has no valid copy");
			goto fail;
		}
		memcpy(h->footer, head, VHD_FOOTER_SIZE);
		warn_add("%s: VHD footer at the end is corrupt; using the copy "
		    "at offset 0", img->path);
	}
	h->type = get_be32(h->footer + 60);
	h->size = get_be64(h->footer + 48);
	snprintf(img->info.creator, sizeof(img->info.creator), "%.4s %u.%u",
	    (const char *)h->footer + 28, get_be16(h->footer + 32),
	    get_be16(h->footer + 34));
	{
		guid_t g;

		/* The unique id is a plain 16-byte value; show it as a GUID. */
		guid_from_bytes(&g, h->footer + 68);
		guid_format(&g, img->info.disk_id);
	}
	if (h->size == 0 || h->size > VHD_MAX_SIZE || h->size % 512) {
		corrupt(img, "VHD current size %llu is zero, above 2040 GiB, "
		    "or not a multiple of 512", (unsigned long long)h->size);
		goto fail;
	}
	img->info.virtual_size = h->size;
	img->info.logical_sector_size = 512;
	img->info.physical_sector_size = 512;

	if (h->type == VHD_TYPE_FIXED) {
		img->info.subformat = "fixed";
		if (fsize - VHD_FOOTER_SIZE < h->size) {
			corrupt(img, "fixed VHD claims %llu bytes but holds %llu",
			    (unsigned long long)h->size,
			    (unsigned long long)(fsize - VHD_FOOTER_SIZE));
			goto fail;
		}
		return 0;
	}
	if (h->type != VHD_TYPE_DYNAMIC && h->type != VHD_TYPE_DIFF) {
		corrupt(img, "VHD disk type %u is unknown", h->type);
		goto fail;
	}
	img->info.subformat = h->type == VHD_TYPE_DIFF ? "differencing" :
	    "dynamic";
	dyn_off = get_be64(h->footer + 16);
	if (dyn_off > fsize || VHD_DYNHDR_SIZE > fsize - dyn_off) {
		corrupt(img, "VHD dynamic header offset %llu lies outside the "
		    "file", (unsigned long long)dyn_off);
		goto fail;
	}
	if (blk_file_read(img, dh, sizeof(dh), dyn_off) < 0)
		goto fail;
	if (memcmp(dh, "cxsparse", 8) != 0 ||
	    !SUM_OK(get_be32(dh + 36), vhd_checksum(dh, sizeof(dh), 36))) {
		corrupt(img, "VHD dynamic header is corrupt (bad cookie or "
		    "checksum)");
		goto fail;
	}
	h->bat_off = get_be64(dh + 16);
	h->max_entries = get_be32(dh + 28);
	h->block_size = get_be32(dh + 32);
	memcpy(h->parent_id, dh + 40, 16);
	if (!is_pow2(h->block_size) || h->block_size < 512 ||
	    h->block_size > VHD_MAX_BLOCK) {
		corrupt(img, "VHD block size %u is not a power of two up to "
		    "256 MiB", h->block_size);
		goto fail;
	}
	img->info.block_size = h->block_size;
	if (h->max_entries > VHD_MAX_BAT_ENTRIES ||
	    (uint64_t)h->max_entries * h->block_size < h->size) {
		corrupt(img, "VHD BAT of %u entries does not cover the %llu "
		    "byte disk or is absurdly large", h->max_entries,
		    (unsigned long long)h->size);
		goto fail;
	}
	if (h->bat_off > fsize || (uint64_t)h->max_entries * 4 > fsize - h->bat_off) {
		corrupt(img, "VHD BAT (offset %llu, %u entries) lies outside "
		    "the file", (unsigned long long)h->bat_off, h->max_entries);
		goto fail;
	}
	h->bitmap_size = ((h->block_size / 512 / 8) + 511) / 512 * 512;
	raw = xmalloc((size_t)h->max_entries * 4);
	h->bat = xmalloc((size_t)h->max_entries * 4);
	if (blk_file_read(img, raw, (size_t)h->max_entries * 4, h->bat_off) < 0)
		goto fail;
	for (i = 0; i < h->max_entries; i++) {
		uint64_t at;

		h->bat[i] = get_be32(raw + 4 * i);
		if (h->bat[i] == VHD_BAT_UNUSED)
			continue;
		at = (uint64_t)h->bat[i] * 512;
		if (at > fsize || (uint64_t)h->bitmap_size + h->block_size > fsize - at ||
		    (at < h->bat_off + (uint64_t)h->max_entries * 4 &&
		    h->bat_off < at + h->bitmap_size + h->block_size)) {
			corrupt(img, "VHD BAT entry %llu points at sector %u, "
			    "outside the file or into the BAT",
			    (unsigned long long)i, h->bat[i]);
			goto fail;
		}
	}
	free(raw);
	raw = NULL;
	if (reclaim_tail(img, h, dyn_off) < 0)
		goto fail;
	h->bitmap = xmalloc(h->bitmap_size);
	if (h->type == VHD_TYPE_DIFF && open_parent(img, h, dh,
	    opts->parent) < 0)
		goto fail;
	return 0;
fail:
	free(raw);
	vhd_free(h);
	img->priv = NULL;
	return -1;
}

/*
 * Blocks a killed session appended lie between the last block the BAT
 * names and the footer at the end; the footer the committed state had is
 * still in place right after that last block (a new block only overwrites
 * it through the session).  Cut the file back to it, in a writable open
 * outside a dry run.
 */
static int
reclaim_tail(gp_image *img, struct vhd *h, uint64_t dyn_off)
{
	uint64_t end = MAX(dyn_off + VHD_DYNHDR_SIZE, h->bat_off +
	    ((uint64_t)h->max_entries * 4 + 511) / 512 * 512);
	uint8_t f[VHD_FOOTER_SIZE];
	uint32_t i;

	if (!BLK_FILE_WRITABLE(img))
		return 0;
	for (i = 0; i < h->max_entries; i++)
		if (h->bat[i] != VHD_BAT_UNUSED)
			end = MAX(end, (uint64_t)h->bat[i] * 512 +
			    h->bitmap_size + h->block_size);
	end = (end + 511) / 512 * 512;
	if (img->file_size <= end + VHD_FOOTER_SIZE)
		return 0;
	/* Where the old footer should be, a footer must be, or we keep out. */
	if (blk_file_read(img, f, sizeof(f), end) < 0)
		return -1;
	if (memcmp(f, h->footer, VHD_FOOTER_SIZE) != 0) {
		if (blk_file_write_raw(img, h->footer, VHD_FOOTER_SIZE,
		    end) < 0 || blk_file_sync(img) < 0)
			return -1;
	}
	debug("%s: %llu bytes past the last block the BAT names (left by an "
	    "interrupted run) are given back", img->path,
	    (unsigned long long)(img->file_size - end - VHD_FOOTER_SIZE));
	if (blk_file_truncate(img, end + VHD_FOOTER_SIZE) < 0 ||
	    blk_file_sync(img) < 0)
		return -1;
	return 0;
}

static void
vhd_close(gp_image *img)
{
	vhd_free(img->priv);
	img->priv = NULL;
}

static int
load_bitmap(gp_image *img, struct vhd *h, uint32_t blk)
{
	if (h->bitmap_block == blk)
		return 0;
	h->bitmap_block = UINT32_MAX;
	if (blk_file_read(img, h->bitmap, h->bitmap_size,
	    (uint64_t)h->bat[blk] * 512) < 0)
		return -1;
	h->bitmap_block = blk;
	return 0;
}

static int
vhd_read(gp_image *img, void *vbuf, size_t len, uint64_t off)
{
	struct vhd *h = img->priv;
	uint8_t *buf = vbuf;

	if (h->type == VHD_TYPE_FIXED)
		return blk_file_read(img, buf, len, off);
	while (len) {
		uint32_t blk = (uint32_t)(off / h->block_size);
		uint64_t in = off % h->block_size;
		size_t n = (size_t)MIN((uint64_t)len, h->block_size - in);
		uint64_t data = (uint64_t)h->bat[blk] * 512 + h->bitmap_size;

		if (h->bat[blk] == VHD_BAT_UNUSED) {
			if (h->type == VHD_TYPE_DIFF) {
				if (blk_parent_read(img, buf, n, off) < 0)
					return -1;
			} else {
				memset(buf, 0, n);
			}
		} else if (h->type == VHD_TYPE_DYNAMIC) {
			if (blk_file_read(img, buf, n, data + in) < 0)
				return -1;
		} else {
			/* Differencing: runs of sectors by their bitmap bit. */
			size_t done = 0;

			if (load_bitmap(img, h, blk) < 0)
				return -1;
			while (done < n) {
				uint64_t s = (in + done) / 512;
				uint64_t last = (in + n + 511) / 512;
				bool here;
				uint64_t end = (s + blk_bitmap_run(h->bitmap, s,
				    last - s, true, &here)) * 512;
				size_t m;

				m = (size_t)(MIN(end, in + n) - (in + done));
				if (here ? blk_file_read(img, buf + done, m,
				    data + in + done) < 0 :
				    blk_parent_read(img, buf + done, m,
				    off + done) < 0)
					return -1;
				done += m;
			}
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Rewrite the BAT sector holding entry blk (metadata: through the
 * session). */
static int
put_bat(gp_image *img, struct vhd *h, uint32_t blk)
{
	uint64_t bat_sec = (uint64_t)blk * 4 / 512 * 512;
	uint32_t first = (uint32_t)(bat_sec / 4), i;
	uint8_t sector[512];

	if (blk_file_read(img, sector, sizeof(sector), h->bat_off + bat_sec) < 0)
		return -1;
	for (i = 0; i < 128 && first + i < h->max_entries; i++)
		put_be32(sector + 4 * i, h->bat[first + i]);
	return blk_file_write(img, sector, sizeof(sector), h->bat_off + bat_sec);
}

/*
 * A new block goes where the footer is: the footer first moves to the new
 * end (so the file always ends in a footer, whatever happens next), then
 * the bitmap (all present, as a dynamic disk holds every sector of an
 * allocated block) over the old footer.  The BAT entry is metadata: during
 * a session it waits in the overlay until commit.
 */
static int
alloc_block(gp_image *img, struct vhd *h, uint32_t blk)
{
	uint64_t at = (img->file_size - VHD_FOOTER_SIZE + 511) / 512 * 512;
	uint64_t end = at + h->bitmap_size + h->block_size;
	uint8_t *bm;

	if (blk_file_write(img, h->footer, VHD_FOOTER_SIZE, end) < 0)
		return -1;
	bm = xmalloc(h->bitmap_size);
	memset(bm, 0xff, h->bitmap_size);
	if (blk_file_write(img, bm, h->bitmap_size, at) < 0) {
		free(bm);
		return -1;
	}
	free(bm);
	h->bat[blk] = (uint32_t)(at / 512);
	return put_bat(img, h, blk);
}

static int
vhd_write(gp_image *img, const void *vbuf, size_t len, uint64_t off)
{
	struct vhd *h = img->priv;
	const uint8_t *buf = vbuf;

	if (h->type == VHD_TYPE_DIFF) {
		error_set(EOPNOTSUPP, "%s: writing into a differencing VHD is "
		    "not supported", img->path);
		return -1;
	}
	h->data_unsynced = true;
	if (h->type == VHD_TYPE_FIXED)
		return blk_data_write(img, buf, len, off);
	while (len) {
		uint32_t blk = (uint32_t)(off / h->block_size);
		uint64_t in = off % h->block_size;
		size_t n = (size_t)MIN((uint64_t)len, h->block_size - in);

		if (h->bat[blk] == VHD_BAT_UNUSED) {
			if (is_zero(buf, n))
				goto next;
			if (alloc_block(img, h, blk) < 0)
				return -1;
		}
		if (blk_data_write(img, buf, n, (uint64_t)h->bat[blk] * 512 +
		    h->bitmap_size + in) < 0)
			return -1;
next:
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int
vhd_flush(gp_image *img)
{
	struct vhd *h = img->priv;

	if (!h->data_unsynced)
		return 0;
	h->data_unsynced = false;
	return blk_file_sync(img);
}

/* ---- compaction ---------------------------------------------------- */

/* Blocks wholly inside [off, off+len) leave the BAT (a differencing
 * disk's parent shows through them again); a fixed disk gets holes. */
static int
vhd_discard(gp_image *img, uint64_t off, uint64_t len)
{
	struct vhd *h = img->priv;
	uint64_t b, end;

	if (h->type == VHD_TYPE_FIXED)
		return blk_file_punch(img, off, len);
	for (b = (off + h->block_size - 1) / h->block_size,
	    end = (off + len) / h->block_size; b < end && b < h->max_entries;
	    b++) {
		if (h->bat[b] == VHD_BAT_UNUSED)
			continue;
		h->bat[b] = VHD_BAT_UNUSED;
		if (h->bitmap_block == b)
			h->bitmap_block = UINT32_MAX;
		if (put_bat(img, h, (uint32_t)b) < 0)
			return -1;
	}
	return 0;
}

/* Blocks (bitmap and data) move down into unused space; the BAT changes
 * wait for the commit, and trimming then moves the footer. */
static int
vhd_pack(gp_image *img)
{
	struct vhd *h = img->priv;
	struct blk_extent *x;
	size_t n = 0, i;
	uint64_t dyn_off = get_be64(h->footer + 16);

	if (h->type == VHD_TYPE_FIXED)
		return 0;
	x = xmalloc(((size_t)h->max_entries + 3) * sizeof(*x));
	x[n++] = (struct blk_extent){ 0, VHD_FOOTER_SIZE, 0, false, 0 };
	x[n++] = (struct blk_extent){ dyn_off, VHD_DYNHDR_SIZE, 0, false, 0 };
	x[n++] = (struct blk_extent){ h->bat_off, ((uint64_t)h->max_entries *
	    4 + 511) / 512 * 512, 0, false, 0 };
	for (i = 0; i < h->max_entries; i++)
		if (h->bat[i] != VHD_BAT_UNUSED)
			x[n++] = (struct blk_extent){ (uint64_t)h->bat[i] * 512,
			    h->bitmap_size + h->block_size, 0, true, i };
	blk_pack_plan(x, n, 512);
	for (i = 0; i < n; i++) {
		if (x[i].to == x[i].off)
			continue;
		if (blk_file_move(img, x[i].off, x[i].to, x[i].len) < 0) {
			free(x);
			return -1;
		}
		h->bat[x[i].id] = (uint32_t)(x[i].to / 512);
		if (h->bitmap_block == x[i].id)
			h->bitmap_block = UINT32_MAX;
		if (put_bat(img, h, (uint32_t)x[i].id) < 0) {
			free(x);
			return -1;
		}
		h->data_unsynced = true;
	}
	free(x);
	return 0;
}

static int
vhd_trim(gp_image *img)
{
	struct vhd *h = img->priv;

	if (h->type == VHD_TYPE_FIXED)
		return 0;
	return reclaim_tail(img, h, get_be64(h->footer + 16));
}

/* Blocks the BAT names are stored; a fixed file stores everything. */
static int
vhd_block_status(gp_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
	struct vhd *h = img->priv;
	uint64_t blk, pos = off;
	bool stored;

	if (h->type == VHD_TYPE_FIXED || !h->block_size) {
		*pnum = len;
		return 1;
	}
	blk = off / h->block_size;
	stored = h->bat[blk] != VHD_BAT_UNUSED;
	while (pos < off + len && blk < h->max_entries &&
	    (h->bat[blk] != VHD_BAT_UNUSED) == stored) {
		blk++;
		pos = blk * h->block_size;
	}
	*pnum = MIN(pos, off + len) - off;
	return stored;
}

static int vhd_create(const char *path, const struct blk_new *n);

const struct blk_driver blk_vhd_driver = {
	.name = "vhd",
	.parent_check = parent_check,
	.create = vhd_create,
	.block_status = vhd_block_status,
	.discard = vhd_discard,
	.pack = vhd_pack,
	.trim = vhd_trim,
	.probe = vhd_probe,
	.open = vhd_open,
	.read = vhd_read,
	.write = vhd_write,
	.flush = vhd_flush,
	.close = vhd_close,
};

/* ---- creating a dynamic VHD ------------------------------------------ */

/* CHS geometry from the total sector count (VHD specification, appendix
 * "CHS Calculation"). */
static void
vhd_geometry(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t cth;
	unsigned spt, heads;

	if (sectors > 65535ull * 16 * 255)
		sectors = 65535ull * 16 * 255;
	if (sectors >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = sectors / spt;
	} else {
		spt = 17;
		cth = sectors / spt;
		heads = (unsigned)((cth + 1023) / 1024);
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024ull || heads > 16) {
			spt = 31;
			heads = 16;
			cth = sectors / spt;
		}
		if (cth >= heads * 1024ull) {
			spt = 63;
			heads = 16;
			cth = sectors / spt;
		}
	}
	*c = (uint16_t)(cth / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}

/* A new, empty dynamic VHD (2 MiB blocks). */
static int
vhd_create(const char *path, const struct blk_new *n)
{
	uint64_t vsize = n->vsize;
	const uint32_t bs = 2 * 1024 * 1024;
	uint32_t entries = (uint32_t)((vsize + bs - 1) / bs), i;
	size_t bat_len = ((size_t)entries * 4 + 511) / 512 * 512;
	size_t total = VHD_FOOTER_SIZE + VHD_DYNHDR_SIZE + bat_len +
	    VHD_FOOTER_SIZE;
	uint8_t *f, *foot, *dh, *bat;
	/* Seconds since 2000-01-01 UTC. */
	uint32_t ts = (uint32_t)(time(NULL) - 946684800);
	uint16_t cyl;
	uint8_t heads, spt;
	guid_t id;
	int fd, ret = -1;

	if (vsize == 0 || vsize % 512 || vsize > VHD_MAX_SIZE) {
		error_set(EINVAL, "%s: a VHD holds 512-byte sectors up to 2040 "
		    "GiB, not %llu bytes", path, (unsigned long long)vsize);
		return -1;
	}
	if (guid_generate(&id) < 0)
		return -1;
	f = xcalloc(1, total);
	foot = f;
	memcpy(foot, "conectix", 8);
	put_be32(foot + 8, 2);			/* features: reserved bit */
	put_be32(foot + 12, 0x00010000);	/* format version */
	put_be64(foot + 16, VHD_FOOTER_SIZE);	/* dynamic header */
	put_be32(foot + 24, ts);
	/* Creator "win " as Hyper-V writes: readers (QEMU among them) then
	 * take the disk size from the size field, not from the CHS
	 * geometry, which cannot express every size. */
	memcpy(foot + 28, "win ", 4);
	put_be32(foot + 32, 0x000a0000);
	memcpy(foot + 36, "Wi2k", 4);
	put_be64(foot + 40, vsize);
	put_be64(foot + 48, vsize);
	vhd_geometry(vsize / 512, &cyl, &heads, &spt);
	foot[56] = (uint8_t)(cyl >> 8);
	foot[57] = (uint8_t)cyl;
	foot[58] = heads;
	foot[59] = spt;
	put_be32(foot + 60, VHD_TYPE_DYNAMIC);
	memcpy(foot + 68, id.b, 16);
	put_be32(foot + 64, vhd_checksum(foot, VHD_FOOTER_SIZE, 64));
	dh = f + VHD_FOOTER_SIZE;
	memcpy(dh, "cxsparse", 8);
	put_be64(dh + 8, UINT64_MAX);		/* data offset: none */
	put_be64(dh + 16, VHD_FOOTER_SIZE + VHD_DYNHDR_SIZE);
	put_be32(dh + 24, 0x00010000);
	put_be32(dh + 28, entries);
	put_be32(dh + 32, bs);
	put_be32(dh + 36, vhd_checksum(dh, VHD_DYNHDR_SIZE, 36));
	bat = dh + VHD_DYNHDR_SIZE;
	memset(bat, 0xFF, bat_len);
	for (i = 0; i < entries; i++)
		put_be32(bat + 4 * (size_t)i, VHD_BAT_UNUSED);
	memcpy(f + total - VHD_FOOTER_SIZE, foot, VHD_FOOTER_SIZE);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		free(f);
		return -1;
	}
	if (file_pwrite(fd, f, total, 0) < 0 || fsync(fd) < 0)
		error_set(errno, "%s: %s", path, strerror(errno));
	else
		ret = 0;
	if (close(fd) < 0 && ret == 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		ret = -1;
	}
	if (ret < 0)
		unlink(path);
	free(f);
	return ret;
}
