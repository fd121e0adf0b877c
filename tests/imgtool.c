/*
 * imgtool.c - test helper linking libgpupv (and libvhdi as the independent
 * reader).  Not installed.
 *
 *   imgtool randwrite IMAGE REF COUNT SEED [MAXLEN]
 *       random writes of random length and alignment (sub-sector,
 *       block-crossing, all-zero) into IMAGE through our writer and into
 *       the raw file REF with pwrite, for comparison with qemu-img compare
 *   imgtool dump IMAGE OUT [PARENT]     our reader: virtual disk -> raw
 *   imgtool vhdi-dump IMAGE OUT [PARENT] libvhdi's reader: same
 *   imgtool mkdir IMAGE PART PATH       create directories on an NTFS volume
 *   imgtool put IMAGE PART PATH HOSTFILE  write a file onto it
 *   imgtool mkhive PATH                 write an empty registry hive
 *   imgtool hold IMAGE SECONDS          keep IMAGE open writable (locked)
 *   imgtool touch IMAGE                 open writable and close (replays
 *                                       a VHDX log into the file)
 *   imgtool mkchild PARENT.vhdx PARENT.raw CHILD.avhdx EXPECTED.raw
 *       a differencing VHDX child of PARENT (built byte by byte: parent
 *       locator, a PARTIALLY_PRESENT block with its sector bitmap, a
 *       FULLY_PRESENT block), and the raw disk it should read as
 *   imgtool mkchild-vhd PARENT.vhd PARENT.raw CHILD.vhd EXPECTED.raw
 *       the same for a differencing VHD (W2ru locator, per-block bitmaps)
 *   imgtool vhd-set-id FILE HEX32       set a dynamic VHD's unique id (both
 *                                       footer copies, checksums fixed)
 *   imgtool poke FILE OFFSET u8|u16|u32|u64 VALUE   little-endian store
 *   imgtool regf FILE    "SEQ1 SEQ2 clean|dirty sum-ok|sum-bad" of a hive
 *   imgtool crc32c FILE OFF LEN CRCOFF  recompute a CRC-32C field
 *   imgtool crc32 FILE OFF LEN CRCOFF   the same with zlib's CRC-32 (GPT)
 *   imgtool mkvhdx RAW OUT.vhdx SECTOR  a dynamic VHDX of RAW's contents
 *                                       with SECTOR-byte logical sectors
 *                                       (qemu-img makes only 512)
 *   imgtool errscope IMAGE PART         the error paths that tolerate a
 *                                       failure, on a real volume: none
 *                                       hides, replaces or clears another
 *                                       error (prints one line per check)
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <libvhdi.h>
#include <zlib.h>

#include "gpupv-prep.h"
#include "util.h"

static int
die(const char *what)
{
	const char *m = gp_error_message();

	fprintf(stderr, "imgtool: %s: %s\n", what, *m ? m : strerror(errno));
	/* The library's error class, so tests can check refusals. */
	return *m ? gp_error_code() : 1;
}

/* xorshift64*: reproducible from the seed. */
static uint64_t rng;

