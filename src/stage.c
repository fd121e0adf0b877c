/*
 * stage.c - staging host driver packages into the guest's
 * Windows\System32\HostDriverStore\FileRepository, and removing and
 * verifying what was staged.
 *
 * One run is one session on the image (txn.c): everything is written into
 * the session, read back, and committed at the end, or (on any error, or
 * with --dry-run) dropped.  The manifest decides what is ours: folders
 * gpupv-prep did not stage are never touched.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "package.h"
#include "sha256.h"
#include "stage.h"

#define MANIFEST_MAX	(64u * 1024 * 1024)
#define READ_CHUNK	(1024 * 1024)

struct guest {
	gp_image *img;
	struct gp_partition_table pt;
	struct gp_windows w;
	gp_volume *vol;
	unsigned partition;
	char *system32;			/* "\Windows\System32" */
	char *hds;			/* ...\HostDriverStore */
	char *repo;			/* ...\HostDriverStore\FileRepository */
	char *manifest_path;
	struct manifest man;
	bool have_manifest;
};

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
	}
	return "?";
}

static void
guest_close(struct guest *g)
{
	if (g->vol)
		gp_volume_close(g->vol);
	manifest_free(&g->man);
	gp_windows_free(&g->w);
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
static int
guest_open(struct guest *g, const char *image, const struct stage_opts *o,
    unsigned flags)
{
	struct gp_open_opts oo = { .flags = flags, .parent = o->parent,
	    .format = o->format };
	struct gp_partition *p;
	const char *root = "\\Windows";
	void *text = NULL;
	size_t len;
	bool writable = flags & (GP_OPEN_RDWR | GP_OPEN_DRY_RUN);

	memset(g, 0, sizeof(*g));
	g->img = gp_image_open(image, &oo);
	if (!g->img)
		return -1;
	if (gp_partitions_read(g->img, &g->pt) < 0)
		return -1;
	if (gp_windows_find(g->img, &g->pt, o->partition, &g->w) < 0) {
		unsigned i;

		/* --partition on a volume without a hive: stage anyway. */
		if (o->partition < 0 || gp_error_code() != GP_EXIT_NO_WINDOWS)
			return -1;
		for (i = 0; i < g->pt.count; i++)
			if (g->pt.parts[i].index == (unsigned)o->partition)
				break;
		if (i == g->pt.count ||
		    strcmp(g->pt.parts[i].filesystem, "ntfs") != 0)
			return -1;
		gp_error_clear();
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
	if (gp_volume_read(g->vol, g->manifest_path, MANIFEST_MAX, &text,
	    &len) == 0) {
		if (manifest_parse(text, len, &g->man) < 0) {
			free(text);
			error_setc(GP_EXIT_CORRUPT, EINVAL, "%s: %s is not a "
			    "manifest this version understands; remove it in "
			    "the guest to start over", image, g->manifest_path);
			return -1;
		}
		free(text);
		g->have_manifest = true;
	} else if (error_pending()) {
		return -1;
	}
	gp_error_clear();
	return 0;
}

static char *
guest_path(const struct guest *g, const char *pkg, const char *rel)
{
	char *s = rel ? xasprintf("%s\\%s\\%s", g->repo, pkg, rel) :
	    xasprintf("%s\\%s", g->repo, pkg);
	char *c;

	for (c = s; *c; c++)
		if (*c == '/')
			*c = '\\';
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
		r = gp_volume_stat(g->vol, path, &st);
		free(path);
		if (r < 0 || st.is_dir != a->is_dir ||
		    (!a->is_dir && st.size != a->size)) {
			gp_error_clear();
			return false;
		}
	}
	return true;
}

/* Remove what the manifest lists for mp: contents first, then the folder. */
static int
remove_package(struct guest *g, const struct man_pkg *mp)
{
	size_t i = mp->nfiles;
	char *path;
	int r;

	while (i-- > 0) {
		path = guest_path(g, mp->name, mp->files[i].rel);
		r = gp_volume_remove(g->vol, path);
		free(path);
		if (r < 0) {
			if (errno != ENOENT)
				return -1;
			gp_error_clear();
		}
	}
	path = guest_path(g, mp->name, NULL);
	r = gp_volume_remove(g->vol, path);
	free(path);
	if (r < 0 && errno != ENOENT)
		return -1;
	gp_error_clear();
	return 0;
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

struct copy {
	int fd;
	const char *src;
	const struct stage_opts *o;
	uint64_t *files_done, nfiles, *bytes_done, total;
};

static int
copy_fill(void *ctx, void *buf, size_t len)
{
	struct copy *c = ctx;
	size_t got = 0;

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
	*c->bytes_done += len;
	if (c->o->progress)
		c->o->progress(c->o->pctx, *c->files_done, c->nfiles,
		    *c->bytes_done, c->total);
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

/*
 * The files' SHA-256 for the manifest are computed by a thread of their
 * own while the main thread copies (several files at once: sha256_files),
 * so hashing costs no wall time on a machine with two cores.  The two
 * read the same source files; a file that changes in between is caught by
 * comparing what each saw (size, times, inode), as tar and rsync do.
 */
struct hash_run {
	struct sha256_job *jobs;	/* in hashing order */
	size_t *slot;			/* copy order -> job */
	struct stat *copied;		/* the copier's fstat, by job */
	size_t n, next;			/* next: the copier's position */
	volatile int stop;
	pthread_t th;
	bool started;
};

static void *
hash_main(void *arg)
{
	struct hash_run *h = arg;

	sha256_files(h->jobs, h->n, &h->stop);
	return NULL;
}

struct by_size {
	uint64_t size;
	size_t idx;
};

static int
by_size_cmp(const void *a, const void *b)
{
	const struct by_size *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Start hashing the files of the packages marked in todo[], largest
 * first: that keeps the lanes busy to the end. */
static int
hash_start(struct hash_run *h, const struct pkg_set *set, const bool *todo)
{
	const struct pkg_file **files;
	struct by_size *o;
	size_t i, j, n = 0;
	int err;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++)
			n += !set->v[i].files[j].is_dir;
	files = xcalloc(n + 1, sizeof(*files));
	o = xcalloc(n + 1, sizeof(*o));
	for (i = 0; i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++)
			if (!set->v[i].files[j].is_dir) {
				files[h->n] = &set->v[i].files[j];
				o[h->n].size = files[h->n]->size;
				o[h->n].idx = h->n;
				h->n++;
			}
	qsort(o, n, sizeof(*o), by_size_cmp);
	h->jobs = xcalloc(n + 1, sizeof(*h->jobs));
	h->slot = xcalloc(n + 1, sizeof(*h->slot));
	h->copied = xcalloc(n + 1, sizeof(*h->copied));
	for (i = 0; i < n; i++) {
		h->jobs[i].path = files[o[i].idx]->src;
		h->jobs[i].size = files[o[i].idx]->size;
		h->slot[o[i].idx] = i;
	}
	free(files);
	free(o);
	if ((err = pthread_create(&h->th, NULL, hash_main, h)) != 0) {
		error_set(err, "cannot start the hashing thread: %s",
		    strerror(err));
		return -1;
	}
	h->started = true;
	return 0;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Wait for the hashes.  With ok set, check that hasher and copier read
 * the same files and store the digests into the packages marked in
 * todo[]; otherwise just stop the thread.
 */
static int
hash_finish(struct hash_run *h, struct pkg_set *set, const bool *todo,
    bool ok)
{
	size_t i, j, k = 0;
	int ret = 0;

	if (h->started) {
		if (!ok)
			h->stop = 1;
		pthread_join(h->th, NULL);
		h->started = false;
	}
	for (i = 0; ok && ret == 0 && i < set->n; i++)
		for (j = 0; todo[i] && j < set->v[i].nfiles; j++) {
			struct pkg_file *f = &set->v[i].files[j];
			const struct sha256_job *jb;
			int err;

			if (f->is_dir)
				continue;
			jb = &h->jobs[h->slot[k]];
			err = jb->err == EIO ? 0 : jb->err;
			if (jb->err || !same_file(&jb->st,
			    &h->copied[h->slot[k]])) {
				error_set(err ? err : EAGAIN, "%s: %s; nothing "
				    "was written", f->src, err ? strerror(err) :
				    "the file changed while being staged");
				ret = -1;
				break;
			}
			sha256_hex(jb->digest, f->sha256);
			k++;
		}
	free(h->jobs);
	free(h->slot);
	free(h->copied);
	memset(h, 0, sizeof(*h));
	return ret;
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

	memset(&m, 0, sizeof(m));
	m.mtime_ns = (int64_t)time(NULL) * 1000000000;
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
		if (!f->is_dir) {
			c.fd = open(f->src, O_RDONLY | O_CLOEXEC);
			if (c.fd < 0) {
				error_set(errno, "%s: %s", f->src,
				    strerror(errno));
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
		if (!f->is_dir)
			r->files_written++;
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
		gp = guest_path(g, p->name, f->rel);
		rc = gp_volume_set_meta(g->vol, gp, &m);
		free(gp);
		if (rc < 0)
			goto out;
	}
	memset(&m, 0, sizeof(m));
	m.mtime_ns = (int64_t)time(NULL) * 1000000000;
	m.readonly = true;
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
	struct gp_stat st;
	size_t len;
	char *text;
	int ret;

	if (g->man.n == 0) {
		if (gp_volume_stat(g->vol, g->manifest_path, &st) == 0)
			return gp_volume_remove(g->vol, g->manifest_path);
		gp_error_clear();
		return 0;
	}
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

static bool
in_set(const struct pkg_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcasecmp(set->v[i].name, name) == 0)
			return true;
	return false;
}

static struct stage_item *
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

struct hasher {
	struct sha256 sha;
};

static int
hash_cb(void *ctx, const void *buf, size_t len)
{
	sha256_update(&((struct hasher *)ctx)->sha, buf, len);
	return 0;
}

/*
 * Read every file of mp back from the volume and compare with its hash.
 * Returns the number of bad files, or -1 on an error that stops reading.
 */
static long
check_package(struct guest *g, const struct man_pkg *mp,
    struct stage_report *r)
{
	long bad = 0;
	size_t i;

	for (i = 0; i < mp->nfiles; i++) {
		const struct pkg_file *f = &mp->files[i];
		char *path = guest_path(g, mp->name, f->rel), hex[65];
		struct hasher h;
		struct gp_stat st;
		uint8_t d[32];
		const char *what = NULL;

		if (gp_volume_stat(g->vol, path, &st) < 0) {
			if (errno != ENOENT) {
				free(path);
				return -1;
			}
			gp_error_clear();
			what = "missing";
		} else if (st.is_dir != f->is_dir) {
			what = "of another kind";
		} else if (!f->is_dir) {
			sha256_init(&h.sha);
			if (gp_volume_read_cb(g->vol, path, hash_cb, &h) < 0) {
				free(path);
				return -1;
			}
			sha256_final(&h.sha, d);
			sha256_hex(d, hex);
			r->files_checked++;
			if (strcmp(hex, f->sha256) != 0)
				what = "different (SHA-256 mismatch)";
		}
		if (what) {
			bad++;
			r->problems = xrealloc(r->problems, (r->nproblems + 1) *
			    sizeof(char *));
			r->problems[r->nproblems++] = xasprintf("%s: %s", path,
			    what);
		}
		free(path);
	}
	return bad;
}

int
stage_run(const char *image, struct pkg_set *set, const struct stage_opts *o,
    struct stage_report *r)
{
	struct guest g;
	uint64_t cluster, need = 0, freed = 0, nfiles = 0, total = 0;
	size_t i, j;
	bool *todo = NULL;
	struct hash_run h;
	double t0, t1;
	char b1[32], b2[32];

	memset(r, 0, sizeof(*r));
	r->image = xstrdup(image);
	r->dry_run = o->dry_run;
	if (guest_open(&g, image, o, o->dry_run ? GP_OPEN_DRY_RUN :
	    GP_OPEN_RDWR) < 0)
		goto fail;
	r->repo = xstrdup(g.repo);
	r->partition = g.partition;
	gp_volume_space(g.vol, &cluster, &r->free_before);

	/* The plan. */
	for (i = 0; i < set->n; i++) {
		struct pkg *p = &set->v[i];
		struct man_pkg *mp = manifest_find(&g.man, p->name);
		struct stage_item *it;
		enum stage_action a;

		if (mp && same_package(&g, mp, p)) {
			a = ACT_UNCHANGED;
		} else if (mp) {
			a = ACT_REPLACE;
			freed += mp->bytes;
		} else {
			struct gp_stat st;
			char *path = guest_path(&g, p->name, NULL);
			int e = gp_volume_stat(g.vol, path, &st);

			free(path);
			if (e == 0) {
				error_set(EEXIST, "%s: %s\\%s exists and was not "
				    "staged by gpupv-prep, so it is left alone; "
				    "remove it in the guest to stage this "
				    "package", image, g.repo, p->name);
				goto fail;
			}
			gp_error_clear();
			a = ACT_STAGE;
		}
		it = add_item(r, p->name, p->inf, p->driver_ver, a);
		for (j = 0; j < p->nfiles; j++)
			if (!p->files[j].is_dir) {
				it->files++;
				if (a != ACT_UNCHANGED)
					need += (p->files[j].size + cluster - 1) /
					    cluster * cluster + 1024;
			} else if (a != ACT_UNCHANGED) {
				need += 4096;
			}
		it->bytes = p->bytes;
		if (a != ACT_UNCHANGED) {
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
			old = add_item(r, q->name, q->inf, q->driver_ver,
			    ACT_REMOVE);
			old->bytes = q->bytes;
			for (size_t k = 0; k < q->nfiles; k++)
				old->files += !q->files[k].is_dir;
			free(it->replaces);
			it->replaces = xstrdup(q->name);
			freed += q->bytes;
		}
	}
	for (i = 0; i < r->n; i++)
		if (r->v[i].action != ACT_UNCHANGED)
			r->changed = true;
	/* New sidecar settings are a change of the manifest alone. */
	if (o->host && host_cfg_merge(&g.man.host, o->host))
		r->changed = true;
	if (!r->changed) {
		/* Nothing to do: the session is dropped, nothing written. */
		r->man = g.man;
		memset(&g.man, 0, sizeof(g.man));
		guest_close(&g);
		return 0;
	}
	if (need > r->free_before + freed) {
		error_set(ENOSPC, "%s: the packages need about %s on the NTFS "
		    "volume, which has %s free; nothing was written", image,
		    human(need, b1), human(r->free_before, b2));
		goto fail;
	}

	/* The execution. */
	gp_volume_short_names(g.vol, g.system32, o->short_names);
	if (gp_volume_mkdir_p(g.vol, g.repo) < 0)
		goto fail;
	for (i = 0; i < r->n; i++) {
		struct man_pkg *mp;

		if (r->v[i].action != ACT_REMOVE && r->v[i].action != ACT_REPLACE)
			continue;
		mp = manifest_find(&g.man, r->v[i].name);
		if (mp && remove_package(&g, mp) < 0)
			goto fail;
		manifest_drop(&g.man, r->v[i].name);
	}
	todo = xcalloc(set->n + 1, sizeof(*todo));
	for (i = 0; i < set->n; i++) {
		size_t k;

		for (k = 0; k < r->n; k++)
			if (!strcmp(r->v[k].name, set->v[i].name))
				break;
		todo[i] = r->v[k].action != ACT_UNCHANGED;
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
	if (write_manifest(&g) < 0)
		goto fail;
	if (o->dry_run) {
		/* Read the staged state back from the session. */
		for (i = 0; i < g.man.n; i++)
			if (in_set(set, g.man.v[i].name) &&
			    check_package(&g, &g.man.v[i], r) != 0) {
				if (!error_pending())
					error_set(EIO, "%s: read-back after the "
					    "dry run differs: %s", image,
					    r->nproblems ? r->problems[0] : "?");
				goto fail;
			}
		r->verified = true;
	}
	if (guest_commit(&g) < 0)
		goto fail;
	r->man = g.man;
	memset(&g.man, 0, sizeof(g.man));
	guest_close(&g);
	free(todo);
	return 0;
fail:
	if (todo)
		hash_finish(&h, set, todo, false);
	guest_close(&g);
	free(todo);
	return -1;
}

int
stage_remove(const char *image, char **names, size_t n,
    const struct stage_opts *o, struct stage_report *r)
{
	struct guest g;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->image = xstrdup(image);
	r->dry_run = o->dry_run;
	if (guest_open(&g, image, o, o->dry_run ? GP_OPEN_DRY_RUN :
	    GP_OPEN_RDWR) < 0)
		goto fail;
	r->repo = xstrdup(g.repo);
	r->partition = g.partition;
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
		it->bytes = mp->bytes;
		for (k = 0; k < mp->nfiles; k++)
			it->files += !mp->files[k].is_dir;
	}
	for (i = 0; i < r->n; i++) {
		struct man_pkg *mp = manifest_find(&g.man, r->v[i].name);

		if (mp && remove_package(&g, mp) < 0)
			goto fail;
		manifest_drop(&g.man, r->v[i].name);
	}
	r->changed = r->n > 0;
	if (r->changed && write_manifest(&g) < 0)
		goto fail;
	/* Nothing removed: the session is dropped unwritten. */
	if (r->changed && guest_commit(&g) < 0)
		goto fail;
	guest_close(&g);
	return 0;
fail:
	guest_close(&g);
	return -1;
}

int
stage_verify(const char *image, const struct stage_opts *o,
    struct stage_report *r)
{
	struct stage_opts vo = *o;
	struct guest g;
	size_t i;
	long bad;

	memset(r, 0, sizeof(*r));
	r->image = xstrdup(image);
	/* libvhdi reads VHD and VHDX; a raw image has no container. */
	if (!vo.format) {
		struct gp_open_opts oo = { .parent = o->parent };
		gp_image *img = gp_image_open(image, &oo);
		struct gp_image_info info;

		if (!img)
			return -1;
		gp_image_get_info(img, &info);
		if (strcmp(info.format, "raw") != 0)
			vo.format = "vhdi";
		gp_image_close(img);
	}
	if (guest_open(&g, image, &vo, GP_OPEN_RDONLY) < 0)
		goto fail;
	r->repo = xstrdup(g.repo);
	r->partition = g.partition;
	if (!g.have_manifest) {
		error_set(ENOENT, "%s: nothing staged (no %s)", image,
		    g.manifest_path);
		goto fail;
	}
	for (i = 0; i < g.man.n; i++) {
		struct man_pkg *mp = &g.man.v[i];
		struct stage_item *it = add_item(r, mp->name, mp->inf,
		    mp->driver_ver, ACT_UNCHANGED);

		it->bytes = mp->bytes;
		bad = check_package(&g, mp, r);
		if (bad < 0)
			goto fail;
		r->bad += (uint64_t)bad;
		for (size_t k = 0; k < mp->nfiles; k++)
			it->files += !mp->files[k].is_dir;
	}
	r->verified = r->bad == 0;
	guest_close(&g);
	return 0;
fail:
	guest_close(&g);
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
	}
	for (i = 0; i < r->nproblems; i++)
		free(r->problems[i]);
	free(r->problems);
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
