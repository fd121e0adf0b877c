/*
 * cmd-stage.c - `stage`, `remove` and `verify`: the CLI around stage.c,
 * with the progress line and the reports (human and --json).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "winname.h"
#include "sidecar.h"
#include "stage.h"

static void
progress_cb(void *ctx, const char *phase, uint64_t files, uint64_t nfiles,
    uint64_t bytes, uint64_t total)
{
	cli_progress(ctx, phase, files, nfiles, bytes, total);
}

struct common {
	struct stage_opts o;
	bool json;
	struct host_opts host;		/* stage only */
};

/*
 * Whether p is an absolute Windows path to a VHDX: "D:\dir\x.vhdx" or
 * "\\server\share\dir\x.vhdx", each component a name Windows can
 * hold, at most 1024 characters.
 */
static bool
windows_vhdx_path(const char *p)
{
	const char *c, *ext;
	char *copy, *comp, *save = NULL;
	bool ok = true;
	int skip;

	if (strlen(p) > 1024)
		return false;
	if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':' &&
	    p[2] == '\\')
		c = p + 3, skip = 0;
	else if (p[0] == '\\' && p[1] == '\\' && p[2] && p[2] != '\\')
		c = p + 2, skip = 0;
	else
		return false;
	ext = strrchr(p, '.');
	if (!ext || (strcasecmp(ext, ".vhdx") && strcasecmp(ext, ".avhdx")))
		return false;
	copy = xstrdup(c);
	/* Empty components ("a\\b", a trailing "\\") are refused too. */
	if (!*copy || copy[strlen(copy) - 1] == '\\' || strstr(copy, "\\\\"))
		ok = false;
	for (comp = strtok_r(copy, "\\", &save); ok && comp;
	    comp = strtok_r(NULL, "\\", &save), skip++)
		ok = win_name_check(comp) == 0;
	free(copy);
	return ok && skip >= (p[0] == '\\' ? 3 : 1);
}

/* A new child is a differencing VHDX; under another name it would be
 * taken for what the name says. */
static bool
child_name(const char *p)
{
	const char *ext = strrchr(path_basename(p), '.');

	return ext && (!strcasecmp(ext, ".avhdx") || !strcasecmp(ext, ".vhdx"));
}

static void
common_init(void *opts)
{
	struct common *c = opts;

	c->o.partition = -1;
	c->o.short_names = -1;
	c->o.copy_mode = -1;
	c->o.virt_flags = -1;
}

/* What stage, remove and verify all take. */
static const struct cli_opt common_options[] = {
	{ "json", 'j', CLI_FLAG, CLI_FIELD(struct common, json) },
	{ "partition", 'p', CLI_NUM, CLI_FIELD(struct common, o.partition),
	    .max = 65535, .base = 10,
	    .msg = "--partition: '%s' is not a partition number" },
	{ "parent", 'P', CLI_STR, CLI_FIELD(struct common, o.parent) },
	{ "format", 'f', CLI_STR, CLI_FIELD(struct common, o.format) },
	{ "short-names", 's', CLI_WORD, CLI_FIELD(struct common, o.short_names),
	    .words = (const char *const[]){ "auto", "on", "off", NULL },
	    .values = (const int[]){ -1, 1, 0 },
	    .msg = "--short-names: auto, on or off" },
	{ NULL },
};

static const struct cli_opt dry_run_option[] = {
	{ "dry-run", 'n', CLI_FLAG, CLI_FIELD(struct common, o.dry_run) },
	{ NULL },
};

static const struct cli_opt force_option[] = {
	{ "force", 0, CLI_FLAG, CLI_FIELD(struct common, o.force) },
	{ NULL },
};

