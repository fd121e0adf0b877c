#!/bin/sh
# stage --driverstore-links: a junction System32\DriverStore\FileRepository\
# PKG -> HostDriverStore\FileRepository\PKG per staged package, read back
# by libfsntfs (fsntfsinfo: tag, substitute and print name), sleuthkit
# (istat: a reparse point without a descriptor of its own) and ntfs-3g's
# ntfsinfo (the parent's index entry carries the reparse tag, as dir
# shows <JUNCTION>); updates move it to the new package, remove and
# --no-driverstore-links take it away, a real folder of that name is
# refused by name with the image unchanged, and a manifest that names
# another target is refused.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit jq fls istat fsntfsinfo ntfsinfo sfdisk

IMG=$TMP/d.img
mkgpt_windows "$IMG"
# Windows always has its own store; the test guest gets one package in it.
echo x >"$TMP/other.inf"
"$IMGTOOL" put "$IMG" 3 Windows/System32/DriverStore/FileRepository/other.inf_amd64_1/other.inf "$TMP/other.inf"
mkpkg() {  # DIR DRIVERVER
  mkdir -p "$1"
  printf '[Version]\r\nDriverVer = %s\r\n' "$2" >"$1/nv_dispig.inf"
  head -c 5000 /dev/urandom >"$1/nvlddmkm.sys"
}
V1=$TMP/v1/nv_dispig.inf_amd64_1111111111111111
V2=$TMP/v2/nv_dispig.inf_amd64_2222222222222222
mkpkg "$V1" "10/23/2023,31.0.15.4601"
mkpkg "$V2" "11/30/2023,31.0.15.4633"
DS='Windows/System32/DriverStore/FileRepository'

