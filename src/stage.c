/*
 * stage.c - staging host driver packages into the guest's
 * Windows\System32\HostDriverStore\FileRepository, and removing and
 * verifying what was staged.
 *
 * One run is one session on the image (txn.c): everything is written into
 * the session, read back, and committed at the end, or (on any error, or
 * with --dry-run) dropped.  The manifest decides what is ours: folders
 * gpupv-prep did not stage are never touched.  The files placed outside
 * the store are in stage-copies.c, the registry's part of a run in
 * stage-registry.c, a Linux guest's in stage-linux.c, the DriverStore
 * junctions in stage-junction.c, the hashing thread in stage-hash.c, and
 * reading back and verify in stage-verify.c.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "inf.h"
#include "package.h"
#include "plan.h"
#include "registry.h"
#include "stage-int.h"

/* Cap on the manifest read from an image (ours is a few KiB per package). */
#define MANIFEST_MAX	(64u * 1024 * 1024)


/* A package file, opened for copying: never through a link (one that
 * appeared since the package was read would lead out of it). */
int
open_package_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ELOOP)
		error_set(ELOOP, "%s: became a symbolic link while the run "
		    "was reading the package; not followed", path);
	else if (fd < 0)
		error_set(errno, "%s: %s", path, strerror(errno));
	return fd;
}

void
progress(const struct stage_opts *o, const char *phase, uint64_t files,
    uint64_t nfiles, uint64_t bytes, uint64_t total)
{
	if (o && o->progress)
		o->progress(o->pctx, phase, files, nfiles, bytes, total);
}

const char *
stage_action_name(enum stage_action a)
{
	switch (a) {
	case ACT_STAGE:
		return "stage";
	case ACT_REPLACE:
		return "replace";
	case ACT_UNCHANGED:
		return "unchanged";
	case ACT_REMOVE:
		return "remove";
	case ACT_REPAIR:
		return "repair";
	}
	return "?";
}

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
static int
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

/* Whether the package as staged matches the one given, and is all there. */
static bool
same_package(struct guest *g, const struct man_pkg *mp, const struct pkg *p)
{
	size_t i;

	if (mp->nfiles != p->nfiles)
		return false;
	for (i = 0; i < p->nfiles; i++) {
		const struct pkg_file *a = &mp->files[i], *b = &p->files[i];
		struct gp_stat st;
		char *path;
		int r;

		if (strcmp(a->rel, b->rel) != 0 || a->is_dir != b->is_dir ||
		    (!a->is_dir && (a->size != b->size ||
		    a->mtime_ns != b->mtime_ns)))
			return false;
		path = guest_path(g, mp->name, a->rel);
		r = gp_volume_exists(g->vol, path, &st);
		free(path);
		/* A file that cannot be read is not in place either; the
		 * copy that follows meets the failure again and reports it. */
		if (r <= 0 || st.is_dir != a->is_dir ||
		    (!a->is_dir && st.size != a->size))
			return false;
	}
	return true;
}

/* Remove what the manifest lists for mp: contents first, then the folder. */
struct extras {
	char **names;
	size_t n;
};

static int
collect_extra(void *ctx, const char *name, const struct gp_stat *st)
{
	struct extras *e = ctx;

	(void)st;
	if (e->n < 1000) {
		e->names = xrealloc(e->names, (e->n + 1) * sizeof(char *));
		e->names[e->n++] = xstrdup(name);
	}
	return 0;
}

/*
 * A staged folder that is not empty once gpupv-prep's own files are gone
 * holds what the guest put there (desktop.ini, a log).  Without --force
 * that stops the run, naming them; with it they go too (depth-limited).
 */
static int
remove_folder(struct guest *g, const char *path, bool force, int depth)
{
	struct extras e = { 0 };
	size_t i;
	int r;

	r = gp_volume_remove_any(g->vol, path, ENOTEMPTY);
	if (r < 2)
		return r < 0 ? -1 : 0;	/* removed, absent, or an error */
	if (gp_volume_list(g->vol, path, collect_extra, &e) < 0)
		return -1;
	if (!force || depth > 64) {
		char *list = xstrdup("");

		for (i = 0; i < e.n && i < 3; i++) {
			char *t = xasprintf("%s%s%s", list, i ? ", " : "",
			    e.names[i]);

			free(list);
			list = t;
		}
		error_set(ENOTEMPTY, "%s holds %s%s that gpupv-prep did not "
		    "stage; remove %s in the guest, or run with --force", path,
		    list, e.n > 3 ? ", ..." : "", e.n == 1 ? "it" : "them");
		free(list);
		r = -1;
		goto out;
	}
	for (i = 0; i < e.n; i++) {
		char *sub = xasprintf("%s\\%s", path, e.names[i]);
		struct gp_stat st;

		r = gp_volume_stat(g->vol, sub, &st);
		if (r == 0)
			r = st.is_dir ? remove_folder(g, sub, force, depth + 1) :
			    gp_volume_remove(g->vol, sub);
		if (r == 0)
			warn_add("%s: deleted (not staged by gpupv-prep; "
			    "--force)", sub);
		free(sub);
		if (r < 0)
			goto out;
	}
	r = gp_volume_remove(g->vol, path);
out:
	for (i = 0; i < e.n; i++)
		free(e.names[i]);
	free(e.names);
	return r;
}

