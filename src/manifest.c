/*
 * manifest.c - HostDriverStore\gpupv-prep.json: what gpupv-prep staged, so
 * that a re-run can tell it has nothing to do, a newer package can replace
 * the one it staged, and remove/verify know their files.
 *
 * {"format": 1, "tool": "gpupv-prep", "version": "...",
 *  "packages": [{"name", "inf", "driver_ver", "staged_at", "role"
 *                (from a bundle: device, companion, extension, component),
 *                "gpu" (its GPU's instance path), "bytes",
 *                "files": [{"path", "dir": true} |
 *                          {"path", "size", "mtime_ns", "sha256"}]}],
 *  "host": {"vm_name", "gpu", "gpu_name", "hardware_id", "dda",
 *           "low_mmio_mb", "high_mmio_mb", "host_build"},
 *  "registry": [{"op": "created"|"deleted"|"value", "hive", "key",
 *                "name", "old": {"type", "hex"} | null, "origin",
 *                "values": "recorded" (created keys whose values have
 *                records of their own)}],
 *  "system_files": [{"dest", "package", "source", "size", "sha256",
 *                    "backup", "link" (Linux guests: a symbolic link
 *                    to this name; Windows: a DriverStore junction to
 *                    this path, source "junction", sha256 of the path;
 *                    absent otherwise)}]}
 * "host" (optional) keeps what the sidecar script needs from the run;
 * "registry" and "system_files" what remove undoes.  In a Linux guest the
 * manifest is /usr/lib/wsl/gpupv-prep.json, its system files the
 * /usr/lib/wsl/lib libraries and links and the loader and first-boot
 * files (package "", source "gpupv-prep": generated).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>

#include "json.h"
#include "winname.h"
#include "manifest-int.h"

#define MANIFEST_FORMAT 1
/* An instance path is at most a few hundred characters. */
#define MANIFEST_MAX_GPU 1024

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void
host_parse(const struct jv *o, struct host_cfg *h)
{
	if (!o || o->t != JV_OBJ)
		return;
	h->vm_name = dup_or_null(jv_str(o, "vm_name"));
	h->gpu = dup_or_null(jv_str(o, "gpu"));
	h->gpu_name = dup_or_null(jv_str(o, "gpu_name"));
	h->hardware_id = dup_or_null(jv_str(o, "hardware_id"));
	h->dda = dup_or_null(jv_str(o, "dda"));
	h->low_mmio_mb = (uint64_t)MAX(jv_int(o, "low_mmio_mb", 0), 0);
	h->high_mmio_mb = (uint64_t)MAX(jv_int(o, "high_mmio_mb", 0), 0);
	h->host_build = (uint64_t)MAX(jv_int(o, "host_build", 0), 0);
}

static const char *const reg_ops[] = { "created", "deleted", "value" };

static int
hex_decode(const char *s, struct hive_val *v)
{
	size_t n = strlen(s), i;

	if (n % 2)
		return -1;
	v->data = xmalloc(n / 2 + 1);
	v->len = n / 2;
	for (i = 0; i < n / 2; i++) {
		unsigned b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1 ||
		    !isxdigit((unsigned char)s[2 * i]) ||
		    !isxdigit((unsigned char)s[2 * i + 1])) {
			hive_val_free(v);
			return -1;
		}
		v->data[i] = (uint8_t)b;
	}
	return 0;
}

static int
reg_parse_all(const struct jv *a, struct manifest *m)
{
	size_t i;

	if (!a)
		return 0;
	if (a->t != JV_ARR)
		return -1;
	m->reg = xcalloc(a->n + 1, sizeof(*m->reg));
	for (i = 0; i < a->n; i++) {
		const struct jv *o = &a->v[i], *old;
		struct man_reg *r = &m->reg[m->nreg];
		const char *op = jv_str(o, "op"), *hv = jv_str(o, "hive");
		const char *key = jv_str(o, "key");
		int k;

		if (!op || !hv || !key)
			return -1;
		for (k = 0; k < 3 && strcmp(op, reg_ops[k]) != 0; k++)
			;
		if (k == 3 || (strcmp(hv, "SYSTEM") != 0 &&
		    strcmp(hv, "SOFTWARE") != 0))
			return -1;
		m->nreg++;
		r->kind = (enum man_reg_kind)k;
		r->hive = xstrdup(hv);
		r->key = xstrdup(key);
		r->origin = dup_or_null(jv_str(o, "origin"));
		r->values_recorded = jv_str(o, "values") &&
		    strcmp(jv_str(o, "values"), "recorded") == 0;
		if (r->kind != MR_VALUE)
			continue;
		if (!jv_str(o, "name"))
			return -1;
		r->name = xstrdup(jv_str(o, "name"));
		old = jv_get(o, "old");
		if (old && old->t == JV_OBJ) {
			const char *hex = jv_str(old, "hex");
			int64_t t = jv_int(old, "type", -1);

			if (!hex || t < 0 || t > 0xFFFFFFFFll ||
			    hex_decode(hex, &r->old) < 0)
				return -1;
			r->old.type = (uint32_t)t;
			r->had_old = true;
		}
	}
	return 0;
}