static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static int
randwrite(int argc, char **argv)
{
	struct gp_open_opts oo = { .flags = GP_OPEN_RDWR };
	struct gp_image_info info;
	gp_image *img;
	uint64_t maxlen = argc > 6 ? strtoull(argv[6], NULL, 0) : 3 << 20;
	long count = strtol(argv[4], NULL, 0), i;
	uint8_t *buf = malloc(maxlen + 1);
	int ref;

	rng = strtoull(argv[5], NULL, 0) * 0x9E3779B97F4A7C15ull + 1;
	img = gp_image_open(argv[2], &oo);
	if (!img || !buf)
		return die(argv[2]);
	gp_image_get_info(img, &info);
	ref = open(argv[3], O_RDWR);
	if (ref < 0)
		return die(argv[3]);
	for (i = 0; i < count; i++) {
		uint64_t kind = rnd() % 10, off, len, j;
		uint64_t bs = info.block_size ? info.block_size : 1 << 20;

		if (kind < 3)
			len = 1 + rnd() % 700;		/* sub-sector and small */
		else if (kind < 6)
			len = 1 + rnd() % 65536;
		else
			len = 1 + rnd() % maxlen;
		if (len > maxlen)
			len = maxlen;
		if (len > info.virtual_size)
			len = info.virtual_size;
		off = rnd() % (info.virtual_size - len + 1);
		if (kind == 9 && info.virtual_size > bs) {
			/* Straddle a block boundary. */
			uint64_t b = 1 + rnd() % (info.virtual_size / bs);

			if (b * bs < info.virtual_size && len > 2 &&
			    b * bs >= len / 2 &&
			    b * bs - len / 2 + len <= info.virtual_size)
				off = b * bs - len / 2;
		}
		if (rnd() % 20 == 0)
			memset(buf, 0, len);
		else
			for (j = 0; j < len; j++)
				buf[j] = (uint8_t)(rnd() >> 56);
		if (gp_image_write(img, buf, len, off) < 0)
			return die("write");
		if (pwrite(ref, buf, len, (off_t)off) != (ssize_t)len)
			return die("ref write");
		if (i % 16 == 15 && gp_image_commit(img) < 0)
			return die("commit");
	}
	/* Read everything back through our reader before closing. */
	{
		uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);
		uint64_t off;

		for (off = 0; off < info.virtual_size; off += 1 << 20) {
			size_t n = info.virtual_size - off < (1 << 20) ?
			    (size_t)(info.virtual_size - off) : 1 << 20;

			if (gp_image_read(img, a, n, off) < 0)
				return die("read back");
			if (pread(ref, b, n, (off_t)off) != (ssize_t)n)
				return die("ref read");
			if (memcmp(a, b, n) != 0) {
				fprintf(stderr, "imgtool: read-back differs "
				    "in the MiB at %llu\n",
				    (unsigned long long)off);
				return 1;
			}
		}
		free(a);
		free(b);
	}
	if (gp_image_commit(img) < 0 || gp_image_close(img) < 0)
		return die("close");
	close(ref);
	free(buf);
	return 0;
}

static int
write_out(int fd, const uint8_t *buf, size_t n, uint64_t off)
{
	size_t i;

	/* Keep the output sparse: skip all-zero 4 KiB pieces. */
	for (i = 0; i < n; i += 4096) {
		size_t m = n - i < 4096 ? n - i : 4096, k;

		for (k = 0; k < m && !buf[i + k]; k++)
			;
		if (k == m)
			continue;
		if (pwrite(fd, buf + i, m, (off_t)(off + i)) != (ssize_t)m)
			return -1;
	}
	return 0;
}

static int
dump(int argc, char **argv)
{
	struct gp_open_opts oo = { .parent = argc > 4 ? argv[4] : NULL };
	struct gp_image_info info;
	gp_image *img = gp_image_open(argv[2], &oo);
	uint8_t *buf = malloc(1 << 20);
	uint64_t off;
	int fd;

	if (!img)
		return die(argv[2]);
	gp_image_get_info(img, &info);
	fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)info.virtual_size) < 0)
		return die(argv[3]);
	for (off = 0; off < info.virtual_size; off += 1 << 20) {
		size_t n = info.virtual_size - off < (1 << 20) ?
		    (size_t)(info.virtual_size - off) : 1 << 20;

		if (gp_image_read(img, buf, n, off) < 0)
			return die("read");
		if (write_out(fd, buf, n, off) < 0)
			return die(argv[3]);
	}
	close(fd);
	gp_image_close(img);
	free(buf);
	return 0;
}

static int
vhdi_dump(int argc, char **argv)
{
	libvhdi_file_t *f = NULL, *p = NULL;
	libvhdi_error_t *err = NULL;
	size64_t size;
	uint8_t *buf = malloc(1 << 20);
	uint64_t off;
	int fd;

	if (libvhdi_file_initialize(&f, &err) != 1 ||
	    libvhdi_file_open(f, argv[2], LIBVHDI_OPEN_READ, &err) != 1)
		goto fail;
	if (argc > 4) {
		if (libvhdi_file_initialize(&p, &err) != 1 ||
		    libvhdi_file_open(p, argv[4], LIBVHDI_OPEN_READ, &err) != 1 ||
		    libvhdi_file_set_parent_file(f, p, &err) != 1)
			goto fail;
	}
	if (libvhdi_file_get_media_size(f, &size, &err) != 1)
		goto fail;
	fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return die(argv[3]);
	for (off = 0; off < size; off += 1 << 20) {
		size_t n = size - off < (1 << 20) ? (size_t)(size - off) : 1 << 20;

		if (libvhdi_file_read_buffer_at_offset(f, buf, n, (off64_t)off,
		    &err) != (ssize_t)n)
			goto fail;
		if (write_out(fd, buf, n, off) < 0)
			return die(argv[3]);
	}
	close(fd);
	libvhdi_file_close(f, NULL);
	libvhdi_file_free(&f, NULL);
	if (p) {
		libvhdi_file_close(p, NULL);
		libvhdi_file_free(&p, NULL);
	}
	free(buf);
	return 0;
fail:
	{
		char msg[1024];

		libvhdi_error_sprint(err, msg, sizeof(msg));
		fprintf(stderr, "imgtool: libvhdi: %s: %s\n", argv[2], msg);
	}
	return 1;
}

