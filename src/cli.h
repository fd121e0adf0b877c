/*
 * cli.h - the subcommand table (one cmd-<name>.c per command, as tmux
 * does) and the helpers that print.  Only the CLI prints or exits.
 */
#ifndef GPUPV_CLI_H
#define GPUPV_CLI_H

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

/* "gpupv-prep: CMD: message" on stderr, with the recorded error. */
int	cli_fail(const struct cmd *cmd);
void	cli_msg(const struct cmd *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	cli_usage_error(const struct cmd *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	cli_print_warnings(const struct cmd *cmd);
void	cli_help(const struct cmd *cmd, FILE *f);
/* Parse a non-negative decimal; -1 on garbage. */
long	cli_parse_uint(const char *s);
/* "64.0 GiB" style; returns buf. */
const char *cli_size(uint64_t v, char buf[32]);

#endif
