#!/bin/sh
# The manifest is read from the guest, so remove and updates treat it as
# input: records that name files gpupv-prep cannot have written are
# refused by name with nothing done; a created key that holds values
# gpupv-prep did not write stays; a System32 file the guest changed since
# stays; what the guest added inside a staged folder is named, and goes
# only with --force.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit jq fls icat fsstat sfdisk od

IMG=$TMP/img.raw
mkgpt_windows "$IMG"
"$IMGTOOL" mkdir "$IMG" 3 Windows/SysWOW64
PKG=$TMP/src/nv_t.inf_amd64_1111111111111111
mkdir -p "$PKG/sub"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n\r\n[nv.reg]\r\nHKR,"CopyToVmOverwrite",nvapi,%%REG_MULTI_SZ%%,"nvapi64.dll"\r\n\r\n[Strings]\r\nREG_MULTI_SZ = 0x00010000\r\n' >"$PKG/nv_t.inf"
head -c 5000 /dev/urandom >"$PKG/nvapi64.dll"
echo sub >"$PKG/sub/s.txt"
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --disable-fast-startup --json
expect_eq "$(jqv '.system_files | length')" 1 "System32 copies"
MAN=Windows/System32/HostDriverStore/gpupv-prep.json
guest_file "$IMG" raw "$MAN" "$TMP/good.json" || fail "no manifest"
cp "$IMG" "$TMP/staged.raw"

# lie JQ-FILTER: the guest's manifest rewritten by jq.
lie() {
  cp "$TMP/staged.raw" "$IMG"
  jq -c "$1" "$TMP/good.json" >"$TMP/lie.json"
  "$IMGTOOL" put "$IMG" 3 "$MAN" "$TMP/lie.json"
}
refused() {  # PATTERN ARGS...
  pat=$1
  shift
  before=$(sha "$IMG")
  run 3 "$GPUPV_PREP" "$@"
  grep -q -- "$pat" "$TMP/err" || fail "expected '$pat' in: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/err")" -le 2 ] || fail "message over two lines"
  expect_eq "$(sha "$IMG")" "$before" "refused ($pat), yet the image changed"
}
lie '.system_files[0].dest = "\\Windows\\System32\\config\\SOFTWARE"'
refused 'system_files\[0\] names \\Windows\\System32\\config\\SOFTWARE' remove "$IMG"
lie '.system_files[0].backup = "\\Windows\\System32\\ntoskrnl.exe"'
refused 'no System32, SysWOW64 or /usr/lib/wsl file or DriverStore junction gpupv-prep places' remove "$IMG"
lie '.packages[0].files[0].path = "../../config/SYSTEM"'
refused "lists '../../config/SYSTEM'" remove "$IMG"
lie '.packages[0].name = ".."'
refused "packages\[0\] is named '..'" stage "$IMG" "$PKG"
pass "records naming what gpupv-prep cannot have written are refused"

# A created key that is not empty is the guest's (or a lie): it stays.
lie '.registry += [{"op": "created", "hive": "SYSTEM", "key": "ControlSet001\\Control", "origin": "lie", "values": "recorded"}]'
run 0 "$GPUPV_PREP" remove "$IMG" --json
jqv '.warnings[]' | grep -q 'ControlSet001\\Control holds values' ||
  fail "no warning for the lying record: $(jqv '.warnings')"
guest_file "$IMG" raw Windows/System32/config/SYSTEM "$TMP/s.hive"
hivexregedit --export "$TMP/s.hive" '\ControlSet001\Control\GraphicsDrivers' |
  grep -q TdrDelay || fail "ControlSet001\\Control was deleted"
pass "a created key that holds values gpupv-prep did not write stays"

# A System32 file the guest changed since stays, and so does the original.
cp "$TMP/staged.raw" "$IMG"
echo "the guest's own update" >"$TMP/newer.dll"
"$IMGTOOL" put "$IMG" 3 Windows/System32/nvapi64.dll "$TMP/newer.dll"
run 0 "$GPUPV_PREP" remove "$IMG" --json
jqv '.warnings[]' | grep -q 'nvapi64.dll changed since gpupv-prep placed it' ||
  fail "no warning for the changed file: $(jqv '.warnings')"
guest_file "$IMG" raw Windows/System32/nvapi64.dll "$TMP/got.dll" || fail "the changed file is gone"
cmp -s "$TMP/got.dll" "$TMP/newer.dll" || fail "the changed file was replaced"
pass "a System32 file the guest changed is left as it is"

