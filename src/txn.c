/*
 * txn.c - the policy of a session over a writable image: which writes may
 * bypass the overlay.
 *
 * A writable image is changed in one session (image.c).  Every write that could
 * alter what the image's old state means waits in the overlay of
 * blk-cow.c; payload written to space the old state does not use goes to
 * the file at once.  What is unused is known here from a map the file
 * system layer declares (free clusters when it was opened), plus the file
 * tail past its size when the session began.  gp_image_commit makes the
 * overlay part of the image atomically (the VHDX log, or the sidecar
 * journal); closing without a commit, or gp_image_abort, leaves the old
 * state.  A dry run keeps everything in the overlay and writes nothing.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "blk.h"
#include "txn.h"

/*
 * The unused map in chunks of 2^15 units (4 KiB of bits each): a chunk
 * all free or all in use costs no more than its pointer, so a large,
 * mostly empty or mostly full volume costs little.
 */
#define CHUNK_SHIFT	15
#define CHUNK_UNITS	((uint64_t)1 << CHUNK_SHIFT)
#define CHUNK_BYTES	(CHUNK_UNITS / 8)
static uint8_t chunk_all_used;		/* its address marks a full chunk */
#define ALL_USED	(&chunk_all_used)

void
txn_map_drop(struct txn *t)
{
	uint64_t i;

	for (i = 0; i < t->nchunks; i++)
		if (t->chunk[i] != ALL_USED)
			free(t->chunk[i]);
	free(t->chunk);
	t->chunk = NULL;
	t->nchunks = 0;
}




static bool
unit_used(const struct txn *t, uint64_t u)
{
	const uint8_t *c = t->chunk[u >> CHUNK_SHIFT];

	if (!c || c == ALL_USED)
		return c == ALL_USED;
	u &= CHUNK_UNITS - 1;
	return c[u / 8] >> (u % 8) & 1;
}

size_t
txn_run(const struct txn *t, uint64_t off, size_t len, bool *unused)
{
	uint64_t end = off + len, u, ue, pos;

	if (!t || !t->chunk || off < t->map_start ||
	    off >= t->map_start + t->map_units * t->map_unit) {
		*unused = false;
		return len;
	}
	u = (off - t->map_start) / t->map_unit;
	*unused = !unit_used(t, u);
	for (;;) {
		pos = t->map_start + (u + 1) * t->map_unit;
		if (pos >= end)
			return len;
		ue = u + 1;
		if (ue >= t->map_units || !unit_used(t, ue) != *unused)
			return (size_t)(pos - off);
		u = ue;
	}
}

void
txn_set_map(struct txn *t, uint64_t start, uint64_t unit, uint64_t units)
{
	txn_map_drop(t);
	if (!unit || !units)
		return;
	t->map_start = start;
	t->map_unit = unit;
	t->map_units = units;
	t->nchunks = (units + CHUNK_UNITS - 1) / CHUNK_UNITS;
	t->chunk = xcalloc((size_t)t->nchunks, sizeof(*t->chunk));
}

void
txn_map_used(struct txn *t, uint64_t first, const uint8_t *in_use,
    uint64_t n)
{
	uint64_t u = first;

	if (!t || !t->chunk || first % 8)
		return;
	n = MIN(n, t->map_units > first ? t->map_units - first : 0);
	while (u < first + n) {
		uint64_t c = u >> CHUNK_SHIFT, in = u & (CHUNK_UNITS - 1);
		uint64_t k = MIN(CHUNK_UNITS - in, first + n - u), i;
		const uint8_t *src = in_use + (u - first) / 8;
		bool all0 = true, all1 = true;

		for (i = 0; i < k / 8 && (all0 || all1); i++) {
			all0 &= src[i] == 0;
			all1 &= src[i] == 0xff;
		}
		if (k % 8) {
			uint8_t m = (uint8_t)((1u << (k % 8)) - 1);

			all0 &= (src[k / 8] & m) == 0;
			all1 &= (src[k / 8] & m) == m;
		}
		if (!t->chunk[c] && all0) {
			/* stays all free */
		} else if (!t->chunk[c] && all1 && in == 0 &&
		    k == MIN(CHUNK_UNITS, t->map_units - (c << CHUNK_SHIFT))) {
			t->chunk[c] = ALL_USED;
		} else {
			if (t->chunk[c] == ALL_USED) {
				t->chunk[c] = xmalloc(CHUNK_BYTES);
				memset(t->chunk[c], 0xff, CHUNK_BYTES);
			} else if (!t->chunk[c]) {
				t->chunk[c] = xcalloc(1, CHUNK_BYTES);
			}
			memcpy(t->chunk[c] + in / 8, src, (size_t)((k + 7) / 8));
		}
		u += k;
	}
}
