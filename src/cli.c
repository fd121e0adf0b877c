/*
 * cli.c - gpupv-prep's entry point: global options, the subcommand table,
 * help, and the one place that turns recorded errors into messages and
 * exit codes.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

static const struct cmd *const commands[] = {
	&cmd_inspect,
	&cmd_stage,
	&cmd_remove,
	&cmd_verify,
	&cmd_script,
	&cmd_host_script,
	&cmd_compact,
};

static const char environment[] =
    "Environment:\n"
    "  GPUPV_PREP_DEBUG=1            the same as -v\n"
    "  GPUPV_PREP_COMMIT_LIMIT_MB=N  lower the most one run may rewrite "
    "(1024)\n"
    "  SOURCE_DATE_EPOCH=SECONDS     the time written into scripts and "
    "manifests\n"
    "  TMPDIR=DIR                    where unpacked packages, hive copies "
    "and\n"
    "                                the session's overlay live (/tmp)\n"
    "  GPUPV_PREP_SHA256=scalar|avx2 choose the hashing code (tests)\n"
    "  GPUPV_PREP_HOST_FREE_MB=N     pretend the host has N MiB free "
    "(tests)\n"
    "  GPUPV_PREP_FAULT=POINT        kill the process at POINT (crash "
    "tests);\n"
    "  GPUPV_PREP_FAULT_SIGNAL=TERM|INT|STOP  with that signal "
    "instead of KILL\n"
    "  GPUPV_PREP_CHECK_ERRORS=1     a run that went on past a failure "
    "no code\n"
    "                                chose to tolerate exits 70 (tests)\n";

static const char exit_codes[] =
    "Exit status:\n"
    "  0  success\n"
    "  1  failure (I/O error, missing file, anything not listed below)\n"
    "  2  usage error\n"
    "  3  image or on-disk structure corrupt or unsupported (also btrfs, "
    "xfs,\n     LVM, LUKS, ext features libext2fs does not know)\n"
    "  4  no Windows volume and no Linux root found\n"
    "  5  NTFS volume hibernated (Windows Fast Startup or hibernation)\n"
    "  6  NTFS journal unclean or volume marked dirty; a registry hive "
    "dirty\n     without logs to replay; an ext journal needing recovery "
    "or an ext\n     file system not cleanly unmounted\n"
    "  7  volume encrypted with BitLocker\n"
    "  8  image in use by another process\n"
    "  9  differencing parent missing or not matching\n"
    "  10 bad input file: a package, INF, .reg file or host bundle that "
    "is not\n     what it must be (a missing or unreadable one is 1)\n"
    "  70 internal error: a success past an untried failure "
    "(GPUPV_PREP_CHECK_ERRORS)\n"
    "  128+N  stopped by signal N (130 SIGINT, 143 SIGTERM); the image "
    "keeps its old state\n";

static void
tty_vprintf(FILE *f, const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	fputs_term(f, s);
	free(s);
}

void
cli_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tty_vprintf(stdout, fmt, ap);
	va_end(ap);
}

void
cli_msg(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gpupv-prep: %s%s", cmd ? cmd->name : "",
	    cmd ? ": " : "");
	va_start(ap, fmt);
	tty_vprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --json was given: errors go to stdout as a JSON object too, unless a
 * report was begun (it then carries the error itself). */
static bool json_mode, json_begun;

void
cli_json_begin(struct json *j, const struct cmd *cmd)
{
	json_begun = true;
	json_init(j, stdout);
	json_obj_begin(j);
	json_key(j, "version");
	json_u64(j, CLI_JSON_VERSION);
	json_key(j, "command");
	json_str(j, cmd ? cmd->name : NULL);
}

static const char *
exit_class(int code)
{
	static const char *const names[] = { "ok", "failure", "usage",
	    "corrupt", "no-windows", "hibernated", "unclean", "bitlocker",
	    "busy", "parent", "bad-input" };

	return code >= 0 && (size_t)code < ARRAY_SIZE(names) ? names[code] :
	    "failure";
}

void
cli_json_error(struct json *j, int code, const char *message)
{
	json_key(j, "error");
	json_obj_begin(j);
	json_key(j, "class");
	json_str(j, signal_caught() ? "signal" : exit_class(code));
	json_key(j, "exit_code");
	json_u64(j, signal_caught() ? 128 + (unsigned)signal_caught() :
	    (unsigned)code);
	json_key(j, "message");
	json_str(j, message);
	json_obj_end(j);
}

/* The whole --json answer of a run that failed before its report. */
static void
json_failure(const struct cmd *cmd, int code, const char *message)
{
	struct json j;

	if (!json_mode || json_begun)
		return;
	cli_json_begin(&j, cmd);
	cli_json_error(&j, code, message);
	cli_json_finish(&j);
	fflush(stdout);
}

