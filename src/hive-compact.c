/*
 * hive-compact.c - rewrite a regf hive with only the cells reachable from
 * its root key, on bytes in memory; no hivex here.
 *
 * hivex never reuses a cell it frees: each edit appends new cells and
 * leaves the old ones free inside the hive, so every stage/remove cycle
 * would leave the SYSTEM hive larger.  Windows itself reorganizes hives
 * that have grown fragmented; this is the same kind of rewrite.  Every
 * reachable cell is copied as it is, in its original order (so the
 * result of compacting a compact hive is the hive itself), into new hive
 * bins, and every cell offset inside it is translated.  Anything the
 * walk does not understand (a shared or dangling cell, a list longer
 * than its cell, an unknown list signature) leaves the hive as hivex
 * wrote it: compaction saves space, it never decides what a hive means.
 *
 * Layout facts from the Windows registry file format specification
 * (M. Suhanov): "Hive bins", "Cells", "Key node", "Key value", "Key
 * security", "Subkeys list", "Big data".
 */
#include <config.h>

#include <stdlib.h>

#include "hive.h"

#define BASE_BLOCK	4096u
#define BIN_HDR		32u
#define BIN_UNIT	4096u
#define NONE		0xFFFFFFFFu
/* Data longer than this is a big-data record in hives of version 1.4+. */
#define BIG_DATA_MIN	16345u

enum kind { K_FREE, K_NK, K_SUBL, K_VLIST, K_VK, K_DATA, K_DB, K_DBLIST,
	K_SK, K_CLASS };

struct cell {
	uint32_t off;		/* offset from the first bin, as in pointers */
	uint32_t size;		/* whole cell, size field included */
	uint32_t newoff;
	uint32_t aux;		/* NK: parent's index + 1; lists: count */
	uint8_t kind;
};

struct walk {
	const uint8_t *bins;	/* the first bin */
	uint32_t bins_size;
	uint32_t minor;
	struct cell *c;
	size_t n;
	uint32_t *stack;
	size_t nstack;
	const char *why;
};

static uint32_t
rd32(const struct walk *w, const struct cell *c, uint32_t at)
{
	return get_le32(w->bins + c->off + 4 + at);
}

static uint16_t
rd16(const struct walk *w, const struct cell *c, uint32_t at)
{
	return get_le16(w->bins + c->off + 4 + at);
}

/* Cell data bytes (the size field excluded). */
static uint32_t
dlen(const struct cell *c)
{
	return c->size - 4;
}

/* The allocated cells of every bin, in file order. */
static int
index_cells(struct walk *w)
{
	uint32_t b = 0, size;
	size_t cap = 0;

	while (b < w->bins_size) {
		uint32_t end, at;

		if (w->bins_size - b < BIN_HDR ||
		    memcmp(w->bins + b, "hbin", 4) != 0 ||
		    get_le32(w->bins + b + 4) != b) {
			w->why = "a hive bin header is not where it should be";
			return -1;
		}
		size = get_le32(w->bins + b + 8);
		if (size < BIN_UNIT || size % BIN_UNIT || size > w->bins_size - b) {
			w->why = "a hive bin has an impossible size";
			return -1;
		}
		end = b + size;
		for (at = b + BIN_HDR; at < end; at += size) {
			int32_t raw;

			if (end - at < 8) {
				w->why = "a cell runs past its bin";
				return -1;
			}
			raw = (int32_t)get_le32(w->bins + at);
			size = raw < 0 ? (uint32_t)0 - (uint32_t)raw : (uint32_t)raw;
			if (size < 8 || size % 8 || size > end - at) {
				w->why = "a cell has an impossible size";
				return -1;
			}
			if (raw > 0)
				continue;
			if (w->n == cap) {
				cap = cap ? cap * 2 : 4096;
				w->c = xrealloc(w->c, cap * sizeof(*w->c));
			}
			w->c[w->n++] = (struct cell){ .off = at, .size = size };
		}
		b = end;
	}
	return 0;
}

