/*
 * acl.h - the security descriptor Windows gives a new file or folder,
 * derived from its parent folder's (self-relative descriptors as bytes;
 * no file system here).
 */
#ifndef GPUPV_ACL_H
#define GPUPV_ACL_H

#include "util.h"

/* Administrators (S-1-5-32-544), binary: the owner and group gpupv-prep
 * gives what it creates, as an elevated administrator's copy does. */
extern const uint8_t acl_sid_administrators[16];

/*
 * The descriptor of a new object (a folder when is_dir) in a folder whose
 * descriptor is parent (plen bytes), by Windows' inheritance rules:
 * the parent's inheritable ACEs of the DACL and SACL, in order (marked
 * inherited where the parent's ACL is automatically inherited); CREATOR OWNER and CREATOR GROUP replaced by owner and group,
 * generic rights mapped to the file rights they stand for (split into an
 * effective ACE and an inherit-only one where a folder passes them on);
 * no-propagate and inherit-only honoured for files and folders apart;
 * duplicates dropped.  Laid out compactly (header, DACL, SACL, owner,
 * group).  Returns a new buffer and its size, or NULL (errno EINVAL) when
 * parent is not a descriptor that can be read.
 */
uint8_t *acl_inherit(const uint8_t *parent, size_t plen, bool is_dir,
	    const uint8_t *owner, const uint8_t *group, size_t *len);

#endif
