/*
 * registry.h - the registry part of a stage run (plan level, above the
 * hive layer): .reg imports, subtree copies, the nvlddmkm service and
 * the GPU-PV guest settings applied to open hives, each change recorded
 * in the manifest so that remove can undo it.
 */
#ifndef GPUPV_REGISTRY_H
#define GPUPV_REGISTRY_H

#include "manifest.h"
#include "reg.h"

struct regs {
	hive *h[REG_NHIVES];		/* NULL: not loaded */
	char **csets;			/* "ControlSet001", ... */
	size_t ncsets;
	struct manifest *man;		/* undo records appended here */
	bool dirty[REG_NHIVES];		/* something was written */
	uint64_t values_set, values_deleted, keys_created, keys_deleted;
};

/* The control sets CurrentControlSet stands for: Select\Current, or
 * with all set, every set Select names (Current, Default,
 * LastKnownGood, Failed) that exists. */
int	regs_control_sets(struct regs *s, bool all);
void	regs_free(struct regs *s);

int	regs_set(struct regs *s, enum reg_hive hv, const char *key,
	    const char *name, const struct hive_val *v, const char *origin);
int	regs_apply_file(struct regs *s, const struct reg_file *f);
/* Copy the subtree key of the host hive src into the same path of hv. */
int	regs_copy_tree(struct regs *s, enum reg_hive hv, const char *dst_key,
	    hive *src, const char *src_key, bool rewrite, const char *origin);
/* Undo every change the manifest records, newest first, and forget them. */
int	regs_undo(struct regs *s);
/* Whether a .reg import defines HKLM\SYSTEM\...\Services\<name>. */
bool	reg_file_defines_service(const struct reg_file *f, const char *name);

#endif