/* Open the NTFS volume of partition index part (0: whole disk). */
static gp_volume *
open_vol_flags(const char *path, long part, gp_image **imgp, unsigned flags)
{
	struct gp_open_opts oo = { .flags = flags };
	struct gp_partition_table pt;
	gp_volume *vol = NULL;
	gp_image *img = gp_image_open(path, &oo);
	unsigned i;

	*imgp = img;
	if (!img || gp_partitions_read(img, &pt) < 0)
		return NULL;
	for (i = 0; i < pt.count; i++)
		if (pt.parts[i].index == (unsigned)part)
			vol = gp_volume_open(img, pt.parts[i].start,
			    pt.parts[i].size, true);
	if (i == pt.count && !vol && !*gp_error_message())
		fprintf(stderr, "imgtool: no partition %ld\n", part);
	gp_partitions_free(&pt);
	return vol;
}

static gp_volume *
open_vol(const char *path, long part, gp_image **imgp)
{
	return open_vol_flags(path, part, imgp, GP_OPEN_RDWR);
}

static int
ntfs_op(int argc, char **argv)
{
	gp_image *img;
	gp_volume *vol = open_vol(argv[2], strtol(argv[3], NULL, 0), &img);
	int r;

	if (!vol) {
		r = die(argv[2]);
		gp_image_close(img);
		return r;
	}
	if (strcmp(argv[1], "mkdir") == 0) {
		r = gp_volume_mkdir_p(vol, argv[4]);
	} else {
		FILE *f = fopen(argv[5], "rb");
		struct stat st;
		uint8_t *data;

		if (!f || fstat(fileno(f), &st) < 0)
			return die(argv[5]);
		data = malloc((size_t)st.st_size + 1);
		if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
			return die(argv[5]);
		fclose(f);
		r = gp_volume_write_file(vol, argv[4], data, (size_t)st.st_size);
		free(data);
	}
	if (r < 0)
		return die(argv[4]);
	if (gp_volume_close(vol) < 0 || gp_image_commit(img) < 0 ||
	    gp_image_close(img) < 0)
		return die("close");
	return 0;
}

/* An error a caller recorded before it called fn: still the one told. */
#define KEEPS(what, call) do {						\
	gp_error_clear();						\
	error_set(EPERM, "the caller's own cause");			\
	(void)(call);							\
	if (strcmp(gp_error_message(), "the caller's own cause") != 0) {	\
		fprintf(stderr, "imgtool: %s replaced the caller's error "	\
		    "with: %s\n", what, gp_error_message());		\
		bad++;							\
	}								\
	printf("keeps: %s\n", what);					\
} while (0)

/* A failure fn tolerates, then a real one: the real one is told. */
#define TOLERATES(what, call) do {					\
	gp_error_clear();						\
	(void)(call);							\
	if (*gp_error_message()) {					\
		fprintf(stderr, "imgtool: %s left an error behind: %s\n",	\
		    what, gp_error_message());				\
		bad++;							\
	}								\
	if (gp_volume_mkdir_p(vol, "errscope/file/sub") == 0 ||		\
	    (!strstr(gp_error_message(), "not a directory") &&		\
	    !strstr(gp_error_message(), "not a folder"))) {		\
		fprintf(stderr, "imgtool: after %s the real failure reads: "	\
		    "%s\n", what, gp_error_message());			\
		bad++;							\
	}								\
	printf("then the real one: %s\n", what);			\
} while (0)

