/*
 * inf-facts.c - what gpupv-prep reads from a parsed INF (inf.c parses):
 * its DriverVer and the WDDM version it hints at, the CopyToVm files a VM
 * needs in System32 and SysWOW64, the service settings of the display
 * driver, and the files it places for a Linux guest (lxss).
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inf.h"

/* AddReg flags (setupapi.h). */
#define FLG_ADDREG_TYPE_MULTI_SZ	0x00010000u
#define FLG_ADDREG_APPEND		0x00000008u
#define FLG_ADDREG_DELVAL		0x00000004u
#define FLG_ADDREG_TYPE_MASK		0xFFFF0001u

static char *driver_ver_of(struct inf *inf, const char *path);

char *
inf_driver_ver(const char *path)
{
	struct inf inf;

	if (inf_load(path, &inf) < 0)
		return NULL;
	return driver_ver_of(&inf, path);
}

/*
 * DriverVer sits in [Version], at the top of every INF: the first 64 KiB
 * (cut at a line end) are parsed first, and the whole file only when that
 * does not answer (no [Version] there, or a %token% from [Strings]).  A
 * display INF runs to megabytes.
 */
#define INF_HEAD	(64 * 1024)

char *
inf_driver_ver_mem(const char *name, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	struct inf inf;
	struct gp_error e;
	size_t cut = len;

	if (len > INF_HEAD) {
		bool wide = len >= 2 && b[0] == 0xff && b[1] == 0xfe;

		for (cut = INF_HEAD; cut > 2; cut--)
			if (b[cut - 1 - wide] == '\n' && (!wide ||
			    (b[cut - 1] == 0 && cut % 2 == 0)))
				break;
		/* The head alone may end mid-line: what it cannot tell,
		 * the whole file answers below. */
		error_try(&e);
		if (cut > 2 && inf_parse(name, buf, cut, &inf) == 0) {
			char *v = driver_ver_of(&inf, name);

			if (v && !strchr(v, '%')) {
				error_end(&e);
				return v;
			}
			free(v);
		}
		error_end(&e);
	}
	if (inf_parse(name, buf, len, &inf) < 0)
		return NULL;
	return driver_ver_of(&inf, name);
}

char *
inf_driver_ver_of(const struct inf *inf)
{
	const struct inf_section *s = inf_section(inf, "Version");
	char *ver = NULL;
	size_t i;

	for (i = 0; s && i < s->n && !ver; i++) {
		const struct inf_line *l = &s->v[i];

		if (l->key && strcasecmp(l->key, "DriverVer") == 0 && l->nf)
			ver = l->nf > 1 ? xasprintf("%s,%s", l->f[0], l->f[1]) :
			    xstrdup(l->f[0]);
	}
	if (ver && !*ver) {
		free(ver);
		ver = NULL;
	}
	return ver;
}

bool
inf_driver_ver_valid(const char *dv)
{
	static const unsigned days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	unsigned m, d, y, part, n = 0;
	const char *p = dv;
	int len;

	if (!dv || sscanf(dv, "%2u/%2u/%4u%n", &m, &d, &y, &len) != 3 ||
	    m < 1 || m > 12 || d < 1 || d > days[m - 1] || y < 1980 ||
	    y > 2999 || !isdigit((unsigned char)dv[len - 1]))
		return false;
	p = dv + len;
	if (!*p)
		return true;
	if (*p++ != ',')
		return false;
	while (*p == ' ')
		p++;
	do {
		if (!isdigit((unsigned char)*p))
			return false;
		for (part = 0; isdigit((unsigned char)*p); p++)
			if ((part = part * 10 + (unsigned)(*p - '0')) > 65535)
				return false;
		n++;
	} while (*p == '.' && *++p && n < 4);
	return !*p && n >= 1;
}

/* DriverVer = date[, version]; frees inf. */
static char *
driver_ver_of(struct inf *inf, const char *path)
{
	char *ver = inf_driver_ver_of(inf);

	inf_free(inf);
	if (!ver)
		error_input(ENOENT, "%s: no DriverVer in [Version]", path);
	return ver;
}

char *
inf_wddm_hint(const char *dv)
{
	const char *comma = dv ? strchr(dv, ',') : NULL;
	unsigned long major;
	char *end;

	if (!comma)
		return NULL;
	while (isspace((unsigned char)*++comma))
		;
	major = strtoul(comma, &end, 10);
	/* 20 and up name the WDDM version: 27 = WDDM 2.7, 31 = WDDM 3.1. */
	if (end == comma || *end != '.' || major < 20 || major > 99)
		return NULL;
	return xasprintf("WDDM %lu.%lu", major / 10, major % 10);
}

static uint32_t
flags_of(const struct inf_line *l)
{
	const char *s = l->nf > 3 ? l->f[3] : "";
	char *end;
	unsigned long v;

	if (!*s)
		return 0;		/* REG_SZ */
	v = strtoul(s, &end, 0);
	return *end ? 0xFFFFFFFFu : (uint32_t)v;
}

