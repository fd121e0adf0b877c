#!/bin/sh
# The bad-input suite, part two (part one, tests/bad-input.sh, is corrupt
# and lying images): hostile packages and archives, registry and INF
# input, volumes and hives in states that must not be written, chains
# that loop.  Each case asserts the exit code, a message of at most three
# lines naming the culprit, and an image byte-identical to before.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk sfdisk mkntfs hivexregedit jq tar gzip zip

IMG=$TMP/g.raw
mkgpt_windows "$IMG"
PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$PKG/nv_dispig.inf"
echo data >"$PKG/a.dll"
cases=0

# bad RC PATTERN ARGS...: gpupv-prep ARGS... on $IMG is refused.
bad() {
  brc=$1 bpat=$2; shift 2
  before=$(sha "$IMG")
  run "$brc" "$GPUPV_PREP" "$@"
  grep -q -- "$bpat" "$TMP/err" || fail "expected '$bpat' in: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/err")" -le 3 ] || fail "message over three lines: $(cat "$TMP/err")"
  expect_eq "$(sha "$IMG")" "$before" "refused ($bpat), yet the image changed"
  cases=$((cases + 1))
}

# Packages and archives.
mkdir -p "$TMP/a/evil/x.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/evil/x.inf_amd64_1/x.inf"
(cd "$TMP/a/evil" && tar -cf ../trav.tar --transform 's|^x|../../x|' x.inf_amd64_1)
bad 10 "trav.tar: entry '../../x.inf_amd64_1.*leaves the archive's root" stage "$IMG" "$TMP/a/trav.tar"
(cd "$TMP/a/evil" && tar -cPf ../abs.tar --transform 's|^x|/tmp/x|' x.inf_amd64_1)
bad 10 "abs.tar: entry '/tmp/x.*leaves the archive's root" stage "$IMG" "$TMP/a/abs.tar"
ln -s /etc/passwd "$TMP/a/evil/x.inf_amd64_1/passwd"
(cd "$TMP/a/evil" && tar -cf ../link.tar x.inf_amd64_1)
bad 10 "link.tar: entry 'x.inf_amd64_1/passwd' is a link" stage "$IMG" "$TMP/a/link.tar"
rm "$TMP/a/evil/x.inf_amd64_1/passwd"
ln "$TMP/a/evil/x.inf_amd64_1/x.inf" "$TMP/a/evil/x.inf_amd64_1/hard.inf"
(cd "$TMP/a/evil" && tar -cf ../hard.tar x.inf_amd64_1)
bad 10 "hard.tar: entry 'x.inf_amd64_1/hard.inf' is a link" stage "$IMG" "$TMP/a/hard.tar"
rm "$TMP/a/evil/x.inf_amd64_1/hard.inf"
# zip keeps a "../" it is given.
(cd "$TMP/a/evil/x.inf_amd64_1" && zip -q ../../trav.zip ../x.inf_amd64_1/x.inf)
bad 10 "trav.zip: entry '../x.inf_amd64_1/x.inf' leaves the archive's root" stage "$IMG" "$TMP/a/trav.zip"
mkfifo "$TMP/a/evil/x.inf_amd64_1/fifo"
(cd "$TMP/a/evil" && tar -cf ../fifo.tar x.inf_amd64_1)
bad 10 "fifo.tar: entry 'x.inf_amd64_1/fifo' is not a file or folder" stage "$IMG" "$TMP/a/fifo.tar"
rm "$TMP/a/evil/x.inf_amd64_1/fifo"
# A zip bomb: 300 MiB of zeros packed into a few hundred KiB.
mkdir -p "$TMP/a/bomb/b.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/bomb/b.inf_amd64_1/b.inf"
head -c 300M /dev/zero >"$TMP/a/bomb/b.inf_amd64_1/zeros.bin"
(cd "$TMP/a/bomb" && tar -czf ../bomb.tar.gz b.inf_amd64_1)
rm -rf "$TMP/a/bomb"
bad 10 "bomb.tar.gz: entry 'b.inf_amd64_1/zeros.bin': the archive expands to more than 200 times its size" \
  stage "$IMG" "$TMP/a/bomb.tar.gz"
ls "${TMPDIR:-/tmp}" | grep -q "gpupv-prep-pkg.*$$" && fail "the bomb's unpacked files were left"
head -c 100000 /dev/urandom >"$TMP/a/noise.zip"
bad 10 "noise.zip: not a package folder or an archive" stage "$IMG" "$TMP/a/noise.zip"
bad 1 "$TMP/a/missing" stage "$IMG" "$TMP/a/missing"
mkdir -p "$TMP/a/noinf"
echo x >"$TMP/a/noinf/file"
bad 10 "noinf: no driver package in it" stage "$IMG" "$TMP/a/noinf"
mkdir -p "$TMP/a/con/CON.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/con/CON.inf_amd64_1/CON.inf"
printf 'x' >"$TMP/a/con/CON.inf_amd64_1/aux.dll"
bad 10 "package folder 'CON.inf_amd64_1' is not a name Windows can hold" \
  stage "$IMG" "$TMP/a/con/CON.inf_amd64_1"
