#!/bin/sh
# bench/stage.sh: staging a package the size of NVIDIA 546.01's
# nv_dispig.inf_amd64_677da8a9230cea15 FileRepository folder (174 files,
# about 1.4 GiB of incompressible data, its INF with 14 CopyToVm files and
# the nvlddmkm service) into a 64 GiB dynamic VHDX (32 MiB blocks) laid out
# as a Windows guest.  Everything is measured side by side on this machine:
#
#   stage         time against the floor: `cp -r` of the same tree onto the
#                 host file system, then `sync` (runs alternate; median)
#   growth        file growth per byte staged
#   update        version 1 -> version 2 (another folder, later DriverVer)
#                 against the same floor for version 2
#   kill leak     file size after two runs killed part-way and a good run,
#                 against one good run
#   peak RSS      of stage
#   no-op re-run  time of a run that has nothing to do (median of 5)
#   inspect       `inspect --json` against `qemu-img info` on the staged
#                 image (ratio of 10 runs each)
#
# With the corpus (../shared/corpus) the package follows the real folder's
# listing and INF; without it, a generated listing of the same shape and an
# INF with CopyToVm lines.  BENCH_SMOKE=1 shrinks everything (sizes / 512,
# a 4 GiB image, one run) so that `make check` proves the script runs;
# nothing is asserted about time.
# Usage: bench/stage.sh [BUILD_DIR] [RUNS]
set -eu
build=$(cd "${1:-.}" && pwd)
runs=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
corpus=${GPUPV_CORPUS:-$src/../shared/corpus}
listing="$corpus/listings/nvidia_546.01_FileRepository_nv_dispig.inf_amd64_677da8a9230cea15.tsv"
nvinf="$corpus/inf/vendor-proprietary/nvidia_546.01_nv_dispig.inf"
export PATH="$PATH:/usr/sbin:/sbin"
tool="$build/gpupv-prep"
smoke=${BENCH_SMOKE:-0}
if [ "$smoke" = 1 ]; then
  scale=512 disk=4G runs=1 iruns=2
else
  scale=1 disk=64G iruns=10
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say() { echo "bench: $*"; }

# The large files the uploader left out, at sizes of the real driver (MiB).
large_size() {
  case "$1" in
  nvlddmkm.sys) echo 95 ;; nvd3dumx.dll) echo 90 ;; nvd3dum.dll) echo 75 ;;
  nvwgf2umx.dll) echo 85 ;; nvwgf2um.dll) echo 70 ;; nvoglv64.dll) echo 60 ;;
  nvoglv32.dll) echo 45 ;; libcuda.so.1.1) echo 60 ;; libnvidia-nvvm.so.4) echo 45 ;;
  libnvidia-ptxjitcompiler.so.1) echo 30 ;; libnvwgf2umx.so) echo 75 ;;
  nvgpucomp64.dll) echo 65 ;; nvoptix.bin) echo 240 ;; nvoptix.dll) echo 35 ;;
  nvrtum64.dll) echo 30 ;; nvvm32.dll) echo 20 ;; nvvm64.dll) echo 25 ;;
  *) echo 4 ;;
  esac
}
LARGE="libcuda.so.1.1 libnvidia-nvvm.so.4 libnvidia-ptxjitcompiler.so.1 libnvwgf2umx.so nvd3dum.dll nvd3dumx.dll nvgpucomp64.dll nvlddmkm.sys nvoglv32.dll nvoglv64.dll nvoptix.bin nvoptix.dll nvrtum64.dll nvvm32.dll nvvm64.dll nvwgf2um.dll nvwgf2umx.dll"
COPYTOVM="nvcudadebugger.dll nvcuda_loader64.dll nvcuvid64.dll nvEncodeAPI64.dll nvapi64.dll nvml_loader.dll OpenCL64.dll vulkan-1-x64.dll nvcuda_loader32.dll nvcuvid32.dll nvEncodeAPI.dll nvapi.dll OpenCL32.dll vulkan-1-x86.dll"