/* Kind of a CopyToVm key, from the last component of the subkey. */
static int
copy_kind(const char *subkey, bool *wow64, bool *overwrite)
{
	const char *c = strrchr(subkey, '\\');

	c = c ? c + 1 : subkey;
	if (strncasecmp(c, "CopyToVm", 8) != 0)
		return -1;
	c += 8;
	if (strncasecmp(c, "Overwrite", 9) == 0) {
		*overwrite = true;
		c += 9;
	} else if (strncasecmp(c, "WhenNewer", 9) == 0) {
		*overwrite = false;
		c += 9;
	} else {
		return -1;
	}
	if (strcasecmp(c, "Wow64") == 0)
		*wow64 = true;
	else if (*c == '\0')
		*wow64 = false;
	else
		return -1;
	return 0;
}

struct cv_value {
	char *subkey, *name, *section;
	char **str;
	size_t nstr;
	unsigned line;
};

static void
collect(const struct inf_section *s, struct cv_value **vals, size_t *nv)
{
	size_t i, k;

	for (i = 0; i < s->n; i++) {
		const struct inf_line *l = &s->v[i];
		bool wow, ow;
		uint32_t fl;
		struct cv_value *cv = NULL;

		if (l->key || l->nf < 3 || strcasecmp(l->f[0], "HKR") != 0 ||
		    copy_kind(l->f[1], &wow, &ow) < 0)
			continue;
		fl = flags_of(l);
		if (fl == 0xFFFFFFFFu || (fl & FLG_ADDREG_DELVAL))
			continue;
		for (k = 0; k < *nv; k++)
			if (!strcasecmp((*vals)[k].subkey, l->f[1]) &&
			    !strcasecmp((*vals)[k].name, l->f[2]) &&
			    !strcmp((*vals)[k].section, s->name))
				cv = &(*vals)[k];
		if (!cv) {
			*vals = xrealloc(*vals, (*nv + 1) * sizeof(**vals));
			cv = &(*vals)[(*nv)++];
			memset(cv, 0, sizeof(*cv));
			cv->subkey = l->f[1];
			cv->name = l->f[2];
			cv->section = s->name;
			cv->line = l->line;
		}
		if (!(fl & FLG_ADDREG_APPEND))
			cv->nstr = 0;
		for (k = 4; k < l->nf; k++) {
			if (!*l->f[k] && (fl & FLG_ADDREG_TYPE_MASK) ==
			    FLG_ADDREG_TYPE_MULTI_SZ && k + 1 == l->nf &&
			    k > 4)
				break;
			cv->str = xrealloc(cv->str, (cv->nstr + 1) *
			    sizeof(char *));
			cv->str[cv->nstr++] = l->f[k];
		}
	}
}

int
inf_copytovm(const struct inf *inf, const char *section,
    struct copytovm **v, size_t *n)
{
	struct cv_value *vals = NULL;
	size_t nv = 0, i, k;

	*v = NULL;
	*n = 0;
	if (section) {
		const struct inf_section *s = inf_section(inf, section);

		if (!s) {
			error_input(ENOENT, "%s: no install section [%s]",
			    inf->path, section);
			return -1;
		}
		for (i = 0; i < s->n; i++) {
			const struct inf_line *l = &s->v[i];

			if (!l->key || strcasecmp(l->key, "AddReg") != 0)
				continue;
			for (k = 0; k < l->nf; k++) {
				const struct inf_section *a =
				    inf_section(inf, l->f[k]);

				if (a)
					collect(a, &vals, &nv);
			}
		}
	} else {
		for (i = 0; i < inf->n; i++)
			collect(&inf->s[i], &vals, &nv);
	}
	for (i = 0; i < nv; i++) {
		struct cv_value *cv = &vals[i];
		struct copytovm c = { 0 };
		const char *base;
		bool dup = false;

		if (cv->nstr == 0 || !*cv->str[0])
			continue;
		copy_kind(cv->subkey, &c.wow64, &c.overwrite);
		base = strrchr(cv->str[0], '\\');
		base = base ? base + 1 : cv->str[0];
		c.src = cv->str[0];
		c.dest = (char *)(cv->nstr > 1 && *cv->str[1] ? cv->str[1] :
		    base);
		if (strchr(c.dest, '\\') || strchr(c.dest, '/') ||
		    !strcmp(c.dest, "..") || !strcmp(c.dest, ".")) {
			warn_add("%s:%u: CopyToVm destination \"%s\" is not a "
			    "plain file name; ignored", inf->path, cv->line,
			    c.dest);
			continue;
		}
		for (k = 0; k < *n; k++) {
			struct copytovm *o = &(*v)[k];

			if (o->wow64 != c.wow64 || strcasecmp(o->dest, c.dest))
				continue;
			dup = true;
			if (strcasecmp(o->src, c.src) || o->overwrite !=
			    c.overwrite)
				warn_add("%s:%u: CopyToVm%s %s from %s conflicts "
				    "with [%s] line %u (from %s); the first is "
				    "used (name the install section with "
				    "--inf-section)", inf->path, cv->line,
				    c.wow64 ? " (Wow64)" : "", c.dest, c.src,
				    o->section, o->line, o->src);
			break;
		}
		if (dup)
			continue;
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		(*v)[*n] = c;
		(*v)[*n].src = xstrdup(c.src);
		(*v)[*n].dest = xstrdup(c.dest);
		(*v)[*n].section = xstrdup(cv->section);
		(*v)[*n].line = cv->line;
		(*n)++;
	}
	for (i = 0; i < nv; i++)
		free(vals[i].str);
	free(vals);
	return 0;
}