mkdir -p "$TMP/a/aux/x.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/aux/x.inf_amd64_1/x.inf"
printf 'x' >"$TMP/a/aux/x.inf_amd64_1/aux.dll"
bad 10 "aux.dll" stage "$IMG" "$TMP/a/aux/x.inf_amd64_1"
mkdir -p "$TMP/a/colon/c.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/colon/c.inf_amd64_1/c.inf"
printf 'x' >"$TMP/a/colon/c.inf_amd64_1/a:b.dll"
bad 10 "a:b.dll" stage "$IMG" "$TMP/a/colon/c.inf_amd64_1"
mkdir -p "$TMP/twice"
cp -r "$PKG" "$TMP/twice/"
bad 10 "package nv_dispig.inf_amd64_677da8a9230cea15 is given twice" stage "$IMG" "$PKG" "$TMP/twice"
pass "hostile packages and archives"

# Registry and INF input.
printf 'REGEDIT9\r\n' >"$TMP/bad.reg"
bad 10 "bad.reg:1: not a .reg file" stage "$IMG" --reg "$TMP/bad.reg"
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_USERS\\x]\r\n' >"$TMP/hku.reg"
bad 10 "hku.reg:3: HKEY_USERS is not a root" stage "$IMG" --reg "$TMP/hku.reg"
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\x]\r\n"a"=hex(123456789):00\r\n' >"$TMP/type.reg"
bad 10 "type.reg:4: hex(N): N must be 1 to 8 hex digits" stage "$IMG" --reg "$TMP/type.reg"
big=$(head -c 40000 /dev/zero | od -An -v -tx1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\x]\r\n"big"=hex:%s\r\n' "$big" >"$TMP/big.reg"
bad 1 "ControlSet001\\\\x\\\\big holds 40000 bytes" stage "$IMG" --reg "$TMP/big.reg"
bad 1 "absent.reg: No such file" stage "$IMG" --reg "$TMP/absent.reg"
bad 2 "expected HIVEFILE:KEYPATH" stage "$IMG" --copy-key "$TMP/nohive"
echo 'not a hive' >"$TMP/nothive"
bad 10 "nothive: not a registry hive" stage "$IMG" --copy-key "$TMP/nothive:HKLM\\SYSTEM\\x"
mkdir -p "$TMP/a/badinf/b.inf_amd64_1"
printf 'DriverVer = x\r\n[Version]\r\n' >"$TMP/a/badinf/b.inf_amd64_1/b.inf"
bad 10 "b.inf:1: a line before any \[section\]" stage "$IMG" "$TMP/a/badinf/b.inf_amd64_1"
bad 2 "no install section \[Nope\]" stage "$IMG" "$PKG" --inf-section Nope
bad 2 "driver-store-copy-mode: a number from 0 to 2" stage "$IMG" --driver-store-copy-mode 3
mkdir -p "$TMP/a/bundle"
cp -r "$PKG" "$TMP/a/bundle/"
printf '{"format": 1, "gpus": [{"name": "g"}], "reg": ["../../etc/x.reg"]}' >"$TMP/a/bundle/gpupv-bundle.json"
bad 10 "reg entry 0 is not a file name in the bundle" stage "$IMG" "$TMP/a/bundle"
printf '{"format": 2}' >"$TMP/a/bundle/gpupv-bundle.json"
bad 10 "not a format 1 bundle description" stage "$IMG" "$TMP/a/bundle"
# A CopyToVm destination longer than NTFS holds (255 UTF-16 units).
mkdir -p "$TMP/a/longcv/nv_lc.inf_amd64_1"
long=$(head -c 300 /dev/zero | tr '\0' 'n')
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n[r]\r\nHKR,"CopyToVmOverwrite",x,%%REG_MULTI_SZ%%,"a.dll","%s.dll"\r\n[Strings]\r\nREG_MULTI_SZ = 0x00010000\r\n' "$long" \
  >"$TMP/a/longcv/nv_lc.inf_amd64_1/nv_lc.inf"
echo x >"$TMP/a/longcv/nv_lc.inf_amd64_1/a.dll"
bad 10 "CopyToVm destination 'nnnn.*is not a name Windows can hold" stage "$IMG" "$TMP/a/longcv/nv_lc.inf_amd64_1"
pass "registry, INF and bundle input"

