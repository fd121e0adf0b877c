/*
 * fuzz-ntfs.c - libFuzzer harness for the NTFS metadata the tool reads:
 * the input is a whole NTFS volume (a raw image with no partition table).
 * Before it is opened, the update sequence of every MFT record ("FILE")
 * and index block ("INDX") in it is made valid again, so that a mutation
 * reaches the record's contents ($Secure's $SDS and indexes, $DATA runs,
 * names, attribute lists) instead of being refused by the fixup check.
 * The harness then does what inspect and stage do with a guest volume,
 * as a dry run: state, label, space, the folders and the manifest read,
 * 8.3 policy, new folders and files (security inherited from $Secure),
 * an overwrite and a removal.
 *
 * Mutations keep the volume's size and layout: libFuzzer's own mutators
 * are applied to a slice of one metadata record (or of a sector that is
 * not blank), so each input stays a whole volume that replays as it is.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpupv-prep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max,
	    unsigned seed);

#define SECTOR	512

static unsigned
le16(const uint8_t *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

/* Make the update sequence of the multi-sector record at r (at most max
 * bytes) valid: the last two bytes of each sector move into the array
 * and the sequence number takes their place. */
static void
fixup(uint8_t *r, size_t max)
{
	unsigned ofs = le16(r + 4), count = le16(r + 6), i;

	if (count < 2 || ofs + 2 * (size_t)count > SECTOR ||
	    (size_t)(count - 1) * SECTOR > max)
		return;
	for (i = 1; i < count; i++) {
		uint8_t *end = r + i * SECTOR - 2;

		memcpy(r + ofs + 2 * i, end, 2);
		memcpy(end, r + ofs, 2);
	}
}

#ifdef FUZZ_MUTATOR	/* built by tests/fuzz/run.sh, with libFuzzer */
/* Sector number of the pick-th record, or of a non-blank sector. */
static size_t
pick_sector(const uint8_t *data, size_t size, unsigned r)
{
	size_t i, n = 0, want;
	bool records = r & 1;
	static const uint8_t zero[SECTOR];

	for (i = 0; i + SECTOR <= size; i += SECTOR) {
		bool rec = memcmp(data + i, "FILE", 4) == 0 ||
		    memcmp(data + i, "INDX", 4) == 0;

		if (records ? rec : memcmp(data + i, zero, SECTOR) != 0)
			n++;
	}
	if (!n)
		return (r >> 1) % (size / SECTOR);
	want = (r >> 1) % n;
	for (i = 0; i + SECTOR <= size; i += SECTOR) {
		bool rec = memcmp(data + i, "FILE", 4) == 0 ||
		    memcmp(data + i, "INDX", 4) == 0;

		if ((records ? rec : memcmp(data + i, zero, SECTOR) != 0) &&
		    want-- == 0)
			break;
	}
	return i / SECTOR;
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max,
    unsigned seed)
{
	uint8_t slice[1024];
	size_t at, len, got;

	(void)max;
	if (size < 65536)
		return LLVMFuzzerMutate(data, size, max);
	srand(seed);
	/* A record, then somewhere in its first 1 KiB, a few bytes to all. */
	at = pick_sector(data, size, (unsigned)rand()) * SECTOR;
	len = (size_t)rand() % 4 == 0 ? sizeof(slice) : 8 + (size_t)rand() % 56;
	at += (size_t)rand() % (sizeof(slice) - len + 1);
	if (at + len > size)
		at = size - len;
	memcpy(slice, data + at, len);
	got = LLVMFuzzerMutate(slice, len, len);
	memcpy(data + at, slice, got < len ? got : len);
	return size;
}
#endif

static int
walk(void *ctx, const char *name, const struct gp_stat *st)
{
	int *n = ctx;

	(void)name;
	(void)st;
	return ++*n > 200;	/* enough to see a large folder's blocks */
}

static int
fill(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, 'x', len);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "/", "/Windows",
	    "/Windows/System32", "/Windows/System32/HostDriverStore",
	    "/Windows/System32/HostDriverStore/FileRepository" };
	struct gp_open_opts o = { .flags = GP_OPEN_DRY_RUN, .format = "raw" };
	struct gp_file_meta m = { .mtime_ns = 1000000000 };
	struct gp_stat st;
	uint64_t cluster, free_bytes;
	uint8_t *copy;
	char path[64], *rp;
	gp_volume *vol;
	gp_image *img;
	void *text;
	size_t i, len;
	int fd, n;

	if (size < 65536 || size > (16u << 20))
		return 0;
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	for (i = 0; i + SECTOR <= size; i += SECTOR)
		if (memcmp(copy + i, "FILE", 4) == 0 ||
		    memcmp(copy + i, "INDX", 4) == 0)
			fixup(copy + i, size - i);
	fd = memfd_create("fuzz-ntfs", 0);
	if (fd < 0 || write(fd, copy, size) != (ssize_t)size)
		abort();
	free(copy);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	img = gp_image_open(path, &o);
	vol = img ? gp_volume_open(img, 0, size / SECTOR * SECTOR, true) :
	    NULL;
	if (vol) {
		gp_volume_state(vol);
		gp_volume_label(vol);
		gp_volume_space(vol, &cluster, &free_bytes);
		gp_volume_stored_free(vol);
		for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			n = 0;
			gp_volume_stat(vol, dirs[i], &st);
			gp_volume_list(vol, dirs[i], walk, &n);
			if (getenv("FUZZ_DEBUG"))
				fprintf(stderr, "%s: %d\n", dirs[i], n);
		}
		rp = gp_volume_realpath(vol, "/windows/system32/hostdriverstore");
		free(rp);
		if (gp_volume_read(vol, "/Windows/System32/HostDriverStore/"
		    "gpupv-prep.json", 1 << 20, &text, &len) == 0)
			free(text);
		gp_volume_short_names(vol, "/Windows/System32", -1);
		if (gp_volume_mkdir_p(vol, "/Windows/System32/HostDriverStore/"
		    "FileRepository/fz.inf_amd64_0123456789abcdef") == 0) {
			gp_volume_create(vol, "/Windows/System32/HostDriverStore/"
			    "FileRepository/fz.inf_amd64_0123456789abcdef/"
			    "a-long-file-name.dll", false, 70000, &m, fill, NULL);
			gp_volume_create(vol, "/Windows/System32/HostDriverStore/"
			    "FileRepository/fz.inf_amd64_0123456789abcdef/sub",
			    true, 0, &m, NULL, NULL);
		}
		gp_volume_overwrite(vol, "/Windows/System32/HostDriverStore/"
		    "gpupv-prep.json", "{}", 2);
		gp_volume_remove(vol, "/Windows/System32/old.dll");
		gp_volume_close(vol);
	}
	if (img)
		gp_image_close(img);
	if (getenv("FUZZ_DEBUG"))	/* what a replayed input ran into */
		fprintf(stderr, "fuzz-ntfs: %s\n", gp_error_message());
	gp_error_clear();
	gp_warnings_clear();
	close(fd);
	return 0;
}
