/*
 * cli-opts.c - the one option parser.  Each command declares its options
 * as tables (struct cli_opt: the name, whether it takes a value, the
 * field of the command's options it fills, the bounds of that value) and
 * this turns argv into that struct, with one usage error per mistake.
 * The options every command takes (-h, -q, -v, --no-progress) are added
 * here.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define CLI_MAX_OPTS	96
#define VAL_BASE	0x10000
#define VAL_NO_PROGRESS	3001

struct slot {
	const struct cli_opt *o;
	size_t base;
	const char *refuse;
};

/* tmpl with each "%s" replaced by s (no other conversion is taken). */
static void
subst(char *out, size_t size, const char *tmpl, const char *s)
{
	size_t o = 0, n;

	for (; *tmpl && o + 1 < size; tmpl++) {
		if (tmpl[0] == '%' && tmpl[1] == 's') {
			n = MIN(strlen(s), size - 1 - o);
			memcpy(out + o, s, n);
			o += n;
			tmpl++;
			continue;
		}
		out[o++] = *tmpl;
	}
	out[o] = '\0';
}

static int
bad_value(const struct cmd *cmd, const struct cli_opt *o, const char *arg)
{
	char msg[512];

	if (o->msg) {
		subst(msg, sizeof(msg), o->msg, arg);
		return cli_usage_error(cmd, "%s", msg);
	}
	return cli_usage_error(cmd, "--%s: a number from %lld to %lld, not "
	    "'%s'", o->name, o->min, o->max, arg);
}

static bool
takes_value(const struct cli_opt *o)
{
	return o->kind != CLI_FLAG && o->kind != CLI_SET;
}

static void
store_int(void *field, size_t size, long long v)
{
	switch (size) {
	case sizeof(int8_t): *(int8_t *)field = (int8_t)v; break;
	case sizeof(int16_t): *(int16_t *)field = (int16_t)v; break;
	case sizeof(int32_t): *(int32_t *)field = (int32_t)v; break;
	default: *(int64_t *)field = (int64_t)v; break;
	}
}

/* A whole number from lo to hi in base (0: C's prefixes), no sign. */
static bool
parse_num(const char *s, int base, long long lo, long long hi, long long *v)
{
	unsigned long long u;
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	u = strtoull(s, &end, base);
	if (errno || *end || u > (unsigned long long)hi ||
	    (long long)u < lo)
		return false;
	*v = (long long)u;
	return true;
}

/*
 * "1G", "1024M", "33280MB", "3GiB", "1T": a size in MiB between lo and hi
 * MiB; 0 on garbage, a missing unit or a size out of bounds.  A bare
 * number is refused: qemu-img reads it as bytes, Set-VM as bytes, and the
 * NanaBox file as MiB, so it would mean something else to each.
 */
static uint64_t
cli_parse_mib(const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;
	unsigned shift;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return 0;
	switch (*end) {
	case 'M': case 'm': shift = 0; break;
	case 'G': case 'g': shift = 10; break;
	case 'T': case 't': shift = 20; break;
	default: return 0;
	}
	end++;
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (hi >> shift))
		return 0;
	v <<= shift;
	return v < lo ? 0 : v;
}