void
cli_json_finish(struct json *j)
{
	const char *const *w;
	size_t n = gp_warnings(&w), i;

	json_key(j, "warnings");
	json_arr_begin(j);
	for (i = 0; i < n; i++)
		json_str(j, w[i]);
	json_arr_end(j);
	json_obj_end(j);
	json_end(j);
	gp_warnings_clear();
}

bool cli_quiet;
static bool no_progress;

int
cli_common_opt(int ch)
{
	switch (ch) {
	case 'q':
		cli_quiet = true;
		return 1;
	case 'v':
		debug_set(true);
		return 1;
	case 3001:
		no_progress = true;
		return 1;
	}
	return 0;
}

void
cli_progress_init(struct cli_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->on = !cli_quiet && !no_progress && isatty(STDERR_FILENO);
}

static unsigned
term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* The line for where p is; final: the phase's totals, no rate. */
static void
progress_line(struct cli_progress *p, double now, bool final)
{
	char line[256], b1[32], b2[32], b3[32];
	double t = (now - p->start) / 1e3, rate;
	size_t n, width = term_width() - 1;
	int len;

	len = snprintf(line, sizeof(line), "%s", p->phase);
	if (p->nfiles)
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    ": %llu/%llu files", (unsigned long long)p->files,
		    (unsigned long long)p->nfiles);
	if (p->total)
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    "%s %s of %s", p->nfiles ? "," : ":",
		    cli_size(p->bytes, b1), cli_size(p->total, b2));
	rate = t > 0 ? (double)p->bytes / t : 0;
	if (final)
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    " in %.1f s", t);
	else if (p->total && t >= 1 && p->bytes > 0)
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    ", %s/s, ETA %.0f s", cli_size((uint64_t)rate, b3),
		    (double)(p->total - MIN(p->bytes, p->total)) / rate);
	else if (!p->total && !p->nfiles)
		len += snprintf(line + len, sizeof(line) - (size_t)len, "...");
	n = MIN((size_t)len, sizeof(line) - 1);
	n = MIN(n, width);
	fprintf(stderr, "\r%.*s\033[K%s", (int)n, line, final ? "\n" : "");
	fflush(stderr);
	p->shown = !final;
}

/* The phase before is over: its totals stay, a phase without goes. */
static void
progress_close(struct cli_progress *p, double now)
{
	if (!p->phase)
		return;
	if (p->last > 0 && (p->total || p->nfiles))
		progress_line(p, now, true);
	else if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = false;
	p->phase = NULL;
}

void
cli_progress(struct cli_progress *p, const char *phase, uint64_t files,
    uint64_t nfiles, uint64_t bytes, uint64_t total)
{
	double now;

	if (!p->on)
		return;
	now = mono_ms();
	if (!p->phase || strcmp(p->phase, phase) != 0) {
		progress_close(p, now);
		p->phase = phase;
		p->start = now;
		p->last = 0;
	}
	p->files = files;
	p->nfiles = nfiles;
	p->bytes = bytes;
	p->total = total;
	/* Four times a second, and every new phase at once. */
	if (p->last > 0 && now - p->last < 250)
		return;
	p->last = now;
	progress_line(p, now, false);
}

void
cli_progress_end(struct cli_progress *p)
{
	if (p->on)
		progress_close(p, mono_ms());
}

/* Whether two paths name one file, or would once the first is written. */
bool
cli_same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	char *ra, *rb;
	bool same;

	if (!a || !b)
		return false;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	ra = path_canonical(a);
	rb = path_canonical(b);
	same = ra && rb && strcmp(ra, rb) == 0;
	free(ra);
	free(rb);
	return same;
}

void
cli_print_warnings(const struct cmd *cmd)
{
	const char *const *w;
	size_t n = gp_warnings(&w), i;

	for (i = 0; i < n; i++)
		cli_msg(cmd, "warning: %s", w[i]);
	gp_warnings_clear();
}

int
cli_fail(const struct cmd *cmd)
{
	const char *m = gp_error_message();
	int code = gp_error_code();
	char *msg = xstrdup(*m ? m : strerror(errno ? errno : EIO));

	if (code == GP_EXIT_OK)
		code = GP_EXIT_FAILURE;
	json_failure(cmd, code, msg);	/* its warnings, before they go */
	cli_print_warnings(cmd);
	cli_msg(cmd, "%s", msg);
	free(msg);
	return code;
}

int
cli_usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_failure(cmd, GP_EXIT_USAGE, buf);
	cli_msg(cmd, "%s", buf);
	fprintf(stderr, "Try 'gpupv-prep %s%s--help' for more information.\n",
	    cmd ? cmd->name : "", cmd ? " " : "");
	return GP_EXIT_USAGE;
}

