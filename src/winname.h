/*
 * winname.h - Windows' file name rules and 8.3 aliases (winname.c).
 */
#ifndef GPUPV_WINNAME_H
#define GPUPV_WINNAME_H

#include "util.h"

/* 0 if Windows can hold name as a file name, -1 if not. */
int	win_name_check(const char *name);
/* Whether name is a valid 8.3 name as it stands. */
bool	win_is_short_name(const char *name);
/* The n-th 8.3 alias candidate for a long name ("NVIDIA~1.DLL"), in
 * Windows' own scheme. */
void	win_short_name(const char *name, unsigned n, char out[24]);

#endif
