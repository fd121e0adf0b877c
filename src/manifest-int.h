/*
 * manifest-int.h - the checks of manifest-check.c, for manifest.c's
 * parser: each true when a field read from a guest's manifest is one
 * gpupv-prep could have written.
 */
#ifndef GPUPV_MANIFEST_INT_H
#define GPUPV_MANIFEST_INT_H

#include "manifest.h"

/* A path inside a package folder. */
bool	rel_ok(const char *rel);
/* A Linux guest's system file, its kept original and its link target. */
bool	linux_copy_ok(const char *dest, const char *backup, const char *link);
/* A DriverStore junction to the package it links. */
bool	junction_ok(const char *dest, const char *link, const char *package,
	    const char *backup);
/* A System32 or SysWOW64 copy and the original it keeps. */
bool	copy_ok(const char *dest, const char *backup);

#endif