static int
copies_parse(const struct jv *a, struct manifest *m)
{
	size_t i;

	if (!a)
		return 0;
	if (a->t != JV_ARR)
		return -1;
	m->copies = xcalloc(a->n + 1, sizeof(*m->copies));
	for (i = 0; i < a->n; i++) {
		const struct jv *o = &a->v[i];
		struct man_copy *c = &m->copies[m->ncopies];
		const char *sha = jv_str(o, "sha256");

		if (!jv_str(o, "dest") || !jv_str(o, "package") ||
		    !jv_str(o, "source") || !sha || strlen(sha) != 64 ||
		    jv_int(o, "size", -1) < 0)
			return -1;
		if (jv_str(o, "dest")[0] == '/' ? !linux_copy_ok(jv_str(o,
		    "dest"), jv_str(o, "backup"), jv_str(o, "link")) :
		    jv_str(o, "link") ? !junction_ok(jv_str(o, "dest"),
		    jv_str(o, "link"), jv_str(o, "package"), jv_str(o,
		    "backup")) : !copy_ok(jv_str(o, "dest"), jv_str(o,
		    "backup"))) {
			error_setc(GP_EXIT_CORRUPT, EINVAL, "its system_files[%zu] "
			    "names %s (backup %s), which is no System32, "
			    "SysWOW64 or /usr/lib/wsl file or DriverStore "
			    "junction gpupv-prep places; "
			    "nothing is done "
			    "with it", i, jv_str(o, "dest"), jv_str(o, "backup") ?
			    jv_str(o, "backup") : "none");
			return -1;
		}
		m->ncopies++;
		c->dest = xstrdup(jv_str(o, "dest"));
		c->package = xstrdup(jv_str(o, "package"));
		c->source = xstrdup(jv_str(o, "source"));
		c->size = (uint64_t)jv_int(o, "size", 0);
		memcpy(c->sha256, sha, 65);
		c->backup = dup_or_null(jv_str(o, "backup"));
		c->link = dup_or_null(jv_str(o, "link"));
	}
	return 0;
}

