/*
 * cmd-script.c - `script` (the Hyper-V script for a staged image, from its
 * manifest), `host-script` (the collector to run on the Windows host), and
 * the host options and sidecar writing that `stage` shares.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "sidecar.h"
#include "stage.h"

/*
 * "1G", "1024M", "33280MB", "3GiB", "1T": a size in MiB between lo and
 * hi MiB; 0 on garbage, a missing unit or a size out of bounds.  A bare
 * number is refused: qemu-img reads it as bytes, Set-VM as bytes, and
 * the NanaBox file as MiB, so it would mean something else to each.
 */
static uint64_t
parse_mib(const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;
	unsigned shift;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return 0;
	switch (*end) {
	case 'M': case 'm': shift = 0; break;
	case 'G': case 'g': shift = 10; break;
	case 'T': case 't': shift = 20; break;
	default: return 0;
	}
	end++;
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (hi >> shift))
		return 0;
	v <<= shift;
	return v < lo ? 0 : v;
}

/* Bounds, in MiB.  The low MMIO window lies below 4 GB (with the VM's
 * memory and firmware); the high one above all memory. */
#define LOW_MMIO_MIN	128
#define LOW_MMIO_MAX	3584
#define HIGH_MMIO_MAX	(16ull << 20)
#define MMIO_NEEDED	8192		/* what the Hyper-V script checks */

int
host_opt(const struct cmd *cmd, int ch, const char *arg, struct host_opts *h)
{
	long n;

	switch (ch) {
	case 1001:
		if (!*arg)
			return cli_usage_error(cmd, "--vm-name: empty"), -1;
		h->cfg.vm_name = (char *)arg;
		return 1;
	case 1002:
		h->cfg.gpu = (char *)arg;	/* "": Hyper-V's choice */
		return 1;
	case 1003:
		if (!(h->cfg.low_mmio_mb = parse_mib(arg, LOW_MMIO_MIN,
		    LOW_MMIO_MAX)))
			return cli_usage_error(cmd, "--low-mmio: '%s' is not a "
			    "size from 128M to 3584M, such as 1G", arg), -1;
		return 1;
	case 1004:
		if (!(h->cfg.high_mmio_mb = parse_mib(arg, 1, HIGH_MMIO_MAX)))
			return cli_usage_error(cmd, "--high-mmio: '%s' is not a "
			    "size up to 16T, such as 32G or 33280M", arg), -1;
		return 1;
	case 1005:
		if (!*arg)
			return cli_usage_error(cmd, "--dda: empty"), -1;
		h->cfg.dda = (char *)arg;
		return 1;
	case 1006:
		h->nanabox = arg;
		return 1;
	case 1007:
		n = cli_parse_uint(arg);
		if (n < 1 || n > 1024)
			return cli_usage_error(cmd, "--cpus: '%s' is not a count "
			    "of processors from 1 to 1024", arg), -1;
		h->cpus = (unsigned)n;
		return 1;
	case 1008:
		if (!(h->memory_mb = parse_mib(arg, 32, 16ull << 20)))
			return cli_usage_error(cmd, "--memory: '%s' is not a "
			    "size from 32M to 16T, such as 8G", arg), -1;
		return 1;
	}
	return 0;
}

int
host_check(const struct cmd *cmd, const struct host_opts *h)
{
	bool dda = h->cfg.dda && *h->cfg.dda;
	uint64_t low = h->cfg.low_mmio_mb ? h->cfg.low_mmio_mb :
	    dda ? SIDECAR_DDA_LOW_MMIO_MB : SIDECAR_LOW_MMIO_MB;
	uint64_t high = h->cfg.high_mmio_mb ? h->cfg.high_mmio_mb :
	    dda ? SIDECAR_DDA_HIGH_MMIO_MB : SIDECAR_HIGH_MMIO_MB;

	if (h->script && h->nanabox && strcmp(h->script, "-") == 0 &&
	    strcmp(h->nanabox, "-") == 0)
		return cli_usage_error(cmd, "only one of the script and the "
		    "NanaBox file can go to standard output (-)");
	if (dda && h->cfg.gpu)
		return cli_usage_error(cmd, "--dda and --gpu exclude each "
		    "other: --dda assigns the whole device, --gpu chooses a "
		    "GPU-PV partition");
	if (dda && h->nanabox)
		return cli_usage_error(cmd, "--nanabox writes a GPU-PV "
		    "configuration; it does not take --dda");
	if ((h->cpus || h->memory_mb) && !h->nanabox)
		return cli_usage_error(cmd, "--cpus and --memory go into the "
		    "NanaBox file; give --nanabox FILE as well (the Hyper-V "
		    "script keeps the VM's own)");
	if (low + high < MMIO_NEEDED)
		return cli_usage_error(cmd, "--low-mmio and --high-mmio give "
		    "%llu MiB of memory-mapped IO in all; the GPU needs at "
		    "least 8G (the Hyper-V script refuses less)",
		    (unsigned long long)(low + high));
	return 0;
}