# The listing: "SIZE<TAB>PATH" lines ("?" = a large file).
if [ -f "$listing" ] && [ -f "$nvinf" ]; then
  grep -v '^#' "$listing" >"$tmp/list"
  # The large files the uploader left out, and the CopyToVm sources the
  # listing lacks (sizes as the real driver's).
  for f in $LARGE $COPYTOVM; do
    grep -q "/$f\$\|	$f\$" "$tmp/list" || printf '?\t%s\n' "$f" >>"$tmp/list"
  done
  say "package after the corpus listing and INF of NVIDIA 546.01"
else
  # Same shape: 157 small files in a few folders, the 17 large ones, and
  # the 14 files the INF's CopyToVm lines name.
  i=0
  for f in $COPYTOVM; do printf '%d\t%s\n' $((400000 + i * 91813)) "$f"; i=$((i + 1)); done >"$tmp/list"
  while [ "$i" -lt 157 ]; do
    case $((i % 4)) in 0) d="" ;; 1) d="Display.NvContainer/" ;; 2) d="NvCamera/" ;; *) d="NvTelemetry/plugins/" ;; esac
    printf '%d\t%sfile%03d.dll\n' $(( (i * 104729) % 4000000 + 2000 )) "$d" "$i" >>"$tmp/list"
    i=$((i + 1))
  done
  for f in $LARGE; do printf '?\t%s\n' "$f" >>"$tmp/list"; done
  say "package generated in the shape of NVIDIA 546.01 (no corpus at $corpus)"
fi

# mkpkg DIR DRIVERVER: the package, its INF with DRIVERVER.
mkpkg() {
  mkdir -p "$1"
  while IFS="$(printf '\t')" read -r size rel; do
    mkdir -p "$1/$(dirname "$rel")"
    [ "$size" != "?" ] || size=$(( $(large_size "$(basename "$rel")") * 1048576 ))
    head -c $((size / scale + 1)) /dev/urandom >"$1/$rel"
  done <"$tmp/list"
  if [ -f "$nvinf" ]; then
    sed "s|^DriverVer *=.*|DriverVer = $2\r|" "$nvinf" >"$1/nv_dispig.inf"
  else
    {
      printf '[Version]\r\nSignature="$Windows NT$"\r\nClass=Display\r\n'
      printf 'ClassGuid={4d36e968-e325-11ce-bfc1-08002be10318}\r\nDriverVer = %s\r\n\r\n' "$2"
      printf '[nv_disp.reg]\r\n'
      for f in $COPYTOVM; do
        case $f in *32.dll|*-x86.dll|nvapi.dll|nvEncodeAPI.dll) k=CopyToVmWhenNewerWow64 ;; *) k=CopyToVmOverwrite ;; esac
        printf 'HKR,"%s",%s,%%REG_MULTI_SZ%%,"%s"\r\n' "$k" "${f%.dll}" "$f"
      done
      printf '\r\n[Strings]\r\nREG_MULTI_SZ = 0x00010000\r\n'
    } >"$1/nv_dispig.inf"
  fi
}
V1="$tmp/v1/nv_dispig.inf_amd64_677da8a9230cea15"
V2="$tmp/v2/nv_dispig.inf_amd64_8e2f06b1a3c4d5e6"
say "generating version 1 and version 2 of the package ..."
mkpkg "$V1" "10/26/2023,31.0.15.4601"
mkpkg "$V2" "11/14/2023,31.0.15.4633"
total=$(du -sb "$V1" | cut -f1)
say "package: $(find "$V1" -type f | wc -l) files, $((total / 1048576)) MiB"

say "building a $disk dynamic VHDX Windows guest (32 MiB blocks) ..."
. "$src/data/guest-layout.sh"
guest_layout "$tmp/g.raw" "$disk" 100 >/dev/null
qemu-img convert -f raw -O vhdx -o block_size=32M "$tmp/g.raw" "$tmp/base.vhdx"
rm -f "$tmp/g.raw"
guest_hives "$tmp/base.vhdx" 3 "$build/tests/imgtool"
"$build/tests/imgtool" mkdir "$tmp/base.vhdx" 3 Windows/SysWOW64

