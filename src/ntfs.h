/*
 * ntfs.h - NTFS layer (gp_volume_* in the public header).  Only ntfs.c
 * includes libntfs-3g's headers.
 */
#ifndef GPUPV_NTFS_H
#define GPUPV_NTFS_H

#include "util.h"

/* Clusters one file of size bytes takes, metadata included, in bytes:
 * its MFT record, and its data unless it is small enough to stay in the
 * record. */
uint64_t ntfs_file_cost(uint64_t size, uint64_t cluster);

#endif
