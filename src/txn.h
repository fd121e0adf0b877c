/*
 * txn.h - the policy of a session over a writable image (image.c opens,
 * commits and closes it): which writes may go straight to the file.  The
 * overlay itself is blk-cow.c.
 */
#ifndef GPUPV_TXN_H
#define GPUPV_TXN_H

#include "util.h"

struct txn {
	bool dry_run;
	bool dead;			/* aborted: the driver state is stale */
	/* Unused map: bit set = unit in use by the old state. */
	uint64_t map_start, map_unit, map_units;
	uint8_t **chunk;		/* NULL = all free, a full-chunk mark, or
					   bits */
	uint64_t nchunks;
};

/* The units [0, units) of unit bytes from start are what the file system
 * may use; none are in use until txn_map_used says so.  units 0: no map. */
void	txn_set_map(struct txn *t, uint64_t start, uint64_t unit,
	    uint64_t units);
/* Bits of in_use (set: in use by the old state) for units first.. */
void	txn_map_used(struct txn *t, uint64_t first, const uint8_t *in_use,
	    uint64_t n);
void	txn_map_drop(struct txn *t);
/* Length of the run from off that is all unused (or all not), and which. */
size_t	txn_run(const struct txn *t, uint64_t off, size_t len, bool *unused);

#endif
