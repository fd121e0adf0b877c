#!/bin/sh
# make demo: build a sample Windows guest disk the way Hyper-V lays one
# out - a dynamic VHDX with GPT, an EFI system partition, an MSR and an
# NTFS Windows volume whose System32\config holds SYSTEM and SOFTWARE
# hives made by the project's own code (then filled through hivex) - then
# stage the sample driver package of data/sample-package into it (dry run,
# for real, and again to show the re-run writes nothing), verify it through
# libvhdi and inspect the result.  Everything goes into demo-out/.
set -eu
build=${1:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
out="$build/demo-out"
tool="$build/gpupv-prep"
imgtool="$build/tests/imgtool"
export PATH="$PATH:/usr/sbin:/sbin"

for t in qemu-img sgdisk mkntfs mkfs.fat hivexregedit; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "demo: $t is missing; run ./bootstrap.sh first" >&2
    exit 1
  }
done

rm -rf "$out"
mkdir -p "$out"
raw="$out/guest.raw"
echo "demo: building a 2 GiB guest disk (GPT: ESP, MSR, NTFS) ..."
. "$src/data/guest-layout.sh"
guest_layout "$raw" 2G 100 >/dev/null

echo "demo: converting to a dynamic VHDX (32 MiB blocks, as Hyper-V makes) ..."
qemu-img convert -f raw -O vhdx -o block_size=32M "$raw" "$out/guest.vhdx"
rm -f "$raw"

echo "demo: writing the registry hives into the VHDX through gpupv-prep's own"
echo "      VHDX writer and libntfs-3g ..."
guest_hives "$out/guest.vhdx" 3 "$imgtool"

pkg="$src/data/sample-package/gpupvdemo.inf_amd64_5a1e0c0ffee0d00d"
echo
reg="$src/data/sample.reg"
echo "\$ gpupv-prep stage --dry-run demo-out/guest.vhdx data/sample-package/... --reg data/sample.reg --disable-fast-startup"
"$tool" stage --dry-run "$out/guest.vhdx" "$pkg" --reg "$reg" --disable-fast-startup
echo
echo "\$ gpupv-prep stage demo-out/guest.vhdx data/sample-package/... --reg data/sample.reg --disable-fast-startup"
"$tool" stage "$out/guest.vhdx" "$pkg" --reg "$reg" --disable-fast-startup
echo
echo "\$ gpupv-prep stage demo-out/guest.vhdx data/sample-package/... --reg data/sample.reg --disable-fast-startup   (again)"
"$tool" stage "$out/guest.vhdx" "$pkg" --reg "$reg" --disable-fast-startup
echo
echo "\$ gpupv-prep verify demo-out/guest.vhdx"
"$tool" verify "$out/guest.vhdx"
echo
echo "demo: qemu-img check of the result:"
qemu-img check "$out/guest.vhdx" | sed 's/^/  /'
echo
echo "\$ gpupv-prep inspect demo-out/guest.vhdx"
(cd "$build" && "$tool" inspect demo-out/guest.vhdx)
