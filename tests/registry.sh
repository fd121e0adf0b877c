#!/bin/sh
# Registry edits of stage: a .reg import in Windows' own form (UTF-16LE
# with BOM, CRLF, wrapped hex lines) using every data form, judged against
# hivexregedit --merge of the same edits on the same hive and read back by
# hivexregedit and libregf; guest settings in every control set; remove
# restoring the hives; refusals (bad .reg, dirty hive, oversized value)
# that leave the image as it was.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit regfexport fls icat jq iconv \
  sfdisk

IMG=$TMP/d.img
mkgpt_windows "$IMG"
SYS=Windows/System32/config/SYSTEM
SW=Windows/System32/config/SOFTWARE
guest_file "$IMG" raw $SYS "$TMP/orig.SYSTEM" || fail "no SYSTEM hive"
guest_file "$IMG" raw $SW "$TMP/orig.SOFTWARE" || fail "no SOFTWARE hive"
hive_export "$TMP/orig.SYSTEM" "$TMP/orig.SYSTEM.reg"
hive_export "$TMP/orig.SOFTWARE" "$TMP/orig.SOFTWARE.reg"

# wrap: regedit's continuation lines ("  xx,xx,...,\").
wrap() { printf '%s' "$1" | sed 's/\(\([0-9a-f][0-9a-f],\)\{20\}\)/\1\\\n  /g'; }

IMGPATH='\SystemRoot\System32\DriverStore\FileRepository\nv.inf_amd64_1\nvlddmkm.sys'
HOSTPATH='\SystemRoot\System32\HostDriverStore\FileRepository\nv.inf_amd64_1\nvlddmkm.sys'
MULTI="$(utf16 'C:\Windows\System32\DriverStore\a.dll'),$(utf16 'DriverStoreX\b'),00,00"
HMULTI="$(utf16 'C:\Windows\System32\HostDriverStore\a.dll'),$(utf16 'DriverStoreX\b'),00,00"

cat >"$TMP/imp.txt" <<EOF
Windows Registry Editor Version 5.00

; exported from the host
[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\nvlddmkm]
"ImagePath"=hex(2):$(wrap "$(utf16 "$IMGPATH")")
"Type"=dword:00000001
"Group"="Video"
"Quote"="say \\"hi\\" C:\\\\DriverStore\\\\x"
@="default"
"Bin"=hex:01,02,03,\\
  04
"Q"=hex(b):01,00,00,00,00,00,00,00
"Prop"=hex(ffff0011):aa,bb
"Multi"=hex(7):$(wrap "$MULTI")

[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\GraphicsDrivers]
"TdrDelay"=-

[-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services]

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\\Sub]
"Name"="x"
EOF
# As regedit writes it: UTF-16LE with a byte order mark and CRLF.
{ printf '\377\376'; sed 's/$/\r/' "$TMP/imp.txt" | iconv -f UTF-8 -t UTF-16LE; } \
  >"$TMP/imp.reg"

# The same edits for hivexregedit --merge: ControlSet001 spelled out,
# parents listed, DriverStore rewritten by hand.
cat >"$TMP/ref-sys.reg" <<EOF
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\nvlddmkm]
"ImagePath"=hex(2):$(utf16 "$HOSTPATH")
"Type"=dword:00000001
"Group"="Video"
"Quote"="say \\"hi\\" C:\\\\HostDriverStore\\\\x"
@="default"
"Bin"=hex:01,02,03,04
"Q"=hex(b):01,00,00,00,00,00,00,00
"Prop"=hex(ffff0011):aa,bb
"Multi"=hex(7):$HMULTI

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\GraphicsDrivers]
"TdrDelay"=-

[-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services]
EOF
cat >"$TMP/ref-sw.reg" <<'EOF'
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor]

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Sub]
"Name"="x"
EOF
cp "$TMP/orig.SYSTEM" "$TMP/ref.SYSTEM"
cp "$TMP/orig.SOFTWARE" "$TMP/ref.SOFTWARE"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$TMP/ref.SYSTEM" "$TMP/ref-sys.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$TMP/ref.SOFTWARE" "$TMP/ref-sw.reg"
hive_export "$TMP/ref.SYSTEM" "$TMP/ref.SYSTEM.reg"
hive_export "$TMP/ref.SOFTWARE" "$TMP/ref.SOFTWARE.reg"

