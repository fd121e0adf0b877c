/*
 * package.c - driver packages from the host: package folders, folders of
 * them, archives of either (unpacked by unpack.c), host bundles (read by
 * bundle.c), the WSL libraries and a DKMS tree for a Linux guest, and the
 * INF facts recorded about each.
 */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "winname.h"
#include "inf.h"
#include "package-int.h"

/* The WSL library folder: a handful of files, the largest ~15 MB. */
#define WSL_LIB_MAX_FILES	64
#define WSL_LIB_MARKER		"libdxcore.so"


static int64_t
ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (without . and ..). */
static char **
read_names(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;

	*n = 0;
	if (!d) {
		error_set(errno, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (*n >= PKG_MAX_ENTRIES)
			break;
		v = xrealloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	else
		v = xcalloc(1, sizeof(*v));
	return v;
}

static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
has_suffix_ci(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcasecmp(s + a - b, suf) == 0;
}

struct walk {
	struct pkg *p;
	const char *root;		/* realpath of the package folder */
	size_t entries;
};

void
add_file(struct pkg *p, const char *rel, const char *src, bool is_dir,
    const struct stat *st)
{
	struct pkg_file *f;

	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof(*f));
	f = &p->files[p->nfiles++];
	memset(f, 0, sizeof(*f));
	f->rel = xstrdup(rel);
	f->src = xstrdup(src);
	f->is_dir = is_dir;
	f->size = is_dir ? 0 : (uint64_t)st->st_size;
	f->mtime_ns = ts_ns(&st->st_mtim);
	if (!is_dir)
		p->bytes += f->size;
}

static int
walk_dir(struct walk *w, const char *dir, const char *rel, unsigned depth)
{
	char **names;
	size_t n, i;
	int ret = 0;

	if (depth > PKG_MAX_DEPTH) {
		error_input(ELOOP, "package %s: %s: nested deeper than %d folders",
		    w->p->name, rel, PKG_MAX_DEPTH);
		return -1;
	}
	names = read_names(dir, &n);
	if (!names)
		return -1;
	for (i = 0; i < n && ret == 0; i++) {
		char *full = path_join(dir, names[i]);
		char *r = *rel ? xasprintf("%s/%s", rel, names[i]) :
		    xstrdup(names[i]);
		struct stat st;

		if (++w->entries > PKG_MAX_ENTRIES) {
			error_input(E2BIG, "package %s: more than %u entries",
			    w->p->name, PKG_MAX_ENTRIES);
			ret = -1;
		} else if (win_name_check(names[i]) < 0) {
			error_input(EINVAL, "package %s: '%s' is not a name Windows "
			    "can hold (reserved device name, a character among "
			    "<>:\"\\|?*, or a trailing dot or space)",
			    w->p->name, r);
			ret = -1;
		} else if (lstat(full, &st) < 0) {
			error_set(errno, "%s: %s", full, strerror(errno));
			ret = -1;
		} else if (S_ISLNK(st.st_mode)) {
			/* Followed only to a file inside the package. */
			char *t = realpath(full, NULL);
			size_t rl = strlen(w->root);

			if (!t || strncmp(t, w->root, rl) != 0 || t[rl] != '/' ||
			    stat(t, &st) < 0 || !S_ISREG(st.st_mode)) {
				error_input(EXDEV, "package %s: '%s' is a link that "
				    "points out of the package folder (or not to "
				    "a file); refused", w->p->name, r);
				ret = -1;
			} else {
				add_file(w->p, r, t, false, &st);
			}
			free(t);
		} else if (S_ISDIR(st.st_mode)) {
			add_file(w->p, r, full, true, &st);
			ret = walk_dir(w, full, r, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			add_file(w->p, r, full, false, &st);
		} else {
			error_input(EINVAL, "package %s: '%s' is not a regular "
			    "file or folder", w->p->name, r);
			ret = -1;
		}
		free(full);
		free(r);
	}
	free_names(names, n);
	return ret;
}

/* The package's INF: the one its folder is named after, else the first. */
static char *
find_inf(const char *dir, const char *folder)
{
	char **names, *best = NULL;
	size_t n, i;

	names = read_names(dir, &n);
	if (!names)
		return NULL;
	for (i = 0; i < n; i++) {
		char *full;
		struct stat st;
		size_t l = strlen(names[i]);

		if (!has_suffix_ci(names[i], ".inf"))
			continue;
		full = path_join(dir, names[i]);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			if (strncasecmp(folder, names[i], l) == 0 &&
			    (folder[l] == '_' || folder[l] == '\0')) {
				free(best);
				best = xstrdup(names[i]);
				free(full);
				break;
			}
			if (!best)
				best = xstrdup(names[i]);
		}
		free(full);
	}
	free_names(names, n);
	return best;
}

/* "<inf>_<arch>_<16 hex digits>", as DriverStore\\FileRepository names
 * a package folder after its INF. */
static bool
driver_store_name(const char *name, const char *inf)
{
	static const char *const arches[] = { "amd64", "x86", "arm64", "arm",
	    "ia64" };
	size_t n = strlen(inf), i, k;
	const char *a;

	if (strncasecmp(name, inf, n) != 0 || name[n] != '_')
		return false;
	a = name + n + 1;
	for (i = 0; i < ARRAY_SIZE(arches); i++) {
		size_t al = strlen(arches[i]);

		if (strncasecmp(a, arches[i], al) != 0 || a[al] != '_')
			continue;
		for (k = 0; k < 16; k++)
			if (!isxdigit((unsigned char)a[al + 1 + k]))
				break;
		if (k == 16 && !a[al + 17])
			return true;
	}
	return false;
}

static int
add_package(struct pkg_set *set, const char *dir, char *inf)
{
	struct walk w = { 0 };
	struct pkg *p;
	struct gp_error e;
	char *root = realpath(dir, NULL), *infpath;
	size_t i;

	if (!root) {
		free(inf);
		error_set(errno, "%s: %s", dir, strerror(errno));
		return -1;
	}
	set->v = xrealloc(set->v, (set->n + 1) * sizeof(*p));
	p = &set->v[set->n++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(path_basename(root));
	p->inf = inf;
	for (i = 0; i < set->n - 1; i++)
		if (strcasecmp(set->v[i].name, p->name) == 0) {
			error_input(EEXIST, "package %s is given twice", p->name);
			free(root);
			return -1;
		}
	if (win_name_check(p->name) < 0) {
		error_input(EINVAL, "package folder '%s' is not a name Windows can "
		    "hold", p->name);
		free(root);
		return -1;
	}
	infpath = path_join(root, inf);
	p->inf_path = infpath;
	/* An INF that does not parse leaves the version unknown here; the
	 * run that needs the INF reports why. */
	error_try(&e);
	if (pkg_inf(p))
		p->driver_ver = inf_driver_ver_of(p->parsed);
	error_end(&e);
	/* GPU-PV finds the driver in the guest by the host's folder name. */
	if (!driver_store_name(p->name, inf))
		warn_add("package folder '%s' is not named as the host's "
		    "DriverStore names it (%s_<arch>_<16 hex digits>): the "
		    "guest looks for the host's exact folder name, so stage "
		    "the folder from the host's DriverStore\\FileRepository",
		    p->name, inf);
	if (p->driver_ver && !inf_driver_ver_valid(p->driver_ver))
		warn_add("%s: DriverVer '%s' is not MM/DD/YYYY,a.b.c.d: the "
		    "Hyper-V script cannot compare it with the host's driver",
		    p->inf_path, p->driver_ver);
	w.p = p;
	w.root = root;
	i = (size_t)walk_dir(&w, root, "", 0);
	free(root);
	return (int)i;
}

/* dir is a package, or holds packages (searched two levels down). */
static int
collect_dir(struct pkg_set *set, const char *dir, unsigned depth,
    bool *found)
{
	char *real = realpath(dir, NULL), *inf, **names;
	size_t n, i;
	int ret = 0;

	if (!real) {
		error_set(errno, "%s: %s", dir, strerror(errno));
		return -1;
	}
	inf = find_inf(real, path_basename(real));
	if (inf) {
		*found = true;
		ret = add_package(set, real, inf);
		free(real);
		return ret;
	}
	if (depth >= 2 || !(names = read_names(real, &n))) {
		free(real);
		return depth >= 2 ? 0 : -1;
	}
	for (i = 0; i < n && ret == 0; i++) {
		char *full = path_join(real, names[i]);
		struct stat st;

		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
			ret = collect_dir(set, full, depth + 1, found);
		free(full);
	}
	free_names(names, n);
	free(real);
	return ret;
}



/*
 * The host's WSL libraries: the regular files of dir (no links, no
 * folders), names a Linux folder can hold.
 */
static int
load_wsl_lib(struct pkg_set *set, const char *arg, const char *dir)
{
	struct pkg *p;
	char **names;
	size_t n, i;

	if (set->wsl_lib) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: a second set of WSL "
		    "libraries; give one per run", arg);
		return -1;
	}
	if (!(names = read_names(dir, &n)))
		return -1;
	p = set->wsl_lib = xcalloc(1, sizeof(*p));
	p->name = xstrdup("wsl-lib");
	for (i = 0; i < n; i++) {
		char *full = path_join(dir, names[i]);
		const char *c;
		struct stat st;

		for (c = names[i]; *c && (unsigned char)*c >= 0x20 && *c != 0x7f &&
		    *c != '\\'; c++)
			;
		if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode) || *c ||
		    strlen(names[i]) > 255) {
			warn_add("%s: %s is not a plain file; not placed", arg,
			    full);
			free(full);
			continue;
		}
		if (p->nfiles >= WSL_LIB_MAX_FILES) {
			free(full);
			free_names(names, n);
			error_input(E2BIG, "%s: more than %d files in the WSL "
			    "library folder", arg, WSL_LIB_MAX_FILES);
			return -1;
		}
		add_file(p, names[i], full, false, &st);
		free(full);
	}
	free_names(names, n);
	return 0;
}