off=
# junction NAME: checks the junction DriverStore\...\NAME in $IMG.
junction() {
  off=$(sfdisk -J "$IMG" | jq ".partitiontable.partitions[2].start")
  inode=$(fls -r -p -u -o "$off" "$IMG" | awk -F '\t' -v p="$DS/$1" '
    tolower($2) == tolower(p) { split($1, a, " "); sub(/-.*/, "", a[2]); print a[2]; exit }')
  [ -n "$inode" ] || fail "no $DS/$1"
  fsntfsinfo -o $((off * 512)) -E "$inode" "$IMG" >"$TMP/fi" 2>&1 || fail "fsntfsinfo: $(tail -3 "$TMP/fi")"
  grep -q 'Tag[[:space:]]*: 0xa0000003' "$TMP/fi" || fail "$1: not a mount-point reparse point: $(cat "$TMP/fi")"
  grep -q "Substitute name[[:space:]]*: \\\\??\\\\C:\\\\Windows\\\\System32\\\\HostDriverStore\\\\FileRepository\\\\$1\$" "$TMP/fi" ||
    fail "$1: substitute name: $(grep -i 'name' "$TMP/fi")"
  grep -q "Print name[[:space:]]*: C:\\\\Windows\\\\System32\\\\HostDriverStore\\\\FileRepository\\\\$1\$" "$TMP/fi" ||
    fail "$1: print name: $(grep -i 'name' "$TMP/fi")"
  istat -o "$off" "$IMG" "$inode" >"$TMP/is"
  grep -q 'Flags: Reparse Point' "$TMP/is" || fail "$1: no REPARSE_POINT flag"
  grep -q 'Allocated Directory' "$TMP/is" || fail "$1: not a directory"
  ! grep -q 'SECURITY_DESCRIPTOR' "$TMP/is" || fail "$1: has its own security descriptor"
  # The folder it sits in lists it as a junction (what dir shows).
  dd if="$IMG" of="$TMP/p.ntfs" bs=512 skip="$off" status=none
  ntfsinfo -F "/$DS" -v "$TMP/p.ntfs" 2>/dev/null | grep -B3 "Filename:.*'$1'" >"$TMP/ie"
  grep -q 'File attributes:.*REPARSE_POINT' "$TMP/ie" &&
    grep -q 'Reparse point tag:[[:space:]]*0xa0000003' "$TMP/ie" ||
    fail "$1: the folder's index entry does not show a junction: $(cat "$TMP/ie")"
  rm -f "$TMP/p.ntfs"
}
gone() {
  ! fls -r -p -u -o "$off" "$IMG" | grep -qi "	$DS/$1\$" || fail "$DS/$1 is still there"
}

# A dry run plans the junction and writes nothing.
before=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage --dry-run "$IMG" "$V1" --driverstore-links --json
expect_eq "$(jqv '[.system_files[] | select(.action == "linked")] | length')" 1 "dry run: one junction"
expect_eq "$(sha "$IMG")" "$before" "the dry run changed the image"

run 0 "$GPUPV_PREP" stage "$IMG" "$V1" --driverstore-links --json
N1=$(basename "$V1") N2=$(basename "$V2")
expect_eq "$(jqv '.system_files[0].target')" \
  "C:\\Windows\\System32\\HostDriverStore\\FileRepository\\$N1" "reported target"
junction "$N1"
run 0 "$GPUPV_PREP" verify "$IMG" --json
expect_eq "$(jqv .verified)" true "verify after the junction"
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/m.json"
expect_eq "$(jq -r '.system_files[0].link' "$TMP/m.json")" \
  "C:\\Windows\\System32\\HostDriverStore\\FileRepository\\$N1" "manifest link"
pass "junction made, read back by libfsntfs, sleuthkit and ntfsinfo"

# A re-run (with or without the option) changes nothing.
after=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage "$IMG" "$V1" --json
expect_eq "$(jqv .changed)" false "re-run without the option"
run 0 "$GPUPV_PREP" stage "$IMG" "$V1" --driverstore-links --json
expect_eq "$(jqv .changed)" false "re-run with the option"
expect_eq "$(sha "$IMG")" "$after" "a re-run changed the image"
pass "re-runs leave the image byte-identical"

# An update moves the junction to the new package, without the option.
run 0 "$GPUPV_PREP" stage "$IMG" "$V2" --json
junction "$N2"
gone "$N1"
run 0 "$GPUPV_PREP" verify "$IMG" --json
expect_eq "$(jqv .verified)" true "verify after the update"
pass "an update replaces the junction with the new package's"

# --no-driverstore-links takes it away; the option brings it back.
run 0 "$GPUPV_PREP" stage "$IMG" "$V2" --no-driverstore-links --json
expect_eq "$(jqv .changed)" true "--no-driverstore-links changes the image"
gone "$N2"
run 0 "$GPUPV_PREP" stage "$IMG" "$V2" --driverstore-links
junction "$N2"
pass "--no-driverstore-links removes it, --driverstore-links makes it again"

# A manifest whose junction record names another place or target is
# refused before anything is done with it.
MAN=Windows/System32/HostDriverStore/gpupv-prep.json
guest_file "$IMG" raw "$MAN" "$TMP/good.json" || fail "no manifest"
cp "$IMG" "$TMP/linked.raw"
for f in '.system_files[0].link = "C:\\Windows\\System32\\config"' \
    '.system_files[0].dest = "\\Windows\\System32\\config"' \
    '.system_files[0].link = "C:\\Windows\\System32\\HostDriverStore\\FileRepository\\..\\..\\config"' \
    '.system_files[0].package = "other.inf_amd64_1"'; do
  cp "$TMP/linked.raw" "$IMG"
  jq -c "$f" "$TMP/good.json" >"$TMP/lie.json"
  "$IMGTOOL" put "$IMG" 3 "$MAN" "$TMP/lie.json"
  before=$(sha "$IMG")
  run 3 "$GPUPV_PREP" remove "$IMG"
  grep -q 'system_files\[0\] names .*DriverStore junction gpupv-prep places' "$TMP/err" ||
    fail "lie $f: $(cat "$TMP/err")"
  expect_eq "$(sha "$IMG")" "$before" "lie $f: the image changed"
done
cp "$TMP/linked.raw" "$IMG"
pass "junction records naming another place or target are refused"

# remove takes it away with its package; the guest's own store stays.
run 0 "$GPUPV_PREP" remove "$IMG" --json
gone "$N2"
fls -r -p -u -o "$off" "$IMG" | grep -q "	$DS/other.inf_amd64_1/other.inf\$" ||
  fail "remove touched the guest's own DriverStore"
pass "remove deletes the junction, the guest's own packages stay"

# A real folder of the package's name is never replaced.
"$IMGTOOL" put "$IMG" 3 "$DS/$N1/real.inf" "$TMP/other.inf"
before=$(sha "$IMG")
run 1 "$GPUPV_PREP" stage "$IMG" "$V1" --driverstore-links
grep -q "FileRepository.$N1 exists and is not a junction gpupv-prep made" "$TMP/err" ||
  fail "real folder: $(cat "$TMP/err")"
expect_eq "$(sha "$IMG")" "$before" "the refusal changed the image"
pass "a real DriverStore folder of that name is refused by name, image unchanged"

# A guest without a DriverStore is refused by name.
mkgpt_windows "$TMP/bare.img"
run 1 "$GPUPV_PREP" stage "$TMP/bare.img" "$V1" --driverstore-links
grep -q 'DriverStore.FileRepository: the guest has no such folder' "$TMP/err" ||
  fail "no DriverStore: $(cat "$TMP/err")"
# A Linux guest has no DriverStore to link: a usage error, nothing written.
if command -v mke2fs >/dev/null; then
  mkdir -p "$TMP/lx/etc"
  echo 'ID=debian' >"$TMP/lx/etc/os-release"
  linux_layout "$TMP/lx.img" "$TMP/lx" 8 || fail "linux_layout"
  before=$(sha "$TMP/lx.img")
  run 2 "$GPUPV_PREP" stage "$TMP/lx.img" "$V1" --driverstore-links
  grep -q 'holds Linux; --driverstore-links links a Windows guest' "$TMP/err" ||
    fail "Linux guest: $(cat "$TMP/err")"
  expect_eq "$(sha "$TMP/lx.img")" "$before" "Linux guest: the image changed"
fi
pass "a guest without a DriverStore, or a Linux guest, is refused by name"
