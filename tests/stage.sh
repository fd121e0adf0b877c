#!/bin/sh
# stage, remove, verify on every image kind the foundation reads.  What
# lands in NTFS is judged by sleuthkit (fls, icat, istat) on a raw copy
# made by qemu-img; the container by qemu-img check.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit fls icat istat jq tar gzip

# A package shaped like a FileRepository folder: deep nesting, an empty
# file, Unicode, spaces, mixed case, and a file large enough to be split.
PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG/Display.NvContainer/plugins/LocalSystem/a/b/c/d" "$PKG/NvCamera"
printf '[Version]\r\nSignature="$Windows NT$"\r\nClass=Display\r\nDriverVer = 10/23/2023,31.0.15.4601 ; NVIDIA\r\n' >"$PKG/nv_dispig.inf"
head -c 5000000 /dev/urandom >"$PKG/nvlddmkm.sys"
head -c 70000 /dev/urandom >"$PKG/NvCamera/NvCameraAllowlisting64.dll"
: >"$PKG/Display.NvContainer/empty.dat"
echo "plugin" >"$PKG/Display.NvContainer/plugins/LocalSystem/a/b/c/d/Deep Name.DLL"
echo "unicode" >"$PKG/NvCamera/Ünïcödé ✓.txt"
echo "x" >"$PKG/MixedCase_File.Bin"
touch -d '2023-10-23 12:34:56.789' "$PKG/nvlddmkm.sys"

# One full cycle on IMAGE: dry run, stage, re-run, verify, remove, verify.
cycle() {
  img=$1 fmt=$2; shift 2
  before=$(sha "$img")
  run 0 "$GPUPV_PREP" stage --dry-run "$img" "$PKG" --json "$@"
  expect_eq "$(jqv '.packages[0].action')" stage "$img: dry-run plan"
  expect_eq "$(jqv .verified)" true "$img: dry run read back"
  expect_eq "$(sha "$img")" "$before" "$img: --dry-run changed the image"
  run 0 "$GPUPV_PREP" stage "$img" "$PKG" "$@"
  check_staged "$img" "$fmt" "$PKG"
  after=$(sha "$img")
  run 0 "$GPUPV_PREP" stage "$img" "$PKG" --json "$@"
  expect_eq "$(jqv .changed)" false "$img: identical re-run"
  expect_eq "$(jqv '.packages[0].action')" unchanged "$img: identical re-run"
  expect_eq "$(sha "$img")" "$after" "$img: an identical re-run changed the image"
  run 0 "$GPUPV_PREP" verify "$img" --json "$@"
  expect_eq "$(jqv .verified)" true "$img: verify"
  # remove takes the package as stage did: its folder on the host.
  run 0 "$GPUPV_PREP" remove "$img" "$PKG" --json "$@"
  expect_eq "$(jqv '[.packages[] | .name + ":" + .action] | join(",")')" \
    "$(basename "$PKG"):remove" "$img: remove by the host path"
  run 1 "$GPUPV_PREP" verify "$img" "$@"
  grep -q "nothing staged" "$TMP/err" || fail "$img: verify after remove"
  run 0 "$GPUPV_PREP" inspect --json "$img"
  expect_eq "$(jqv '.host_driver_store | length')" 0 "$img: empty after remove"
  [ "$fmt" != vhdx ] || qemu-img check -q "$img" || fail "$img: check after remove"
  pass "$img"
}

mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx -o block_size=8M "$TMP/g.raw" "$TMP/dyn.vhdx"
qemu-img convert -f raw -O vhdx -o subformat=fixed "$TMP/g.raw" "$TMP/fixed.vhdx"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$TMP/g.raw" "$TMP/dyn.vhd"
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$TMP/g.raw" "$TMP/fixed.vhd"
cycle "$TMP/dyn.vhdx" vhdx
cycle "$TMP/fixed.vhdx" vhdx
cycle "$TMP/dyn.vhd" vpc
cycle "$TMP/fixed.vhd" vpc
cycle "$TMP/g.raw" raw
# With 8.3 aliases: setting each DOS name (libntfs-3g re-files the entry)
# must leave every file's and folder's times as the package has them.
cp "$TMP/g.raw" "$TMP/sn.raw"
run 0 "$GPUPV_PREP" stage "$TMP/sn.raw" "$PKG" --short-names on
check_staged "$TMP/sn.raw" raw "$PKG"
rm -f "$TMP/sn.raw"
pass "8.3 aliases on: times and contents as the package has them"

# A disk of 4096-byte logical sectors (a VHDX made by imgtool: qemu-img
# makes only 512): staged, and verify reads it back through libvhdi with
# that sector size (it used to call the partition table corrupt).
truncate -s 160M "$TMP/k4.raw"
printf 'start=256, size=40704, type=7\n' | sfdisk -q "$TMP/k4.raw"
truncate -s $((40704 * 4096)) "$TMP/k4.ntfs"
mkntfs -F -Q -q -s 4096 -p 256 -L Windows "$TMP/k4.ntfs" >/dev/null 2>&1 ||
  fail "mkntfs -s 4096"
