/*
 * blk-vhdx.c - VHDX images (MS-VHDX v1.0): fixed, dynamic and differencing
 * read; fixed and dynamic write.
 *
 * What this driver guarantees, in the order the spec asks for it:
 * - the headers (2.2.2) are checked by CRC-32C and the current one is the
 *   valid one with the higher SequenceNumber;
 * - an active log (2.3) is replayed before any other read: into the file
 *   when the image is writable, into an in-memory overlay when it is not,
 *   so a read-only open never changes a byte;
 * - the region table (2.2.3) and metadata (2.6) are parsed and an unknown
 *   region or metadata item marked required is refused;
 * - before the first change in a session the headers are rewritten
 *   (2.2.2.1) with a new FileWriteGuid and DataWriteGuid, seq+1 into the
 *   non-current slot, flushed, twice;
 * - new payload blocks are appended at the end of the file rounded up to
 *   1 MiB, the file is extended by a whole block, and the data is flushed
 *   before a BAT entry points at it (2.5).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "blk.h"
#include "vhdx-log.h"

#define MiB			(1024ull * 1024)
#define VHDX_HEADER1_OFF	(64 * 1024)
#define VHDX_HEADER2_OFF	(128 * 1024)
#define VHDX_HEADER_SIZE	4096
#define VHDX_RT1_OFF		(192 * 1024)
#define VHDX_RT2_OFF		(256 * 1024)
#define VHDX_RT_SIZE		(64 * 1024)
#define VHDX_RT_MAX_ENTRIES	2047	/* 2.2.3.1 */
#define VHDX_META_MAX_ENTRIES	2047	/* 2.6.1.1 */
#define VHDX_META_TABLE_SIZE	(64 * 1024)
#define VHDX_MAX_VSIZE		(64ull * 1024 * 1024 * 1024 * 1024) /* 64 TiB, 2.6.2.2 */
#define VHDX_MIN_BLOCK		(1 * MiB)
#define VHDX_MAX_BLOCK		(256 * MiB)
#define VHDX_SB_SIZE		MiB	/* a sector bitmap block, 2.4 */
/* Caps on what we hold in memory, far above anything Hyper-V makes. */
/* The largest log we write or read: a commit of BLK_MAX_COMMIT_PAGES
 * pages with its entry headers, rounded up. */
#define VHDX_MAX_LOG		(1040 * MiB)
#define VHDX_MAX_META		(16 * MiB)
#define VHDX_MAX_BAT		(1024 * MiB)
#define VHDX_MAX_LOCATOR_KEYS	256

/* BAT entry states, 2.5.1.1 and 2.5.1.2. */
enum {
	PAYLOAD_NOT_PRESENT = 0,
	PAYLOAD_UNDEFINED = 1,
	PAYLOAD_ZERO = 2,
	PAYLOAD_UNMAPPED = 3,
	PAYLOAD_UNMAPPED_V095 = 5,
	PAYLOAD_FULLY_PRESENT = 6,
	PAYLOAD_PARTIALLY_PRESENT = 7,
	SB_NOT_PRESENT = 0,
	SB_PRESENT = 6,
};
#define BAT_STATE(e)	((unsigned)((e) & 7))
#define BAT_OFFSET(e)	((e) & ~(MiB - 1))	/* FileOffsetMB << 20 */

/* Known region and metadata GUIDs (text form; parsed on first use). */
static const char *const GUID_BAT = "2DC27766-F623-4200-9D64-115E9BFD4A08";
static const char *const GUID_META = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
static const char *const GUID_FILE_PARAMS = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B";
static const char *const GUID_VDISK_SIZE = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
static const char *const GUID_PAGE83 = "BECA12AB-B2E6-4523-93EF-C309E000C746";
static const char *const GUID_LSS = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F";
static const char *const GUID_PSS = "CDA348C7-445D-4471-9CC9-E9885251C556";
static const char *const GUID_PARENT_LOC = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C";
static const char *const GUID_LOCATOR_VHDX = "B04AEFB7-D19E-4A81-B789-25B8E9445913";

struct region {
	uint64_t off;
	uint64_t len;
	const char *what;
};

struct vhdx {
	uint8_t hdr[VHDX_HEADER_SIZE];	/* the current header */
	int cur;			/* its slot, 0 or 1 */
	uint64_t seq;
	guid_t data_write_guid;
	guid_t log_guid;
	uint64_t log_off;
	uint32_t log_len;

	uint64_t bat_off;
	uint64_t bat_len;
	uint64_t meta_off;
	uint64_t meta_len;
	/* Regions we do not know but may keep (not marked required): never
	 * cut off or moved over. */
	struct { uint64_t off, len; } other[VHDX_RT_MAX_ENTRIES];
	unsigned nother;

	uint32_t block_size;
	bool leave_allocated;		/* set in fixed files, 2.6.2.1 */
	bool has_parent;
	uint64_t vsize;
	uint32_t lss;
	uint32_t pss;
	guid_t disk_id;

	uint64_t chunk_ratio;
	uint64_t nblocks;
	uint64_t nbat;
	uint64_t *bat;
	uint8_t *bat_dirty;		/* one flag per 4 KiB page of the BAT */
	size_t bat_dirty_pages;
	bool bat_any_dirty;
	bool data_unsynced;

	bool session_started;		/* headers renewed for this session */

	uint8_t *sb;			/* cached sector bitmap block */
	uint64_t sb_chunk;		/* chunk it belongs to, or UINT64_MAX */

	/* Parent locator (2.6.2.6). */
	char *parent_linkage;
	char *parent_linkage2;
	char *parent_relative;
	char *parent_absolute;
	char *parent_volume;
};

static int
guid_const(guid_t *g, const char *text)
{
	return guid_parse(g, text);
}

static bool
guid_is(const uint8_t *p, const char *text)
{
	guid_t a, b;

	guid_from_bytes(&a, p);
	guid_const(&b, text);
	return guid_eq(&a, &b);
}

#define corrupt(img, ...) error_corrupt((img)->path, __VA_ARGS__)

/* ---- headers, 2.2.2 ----------------------------------------------- */

static bool
header_valid(const uint8_t *h)
{
	uint8_t tmp[VHDX_HEADER_SIZE];

	if (memcmp(h, "head", 4) != 0)
		return false;
	memcpy(tmp, h, sizeof(tmp));
	memset(tmp + 4, 0, 4);
	if (!SUM_OK(crc32c(0, tmp, sizeof(tmp)), get_le32(h + 4)))
		return false;
	/* Version 1; LogVersion 0 (2.2.2). */
	if (get_le16(h + 66) != 1 || get_le16(h + 64) != 0)
		return false;
	return true;
}

static int
read_headers(gp_image *img, struct vhdx *v)
{
	uint8_t h[2][VHDX_HEADER_SIZE];
	bool ok[2];
	int i;

	for (i = 0; i < 2; i++) {
		if (blk_file_read(img, h[i], VHDX_HEADER_SIZE,
		    i == 0 ? VHDX_HEADER1_OFF : VHDX_HEADER2_OFF) < 0)
			return -1;
		ok[i] = header_valid(h[i]);
	}
	if (!ok[0] && !ok[1])
		return corrupt(img, "both VHDX headers are corrupt (bad "
		    "signature, CRC-32C or version)");
	if (ok[0] && ok[1])
		v->cur = get_le64(h[1] + 8) > get_le64(h[0] + 8) ? 1 : 0;
	else
		v->cur = ok[0] ? 0 : 1;
	if (!ok[0] || !ok[1])
		warn_add("%s: VHDX header %d is corrupt; using the other one",
		    img->path, ok[0] ? 2 : 1);
	memcpy(v->hdr, h[v->cur], VHDX_HEADER_SIZE);
	v->seq = get_le64(v->hdr + 8);
	guid_from_bytes(&v->data_write_guid, v->hdr + 32);
	guid_from_bytes(&v->log_guid, v->hdr + 48);
	v->log_len = get_le32(v->hdr + 68);
	v->log_off = get_le64(v->hdr + 72);
	return 0;
}

/*
 * 2.2.2.1: write a new header into the non-current slot, flush; then the
 * same again so that both slots hold the newest state.  file_guid is the
 * session's FileWriteGuid; data_guid replaces DataWriteGuid when given.
 */
static int
write_headers(gp_image *img, struct vhdx *v, const guid_t *file_guid,
    const guid_t *data_guid)
{
	uint8_t h[VHDX_HEADER_SIZE];
	int i, slot;

	for (i = 0; i < 2; i++) {
		memcpy(h, v->hdr, sizeof(h));
		put_le64(h + 8, v->seq + 1);
		memcpy(h + 16, file_guid->b, 16);
		if (data_guid)
			memcpy(h + 32, data_guid->b, 16);
		memcpy(h + 48, v->log_guid.b, 16);
		put_le32(h + 4, 0);
		put_le32(h + 4, crc32c(0, h, sizeof(h)));
		slot = 1 - v->cur;
		/* Self-atomic (two slots, CRC): never through the overlay. */
		if (blk_file_write_raw(img, h, sizeof(h), slot == 0 ?
		    VHDX_HEADER1_OFF : VHDX_HEADER2_OFF) < 0)
			return -1;
		if (blk_file_sync(img) < 0)
			return -1;
		memcpy(v->hdr, h, sizeof(h));
		v->cur = slot;
		v->seq++;
	}
	if (data_guid)
		v->data_write_guid = *data_guid;
	return 0;
}

