/*
 * package-int.h - what package.c shares with unpack.c (archives) and
 * bundle.c (host bundles), and the caps all three keep to.
 */
#ifndef GPUPV_PACKAGE_INT_H
#define GPUPV_PACKAGE_INT_H

#include <sys/stat.h>

#include "package.h"

/* Caps on a package tree and an archive's entries: NVIDIA's largest
 * package has a few hundred files, a dozen levels deep. */
#define PKG_MAX_DEPTH	64
#define PKG_MAX_ENTRIES	(1u << 20)
/* Unpacked archives: no driver package comes near 16 GiB, and none
 * compresses 200-fold; past 256 MiB either is taken for a zip bomb. */
#define PKG_MAX_UNPACKED	(16ull << 30)
#define PKG_MAX_RATIO		200
#define PKG_RATIO_AFTER		(256ull << 20)

/* package.c: one more file or folder of p, from the host's stat. */
void	add_file(struct pkg *p, const char *rel, const char *src, bool is_dir,
	    const struct stat *st);

/* unpack.c: an archive unpacked into dest (an empty folder), refusing
 * entries that would land outside it and links of any kind. */
int	unpack(const char *arch, const char *dest);

/* bundle.c: the bundle description in dir (arg: what the user gave). */
int	read_bundle(struct pkg_set *set, const char *arg, const char *dir);
/* Each package of the set its role and GPU, the extras found. */
int	bundle_roles(struct pkg_set *set, const char *arg);
void	bundle_free(struct bundle *b);

#endif
