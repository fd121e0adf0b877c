/*
 * compact.h - what of a disk image holds nothing worth keeping (free NTFS
 * clusters, unpartitioned space), and `compact`, which gives those blocks
 * back: offline what Optimize-VHD -Mode Full does on Windows and
 * virt-sparsify through an appliance.
 */
#ifndef GPUPV_COMPACT_H
#define GPUPV_COMPACT_H

#include "util.h"

struct range {
	uint64_t off, len;
};

/*
 * The virtual byte ranges of img whose contents do not matter, sorted and
 * merged: the free clusters of every clean NTFS volume, and on a GPT disk
 * the space no partition holds (the tables themselves excepted).  Other
 * file systems, and NTFS volumes that are hibernated, dirty or unreadable
 * (warned about), are kept whole.  *nvol counts the volumes read.
 */
int	image_unused_ranges(gp_image *img, struct range **v, size_t *n,
	    unsigned *nvol);

struct compact_opts {
	bool dry_run;
	const char *output;		/* a compacted copy; the input untouched */
	const char *output_format;
	const char *parent;
	const char *format;
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
};

struct compact_report {
	char *image;			/* what was compacted or written */
	bool dry_run;
	unsigned volumes;		/* NTFS volumes whose free space counted */
	uint64_t unused_bytes;		/* virtual bytes found unused */
	uint64_t blocks_dropped;	/* blocks the file no longer holds */
	uint64_t block_size;		/* 0: raw, fixed */
	uint64_t size_before, size_after;	/* of the file on the host */
	uint64_t alloc_before, alloc_after;	/* bytes the host stores */
};

int	compact_run(const char *image, const struct compact_opts *o,
	    struct compact_report *r);
void	compact_report_free(struct compact_report *r);

#endif