/* Before the first change of a session: new FileWriteGuid and DataWriteGuid. */
static int
begin_session(gp_image *img, struct vhdx *v)
{
	guid_t fg, dg;

	if (v->session_started)
		return 0;
	if (guid_generate(&fg) < 0 || guid_generate(&dg) < 0)
		return -1;
	memset(v->log_guid.b, 0, 16);	/* the log is empty from here on */
	if (write_headers(img, v, &fg, &dg) < 0) {
		error_prefix("%s: updating the VHDX headers", img->path);
		return -1;
	}
	v->session_started = true;
	return 0;
}

/* ---- log replay, 2.3 ---------------------------------------------- */

/*
 * Where the file cannot change (a read-only open, a dry run) the replay
 * goes into the image's overlay, as a pending sidecar journal does: every
 * read sees it, a dry run's own writes land on top of it, and nothing
 * reaches the file.  Zeros past the file's end need no page: the overlay
 * reads them there.
 */
static int
overlay_zeros(gp_image *img, uint64_t off, uint64_t len)
{
	static const uint8_t zero[VHDX_LOG_SECTOR];
	uint64_t end = off + len;

	for (; off < end && off < img->phys_size; off += VHDX_LOG_SECTOR)
		if (blk_cow_put(img, off, zero) < 0)
			return -1;
	return 0;
}

/* Apply one checked entry, in descriptor order (2.3.3). */
static int
log_entry_apply(gp_image *img, struct vhdx *v, const uint8_t *buf,
    bool in_memory)
{
	uint32_t count = get_le32(buf + 24), dsec, ndata = 0, i;
	uint8_t sector[VHDX_LOG_SECTOR];
	static uint8_t zeros[64 * 1024];

	dsec = (uint32_t)(((uint64_t)count * 32 + 64 + VHDX_LOG_SECTOR - 1) /
	    VHDX_LOG_SECTOR);
	for (i = 0; i < count; i++) {
		const uint8_t *d = buf + 64 + 32 * i;
		uint64_t foff = get_le64(d + 16);

		if (memcmp(d, "desc", 4) == 0) {
			const uint8_t *s = buf + (uint64_t)(dsec + ndata++) *
			    VHDX_LOG_SECTOR;

			memcpy(sector, d + 8, 8);		/* LeadingBytes */
			memcpy(sector + 8, s + 8, 4084);
			memcpy(sector + 4092, d + 4, 4);	/* TrailingBytes */
			if (in_memory ? blk_cow_put(img, foff, sector) < 0 :
			    blk_file_write_raw(img, sector, sizeof(sector),
			    foff) < 0)
				return -1;
			if (foff + sizeof(sector) > img->file_size)
				img->file_size = foff + sizeof(sector);
		} else {
			uint64_t zlen = get_le64(d + 8), done = 0;

			if (in_memory) {
				if (overlay_zeros(img, foff, zlen) < 0)
					return -1;
				if (foff + zlen > img->file_size)
					img->file_size = foff + zlen;
				continue;
			}
			while (done < zlen) {
				size_t n = (size_t)MIN((uint64_t)sizeof(zeros),
				    zlen - done);

				if (blk_file_write_raw(img, zeros, n, foff + done) < 0)
					return -1;
				done += n;
			}
		}
	}
	return 0;
}

/*
 * Find the active sequence (vhdx-log.c) and replay it.  A log without any
 * valid sequence is taken as empty (as Hyper-V and QEMU do for a freshly
 * initialised log).
 */
static int
replay_log(gp_image *img, struct vhdx *v)
{
	uint32_t loglen = v->log_len;
	uint8_t *log = NULL, *buf = NULL;
	struct log_entry *seqv = NULL, *best = NULL;
	struct vhdx_log lg;
	size_t nbest = 0, cap = loglen / VHDX_LOG_SECTOR + 1, i, start;
	bool in_memory = !BLK_FILE_WRITABLE(img);
	int ret = -1;

	if (loglen == 0 || guid_is_zero(&v->log_guid))
		return 0;
	if (v->log_off < MiB || v->log_off % MiB || loglen % MiB ||
	    loglen > VHDX_MAX_LOG || v->log_off > img->file_size ||
	    loglen > img->file_size - v->log_off)
		return corrupt(img, "VHDX log region (offset %llu, %u bytes) "
		    "is misaligned or lies outside the file",
		    (unsigned long long)v->log_off, loglen);
	log = xmalloc(loglen);
	buf = xmalloc(loglen);
	seqv = xmalloc(cap * sizeof(*seqv));
	best = xmalloc(cap * sizeof(*best));
	if (blk_file_read(img, log, loglen, v->log_off) < 0)
		goto out;

	lg = (struct vhdx_log){ .data = log, .len = loglen,
	    .guid = v->log_guid, .limit = img->file_size };
	nbest = vhdx_log_find_active(&lg, buf, seqv, best, cap);

	if (!nbest) {
		debug("%s: VHDX log holds no valid sequence; taken as empty",
		    img->path);
		ret = 0;
		goto out;
	}
	if (best[nbest - 1].flushed > img->file_size) {
		corrupt(img, "VHDX log says the file was at least %llu bytes, "
		    "but it has %llu: the file was truncated",
		    (unsigned long long)best[nbest - 1].flushed,
		    (unsigned long long)img->file_size);
		goto out;
	}
	/* Replay from the tail entry that the head names. */
	for (start = 0; start < nbest; start++)
		if (best[start].off == best[nbest - 1].tail)
			break;
	if (in_memory)
		blk_cow_begin(img, true);
	/* Every entry of the sequence passed the check in the search; the
	 * log is in memory, so copying it out again is enough. */
	for (i = start; i < nbest; i++) {
		vhdx_log_copy(&lg, best[i].off, buf, best[i].len);
		if (log_entry_apply(img, v, buf, in_memory) < 0)
			goto out;
	}
	if (in_memory) {
		if (best[nbest - 1].last > img->file_size)
			img->file_size = best[nbest - 1].last;
	} else {
		if (best[nbest - 1].last > img->file_size &&
		    blk_file_truncate(img, best[nbest - 1].last) < 0)
			goto out;
		if (blk_file_sync(img) < 0)
			goto out;
	}
	img->info.log_replayed = true;
	debug("%s: replayed %zu VHDX log entries (sequence %llu..%llu)%s",
	    img->path, nbest - start, (unsigned long long)best[start].seq,
	    (unsigned long long)best[nbest - 1].seq,
	    in_memory ? " in memory" : "");
	/* Writable: the log is done with; clear LogGuid in both headers. */
	if (!in_memory && begin_session(img, v) < 0)
		goto out;
	ret = 0;
out:
	free(log);
	free(buf);
	free(seqv);
	free(best);
	return ret;
}

/* ---- region table, 2.2.3 ------------------------------------------ */

