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
 *   imgtool touch IMAGE                 open writable and close (replays
 *                                       a VHDX log into the file)
 *   imgtool poke FILE OFFSET u8|u16|u32|u64 VALUE   little-endian store
 *   imgtool crc32c FILE OFF LEN CRCOFF  recompute a CRC-32C field
 *   imgtool crc32 FILE OFF LEN CRCOFF   the same with zlib's CRC-32 (GPT)
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
	return 1;
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
		if (i % 16 == 15 && gp_image_flush(img) < 0)
			return die("flush");
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
	if (gp_image_close(img) < 0)
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
open_vol(const char *path, long part, gp_image **imgp)
{
	struct gp_open_opts oo = { .flags = GP_OPEN_RDWR };
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

static int
ntfs_op(int argc, char **argv)
{
	gp_image *img;
	gp_volume *vol = open_vol(argv[2], strtol(argv[3], NULL, 0), &img);
	int r;

	if (!vol)
		return die(argv[2]);
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
	if (gp_volume_close(vol) < 0 || gp_image_close(img) < 0)
		return die("close");
	return 0;
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

int
main(int argc, char **argv)
{
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
	if (argc == 6 && strcmp(argv[1], "put") == 0)
		return ntfs_op(argc, argv);
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