/* The registry, the guest and the new image: stage's alone. */
static const struct cli_opt stage_options[] = {
	{ "reg", 0, CLI_LIST, CLI_FIELD(struct common, o.reg_files),
	    .off2 = offsetof(struct common, o.nreg_files) },
	{ "copy-key", 0, CLI_LIST, CLI_FIELD(struct common, o.copy_keys),
	    .off2 = offsetof(struct common, o.ncopy_keys) },
	{ "no-rewrite", 0, CLI_FLAG, CLI_FIELD(struct common, o.no_rewrite) },
	{ "all-control-sets", 0, CLI_FLAG, CLI_FIELD(struct common,
	    o.all_control_sets) },
	{ "inf-section", 0, CLI_STR, CLI_FIELD(struct common, o.inf_section) },
	{ "dkms", 0, CLI_STR, CLI_FIELD(struct common, o.dkms) },
	{ "driver-store-copy-mode", 0, CLI_NUM, CLI_FIELD(struct common,
	    o.copy_mode), .max = 2,
	    .msg = "--driver-store-copy-mode: a number from 0 to 2, not '%s'" },
	{ "gpu-virtualization-flags", 0, CLI_NUM, CLI_FIELD(struct common,
	    o.virt_flags), .max = 0xFFFFFFFFll,
	    .msg = "--gpu-virtualization-flags: a number from 0 to 4294967295, "
	    "not '%s'" },
	{ "disable-fast-startup", 0, CLI_FLAG, CLI_FIELD(struct common,
	    o.disable_fast_startup) },
	{ "output", 0, CLI_STR, CLI_FIELD(struct common, o.output) },
	{ "output-format", 0, CLI_WORD, CLI_FIELD(struct common,
	    o.output_format),
	    .words = (const char *const[]){ "vhdx", "vhdx-fixed", "vhd", "raw",
	    NULL },
	    .msg = "--output-format: vhdx, vhdx-fixed, vhd or raw" },
	{ "child", 0, CLI_STR, CLI_FIELD(struct common, o.child),
	    .check = child_name,
	    .msg = "--child %s: the new child is a differencing VHDX; name it "
	    ".avhdx or .vhdx" },
	{ "repair", 0, CLI_FLAG, CLI_FIELD(struct common, o.repair) },
	{ "parent-path", 0, CLI_STR, CLI_FIELD(struct common, o.parent_path),
	    .check = windows_vhdx_path,
	    .msg = "--parent-path: '%s' is not an absolute Windows path to a "
	    "VHDX, such as D:\\VMs\\base.vhdx or \\\\server\\share\\"
	    "base.vhdx" },
	{ "driverstore-links", 0, CLI_SET, CLI_FIELD(struct common,
	    o.driverstore_links), .min = 1 },
	{ "no-driverstore-links", 0, CLI_SET, CLI_FIELD(struct common,
	    o.driverstore_links), .min = -1 },
	{ NULL },
};

static const struct cli_opt script_option[] = {
	{ "script", 0, CLI_STR, CLI_FIELD(struct common, host.script) },
	{ NULL },
};

#define NO_GUEST_OPTIONS "%s takes no registry or guest options (--reg, " \
	"--copy-key, ...)"
#define NO_HOST_OPTIONS "%s takes no host options (--script, --vm-name, ...)"

static const struct cli_optset stage_optsets[] = {
	{ .v = common_options },
	{ .v = dry_run_option },
	{ .v = force_option },
	{ .v = stage_options },
	{ .v = script_option },
	{ .v = host_options, .base = offsetof(struct common, host) },
	{ .v = NULL },
};

static const struct cli_optset remove_optsets[] = {
	{ .v = common_options },
	{ .v = dry_run_option },
	{ .v = force_option },
	{ .v = stage_options, .refuse = NO_GUEST_OPTIONS },
	{ .v = script_option, .refuse = NO_HOST_OPTIONS },
	{ .v = host_options, .base = offsetof(struct common, host),
	    .refuse = NO_HOST_OPTIONS },
	{ .v = NULL },
};

static const struct cli_optset verify_optsets[] = {
	{ .v = common_options },
	{ .v = dry_run_option, .refuse = "--dry-run: %s writes nothing anyway" },
	{ .v = force_option, .refuse = "--force: %s deletes nothing" },
	{ .v = stage_options, .refuse = NO_GUEST_OPTIONS },
	{ .v = script_option, .refuse = NO_HOST_OPTIONS },
	{ .v = host_options, .base = offsetof(struct common, host),
	    .refuse = NO_HOST_OPTIONS },
	{ .v = NULL },
};

