/*
 * stage-plan.c - the plan of a stage run, before anything is written:
 * what becomes of each package (staged, replaced, repaired, unchanged, or
 * an older one removed), the registry edits made in memory, the files
 * placed outside the store, and whether the volume and the host have
 * room for all of it.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>

#include "plan.h"
#include "stage-int.h"

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

/* The report's line for a package staged before that the run removes. */
struct stage_item *
add_removal(struct stage_report *r, const struct man_pkg *q)
{
	struct stage_item *it = add_item(r, q->name, q->inf, q->driver_ver,
	    ACT_REMOVE);
	size_t k;

	it->role = q->role;
	it->gpu = q->gpu ? xstrdup(q->gpu) : NULL;
	it->bytes = q->bytes;
	for (k = 0; k < q->nfiles; k++)
		it->files += !q->files[k].is_dir;
	return it;
}

static const char *
human(uint64_t v, char buf[32])
{
	snprintf(buf, 32, "%.1f MiB", (double)v / (1024.0 * 1024.0));
	return buf;
}

/* What becomes of each package of the set, and of the ones staged before
 * that it replaces; the room the packages need. */
int
plan_packages(struct run *x)
{
	struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const struct stage_opts *o = x->o;
	struct pkg_set *set = x->set;
	const char *image = x->image;
	size_t i, j;

	for (i = 0; i < set->n; i++) {
		struct pkg *p = &set->v[i];
		struct man_pkg *mp = manifest_find(&g->man, p->name);
		struct stage_item *it;
		enum stage_action a;

		if (mp && same_package(g, mp, p)) {
			long nbad = 0;

			a = ACT_UNCHANGED;
			/* --repair: the staged files are hashed, and the ones
			 * that differ or are missing written again. */
			if (o->repair) {
				x->bad[i] = xcalloc(mp->nfiles + 1,
				    sizeof(bool));
				nbad = check_package(g, mp, r, x->bad[i], NULL);
				if (nbad < 0)
					return -1;
			}
			for (j = 0; nbad > 0 && j < mp->nfiles; j++)
				if (x->bad[i][j])
					x->need_pkgs += gp_volume_file_cost(
					    g->vol, mp->files[j].size) +
					    2 * strlen(mp->files[j].rel) + 100;
			if (nbad > 0)
				a = ACT_REPAIR;
		} else if (mp) {
			a = ACT_REPLACE;
		} else {
			struct gp_stat st;
			char *path = guest_path(g, p->name, NULL);
			int e = gp_volume_exists(g->vol, path, &st);

			free(path);
			if (e > 0)
				error_set(EEXIST, "%s: %s\\%s exists and was not "
				    "staged by gpupv-prep, so it is left alone; "
				    "remove it in the guest to stage this "
				    "package", image, g->repo, p->name);
			if (e != 0)
				return -1;
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
			it->repaired += x->bad[i][j];
		for (j = 0; j < p->nfiles; j++) {
			const struct pkg_file *f = &p->files[j];

			it->files += !f->is_dir;
			if (a == ACT_UNCHANGED || a == ACT_REPAIR)
				continue;
			/* The file or folder, its index entry, and a folder's
			 * first index block. */
			x->need_pkgs += gp_volume_file_cost(g->vol, f->size) +
			    2 * strlen(f->rel) + 100 +
			    (f->is_dir ? 4096 : 0);
		}
		if (a == ACT_STAGE || a == ACT_REPLACE)
			x->need_pkgs += gp_volume_file_cost(g->vol, 0) + 4096;
		if ((a == ACT_STAGE || a == ACT_REPLACE) &&
		    plan_name_clashes(p, x->short_names) < 0)
			return -1;
		it->bytes = p->bytes;
		if (a == ACT_STAGE || a == ACT_REPLACE) {
			x->nfiles += it->files;
			x->total += p->bytes;
		}
		/* An older package of the same INF that we staged goes. */
		for (j = 0; j < g->man.n; j++) {
			struct man_pkg *q = &g->man.v[j];
			size_t at = (size_t)(it - r->v);

			if (!q->inf || !p->inf || strcasecmp(q->inf, p->inf) ||
			    !strcasecmp(q->name, p->name) || in_set(set, q->name))
				continue;
			/* add_removal may move r->v: it is found again. */
			add_removal(r, q);
			it = &r->v[at];
			free(it->replaces);
			it->replaces = xstrdup(q->name);
		}
	}
	/* A bundle stages a GPU's whole set: what an earlier bundle staged
	 * for the same GPU and this one no longer lists goes with it. */
	for (j = 0; j < g->man.n; j++) {
		struct man_pkg *q = &g->man.v[j];
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
		add_removal(r, q);
	}
	for (i = 0; i < r->n; i++)
		if (r->v[i].action != ACT_UNCHANGED)
			r->changed = true;
	/* New sidecar settings are a change of the manifest alone. */
	if (o->host && host_cfg_merge(&g->man.host, o->host))
		r->changed = true;
	return 0;
}

/* The plan, for -v. */
static void
debug_plan(const struct run *x)
{
	const struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const char *image = x->image;
	size_t i;

	for (i = 0; debug_enabled() && i < r->n; i++)
		debug("%s: plan: %s %s%s%s", image,
		    stage_action_name(r->v[i].action), r->v[i].name,
		    r->v[i].replaces ? ", replacing " : "",
		    r->v[i].replaces ? r->v[i].replaces : "");
	for (i = 0; debug_enabled() && i < x->nplan; i++) {
		if (x->plan[i].link && !x->plan[i].f)
			debug("%s: plan: link %s to %s", image, x->plan[i].dest,
			    x->plan[i].link);
		else if (!x->plan[i].f)
			debug("%s: plan: write %s", image, x->plan[i].dest);
		else
			debug("%s: plan: copy %s%c%s to %s (%s)", image,
			    x->plan[i].host_lib ? "host" : x->plan[i].p->name,
			    g->is_linux ? '/' : '\\', x->plan[i].f->rel,
			    x->plan[i].dest, x->plan[i].overwrite ?
			    "overwrite" : "when newer");
	}
	if (debug_enabled() && (x->gr.s.values_set || x->gr.s.values_deleted ||
	    x->gr.s.keys_created || x->gr.s.keys_deleted))
		debug("%s: plan: registry: %llu values set, %llu deleted, "
		    "%llu keys created, %llu deleted", image,
		    (unsigned long long)x->gr.s.values_set,
		    (unsigned long long)x->gr.s.values_deleted,
		    (unsigned long long)x->gr.s.keys_created,
		    (unsigned long long)x->gr.s.keys_deleted);
}

/* The registry edits (made in memory: only then is it known whether they
 * change anything) and the files placed outside the store. */
int
plan_system(struct run *x)
{
	struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const struct stage_opts *o = x->o;
	struct pkg_set *set = x->set;
	const char *image = x->image;
	size_t i, j;

	x->restage = xcalloc(set->n + 1, sizeof(*x->restage));
	for (i = 0; i < set->n; i++)
		for (j = 0; j < r->n; j++)
			if (!strcmp(r->v[j].name, set->v[i].name))
				x->restage[i] = r->v[j].action == ACT_STAGE ||
				    r->v[j].action == ACT_REPLACE;
	j = (size_t)wants_registry(set, o);
	if (g->is_linux && j == 2) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: partition %u holds "
		    "Linux (%s); --reg, --copy-key, --driver-store-copy-mode, "
		    "--gpu-virtualization-flags and --disable-fast-startup "
		    "edit a Windows registry",
		    image, g->partition, g->lx.pretty_name ? g->lx.pretty_name :
		    g->lx.fs);
		return -1;
	}
	if (!g->is_linux && set->wsl_lib)
		warn_add("%s: the WSL libraries are for a Linux guest; not "
		    "placed in Windows", image);
	if (!g->is_linux && set->dkms) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: --dkms places a Linux "
		    "module's source; partition %u holds Windows", image,
		    g->partition);
		return -1;
	}
	if (g->is_linux) {
		if (set->bundle.nreg)
			warn_add("%s: the bundle's .reg files are for a Windows "
			    "guest; not applied to Linux", image);
		j = 0;
	}
	if (j == 1 && !g->w.system_root) {
		warn_add("%s: partition %u holds no Windows registry; the "
		    "nvlddmkm service is not written", image, g->partition);
		j = 0;
	}
	if (j) {
		if (apply_registry(g, &x->gr, set, o, image) < 0)
			return -1;
		if (x->gr.s.dirty[REG_HIVE_SYSTEM] ||
		    x->gr.s.dirty[REG_HIVE_SOFTWARE])
			r->changed = true;
		r->reg_values_set = x->gr.s.values_set;
		r->reg_values_deleted = x->gr.s.values_deleted;
		r->reg_keys_created = x->gr.s.keys_created;
		r->reg_keys_deleted = x->gr.s.keys_deleted;
	}
	if (g->is_linux ? plan_linux(g, set, x->restage, &x->plan,
	    &x->nplan, &r->changed) < 0 : plan_copies(g, set,
	    x->restage, o, &x->plan, &x->nplan, &r->changed,
	    &r->sysfiles_kept) < 0)
		return -1;
	if (plan_junctions(g, set, o->driverstore_links, &x->plan, &x->nplan,
	    &r->changed) < 0)
		return -1;
	for (i = 0; i < g->man.ncopies; i++)
		for (j = 0; j < r->n; j++)
			if (r->v[j].action == ACT_REMOVE && !strcasecmp(
			    r->v[j].name, g->man.copies[i].package))
				r->changed = true;
	if (debug_enabled())
		debug_plan(x);
	return 0;
}

