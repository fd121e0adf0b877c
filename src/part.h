/*
 * part.h - partition layer: GPT and MBR tables read into an array
 * (gp_partitions_read in the public header), each partition's file system
 * named from its first bytes.
 */
#ifndef GPUPV_PART_H
#define GPUPV_PART_H

#include "util.h"

#endif
