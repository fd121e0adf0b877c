/*
 * registry.c - registry changes of a stage run, applied to hives that
 * stage.c copied out of the image, with an undo record for each in the
 * manifest.  What was there before is recorded once, the first time a
 * value changes; keys we create need no record of their values.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "registry.h"

/* Cap on the keys one --copy-key or [-KEY] walks (a display class key
 * has a few hundred; a whole SYSTEM hive about 100000). */
#define COPY_MAX_KEYS	200000u

static bool
key_under(const char *key, const char *top)
{
	size_t n = strlen(top);

	return strncasecmp(key, top, n) == 0 &&
	    (key[n] == '\0' || key[n] == '\\' || n == 0);
}

static bool
created_by_us(const struct regs *s, enum reg_hive hv, const char *key)
{
	size_t i;

	for (i = 0; i < s->man->nreg; i++) {
		const struct man_reg *r = &s->man->reg[i];

		if (r->kind == MR_KEY_CREATED &&
		    strcmp(r->hive, reg_hive_name(hv)) == 0 &&
		    key_under(key, r->key))
			return true;
	}
	return false;
}

static bool
value_recorded(const struct regs *s, enum reg_hive hv, const char *key,
    const char *name)
{
	size_t i;

	for (i = 0; i < s->man->nreg; i++) {
		const struct man_reg *r = &s->man->reg[i];

		if (r->kind == MR_VALUE && strcmp(r->hive,
		    reg_hive_name(hv)) == 0 && strcasecmp(r->key, key) == 0 &&
		    strcasecmp(r->name, name) == 0)
			return true;
	}
	return false;
}

static struct man_reg *
record(struct regs *s, enum man_reg_kind k, enum reg_hive hv,
    const char *key, const char *origin)
{
	struct manifest *m = s->man;
	struct man_reg *r;

	m->reg = xrealloc(m->reg, (m->nreg + 1) * sizeof(*r));
	r = &m->reg[m->nreg++];
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->hive = xstrdup(reg_hive_name(hv));
	r->key = xstrdup(key);
	r->origin = origin ? xstrdup(origin) : NULL;
	return r;
}

/* Keep what a value was before its first change (old is taken over). */
static void
remember(struct regs *s, enum reg_hive hv, const char *key, const char *name,
    bool had, struct hive_val *old, const char *origin)
{
	struct man_reg *m;

	/* Values in keys gpupv-prep created are recorded too (as new), so
	 * that undo can tell them from what the guest adds later. */
	if (value_recorded(s, hv, key, name)) {
		hive_val_free(old);
		return;
	}
	m = record(s, MR_VALUE, hv, key, origin);
	m->name = xstrdup(name);
	m->had_old = had;
	m->old = *old;
	memset(old, 0, sizeof(*old));
}

static hive *
need(struct regs *s, enum reg_hive hv)
{
	if (!s->h[hv])
		error_set(ENOENT, "the guest's %s hive is not loaded",
		    reg_hive_name(hv));
	return s->h[hv];
}

static int
mkkey(struct regs *s, enum reg_hive hv, const char *key, const char *origin)
{
	char *created = NULL;
	hive *h = need(s, hv);

	if (!h || hive_mkkey(h, key, &created) < 0)
		return -1;
	if (created) {
		if (!created_by_us(s, hv, created))
			record(s, MR_KEY_CREATED, hv, created,
			    origin)->values_recorded = true;
		s->keys_created++;
		s->dirty[hv] = true;
		free(created);
	}
	return 0;
}

int
regs_set(struct regs *s, enum reg_hive hv, const char *key,
    const char *name, const struct hive_val *v, const char *origin)
{
	struct hive_val old;
	hive *h;
	int r;

	if (mkkey(s, hv, key, origin) < 0)
		return -1;
	h = s->h[hv];
	if ((r = hive_get(h, key, name, &old)) < 0)
		return -1;
	if (r == 1 && hive_val_eq(&old, v)) {
		hive_val_free(&old);
		return 0;
	}
	if (hive_set(h, key, name, v) < 0) {
		hive_val_free(&old);
		return -1;
	}
	remember(s, hv, key, name, r == 1, &old, origin);
	s->values_set++;
	s->dirty[hv] = true;
	return 0;
}

