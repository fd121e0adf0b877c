/*
 * inf.c - driver INF files, read as Windows' SetupAPI reads them:
 * [sections] (repeated ones merge), "key = field, field", quoted fields
 * ("" is a quote inside), ';' comments outside quotes, a trailing '\'
 * continues the line, %token% from [Strings] (%% is a percent sign;
 * unknown tokens such as dirids stay as written).
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "inf.h"

/* Caps on input: the largest display INFs (NVIDIA's) are under 1 MiB
 * with lines of a few dozen fields; a line is bounded by the file. */
#define INF_MAX_FILE	(32u * 1024 * 1024)
#define INF_MAX_FIELDS	4096

static struct inf_section *
get_section(struct inf *inf, const char *name)
{
	size_t i;

	for (i = 0; i < inf->n; i++)
		if (strcasecmp(inf->s[i].name, name) == 0)
			return &inf->s[i];
	inf->s = xrealloc(inf->s, (inf->n + 1) * sizeof(*inf->s));
	memset(&inf->s[inf->n], 0, sizeof(*inf->s));
	inf->s[inf->n].name = xstrdup(name);
	return &inf->s[inf->n++];
}

const struct inf_section *
inf_section(const struct inf *inf, const char *name)
{
	size_t i;

	for (i = 0; i < inf->n; i++)
		if (strcasecmp(inf->s[i].name, name) == 0)
			return &inf->s[i];
	return NULL;
}

const char *
inf_value(const struct inf *inf, const char *section, const char *key)
{
	const struct inf_section *s = inf_section(inf, section);
	size_t i;

	for (i = 0; s && i < s->n; i++)
		if (s->v[i].key && strcasecmp(s->v[i].key, key) == 0)
			return s->v[i].nf ? s->v[i].f[0] : "";
	return NULL;
}

static char *
trim_dup(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xasprintf("%.*s", (int)n, s);
}

/* One field's raw text: quotes removed ("" inside quotes is a quote),
 * blanks outside quotes trimmed at both ends. */
static char *
unquote(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i = 0, o = 0, last = 0;
	bool q = false;

	while (i < n && !q && isspace((unsigned char)s[i]))
		i++;
	for (; i < n; i++) {
		if (s[i] == '"') {
			if (q && i + 1 < n && s[i + 1] == '"') {
				out[o++] = '"';
				i++;
				last = o;
			} else {
				q = !q;
			}
			continue;
		}
		out[o++] = s[i];
		if (q || !isspace((unsigned char)s[i]))
			last = o;
	}
	out[last] = '\0';
	return out;
}