dd if="$TMP/k4.ntfs" of="$TMP/k4.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm "$TMP/k4.ntfs"
"$IMGTOOL" mkvhdx "$TMP/k4.raw" "$TMP/k4.vhdx" 4096
"$IMGTOOL" put "$TMP/k4.vhdx" 1 Windows/System32/config/SYSTEM "$TMP/SYSTEM"
"$IMGTOOL" put "$TMP/k4.vhdx" 1 Windows/System32/config/SOFTWARE "$TMP/SOFTWARE"
run 0 "$GPUPV_PREP" inspect "$TMP/k4.vhdx" --json
expect_eq "$(jqv .image.logical_sector_size)" 4096 "4K: sector size"
expect_eq "$(jqv .windows.partition)" 1 "4K: Windows found"
run 0 "$GPUPV_PREP" stage "$TMP/k4.vhdx" "$PKG"
run 0 "$GPUPV_PREP" verify "$TMP/k4.vhdx" --json
expect_eq "$(jqv .reader)" libvhdi "4K: verify's reader"
expect_eq "$(jqv .verified)" true "4K: verify through libvhdi"
# Read back by libvhdi and sleuthkit (qemu-img reads only 512-byte
# sectors): the volume starts at 1 MiB.
"$IMGTOOL" vhdi-dump "$TMP/k4.vhdx" "$TMP/k4.out" || fail "4K: libvhdi cannot read it"
fls -r -p -o 2048 "$TMP/k4.out" >"$TMP/k4.fls" || fail "4K: fls"
ino=$(grep "FileRepository/$(basename "$PKG")/nvlddmkm.sys\$" "$TMP/k4.fls" |
  sed 's/^[^ ]* \([0-9-]*\):.*/\1/' | cut -d- -f1)
[ -n "$ino" ] || fail "4K: nvlddmkm.sys not found by fls: $(grep -c . "$TMP/k4.fls") entries"
icat -o 2048 "$TMP/k4.out" "$ino" | cmp -s - "$PKG/nvlddmkm.sys" ||
  fail "4K: nvlddmkm.sys differs through libvhdi and sleuthkit"
rm -f "$TMP/k4.raw" "$TMP/k4.out"
pass "a 4096-byte-sector VHDX: staged, verified through libvhdi"

# MBR, with WINDOWS\SYSTEM32 in upper case: found, not doubled.
truncate -s 160M "$TMP/mbr.raw"
echo 'start=2048, type=7' | sfdisk -q "$TMP/mbr.raw" >/dev/null
mkntfs_at "$TMP/mbr.raw" 2048 $((160 * 2048 - 2048)) Windows
rm -f "$TMP/SYSTEM"; mkhive_system "$TMP/SYSTEM"
"$IMGTOOL" put "$TMP/mbr.raw" 1 WINDOWS/SYSTEM32/config/SYSTEM "$TMP/SYSTEM"
run 0 "$GPUPV_PREP" stage "$TMP/mbr.raw" "$PKG"
PART=1 check_staged "$TMP/mbr.raw" raw "$PKG"
fls -o 2048 "$TMP/mbr.raw" | grep -qi '	windows$' || fail "mbr: no WINDOWS"
[ "$(fls -o 2048 "$TMP/mbr.raw" | grep -ci '	windows$')" = 1 ] || fail "mbr: a second windows folder"
fls -r -p -o 2048 "$TMP/mbr.raw" | grep -q 'WINDOWS/SYSTEM32/HostDriverStore/FileRepository/' ||
  fail "mbr: HostDriverStore not under WINDOWS/SYSTEM32"
pass "mbr, upper-case WINDOWS\\SYSTEM32"

# Archives of each kind; a folder holding packages.
(cd "$TMP/src" && tar cf "$TMP/p.tar" nv_dispig.inf_amd64_677da8a9230cea15 &&
  tar czf "$TMP/p.tar.gz" nv_dispig.inf_amd64_677da8a9230cea15)
if command -v zip >/dev/null; then
  (cd "$TMP/src" && zip -qr "$TMP/p.zip" nv_dispig.inf_amd64_677da8a9230cea15)
  # Written to a pipe, zip streams: sizes follow each entry in a data
  # descriptor.  With 100 KB appended the central directory is out of
  # libarchive's sight and it reads the entries as a stream; the staged
  # files must still be whole (check_staged below, through verify).
  (cd "$TMP/src" && zip -qr - nv_dispig.inf_amd64_677da8a9230cea15 | cat >"$TMP/p-stream.zip")
  head -c 100000 /dev/urandom >>"$TMP/p-stream.zip"
fi
if command -v gcab >/dev/null; then
  (cd "$TMP/src" && find nv_dispig.inf_amd64_677da8a9230cea15 -type f |
    tr '\n' '\0' | xargs -0 gcab -c "$TMP/p.cab")
