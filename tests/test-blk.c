/*
 * Unit tests of the VHDX driver on files built here byte by byte:
 * metadata parsing, 512 and 4096-byte sectors, the sector-bitmap
 * interleave of the BAT, the header update protocol, block allocation,
 * log replay in memory and into the file, and refusals.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util.h"
#include "blk.h"
#include "vhdx-log.h"
#include "check.h"

#define MiB (1024ull * 1024)
#define META_OFF (1 * MiB)
#define BAT_OFF (2 * MiB)
#define LOG_OFF (3 * MiB)
#define FILE_END (4 * MiB)

static char dir[] = "/tmp/gpupv-test-blk.XXXXXX";

struct layout {
	uint64_t vsize;
	uint32_t block;
	uint32_t lss;
	bool fixed_flag;
	const char *extra_meta;		/* GUID of an extra item, or NULL */
	uint32_t extra_flags;
	const char *log_guid;		/* header LogGuid, or NULL */
};

static void
put_guid(uint8_t *p, const char *text)
{
	guid_t g;

	guid_parse(&g, text);
	memcpy(p, g.b, 16);
}

static void
wr(int fd, const void *b, size_t n, uint64_t off)
{
	if (file_pwrite(fd, b, n, off) < 0)
		abort();
}

static void
header(int fd, uint64_t off, uint64_t seq, const char *log_guid)
{
	uint8_t h[4096] = { 0 };

	memcpy(h, "head", 4);
	put_le64(h + 8, seq);
	put_guid(h + 16, "11111111-1111-1111-1111-111111111111");
	put_guid(h + 32, "22222222-2222-2222-2222-222222222222");
	if (log_guid)
		put_guid(h + 48, log_guid);
	put_le16(h + 66, 1);
	put_le32(h + 68, (uint32_t)MiB);
	put_le64(h + 72, LOG_OFF);
	put_le32(h + 4, crc32c(0, h, sizeof(h)));
	wr(fd, h, sizeof(h), off);
}

static char *
make_vhdx(const char *name, const struct layout *l)
{
	char *path = xasprintf("%s/%s", dir, name);
	uint8_t rt[65536] = { 0 }, *m = xcalloc(1, MiB);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), n = 0;
	uint32_t item = 65536;

	if (fd < 0 || ftruncate(fd, FILE_END) < 0)
		abort();
	wr(fd, "vhdxfile", 8, 0);
	header(fd, 64 * 1024, 1, l->log_guid);
	header(fd, 128 * 1024, 2, l->log_guid);

	memcpy(rt, "regi", 4);
	put_le32(rt + 8, 2);
	put_guid(rt + 16, "2DC27766-F623-4200-9D64-115E9BFD4A08");
	put_le64(rt + 32, BAT_OFF);
	put_le32(rt + 40, (uint32_t)MiB);
	put_le32(rt + 44, 1);
	put_guid(rt + 48, "8B7CA206-4790-4B9A-B8FE-575F050F886E");
	put_le64(rt + 64, META_OFF);
	put_le32(rt + 72, (uint32_t)MiB);
	put_le32(rt + 76, 1);
	put_le32(rt + 4, crc32c(0, rt, sizeof(rt)));
	wr(fd, rt, sizeof(rt), 192 * 1024);
	wr(fd, rt, sizeof(rt), 256 * 1024);

	memcpy(m, "metadata", 8);
#define ITEM(guid, len, flags) do {					\
	uint8_t *e = m + 32 + 32 * n++;					\
	put_guid(e, guid);						\
	put_le32(e + 16, item);						\
	put_le32(e + 20, len);						\
	put_le32(e + 24, flags);					\
	item += 64;							\
} while (0)
	ITEM("CAA16737-FA36-4D43-B3B6-33F0AA44E76B", 8, 4);
	put_le32(m + item - 64, l->block);
	put_le32(m + item - 60, l->fixed_flag ? 1 : 0);
	ITEM("2FA54224-CD1B-4876-B211-5DBED83BF4B8", 8, 6);
	put_le64(m + item - 64, l->vsize);
	ITEM("BECA12AB-B2E6-4523-93EF-C309E000C746", 16, 6);
	put_guid(m + item - 64, "33333333-4444-5555-6666-777777777777");
	ITEM("8141BF1D-A96F-4709-BA47-F233A8FAAB5F", 4, 6);
	put_le32(m + item - 64, l->lss);
	ITEM("CDA348C7-445D-4471-9CC9-E9885251C556", 4, 6);
	put_le32(m + item - 64, 4096);
	if (l->extra_meta)
		ITEM(l->extra_meta, 4, l->extra_flags);