int
host_write(const struct host_opts *h, const char *image,
    const struct manifest *m)
{
	struct host_cfg cfg = { 0 };
	struct sidecar s = { .image = image, .man = m, .host = &cfg,
	    .cpus = h->cpus, .memory_mb = h->memory_mb };
	struct gp_open_opts oo = { .flags = GP_OPEN_RDONLY | GP_OPEN_NO_PARENT };
	struct gp_image_info info;
	struct gp_error e;
	gp_image *img;
	char *text;
	size_t len;
	int rc = 0;

	if (!h->script && !h->nanabox)
		return 0;
	/* The image's own identifier, for the script to find it among the
	 * VM's disks (a raw image has none: the check is left out). */
	info.disk_id[0] = '\0';
	error_try(&e);
	img = gp_image_open(image, &oo);
	if (img) {
		gp_image_get_info(img, &info);
		gp_image_close(img);
	}
	error_end(&e);
	if (info.disk_id[0])
		s.disk_id = info.disk_id;
	host_cfg_merge(&cfg, &m->host);
	host_cfg_merge(&cfg, &h->cfg);
	if (!cfg.vm_name)
		cfg.vm_name = sidecar_default_vm_name(image);
	if (h->script) {
		text = sidecar_vm_script(&s);
		rc = text ? sidecar_write(h->script, text, strlen(text)) : -1;
		free(text);
	}
	if (rc == 0 && h->nanabox) {
		text = sidecar_nanabox(&s, &len);
		rc = text ? sidecar_write(h->nanabox, text, len) : -1;
		free(text);
	}
	host_cfg_free(&cfg);
	return rc;
}

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

static int
script_main(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "script", required_argument, NULL, 'o' },
		{ "partition", required_argument, NULL, 'p' },
		{ "parent", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_COMMON_LONGOPTS,
		HOST_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct stage_opts o = { .partition = -1, .short_names = -1 };
	struct host_opts h = { 0 };
	struct manifest m;
	bool json = false;
	int ch, r;

	while ((ch = getopt_long(argc, argv, ":o:p:P:jhqv", longopts,
	    NULL)) != -1) {
		if (cli_common_opt(ch))
			continue;
		if ((r = host_opt(cmd, ch, optarg, &h)) != 0) {
			if (r < 0)
				return GP_EXIT_USAGE;
			continue;
		}
		switch (ch) {
		case 'o':
			h.script = optarg;
			break;
		case 'p':
			if ((r = cli_partition(cmd, optarg, &o.partition)) != 0)
				return r;
			break;
		case 'P':
			o.parent = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			cli_help(cmd, stdout);
			return 0;
		default:
			return cli_bad_option(cmd, ch, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cmd, "missing IMAGE");
	if (argc - optind > 1)
		return cli_usage_error(cmd, "unexpected argument '%s'",
		    argv[optind + 1]);
	if (!h.script && !h.nanabox)
		return cli_usage_error(cmd, "missing -o FILE (or --nanabox "
		    "FILE)");
	if ((r = host_check(cmd, &h)) != 0 ||
	    (r = json_stdout(cmd, json, h.script, h.nanabox)) != 0)
		return r;
	if (cli_same_file(h.script, argv[optind]) ||
	    cli_same_file(h.nanabox, argv[optind]))
		return cli_usage_error(cmd, "-o/--nanabox names the image (%s); "
		    "name another file", argv[optind]);
	if (stage_manifest(argv[optind], &o, &m) < 0)
		return cli_fail(cmd);
	r = host_write(&h, argv[optind], &m);
	manifest_free(&m);
	if (r < 0)
		return cli_fail(cmd);
	if (json)
		written_json(cmd, argv[optind], h.script, "hyper-v-script",
		    h.nanabox);
	return 0;
}

static int
host_script_main(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *text = sidecar_host_script();
	bool json = false;
	int ch, r;

	while ((ch = getopt_long(argc, argv, ":o:jhqv", longopts, NULL)) != -1) {
		if (cli_common_opt(ch))
			continue;
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			cli_help(cmd, stdout);
			return 0;
		default:
			return cli_bad_option(cmd, ch, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'",
		    argv[optind]);
	if (!out)
		return cli_usage_error(cmd, "missing -o FILE");
	if ((r = json_stdout(cmd, json, out, NULL)) != 0)
		return r;
	if (sidecar_write(out, text, strlen(text)) < 0)
		return cli_fail(cmd);
	if (json)
		written_json(cmd, NULL, out, "host-script", NULL);
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
	.run = host_script_main,
};
