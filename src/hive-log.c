/*
 * hive-log.c - the regf base block and the replay of a dirty hive's
 * transaction logs (.LOG1/.LOG2), on bytes in memory; no hivex here
 * (hivex neither checks for a dirty hive nor reads its logs).
 *
 * Layout facts from the Windows registry file format specification
 * (M. Suhanov), "Base block", "Format of transaction log files" and
 * "Dirty state of a hive".
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "hive.h"

#define BASE_BLOCK	4096u
/* Seed of both log entry hashes (spec, "Log entries", note 3). */
#define HVLE_SEED	0x82EF4D887A4E55C5ull

static uint32_t
xor32(const uint8_t *b)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < 508; i += 4)
		sum ^= get_le32(b + i);
	return sum;
}

void
hive_fix_checksum(uint8_t *base)
{
	uint32_t sum = xor32(base);

	/* Windows never stores 0 or -1 (hivex and libregf agree). */
	if (sum == 0xFFFFFFFFu)
		sum = 0xFFFFFFFEu;
	else if (sum == 0)
		sum = 1;
	put_le32(base + 508, sum);
}

int
hive_header(const uint8_t *b, size_t len, struct hive_hdr *h)
{
	uint32_t sum;

	memset(h, 0, sizeof(*h));
	if (len < BASE_BLOCK || memcmp(b, "regf", 4) != 0) {
		errno = EINVAL;
		return -1;
	}
	h->seq1 = get_le32(b + 4);
	h->seq2 = get_le32(b + 8);
	h->major = get_le32(b + 20);
	h->minor = get_le32(b + 24);
	h->type = get_le32(b + 28);
	h->root = get_le32(b + 36);
	h->bins_size = get_le32(b + 40);
	sum = xor32(b);
	if (sum == 0xFFFFFFFFu)
		sum = 0xFFFFFFFEu;
	else if (sum == 0)
		sum = 1;
	h->sum_ok = sum == get_le32(b + 508);
	return 0;
}

bool
hive_dirty(const struct hive_hdr *h)
{
	return h->seq1 != h->seq2 || !h->sum_ok;
}

/* Marvin32 (the .NET string hash), used by the log entry hashes. */
static inline uint32_t
rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline void
marvin_mix(uint32_t *lo, uint32_t *hi)
{
	*hi ^= *lo;
	*lo = rotl32(*lo, 20) + *hi;
	*hi = rotl32(*hi, 9) ^ *lo;
	*lo = rotl32(*lo, 27) + *hi;
	*hi = rotl32(*hi, 19);
}

uint64_t
marvin32(const void *data, size_t n, uint64_t seed)
{
	const uint8_t *p = data;
	uint32_t lo = (uint32_t)seed, hi = (uint32_t)(seed >> 32), last;

	for (; n >= 4; p += 4, n -= 4) {
		lo += get_le32(p);
		marvin_mix(&lo, &hi);
	}
	switch (n) {
	case 3:
		last = 0x80000000u | (uint32_t)p[2] << 16 |
		    (uint32_t)p[1] << 8 | p[0];
		break;
	case 2:
		last = 0x800000u | (uint32_t)p[1] << 8 | p[0];
		break;
	case 1:
		last = 0x8000u | p[0];
		break;
	default:
		last = 0x80u;
		break;
	}
	lo += last;
	marvin_mix(&lo, &hi);
	marvin_mix(&lo, &hi);
	return (uint64_t)hi << 32 | lo;
}

struct entry {
	const uint8_t *p;		/* HvLE header */
	uint32_t size, seq, bins_size, npages;
	int log;			/* 0: .LOG1, 1: .LOG2 */
};

/*
 * The valid entries of one new-format log, in file order.  A log ends at
 * the first entry that is not "HvLE", does not fit, or fails its hashes
 * (spec note 7: recovery stops at a bogus entry).
 */
static void
log_entries(const uint8_t *log, size_t len, int which, uint64_t max_bins,
    struct entry **v, size_t *n)
{
	size_t off = 512;