int
manifest_parse(const char *text, size_t len, struct manifest *m)
{
	struct jv *root = jv_parse(text, len);
	const struct jv *pk;
	size_t i, j;

	memset(m, 0, sizeof(*m));
	if (!root || jv_int(root, "format", 0) != MANIFEST_FORMAT ||
	    !(pk = jv_get(root, "packages")) || pk->t != JV_ARR)
		goto bad;
	m->v = xcalloc(pk->n + 1, sizeof(*m->v));
	for (i = 0; i < pk->n; i++) {
		const struct jv *p = &pk->v[i], *files = jv_get(p, "files");
		struct man_pkg *mp = &m->v[m->n];

		if (!jv_str(p, "name") || !files || files->t != JV_ARR)
			goto bad;
		if (win_name_check(jv_str(p, "name")) < 0) {
			error_setc(GP_EXIT_CORRUPT, EINVAL, "its packages[%zu] is "
			    "named '%s', which is no folder name", i,
			    jv_str(p, "name"));
			goto bad;
		}
		m->n++;
		mp->name = xstrdup(jv_str(p, "name"));
		mp->inf = dup_or_null(jv_str(p, "inf"));
		mp->driver_ver = dup_or_null(jv_str(p, "driver_ver"));
		mp->staged_at = dup_or_null(jv_str(p, "staged_at"));
		if ((jv_str(p, "role") && !pkg_role(jv_str(p, "role"))) ||
		    (jv_str(p, "gpu") && strlen(jv_str(p, "gpu")) >
		    MANIFEST_MAX_GPU)) {
			error_setc(GP_EXIT_CORRUPT, EINVAL, "package %s has a "
			    "role or GPU gpupv-prep does not write", mp->name);
			goto bad;
		}
		mp->role = pkg_role(jv_str(p, "role"));
		mp->gpu = dup_or_null(jv_str(p, "gpu"));
		mp->files = xcalloc(files->n + 1, sizeof(*mp->files));
		for (j = 0; j < files->n; j++) {
			const struct jv *f = &files->v[j], *d;
			struct pkg_file *pf = &mp->files[mp->nfiles];
			const char *path = jv_str(f, "path");
			const char *sha = jv_str(f, "sha256");

			if (!path)
				goto bad;
			if (!rel_ok(path)) {
				error_setc(GP_EXIT_CORRUPT, EINVAL, "package %s "
				    "lists '%s', which is no path inside its "
				    "folder", mp->name, path);
				goto bad;
			}
			mp->nfiles++;
			pf->rel = xstrdup(path);
			d = jv_get(f, "dir");
			pf->is_dir = d && d->t == JV_BOOL && d->b;
			if (pf->is_dir)
				continue;
			if (jv_int(f, "size", -1) < 0 || !sha ||
			    strlen(sha) != 64)
				goto bad;
			pf->size = (uint64_t)jv_int(f, "size", 0);
			pf->mtime_ns = jv_int(f, "mtime_ns", 0);
			memcpy(pf->sha256, sha, 65);
			mp->bytes += pf->size;
		}
	}
	host_parse(jv_get(root, "host"), &m->host);
	if (reg_parse_all(jv_get(root, "registry"), m) < 0 ||
	    copies_parse(jv_get(root, "system_files"), m) < 0)
		goto bad;
	jv_free(root);
	return 0;
bad:
	jv_free(root);
	manifest_free(m);
	errno = EINVAL;
	return -1;
}

