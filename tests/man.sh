#!/bin/sh
# The manual page and the help tell one story: gpupv-prep(1), made from
# the help by doc/mkman.sh, lists for every command the same options as
# `gpupv-prep help COMMAND`, the same exit codes and environment as
# --help, and renders without a warning; bash completion offers the
# commands and a command's options from the same help.
. "$(dirname "$0")/functions.sh"

MAN=$top_builddir/doc/gpupv-prep.1
[ -f "$MAN" ] || fail "no manual page at $MAN (make builds it)"

commands=$("$GPUPV_PREP" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' |
  grep -v '^help$')
[ -n "$commands" ] || fail "--help lists no commands"
n=0
for c in $commands; do
  # Long options of the command's help (without the ones every command
  # takes, which the page lists once) and of its .SS section.
  "$GPUPV_PREP" help "$c" | sed -n '/^Options:/,/^$/p' |
    grep -o -- '--[a-z0-9-]*' | grep -v -x -e --quiet -e --verbose -e --no-progress |
    sort -u >"$TMP/help"
  sed 's/\\-/-/g' "$MAN" | awk -v c="$c" '
    /^\.SS / { on = (index($0, ".SS \"" c " ") == 1); next }
    /^\.SH / { on = 0 }
    on' | grep '^\.B ' | grep -o -- '--[a-z0-9-]*' |
    sort -u >"$TMP/man"
  [ -s "$TMP/help" ] || fail "$c: help lists no options"
  diff -u "$TMP/help" "$TMP/man" >"$TMP/diff" ||
    fail "$c: the manual page and help differ: $(cat "$TMP/diff")"
  n=$((n + 1))
done
# Exit codes and environment variables.
"$GPUPV_PREP" --help | sed -n '/^Exit status:/,/^$/p' | sed -n 's/^  \([0-9][0-9N+]*\) .*/\1/p' >"$TMP/help"
sed -n '/^\.SH "EXIT STATUS"/,/^\.SH /p' "$MAN" | sed -n 's/^\.B \([0-9N+]*\)$/\1/p' >"$TMP/man"
diff -u "$TMP/help" "$TMP/man" >"$TMP/diff" || fail "exit codes differ: $(cat "$TMP/diff")"
"$GPUPV_PREP" --help | sed -n '/^Environment:/,/^$/p' | grep -o '^  [A-Z_0-9]*=' >"$TMP/help"
sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$MAN" | sed -n 's/^\.B \([A-Z_0-9]*=\).*/  \1/p' >"$TMP/man"
[ -s "$TMP/help" ] || fail "--help lists no environment"
diff -u "$TMP/help" "$TMP/man" >"$TMP/diff" || fail "environment differs: $(cat "$TMP/diff")"
# Every variable the tool reads is listed.
for v in $(grep -ho 'getenv("[A-Z_0-9]*")' "$top_srcdir"/src/*.c | sed 's/getenv("\(.*\)")/\1/' | sort -u); do
  grep -q "^  $v=" "$TMP/help" || fail "the tool reads $v, which --help does not list"
done
pass "the manual page lists the options of $n commands, the exit codes and the environment as --help does"

if command -v groff >/dev/null 2>&1; then
  groff -man -ww -z "$MAN" >"$TMP/groff" 2>&1
  [ -s "$TMP/groff" ] && fail "groff warns: $(cat "$TMP/groff")"
  pass "the manual page renders without warnings"
fi

if command -v bash >/dev/null 2>&1; then
  mkdir -p "$TMP/bin"
  ln -s "$GPUPV_PREP" "$TMP/bin/gpupv-prep"
  complete() {  # WORDS...: what completing the last word offers
    PATH=$TMP/bin:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@");
      COMP_CWORD=$(($# - 1)); _gpupv_prep; printf "%s\n" "${COMPREPLY[@]}"' \
      sh "$top_srcdir/completion/gpupv-prep" "$@"
  }
  complete gpupv-prep st | grep -qx stage || fail "completion: no 'stage'"
  complete gpupv-prep stage img --dry | grep -qx -- --dry-run || fail "completion: no --dry-run"
  complete gpupv-prep -q verify x --j | grep -qx -- --json || fail "completion: verify --json"
  complete gpupv-prep help com | grep -qx compact || fail "completion: help compact"
  pass "bash completion offers commands and options from the help"
fi
