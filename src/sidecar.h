/*
 * sidecar.h - the host half of GPU-PV, as files beside the image: the
 * Hyper-V PowerShell script that configures the VM (GPU-PV or DDA), a
 * NanaBox .7b configuration, and the host-side collector script that
 * bundles a GPU's driver package for `stage`.  Nothing here prints.
 */
#ifndef GPUPV_SIDECAR_H
#define GPUPV_SIDECAR_H

#include "manifest.h"

#define SIDECAR_LOW_MMIO_MB	1024		/* GPU-PV defaults */
#define SIDECAR_HIGH_MMIO_MB	(64 * 1024)
#define SIDECAR_DDA_LOW_MMIO_MB	(3 * 1024)	/* DDA */
#define SIDECAR_DDA_HIGH_MMIO_MB 33280

struct sidecar {
	const char *image;		/* as given; named in comments */
	const struct manifest *man;	/* what was staged */
	const struct host_cfg *host;	/* VM name, GPU, MMIO, DDA */
	const char *disk_id;		/* the image's (Get-VHD DiskIdentifier),
					   or NULL */
	unsigned cpus;			/* NanaBox only */
	uint64_t memory_mb;		/* NanaBox only */
};

/* The Hyper-V script (GPU-PV, or DDA when host->dda is set); malloc'd.
 * NULL with an error when a field from outside is longer than a script
 * may hold (so is sidecar_nanabox). */
char	*sidecar_vm_script(const struct sidecar *s);
/* The NanaBox configuration, UTF-8 with a BOM; malloc'd, *len set. */
char	*sidecar_nanabox(const struct sidecar *s, size_t *len);
/* The host-side collector script. */
const char *sidecar_host_script(void);
/* Write text to path atomically (temporary file, fsync, rename). */
int	sidecar_write(const char *path, const char *text, size_t len);
/* The VM name used when none is given: the image's file name without
 * its extension. */
char	*sidecar_default_vm_name(const char *image);

#endif
