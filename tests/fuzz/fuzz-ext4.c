/*
 * fuzz-ext4.c - libFuzzer harness for a Linux guest's ext2/3/4 metadata:
 * the input is a whole file system (a raw image with no partition table).
 * The harness does what inspect and stage do with it, as a dry run:
 * finding the Linux root (os-release, kernels, first-boot status), then
 * on a writable open the folders stage writes in listed, the manifest
 * read, folders made, a file written, a link made, times set, a file
 * replaced and files removed.  In fuzzing builds (tests/fuzz/run.sh)
 * libext2fs ignores checksum errors, so that mutations reach what the
 * checksums cover.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpupv-prep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
walk(void *ctx, const char *name, const struct gp_stat *st)
{
	(void)name;
	(void)st;
	return ++*(int *)ctx > 4096;
}

static int
run_cb(void *ctx, uint64_t off, uint64_t len)
{
	(void)off;
	*(uint64_t *)ctx += len;
	return 0;
}

static int
fill(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "/", "/etc", "/usr/lib/wsl",
	    "/usr/lib/wsl/drivers", "/usr/lib/wsl/lib", "/lib/modules",
	    "/etc/systemd/system" };
	struct gp_open_opts o = { .flags = GP_OPEN_DRY_RUN, .format = "raw" };
	struct gp_file_meta m = { .mtime_ns = 1000000000, .mode = 0444 };
	struct gp_partition_table pt = { 0 };
	struct gp_linux lx;
	struct gp_stat st;
	uint64_t unit, free_bytes;
	char path[64];
	gp_volume *vol;
	gp_image *img;
	void *text;
	size_t i, len;
	int fd, n;

	if (size < 65536 || size > (8u << 20))
		return 0;
	fd = memfd_create("fuzz-ext4", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	img = gp_image_open(path, &o);
	if (img && gp_partitions_read(img, &pt) == 0 &&
	    gp_linux_find(img, &pt, -1, &lx) == 0)
		gp_linux_free(&lx);
	gp_error_clear();
	gp_partitions_free(&pt);
	vol = img ? gp_volume_open(img, 0, size / 512 * 512, true) : NULL;
	if (vol) {
		gp_volume_state(vol);
		gp_volume_label(vol);
		gp_volume_space(vol, &unit, &free_bytes);
		for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			n = 0;
			gp_volume_stat(vol, dirs[i], &st);
			gp_volume_list(vol, dirs[i], walk, &n);
		}
		if (gp_volume_read(vol, "/usr/lib/wsl/gpupv-prep.json", 1 << 20,
		    &text, &len) == 0)
			free(text);
		if (gp_volume_mkdir_p(vol, "/usr/lib/wsl/drivers/"
		    "fz.inf_amd64_0123456789abcdef") == 0) {
			gp_volume_create(vol, "/usr/lib/wsl/drivers/"
			    "fz.inf_amd64_0123456789abcdef/a-file.so", false,
			    70000, &m, fill, NULL);
			gp_volume_create(vol, "/usr/lib/wsl/drivers/"
			    "fz.inf_amd64_0123456789abcdef/sub", true, 0, &m,
			    NULL, NULL);
			gp_volume_symlink(vol, "/usr/lib/wsl/drivers/"
			    "fz.inf_amd64_0123456789abcdef/link", "a-file.so",
			    &m);
			gp_volume_set_meta(vol, "/usr/lib/wsl/drivers/"
			    "fz.inf_amd64_0123456789abcdef", &m);
		}
		gp_volume_overwrite(vol, "/etc/os-release", "ID=x\n", 5);
		gp_volume_remove(vol, "/etc/old");
		gp_volume_remove(vol, "/usr/lib/wsl/drivers/"
		    "fz.inf_amd64_0123456789abcdef/a-file.so");
		gp_volume_free_runs(vol, run_cb, &unit);
		gp_volume_close(vol);
	}
	if (img)
		gp_image_close(img);
	if (getenv("FUZZ_DEBUG"))	/* what a replayed input ran into */
		fprintf(stderr, "fuzz-ext4: %s\n", gp_error_message());
	gp_error_clear();
	gp_warnings_clear();
	close(fd);
	return 0;
}