/* The checks between options, once all are taken. */
static int
check_options(const struct cmd *cmd, struct common *c)
{
	bool stage = strcmp(cmd->name, "stage") == 0;
	int r;

	if (c->o.output && c->o.child)
		return cli_usage_error(cmd, "--output and --child exclude each "
		    "other");
	if (c->o.output_format && !c->o.output)
		return cli_usage_error(cmd, "--output-format needs --output");
	if (c->o.parent_path && !c->o.child)
		return cli_usage_error(cmd, "--parent-path goes with --child");
	if (stage && ((c->host.script && strcmp(c->host.script, "-") == 0) ||
	    (c->host.nanabox && strcmp(c->host.nanabox, "-") == 0)))
		return cli_usage_error(cmd, "--script/--nanabox: stage prints "
		    "its report on standard output; name a file (or use "
		    "`gpupv-prep script IMAGE -o -` afterwards)");
	if (stage && (r = host_check(cmd, &c->host)) != 0)
		return r;
	return 0;
}

/* Writing into an image that differencing children read through changes
 * what they read: Hyper-V and gpupv-prep refuse them afterwards. */
static void
child_warning(void *ctx, const char *child)
{
	warn_add("%s is the parent of %s: writing into it breaks that "
	    "child (Hyper-V, like gpupv-prep, refuses it afterwards, exit 9); "
	    "stage into the child, or make a new one with --child", (char *)ctx,
	    child);
}

/* What a host bundle brings that this run does not use, said as warnings. */
static void
bundle_notes(const struct bundle *b, const struct host_cfg *given)
{
	if (b->ngpus > 1 && !given->gpu)
		warn_add("%s lists %zu GPUs; the sidecar script uses the "
		    "first (%s); choose another with --gpu", b->source,
		    b->ngpus, b->host.gpu_name ? b->host.gpu_name : "?");
}

static int
stage_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct host_cfg want = { 0 };
	struct common *c = opts;
	struct pkg_set set = { 0 };
	struct stage_report r;
	struct cli_progress pg;
	const char *image;
	bool side;
	int rc, i;

	if ((rc = check_options(cmd, c)) != 0)
		return rc;
	image = argv[0];
	if (argc < 2 && !c->o.nreg_files && !c->o.ncopy_keys &&
	    c->o.copy_mode < 0 && c->o.virt_flags < 0 &&
	    !c->o.disable_fast_startup) {
		return cli_usage_error(cmd, "missing PACKAGE (or --reg, "
		    "--copy-key, a guest setting)");
	}
	/* A sidecar file never replaces the image, NEW or a package. */
	for (i = 0; i < argc; i++) {
		const char *what = NULL;

		if (cli_same_file(c->host.script, argv[i]) ||
		    cli_same_file(c->host.nanabox, argv[i]))
			what = i == 0 ? "the image" : "a package";
		else if (cli_same_file(c->host.script, c->o.output ? c->o.output :
		    c->o.child) || cli_same_file(c->host.nanabox, c->o.output ?
		    c->o.output : c->o.child))
			what = "the new image";
		if (what) {
			return cli_usage_error(cmd, "--script/--nanabox names %s "
			    "(%s); name another file", what, argv[i]);
		}
	}
	for (i = 1; i < argc; i++)
		if (pkg_collect(&set, argv[i]) < 0) {
			rc = cli_fail(cmd);
			pkg_set_free(&set);
			return rc;
		}
	if (c->o.dkms && pkg_load_dkms(&set, c->o.dkms) < 0) {
		rc = cli_fail(cmd);
		pkg_set_free(&set);
		return rc;
	}
	if (set.bundle.present) {
		size_t k;

		bundle_notes(&set.bundle, &c->host.cfg);
		/* The bundle's registry exports are imported before the
		 * ones given, which can then override them. */
		if (set.bundle.nreg) {
			char **v = xcalloc(set.bundle.nreg + c->o.nreg_files + 1,
			    sizeof(char *));

			for (k = 0; k < set.bundle.nreg; k++)
				v[k] = set.bundle.reg[k];
			for (k = 0; k < c->o.nreg_files; k++)
				v[set.bundle.nreg + k] = c->o.reg_files[k];
			free(c->o.reg_files);
			c->o.reg_files = v;
			c->o.nreg_files += set.bundle.nreg;
		}
		if (!c->o.inf_section && set.bundle.install_section) {
			c->o.inf_section = set.bundle.install_section;
			c->o.inf_section_soft = true;
		}
	}
	host_cfg_merge(&want, &set.bundle.host);
	host_cfg_merge(&want, &c->host.cfg);
	c->o.host = &want;
	if (!c->o.output && !c->o.child)
		gp_image_children(image, child_warning, (void *)image);
	cli_progress_init(&pg);
	c->o.progress = progress_cb;
	c->o.pctx = &pg;
	rc = c->o.output || c->o.child ? stage_derive(image, &set, &c->o, &r) :
	    stage_run(image, &set, &c->o, &r);
	cli_progress_end(&pg);
	pkg_set_free(&set);
	host_cfg_free(&want);
	/* The sidecar files follow a run that committed (or had nothing to
	 * do); a dry run writes nothing anywhere. */
	/* A sidecar that cannot be written does not hide what the run did
	 * to the image: the report is printed all the same. */
	side = rc == 0 && !c->o.dry_run && host_write(&c->host,
	    c->o.output ? c->o.output : c->o.child ? c->o.child : image,
	    &r.man) < 0;
	return stage_report_finish(cmd, c->json, &r, rc, side);
}