#undef ITEM
	put_le16(m + 10, (uint16_t)n);
	wr(fd, m, MiB, META_OFF);
	free(m);
	close(fd);
	return path;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *b;

	if (fd < 0 || fstat(fd, &st) < 0)
		abort();
	b = xmalloc((size_t)st.st_size);
	if (file_pread(fd, b, (size_t)st.st_size, 0) < 0)
		abort();
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static uint64_t
bat_entry(const char *path, uint64_t idx)
{
	uint8_t b[8];
	int fd = open(path, O_RDONLY);

	if (fd < 0 || file_pread(fd, b, 8, BAT_OFF + 8 * idx) < 0)
		abort();
	close(fd);
	return get_le64(b);
}

static void
test_open_and_write(uint32_t lss, uint64_t vsize, uint64_t chunk_ratio)
{
	struct layout l = { vsize, (uint32_t)MiB, lss, false, NULL, 0, NULL };
	char *p = make_vhdx(lss == 512 ? "w512.vhdx" : "w4k.vhdx", &l);
	struct gp_open_opts rw = { .flags = GP_OPEN_RDWR };
	struct gp_image_info info;
	gp_image *img;
	uint8_t *buf = xmalloc(3 * MiB), *back = xmalloc(3 * MiB), *f;
	uint64_t off = chunk_ratio * MiB - 1000, e;
	size_t i, flen;

	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (!img)
		goto out;
	gp_image_get_info(img, &info);
	CHECK(strcmp(info.format, "vhdx") == 0);
	CHECK(strcmp(info.subformat, "dynamic") == 0);
	CHECK_EQ_U(info.virtual_size, vsize);
	CHECK_EQ_U(info.logical_sector_size, lss);
	CHECK_EQ_U(info.block_size, MiB);
	CHECK(strcmp(info.disk_id, "{33333333-4444-5555-6666-777777777777}") == 0);
	/* Reads of an unallocated disk are zeros; writes are refused. */
	CHECK(gp_image_read(img, buf, 4096, vsize - 4096) == 0);
	CHECK(is_zero(buf, 4096));
	CHECK(gp_image_write(img, buf, 1, 0) < 0);
	CHECK(gp_image_read(img, buf, 2, vsize - 1) < 0);
	gp_error_clear();
	gp_image_close(img);

	/* Write 2 MiB starting 1000 bytes before the first chunk boundary:
	 * three blocks, the second and third after the sector-bitmap entry. */
	img = gp_image_open(p, &rw);
	CHECK(img != NULL);
	if (!img)
		goto out;
	for (i = 0; i < 2 * MiB; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	CHECK(gp_image_write(img, buf, 2 * MiB, off) == 0);
	/* A sub-sector write into the middle of it. */
	CHECK(gp_image_write(img, "xyz", 3, off + 5) == 0);
	memcpy(buf + 5, "xyz", 3);
	CHECK(gp_image_commit(img) == 0);
	CHECK(gp_image_close(img) == 0);

	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (!img)
		goto out;
	CHECK(gp_image_read(img, back, 2 * MiB, off) == 0);
	CHECK(memcmp(buf, back, 2 * MiB) == 0);
	gp_image_close(img);

	/* BAT: blocks chunk_ratio-1, chunk_ratio, chunk_ratio+1 live at
	 * entries b + b / chunk_ratio; the sector-bitmap entry between them
	 * stays NOT_PRESENT; offsets 1 MiB aligned past the old end. */
	e = bat_entry(p, chunk_ratio - 1);
	CHECK_EQ_U(e & 7, 6);
	CHECK((e & ~(MiB - 1)) >= FILE_END);
	CHECK_EQ_U(bat_entry(p, chunk_ratio), 0);
	CHECK_EQ_U(bat_entry(p, chunk_ratio + 1) & 7, 6);
	CHECK_EQ_U(bat_entry(p, chunk_ratio + 2) & 7, 6);
	CHECK_EQ_U(bat_entry(p, chunk_ratio + 3), 0);

	/* Headers: both valid, sequence 2 -> 8 (session start, LogGuid set
	 * at the commit point, LogGuid cleared), new File/DataWriteGuid. */
	f = slurp(p, &flen);
	CHECK_EQ_U(flen, FILE_END + 3 * MiB);
	for (i = 0; i < 2; i++) {
		uint8_t *h = f + 64 * 1024 * (i + 1), tmp[4096];

		memcpy(tmp, h, 4096);
		put_le32(tmp + 4, 0);
		CHECK_EQ_U(crc32c(0, tmp, 4096), get_le32(h + 4));
		CHECK(get_le64(h + 8) == 7 || get_le64(h + 8) == 8);
		CHECK(get_le32(h + 16) != 0x11111111u);
		CHECK(get_le32(h + 32) != 0x22222222u);
		CHECK(is_zero(h + 48, 16));
	}
	CHECK(get_le64(f + 64 * 1024 + 8) != get_le64(f + 128 * 1024 + 8));
	CHECK(memcmp(f + 64 * 1024 + 16, f + 128 * 1024 + 16, 32) == 0);
	free(f);
out:
	gp_error_clear();
	free(buf);
	free(back);
	free(p);
}

/* A log entry, 2.3.1: header + one data and one zero descriptor in one
 * descriptor sector, then one data sector. */
static void
write_log(const char *path, const char *log_guid, uint64_t data_off,
    const uint8_t *sector, uint64_t zero_off, bool break_crc)
{
	uint8_t e[8192] = { 0 };
	int fd = open(path, O_RDWR);
	uint64_t seq = 0x100000005ull;

	memcpy(e, "loge", 4);
	put_le32(e + 8, sizeof(e));
	put_le32(e + 12, 0);			/* tail: this entry */
	put_le64(e + 16, seq);
	put_le32(e + 24, 2);
	put_guid(e + 32, log_guid);
	put_le64(e + 48, FILE_END);		/* FlushedFileOffset */
	put_le64(e + 56, FILE_END + 2 * MiB);	/* LastFileOffset */
	memcpy(e + 64, "desc", 4);
	memcpy(e + 68, sector + 4092, 4);	/* trailing bytes */
	memcpy(e + 72, sector, 8);		/* leading bytes */
	put_le64(e + 80, data_off);
	put_le64(e + 88, seq);
	memcpy(e + 96, "zero", 4);
	put_le64(e + 104, 4096);
	put_le64(e + 112, zero_off);
	put_le64(e + 120, seq);
	memcpy(e + 4096, "data", 4);
	put_le32(e + 4100, (uint32_t)(seq >> 32));
	memcpy(e + 4104, sector + 8, 4084);
	put_le32(e + 8188, (uint32_t)seq);
	put_le32(e + 4, crc32c(0, e, sizeof(e)));
	if (break_crc)
		e[5000] ^= 1;
	if (fd < 0)
		abort();
	wr(fd, e, sizeof(e), LOG_OFF);
	close(fd);
}

/*
 * A log holding one valid entry as long as the whole log (its head comes
 * back to its tail): the search for the active sequence must end, and the
 * entry (one zero descriptor) is replayed.
 */
static void
test_log_whole(void)
{
	const char *lg = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE";
	struct layout l = { 64 * MiB, (uint32_t)MiB, 512, false, NULL, 0, lg };
	char *p = make_vhdx("whole.vhdx", &l);
	uint8_t *e = xcalloc(1, MiB), junk[4096], got[4096];
	uint64_t seq = 7;
	struct gp_image_info info;
	gp_image *img;
	int fd;

	memcpy(e, "loge", 4);
	put_le32(e + 8, (uint32_t)MiB);		/* the whole log */
	put_le32(e + 12, 0);
	put_le64(e + 16, seq);
	put_le32(e + 24, 1);
	put_guid(e + 32, lg);
	put_le64(e + 48, FILE_END);
	put_le64(e + 56, FILE_END);
	memcpy(e + 64, "zero", 4);
	put_le64(e + 72, 4096);
	put_le64(e + 80, META_OFF + 512 * 1024);
	put_le64(e + 88, seq);
	put_le32(e + 4, crc32c(0, e, MiB));
	memset(junk, 0x77, sizeof(junk));
	fd = open(p, O_RDWR);
	if (fd < 0)
		abort();
	wr(fd, e, MiB, LOG_OFF);
	wr(fd, junk, sizeof(junk), META_OFF + 512 * 1024);
	close(fd);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(info.log_replayed);
		gp_image_close(img);
	}
	/* Writable: replayed into the file, the junk zeroed. */
	img = gp_image_open(p, &(struct gp_open_opts){ .flags = GP_OPEN_RDWR });
	CHECK(img != NULL);
	gp_image_close(img);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, got, sizeof(got), META_OFF + 512 * 1024) ==
	    (ssize_t)sizeof(got) && is_zero(got, sizeof(got)));
	if (fd >= 0)
		close(fd);
	/* A zero run of 2^60 bytes is no entry to replay: the log reads as
	 * empty, at once. */
	put_le64(e + 72, 1ull << 60);
	put_le32(e + 4, 0);
	put_le32(e + 4, crc32c(0, e, MiB));
	fd = open(p, O_RDWR);
	if (fd < 0)
		abort();
	wr(fd, e, MiB, LOG_OFF);
	close(fd);
	free(p);
	p = make_vhdx("zerorun.vhdx", &l);
	fd = open(p, O_RDWR);
	if (fd < 0)
		abort();
	wr(fd, e, MiB, LOG_OFF);
	close(fd);
	img = gp_image_open(p, &(struct gp_open_opts){ .flags = GP_OPEN_RDWR });
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(!info.log_replayed);
		gp_image_close(img);
	}
	gp_error_clear();
	free(e);
	free(p);
}