char *
manifest_format(const struct manifest *m, size_t *len)
{
	char *buf = NULL;
	size_t i, j;
	struct json js;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		abort();
	json_init(&js, f);
	json_obj_begin(&js);
	json_key(&js, "format");
	json_u64(&js, MANIFEST_FORMAT);
	json_key(&js, "tool");
	json_str(&js, "gpupv-prep");
	json_key(&js, "version");
	json_str(&js, gp_version());
	json_key(&js, "packages");
	json_arr_begin(&js);
	for (i = 0; i < m->n; i++) {
		const struct man_pkg *p = &m->v[i];

		json_obj_begin(&js);
		json_key(&js, "name");
		json_str(&js, p->name);
		json_key(&js, "inf");
		json_str(&js, p->inf);
		json_key(&js, "driver_ver");
		json_str(&js, p->driver_ver);
		json_key(&js, "staged_at");
		json_str(&js, p->staged_at);
		if (p->role) {
			json_key(&js, "role");
			json_str(&js, p->role);
		}
		if (p->gpu) {
			json_key(&js, "gpu");
			json_str(&js, p->gpu);
		}
		json_key(&js, "bytes");
		json_u64(&js, p->bytes);
		json_key(&js, "files");
		json_arr_begin(&js);
		for (j = 0; j < p->nfiles; j++) {
			const struct pkg_file *pf = &p->files[j];

			json_obj_begin(&js);
			json_key(&js, "path");
			json_str(&js, pf->rel);
			if (pf->is_dir) {
				json_key(&js, "dir");
				json_bool(&js, true);
			} else {
				json_key(&js, "size");
				json_u64(&js, pf->size);
				json_key(&js, "mtime_ns");
				json_i64(&js, pf->mtime_ns);
				json_key(&js, "sha256");
				json_str(&js, pf->sha256);
			}
			json_obj_end(&js);
		}
		json_arr_end(&js);
		json_obj_end(&js);
	}
	json_arr_end(&js);
	json_key(&js, "host");
	json_obj_begin(&js);
	json_key(&js, "vm_name");
	json_str(&js, m->host.vm_name);
	json_key(&js, "gpu");
	json_str(&js, m->host.gpu);
	json_key(&js, "gpu_name");
	json_str(&js, m->host.gpu_name);
	json_key(&js, "hardware_id");
	json_str(&js, m->host.hardware_id);
	json_key(&js, "dda");
	json_str(&js, m->host.dda);
	json_key(&js, "low_mmio_mb");
	json_u64(&js, m->host.low_mmio_mb);
	json_key(&js, "high_mmio_mb");
	json_u64(&js, m->host.high_mmio_mb);
	json_key(&js, "host_build");
	json_u64(&js, m->host.host_build);
	json_obj_end(&js);
	json_key(&js, "registry");
	json_arr_begin(&js);
	for (i = 0; i < m->nreg; i++) {
		const struct man_reg *r = &m->reg[i];

		json_obj_begin(&js);
		json_key(&js, "op");
		json_str(&js, reg_ops[r->kind]);
		json_key(&js, "hive");
		json_str(&js, r->hive);
		json_key(&js, "key");
		json_str(&js, r->key);
		if (r->kind == MR_VALUE) {
			json_key(&js, "name");
			json_str(&js, r->name);
			json_key(&js, "old");
			if (r->had_old) {
				char *hex = xmalloc(2 * r->old.len + 1);

				for (j = 0; j < r->old.len; j++)
					sprintf(hex + 2 * j, "%02x",
					    r->old.data[j]);
				hex[2 * r->old.len] = '\0';
				json_obj_begin(&js);
				json_key(&js, "type");
				json_u64(&js, r->old.type);
				json_key(&js, "hex");
				json_str(&js, hex);
				json_obj_end(&js);
				free(hex);
			} else {
				json_null(&js);
			}
		}
		json_key(&js, "origin");
		json_str(&js, r->origin);
		if (r->kind == MR_KEY_CREATED && r->values_recorded) {
			json_key(&js, "values");
			json_str(&js, "recorded");
		}
		json_obj_end(&js);
	}
	json_arr_end(&js);
	json_key(&js, "system_files");
	json_arr_begin(&js);
	for (i = 0; i < m->ncopies; i++) {
		const struct man_copy *c = &m->copies[i];

		json_obj_begin(&js);
		json_key(&js, "dest");
		json_str(&js, c->dest);
		json_key(&js, "package");
		json_str(&js, c->package);
		json_key(&js, "source");
		json_str(&js, c->source);
		json_key(&js, "size");
		json_u64(&js, c->size);
		json_key(&js, "sha256");
		json_str(&js, c->sha256);
		json_key(&js, "backup");
		json_str(&js, c->backup);
		if (c->link) {
			json_key(&js, "link");
			json_str(&js, c->link);
		}
		json_obj_end(&js);
	}
	json_arr_end(&js);
	json_obj_end(&js);
	json_end(&js);
	if (fclose(f) != 0)
		abort();
	return buf;
}

void
man_pkg_free(struct man_pkg *p)
{
	size_t j;

	for (j = 0; j < p->nfiles; j++) {
		free(p->files[j].rel);
		free(p->files[j].src);
	}
	free(p->files);
	free(p->name);
	free(p->inf);
	free(p->driver_ver);
	free(p->staged_at);
	free(p->gpu);
	memset(p, 0, sizeof(*p));
}

void
man_reg_free(struct man_reg *r)
{
	free(r->hive);
	free(r->key);
	free(r->name);
	free(r->origin);
	hive_val_free(&r->old);
	memset(r, 0, sizeof(*r));
}

void
man_copy_free(struct man_copy *c)
{
	free(c->dest);
	free(c->package);
	free(c->source);
	free(c->backup);
	free(c->link);
	memset(c, 0, sizeof(*c));
}

bool
manifest_empty(const struct manifest *m)
{
	return m->n == 0 && m->nreg == 0 && m->ncopies == 0;
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		man_pkg_free(&m->v[i]);
	free(m->v);
	for (i = 0; i < m->nreg; i++)
		man_reg_free(&m->reg[i]);
	free(m->reg);
	for (i = 0; i < m->ncopies; i++)
		man_copy_free(&m->copies[i]);
	free(m->copies);
	host_cfg_free(&m->host);
	memset(m, 0, sizeof(*m));
}

struct man_pkg *
manifest_find(struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcasecmp(m->v[i].name, name) == 0)
			return &m->v[i];
	return NULL;
}
