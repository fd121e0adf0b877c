#!/bin/sh
# bench/linux.sh: staging a package of NVIDIA 546.01's shape (174 files,
# about 1.4 GiB of incompressible data, an INF whose 11,lxss\lib section
# places its Linux libraries) into a Linux guest: ext4 on a GPT partition
# of a 64 GiB dynamic VHDX (32 MiB blocks).  Measured side by side on this
# machine:
#
#   stage         time against the floor: `cp -r` of the same tree onto the
#                 host file system, then `sync` (runs alternate; median)
#   growth        file growth per byte staged
#   update        version 1 -> version 2 (another folder) against the same
#                 floor, and its growth per byte staged
#   no-op re-run  time of a run that has nothing to do
#
# BENCH_SMOKE=1 shrinks everything (sizes / 512, a 4 GiB image, one run) so
# that `make check` proves the script runs; nothing is asserted about time.
# Usage: bench/linux.sh [BUILD_DIR] [RUNS]
set -eu
build=$(cd "${1:-.}" && pwd)
runs=${2:-3}
export PATH="$PATH:/usr/sbin:/sbin"
tool="$build/gpupv-prep"
smoke=${BENCH_SMOKE:-0}
if [ "$smoke" = 1 ]; then
  scale=512 disk=4G runs=1
else
  scale=1 disk=64G
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say() { echo "bench: $*"; }

LARGE="libcuda_loader.so:60 libnvidia-nvvm.so.4:45 libnvidia-ptxjitcompiler.so.1:30
  libnvwgf2umx.so:75 nvd3dum.dll:75 nvd3dumx.dll:90 nvgpucomp64.dll:65
  nvlddmkm.sys:95 nvoglv32.dll:45 nvoglv64.dll:60 nvoptix.bin:240 nvoptix.dll:35
  nvrtum64.dll:30 nvvm32.dll:20 nvvm64.dll:25 nvwgf2um.dll:70 nvwgf2umx.dll:85"

# mkpkg DIR: 157 small files in a few folders, the 17 large ones, and an
# INF placing the Linux libraries under several names.
mkpkg() {
  mkdir -p "$1"
  for e in $LARGE; do
    head -c $(( ${e#*:} * 1048576 / scale + 1 )) /dev/urandom >"$1/${e%%:*}"
  done
  i=0
  while [ "$i" -lt 157 ]; do
    case $((i % 4)) in 0) d="" ;; 1) d="Display.NvContainer/" ;; 2) d="NvCamera/" ;; *) d="NvTelemetry/plugins/" ;; esac
    mkdir -p "$1/$d"
    head -c $(( ((i * 104729) % 4000000 + 2000) / scale + 1 )) /dev/urandom >"$1/${d}file$i.dll"
    i=$((i + 1))
  done
  printf '%s\r\n' '[Version]' 'Class = Display' "DriverVer = $2" '' \
    '[DestinationDirs]' 'nv_libcuda_copyfiles = 11,lxss\lib' '' \
    '[nv_libcuda_copyfiles]' 'libcuda.so,libcuda_loader.so' \
    'libcuda.so.1,libcuda_loader.so' 'libcuda.so.1.1,libcuda_loader.so' \
    'libnvidia-nvvm.so.4' 'libnvidia-ptxjitcompiler.so.1' 'libnvwgf2umx.so' \
    >"$1/nv_dispig.inf"
}
V1="$tmp/v1/nv_dispig.inf_amd64_677da8a9230cea15"
V2="$tmp/v2/nv_dispig.inf_amd64_8e2f06b1a3c4d5e6"
say "generating version 1 and version 2 of the package ..."
mkpkg "$V1" "10/26/2023,31.0.15.4601"
mkpkg "$V2" "11/14/2023,31.0.15.4633"
total=$(du -sb "$V1" | cut -f1)
say "package: $(find "$V1" -type f | wc -l) files, $((total / 1048576)) MiB"

say "building a $disk dynamic VHDX Linux guest (ext4, 32 MiB blocks) ..."
mkdir -p "$tmp/root/etc" "$tmp/root/usr/lib/modules/6.1.0-28-amd64"
printf 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' >"$tmp/root/etc/os-release"
truncate -s "$disk" "$tmp/g.raw"
printf 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
  sfdisk -q "$tmp/g.raw" >/dev/null 2>&1
sectors=$(sfdisk -d "$tmp/g.raw" | sed -n 's/.*size= *\([0-9]*\).*/\1/p')
truncate -s $((sectors * 512)) "$tmp/p.ext"
mke2fs -q -F -t ext4 -d "$tmp/root" "$tmp/p.ext" >/dev/null
dd if="$tmp/p.ext" of="$tmp/g.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$tmp/p.ext"
qemu-img convert -f raw -O vhdx -o block_size=32M "$tmp/g.raw" "$tmp/base.vhdx"
rm -f "$tmp/g.raw"

. "$(dirname "$0")/common.inc"
timed() {
  t0=$(now); "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  sync; t1=$(now); echo $((t1 - t0))
}

ratios="" uratios="" grow="" ugrow="" noops=""
for i in $(seq "$runs"); do
  cp "$tmp/base.vhdx" "$tmp/t.vhdx"
  s0=$(size "$tmp/t.vhdx")
  fl=$(floor "$V1")
  st=$(timed "$tool" stage "$tmp/t.vhdx" "$V1")
  s1=$(size "$tmp/t.vhdx")
  ratios="$ratios $(ratio "$st" "$fl")"
  grow="$grow $(ratio $((s1 - s0)) "$total")"
  noops="$noops $(timed "$tool" stage "$tmp/t.vhdx" "$V1")"
  fl=$(floor "$V2")
  ut=$(timed "$tool" stage "$tmp/t.vhdx" "$V2")
  s2=$(size "$tmp/t.vhdx")
  uratios="$uratios $(ratio "$ut" "$fl")"
  ugrow="$ugrow $(ratio $((s2 - s1)) "$total")"
  "$tool" verify "$tmp/t.vhdx" >/dev/null
done
echo "stage/floor median ratio:     $(echo "$ratios" | median)"
echo "growth per byte staged:       $(echo "$grow" | median)"
echo "update v1->v2/floor ratio:    $(echo "$uratios" | median)   (growth $(echo "$ugrow" | median))"
echo "no-op re-run:                 $(( $(echo "$noops" | median) / 1000000 )) ms"