static int
remove_package(struct guest *g, const struct man_pkg *mp, bool force)
{
	size_t i = mp->nfiles;
	char *path;
	int r;

	while (i-- > 0) {
		if (check_interrupt() < 0)
			return -1;
		path = guest_path(g, mp->name, mp->files[i].rel);
		r = mp->files[i].is_dir ? remove_folder(g, path, force, 0) :
		    gp_volume_remove_any(g->vol, path, 0);
		free(path);
		if (r < 0)
			return -1;
	}
	path = guest_path(g, mp->name, NULL);
	r = remove_folder(g, path, force, 0);
	free(path);
	return r;
}

static void
manifest_drop(struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (strcasecmp(m->v[i].name, name) != 0)
			continue;
		man_pkg_free(&m->v[i]);
		memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
		m->n--;
		return;
	}
}


int
copy_fill(void *ctx, void *buf, size_t len)
{
	struct copy *c = ctx;
	size_t got = 0;

	if (check_interrupt() < 0)
		return -1;
	while (got < len) {
		ssize_t r = read(c->fd, (uint8_t *)buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			error_set(r < 0 ? errno : EIO, "%s: %s", c->src, r < 0 ?
			    strerror(errno) : "file shrank while being staged");
			return -1;
		}
		got += (size_t)r;
	}
	if (!c->bytes_done)
		return 0;		/* no progress to count */
	*c->bytes_done += len;
	progress(c->o, "staging", *c->files_done, c->nfiles, *c->bytes_done,
	    c->total);
	return 0;
}

static char *
now_iso(void)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

/* Stage one package: folders, files, then folder attributes bottom-up
 * (READONLY last, as Windows tools would). */
static int
stage_package(struct guest *g, struct pkg *p, const struct stage_opts *o,
    struct stage_report *r, uint64_t nfiles, uint64_t total,
    struct hash_run *h)
{
	struct gp_file_meta m;
	char *path = guest_path(g, p->name, NULL);
	size_t i;
	int ret = -1;

	/* In a Linux guest read-only, as WSL mounts them: folders 0555,
	 * files 0444. */
	memset(&m, 0, sizeof(m));
	m.mtime_ns = (int64_t)time(NULL) * 1000000000;
	m.mode = g->is_linux ? 0555 : 0;
	if (gp_volume_create(g->vol, path, true, 0, &m, NULL, NULL) < 0)
		goto out;
	for (i = 0; i < p->nfiles; i++) {
		struct pkg_file *f = &p->files[i];
		struct copy c = { .fd = -1, .src = f->src, .o = o,
		    .files_done = &r->files_written, .nfiles = nfiles,
		    .bytes_done = &r->bytes_written, .total = total };
		char *gp = guest_path(g, p->name, f->rel);
		int rc;

		memset(&m, 0, sizeof(m));
		m.mtime_ns = f->mtime_ns;
		m.crtime_ns = f->crtime_ns;
		m.readonly = !f->is_dir;	/* folders: after their contents */
		m.mode = g->is_linux ? (f->is_dir ? 0555 : 0444) : 0;
		if (check_interrupt() < 0) {
			free(gp);
			goto out;
		}
		if (!f->is_dir) {
			c.fd = open_package_file(f->src);
			if (c.fd < 0) {
				free(gp);
				goto out;
			}
		}
		rc = gp_volume_create(g->vol, gp, f->is_dir, f->size, &m,
		    copy_fill, &c);
		free(gp);
		if (rc == 0 && c.fd >= 0 &&
		    fstat(c.fd, &h->copied[h->slot[h->next++]]) < 0) {
			error_set(errno, "%s: %s", f->src, strerror(errno));
			rc = -1;
		}
		if (c.fd >= 0)
			close(c.fd);
		if (rc < 0)
			goto out;
		if (!f->is_dir) {
			char fp[40];

			r->files_written++;
			progress(o, "staging", r->files_written, nfiles,
			    r->bytes_written, total);
			snprintf(fp, sizeof(fp), "stage-file-%llu",
			    (unsigned long long)r->files_written);
			fault_point(fp);
		}
	}
	/* Folder times and READONLY, deepest first. */
	for (i = p->nfiles; i-- > 0;) {
		struct pkg_file *f = &p->files[i];
		char *gp;
		int rc;

		if (!f->is_dir)
			continue;
		memset(&m, 0, sizeof(m));
		m.mtime_ns = f->mtime_ns;
		m.readonly = true;
		m.mode = g->is_linux ? 0555 : 0;
		gp = guest_path(g, p->name, f->rel);
		rc = gp_volume_set_meta(g->vol, gp, &m);
		free(gp);
		if (rc < 0)
			goto out;
	}
	memset(&m, 0, sizeof(m));
	m.mtime_ns = (int64_t)time(NULL) * 1000000000;
	m.readonly = true;
	m.mode = g->is_linux ? 0555 : 0;
	if (gp_volume_set_meta(g->vol, path, &m) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		error_prefix("staging %s", p->name);
	free(path);
	return ret;
}

/* Replace the manifest (or delete it when nothing is staged any more). */
static int
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

static const char *
human(uint64_t v, char buf[32])
{
	snprintf(buf, 32, "%.1f MiB", (double)v / (1024.0 * 1024.0));
	return buf;
}

bool
in_set(const struct pkg_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcasecmp(set->v[i].name, name) == 0)
			return true;
	return false;
}