static int
errscope(char **argv)
{
	gp_image *img;
	/* A dry run: nothing reaches the file, whatever the volume does. */
	gp_volume *vol = open_vol_flags(argv[2], strtol(argv[3], NULL, 0), &img,
	    GP_OPEN_DRY_RUN);
	struct gp_stat st;
	int bad = 0, r;

	if (!vol)
		return die(argv[2]);
	if (gp_volume_mkdir_p(vol, "errscope") < 0 ||
	    gp_volume_write_file(vol, "errscope/file", "x", 1) < 0)
		return die("errscope");
	KEEPS("gp_volume_state", gp_volume_state(vol));
	KEEPS("gp_volume_short_names", gp_volume_short_names(vol,
	    "errscope", -1));
	KEEPS("gp_volume_stored_free", gp_volume_stored_free(vol));
	KEEPS("gp_volume_exists (absent)", gp_volume_exists(vol,
	    "errscope/none", &st));
	KEEPS("gp_volume_remove_any (absent)", gp_volume_remove_any(vol,
	    "errscope/none", 0));
	TOLERATES("gp_volume_exists (absent)", gp_volume_exists(vol,
	    "errscope/none", &st));
	TOLERATES("gp_volume_exists (under a file)", gp_volume_exists(vol,
	    "errscope/file/x", &st));
	TOLERATES("gp_volume_remove_any (absent)", gp_volume_remove_any(vol,
	    "errscope/none", 0));
	TOLERATES("gp_volume_state", gp_volume_state(vol));
	TOLERATES("gp_volume_short_names", gp_volume_short_names(vol,
	    "errscope/none", -1));
	/* What the tolerating calls answer. */
	gp_error_clear();
	r = gp_volume_exists(vol, "errscope/none", &st);
	if (r != 0 || errno != ENOENT) {
		fprintf(stderr, "imgtool: exists of an absent path: %d\n", r);
		bad++;
	}
	if (gp_volume_exists(vol, "errscope/file", &st) != 1 || st.is_dir) {
		fprintf(stderr, "imgtool: exists of a file\n");
		bad++;
	}
	if (gp_volume_remove_any(vol, "errscope/none", 0) != 1 ||
	    gp_volume_remove_any(vol, "errscope", ENOTEMPTY) != 2 ||
	    gp_volume_remove_any(vol, "errscope/file", 0) != 0 ||
	    gp_volume_remove_any(vol, "errscope", ENOTEMPTY) != 0) {
		fprintf(stderr, "imgtool: remove_any answers\n");
		bad++;
	}
	gp_volume_close(vol);
	gp_image_close(img);
	return bad ? 1 : 0;
}

#define MB (1024ull * 1024)

static void
put_guid_text(uint8_t *p, const char *text)
{
	guid_t g;

	if (guid_parse(&g, text) < 0)
		abort();
	memcpy(p, g.b, 16);
}

static size_t
put_utf16(uint8_t *p, const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		put_le16(p + 2 * i, (uint8_t)s[i]);
	return 2 * i;
}

/* The parent's DataWriteGuid: from its current (valid, newest) header. */
static int
parent_guid(const char *path, char out[39])
{
	uint8_t h[2][4096];
	int fd = open(path, O_RDONLY), i, best = -1;
	guid_t g;

	if (fd < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		uint8_t t[4096];

		if (pread(fd, h[i], 4096, 65536 * (i + 1)) != 4096)
			return -1;
		memcpy(t, h[i], 4096);
		put_le32(t + 4, 0);
		if (memcmp(h[i], "head", 4) || crc32c(0, t, 4096) != get_le32(h[i] + 4))
			continue;
		if (best < 0 || get_le64(h[i] + 8) > get_le64(h[best] + 8))
			best = i;
	}
	close(fd);
	if (best < 0)
		return -1;
	guid_from_bytes(&g, h[best] + 32);
	guid_format(&g, out);
	return 0;
}