/* The index of the allocated cell that starts at off, or -1. */
static ssize_t
find(const struct walk *w, uint32_t off)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->c[mid].off == off)
			return (ssize_t)mid;
		if (w->c[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * Claim the cell at off as kind (with aux) and queue it.  A cell reached
 * twice is refused, except a security cell: many keys share one, and the
 * list of security cells is a ring.
 */
static int
reach(struct walk *w, uint32_t off, enum kind k, uint32_t aux, uint32_t need)
{
	ssize_t i = off < w->bins_size ? find(w, off) : -1;
	struct cell *c;

	if (i < 0) {
		w->why = "a cell offset points to no cell";
		return -1;
	}
	c = &w->c[i];
	if (c->kind == K_SK && k == K_SK)
		return 0;
	if (c->kind != K_FREE) {
		w->why = "a cell is used twice";
		return -1;
	}
	if (dlen(c) < need) {
		w->why = "a cell is smaller than what it holds";
		return -1;
	}
	c->kind = (uint8_t)k;
	c->aux = aux;
	w->stack[w->nstack++] = (uint32_t)i;	/* each cell once: n is enough */
	return 0;
}

/* A key or value cell: its signature, and room for its fixed part and
 * the name whose length is at name_len. */
static bool
named_cell(const struct walk *w, const struct cell *c, const char *sig,
    uint32_t fixed, uint32_t name_len)
{
	return memcmp(w->bins + c->off + 4, sig, 2) == 0 &&
	    dlen(c) >= fixed + rd16(w, c, name_len);
}

static int
visit_nk(struct walk *w, size_t i)
{
	struct cell *c = &w->c[i];
	uint32_t nsub, nval, sk, cls, clen;

	if (!named_cell(w, c, "nk", 76, 72)) {
		w->why = "a key cell is not a key";
		return -1;
	}
	nsub = rd32(w, c, 20);
	nval = rd32(w, c, 36);
	sk = rd32(w, c, 44);
	cls = rd32(w, c, 48);
	clen = rd16(w, c, 74);
	if (nsub && reach(w, rd32(w, c, 28), K_SUBL, (uint32_t)i + 1, 4) < 0)
		return -1;
	if (nval > w->bins_size / 4) {
		w->why = "a key has more values than the hive can hold";
		return -1;
	}
	if (nval && reach(w, rd32(w, c, 40), K_VLIST, nval, nval * 4) < 0)
		return -1;
	if (sk != NONE && reach(w, sk, K_SK, 0, 20) < 0)
		return -1;
	if (clen && reach(w, cls, K_CLASS, 0, clen) < 0)
		return -1;
	return 0;
}

/* A subkey list's element count and size, or -1 for what is not one. */
static int
list_shape(const struct walk *w, const struct cell *c, uint32_t *n,
    uint32_t *elem)
{
	const uint8_t *s = w->bins + c->off + 4;

	if (memcmp(s, "lf", 2) == 0 || memcmp(s, "lh", 2) == 0)
		*elem = 8;
	else if (memcmp(s, "li", 2) == 0 || memcmp(s, "ri", 2) == 0)
		*elem = 4;
	else
		return -1;
	*n = rd16(w, c, 2);
	if (4 + (uint64_t)*n * *elem > dlen(c))
		return -1;
	return 0;
}

static int
visit_subl(struct walk *w, size_t i)
{
	struct cell *c = &w->c[i];
	bool ri = memcmp(w->bins + c->off + 4, "ri", 2) == 0;
	uint32_t n, elem, k, parent = c->aux;

	if (list_shape(w, c, &n, &elem) < 0) {
		w->why = "a subkey list is not one";
		return -1;
	}
	for (k = 0; k < n; k++) {
		uint32_t off = rd32(w, c, 4 + k * elem);

		/* An index root's parts are lists of the same key (and
		 * never index roots themselves). */
		if (ri ? reach(w, off, K_SUBL, parent, 4) < 0 :
		    reach(w, off, K_NK, parent, 76) < 0)
			return -1;
		if (ri && memcmp(w->bins + off + 4, "ri", 2) == 0) {
			w->why = "an index root lists an index root";
			return -1;
		}
	}
	return 0;
}

static int
visit_vk(struct walk *w, size_t i)
{
	struct cell *c = &w->c[i];
	uint32_t len, off;

	if (!named_cell(w, c, "vk", 20, 2)) {
		w->why = "a value cell is not a value";
		return -1;
	}
	len = rd32(w, c, 4);
	off = rd32(w, c, 8);
	if (len & 0x80000000u || len == 0)
		return 0;		/* resident in the offset field, or none */
	if (w->minor >= 4 && len >= BIG_DATA_MIN && off < w->bins_size &&
	    w->bins_size - off >= 8 && memcmp(w->bins + off + 4, "db", 2) == 0)
		return reach(w, off, K_DB, 0, 8);
	return reach(w, off, K_DATA, 0, len);
}

static int
visit(struct walk *w, size_t i)
{
	struct cell *c = &w->c[i];
	uint32_t k;

	switch (c->kind) {
	case K_NK:
		return visit_nk(w, i);
	case K_SUBL:
		return visit_subl(w, i);
	case K_VLIST:
		for (k = 0; k < c->aux; k++)
			if (reach(w, rd32(w, c, k * 4), K_VK, 0, 20) < 0)
				return -1;
		return 0;
	case K_VK:
		return visit_vk(w, i);
	case K_DB:
		k = rd16(w, c, 2);
		return reach(w, rd32(w, c, 4), K_DBLIST, k, k * 4);
	case K_DBLIST:
		for (k = 0; k < c->aux; k++)
			if (reach(w, rd32(w, c, k * 4), K_DATA, 0, 0) < 0)
				return -1;
		return 0;
	case K_SK:
		if (memcmp(w->bins + c->off + 4, "sk", 2) != 0) {
			w->why = "a security cell is not one";
			return -1;
		}
		if (reach(w, rd32(w, c, 4), K_SK, 0, 20) < 0 ||
		    reach(w, rd32(w, c, 8), K_SK, 0, 20) < 0)
			return -1;
		return 0;
	default:
		return 0;
	}
}

/* The new offset of the reachable cell at the old offset off. */
static uint32_t
moved(const struct walk *w, uint32_t off)
{
	return w->c[find(w, off)].newoff;
}

static void
relocate(const struct walk *w, const struct cell *c, uint8_t *d)
{
	uint32_t k, n, elem;

	switch (c->kind) {
	case K_NK:
		if (c->aux)
			put_le32(d + 16, w->c[c->aux - 1].newoff);
		put_le32(d + 28, get_le32(d + 20) ? moved(w, get_le32(d + 28)) : NONE);
		put_le32(d + 40, get_le32(d + 36) ? moved(w, get_le32(d + 40)) : NONE);
		if (get_le32(d + 44) != NONE)
			put_le32(d + 44, moved(w, get_le32(d + 44)));
		put_le32(d + 48, get_le16(d + 74) ? moved(w, get_le32(d + 48)) : NONE);
		break;
	case K_SUBL:
		(void)list_shape(w, c, &n, &elem);
		for (k = 0; k < n; k++)
			put_le32(d + 4 + k * elem, moved(w, get_le32(d + 4 + k * elem)));
		break;
	case K_VLIST:
	case K_DBLIST:
		for (k = 0; k < c->aux; k++)
			put_le32(d + k * 4, moved(w, get_le32(d + k * 4)));
		break;
	case K_VK:
		n = get_le32(d + 4);
		if (n == 0)
			put_le32(d + 8, NONE);
		else if (!(n & 0x80000000u))
			put_le32(d + 8, moved(w, get_le32(d + 8)));
		break;
	case K_DB:
		put_le32(d + 4, moved(w, get_le32(d + 4)));
		break;
	case K_SK:
		put_le32(d + 4, moved(w, get_le32(d + 4)));
		put_le32(d + 8, moved(w, get_le32(d + 8)));
		break;
	default:
		break;
	}
}

/* Bins still open for cells that fit in what is left of them. */
#define OPEN_BINS	16

struct bin {
	uint32_t start, at, end;
};

/* End a bin: its size, and a free cell over what is left of it. */
static void
close_bin(uint8_t *out, const struct bin *b)
{
	put_le32(out + b->start + 8, b->end - b->start);
	if (b->end > b->at)
		put_le32(out + b->at, b->end - b->at);
}

/*
 * Lay the reachable cells out, in their old order, in new bins of 4 KiB
 * (larger only for a cell that needs it, as Windows makes them), at most
 * cap bytes in all.  Each cell goes into the first of the last
 * OPEN_BINS bins that has room left for it, so small cells fill what a
 * large one left.  Returns the new bins' size, or 0 when they would not
 * fit in cap.
 */
static uint32_t
layout(struct walk *w, uint8_t *out, uint32_t cap)
{
	struct bin open[OPEN_BINS];
	size_t nopen = 0, i, k;
	uint32_t end = 0;

	for (i = 0; i < w->n; i++) {
		struct cell *c = &w->c[i];
		uint64_t need;

		if (c->kind == K_FREE)
			continue;
		for (k = 0; k < nopen; k++)
			if (open[k].end - open[k].at >= c->size)
				break;
		if (k == nopen) {
			need = ((uint64_t)BIN_HDR + c->size + BIN_UNIT - 1) /
			    BIN_UNIT * BIN_UNIT;
			if (need > cap - end)
				return 0;
			if (nopen == OPEN_BINS) {
				close_bin(out, &open[0]);
				memmove(open, open + 1, --nopen * sizeof(*open));
			}
			k = nopen++;
			open[k] = (struct bin){ end, end + BIN_HDR,
			    end + (uint32_t)need };
			if (end == 0)	/* the first bin keeps its timestamp */
				memcpy(out, w->bins, BIN_HDR);
			else
				memcpy(out + end, "hbin", 4);
			put_le32(out + end + 4, end);
			end = open[k].end;
		}
		c->newoff = open[k].at;
		open[k].at += c->size;
	}
	for (k = 0; k < nopen; k++)
		close_bin(out, &open[k]);
	return end;
}

int
hive_compact(uint8_t **buf, size_t *len, const char **why)
{
	struct walk w = { 0 };
	struct hive_hdr h;
	uint8_t *out = NULL;
	uint32_t size;
	size_t i, reached = 0;
	int ret = 0;

	*why = NULL;
	if (*len < BASE_BLOCK || hive_header(*buf, *len, &h) < 0 || h.bins_size > *len - BASE_BLOCK ||
	    h.bins_size % BIN_UNIT || h.major != 1) {
		*why = "its base block is not one this rewrite knows";
		return 0;
	}
	w.bins = *buf + BASE_BLOCK;
	w.bins_size = h.bins_size;
	w.minor = h.minor;
	if (index_cells(&w) < 0)
		goto out;
	w.stack = xmalloc((w.n + 1) * sizeof(*w.stack));
	if (reach(&w, h.root, K_NK, 0, 76) < 0)
		goto out;
	while (w.nstack) {
		if (visit(&w, w.stack[--w.nstack]) < 0)
			goto out;
		reached++;
	}

	/* Kept only when smaller (out is zeroed: new bins' other fields). */
	out = xcalloc(1, BASE_BLOCK + (size_t)w.bins_size);
	size = layout(&w, out + BASE_BLOCK, w.bins_size);
	if (size == 0 || size >= w.bins_size) {
		w.why = NULL;	/* nothing to gain: not worth a word */
		goto out;
	}
	for (i = 0; i < w.n; i++) {
		struct cell *c = &w.c[i];
		uint8_t *d = out + BASE_BLOCK + c->newoff;

		if (c->kind == K_FREE)
			continue;
		memcpy(d, w.bins + c->off, c->size);
		relocate(&w, c, d + 4);
	}
	memcpy(out, *buf, BASE_BLOCK);
	put_le32(out + 36, w.c[find(&w, h.root)].newoff);
	put_le32(out + 40, size);
	hive_fix_checksum(out);
	free(*buf);
	*buf = out;
	*len = BASE_BLOCK + (size_t)size;
	out = NULL;
	ret = 1;
	debug("hive compacted: %zu of %zu cells kept, %u of %u bytes of bins",
	    reached, w.n, size, w.bins_size);
out:
	if (!ret)
		*why = w.why;
	free(out);
	free(w.c);
	free(w.stack);
	return ret;
}
