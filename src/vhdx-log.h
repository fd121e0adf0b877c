/*
 * vhdx-log.h - the VHDX log's entries and the search for its active
 * sequence (MS-VHDX 2.3), on the log's bytes in memory: no image and no
 * I/O, so both can be tested on logs made in memory.  blk-vhdx.c reads
 * the log, and replays what the search finds.
 */
#ifndef GPUPV_VHDX_LOG_H
#define GPUPV_VHDX_LOG_H

#include "util.h"

#define VHDX_LOG_SECTOR		4096

/* The log region as read, and what its entries are checked against. */
struct vhdx_log {
	const uint8_t *data;
	uint32_t len;			/* a multiple of VHDX_LOG_SECTOR */
	guid_t guid;			/* LogGuid of the current header */
	uint64_t limit;			/* entries write below this offset
					   (the file's size) */
};

struct log_entry {
	uint32_t off;			/* in the log */
	uint32_t len;
	uint32_t tail;
	uint64_t seq;
	uint64_t flushed;
	uint64_t last;
};

/* Copy n bytes of the circular log starting at off. */
void	vhdx_log_copy(const struct vhdx_log *lg, uint32_t off, uint8_t *dst,
	    uint32_t n);
/*
 * Check the entry at off (2.3.1): header fields, checksum over the whole
 * entry, every descriptor and data sector, every write inside the limit.
 * buf (lg->len bytes) gets the entry, made linear.
 */
bool	vhdx_log_entry_check(const struct vhdx_log *lg, uint32_t off,
	    struct log_entry *e, uint8_t *buf);
/*
 * The active sequence (2.3.3) into best; its length (0: none).  seqv and
 * best hold cap entries (lg->len / VHDX_LOG_SECTOR + 1 is enough), buf
 * lg->len bytes.  Ends on any input.
 */
size_t	vhdx_log_find_active(const struct vhdx_log *lg, uint8_t *buf,
	    struct log_entry *seqv, struct log_entry *best, size_t cap);

#endif