# The guest added files inside a staged folder.
cp "$TMP/staged.raw" "$IMG"
echo '[.ShellClassInfo]' >"$TMP/desktop.ini"
"$IMGTOOL" put "$IMG" 3 "Windows/System32/HostDriverStore/FileRepository/$(basename "$PKG")/sub/desktop.ini" "$TMP/desktop.ini"
before=$(sha "$IMG")
run 1 "$GPUPV_PREP" remove "$IMG"
grep -q 'sub holds desktop.ini that gpupv-prep did not stage' "$TMP/err" ||
  fail "the guest's file is not named: $(cat "$TMP/err")"
expect_eq "$(sha "$IMG")" "$before" "a refused remove changed the image"
run 0 "$GPUPV_PREP" remove "$IMG" --force --json
jqv '.warnings[]' | grep -q 'desktop.ini: deleted' || fail "--force does not say what it deleted"
run 0 "$GPUPV_PREP" inspect --json "$IMG"
expect_eq "$(jqv '.host_driver_store | length')" 0 "folders after remove --force"
pass "files the guest added are named, and go with --force"

# FileRepository made a reparse point (a junction): nothing is written
# through it.  The flag is set in the folder's $STANDARD_INFORMATION, found
# with sleuthkit (fls, fsstat), away from the record's fixup bytes.
cp "$TMP/staged.raw" "$IMG"
start=$(sfdisk -J "$IMG" 2>/dev/null | jq '.partitiontable.partitions[2].start')
inode=$(fls -r -p -D -o "$start" "$IMG" | awk -F'\t' 'tolower($2) == "windows/system32/hostdriverstore/filerepository" {
  split($1, a, " "); sub(/-.*/, "", a[2]); sub(/:$/, "", a[2]); print a[2]; exit }')
[ -n "$inode" ] || fail "FileRepository not found by fls"
mft=$(fsstat -o "$start" "$IMG" | sed -n 's/^First Cluster of MFT: *\([0-9]*\).*/\1/p')
cs=$(fsstat -o "$start" "$IMG" | sed -n 's/^Cluster Size: *\([0-9]*\).*/\1/p')
rec=$((start * 512 + mft * cs + inode * 1024))
u16() { od -An -tu2 -j "$1" -N2 "$IMG" | tr -d ' '; }
u32() { od -An -tu4 -j "$1" -N4 "$IMG" | tr -d ' '; }
a=$((rec + $(u16 $((rec + 20)))))
expect_eq "$(u32 "$a")" 16 "the first attribute is \$STANDARD_INFORMATION"
fl=$((a + $(u16 $((a + 20))) + 32))
"$IMGTOOL" poke "$IMG" "$fl" u32 $(( $(u32 "$fl") | 1024 ))
PKG2=$TMP/src2/nv_r.inf_amd64_2222222222222222
mkdir -p "$PKG2"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$PKG2/nv_r.inf"
echo r >"$PKG2/r.dll"
refused "'FileRepository' is a reparse point" stage "$IMG" "$PKG2"
refused "'FileRepository' is a reparse point" remove "$IMG"
pass "nothing is written through a reparse point"

# A staged file whose $DATA claims 2^62 bytes, then a negative size: verify
# and remove stop at once with the file named (they used to read zeros for
# ever, or abort in malloc).
for claim in 4611686018427387904 18446744073709551615; do
  cp "$TMP/staged.raw" "$IMG"
  inode=$(fls -r -p -o "$start" "$IMG" | awk -F'\t' -v p="FileRepository/$(basename "$PKG")/nvapi64.dll" '
    index(tolower($2), tolower(p)) { split($1, a, " "); sub(/-.*/, "", a[2]); sub(/:$/, "", a[2]); print a[2]; exit }')
  [ -n "$inode" ] || fail "nvapi64.dll not found by fls"
  rec=$((start * 512 + mft * cs + inode * 1024))
  a=$((rec + $(u16 $((rec + 20)))))
  while [ "$(u32 "$a")" != 128 ]; do
    len=$(u32 $((a + 4)))
    [ "$len" -gt 0 ] && [ $((a + len - rec)) -lt 1024 ] || fail "no \$DATA attribute"
    a=$((a + len))
  done
  off=$((a + 48 - rec))
  [ $((off % 512)) -lt 504 ] || fail "data_size lies on a fixup"
  "$IMGTOOL" poke "$IMG" $((a + 48)) u64 "$claim"
  run 3 timeout 60 "$GPUPV_PREP" verify "$IMG"
  grep -q "nvapi64.dll claims .* bytes, more than the volume holds" "$TMP/err" ||
    fail "verify of a $claim-byte claim: $(cat "$TMP/err")"
done
pass "sizes larger than the volume, or negative, are refused at once"
