/*
 * stage-registry.c - the guest's registry in a stage or remove run: each
 * hive copied out of the guest (its transaction logs replayed when it is
 * dirty), edited in memory through hive.c (.reg imports, --copy-key
 * subtrees, the nvlddmkm service of a package's INF, GPU-PV settings in
 * every control set), committed to bytes with only the cells in use, and
 * written back over the guest's file in the same session.  What a run
 * changes is recorded in the manifest (registry.c) so remove can undo it.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "inf.h"
#include "package.h"
#include "registry.h"
#include "stage-int.h"

static const char *const hive_names[REG_NHIVES] = { "SYSTEM", "SOFTWARE" };


void
guest_reg_free(struct guest_reg *gr)
{
	size_t i;

	regs_free(&gr->s);
	for (i = 0; i < REG_NHIVES; i++)
		free(gr->out[i]);
	for (i = 0; i < REG_NHIVES; i++) {
		if (gr->tmp[i]) {
			unlink(gr->tmp[i]);
			free(gr->tmp[i]);
		}
		free(gr->gpath[i]);
	}
	if (gr->tmpdir) {
		char *out = xasprintf("%s/out", gr->tmpdir);

		unlink(out);
		free(out);
		rmdir(gr->tmpdir);
		free(gr->tmpdir);
	}
	memset(gr, 0, sizeof(*gr));
}

static int
write_host_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || file_pwrite(fd, data, len, 0) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return close(fd);
}

/*
 * Copy a hive out of the guest into a host file and open it.  A dirty
 * hive (its last write unfinished, or Windows still running from it) is
 * never edited as it is: its transaction logs are replayed first, or the
 * run stops.
 */
int
load_hive(struct guest *g, struct guest_reg *gr, enum reg_hive hv,
    const char *image)
{
	const char *name = hive_names[hv];
	uint8_t *buf = NULL, *log[2] = { NULL, NULL };
	size_t len, loglen[2] = { 0, 0 }, k;
	struct hive_hdr hh;
	char *where;
	int ret = -1;

	if (gr->s.h[hv])
		return 0;
	if (!gr->tmpdir) {
		const char *dir = getenv("TMPDIR");

		gr->tmpdir = xasprintf("%s/gpupv-prep-reg.XXXXXX",
		    dir && *dir ? dir : "/tmp");
		if (!mkdtemp(gr->tmpdir)) {
			error_set(errno, "cannot create a temporary folder "
			    "%s: %s", gr->tmpdir, strerror(errno));
			free(gr->tmpdir);
			gr->tmpdir = NULL;
			return -1;
		}
	}
	gr->gpath[hv] = xasprintf("%s\\config\\%s", g->system32, name);
	where = xasprintf("%s: %s", image, gr->gpath[hv]);
	if (gp_volume_read(g->vol, gr->gpath[hv], HIVE_MAX_SIZE,
	    (void **)&buf, &len) < 0)
		goto out;
	if (hive_header(buf, len, &hh) < 0) {
		error_corrupt(where, "not a registry hive");
		goto out;
	}
	if (hive_dirty(&hh)) {
		int n;

		for (k = 0; k < 2; k++) {
			char *lp = xasprintf("%s.LOG%zu", gr->gpath[hv], k + 1);
			struct gp_stat st;
			int r = gp_volume_exists(g->vol, lp, &st);

			/* A log that is not there is not replayed. */
			log[k] = NULL;
			if (r > 0 && gp_volume_read(g->vol, lp, HIVE_MAX_SIZE,
			    (void **)&log[k], &loglen[k]) < 0)
				r = -1;
			free(lp);
			if (r < 0)
				goto out;
		}
		n = hive_log_replay(&buf, &len, (const uint8_t *const *)log,
		    loglen, where);
		if (n < 0)
			goto out;
		warn_add("%s was dirty; %d entries of its transaction logs were "
		    "replayed before editing it", where, n);
	}
	gr->tmp[hv] = xasprintf("%s/%s", gr->tmpdir, name);
	if (write_host_file(gr->tmp[hv], buf, len) < 0)
		goto out;
	gr->s.h[hv] = hive_open(gr->tmp[hv], where, HIVE_WRITE);
	if (!gr->s.h[hv])
		goto out;
	ret = 0;
out:
	free(buf);
	free(log[0]);
	free(log[1]);
	free(where);
	return ret;
}

