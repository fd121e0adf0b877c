/*
 * plan.h - checks made on what a run will write before it writes
 * anything: names that would clash once in the guest, and the space the
 * run takes.
 */
#ifndef GPUPV_PLAN_H
#define GPUPV_PLAN_H

#include "package.h"

/*
 * Names of p that cannot live side by side in one NTFS folder: two names
 * equal ignoring case (NTFS upper-cases with its table; the host's file
 * system did not), or, when the volume makes 8.3 aliases, a name equal to
 * the alias a sibling created before it gets (NVIDIA~1.DLL).  Records an
 * error naming both and returns -1; 0 when there is none.
 */
int	plan_name_clashes(const struct pkg *p, bool short_names);

#endif
