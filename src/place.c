/*
 * place.c - the placement policy of a session (see place.h).
 *
 * The free space the session may use is kept as three sorted lists of
 * extents: stored (free clusters inside blocks the image file already
 * holds), fresh (free clusters whose blocks the image does not hold yet)
 * and the MFT zone (kept free for the MFT to grow into, as Windows and
 * libntfs-3g do).  A request is served by the first extent of the first
 * list that holds it whole, taken from the extent's low end, so files are
 * packed one after another; a request no extent holds is split over the
 * largest extents.  Placing data in fresh space makes the rest of its
 * last block stored, and that remainder moves to the stored list.
 *
 * Clusters only leave the lists: what the session frees is never added,
 * which is what keeps new data out of space the old state still uses.
 * Space the file system itself allocates behind our back (MFT records,
 * index blocks) is found when a chosen run is checked against the bitmap
 * as it is now, and dropped from the lists.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>

#include "place.h"

enum { L_STORED, L_FRESH, L_ZONE, L_COUNT };

struct list {
	struct place_run *v;
	size_t n, cap;
};

struct place {
	const struct place_ops *ops;
	void *ctx;
	int64_t zone_start, zone_end;
	struct list l[L_COUNT];
	int64_t avail;
};

struct place *
place_new(const struct place_ops *ops, void *ctx, int64_t zone_start,
    int64_t zone_end)
{
	struct place *p = xcalloc(1, sizeof(*p));

	p->ops = ops;
	p->ctx = ctx;
	p->zone_start = zone_start;
	p->zone_end = zone_end > zone_start ? zone_end : zone_start;
	return p;
}

void
place_free(struct place *p)
{
	int i;

	if (!p)
		return;
	for (i = 0; i < L_COUNT; i++)
		free(p->l[i].v);
	free(p);
}

int64_t
place_available(const struct place *p)
{
	return p ? p->avail : 0;
}

int64_t
place_stored(const struct place *p)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; p && i < p->l[L_STORED].n; i++)
		n += p->l[L_STORED].v[i].len;
	return n;
}

/* Insert in LCN order, merging with a neighbour that touches. */
static void
list_insert(struct list *l, int64_t lcn, int64_t len)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (l->v[mid].lcn < lcn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && l->v[lo - 1].lcn + l->v[lo - 1].len == lcn) {
		l->v[lo - 1].len += len;
		if (lo < l->n && l->v[lo - 1].lcn + l->v[lo - 1].len ==
		    l->v[lo].lcn) {
			l->v[lo - 1].len += l->v[lo].len;
			memmove(&l->v[lo], &l->v[lo + 1], (l->n - lo - 1) *
			    sizeof(*l->v));
			l->n--;
		}
		return;
	}
	if (lo < l->n && lcn + len == l->v[lo].lcn) {
		l->v[lo].lcn = lcn;
		l->v[lo].len += len;
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memmove(&l->v[lo + 1], &l->v[lo], (l->n - lo) * sizeof(*l->v));
	l->v[lo].lcn = lcn;
	l->v[lo].len = len;
	l->n++;
}

/* Remove [lcn, lcn + len) from a list (it may cover parts of extents). */
static int64_t
list_cut(struct list *l, int64_t lcn, int64_t len)
{
	int64_t end = lcn + len, cut = 0;
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct place_run *e = &l->v[i];
		int64_t es = e->lcn, ee = e->lcn + e->len;
		int64_t s = MAX(es, lcn), t = MIN(ee, end);

		if (s >= t)
			continue;
		cut += t - s;
		if (s == es && t == ee) {
			memmove(e, e + 1, (l->n - i - 1) * sizeof(*e));
			l->n--;
			i--;
		} else if (s == es) {
			e->lcn = t;
			e->len = ee - t;
		} else if (t == ee) {
			e->len = s - es;
		} else {
			e->len = s - es;
			list_insert(l, t, ee - t);
		}
	}
	return cut;
}

static int
add_outside_zone(struct place *p, int64_t lcn, int64_t len)
{
	while (len > 0) {
		int64_t n = len;
		int st = p->ops->stored(p->ctx, lcn, len, &n);

		if (st < 0)
			return -1;
		if (n <= 0 || n > len)
			n = len;
		list_insert(&p->l[st ? L_STORED : L_FRESH], lcn, n);
		p->avail += n;
		lcn += n;
		len -= n;
	}
	return 0;
}

