/*
 * plan.c - the checks of plan.h.
 *
 * Names are compared the way Windows looks them up: case-insensitively
 * over Unicode (towupper in the C.UTF-8 locale, close to NTFS's $UpCase
 * for the letters package names use).  Aliases are predicted in the order
 * stage creates the files, with the candidates ntfs.c would try.
 */
#include <config.h>

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <wctype.h>

#include "winname.h"
#include "plan.h"

/* A name upper-cased for comparison (UTF-8 in and out). */
static char *
fold(const char *s)
{
	static locale_t loc;
	static bool tried;
	size_t o = 0;
	char *out = xmalloc(strlen(s) * 3 + 1);
	const unsigned char *p = (const unsigned char *)s;
	int len;

	if (!tried) {
		tried = true;
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len), u = c;

		/* NTFS upper-cases the BMP (its $UpCase); anything else, and
		 * bytes that are not UTF-8, compare as they are. */
		if (c < 0x80)
			u = c >= 'a' && c <= 'z' ? c - 32 : c;
		else if (len > 1 && c < 0x10000 && loc)
			u = (uint32_t)towupper_l((wint_t)c, loc);
		if (u >= 0x10000 || (c == 0xfffd && len == 1)) {
			memcpy(out + o, p, (size_t)len);
			o += (size_t)len;
		} else if (u < 0x80) {
			out[o++] = (char)u;
		} else if (u < 0x800) {
			out[o++] = (char)(0xc0 | u >> 6);
			out[o++] = (char)(0x80 | (u & 0x3f));
		} else {
			out[o++] = (char)(0xe0 | u >> 12);
			out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (u & 0x3f));
		}
	}
	out[o] = '\0';
	return out;
}

/* A set of folded names, each with the package file that holds it. */
struct nameset {
	char **key;
	size_t *owner;
	size_t cap, n;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* Index of key in the set, or of the empty slot where it goes. */
static size_t
ns_slot(const struct nameset *s, const char *key)
{
	size_t i = (size_t)hash_str(key) & (s->cap - 1);

	while (s->key[i] && strcmp(s->key[i], key) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static void
ns_add(struct nameset *s, char *key, size_t owner)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct nameset big = { 0 };

		big.cap = s->cap ? s->cap * 2 : 64;
		big.key = xcalloc(big.cap, sizeof(char *));
		big.owner = xcalloc(big.cap, sizeof(size_t));
		for (i = 0; i < s->cap; i++)
			if (s->key[i]) {
				size_t j = ns_slot(&big, s->key[i]);

				big.key[j] = s->key[i];
				big.owner[j] = s->owner[i];
			}
		big.n = s->n;
		free(s->key);
		free(s->owner);
		*s = big;
	}
	i = ns_slot(s, key);
	s->key[i] = key;
	s->owner[i] = owner;
	s->n++;
}

static void
ns_free(struct nameset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->key[i]);
	free(s->key);
	free(s->owner);
}

/* "folder/NAME" keys keep the folders of a package apart in one set. */
static char *
key_of(const char *rel, const char *name)
{
	const char *slash = strrchr(rel, '/');
	char *f = fold(name), *k;

	k = xasprintf("%.*s/%s", slash ? (int)(slash - rel) : 0, rel, f);
	free(f);
	return k;
}

int
plan_name_clashes(const struct pkg *p, bool short_names)
{
	struct nameset s = { 0 };
	size_t i;
	int ret = 0;

	for (i = 0; i < p->nfiles && ret == 0; i++) {
		const char *rel = p->files[i].rel;
		const char *slash = strrchr(rel, '/');
		const char *name = slash ? slash + 1 : rel;
		char *k = key_of(rel, name), alias[24];
		size_t at = s.cap ? ns_slot(&s, k) : 0;
		unsigned n;

		if (s.cap && s.key[at]) {
			const char *other = p->files[s.owner[at]].rel;
			bool is_alias = strcasecmp(strrchr(other, '/') ?
			    strrchr(other, '/') + 1 : other, name) != 0 &&
			    win_is_short_name(name);

			error_set(EEXIST, "%s: %s and %s %s in one NTFS folder; "
			    "nothing was written", p->name, other, rel,
			    is_alias ? "clash (the second name is the 8.3 "
			    "alias the first gets)" : "differ only in case, "
			    "which Windows cannot hold");
			free(k);
			ret = -1;
			break;
		}
		ns_add(&s, k, i);
		if (!short_names || win_is_short_name(name))
			continue;
		/* The alias ntfs.c will give it: the first free candidate. */
		for (n = 1; n < 1000000; n++) {
			win_short_name(name, n, alias);
			k = key_of(rel, alias);
			if (!s.key[ns_slot(&s, k)])
				break;
			free(k);
		}
		ns_add(&s, k, i);
	}
	ns_free(&s);
	return ret;
}
