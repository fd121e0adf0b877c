/*
 * stage-linux.c - what a Linux guest needs besides its packages, laid out
 * as WSL lays out its own VM (microsoft/WSL: WslCoreVm.cpp,
 * init/config.cpp): the INF's 11,lxss\lib files in /usr/lib/wsl/lib with
 * links for their other names, the host's WSL libraries, a DKMS tree in
 * /usr/src, /etc/ld.so.conf.d/ld.wsl.conf, and a first-boot unit that runs
 * ldconfig (and dkms) once.  Everything placed is a system-file record of
 * the manifest, as CopyToVm copies are in Windows, so remove and verify
 * treat both alike.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "package.h"
#include "stage-int.h"

int
linux_open(struct guest *g, const char *image, bool writable)
{
	struct gp_partition *p = &g->pt.parts[g->lx.slot];

	g->partition = g->lx.partition;
	g->vol = gp_volume_open(g->img, p->start, p->size, writable);
	if (!g->vol)
		return -1;
	g->system32 = xstrdup(WSL_ROOT "/lib");
	g->hds = xstrdup(WSL_ROOT);
	g->repo = xstrdup(WSL_ROOT "/drivers");
	g->manifest_path = xstrdup(WSL_ROOT "/gpupv-prep.json");
	return read_manifest(g, image);
}

/* What gpupv-prep generates in a Linux guest (manifest_linux_generated
 * lists the same paths). */
#define LX_LDCONF	"/etc/ld.so.conf.d/ld.wsl.conf"
#define LX_UNIT		"/etc/systemd/system/gpupv-prep-firstboot.service"
#define LX_WANTS_DIR	"/etc/systemd/system/multi-user.target.wants"
#define LX_WANTS	LX_WANTS_DIR "/gpupv-prep-firstboot.service"
#define LX_SCRIPT	WSL_ROOT "/gpupv-prep-firstboot"
#define LX_STATUS_DIR	"/var/lib/gpupv-prep"

static const char lx_ldconf[] =
	"# Written by gpupv-prep: the GPU-PV user-mode libraries staged from "
	"the host.\n"
	WSL_ROOT "/lib\n";

static const char lx_unit[] =
	"# Written by gpupv-prep.  Runs once after gpupv-prep staged GPU-PV\n"
	"# drivers offline, then disables itself (the status is in\n"
	"# " GP_LINUX_STATUS ", and `gpupv-prep inspect` reports it).\n"
	"[Unit]\n"
	"Description=gpupv-prep first boot: loader cache for " WSL_ROOT "/lib\n"
	"DefaultDependencies=no\n"
	"After=local-fs.target\n"
	"Before=sysinit.target\n"
	"ConditionPathExists=" LX_SCRIPT "\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"ExecStart=" LX_SCRIPT "\n"
	"StandardOutput=journal+console\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

/*
 * The first-boot script: ldconfig, and with a DKMS tree staged, dkms
 * builds and installs the module for the running kernel (the guest's own
 * headers are needed: that cannot be done offline).  On success it
 * records "ok", disables its unit and leaves; on failure it records why
 * and stays enabled, so the next boot tries again.
 */
static char *
lx_script_text(const char *module, const char *version)
{
	char *dk = module ? xasprintf(
	    "if ! command -v dkms >/dev/null 2>&1; then\n"
	    "\tfail \"dkms is not installed (apt install dkms "
	    "linux-headers-$(uname -r))\"\n"
	    "fi\n"
	    "dkms status -m %s -v %s | grep -q . || dkms add -m %s -v %s ||\n"
	    "\tfail \"dkms add %s/%s\"\n"
	    "dkms install -m %s -v %s -k \"$(uname -r)\" ||\n"
	    "\tfail \"dkms install %s/%s for $(uname -r) (are its headers "
	    "installed?)\"\n"
	    "modprobe %s || fail \"modprobe %s\"\n"
	    "done=\"$done; dkms installed %s %s for $(uname -r)\"\n",
	    module, version, module, version, module, version, module, version,
	    module, version, module, module, module, version) : xstrdup("");
	char *s = xasprintf(
	    "#!/bin/sh\n"
	    "# Written by gpupv-prep: run at the first boot after a stage (by\n"
	    "# gpupv-prep-firstboot.service).  Builds the loader cache so that\n"
	    "# " WSL_ROOT "/lib is found%s, records the result in\n"
	    "# " GP_LINUX_STATUS " and, when all went well, disables the unit.\n"
	    "status=" GP_LINUX_STATUS "\n"
	    "now=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
	    "mkdir -p " LX_STATUS_DIR "\n"
	    "fail() {\n"
	    "\techo \"failed $now: $1\" >\"$status\"\n"
	    "\techo \"gpupv-prep-firstboot: $1\" >&2\n"
	    "\texit 1\n"
	    "}\n"
	    "ldconfig || fail \"ldconfig exited $?\"\n"
	    "done=\"ldconfig ran; " WSL_ROOT "/lib is in the loader cache\"\n"
	    "%s"
	    "echo \"ok $now: $done\" >\"$status\"\n"
	    "rm -f " LX_WANTS "\n"
	    "echo \"gpupv-prep-firstboot: $done\"\n",
	    module ? " and the DKMS module is built" : "", dk);

	free(dk);
	return s;
}