struct stage_item *
add_item(struct stage_report *r, const char *name, const char *inf,
    const char *ver, enum stage_action a)
{
	struct stage_item *it;

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*it));
	it = &r->v[r->n++];
	memset(it, 0, sizeof(*it));
	it->name = xstrdup(name);
	it->inf = inf ? xstrdup(inf) : NULL;
	it->driver_ver = ver ? xstrdup(ver) : NULL;
	it->action = a;
	return it;
}

static void
manifest_add(struct manifest *m, const struct pkg *p)
{
	struct man_pkg *mp;
	size_t i;

	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*mp));
	mp = &m->v[m->n++];
	memset(mp, 0, sizeof(*mp));
	mp->name = xstrdup(p->name);
	mp->inf = p->inf ? xstrdup(p->inf) : NULL;
	mp->driver_ver = p->driver_ver ? xstrdup(p->driver_ver) : NULL;
	mp->role = p->role;
	mp->gpu = p->gpu ? xstrdup(p->gpu) : NULL;
	mp->staged_at = now_iso();
	mp->bytes = p->bytes;
	mp->files = xcalloc(p->nfiles + 1, sizeof(*mp->files));
	for (i = 0; i < p->nfiles; i++) {
		struct pkg_file *d = &mp->files[i];
		const struct pkg_file *s = &p->files[i];

		d->rel = xstrdup(s->rel);
		d->is_dir = s->is_dir;
		d->size = s->size;
		d->mtime_ns = s->mtime_ns;
		memcpy(d->sha256, s->sha256, sizeof(d->sha256));
	}
	mp->nfiles = p->nfiles;
}


int
hash_cb(void *ctx, const void *buf, size_t len)
{
	sha256_update(&((struct hasher *)ctx)->sha, buf, len);
	return 0;
}

const struct pkg_file *
pkg_find(const struct pkg *p, const char *rel)
{
	size_t i;

	for (i = 0; i < p->nfiles; i++) {
		const char *a = p->files[i].rel, *b = rel;

		if (p->files[i].is_dir)
			continue;
		for (; *a && *b; a++, b++) {
			char x = *a == '\\' ? '/' : *a, y = *b == '\\' ? '/' : *b;

			if (tolower((unsigned char)x) != tolower((unsigned char)y))
				break;
		}
		if (!*a && !*b)
			return &p->files[i];
	}
	return NULL;
}

static void
bad_free(bool **bad, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(bad[i]);
	free(bad);
}

/*
 * --repair: write again the files of a staged package that check_package
 * found missing or different (bad[] follows the manifest's file list),
 * from the host's copy, with their times and READONLY; folders first.
 */
static int
repair_package(struct guest *g, const struct pkg *p, const bool *bad,
    struct stage_report *r)
{
	const struct man_pkg *mp = manifest_find(&g->man, p->name);
	size_t i;

	for (i = 0; mp && i < mp->nfiles; i++) {
		const struct pkg_file *f;
		struct gp_file_meta m = { 0 };
		struct copy c = { .fd = -1 };
		struct gp_stat st;
		char *gp;
		int rc = 0;

		if (!bad[i])
			continue;
		f = pkg_find(p, mp->files[i].rel);
		if (!f || f->is_dir != mp->files[i].is_dir) {
			error_set(ENOENT, "%s: %s is not in the package on the "
			    "host; it cannot be repaired from it", p->name,
			    mp->files[i].rel);
			return -1;
		}
		gp = guest_path(g, p->name, f->rel);
		m.mtime_ns = f->mtime_ns;
		m.crtime_ns = f->crtime_ns;
		m.readonly = true;
		rc = gp_volume_exists(g->vol, gp, &st);
		if (rc > 0) {
			if (f->is_dir && st.is_dir) {
				free(gp);
				continue;
			}
			rc = gp_volume_remove(g->vol, gp);
		}
		rc = rc < 0 ? -1 : 0;
		if (rc == 0 && !f->is_dir) {
			c.src = f->src;
			c.fd = open_package_file(f->src);
			if (c.fd < 0)
				rc = -1;
		}
		if (rc == 0)
			rc = gp_volume_create(g->vol, gp, f->is_dir, f->size, &m,
			    copy_fill, &c);
		if (c.fd >= 0)
			close(c.fd);
		free(gp);
		if (rc < 0) {
			error_prefix("repairing %s", p->name);
			return -1;
		}
		r->files_written += !f->is_dir;
		r->bytes_written += f->size;
	}
	return 0;
}