static void
test_log(void)
{
	const char *lg = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE";
	struct layout l = { 64 * MiB, (uint32_t)MiB, 512, false, NULL, 0, lg };
	char *p = make_vhdx("log.vhdx", &l);
	struct gp_open_opts rw = { .flags = GP_OPEN_RDWR };
	struct gp_image_info info;
	uint8_t bat[4096] = { 0 }, data[4096], *before, *after;
	size_t blen, alen;
	gp_image *img;
	int fd;

	/* The log makes block 0 present at FILE_END + 1 MiB, whose data is
	 * already in the file, and zeroes a page of junk in the metadata. */
	put_le64(bat, (FILE_END + MiB) | 6);
	bat[4092] = 0;
	fd = open(p, O_RDWR);
	memset(data, 0x5a, sizeof(data));
	if (fd < 0 || ftruncate(fd, FILE_END + 2 * MiB) < 0)
		abort();
	wr(fd, data, sizeof(data), FILE_END + MiB);
	wr(fd, data, sizeof(data), META_OFF + 512 * 1024);
	close(fd);
	write_log(p, lg, BAT_OFF, bat, META_OFF + 512 * 1024, false);

	before = slurp(p, &blen);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(info.log_replayed);
		CHECK(gp_image_read(img, data, 16, 0) == 0);
		CHECK(data[0] == 0x5a && data[15] == 0x5a);
		gp_image_close(img);
	}
	after = slurp(p, &alen);
	CHECK(blen == alen && memcmp(before, after, blen) == 0);
	free(after);

	/* Writable: replayed into the file, LogGuid cleared. */
	img = gp_image_open(p, &rw);
	CHECK(img != NULL);
	if (img)
		gp_image_close(img);
	CHECK_EQ_U(bat_entry(p, 0), (FILE_END + MiB) | 6);
	after = slurp(p, &alen);
	CHECK(is_zero(after + META_OFF + 512 * 1024, 4096));
	CHECK(is_zero(after + 64 * 1024 + 48, 16));
	CHECK(is_zero(after + 128 * 1024 + 48, 16));
	free(after);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(!info.log_replayed);
		CHECK(gp_image_read(img, data, 16, 0) == 0 && data[3] == 0x5a);
		gp_image_close(img);
	}
	free(before);
	free(p);

	/* A log whose only entry fails its checksum is empty. */
	p = make_vhdx("badlog.vhdx", &l);
	write_log(p, lg, BAT_OFF, bat, META_OFF + 512 * 1024, true);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(!info.log_replayed);
		CHECK(gp_image_read(img, data, 16, 0) == 0 && is_zero(data, 16));
		gp_image_close(img);
	}
	free(p);
	/* An entry written under another LogGuid is not replayed. */
	p = make_vhdx("otherlog.vhdx", &l);
	write_log(p, "99999999-BBBB-CCCC-DDDD-EEEEEEEEEEEE", BAT_OFF, bat,
	    META_OFF, false);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		gp_image_get_info(img, &info);
		CHECK(!info.log_replayed);
		gp_image_close(img);
	}
	free(p);
	gp_error_clear();
}

