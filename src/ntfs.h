/*
 * ntfs.h - NTFS layer (gp_volume_* in the public header).  Only ntfs.c
 * includes libntfs-3g's headers.
 */
#ifndef GPUPV_NTFS_H
#define GPUPV_NTFS_H

#include "util.h"

/* 0 if Windows can hold name as a file name, -1 if not. */
int	ntfs_name_check(const char *name);
/* Whether name is a valid 8.3 name as it stands. */
bool	ntfs_is_short_name(const char *name);
/* The n-th 8.3 alias candidate for a long name ("NVIDIA~1.DLL"). */
void	ntfs_short_name(const char *name, unsigned n, char out[24]);
/* Clusters one file of size bytes takes, metadata included, in bytes:
 * its MFT record, and its data unless it is small enough to stay in the
 * record. */
uint64_t ntfs_file_cost(uint64_t size, uint64_t cluster);

#endif