/* The start of a run that writes (stage, remove): the report begun and
 * the guest opened in a session (a dry run's is never committed). */
static int
run_open(struct guest *g, const char *image, const struct stage_opts *o,
    struct stage_report *r)
{
	memset(r, 0, sizeof(*r));
	r->image = xstrdup(image);
	r->dry_run = o->dry_run;
	if (guest_open(g, image, o, o->dry_run ? GP_OPEN_DRY_RUN :
	    GP_OPEN_RDWR) < 0)
		return -1;
	r->repo = xstrdup(g->repo);
	r->partition = g->partition;
	r->linux_guest = g->is_linux;
	return 0;
}

int
stage_run(const char *image, struct pkg_set *set, const struct stage_opts *o,
    struct stage_report *r)
{
	struct guest g;
	struct guest_reg gr = { 0 };
	struct copy_plan *plan = NULL;
	size_t nplan = 0;
	uint64_t cluster, nfiles = 0, total = 0, need;
	uint64_t need_pkgs = 0, need_copies = 0, need_hives = 0, need_meta;
	bool short_names;
	size_t i, j;
	bool *todo = NULL, *restage = NULL, **bad;
	struct hash_run h;
	double t0, t1;
	char b1[32], b2[32], b3[32];

	bad = xcalloc(set->n + 1, sizeof(*bad));
	if (run_open(&g, image, o, r) < 0)
		goto fail;
	gp_volume_space(g.vol, &cluster, &r->free_before);
	short_names = gp_volume_short_names(g.vol, g.system32,
	    o->short_names) > 0;