/*
 * hivex leaves every cell it replaced free inside the hive, so each
 * stage/remove cycle would leave the hive larger: rewrite it with only
 * the cells in use.  A hive whose shape the rewrite does not know stays
 * as hivex wrote it, with a warning.
 */
static void
compact_hive(struct guest_reg *gr, size_t hv)
{
	const char *why;
	size_t before = gr->outlen[hv];

	if (hive_compact(&gr->out[hv], &gr->outlen[hv], &why) > 0)
		debug("%s: %zu bytes after compaction (%zu before)",
		    reg_hive_name(hv), gr->outlen[hv], before);
	else if (why)
		warn_add("%s: left with the space hivex freed in it: %s",
		    reg_hive_name(hv), why);
}

/* Commit the edited hives to bytes (before the space check: their size
 * counts). */
int
commit_hives(struct guest_reg *gr)
{
	size_t hv;

	for (hv = 0; hv < REG_NHIVES; hv++) {
		char *out;
		int fd, rc = -1;
		struct stat st;

		if (!gr->s.h[hv] || !gr->s.dirty[hv] || gr->out[hv])
			continue;
		out = xasprintf("%s/out", gr->tmpdir);
		unlink(out);
		if (hive_commit(gr->s.h[hv], out) < 0) {
			free(out);
			return -1;
		}
		fd = open(out, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 &&
		    (uint64_t)st.st_size <= HIVE_MAX_SIZE) {
			gr->outlen[hv] = (size_t)st.st_size;
			gr->out[hv] = xmalloc(gr->outlen[hv] + 1);
			rc = file_pread(fd, gr->out[hv], gr->outlen[hv], 0);
		}
		if (rc < 0)
			error_set(errno ? errno : EFBIG, "%s: %s", out,
			    strerror(errno ? errno : EFBIG));
		if (fd >= 0)
			close(fd);
		unlink(out);
		free(out);
		if (rc < 0)
			return -1;
		compact_hive(gr, hv);
	}
	return 0;
}

/* Write the edited hives over the guest's files. */
int
store_hives(struct guest *g, struct guest_reg *gr, struct stage_report *r)
{
	size_t hv;

	if (commit_hives(gr) < 0)
		return -1;
	for (hv = 0; hv < REG_NHIVES; hv++) {
		if (!gr->out[hv])
			continue;
		if (gp_volume_overwrite(g->vol, gr->gpath[hv], gr->out[hv],
		    gr->outlen[hv]) < 0)
			return -1;
		free(gr->out[hv]);
		gr->out[hv] = NULL;
		r->hives_written = xrealloc(r->hives_written,
		    (r->nhives_written + 1) * sizeof(char *));
		r->hives_written[r->nhives_written++] = xstrdup(gr->gpath[hv]);
	}
	return 0;
}


static struct inf_service *
service_of(const struct pkg *p, const char *section, struct inf_service *svc)
{
	const struct inf *inf;
	struct gp_error e;
	int r;

	memset(svc, 0, sizeof(*svc));
	if (!p->inf_path)
		return NULL;
	/* An INF that cannot be read names no service; the package's own
	 * checks report it. */
	error_try(&e);
	inf = pkg_inf(p);
	error_end(&e);
	if (!inf)
		return NULL;
	r = inf_service(inf, "nvlddmkm", section, svc);
	if (r == 0 && section)
		r = inf_service(inf, "nvlddmkm", NULL, svc);
	return r == 1 ? svc : NULL;
}

/* Set a value of CurrentControlSet\key in every control set in use. */
static int
set_in_csets(struct regs *s, const char *key, const char *name,
    const struct hive_val *v, const char *origin)
{
	size_t i;
	int r = 0;

	for (i = 0; i < s->ncsets && r == 0; i++) {
		char *k = xasprintf("%s\\%s", s->csets[i], key);

		r = regs_set(s, REG_HIVE_SYSTEM, k, name, v, origin);
		free(k);
	}
	return r;
}

static int
set_dword(struct regs *s, const char *key, const char *name, uint32_t d,
    const char *origin)
{
	uint8_t b[4];
	struct hive_val v = { REG_DWORD_, b, 4 };

	put_le32(b, d);
	return set_in_csets(s, key, name, &v, origin);
}

static int
set_string(struct regs *s, const char *key, const char *name, uint32_t type,
    const char *str, const char *origin)
{
	struct hive_val v = { type, NULL, 0 };
	int r;

	v.data = reg_utf16(str, &v.len);
	r = set_in_csets(s, key, name, &v, origin);
	free(v.data);
	return r;
}

