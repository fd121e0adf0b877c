#!/bin/sh
# bench/stage.sh: `gpupv-prep stage` of a package shaped like NVIDIA
# 546.01's nv_dispig.inf_amd64_677da8a9230cea15 FileRepository folder
# (about 1.4 GiB of incompressible data) into a 64 GiB dynamic VHDX laid
# out as a Windows guest, timed against the floor: `cp -r` of the same
# tree onto the host file system followed by `sync`.  Runs alternate;
# prints the median ratio, stage's peak RSS and the no-op re-run time.
# Targets: ratio <= 1.3, peak RSS <= 64 MiB, no-op re-run < 1 s.
# Usage: bench/stage.sh [BUILD_DIR] [RUNS]
set -eu
build=$(cd "${1:-.}" && pwd)
runs=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
listing="$src/../shared/corpus/listings/nvidia_546.01_FileRepository_nv_dispig.inf_amd64_677da8a9230cea15.tsv"
export PATH="$PATH:/usr/sbin:/sbin"
[ -f "$listing" ] || { echo "bench: $listing not found (the corpus)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The large files the uploader left out, at sizes of the real driver (MiB).
large_size() {
  case "$1" in
  nvlddmkm.sys) echo 95 ;; nvd3dumx.dll) echo 90 ;; nvd3dum.dll) echo 75 ;;
  nvwgf2umx.dll) echo 85 ;; nvwgf2um.dll) echo 70 ;; nvoglv64.dll) echo 60 ;;
  nvoglv32.dll) echo 45 ;; libcuda.so.1.1) echo 60 ;; libnvidia-nvvm.so.4) echo 45 ;;
  libnvidia-ptxjitcompiler.so.1) echo 30 ;; libnvwgf2umx.so) echo 75 ;;
  nvgpucomp64.dll) echo 65 ;; nvoptix.bin) echo 240 ;; nvoptix.dll) echo 35 ;;
  nvrtum64.dll) echo 30 ;; nvvm32.dll) echo 20 ;; nvvm64.dll) echo 25 ;;
  *) echo "" ;;
  esac
}
pkg="$tmp/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$pkg"
echo "bench: generating the package (about 1.4 GiB of random data) ..."
large=$(sed -n 's/^# Excluded by uploader[^:]*: \([^(]*\).*/\1/p' "$listing")
grep -v '^#' "$listing" | while IFS="$(printf '\t')" read -r size rel; do
  mkdir -p "$pkg/$(dirname "$rel")"
  if [ "$size" = "?" ]; then
    mb=$(large_size "$(basename "$rel")")
    size=$(( ${mb:-4} * 1024 * 1024 ))
  fi
  head -c "$size" /dev/urandom >"$pkg/$rel"
done
for f in $large; do
  [ -n "$(find "$pkg" -name "$f" -print -quit)" ] ||
    head -c $(($(large_size "$f") * 1024 * 1024)) /dev/urandom >"$pkg/$f"
done
[ -n "$(find "$pkg" -maxdepth 1 -iname '*.inf' -print -quit)" ] ||
  printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$pkg/nv_dispig.inf"
total=$(du -sb "$pkg" | cut -f1)
echo "bench: package: $(find "$pkg" -type f | wc -l) files, $((total / 1048576)) MiB"

echo "bench: building a 64 GiB dynamic VHDX Windows guest ..."
. "$src/data/guest-layout.sh"
guest_layout "$tmp/g.raw" 64G 100 >/dev/null
qemu-img convert -f raw -O vhdx -o block_size=32M "$tmp/g.raw" "$tmp/base.vhdx"
rm -f "$tmp/g.raw"
"$build/tests/imgtool" mkhive "$tmp/SYSTEM"
"$build/tests/imgtool" put "$tmp/base.vhdx" 3 Windows/System32/config/SYSTEM "$tmp/SYSTEM"

now() { date +%s%N; }
ratios=""
for i in $(seq "$runs"); do
  rm -rf "$tmp/copy"; cp "$tmp/base.vhdx" "$tmp/g.vhdx"; sync
  t0=$(now); cp -r "$pkg" "$tmp/copy"; sync; t1=$(now)
  floor=$((t1 - t0))
  t0=$(now)
  /usr/bin/time -f %M -o "$tmp/rss" "$build/gpupv-prep" stage "$tmp/g.vhdx" "$pkg" >/dev/null
  sync; t1=$(now)
  st=$((t1 - t0))
  r=$(awk -v a="$st" -v b="$floor" 'BEGIN { printf "%.3f", a / b }')
  echo "bench: run $i: stage $((st / 1000000)) ms, cp -r + sync $((floor / 1000000)) ms, ratio $r, peak RSS $(($(cat "$tmp/rss") / 1024)) MiB"
  ratios="$ratios $r"
  rss=$(cat "$tmp/rss")
done
t0=$(now); "$build/gpupv-prep" stage "$tmp/g.vhdx" "$pkg" >/dev/null; t1=$(now)
median=$(echo $ratios | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "stage/floor median ratio: $median (target <= 1.3)"
echo "stage peak RSS: $((rss / 1024)) MiB (target <= 64)"
echo "no-op re-run: $(((t1 - t0) / 1000000)) ms (target < 1000)"
qemu-img check -q "$tmp/g.vhdx" && echo "qemu-img check: clean"