	/* The plan. */
	for (i = 0; i < set->n; i++) {
		struct pkg *p = &set->v[i];
		struct man_pkg *mp = manifest_find(&g.man, p->name);
		struct stage_item *it;
		enum stage_action a;

		if (mp && same_package(&g, mp, p)) {
			long nbad = 0;

			a = ACT_UNCHANGED;
			/* --repair: the staged files are hashed, and the ones
			 * that differ or are missing written again. */
			if (o->repair) {
				bad[i] = xcalloc(mp->nfiles + 1, sizeof(bool));
				nbad = check_package(&g, mp, r, bad[i], NULL);
				if (nbad < 0)
					goto fail;
			}
			for (j = 0; nbad > 0 && j < mp->nfiles; j++)
				if (bad[i][j])
					need_pkgs += gp_volume_file_cost(
					    g.vol, mp->files[j].size) +
					    2 * strlen(mp->files[j].rel) + 100;
			if (nbad > 0)
				a = ACT_REPAIR;
		} else if (mp) {
			a = ACT_REPLACE;
		} else {
			struct gp_stat st;
			char *path = guest_path(&g, p->name, NULL);
			int e = gp_volume_exists(g.vol, path, &st);

			free(path);
			if (e > 0)
				error_set(EEXIST, "%s: %s\\%s exists and was not "
				    "staged by gpupv-prep, so it is left alone; "
				    "remove it in the guest to stage this "
				    "package", image, g.repo, p->name);
			if (e != 0)
				goto fail;
			a = ACT_STAGE;
		}
		it = add_item(r, p->name, p->inf, p->driver_ver, a);
		it->role = p->role;
		it->gpu = p->gpu ? xstrdup(p->gpu) : NULL;
		/* A role or GPU the bundle gives a package staged before is
		 * a change of the manifest alone. */
		if (mp && a == ACT_UNCHANGED && p->role && (mp->role != p->role ||
		    !mp->gpu != !p->gpu || (p->gpu && strcmp(mp->gpu, p->gpu)))) {
			mp->role = p->role;
			free(mp->gpu);
			mp->gpu = p->gpu ? xstrdup(p->gpu) : NULL;
			r->changed = true;
		}
		for (j = 0; a == ACT_REPAIR && j < mp->nfiles; j++)
			it->repaired += bad[i][j];
		for (j = 0; j < p->nfiles; j++) {
			const struct pkg_file *f = &p->files[j];

			it->files += !f->is_dir;
			if (a == ACT_UNCHANGED || a == ACT_REPAIR)
				continue;
			/* The file or folder, its index entry, and a folder's
			 * first index block. */
			need_pkgs += gp_volume_file_cost(g.vol, f->size) +
			    2 * strlen(f->rel) + 100 +
			    (f->is_dir ? 4096 : 0);
		}
		if (a == ACT_STAGE || a == ACT_REPLACE)
			need_pkgs += gp_volume_file_cost(g.vol, 0) + 4096;
		if ((a == ACT_STAGE || a == ACT_REPLACE) &&
		    plan_name_clashes(p, short_names) < 0)
			goto fail;
		it->bytes = p->bytes;
		if (a == ACT_STAGE || a == ACT_REPLACE) {
			nfiles += it->files;
			total += p->bytes;
		}
		/* An older package of the same INF that we staged goes. */
		for (j = 0; j < g.man.n; j++) {
			struct man_pkg *q = &g.man.v[j];
			struct stage_item *old;

			if (!q->inf || !p->inf || strcasecmp(q->inf, p->inf) ||
			    !strcasecmp(q->name, p->name) || in_set(set, q->name))
				continue;
			/* add_item may move r->v: it is found again after. */
			size_t at = (size_t)(it - r->v);

			old = add_item(r, q->name, q->inf, q->driver_ver,
			    ACT_REMOVE);
			it = &r->v[at];
			old->role = q->role;
			old->gpu = q->gpu ? xstrdup(q->gpu) : NULL;
			old->bytes = q->bytes;
			for (size_t k = 0; k < q->nfiles; k++)
				old->files += !q->files[k].is_dir;
			free(it->replaces);
			it->replaces = xstrdup(q->name);
		}
	}
	/* A bundle stages a GPU's whole set: what an earlier bundle staged
	 * for the same GPU and this one no longer lists goes with it. */
	for (j = 0; j < g.man.n; j++) {
		struct man_pkg *q = &g.man.v[j];
		struct stage_item *old;
		size_t k;

		if (!q->gpu || in_set(set, q->name))
			continue;
		for (i = 0; i < set->n; i++)
			if (set->v[i].gpu && !strcmp(set->v[i].gpu, q->gpu))
				break;
		for (k = 0; k < r->n; k++)
			if (!strcasecmp(r->v[k].name, q->name))
				break;
		if (i == set->n || k < r->n)
			continue;
		old = add_item(r, q->name, q->inf, q->driver_ver, ACT_REMOVE);
		old->role = q->role;
		old->gpu = xstrdup(q->gpu);
		old->bytes = q->bytes;
		for (k = 0; k < q->nfiles; k++)
			old->files += !q->files[k].is_dir;
	}
	for (i = 0; i < r->n; i++)
		if (r->v[i].action != ACT_UNCHANGED)
			r->changed = true;
	/* New sidecar settings are a change of the manifest alone. */
	if (o->host && host_cfg_merge(&g.man.host, o->host))
		r->changed = true;
	/* Registry edits are made in memory first: only then is it known
	 * whether they change anything. */
	restage = xcalloc(set->n + 1, sizeof(*restage));
	for (i = 0; i < set->n; i++)
		for (j = 0; j < r->n; j++)
			if (!strcmp(r->v[j].name, set->v[i].name))
				restage[i] = r->v[j].action == ACT_STAGE ||
				    r->v[j].action == ACT_REPLACE;
	j = (size_t)wants_registry(set, o);
	if (g.is_linux && j == 2) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: partition %u holds "
		    "Linux (%s); --reg, --copy-key, --driver-store-copy-mode, "
		    "--gpu-virtualization-flags and --disable-fast-startup "
		    "edit a Windows registry",
		    image, g.partition, g.lx.pretty_name ? g.lx.pretty_name :
		    g.lx.fs);
		goto fail;
	}
	if (!g.is_linux && set->wsl_lib)
		warn_add("%s: the WSL libraries are for a Linux guest; not "
		    "placed in Windows", image);
	if (!g.is_linux && set->dkms) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: --dkms places a Linux "
		    "module's source; partition %u holds Windows", image,
		    g.partition);
		goto fail;
	}
	if (g.is_linux) {
		if (set->bundle.nreg)
			warn_add("%s: the bundle's .reg files are for a Windows "
			    "guest; not applied to Linux", image);
		j = 0;
	}
	if (j == 1 && !g.w.system_root) {
		warn_add("%s: partition %u holds no Windows registry; the "
		    "nvlddmkm service is not written", image, g.partition);
		j = 0;
	}
	if (j) {
		if (apply_registry(&g, &gr, set, o, image) < 0)
			goto fail;
		if (gr.s.dirty[REG_HIVE_SYSTEM] || gr.s.dirty[REG_HIVE_SOFTWARE])
			r->changed = true;
		r->reg_values_set = gr.s.values_set;
		r->reg_values_deleted = gr.s.values_deleted;
		r->reg_keys_created = gr.s.keys_created;
		r->reg_keys_deleted = gr.s.keys_deleted;
	}
	if (g.is_linux ? plan_linux(&g, set, restage, &plan, &nplan,
	    &r->changed) < 0 : plan_copies(&g, set, restage, o, &plan, &nplan,
	    &r->changed, &r->sysfiles_kept) < 0)
		goto fail;
	if (plan_junctions(&g, set, o->driverstore_links, &plan, &nplan,
	    &r->changed) < 0)
		goto fail;
	/* The plan, for -v. */
	for (i = 0; debug_enabled() && i < r->n; i++)
		debug("%s: plan: %s %s%s%s", image,
		    stage_action_name(r->v[i].action), r->v[i].name,
		    r->v[i].replaces ? ", replacing " : "",
		    r->v[i].replaces ? r->v[i].replaces : "");
	for (i = 0; debug_enabled() && i < nplan; i++) {
		if (plan[i].link && !plan[i].f)
			debug("%s: plan: link %s to %s", image, plan[i].dest,
			    plan[i].link);
		else if (!plan[i].f)
			debug("%s: plan: write %s", image, plan[i].dest);
		else
			debug("%s: plan: copy %s%c%s to %s (%s)", image,
			    plan[i].host_lib ? "host" : plan[i].p->name,
			    g.is_linux ? '/' : '\\', plan[i].f->rel,
			    plan[i].dest, plan[i].overwrite ? "overwrite" :
			    "when newer");
	}
	if (debug_enabled() && (gr.s.values_set || gr.s.values_deleted ||
	    gr.s.keys_created || gr.s.keys_deleted))
		debug("%s: plan: registry: %llu values set, %llu deleted, "
		    "%llu keys created, %llu deleted", image,
		    (unsigned long long)gr.s.values_set,
		    (unsigned long long)gr.s.values_deleted,
		    (unsigned long long)gr.s.keys_created,
		    (unsigned long long)gr.s.keys_deleted);
	for (i = 0; i < g.man.ncopies; i++)
		for (j = 0; j < r->n; j++)
			if (r->v[j].action == ACT_REMOVE && !strcasecmp(
			    r->v[j].name, g.man.copies[i].package))
				r->changed = true;
	if (!r->changed) {
		/* Nothing to do: the session is dropped, nothing written. */
		r->man = g.man;
		memset(&g.man, 0, sizeof(g.man));
		guest_reg_free(&gr);
		copy_plans_free(plan, nplan);
		free(restage);
		bad_free(bad, set->n);
		guest_close(&g);
		return 0;
	}
	/*
	 * Everything the run allocates, counted before the first write.  The
	 * space of what the run deletes or rewrites (an older package, the
	 * hives, the manifest) stays in use until the commit, so it does not
	 * count as free: an update needs room for both versions.
	 */
	for (i = 0; i < nplan; i++) {
		struct gp_stat st;
		int e = 0;

		need_copies += gp_volume_file_cost(g.vol,
		    plan[i].f ? plan[i].f->size : strlen(plan[i].data));
		if (!copy_find(&g, plan[i].dest) &&
		    (e = gp_volume_exists(g.vol, plan[i].dest, &st)) > 0)
			need_copies += gp_volume_file_cost(g.vol, st.size);
		if (e < 0)
			goto fail;
	}
	if (commit_hives(&gr) < 0)
		goto fail;
	for (i = 0; i < REG_NHIVES; i++)
		if (gr.out[i])
			need_hives += gp_volume_file_cost(g.vol, gr.outlen[i]);
	{
		struct gp_stat st;
		uint64_t man = 4096, k;
		int e = gp_volume_exists(g.vol, g.manifest_path, &st);

		if (e < 0)
			goto fail;
		if (e > 0)
			man += st.size;
		for (k = 0; k < set->n; k++)
			man += 1024 + 320 * (uint64_t)set->v[k].nfiles;
		/* The manifest, and the MFT growing by its step (libntfs-3g
		 * extends it 16 records at a time) plus its bitmap. */
		need_meta = gp_volume_file_cost(g.vol, man) + 64 * 1024;
	}
	need = need_pkgs + need_copies + need_hives + need_meta;
	r->space_needed = need;
	debug("%s: the run needs %llu bytes (packages %llu, System32 copies "
	    "%llu, hives %llu, manifest and MFT %llu) of %llu free", image,
	    (unsigned long long)need, (unsigned long long)need_pkgs,
	    (unsigned long long)need_copies, (unsigned long long)need_hives,
	    (unsigned long long)need_meta, (unsigned long long)r->free_before);
	if (need > r->free_before) {
		error_set(ENOSPC, "%s: the change needs about %s on the %s "
		    "volume (packages %s, the rest for %s and metadata; what "
		    "it replaces stays in use until it commits), which has %s "
		    "free; nothing was written", image, human(need, b1),
		    g.is_linux ? gp_volume_fs_name(g.vol) : "NTFS",
		    human(need_pkgs, b3), g.is_linux ? "/usr/lib/wsl/lib" :
		    "System32 copies, hives", human(r->free_before, b2));
		goto fail;
	}

	/*
	 * The host file system must hold what the image file may grow by:
	 * what does not fit in free space the file already stores, a block
	 * of rounding, and the log or journal of the commit.  Checked here,
	 * a full host disk is a refusal that leaves the file as it was.
	 */
	{
		struct gp_image_info info;
		uint64_t stored = gp_volume_stored_free(g.vol), grow, avail;
		struct statvfs sv;
		char *dir = path_dirname(image);

		gp_image_get_info(g.img, &info);
		grow = (need > stored ? need - stored : 0) + info.block_size +
		    (need_meta + need_hives) * 2 + 4 * 1024 * 1024;
		if (!o->dry_run && statvfs(*dir ? dir : ".", &sv) == 0) {
			const char *t = getenv("GPUPV_PREP_HOST_FREE_MB");

			/* The tests stand a small host disk in with it. */
			avail = t && *t ? strtoull(t, NULL, 10) << 20 :
			    (uint64_t)sv.f_bavail * sv.f_frsize;
			if (grow > avail) {
				error_set(ENOSPC, "%s: the image file may grow by "
				    "about %s, and the host file system holding "
				    "it has %s free; nothing was written", image,
				    human(grow, b1), human(avail, b2));
				free(dir);
				goto fail;
			}
		}
		free(dir);
	}

	if (g.is_linux && linux_preflight(&g) < 0)
		goto fail;

	/* The execution. */
	if (gp_volume_mkdir_p(g.vol, g.repo) < 0)
		goto fail;
	for (i = 0; i < r->n; i++) {
		struct man_pkg *mp;

		if (r->v[i].action != ACT_REMOVE && r->v[i].action != ACT_REPLACE)
			continue;
		mp = manifest_find(&g.man, r->v[i].name);
		if (mp && remove_package(&g, mp, o->force) < 0)
			goto fail;
		manifest_drop(&g.man, r->v[i].name);
	}
	todo = xcalloc(set->n + 1, sizeof(*todo));
	for (i = 0; i < set->n; i++) {
		size_t k;

		for (k = 0; k < r->n; k++)
			if (!strcmp(r->v[k].name, set->v[i].name))
				break;
		todo[i] = r->v[k].action == ACT_STAGE ||
		    r->v[k].action == ACT_REPLACE;
	}
	t0 = mono_ms();
	if (hash_start(&h, set, todo) < 0)
		goto fail;
	for (i = 0; i < set->n; i++)
		if (todo[i] && stage_package(&g, &set->v[i], o, r, nfiles,
		    total, &h) < 0)
			goto fail;
	t1 = mono_ms();
	if (hash_finish(&h, set, todo, true) < 0)
		goto fail;
	debug("%s: copied %llu files in %.0f ms; their hashes were ready "
	    "%.0f ms later", image, (unsigned long long)r->files_written,
	    t1 - t0, mono_ms() - t1);
	for (i = 0; i < set->n; i++)
		if (todo[i])
			manifest_add(&g.man, &set->v[i]);
	for (i = 0; i < set->n; i++)
		if (bad[i] && repair_package(&g, &set->v[i], bad[i], r) < 0)
			goto fail;
	if (g.is_linux && gp_volume_mkdir_p(g.vol, g.system32) < 0)
		goto fail;
	if (exec_copies(&g, plan, nplan, r) < 0 || store_hives(&g, &gr, r) < 0)
		goto fail;
	if (g.is_linux && linux_arm(&g, true) < 0)
		goto fail;
	if (write_manifest(&g) < 0)
		goto fail;
	if (o->dry_run) {
		struct readback rb;

		/* Read the staged state back from the session. */
		readback_init(&rb, o, "reading back", &g.man, set);
		for (i = 0; i < g.man.n; i++)
			if (in_set(set, g.man.v[i].name) &&
			    check_package(&g, &g.man.v[i], r, NULL, &rb) != 0) {
				error_set(EIO, "%s: read-back after the dry "
				    "run differs: %s", image,
				    r->nproblems ? r->problems[0] : "?");
				goto fail;
			}
		r->verified = true;
	}
	progress(o, "committing", 0, 0, 0, 0);
	if (guest_commit(&g) < 0)
		goto fail;
	r->man = g.man;
	memset(&g.man, 0, sizeof(g.man));
	guest_close(&g);
	guest_reg_free(&gr);
	copy_plans_free(plan, nplan);
	free(todo);
	free(restage);
	bad_free(bad, set->n);
	return 0;