# A dry run writes nothing.
before=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage --dry-run "$IMG" --reg "$TMP/imp.reg" --json
expect_eq "$(jqv .changed)" true "dry run: changed"
expect_eq "$(sha "$IMG")" "$before" "--dry-run changed the image"

run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/imp.reg" --json
expect_eq "$(jqv '.registry.hives_written | length')" 2 "two hives written"
guest_file "$IMG" raw $SYS "$TMP/new.SYSTEM" || fail "SYSTEM gone"
guest_file "$IMG" raw $SW "$TMP/new.SOFTWARE" || fail "SOFTWARE gone"
hive_export "$TMP/new.SYSTEM" "$TMP/new.SYSTEM.reg"
hive_export "$TMP/new.SOFTWARE" "$TMP/new.SOFTWARE.reg"
diff -u "$TMP/ref.SYSTEM.reg" "$TMP/new.SYSTEM.reg" ||
  fail "SYSTEM differs from what hivexregedit --merge makes of the same import"
diff -u "$TMP/ref.SOFTWARE.reg" "$TMP/new.SOFTWARE.reg" ||
  fail "SOFTWARE differs from what hivexregedit --merge makes of the same import"
for h in SYSTEM SOFTWARE; do
  set -- $("$IMGTOOL" regf "$TMP/new.$h")
  expect_eq "$3 $4" "clean sum-ok" "$h base block after the edit"
done
pass "UTF-16LE import matches hivexregedit --merge; both hives clean"

# An identical re-run changes nothing.
after=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/imp.reg" --json
expect_eq "$(jqv .changed)" false "identical re-run"
expect_eq "$(sha "$IMG")" "$after" "an identical re-run changed the image"

# --no-rewrite keeps the path as exported.
run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/imp.reg" --no-rewrite
guest_file "$IMG" raw $SYS "$TMP/nr.SYSTEM"
hivexregedit --export "$TMP/nr.SYSTEM" '\ControlSet001\Services\nvlddmkm' |
  grep -q -F "\"ImagePath\"=hex(2):$(utf16 "$IMGPATH")" ||
  fail "--no-rewrite rewrote ImagePath"

# Guest settings, in every control set Select names; a value they replace
# is remembered.
run 0 "$GPUPV_PREP" stage "$IMG" --gpu-virtualization-flags 3 \
  --driver-store-copy-mode 2 --disable-fast-startup --all-control-sets
guest_file "$IMG" raw $SYS "$TMP/set.SYSTEM"
for cs in ControlSet001 ControlSet002; do
  hivexregedit --export "$TMP/set.SYSTEM" "\\$cs\\Control\\GraphicsDrivers" |
    grep -q '"GpuVirtualizationFlags"=dword:00000003' ||
    fail "$cs: GpuVirtualizationFlags"
  hivexregedit --export "$TMP/set.SYSTEM" "\\$cs\\Control\\Session Manager\\Power" |
    grep -q '"HiberbootEnabled"=dword:00000000' || fail "$cs: HiberbootEnabled"
done
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/m.json"
jq -e '.registry[] | select(.name == "TdrDelay" and .old.hex == "02000000")' \
  "$TMP/m.json" >/dev/null || fail "the deleted TdrDelay is not remembered"
pass "settings in both control sets, replaced values recorded"

# remove puts both hives back as they were.
run 0 "$GPUPV_PREP" remove "$IMG" --json
guest_file "$IMG" raw $SYS "$TMP/rm.SYSTEM"
guest_file "$IMG" raw $SW "$TMP/rm.SOFTWARE"
hive_export "$TMP/rm.SYSTEM" "$TMP/rm.SYSTEM.reg"
hive_export "$TMP/rm.SOFTWARE" "$TMP/rm.SOFTWARE.reg"
diff -u "$TMP/orig.SYSTEM.reg" "$TMP/rm.SYSTEM.reg" || fail "remove: SYSTEM not restored"
diff -u "$TMP/orig.SOFTWARE.reg" "$TMP/rm.SOFTWARE.reg" || fail "remove: SOFTWARE not restored"
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/m.json" &&
  fail "remove left the manifest"
pass "remove restores both hives"