static const struct {
	const char *dest, *data;
	uint32_t mode;
} lx_generated[] = {
	{ LX_LDCONF, lx_ldconf, 0644 },
	{ LX_SCRIPT, NULL, 0755 },	/* lx_script_text() */
	{ LX_UNIT, lx_unit, 0644 },
};

/* Whether a system-file record is still wanted: its package is staged,
 * or it is generated and some package is. */
bool
copy_wanted(struct manifest *m, const struct man_copy *c)
{
	if (!*c->package)
		return m->n > 0;
	return manifest_find(m, c->package) != NULL;
}

/* Remove path when it is there (and a link, when link_only). */
static int
remove_if_there(struct guest *g, const char *path, bool link_only)
{
	struct gp_stat st;
	int r = gp_volume_exists(g->vol, path, &st);

	if (r <= 0)
		return r;
	if (link_only && !st.is_link) {
		warn_add("%s is not the link gpupv-prep makes; left alone", path);
		return 0;
	}
	return gp_volume_remove(g->vol, path);
}

/*
 * After a change, the first-boot unit runs at the next boot: its wants
 * link is made (the unit removes it when it succeeds), and the status a
 * previous boot left goes.  With nothing staged any more, both go.
 */
int
linux_arm(struct guest *g, bool on)
{
	struct gp_file_meta m = {
		.mtime_ns = (int64_t)time(NULL) * 1000000000,
	};
	struct gp_stat st;
	int r;

	if (remove_if_there(g, GP_LINUX_STATUS, false) < 0)
		return -1;
	if (!on) {
		if (remove_if_there(g, LX_WANTS, true) < 0)
			return -1;
		/* The status folder, when it is empty (ENOTEMPTY: kept). */
		r = gp_volume_exists(g->vol, LX_STATUS_DIR, &st);
		if (r > 0 && st.is_dir)
			r = gp_volume_remove_any(g->vol, LX_STATUS_DIR,
			    ENOTEMPTY);
		return r < 0 ? -1 : 0;
	}
	r = gp_volume_exists(g->vol, LX_WANTS, &st);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (gp_volume_mkdir_p(g->vol, LX_WANTS_DIR) < 0)
		return -1;
	return gp_volume_symlink(g->vol, LX_WANTS, LX_UNIT, &m);
}

static int
name_len_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);

	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

/*
 * The name a /usr/lib/wsl/lib entry links to, NULL for the real file:
 * of the names one source is copied to, the longest is the file and each
 * shorter one links to the next (libcuda.so -> libcuda.so.1 ->
 * libcuda.so.1.1), as ldconfig expects (plain copies make it complain).
 */
static char *
lxss_link(const struct lxss_file *v, size_t n, size_t at)
{
	const char **names = xcalloc(n + 1, sizeof(char *));
	size_t k, m = 0;
	char *r = NULL;

	for (k = 0; k < n; k++)
		if (!strcasecmp(v[k].src, v[at].src))
			names[m++] = v[k].dest;
	qsort(names, m, sizeof(char *), name_len_cmp);
	for (k = 0; k + 1 < m; k++)
		if (!strcmp(names[k], v[at].dest))
			r = xstrdup(names[k + 1]);
	free(names);
	return r;
}

