/*
 * cmd-script.c - `script` (the Hyper-V script for a staged image, from its
 * manifest) and `host-script` (the collector to run on the Windows host).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "sidecar.h"
#include "stage.h"

/* The --json report of script and host-script: the files written. */
static void
written_json(const struct cmd *cmd, const char *image, const char *script,
    const char *script_kind, const char *nanabox)
{
	struct json j;

	cli_json_begin(&j, cmd);
	if (image) {
		json_key(&j, "image");
		json_str(&j, image);
	}
	json_key(&j, "written");
	json_arr_begin(&j);
	if (script) {
		json_obj_begin(&j);
		json_key(&j, "kind");
		json_str(&j, script_kind);
		json_key(&j, "path");
		json_str(&j, script);
		json_obj_end(&j);
	}
	if (nanabox) {
		json_obj_begin(&j);
		json_key(&j, "kind");
		json_str(&j, "nanabox");
		json_key(&j, "path");
		json_str(&j, nanabox);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	cli_json_finish(&j);
}

/* --json and "-" as an output would both use standard output. */
static int
json_stdout(const struct cmd *cmd, bool json, const char *a, const char *b)
{
	if (json && ((a && strcmp(a, "-") == 0) || (b && strcmp(b, "-") == 0)))
		return cli_usage_error(cmd, "--json and - (standard output) "
		    "exclude each other");
	return 0;
}

struct script_opts {
	struct stage_opts o;
	struct host_opts h;
	bool json;
};

static void
script_init(void *opts)
{
	struct script_opts *s = opts;

	s->o.partition = -1;
	s->o.short_names = -1;
}

static const struct cli_opt script_options[] = {
	{ "output", 'o', CLI_STR, CLI_FIELD(struct script_opts, h.script) },
	{ "script", 0, CLI_STR, CLI_FIELD(struct script_opts, h.script) },
	{ "partition", 'p', CLI_NUM, CLI_FIELD(struct script_opts, o.partition),
	    .max = 65535, .base = 10,
	    .msg = "--partition: '%s' is not a partition number" },
	{ "parent", 'P', CLI_STR, CLI_FIELD(struct script_opts, o.parent) },
	{ "json", 'j', CLI_FLAG, CLI_FIELD(struct script_opts, json) },
	{ NULL },
};

static const struct cli_optset script_optsets[] = {
	{ .v = script_options },
	{ .v = host_options, .base = offsetof(struct script_opts, h) },
	{ .v = NULL },
};

static int
script_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct script_opts *so = opts;
	struct host_opts *h = &so->h;
	struct manifest m;
	int r;

	(void)argc;
	if (!h->script && !h->nanabox)
		return cli_usage_error(cmd, "missing -o FILE (or --nanabox "
		    "FILE)");
	if ((r = host_check(cmd, h)) != 0 ||
	    (r = json_stdout(cmd, so->json, h->script, h->nanabox)) != 0)
		return r;
	if (cli_same_file(h->script, argv[0]) ||
	    cli_same_file(h->nanabox, argv[0]))
		return cli_usage_error(cmd, "-o/--nanabox names the image (%s); "
		    "name another file", argv[0]);
	if (stage_manifest(argv[0], &so->o, &m) < 0)
		return cli_fail(cmd);
	r = host_write(h, argv[0], &m);
	manifest_free(&m);
	if (r < 0)
		return cli_fail(cmd);
	if (so->json)
		written_json(cmd, argv[0], h->script, "hyper-v-script",
		    h->nanabox);
	return 0;
}

struct host_script_opts {
	const char *out;
	bool json;
};

static const struct cli_opt host_script_options[] = {
	{ "output", 'o', CLI_STR, CLI_FIELD(struct host_script_opts, out) },
	{ "json", 'j', CLI_FLAG, CLI_FIELD(struct host_script_opts, json) },
	{ NULL },
};

static const struct cli_optset host_script_optsets[] = {
	{ .v = host_script_options },
	{ .v = NULL },
};

static int
host_script_main(const struct cmd *cmd, void *opts, int argc, char **argv)
{
	struct host_script_opts *o = opts;
	const char *text = sidecar_host_script();
	int r;

	(void)argc;
	(void)argv;
	if (!o->out)
		return cli_usage_error(cmd, "missing -o FILE");
	if ((r = json_stdout(cmd, o->json, o->out, NULL)) != 0)
		return r;
	if (sidecar_write(o->out, text, strlen(text)) < 0)
		return cli_fail(cmd);
	if (o->json)
		written_json(cmd, NULL, o->out, "host-script", NULL);
	return 0;
}

const struct cmd cmd_script = {
	.name = "script",
	.args = "IMAGE -o FILE [--vm-name NAME] [--gpu PATH | --dda LOCPATH]",
	.summary = "write the Hyper-V script for a staged image (from its "
	    "manifest)",
	.options =
	    "The PowerShell script (5.1 and 7) checks the host, then sets up "
	    "the VM;\n-WhatIf shows what it would change.  Defaults come from "
	    "the staging run.\n"
	    "  -o, --output FILE  the script to write (- for standard output)\n"
	    "  --script FILE      the same as -o (the name stage uses)\n"
	    "  --partition N      use partition N as the Windows volume\n"
	    "  --parent FILE      parent of a differencing image\n"
	    "  --json             report the files written as JSON\n"
	    HOST_OPTIONS_HELP,
	.opts = script_optsets,
	.opts_size = sizeof(struct script_opts),
	.min_operands = 1,
	.max_operands = 1,
	.init = script_init,
	.run = script_main,
};

const struct cmd cmd_host_script = {
	.name = "host-script",
	.args = "-o FILE",
	.summary = "write the collector to run on the Windows host: it zips "
	    "the GPU's driver package for `stage`",
	.options =
	    "  -o, --output FILE  the script to write (- for standard output)\n"
	    "  --json             report the file written as JSON\n",
	.opts = host_script_optsets,
	.opts_size = sizeof(struct host_script_opts),
	.max_operands = 0,
	.run = host_script_main,
};
