#!/bin/sh
# CopyToVm (Microsoft's GPU-PV document): the files an INF names go to
# System32 or SysWOW64 under their guest names; Overwrite replaces and
# keeps the original, WhenNewer compares the PE file version; remove puts
# the originals back.  Judged by sleuthkit on the image.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit fls icat jq sfdisk

# mkpe FILE VERSION: a file carrying a version resource's fixed info
# (VS_VERSION_INFO, 0xFEEF04BD, FileVersionMS = VERSION << 16).
mkpe() {
  {
    printf 'MZ fake image, not runnable\0\0'
    printf 'VS_VERSION_INFO' | sed 's/./&\n/g' | tr -d '\n' | iconv -f ASCII -t UTF-16LE
    printf '\0\0\0\0'			# NUL, then padding to 32 bits
    printf '\275\004\357\376\0\0\1\0'	# signature, struct version
    printf "\\000\\000\\$(printf '%03o' "$2")\\000\\000\\000\\000\\000"
    printf '%s' "$1"
  } >"$1"
}

PKG="$TMP/src/vgpu.inf_amd64_0123456789abcdef"
mkdir -p "$PKG/sub"
cat >"$PKG/vgpu.inf" <<'EOF'
[Version]
Signature = "$Windows NT$"
Class = Display
DriverVer = 05/01/2024, 32.0.15.6094

[Install.NT]
AddReg = files_addreg

[files_addreg]
HKR,"CopyToVmOverwrite",Plain,%REG_SZ%,"plain.dll"
HKR,"CopyToVmOverwrite",Renamed,%REG_MULTI_SZ%,"sub\umd64.dll","umd.dll"
HKR,"CopyToVmWhenNewer",Newer,%REG_MULTI_SZ%,"newer.dll"
HKR,"CopyToVmWhenNewer",Older,%REG_MULTI_SZ%,"older.dll"
HKR,"vgpu\CopyToVmOverwriteWow64",Wow,%REG_MULTI_SZ%,"sub\umd32.dll"
HKR,"vgpu\CopyToVmOverwriteWow64",Wow,%REG_SZ_APPEND%,"umd.dll"
HKR,"CopyToVmOverwrite",Missing,%REG_SZ%,"absent.dll"

[Strings]
REG_SZ = 0x00000000
REG_MULTI_SZ = 0x00010000
REG_SZ_APPEND = 0x00010008
EOF
echo plain >"$PKG/plain.dll"
echo umd64 >"$PKG/sub/umd64.dll"
echo umd32 >"$PKG/sub/umd32.dll"
mkpe "$PKG/newer.dll" 5
mkpe "$PKG/older.dll" 2

IMG=$TMP/d.img
mkgpt_windows "$IMG"
# What the guest has before: its own umd.dll, an older newer.dll, a newer
# older.dll, and a SysWOW64 folder.
echo guest-umd >"$TMP/g-umd.dll"
mkpe "$TMP/g-newer.dll" 3
mkpe "$TMP/g-older.dll" 9
"$IMGTOOL" put "$IMG" 3 Windows/System32/umd.dll "$TMP/g-umd.dll"
"$IMGTOOL" put "$IMG" 3 Windows/System32/newer.dll "$TMP/g-newer.dll"
"$IMGTOOL" put "$IMG" 3 Windows/System32/older.dll "$TMP/g-older.dll"
"$IMGTOOL" put "$IMG" 3 Windows/SysWOW64/kernel32.dll "$TMP/g-umd.dll"

run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --json
jqv '.warnings[]' | grep -q 'absent.dll, which package' || fail "missing source not reported"
expect_eq "$(jqv '.system_files | length')" 4 "files copied"
expect_eq "$(jqv .system_files_kept)" 1 "WhenNewer kept the guest's newer file"
same() {
  guest_file "$IMG" raw "$1" "$TMP/got" || fail "$1 missing"
  cmp -s "$TMP/got" "$2" || fail "$1 is not $2"
}
same Windows/System32/plain.dll "$PKG/plain.dll"
same Windows/System32/umd.dll "$PKG/sub/umd64.dll"
same Windows/System32/newer.dll "$PKG/newer.dll"
same Windows/System32/older.dll "$TMP/g-older.dll"
same Windows/SysWOW64/umd.dll "$PKG/sub/umd32.dll"
same Windows/System32/HostDriverStore/gpupv-prep-originals/System32/umd.dll "$TMP/g-umd.dll"
same Windows/System32/HostDriverStore/gpupv-prep-originals/System32/newer.dll "$TMP/g-newer.dll"
guest_file "$IMG" raw Windows/System32/absent.dll "$TMP/got" && fail "absent.dll appeared"
run 0 "$GPUPV_PREP" inspect "$IMG" --json
expect_eq "$(jqv '.host_driver_store[0].driver_ver')" "05/01/2024,32.0.15.6094" "inspect: DriverVer"
expect_eq "$(jqv '.host_driver_store[0].wddm')" "WDDM 3.2" "inspect: WDDM hint"
run 0 "$GPUPV_PREP" verify "$IMG" --json
expect_eq "$(jqv .verified)" true "verify with System32 copies"
pass "CopyToVm: Overwrite, WhenNewer by file version, Wow64, renames"

after=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --json
expect_eq "$(jqv .changed)" false "re-run"
expect_eq "$(sha "$IMG")" "$after" "a re-run changed the image"

# --inf-section naming a section that does not exist is refused.
run 2 "$GPUPV_PREP" stage "$IMG" "$PKG" --inf-section Nope
grep -q 'no install section \[Nope\]' "$TMP/err" || fail "--inf-section: $(cat "$TMP/err")"

run 0 "$GPUPV_PREP" remove "$IMG"
same Windows/System32/umd.dll "$TMP/g-umd.dll"
same Windows/System32/newer.dll "$TMP/g-newer.dll"
same Windows/System32/older.dll "$TMP/g-older.dll"
for f in System32/plain.dll SysWOW64/umd.dll \
    System32/HostDriverStore/gpupv-prep-originals/System32/umd.dll; do
  guest_file "$IMG" raw "Windows/$f" "$TMP/got" && fail "remove left $f"
done
pass "remove deletes the copies and restores the guest's files"

# A malformed INF stops the run by file and line; nothing is written.
for case in 'before:Signature = x\r\n[Version]\r\n:1: a line before any [section]' \
    'bracket:[Version]\r\nDriverVer = 1/1/2024,1.0\r\n[Broken\r\n:3: section name without its closing' ; do
  name=${case%%:*} rest=${case#*:}
  text=${rest%:*:*} iwant=:${rest#"$text":}
  BAD="$TMP/bad/$name.inf_amd64_0000000000000000"
  mkdir -p "$BAD"
  printf "$text" >"$BAD/$name.inf"
  before=$(sha "$IMG")
  run 10 "$GPUPV_PREP" stage "$IMG" "$BAD"
  grep -q -F "$name.inf$iwant" "$TMP/err" || fail "$name: $(cat "$TMP/err")"
  expect_eq "$(sha "$IMG")" "$before" "$name: the image changed"
done
pass "malformed INFs refused by line, image unchanged"
