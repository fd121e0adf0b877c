/*
 * Unit tests of the partition layer on sectors made here: GPT with both
 * headers (and the backup taking over for a bad primary), MBR with an
 * extended chain, refusals of tables that point outside the disk.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"
#include "check.h"

#define NSEC 8192ull

static char path[] = "/tmp/gpupv-test-part.XXXXXX";
static uint8_t disk[NSEC * 512];

static void
gpt_header(uint64_t lba, uint64_t alt, uint64_t entries_lba, uint32_t acrc)
{
	uint8_t *h = disk + lba * 512;

	memset(h, 0, 512);
	memcpy(h, "EFI PART", 8);
	put_le32(h + 8, 0x00010000);
	put_le32(h + 12, 92);
	put_le64(h + 24, lba);
	put_le64(h + 32, alt);
	put_le64(h + 40, 34);
	put_le64(h + 48, NSEC - 34);
	put_le64(h + 72, entries_lba);
	put_le32(h + 80, 128);
	put_le32(h + 84, 128);
	put_le32(h + 88, acrc);
	put_le32(h + 16, (uint32_t)crc32(0, h, 92));
}

static void
make_gpt(uint64_t p1_last)
{
	uint8_t *e = disk + 2 * 512;
	guid_t g;
	uint32_t acrc;

	memset(disk, 0, sizeof(disk));
	disk[446 + 4] = 0xee;
	put_le32(disk + 446 + 8, 1);
	put_le32(disk + 446 + 12, (uint32_t)(NSEC - 1));
	disk[510] = 0x55;
	disk[511] = 0xaa;
	guid_parse(&g, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
	memcpy(e, g.b, 16);
	e[16] = 1;
	put_le64(e + 32, 2048);
	put_le64(e + 40, p1_last);
	put_le16(e + 56, 'W');
	put_le16(e + 58, 'i');
	put_le16(e + 60, 'n');
	acrc = (uint32_t)crc32(0, e, 128 * 128);
	memcpy(disk + (NSEC - 33) * 512, e, 128 * 128);
	gpt_header(1, NSEC - 1, 2, acrc);
	gpt_header(NSEC - 1, 1, NSEC - 33, acrc);
}

static int
read_table(struct gp_partition_table *pt)
{
	int fd = open(path, O_RDWR | O_TRUNC);
	gp_image *img;
	int r;

	if (fd < 0 || file_pwrite(fd, disk, sizeof(disk), 0) < 0)
		abort();
	close(fd);
	gp_warnings_clear();
	img = gp_image_open(path, NULL);
	if (!img)
		return -1;
	r = gp_partitions_read(img, pt);
	gp_image_close(img);
	return r;
}

int
main(void)
{
	struct gp_partition_table pt;
	const char *const *w;
	int fd = mkstemp(path);

	if (fd < 0)
		return 99;
	close(fd);

	make_gpt(4095);
	CHECK(read_table(&pt) == 0);
	CHECK(pt.scheme == GP_SCHEME_GPT);
	CHECK_EQ_U(pt.count, 1);
	if (pt.count == 1) {
		CHECK_EQ_U(pt.parts[0].index, 1);
		CHECK_EQ_U(pt.parts[0].start, 2048 * 512);
		CHECK_EQ_U(pt.parts[0].size, 2048 * 512);
		CHECK(strcmp(pt.parts[0].type,
		    "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7") == 0);
		CHECK(strcmp(pt.parts[0].type_name, "Microsoft basic data") == 0);
		CHECK(strcmp(pt.parts[0].name, "Win") == 0);
	}
	CHECK(gp_warnings(&w) == 0);
	gp_partitions_free(&pt);

	/* Bad primary header CRC: the backup is used, with a warning. */
	make_gpt(4095);
	disk[512 + 40] ^= 1;
	CHECK(read_table(&pt) == 0);
	CHECK_EQ_U(pt.count, 1);
	CHECK(gp_warnings(&w) == 1 && strstr(w[0], "using the backup"));
	gp_partitions_free(&pt);

	/* Bad primary entry array: same. */
	make_gpt(4095);
	disk[2 * 512 + 100] ^= 1;
	CHECK(read_table(&pt) == 0);
	CHECK(gp_warnings(&w) == 1 && strstr(w[0], "entry array CRC"));
	gp_partitions_free(&pt);

	/* Both bad: an error naming both reasons. */
	make_gpt(4095);
	disk[512 + 40] ^= 1;
	disk[(NSEC - 1) * 512 + 40] ^= 1;
	CHECK(read_table(&pt) < 0);
	CHECK(gp_error_code() == GP_EXIT_CORRUPT);
	CHECK(strstr(gp_error_message(), "primary header bad header CRC"));
	gp_error_clear();

	/* A partition past the end of the disk. */
	make_gpt(NSEC + 10);
	CHECK(read_table(&pt) < 0);
	CHECK(strstr(gp_error_message(), "overruns the disk"));
	gp_error_clear();

	/* MBR: a primary, an extended with two logical partitions. */
	memset(disk, 0, sizeof(disk));
	disk[510] = 0x55;
	disk[511] = 0xaa;
	disk[446 + 4] = 0x07;
	put_le32(disk + 446 + 8, 63);
	put_le32(disk + 446 + 12, 1000);
	disk[462 + 4] = 0x0f;
	put_le32(disk + 462 + 8, 2000);
	put_le32(disk + 462 + 12, 4000);
	/* EBR 1 at 2000: logical at +1, link to EBR 2 at ext+2000. */
	disk[2000 * 512 + 446 + 4] = 0x83;
	put_le32(disk + 2000 * 512 + 446 + 8, 1);
	put_le32(disk + 2000 * 512 + 446 + 12, 500);
	disk[2000 * 512 + 462 + 4] = 0x05;
	put_le32(disk + 2000 * 512 + 462 + 8, 2000);
	put_le32(disk + 2000 * 512 + 462 + 12, 600);
	disk[2000 * 512 + 510] = 0x55;
	disk[2000 * 512 + 511] = 0xaa;
	disk[4000 * 512 + 446 + 4] = 0x07;
	put_le32(disk + 4000 * 512 + 446 + 8, 1);
	put_le32(disk + 4000 * 512 + 446 + 12, 500);
	disk[4000 * 512 + 510] = 0x55;
	disk[4000 * 512 + 511] = 0xaa;
	CHECK(read_table(&pt) == 0);
	CHECK(pt.scheme == GP_SCHEME_MBR);
	CHECK_EQ_U(pt.count, 4);
	if (pt.count == 4) {
		CHECK_EQ_U(pt.parts[0].start, 63 * 512);
		CHECK_EQ_U(pt.parts[2].index, 5);
		CHECK_EQ_U(pt.parts[2].start, 2001 * 512);
		CHECK_EQ_U(pt.parts[3].index, 6);
		CHECK_EQ_U(pt.parts[3].start, 4001 * 512);
		CHECK(strcmp(pt.parts[3].type, "0x07") == 0);
	}
	gp_partitions_free(&pt);

	/* EBR 2 links back to EBR 1: a loop, refused. */
	disk[4000 * 512 + 462 + 4] = 0x05;
	put_le32(disk + 4000 * 512 + 462 + 8, 0 + 0);
	put_le32(disk + 4000 * 512 + 462 + 12, 10);
	/* link 0 means end; make it point at ext + 0 through offset 0? use 1 */
	put_le32(disk + 4000 * 512 + 462 + 8, 0);
	disk[2000 * 512 + 462 + 4] = 0x05;
	put_le32(disk + 2000 * 512 + 462 + 8, 2000);
	/* EBR 2 -> EBR 2 itself. */
	put_le32(disk + 4000 * 512 + 462 + 8, 2000);
	CHECK(read_table(&pt) < 0);
	CHECK(strstr(gp_error_message(), "chain is longer"));
	gp_error_clear();

	unlink(path);
	CHECK_DONE();
}
