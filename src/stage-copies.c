/*
 * stage-copies.c - the files a run places outside the package store, in a
 * Windows guest: CopyToVm copies into System32 and SysWOW64 (Overwrite,
 * or WhenNewer by PE file version and time) and a bundle's extras; the
 * guest file each replaces kept under HostDriverStore\gpupv-prep-originals
 * and put back when the copy goes.  exec_copies also places a Linux
 * guest's files (stage-linux.c plans them) and the DriverStore junctions
 * (stage-junction.c).  Every placed file is a manifest record, so remove
 * and verify know it.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "inf.h"
#include "winname.h"
#include "package.h"
#include "stage-int.h"

#define READ_CHUNK	(1024 * 1024)

static bool source_is_newer(struct guest *g, const struct copy_plan *cp,
    const struct gp_stat *dst);

struct man_copy *
copy_find(struct guest *g, const char *dest)
{
	struct manifest *m = &g->man;
	size_t i;

	/* Names as the guest's file system matches them. */
	for (i = 0; i < m->ncopies; i++)
		if ((g->is_linux ? strcmp : strcasecmp)(m->copies[i].dest,
		    dest) == 0)
			return &m->copies[i];
	return NULL;
}

/* A new, zeroed entry at the end of a plan. */
struct copy_plan *
plan_add(struct copy_plan **out, size_t *nout)
{
	*out = xrealloc(*out, (*nout + 1) * sizeof(**out));
	memset(&(*out)[*nout], 0, sizeof(**out));
	return &(*out)[(*nout)++];
}

struct copy_plan *
plan_file(struct copy_plan **out, size_t *nout, const struct pkg *p,
    const struct pkg_file *f, char *dest)
{
	struct copy_plan *cp = plan_add(out, nout);

	cp->p = p;
	cp->f = f;
	cp->dest = dest;
	return cp;
}

void
copy_plans_free(struct copy_plan *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].dest);
		free(v[i].link);
		free(v[i].owned);
		free(v[i].package);
	}
	free(v);
}

/* The package of the set that is GPU gpu's device package, or NULL. */
static const struct pkg *
device_of(const struct pkg_set *set, const char *gpu)
{
	size_t i;

	for (i = 0; gpu && i < set->n; i++)
		if (set->v[i].role == pkg_roles[0] && set->v[i].gpu &&
		    !strcmp(set->v[i].gpu, gpu))
			return &set->v[i];
	return NULL;
}

/*
 * A bundle's extras: the files of a GPU's driver the host holds in
 * System32 or SysWOW64 rather than in its store, each put back where it
 * came from, as an Overwrite copy of the GPU's device package (a file of
 * the guest's that it replaces is kept and restored by remove).  A
 * destination a CopyToVm line already fills keeps that copy: the INF's
 * word for a VM comes first.
 */
static int
plan_extras(struct guest *g, const struct pkg_set *set, const char *wow,
    bool have_wow, struct copy_plan **out, size_t *nout, bool *changed)
{
	const struct bundle *b = &set->bundle;
	size_t i, k;
	int r;

	for (i = 0; set->extras && i < b->nextras; i++) {
		const struct pkg_file *f = &set->extras->files[i];
		const struct pkg *dev = device_of(set, b->extras[i].gpu);
		struct man_copy *rec;
		struct copy_plan *cp;
		struct gp_stat st;
		char sha[65], *dest;

		if (!dev) {
			warn_add("%s: the bundle names no device package for "
			    "the GPU of %s; not placed", b->source, f->rel);
			continue;
		}
		if (b->extras[i].wow64 && !have_wow) {
			warn_add("%s: the guest has no SysWOW64 (a 32-bit "
			    "Windows?); %s is not placed", b->source, f->rel);
			continue;
		}
		dest = xasprintf("%s\\%s", b->extras[i].wow64 ? wow :
		    g->system32, b->extras[i].name);
		for (k = 0; k < *nout; k++)
			if (!strcasecmp((*out)[k].dest, dest))
				break;
		if (k < *nout) {
			debug("%s: a CopyToVm line of %s fills it; the bundle's "
			    "extra %s is not placed", dest, (*out)[k].p ?
			    (*out)[k].p->name : "?", f->rel);
			free(dest);
			continue;
		}
		if (hash_host_file(f, sha) < 0) {
			free(dest);
			return -1;
		}
		rec = copy_find(g, dest);
		r = rec && !strcasecmp(rec->package, dev->name) &&
		    !strcmp(rec->sha256, sha) ?
		    gp_volume_exists(g->vol, dest, &st) : 0;
		if (r < 0) {
			free(dest);
			return -1;
		}
		if (r > 0 && !st.is_dir && st.size == f->size) {
			free(dest);
			continue;
		}
		cp = plan_file(out, nout, dev, f, dest);
		cp->overwrite = true;
		cp->extra = true;
		memcpy(cp->sha, sha, sizeof(sha));
		*changed = true;
	}
	return 0;
}