/* Whether the guest's entry at dest is the record's, as placed. */
static int
linux_in_place(struct guest *g, const struct man_copy *rec, const char *link,
    uint64_t size)
{
	struct gp_stat st;
	int r = gp_volume_exists(g->vol, rec->dest, &st);

	if (r <= 0)
		return r;
	if (link)
		return st.is_link && rec->link && !strcmp(rec->link, link) &&
		    st.size == strlen(link);
	return !st.is_link && !st.is_dir && !rec->link && st.size == size;
}

/* An entry gpupv-prep did not place is never replaced. */
int
linux_not_ours(struct guest *g, const char *dest)
{
	struct gp_stat st;
	int r = gp_volume_exists(g->vol, dest, &st);

	if (r > 0) {
		error_set(EEXIST, "%s exists and was not placed by gpupv-prep, "
		    "so it is left alone; remove it in the guest to stage "
		    "this", dest);
		return -1;
	}
	return r;
}

/* The SHA-256 of a host file of the set, as hex (sha256_files: never
 * through a link, and the size it had when the set was read). */
int
hash_host_file(const struct pkg_file *f, char hex[65])
{
	struct sha256_job j = { .path = f->src, .size = f->size };
	volatile int stop = 0;

	sha256_files(&j, 1, &stop);
	if (j.err) {
		error_set(j.err, "%s: %s", f->src, j.err == EIO ? "changed size "
		    "while the run was reading it" : strerror(j.err));
		return -1;
	}
	sha256_hex(j.digest, hex);
	return 0;
}

/* Whether the manifest records a DKMS tree in /usr/src. */
static bool
dkms_staged(struct guest *g)
{
	size_t i;

	for (i = 0; i < g->man.ncopies; i++)
		if (!strncmp(g->man.copies[i].dest, "/usr/src/", 9))
			return true;
	return false;
}

/*
 * A tree from the host placed file by file under dir, kept while any
 * package is staged (system-file records of package "", source
 * "TAG/REL"): the host's WSL libraries into /usr/lib/wsl/lib (as WSL has
 * them there, with the libD3D12Core.so name some loaders ask for linked
 * to libd3d12core.so), or a DKMS source tree into /usr/src/NAME-VERSION.
 */
static int
plan_tree(struct guest *g, const struct pkg *w, const char *dir,
    const char *tag, uint32_t mode, struct copy_plan **out, size_t *nout,
    bool *changed)
{
	const struct pkg_file *core = NULL;
	size_t k, n = w->nfiles;
	bool has_alias = false, wsl = !strcmp(tag, "wsl-lib");

	for (k = 0; wsl && k < w->nfiles; k++) {
		if (!strcmp(w->files[k].rel, "libd3d12core.so"))
			core = &w->files[k];
		if (!strcmp(w->files[k].rel, "libD3D12Core.so"))
			has_alias = true;
	}
	for (k = 0; k < n + (core && !has_alias); k++) {
		const struct pkg_file *f = k < n ? &w->files[k] : core;
		char *dest, *src;
		struct man_copy *rec;
		struct copy_plan *cp;
		int same = 0;

		if (f->is_dir)
			continue;	/* made with the files in them */
		dest = xasprintf("%s/%s", dir, k < n ? f->rel :
		    "libD3D12Core.so");
		rec = copy_find(g, dest);
		src = xasprintf("%s/%s", tag, f->rel);
		cp = plan_file(out, nout, w, f, dest);
		cp->host_lib = true;
		cp->mode = mode;
		cp->link = k < n ? NULL : xstrdup("libd3d12core.so");
		if (hash_host_file(f, cp->sha) < 0 ||
		    (!rec && linux_not_ours(g, dest) < 0)) {
			free(src);
			return -1;
		}
		if (rec && !*rec->package && !strcmp(rec->source, src) &&
		    !strcmp(rec->sha256, cp->sha))
			same = linux_in_place(g, rec, cp->link, f->size);
		free(src);
		if (same < 0)
			return -1;
		if (same)
			cp->dest[0] = '\0';
		else
			*changed = true;
	}
	return 0;
}

/*
 * A Linux guest's system files: the INFs' 11,lxss\lib files into
 * /usr/lib/wsl/lib (one file per source, links for its other names),
 * and the loader configuration and first-boot unit.
 */