fi
for a in "$TMP/p.tar" "$TMP/p.tar.gz" "$TMP/p.zip" "$TMP/p-stream.zip" "$TMP/p.cab" "$TMP/src"; do
  [ -e "$a" ] || { echo "  (no tool to make ${a##*/})"; continue; }
  cp "$TMP/dyn.vhdx" "$TMP/a.vhdx"
  run 0 "$GPUPV_PREP" stage "$TMP/a.vhdx" "$a" --json
  expect_eq "$(jqv '.packages[0].name')" nv_dispig.inf_amd64_677da8a9230cea15 "${a##*/}"
  expect_eq "$(jqv '.packages[0].driver_ver')" "10/23/2023,31.0.15.4601" "${a##*/}: DriverVer"
  expect_eq "$(jqv '.packages[0].bytes')" "$(find "$PKG" -type f -exec cat {} + | wc -c)" "${a##*/}: bytes staged"
  # (a cab keeps times in the 2-second steps of DOS time, so an odd
  # second cannot come back: a cab is checked by its hashes only)
  case $a in *.cab) ;; *) check_staged "$TMP/a.vhdx" vhdx "$PKG" ;; esac
  run 0 "$GPUPV_PREP" verify "$TMP/a.vhdx"
  pass "package from ${a##*/}"
done

# A newer package of the same INF replaces the one we staged; a folder we
# did not stage is left alone and stops the run.
NEW="$TMP/src2/nv_dispig.inf_amd64_1111111111111111"
mkdir -p "$NEW"
sed 's/31.0.15.4601/31.0.15.5555/' "$PKG/nv_dispig.inf" >"$NEW/nv_dispig.inf"
echo new >"$NEW/nvlddmkm.sys"
cp "$TMP/dyn.vhdx" "$TMP/r.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/r.vhdx" "$PKG"
run 0 "$GPUPV_PREP" stage "$TMP/r.vhdx" "$NEW" --json
expect_eq "$(jqv '[.packages[] | .action] | sort | join(",")')" "remove,stage" "newer version"
run 0 "$GPUPV_PREP" inspect --json "$TMP/r.vhdx"
expect_eq "$(jqv '[.host_driver_store[].package] | join(",")')" nv_dispig.inf_amd64_1111111111111111 "replaced"
"$IMGTOOL" mkdir "$TMP/r.vhdx" 3 Windows/System32/HostDriverStore/FileRepository/nv_dispig.inf_amd64_677da8a9230cea15
before=$(sha "$TMP/r.vhdx")
run 1 "$GPUPV_PREP" stage "$TMP/r.vhdx" "$PKG"
grep -q "not staged by gpupv-prep" "$TMP/err" || fail "foreign folder not reported"
expect_eq "$(sha "$TMP/r.vhdx")" "$before" "refused run changed the image"
pass "replacement and foreign folders"

# Names Windows cannot hold; links out of the package; archive escapes.
for bad in 'a:b.dll' 'CON.dll' 'trail.' 'pipe|x'; do
  B="$TMP/bad/x.inf_amd64_0"; rm -rf "$TMP/bad"; mkdir -p "$B"
  echo '[Version]' >"$B/x.inf"; echo 1 >"$B/$bad"
  run 10 "$GPUPV_PREP" stage "$TMP/dyn.vhdx" "$B"
  grep -q -F "$bad" "$TMP/err" || fail "bad name '$bad' not named"
done
rm -rf "$TMP/bad"; mkdir -p "$B"; echo '[Version]' >"$B/x.inf"
ln -s /etc/passwd "$B/evil.dll"
run 10 "$GPUPV_PREP" stage "$TMP/dyn.vhdx" "$B"
grep -q "evil.dll" "$TMP/err" || fail "link out of the package not named"
mkdir -p "$TMP/esc/pkg.inf_x"; echo '[Version]' >"$TMP/esc/pkg.inf_x/pkg.inf"
tar cf "$TMP/esc.tar" -C "$TMP/esc" pkg.inf_x --transform 's|^pkg.inf_x/pkg.inf|../../escape.inf|'
run 10 "$GPUPV_PREP" stage "$TMP/dyn.vhdx" "$TMP/esc.tar"
grep -q "escape.inf" "$TMP/err" || fail "archive escape not named"
pass "bad names, links and archive escapes refused"

# A volume too small for the package: a clear error, the image unchanged.
guest_layout "$TMP/small.raw" 64M 32 >/dev/null
"$IMGTOOL" put "$TMP/small.raw" 3 Windows/System32/config/SYSTEM "$TMP/SYSTEM"
BIG="$TMP/big/big.inf_amd64_0"; mkdir -p "$BIG"; echo '[Version]' >"$BIG/big.inf"
head -c 40000000 /dev/urandom >"$BIG/huge.bin"
before=$(sha "$TMP/small.raw")
run 1 "$GPUPV_PREP" stage "$TMP/small.raw" "$BIG"
grep -q "free" "$TMP/err" || fail "no clear message for a full volume"
expect_eq "$(sha "$TMP/small.raw")" "$before" "a failed stage changed the image"
pass "volume too small"