/*
 * What the packages' INFs ask to be copied, and which of those copies
 * are not in place yet (todo[] marks packages being staged afresh).
 */
int
plan_copies(struct guest *g, const struct pkg_set *set, const bool *restage,
    const struct stage_opts *o, struct copy_plan **out, size_t *nout,
    bool *changed, uint64_t *kept)
{
	/* \Windows\SysWOW64, beside System32. */
	const char *sep = strrchr(g->system32, '\\');
	char *wow = xasprintf("%.*s\\SysWOW64", sep ? (int)(sep - g->system32) :
	    0, g->system32);
	struct gp_stat st;
	bool have_wow;
	size_t i, k;

	*out = NULL;
	*nout = 0;
	switch (gp_volume_exists(g->vol, wow, &st)) {
	case -1:
		free(wow);
		return -1;
	case 1:
		have_wow = st.is_dir;
		break;
	default:
		have_wow = false;
	}
	for (i = 0; i < set->n; i++) {
		const struct pkg *p = &set->v[i];
		struct copytovm *cv;
		size_t ncv;
		const struct inf *inf;
		const char *sect;

		if (!p->inf_path)
			continue;
		if (!(inf = pkg_inf(p)))
			goto fail;
		sect = o->inf_section;
		if (sect && !inf_section(inf, sect)) {
			if (!o->inf_section_soft) {
				error_setc(GP_EXIT_USAGE, ENOENT, "%s: no install section [%s] "
				    "(--inf-section)", p->inf_path, sect);
				goto fail;
			}
			sect = NULL;
		}
		if (inf_copytovm(inf, sect, &cv, &ncv) < 0)
			goto fail;
		for (k = 0; k < ncv; k++) {
			const struct pkg_file *f = pkg_find(p, cv[k].src);
			struct man_copy *rec;
			struct copy_plan *cp;
			char *dest;
			bool same;
			int here;

			if (!f) {
				warn_add("%s: CopyToVm names %s, which package "
				    "%s does not hold; not copied", p->inf,
				    cv[k].src, p->name);
				continue;
			}
			if (win_name_check(cv[k].dest) < 0) {
				error_input(EINVAL, "%s: CopyToVm destination "
				    "'%.80s%s' is not a name Windows can hold "
				    "(reserved, forbidden characters, or over "
				    "255 UTF-16 units)", p->inf, cv[k].dest,
				    strlen(cv[k].dest) > 80 ? "..." : "");
				copytovm_free(cv, ncv);
				goto fail;
			}
			if (cv[k].wow64 && !have_wow) {
				warn_add("%s: the guest has no SysWOW64 (a 32-bit "
				    "Windows?); %s is not copied", p->name,
				    cv[k].dest);
				continue;
			}
			dest = xasprintf("%s\\%s", cv[k].wow64 ? wow :
			    g->system32, cv[k].dest);
			rec = copy_find(g, dest);
			here = gp_volume_exists(g->vol, dest, &st);
			if (here < 0) {
				free(dest);
				copytovm_free(cv, ncv);
				goto fail;
			}
			same = rec && !restage[i] &&
			    !strcasecmp(rec->package, p->name) &&
			    !strcasecmp(rec->source, f->rel) &&
			    here > 0 && !st.is_dir && st.size == rec->size;
			if (same) {
				free(dest);
				continue;
			}
			cp = plan_file(out, nout, p, f, dest);
			cp->overwrite = cv[k].overwrite;
			/* WhenNewer against a file that is not ours: the
			 * guest's stays when it is as new. */
			if (!rec && !cp->overwrite && here > 0 &&
			    !st.is_dir && !source_is_newer(g, cp, &st)) {
				(*kept)++;
				free(dest);
				(*nout)--;
				continue;
			}
			*changed = true;
		}
		copytovm_free(cv, ncv);
	}
	if (plan_extras(g, set, wow, have_wow, out, nout, changed) < 0)
		goto fail;
	free(wow);
	return 0;
fail:
	free(wow);
	copy_plans_free(*out, *nout);
	*out = NULL;
	*nout = 0;
	return -1;
}