int
plan_linux(struct guest *g, const struct pkg_set *set, const bool *restage,
    struct copy_plan **out, size_t *nout, bool *changed)
{
	size_t i, k;
	bool d3d = false;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < set->n; i++) {
		const struct pkg *p = &set->v[i];
		struct lxss_file *lf;
		size_t nlf;
		const struct inf *inf;

		if (!p->inf_path)
			continue;
		if (!(inf = pkg_inf(p)) || inf_lxss_files(inf, &lf, &nlf) < 0)
			goto fail;
		for (k = 0; k < nlf; k++) {
			const struct pkg_file *f = pkg_find(p, lf[k].src);
			char *dest, *link;
			struct man_copy *rec;
			struct copy_plan *cp;
			size_t j;
			int same;

			if (!f) {
				warn_add("%s: [%s] names %s, which package %s "
				    "does not hold; /usr/lib/wsl/lib/%s is not "
				    "placed", p->inf, "DestinationDirs 11,lxss\\lib",
				    lf[k].src, p->name, lf[k].dest);
				continue;
			}
			dest = xasprintf("%s/%s", g->system32, lf[k].dest);
			for (j = 0; j < *nout && strcmp((*out)[j].dest, dest); j++)
				;
			if (j < *nout) {
				warn_add("%s: %s is also placed from %s; the "
				    "first wins", p->name, dest, (*out)[j].p ?
				    (*out)[j].p->name : "gpupv-prep");
				free(dest);
				continue;
			}
			link = lxss_link(lf, nlf, k);
			rec = copy_find(g, dest);
			if (!rec && linux_not_ours(g, dest) < 0) {
				free(dest);
				free(link);
				lxss_files_free(lf, nlf);
				goto fail;
			}
			same = rec && !restage[i] &&
			    !strcmp(rec->package, p->name) &&
			    !strcmp(rec->source, f->rel) ?
			    linux_in_place(g, rec, link, f->size) : 0;
			if (same < 0) {
				free(dest);
				free(link);
				lxss_files_free(lf, nlf);
				goto fail;
			}
			cp = plan_file(out, nout, p, f, dest);
			cp->link = link;
			cp->mode = 0555;
			cp->overwrite = true;
			if (same)
				cp->dest[0] = '\0';	/* in place: kept */
			else
				*changed = true;
		}
		lxss_files_free(lf, nlf);
	}
	/* Microsoft's Direct3D libraries: only from the host (a bundle's
	 * WSL libraries), never shipped by gpupv-prep. */
	if (set->wsl_lib && plan_tree(g, set->wsl_lib, g->system32, "wsl-lib",
	    0555, out, nout, changed) < 0)
		goto fail;
	if (set->dkms) {
		char *dir = xasprintf("/usr/src/%s", set->dkms->name);
		int r = plan_tree(g, set->dkms, dir, "dkms", 0644, out, nout,
		    changed);

		free(dir);
		if (r < 0)
			goto fail;
	}
	for (k = 0; k < *nout; k++)
		if (!strcasecmp(path_basename((*out)[k].dest), "libdxcore.so"))
			d3d = true;
	for (k = 0; !d3d && k < g->man.ncopies; k++)
		if (!strcmp(path_basename(g->man.copies[k].dest), "libdxcore.so"))
			d3d = true;
	if (!d3d) {
		struct gp_stat st;
		int r = gp_volume_exists(g->vol, WSL_ROOT "/lib/libdxcore.so",
		    &st);

		if (r < 0)
			return -1;
		d3d = r > 0;
	}
	if (!d3d)
		warn_add("no libdxcore.so/libd3d12.so in %s/lib: they come "
		    "only with WSL on the host (C:\\Program Files\\WSL\\lib); "
		    "without them the guest reports \"GPU access blocked by "
		    "the operating system\"", WSL_ROOT);
	for (k = 0; k < sizeof(lx_generated) / sizeof(*lx_generated); k++) {
		struct man_copy *rec = copy_find(g, lx_generated[k].dest);
		struct copy_plan *cp;
		struct sha256 sh;
		uint8_t d[32];
		int same = 0;

		if (!lx_generated[k].data && !set->dkms && rec &&
		    dkms_staged(g))
			continue;	/* the script that builds it stays */
		cp = plan_add(out, nout);
		cp->dest = xstrdup(lx_generated[k].dest);
		cp->data = lx_generated[k].data;
		if (!cp->data)
			cp->data = cp->owned = lx_script_text(set->dkms ?
			    set->dkms_module : NULL, set->dkms_version);
		cp->mode = lx_generated[k].mode;
		sha256_init(&sh);
		sha256_update(&sh, cp->data, strlen(cp->data));
		sha256_final(&sh, d);
		sha256_hex(d, cp->sha);
		if (!rec && linux_not_ours(g, cp->dest) < 0)
			goto fail;
		if (rec && !*rec->package && !strcmp(rec->sha256, cp->sha))
			same = linux_in_place(g, rec, NULL, strlen(cp->data));
		if (same < 0)
			goto fail;
		if (same)
			cp->dest[0] = '\0';
		else
			*changed = true;
	}
	/* Entries already in place are dropped from the plan. */
	for (i = k = 0; i < *nout; i++) {
		if ((*out)[i].dest[0]) {
			(*out)[k++] = (*out)[i];
			continue;
		}
		free((*out)[i].dest);
		free((*out)[i].link);
		free((*out)[i].owned);
	}
	*nout = k;
	return 0;
