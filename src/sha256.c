/*
 * sha256.c - SHA-256 (FIPS 180-4, section 6.2) for the manifest's hashes.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sha256.h"

const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))

static void
compress(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
		    (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^
		    (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; k = h[7];
	for (i = 0; i < 64; i++) {
		t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
		    ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
		    ((a & b) ^ (a & c) ^ (b & c));
		k = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void
sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
	    0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->used = 0;
}

void
sha256_update(struct sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;

	s->len += n;
	if (s->used) {
		size_t k = MIN(n, 64 - s->used);

		memcpy(s->buf + s->used, p, k);
		s->used += k;
		p += k;
		n -= k;
		if (s->used < 64)
			return;
		compress(s->h, s->buf);
		s->used = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		compress(s->h, p);
	memcpy(s->buf, p, n);
	s->used = n;
}

void
sha256_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->len * 8;
	int i;

	s->buf[s->used++] = 0x80;
	if (s->used > 56) {
		memset(s->buf + s->used, 0, 64 - s->used);
		compress(s->h, s->buf);
		s->used = 0;
	}
	memset(s->buf + s->used, 0, 56 - s->used);
	put_be64(s->buf + 56, bits);
	compress(s->h, s->buf);
	for (i = 0; i < 8; i++)
		put_be32(out + 4 * i, s->h[i]);
}

void
sha256_hex(const uint8_t d[32], char out[65])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[64] = '\0';
}

/* ---- whole files, several lanes at once ----------------------------- */

#define LANES		8
#define LANE_BUF	(256 * 1024)	/* a multiple of the block size */

struct lane {
	struct sha256_job *job;
	int fd;
	uint64_t off;			/* read so far */
	size_t have, pos;		/* bytes in buf, bytes hashed */
	bool eof;
	struct sha256 ctx;
	uint8_t *buf;
};

static void
lane_end(struct lane *l, int err)
{
	struct sha256_job *j = l->job;

	if (!err && fstat(l->fd, &j->st) < 0)
		err = errno;
	if (!err && (l->off != j->size || (uint64_t)j->st.st_size != j->size))
		err = EIO;
	if (!err)
		sha256_final(&l->ctx, j->digest);
	j->err = err;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->job = NULL;
}

/* Fill the lane's buffer with whole blocks, short only at end of file. */
static int
lane_fill(struct lane *l)
{
	l->have = l->pos = 0;
	while (l->have < LANE_BUF) {
		ssize_t r = pread(l->fd, l->buf + l->have, LANE_BUF - l->have,
		    (off_t)l->off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno;
		if (r == 0) {
			l->eof = true;
			break;
		}
		l->have += (size_t)r;
		l->off += (uint64_t)r;
		if (l->off > l->job->size)
			return EIO;		/* grew: stop reading */
	}
	return 0;
}

/*
 * Bring the lane to a state with at least one whole block to hash, taking
 * the next job when its file is done.  Returns false when no jobs remain.
 */
static bool
lane_ready(struct lane *l, struct sha256_job *jobs, size_t n, size_t *next,
    volatile int *stop)
{
	for (;;) {
		int err;

		if (*stop) {
			if (l->job)
				lane_end(l, ECANCELED);
			return false;
		}
		if (l->job && l->have - l->pos >= 64)
			return true;
		if (l->job && !l->eof) {
			if ((err = lane_fill(l)) != 0)
				lane_end(l, err);
			continue;
		}
		if (l->job) {
			sha256_update(&l->ctx, l->buf + l->pos,
			    l->have - l->pos);
			lane_end(l, 0);
		}
		if (*next >= n)
			return false;
		l->job = &jobs[(*next)++];
		l->off = 0;
		l->have = l->pos = 0;
		l->eof = false;
		sha256_init(&l->ctx);
		l->fd = open(l->job->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (l->fd < 0)
			lane_end(l, errno);
	}
}

void
sha256_files(struct sha256_job *jobs, size_t n, volatile int *stop)
{
	struct lane lane[LANES];
	sha256_x8_fn x8 = sha256_x8_get();
	size_t next = 0, i, nl = x8 ? LANES : 1;
	uint8_t *mem;

	for (i = 0; i < n; i++)
		jobs[i].err = ECANCELED;
	mem = xmalloc(nl * LANE_BUF);
	memset(lane, 0, sizeof(lane));
	for (i = 0; i < nl; i++) {
		lane[i].fd = -1;
		lane[i].buf = mem + i * LANE_BUF;
	}
	for (;;) {
		struct sha256 *ctx[LANES], spare;
		const uint8_t *p[LANES];
		size_t active = 0, nb = SIZE_MAX, first = 0;

		for (i = 0; i < nl; i++) {
			if (!lane_ready(&lane[i], jobs, n, &next, stop))
				continue;
			if (!active++)
				first = i;
			nb = MIN(nb, (lane[i].have - lane[i].pos) / 64);
		}
		if (!active)
			break;
		/* The eight lanes run at about the single-stream speed
		 * each (AVX-512VL; two thirds of it with AVX2), so they pay
		 * from two files on. */
		if (active < 2) {
			for (i = 0; i < nl; i++) {
				struct lane *l = &lane[i];
				size_t k = (l->have - l->pos) / 64 * 64;

				if (!l->job || k == 0)
					continue;
				sha256_update(&l->ctx, l->buf + l->pos, k);
				l->pos += k;
			}
			continue;
		}
		for (i = 0; i < LANES; i++) {
			if (lane[i].job) {
				ctx[i] = &lane[i].ctx;
				p[i] = lane[i].buf + lane[i].pos;
			} else {		/* idle: any readable blocks */
				ctx[i] = &spare;
				spare = lane[first].ctx;
				p[i] = lane[first].buf + lane[first].pos;
			}
		}
		x8(ctx, p, nb);
		for (i = 0; i < LANES; i++)
			if (lane[i].job)
				lane[i].pos += nb * 64;
	}
	for (i = 0; i < nl; i++)
		if (lane[i].job)
			lane_end(&lane[i], ECANCELED);
	free(mem);
}