static int
delete_value(struct regs *s, enum reg_hive hv, const char *key,
    const char *name, const char *origin)
{
	struct hive_val old;
	hive *h = need(s, hv);
	int r;

	if (!h || (r = hive_get(h, key, name, &old)) < 0)
		return -1;
	if (r == 0)
		return 0;
	if (hive_delete_value(h, key, name) < 0) {
		hive_val_free(&old);
		return -1;
	}
	remember(s, hv, key, name, true, &old, origin);
	s->values_deleted++;
	s->dirty[hv] = true;
	return 0;
}

/* Record key and everything below it (pre-order), for a later undo. */
static int
record_tree(struct regs *s, enum reg_hive hv, const char *key,
    const char *origin, size_t *budget)
{
	char **subs, **names;
	struct hive_val *vals;
	size_t nsub, nval, i;
	int r;

	if (*budget == 0) {
		error_set(E2BIG, "%s: key %s has more than %u keys below it; "
		    "not deleted", reg_hive_name(hv), key, COPY_MAX_KEYS);
		return -1;
	}
	(*budget)--;
	r = hive_list(s->h[hv], key, &subs, &nsub, &names, &vals, &nval);
	if (r <= 0)
		return r;
	record(s, MR_KEY_DELETED, hv, key, origin);
	for (i = 0; i < nval; i++) {
		struct man_reg *m = record(s, MR_VALUE, hv, key, origin);

		m->name = names[i];
		names[i] = NULL;
		m->had_old = true;
		m->old = vals[i];
		memset(&vals[i], 0, sizeof(vals[i]));
	}
	free(vals);
	hive_strv_free(names, nval);
	for (i = 0; i < nsub && r >= 0; i++) {
		char *sub = xasprintf("%s\\%s", key, subs[i]);

		r = record_tree(s, hv, sub, origin, budget);
		free(sub);
	}
	hive_strv_free(subs, nsub);
	return r < 0 ? -1 : 0;
}

static int
delete_key(struct regs *s, enum reg_hive hv, const char *key,
    const char *origin)
{
	size_t budget = COPY_MAX_KEYS;
	hive *h = need(s, hv);
	int r;

	if (!h || (r = hive_key_exists(h, key)) < 0)
		return -1;
	if (r == 0)
		return 0;
	if (!created_by_us(s, hv, key) &&
	    record_tree(s, hv, key, origin, &budget) < 0)
		return -1;
	if (hive_delete_key(h, key) < 0)
		return -1;
	s->keys_deleted++;
	s->dirty[hv] = true;
	return 0;
}

static int
add_cset(struct regs *s, uint32_t n)
{
	char *name;
	size_t i;
	int r;

	if (n == 0 || n > 999)
		return 0;
	name = xasprintf("ControlSet%03u", n);
	for (i = 0; i < s->ncsets; i++)
		if (strcasecmp(s->csets[i], name) == 0) {
			free(name);
			return 0;
		}
	r = hive_key_exists(s->h[REG_HIVE_SYSTEM], name);
	if (r <= 0) {
		free(name);
		return r;
	}
	s->csets = xrealloc(s->csets, (s->ncsets + 1) * sizeof(char *));
	s->csets[s->ncsets++] = name;
	return 1;
}

int
regs_control_sets(struct regs *s, bool all)
{
	static const char *const sel[] = { "Current", "Default",
	    "LastKnownGood", "Failed" };
	size_t i;

	if (!need(s, REG_HIVE_SYSTEM))
		return -1;
	for (i = 0; i < (all ? ARRAY_SIZE(sel) : 1); i++) {
		struct hive_val v;
		int r = hive_get(s->h[REG_HIVE_SYSTEM], "Select", sel[i], &v);

		if (r < 0)
			return -1;
		if (r == 1 && v.type == REG_DWORD_ && v.len == 4) {
			r = add_cset(s, get_le32(v.data));
			hive_val_free(&v);
			if (r < 0)
				return -1;
			if (i == 0 && r == 0) {
				error_setc(GP_EXIT_CORRUPT, ENOENT, "%s: "
				    "Select\\Current names a control set that "
				    "does not exist",
				    hive_name(s->h[REG_HIVE_SYSTEM]));
				return -1;
			}
			continue;
		}
		hive_val_free(&v);
		if (i == 0) {
			error_setc(GP_EXIT_CORRUPT, ENOENT, "%s: no "
			    "Select\\Current DWORD, so CurrentControlSet "
			    "cannot be resolved",
			    hive_name(s->h[REG_HIVE_SYSTEM]));
			return -1;
		}
	}
	return 0;
}

