/*
 * hostcfg.c - the host side of the VM: freeing and merging settings (a
 * run's options over what the manifest recorded).
 */
#include <config.h>

#include <stdlib.h>

#include "hostcfg.h"

void
host_cfg_free(struct host_cfg *h)
{
	free(h->vm_name);
	free(h->gpu);
	free(h->gpu_name);
	free(h->hardware_id);
	free(h->dda);
	memset(h, 0, sizeof(*h));
}

static bool
merge_str(char **dst, const char *src)
{
	if (!src || (*dst && strcmp(*dst, src) == 0))
		return false;
	free(*dst);
	*dst = xstrdup(src);
	return true;
}

static bool
merge_u64(uint64_t *dst, uint64_t src)
{
	if (!src || *dst == src)
		return false;
	*dst = src;
	return true;
}

bool
host_cfg_merge(struct host_cfg *dst, const struct host_cfg *src)
{
	bool c = false;

	c |= merge_str(&dst->vm_name, src->vm_name);
	c |= merge_str(&dst->gpu, src->gpu);
	c |= merge_str(&dst->gpu_name, src->gpu_name);
	c |= merge_str(&dst->hardware_id, src->hardware_id);
	c |= merge_str(&dst->dda, src->dda);
	c |= merge_u64(&dst->low_mmio_mb, src->low_mmio_mb);
	c |= merge_u64(&dst->high_mmio_mb, src->high_mmio_mb);
	c |= merge_u64(&dst->host_build, src->host_build);
	return c;
}
