/*
 * cmd-inspect.c - "gpupv-prep inspect IMAGE": a read-only report of the
 * image, its partitions, the Windows installation and what sits in its
 * HostDriverStore.  Never writes: the image is opened read-only and a
 * VHDX log is replayed in memory.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "inf.h"
#include "json.h"
#include "manifest.h"
#include "inspect.h"

#define HDS_PATH "Windows/System32/HostDriverStore/FileRepository"
/* The same folders in a Linux guest, as WSL lays them out. */
#define WSL_DRIVERS "usr/lib/wsl/drivers"
#define HDS_MAX_DEPTH 32

struct walk {
	gp_volume *vol;
	char *path;
	struct hds_pkg *pkg;
	int depth;
	int err;
};

static int
count_entry(void *ctx, const char *name, const struct gp_stat *st)
{
	struct walk *w = ctx, sub;

	if (!st->is_dir) {
		w->pkg->files++;
		w->pkg->bytes += st->size;
		return 0;
	}
	if (w->depth >= HDS_MAX_DEPTH)
		return 0;
	sub = *w;
	sub.path = xasprintf("%s/%s", w->path, name);
	sub.depth = w->depth + 1;
	if (gp_volume_list(w->vol, sub.path, count_entry, &sub) < 0)
		w->err = -1;
	free(sub.path);
	return 0;
}

static int
add_pkg(void *ctx, const char *name, const struct gp_stat *st)
{
	struct pkgs *p = ctx;

	if (!st->is_dir)
		return 0;
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n].name = xstrdup(name);
	p->v[p->n].files = 0;
	p->v[p->n].bytes = 0;
	p->v[p->n].driver_ver = NULL;
	p->v[p->n].wddm = NULL;
	p->v[p->n].role = NULL;
	p->v[p->n].gpu = NULL;
	p->n++;
	return 0;
}

static size_t
role_rank(const char *role)
{
	size_t i;

	for (i = 0; role && pkg_roles[i]; i++)
		if (role == pkg_roles[i])
			return i;
	return i;
}

/* Grouped by GPU (packages of none last), by role, then by name. */
static int
cmp_pkg(const void *a, const void *b)
{
	const struct hds_pkg *x = a, *y = b;
	int c;

	if (!x->gpu != !y->gpu)
		return x->gpu ? -1 : 1;
	if (x->gpu && (c = strcmp(x->gpu, y->gpu)) != 0)
		return c;
	if (role_rank(x->role) != role_rank(y->role))
		return role_rank(x->role) < role_rank(y->role) ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Each package's role and GPU as the manifest beside the store records
 * them (what a host bundle said).  A manifest that cannot be read leaves
 * them unknown: inspect reports, it does not judge.
 */
static void
read_roles(gp_volume *vol, const char *root, struct pkgs *out)
{
	const char *slash = strrchr(root, '/');
	char *path = xasprintf("%.*s/gpupv-prep.json", (int)(slash - root),
	    root);
	struct manifest m;
	struct gp_error e;
	void *buf;
	size_t len, i;

	error_try(&e);
	if (gp_volume_read(vol, path, 64u << 20, &buf, &len) == 0) {
		if (manifest_parse(buf, len, &m) == 0) {
			for (i = 0; i < out->n; i++) {
				struct man_pkg *mp = manifest_find(&m,
				    out->v[i].name);

				if (!mp)
					continue;
				out->v[i].role = mp->role;
				out->v[i].gpu = mp->gpu ? xstrdup(mp->gpu) :
				    NULL;
			}
		}
		manifest_free(&m);
		free(buf);
	}
	error_end(&e);
	free(path);
}

/* The DriverVer of a package folder <inf>_<arch>_<hash>, from its INF. */
static void
read_driver_ver(gp_volume *vol, const char *root, struct hds_pkg *p)
{
	const char *dot = strcasestr(p->name, ".inf_");
	struct gp_error e;
	char *path;
	void *buf;
	size_t len;

	if (!dot)
		return;
	path = xasprintf("%s/%s/%.*s", root, p->name,
	    (int)(dot + 4 - p->name), p->name);
	/* A version inspect cannot read is shown as unknown. */
	error_try(&e);
	if (gp_volume_read(vol, path, 32u << 20, &buf, &len) == 0) {
		p->driver_ver = inf_driver_ver_mem(path, buf, len);
		p->wddm = inf_wddm_hint(p->driver_ver);
		free(buf);
	}
	error_end(&e);
	free(path);
}

static int
list_host_driver_store(gp_image *img, const struct gp_partition *p,
    struct pkgs *out)
{
	gp_volume *vol = gp_volume_open(img, p->start, p->size, false);
	struct gp_stat st;
	size_t i;
	int ret = 0;

	if (!vol)
		return -1;
	if ((ret = gp_volume_exists(vol, out->root, &st)) <= 0 ||
	    !st.is_dir) {
		gp_volume_close(vol);
		return ret < 0 ? -1 : 0;
	}
	ret = 0;
	if (gp_volume_list(vol, out->root, add_pkg, out) < 0)
		ret = -1;
	for (i = 0; ret == 0 && i < out->n; i++) {
		struct walk w = { vol, NULL, &out->v[i], 0, 0 };

		w.path = xasprintf("%s/%s", out->root, out->v[i].name);
		if (gp_volume_list(vol, w.path, count_entry, &w) < 0 || w.err)
			ret = -1;
		free(w.path);
		if (ret == 0)
			read_driver_ver(vol, out->root, &out->v[i]);
	}
	if (ret == 0)
		read_roles(vol, out->root, out);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_pkg);
	if (gp_volume_close(vol) < 0)
		ret = -1;
	return ret;
}