/* The PE file version (VS_FIXEDFILEINFO) found by scanning for the
 * "VS_VERSION_INFO" key of the version resource. */
struct pe_scan {
	uint8_t tail[64];
	size_t ntail;
	uint64_t version;
	bool found;
};

static void
pe_feed(struct pe_scan *s, const uint8_t *p, size_t n)
{
	static const uint8_t key[] = "V\0S\0_\0V\0E\0R\0S\0I\0O\0N\0_\0I\0N\0F\0O\0\0";
	const size_t kl = sizeof(key) - 1;
	uint8_t *buf;
	size_t len, i;

	if (s->found)
		return;
	len = s->ntail + n;
	buf = xmalloc(len);
	memcpy(buf, s->tail, s->ntail);
	memcpy(buf + s->ntail, p, n);
	for (i = 0; i + kl + 4 + 20 <= len; i++) {
		size_t off;

		if (buf[i] != 'V' || memcmp(buf + i, key, kl) != 0)
			continue;
		/* Padding to a 32-bit boundary, then the signature. */
		for (off = i + kl + 1; off < i + kl + 8 && off + 16 <= len; off++)
			if (get_le32(buf + off) == 0xFEEF04BDu) {
				s->version = (uint64_t)get_le32(buf + off + 8) <<
				    32 | get_le32(buf + off + 12);
				s->found = true;
				free(buf);
				return;
			}
	}
	s->ntail = MIN(len, sizeof(s->tail));
	memcpy(s->tail, buf + len - s->ntail, s->ntail);
	free(buf);
}

static int
pe_feed_cb(void *ctx, const void *buf, size_t len)
{
	pe_feed(ctx, buf, len);
	return ((struct pe_scan *)ctx)->found ? -1 : 0;
}

static bool
pe_version_host(const char *path, uint64_t *v)
{
	struct pe_scan s = { 0 };
	uint8_t *buf = xmalloc(READ_CHUNK);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	while (fd >= 0 && !s.found && (r = read(fd, buf, READ_CHUNK)) > 0)
		pe_feed(&s, buf, (size_t)r);
	if (fd >= 0)
		close(fd);
	free(buf);
	*v = s.version;
	return s.found;
}

static bool
pe_version_guest(gp_volume *vol, const char *path, uint64_t *v)
{
	struct pe_scan s = { 0 };
	struct gp_error e;

	/* pe_feed_cb stops the read once the version is found; a file
	 * without one is "not newer", whatever stopped the read. */
	error_try(&e);
	gp_volume_read_cb(vol, path, pe_feed_cb, &s);
	error_end(&e);
	*v = s.version;
	return s.found;
}

/* WhenNewer (Microsoft's GPU-PV document): the file version decides for
 * .dll and .exe names when both have one and they differ, else the
 * last write time. */
static bool
source_is_newer(struct guest *g, const struct copy_plan *cp,
    const struct gp_stat *dst)
{
	const char *ext = strrchr(cp->dest, '.');
	uint64_t vs, vd;

	if (ext && (!strcasecmp(ext, ".dll") || !strcasecmp(ext, ".exe")) &&
	    pe_version_host(cp->f->src, &vs) &&
	    pe_version_guest(g->vol, cp->dest, &vd) && vs != vd)
		return vs > vd;
	return cp->f->mtime_ns / 1000000000 > dst->mtime;
}



