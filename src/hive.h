/*
 * hive.h - registry hive layer (gp_hive_* in the public header).  Only
 * hive.c includes hivex.h.
 */
#ifndef GPUPV_HIVE_H
#define GPUPV_HIVE_H

#include "util.h"

#endif