/*
 * Room for the run, counted before the first write: on the volume, and on
 * the host file system that holds the image file.
 */
int
check_space(struct run *x)
{
	struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const struct stage_opts *o = x->o;
	struct pkg_set *set = x->set;
	const char *image = x->image;
	uint64_t need;
	char b1[32], b2[32], b3[32];
	size_t i;

	/*
	 * Everything the run allocates, counted before the first write.  The
	 * space of what the run deletes or rewrites (an older package, the
	 * hives, the manifest) stays in use until the commit, so it does not
	 * count as free: an update needs room for both versions.
	 */
	for (i = 0; i < x->nplan; i++) {
		struct gp_stat st;
		int e = 0;

		x->need_copies += gp_volume_file_cost(g->vol,
		    x->plan[i].f ? x->plan[i].f->size :
		    strlen(x->plan[i].data));
		if (!copy_find(g, x->plan[i].dest) &&
		    (e = gp_volume_exists(g->vol, x->plan[i].dest, &st)) > 0)
			x->need_copies += gp_volume_file_cost(g->vol, st.size);
		if (e < 0)
			return -1;
	}
	if (commit_hives(&x->gr) < 0)
		return -1;
	for (i = 0; i < REG_NHIVES; i++)
		if (x->gr.out[i])
			x->need_hives += gp_volume_file_cost(g->vol,
			    x->gr.outlen[i]);
	{
		struct gp_stat st;
		uint64_t man = 4096, k;
		int e = gp_volume_exists(g->vol, g->manifest_path, &st);

		if (e < 0)
			return -1;
		if (e > 0)
			man += st.size;
		for (k = 0; k < set->n; k++)
			man += 1024 + 320 * (uint64_t)set->v[k].nfiles;
		/* The manifest, and the MFT growing by its step (libntfs-3g
		 * extends it 16 records at a time) plus its bitmap. */
		x->need_meta = gp_volume_file_cost(g->vol, man) + 64 * 1024;
	}
	need = x->need_pkgs + x->need_copies + x->need_hives + x->need_meta;
	r->space_needed = need;
	debug("%s: the run needs %llu bytes (packages %llu, System32 copies "
	    "%llu, hives %llu, manifest and MFT %llu) of %llu free", image,
	    (unsigned long long)need, (unsigned long long)x->need_pkgs,
	    (unsigned long long)x->need_copies,
	    (unsigned long long)x->need_hives,
	    (unsigned long long)x->need_meta,
	    (unsigned long long)r->free_before);
	if (need > r->free_before) {
		error_set(ENOSPC, "%s: the change needs about %s on the %s "
		    "volume (packages %s, the rest for %s and metadata; what "
		    "it replaces stays in use until it commits), which has %s "
		    "free; nothing was written", image, human(need, b1),
		    g->is_linux ? gp_volume_fs_name(g->vol) : "NTFS",
		    human(x->need_pkgs, b3), g->is_linux ? "/usr/lib/wsl/lib" :
		    "System32 copies, hives", human(r->free_before, b2));
		return -1;
	}

	/*
	 * The host file system must hold what the image file may grow by:
	 * what does not fit in free space the file already stores, a block
	 * of rounding, and the log or journal of the commit.  Checked here,
	 * a full host disk is a refusal that leaves the file as it was.
	 */
	{
		struct gp_image_info info;
		uint64_t stored = gp_volume_stored_free(g->vol), grow, avail;
		struct statvfs sv;
		char *dir = path_dirname(image);

		gp_image_get_info(g->img, &info);
		grow = (need > stored ? need - stored : 0) + info.block_size +
		    (x->need_meta + x->need_hives) * 2 + 4 * 1024 * 1024;
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
				return -1;
			}
		}
		free(dir);
	}

	if (g->is_linux && linux_preflight(g) < 0)
		return -1;

	return 0;
}