static bool
regions_overlap(const struct region *a, const struct region *b)
{
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

static int
read_region_table(gp_image *img, struct vhdx *v)
{
	uint8_t *rt = xmalloc(VHDX_RT_SIZE);
	uint32_t count, i, sum;
	bool have_bat = false, have_meta = false;
	int t, ret = -1;

	for (t = 0; t < 2; t++) {
		if (blk_file_read(img, rt, VHDX_RT_SIZE,
		    t == 0 ? VHDX_RT1_OFF : VHDX_RT2_OFF) < 0)
			goto out;
		if (memcmp(rt, "regi", 4) != 0)
			continue;
		sum = get_le32(rt + 4);
		put_le32(rt + 4, 0);
		if (!SUM_OK(crc32c(0, rt, VHDX_RT_SIZE), sum))
			continue;
		break;
	}
	if (t == 2) {
		corrupt(img, "both VHDX region tables are corrupt");
		goto out;
	}
	if (t == 1)
		warn_add("%s: VHDX region table 1 is corrupt; using the copy",
		    img->path);
	count = get_le32(rt + 8);
	if (count > VHDX_RT_MAX_ENTRIES) {
		corrupt(img, "VHDX region table has %u entries (at most %d)",
		    count, VHDX_RT_MAX_ENTRIES);
		goto out;
	}
	for (i = 0; i < count; i++) {
		const uint8_t *e = rt + 16 + 32 * i;
		uint64_t off = get_le64(e + 16);
		uint32_t len = get_le32(e + 24);
		bool required = get_le32(e + 28) & 1;
		char g[39];

		if (guid_is(e, GUID_BAT)) {
			if (have_bat)
				goto dup;
			v->bat_off = off;
			v->bat_len = len;
			have_bat = true;
		} else if (guid_is(e, GUID_META)) {
			if (have_meta)
				goto dup;
			v->meta_off = off;
			v->meta_len = len;
			have_meta = true;
		} else if (!required) {
			v->other[v->nother].off = off;
			v->other[v->nother++].len = len;
		} else {
			guid_t gg;

			guid_from_bytes(&gg, e);
			guid_format(&gg, g);
			error_setc(GP_EXIT_CORRUPT, EOPNOTSUPP, "%s: VHDX has an "
			    "unknown region %s marked required; refusing to "
			    "open it", img->path, g);
			goto out;
		}
		continue;
dup:
		corrupt(img, "VHDX region table lists the %s region twice",
		    have_meta ? "metadata" : "BAT");
		goto out;
	}
	if (!have_bat || !have_meta) {
		corrupt(img, "VHDX region table lacks the %s region",
		    have_bat ? "metadata" : "BAT");
		goto out;
	}
	ret = 0;
out:
	free(rt);
	return ret;
}

/* Every structure MB-aligned, after the header section, inside the file,
 * and no two overlapping (2.2.3.2, 2.3). */
static int
check_layout(gp_image *img, struct vhdx *v)
{
	struct region r[3];
	size_t n = 0, i, j;
	uint64_t fsize = img->file_size;

	r[n++] = (struct region){ v->bat_off, v->bat_len, "BAT" };
	r[n++] = (struct region){ v->meta_off, v->meta_len, "metadata" };
	if (v->log_len)
		r[n++] = (struct region){ v->log_off, v->log_len, "log" };
	for (i = 0; i < n; i++) {
		if (r[i].off < MiB || r[i].off % MiB || r[i].len == 0 ||
		    r[i].len % MiB)
			return corrupt(img, "VHDX %s region (offset %llu, "
			    "%llu bytes) is not 1 MiB aligned or lies in the "
			    "header section", r[i].what,
			    (unsigned long long)r[i].off,
			    (unsigned long long)r[i].len);
		if (r[i].off > fsize || r[i].len > fsize - r[i].off)
			return corrupt(img, "VHDX %s region (offset %llu, "
			    "%llu bytes) lies past the end of the file (%llu "
			    "bytes)", r[i].what, (unsigned long long)r[i].off,
			    (unsigned long long)r[i].len,
			    (unsigned long long)fsize);
		for (j = 0; j < i; j++)
			if (regions_overlap(&r[i], &r[j]))
				return corrupt(img, "VHDX %s and %s regions "
				    "overlap", r[j].what, r[i].what);
	}
	return 0;
}

/* ---- metadata, 2.6 ------------------------------------------------ */

static char *
locator_string(const uint8_t *item, uint32_t len, uint32_t off, uint16_t n)
{
	if (off > len || n > len - off || n % 2)
		return NULL;
	return utf16_to_utf8(item + off, n / 2, false);
}

static int
parse_parent_locator(gp_image *img, struct vhdx *v, const uint8_t *item,
    uint32_t len)
{
	uint16_t count;
	uint32_t i;

	if (len < 20)
		return corrupt(img, "VHDX parent locator is too short");
	if (!guid_is(item, GUID_LOCATOR_VHDX))
		return corrupt(img, "VHDX parent locator has an unknown type");
	count = get_le16(item + 18);
	if (count > VHDX_MAX_LOCATOR_KEYS || 20 + (uint64_t)count * 12 > len)
		return corrupt(img, "VHDX parent locator claims %u entries",
		    count);
	for (i = 0; i < count; i++) {
		const uint8_t *e = item + 20 + 12 * i;
		char *key = locator_string(item, len, get_le32(e), get_le16(e + 8));
		char *val = locator_string(item, len, get_le32(e + 4), get_le16(e + 10));
		char **slot = NULL;

		if (!key || !val) {
			free(key);
			free(val);
			return corrupt(img, "VHDX parent locator entry %u lies "
			    "outside the locator", i);
		}
		if (strcmp(key, "parent_linkage") == 0)
			slot = &v->parent_linkage;
		else if (strcmp(key, "parent_linkage2") == 0)
			slot = &v->parent_linkage2;
		else if (strcmp(key, "relative_path") == 0)
			slot = &v->parent_relative;
		else if (strcmp(key, "absolute_win32_path") == 0)
			slot = &v->parent_absolute;
		else if (strcmp(key, "volume_path") == 0)
			slot = &v->parent_volume;
		free(key);
		if (slot) {
			free(*slot);
			*slot = val;
		} else {
			free(val);
		}
	}
	if (!v->parent_linkage)
		return corrupt(img, "VHDX parent locator has no parent_linkage");
	return 0;
}

static int
read_metadata(gp_image *img, struct vhdx *v)
{
	uint8_t *m;
	uint16_t count, i, j;
	bool have_fp = false, have_size = false, have_id = false,
	    have_lss = false, have_pss = false, have_loc = false;
	int ret = -1;

	if (v->meta_len > VHDX_MAX_META || v->meta_len < VHDX_META_TABLE_SIZE)
		return corrupt(img, "VHDX metadata region of %llu bytes is "
		    "out of bounds", (unsigned long long)v->meta_len);
	m = xmalloc(v->meta_len);
	if (blk_file_read(img, m, v->meta_len, v->meta_off) < 0)
		goto out;
	if (memcmp(m, "metadata", 8) != 0) {
		corrupt(img, "VHDX metadata table has a bad signature");
		goto out;
	}
	count = get_le16(m + 10);
	if (count > VHDX_META_MAX_ENTRIES) {
		corrupt(img, "VHDX metadata table has %u entries (at most %d)",
		    count, VHDX_META_MAX_ENTRIES);
		goto out;
	}
	for (i = 0; i < count; i++) {
		const uint8_t *e = m + 32 + 32 * i;
		uint32_t off = get_le32(e + 16), len = get_le32(e + 20);
		uint32_t flags = get_le32(e + 24);
		const uint8_t *d = m + off;

		for (j = 0; j < i; j++)
			if (memcmp(e, m + 32 + 32 * j, 16) == 0 &&
			    (get_le32(m + 32 + 32 * j + 24) & 1) == (flags & 1)) {
				corrupt(img, "VHDX metadata item listed twice");
				goto out;
			}
		/* Items live after the 64 KiB table (2.6.1.2). */
		if (len && (off < VHDX_META_TABLE_SIZE || off > v->meta_len ||
		    len > v->meta_len - off)) {
			corrupt(img, "VHDX metadata item %u (offset %u, %u "
			    "bytes) lies outside the metadata region", i, off,
			    len);
			goto out;
		}
		if (guid_is(e, GUID_FILE_PARAMS) && len >= 8) {
			v->block_size = get_le32(d);
			v->leave_allocated = get_le32(d + 4) & 1;
			v->has_parent = get_le32(d + 4) & 2;
			have_fp = true;
		} else if (guid_is(e, GUID_VDISK_SIZE) && len >= 8) {
			v->vsize = get_le64(d);
			have_size = true;
		} else if (guid_is(e, GUID_PAGE83) && len >= 16) {
			guid_from_bytes(&v->disk_id, d);
			have_id = true;
		} else if (guid_is(e, GUID_LSS) && len >= 4) {
			v->lss = get_le32(d);
			have_lss = true;
		} else if (guid_is(e, GUID_PSS) && len >= 4) {
			v->pss = get_le32(d);
			have_pss = true;
		} else if (guid_is(e, GUID_PARENT_LOC)) {
			if (parse_parent_locator(img, v, d, len) < 0)
				goto out;
			have_loc = true;
		} else if (flags & 4) {		/* IsRequired */
			guid_t g;
			char gs[39];

			guid_from_bytes(&g, e);
			guid_format(&g, gs);
			error_setc(GP_EXIT_CORRUPT, EOPNOTSUPP, "%s: VHDX has an "
			    "unknown metadata item %s marked required; "
			    "refusing to open it", img->path, gs);
			goto out;
		}
	}
	if (!have_fp || !have_size || !have_id || !have_lss || !have_pss) {
		corrupt(img, "VHDX metadata lacks a required item (%s)",
		    !have_fp ? "file parameters" : !have_size ?
		    "virtual disk size" : !have_id ? "virtual disk id" :
		    !have_lss ? "logical sector size" : "physical sector size");
		goto out;
	}
	if (v->has_parent && !have_loc) {
		corrupt(img, "differencing VHDX lacks its parent locator");
		goto out;
	}
	if (!is_pow2(v->block_size) || v->block_size < VHDX_MIN_BLOCK ||
	    v->block_size > VHDX_MAX_BLOCK) {
		corrupt(img, "VHDX block size %u is not a power of two between "
		    "1 MiB and 256 MiB", v->block_size);
		goto out;
	}
	if (v->lss != 512 && v->lss != 4096) {
		corrupt(img, "VHDX logical sector size %u is neither 512 nor "
		    "4096", v->lss);
		goto out;
	}
	if (v->pss != 512 && v->pss != 4096) {
		corrupt(img, "VHDX physical sector size %u is neither 512 nor "
		    "4096", v->pss);
		goto out;
	}
	if (v->vsize == 0 || v->vsize % v->lss || v->vsize > VHDX_MAX_VSIZE) {
		corrupt(img, "VHDX virtual size %llu is zero, not a multiple "
		    "of the sector size, or above 64 TiB",
		    (unsigned long long)v->vsize);
		goto out;
	}
	ret = 0;
out:
	free(m);
	return ret;
}

/* ---- BAT, 2.5 ----------------------------------------------------- */

static inline uint64_t
bat_index(const struct vhdx *v, uint64_t block)
{
	return block + block / v->chunk_ratio;
}

static inline uint64_t
sb_index(const struct vhdx *v, uint64_t chunk)
{
	return (chunk + 1) * (v->chunk_ratio + 1) - 1;
}

static int
read_bat(gp_image *img, struct vhdx *v)
{
	uint64_t nsb, i, fsize = img->file_size;
	uint8_t *raw;
	int ret = -1;

	v->chunk_ratio = ((uint64_t)1 << 23) * v->lss / v->block_size;
	v->nblocks = (v->vsize + v->block_size - 1) / v->block_size;
	nsb = (v->nblocks + v->chunk_ratio - 1) / v->chunk_ratio;
	/* 2.5: the entry count for fixed/dynamic and for differencing. */
	if (v->has_parent)
		v->nbat = nsb * (v->chunk_ratio + 1);
	else
		v->nbat = v->nblocks + (v->nblocks - 1) / v->chunk_ratio;
	if (v->nbat * 8 > v->bat_len)
		return corrupt(img, "VHDX BAT region (%llu bytes) is too small "
		    "for %llu entries", (unsigned long long)v->bat_len,
		    (unsigned long long)v->nbat);
	if (v->nbat * 8 > VHDX_MAX_BAT)
		return corrupt(img, "VHDX BAT of %llu entries is larger than "
		    "we accept", (unsigned long long)v->nbat);
	raw = xmalloc((size_t)v->nbat * 8);
	v->bat = xmalloc((size_t)v->nbat * 8);
	if (blk_file_read(img, raw, (size_t)v->nbat * 8, v->bat_off) < 0)
		goto out;
	for (i = 0; i < v->nbat; i++) {
		uint64_t e = get_le64(raw + 8 * i), off = BAT_OFFSET(e);
		unsigned st = BAT_STATE(e);
		bool is_sb = (i + 1) % (v->chunk_ratio + 1) == 0;
		uint64_t need;

		v->bat[i] = e;
		if (is_sb) {
			if (st != SB_NOT_PRESENT &&
			    !(st == SB_PRESENT && v->has_parent)) {
				corrupt(img, "VHDX BAT entry %llu (sector "
				    "bitmap) has state %u, invalid for this "
				    "file type", (unsigned long long)i, st);
				goto out;
			}
			need = VHDX_SB_SIZE;
		} else {
			switch (st) {
			case PAYLOAD_NOT_PRESENT:
			case PAYLOAD_UNDEFINED:
			case PAYLOAD_ZERO:
			case PAYLOAD_UNMAPPED:
			case PAYLOAD_UNMAPPED_V095:
			case PAYLOAD_FULLY_PRESENT:
				break;
			case PAYLOAD_PARTIALLY_PRESENT:
				if (v->has_parent)
					break;
				/* FALLTHROUGH */
			default:
				corrupt(img, "VHDX BAT entry %llu has state %u, "
				    "invalid for this file type",
				    (unsigned long long)i, st);
				goto out;
			}
			need = v->block_size;
		}
		if (st != PAYLOAD_FULLY_PRESENT && st != PAYLOAD_PARTIALLY_PRESENT)
			continue;
		if (off < MiB * 1 || off > fsize || need > fsize - off ||
		    (off < v->bat_off + v->bat_len && v->bat_off < off + need) ||
		    (off < v->meta_off + v->meta_len &&
		    v->meta_off < off + need) ||
		    (v->log_len && off < v->log_off + v->log_len &&
		    v->log_off < off + need)) {
			corrupt(img, "VHDX BAT entry %llu points at offset %llu, "
			    "outside the file (%llu bytes) or into a metadata "
			    "region", (unsigned long long)i,
			    (unsigned long long)off, (unsigned long long)fsize);
			goto out;
		}
	}
	v->bat_dirty_pages = (size_t)((v->nbat * 8 + 4095) / 4096);
	v->bat_dirty = xcalloc(v->bat_dirty_pages, 1);
	ret = 0;
out:
	free(raw);
	return ret;
}

/*
 * Give back what lies past the last structure the file references: blocks
 * a killed session appended (its BAT changes never reached the file) or a
 * relocated log that was never named.  Only in a writable open outside a
 * dry run, after the log was replayed, and only whole MiB past every
 * region, log and block (2.5: blocks are 1 MiB aligned).
 */
/*
 * Every extent of the file that a structure names, to fn: the first MiB
 * (identifier, headers, region tables), the BAT and metadata regions, the
 * log, regions we do not know, and the blocks and sector bitmaps the BAT
 * names.  Blocks, sector bitmaps and an empty log may move (id: the BAT
 * index, UINT64_MAX for the log).
 */
static void
vhdx_extents(const struct vhdx *v, void (*fn)(void *ctx,
    const struct blk_extent *x), void *ctx)
{
	struct blk_extent x = { 0, 1 * MiB, 0, false, 0 };
	uint64_t i;

	fn(ctx, &x);
	x = (struct blk_extent){ v->bat_off, v->bat_len, 0, false, 0 };
	fn(ctx, &x);
	x = (struct blk_extent){ v->meta_off, v->meta_len, 0, false, 0 };
	fn(ctx, &x);
	if (v->log_len) {
		x = (struct blk_extent){ v->log_off, v->log_len, 0,
		    guid_is_zero(&v->log_guid), UINT64_MAX };
		fn(ctx, &x);
	}
	for (i = 0; i < v->nother; i++) {
		x = (struct blk_extent){ v->other[i].off, v->other[i].len, 0,
		    false, 0 };
		fn(ctx, &x);
	}
	for (i = 0; i < v->nbat; i++) {
		uint64_t e = v->bat[i];
		bool is_sb = (i + 1) % (v->chunk_ratio + 1) == 0;
		unsigned st = BAT_STATE(e);

		if (is_sb ? st != SB_PRESENT : (st != PAYLOAD_FULLY_PRESENT &&
		    st != PAYLOAD_PARTIALLY_PRESENT))
			continue;
		x = (struct blk_extent){ BAT_OFFSET(e), is_sb ? VHDX_SB_SIZE :
		    v->block_size, 0, true, i };
		fn(ctx, &x);
	}
}

static void
extent_end(void *ctx, const struct blk_extent *x)
{
	uint64_t *end = ctx;

	*end = MAX(*end, x->off + x->len);
}

/*
 * Give back what lies past the last structure the file references: blocks
 * a killed session appended (its BAT changes never reached the file) or a
 * relocated log that was never named.  Only in a writable open outside a
 * dry run, after the log was replayed, and only whole MiB past every
 * region, log and block (2.5: blocks are 1 MiB aligned).
 */
static int
reclaim_tail(gp_image *img, struct vhdx *v)
{
	uint64_t end = 0;

	if (!BLK_FILE_WRITABLE(img) || !guid_is_zero(&v->log_guid))
		return 0;
	vhdx_extents(v, extent_end, &end);
	end = (end + MiB - 1) / MiB * MiB;
	if (img->file_size <= end)
		return 0;
	debug("%s: %llu bytes past the last block no BAT entry names (left "
	    "by an interrupted run) are given back", img->path,
	    (unsigned long long)(img->file_size - end));
	if (blk_file_truncate(img, end) < 0 || blk_file_sync(img) < 0)
		return -1;
	return 0;
}

/* ---- differencing parent ------------------------------------------ */

static char *
win_to_posix(const char *p)
{
	char *s = xstrdup(p), *q;

	for (q = s; *q; q++)
		if (*q == '\\')
			*q = '/';
	return s;
}

static int
parent_check(gp_image *child, gp_image *parent)
{
	struct vhdx *v = child->priv, *pv;
	char dw[39];
	guid_t want, want2;
	bool ok = false;

	if (parent->drv != &blk_vhdx_driver)
		return error_setc(GP_EXIT_PARENT, EINVAL, "%s: parent %s is a "
		    "%s image, not VHDX", child->path, parent->path,
		    parent->drv->name), -1;
	pv = parent->priv;
	guid_format(&pv->data_write_guid, dw);
	if (guid_parse(&want, v->parent_linkage) == 0 &&
	    guid_eq(&want, &pv->data_write_guid))
		ok = true;
	if (v->parent_linkage2 && guid_parse(&want2, v->parent_linkage2) == 0 &&
	    guid_eq(&want2, &pv->data_write_guid))
		ok = true;
	if (!ok) {
		error_setc(GP_EXIT_PARENT, EINVAL, "%s: parent %s does not "
		    "match: the child expects parent_linkage %s but the "
		    "parent's DataWriteGuid is %s (the parent was changed "
		    "after the child was made)", child->path, parent->path,
		    v->parent_linkage, dw);
		return -1;
	}
	if (parent->info.logical_sector_size != v->lss) {
		error_setc(GP_EXIT_PARENT, EINVAL, "%s: parent %s has %u-byte "
		    "sectors, the child %u-byte", child->path, parent->path,
		    parent->info.logical_sector_size, v->lss);
		return -1;
	}
	return 0;
}

static int
open_parent(gp_image *img, struct vhdx *v, const char *override)
{
	char *dir = path_dirname(img->path), *c[4] = { 0 }, *t;
	size_t n = 0, i;

	if (override)
		c[n++] = xstrdup(override);
	if (v->parent_relative) {
		t = win_to_posix(v->parent_relative);
		c[n++] = path_join(dir, t[0] == '.' && t[1] == '/' ? t + 2 : t);
		free(t);
	}
	if (v->parent_absolute) {
		t = win_to_posix(v->parent_absolute);
		/* A Windows path means nothing here; try its name beside us. */
		c[n++] = path_join(dir, path_basename(t));
		free(t);
	}
	img->parent_hint = xstrdup(v->parent_relative ? v->parent_relative :
	    v->parent_absolute ? v->parent_absolute : v->parent_linkage);
	/* blk.c opens the first that exists, and parent_check judges it. */
	for (i = 0; i < n; i++) {
		blk_want_parent(img, c[i]);
		free(c[i]);
	}
	free(dir);
	return 0;
}

/* ---- open / close ------------------------------------------------- */

static int
vhdx_probe(const uint8_t *head, size_t headlen, const uint8_t tail[512],
    uint64_t file_size)
{
	return headlen >= 8 && memcmp(head, "vhdxfile", 8) == 0 ? 100 : 0;
}

static void
vhdx_free(struct vhdx *v)
{
	if (!v)
		return;
	free(v->bat);
	free(v->bat_dirty);
	free(v->sb);
	free(v->parent_linkage);
	free(v->parent_linkage2);
	free(v->parent_relative);
	free(v->parent_absolute);
	free(v->parent_volume);
	free(v);
}

static int
vhdx_open(gp_image *img, const struct gp_open_opts *opts)
{
	struct vhdx *v = xcalloc(1, sizeof(*v));
	uint8_t ident[520];
	char *creator;

	img->priv = v;
	v->sb_chunk = UINT64_MAX;
	if (img->file_size < 1 * MiB + MiB) {
		corrupt(img, "file of %llu bytes is too small to be a VHDX",
		    (unsigned long long)img->file_size);
		goto fail;
	}
	if (blk_file_read(img, ident, sizeof(ident), 0) < 0)
		goto fail;
	creator = utf16_to_utf8(ident + 8, 256, false);
	snprintf(img->info.creator, sizeof(img->info.creator), "%s", creator);
	free(creator);
	if (read_headers(img, v) < 0 || replay_log(img, v) < 0 ||
	    read_region_table(img, v) < 0 || check_layout(img, v) < 0 ||
	    read_metadata(img, v) < 0 || read_bat(img, v) < 0 ||
	    reclaim_tail(img, v) < 0)
		goto fail;

	img->info.subformat = v->has_parent ? "differencing" :
	    v->leave_allocated ? "fixed" : "dynamic";
	img->info.virtual_size = v->vsize;
	img->info.logical_sector_size = v->lss;
	img->info.physical_sector_size = v->pss;
	img->info.block_size = v->block_size;
	guid_format(&v->disk_id, img->info.disk_id);

	if (v->has_parent && open_parent(img, v, opts->parent) < 0)
		goto fail;
	return 0;
fail:
	vhdx_free(v);
	img->priv = NULL;
	return -1;
}

static void
vhdx_close(gp_image *img)
{
	vhdx_free(img->priv);
	img->priv = NULL;
}

/* ---- I/O ---------------------------------------------------------- */

/* Load the sector bitmap of a chunk (differencing reads). */
static int
load_sb(gp_image *img, struct vhdx *v, uint64_t chunk)
{
	uint64_t e;

	if (v->sb_chunk == chunk)
		return 0;
	e = v->bat[sb_index(v, chunk)];
	if (BAT_STATE(e) != SB_PRESENT)
		return corrupt(img, "VHDX block of chunk %llu is partially "
		    "present but its sector bitmap is not",
		    (unsigned long long)chunk);
	if (!v->sb)
		v->sb = xmalloc(VHDX_SB_SIZE);
	v->sb_chunk = UINT64_MAX;
	if (blk_file_read(img, v->sb, VHDX_SB_SIZE, BAT_OFFSET(e)) < 0)
		return -1;
	v->sb_chunk = chunk;
	return 0;
}

static int
read_partial(gp_image *img, struct vhdx *v, uint8_t *buf, size_t len,
    uint64_t off, uint64_t file_off)
{
	uint64_t lss = v->lss, chunk_bytes = ((uint64_t)1 << 23) * lss;
	uint64_t chunk = off / chunk_bytes;

	if (load_sb(img, v, chunk) < 0)
		return -1;
	/* Runs of sectors with the same bit come from the same place. */
	while (len) {
		uint64_t sec = (off % chunk_bytes) / lss;
		/* Within the chunk this bitmap covers (2^23 sectors). */
		uint64_t nsec = MIN((off % lss + len + lss - 1) / lss,
		    ((uint64_t)1 << 23) - sec);
		bool here;
		uint64_t run_end = (off / lss + blk_bitmap_run(v->sb, sec, nsec,
		    false, &here)) * lss;
		size_t n;

		n = (size_t)(MIN(run_end, off + len) - off);
		if (here ? blk_file_read(img, buf, n, file_off) < 0 :
		    blk_parent_read(img, buf, n, off) < 0)
			return -1;
		buf += n;
		off += n;
		file_off += n;
		len -= n;
	}
	return 0;
}

static int
vhdx_read(gp_image *img, void *vbuf, size_t len, uint64_t off)
{
	struct vhdx *v = img->priv;
	uint8_t *buf = vbuf;

	while (len) {
		uint64_t blk = off / v->block_size;
		uint64_t in = off % v->block_size;
		size_t n = (size_t)MIN((uint64_t)len, v->block_size - in);
		uint64_t e = v->bat[bat_index(v, blk)];
		int r;

		switch (BAT_STATE(e)) {
		case PAYLOAD_FULLY_PRESENT:
			r = blk_file_read(img, buf, n, BAT_OFFSET(e) + in);
			break;
		case PAYLOAD_PARTIALLY_PRESENT:
			r = read_partial(img, v, buf, n, off, BAT_OFFSET(e) + in);
			break;
		case PAYLOAD_NOT_PRESENT:
			if (v->has_parent) {
				r = blk_parent_read(img, buf, n, off);
				break;
			}
			/* FALLTHROUGH */
		default:
			memset(buf, 0, n);
			r = 0;
			break;
		}
		if (r < 0)
			return -1;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* A new block of size bytes at EOF, rounded up to 1 MiB (2.5). */
static int
alloc_at_eof(gp_image *img, uint64_t size, uint64_t *at)
{
	*at = (img->file_size + MiB - 1) / MiB * MiB;
	return blk_file_truncate(img, *at + size);
}

static void
bat_set(struct vhdx *v, uint64_t idx, uint64_t e)
{
	v->bat[idx] = e;
	v->bat_dirty[idx * 8 / 4096] = 1;
	v->bat_any_dirty = true;
}

/*
 * Write sectors [off, off+n) of a partially present block (whole sectors,
 * n > 0) at file offset file_off and mark them present in the chunk's
 * sector bitmap (2.6.2.1: bit set = the sector is in this file).
 */
static int
diff_write_sectors(gp_image *img, struct vhdx *v, const uint8_t *buf,
    size_t n, uint64_t off, uint64_t file_off)
{
	uint64_t chunk_bytes = ((uint64_t)1 << 23) * v->lss;
	uint64_t chunk = off / chunk_bytes, first, last, b;
	uint64_t sb_off;

	if (blk_data_write(img, buf, n, file_off) < 0 ||
	    load_sb(img, v, chunk) < 0)
		return -1;
	first = (off % chunk_bytes) / v->lss;
	last = first + n / v->lss - 1;
	for (b = first; b <= last; b++)
		v->sb[b / 8] |= (uint8_t)(1u << (b % 8));
	/* The bitmap bytes that changed; metadata, through the overlay. */
	sb_off = BAT_OFFSET(v->bat[sb_index(v, chunk)]);
	return blk_file_write(img, v->sb + first / 8, (size_t)(last / 8 -
	    first / 8 + 1), sb_off + first / 8);
}

/*
 * Differencing writes: a block not yet in this file becomes partially
 * present (the rest still read from the parent), with its chunk's sector
 * bitmap made when missing; a write covering a whole block makes it fully
 * present.  Sectors only partly written are completed from the parent.
 */
static int
diff_write(gp_image *img, struct vhdx *v, const uint8_t *buf, size_t len,
    uint64_t off)
{
	uint64_t lss = v->lss, chunk_bytes = ((uint64_t)1 << 23) * lss;
	uint8_t *sec = NULL;
	int ret = -1;

	while (len) {
		uint64_t blk = off / v->block_size, in = off % v->block_size;
		size_t n = (size_t)MIN((uint64_t)len, v->block_size - in);
		uint64_t idx = bat_index(v, blk), e = v->bat[idx], at;
		unsigned st = BAT_STATE(e);

		if (st == PAYLOAD_FULLY_PRESENT) {
			if (blk_data_write(img, buf, n, BAT_OFFSET(e) + in) < 0)
				goto out;
			goto next;
		}
		if (st != PAYLOAD_PARTIALLY_PRESENT &&
		    (st != PAYLOAD_NOT_PRESENT || n == v->block_size)) {
			/* Whole block, or a block that reads as zeros. */
			if (alloc_at_eof(img, v->block_size, &at) < 0 ||
			    blk_data_write(img, buf, n, at + in) < 0)
				goto out;
			bat_set(v, idx, at | PAYLOAD_FULLY_PRESENT);
			goto next;
		}
		if (st == PAYLOAD_NOT_PRESENT) {
			uint64_t chunk = off / chunk_bytes;
			uint64_t si = sb_index(v, chunk);

			if (BAT_STATE(v->bat[si]) != SB_PRESENT) {
				if (alloc_at_eof(img, VHDX_SB_SIZE, &at) < 0)
					goto out;
				bat_set(v, si, at | SB_PRESENT);
				if (v->sb_chunk == chunk)
					v->sb_chunk = UINT64_MAX;
			}
			if (alloc_at_eof(img, v->block_size, &at) < 0)
				goto out;
			bat_set(v, idx, at | PAYLOAD_PARTIALLY_PRESENT);
			e = v->bat[idx];
		}
		{
			uint64_t o = off, end = off + n, fo = BAT_OFFSET(e) + in;
			const uint8_t *p = buf;

			/* Head and tail sectors written in part are merged
			 * with what the block reads as now. */
			while (o < end) {
				uint64_t s0 = o / lss * lss;
				size_t take;

				if (o == s0 && end - o >= lss) {
					take = (size_t)((end - o) / lss * lss);
					if (diff_write_sectors(img, v, p, take, o,
					    fo) < 0)
						goto out;
				} else {
					uint64_t sin = o - s0;

					take = (size_t)MIN(end - o, lss - sin);
					if (!sec)
						sec = xmalloc(lss);
					if (vhdx_read(img, sec, lss, s0) < 0)
						goto out;
					memcpy(sec + sin, p, take);
					if (diff_write_sectors(img, v, sec, lss, s0,
					    fo - sin) < 0)
						goto out;
				}
				o += take;
				p += take;
				fo += take;
			}
		}
next:
		v->data_unsynced = true;
		buf += n;
		off += n;
		len -= n;
	}
	ret = 0;
out:
	free(sec);
	return ret;
}

static int
vhdx_write(gp_image *img, const void *vbuf, size_t len, uint64_t off)
{
	struct vhdx *v = img->priv;
	const uint8_t *buf = vbuf;

	/* Writes come in a session (blk.c): the overlay calls begin_direct
	 * before the first byte reaches the file, and commit renews the
	 * headers. */
	if (v->has_parent)
		return diff_write(img, v, buf, len, off);
	while (len) {
		uint64_t blk = off / v->block_size;
		uint64_t in = off % v->block_size;
		size_t n = (size_t)MIN((uint64_t)len, v->block_size - in);
		uint64_t idx = bat_index(v, blk), e = v->bat[idx];

		if (BAT_STATE(e) != PAYLOAD_FULLY_PRESENT) {
			uint64_t at;

			/* Zeros into a block that reads as zeros change nothing. */
			if (BAT_STATE(e) != PAYLOAD_UNDEFINED && is_zero(buf, n))
				goto next;
			/* 2.5: new blocks at EOF rounded up to 1 MiB, the file
			 * extended by the whole block so the rest reads zero. */
			at = (img->file_size + MiB - 1) / MiB * MiB;
			debug("%s: block %llu (virtual offset %llu) is new, at "
			    "%llu in the file", img->path,
			    (unsigned long long)blk,
			    (unsigned long long)blk * v->block_size,
			    (unsigned long long)at);
			if (blk_file_truncate(img, at + v->block_size) < 0)
				return -1;
			if (blk_data_write(img, buf, n, at + in) < 0)
				return -1;
			v->bat[idx] = at | PAYLOAD_FULLY_PRESENT;
			v->bat_dirty[idx * 8 / 4096] = 1;
			v->bat_any_dirty = true;
		} else if (blk_data_write(img, buf, n, BAT_OFFSET(e) + in) < 0) {
			return -1;
		}
		v->data_unsynced = true;
next:
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Data first, then the BAT pages that point at it (2.5, and the write
 * ordering of 2.3: a BAT entry never names a block whose data is not
 * stable).
 */
static int
vhdx_flush(gp_image *img)
{
	struct vhdx *v = img->priv;
	uint8_t page[4096];
	size_t p, i;

	if (!v->data_unsynced && !v->bat_any_dirty)
		return 0;
	if (blk_file_sync(img) < 0)
		return -1;
	v->data_unsynced = false;
	if (!v->bat_any_dirty)
		return 0;
	for (p = 0; p < v->bat_dirty_pages; p++) {
		uint64_t first = (uint64_t)p * 512;
		size_t cnt = (size_t)MIN((uint64_t)512, v->nbat - first);

		if (!v->bat_dirty[p])
			continue;
		/* Keep whatever lies past our last entry in the region. */
		if (cnt < 512 && blk_file_read(img, page, sizeof(page),
		    v->bat_off + first * 8) < 0)
			return -1;
		for (i = 0; i < cnt; i++)
			put_le64(page + 8 * i, v->bat[first + i]);
		if (blk_file_write(img, page, cnt < 512 ? sizeof(page) :
		    cnt * 8, v->bat_off + first * 8) < 0)
			return -1;
		v->bat_dirty[p] = 0;
	}
	v->bat_any_dirty = false;
	return blk_file_sync(img);
}

/* ---- commit through the log, 2.3 ------------------------------------ */

static int
vhdx_begin_direct(gp_image *img)
{
	return begin_session(img, img->priv);
}

/*
 * Descriptors per log entry: as many as the entry's first sector holds
 * after the 64-byte header (2.3.1.1, 2.3.1.2).  Longer entries are valid
 * VHDX, but QEMU's replay reads a multi-sector descriptor area into a
 * single sector buffer and fails on them, so a large commit is written as
 * a sequence of such entries instead.
 */
#define LOG_DESC_PER_ENTRY	((VHDX_LOG_SECTOR - 64) / 32)
#define LOG_ENTRY_MAX		((1 + LOG_DESC_PER_ENTRY) * VHDX_LOG_SECTOR)

struct log_build {
	gp_image *img;
	uint8_t *entry;			/* the entry being filled */
	uint64_t i;			/* pages placed so far */
	uint64_t n;			/* pages in all */
	uint64_t seq;			/* of the first entry */
	uint64_t log_off;
	guid_t guid;
};

/* Header and checksum of entry e (2.3.1.1), then into the log region.
 * Every entry's Tail names the first one: the sequence replays as a whole
 * or not at all (2.3.3). */
static int
log_put_entry(struct log_build *b, uint64_t e)
{
	uint8_t *h = b->entry;
	uint64_t cnt = MIN((uint64_t)LOG_DESC_PER_ENTRY,
	    b->n - e * LOG_DESC_PER_ENTRY);
	uint32_t elen = (uint32_t)((1 + cnt) * VHDX_LOG_SECTOR);

	memcpy(h, "loge", 4);
	put_le32(h + 4, 0);
	put_le32(h + 8, elen);
	put_le32(h + 12, 0);		/* Tail */
	put_le64(h + 16, b->seq + e);
	put_le32(h + 24, (uint32_t)cnt);
	put_le32(h + 28, 0);
	memcpy(h + 32, b->guid.b, 16);
	put_le64(h + 48, b->img->file_size);	/* FlushedFileOffset */
	put_le64(h + 56, b->img->file_size);	/* LastFileOffset */
	put_le32(h + 4, crc32c(0, h, elen));
	if (blk_file_write_raw(b->img, h, elen, b->log_off +
	    e * LOG_ENTRY_MAX) < 0)
		return -1;
	memset(b->entry, 0, LOG_ENTRY_MAX);
	return 0;
}

/* One data descriptor and its data sector per held page (2.3.1.2, 2.3.1.4),
 * in entry i / LOG_DESC_PER_ENTRY of the sequence; a full entry goes to
 * the file at once, so memory holds one entry, not the whole log. */
static int
log_add_page(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	struct log_build *b = arg;
	uint64_t e = b->i / LOG_DESC_PER_ENTRY, k = b->i % LOG_DESC_PER_ENTRY;
	uint64_t seq = b->seq + e;
	uint8_t *d = b->entry + 64 + 32 * k;
	uint8_t *s = b->entry + (1 + k) * VHDX_LOG_SECTOR;

	(void)img;
	memcpy(d, "desc", 4);
	memcpy(d + 4, page + 4092, 4);		/* TrailingBytes */
	memcpy(d + 8, page, 8);			/* LeadingBytes */
	put_le64(d + 16, off);
	put_le64(d + 24, seq);
	memcpy(s, "data", 4);
	put_le32(s + 4, (uint32_t)(seq >> 32));
	memcpy(s + 8, page + 8, 4084);
	put_le32(s + 4092, (uint32_t)seq);
	b->i++;
	if (k + 1 == LOG_DESC_PER_ENTRY || b->i == b->n)
		return log_put_entry(b, e);
	return 0;
}

static int
log_apply_page(gp_image *img, uint64_t off, const uint8_t *page, void *arg)
{
	(void)arg;
	return blk_file_write_raw(img, page, VHDX_LOG_SECTOR, off);
}

/*
 * Make the held pages part of the file atomically: write them as a
 * sequence of log entries under a new LogGuid, flush, and name that
 * LogGuid in the headers (the commit point: from here Hyper-V, QEMU and
 * we replay the entries on open); then write the pages in place, flush,
 * and clear LogGuid.  A log region too small for the entries is replaced
 * by a larger one at the end of the file, in the same header update.
 */
static int
vhdx_commit(gp_image *img)
{
	struct vhdx *v = img->priv;
	uint64_t n = blk_cow_count(img), nent, len, need;
	uint64_t log_off = v->log_off;
	uint32_t log_len = v->log_len;
	struct log_build b = { .img = img };
	guid_t fg;
	int ret = -1;

	if (begin_session(img, v) < 0)
		return -1;
	if (n == 0)
		return blk_file_sync(img);
	if (blk_cow_check_limit(img) < 0)
		return -1;
	nent = (n + LOG_DESC_PER_ENTRY - 1) / LOG_DESC_PER_ENTRY;
	len = (n + nent) * VHDX_LOG_SECTOR;
	/* One sector stays free: a log filled to the last sector reads as
	 * empty to QEMU's circular-buffer replay. */
	need = (len + VHDX_LOG_SECTOR + MiB - 1) / MiB * MiB;
	if (need > VHDX_MAX_LOG) {
		error_set(EFBIG, "%s: the change needs a log of %llu MiB, more "
		    "than %llu MiB", img->path, (unsigned long long)(need >> 20),
		    (unsigned long long)(VHDX_MAX_LOG >> 20));
		return -1;
	}
	if (len + VHDX_LOG_SECTOR > log_len) {
		/* 2.3: the log lies in the file, 1 MiB aligned, outside
		 * every region; a fresh one at the end qualifies. */
		log_off = (img->file_size + MiB - 1) / MiB * MiB;
		log_len = (uint32_t)need;
		if (blk_file_truncate(img, log_off + log_len) < 0)
			return -1;
	}
	/* Payload that went straight to the file is stable before any
	 * metadata can point at it. */
	if (blk_file_sync(img) < 0)
		return -1;
	if (guid_generate(&b.guid) < 0)
		return -1;
	b.entry = xcalloc(1, LOG_ENTRY_MAX);
	b.n = n;
	b.seq = v->seq + 1;
	b.log_off = log_off;
	if (blk_cow_foreach(img, log_add_page, &b) < 0 ||
	    blk_file_sync(img) < 0)
		goto out;
	/* The commit point. */
	v->log_guid = b.guid;
	v->log_off = log_off;
	v->log_len = log_len;
	put_le32(v->hdr + 68, log_len);
	put_le64(v->hdr + 72, log_off);
	memcpy(fg.b, v->hdr + 16, 16);		/* same session */
	if (write_headers(img, v, &fg, NULL) < 0)
		goto out;
	fault_point("vhdx-logged");
	if (blk_cow_foreach(img, log_apply_page, NULL) < 0 ||
	    blk_file_sync(img) < 0)
		goto committed;
	fault_point("vhdx-applied");
	memset(v->log_guid.b, 0, 16);
	if (write_headers(img, v, &fg, NULL) < 0)
		goto committed;
	ret = 0;
	goto out;
committed:
	error_prefix("%s: the change is committed in the VHDX log and will "
	    "be completed when the image is next opened", img->path);
out:
	free(b.entry);
	return ret;
}

/* ---- compaction ---------------------------------------------------- */

/*
 * Forget the blocks wholly inside [off, off+len).  In a dynamic file they
 * become NOT_PRESENT (read as zeros); in a differencing one NOT_PRESENT
 * too, so the parent shows through, and a partially present block's
 * sector bitmap bits are cleared so that a block made there later does
 * not claim sectors it never got (2.5.1, 2.6.2).  A fixed file keeps its
 * blocks (LeaveBlocksAllocated) and gets holes punched instead.
 */
static int
vhdx_discard(gp_image *img, uint64_t off, uint64_t len)
{
	struct vhdx *v = img->priv;
	uint64_t b = (off + v->block_size - 1) / v->block_size;
	uint64_t end = (off + len) / v->block_size;
	uint64_t chunk_bytes = ((uint64_t)1 << 23) * v->lss;

	for (; b < end; b++) {
		uint64_t idx = bat_index(v, b), e = v->bat[idx];
		unsigned st = BAT_STATE(e);

		if (st != PAYLOAD_FULLY_PRESENT && st != PAYLOAD_PARTIALLY_PRESENT)
			continue;
		if (v->leave_allocated) {
			if (blk_file_punch(img, BAT_OFFSET(e), v->block_size) < 0)
				return -1;
			continue;
		}
		if (st == PAYLOAD_PARTIALLY_PRESENT) {
			uint64_t voff = b * v->block_size, chunk = voff / chunk_bytes;
			uint64_t first = (voff % chunk_bytes) / v->lss;
			uint64_t nbits = v->block_size / v->lss;

			if (load_sb(img, v, chunk) < 0)
				return -1;
			memset(v->sb + first / 8, 0, (size_t)(nbits / 8));
			if (blk_file_write(img, v->sb + first / 8,
			    (size_t)(nbits / 8), BAT_OFFSET(v->bat[sb_index(v,
			    chunk)]) + first / 8) < 0)
				return -1;
		}
		bat_set(v, idx, PAYLOAD_NOT_PRESENT);
	}
	return 0;
}

struct extent_list {
	struct blk_extent *v;
	size_t n;
};

static void
extent_add(void *ctx, const struct blk_extent *x)
{
	struct extent_list *l = ctx;

	l->v[l->n++] = *x;
}

/*
 * Move blocks (and sector bitmaps, and an empty log) down into the space
 * the committed state leaves unused, so that trimming can shorten the
 * file.  Data goes first, straight into unused space; the BAT changes wait
 * for the commit; a moved log is named by a header update of its own
 * (the log is empty, so its place is all the headers say).
 */
static int
vhdx_pack(gp_image *img)
{
	struct vhdx *v = img->priv;
	struct extent_list l = { xmalloc((v->nbat + v->nother + 4) *
	    sizeof(*l.v)), 0 };
	struct blk_extent *x = l.v;
	size_t n, i;
	int ret = -1;

	vhdx_extents(v, extent_add, &l);
	n = l.n;
	blk_pack_plan(x, n, MiB);
	for (i = 0; i < n; i++) {
		if (x[i].to == x[i].off)
			continue;
		if (x[i].id == UINT64_MAX) {
			guid_t fg;

			if (begin_session(img, v) < 0)
				goto out;
			v->log_off = x[i].to;
			put_le64(v->hdr + 72, v->log_off);
			memcpy(fg.b, v->hdr + 16, 16);
			if (write_headers(img, v, &fg, NULL) < 0)
				goto out;
			continue;
		}
		if (blk_file_move(img, x[i].off, x[i].to, x[i].len) < 0)
			goto out;
		bat_set(v, x[i].id, x[i].to | BAT_STATE(v->bat[x[i].id]));
		v->data_unsynced = true;
	}
	v->sb_chunk = UINT64_MAX;
	ret = 0;
out:
	free(x);
	return ret;
}

static int
vhdx_trim(gp_image *img)
{
	return reclaim_tail(img, img->priv);
}

/* Fully and partially present blocks are in the file (2.5.1). */
static int
vhdx_block_status(gp_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
	struct vhdx *v = img->priv;
	uint64_t blk = off / v->block_size, pos = off, nblk;
	bool stored;

#define STORED(b) (BAT_STATE(v->bat[bat_index(v, (b))]) == \
	PAYLOAD_FULLY_PRESENT || BAT_STATE(v->bat[bat_index(v, (b))]) == \
	PAYLOAD_PARTIALLY_PRESENT)
	nblk = (img->info.virtual_size + v->block_size - 1) / v->block_size;
	stored = STORED(blk);
	while (pos < off + len && blk < nblk && STORED(blk) == stored) {
		blk++;
		pos = blk * v->block_size;
	}
#undef STORED
	*pnum = MIN(pos, off + len) - off;
	return stored;
}

static int vhdx_create(const char *path, const struct blk_new *n);
static int vhdx_data_write_guid(const gp_image *img, char out[39]);

const struct blk_driver blk_vhdx_driver = {
	.name = "vhdx",
	.parent_check = parent_check,
	.create = vhdx_create,
	.data_write_guid = vhdx_data_write_guid,
	.block_status = vhdx_block_status,
	.discard = vhdx_discard,
	.pack = vhdx_pack,
	.trim = vhdx_trim,
	.probe = vhdx_probe,
	.open = vhdx_open,
	.read = vhdx_read,
	.write = vhdx_write,
	.flush = vhdx_flush,
	.close = vhdx_close,
	.begin_direct = vhdx_begin_direct,
	.commit = vhdx_commit,
};

/* ---- creating a VHDX (2.1 layout) ----------------------------------- */

/*
 * Layout of a new file: identifier, two headers and two region tables in
 * the first MiB, the log (1 MiB, empty) at 1 MiB, the metadata region at
 * 2 MiB, the BAT from 3 MiB, payload blocks after it, every region on a
 * 1 MiB boundary (2.1).
 */
#define NEW_LOG_OFF	(1 * MiB)
#define NEW_LOG_LEN	(1 * MiB)
#define NEW_META_OFF	(2 * MiB)
#define NEW_META_LEN	(1 * MiB)
#define NEW_BAT_OFF	(3 * MiB)

static size_t
put_meta_entry(uint8_t *tab, size_t i, const char *guid, uint32_t off,
    uint32_t len, uint32_t flags)
{
	uint8_t *e = tab + 32 + 32 * i;
	guid_t g;

	guid_const(&g, guid);
	memcpy(e, g.b, 16);
	put_le32(e + 16, off);
	put_le32(e + 20, len);
	put_le32(e + 24, flags);
	return i + 1;
}

/* A parent locator item (2.6.2.6) of n key/value pairs, UTF-16LE. */
static uint8_t *
make_locator(const char *const *kv, size_t n, uint32_t *len)
{
	uint8_t *buf = xcalloc(1, 64 * 1024);
	size_t i, at = 20 + 12 * n;
	guid_t g;

	guid_const(&g, GUID_LOCATOR_VHDX);
	memcpy(buf, g.b, 16);
	put_le16(buf + 18, (uint16_t)n);
	for (i = 0; i < n; i++) {
		uint8_t *e = buf + 20 + 12 * i, *u;
		size_t kl, vl;

		u = utf8_to_utf16le(kv[2 * i], strlen(kv[2 * i]), &kl);
		memcpy(buf + at, u, kl);
		free(u);
		put_le32(e, (uint32_t)at);
		put_le16(e + 8, (uint16_t)kl);
		at += kl;
		u = utf8_to_utf16le(kv[2 * i + 1], strlen(kv[2 * i + 1]), &vl);
		memcpy(buf + at, u, vl);
		free(u);
		put_le32(e + 4, (uint32_t)at);
		put_le16(e + 10, (uint16_t)vl);
		at += vl;
	}
	*len = (uint32_t)at;
	return buf;
}

static int
vhdx_create(const char *path, const struct blk_new *n)
{
	uint32_t bs = n->block_size ? n->block_size : 32 * MiB;
	uint32_t lss = n->lss ? n->lss : 512, pss = n->pss ? n->pss : 4096;
	uint64_t chunk, nblocks, nsb, nbat, bat_len, fsize, i;
	uint8_t *f = NULL, *loc = NULL;
	uint32_t loc_len = 0;
	guid_t fg, dg, id;
	size_t k = 0;
	int fd = -1, ret = -1;

	if (n->vsize == 0 || n->vsize % lss || n->vsize > VHDX_MAX_VSIZE ||
	    bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || !is_pow2(bs) ||
	    (lss != 512 && lss != 4096) || (pss != 512 && pss != 4096)) {
		error_set(EINVAL, "%s: cannot make a VHDX of %llu bytes with "
		    "%u-byte blocks and %u/%u-byte sectors", path,
		    (unsigned long long)n->vsize, bs, lss, pss);
		return -1;
	}
	chunk = ((uint64_t)1 << 23) * lss / bs;
	nblocks = (n->vsize + bs - 1) / bs;
	nsb = (nblocks + chunk - 1) / chunk;
	nbat = n->parent_linkage ? nsb * (chunk + 1) :
	    nblocks + (nblocks - 1) / chunk;
	bat_len = (nbat * 8 + MiB - 1) / MiB * MiB;
	fsize = NEW_BAT_OFF + bat_len;
	if (guid_generate(&fg) < 0 || guid_generate(&dg) < 0 ||
	    guid_generate(&id) < 0)
		return -1;
	f = xcalloc(1, (size_t)NEW_BAT_OFF);

	/* File type identifier (2.2.1). */
	memcpy(f, "vhdxfile", 8);
	{
		size_t cl;
		uint8_t *c = utf8_to_utf16le(n->creator ? n->creator :
		    "gpupv-prep", strlen(n->creator ? n->creator :
		    "gpupv-prep"), &cl);

		memcpy(f + 8, c, MIN(cl, (size_t)510));
		free(c);
	}
	/* Headers (2.2.2); the second is the current one. */
	for (i = 0; i < 2; i++) {
		uint8_t *h = f + (i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);

		memcpy(h, "head", 4);
		put_le64(h + 8, i + 1);
		memcpy(h + 16, fg.b, 16);
		memcpy(h + 32, dg.b, 16);
		put_le16(h + 66, 1);		/* Version */
		put_le32(h + 68, NEW_LOG_LEN);
		put_le64(h + 72, NEW_LOG_OFF);
		put_le32(h + 4, crc32c(0, h, VHDX_HEADER_SIZE));
	}
	/* Region tables (2.2.3), both the same. */
	for (i = 0; i < 2; i++) {
		uint8_t *r = f + (i ? VHDX_RT2_OFF : VHDX_RT1_OFF);
		guid_t g;

		memcpy(r, "regi", 4);
		put_le32(r + 8, 2);
		guid_const(&g, GUID_BAT);
		memcpy(r + 16, g.b, 16);
		put_le64(r + 32, NEW_BAT_OFF);
		put_le32(r + 40, (uint32_t)bat_len);
		put_le32(r + 44, 1);		/* Required */
		guid_const(&g, GUID_META);
		memcpy(r + 48, g.b, 16);
		put_le64(r + 64, NEW_META_OFF);
		put_le32(r + 72, NEW_META_LEN);
		put_le32(r + 76, 1);
		put_le32(r + 4, crc32c(0, r, VHDX_RT_SIZE));
	}
	/* Metadata (2.6): the table, then the items from 64 KiB on. */
	{
		uint8_t *m = f + NEW_META_OFF, *it = m + VHDX_META_TABLE_SIZE;
		uint32_t at = VHDX_META_TABLE_SIZE;
		const uint32_t req = 4, vd = 2;

		memcpy(m, "metadata", 8);
		put_le32(it, bs);
		put_le32(it + 4, (n->fixed ? 1u : 0) |
		    (n->parent_linkage ? 2u : 0));
		k = put_meta_entry(m, k, GUID_FILE_PARAMS, at, 8, req);
		put_le64(it + 8, n->vsize);
		k = put_meta_entry(m, k, GUID_VDISK_SIZE, at + 8, 8, req | vd);
		memcpy(it + 16, id.b, 16);
		k = put_meta_entry(m, k, GUID_PAGE83, at + 16, 16, req | vd);
		put_le32(it + 32, lss);
		k = put_meta_entry(m, k, GUID_LSS, at + 32, 4, req | vd);
		put_le32(it + 36, pss);
		k = put_meta_entry(m, k, GUID_PSS, at + 36, 4, req | vd);
		if (n->parent_linkage) {
			const char *kv[6] = { "parent_linkage", n->parent_linkage,
			    "relative_path", n->parent_relative,
			    "absolute_win32_path", n->parent_absolute };

			loc = make_locator(kv, n->parent_absolute ? 3 : 2,
			    &loc_len);
			memcpy(it + 64, loc, loc_len);
			k = put_meta_entry(m, k, GUID_PARENT_LOC, at + 64,
			    loc_len, req);
		}
		put_le16(m + 10, (uint16_t)k);
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (file_pwrite(fd, f, NEW_BAT_OFF, 0) < 0 ||
	    ftruncate(fd, (off_t)fsize) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* A fixed file holds every block, allocated, after the BAT. */
	if (n->fixed) {
		uint8_t *bat = xcalloc(1, (size_t)bat_len);
		uint64_t at = fsize;

		for (i = 0; i < nblocks; i++, at += bs)
			put_le64(bat + 8 * (i + i / chunk),
			    at | PAYLOAD_FULLY_PRESENT);
		int e = 0;

		if (file_pwrite(fd, bat, (size_t)bat_len, NEW_BAT_OFF) < 0 ||
		    ftruncate(fd, (off_t)at) < 0)
			e = errno;
		/* posix_fallocate returns its error; errno is not set. */
		else
			e = posix_fallocate(fd, (off_t)fsize, (off_t)(at - fsize));
		if (e) {
			error_set(e, "%s: %s%s", path, strerror(e), e == ENOSPC ?
			    " (host file system full)" : "");
			free(bat);
			goto out;
		}
		free(bat);
	}
	if (fsync(fd) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		ret = -1;
	}
	if (ret < 0 && fd >= 0)
		unlink(path);
	free(f);
	free(loc);
	return ret;
}

static int
vhdx_data_write_guid(const gp_image *img, char out[39])
{
	const struct vhdx *v = img->priv;

	guid_format(&v->data_write_guid, out);
	return 0;
}
