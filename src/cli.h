/*
 * cli.h - the subcommand table (one cmd-<name>.c per command, as tmux
 * does) and the helpers that print.  Only the CLI prints or exits.
 */
#ifndef GPUPV_CLI_H
#define GPUPV_CLI_H

#include "manifest.h"
#include "util.h"

struct cmd {
	const char *name;
	const char *args;		/* usage after the name */
	const char *summary;		/* one line */
	const char *options;		/* option help, may be "" */
	int (*run)(const struct cmd *cmd, int argc, char **argv);
};

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
/* Take one host option (getopt's ch and optarg): 1 if it was one, 0 if
 * not, -1 after a usage error was printed. */
int	host_opt(const struct cmd *cmd, int ch, const char *arg,
	    struct host_opts *h);
/* Options that do not go together, or give a VM the script would
 * refuse: 0, or the usage error's exit status after printing it. */
int	host_check(const struct cmd *cmd, const struct host_opts *h);
/* Write the sidecar files h asks for, from the manifest m; -1 with the
 * error recorded. */
int	host_write(const struct host_opts *h, const char *image,
	    const struct manifest *m);
#define HOST_LONGOPTS \
	{ "vm-name", required_argument, NULL, 1001 }, \
	{ "gpu", required_argument, NULL, 1002 }, \
	{ "low-mmio", required_argument, NULL, 1003 }, \
	{ "high-mmio", required_argument, NULL, 1004 }, \
	{ "dda", required_argument, NULL, 1005 }, \
	{ "nanabox", required_argument, NULL, 1006 }, \
	{ "cpus", required_argument, NULL, 1007 }, \
	{ "memory", required_argument, NULL, 1008 }
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
/* --partition N into *out; a usage error (its exit status) otherwise. */
int	cli_partition(const struct cmd *cmd, const char *arg, int *out);
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
#define CLI_COMMON_LONGOPTS \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "no-progress", no_argument, NULL, 3001 }
#define CLI_COMMON_HELP \
	"  -q, --quiet        print errors and warnings only (--json still " \
	"prints)\n" \
	"  -v, --verbose      trace what the tool does and plans on stderr\n" \
	"  --no-progress      no progress line, even on a terminal\n"
/* Take -q, -v or --no-progress (getopt's ch): 1 if it was one. */
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

/* Parse a non-negative decimal; -1 on garbage. */
long	cli_parse_uint(const char *s);
/* "64.0 GiB" style; returns buf. */
const char *cli_size(uint64_t v, char buf[32]);

#endif
