/*
 * stage-junction.c - the DriverStore junctions of `stage
 * --driverstore-links`: for each staged package, a directory junction
 * System32\DriverStore\FileRepository\<package> to the package in
 * HostDriverStore\FileRepository.  DLSS's NGX loader looks for the
 * driver under the host's DriverStore path; inside a GPU-PV guest the
 * package lives only in HostDriverStore (appsandbox answers the same way,
 * with a junction made inside the running guest).
 *
 * A junction is a system file of its package in the manifest (dest, and
 * link: the target), so it goes when its package goes or is replaced, and
 * verify checks its target.  Once made, junctions follow the package set
 * through updates; --no-driverstore-links takes them away.  An entry of
 * that name that gpupv-prep did not make is never replaced.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "sha256.h"
#include "stage-int.h"

/*
 * The target of the link at path: 1 with *t (caller frees), 0 when there
 * is nothing there (*why ENOENT) or it is no link (*why EINVAL), -1 with
 * an error.  The two answers that are not errors are recorded nowhere.
 */
static int
link_target(struct guest *g, const char *path, char **t, int *why)
{
	struct gp_error e;
	int r;

	error_try(&e);
	*t = gp_volume_link_target(g->vol, path);
	*why = errno;
	error_end(&e);
	r = error_unless(&e, *t ? 0 : -1, *why, ENOENT, EINVAL);
	if (r == 1)
		*why = errno;
	return r < 0 ? -1 : *t ? 1 : 0;
}

/* System32\DriverStore\FileRepository\<name> */
static char *
junction_path(const struct guest *g, const char *name)
{
	return xasprintf("%s\\DriverStore\\FileRepository\\%s", g->system32,
	    name);
}

/* "C:\Windows\System32\HostDriverStore\FileRepository\<name>", on the
 * drive the guest's SystemRoot names (C: when the hive does not say). */
static char *
junction_target(const struct guest *g, const char *name)
{
	return xasprintf("%c:%s\\%s", g->w.drive ? g->w.drive : 'C', g->repo,
	    name);
}

bool
copy_is_junction(const struct guest *g, const struct man_copy *c)
{
	return !g->is_linux && c->link != NULL;
}

/* Whether the manifest holds a junction: then the set keeps them. */
static bool
have_junctions(const struct guest *g)
{
	size_t i;

	for (i = 0; i < g->man.ncopies; i++)
		if (copy_is_junction(g, &g->man.copies[i]))
			return true;
	return false;
}

/*
 * 1 when the entry at path is the junction rec records (pointing where it
 * should), 0 when there is no entry, -1 with an error when something
 * else is there (refused by name: it is never replaced).
 */
static int
junction_state(struct guest *g, const char *path, const struct man_copy *rec,
    const char *target)
{
	struct gp_stat st;
	char *t;
	int r, why;

	if ((r = gp_volume_exists(g->vol, path, &st)) <= 0)
		return r;
	if (!rec || !st.is_dir || !st.is_link) {
		error_set(EEXIST, "%s exists and is not a junction gpupv-prep "
		    "made (a folder of the guest's own DriverStore?); it is "
		    "left alone, and --driverstore-links cannot link the "
		    "package there", path);
		return -1;
	}
	if (link_target(g, path, &t, &why) < 0)
		return -1;
	if (!t) {
		r = 2;			/* ours, but unreadable: made again */
	} else {
		r = strcasecmp(t, target) == 0 ? 1 : 2;
	}
	free(t);
	return r;
}

int
plan_junctions(struct guest *g, const struct pkg_set *set, int want,
    struct copy_plan **out, size_t *nout, bool *changed)
{
	size_t i, k;

	if (g->is_linux) {
		if (want <= 0)
			return 0;
		error_setc(GP_EXIT_USAGE, EINVAL, "partition %u holds Linux; "
		    "--driverstore-links links a Windows guest's DriverStore",
		    g->partition);
		return -1;
	}
	g->links = want > 0 || (want == 0 && have_junctions(g));
	if (!g->links) {
		/* Made before: they go now. */
		if (have_junctions(g))
			*changed = true;
		return 0;
	}
	if (set->n + g->man.n > 0) {
		char *store = xasprintf("%s\\DriverStore\\FileRepository",
		    g->system32);
		struct gp_stat st;
		int e = gp_volume_exists(g->vol, store, &st);

		if (e < 0) {
			free(store);
			return -1;
		}
		if (e == 0 || !st.is_dir) {
			error_set(ENOENT, "%s: the guest has no such folder, so "
			    "--driverstore-links has nowhere to link the "
			    "packages", store);
			free(store);
			return -1;
		}
		free(store);
	}
	/* The packages the manifest will hold: this run's, and the ones
	 * staged before that the run keeps. */
	for (i = 0; i < set->n + g->man.n; i++) {
		const struct pkg *p = i < set->n ? &set->v[i] : NULL;
		const char *name = p ? p->name : g->man.v[i - set->n].name;
		struct man_copy *rec;
		struct copy_plan *cp;
		struct sha256 h;
		uint8_t d[32];
		char *path, *target;
		int st;

		if (!p && in_set(set, name))
			continue;
		/* An older package the set replaces goes: one of the same
		 * INF, or one of a GPU whose whole set the run stages. */
		for (k = 0; !p && k < set->n; k++) {
			const struct man_pkg *q = &g->man.v[i - set->n];

			if ((set->v[k].inf && q->inf &&
			    !strcasecmp(set->v[k].inf, q->inf)) ||
			    (set->v[k].gpu && q->gpu &&
			    !strcmp(set->v[k].gpu, q->gpu)))
				break;
		}
		if (!p && k < set->n)
			continue;
		path = junction_path(g, name);
		target = junction_target(g, name);
		rec = copy_find(g, path);
		st = junction_state(g, path, rec, target);
		if (st < 0) {
			free(path);
			free(target);
			return -1;
		}
		if (st == 1) {
			free(path);
			free(target);
			continue;
		}
		cp = plan_add(out, nout);
		cp->p = p;
		cp->package = xstrdup(name);
		cp->dest = path;
		cp->link = target;
		cp->data = "";
		/* Its manifest digest: of the target it names. */
		sha256_init(&h);
		sha256_update(&h, target, strlen(target));
		sha256_final(&h, d);
		sha256_hex(d, cp->sha);
		*changed = true;
	}
	return 0;
}

int
undo_junction(struct guest *g, const struct man_copy *rec)
{
	char *t;
	bool same;
	int why;

	if (link_target(g, rec->dest, &t, &why) < 0)
		return -1;
	same = t && strcasecmp(t, rec->link) == 0;
	free(t);
	if (!t && why == ENOENT)
		return 0;
	if (!same) {
		warn_add("%s is no longer the junction gpupv-prep made; it is "
		    "left as it is", rec->dest);
		return 0;
	}
	return gp_volume_remove(g->vol, rec->dest);
}

int
check_junction(struct guest *g, const struct man_copy *c, const char **what)
{
	char *t;
	int why;

	*what = NULL;
	if (link_target(g, c->dest, &t, &why) < 0)
		return -1;
	if (!t) {
		*what = why == ENOENT ? "missing" : "no longer a junction";
	} else if (strcasecmp(t, c->link) != 0) {
		*what = "a junction to somewhere else";
	}
	free(t);
	return *what != NULL;
}