# Refusals: FILE:LINE messages, the image untouched.
bad() {
  bname=$1 brc=$2 bwant=$3
  printf 'Windows Registry Editor Version 5.00\r\n\r\n' >"$TMP/$bname.reg"
  cat >>"$TMP/$bname.reg"
  before=$(sha "$IMG")
  run "$brc" "$GPUPV_PREP" stage "$IMG" --reg "$TMP/$bname.reg"
  grep -q -F -- "$bwant" "$TMP/err" ||
    fail "$bname: expected '$bwant' in: $(cat "$TMP/err")"
  expect_eq "$(sha "$IMG")" "$before" "$bname: the image changed"
}
bad badhex 10 "badhex.reg:4: bad hex byte" <<'EOF'
[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\x]
"a"=hex:zz
EOF
bad hkcu 10 "hkcu.reg:3: HKEY_CURRENT_USER is not a root" <<'EOF'
[HKEY_CURRENT_USER\Software\x]
EOF
bad sam 10 "sam.reg:3: HKEY_LOCAL_MACHINE\\SAM is not a hive" <<'EOF'
[HKEY_LOCAL_MACHINE\SAM\x]
EOF
bad quote 10 "quote.reg:4: string without its closing quote" <<'EOF'
[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\x]
"a"="open
EOF
bad dword 10 "dword.reg:5: dword: needs 1 to 8 hex digits" <<'EOF'
[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\x]
"ok"=dword:1
"a"=dword:123456789
EOF
bad orphan 10 "orphan.reg:3: a value before any [KEY] line" <<'EOF'
"a"="b"
EOF
printf 'REGEDIT5\r\n' >"$TMP/hdr.reg"
run 10 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/hdr.reg"
grep -q "hdr.reg:1: not a .reg file" "$TMP/err" || fail "header: $(cat "$TMP/err")"
big=$(head -c 20000 /dev/zero | od -An -v -tx1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
bad bigvalue 1 "hivex would store it as one cell" <<EOF
[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\x]
"big"=hex:$big
EOF
pass "malformed and oversized imports refused by line, image unchanged"

# REGEDIT4 (ANSI): string types in hex are widened to UTF-16.
printf 'REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\a4]\r\n"E"=hex(2):41,\\\r\n  42,00\r\n"S"="caf\351"\r\n' >"$TMP/r4.reg"
run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/r4.reg"
guest_file "$IMG" raw $SYS "$TMP/r4.SYSTEM"
hivexregedit --export "$TMP/r4.SYSTEM" '\ControlSet001\Services\a4' >"$TMP/r4.out"
grep -q -F "\"E\"=hex(2):$(utf16 AB)" "$TMP/r4.out" || fail "REGEDIT4 hex(2): $(cat "$TMP/r4.out")"
grep -q -F "\"S\"=hex(1):$(utf16 café)" "$TMP/r4.out" || fail "REGEDIT4 ANSI string: $(cat "$TMP/r4.out")"
run 0 "$GPUPV_PREP" remove "$IMG"
pass "REGEDIT4 with ANSI text"

# A dirty hive without its logs is refused, the image untouched.
cp "$TMP/orig.SYSTEM" "$TMP/dirty.SYSTEM"
"$IMGTOOL" poke "$TMP/dirty.SYSTEM" 4 u32 7
"$IMGTOOL" put "$IMG" 3 $SYS "$TMP/dirty.SYSTEM"
before=$(sha "$IMG")
run 6 "$GPUPV_PREP" stage "$IMG" --disable-fast-startup
grep -q "hive is dirty" "$TMP/err" || fail "dirty hive: $(cat "$TMP/err")"
grep -q "LOG1, .LOG2) are not there" "$TMP/err" || fail "dirty hive: $(cat "$TMP/err")"
expect_eq "$(sha "$IMG")" "$before" "dirty hive: the image changed"
pass "dirty hive without logs refused"

# --copy-key from a host hive (reg save HKLM\SYSTEM): the display class
# key and below, CurrentControlSet read through the host's Select.
"$IMGTOOL" put "$IMG" 3 $SYS "$TMP/orig.SYSTEM"
"$IMGTOOL" mkhive "$TMP/host.hiv"
CLASS='Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}'
cat >"$TMP/host.reg" <<EOF2
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]
"Current"=dword:00000002

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002]

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Control]

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Control\\Class]

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\$CLASS]
"Class"="Display"

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\$CLASS\\0000]
"DriverDesc"="NVIDIA GeForce RTX 3070"
"UserModeDriverName"=hex(7):$(utf16 'C:\Windows\System32\DriverStore\FileRepository\nv\nvldumdx.dll'),00,00