/* Put the kept original back (or just delete ours). */
int
undo_copy(struct guest *g, struct man_copy *rec)
{
	void *data = NULL;
	size_t len = 0;
	struct hasher h;
	struct gp_error e;
	struct gp_stat st;
	uint8_t d[32];
	char hex[65];
	int r, saved;

	if (copy_is_junction(g, rec))
		return undo_junction(g, rec);
	/* Only the file gpupv-prep placed: one the guest changed since (a
	 * driver update in the guest) stays, and so does the original kept
	 * for it. */
	/* Gone already (or a link to nothing) is as good as removed. */
	sha256_init(&h.sha);
	error_try(&e);
	r = gp_volume_read_cb(g->vol, rec->dest, hash_cb, &h);
	saved = errno;
	error_end(&e);
	r = error_unless(&e, r, saved, ENOENT, 0);
	if (r < 0)
		return -1;
	if (r == 0) {
		sha256_final(&h.sha, d);
		sha256_hex(d, hex);
		if (strcmp(hex, rec->sha256) != 0) {
			warn_add("%s changed since gpupv-prep placed it (its "
			    "SHA-256 differs); it is left as it is%s%s",
			    rec->dest, rec->backup ? ", and so is " : "",
			    rec->backup ? rec->backup : "");
			return 0;
		}
	}
	if (gp_volume_remove_any(g->vol, rec->dest, 0) < 0)
		return -1;
	if (!rec->backup)
		return 0;
	r = gp_volume_exists(g->vol, rec->backup, &st);
	if (r < 0 || (r > 0 && gp_volume_read(g->vol, rec->backup,
	    HIVE_MAX_SIZE, &data, &len) < 0))
		return -1;
	if (r == 0) {
		warn_add("%s: the original kept at %s is gone; not restored",
		    rec->dest, rec->backup);
		return 0;
	}
	r = gp_volume_write_file(g->vol, rec->dest, data, len);
	free(data);
	if (r == 0)
		r = gp_volume_remove(g->vol, rec->backup);
	return r;
}

void
copy_drop(struct manifest *m, struct man_copy *rec)
{
	size_t i = (size_t)(rec - m->copies);

	man_copy_free(rec);
	memmove(&m->copies[i], &m->copies[i + 1], (m->ncopies - i - 1) *
	    sizeof(*m->copies));
	m->ncopies--;
}

static const char *
pkg_sha(struct guest *g, const struct pkg *p, const struct pkg_file *f)
{
	struct man_pkg *mp = manifest_find(&g->man, p->name);
	size_t i;

	for (i = 0; mp && i < mp->nfiles; i++)
		if (!strcmp(mp->files[i].rel, f->rel))
			return mp->files[i].sha256;
	return "";
}