static int
remove_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct common *c = opts;
	struct stage_report r;
	struct cli_progress pg;
	struct pkg_set set = { 0 };
	char **names = NULL;
	size_t n = 0, k;
	int rc, i;

	if ((rc = check_options(cmd, c)) != 0)
		return rc;
	/* What stage took takes remove: a package's name, or its folder,
	 * archive or bundle on the host (whose packages are removed). */
	for (i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			names = xrealloc(names, (n + 1) * sizeof(char *));
			names[n++] = argv[i];
			continue;
		}
		k = set.n;
		if (pkg_collect(&set, argv[i]) < 0) {
			rc = cli_fail(cmd);
			goto out;
		}
		names = xrealloc(names, (n + set.n - k + 1) * sizeof(char *));
		for (; k < set.n; k++)
			names[n++] = set.v[k].name;
	}
	gp_image_children(argv[0], child_warning, argv[0]);
	cli_progress_init(&pg);
	c->o.progress = progress_cb;
	c->o.pctx = &pg;
	rc = stage_remove(argv[0], names, n, &c->o, &r);
	cli_progress_end(&pg);
	rc = stage_report_finish(cmd, c->json, &r, rc, false);
out:
	pkg_set_free(&set);
	free(names);
	return rc;
}

static int
verify_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct cli_progress pg;
	struct common *c = opts;
	struct stage_report r;
	int rc;

	if ((rc = check_options(cmd, c)) != 0)
		return rc;
	cli_progress_init(&pg);
	c->o.progress = progress_cb;
	c->o.pctx = &pg;
	rc = stage_verify(argv[0], &c->o, &r);
	cli_progress_end(&pg);
	return stage_report_finish(cmd, c->json, &r, rc, false);
}

#define COMMON_OPTIONS \
	"  --json             print a JSON report on stdout\n" \
	"  --partition N      use partition N as the Windows volume\n" \
	"  --parent FILE      parent of a differencing image\n"