void
regs_free(struct regs *s)
{
	size_t i;

	for (i = 0; i < REG_NHIVES; i++)
		hive_close(s->h[i]);
	hive_strv_free(s->csets, s->ncsets);
	memset(s, 0, sizeof(*s));
}

/* The key in each control set (ccs) or as it is. */
static size_t
targets(const struct regs *s, bool ccs, const char *key, char ***out)
{
	size_t i;

	if (!ccs) {
		*out = xcalloc(2, sizeof(char *));
		(*out)[0] = xstrdup(key);
		return 1;
	}
	*out = xcalloc(s->ncsets + 1, sizeof(char *));
	for (i = 0; i < s->ncsets; i++)
		(*out)[i] = *key ? xasprintf("%s\\%s", s->csets[i], key) :
		    xstrdup(s->csets[i]);
	return s->ncsets;
}

int
regs_apply_file(struct regs *s, const struct reg_file *f)
{
	const char *base = path_basename(f->path);
	char *origin = xasprintf("import %s", base);
	size_t i;
	int ret = 0;

	for (i = 0; i < f->n && ret == 0; i++) {
		const struct reg_op *op = &f->v[i];
		char **keys;
		size_t nk = targets(s, op->ccs, op->key, &keys), k;

		for (k = 0; k < nk && ret == 0; k++) {
			switch (op->kind) {
			case RK_KEY:
				ret = mkkey(s, op->hive, keys[k], origin);
				break;
			case RK_DELKEY:
				ret = delete_key(s, op->hive, keys[k], origin);
				break;
			case RK_SET:
				ret = regs_set(s, op->hive, keys[k], op->name,
				    &op->val, origin);
				break;
			case RK_DELVAL:
				ret = delete_value(s, op->hive, keys[k],
				    op->name, origin);
				break;
			}
			if (ret < 0)
				error_prefix("%s:%u", f->path, op->line);
		}
		hive_strv_free(keys, nk);
	}
	free(origin);
	return ret;
}

static int
copy_tree(struct regs *s, enum reg_hive hv, const char *dst, hive *src,
    const char *skey, bool rewrite, const char *origin, size_t *budget)
{
	char **subs, **names;
	struct hive_val *vals;
	size_t nsub, nval, i;
	int r;

	if (*budget == 0) {
		error_set(E2BIG, "%s: more than %u keys to copy", hive_name(src),
		    COPY_MAX_KEYS);
		return -1;
	}
	(*budget)--;
	r = hive_list(src, skey, &subs, &nsub, &names, &vals, &nval);
	if (r < 0)
		return -1;
	if (r == 0) {
		error_set(ENOENT, "%s: key %s does not exist", hive_name(src),
		    skey);
		return -1;
	}
	r = mkkey(s, hv, dst, origin);
	for (i = 0; i < nval && r == 0; i++) {
		if (rewrite)
			reg_rewrite_driverstore(&vals[i]);
		r = regs_set(s, hv, dst, names[i], &vals[i], origin);
	}
	for (i = 0; i < nval; i++)
		hive_val_free(&vals[i]);
	free(vals);
	hive_strv_free(names, nval);
	for (i = 0; i < nsub && r == 0; i++) {
		char *d = xasprintf("%s\\%s", dst, subs[i]);
		char *k = *skey ? xasprintf("%s\\%s", skey, subs[i]) :
		    xstrdup(subs[i]);

		r = copy_tree(s, hv, d, src, k, rewrite, origin, budget);
		free(d);
		free(k);
	}
	hive_strv_free(subs, nsub);
	return r;
}

int
regs_copy_tree(struct regs *s, enum reg_hive hv, const char *dst_key,
    hive *src, const char *src_key, bool rewrite, const char *origin)
{
	size_t budget = COPY_MAX_KEYS;

	return copy_tree(s, hv, dst_key, src, src_key, rewrite, origin,
	    &budget);
}

/*
 * Whether the subtree at key holds any value (1), none (0), or could not
 * be walked within the caps (-1 with nothing recorded: taken as "holds").
 */