int
exec_copies(struct guest *g, struct copy_plan *plan, size_t n,
    struct stage_report *r)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct copy_plan *cp = &plan[i];
		struct man_copy *rec = copy_find(g, cp->dest);
		struct gp_file_meta m = { .mode = cp->mode };
		struct copy c = { .fd = -1, .src = cp->f ? cp->f->src : NULL };
		char *backup = NULL;
		struct gp_stat st;
		bool here;
		int rc, found;

		found = gp_volume_exists(g->vol, cp->dest, &st);
		if (found < 0)
			return -1;
		here = found > 0;
		if (here && rec && copy_is_junction(g, rec) && st.is_link) {
			/* Ours, made again (plan_junctions found it wrong). */
			if (gp_volume_remove(g->vol, cp->dest) < 0)
				return -1;
		} else if (here) {
			if (st.is_dir) {
				error_set(EISDIR, "%s is a folder; the CopyToVm "
				    "file cannot go there", cp->dest);
				return -1;
			}
			if (!rec && g->is_linux) {
				/* plan_linux refused it; it appeared since. */
				return linux_not_ours(g, cp->dest);
			}
			if (!rec) {
				/* Not ours: keep it for remove. */
				const char *base = strrchr(cp->dest, '\\') + 1;
				const char *dir = strstr(cp->dest, "\\SysWOW64\\") ?
				    "SysWOW64" : "System32";
				void *data;
				size_t len;

				backup = xasprintf("%s\\gpupv-prep-originals\\%s\\%s",
				    g->hds, dir, base);
				if (gp_volume_read(g->vol, cp->dest, HIVE_MAX_SIZE,
				    &data, &len) < 0) {
					free(backup);
					return -1;
				}
				rc = gp_volume_write_file(g->vol, backup, data,
				    len);
				free(data);
				if (rc < 0) {
					free(backup);
					return -1;
				}
			}
			if (gp_volume_remove(g->vol, cp->dest) < 0) {
				free(backup);
				return -1;
			}
		}
		if (cp->f) {
			m.mtime_ns = cp->f->mtime_ns;
			m.crtime_ns = cp->f->crtime_ns;
		} else {
			m.mtime_ns = (int64_t)time(NULL) * 1000000000;
		}
		if (cp->link) {
			rc = gp_volume_symlink(g->vol, cp->dest, cp->link, &m);
		} else if (cp->data) {
			/* Folders made as needed. */
			rc = gp_volume_write_file(g->vol, cp->dest, cp->data,
			    strlen(cp->data));
			if (rc == 0)
				rc = gp_volume_set_meta(g->vol, cp->dest, &m);
		} else {
			char *dir = path_dirname(cp->dest);

			/* A tree's folders are made with its files. */
			rc = cp->host_lib ? gp_volume_mkdir_p(g->vol, dir) : 0;
			free(dir);
			c.fd = rc < 0 ? -1 : open_package_file(cp->f->src);
			if (c.fd < 0) {
				free(backup);
				return -1;
			}
			rc = gp_volume_create(g->vol, cp->dest, false,
			    cp->f->size, &m, copy_fill, &c);
			close(c.fd);
		}
		if (rc < 0) {
			free(backup);
			return -1;
		}
		if (!rec) {
			g->man.copies = xrealloc(g->man.copies,
			    (g->man.ncopies + 1) * sizeof(*rec));
			rec = &g->man.copies[g->man.ncopies++];
			memset(rec, 0, sizeof(*rec));
			rec->dest = xstrdup(cp->dest);
			rec->backup = backup;
		} else {
			free(rec->package);
			free(rec->source);
			free(rec->link);
		}
		rec->package = xstrdup(cp->p && !cp->host_lib ? cp->p->name :
		    cp->package ? cp->package : "");
		rec->source = cp->host_lib ? xasprintf("%s/%s",
		    strncmp(cp->dest, "/usr/src/", 9) ? "wsl-lib" : "dkms",
		    cp->f->rel) : cp->extra ? xasprintf("extras/%s",
		    cp->f->rel) : xstrdup(cp->f ? cp->f->rel : cp->package ?
		    "junction" : "gpupv-prep");
		rec->link = cp->link ? xstrdup(cp->link) : NULL;
		rec->size = cp->f ? cp->f->size : strlen(cp->data);
		memcpy(rec->sha256, cp->f && !cp->host_lib && !cp->extra ?
		    pkg_sha(g, cp->p, cp->f) : cp->sha, 65);
		r->sysfiles = xrealloc(r->sysfiles, (r->nsysfiles + 1) *
		    sizeof(*r->sysfiles));
		r->sysfiles[r->nsysfiles++] = (struct stage_sysfile){
			.dest = xstrdup(cp->dest),
			.source = cp->extra ? xasprintf("extras\\%s",
			    cp->f->rel) : cp->f ? xasprintf("%s%c%s",
			    cp->p->name, g->is_linux ? '/' : '\\', cp->f->rel) :
			    xstrdup("gpupv-prep"),
			.link = cp->link ? xstrdup(cp->link) : NULL };
		r->sysfile_bytes += cp->link ? 0 : rec->size;
	}
	/* Copies of packages no longer staged go, originals come back. */
	for (i = g->man.ncopies; i-- > 0;)
		if (!copy_wanted(&g->man, &g->man.copies[i]) ||
		    (copy_is_junction(g, &g->man.copies[i]) && !g->links)) {
			if (undo_copy(g, &g->man.copies[i]) < 0 ||
			    prune_src_dirs(g, g->man.copies[i].dest) < 0)
				return -1;
			copy_drop(&g->man, &g->man.copies[i]);
		}
	return 0;
}

