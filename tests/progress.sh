#!/bin/sh
# The progress line, as a terminal shows it: runs under a pseudo-terminal
# (script(1)) of 40 and 120 columns, the output replayed by a small
# terminal model (tests/term.mjs).  Every update fits the width (no
# wrapped lines), erases what it overwrites (no stale text), each phase
# with totals ends on them, and nothing is drawn when stderr is not a
# terminal, or with -q or --no-progress.  -v traces, -q silences stdout.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit script node stty

PKG="$TMP/src/big.inf_amd64_0123456789abcdef"
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$PKG/big.inf"
i=0
while [ $i -lt 120 ]; do
  head -c 300000 /dev/urandom >"$PKG/file-with-a-long-name-$i.bin"
  i=$((i + 1))
done
mkgpt_windows "$TMP/g.raw"
NFILES=121

# tty WIDTH NAME ARGS...: gpupv-prep ARGS under a terminal of WIDTH
# columns; the screen it leaves in $TMP/NAME.screen.
tty() {
  twidth=$1 tname=$2; shift 2
  printf '%s ' "$GPUPV_PREP" "$@" >"$TMP/cmd"
  script -qec "stty cols $twidth rows 50; $(cat "$TMP/cmd") >$TMP/$tname.out" \
    "$TMP/$tname.raw" >/dev/null 2>&1 || fail "$tname: the run failed: $(cat "$TMP/$tname.raw")"
  # script(1) frames the typescript with lines of its own.
  grep -av '^Script \(started\|done\) on ' "$TMP/$tname.raw" >"$TMP/$tname.tty"
  node "$top_srcdir/tests/term.mjs" "$twidth" "$TMP/$tname.tty" >"$TMP/$tname.screen" ||
    fail "$tname: $(cat "$TMP/$tname.screen")"
}
# Lines a phase may leave: its name, then counts and sizes, nothing else.
PHASE='^(copying the image|staging|reading back|verifying)(: [0-9]+/[0-9]+ files)?[:,] [0-9.]+ [KMG]?i?B(ytes)? of [0-9.]+ [KMG]?i?B(ytes)? in [0-9.]+ s$'

for width in 40 120; do
  cp "$TMP/g.raw" "$TMP/w.raw"
  tty $width "dry$width" stage "$TMP/w.raw" "$PKG" --dry-run
  tty $width "stage$width" stage "$TMP/w.raw" "$PKG"
  tty $width "verify$width" verify "$TMP/w.raw"
  tty $width "out$width" stage "$TMP/g.raw" "$PKG" --output "$TMP/o$width.vhdx"
  for n in dry stage verify out; do
    s=$TMP/$n$width.screen
    grep -v '^$' "$s" >"$TMP/lines" || true
    # At 40 columns a long line is cut, never wrapped: compare what
    # fits.
    while IFS= read -r l; do
      if [ $width -ge 120 ]; then
        printf '%s\n' "$l" | grep -Eq "$PHASE" ||
          fail "$n at $width columns: a line that is not a finished phase: '$l'"
      else
        [ ${#l} -le 39 ] || fail "$n at $width columns: '$l' is too long"
      fi
    done <"$TMP/lines"
  done
  if [ $width -ge 120 ]; then
    grep -q "^staging: $NFILES/$NFILES files, " "$TMP/stage$width.screen" ||
      fail "staging does not end on $NFILES/$NFILES: $(cat "$TMP/stage$width.screen")"
    grep -q "^reading back: $((NFILES))/$NFILES files" "$TMP/dry$width.screen" ||
      fail "the dry run's read-back is not shown: $(cat "$TMP/dry$width.screen")"
    grep -q "^verifying: $NFILES/$NFILES files" "$TMP/verify$width.screen" ||
      fail "verify shows no progress: $(cat "$TMP/verify$width.screen")"
    grep -q "^copying the image: " "$TMP/out$width.screen" ||
      fail "--output: no copy progress: $(cat "$TMP/out$width.screen")"
    # The copy counts the bytes that hold data, not the virtual 160 MiB.
    grep "^copying the image: " "$TMP/out$width.screen" | grep -q "of 160.0 MiB" &&
      fail "--output counts virtual bytes: $(cat "$TMP/out$width.screen")"
  fi
done
pass "progress fits 40 and 120 columns, erases what it overwrites, ends on the totals"

# Not a terminal, -q, --no-progress: no progress drawn.
cp "$TMP/g.raw" "$TMP/q.raw"
run 0 "$GPUPV_PREP" stage "$TMP/q.raw" "$PKG" --dry-run
grep -q "$(printf '\r')" "$TMP/err" && fail "progress drawn on a file"
tty 120 quiet -q stage "$TMP/q.raw" "$PKG"
expect_eq "$(cat "$TMP/quiet.screen")" "" "-q: progress drawn"
[ -s "$TMP/quiet.out" ] && fail "-q: stdout not empty: $(cat "$TMP/quiet.out")"
tty 120 np verify "$TMP/q.raw" --no-progress
expect_eq "$(cat "$TMP/np.screen")" "" "--no-progress: progress drawn"
grep -q "files checked" "$TMP/np.out" || fail "--no-progress lost the report"
run 0 "$GPUPV_PREP" -v verify "$TMP/q.raw"
grep -q "^gpupv-prep: debug: " "$TMP/err" || fail "-v traces nothing"
pass "no progress off a terminal, with -q or --no-progress; -v traces"