static void
test_refusals(void)
{
	struct layout l = { 64 * MiB, (uint32_t)MiB, 512, false, NULL, 0, NULL };
	char *p;
	gp_image *img;

	l.extra_meta = "01020304-0506-0708-090A-0B0C0D0E0F10";
	l.extra_flags = 4;		/* IsRequired */
	p = make_vhdx("req.vhdx", &l);
	img = gp_image_open(p, NULL);
	CHECK(img == NULL);
	CHECK(gp_error_code() == GP_EXIT_CORRUPT);
	CHECK(strstr(gp_error_message(), "unknown metadata item") != NULL);
	gp_error_clear();
	free(p);

	l.extra_flags = 0;		/* not required: ignored */
	p = make_vhdx("opt.vhdx", &l);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	gp_image_close(img);
	free(p);

	l.extra_meta = NULL;
	l.block = 3 * MiB;
	p = make_vhdx("bs.vhdx", &l);
	CHECK(gp_image_open(p, NULL) == NULL);
	CHECK(strstr(gp_error_message(), "block size") != NULL);
	gp_error_clear();
	free(p);

	l.block = (uint32_t)MiB;
	l.lss = 1024;
	p = make_vhdx("lss.vhdx", &l);
	CHECK(gp_image_open(p, NULL) == NULL);
	CHECK(strstr(gp_error_message(), "logical sector size") != NULL);
	gp_error_clear();
	free(p);

	l.lss = 512;
	l.fixed_flag = true;
	p = make_vhdx("fixedflag.vhdx", &l);
	img = gp_image_open(p, NULL);
	CHECK(img != NULL);
	if (img) {
		struct gp_image_info info;

		gp_image_get_info(img, &info);
		CHECK(strcmp(info.subformat, "fixed") == 0);
		gp_image_close(img);
	}
	free(p);
}

