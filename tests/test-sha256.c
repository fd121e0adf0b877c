/*
 * Unit tests: SHA-256 against FIPS 180-4 example values, and the
 * many-files hasher (eight lanes where the CPU has them, one otherwise)
 * against the single-stream code on files of awkward sizes.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sha256.h"
#include "check.h"

static void
hex_of(const void *p, size_t n, char out[65])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, p, n);
	sha256_final(&s, d);
	sha256_hex(d, out);
}

/* Sizes around the block, padding and lane-buffer edges. */
static const size_t sizes[] = { 0, 1, 55, 56, 63, 64, 65, 119, 128, 1000,
	4096, 65536, 262143, 262144, 262145, 300000, 524288 + 64, 700001,
	1048576 + 17, 3, 77, 262144 * 3, 5 };
#define NFILES (sizeof(sizes) / sizeof(sizes[0]))

static void
run_files(const char *dir, uint8_t **data, const char *engine)
{
	struct sha256_job jobs[NFILES + 2];
	char paths[NFILES + 2][256], want[65], got[65];
	volatile int stop = 0;
	size_t i;

	if (engine)
		setenv("GPUPV_PREP_SHA256", engine, 1);
	else
		unsetenv("GPUPV_PREP_SHA256");
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < NFILES; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/f%zu", dir, i);
		jobs[i].path = paths[i];
		jobs[i].size = sizes[i];
	}
	/* A missing file, and one whose size is not what the caller saw. */
	snprintf(paths[NFILES], sizeof(paths[0]), "%s/absent", dir);
	jobs[NFILES].path = paths[NFILES];
	jobs[NFILES + 1].path = paths[9];
	jobs[NFILES + 1].size = sizes[9] + 1;
	sha256_files(jobs, NFILES + 2, &stop);
	for (i = 0; i < NFILES; i++) {
		hex_of(data[i], sizes[i], want);
		sha256_hex(jobs[i].digest, got);
		CHECK_EQ_U(jobs[i].err, 0);
		if (strcmp(want, got) != 0)
			fprintf(stderr, "engine %s, size %zu: %s, want %s\n",
			    engine ? engine : "default", sizes[i], got, want);
		CHECK(strcmp(want, got) == 0);
		CHECK_EQ_U(jobs[i].st.st_size, sizes[i]);
	}
	CHECK_EQ_U(jobs[NFILES].err, ENOENT);
	CHECK_EQ_U(jobs[NFILES + 1].err, EIO);

	/* Stopped before it starts: every job says so. */
	stop = 1;
	sha256_files(jobs, NFILES, &stop);
	for (i = 0; i < NFILES; i++)
		CHECK_EQ_U(jobs[i].err, ECANCELED);
}

int
main(void)
{
	char dir[] = "/tmp/gpupv-sha.XXXXXX", h[65], path[300];
	uint8_t *data[NFILES], *a;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	size_t i, j;

	/* FIPS 180-4 / NIST CSRC example values. */
	hex_of("", 0, h);
	CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
	    "a495991b7852b855"));
	hex_of("abc", 3, h);
	CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
	    "b410ff61f20015ad"));
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	    h);
	CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167"
	    "f6ecedd419db06c1"));
	a = xmalloc(1000000);
	memset(a, 'a', 1000000);
	hex_of(a, 1000000, h);
	CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e"
	    "046d39ccc7112cd0"));
	free(a);

	CHECK(mkdtemp(dir) != NULL);
	for (i = 0; i < NFILES; i++) {
		int fd;

		data[i] = xmalloc(sizes[i] + 1);
		for (j = 0; j < sizes[i]; j++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			data[i][j] = (uint8_t)x;
		}
		snprintf(path, sizeof(path), "%s/f%zu", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && write(fd, data[i], sizes[i]) ==
		    (ssize_t)sizes[i]);
		close(fd);
	}
	run_files(dir, data, "scalar");
	run_files(dir, data, "avx2");
	run_files(dir, data, NULL);
	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/f%zu", dir, i);
		unlink(path);
		free(data[i]);
	}
	rmdir(dir);
	CHECK_DONE();
}