/* Take one option's value into its field: 0, or a usage error. */
static int
take(const struct cmd *cmd, const struct slot *s, void *opts, const char *arg)
{
	const struct cli_opt *o = s->o;
	void *field = (char *)opts + s->base + o->off;
	char msg[512];
	long long v;
	uint64_t mib;
	size_t i;

	if (s->refuse) {
		subst(msg, sizeof(msg), s->refuse, cmd->name);
		return cli_usage_error(cmd, "%s", msg);
	}
	switch (o->kind) {
	case CLI_FLAG:
		*(bool *)field = true;
		return 0;
	case CLI_SET:
		store_int(field, o->size, o->min);
		return 0;
	case CLI_STR:
		if (o->nonempty && !*arg)
			return cli_usage_error(cmd, "--%s: empty", o->name);
		if (o->check && !o->check(arg))
			return bad_value(cmd, o, arg);
		*(const char **)field = arg;
		return 0;
	case CLI_LIST: {
		char ***list = field;
		size_t *n = (size_t *)((char *)opts + s->base + o->off2);

		*list = xrealloc(*list, (*n + 1) * sizeof(char *));
		(*list)[(*n)++] = (char *)arg;
		return 0;
	}
	case CLI_NUM:
		if (!parse_num(arg, o->base, o->min, o->max, &v))
			return bad_value(cmd, o, arg);
		store_int(field, o->size, v);
		return 0;
	case CLI_MIB:
		mib = cli_parse_mib(arg, (uint64_t)o->min, (uint64_t)o->max);
		if (!mib)
			return bad_value(cmd, o, arg);
		*(uint64_t *)field = mib;
		return 0;
	case CLI_WORD:
		for (i = 0; o->words[i]; i++)
			if (strcmp(arg, o->words[i]) == 0) {
				if (o->values)
					store_int(field, o->size, o->values[i]);
				else
					*(const char **)field = o->words[i];
				return 0;
			}
		return bad_value(cmd, o, arg);
	}
	return cli_usage_error(cmd, "--%s: not understood", o->name);
}

int
cli_parse(const struct cmd *cmd, int argc, char **argv, void *opts,
    int *first)
{
	struct option longopts[CLI_MAX_OPTS + 5];
	struct slot slots[CLI_MAX_OPTS];
	char shortopts[3 * CLI_MAX_OPTS + 8] = ":hqv";
	size_t n = 0, nopts, k, i, sl = strlen(shortopts);
	const struct cli_optset *set;
	int ch, r;

	for (set = cmd->opts; set && set->v; set++)
		for (i = 0; set->v[i].name; i++, n++) {
			const struct cli_opt *o = &set->v[i];

			if (n == CLI_MAX_OPTS)
				abort();	/* a table too long: a bug */
			slots[n] = (struct slot){ o, set->base, set->refuse };
			longopts[n] = (struct option){ o->name, takes_value(o) ?
			    required_argument : no_argument, NULL,
			    o->short_name ? o->short_name : (int)(VAL_BASE + n) };
			if (o->short_name) {
				shortopts[sl++] = (char)o->short_name;
				if (takes_value(o))
					shortopts[sl++] = ':';
			}
		}
	shortopts[sl] = '\0';
	nopts = n;
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n++] = (struct option){ "quiet", no_argument, NULL, 'q' };
	longopts[n++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	longopts[n++] = (struct option){ "no-progress", no_argument, NULL,
	    VAL_NO_PROGRESS };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	optind = 0;		/* GNU getopt: afresh, permuting operands */
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch == 'q' || ch == 'v' || ch == VAL_NO_PROGRESS) {
			cli_common_opt(ch);
			continue;
		}
		if (ch == 'h') {
			cli_help(cmd, stdout);
			return CLI_HELP_SHOWN;
		}
		if (ch >= VAL_BASE && (size_t)(ch - VAL_BASE) < nopts) {
			k = (size_t)(ch - VAL_BASE);
		} else {
			for (k = 0; k < nopts; k++)
				if (slots[k].o->short_name == ch)
					break;
			if (k == nopts)		/* '?' or ':' from getopt */
				return cli_bad_option(cmd, ch, argv);
		}
		if ((r = take(cmd, &slots[k], opts, optarg)) != 0)
			return r;
	}
	*first = optind;
	if (argc - optind < cmd->min_operands)
		return cli_usage_error(cmd, "missing %s", cmd->operand ?
		    cmd->operand : "IMAGE");
	if (cmd->max_operands >= 0 && argc - optind > cmd->max_operands)
		return cli_usage_error(cmd, "unexpected argument '%s'",
		    argv[optind + cmd->max_operands]);
	return 0;
}

void
cli_opts_free(const struct cmd *cmd, void *opts)
{
	const struct cli_optset *set;
	size_t i;

	for (set = cmd->opts; set && set->v; set++)
		for (i = 0; set->v[i].name; i++)
			if (set->v[i].kind == CLI_LIST && !set->refuse) {
				char ***list = (char ***)((char *)opts + set->base +
				    set->v[i].off);

				free(*list);
				*list = NULL;
			}
}