/*
 * put_entry LOG LEN OFF ELEN SEQ TAIL: a log entry of ELEN bytes (one zero
 * descriptor for the first sector of the file) written into the circular
 * log at OFF, wrapping at its end, with its checksum.
 */
static void
put_entry(uint8_t *log, uint32_t len, uint32_t off, uint32_t elen,
    uint64_t seq, uint32_t tail, const guid_t *g)
{
	uint8_t *e = xcalloc(1, elen);
	uint32_t first = MIN(elen, len - off);

	memcpy(e, "loge", 4);
	put_le32(e + 8, elen);
	put_le32(e + 12, tail);
	put_le64(e + 16, seq);
	put_le32(e + 24, 1);
	memcpy(e + 32, g->b, 16);
	put_le64(e + 48, 8 * MiB);
	put_le64(e + 56, 8 * MiB);
	memcpy(e + 64, "zero", 4);
	put_le64(e + 72, 4096);
	put_le64(e + 80, 4 * MiB);
	put_le64(e + 88, seq);
	put_le32(e + 4, crc32c(0, e, elen));
	memcpy(log + off, e, first);
	memcpy(log, e + first, elen - first);
	free(e);
}

/* The search for the active sequence, on logs made in memory. */
static void
test_log_search(void)
{
	const uint32_t len = 256 * 1024;	/* 64 sectors */
	uint8_t *log = xcalloc(1, len), *buf = xmalloc(len);
	size_t cap = len / VHDX_LOG_SECTOR + 1, n;
	struct log_entry *seqv = xcalloc(cap, sizeof(*seqv));
	struct log_entry *best = xcalloc(cap, sizeof(*best));
	struct vhdx_log lg = { log, len, { { 0 } }, 16 * MiB };
	struct log_entry e;

	guid_parse(&lg.guid, "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE");
	/* An empty log has no active sequence. */
	CHECK_EQ_U(vhdx_log_find_active(&lg, buf, seqv, best, cap), 0);
	/* One entry that wraps: its second sector is the log's first. */
	put_entry(log, len, len - 4096, 8192, 5, len - 4096, &lg.guid);
	CHECK(vhdx_log_entry_check(&lg, len - 4096, &e, buf));
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 1);
	CHECK_EQ_U(best[0].off, len - 4096);
	CHECK_EQ_U(best[0].seq, 5);
	/* A sequence across the end: the next entry follows the wrapped
	 * one, and the newest names the old tail. */
	put_entry(log, len, 4096, 4096, 6, len - 4096, &lg.guid);
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 2);
	CHECK_EQ_U(best[1].seq, 6);
	CHECK_EQ_U(best[1].off, 4096);
	/* Another sequence with a higher number wins. */
	put_entry(log, len, 65536, 4096, 9, 65536, &lg.guid);
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 1);
	CHECK_EQ_U(best[0].seq, 9);
	/* One bit off in it: its checksum fails, the older sequence wins. */
	log[65536 + 100] ^= 1;
	CHECK(!vhdx_log_entry_check(&lg, 65536, &e, buf));
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 2);
	CHECK_EQ_U(best[1].seq, 6);
	/* Another log's GUID, or a write past the file: no entry. */
	memset(log, 0, len);
	put_entry(log, len, 0, 4096, 3, 0, &lg.guid);
	lg.limit = 4 * MiB;		/* the zero run ends past it */
	CHECK_EQ_U(vhdx_log_find_active(&lg, buf, seqv, best, cap), 0);
	lg.limit = 16 * MiB;
	lg.guid.b[0] ^= 1;
	CHECK_EQ_U(vhdx_log_find_active(&lg, buf, seqv, best, cap), 0);
	lg.guid.b[0] ^= 1;
	/* An entry as long as the whole log: found, and the search ends. */
	memset(log, 0, len);
	put_entry(log, len, 0, len, 11, 0, &lg.guid);
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 1);
	CHECK_EQ_U(best[0].len, len);
	/* The same, starting mid-log (wrapping onto itself). */
	memset(log, 0, len);
	put_entry(log, len, 128 * 1024, len, 12, 128 * 1024, &lg.guid);
	n = vhdx_log_find_active(&lg, buf, seqv, best, cap);
	CHECK_EQ_U(n, 1);
	CHECK_EQ_U(best[0].off, 128 * 1024);
	free(log);
	free(buf);
	free(seqv);
	free(best);
}