void
copytovm_free(struct copytovm *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].src);
		free(v[i].dest);
		free(v[i].section);
	}
	free(v);
}

static uint32_t
num(const char *s, uint32_t def)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return def;
	v = strtoul(s, &end, 0);
	return *end ? def : (uint32_t)v;
}

int
inf_service(const struct inf *inf, const char *name, const char *section,
    struct inf_service *svc)
{
	const char *inst = NULL;
	const struct inf_section *s;
	size_t i, j;

	memset(svc, 0, sizeof(*svc));
	for (i = 0; i < inf->n && !inst; i++) {
		const struct inf_section *c = &inf->s[i];
		size_t sl = section ? strlen(section) : 0;

		/* DDInstall.Services of the chosen install section. */
		if (section && (strncasecmp(c->name, section, sl) != 0 ||
		    strcasecmp(c->name + sl, ".Services") != 0))
			continue;
		for (j = 0; j < c->n && !inst; j++) {
			const struct inf_line *l = &c->v[j];

			if (l->key && !strcasecmp(l->key, "AddService") &&
			    l->nf >= 3 && !strcasecmp(l->f[0], name))
				inst = l->f[2];
		}
	}
	if (!inst || !(s = inf_section(inf, inst)))
		return 0;
	svc->type = num(inf_value(inf, inst, "ServiceType"), 1);
	svc->start = num(inf_value(inf, inst, "StartType"), 3);
	svc->error_control = num(inf_value(inf, inst, "ErrorControl"), 0);
	if (inf_value(inf, inst, "LoadOrderGroup"))
		svc->group = xstrdup(inf_value(inf, inst, "LoadOrderGroup"));
	if (inf_value(inf, inst, "ServiceBinary"))
		svc->binary = xstrdup(inf_value(inf, inst, "ServiceBinary"));
	return 1;
}

void
inf_service_free(struct inf_service *svc)
{
	free(svc->group);
	free(svc->binary);
	memset(svc, 0, sizeof(*svc));
}

/*
 * The files an INF copies into System32\lxss\lib (DestinationDirs value
 * "11,lxss\lib"): WSL's user-mode libraries for Linux guests.  Each line
 * of such a section is "dest[,source[,...]]"; an empty source is the
 * destination name.  Names must be plain file names.
 */
int
inf_lxss_files(const struct inf *inf, struct lxss_file **v, size_t *n)
{
	const struct inf_section *dd = inf_section(inf, "DestinationDirs");
	size_t i, k;

	*v = NULL;
	*n = 0;
	for (i = 0; dd && i < dd->n; i++) {
		const struct inf_line *l = &dd->v[i];
		const struct inf_section *s;

		if (!l->key || l->nf < 2 || strcmp(l->f[0], "11") != 0 ||
		    strcasecmp(l->f[1], "lxss\\lib") != 0)
			continue;
		if (!(s = inf_section(inf, l->key)))
			continue;
		for (k = 0; k < s->n; k++) {
			const struct inf_line *c = &s->v[k];
			const char *dest = c->nf > 0 ? c->f[0] : c->key;
			const char *src = c->nf > 1 && *c->f[1] ? c->f[1] : dest;
			size_t j;

			if (c->key || !dest || !*dest)
				continue;
			if (strpbrk(dest, "/\\") || strpbrk(src, "/\\") ||
			    !strcmp(dest, ".") || !strcmp(dest, "..") ||
			    strlen(dest) > 255 || strlen(src) > 255) {
				error_input(EINVAL, "%s:%u: [%s] names '%.80s', "
				    "which is not a plain file name", inf->path,
				    c->line, s->name, dest);
				lxss_files_free(*v, *n);
				*v = NULL;
				*n = 0;
				return -1;
			}
			for (j = 0; j < *n && strcmp((*v)[j].dest, dest); j++)
				;
			if (j < *n)
				continue;	/* listed twice: the first wins */
			*v = xrealloc(*v, (*n + 1) * sizeof(**v));
			(*v)[*n].dest = xstrdup(dest);
			(*v)[*n].src = xstrdup(src);
			(*v)[*n].line = c->line;
			(*n)++;
		}
	}
	return 0;
}

void
lxss_files_free(struct lxss_file *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].dest);
		free(v[i].src);
	}
	free(v);
}
