/*
 * bundle.c - a bundle made by the host collector (gpupv-bundle.json at its
 * root): the GPUs, each one's packages with their roles, the files of its
 * driver outside the store, the registry exports and the host's settings.
 * Everything in it is checked against the folder it came in: a name must
 * be a package of the bundle, a path must stay inside it.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "json.h"
#include "winname.h"
#include "package-int.h"

#define BUNDLE_JSON		"gpupv-bundle.json"
/* Caps on a bundle's description: the collector writes a few KiB. */
#define BUNDLE_JSON_MAX		(1024 * 1024)
#define BUNDLE_MAX_GPUS		64
#define BUNDLE_MAX_REG		64
#define BUNDLE_MAX_PKGS		256	/* per GPU */
#define BUNDLE_MAX_EXTRAS	1024	/* per GPU */

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

int
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

void
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
int
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