fail:
	copy_plans_free(*out, *nout);
	*out = NULL;
	*nout = 0;
	return -1;
}

/* After a DKMS tree's file went: its folders, as they empty, up to
 * /usr/src/NAME-VERSION itself. */
int
prune_src_dirs(struct guest *g, const char *dest)
{
	char *dir = path_dirname(dest);
	int ret = 0;

	while (!strncmp(dir, "/usr/src/", 9) && dir[9]) {
		char *up;

		int r = gp_volume_remove_any(g->vol, dir, ENOTEMPTY);

		if (r != 0) {
			ret = r < 0 ? -1 : 0;
			break;
		}
		up = path_dirname(dir);
		free(dir);
		dir = up;
	}
	free(dir);
	return ret;
}

/* ---- reading first what the run will touch ------------------------ */

/* Folders a Linux run writes in or removes from. */
static const char *const lx_touched[] = {
	"/", "/usr", "/usr/lib", WSL_ROOT, WSL_ROOT "/drivers", WSL_ROOT "/lib",
	"/etc", "/etc/ld.so.conf.d", "/etc/systemd", "/etc/systemd/system",
	LX_WANTS_DIR, "/var", "/var/lib", LX_STATUS_DIR, "/usr/src",
};

static int
read_entry(void *ctx, const char *name, const struct gp_stat *st)
{
	(void)ctx;
	(void)name;
	(void)st;
	return 0;
}

/* List path (every directory block and entry's inode read) and what is
 * under it, when it is a folder that exists. */
static int
read_dir(struct guest *g, const char *path)
{
	struct gp_stat st;
	int r = gp_volume_exists(g->vol, path, &st);

	if (r <= 0)
		return r;
	return st.is_dir ? gp_volume_list(g->vol, path, read_entry, NULL) : 0;
}

int
linux_preflight(struct guest *g)
{
	struct gp_stat st;
	size_t i, k;

	for (i = 0; i < sizeof(lx_touched) / sizeof(*lx_touched); i++)
		if (read_dir(g, lx_touched[i]) < 0)
			goto fail;
	for (i = 0; i < g->man.n; i++) {
		const struct man_pkg *mp = &g->man.v[i];
		char *path = xasprintf("%s/%s", g->repo, mp->name);
		int r = read_dir(g, path);

		free(path);
		for (k = 0; r == 0 && k < mp->nfiles; k++) {
			path = xasprintf("%s/%s/%s", g->repo, mp->name,
			    mp->files[k].rel);
			r = mp->files[k].is_dir ? read_dir(g, path) :
			    gp_volume_exists(g->vol, path, &st);
			r = r < 0 ? -1 : 0;
			free(path);
		}
		if (r < 0)
			goto fail;
	}
	for (i = 0; i < g->man.ncopies; i++) {
		char *dir = path_dirname(g->man.copies[i].dest);
		int r = read_dir(g, dir);

		free(dir);
		if (r == 0 && gp_volume_exists(g->vol, g->man.copies[i].dest,
		    &st) < 0)
			r = -1;
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	error_set(errno, "%s: %s", g->manifest_path, strerror(errno));
	return -1;
}