/* Write the child (argv[4]) and the disk it should read as (argv[5]). */
static int
save_pair(char **argv, const uint8_t *child, uint64_t clen,
    const uint8_t *expect, uint64_t elen)
{
	int i, fd;

	for (i = 0; i < 2; i++) {
		fd = open(argv[4 + i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || file_pwrite(fd, i ? expect : child,
		    i ? elen : clen, 0) < 0 || close(fd) < 0) {
			die(argv[4 + i]);
			return -1;
		}
	}
	return 0;
}

static int
mkvhdx(char **argv)
{
	struct gp_create_opts co = { .format = "vhdx",
	    .logical_sector_size = (uint32_t)strtoul(argv[4], NULL, 0),
	    .physical_sector_size = 4096 };
	struct gp_open_opts oo = { .flags = GP_OPEN_RDWR, .format = "vhdx" };
	static uint8_t buf[1 << 20];
	struct stat st;
	uint64_t off;
	gp_image *img;
	int fd = open(argv[2], O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return die(argv[2]);
	co.virtual_size = (uint64_t)st.st_size;
	if (gp_image_create(argv[3], &co) < 0 ||
	    !(img = gp_image_open(argv[3], &oo)))
		return die(argv[3]);
	for (off = 0; off < (uint64_t)st.st_size; off += sizeof(buf)) {
		size_t n = (uint64_t)st.st_size - off < sizeof(buf) ?
		    (size_t)((uint64_t)st.st_size - off) : sizeof(buf);
		size_t k;

		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
			return die(argv[2]);
		for (k = 0; k < n && !buf[k]; k++)
			;
		if (k < n && gp_image_write(img, buf, n, off) < 0)
			return die("write");
	}
	close(fd);
	if (gp_image_commit(img) < 0 || gp_image_close(img) < 0)
		return die("close");
	return 0;
}

static int
mkchild(char **argv)
{
	const uint32_t bs = 2 * MB;
	uint8_t *f, *m, *exp, rt[65536] = { 0 };
	uint64_t vsize, fsize = 9 * MB, i;
	char linkage[39];
	struct stat st;
	int fd, n = 0;
	uint32_t item = 65536, loc_len;
	uint8_t loc[1024] = { 0 };
	size_t lo;
	const char *keys[4][2];
	char *rel = xasprintf(".\\%s", path_basename(argv[2]));
	char *abs_ = xasprintf("C:\\VMs\\%s", path_basename(argv[2]));

	if (parent_guid(argv[2], linkage) < 0)
		return die("parent header");
	/* Windows writes the linkage in lower case; libvhdi reads only that. */
	for (i = 0; linkage[i]; i++)
		if (linkage[i] >= 'A' && linkage[i] <= 'F')
			linkage[i] = (char)(linkage[i] - 'A' + 'a');
	if (stat(argv[3], &st) < 0)
		return die(argv[3]);
	vsize = (uint64_t)st.st_size;
	if (vsize < 3 * bs || vsize > 4ull << 30)
		return die("parent size must be 6 MiB .. 4 GiB");
	f = xcalloc(1, fsize);
	m = f + 1 * MB;
	memcpy(f, "vhdxfile", 8);
	for (i = 0; i < 2; i++) {
		uint8_t *h = f + 65536 * (i + 1);

		memcpy(h, "head", 4);
		put_le64(h + 8, i + 1);
		put_guid_text(h + 16, "{0A0A0A0A-0000-4000-8000-000000000001}");
		put_guid_text(h + 32, "{0B0B0B0B-0000-4000-8000-000000000002}");
		put_le16(h + 66, 1);
		put_le32(h + 68, (uint32_t)MB);
		put_le64(h + 72, 3 * MB);
		put_le32(h + 4, crc32c(0, h, 4096));
	}
	memcpy(rt, "regi", 4);
	put_le32(rt + 8, 2);
	put_guid_text(rt + 16, "2DC27766-F623-4200-9D64-115E9BFD4A08");
	put_le64(rt + 32, 2 * MB);
	put_le32(rt + 40, (uint32_t)MB);
	put_le32(rt + 44, 1);
	put_guid_text(rt + 48, "8B7CA206-4790-4B9A-B8FE-575F050F886E");
	put_le64(rt + 64, 1 * MB);
	put_le32(rt + 72, (uint32_t)MB);
	put_le32(rt + 76, 1);
	put_le32(rt + 4, crc32c(0, rt, sizeof(rt)));
	memcpy(f + 192 * 1024, rt, sizeof(rt));
	memcpy(f + 256 * 1024, rt, sizeof(rt));

	/* Parent locator (MS-VHDX 2.6.2.6): header, entries, strings. */
	keys[0][0] = "parent_linkage"; keys[0][1] = linkage;
	keys[1][0] = "relative_path"; keys[1][1] = rel;
	keys[2][0] = "absolute_win32_path"; keys[2][1] = abs_;
	keys[3][0] = "volume_path";
	keys[3][1] = "\\\\?\\Volume{11111111-2222-3333-4444-555555555555}\\x.vhdx";
	put_guid_text(loc, "B04AEFB7-D19E-4A81-B789-25B8E9445913");
	put_le16(loc + 18, 4);
	lo = 20 + 4 * 12;
	for (i = 0; i < 4; i++) {
		uint8_t *e = loc + 20 + 12 * i;
		size_t kl, vl;

		put_le32(e, (uint32_t)lo);
		kl = put_utf16(loc + lo, keys[i][0]);
		lo += kl;
		put_le32(e + 4, (uint32_t)lo);
		vl = put_utf16(loc + lo, keys[i][1]);
		lo += vl;
		put_le16(e + 8, (uint16_t)kl);
		put_le16(e + 10, (uint16_t)vl);
	}
	loc_len = (uint32_t)lo;

	memcpy(m, "metadata", 8);
#define ITEM(guid, len, flags) do {					\
	uint8_t *e = m + 32 + 32 * n++;					\
	put_guid_text(e, guid);						\
	put_le32(e + 16, item);						\
	put_le32(e + 20, len);						\
	put_le32(e + 24, flags);					\
	item += 1024;							\
} while (0)
	ITEM("CAA16737-FA36-4D43-B3B6-33F0AA44E76B", 8, 4);
	put_le32(m + item - 1024, bs);
	put_le32(m + item - 1020, 2);		/* HasParent */
	ITEM("2FA54224-CD1B-4876-B211-5DBED83BF4B8", 8, 6);
	put_le64(m + item - 1024, vsize);
	ITEM("BECA12AB-B2E6-4523-93EF-C309E000C746", 16, 6);
	put_guid_text(m + item - 1024, "{0C0C0C0C-0000-4000-8000-000000000003}");
	ITEM("8141BF1D-A96F-4709-BA47-F233A8FAAB5F", 4, 6);
	put_le32(m + item - 1024, 512);
	ITEM("CDA348C7-445D-4471-9CC9-E9885251C556", 4, 6);
	put_le32(m + item - 1024, 512);
	ITEM("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C", loc_len, 4);
	memcpy(m + item - 1024, loc, loc_len);
#undef ITEM
	put_le16(m + 10, (uint16_t)n);

	/* BAT (chunk ratio 2048 for 2 MiB blocks, 512-byte sectors):
	 * block 0 partially present at 4 MiB, block 1 fully present at
	 * 6 MiB, the chunk's sector bitmap at 8 MiB (entry 2048). */
	put_le64(f + 2 * MB + 0, (4 * MB) | 7);
	put_le64(f + 2 * MB + 8, (6 * MB) | 6);
	put_le64(f + 2 * MB + 8 * 2048, (8 * MB) | 6);
	memset(f + 4 * MB, 0xee, bs);	/* sectors not present: never read */
	rng = 42;
	exp = xmalloc(vsize);
	fd = open(argv[3], O_RDONLY);
	if (fd < 0 || file_pread(fd, exp, vsize, 0) < 0)
		return die(argv[3]);
	close(fd);
	for (i = 0; i < bs / 512; i++) {
		bool here = i == 1 || i == 2 || (i >= 100 && i < 200) ||
		    i == bs / 512 - 1 || (i >= 1000 && i < 1003);
		size_t k;

		if (!here)
			continue;
		f[8 * MB + i / 8] |= (uint8_t)(1 << (i % 8));
		for (k = 0; k < 512; k++)
			f[4 * MB + i * 512 + k] = exp[i * 512 + k] =
			    (uint8_t)(rnd() >> 56);
	}
	for (i = 0; i < bs; i++)
		f[6 * MB + i] = exp[bs + i] = (uint8_t)(rnd() >> 56);

	if (save_pair(argv, f, fsize, exp, vsize) < 0)
		return 1;
	free(f);
	free(exp);
	free(rel);
	free(abs_);
	return 0;
}

static uint32_t
vhd_sum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		sum += p[i];
	return ~sum;
}