int
cli_bad_option(const struct cmd *cmd, int ch, char **argv)
{
	const char *a = argv[optind - 1];

	if (ch == ':')
		return cli_usage_error(cmd, "option '%s' needs a value",
		    optopt && optopt < 256 && a[1] != '-' ?
		    (char[]){ '-', (char)optopt, 0 } : a);
	if (optopt && optopt < 256)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", a);
}

void
cli_help(const struct cmd *cmd, FILE *f)
{
	fprintf(f, "Usage: gpupv-prep %s %s\n%s\n", cmd->name, cmd->args,
	    cmd->summary);
	fprintf(f, "\nOptions:\n%s" CLI_COMMON_HELP, cmd->options ?
	    cmd->options : "");
	fprintf(f, "\n%s", exit_codes);
}

const char *
cli_size(uint64_t v, char buf[32])
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB",
	    "TiB", "PiB" };
	double d = (double)v;
	int u = 0;

	if (v < 1024) {
		snprintf(buf, 32, "%llu bytes", (unsigned long long)v);
		return buf;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", d, units[u]);
	return buf;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: gpupv-prep [--version] [--help] [-q] [-v] "
	    "[--no-progress] COMMAND [ARGS]\n"
	    "Prepare Windows guest disks for Hyper-V GPU paravirtualization, "
	    "offline.\n\nCommands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i]->name,
		    commands[i]->summary);
	fprintf(f, "  %-12s %s\n", "help", "show help for a command");
	fprintf(f, "\nOptions of every command:\n" CLI_COMMON_HELP);
	fprintf(f, "\nRun 'gpupv-prep help COMMAND' for a command's options."
	    "\n\n%s\n%s", environment, exit_codes);
}

static const struct cmd *
find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct cmd *cmd;
	void *opts;
	int rc, i, first;

	/* A file size limit (ulimit -f) then fails a write with EFBIG, which
	 * the session turns into a clean stop, instead of killing us
	 * halfway through. */
	signal(SIGXFSZ, SIG_IGN);
	/* Host file names are UTF-8 bytes; libarchive converts entry names
	 * through the locale, so make it a UTF-8 one. */
	if (!setlocale(LC_CTYPE, "") ||
	    strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
		setlocale(LC_CTYPE, "C.UTF-8");
	/* Global options before the command. */
	while (argc > 1 && argv[1][0] == '-' && cli_common_opt(
	    strcmp(argv[1], "-q") == 0 || strcmp(argv[1], "--quiet") == 0 ?
	    'q' : strcmp(argv[1], "-v") == 0 ||
	    strcmp(argv[1], "--verbose") == 0 ? 'v' :
	    strcmp(argv[1], "--no-progress") == 0 ? 3001 : 0)) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (argc < 2) {
		usage(stderr);
		return GP_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("gpupv-prep %s\n", gp_version());
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[2], "help") == 0) {
			usage(stdout);
			return 0;
		}
		cmd = find(argv[2]);
		if (!cmd)
			return cli_usage_error(NULL, "unknown command '%s'",
			    argv[2]);
		cli_help(cmd, stdout);
		return 0;
	}
	/* --json anywhere among the options: failures answer in JSON too,
	 * usage errors included. */
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			json_mode = true;
	cmd = find(argv[1]);
	if (!cmd)
		return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
	opts = xcalloc(1, cmd->opts_size ? cmd->opts_size : 1);
	if (cmd->init)
		cmd->init(opts);
	rc = cli_parse(cmd, argc - 1, argv + 1, opts, &first);
	if (rc == CLI_HELP_SHOWN)
		rc = 0;
	else if (rc == 0) {
		signals_catch();
		rc = cmd->run(cmd, opts, argc - 1 - first, argv + 1 + first);
	}
	cli_opts_free(cmd, opts);
	free(opts);
	/*
	 * A run that succeeds with an error recorded went on past a failure
	 * that no scope of its own tolerated: that error would have hidden
	 * the next real one.  The tests run with this check on.
	 */
	if (rc == 0 && *gp_error_message() && getenv("GPUPV_PREP_CHECK_ERRORS")) {
		fprintf(stderr, "gpupv-prep: %s: internal error: the run went "
		    "on past an untried failure: ", cmd->name);
		fputs_term(stderr, gp_error_message());
		fputc('\n', stderr);
		return 70;
	}
	/* Stopped by a signal: everything is cleaned up; report it as the
	 * signal would have. */
	if (signal_caught() && rc != 0)
		return 128 + signal_caught();
	return rc;
}
