#!/bin/sh
# make demo: build a sample Windows guest disk the way Hyper-V lays one
# out - a dynamic VHDX with GPT, an EFI system partition, an MSR and an
# NTFS Windows volume whose System32\config holds SYSTEM and SOFTWARE
# hives made by the project's own code (then filled through hivex) - then
# stage the sample driver package of data/sample-package into it (dry run,
# for real, and again to show the re-run writes nothing), verify it through
# libvhdi and inspect the result; then the same package into a small
# Linux guest (ext4).  Everything goes into demo-out/
set -eu
build=${1:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
out="$build/demo-out"
tool="$build/gpupv-prep"
imgtool="$build/tests/imgtool"
export PATH="$PATH:/usr/sbin:/sbin"

for t in qemu-img sgdisk mkntfs mkfs.fat hivexregedit mke2fs e2fsck debugfs sfdisk; do
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

# A Linux guest: a tiny ext4 root made with mke2fs -d, on GPT, in a VHDX.
echo
echo "demo: building a Linux guest disk (GPT, ext4 root made with mke2fs -d) ..."
lroot="$out/linux-root"
mkdir -p "$lroot/etc" "$lroot/usr/lib/modules/6.1.0-28-amd64" "$lroot/etc/ld.so.conf.d"
ln -s usr/lib "$lroot/lib"
printf '%s\n' 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' 'NAME="Debian GNU/Linux"' \
  'VERSION_ID="12"' 'ID=debian' >"$lroot/etc/os-release"
linux_layout "$out/linux.raw" "$lroot" 64
qemu-img convert -f raw -O vhdx "$out/linux.raw" "$out/linux.vhdx"
rm -rf "$lroot" "$out/linux.raw"
echo
echo "\$ gpupv-prep stage demo-out/linux.vhdx data/sample-package/..."
"$tool" stage "$out/linux.vhdx" "$pkg" 2>&1
echo
echo "\$ gpupv-prep inspect demo-out/linux.vhdx"
(cd "$build" && "$tool" inspect demo-out/linux.vhdx)
echo
echo "demo: e2fsck -fn of the staged ext4 root:"
qemu-img convert -f vhdx -O raw "$out/linux.vhdx" "$out/linux.raw"
dd if="$out/linux.raw" of="$out/linux.ext4" bs=1M skip=1 status=none
e2fsck -fn "$out/linux.ext4" 2>&1 | tail -1 | sed 's/^/  /'
debugfs -R 'ls -l /usr/lib/wsl/lib' "$out/linux.ext4" 2>/dev/null | sed 's/^/  /'
rm -f "$out/linux.raw" "$out/linux.ext4"
