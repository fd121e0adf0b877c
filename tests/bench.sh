#!/bin/sh
# Every script in bench/ in its smoke mode (BENCH_SMOKE=1: small inputs,
# one run), so that none can rot; nothing about time is asserted here.
. "${top_srcdir:-.}/tests/functions.sh"
requires qemu-img sgdisk mkntfs mkfs.fat hivexregedit jq mke2fs sfdisk
[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
for b in "$top_srcdir"/bench/*.sh; do
  BENCH_SMOKE=1 sh "$b" "$top_builddir" >"$TMP/bench.out" 2>&1 ||
    { cat "$TMP/bench.out" >&2; fail "$(basename "$b") failed"; }
  tail -3 "$TMP/bench.out"
  pass "$(basename "$b") runs"
done