/* What the hives' state means for the commands that write. */
static void
hive_warnings(const struct gp_windows *w)
{
	static const char *const names[] = { "SYSTEM", "SOFTWARE" };
	int k;

	for (k = 0; k < 2; k++) {
		const char *st = w->hive_state[k];

		if (!st || strcmp(st, "clean") == 0)
			continue;
		if (strcmp(st, "dirty") == 0)
			warn_add("the %s hive is dirty (Windows did not write it "
			    "back): stage and remove replay its transaction "
			    "logs before editing it", names[k]);
		else if (strcmp(st, "dirty-no-logs") == 0)
			warn_add("the %s hive is dirty and has no transaction "
			    "logs: stage and remove refuse to edit it (exit 6); start "
			    "the guest and shut it down cleanly", names[k]);
		else
			warn_add("the %s hive is not a hive gpupv-prep can read: "
			    "stage and remove refuse it (exit 3)", names[k]);
	}
}

/*
 * A differencing image whose parent cannot be opened: what the file
 * itself says (format, size, the parent it names) is still reported,
 * then the error, with its exit status.
 */
static int
orphan(const struct cmd *cmd, const char *path, struct gp_open_opts *oo,
    bool json, const struct gp_error *parent)
{
	struct gp_image_info info;
	struct gp_error e;
	gp_image *img;
	struct json j;

	/* The file alone; the parent's error (parent) stays the one told. */
	oo->flags |= GP_OPEN_NO_PARENT;
	error_try(&e);
	img = gp_image_open(path, oo);
	error_end(&e);
	error_pass(parent);
	if (!img)
		return cli_fail(cmd);
	gp_image_get_info(img, &info);
	if (json) {
		cli_json_begin(&j, cmd);
		inspect_json_image(&j, &info, img);
		cli_json_error(&j, GP_EXIT_PARENT, gp_error_message());
		cli_json_finish(&j);
	} else if (!cli_quiet) {
		inspect_human_image(&info, img);
	}
	gp_image_close(img);
	fflush(stdout);
	return cli_fail(cmd);
}

struct inspect_opts {
	bool json;
	int partition;
	const char *parent, *format;
};

static void
inspect_init(void *opts)
{
	((struct inspect_opts *)opts)->partition = -1;
}