	while (off + 40 <= len && memcmp(log + off, "HvLE", 4) == 0) {
		const uint8_t *e = log + off;
		struct entry en = { .p = e, .log = which };
		uint64_t need;
		size_t i;

		en.size = get_le32(e + 4);
		en.seq = get_le32(e + 12);
		en.bins_size = get_le32(e + 16);
		en.npages = get_le32(e + 20);
		/* The hive can only have grown by pages the logs hold: a
		 * bound on memory from the input's own size. */
		if (en.size < 40 || en.size % 512 || en.size > len - off ||
		    en.bins_size % 4096 || en.bins_size > max_bins)
			break;
		need = 40 + (uint64_t)en.npages * 8;
		if (need > en.size)
			break;
		if (!SUM_OK(marvin32(e + 40, en.size - 40, HVLE_SEED),
		    get_le64(e + 24)) ||
		    !SUM_OK(marvin32(e, 32, HVLE_SEED), get_le64(e + 32)))
			break;
		/* Page references must fit the entry and the hive. */
		for (i = 0; i < en.npages; i++) {
			uint32_t po = get_le32(e + 40 + 8 * i);
			uint32_t ps = get_le32(e + 44 + 8 * i);

			need += ps;
			if (ps == 0 || ps % 4096 || po % 4096 ||
			    (uint64_t)po + ps > en.bins_size)
				break;
		}
		if (i < en.npages || need > en.size)
			break;
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		(*v)[(*n)++] = en;
		off += en.size;
	}
}

static int
by_seq(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->log - y->log;
}

int
hive_log_replay(uint8_t **buf, size_t *len, const uint8_t *const log[2],
    const size_t loglen[2], const char *name)
{
	struct hive_hdr ph, lh;
	struct entry *v = NULL;
	size_t n = 0, i, applied = 0;
	uint32_t next = 0, bins = 0;
	uint8_t *b = *buf;
	int k, have = 0;

	if (hive_header(b, *len, &ph) < 0)
		return error_corrupt(name, "not a registry hive (no regf "
		    "base block)");
	for (k = 0; k < 2; k++) {
		if (!log[k])
			continue;
		have++;
		if (hive_header(log[k], loglen[k], &lh) < 0 || loglen[k] < 512)
			continue;	/* an empty or foreign log */
		if (lh.type == 1 || lh.type == 2) {
			free(v);
			error_setc(GP_EXIT_UNCLEAN, ENOTSUP, "%s: the hive is "
			    "dirty and its transaction log is in the old "
			    "(Windows 7) format, which this version does not "
			    "replay; boot the guest and shut it down cleanly "
			    "first", name);
			return -1;
		}
		if (lh.type == 6)
			log_entries(log[k], loglen[k], k, MIN((uint64_t)
			    HIVE_MAX_SIZE, (uint64_t)*len + loglen[0] +
			    loglen[1]), &v, &n);
	}
	/*
	 * Subsequent entries are those numbered from the primary's sequence
	 * number on (spec note 5), from both logs; they are applied in
	 * order while the numbers run on without a gap.
	 */
	if (n)
		qsort(v, n, sizeof(*v), by_seq);
	for (i = 0; i < n; i++) {
		const struct entry *e = &v[i];
		const uint8_t *page;
		size_t need, j;

		if (e->seq < ph.seq1 || (applied && e->seq == next - 1))
			continue;
		if (applied && e->seq != next)
			break;
		need = BASE_BLOCK + (size_t)e->bins_size;
		if (need > *len) {
			b = xrealloc(b, need);
			memset(b + *len, 0, need - *len);
			*len = need;
		}
		page = e->p + 40 + 8 * (size_t)e->npages;
		for (j = 0; j < e->npages; j++) {
			uint32_t po = get_le32(e->p + 40 + 8 * j);
			uint32_t ps = get_le32(e->p + 44 + 8 * j);

			memcpy(b + BASE_BLOCK + po, page, ps);
			page += ps;
		}
		bins = e->bins_size;
		next = e->seq + 1;
		applied++;
	}
	free(v);
	*buf = b;
	if (!applied) {
		error_setc(GP_EXIT_UNCLEAN, ENOENT, "%s: the hive is dirty "
		    "(sequence numbers %u and %u differ) and %s; boot the "
		    "guest and shut it down cleanly (not a Fast Startup "
		    "hibernation), then run again", name, ph.seq1, ph.seq2,
		    have ? "its transaction logs hold nothing to replay" :
		    "its transaction logs (.LOG1, .LOG2) are not there");
		return -1;
	}
	/* The base block as a clean write would leave it (note 5). */
	put_le32(b + 4, next - 1);
	put_le32(b + 8, next - 1);
	put_le32(b + 40, bins);
	hive_fix_checksum(b);
	*len = BASE_BLOCK + bins;
	/* Every bin must still tile the data, or hivex would refuse later
	 * with a vaguer message. */
	for (size_t off = 0; off < bins;) {
		const uint8_t *hb = b + BASE_BLOCK + off;
		uint32_t sz = get_le32(hb + 8);

		if (memcmp(hb, "hbin", 4) != 0 || get_le32(hb + 4) != off ||
		    sz == 0 || sz % 4096 || sz > bins - off)
			return error_corrupt(name, "replaying its transaction "
			    "logs left a broken hive bin at offset 0x%zx; the "
			    "logs do not belong to this hive", off);
		off += sz;
	}
	return (int)applied;
}
