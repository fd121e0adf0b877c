/*
 * ntfs.h - NTFS layer (gp_volume_* in the public header).  Only ntfs.c
 * includes libntfs-3g's headers.
 */
#ifndef GPUPV_NTFS_H
#define GPUPV_NTFS_H

#include "util.h"

/* 0 if Windows can hold name as a file name, -1 if not. */
int	ntfs_name_check(const char *name);

#endif