/* The nvlddmkm service for a staged NVIDIA package (see the README). */
static int
nvlddmkm_service(struct regs *s, const struct pkg *p, const char *section)
{
	static const char key[] = "Services\\nvlddmkm";
	const struct pkg_file *f = NULL;
	struct inf_service svc;
	const char *origin = "nvlddmkm service";
	char *image, *c;
	size_t i;
	int r;

	for (i = 0; i < p->nfiles && !f; i++)
		if (!p->files[i].is_dir && strcasecmp(path_basename(
		    p->files[i].rel), "nvlddmkm.sys") == 0)
			f = &p->files[i];
	if (!f)
		return 0;
	if (!service_of(p, section, &svc)) {
		/* What NVIDIA's INFs have said for years. */
		svc.type = 1;
		svc.start = 3;
		svc.error_control = 0;
		svc.group = xstrdup("Video");
	}
	image = xasprintf("\\SystemRoot\\System32\\HostDriverStore\\"
	    "FileRepository\\%s\\%s", p->name, f->rel);
	for (c = image; *c; c++)
		if (*c == '/')
			*c = '\\';
	r = set_dword(s, key, "Type", svc.type, origin);
	if (r == 0)
		r = set_dword(s, key, "Start", svc.start, origin);
	if (r == 0)
		r = set_dword(s, key, "ErrorControl", svc.error_control, origin);
	if (r == 0 && svc.group)
		r = set_string(s, key, "Group", REG_SZ_, svc.group, origin);
	if (r == 0)
		r = set_string(s, key, "ImagePath", REG_EXPAND_SZ_, image,
		    origin);
	free(image);
	inf_service_free(&svc);
	return r;
}

/* 2: registry work asked for; 1: only the automatic nvlddmkm service. */
int
wants_registry(const struct pkg_set *set, const struct stage_opts *o)
{
	size_t i, j;

	if (o->nreg_files || o->ncopy_keys || o->copy_mode >= 0 ||
	    o->virt_flags >= 0 || o->disable_fast_startup)
		return 2;
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->v[i].nfiles; j++)
			if (strcasecmp(path_basename(set->v[i].files[j].rel),
			    "nvlddmkm.sys") == 0)
				return 1;
	return 0;
}

/* HIVEFILE:KEY, the file being the part before the last ':' that is
 * followed by a key (host paths may hold ':'). */
static int
copy_key(struct guest *g, struct guest_reg *gr, const char *spec,
    const struct stage_opts *o, const char *image)
{
	const char *colon = strrchr(spec, ':');
	char *file, *key, *k, *origin;
	enum reg_hive hv = REG_HIVE_SYSTEM;
	bool ccs = false;
	struct hive_hdr hh;
	struct regs tmp = { 0 };
	hive *src = NULL;
	uint8_t head[4096];
	ssize_t got;
	size_t i;
	int fd, ret = -1;

	if (!colon || colon == spec || !colon[1]) {
		error_setc(GP_EXIT_USAGE, EINVAL, "--copy-key %s: expected "
		    "HIVEFILE:KEYPATH", spec);
		return -1;
	}
	file = xasprintf("%.*s", (int)(colon - spec), spec);
	key = xstrdup(colon + 1);
	for (k = key; *k; k++)
		if (*k == '/')
			*k = '\\';
	k = key;
	while (*k == '\\')
		k++;
	/* An optional HKLM\SYSTEM\ or HKLM\SOFTWARE\ names the guest hive. */
	if (!strncasecmp(k, "HKEY_LOCAL_MACHINE\\", 19))
		k += 19;
	else if (!strncasecmp(k, "HKLM\\", 5))
		k += 5;
	if (!strncasecmp(k, "SYSTEM\\", 7)) {
		k += 7;
	} else if (!strncasecmp(k, "SOFTWARE\\", 9)) {
		k += 9;
		hv = REG_HIVE_SOFTWARE;
	}
	if (hv == REG_HIVE_SYSTEM && !strncasecmp(k, "CurrentControlSet", 17) &&
	    (k[17] == '\\' || !k[17])) {
		ccs = true;
		k += k[17] ? 18 : 17;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error_set(errno, "%s: %s", file, strerror(errno));
		goto out;
	}
	got = pread(fd, head, sizeof(head), 0);
	close(fd);
	if (got < (ssize_t)sizeof(head) ||
	    hive_header(head, sizeof(head), &hh) < 0) {
		error_input(EINVAL, "%s: not a registry hive (no regf base "
		    "block)", file);
		goto out;
	}
	if (hive_dirty(&hh)) {
		error_input(EINVAL, "%s: the hive is dirty; save "
		    "it again on the host (reg save HKLM\\SYSTEM FILE)", file);
		goto out;
	}
	if (!(src = hive_open(file, file, HIVE_HOST)))
		goto out;
	if (load_hive(g, gr, hv, image) < 0)
		goto out;
	origin = xasprintf("copy %s", spec);
	if (ccs) {
		/* The host's own current set is the source. */
		tmp.h[REG_HIVE_SYSTEM] = src;
		if (regs_control_sets(&tmp, false) < 0) {
			tmp.h[REG_HIVE_SYSTEM] = NULL;
			regs_free(&tmp);
			free(origin);
			goto out;
		}
		tmp.h[REG_HIVE_SYSTEM] = NULL;
		ret = 0;
		for (i = 0; i < gr->s.ncsets && ret == 0; i++) {
			char *s = *k ? xasprintf("%s\\%s", tmp.csets[0], k) :
			    xstrdup(tmp.csets[0]);
			char *d = *k ? xasprintf("%s\\%s", gr->s.csets[i], k) :
			    xstrdup(gr->s.csets[i]);

			ret = regs_copy_tree(&gr->s, hv, d, src, s,
			    !o->no_rewrite, origin);
			free(s);
			free(d);
		}
		regs_free(&tmp);
	} else {
		ret = regs_copy_tree(&gr->s, hv, k, src, k, !o->no_rewrite,
		    origin);
	}
	free(origin);
out:
	hive_close(src);
	free(file);
	free(key);
	return ret;
}