fail:
	if (todo)
		hash_finish(&h, set, todo, false);
	guest_close(&g);
	guest_reg_free(&gr);
	copy_plans_free(plan, nplan);
	free(todo);
	free(restage);
	bad_free(bad, set->n);
	return -1;
}

int
stage_remove(const char *image, char **names, size_t n,
    const struct stage_opts *o, struct stage_report *r)
{
	struct guest g;
	struct guest_reg gr = { 0 };
	size_t i;

	if (run_open(&g, image, o, r) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		struct man_pkg *mp = manifest_find(&g.man, names[i]);

		if (!mp) {
			error_set(ENOENT, "%s: package %s was not staged by "
			    "gpupv-prep (it is not in %s)", image, names[i],
			    g.manifest_path);
			goto fail;
		}
	}
	for (i = 0; i < (n ? n : g.man.n); i++) {
		struct man_pkg *mp = manifest_find(&g.man, n ? names[i] :
		    g.man.v[i].name);
		struct stage_item *it;
		size_t k;

		if (!mp)
			continue;	/* named twice */
		it = add_item(r, mp->name, mp->inf, mp->driver_ver, ACT_REMOVE);
		it->role = mp->role;
		it->gpu = mp->gpu ? xstrdup(mp->gpu) : NULL;
		it->bytes = mp->bytes;
		for (k = 0; k < mp->nfiles; k++)
			it->files += !mp->files[k].is_dir;
	}
	if (g.is_linux && r->n && linux_preflight(&g) < 0)
		goto fail;
	for (i = 0; i < r->n; i++) {
		struct man_pkg *mp = manifest_find(&g.man, r->v[i].name);

		if (mp && remove_package(&g, mp, o->force) < 0)
			goto fail;
		manifest_drop(&g.man, r->v[i].name);
	}
	r->changed = r->n > 0;
	/* System32 files of the removed packages, originals put back. */
	for (i = g.man.ncopies; i-- > 0;) {
		struct man_copy *c = &g.man.copies[i];

		if (copy_wanted(&g.man, c))
			continue;
		if (undo_copy(&g, c) < 0 || prune_src_dirs(&g, c->dest) < 0)
			goto fail;
		r->sysfiles = xrealloc(r->sysfiles, (r->nsysfiles + 1) *
		    sizeof(*r->sysfiles));
		r->sysfiles[r->nsysfiles++] = (struct stage_sysfile){
			.dest = xstrdup(c->dest), .restored = c->backup != NULL };
		copy_drop(&g.man, c);
		r->changed = true;
	}
	/* The registry as it was, once nothing staged is left. */
	if (g.man.n == 0 && g.man.nreg > 0) {
		gr.s.man = &g.man;
		for (i = 0; i < g.man.nreg; i++)
			if (load_hive(&g, &gr, strcmp(g.man.reg[i].hive,
			    "SYSTEM") ? REG_HIVE_SOFTWARE : REG_HIVE_SYSTEM,
			    image) < 0)
				goto fail;
		if (regs_undo(&gr.s) < 0 || store_hives(&g, &gr, r) < 0)
			goto fail;
		r->reg_values_set = gr.s.values_set;
		r->reg_values_deleted = gr.s.values_deleted;
		r->reg_keys_created = gr.s.keys_created;
		r->reg_keys_deleted = gr.s.keys_deleted;
		r->changed = true;
	}
	if (r->changed && g.is_linux && linux_arm(&g, g.man.n > 0) < 0)
		goto fail;
	if (r->changed && write_manifest(&g) < 0)
		goto fail;
	/* Nothing removed: the session is dropped unwritten. */
	if (r->changed)
		progress(o, "committing", 0, 0, 0, 0);
	if (r->changed && guest_commit(&g) < 0)
		goto fail;
	guest_close(&g);
	guest_reg_free(&gr);
	return 0;
fail:
	guest_close(&g);
	guest_reg_free(&gr);
	return -1;
}

