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

#define HDS_PATH "Windows/System32/HostDriverStore/FileRepository"
/* The same folders in a Linux guest, as WSL lays them out. */
#define WSL_DRIVERS "usr/lib/wsl/drivers"
#define HDS_MAX_DEPTH 32

struct hds_pkg {
	char *name;
	uint64_t files;
	uint64_t bytes;
	char *driver_ver;		/* of its INF, or NULL */
	char *wddm;
	const char *role;		/* from the manifest (a bundle's) */
	char *gpu;			/* its GPU, from the manifest */
};

struct pkgs {
	struct hds_pkg *v;
	size_t n;
	const char *root;		/* HDS_PATH or WSL_DRIVERS */
};

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

static const char *
scheme_name(enum gp_part_scheme s)
{
	return s == GP_SCHEME_GPT ? "gpt" : s == GP_SCHEME_MBR ? "mbr" : "none";
}

/* The "image" member: the file's own facts and its chain. */
static void
json_image(struct json *j, const struct gp_image_info *info,
    const gp_image *img)
{
	const gp_image *par;

	json_key(j, "image");
	json_obj_begin(j);
	json_key(j, "path");
	json_str(j, info->path);
	json_key(j, "format");
	json_str(j, info->format);
	json_key(j, "subformat");
	json_str(j, info->subformat);
	json_key(j, "virtual_size");
	json_u64(j, info->virtual_size);
	json_key(j, "file_size");
	json_u64(j, info->file_size);
	json_key(j, "logical_sector_size");
	json_u64(j, info->logical_sector_size);
	json_key(j, "physical_sector_size");
	json_u64(j, info->physical_sector_size);
	json_key(j, "block_size");
	if (info->block_size)
		json_u64(j, info->block_size);
	else
		json_null(j);
	json_key(j, "parent");
	json_str(j, info->parent);
	json_key(j, "disk_id");
	json_str(j, info->disk_id[0] ? info->disk_id : NULL);
	json_key(j, "creator");
	json_str(j, info->creator[0] ? info->creator : NULL);
	json_key(j, "log_replayed");
	json_bool(j, info->log_replayed);
	json_key(j, "journal_replayed");
	json_bool(j, info->journal_replayed);
	json_key(j, "chain");
	json_arr_begin(j);
	for (par = gp_image_parent(img); par; par = gp_image_parent(par)) {
		struct gp_image_info pi;

		gp_image_get_info(par, &pi);
		json_obj_begin(j);
		json_key(j, "path");
		json_str(j, pi.path);
		json_key(j, "format");
		json_str(j, pi.format);
		json_key(j, "subformat");
		json_str(j, pi.subformat);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void
json_linux(struct json *j, const struct gp_linux *l)
{
	size_t i;

	json_obj_begin(j);
	json_key(j, "partition");
	json_u64(j, l->partition);
	json_key(j, "filesystem");
	json_str(j, l->fs);
	json_key(j, "volume_state");
	json_str(j, gp_volume_state_name(l->state));
	json_key(j, "name");
	json_str(j, l->name);
	json_key(j, "version_id");
	json_str(j, l->version_id);
	json_key(j, "pretty_name");
	json_str(j, l->pretty_name);
	json_key(j, "id");
	json_str(j, l->id);
	json_key(j, "kernels");
	json_arr_begin(j);
	for (i = 0; i < l->nkernels; i++)
		json_str(j, l->kernels[i]);
	json_arr_end(j);
	json_key(j, "first_boot");
	json_str(j, l->firstboot);
	json_obj_end(j);
}

static void
print_json(const struct gp_image_info *info, const gp_image *img,
    const struct gp_partition_table *pt, const struct gp_windows *w,
    bool have_windows, const struct gp_linux *lx, const struct pkgs *pk)
{
	struct json j;
	size_t i;

	cli_json_begin(&j, &cmd_inspect);
	json_image(&j, info, img);

	json_key(&j, "partition_table");
	json_str(&j, scheme_name(pt->scheme));
	json_key(&j, "partitions");
	json_arr_begin(&j);
	for (i = 0; i < pt->count; i++) {
		const struct gp_partition *p = &pt->parts[i];

		json_obj_begin(&j);
		json_key(&j, "index");
		json_u64(&j, p->index);
		json_key(&j, "start");
		json_u64(&j, p->start);
		json_key(&j, "size");
		json_u64(&j, p->size);
		json_key(&j, "type");
		json_str(&j, p->type);
		json_key(&j, "type_name");
		json_str(&j, p->type_name);
		json_key(&j, "name");
		json_str(&j, p->name[0] ? p->name : NULL);
		json_key(&j, "filesystem");
		json_str(&j, p->filesystem);
		json_key(&j, "label");
		json_str(&j, p->label[0] ? p->label : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);

	json_key(&j, "windows");
	if (have_windows) {
		json_obj_begin(&j);
		json_key(&j, "partition");
		json_u64(&j, w->partition);
		json_key(&j, "system_root");
		json_str(&j, w->system_root);
		json_key(&j, "build");
		json_str(&j, w->build);
		json_key(&j, "product");
		json_str(&j, w->product);
		json_key(&j, "volume_state");
		json_str(&j, gp_volume_state_name(w->state));
		json_key(&j, "hives");
		json_obj_begin(&j);
		json_key(&j, "SYSTEM");
		json_str(&j, w->hive_state[0]);
		json_key(&j, "SOFTWARE");
		json_str(&j, w->hive_state[1]);
		json_obj_end(&j);
		json_obj_end(&j);
	} else {
		json_null(&j);
	}
	json_key(&j, "linux");
	if (lx)
		json_linux(&j, lx);
	else
		json_null(&j);
	json_key(&j, "host_driver_store");
	json_arr_begin(&j);
	for (i = 0; i < pk->n; i++) {
		json_obj_begin(&j);
		json_key(&j, "package");
		json_str(&j, pk->v[i].name);
		json_key(&j, "files");
		json_u64(&j, pk->v[i].files);
		json_key(&j, "bytes");
		json_u64(&j, pk->v[i].bytes);
		json_key(&j, "driver_ver");
		json_str(&j, pk->v[i].driver_ver);
		json_key(&j, "wddm");
		json_str(&j, pk->v[i].wddm);
		json_key(&j, "role");
		json_str(&j, pk->v[i].role);
		json_key(&j, "gpu");
		json_str(&j, pk->v[i].gpu);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	cli_json_finish(&j);
}

/* The file's own facts and its chain, for a person. */
static void
human_image(const struct gp_image_info *info, const gp_image *img)
{
	const gp_image *par;
	char b1[32], b2[32];

	cli_printf("image:       %s\n", info->path);
	cli_printf("format:      %s%s%s, %s virtual (%llu bytes), %u-byte "
	    "sectors", info->format, info->subformat ? " " : "",
	    info->subformat ? info->subformat : "",
	    cli_size(info->virtual_size, b1),
	    (unsigned long long)info->virtual_size, info->logical_sector_size);
	if (info->block_size)
		cli_printf(", %s blocks", cli_size(info->block_size, b2));
	cli_printf("\n");
	if (info->log_replayed)
		cli_printf("log:         replayed in memory (the file was not "
		    "changed)\n");
	if (info->journal_replayed)
		cli_printf("journal:     an interrupted commit, completed in memory; "
		    "the next writable run completes it in the file\n");
	for (par = gp_image_parent(img); par; par = gp_image_parent(par)) {
		struct gp_image_info pi;

		gp_image_get_info(par, &pi);
		cli_printf("parent:      %s (%s%s%s)\n", pi.path, pi.format,
		    pi.subformat ? " " : "", pi.subformat ? pi.subformat : "");
	}
	if (!gp_image_parent(img) && info->parent_hint)
		cli_printf("parent:      missing (the file names %s)\n",
		    info->parent_hint);
}

static void
print_human(const struct gp_image_info *info, const gp_image *img,
    const struct gp_partition_table *pt, const struct gp_windows *w,
    bool have_windows, const struct gp_linux *lx, const struct pkgs *pk)
{
	char b1[32], b2[32];
	size_t i;

	human_image(info, img);
	cli_printf("partitions:  %s, %u\n", scheme_name(pt->scheme), pt->count);
	for (i = 0; i < pt->count; i++) {
		const struct gp_partition *p = &pt->parts[i];

		cli_printf("  %2u  at %-10s %-10s  %-22s %-9s %s\n", p->index,
		    cli_size(p->start, b1), cli_size(p->size, b2),
		    p->type_name ? p->type_name : p->type, p->filesystem,
		    p->label[0] ? p->label : p->name);
	}
	if (have_windows) {
		cli_printf("windows:     partition %u, %s, build %s, volume %s\n",
		    w->partition, w->system_root ? w->system_root : "?",
		    w->build ? w->build : "unknown",
		    gp_volume_state_name(w->state));
		if (w->product)
			cli_printf("             %s\n", w->product);
		cli_printf("hives:       SYSTEM %s, SOFTWARE %s\n",
		    w->hive_state[0] ? w->hive_state[0] : "absent",
		    w->hive_state[1] ? w->hive_state[1] : "absent");
	} else if (lx) {
		cli_printf("linux:       partition %u, %s, %s %s, volume %s\n",
		    lx->partition, lx->fs, lx->name ? lx->name : lx->id ?
		    lx->id : "unknown", lx->version_id ? lx->version_id : "",
		    gp_volume_state_name(lx->state));
		for (i = 0; i < lx->nkernels; i++)
			cli_printf("%s%s\n", i ? "             " :
			    "kernels:     ", lx->kernels[i]);
		if (lx->firstboot)
			cli_printf("first boot:  %s\n", lx->firstboot);
	} else {
		cli_printf("windows:     none found\n");
	}
	if (!pk->n) {
		cli_printf("host driver store: empty\n");
		return;
	}
	cli_printf("host driver store: %zu package%s\n", pk->n,
	    pk->n == 1 ? "" : "s");
	for (i = 0; i < pk->n; i++) {
		const struct hds_pkg *p = &pk->v[i];

		/* A heading for each GPU a bundle named. */
		if (p->gpu && (i == 0 || !pk->v[i - 1].gpu ||
		    strcmp(pk->v[i - 1].gpu, p->gpu)))
			cli_printf(" GPU %s\n", p->gpu);
		else if (!p->gpu && i > 0 && pk->v[i - 1].gpu)
			cli_printf(" no GPU recorded\n");
		cli_printf("  %-56s %6llu files  %s%s%s%s%s%s%s%s\n", p->name,
		    (unsigned long long)p->files, cli_size(p->bytes, b1),
		    p->role ? "  " : "", p->role ? p->role : "",
		    p->driver_ver ? "  DriverVer " : "",
		    p->driver_ver ? p->driver_ver : "",
		    p->wddm ? " (" : "", p->wddm ? p->wddm : "",
		    p->wddm ? ")" : "");
	}
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
		json_image(&j, &info, img);
		cli_json_error(&j, GP_EXIT_PARENT, gp_error_message());
		cli_json_finish(&j);
	} else if (!cli_quiet) {
		human_image(&info, img);
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

	if (argc < 1)
		return cli_usage_error(cmd, "missing IMAGE");
	if (argc > 1)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);

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
		print_json(&info, img, &pt, &w, have_windows,
		    have_linux ? &lx : NULL, &pk);
	} else {
		if (!cli_quiet)
			print_human(&info, img, &pt, &w, have_windows,
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
	.init = inspect_init,
	.run = inspect_run,
};