static int
mkchild_vhd(char **argv)
{
	const uint32_t bs = 2 * MB, bm = 512;
	uint8_t pfoot[512], foot[512], *f, *exp, *dh;
	uint64_t vsize, nblk, batsz, loc, blk0, blk1, end, i;
	char *rel = xasprintf(".\\%s", path_basename(argv[2]));
	int fd = open(argv[2], O_RDONLY);
	struct stat st;
	size_t k, rl;

	if (fd < 0 || fstat(fd, &st) < 0 ||
	    pread(fd, pfoot, 512, st.st_size - 512) != 512)
		return die(argv[2]);
	close(fd);
	vsize = get_be64(pfoot + 48);
	nblk = (vsize + bs - 1) / bs;
	batsz = (nblk * 4 + 511) / 512 * 512;
	loc = 1536 + batsz;
	blk0 = loc + 512;
	blk1 = blk0 + bm + bs;
	end = blk1 + bm + bs;
	f = xcalloc(1, end + 512);
	exp = xmalloc(vsize);
	fd = open(argv[3], O_RDONLY);
	if (fd < 0 || file_pread(fd, exp, vsize, 0) < 0)
		return die(argv[3]);
	close(fd);

	memcpy(foot, pfoot, 512);
	put_be32(foot + 60, 4);			/* differencing */
	put_be64(foot + 16, 512);		/* dynamic header offset */
	memset(foot + 68, 0x5c, 16);		/* our own unique id */
	put_be32(foot + 64, 0);
	put_be32(foot + 64, vhd_sum(foot, 512));

	dh = f + 512;
	memcpy(dh, "cxsparse", 8);
	put_be64(dh + 8, UINT64_MAX);
	put_be64(dh + 16, 1536);
	put_be32(dh + 24, 0x00010000);
	put_be32(dh + 28, (uint32_t)nblk);
	put_be32(dh + 32, bs);
	memcpy(dh + 40, pfoot + 68, 16);	/* parent's unique id */
	for (k = 0; argv[2][k] && k < 255; k++)	/* parent name, UTF-16BE */
		dh[64 + 2 * k + 1] = (uint8_t)path_basename(argv[2])[k];
	rl = put_utf16(f + loc, rel);
	memcpy(dh + 576, "W2ru", 4);
	put_be32(dh + 576 + 4, 512);
	put_be32(dh + 576 + 8, (uint32_t)rl);
	put_be64(dh + 576 + 16, loc);
	put_be32(dh + 36, vhd_sum(dh, 1024));

	for (i = 0; i < nblk; i++)
		put_be32(f + 1536 + 4 * i, UINT32_MAX);
	put_be32(f + 1536, (uint32_t)(blk0 / 512));
	put_be32(f + 1536 + 4, (uint32_t)(blk1 / 512));
	memset(f + blk0 + bm, 0xee, bs);	/* absent sectors: never read */
	rng = 43;
	for (i = 0; i < bs / 512; i++) {
		bool here = i == 0 || i == 7 || (i >= 300 && i < 333) ||
		    i == bs / 512 - 1;

		if (!here)
			continue;
		f[blk0 + i / 8] |= (uint8_t)(0x80 >> (i % 8));
		for (k = 0; k < 512; k++)
			f[blk0 + bm + i * 512 + k] = exp[i * 512 + k] =
			    (uint8_t)(rnd() >> 56);
	}
	memset(f + blk1, 0xff, bm);
	for (i = 0; i < bs; i++)
		f[blk1 + bm + i] = exp[bs + i] = (uint8_t)(rnd() >> 56);
	memcpy(f, foot, 512);
	memcpy(f + end, foot, 512);

	if (save_pair(argv, f, end + 512, exp, vsize) < 0)
		return 1;
	free(f);
	free(exp);
	free(rel);
	return 0;
}