void
stage_report_free(struct stage_report *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].inf);
		free(r->v[i].driver_ver);
		free(r->v[i].replaces);
		free(r->v[i].gpu);
	}
	for (i = 0; i < r->nproblems; i++)
		free(r->problems[i]);
	free(r->problems);
	for (i = 0; i < r->nhives_written; i++)
		free(r->hives_written[i]);
	free(r->hives_written);
	for (i = 0; i < r->nsysfiles; i++) {
		free(r->sysfiles[i].dest);
		free(r->sysfiles[i].source);
		free(r->sysfiles[i].link);
	}
	free(r->sysfiles);
	free(r->v);
	free(r->image);
	free(r->repo);
	manifest_free(&r->man);
	memset(r, 0, sizeof(*r));
}

int
stage_manifest(const char *image, const struct stage_opts *o,
    struct manifest *m)
{
	struct guest g;

	memset(m, 0, sizeof(*m));
	if (guest_open(&g, image, o, GP_OPEN_RDONLY) < 0)
		return -1;
	if (!g.have_manifest) {
		error_set(ENOENT, "%s: nothing staged (no %s)", image,
		    g.manifest_path);
		guest_close(&g);
		return -1;
	}
	*m = g.man;
	memset(&g.man, 0, sizeof(g.man));
	guest_close(&g);
	return 0;
}