. "$(dirname "$0")/common.inc"
time_cmd() {  # nanoseconds of CMD
  t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo $((t1 - t0))
}
# run_timed VAR RSSFILE CMD...: run CMD and sync; its nanoseconds go to
# VAR, its peak RSS (KiB) to RSSFILE, its output to $tmp/last.json.
run_timed() {
  var=$1 rss=$2
  shift 2
  t0=$(now)
  /usr/bin/time -f %M -o "$rss" "$@" >"$tmp/last.json" 2>"$tmp/last.err" ||
    { cat "$tmp/last.err" >&2; exit 1; }
  sync
  t1=$(now)
  eval "$var=\$((t1 - t0))"
}

ratios="" uratios="" rss_max=0 grow="" ugrow=""
for i in $(seq "$runs"); do
  cp "$tmp/base.vhdx" "$tmp/g.vhdx"
  sync
  fl=$(floor "$V1")
  s0=$(size "$tmp/g.vhdx")
  run_timed st "$tmp/rss" "$tool" stage "$tmp/g.vhdx" "$V1" --json
  s1=$(size "$tmp/g.vhdx")
  staged=$(jq -r .bytes_written "$tmp/last.json")
  rss=$(cat "$tmp/rss"); [ "$rss" -le "$rss_max" ] || rss_max=$rss
  r=$(ratio "$st" "$fl")
  grow=$(ratio $((s1 - s0)) "$staged")
  ratios="$ratios $r"
  say "run $i: stage $((st / 1000000)) ms, cp -r + sync $((fl / 1000000)) ms, ratio $r; file +$((s1 - s0)) bytes for $staged staged ($grow); peak RSS $((rss / 1024)) MiB"
  # The update to version 2.
  fl=$(floor "$V2")
  run_timed ut "$tmp/rss" "$tool" stage "$tmp/g.vhdx" "$V2" --json
  s2=$(size "$tmp/g.vhdx")
  rss=$(cat "$tmp/rss"); [ "$rss" -le "$rss_max" ] || rss_max=$rss
  [ "$(jq -r '[.packages[].action] | sort | join(",")' "$tmp/last.json")" = "remove,stage" ] ||
    { say "update did not replace version 1"; exit 1; }
  ur=$(ratio "$ut" "$fl")
  ugrow=$(ratio $((s2 - s1)) "$(jq -r .bytes_written "$tmp/last.json")")
  uratios="$uratios $ur"
  say "run $i: update v1 -> v2 $((ut / 1000000)) ms, cp -r + sync $((fl / 1000000)) ms, ratio $ur; file +$((s2 - s1)) bytes ($ugrow)"
done
good=$s1

# No-op re-run.
noops=""
for i in 1 2 3 4 5; do noops="$noops $(time_cmd "$tool" stage "$tmp/g.vhdx" "$V2")"; done
noop=$(echo "$noops" | median)

# inspect --json against qemu-img info, side by side.
ti=0 tq=0
for i in $(seq "$iruns"); do
  ti=$((ti + $(time_cmd "$tool" inspect --json "$tmp/g.vhdx")))
  tq=$((tq + $(time_cmd qemu-img info "$tmp/g.vhdx")))
done
ir=$(ratio "$ti" "$tq")

# Two runs killed part-way (a third and two thirds of a run's time), then
# a good run: the file ends the size of one good run.
cp "$tmp/base.vhdx" "$tmp/k.vhdx"
for frac in 3 2; do
  "$tool" stage "$tmp/k.vhdx" "$V1" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v t="$st" -v f="$frac" 'BEGIN { printf "%.3f", t / 1e9 / f }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
"$tool" stage "$tmp/k.vhdx" "$V1" >/dev/null
leak=$(( $(size "$tmp/k.vhdx") - good ))
qemu-img check -q "$tmp/g.vhdx"
qemu-img check -q "$tmp/k.vhdx"

echo
echo "stage/floor median ratio:     $(echo "$ratios" | median)   (target <= 1.1)"
echo "growth per byte staged:       $grow   (target <= 1.05)"
echo "update v1->v2/floor ratio:    $(echo "$uratios" | median)   (target <= 1.3; growth $ugrow)"
echo "kill leak:                    $leak bytes ($((leak / 33554432)) blocks of 32 MiB; target within one)"
echo "stage peak RSS:               $((rss_max / 1024)) MiB   (target <= 64)"
echo "no-op re-run:                 $((noop / 1000000)) ms   (target < 50)"
echo "inspect/qemu-img info ratio:  $ir   (target <= 2)"
echo "qemu-img check: clean"
