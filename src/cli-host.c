/*
 * cli-host.c - the host side of the VM as options (--vm-name, --gpu, the
 * MMIO windows, --dda, --nanabox, --cpus, --memory), which stage and
 * script both take, their checks, and the sidecar files written from
 * them: the Hyper-V script and the NanaBox configuration.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "sidecar.h"

/* Bounds, in MiB.  The low MMIO window lies below 4 GB (with the VM's
 * memory and firmware); the high one above all memory. */
#define LOW_MMIO_MIN	128
#define LOW_MMIO_MAX	3584
#define HIGH_MMIO_MAX	(16ull << 20)
#define MMIO_NEEDED	8192		/* what the Hyper-V script checks */

const struct cli_opt host_options[] = {
	{ "vm-name", 0, CLI_STR, CLI_FIELD(struct host_opts, cfg.vm_name),
	    .nonempty = true },
	/* "": Hyper-V's choice */
	{ "gpu", 0, CLI_STR, CLI_FIELD(struct host_opts, cfg.gpu) },
	{ "low-mmio", 0, CLI_MIB, CLI_FIELD(struct host_opts, cfg.low_mmio_mb),
	    .min = LOW_MMIO_MIN, .max = LOW_MMIO_MAX,
	    .msg = "--low-mmio: '%s' is not a size from 128M to 3584M, such "
	    "as 1G" },
	{ "high-mmio", 0, CLI_MIB, CLI_FIELD(struct host_opts,
	    cfg.high_mmio_mb), .min = 1, .max = HIGH_MMIO_MAX,
	    .msg = "--high-mmio: '%s' is not a size up to 16T, such as 32G or "
	    "33280M" },
	{ "dda", 0, CLI_STR, CLI_FIELD(struct host_opts, cfg.dda),
	    .nonempty = true },
	{ "nanabox", 0, CLI_STR, CLI_FIELD(struct host_opts, nanabox) },
	{ "cpus", 0, CLI_NUM, CLI_FIELD(struct host_opts, cpus), .min = 1,
	    .max = 1024, .base = 10,
	    .msg = "--cpus: '%s' is not a count of processors from 1 to 1024" },
	{ "memory", 0, CLI_MIB, CLI_FIELD(struct host_opts, memory_mb),
	    .min = 32, .max = 16ll << 20,
	    .msg = "--memory: '%s' is not a size from 32M to 16T, such as 8G" },
	{ NULL },
};

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