/*
 * All registry changes of the run, in memory on copies of the hives:
 * .reg imports, --copy-key, the nvlddmkm service, then the guest
 * settings (so that they win).  The undo records go into g->man.
 */
int
apply_registry(struct guest *g, struct guest_reg *gr, struct pkg_set *set,
    const struct stage_opts *o, const char *image)
{
	struct reg_file *files = NULL;
	bool has_svc = false;
	size_t i;
	int ret = -1;

	gr->s.man = &g->man;
	if (load_hive(g, gr, REG_HIVE_SYSTEM, image) < 0 ||
	    regs_control_sets(&gr->s, o->all_control_sets) < 0)
		return -1;
	files = xcalloc(o->nreg_files + 1, sizeof(*files));
	for (i = 0; i < o->nreg_files; i++) {
		size_t j;

		if (reg_load(o->reg_files[i], !o->no_rewrite, &files[i]) < 0)
			goto out;
		for (j = 0; j < files[i].n; j++)
			if (files[i].v[j].hive == REG_HIVE_SOFTWARE &&
			    load_hive(g, gr, REG_HIVE_SOFTWARE, image) < 0)
				goto out;
		has_svc |= reg_file_defines_service(&files[i], "nvlddmkm");
	}
	for (i = 0; i < o->nreg_files; i++)
		if (regs_apply_file(&gr->s, &files[i]) < 0)
			goto out;
	for (i = 0; i < o->ncopy_keys; i++)
		if (copy_key(g, gr, o->copy_keys[i], o, image) < 0)
			goto out;
	/* An imported nvlddmkm key wins over the INF's service section. */
	for (i = 0; i < set->n && !has_svc; i++)
		if (nvlddmkm_service(&gr->s, &set->v[i], o->inf_section) < 0)
			goto out;
	if (o->copy_mode >= 0 && set_dword(&gr->s, "Control\\GraphicsDrivers",
	    "DriverStoreCopyMode", (uint32_t)o->copy_mode, "setting") < 0)
		goto out;
	if (o->virt_flags >= 0 && set_dword(&gr->s, "Control\\GraphicsDrivers",
	    "GpuVirtualizationFlags", (uint32_t)o->virt_flags, "setting") < 0)
		goto out;
	if (o->disable_fast_startup && set_dword(&gr->s,
	    "Control\\Session Manager\\Power", "HiberbootEnabled", 0,
	    "setting") < 0)
		goto out;
	ret = 0;
out:
	for (i = 0; i < o->nreg_files; i++)
		reg_file_free(&files[i]);
	free(files);
	return ret;
}

