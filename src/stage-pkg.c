/*
 * stage-pkg.c - packages in the guest's store: a package's folder copied
 * in (hashed by stage-hash.c on the way), an older one taken out (with
 * what the guest added to it, under --force), the files --repair writes
 * again, and the manifest's record of each.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "stage-int.h"

struct extras {
	char **names;
	size_t n;
};

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

int
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

void
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
int
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

void
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

void
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
int
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
