/*
 * acl.c - inheritance of security descriptors, as Windows derives the
 * descriptor of a new object from its parent folder's (MS-DTYP 2.4.4 and
 * 2.5.3.4, "CreateSecurityDescriptor"/"ComputeInheritedACLFromParent",
 * with the automatic inheritance NTFS asks for).
 * Pure byte work: the NTFS layer reads the parent's descriptor and stores
 * the result in $Secure.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "acl.h"

const uint8_t acl_sid_administrators[16] = { 1, 2, 0, 0, 0, 0, 0, 5,
	32, 0, 0, 0, 0x20, 2, 0, 0 };

/* Security descriptor control bits and ACE flags (MS-DTYP 2.4.6, 2.4.4.1). */
#define SE_DACL_PRESENT		0x0004
#define SE_SACL_PRESENT		0x0010
#define SE_DACL_AUTO_INHERITED	0x0400
#define SE_SACL_AUTO_INHERITED	0x0800
#define SE_SELF_RELATIVE	0x8000
#define OBJECT_INHERIT		0x01
#define CONTAINER_INHERIT	0x02
#define NO_PROPAGATE		0x04
#define INHERIT_ONLY		0x08
#define INHERITED		0x10
#define AUDIT_FLAGS		0xC0

/* The generic rights and the file rights they stand for (MS-DTYP 2.4.3;
 * FILE_GENERIC_READ and friends, FILE_ALL_ACCESS). */
static const uint32_t generic_map[4][2] = {
	{ 0x80000000u, 0x00120089u },	/* GENERIC_READ */
	{ 0x40000000u, 0x00120116u },	/* GENERIC_WRITE */
	{ 0x20000000u, 0x001200A0u },	/* GENERIC_EXECUTE */
	{ 0x10000000u, 0x001F01FFu },	/* GENERIC_ALL */
};

/* CREATOR OWNER S-1-3-0 and CREATOR GROUP S-1-3-1. */
static const uint8_t creator_owner[12] = { 1, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0 };
static const uint8_t creator_group[12] = { 1, 1, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0 };

static uint32_t
get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Size of the SID at p within avail bytes, or 0 if it is not one. */
static size_t
sid_size(const uint8_t *p, size_t avail)
{
	size_t n;

	if (avail < 8 || p[0] != 1 || p[1] > 15)
		return 0;
	n = 8 + 4 * (size_t)p[1];
	return n <= avail ? n : 0;
}

struct acl_out {
	uint8_t *buf;
	size_t len, cap;
	unsigned count;
};

