/*
 * stage-guest.c - the guest a run works on, as one session: the image
 * opened (writable, or as a dry run), its Windows or Linux volume found,
 * the manifest read that says what gpupv-prep staged, the paths in the
 * store, and at the end the manifest written and the session committed
 * or dropped.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "stage-int.h"

/* Cap on the manifest read from an image (ours is a few KiB per package). */
#define MANIFEST_MAX	(64u * 1024 * 1024)

void
guest_close(struct guest *g)
{
	if (g->vol)
		gp_volume_close(g->vol);
	manifest_free(&g->man);
	gp_windows_free(&g->w);
	gp_linux_free(&g->lx);
	gp_partitions_free(&g->pt);
	if (g->img)
		gp_image_close(g->img);
	free(g->system32);
	free(g->hds);
	free(g->repo);
	free(g->manifest_path);
	memset(g, 0, sizeof(*g));
}

/*
 * Unmount (libntfs-3g writes what it holds) and commit the session.  Only
 * for runs that change something: the unmount alone rewrites metadata.
 */
int
guest_commit(struct guest *g)
{
	int r = gp_volume_close(g->vol);

	g->vol = NULL;
	if (r < 0)
		return -1;
	return gp_image_commit(g->img);
}

/* Open the image and its Windows volume; read the manifest. */
int
guest_open(struct guest *g, const char *image, const struct stage_opts *o,
    unsigned flags)
{
	struct gp_open_opts oo = { .flags = flags, .parent = o->parent,
	    .format = o->format };
	struct gp_partition *p;
	const char *root = "\\Windows";
	struct gp_error e;
	int r;
	bool writable = flags & (GP_OPEN_RDWR | GP_OPEN_DRY_RUN);

	memset(g, 0, sizeof(*g));
	g->img = gp_image_open(image, &oo);
	if (!g->img)
		return -1;
	if (gp_partitions_read(g->img, &g->pt) < 0)
		return -1;
	error_try(&e);
	r = gp_guest_find(g->img, &g->pt, o->partition, &g->w, &g->lx);
	error_end(&e);
	if (r == 1) {
		g->is_linux = true;
		return linux_open(g, image, writable);
	}
	if (r < 0) {
		unsigned i;

		/* --partition on a volume without a hive: stage anyway. */
		if (o->partition < 0 || e.code != GP_EXIT_NO_WINDOWS)
			return error_pass(&e);
		for (i = 0; i < g->pt.count; i++)
			if (g->pt.parts[i].index == (unsigned)o->partition)
				break;
		if (i == g->pt.count ||
		    strcmp(g->pt.parts[i].filesystem, "ntfs") != 0)
			return error_pass(&e);
		warn_add("partition %d holds no Windows installation; using "
		    "\\Windows\\System32 on it as given", o->partition);
		memset(&g->w, 0, sizeof(g->w));
		g->w.partition = (unsigned)o->partition;
		g->w.slot = i;
	} else if (g->w.system_root) {
		root = g->w.system_root;
	}
	if (g->w.state == GP_VOL_BITLOCKER) {
		error_setc(GP_EXIT_BITLOCKER, EACCES, "%s: partition %u is "
		    "encrypted with BitLocker; decrypt it in the guest "
		    "(manage-bde -off) first", image, g->w.partition);
		return -1;
	}
	g->partition = g->w.partition;
	p = &g->pt.parts[g->w.slot];
	g->vol = gp_volume_open(g->img, p->start, p->size, writable);
	if (!g->vol)
		return -1;
	g->system32 = xasprintf("%s\\System32", root);
	g->hds = xasprintf("%s\\HostDriverStore", g->system32);
	g->repo = xasprintf("%s\\FileRepository", g->hds);
	g->manifest_path = xasprintf("%s\\gpupv-prep.json", g->hds);
	return read_manifest(g, image);
}

/* The manifest gpupv-prep left in the guest, if any. */
int
read_manifest(struct guest *g, const char *image)
{
	struct gp_error e;
	void *text = NULL;
	size_t len;
	int r;

	/* No manifest (a read that fails with nothing recorded) is a guest
	 * gpupv-prep has not staged into yet. */
	error_try(&e);
	r = gp_volume_read(g->vol, g->manifest_path, MANIFEST_MAX, &text,
	    &len);
	if (error_end(&e))
		return error_pass(&e);
	if (r < 0)
		return 0;
	error_try(&e);
	r = manifest_parse(text, len, &g->man);
	error_end(&e);
	free(text);
	if (r < 0 && e.set) {
		error_pass(&e);
		error_prefix("%s: %s", image, g->manifest_path);
		return -1;
	}
	if (r < 0) {
		error_setc(GP_EXIT_CORRUPT, EINVAL, "%s: %s is not a manifest "
		    "this version understands; remove it in the guest to start "
		    "over", image, g->manifest_path);
		return -1;
	}
	g->have_manifest = true;
	return 0;
}

char *
guest_path(const struct guest *g, const char *pkg, const char *rel)
{
	char sep = g->is_linux ? '/' : '\\';
	char *s = rel ? xasprintf("%s%c%s%c%s", g->repo, sep, pkg, sep, rel) :
	    xasprintf("%s%c%s", g->repo, sep, pkg);
	char *c;

	for (c = s; *c; c++)
		if (*c == '/' || *c == '\\')
			*c = sep;
	return s;
}

/* Replace the manifest (or delete it when nothing is staged any more). */
int
write_manifest(struct guest *g)
{
	size_t len;
	char *text;
	int ret;

	if (manifest_empty(&g->man))
		return gp_volume_remove_any(g->vol, g->manifest_path, 0) < 0 ?
		    -1 : 0;
	text = manifest_format(&g->man, &len);
	ret = gp_volume_write_file(g->vol, g->manifest_path, text, len);
	free(text);
	return ret;
}