int
place_add_free(struct place *p, int64_t lcn, int64_t len)
{
	int64_t end = lcn + len, zs = MAX(lcn, p->zone_start),
	    ze = MIN(end, p->zone_end);

	if (len <= 0)
		return 0;
	if (zs >= ze)
		return add_outside_zone(p, lcn, len);
	if (add_outside_zone(p, lcn, zs - lcn) < 0)
		return -1;
	list_insert(&p->l[L_ZONE], zs, ze - zs);
	p->avail += ze - zs;
	return add_outside_zone(p, ze, end - ze);
}

/*
 * Check that [lcn, lcn + n) is still free; when the file system took some
 * of it meanwhile, drop what it took from the lists.  1: free, 0: the
 * lists changed (search again), -1: error.
 */
static int
still_free(struct place *p, int64_t lcn, int64_t n)
{
	int64_t ok = p->ops->free_run(p->ctx, lcn, n), used, i;

	if (ok < 0)
		return -1;
	if (ok >= n)
		return 1;
	/* The used run starts at lcn + ok; find where it ends. */
	for (used = 1; ok + used < n; used++) {
		int64_t r = p->ops->free_run(p->ctx, lcn + ok + used, 1);

		if (r < 0)
			return -1;
		if (r > 0)
			break;
	}
	for (i = 0; i < L_COUNT; i++)
		p->avail -= list_cut(&p->l[i], lcn + ok, used);
	return 0;
}

/* The first extent of l that holds n clusters whole, or -1. */
static ssize_t
first_fit(const struct list *l, int64_t n)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].len >= n)
			return (ssize_t)i;
	return -1;
}

/* Move the parts of [lcn, lcn + len) that list a holds to list b. */
static void
list_move(struct list *a, struct list *b, int64_t lcn, int64_t len)
{
	int64_t end = lcn + len;
	size_t i;

	for (i = 0; i < a->n; i++) {
		int64_t s = MAX(a->v[i].lcn, lcn);
		int64_t t = MIN(a->v[i].lcn + a->v[i].len, end);

		if (a->v[i].lcn >= end)
			break;
		if (s >= t)
			continue;
		list_cut(a, s, t - s);
		list_insert(b, s, t - s);
		i = (size_t)-1;		/* the list changed: from the start */
	}
}

/*
 * Take k clusters from the low end of extent i of list li.  Fresh space
 * that the data's last block now holds becomes stored space.
 */
static void
take(struct place *p, int li, size_t i, int64_t k)
{
	struct list *l = &p->l[li];
	int64_t end = l->v[i].lcn + k, be;

	l->v[i].lcn += k;
	l->v[i].len -= k;
	p->avail -= k;
	if (l->v[i].len == 0) {
		memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
		l->n--;
	}
	if (li != L_FRESH)
		return;
	be = p->ops->block_end(p->ctx, end - 1);
	if (be > end)
		list_move(l, &p->l[L_STORED], end, be - end);
}

int
place_alloc(struct place *p, int64_t n, struct place_run *runs,
    size_t max_runs, size_t *nruns)
{
	*nruns = 0;
	if (n <= 0)
		return 0;
	for (;;) {
		int li, r;
		ssize_t i = -1;

		for (li = 0; li < L_COUNT; li++)
			if ((i = first_fit(&p->l[li], n)) >= 0)
				break;
		if (i < 0)
			break;
		r = still_free(p, p->l[li].v[i].lcn, n);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		runs[0].lcn = p->l[li].v[i].lcn;
		runs[0].len = n;
		*nruns = 1;
		take(p, li, (size_t)i, n);
		return 0;
	}
	/* No extent holds it whole: the largest extents, in that order. */
	if (p->avail < n) {
		errno = ENOSPC;
		return -1;
	}
	while (n > 0) {
		int li, bl = -1, r;
		size_t i, bi = 0;
		int64_t k;

		for (li = 0; li < L_COUNT; li++)
			for (i = 0; i < p->l[li].n; i++)
				if (bl < 0 || p->l[li].v[i].len >
				    p->l[bl].v[bi].len) {
					bl = li;
					bi = i;
				}
		if (bl < 0 || *nruns == max_runs) {
			errno = ENOSPC;
			return -1;
		}
		k = MIN(n, p->l[bl].v[bi].len);
		r = still_free(p, p->l[bl].v[bi].lcn, k);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		runs[*nruns].lcn = p->l[bl].v[bi].lcn;
		runs[*nruns].len = k;
		(*nruns)++;
		take(p, bl, bi, k);
		n -= k;
	}
	return 0;
}