/* Append an ACE unless an identical one is there already. */
static void
add_ace(struct acl_out *o, uint8_t type, uint8_t flags, const uint8_t *body,
    size_t blen, uint32_t mask, bool has_mask, const uint8_t *sid,
    size_t slen, const uint8_t *rest, size_t rlen)
{
	size_t size = 4 + (has_mask ? 4 + slen + rlen : blen), at;
	uint8_t *a;

	size = (size + 3) & ~(size_t)3;
	if (o->len + size > o->cap) {
		o->cap = (o->len + size) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	a = o->buf + o->len;
	memset(a, 0, size);
	a[0] = type;
	a[1] = flags;
	put16(a + 2, (unsigned)size);
	if (has_mask) {
		put32(a + 4, mask);
		memcpy(a + 8, sid, slen);
		if (rlen)
			memcpy(a + 8 + slen, rest, rlen);
	} else {
		memcpy(a + 4, body, blen);
	}
	for (at = 0; at < o->len; at += o->buf[at + 2] | (size_t)o->buf[at + 3]
	    << 8)
		if ((o->buf[at + 2] | (size_t)o->buf[at + 3] << 8) == size &&
		    memcmp(o->buf + at, a, size) == 0)
			return;		/* Windows keeps one of the two */
	o->len += size;
	o->count++;
}

/*
 * The inherited ACEs of one ACL (at acl, avail bytes) into o; -1 when the
 * ACL cannot be read.
 */
static int
inherit_acl(const uint8_t *acl, size_t avail, bool is_dir, uint8_t id,
    const uint8_t *owner, size_t olen, const uint8_t *group, size_t glen,
    struct acl_out *o)
{
	size_t size, off = 8;
	unsigned count, i;

	if (avail < 8)
		return -1;
	size = acl[2] | (size_t)acl[3] << 8;
	count = acl[4] | (unsigned)acl[5] << 8;
	if (size < 8 || size > avail)
		return -1;
	for (i = 0; i < count; i++) {
		const uint8_t *a = acl + off, *sid;
		uint8_t type, flags, f;
		size_t asize, slen;
		uint32_t mask, mapped;
		bool std, creator, generic;
		int k;

		if (off + 4 > size)
			return -1;
		type = a[0];
		flags = a[1];
		asize = a[2] | (size_t)a[3] << 8;
		if (asize < 4 || off + asize > size)
			return -1;
		off += asize;
		if (!(flags & (OBJECT_INHERIT | CONTAINER_INHERIT)))
			continue;
		/* Access allowed/denied, system audit and alarm, mandatory
		 * label: a mask and one SID; other types are passed on as
		 * they are. */
		std = type <= 3 || type == 0x11;
		sid = a + 8;
		slen = std && asize >= 8 ? sid_size(sid, asize - 8) : 0;
		if (std && !slen)
			return -1;
		mask = std ? get32(a + 4) : 0;
		mapped = mask & 0x0FFFFFFFu;
		for (k = 0; k < 4; k++)
			if (mask & generic_map[k][0])
				mapped |= generic_map[k][1];
		creator = std && slen == 12 &&
		    (!memcmp(sid, creator_owner, 12) ||
		    !memcmp(sid, creator_group, 12));
		generic = std && mapped != mask;
		if (!is_dir) {
			if (!(flags & OBJECT_INHERIT))
				continue;
			f = (uint8_t)(id | (flags & AUDIT_FLAGS));
			if (!std) {
				add_ace(o, type, f, a + 4, asize - 4, 0, false,
				    NULL, 0, NULL, 0);
				continue;
			}
			add_ace(o, type, f, NULL, 0, mapped, true,
			    creator ? (sid[8] ? group : owner) : sid,
			    creator ? (sid[8] ? glen : olen) : slen,
			    a + 8 + slen, asize - 8 - slen);
			continue;
		}
		/* A folder. */
		if (!(flags & CONTAINER_INHERIT)) {
			/* Object-inherit only: passed on to its files,
			 * inherit-only here, unless it stops here. */
			if (flags & NO_PROPAGATE)
				continue;
			f = (uint8_t)(id | INHERIT_ONLY | OBJECT_INHERIT |
			    (flags & AUDIT_FLAGS));
			add_ace(o, type, f, a + 4, asize - 4, 0, false, NULL, 0,
			    NULL, 0);
			continue;
		}
		f = (uint8_t)(id | (flags & AUDIT_FLAGS));
		if (!std) {
			if (!(flags & NO_PROPAGATE))
				f |= flags & (OBJECT_INHERIT | CONTAINER_INHERIT);
			add_ace(o, type, f, a + 4, asize - 4, 0, false, NULL, 0,
			    NULL, 0);
			continue;
		}
		if ((flags & NO_PROPAGATE) || creator || generic) {
			/* The ACE as it applies to this folder ... */
			add_ace(o, type, f, NULL, 0, mapped, true,
			    creator ? (sid[8] ? group : owner) : sid,
			    creator ? (sid[8] ? glen : olen) : slen,
			    a + 8 + slen, asize - 8 - slen);
			/* ... and, unless it stops here, as it was, for
			 * what the folder will hold. */
			if (!(flags & NO_PROPAGATE))
				add_ace(o, type, (uint8_t)(f | INHERIT_ONLY |
				    (flags & (OBJECT_INHERIT |
				    CONTAINER_INHERIT))), a + 4, asize - 4, 0,
				    false, NULL, 0, NULL, 0);
			continue;
		}
		add_ace(o, type, (uint8_t)(f | (flags & (OBJECT_INHERIT |
		    CONTAINER_INHERIT))), a + 4, asize - 4, 0, false, NULL, 0,
		    NULL, 0);
	}
	return 0;
}

uint8_t *
acl_inherit(const uint8_t *parent, size_t plen, bool is_dir,
    const uint8_t *owner, const uint8_t *group, size_t *len)
{
	struct acl_out dacl = { 0 }, sacl = { 0 };
	size_t olen = sid_size(owner, 68), glen = sid_size(group, 68), n, at;
	uint32_t doff, soff;
	unsigned pctl, ctl = SE_SELF_RELATIVE;
	uint8_t *sd = NULL;

	if (plen < 20 || parent[0] != 1 || !olen || !glen)
		goto bad;
	pctl = parent[2] | (unsigned)parent[3] << 8;
	soff = get32(parent + 12);
	doff = get32(parent + 16);
	/* Inherited ACEs are marked so only where the parent's ACL takes
	 * part in automatic inheritance (SE_DACL_AUTO_INHERITED): a volume
	 * root made by format has not, and Windows' own files under it carry
	 * unmarked ACEs. */
	if ((doff && (doff >= plen || inherit_acl(parent + doff, plen - doff,
	    is_dir, pctl & SE_DACL_AUTO_INHERITED ? INHERITED : 0, owner, olen,
	    group, glen, &dacl) < 0)) ||
	    (soff && (soff >= plen || inherit_acl(parent + soff, plen - soff,
	    is_dir, pctl & SE_SACL_AUTO_INHERITED ? INHERITED : 0, owner, olen,
	    group, glen, &sacl) < 0)))
		goto bad;
	/* An ACL's size is 16 bits: a parent whose inherited ACEs would not
	 * fit (splitting can double them) has no descriptor to give. */
	if (8 + dacl.len > 0xFFFF || 8 + sacl.len > 0xFFFF)
		goto bad;
	/* A DACL always (an empty one if nothing was inherited), and the
	 * parent's automatic-inheritance bits. */
	ctl |= SE_DACL_PRESENT | (pctl & SE_DACL_AUTO_INHERITED);
	if (sacl.count)
		ctl |= SE_SACL_PRESENT | (pctl & SE_SACL_AUTO_INHERITED);
	n = 20 + 8 + dacl.len + (sacl.count ? 8 + sacl.len : 0) + olen + glen;
	sd = xcalloc(1, n);
	sd[0] = 1;
	put16(sd + 2, ctl);
	at = 20;
	put32(sd + 16, (uint32_t)at);
	sd[at] = 2;			/* ACL_REVISION */
	put16(sd + at + 2, (unsigned)(8 + dacl.len));
	put16(sd + at + 4, dacl.count);
	if (dacl.len)
		memcpy(sd + at + 8, dacl.buf, dacl.len);
	at += 8 + dacl.len;
	if (sacl.count) {
		put32(sd + 12, (uint32_t)at);
		sd[at] = 2;
		put16(sd + at + 2, (unsigned)(8 + sacl.len));
		put16(sd + at + 4, sacl.count);
		memcpy(sd + at + 8, sacl.buf, sacl.len);
		at += 8 + sacl.len;
	}
	put32(sd + 4, (uint32_t)at);
	memcpy(sd + at, owner, olen);
	at += olen;
	put32(sd + 8, (uint32_t)at);
	memcpy(sd + at, group, glen);
	*len = n;
	free(dacl.buf);
	free(sacl.buf);
	return sd;
bad:
	free(dacl.buf);
	free(sacl.buf);
	errno = EINVAL;
	return NULL;
}
