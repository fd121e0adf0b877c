/*
 * place.h - where a session's new data lands on a volume (DESIGN.md §9).
 *
 * The file system layer declares the clusters that are free when the
 * session begins; place_alloc then chooses clusters for each file the
 * way Windows packs them: one contiguous run when the free space allows,
 * first in free space that the image already stores (present blocks of a
 * dynamic or differencing image), then the lowest fresh space, and the
 * MFT zone last.  It never returns a cluster that was not free when the
 * session began, so a cluster the session frees is not used again before
 * the commit.  The choice depends only on the volume and the requests,
 * so a run retried after a kill lands where the killed one did.
 */
#ifndef GPUPV_PLACE_H
#define GPUPV_PLACE_H

#include "util.h"

struct place;

struct place_run {
	int64_t lcn;
	int64_t len;
};

struct place_ops {
	/* Clusters free now from lcn, at most n (0: lcn is in use), or -1. */
	int64_t	(*free_run)(void *ctx, int64_t lcn, int64_t n);
	/*
	 * Whether the image stores [lcn, lcn + n): 1 (yes) or 0 (no), the
	 * length of the run with that answer in *pn; -1 on error.
	 */
	int	(*stored)(void *ctx, int64_t lcn, int64_t n, int64_t *pn);
	/* First cluster past the image block holding lcn (INT64_MAX when
	 * the image has no blocks: raw, fixed). */
	int64_t	(*block_end)(void *ctx, int64_t lcn);
};

/* zone_start..zone_end: the MFT zone, used only when nothing else fits. */
struct place *place_new(const struct place_ops *ops, void *ctx,
	    int64_t zone_start, int64_t zone_end);
void	place_free(struct place *p);
/* Declare a run that was free at the start, in ascending order. */
int	place_add_free(struct place *p, int64_t lcn, int64_t len);
/*
 * Choose n clusters: at most max_runs runs, lowest VCN first, written to
 * runs[] with their count in *nruns.  The caller marks them in use.
 * -1 with ENOSPC when the free space cannot hold n clusters.
 */
int	place_alloc(struct place *p, int64_t n, struct place_run *runs,
	    size_t max_runs, size_t *nruns);
/* Clusters still available to place_alloc; of them, in stored space. */
int64_t	place_available(const struct place *p);
int64_t	place_stored(const struct place *p);

#endif
