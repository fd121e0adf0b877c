/*
 * cmd-compact.c - "gpupv-prep compact IMAGE": give back the blocks of a
 * dynamic or differencing image that hold only free NTFS clusters or
 * unpartitioned space, and shorten the file; punch holes into a raw one.
 * With --output NEW the input is only read and NEW gets the rest.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "compact.h"
#include "json.h"

static void
copy_progress(void *ctx, uint64_t done, uint64_t total)
{
	cli_progress(ctx, "copying the image", 0, 0, done, total);
}

static void
print_json(const struct compact_report *r)
{
	struct json j;

	cli_json_begin(&j, &cmd_compact);
	json_key(&j, "image");
	json_str(&j, r->image);
	json_key(&j, "dry_run");
	json_bool(&j, r->dry_run);
	json_key(&j, "ntfs_volumes");
	json_u64(&j, r->volumes);
	json_key(&j, "unused_bytes");
	json_u64(&j, r->unused_bytes);
	json_key(&j, "block_size");
	if (r->block_size)
		json_u64(&j, r->block_size);
	else
		json_null(&j);
	json_key(&j, "blocks_dropped");
	json_u64(&j, r->blocks_dropped);
	json_key(&j, "file_size_before");
	json_u64(&j, r->size_before);
	json_key(&j, "file_size_after");
	json_u64(&j, r->size_after);
	json_key(&j, "allocated_before");
	json_u64(&j, r->alloc_before);
	json_key(&j, "allocated_after");
	if (r->dry_run)
		json_null(&j);
	else
		json_u64(&j, r->alloc_after);
	cli_json_finish(&j);
}

struct compact_cli {
	struct compact_opts o;
	bool json;
};

static const struct cli_opt compact_options[] = {
	{ "dry-run", 'n', CLI_FLAG, CLI_FIELD(struct compact_cli, o.dry_run) },
	{ "json", 'j', CLI_FLAG, CLI_FIELD(struct compact_cli, json) },
	{ "output", 'o', CLI_STR, CLI_FIELD(struct compact_cli, o.output) },
	{ "output-format", 0, CLI_WORD, CLI_FIELD(struct compact_cli,
	    o.output_format),
	    .words = (const char *const[]){ "vhdx", "vhdx-fixed", "vhd", "raw",
	    NULL },
	    .msg = "--output-format: vhdx, vhdx-fixed, vhd or raw" },
	{ "parent", 0, CLI_STR, CLI_FIELD(struct compact_cli, o.parent) },
	{ "format", 0, CLI_STR, CLI_FIELD(struct compact_cli, o.format) },
	{ NULL },
};

static const struct cli_optset compact_optsets[] = {
	{ .v = compact_options },
	{ .v = NULL },
};

static int
compact_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct compact_cli *c = opts;
	struct compact_opts o = c->o;
	struct compact_report r;
	struct cli_progress pg;
	bool json = c->json;
	char b1[32], b2[32];
	int rc;

	(void)argc;
	if (o.output_format && !o.output)
		return cli_usage_error(cmd, "--output-format goes with --output");
	cli_progress_init(&pg);
	o.progress = copy_progress;
	o.pctx = &pg;
	rc = compact_run(argv[0], &o, &r);
	cli_progress_end(&pg);
	if (rc < 0) {
		rc = cli_fail(cmd);
		compact_report_free(&r);
		return rc;
	}
	if (json) {
		print_json(&r);
	} else if (cli_quiet) {
		cli_print_warnings(cmd);
	} else {
		cli_print_warnings(cmd);
		cli_printf("%s: %u NTFS volume(s), %s unused", r.image, r.volumes,
		    cli_size(r.unused_bytes, b1));
		if (r.block_size)
			cli_printf(", %llu block(s) of %s %sdropped",
			    (unsigned long long)r.blocks_dropped,
			    cli_size(r.block_size, b2), r.dry_run ?
			    "would be " : "");
		cli_printf("\n%s: file %s -> %s%s\n", r.image,
		    cli_size(r.size_before, b1), cli_size(r.size_after, b2),
		    r.dry_run ? " (dry run: nothing written)" : "");
	}
	compact_report_free(&r);
	return 0;
}

const struct cmd cmd_compact = {
	.name = "compact",
	.args = "IMAGE [--output NEW] [--dry-run] [--json]",
	.summary = "give back blocks that hold only free NTFS clusters or "
	    "unpartitioned space",
	.options =
	    "Blocks of a dynamic or differencing VHDX or VHD that hold only "
	    "free clusters\nof clean NTFS volumes or space outside the GPT "
	    "partitions are dropped and\nthe file is shortened to the blocks "
	    "it uses (each step atomic); a raw image\ngets holes punched.  "
	    "Other file systems and partition tables are kept whole.\n"
	    "  --dry-run          count what would be given back, write "
	    "nothing\n"
	    "  --json             print a JSON report on stdout\n"
	    "  --output NEW       leave IMAGE untouched; write a compacted copy "
	    "to NEW\n"
	    "  --output-format F  vhdx (default for .vhdx), vhdx-fixed, vhd, "
	    "raw\n"
	    "  --parent FILE      parent of a differencing image\n",
	.opts = compact_optsets,
	.opts_size = sizeof(struct compact_cli),
	.min_operands = 1,
	.max_operands = 1,
	.run = compact_main,
};