static const struct cli_opt inspect_options[] = {
	{ "json", 'j', CLI_FLAG, CLI_FIELD(struct inspect_opts, json) },
	{ "partition", 'p', CLI_NUM, CLI_FIELD(struct inspect_opts,
	    partition), .max = 65535, .base = 10,
	    .msg = "--partition: '%s' is not a partition number" },
	{ "parent", 'P', CLI_STR, CLI_FIELD(struct inspect_opts, parent) },
	{ "format", 'f', CLI_STR, CLI_FIELD(struct inspect_opts, format) },
	{ NULL },
};

static const struct cli_optset inspect_optsets[] = {
	{ .v = inspect_options },
	{ .v = NULL },
};

static int
inspect_run(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	const struct inspect_opts *io = opts;
	struct gp_open_opts oo = { .flags = GP_OPEN_RDONLY,
	    .parent = io->parent, .format = io->format };
	struct gp_partition_table pt = { 0 };
	struct gp_image_info info;
	struct gp_error e;
	struct gp_windows w = { 0 };
	struct gp_linux lx = { 0 };
	struct pkgs pk = { .root = HDS_PATH };
	bool json = io->json, have_windows = false, have_linux = false;
	int partition = io->partition;
	gp_image *img = NULL;
	int c, ret = GP_EXIT_FAILURE;
	size_t i;

	error_try(&e);
	img = gp_image_open(argv[0], &oo);
	error_end(&e);
	if (!img && e.code == GP_EXIT_PARENT)
		return orphan(cmd, argv[0], &oo, json, &e);
	if (!img) {
		error_pass(&e);
		return cli_fail(cmd);
	}
	gp_image_get_info(img, &info);
	if (gp_partitions_read(img, &pt) < 0) {
		ret = cli_fail(cmd);
		goto out;
	}
	/* No guest at all is a report of its own, not a failure. */
	error_try(&e);
	c = gp_guest_find(img, &pt, partition, &w, &lx);
	error_end(&e);
	if (c == 0) {
		have_windows = true;
		hive_warnings(&w);
	} else if (c == 1) {
		have_linux = true;
		pk.root = WSL_DRIVERS;
	} else if (e.code != GP_EXIT_NO_WINDOWS || partition >= 0) {
		error_pass(&e);
		ret = cli_fail(cmd);
		goto out;
	}
	if (((have_windows && w.state != GP_VOL_BITLOCKER) || have_linux) &&
	    list_host_driver_store(img, &pt.parts[have_linux ? lx.slot :
	    w.slot], &pk) < 0) {
		ret = cli_fail(cmd);
		goto out;
	}
	if (json) {
		inspect_print_json(&info, img, &pt, &w, have_windows,
		    have_linux ? &lx : NULL, &pk);
	} else {
		if (!cli_quiet)
			inspect_print_human(&info, img, &pt, &w, have_windows,
			    have_linux ? &lx : NULL, &pk);
		cli_print_warnings(cmd);
	}
	gp_warnings_clear();
	ret = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_msg(cmd, "write error on standard output");
		ret = GP_EXIT_FAILURE;
	}
out:
	for (i = 0; i < pk.n; i++) {
		free(pk.v[i].name);
		free(pk.v[i].driver_ver);
		free(pk.v[i].wddm);
		free(pk.v[i].gpu);
	}
	free(pk.v);
	gp_windows_free(&w);
	gp_linux_free(&lx);
	gp_partitions_free(&pt);
	if (gp_image_close(img) < 0 && ret == 0)
		ret = cli_fail(cmd);
	return ret;
}

const struct cmd cmd_inspect = {
	.name = "inspect",
	.args = "IMAGE [--json] [--partition N] [--parent FILE]",
	.summary = "report an image, its partitions, the Windows or Linux "
	    "inside and its staged driver store (read-only)",
	.options =
	    "  --json           print a JSON report on stdout\n"
	    "  --partition N    take partition N as the guest's volume\n"
	    "  --parent FILE    parent image of a differencing disk\n"
	    "  --format FMT     do not probe: raw, vhd or vhdx\n"
	    "  -h, --help       show this help\n",
	.opts = inspect_optsets,
	.opts_size = sizeof(struct inspect_opts),
	.min_operands = 1,
	.max_operands = 1,
	.init = inspect_init,
	.run = inspect_run,
};
