/*
 * vhdx-log.c - the VHDX log (MS-VHDX 2.3) on bytes in memory: checking an
 * entry and finding the active sequence.  Facts from the specification:
 * entries are 4 KiB-sector multiples that may wrap around the end of the
 * circular log; descriptors are "desc" (a data sector follows) or "zero";
 * the active sequence is the one of the highest sequence number whose
 * tail entry is in it.
 */
#include <config.h>

#include <stdlib.h>

#include "vhdx-log.h"

void
vhdx_log_copy(const struct vhdx_log *lg, uint32_t off, uint8_t *dst,
    uint32_t n)
{
	uint32_t first = MIN(n, lg->len - off);

	memcpy(dst, lg->data + off, first);
	if (n > first)
		memcpy(dst + first, lg->data, n - first);
}

bool
vhdx_log_entry_check(const struct vhdx_log *lg, uint32_t off,
    struct log_entry *e, uint8_t *buf)
{
	uint32_t loglen = lg->len, count, dsec, ndata = 0, i;
	uint8_t h[64];
	uint64_t seq;

	vhdx_log_copy(lg, off, h, 64);
	if (memcmp(h, "loge", 4) != 0)
		return false;
	e->off = off;
	e->len = get_le32(h + 8);
	e->tail = get_le32(h + 12);
	e->seq = seq = get_le64(h + 16);
	count = get_le32(h + 24);
	e->flushed = get_le64(h + 48);
	e->last = get_le64(h + 56);
	if (e->len < VHDX_LOG_SECTOR || e->len % VHDX_LOG_SECTOR ||
	    e->len > loglen || e->tail % VHDX_LOG_SECTOR || e->tail >= loglen ||
	    seq == 0)
		return false;
	if (memcmp(h + 32, lg->guid.b, 16) != 0)
		return false;
	/* Descriptor sectors: 64-byte header then 32-byte descriptors. */
	if (count > (e->len / 32))
		return false;
	dsec = (uint32_t)(((uint64_t)count * 32 + 64 + VHDX_LOG_SECTOR - 1) /
	    VHDX_LOG_SECTOR);
	if (dsec > e->len / VHDX_LOG_SECTOR)
		return false;
	vhdx_log_copy(lg, off, buf, e->len);
	{
		uint32_t sum = get_le32(buf + 4);

		put_le32(buf + 4, 0);
		if (!SUM_OK(crc32c(0, buf, e->len), sum))
			return false;
		put_le32(buf + 4, sum);
	}
	for (i = 0; i < count; i++) {
		const uint8_t *d = buf + 64 + 32 * i;

		uint64_t foff = get_le64(d + 16), flen;

		if (get_le64(d + 24) != seq || foff % VHDX_LOG_SECTOR)
			return false;
		/* What an entry writes lies inside the file: a descriptor
		 * past its end (or a zero run of 2^60 bytes) is no entry we
		 * replay. */
		flen = memcmp(d, "desc", 4) == 0 ? VHDX_LOG_SECTOR :
		    get_le64(d + 8);
		if (foff > lg->limit || flen > lg->limit - foff)
			return false;
		if (memcmp(d, "desc", 4) == 0) {
			const uint8_t *s;

			if (dsec + ndata >= e->len / VHDX_LOG_SECTOR)
				return false;
			s = buf + (uint64_t)(dsec + ndata) * VHDX_LOG_SECTOR;
			if (memcmp(s, "data", 4) != 0 ||
			    get_le32(s + 4) != (uint32_t)(seq >> 32) ||
			    get_le32(s + 4092) != (uint32_t)seq)
				return false;
			ndata++;
		} else if (memcmp(d, "zero", 4) == 0) {
			if (get_le64(d + 8) % VHDX_LOG_SECTOR)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * 2.3.3: the active sequence.  Candidate tails are tried from the start of
 * the log: a valid sequence found at one moves the search to its head, an
 * invalid one a sector on.  The search ends when it would wrap or not move
 * (a sequence as long as the whole log), and after a sector's worth of
 * steps in any case: it terminates on any input.  The best sequence (the
 * highest sequence number whose tail entry is in it) goes to best; its
 * length is returned.  seqv and best hold cap entries.
 */
size_t
vhdx_log_find_active(const struct vhdx_log *lg, uint8_t *buf,
    struct log_entry *seqv, struct log_entry *best, size_t cap)
{
	uint32_t loglen = lg->len, cur_tail = 0, steps;
	size_t nseq, nbest = 0, i;

	for (steps = 0; steps <= loglen / VHDX_LOG_SECTOR; steps++) {
		uint32_t head = cur_tail;
		uint64_t total = 0;
		bool valid = false;

		nseq = 0;
		while (nseq < cap && total < loglen) {
			struct log_entry e;

			if (!vhdx_log_entry_check(lg, head, &e, buf))
				break;
			if (nseq && e.seq != seqv[nseq - 1].seq + 1)
				break;
			seqv[nseq++] = e;
			total += e.len;
			head = (uint32_t)(((uint64_t)head + e.len) % loglen);
		}
		for (i = 0; i < nseq; i++)
			if (seqv[i].off == seqv[nseq - 1].tail)
				valid = true;
		if (valid && (!nbest || seqv[nseq - 1].seq > best[nbest - 1].seq)) {
			memcpy(best, seqv, nseq * sizeof(*seqv));
			nbest = nseq;
		}
		if (!valid) {
			if ((uint64_t)cur_tail + VHDX_LOG_SECTOR >= loglen)
				break;
			cur_tail += VHDX_LOG_SECTOR;
		} else {
			if (total >= loglen || head <= cur_tail)
				break;
			cur_tail = head;
		}
	}
	return nbest;
}
