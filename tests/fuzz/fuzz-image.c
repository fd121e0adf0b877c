/*
 * fuzz-image.c - libFuzzer harness for the image drivers and the
 * partition reader: the input is an image file (VHDX, VHD, raw), opened
 * as a dry run through the forced format FUZZ_FORMAT (or probed), its
 * partitions read, parts of the virtual disk read and written.  A VHDX
 * log in the input is replayed on open.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpupv-prep.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT NULL
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gp_open_opts o = { .flags = GP_OPEN_DRY_RUN,
	    .format = FUZZ_FORMAT };
	struct gp_partition_table pt;
	struct gp_image_info info;
	char path[64];
	uint8_t buf[8192];
	gp_image *img;
	int fd = memfd_create("fuzz-image", 0);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	img = gp_image_open(path, &o);
	if (img) {
		gp_image_get_info(img, &info);
		if (gp_partitions_read(img, &pt) == 0)
			gp_partitions_free(&pt);
		if (info.virtual_size >= sizeof(buf)) {
			uint64_t last = info.virtual_size - sizeof(buf);

			gp_image_read(img, buf, sizeof(buf), 0);
			gp_image_read(img, buf, sizeof(buf), last / 2 / 512 * 512);
			gp_image_read(img, buf, sizeof(buf), last);
			/* Writes: sub-sector, and across a block boundary. */
			memset(buf, 0xA5, sizeof(buf));
			gp_image_write(img, buf, 700, 3);
			gp_image_write(img, buf, sizeof(buf), last / 2);
			gp_image_read(img, buf, sizeof(buf), last / 2);
			gp_image_commit(img);
		}
		gp_image_close(img);
	}
	gp_error_clear();
	gp_warnings_clear();
	close(fd);
	return 0;
}
