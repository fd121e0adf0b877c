/*
 * sidecar-int.h - the fragments of the Hyper-V script's PowerShell
 * (sidecar-ps.c), for sidecar.c, which writes the parts that differ from
 * one image to the next around them.
 */
#ifndef GPUPV_SIDECAR_INT_H
#define GPUPV_SIDECAR_INT_H

extern const char ps_driver_check[];
extern const char ps_prologue[];
extern const char ps_checks[];
extern const char ps_gpupv_gpu[];
extern const char ps_vm_settings[];
extern const char ps_linux_secure_boot[];
extern const char ps_gpupv_adapter[];
extern const char ps_dda_device[];
extern const char ps_dda_assign[];

#endif