/* Runs of a sector bitmap, in VHD's bit order and in VHDX's. */
static void
test_bitmap_run(void)
{
	/* Sectors 0-2 present, 3-10 absent, 11-15 present, in each order. */
	const uint8_t msb[2] = { 0xE0, 0x1F }, lsb[2] = { 0x07, 0xF8 };
	bool set;

	CHECK_EQ_U(blk_bitmap_run(msb, 0, 16, true, &set), 3);
	CHECK(set);
	CHECK_EQ_U(blk_bitmap_run(msb, 3, 13, true, &set), 8);
	CHECK(!set);
	CHECK_EQ_U(blk_bitmap_run(msb, 11, 5, true, &set), 5);
	CHECK(set);
	CHECK_EQ_U(blk_bitmap_run(lsb, 1, 15, false, &set), 2);
	CHECK(set);
	CHECK_EQ_U(blk_bitmap_run(lsb, 4, 12, false, &set), 7);
	CHECK(!set);
	/* A run stops at max, and is one sector at least. */
	CHECK_EQ_U(blk_bitmap_run(lsb, 3, 4, false, &set), 4);
	CHECK_EQ_U(blk_bitmap_run(lsb, 2, 1, false, &set), 1);
	CHECK_EQ_U(blk_bitmap_run(msb, 2, 0, true, &set), 1);
}

int
main(void)
{
	char *cmd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	/* 512-byte sectors, 1 MiB blocks: chunk ratio 4096 (4 GiB chunks). */
	test_open_and_write(512, 5ull << 30, 4096);
	/* 4096-byte sectors: chunk ratio 32768 (32 GiB chunks). */
	test_open_and_write(4096, 40ull << 30, 32768);
	test_bitmap_run();
	test_log_search();
	test_log();
	test_log_whole();
	test_refusals();
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		check_failures++;
	free(cmd);
	CHECK_DONE();
}
