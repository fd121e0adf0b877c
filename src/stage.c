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
 * reading back and verify in stage-verify.c.  This file tells a run's
 * story: the guest opened (stage-guest.c), the plan (stage-plan.c), the
 * packages placed (stage-pkg.c) with the rest, and the commit.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "stage-int.h"

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

/* Remove what the manifest lists for mp: contents first, then the folder. */

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

/* The change, in the session: what goes first, then the packages (their
 * hashes computed by a thread of their own), repairs, the files outside
 * the store, the hives and the manifest. */
static int
apply(struct run *x)
{
	struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const struct stage_opts *o = x->o;
	struct pkg_set *set = x->set;
	const char *image = x->image;
	double t0, t1;
	size_t i;

	if (gp_volume_mkdir_p(g->vol, g->repo) < 0)
		return -1;
	for (i = 0; i < r->n; i++) {
		struct man_pkg *mp;

		if (r->v[i].action != ACT_REMOVE &&
		    r->v[i].action != ACT_REPLACE)
			continue;
		mp = manifest_find(&g->man, r->v[i].name);
		if (mp && remove_package(g, mp, o->force) < 0)
			return -1;
		manifest_drop(&g->man, r->v[i].name);
	}
	t0 = mono_ms();
	/* The packages plan_system marked to copy (staged or replaced). */
	x->hashing = true;
	if (hash_start(&x->h, set, x->restage) < 0)
		return -1;
	for (i = 0; i < set->n; i++)
		if (x->restage[i] && stage_package(g, &set->v[i], o, r,
		    x->nfiles, x->total, &x->h) < 0)
			return -1;
	t1 = mono_ms();
	if (hash_finish(&x->h, set, x->restage, true) < 0)
		return -1;
	debug("%s: copied %llu files in %.0f ms; their hashes were ready "
	    "%.0f ms later", image, (unsigned long long)r->files_written,
	    t1 - t0, mono_ms() - t1);
	for (i = 0; i < set->n; i++)
		if (x->restage[i])
			manifest_add(&g->man, &set->v[i]);
	for (i = 0; i < set->n; i++)
		if (x->bad[i] &&
		    repair_package(g, &set->v[i], x->bad[i], r) < 0)
			return -1;
	if (g->is_linux && gp_volume_mkdir_p(g->vol, g->system32) < 0)
		return -1;
	if (exec_copies(g, x->plan, x->nplan, r) < 0 ||
	    store_hives(g, &x->gr, r) < 0)
		return -1;
	if (g->is_linux && linux_arm(g, true) < 0)
		return -1;
	if (write_manifest(g) < 0)
		return -1;
	return 0;
}

/* A dry run reads what it staged back from the session. */
static int
read_back(struct run *x)
{
	struct guest *g = &x->g;
	struct stage_report *r = x->r;
	const struct stage_opts *o = x->o;
	struct pkg_set *set = x->set;
	const char *image = x->image;
	struct readback rb;
	size_t i;

	/* Read the staged state back from the session. */
	readback_init(&rb, o, "reading back", &g->man, set);
	for (i = 0; i < g->man.n; i++)
		if (in_set(set, g->man.v[i].name) &&
		    check_package(g, &g->man.v[i], r, NULL, &rb) != 0) {
			error_set(EIO, "%s: read-back after the dry "
			    "run differs: %s", image,
			    r->nproblems ? r->problems[0] : "?");
			return -1;
		}
	r->verified = true;
	return 0;
}

static void
run_free(struct run *x, bool ok)
{
	if (x->hashing && !ok)
		hash_finish(&x->h, x->set, x->restage, false);
	guest_close(&x->g);
	guest_reg_free(&x->gr);
	copy_plans_free(x->plan, x->nplan);
	free(x->restage);
	bad_free(x->bad, x->set->n);
}

int
stage_run(const char *image, struct pkg_set *set, const struct stage_opts *o,
    struct stage_report *r)
{
	struct run x = { .image = image, .o = o, .set = set, .r = r };
	uint64_t cluster;
	int ret = -1;

	x.bad = xcalloc(set->n + 1, sizeof(*x.bad));
	if (run_open(&x.g, image, o, r) < 0)
		goto out;
	gp_volume_space(x.g.vol, &cluster, &r->free_before);
	x.short_names = gp_volume_short_names(x.g.vol, x.g.system32,
	    o->short_names) > 0;
	/* The plan, made in memory; a run that changes nothing drops the
	 * session and writes nothing. */
	if (plan_packages(&x) < 0 || plan_system(&x) < 0)
		goto out;
	if (r->changed) {
		/* Room for all of it; then the change, read back when a dry
		 * run, and committed. */
		if (check_space(&x) < 0 || apply(&x) < 0 ||
		    (o->dry_run && read_back(&x) < 0))
			goto out;
		progress(o, "committing", 0, 0, 0, 0);
		if (guest_commit(&x.g) < 0)
			goto out;
	}
	r->man = x.g.man;
	memset(&x.g.man, 0, sizeof(x.g.man));
	ret = 0;
out:
	run_free(&x, ret == 0);
	return ret;
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

		if (mp)		/* not named twice */
			add_removal(r, mp);
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
