/*
 * hive.c - registry hives through hivex (the only file that includes
 * hivex.h).  hivex opens file paths only, so hives are copied out of NTFS
 * first and the edited hive is committed to a new host file, which the
 * caller writes back through the session.  There is no CurrentControlSet
 * in an offline hive; callers resolve Select\Current.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <hivex.h>

#include "hive.h"

/* Cap on key path depth (Windows allows 512 levels). */
#define HIVE_MAX_DEPTH 512

/*
 * hivex writes a key's values only all together (hivex_node_set_value
 * too rewrites every value of the key, and never reuses the cells it
 * frees), so setting a display-class key's 150 values one by one would
 * write 150 x 150 cells.  Edits of one key are therefore gathered here,
 * read through, and written with one hivex_node_set_values when another
 * key is touched, before any other operation, and at commit.
 */
struct pending {
	char *key;			/* NULL: nothing gathered */
	hive_node_h node;
	char **names;
	struct hive_val *vals;
	size_t n;
	bool dirty;
};

struct hive {
	hive_h *h;
	char *name;
	struct pending p;
};

static int flush(hive *h);

const char *
hive_name(const hive *h)
{
	return h->name;
}

hive *
hive_open(const char *path, const char *name, int how)
{
	hive *h;
	hive_h *x = hivex_open(path, how & HIVE_WRITE ? HIVEX_OPEN_WRITE : 0);
	int e;

	if (!x) {
		e = errno;
		error_setc(how & HIVE_HOST ? GP_EXIT_INPUT : GP_EXIT_CORRUPT, e,
		    "%s: not a registry hive hivex can read: %s", name,
		    strerror(e));
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->h = x;
	h->name = xstrdup(name);
	return h;
}

static void vals_free(char **names, struct hive_val *vals, size_t n);

static void
pending_drop(hive *h)
{
	vals_free(h->p.names, h->p.vals, h->p.n);
	free(h->p.key);
	memset(&h->p, 0, sizeof(h->p));
}

void
hive_close(hive *h)
{
	if (!h)
		return;
	pending_drop(h);	/* not committed: nothing to write */
	hivex_close(h->h);
	free(h->name);
	free(h);
}

int
hive_commit(hive *h, const char *path)
{
	if (flush(h) < 0)
		return -1;
	if (hivex_commit(h->h, path, 0) < 0) {
		error_set(errno, "%s: cannot write the edited hive to %s: %s",
		    h->name, path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Find the node at key: 1 with *out set, 0 when a component is missing
 * (errno ENOENT, nothing recorded; with found, how many components were
 * found), -1 with an error when the hive cannot be read on the way.
 */
static int
walk(hive *h, const char *key, hive_node_h *out, size_t *found)
{
	hive_node_h node = hivex_root(h->h);
	char *copy = xstrdup(key), *comp, *save = NULL;
	size_t depth = 0;
	int ret = 1;

	if (found)
		*found = 0;
	for (comp = strtok_r(copy, "\\", &save); node && comp;
	    comp = strtok_r(NULL, "\\", &save)) {
		hive_node_h child;

		if (++depth > HIVE_MAX_DEPTH) {
			error_set(EINVAL, "%s: key path %s is too deep",
			    h->name, key);
			ret = -1;
			break;
		}
		errno = 0;
		/* hivex matches child names without regard to case. */
		child = hivex_node_get_child(h->h, node, comp);
		if (!child) {
			if (errno) {
				error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot "
				    "read key %s: %s", h->name, key,
				    strerror(errno));
				ret = -1;
			} else {
				errno = ENOENT;
				ret = 0;
			}
			break;
		}
		node = child;
		if (found)
			*found = depth;
	}
	free(copy);
	*out = ret > 0 ? node : 0;
	return ret;
}

int
hive_key_exists(hive *h, const char *key)
{
	if (flush(h) < 0)
		return -1;
	hive_node_h node;

	return walk(h, key, &node, NULL);
}

/* The values of node; with check set, refuse a node holding a value
 * that hivex would rewrite wrongly. */
static int
node_values(hive *h, hive_node_h node, const char *key, char ***names,
    struct hive_val **vals, size_t *n)
{
	hive_value_h *vv = hivex_node_values(h->h, node);
	size_t i;

	*names = NULL;
	*vals = NULL;
	*n = 0;
	if (!vv) {
		error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read the values "
		    "of %s: %s", h->name, key, strerror(errno));
		return -1;
	}
	for (i = 0; vv[i]; i++)
		;
	*names = xcalloc(i + 1, sizeof(char *));
	*vals = xcalloc(i + 1, sizeof(struct hive_val));
	for (i = 0; vv[i]; i++) {
		hive_type t;
		size_t len;
		char *k = hivex_value_key(h->h, vv[i]);
		char *d = k ? hivex_value_value(h->h, vv[i], &t, &len) : NULL;

		if (!d) {
			int e = errno;

			free(k);
			error_setc(GP_EXIT_CORRUPT, e, "%s: cannot read a value "
			    "of %s: %s", h->name, key, strerror(e));
			hive_strv_free(*names, *n);
			for (size_t j = 0; j < *n; j++)
				hive_val_free(&(*vals)[j]);
			free(*vals);
			free(vv);
			*names = NULL;
			*vals = NULL;
			*n = 0;
			return -1;
		}
		(*names)[i] = k;
		(*vals)[i].type = (uint32_t)t;
		(*vals)[i].data = (uint8_t *)d;
		(*vals)[i].len = len;
		*n = i + 1;
	}
	free(vv);
	return 0;
}

void
hive_val_free(struct hive_val *v)
{
	free(v->data);
	memset(v, 0, sizeof(*v));
}

bool
hive_val_eq(const struct hive_val *a, const struct hive_val *b)
{
	return a->type == b->type && a->len == b->len &&
	    (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

void
hive_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void
vals_free(char **names, struct hive_val *vals, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		hive_val_free(&vals[i]);
	free(vals);
	hive_strv_free(names, n);
}

static ssize_t
pending_find(const hive *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->p.n; i++)
		if (strcasecmp(h->p.names[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

int
hive_get(hive *h, const char *key, const char *name, struct hive_val *v)
{
	hive_node_h node;
	hive_value_h val;
	hive_type t;
	size_t len;
	char *d;
	ssize_t i;
	int r;

	memset(v, 0, sizeof(*v));
	/* A key being edited answers from its gathered values. */
	if (h->p.key && strcasecmp(h->p.key, key) == 0) {
		if ((i = pending_find(h, name)) < 0)
			return 0;
		v->type = h->p.vals[i].type;
		v->len = h->p.vals[i].len;
		v->data = xmalloc(v->len + 1);
		if (v->len)
			memcpy(v->data, h->p.vals[i].data, v->len);
		return 1;
	}
	if ((r = walk(h, key, &node, NULL)) <= 0)
		return r;
	errno = 0;
	val = hivex_node_get_value(h->h, node, name);
	if (!val) {
		if (errno) {
			error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read "
			    "%s\\%s: %s", h->name, key, name, strerror(errno));
			return -1;
		}
		return 0;
	}
	d = hivex_value_value(h->h, val, &t, &len);
	if (!d) {
		error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read %s\\%s: %s",
		    h->name, key, name, strerror(errno));
		return -1;
	}
	v->type = (uint32_t)t;
	v->data = (uint8_t *)d;
	v->len = len;
	return 1;
}

int
hive_mkkey(hive *h, const char *key, char **created)
{
	hive_node_h node = hivex_root(h->h);
	char *copy = xstrdup(key), *comp, *save = NULL;
	size_t depth = 0, used = 0;
	int ret = -1;

	*created = NULL;
	/* The key being edited exists: nothing to make, nothing to write
	 * yet (the registry layer makes sure of the key before each value). */
	if (h->p.key && strcasecmp(h->p.key, key) == 0) {
		free(copy);
		return 0;
	}
	if (flush(h) < 0) {
		free(copy);
		return -1;
	}
	for (comp = strtok_r(copy, "\\", &save); comp;
	    comp = strtok_r(NULL, "\\", &save)) {
		hive_node_h child;

		if (++depth > HIVE_MAX_DEPTH) {
			error_set(EINVAL, "%s: key path %s is too deep",
			    h->name, key);
			goto out;
		}
		/* The path so far, for the report of what was created. */
		used = (size_t)(comp - copy) + strlen(comp);
		errno = 0;
		child = hivex_node_get_child(h->h, node, comp);
		if (!child && errno) {
			error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read "
			    "key %s: %s", h->name, key, strerror(errno));
			goto out;
		}
		if (!child) {
			if (strlen(comp) > 255) {
				error_set(EINVAL, "%s: key name %.40s... is "
				    "longer than the 255 characters Windows "
				    "allows", h->name, comp);
				goto out;
			}
			/* New keys inherit the parent's security. */
			child = hivex_node_add_child(h->h, node, comp);
			if (!child) {
				error_set(errno, "%s: cannot create key %s: %s",
				    h->name, key, strerror(errno));
				goto out;
			}
			if (!*created)
				*created = xasprintf("%.*s", (int)used, key);
		}
		node = child;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

/* Guard against hivex rewriting a big-data value as one cell. */
static int
check_cells(hive *h, const char *key, char **names, struct hive_val *vals,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (vals[i].len > HIVE_MAX_CELL_DATA) {
			error_set(ENOTSUP, "%s: %s\\%s holds %zu bytes; hivex "
			    "would store it as one cell, which Windows cannot "
			    "read (values over %u bytes need a big-data "
			    "record), so the key is left unchanged", h->name,
			    key, *names[i] ? names[i] : "(default)",
			    vals[i].len, HIVE_MAX_CELL_DATA);
			return -1;
		}
	return 0;
}

/* Gather key's values (flushing another key's first). */
static int
pending_load(hive *h, const char *key)
{
	hive_node_h node;
	char **names;
	struct hive_val *vals;
	size_t n, i, k;

	if (h->p.key && strcasecmp(h->p.key, key) == 0)
		return 0;
	if (flush(h) < 0)
		return -1;
	if (walk(h, key, &node, NULL) <= 0) {
		error_set(ENOENT, "%s: key %s does not exist", h->name, key);
		return -1;
	}
	if (node_values(h, node, key, &names, &vals, &n) < 0)
		return -1;
	/* A name stored twice keeps its first value, as Windows reads it. */
	for (i = k = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < k && strcasecmp(names[j], names[i]); j++)
			;
		if (j < k) {
			free(names[i]);
			hive_val_free(&vals[i]);
			h->p.dirty = true;
			continue;
		}
		names[k] = names[i];
		vals[k++] = vals[i];
	}
	h->p.key = xstrdup(key);
	h->p.node = node;
	h->p.names = names;
	h->p.vals = vals;
	h->p.n = k;
	return 0;
}

/* Write the gathered key's values, when they changed, in one go. */
static int
flush(hive *h)
{
	hive_set_value *sv;
	size_t i;
	int ret = 0;

	if (!h->p.key)
		return 0;
	if (h->p.dirty) {
		if (check_cells(h, h->p.key, h->p.names, h->p.vals, h->p.n) < 0) {
			pending_drop(h);
			return -1;
		}
		sv = xcalloc(h->p.n + 1, sizeof(*sv));
		for (i = 0; i < h->p.n; i++) {
			sv[i].key = h->p.names[i];
			sv[i].t = (hive_type)h->p.vals[i].type;
			sv[i].len = h->p.vals[i].len;
			sv[i].value = (char *)h->p.vals[i].data;
		}
		if (hivex_node_set_values(h->h, h->p.node, h->p.n, sv, 0) < 0) {
			error_set(errno, "%s: cannot write the values of %s: %s",
			    h->name, h->p.key, strerror(errno));
			ret = -1;
		}
		free(sv);
	}
	pending_drop(h);
	return ret;
}

int
hive_set(hive *h, const char *key, const char *name, const struct hive_val *v)
{
	ssize_t i;
	uint8_t *copy;

	if (v->len > HIVE_MAX_CELL_DATA)
		return check_cells(h, key, (char **)&name,
		    (struct hive_val *)v, 1);
	if (pending_load(h, key) < 0)
		return -1;
	/* A key holding a value hivex would rewrite wrongly is refused
	 * before it is touched. */
	if (check_cells(h, key, h->p.names, h->p.vals, h->p.n) < 0) {
		pending_drop(h);
		return -1;
	}
	i = pending_find(h, name);
	if (i >= 0 && hive_val_eq(&h->p.vals[i], v))
		return 0;		/* already so: nothing to write */
	copy = xmalloc(v->len + 1);
	if (v->len)
		memcpy(copy, v->data, v->len);
	if (i < 0) {
		h->p.names = xrealloc(h->p.names, (h->p.n + 1) *
		    sizeof(char *));
		h->p.vals = xrealloc(h->p.vals, (h->p.n + 1) *
		    sizeof(struct hive_val));
		h->p.names[h->p.n] = xstrdup(name);
		i = (ssize_t)h->p.n++;
	} else {
		hive_val_free(&h->p.vals[i]);	/* the stored spelling stays */
	}
	h->p.vals[i].type = v->type;
	h->p.vals[i].data = copy;
	h->p.vals[i].len = v->len;
	h->p.dirty = true;
	return 0;
}

int
hive_delete_value(hive *h, const char *key, const char *name)
{
	ssize_t i;

	if (pending_load(h, key) < 0)
		return -1;
	if ((i = pending_find(h, name)) < 0)
		return 0;		/* nothing to delete */
	if (check_cells(h, key, h->p.names, h->p.vals, h->p.n) < 0) {
		pending_drop(h);
		return -1;
	}
	free(h->p.names[i]);
	hive_val_free(&h->p.vals[i]);
	memmove(h->p.names + i, h->p.names + i + 1,
	    (h->p.n - (size_t)i - 1) * sizeof(char *));
	memmove(h->p.vals + i, h->p.vals + i + 1,
	    (h->p.n - (size_t)i - 1) * sizeof(struct hive_val));
	h->p.n--;
	h->p.dirty = true;
	return 0;
}

int
hive_delete_key(hive *h, const char *key)
{
	hive_node_h node;
	int r;

	if (flush(h) < 0)
		return -1;
	if ((r = walk(h, key, &node, NULL)) <= 0)
		return r;
	if (node == hivex_root(h->h)) {
		error_set(EINVAL, "%s: the root key cannot be deleted",
		    h->name);
		return -1;
	}
	if (hivex_node_delete_child(h->h, node) < 0) {
		error_set(errno, "%s: cannot delete key %s: %s", h->name, key,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
hive_list(hive *h, const char *key, char ***subkeys, size_t *nsub,
    char ***names, struct hive_val **vals, size_t *nval)
{
	hive_node_h node, *kids;
	size_t i;
	int r;

	*subkeys = NULL;
	*nsub = 0;
	*names = NULL;
	*vals = NULL;
	*nval = 0;
	if (flush(h) < 0)
		return -1;
	if ((r = walk(h, key, &node, NULL)) <= 0)
		return r;
	kids = hivex_node_children(h->h, node);
	if (!kids) {
		error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read the subkeys "
		    "of %s: %s", h->name, key, strerror(errno));
		return -1;
	}
	for (i = 0; kids[i]; i++)
		;
	*subkeys = xcalloc(i + 1, sizeof(char *));
	for (i = 0; kids[i]; i++) {
		char *nm = hivex_node_name(h->h, kids[i]);

		if (!nm) {
			error_setc(GP_EXIT_CORRUPT, errno, "%s: cannot read a "
			    "subkey name of %s", h->name, key);
			free(kids);
			hive_strv_free(*subkeys, *nsub);
			*subkeys = NULL;
			*nsub = 0;
			return -1;
		}
		(*subkeys)[(*nsub)++] = nm;
	}
	free(kids);
	if (node_values(h, node, key, names, vals, nval) < 0) {
		hive_strv_free(*subkeys, *nsub);
		*subkeys = NULL;
		*nsub = 0;
		return -1;
	}
	return 1;
}

char *
gp_hive_get_string(const char *hive_path, const char *key, const char *value)
{
	hive *h = hive_open(hive_path, hive_path, HIVE_READ);
	hive_node_h node;
	hive_value_h val;
	char *out = NULL;
	int e;

	if (!h)
		return NULL;
	if (walk(h, key, &node, NULL) <= 0)
		goto out;
	errno = 0;
	val = hivex_node_get_value(h->h, node, value);
	if (!val) {
		if (!errno)
			errno = ENOENT;
		goto out;
	}
	out = hivex_value_string(h->h, val);
	if (!out) {
		e = errno;
		error_set(e, "%s: %s\\%s is not a string value", hive_path,
		    key, value);
	}
out:
	e = errno;
	hive_close(h);
	errno = e;
	return out;
}
