/*
 * package.c - driver packages from the host: folders and archives, and the
 * INF facts recorded about them.
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

#include <archive.h>
#include <archive_entry.h>

#include "json.h"
#include "winname.h"
#include "inf.h"
#include "package.h"

#define BUNDLE_JSON		"gpupv-bundle.json"
/* Caps on a bundle's description: the collector writes a few KiB. */
#define BUNDLE_JSON_MAX		(1024 * 1024)
#define BUNDLE_MAX_GPUS		64
#define BUNDLE_MAX_REG		64
#define BUNDLE_MAX_PKGS		256	/* per GPU */
#define BUNDLE_MAX_EXTRAS	1024	/* per GPU */
/* The WSL library folder: a handful of files, the largest ~15 MB. */
#define WSL_LIB_MAX_FILES	64
#define WSL_LIB_MARKER		"libdxcore.so"

/* Caps on a package tree and an archive's entries: NVIDIA's largest
 * package has a few hundred files, a dozen levels deep. */
#define PKG_MAX_DEPTH	64
#define PKG_MAX_ENTRIES	(1u << 20)
/* Unpacked archives: no driver package comes near 16 GiB, and none
 * compresses 200-fold; past 256 MiB either is taken for a zip bomb. */
#define PKG_MAX_UNPACKED	(16ull << 30)
#define PKG_MAX_RATIO		200
#define PKG_RATIO_AFTER		(256ull << 20)

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

static void
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

