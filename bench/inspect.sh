#!/bin/sh
# bench/inspect.sh: how long `gpupv-prep inspect --json` takes on a 64 GiB
# dynamic VHDX laid out as a Windows guest, as a ratio against
# `qemu-img info` on the same file, both run side by side on this machine.
# Usage: bench/inspect.sh [BUILD_DIR] [RUNS]
set -eu
build=$(cd "${1:-.}" && pwd)
runs=${2:-20}
size=64G
# BENCH_SMOKE=1 (make check): a small disk and two runs, to prove the
# script works; nothing about time is asserted.
[ "${BENCH_SMOKE:-0}" != 1 ] || { runs=2 size=2G; }
src=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The demo's guest, grown to 64 GiB.
raw="$tmp/g.raw"
. "$src/data/guest-layout.sh"
guest_layout "$raw" "$size" 100 >/dev/null
qemu-img convert -f raw -O vhdx -o block_size=32M "$raw" "$tmp/g.vhdx"
rm -f "$raw"
guest_hives "$tmp/g.vhdx" 3 "$build/tests/imgtool"

now() { date +%s%N; }
time_runs() {  # prints nanoseconds for $runs runs of "$@"
  t0=$(now)
  i=0
  while [ "$i" -lt "$runs" ]; do
    "$@" >/dev/null
    i=$((i + 1))
  done
  echo $(($(now) - t0))
}
# Warm the page cache for both, then alternate to share any drift.
qemu-img info "$tmp/g.vhdx" >/dev/null
"$build/gpupv-prep" inspect --json "$tmp/g.vhdx" >/dev/null
q=0 g=0
for round in 1 2 3; do
  q=$((q + $(time_runs qemu-img info --output=json "$tmp/g.vhdx")))
  g=$((g + $(time_runs "$build/gpupv-prep" inspect --json "$tmp/g.vhdx")))
done
n=$((runs * 3))
echo "file: $size dynamic VHDX, $(stat -c %s "$tmp/g.vhdx") bytes on disk"
echo "qemu-img info:       $((q / n / 1000)) us per run ($n runs)"
echo "gpupv-prep inspect:  $((g / n / 1000)) us per run ($n runs)"
awk -v g="$g" -v q="$q" 'BEGIN { printf "ratio inspect/info:  %.2f\n", g / q }'
