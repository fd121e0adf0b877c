/*
 * hostcfg.h - the host side of the VM (hostcfg.c): what the sidecar
 * script and the NanaBox file need, gathered from options, a host bundle
 * and the manifest of an earlier run.
 */
#ifndef GPUPV_HOSTCFG_H
#define GPUPV_HOSTCFG_H

#include "util.h"

struct host_cfg {
	char *vm_name;
	char *gpu;			/* GPU-PV instance path; NULL or ""
					   for Hyper-V's choice */
	char *gpu_name;
	char *hardware_id;
	char *dda;			/* DDA location path, or NULL */
	uint64_t low_mmio_mb;		/* 0: the default */
	uint64_t high_mmio_mb;
	uint64_t host_build;		/* 0: unknown */
};

void	host_cfg_free(struct host_cfg *h);
/* Fields set in src replace those of dst; true if anything changed. */
bool	host_cfg_merge(struct host_cfg *dst, const struct host_cfg *src);

#endif
