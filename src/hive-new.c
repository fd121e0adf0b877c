/*
 * hive-new.c - a new, empty registry hive written byte by byte as regf 1.5
 * (the format Windows 10 writes): what a guest without a hive, and the
 * tests, start from.  hivex cannot make one, so this file does not use it.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "hive.h"

/*
 * An empty hive, laid out as regf 1.5 (the format Windows 10 writes):
 * a 4 KiB base block, one 4 KiB hbin holding the root nk cell, its sk
 * cell, and a free cell for the rest.  Offsets in cells are relative to
 * the first hbin.
 */
#define REGF_BLOCK	4096
#define REGF_NONE	0xFFFFFFFFu

static size_t
put_sid(uint8_t *p, const uint32_t *sub, uint8_t n)
{
	uint8_t i;

	p[0] = 1;		/* revision */
	p[1] = n;
	memset(p + 2, 0, 5);
	p[7] = 5;		/* SECURITY_NT_AUTHORITY */
	for (i = 0; i < n; i++)
		put_le32(p + 8 + 4 * i, sub[i]);
	return 8 + 4 * (size_t)n;
}

static size_t
put_ace(uint8_t *p, const uint32_t *sub, uint8_t n)
{
	size_t len = 8 + 8 + 4 * (size_t)n;

	p[0] = 0;		/* ACCESS_ALLOWED_ACE_TYPE */
	p[1] = 0x02;		/* CONTAINER_INHERIT_ACE */
	put_le16(p + 2, (uint16_t)len);
	put_le32(p + 4, 0xF003F);	/* KEY_ALL_ACCESS */
	put_sid(p + 8, sub, n);
	return len;
}

int
gp_hive_create_empty(const char *path)
{
	static const uint32_t admins[] = { 32, 544 }, system_[] = { 18 };
	uint8_t *f = xcalloc(1, 2 * REGF_BLOCK), *bin = f + REGF_BLOCK;
	uint8_t sd[256], *nk, *sk, *acl;
	size_t sdlen, off, acl_len, i, nk_size, sk_size;
	uint32_t sum = 0, nk_off = 0x20, sk_off;
	uint64_t now = ((uint64_t)time(NULL) * 10000000ull) +
	    116444736000000000ull;
	FILE *fp;
	int ret = -1;

	/* Self-relative security descriptor: owner Administrators, group
	 * SYSTEM, a DACL granting both full control. */
	memset(sd, 0, sizeof(sd));
	sd[0] = 1;
	put_le16(sd + 2, 0x8004);	/* SE_SELF_RELATIVE | SE_DACL_PRESENT */
	off = 20;
	put_le32(sd + 4, (uint32_t)off);
	off += put_sid(sd + off, admins, 2);
	put_le32(sd + 8, (uint32_t)off);
	off += put_sid(sd + off, system_, 1);
	put_le32(sd + 16, (uint32_t)off);
	acl = sd + off;
	acl[0] = 2;			/* ACL_REVISION */
	acl_len = 8;
	acl_len += put_ace(acl + acl_len, admins, 2);
	acl_len += put_ace(acl + acl_len, system_, 1);
	put_le16(acl + 2, (uint16_t)acl_len);
	put_le16(acl + 4, 2);
	sdlen = off + acl_len;

	memcpy(f, "regf", 4);
	put_le32(f + 4, 1);
	put_le32(f + 8, 1);		/* equal sequences: clean */
	put_le64(f + 12, now);
	put_le32(f + 20, 1);
	put_le32(f + 24, 5);
	put_le32(f + 28, 0);		/* primary file */
	put_le32(f + 32, 1);		/* direct memory load */
	put_le32(f + 36, nk_off);
	put_le32(f + 40, REGF_BLOCK);
	put_le32(f + 44, 1);
	for (i = 0; i < 508; i += 4)
		sum ^= get_le32(f + i);
	if (sum == 0xFFFFFFFFu)
		sum = 0xFFFFFFFEu;
	else if (sum == 0)
		sum = 1;
	put_le32(f + 508, sum);

	memcpy(bin, "hbin", 4);
	put_le32(bin + 4, 0);
	put_le32(bin + 8, REGF_BLOCK);
	put_le64(bin + 20, now);

	nk_size = (4 + 76 + 4 + 7) / 8 * 8;
	sk_off = nk_off + (uint32_t)nk_size;
	nk = bin + nk_off;
	put_le32(nk, (uint32_t)-(int32_t)nk_size);
	memcpy(nk + 4, "nk", 2);
	put_le16(nk + 6, 0x2C);		/* HIVE_ENTRY | NO_DELETE | COMP_NAME */
	put_le64(nk + 8, now);
	put_le32(nk + 20, REGF_NONE);	/* parent */
	put_le32(nk + 32, REGF_NONE);	/* subkey list */
	put_le32(nk + 36, REGF_NONE);	/* volatile subkey list */
	put_le32(nk + 44, REGF_NONE);	/* value list */
	put_le32(nk + 48, sk_off);
	put_le32(nk + 52, REGF_NONE);	/* class name */
	put_le16(nk + 76, 4);
	memcpy(nk + 80, "ROOT", 4);

	sk_size = (4 + 20 + sdlen + 7) / 8 * 8;
	sk = bin + sk_off;
	put_le32(sk, (uint32_t)-(int32_t)sk_size);
	memcpy(sk + 4, "sk", 2);
	put_le32(sk + 8, sk_off);	/* flink and blink: a list of one */
	put_le32(sk + 12, sk_off);
	put_le32(sk + 16, 1);		/* reference count */
	put_le32(sk + 20, (uint32_t)sdlen);
	memcpy(sk + 24, sd, sdlen);
	/* The rest of the bin is one free cell. */
	put_le32(bin + sk_off + sk_size,
	    (uint32_t)(REGF_BLOCK - sk_off - sk_size));

	fp = fopen(path, "wbx");
	if (!fp) {
		error_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fwrite(f, 1, 2 * REGF_BLOCK, fp) != 2 * REGF_BLOCK ||
	    fclose(fp) != 0) {
		error_set(errno, "%s: write error: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(f);
	return ret;
}
