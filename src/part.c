/*
 * part.c - partition tables: GPT (UEFI 2.x, chapter 5) and MBR, read into
 * a plain array, plus a look at each partition's first bytes to name its
 * file system.  GPT headers and entry arrays are checked by CRC-32
 * (zlib's); a bad primary falls back to the backup with a warning.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <zlib.h>

#include "part.h"

#define GPT_MAX_ENTRIES		4096	/* the spec's minimum is 128 */
#define GPT_MAX_ENTRY_SIZE	4096
#define GPT_MAX_ARRAY		(4u * 1024 * 1024)
#define MBR_MAX_LOGICAL		128	/* EBR chain cap (loops, abuse) */
#define PART_MAX		(GPT_MAX_ENTRIES + 4)

static const struct {
	const char *guid;
	const char *name;
} gpt_types[] = {
	{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
	{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI system" },
	{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved" },
	{ "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery" },
	{ "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", "Windows LDM metadata" },
	{ "AF9B60A0-1431-4F62-BC68-3311714A69AD", "Windows LDM data" },
	{ "E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D", "Windows storage spaces" },
	{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
	{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
	{ "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
};

static const struct {
	uint8_t type;
	const char *name;
} mbr_types[] = {
	{ 0x01, "FAT12" }, { 0x04, "FAT16 <32M" }, { 0x05, "Extended" },
	{ 0x06, "FAT16" }, { 0x07, "NTFS/exFAT" }, { 0x0b, "FAT32" },
	{ 0x0c, "FAT32 (LBA)" }, { 0x0e, "FAT16 (LBA)" },
	{ 0x0f, "Extended (LBA)" }, { 0x12, "OEM/recovery" },
	{ 0x17, "Hidden NTFS" }, { 0x27, "Windows recovery" },
	{ 0x42, "Windows LDM" }, { 0x82, "Linux swap" }, { 0x83, "Linux" },
	{ 0x85, "Linux extended" }, { 0xee, "GPT protective" },
	{ 0xef, "EFI system" },
};

static const char *
img_path(gp_image *img)
{
	struct gp_image_info info;

	gp_image_get_info(img, &info);
	return info.path;
}

#define corrupt(img, ...) error_corrupt(img_path(img), __VA_ARGS__)

static struct gp_partition *
add(struct gp_partition_table *pt)
{
	struct gp_partition *p;

	pt->parts = xrealloc(pt->parts, (pt->count + 1) * sizeof(*p));
	p = &pt->parts[pt->count++];
	memset(p, 0, sizeof(*p));
	p->filesystem = "unknown";
	return p;
}

/* ---- GPT ---------------------------------------------------------- */

struct gpt_hdr {
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t nentries, entry_size, entries_crc;
	guid_t disk_guid;
};

/* A read whose failure is an answer ("unreadable"), recorded nowhere. */
static int
read_probe(gp_image *img, void *buf, size_t n, uint64_t off)
{
	struct gp_error e;
	int r;

	error_try(&e);
	r = gp_image_read(img, buf, n, off);
	return error_end(&e) ? -1 : r;
}

/* Check a GPT header at lba and its entry array; fills *h and *array. */
static bool
gpt_load(gp_image *img, uint32_t ss, uint64_t nsec, uint64_t lba,
    struct gpt_hdr *h, uint8_t **array, const char **why)
{
	uint8_t *sec = xmalloc(ss), *arr;
	uint32_t hsize, crc;
	uint64_t bytes;

	*array = NULL;
	if (read_probe(img, sec, ss, lba * ss) < 0) {
		*why = "unreadable";
		goto bad;
	}
	if (memcmp(sec, "EFI PART", 8) != 0) {
		*why = "no signature";
		goto bad;
	}
	hsize = get_le32(sec + 12);
	if (hsize < 92 || hsize > ss) {
		*why = "bad header size";
		goto bad;
	}
	crc = get_le32(sec + 16);
	put_le32(sec + 16, 0);
	if (!SUM_OK((uint32_t)crc32(0, sec, hsize), crc)) {
		*why = "bad header CRC";
		goto bad;
	}
	h->my_lba = get_le64(sec + 24);
	h->alt_lba = get_le64(sec + 32);
	h->first_usable = get_le64(sec + 40);
	h->last_usable = get_le64(sec + 48);
	guid_from_bytes(&h->disk_guid, sec + 56);
	h->entries_lba = get_le64(sec + 72);
	h->nentries = get_le32(sec + 80);
	h->entry_size = get_le32(sec + 84);
	h->entries_crc = get_le32(sec + 88);
	if (h->my_lba != lba) {
		*why = "header names another LBA as its own";
		goto bad;
	}
	if (h->entry_size < 128 || h->entry_size % 8 ||
	    h->entry_size > GPT_MAX_ENTRY_SIZE || h->nentries > GPT_MAX_ENTRIES ||
	    (uint64_t)h->nentries * h->entry_size > GPT_MAX_ARRAY) {
		*why = "absurd entry count or size";
		goto bad;
	}
	bytes = (uint64_t)h->nentries * h->entry_size;
	if (h->entries_lba >= nsec ||
	    (bytes + ss - 1) / ss > nsec - h->entries_lba) {
		*why = "entry array overruns the disk";
		goto bad;
	}
	if (h->first_usable > h->last_usable || h->last_usable >= nsec) {
		*why = "usable range lies outside the disk";
		goto bad;
	}
	arr = xmalloc(bytes ? bytes : 1);
	if (bytes && read_probe(img, arr, (size_t)bytes,
	    h->entries_lba * ss) < 0) {
		free(arr);
		*why = "entry array unreadable";
		goto bad;
	}
	if (!SUM_OK((uint32_t)crc32(0, arr, (uInt)bytes), h->entries_crc)) {
		free(arr);
		*why = "bad entry array CRC";
		goto bad;
	}
	*array = arr;
	free(sec);
	return true;
bad:
	free(sec);
	return false;
}

static const char *
gpt_type_name(const char *g)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(gpt_types); i++)
		if (strcasecmp(g, gpt_types[i].guid) == 0)
			return gpt_types[i].name;
	return NULL;
}

static int
gpt_read(gp_image *img, uint32_t ss, uint64_t nsec,
    struct gp_partition_table *pt)
{
	struct gpt_hdr ph, bh, *h;
	uint8_t *parr = NULL, *barr = NULL, *arr;
	const char *pwhy = NULL, *bwhy = NULL;
	bool pok, bok;
	uint32_t i;
	struct gp_image_info info;
	int ret = -1;

	gp_image_get_info(img, &info);
	pok = gpt_load(img, ss, nsec, 1, &ph, &parr, &pwhy);
	bok = gpt_load(img, ss, nsec, pok && ph.alt_lba < nsec ? ph.alt_lba :
	    nsec - 1, &bh, &barr, &bwhy);
	if (!bok && pok && ph.alt_lba != nsec - 1)
		bok = gpt_load(img, ss, nsec, nsec - 1, &bh, &barr, &bwhy);
	if (!pok && !bok) {
		corrupt(img, "GPT is corrupt: primary header %s, backup header "
		    "%s", pwhy, bwhy);
		goto out;
	}
	if (!pok)
		warn_add("%s: primary GPT header is bad (%s); using the backup",
		    info.path, pwhy);
	else if (!bok)
		warn_add("%s: backup GPT header is bad (%s)", info.path, bwhy);
	h = pok ? &ph : &bh;
	arr = pok ? parr : barr;
	pt->scheme = GP_SCHEME_GPT;
	guid_format(&h->disk_guid, pt->disk_guid);
	for (i = 0; i < h->nentries; i++) {
		const uint8_t *e = arr + (uint64_t)i * h->entry_size;
		uint64_t first = get_le64(e + 32), last = get_le64(e + 40);
		struct gp_partition *p;
		guid_t tg;
		char *name;

		if (is_zero(e, 16))
			continue;
		if (first > last || last >= nsec) {
			corrupt(img, "GPT entry %u (LBA %llu..%llu) overruns the "
			    "disk (%llu sectors)", i + 1,
			    (unsigned long long)first, (unsigned long long)last,
			    (unsigned long long)nsec);
			goto out;
		}
		p = add(pt);
		p->index = i + 1;
		p->start = first * ss;
		p->size = (last - first + 1) * ss;
		guid_from_bytes(&tg, e);
		guid_format(&tg, p->type);
		/* Drop the braces: type GUIDs are shown bare, as sgdisk does. */
		memmove(p->type, p->type + 1, 36);
		p->type[36] = '\0';
		p->type_name = gpt_type_name(p->type);
		name = utf16_to_utf8(e + 56, 36, false);
		snprintf(p->name, sizeof(p->name), "%s", name);
		free(name);
	}
	ret = 0;
out:
	free(parr);
	free(barr);
	return ret;
}

/* ---- MBR ---------------------------------------------------------- */

static const char *
mbr_type_name(uint8_t t)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mbr_types); i++)
		if (mbr_types[i].type == t)
			return mbr_types[i].name;
	return NULL;
}

static bool
is_extended(uint8_t t)
{
	return t == 0x05 || t == 0x0f || t == 0x85;
}

static int
mbr_add(gp_image *img, struct gp_partition_table *pt, unsigned index,
    uint8_t type, uint64_t lba, uint64_t nsect, uint32_t ss, uint64_t nsec)
{
	struct gp_partition *p;

	if (lba + nsect > nsec || lba == 0)
		return corrupt(img, "MBR partition %u (LBA %llu, %llu sectors) "
		    "lies outside the disk (%llu sectors)", index,
		    (unsigned long long)lba, (unsigned long long)nsect,
		    (unsigned long long)nsec);
	p = add(pt);
	p->index = index;
	p->start = lba * ss;
	p->size = nsect * ss;
	snprintf(p->type, sizeof(p->type), "0x%02x", type);
	p->type_name = mbr_type_name(type);
	return 0;
}

static int
mbr_read(gp_image *img, const uint8_t *mbr, uint32_t ss, uint64_t nsec,
    struct gp_partition_table *pt)
{
	uint8_t *sec = xmalloc(ss);
	unsigned i, logical = 5;
	int ret = -1;

	pt->scheme = GP_SCHEME_MBR;
	pt->mbr_signature = get_le32(mbr + 440);
	for (i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		uint8_t type = e[4];
		uint64_t lba = get_le32(e + 8), n = get_le32(e + 12);

		if (type == 0 || n == 0)
			continue;
		if (mbr_add(img, pt, i + 1, type, lba, n, ss, nsec) < 0)
			goto out;
		if (is_extended(type)) {
			/* Walk the EBR chain; links are relative to the
			 * extended partition's start. */
			uint64_t ext = lba, ebr = lba;
			unsigned hops = 0;

			while (ebr) {
				const uint8_t *l, *nx;

				if (++hops > MBR_MAX_LOGICAL) {
					corrupt(img, "extended partition chain "
					    "is longer than %d (a loop?)",
					    MBR_MAX_LOGICAL);
					goto out;
				}
				if (ebr >= nsec) {
					corrupt(img, "extended boot record at "
					    "LBA %llu lies outside the disk",
					    (unsigned long long)ebr);
					goto out;
				}
				if (gp_image_read(img, sec, ss, ebr * ss) < 0)
					goto out;
				if (sec[510] != 0x55 || sec[511] != 0xaa)
					break;
				l = sec + 446;
				nx = sec + 462;
				if (l[4] && get_le32(l + 12) &&
				    mbr_add(img, pt, logical++, l[4],
				    ebr + get_le32(l + 8), get_le32(l + 12), ss, nsec) < 0)
					goto out;
				ebr = is_extended(nx[4]) && get_le32(nx + 8) ?
				    ext + get_le32(nx + 8) : 0;
			}
		}
	}
	ret = 0;
out:
	free(sec);
	return ret;
}

/* ---- file systems ------------------------------------------------- */

static void
probe_fs(gp_image *img, struct gp_partition *p)
{
	uint8_t b[4096];
	size_t n = (size_t)MIN(p->size, (uint64_t)sizeof(b));
	size_t i;

	if (n < 512 || read_probe(img, b, n, p->start) < 0)
		return;
	if (memcmp(b + 3, "NTFS    ", 8) == 0) {
		p->filesystem = "ntfs";
	} else if (memcmp(b + 3, "-FVE-FS-", 8) == 0) {
		p->filesystem = "bitlocker";
	} else if (memcmp(b + 3, "EXFAT   ", 8) == 0) {
		p->filesystem = "exfat";
	} else if (memcmp(b + 3, "ReFS", 4) == 0) {
		p->filesystem = "refs";
	} else if (memcmp(b + 82, "FAT32   ", 8) == 0) {
		p->filesystem = "fat";
		if (b[66] == 0x29)
			memcpy(p->label, b + 71, 11);
	} else if (memcmp(b + 54, "FAT1", 4) == 0 || memcmp(b + 54, "FAT ", 4) == 0) {
		p->filesystem = "fat";
		if (b[38] == 0x29)
			memcpy(p->label, b + 43, 11);
	} else if (n >= 1082 && get_le16(b + 1080) == 0xEF53) {
		p->filesystem = "ext";
	} else if (memcmp(b, "XFSB", 4) == 0) {
		p->filesystem = "xfs";
	} else if (memcmp(b, "LUKS\xba\xbe", 6) == 0) {
		p->filesystem = "luks";
	} else if (n >= 1024 && memcmp(b + 512, "LABELONE", 8) == 0 &&
	    memcmp(b + 512 + 24, "LVM2 001", 8) == 0) {
		p->filesystem = "lvm";
	} else if (n >= 4096 && memcmp(b + 4086, "SWAPSPACE2", 10) == 0) {
		p->filesystem = "swap";
	}
	/* btrfs keeps its superblock 64 KiB in. */
	if (!strcmp(p->filesystem, "unknown") && p->size >= 65536 + 4096) {
		if (read_probe(img, b, 512, p->start + 65536) == 0 &&
		    memcmp(b + 64, "_BHRfS_M", 8) == 0)
			p->filesystem = "btrfs";
	}
	/* FAT labels are space-padded; "NO NAME" means none. */
	for (i = strlen(p->label); i > 0 && p->label[i - 1] == ' '; i--)
		p->label[i - 1] = '\0';
	if (strcmp(p->label, "NO NAME") == 0)
		p->label[0] = '\0';
	for (i = 0; p->label[i]; i++)
		if ((unsigned char)p->label[i] < 0x20 ||
		    (unsigned char)p->label[i] > 0x7e)
			p->label[i] = '?';
}

/* ---- entry -------------------------------------------------------- */

int
gp_partitions_read(gp_image *img, struct gp_partition_table *pt)
{
	struct gp_image_info info;
	uint32_t ss;
	uint64_t nsec;
	uint8_t *s0 = NULL, probe[8];
	unsigned i;
	bool protective = false, has_sig;
	int ret = -1;

	memset(pt, 0, sizeof(*pt));
	gp_image_get_info(img, &info);
	ss = info.logical_sector_size;
	/* A raw image may hold a 4 KiB-sector GPT: look for it there. */
	if (strcmp(info.format, "raw") == 0 && info.virtual_size >= 8192 &&
	    gp_image_read(img, probe, 8, 512) == 0 &&
	    memcmp(probe, "EFI PART", 8) != 0 &&
	    gp_image_read(img, probe, 8, 4096) == 0 &&
	    memcmp(probe, "EFI PART", 8) == 0)
		ss = 4096;
	pt->sector_size = ss;
	nsec = info.virtual_size / ss;
	if (nsec < 2) {
		pt->scheme = GP_SCHEME_NONE;
		return 0;
	}
	s0 = xmalloc(ss);
	if (gp_image_read(img, s0, ss, 0) < 0)
		goto out;
	has_sig = s0[510] == 0x55 && s0[511] == 0xaa;
	/* A file system starting at sector 0 (no partition table). */
	if (memcmp(s0 + 3, "NTFS    ", 8) == 0 ||
	    memcmp(s0 + 3, "-FVE-FS-", 8) == 0 ||
	    memcmp(s0 + 3, "EXFAT   ", 8) == 0 ||
	    (has_sig && (memcmp(s0 + 82, "FAT32   ", 8) == 0 ||
	    memcmp(s0 + 54, "FAT1", 4) == 0))) {
		struct gp_partition *p = add(pt);

		pt->scheme = GP_SCHEME_NONE;
		p->index = 0;
		p->start = 0;
		p->size = info.virtual_size;
		snprintf(p->type, sizeof(p->type), "none");
		p->type_name = "whole disk";
		probe_fs(img, p);
		ret = 0;
		goto out;
	}
	if (has_sig)
		for (i = 0; i < 4; i++)
			if (s0[446 + 16 * i + 4] == 0xee)
				protective = true;
	if (protective || !has_sig) {
		uint8_t *s1 = xmalloc(ss);
		bool gpt_sig;

		if (gp_image_read(img, s1, ss, ss) < 0) {
			free(s1);
			goto out;
		}
		gpt_sig = memcmp(s1, "EFI PART", 8) == 0;
		free(s1);
		if (protective || gpt_sig) {
			if (gpt_read(img, ss, nsec, pt) < 0)
				goto out;
			if (!protective)
				warn_add("%s: GPT without a protective MBR",
				    info.path);
		} else {
			pt->scheme = GP_SCHEME_NONE;
		}
	} else if (mbr_read(img, s0, ss, nsec, pt) < 0) {
		goto out;
	}
	for (i = 0; i < pt->count; i++)
		probe_fs(img, &pt->parts[i]);
	ret = 0;
out:
	free(s0);
	if (ret < 0)
		gp_partitions_free(pt);
	return ret;
}

void
gp_partitions_free(struct gp_partition_table *pt)
{
	free(pt->parts);
	pt->parts = NULL;
	pt->count = 0;
}