[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\$CLASS\\0000\\Settings]
"Level"=dword:00000004
EOF2
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$TMP/host.hiv" "$TMP/host.reg"
run 0 "$GPUPV_PREP" stage "$IMG" --copy-key "$TMP/host.hiv:HKLM\\SYSTEM\\CurrentControlSet\\$CLASS" --json
guest_file "$IMG" raw $SYS "$TMP/ck.SYSTEM"
hivexregedit --export --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$TMP/ck.SYSTEM" "\\ControlSet001\\$CLASS" >"$TMP/ck.reg"
grep -q '"DriverDesc"=hex(1):' "$TMP/ck.reg" || fail "--copy-key: DriverDesc missing: $(cat "$TMP/ck.reg")"
grep -q -F "$(utf16 'C:\Windows\System32\HostDriverStore\FileRepository\nv\nvldumdx.dll')" "$TMP/ck.reg" ||
  fail "--copy-key: UserModeDriverName not rewritten"
grep -q '"Level"=dword:00000004' "$TMP/ck.reg" || fail "--copy-key: the subkey was not copied"
run 0 "$GPUPV_PREP" remove "$IMG"
guest_file "$IMG" raw $SYS "$TMP/ck2.SYSTEM"
hive_export "$TMP/ck2.SYSTEM" "$TMP/ck2.reg"
diff -u "$TMP/orig.SYSTEM.reg" "$TMP/ck2.reg" || fail "remove after --copy-key"
run 2 "$GPUPV_PREP" stage "$IMG" --copy-key "$TMP/host.hiv"
pass "--copy-key copies a subtree from a host hive, rewritten; remove undoes it"

# The nvlddmkm service for a package holding nvlddmkm.sys: from the INF's
# service-install section; an imported nvlddmkm key wins.
PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG/Display"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n[Section001.Services]\r\nAddService = nvlddmkm, 0x00000002, svc_inst\r\n[svc_inst]\r\nServiceType = 1\r\nStartType = 3\r\nErrorControl = 1\r\nLoadOrderGroup = %%grp%%\r\n[Strings]\r\ngrp = "Video"\r\n' >"$PKG/nv_dispig.inf"
echo sys >"$PKG/Display/nvlddmkm.sys"
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG"
guest_file "$IMG" raw $SYS "$TMP/nv.SYSTEM"
hivexregedit --export "$TMP/nv.SYSTEM" '\ControlSet001\Services\nvlddmkm' >"$TMP/nv.reg"
for v in '"Type"=dword:00000001' '"Start"=dword:00000003' '"ErrorControl"=dword:00000001' \
    "\"Group\"=hex(1):$(utf16 Video)" \
    "\"ImagePath\"=hex(2):$(utf16 '\SystemRoot\System32\HostDriverStore\FileRepository\nv_dispig.inf_amd64_677da8a9230cea15\Display\nvlddmkm.sys')"; do
  grep -q -F "$v" "$TMP/nv.reg" || fail "nvlddmkm service lacks $v: $(cat "$TMP/nv.reg")"
done
run 0 "$GPUPV_PREP" remove "$IMG"
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\nvlddmkm]\r\n"Start"=dword:00000002\r\n' >"$TMP/nvsvc.reg"
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --reg "$TMP/nvsvc.reg"
guest_file "$IMG" raw $SYS "$TMP/nv2.SYSTEM"
hivexregedit --export "$TMP/nv2.SYSTEM" '\ControlSet001\Services\nvlddmkm' >"$TMP/nv2.reg"
grep -q '"Start"=dword:00000002' "$TMP/nv2.reg" || fail "the imported nvlddmkm key lost"
grep -q 'ImagePath' "$TMP/nv2.reg" && fail "an imported nvlddmkm key was extended"
run 0 "$GPUPV_PREP" remove "$IMG"
pass "nvlddmkm service from the INF; an imported one wins"
