/*
 * error.c - how a run reports and stops: errors recorded in scopes (the
 * innermost one open on the thread), warnings, the debug trace, the
 * crash-test fault points, and signals turned into a clean stop.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

#define WARN_MAX 64

/*
 * Errors are recorded into the innermost scope open on the calling thread
 * (error_try).  The thread's own base scope takes what no scope was opened
 * for: the CLI's command, or the hashing thread, which reports through its
 * own result and never reads it.
 */
static _Thread_local struct gp_error base_scope;
static _Thread_local struct gp_error *cur_scope;
static char *warnings[WARN_MAX];
static size_t nwarnings;

static struct gp_error *
scope(void)
{
	return cur_scope ? cur_scope : &base_scope;
}

void
error_try(struct gp_error *e)
{
	/* Not the whole message buffer: lookups open a scope each. */
	e->set = false;
	e->code = 0;
	e->err = 0;
	e->msg[0] = '\0';
	e->outer = cur_scope;
	cur_scope = e;
}

bool
error_end(struct gp_error *e)
{
	/* Scopes close in the order they opened; anything else is a bug
	 * that would send errors to a dead frame. */
	if (cur_scope != e)
		abort();
	cur_scope = e->outer;
	e->outer = NULL;
	if (e->set)
		errno = e->err;
	return e->set;
}

int
error_pass(const struct gp_error *e)
{
	if (e->set)
		error_setc(e->code, e->err, "%s", e->msg);
	return -1;
}

int
error_unless(const struct gp_error *e, int r, int saved, int ok, int ok2)
{
	int why = e->set ? e->err : saved;

	if (r >= 0 && !e->set)
		return 0;
	if (why && (why == ok || why == ok2)) {
		errno = why;
		return 1;
	}
	if (e->set)
		return error_pass(e);
	errno = why;
	return -1;
}

void
error_setc(int code, int err, const char *fmt, ...)
{
	struct gp_error *e = scope();
	va_list ap;

	/* The first detector wins: a caller never overwrites the cause,
	 * and errno stays the cause's. */
	if (e->set) {
		errno = e->err;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = code;
	e->err = err;
	e->set = true;
	if (debug_enabled())
		fprintf(stderr, "gpupv-prep: debug: error: %s\n", e->msg);
	errno = err;
}

int
error_corrupt(const char *path, const char *fmt, ...)
{
	char buf[GP_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	error_setc(GP_EXIT_CORRUPT, EINVAL, "%s: %s", path, buf);
	return -1;
}

void
error_rename(const char *from, const char *to)
{
	struct gp_error *e = scope();
	char out[GP_ERROR_MAX];
	size_t o = 0, fl = strlen(from), tl = strlen(to);
	const char *p = e->msg;
	int saved = errno;

	if (!e->set || !fl)
		return;
	while (*p && o + 1 < sizeof(out)) {
		if (strncmp(p, from, fl) == 0 && o + tl + 1 < sizeof(out)) {
			memcpy(out + o, to, tl);
			o += tl;
			p += fl;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	memcpy(e->msg, out, o + 1);
	errno = saved;
}

void
error_prefix(const char *fmt, ...)
{
	struct gp_error *e = scope();
	char ctx[GP_ERROR_MAX], tmp[GP_ERROR_MAX];
	int saved = errno;
	va_list ap;

	if (!e->set)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* Do not repeat a context that is already there. */
	if (strncmp(e->msg, ctx, strlen(ctx)) != 0) {
		/* Truncation keeps the cause's start; the message stays one
		 * line either way. */
		size_t n = strlen(ctx);

		memcpy(tmp, e->msg, sizeof(tmp));
		if (n > sizeof(e->msg) / 2)
			n = sizeof(e->msg) / 2;
		memcpy(e->msg, ctx, n);
		memcpy(e->msg + n, ": ", 2);
		memcpy(e->msg + n + 2, tmp, sizeof(e->msg) - n - 3);
		e->msg[sizeof(e->msg) - 1] = '\0';
	}
	errno = saved;
}

const char *
gp_error_message(void)
{
	struct gp_error *e = scope();

	return e->set ? e->msg : "";
}

int
gp_error_code(void)
{
	struct gp_error *e = scope();

	return e->set ? e->code : GP_EXIT_FAILURE;
}

void
gp_error_clear(void)
{
	struct gp_error *e = scope(), *outer = e->outer;

	memset(e, 0, sizeof(*e));
	e->outer = outer;
}

void
warn_add(const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (nwarnings >= WARN_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	warnings[nwarnings++] = s;
}

size_t
gp_warnings(const char *const **list)
{
	*list = (const char *const *)warnings;
	return nwarnings;
}

void
gp_warnings_clear(void)
{
	size_t i;

	for (i = 0; i < nwarnings; i++)
		free(warnings[i]);
	nwarnings = 0;
}

/*
 * Text for a terminal: names, labels and messages come from images,
 * packages and hives, so control characters (escape sequences), C1
 * controls and bytes that are not UTF-8 are shown as \xNN; only the line
 * breaks and tabs of our own formats pass.
 */
void
fputs_term(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int len;

	for (; *p; p += len) {
		uint32_t c = utf8_decode(p, &len);

		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ||
		    (c >= 0x80 && c < 0xa0) || (c == 0xfffd && len == 1)) {
			int i;

			for (i = 0; i < len; i++)
				fprintf(f, "\\x%02x", p[i]);
		} else {
			fwrite(p, 1, (size_t)len, f);
		}
	}
}

static int debug_on = -1;

void
debug_set(bool on)
{
	debug_on = on;
}

bool
debug_enabled(void)
{
	const char *e;

	if (debug_on < 0) {
		e = getenv("GPUPV_PREP_DEBUG");
		debug_on = e && *e && strcmp(e, "0") != 0;
	}
	return debug_on;
}

void
debug(const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!debug_enabled())
		return;
	fputs("gpupv-prep: debug: ", stderr);
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	fputs_term(stderr, s);	/* names from images and packages */
	free(s);
	fputc('\n', stderr);
}

void
fault_point(const char *name)
{
	const char *f = getenv("GPUPV_PREP_FAULT");
	const char *sig = getenv("GPUPV_PREP_FAULT_SIGNAL");

	if (f && strcmp(f, name) == 0) {
		/* GPUPV_PREP_FAULT_SIGNAL=TERM: the signal a user or a CI
		 * timeout sends, which the run must handle. */
		debug("fault point %s: %s", name, sig ? "a signal" : "killing "
		    "the process");
		/* STOP: the process waits there for a SIGCONT, so a test
		 * can change the world in between. */
		raise(sig && strcmp(sig, "TERM") == 0 ? SIGTERM :
		    sig && strcmp(sig, "INT") == 0 ? SIGINT :
		    sig && strcmp(sig, "STOP") == 0 ? SIGSTOP : SIGKILL);
	}
}

/* ---- stopping on a signal -------------------------------------------- */

static volatile sig_atomic_t caught_signal;

static void
on_signal(int sig)
{
	caught_signal = sig;
}

void
signals_catch(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

int
signal_caught(void)
{
	return caught_signal;
}

int
check_interrupt(void)
{
	if (!caught_signal)
		return 0;
	error_set(EINTR, "stopped by signal %d (%s); the image keeps its old "
	    "state", caught_signal, strsignal(caught_signal));
	return -1;
}
