/*
 * cli.h - the subcommand table (one cmd-<name>.c per command, as tmux
 * does) and the helpers that print.  Only the CLI prints or exits.
 */
#ifndef GPUPV_CLI_H
#define GPUPV_CLI_H

#include <stddef.h>

#include "manifest.h"
#include "util.h"

/*
 * A command's options, declared (cli-opts.c parses them all): the long
 * name, the short one, what kind of value it takes and the field of the
 * command's options struct it fills, with the value's bounds.
 */
enum cli_opt_kind {
	CLI_FLAG,	/* bool: true */
	CLI_SET,	/* an integer: min */
	CLI_STR,	/* const char *: the value (nonempty, check: if set) */
	CLI_LIST,	/* char ** at off, its count (size_t) at off2: appended */
	CLI_NUM,	/* an integer: a number from min to max in base */
	CLI_MIB,	/* uint64_t: a size with a unit, in MiB, min to max */
	CLI_WORD,	/* one of words[]: values[i] into an integer, or
			   without values the word itself (const char *) */
};

struct cli_opt {
	const char *name;
	int short_name;			/* 0: none */
	enum cli_opt_kind kind;
	size_t off, size;		/* the field (CLI_FIELD) */
	size_t off2;			/* CLI_LIST: the count */
	long long min, max;
	int base;			/* CLI_NUM: 10, or 0 for 0x... too */
	bool nonempty;
	bool (*check)(const char *arg);
	const char *const *words;
	const int *values;
	/* The usage error for a value out of bounds; "%s" is the value. */
	const char *msg;
};
#define CLI_FIELD(type, f) \
	.off = offsetof(type, f), .size = sizeof(((type *)0)->f)

/* A table of options, at base in the options struct; with refuse, each
 * is a usage error: refuse, "%s" being the command's name. */
struct cli_optset {
	const struct cli_opt *v;	/* ends with an entry without name */
	size_t base;
	const char *refuse;
};

struct cmd {
	const char *name;
	const char *args;		/* usage after the name */
	const char *summary;		/* one line */
	const char *options;		/* option help, may be "" */
	const struct cli_optset *opts;	/* ends with { NULL } */
	size_t opts_size;		/* the struct the options fill */
	/* How many operands it takes (max -1: any), and what the first is
	 * called in "missing IMAGE". */
	int min_operands, max_operands;
	const char *operand;
	void (*init)(void *opts);	/* its defaults, or NULL: zeros */
	/* operands: what is left of argv once the options are taken */
	int (*run)(const struct cmd *cmd, void *opts, int noperands,
	    char **operands);
};

/* Parse argv (argv[0] the command's name) into opts, and count the
 * operands; *first is the first.  0, CLI_HELP_SHOWN after the help was
 * printed, or a usage error's exit status after it was printed. */
#define CLI_HELP_SHOWN (-2)
int	cli_parse(const struct cmd *cmd, int argc, char **argv, void *opts,
	    int *first);
/* Free what cli_parse allocated in opts (the CLI_LIST arrays). */
void	cli_opts_free(const struct cmd *cmd, void *opts);

extern const struct cmd cmd_inspect;
extern const struct cmd cmd_stage;
extern const struct cmd cmd_remove;
extern const struct cmd cmd_verify;
extern const struct cmd cmd_script;
extern const struct cmd cmd_host_script;
extern const struct cmd cmd_compact;

/* Options shared by stage and script: the host side of the VM. */
struct host_opts {
	struct host_cfg cfg;		/* pointers into argv */
	const char *script;		/* -o / --script FILE */
	const char *nanabox;
	unsigned cpus;
	uint64_t memory_mb;
};
/* Options that do not go together, or give a VM the script would
 * refuse: 0, or the usage error's exit status after printing it. */
int	host_check(const struct cmd *cmd, const struct host_opts *h);
/* Write the sidecar files h asks for, from the manifest m; -1 with the
 * error recorded. */
int	host_write(const struct host_opts *h, const char *image,
	    const struct manifest *m);
/* The host options as a table (cli-host.c), for an options struct
 * holding a struct host_opts. */
