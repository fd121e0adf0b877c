/*
 * winname.c - the names Windows can hold and the 8.3 aliases it makes for
 * them, as pure functions: a leaf that the NTFS layer, the package reader,
 * the manifest's checks and the plan all use (none of them reaches into
 * another for it).
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>

#include "winname.h"

/* Names Windows cannot hold (Win32 namespace rules). */
int
win_name_check(const char *name)
{
	static const char *const reserved[] = { "CON", "PRN", "AUX", "NUL",
	    "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
	    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7",
	    "LPT8", "LPT9" };
	size_t n = strlen(name), i, stem, units = 0;
	const char *p;
	int len;

	if (n == 0)
		return -1;
	/* NTFS holds 255 UTF-16 units in a name (a longer one would be cut
	 * to its length modulo 256 on the way down). */
	for (p = name; *p; p += len)
		units += utf8_decode((const unsigned char *)p, &len) >= 0x10000 ?
		    2 : 1;
	if (units > 255)
		return -1;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -1;
	for (p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || strchr("<>:\"/\\|?*", *p))
			return -1;
	if (name[n - 1] == '.' || name[n - 1] == ' ')
		return -1;
	p = strchr(name, '.');
	stem = p ? (size_t)(p - name) : n;
	for (i = 0; i < ARRAY_SIZE(reserved); i++)
		if (strlen(reserved[i]) == stem &&
		    strncasecmp(name, reserved[i], stem) == 0)
			return -1;
	return 0;
}

/* "NAME.EXT" rules of FAT: at most 8.3, one dot, no spaces or specials. */
bool
win_is_short_name(const char *name)
{
	const char *dot = strchr(name, '.');
	size_t stem = dot ? (size_t)(dot - name) : strlen(name);
	const char *p;

	if (stem == 0 || stem > 8 || (dot && (strchr(dot + 1, '.') ||
	    strlen(dot + 1) > 3 || !dot[1])))
		return false;
	for (p = name; *p; p++)
		if ((unsigned char)*p >= 0x80 || *p == ' ' ||
		    strchr("+,;=[]\"*/:<>?\\|", *p))
			return false;
	return true;
}

/*
 * One UTF-16 unit of a long name in a generated 8.3 name, or 0 to drop
 * it: spaces and periods go, the characters FAT forbids and NTFS allows
 * become '_', and so does every unit outside ASCII (NTFS generates
 * aliases without extended characters).
 */
static char
short_char(uint32_t c)
{
	if (c >= 0x80)
		return '_';
	if (c == ' ' || c == '.')
		return 0;
	if (strchr("+,;=[]", (int)c))
		return '_';
	return (char)toupper((int)c);
}

/*
 * The checksum Windows puts into an alias after ~4: a 16-bit hash of the
 * long name's UTF-16 units as given, scrambled by multiplication modulo
 * a prime, its four hex digits in reverse order ("SomeStuff.aspx" ->
 * "BC84", as RtlGenerate8dot3Name gives).
 */
static unsigned
short_name_hash(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	uint16_t sum = 0;
	uint32_t t;
	int len;

	while (*p) {
		uint32_t c = utf8_decode(p, &len);

		if (c >= 0x10000) {	/* a surrogate pair: two units */
			sum = (uint16_t)(sum * 0x25 + (0xD800 +
			    ((c - 0x10000) >> 10)));
			c = 0xDC00 + ((c - 0x10000) & 0x3FF);
		}
		sum = (uint16_t)(sum * 0x25 + c);
		p += len;
	}
	t = (uint32_t)sum * 314159269u;
	if (t & 0x80000000u)
		t = 0u - t;		/* the absolute value of a 32-bit int */
	t %= 1000000007u;
	sum = (uint16_t)t;
	return (unsigned)(((sum & 0xF000) >> 12) | ((sum & 0x0F00) >> 4) |
	    ((sum & 0x00F0) << 4) | ((sum & 0x000F) << 12));
}

/* Append the 8.3 form of [p, end) to out (at most max characters). */
static size_t
short_part(const char *p, const char *end, char *out, size_t max)
{
	size_t n = 0;
	int len;

	for (; p < end && *p && n < max; p += len) {
		uint32_t c = utf8_decode((const unsigned char *)p, &len);
		char ch = short_char(c);

		if (!ch)
			continue;
		out[n++] = ch;
		if (c >= 0x10000 && n < max)
			out[n++] = '_';	/* the second unit of a pair */
	}
	out[n] = '\0';
	return n;
}

/*
 * The n-th 8.3 alias candidate, in Windows' own scheme: leading periods
 * skipped, the first six characters of the name (periods other than the
 * last, which starts the extension, and spaces dropped) and "~1" to
 * "~4", then the first two, the hash of the long name and "~1", "~2"...;
 * the extension's first three characters.  So each new name costs a few
 * lookups whatever the folder holds.
 */
void
win_short_name(const char *name, unsigned n, char out[24])
{
	char base[16], ext[8], suffix[12];
	const char *dot, *start = name + strspn(name, ".");
	size_t nb, ne, keep;

	dot = strrchr(start, '.');
	nb = short_part(start, dot ? dot : start + strlen(start), base, 8);
	ne = dot ? short_part(dot + 1, dot + strlen(dot), ext, 3) : 0;
	if (!dot)
		ext[0] = '\0';
	if (nb == 0)
		base[nb++] = '_', base[1] = '\0';
	if (n <= 4) {
		snprintf(suffix, sizeof(suffix), "~%u", n);
		keep = MIN(nb, 6);
	} else {
		/* The first two characters and the hash. */
		snprintf(base + MIN(nb, 2), sizeof(base) - 2, "%04X",
		    short_name_hash(name));
		nb = strlen(base);
		snprintf(suffix, sizeof(suffix), "~%u", n - 4);
		keep = MIN(nb, 8 - strlen(suffix));
	}
	snprintf(out, 24, "%.*s%s%s%s", (int)keep, base, suffix, ne ? "." : "",
	    ext);
}
