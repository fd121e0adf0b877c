/*
 * manifest-check.c - what a manifest read from a guest may say.  The
 * manifest comes from the guest, so it is checked like any input before
 * remove or an update acts on it: every path must be one gpupv-prep
 * writes (a package's file, a System32 or SysWOW64 copy with its kept
 * original, a DriverStore junction, a Linux guest's library or link),
 * nothing that climbs out.
 */
#include <config.h>

#include <ctype.h>
#include <stdlib.h>

#include "winname.h"
#include "manifest-int.h"

/*
 * The manifest is read from the guest, so it is checked like any input
 * before remove or an update acts on it: a relative path inside a package
 * folder is names Windows can hold joined by '/', nothing that climbs
 * out.
 */
bool
rel_ok(const char *rel)
{
	char *copy = xstrdup(rel), *c, *save = NULL;
	bool ok = *rel && *rel != '/' && !strstr(rel, "//") &&
	    rel[strlen(rel) - 1] != '/';
	unsigned depth = 0;

	for (c = strtok_r(copy, "/", &save); ok && c;
	    c = strtok_r(NULL, "/", &save))
		ok = win_name_check(c) == 0 && ++depth <= 64;
	free(copy);
	return ok;
}

/*
 * A System32 or SysWOW64 file gpupv-prep placed: "\ROOT\DIR\NAME" with
 * DIR System32 or SysWOW64; its backup, when there is one, is that NAME
 * under ...\gpupv-prep-originals\DIR\ and nowhere else.
 */
/* A plain file name of a Linux folder: no '/', not "." or "..", no
 * control characters, at most 255 bytes. */
static bool
linux_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return false;
	return true;
}

/* The files gpupv-prep writes into a Linux guest besides the libraries
 * (stage.c makes them; nothing else is accepted from a manifest). */
static const char *const linux_generated[] = {
	"/etc/ld.so.conf.d/ld.wsl.conf",
	"/etc/systemd/system/gpupv-prep-firstboot.service",
	"/usr/lib/wsl/gpupv-prep-firstboot",
};

bool
manifest_linux_generated(const char *dest)
{
	size_t i;

	for (i = 0; i < sizeof(linux_generated) / sizeof(*linux_generated); i++)
		if (!strcmp(dest, linux_generated[i]))
			return true;
	return false;
}

/* A Linux guest's system file: /usr/lib/wsl/lib/NAME (a link to another
 * plain name there), or one of the generated files; never a backup. */
bool
linux_copy_ok(const char *dest, const char *backup, const char *link)
{
	static const char lib[] = "/usr/lib/wsl/lib/", src[] = "/usr/src/";

	if (backup)
		return false;
	if (!strncmp(dest, src, sizeof(src) - 1) && !link) {
		/* A DKMS tree: /usr/src/NAME-VERSION/REL, REL of plain names. */
		char *copy = xstrdup(dest + sizeof(src) - 1), *save, *c;
		bool ok = true;
		int n = 0;

		for (c = strtok_r(copy, "/", &save); c && ok;
		    c = strtok_r(NULL, "/", &save), n++)
			ok = linux_name_ok(c) && n < 64;
		ok = ok && n >= 2 && !strstr(dest, "//") &&
		    dest[strlen(dest) - 1] != '/';
		free(copy);
		return ok;
	}
	if (!strncmp(dest, lib, sizeof(lib) - 1))
		return linux_name_ok(dest + sizeof(lib) - 1) &&
		    (!link || linux_name_ok(link));
	return !link && manifest_linux_generated(dest);
}

/*
 * A DriverStore junction gpupv-prep made: dest "\ROOT\System32\
 * DriverStore\FileRepository\PKG" for its own package PKG, and link
 * "X:\ROOT\System32\HostDriverStore\FileRepository\PKG", the same ROOT
 * and PKG; never a backup.
 */
bool
junction_ok(const char *dest, const char *link, const char *package,
    const char *backup)
{
	static const char ds[] = "\\System32\\DriverStore\\FileRepository\\";
	static const char hds[] =
	    "\\System32\\HostDriverStore\\FileRepository\\";
	const char *root_end = dest[0] == '\\' ? strchr(dest + 1, '\\') : NULL;
	size_t rl = root_end ? (size_t)(root_end - dest) : 0;

	if (backup || !root_end || !package || win_name_check(package) < 0 ||
	    strncasecmp(root_end, ds, sizeof(ds) - 1) ||
	    strcmp(root_end + sizeof(ds) - 1, package) ||
	    !isalpha((unsigned char)link[0]) || link[1] != ':' ||
	    strncasecmp(link + 2, dest, rl) ||
	    strncasecmp(link + 2 + rl, hds, sizeof(hds) - 1))
		return false;
	return strcmp(link + 2 + rl + sizeof(hds) - 1, package) == 0;
}

bool
copy_ok(const char *dest, const char *backup)
{
	const char *name = strrchr(dest, '\\'), *dir, *b;
	size_t dl;

	if (!name || dest[0] != '\\' || win_name_check(name + 1) < 0)
		return false;
	for (dir = name - 1; dir > dest && *dir != '\\'; dir--)
		;
	if (dir == dest || strchr(dest + 1, '\\') != dir)
		return false;			/* exactly \ROOT\DIR\NAME */
	dl = (size_t)(name - dir - 1);
	if (!((dl == 8 && !strncasecmp(dir + 1, "System32", 8)) ||
	    (dl == 8 && !strncasecmp(dir + 1, "SysWOW64", 8))))
		return false;
	if (!backup)
		return true;
	b = strstr(backup, "\\gpupv-prep-originals\\");
	return b && strncasecmp(b + 22, dir + 1, dl) == 0 &&
	    b[22 + dl] == '\\' && strcmp(b + 23 + dl, name + 1) == 0 &&
	    !strstr(backup, "..");
}

