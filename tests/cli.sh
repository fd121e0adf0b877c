#!/bin/sh
# CLI conventions: --version, help, usage errors with exit 2, messages
# that name the file, options before or after positional arguments.
. "$(dirname "$0")/functions.sh"

run 0 "$GPUPV_PREP" --version
grep -q '^gpupv-prep [0-9]' "$TMP/out" || fail "--version output"
run 0 "$GPUPV_PREP" --help
grep -q 'inspect' "$TMP/out" || fail "--help lists no commands"
grep -q 'Exit status' "$TMP/out" || fail "--help lacks exit codes"
run 0 "$GPUPV_PREP" help inspect
grep -q 'Usage: gpupv-prep inspect' "$TMP/out" || fail "help inspect"
run 0 "$GPUPV_PREP" inspect --help
grep -q -- '--json' "$TMP/out" || fail "inspect --help"

run 2 "$GPUPV_PREP"
run 2 "$GPUPV_PREP" frobnicate
grep -q "unknown command 'frobnicate'" "$TMP/err" || fail "unknown command message"
run 2 "$GPUPV_PREP" inspect
grep -q 'missing IMAGE' "$TMP/err" || fail "missing image message"
run 2 "$GPUPV_PREP" inspect --bogus x.img
run 2 "$GPUPV_PREP" inspect --partition abc x.img
run 2 "$GPUPV_PREP" inspect a.img b.img

run 1 "$GPUPV_PREP" inspect "$TMP/does-not-exist.vhdx"
grep -q "^gpupv-prep: inspect: $TMP/does-not-exist.vhdx: No such file" "$TMP/err" ||
  fail "missing file message: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" -le 2 ] || fail "message longer than two lines"
run 1 "$GPUPV_PREP" inspect "$TMP"
grep -q "is a directory" "$TMP/err" || fail "directory message"

# Options after the positional argument.
truncate -s 1M "$TMP/blank.img"
run 0 "$GPUPV_PREP" inspect "$TMP/blank.img" --json
expect_eq "$(jqv .image.format)" raw "format of a blank file"
expect_eq "$(jqv .windows)" null "windows of a blank file"
run 0 "$GPUPV_PREP" inspect --json "$TMP/blank.img"
pass cli
