#!/bin/sh
# bench/shortnames.sh: what 8.3 aliases cost in a folder of many similar
# names (FileRepository folders hold hundreds): the same package staged
# with --short-names on and off, side by side on this machine, at two
# sizes.  The ratio on/off should stay flat as the folder grows (each new
# alias costs a few lookups); a quadratic scheme shows it growing with
# the count.  Usage: bench/shortnames.sh [BUILD_DIR] [FILES]
set -eu
build=$(cd "${1:-.}" && pwd)
files=${2:-8000}
# BENCH_SMOKE=1 (make check): a few hundred names, to prove the script
# works; nothing about time is asserted.
[ "${BENCH_SMOKE:-0}" != 1 ] || files=400
src=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$src/data/guest-layout.sh"
guest_layout "$tmp/g.raw" 512M 100 >/dev/null
guest_hives "$tmp/g.raw" 3 "$build/tests/imgtool"

# pkg N: a package of N files whose names share their first 20 letters.
pkg() {
  d=$tmp/p$1/nvsimilar.inf_amd64_0123456789abcdef
  mkdir -p "$d"
  printf '[Version]\r\nDriverVer = 01/01/2024,1.0.0.0\r\n' >"$d/nvsimilar.inf"
  i=0
  while [ "$i" -lt "$1" ]; do
    printf x >"$d/nvidia-shared-component-$i.dll"
    i=$((i + 1))
  done
  echo "$d"
}
now() { date +%s%N; }
run() {  # PACKAGE on|off: milliseconds of one staging run
  cp --sparse=always "$tmp/g.raw" "$tmp/w.raw"
  t0=$(now)
  "$build/gpupv-prep" stage "$tmp/w.raw" "$1" --short-names "$2" >/dev/null
  echo $((($(now) - t0) / 1000000))
}
small=$((files / 4))
for n in "$small" "$files"; do
  p=$(pkg "$n")
  off=$(run "$p" off) on=$(run "$p" on)
  off2=$(run "$p" off) on2=$(run "$p" on)
  off=$(((off + off2) / 2)) on=$(((on + on2) / 2))
  echo "$n files: --short-names on $on ms, off $off ms, on/off $(awk "BEGIN { printf \"%.2f\", $on / ($off ? $off : 1) }")"
done