static int
vhd_set_id(char **argv)
{
	int fd = open(argv[2], O_RDWR), c;
	struct stat st;
	uint8_t foot[512];
	off_t at[2];
	size_t i;

	if (fd < 0 || fstat(fd, &st) < 0 || strlen(argv[3]) != 32)
		return die(argv[2]);
	at[0] = 0;
	at[1] = st.st_size - 512;
	for (c = 0; c < 2; c++) {
		if (pread(fd, foot, 512, at[c]) != 512)
			return die(argv[2]);
		for (i = 0; i < 16; i++) {
			unsigned v;

			sscanf(argv[3] + 2 * i, "%2x", &v);
			foot[68 + i] = (uint8_t)v;
		}
		put_be32(foot + 64, 0);
		put_be32(foot + 64, vhd_sum(foot, 512));
		if (pwrite(fd, foot, 512, at[c]) != 512)
			return die(argv[2]);
	}
	return close(fd);
}

static int
poke(char **argv)
{
	uint64_t off = strtoull(argv[3], NULL, 0), v = strtoull(argv[5], NULL, 0);
	int w = atoi(argv[4] + 1) / 8, fd = open(argv[2], O_RDWR);
	uint8_t b[8];

	if (fd < 0 || w < 1 || w > 8)
		return die(argv[2]);
	put_le64(b, v);
	if (pwrite(fd, b, (size_t)w, (off_t)off) != w)
		return die(argv[2]);
	return close(fd);
}