/* %token% substitution from [Strings]. */
static char *
subst(const struct inf_section *strings, const char *s)
{
	size_t cap = strlen(s) + 1, o = 0;
	char *out = xmalloc(cap);

	while (*s) {
		const char *end;
		const char *rep = NULL;
		size_t rl;

		if (*s == '%' && (end = strchr(s + 1, '%')) != NULL) {
			size_t tl = (size_t)(end - s - 1), i;

			if (tl == 0) {
				rep = "%";
			} else if (strings) {
				for (i = 0; i < strings->n; i++) {
					const struct inf_line *l = &strings->v[i];

					if (l->key && strlen(l->key) == tl &&
					    strncasecmp(l->key, s + 1, tl) == 0) {
						rep = l->nf ? l->f[0] : "";
						break;
					}
				}
			}
			if (rep) {
				rl = strlen(rep);
				if (o + rl + 1 > cap) {
					cap = (o + rl + 1) * 2;
					out = xrealloc(out, cap);
				}
				memcpy(out + o, rep, rl);
				o += rl;
				s = end + 1;
				continue;
			}
		}
		if (o + 2 > cap) {
			cap *= 2;
			out = xrealloc(out, cap);
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
	return out;
}

static int
perr(const char *path, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(const char *path, unsigned line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_input(EINVAL, "%s:%u: %s", path, line, msg);
	return -1;
}

/* Split a logical line (comment already removed) into key and fields. */
static int
split_line(const char *path, unsigned ln, const char *s, size_t n,
    struct inf_line *out)
{
	size_t i, start = 0;
	bool q = false, key_done = false;

	memset(out, 0, sizeof(*out));
	out->line = ln;
	for (i = 0; i <= n; i++) {
		char c = i < n ? s[i] : ',';

		if (i < n && c == '"') {
			q = !q;
			continue;
		}
		if (q && i < n)
			continue;
		if (c == '=' && !key_done && out->nf == 0) {
			char *k = unquote(s + start, i - start);

			out->key = k;
			key_done = true;
			start = i + 1;
			continue;
		}
		if (c != ',')
			continue;
		if (out->nf >= INF_MAX_FIELDS)
			return perr(path, ln, "more than %d fields",
			    INF_MAX_FIELDS);
		out->f = xrealloc(out->f, (out->nf + 1) * sizeof(char *));
		out->f[out->nf++] = xasprintf("%.*s", (int)(i - start),
		    s + start);
		start = i + 1;
	}
	/* An unclosed quote runs to the end of the line, as SetupAPI
	 * reads it (real INFs have them). */
	return 0;
}

static void
line_free(struct inf_line *l)
{
	size_t i;

	for (i = 0; i < l->nf; i++)
		free(l->f[i]);
	free(l->f);
	free(l->key);
}

int
inf_parse(const char *path, const void *text, size_t len, struct inf *out)
{
	enum text_enc enc;
	size_t n, j, k, e;
	char *t = text_to_utf8(text, len, &n, &enc);
	struct text_lines tl;
	struct inf_section *cur = NULL;
	const struct inf_section *strings;
	const char *line;
	unsigned start;
	int ret = -1, rc;

	memset(out, 0, sizeof(*out));
	out->path = xstrdup(path);
	text_lines_init(&tl, t, n);
	while ((rc = text_lines_next(&tl, &line, &e)) != 0) {
		size_t c;
		bool q = false, more;

		if (rc < 0) {
			perr(path, tl.line, "NUL character (a UTF-16 file without "
			    "its byte order mark?)");
			goto out;
		}
		/* Cut the comment: ';' outside quotes. */
		for (c = 0; c < e; c++) {
			if (line[c] == '"')
				q = !q;
			else if (line[c] == ';' && !q)
				break;
		}
		e = c;
		while (e && isspace((unsigned char)line[e - 1]))
			e--;
		more = e && line[e - 1] == '\\';
		text_lines_add(&tl, line, more ? e - 1 : e);
		if (more && text_lines_more(&tl))
			continue;
		start = tl.start;
		{
			size_t sl;
			const char *s = text_lines_take(&tl, &sl);

			while (sl && isspace((unsigned char)*s)) {
				s++;
				sl--;
			}
			if (sl == 0)
				continue;
			if (*s == '[') {
				const char *close = memchr(s, ']', sl);
				char *name;

				if (!close) {
					perr(path, start, "section name without "
					    "its closing ']'");
					goto out;
				}
				name = trim_dup(s + 1, (size_t)(close - s - 1));
				cur = get_section(out, name);
				free(name);
			} else if (!cur) {
				perr(path, start, "a line before any [section]");
				goto out;
			} else {
				struct inf_line il;

				if (split_line(path, start, s, sl, &il) < 0) {
					line_free(&il);
					goto out;
				}
				cur->v = xrealloc(cur->v, (cur->n + 1) *
				    sizeof(il));
				cur->v[cur->n++] = il;
			}
		}
	}
	/* Unquote and substitute, [Strings] first (it is used by the rest). */
	strings = inf_section(out, "Strings");
	for (k = 0; k < 2; k++)
		for (j = 0; j < out->n; j++) {
			struct inf_section *s = &out->s[j];
			bool is_strings = s == strings;

			if ((k == 0) != is_strings)
				continue;
			for (size_t m = 0; m < s->n; m++)
				for (size_t f = 0; f < s->v[m].nf; f++) {
					char *u = unquote(s->v[m].f[f],
					    strlen(s->v[m].f[f]));

					free(s->v[m].f[f]);
					if (is_strings) {
						s->v[m].f[f] = u;
					} else {
						s->v[m].f[f] = subst(strings, u);
						free(u);
					}
				}
		}
	ret = 0;
out:
	text_lines_free(&tl);
	free(t);
	if (ret < 0)
		inf_free(out);
	return ret;
}

int
inf_load(const char *path, struct inf *out)
{
	uint8_t *buf;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if (file_read_all(path, INF_MAX_FILE, "not an INF file", &buf,
	    &len) < 0)
		return -1;
	ret = inf_parse(path, buf, len, out);
	free(buf);
	return ret;
}

void
inf_free(struct inf *inf)
{
	size_t i, j;

	for (i = 0; i < inf->n; i++) {
		for (j = 0; j < inf->s[i].n; j++)
			line_free(&inf->s[i].v[j]);
		free(inf->s[i].v);
		free(inf->s[i].name);
	}
	free(inf->s);
	free(inf->path);
	memset(inf, 0, sizeof(*inf));
}