static int
subtree_has_values(hive *h, const char *key, unsigned depth, size_t *budget)
{
	char **sub, **names;
	struct hive_val *vals;
	size_t nsub, nval, i;
	int r;

	if (depth > 512 || !*budget)
		return -1;
	(*budget)--;
	r = hive_list(h, key, &sub, &nsub, &names, &vals, &nval);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	r = nval ? 1 : 0;
	for (i = 0; i < nsub && r == 0; i++) {
		char *k = xasprintf("%s\\%s", key, sub[i]);

		r = subtree_has_values(h, k, depth + 1, budget);
		free(k);
	}
	hive_strv_free(sub, nsub);
	hive_strv_free(names, nval);
	for (i = 0; i < nval; i++)
		hive_val_free(&vals[i]);
	free(vals);
	return r;
}

/*
 * A key the manifest says gpupv-prep created (with the parents it made on
 * the way) goes only while no value is left below it: newer records,
 * undone first, took away the values gpupv-prep set, so a value still
 * there is the guest's own, or the record lies (the manifest is read from
 * the guest).  Such a key stays, with a warning naming it.
 */
static int
undo_created(hive *h, const struct man_reg *rec)
{
	size_t budget = 100000;
	struct gp_error e;
	int r;

	/* A record from before values had records of their own: the key
	 * goes with what is in it, as it always did. */
	if (!rec->values_recorded)
		return hive_delete_key(h, rec->key) < 0 ? -1 : 1;
	/* A subtree that cannot be read is kept, as one that holds values
	 * of the guest's: removing less is the safe side. */
	error_try(&e);
	r = subtree_has_values(h, rec->key, 0, &budget);
	error_end(&e);
	if (r != 0) {
		warn_add("%s\\%s holds values gpupv-prep did not write; it is "
		    "left in place", rec->hive, rec->key);
		return 0;
	}
	return hive_delete_key(h, rec->key) < 0 ? -1 : 1;
}

int
regs_undo(struct regs *s)
{
	struct manifest *m = s->man;
	size_t i = m->nreg;
	int r = 0;

	while (i-- > 0 && r == 0) {
		struct man_reg *rec = &m->reg[i];
		enum reg_hive hv = strcmp(rec->hive, "SYSTEM") == 0 ?
		    REG_HIVE_SYSTEM : REG_HIVE_SOFTWARE;
		hive *h = need(s, hv);
		char *created = NULL;

		if (!h)
			return -1;
		/* Counted as edits like any other, for the report. */
		switch (rec->kind) {
		case MR_KEY_CREATED:
			r = undo_created(h, rec);
			if (r > 0)
				s->keys_deleted++;
			r = r < 0 ? -1 : 0;
			break;
		case MR_KEY_DELETED:
			r = hive_mkkey(h, rec->key, &created);
			if (r == 0 && created)
				s->keys_created++;
			break;
		case MR_VALUE:
			r = hive_mkkey(h, rec->key, &created);
			if (r == 0 && created)
				s->keys_created++;
			if (r == 0 && rec->had_old) {
				r = hive_set(h, rec->key, rec->name, &rec->old);
				s->values_set += r == 0;
			} else if (r == 0) {
				r = hive_delete_value(h, rec->key, rec->name);
				s->values_deleted += r == 0;
			}
			break;
		}
		free(created);
		s->dirty[hv] = true;
	}
	if (r < 0)
		return -1;
	for (i = 0; i < m->nreg; i++)
		man_reg_free(&m->reg[i]);
	free(m->reg);
	m->reg = NULL;
	m->nreg = 0;
	return 0;
}

bool
reg_file_defines_service(const struct reg_file *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		const struct reg_op *op = &f->v[i];
		const char *k = op->key, *svc;

		if (op->hive != REG_HIVE_SYSTEM ||
		    (op->kind != RK_KEY && op->kind != RK_SET))
			continue;
		if (!op->ccs) {
			/* ControlSetNNN\... */
			if (strncasecmp(k, "ControlSet", 10) != 0 ||
			    !(k = strchr(k, '\\')))
				continue;
			k++;
		}
		if (strncasecmp(k, "Services\\", 9) != 0)
			continue;
		svc = k + 9;
		if (strncasecmp(svc, name, strlen(name)) == 0 &&
		    (svc[strlen(name)] == '\0' || svc[strlen(name)] == '\\'))
			return true;
	}
	return false;
}