static int
fixcrc(char **argv)
{
	uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
	uint64_t at = strtoull(argv[5], NULL, 0);
	uint8_t *b = malloc(len);
	int fd = open(argv[2], O_RDWR);

	uint8_t sum[4];
	bool inside = at >= off && at + 4 <= off + len;

	if (fd < 0 || !b || pread(fd, b, len, (off_t)off) != (ssize_t)len)
		return die(argv[2]);
	/* A CRC field inside the range counts as zero (VHDX, GPT header). */
	if (inside)
		put_le32(b + (at - off), 0);
	put_le32(sum, strcmp(argv[1], "crc32") == 0 ?
	    (uint32_t)crc32(0, b, (uInt)len) : crc32c(0, b, len));
	if (pwrite(fd, sum, 4, (off_t)at) != 4)
		return die(argv[2]);
	free(b);
	return close(fd);
}

/* The base block as the regf specification defines it (XOR-32 of the
 * first 508 bytes), computed here independently of src/hive-log.c. */
static int
regf_hdr(const char *path)
{
	uint8_t b[512];
	uint32_t x = 0;
	int fd = open(path, O_RDONLY), i;

	if (fd < 0 || pread(fd, b, 512, 0) != 512 || memcmp(b, "regf", 4))
		return die(path);
	close(fd);
	for (i = 0; i < 508; i += 4)
		x ^= get_le32(b + i);
	if (x == 0)
		x = 1;
	else if (x == 0xFFFFFFFFu)
		x = 0xFFFFFFFEu;
	printf("%u %u %s %s\n", get_le32(b + 4), get_le32(b + 8),
	    get_le32(b + 4) == get_le32(b + 8) ? "clean" : "dirty",
	    x == get_le32(b + 508) ? "sum-ok" : "sum-bad");
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "regf") == 0)
		return regf_hdr(argv[2]);
	if (argc == 5 && strcmp(argv[1], "mkvhdx") == 0)
		return mkvhdx(argv);
	if (argc == 6 && strcmp(argv[1], "mkchild") == 0)
		return mkchild(argv);
	if (argc == 4 && strcmp(argv[1], "vhd-set-id") == 0)
		return vhd_set_id(argv);
	if (argc == 6 && strcmp(argv[1], "mkchild-vhd") == 0)
		return mkchild_vhd(argv);
	if (argc == 6 && strcmp(argv[1], "poke") == 0)
		return poke(argv);
	if (argc == 6 && (strcmp(argv[1], "crc32c") == 0 ||
	    strcmp(argv[1], "crc32") == 0))
		return fixcrc(argv);
	if (argc >= 6 && strcmp(argv[1], "randwrite") == 0)
		return randwrite(argc, argv);
	if (argc >= 4 && strcmp(argv[1], "dump") == 0)
		return dump(argc, argv);
	if (argc >= 4 && strcmp(argv[1], "vhdi-dump") == 0)
		return vhdi_dump(argc, argv);
	if (argc == 5 && strcmp(argv[1], "mkdir") == 0)
		return ntfs_op(argc, argv);
	if (argc == 4 && strcmp(argv[1], "errscope") == 0)
		return errscope(argv);
	if (argc == 6 && strcmp(argv[1], "put") == 0)
		return ntfs_op(argc, argv);
	if (argc == 4 && strcmp(argv[1], "hold") == 0) {
		/* Keep the image open for writing for SECONDS. */
		struct gp_open_opts oo = { .flags = GP_OPEN_RDWR };
		gp_image *img = gp_image_open(argv[2], &oo);

		if (!img)
			return die(argv[2]);
		printf("held\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[3]));
		return gp_image_close(img) < 0 ? die(argv[2]) : 0;
	}
	if (argc == 3 && strcmp(argv[1], "touch") == 0) {
		struct gp_open_opts oo = { .flags = GP_OPEN_RDWR };
		gp_image *img = gp_image_open(argv[2], &oo);

		return !img || gp_image_close(img) < 0 ? die(argv[2]) : 0;
	}
	if (argc == 3 && strcmp(argv[1], "mkhive") == 0)
		return gp_hive_create_empty(argv[2]) < 0 ? die(argv[2]) : 0;
	fprintf(stderr, "usage: see the comment at the top of imgtool.c\n");
	return 2;
}
