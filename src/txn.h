/*
 * txn.h - sessions over writable images (gp_image_commit and friends in
 * the public header).  The overlay itself is blk-cow.c; this layer decides
 * what may bypass it and when it is committed.
 */
#ifndef GPUPV_TXN_H
#define GPUPV_TXN_H

#include "util.h"

struct txn;

#endif