static int
mkdirs(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/*
 * Unpack an archive into dest, refusing entries that would land outside
 * it (absolute paths, "..") and links of any kind.
 */
/* A folder's time from its archive entry, set once its contents are in
 * (creating them changed it). */
struct dir_time {
	char *path;
	struct timespec ts;
};

static int
unpack(const char *arch, const char *dest)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct dir_time *dirs = NULL;
	size_t ndirs = 0, count = 0, i;
	uint64_t total = 0, packed = 0;
	struct stat ast;
	int r, ret = -1;

	if (stat(arch, &ast) == 0)
		packed = (uint64_t)ast.st_size;

	archive_read_support_filter_all(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_cab(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_7zip(a);
	if (archive_read_open_filename(a, arch, 64 * 1024) != ARCHIVE_OK) {
		error_input(EINVAL, "%s: not a package folder or an archive that "
		    "can be read (zip, cab, tar, tar.gz): %s", arch,
		    archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		char *rel, *c, *full;
		mode_t type = archive_entry_filetype(e);
		bool bad = false;

		if (++count > PKG_MAX_ENTRIES) {
			error_input(E2BIG, "%s: more than %u entries", arch,
			    PKG_MAX_ENTRIES);
			goto out;
		}
		if (!name || !*name)
			continue;
		rel = xstrdup(name);
		for (c = rel; *c; c++)
			if (*c == '\\')
				*c = '/';
		if (rel[0] == '/' || (isalpha((unsigned char)rel[0]) &&
		    rel[1] == ':'))
			bad = true;
		for (c = rel; !bad && c; c = strchr(c, '/')) {
			if (*c == '/')
				c++;
			if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || !c[2]))
				bad = true;
		}
		if (bad || archive_entry_hardlink(e) || archive_entry_symlink(e) ||
		    type == AE_IFLNK) {
			error_input(EXDEV, "%s: entry '%s' %s; refused", arch, name,
			    bad ? "leaves the archive's root" : "is a link");
			free(rel);
			goto out;
		}
		full = path_join(dest, rel);
		free(rel);
		if (mkdirs(full) < 0) {
			error_set(errno, "%s: %s", full, strerror(errno));
			free(full);
			goto out;
		}
		if (type == AE_IFDIR) {
			if (mkdir(full, 0700) < 0 && errno != EEXIST) {
				error_set(errno, "%s: %s", full, strerror(errno));
				free(full);
				goto out;
			}
			if (archive_entry_mtime_is_set(e)) {
				dirs = xrealloc(dirs, (ndirs + 1) * sizeof(*dirs));
				dirs[ndirs].path = xstrdup(full);
				dirs[ndirs].ts.tv_sec = archive_entry_mtime(e);
				dirs[ndirs++].ts.tv_nsec =
				    archive_entry_mtime_nsec(e);
			}
		} else if (type == AE_IFREG) {
			int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC |
			    O_CLOEXEC | O_NOFOLLOW, 0600);
			const void *buf;
			size_t len;
			la_int64_t off;
			struct timespec ts[2];

			if (fd < 0) {
				error_set(errno, "%s: %s", full, strerror(errno));
				free(full);
				goto out;
			}
			while ((r = archive_read_data_block(a, &buf, &len,
			    &off)) == ARCHIVE_OK) {
				total += len;
				if (total > PKG_MAX_UNPACKED ||
				    (total > PKG_RATIO_AFTER &&
				    total / PKG_MAX_RATIO > packed)) {
					error_input(E2BIG, "%s: entry '%s': the "
					    "archive expands to more than %s; "
					    "refused as a zip bomb", arch, name,
					    total > PKG_MAX_UNPACKED ? "16 GiB" :
					    "200 times its size");
					close(fd);
					free(full);
					goto out;
				}
				if (file_pwrite(fd, buf, len, (uint64_t)off) < 0) {
					error_set(errno, "%s: %s", full,
					    strerror(errno));
					close(fd);
					free(full);
					goto out;
				}
			}
			if (r != ARCHIVE_EOF) {
				error_input(EIO, "%s: entry '%s': %s", arch, name,
				    archive_error_string(a));
				close(fd);
				free(full);
				goto out;
			}
			/* The size the header gives (holes of a sparse
			 * entry) counts against the cap too. */
			if (archive_entry_size(e) > 0) {
				uint64_t sz = (uint64_t)archive_entry_size(e);

				if (sz > PKG_MAX_UNPACKED ||
				    total + sz > 2 * PKG_MAX_UNPACKED) {
					error_input(E2BIG, "%s: entry '%s' claims "
					    "%llu bytes; refused", arch, name,
					    (unsigned long long)sz);
					close(fd);
					free(full);
					goto out;
				}
			}
			/* A size the header does not give (a zip written as a
			 * stream keeps sizes in data descriptors) leaves the
			 * file as long as the data written. */
			if (archive_entry_size_is_set(e) &&
			    ftruncate(fd, (off_t)archive_entry_size(e)) < 0)
				debug("%s: %s", full, strerror(errno));
			ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
			ts[0].tv_nsec = ts[1].tv_nsec =
			    archive_entry_mtime_nsec(e);
			if (archive_entry_mtime_is_set(e))
				futimens(fd, ts);
			close(fd);
		} else {
			error_input(EINVAL, "%s: entry '%s' is not a file or "
			    "folder; refused", arch, name);
			free(full);
			goto out;
		}
		free(full);
	}
	if (r != ARCHIVE_EOF) {
		error_input(EIO, "%s: %s", arch, archive_error_string(a));
		goto out;
	}
	/* Deepest last-listed first, though setting a folder's time does
	 * not change its parent's. */
	for (i = ndirs; i-- > 0;) {
		struct timespec ts[2] = { dirs[i].ts, dirs[i].ts };

		if (utimensat(AT_FDCWD, dirs[i].path, ts,
		    AT_SYMLINK_NOFOLLOW) < 0) {
			error_set(errno, "%s: %s", dirs[i].path,
			    strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < ndirs; i++)
		free(dirs[i].path);
	free(dirs);
	archive_read_free(a);
	return ret;
}

static char *
jdup(const struct jv *o, const char *key)
{
	const char *v = jv_str(o, key);

	return v && *v ? xstrdup(v) : NULL;
}

const char *const pkg_roles[] = { "device", "companion", "extension",
	"component", NULL };

const char *
pkg_role(const char *s)
{
	size_t i;

	for (i = 0; s && pkg_roles[i]; i++)
		if (!strcmp(s, pkg_roles[i]))
			return pkg_roles[i];
	return NULL;
}

static void
bundle_pkg_add(struct bundle *b, const char *folder, const char *role,
    const char *gpu)
{
	b->pkgs = xrealloc(b->pkgs, (b->npkgs + 1) * sizeof(*b->pkgs));
	b->pkgs[b->npkgs++] = (struct bundle_pkg){ .folder = xstrdup(folder),
	    .role = role, .gpu = gpu ? xstrdup(gpu) : NULL };
}

/*
 * A GPU's "extras": [{"file": "extras/System32/NAME", "path":
 * "C:\\Windows\\System32\\NAME"}]: a regular file of the bundle (plain
 * names, no way out of it), from System32 or SysWOW64 and nowhere else.
 */
static int
bundle_gpu_extras(struct bundle *b, const struct jv *g, size_t gi,
    const char *arg, const char *dir)
{
	const struct jv *ex = jv_get(g, "extras");
	size_t i = 0;

	if (!ex)
		return 0;
	if (ex->t != JV_ARR || ex->n > BUNDLE_MAX_EXTRAS)
		goto bad;
	for (i = 0; i < ex->n; i++) {
		const char *f = jv_str(&ex->v[i], "file");
		const char *w = jv_str(&ex->v[i], "path");
		const char *name = w ? strrchr(w, '\\') : NULL, *d;
		char *copy, *c, *save, *src;
		struct stat st;
		bool ok = f && *f && *f != '/' && name && name > w + 3 &&
		    isalpha((unsigned char)w[0]) && w[1] == ':' &&
		    w[2] == '\\' && win_name_check(name + 1) == 0;
		int n = 0;

		for (d = name; ok && d > w + 2 && d[-1] != '\\'; d--)
			;
		/* "X:\ROOT\System32\NAME": exactly three components. */
		ok = ok && d - 1 > w + 3 && memchr(w + 3, '\\',
		    (size_t)(d - 1 - (w + 3))) == NULL &&
		    (!strncasecmp(d, "System32\\", 9) ||
		    !strncasecmp(d, "SysWOW64\\", 9)) && d + 8 == name;
		copy = xstrdup(f ? f : "");
		for (c = strtok_r(copy, "/", &save); ok && c;
		    c = strtok_r(NULL, "/", &save), n++)
			ok = strcmp(c, ".") && strcmp(c, "..") && !strchr(c, '\\')
			    && n < 8;
		free(copy);
		if (!ok)
			goto bad;
		src = xasprintf("%s/%s", dir, f);
		/* Its folders are folders of the bundle, not links out. */
		for (c = src + strlen(dir) + 1; ok && (c = strchr(c, '/'));
		    c++) {
			*c = '\0';
			ok = lstat(src, &st) == 0 && S_ISDIR(st.st_mode);
			*c = '/';
		}
		if (!ok || lstat(src, &st) < 0 || !S_ISREG(st.st_mode)) {
			error_input(ENOENT, "%s: %s names %s, which the bundle "
			    "does not hold as a file", arg, BUNDLE_JSON, f);
			free(src);
			return -1;
		}
		b->extras = xrealloc(b->extras, (b->nextras + 1) *
		    sizeof(*b->extras));
		b->extras[b->nextras++] = (struct bundle_extra){ .src = src,
		    .wow64 = !strncasecmp(d, "SysWOW64", 8),
		    .name = xstrdup(name + 1),
		    .gpu = jv_str(g, "instance_path") ?
		    xstrdup(jv_str(g, "instance_path")) : NULL };
	}
	return 0;
bad:
	error_input(EINVAL, "%s: %s: gpus[%zu].extras[%zu] is not a file of the "
	    "bundle from X:\\Windows\\System32 or SysWOW64", arg, BUNDLE_JSON,
	    gi, i);
	return -1;
}

/* The packages of GPU g: its "packages" with their roles, or its
 * "package" as the device's. */
static int
bundle_gpu_pkgs(struct bundle *b, const struct jv *g, size_t gi,
    const char *arg)
{
	const struct jv *pk = jv_get(g, "packages");
	const char *gpu = jv_str(g, "instance_path");
	size_t i;

	if (!pk) {
		if (jv_str(g, "package"))
			bundle_pkg_add(b, jv_str(g, "package"), "device", gpu);
		return 0;
	}
	if (pk->t != JV_ARR || pk->n > BUNDLE_MAX_PKGS)
		goto bad;
	for (i = 0; i < pk->n; i++) {
		const char *f = jv_str(&pk->v[i], "folder");
		const char *role = pkg_role(jv_str(&pk->v[i], "role"));

		if (!f || !*f || strchr(f, '/') || strchr(f, '\\') ||
		    !strcmp(f, ".") || !strcmp(f, "..") || !role)
			goto bad;
		bundle_pkg_add(b, f, role, gpu);
	}
	return 0;
bad:
	error_input(EINVAL, "%s: %s: gpus[%zu].packages is not a list of "
	    "package folders with a role (%s, %s, %s or %s)", arg, BUNDLE_JSON,
	    gi, pkg_roles[0], pkg_roles[1], pkg_roles[2], pkg_roles[3]);
	return -1;
}

/*
 * gpupv-bundle.json, written by the host collector (`host-script`):
 * {"format": 1, "host_build": N, "gpus": [{"name", "instance_path",
 *  "hardware_id", "inf_path", "install_section", "driver_version",
 *  "package", "packages": [{"folder", "role", "driver_ver"}]}],
 *  "reg": ["nvlddmkm.reg"], "wsl_lib": "wsl-lib"}
 * "packages" lists every package the GPU uses with its role (device,
 * companion: named by the device INF's CopyINF, extension, component);
 * without it, "package" is the device's.
 * Returns 0 when dir holds none.
 */
int
bundle_parse(struct bundle *b, const char *text, size_t len, const char *arg,
    const char *dir)
{
	struct jv *root;
	const struct jv *gpus, *g, *reg;
	struct stat st;
	size_t i;
	int ret = -1;

	root = jv_parse(text, len);
	if (!root || root->t != JV_OBJ || jv_int(root, "format", 0) != 1) {
		error_input(EINVAL, "%s: %s is not a format 1 bundle description",
		    arg, BUNDLE_JSON);
		goto out;
	}
	gpus = jv_get(root, "gpus");
	if (!gpus || gpus->t != JV_ARR || gpus->n == 0 ||
	    gpus->n > BUNDLE_MAX_GPUS || (g = &gpus->v[0])->t != JV_OBJ) {
		error_input(EINVAL, "%s: %s lists no GPU (or more than %d)", arg,
		    BUNDLE_JSON, BUNDLE_MAX_GPUS);
		goto out;
	}
	b->present = true;
	b->source = xstrdup(arg);
	b->ngpus = gpus->n;
	b->host.gpu = jdup(g, "instance_path");
	b->host.gpu_name = jdup(g, "name");
	b->host.hardware_id = jdup(g, "hardware_id");
	b->host.host_build = (uint64_t)MAX(jv_int(root, "host_build", 0), 0);
	b->install_section = jdup(g, "install_section");
	b->driver_version = jdup(g, "driver_version");
	for (i = 0; i < gpus->n; i++)
		if (gpus->v[i].t != JV_OBJ ||
		    bundle_gpu_pkgs(b, &gpus->v[i], i, arg) < 0 ||
		    bundle_gpu_extras(b, &gpus->v[i], i, arg, dir) < 0)
			goto out;
	reg = jv_get(root, "reg");
	if (reg && reg->t == JV_ARR) {
		if (reg->n > BUNDLE_MAX_REG) {
			error_input(EINVAL, "%s: %s names more than %d .reg files",
			    arg, BUNDLE_JSON, BUNDLE_MAX_REG);
			goto out;
		}
		b->reg = xcalloc(reg->n + 1, sizeof(char *));
		for (i = 0; i < reg->n; i++) {
			const char *r = reg->v[i].t == JV_STR ? reg->v[i].s : NULL;
			char *rp;

			if (!r || !*r || strchr(r, '/') || strchr(r, '\\') ||
			    strcmp(r, "..") == 0) {
				error_input(EINVAL, "%s: %s: reg entry %zu is not a "
				    "file name in the bundle", arg, BUNDLE_JSON,
				    i);
				goto out;
			}
			rp = xasprintf("%s/%s", dir, r);
			b->reg[b->nreg++] = rp;
			if (lstat(rp, &st) < 0 || !S_ISREG(st.st_mode)) {
				error_input(ENOENT, "%s: %s names %s, which the "
				    "bundle does not hold", arg, BUNDLE_JSON, r);
				goto out;
			}
		}
	}
	b->wsl_lib = jdup(root, "wsl_lib");
	if (b->wsl_lib) {
		char *w = b->wsl_lib;

		if (strchr(w, '/') || strchr(w, '\\') || !strcmp(w, "..") ||
		    !strcmp(w, ".")) {
			error_input(EINVAL, "%s: %s: wsl_lib is not a folder name "
			    "in the bundle", arg, BUNDLE_JSON);
			goto out;
		}
		b->wsl_lib = xasprintf("%s/%s", dir, w);
		free(w);
		if (lstat(b->wsl_lib, &st) < 0 || !S_ISDIR(st.st_mode)) {
			error_input(ENOENT, "%s: %s names the folder %s, which "
			    "the bundle does not hold", arg, BUNDLE_JSON,
			    path_basename(b->wsl_lib));
			goto out;
		}
	}
	ret = 0;
out:
	jv_free(root);
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

static int
read_bundle(struct pkg_set *set, const char *arg, const char *dir)
{
	char *path = xasprintf("%s/%s", dir, BUNDLE_JSON), *text = NULL;
	struct bundle *b = &set->bundle;
	struct stat st;
	int fd = -1, ret = -1;
	ssize_t got;

	if (lstat(path, &st) < 0 && errno == ENOENT) {
		free(path);
		return 0;
	}
	if (b->present) {
		error_setc(GP_EXIT_USAGE, EINVAL, "%s: a second host bundle; "
		    "give one per run",
		    arg);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > BUNDLE_JSON_MAX) {
		error_input(EINVAL, "%s: %s is not a file of at most %d bytes",
		    arg, BUNDLE_JSON, BUNDLE_JSON_MAX);
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (got = read(fd, text, (size_t)st.st_size)) != st.st_size) {
		error_set(errno ? errno : EIO, "%s: %s: cannot read", arg,
		    BUNDLE_JSON);
		goto out;
	}
	ret = bundle_parse(b, text, (size_t)st.st_size, arg, dir);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(path);
	return ret;
}

static void
bundle_free(struct bundle *b)
{
	size_t i;

	for (i = 0; i < b->nreg; i++)
		free(b->reg[i]);
	free(b->reg);
	free(b->source);
	free(b->install_section);
	free(b->driver_version);
	free(b->wsl_lib);
	for (i = 0; i < b->npkgs; i++) {
		free(b->pkgs[i].folder);
		free(b->pkgs[i].gpu);
	}
	free(b->pkgs);
	for (i = 0; i < b->nextras; i++) {
		free(b->extras[i].src);
		free(b->extras[i].name);
		free(b->extras[i].gpu);
	}
	free(b->extras);
	host_cfg_free(&b->host);
	memset(b, 0, sizeof(*b));
}

/* Each package the bundle lists gets its role and GPU; one it lists but
 * does not hold is bad input. */
static int
bundle_roles(struct pkg_set *set, const char *arg)
{
	const struct bundle *b = &set->bundle;
	size_t i, k;

	for (i = 0; i < b->npkgs; i++) {
		for (k = 0; k < set->n; k++)
			if (!strcasecmp(set->v[k].name, b->pkgs[i].folder))
				break;
		if (k == set->n) {
			error_input(ENOENT, "%s: %s lists the package %s, which "
			    "the bundle does not hold", arg, BUNDLE_JSON,
			    b->pkgs[i].folder);
			return -1;
		}
		if (set->v[k].role)
			continue;	/* shared by two GPUs: the first's */
		set->v[k].role = b->pkgs[i].role;
		set->v[k].gpu = b->pkgs[i].gpu ? xstrdup(b->pkgs[i].gpu) :
		    NULL;
	}
	for (i = 0; i < b->nextras; i++) {
		struct stat st;
		char *rel;

		if (!set->extras) {
			set->extras = xcalloc(1, sizeof(*set->extras));
			set->extras->name = xstrdup("extras");
		}
		if (lstat(b->extras[i].src, &st) < 0 || !S_ISREG(st.st_mode)) {
			error_input(ENOENT, "%s: %s: not a file", arg,
			    b->extras[i].src);
			return -1;
		}
		rel = xasprintf("%s/%s", b->extras[i].wow64 ? "SysWOW64" :
		    "System32", b->extras[i].name);
		add_file(set->extras, rel, b->extras[i].src, false, &st);
		free(rel);
	}
	return 0;
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