# Volumes and hives that must not be written.
keep=$IMG
cp "$keep" "$TMP/hib.raw"
{ printf 'hibr'; head -c 8188 /dev/zero; } >"$TMP/hiberfil.sys"
"$IMGTOOL" put "$TMP/hib.raw" 3 hiberfil.sys "$TMP/hiberfil.sys"
IMG=$TMP/hib.raw
bad 5 "hibernated (Windows Fast Startup" stage "$IMG" "$PKG"
cp "$keep" "$TMP/bl.raw"
sfx=$(sfdisk --json "$TMP/bl.raw" | jq '.partitiontable.partitions[2].start')
printf -- '-FVE-FS-' | dd of="$TMP/bl.raw" bs=1 seek=$((sfx * 512 + 3)) conv=notrunc status=none
IMG=$TMP/bl.raw
bad 7 "encrypted with BitLocker" stage "$IMG" "$PKG"
cp "$keep" "$TMP/dh.raw"
guest_file "$TMP/dh.raw" raw Windows/System32/config/SYSTEM "$TMP/dh.SYSTEM"
"$IMGTOOL" poke "$TMP/dh.SYSTEM" 8 u32 12345
"$IMGTOOL" put "$TMP/dh.raw" 3 Windows/System32/config/SYSTEM "$TMP/dh.SYSTEM"
IMG=$TMP/dh.raw
bad 6 "SYSTEM: the hive is dirty" stage "$IMG" --disable-fast-startup
# inspect says so first, and which commands would refuse.
run 0 "$GPUPV_PREP" inspect "$IMG"
grep -q "^hives: *SYSTEM dirty-no-logs, SOFTWARE clean" "$TMP/out" ||
  fail "inspect: hive state: $(cat "$TMP/out")"
grep -q "warning: the SYSTEM hive is dirty and has no transaction logs: stage and remove refuse to edit it (exit 6)" "$TMP/err" ||
  fail "inspect: no warning about the dirty hive: $(cat "$TMP/err")"
run 0 "$GPUPV_PREP" inspect "$IMG" --json
expect_eq "$(jqv .windows.hives.SYSTEM)" dirty-no-logs "inspect --json: SYSTEM hive"
cp "$keep" "$TMP/man.raw"
echo '{"format": 77}' >"$TMP/junk.json"
"$IMGTOOL" put "$TMP/man.raw" 3 Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/junk.json"
IMG=$TMP/man.raw
bad 3 "gpupv-prep.json is not a manifest this version understands" stage "$IMG" "$PKG"
cp "$keep" "$TMP/full.raw"
IMG=$TMP/full.raw
mkdir -p "$TMP/a/huge/h.inf_amd64_1"
printf '[Version]\r\n' >"$TMP/a/huge/h.inf_amd64_1/h.inf"
truncate -s 400M "$TMP/a/huge/h.inf_amd64_1/big.bin"
bad 1 "which has .* free; nothing was written" stage "$IMG" "$TMP/a/huge/h.inf_amd64_1"
echo 'just some text, not a disk image' >"$TMP/text.img"
IMG=$TMP/text.img
bad 4 "no Windows" stage "$IMG" "$PKG"
# $Secure's $SII entries (data at offset 20, 20 bytes, entry 40, key 4)
# claiming descriptors shorter than their own header: libntfs-3g would
# allocate 2^64 - 12 bytes from them; refused by name instead.
cp "$keep" "$TMP/sec.raw"
for o in $(LC_ALL=C grep -obUaP '\x14\x00\x14\x00\x00\x00\x00\x00\x28\x00\x04\x00\x00\x00\x00\x00' "$TMP/sec.raw" | cut -d: -f1); do
  "$IMGTOOL" poke "$TMP/sec.raw" $((o + 36)) u32 8
done
IMG=$TMP/sec.raw
bad 3 "\$Secure is damaged (\$SII root: entry for id [0-9]* places its descriptor outside \$SDS)" stage "$IMG" "$PKG"
IMG=$keep
cp "$keep" "$TMP/out.vhdx"
bad 1 "out.vhdx: exists; gpupv-prep does not overwrite" stage "$IMG" "$PKG" --output "$TMP/out.vhdx"
pass "volumes, hives and outputs that must not be written"

# A differencing chain that loops: the parent named is the child itself.
qemu-img convert -q -f raw -O vhdx "$keep" "$TMP/p.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/p.vhdx" --child "$TMP/c.avhdx" --disable-fast-startup
mv "$TMP/p.vhdx" "$TMP/p.keep"
ln -s c.avhdx "$TMP/p.vhdx"
IMG=$TMP/c.avhdx
bad 9 "c.avhdx" inspect "$IMG"
pass "a looping chain"

[ "$cases" -ge 30 ] || fail "only $cases cases"
echo "$cases refusals checked"