const struct cmd cmd_stage = {
	.name = "stage",
	.args = "IMAGE [PACKAGE...] [--reg FILE] [--dry-run] [--json] "
	    "[--partition N]",
	.summary = "copy host driver packages into the guest's "
	    "HostDriverStore\\FileRepository",
	.options =
	    "PACKAGE is a package folder from the host's DriverStore\\"
	    "FileRepository\n(e.g. nv_dispig.inf_amd64_677da8a9230cea15), a "
	    "folder of them, or a zip,\ncab, tar or tar.gz archive of either.  "
	    "The change is atomic; a re-run\nwith the same packages writes "
	    "nothing.\n"
	    "  --dry-run          do everything in memory, read it back, "
	    "write nothing\n"
	    COMMON_OPTIONS
	    "  --short-names M    8.3 aliases: auto (as the volume does), on, "
	    "off\n"
	    "  --reg FILE         import a .reg export into the guest's SYSTEM "
	    "or SOFTWARE\n"
	    "                     hive (repeatable; DriverStore paths become\n"
	    "                     HostDriverStore)\n"
	    "  --no-rewrite       keep DriverStore paths of imports as they are\n"
	    "  --copy-key HIVE:KEY  copy KEY and below from a host hive file "
	    "(reg save)\n"
	    "  --all-control-sets write CurrentControlSet into every set "
	    "Select names\n"
	    "  --inf-section NAME the INF install section whose CopyToVm files "
	    "to place\n"
	    "  --dkms DIR         Linux guest: a DKMS source tree (dxgkrnl) for "
	    "/usr/src,\n"
	    "                     built by the first-boot unit with the guest's "
	    "headers\n"
	    "  --driver-store-copy-mode N  GraphicsDrivers\\DriverStoreCopyMode "
	    "(0-2)\n"
	    "  --gpu-virtualization-flags N  GraphicsDrivers\\"
	    "GpuVirtualizationFlags\n"
	    "  --force            an older package goes even when the guest "
	    "added files\n"
	    "                     to its folder (they go too)\n"
	    "  --repair           hash the staged files of unchanged packages "
	    "and write\n"
	    "                     again the ones that differ or are missing\n"
	    "  --driverstore-links  also link System32\\DriverStore\\"
	    "FileRepository\\PKG\n"
	    "                     to each staged package (a junction; DLSS "
	    "looks there);\n"
	    "                     kept through updates\n"
	    "  --no-driverstore-links  take those junctions away\n"
	    "  --disable-fast-startup  HiberbootEnabled=0, so the guest stays "
	    "editable\n"
	    "  --output NEW       leave IMAGE untouched; write IMAGE plus the "
	    "changes to NEW\n"
	    "  --output-format F  vhdx (default for .vhdx), vhdx-fixed, vhd, "
	    "raw\n"
	    "  --child NEW.avhdx  leave IMAGE untouched; write the changes to a "
	    "new\n"
	    "                     differencing VHDX whose parent is IMAGE\n"
	    "  --parent-path WINPATH  where IMAGE will live on the Hyper-V host\n"
	    "                     (D:\\VMs\\base.vhdx), recorded in the child "
	    "besides\n"
	    "                     the relative path\n"
	    "  --script FILE      write the Hyper-V script that sets up the VM\n"
	    HOST_OPTIONS_HELP,
	.opts = stage_optsets,
	.opts_size = sizeof(struct common),
	.min_operands = 1,
	.max_operands = -1,
	.init = common_init,
	.run = stage_main,
};

const struct cmd cmd_remove = {
	.name = "remove",
	.args = "IMAGE [PACKAGE...] [--dry-run] [--json]",
	.summary = "remove packages gpupv-prep staged (all without PACKAGE)",
	.options =
	    "  --dry-run          show what would be removed, write nothing\n"
	    "  --force            also delete what the guest added inside a "
	    "staged folder\n"
	    COMMON_OPTIONS,
	.opts = remove_optsets,
	.opts_size = sizeof(struct common),
	.min_operands = 1,
	.max_operands = -1,
	.init = common_init,
	.run = remove_main,
};

const struct cmd cmd_verify = {
	.name = "verify",
	.args = "IMAGE [--json]",
	.summary = "re-read staged files through libvhdi and check their "
	    "SHA-256",
	.options = COMMON_OPTIONS,
	.opts = verify_optsets,
	.opts_size = sizeof(struct common),
	.min_operands = 1,
	.max_operands = 1,
	.init = common_init,
	.run = verify_main,
};