/* A dkms.conf value: PACKAGE_NAME and PACKAGE_VERSION as dkms reads
 * them (KEY=value or KEY="value"), limited to what a folder name in
 * /usr/src and a dkms command line can carry. */
static char *
dkms_value(const char *text, const char *key)
{
	const char *p = text;
	size_t kl = strlen(key);

	while (p && *p) {
		const char *e = strchr(p, '\n'), *v;
		size_t n = e ? (size_t)(e - p) : strlen(p), i;
		char *r;

		while (n && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			v = p + kl + 1;
			n -= kl + 1;
			while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
				n--;
			if (n >= 2 && (*v == '"' || *v == '\'') && v[n - 1] == *v) {
				v++;
				n -= 2;
			}
			if (n == 0 || n > 64)
				return NULL;
			for (i = 0; i < n; i++)
				if (!isalnum((unsigned char)v[i]) &&
				    !strchr("._+-", v[i]))
					return NULL;
			r = xmalloc(n + 1);
			memcpy(r, v, n);
			r[n] = '\0';
			return r;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

int
pkg_load_dkms(struct pkg_set *set, const char *dir)
{
	char *root = realpath(dir, NULL), *conf, *text = NULL;
	struct walk w = { 0 };
	struct stat st;
	int fd = -1, ret = -1;

	if (!root) {
		error_set(errno, "--dkms %s: %s", dir, strerror(errno));
		return -1;
	}
	conf = path_join(root, "dkms.conf");
	if (lstat(conf, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 65536) {
		error_input(ENOENT, "--dkms %s: no dkms.conf (a DKMS source tree "
		    "has one at its top)", dir);
		goto out;
	}
	text = xcalloc(1, (size_t)st.st_size + 1);
	if ((fd = open(conf, O_RDONLY | O_CLOEXEC)) < 0 ||
	    read(fd, text, (size_t)st.st_size) != st.st_size) {
		error_set(errno ? errno : EIO, "%s: cannot read", conf);
		goto out;
	}
	set->dkms_module = dkms_value(text, "PACKAGE_NAME");
	set->dkms_version = dkms_value(text, "PACKAGE_VERSION");
	if (!set->dkms_module || !set->dkms_version) {
		error_input(EINVAL, "%s: PACKAGE_NAME and PACKAGE_VERSION must "
		    "be set, each at most 64 of A-Z a-z 0-9 . _ + -", conf);
		goto out;
	}
	set->dkms = xcalloc(1, sizeof(*set->dkms));
	set->dkms->name = xasprintf("%s-%s", set->dkms_module,
	    set->dkms_version);
	w.p = set->dkms;
	w.root = root;
	ret = walk_dir(&w, root, "", 0);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(conf);
	free(root);
	return ret;
}

/* Whether dir is a copy of the host's WSL library folder. */
static bool
is_wsl_lib(const char *dir)
{
	char *m = path_join(dir, WSL_LIB_MARKER);
	struct stat st;
	bool r = lstat(m, &st) == 0 && S_ISREG(st.st_mode);

	free(m);
	return r;
}

int
pkg_collect(struct pkg_set *set, const char *arg)
{
	struct stat st;
	bool found = false;
	const char *dir = arg;

	if (stat(arg, &st) < 0) {
		error_set(errno, "%s: %s", arg, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		const char *t = getenv("TMPDIR");
		char *tmp = xasprintf("%s/gpupv-prep-pkg.XXXXXX",
		    t && *t ? t : "/tmp");

		if (!mkdtemp(tmp)) {
			error_set(errno, "%s: %s", tmp, strerror(errno));
			free(tmp);
			return -1;
		}
		set->tmpdirs = xrealloc(set->tmpdirs, (set->ntmp + 1) *
		    sizeof(char *));
		set->tmpdirs[set->ntmp++] = tmp;
		if (unpack(arg, tmp) < 0)
			return -1;
		dir = tmp;
	}
	if (read_bundle(set, arg, dir) < 0)
		return -1;
	if (set->bundle.wsl_lib && !set->wsl_lib &&
	    load_wsl_lib(set, arg, set->bundle.wsl_lib) < 0)
		return -1;
	if (!set->bundle.present && is_wsl_lib(dir))
		return load_wsl_lib(set, arg, dir);
	if (collect_dir(set, dir, 0, &found) < 0) {
		error_prefix("%s", arg);
		return -1;
	}
	if (!found) {
		error_input(ENOENT, "%s: no driver package in it (a package is a "
		    "folder with an .inf file, as in DriverStore\\FileRepository)",
		    arg);
		return -1;
	}
	return set->bundle.present ? bundle_roles(set, arg) : 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

const struct inf *
pkg_inf(const struct pkg *cp)
{
	struct pkg *p = (struct pkg *)cp;	/* a cache, not a change */
	struct inf *inf;

	if (p->parsed)
		return p->parsed;
	if (!p->inf_path) {
		error_input(ENOENT, "package %s has no INF", p->name);
		return NULL;
	}
	inf = xcalloc(1, sizeof(*inf));
	if (inf_load(p->inf_path, inf) < 0) {
		free(inf);
		return NULL;
	}
	p->parsed = inf;
	return inf;
}

static void
pkg_free(struct pkg *p)
{
	size_t i;

	for (i = 0; i < p->nfiles; i++) {
		free(p->files[i].rel);
		free(p->files[i].src);
	}
	free(p->files);
	free(p->name);
	free(p->inf);
	free(p->inf_path);
	if (p->parsed) {
		inf_free(p->parsed);
		free(p->parsed);
	}
	free(p->driver_ver);
	free(p->gpu);
}

void
pkg_set_free(struct pkg_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		pkg_free(&set->v[i]);
	free(set->v);
	for (i = 0; i < set->ntmp; i++) {
		nftw(set->tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(set->tmpdirs[i]);
	}
	free(set->tmpdirs);
	if (set->wsl_lib) {
		pkg_free(set->wsl_lib);
		free(set->wsl_lib);
	}
	if (set->extras) {
		pkg_free(set->extras);
		free(set->extras);
	}
	if (set->dkms) {
		pkg_free(set->dkms);
		free(set->dkms);
	}
	free(set->dkms_module);
	free(set->dkms_version);
	bundle_free(&set->bundle);
	memset(set, 0, sizeof(*set));
}