extern const struct cli_opt host_options[];
#define HOST_OPTIONS_HELP \
	"  --vm-name NAME     the Hyper-V VM (default: the image's name)\n" \
	"  --gpu PATH         GPU-PV instance path (\\\\?\\PCI#...\\GPUPARAV);\n" \
	"                     default: from a host bundle, else Hyper-V's choice\n" \
	"  --low-mmio SIZE    low MMIO space (default 1G; DDA 3G)\n" \
	"  --high-mmio SIZE   high MMIO space (default 64G; DDA 33280M)\n" \
	"  --dda LOCPATH      a DDA script for the device at this location path\n" \
	"  --nanabox FILE     also write a NanaBox .7b configuration\n" \
	"  --cpus N, --memory SIZE   processors and memory in the NanaBox file\n"

/* printf to stdout for a person: control characters and bytes that are
 * not UTF-8 in the data are shown as \xNN (see cli.c). */
void	cli_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "gpupv-prep: CMD: message" on stderr, with the recorded error. */
int	cli_fail(const struct cmd *cmd);
void	cli_msg(const struct cmd *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	cli_usage_error(const struct cmd *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	cli_print_warnings(const struct cmd *cmd);
void	cli_help(const struct cmd *cmd, FILE *f);
/* The usage error for getopt's '?' or ':' (option strings start with ':'
 * so that getopt itself prints nothing). */
int	cli_bad_option(const struct cmd *cmd, int ch, char **argv);
/*
 * --json reports: every one is an object that begins with "version" (of
 * the report formats, CLI_JSON_VERSION; raised when a field changes
 * meaning or goes away, not when one is added) and "command", and ends
 * with "warnings".  A run that fails answers with "error": {"class",
 * "exit_code", "message"}, in its report or in an object of its own.
 */
#define CLI_JSON_VERSION 1
struct json;
void	cli_json_begin(struct json *j, const struct cmd *cmd);
void	cli_json_error(struct json *j, int code, const char *message);
/* The end of a --json report: its "warnings" (then cleared), closed. */
void	cli_json_finish(struct json *j);
/* Whether two paths name one file (or will, once the first is made). */
bool	cli_same_file(const char *a, const char *b);
/* Global options, taken before the command or among its options. */
extern bool cli_quiet;			/* -q: errors and warnings only */
#define CLI_COMMON_HELP \
	"  -q, --quiet        print errors and warnings only (--json still " \
	"prints)\n" \
	"  -v, --verbose      trace what the tool does and plans on stderr\n" \
	"  --no-progress      no progress line, even on a terminal\n"
/* Take -q, -v or --no-progress (getopt's ch, 3001 for the last): 1 if it
 * was one. */
int	cli_common_opt(int ch);

/*
 * The progress line on stderr, when it is a terminal (and not -q or
 * --no-progress): one line per phase, fitted to the terminal's width
 * and erased to its end at each update; a rate and an ETA once a second
 * of the phase has passed.  A phase with totals ends on them (a line of
 * its own); one without ("committing") is erased.
 */
struct cli_progress {
	bool on, shown;
	const char *phase;
	double start, last;		/* mono_ms() of this phase */
	uint64_t files, nfiles, bytes, total;
};
void	cli_progress_init(struct cli_progress *p);
/* Where a phase is: files of nfiles (0: not counted), bytes of total
 * (0: not known).  A new phase name ends the one before. */
void	cli_progress(struct cli_progress *p, const char *phase,
	    uint64_t files, uint64_t nfiles, uint64_t bytes, uint64_t total);
void	cli_progress_end(struct cli_progress *p);

/* "64.0 GiB" style; returns buf. */
const char *cli_size(uint64_t v, char buf[32]);

/* report-stage.c: the report of a stage, remove or verify run (its
 * error, after a failure), then r freed; the exit status.  A failure after
 * the commit (side_fail: a sidecar file that could not be written) still
 * reports what the run did, with the error in it. */
struct stage_report;
int	stage_report_finish(const struct cmd *cmd, bool json,
	    struct stage_report *r, int rc, bool side_fail);

#endif
