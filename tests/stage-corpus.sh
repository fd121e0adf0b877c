#!/bin/sh
# stage, verify and remove on Windows-made images from the corpus (their
# volumes hold no Windows, so --partition names the NTFS one); judged by
# sleuthkit and qemu-img.
. "$(dirname "$0")/functions.sh"
requires_corpus
requires qemu-img fls icat istat jq gzip unzip

V=$CORPUS/vhd
gzip -dc "$V/dissect_fixed.vhdx.gz" >"$TMP/fixed.vhdx"
gzip -dc "$V/dissect_dynamic.vhdx.gz" >"$TMP/dynamic.vhdx"
unzip -q -d "$TMP" "$V/velociraptor_test.vhdx.zip"

# Small: the corpus volumes are 5 and 10 MiB, the smaller with 0.3 MiB free.
PKG="$TMP/src/gpupvtest.inf_amd64_0123456789abcdef"
mkdir -p "$PKG/sub dir/deeper"
printf '[Version]\r\nDriverVer=01/02/2024,1.2.3.4\r\n' >"$PKG/gpupvtest.inf"
head -c 150000 /dev/urandom >"$PKG/gpupvtest.sys"
head -c 4097 /dev/urandom >"$PKG/sub dir/deeper/Üñí.dll"
: >"$PKG/sub dir/empty.bin"

for img in "$TMP/fixed.vhdx" "$TMP/dynamic.vhdx" "$TMP/test.vhdx"; do
  before=$(sha "$img")
  run 0 "$GPUPV_PREP" stage --dry-run "$img" "$PKG" --partition 1 --json
  expect_eq "$(jqv .verified)" true "$img: dry run read back"
  expect_eq "$(sha "$img")" "$before" "$img: --dry-run changed the image"
  run 0 "$GPUPV_PREP" stage "$img" "$PKG" --partition 1 --json
  expect_eq "$(jqv '.packages[0].action')" stage "$img: action"
  grep -q 'holds no Windows' "$TMP/out" "$TMP/err" || fail "$img: no warning about the missing Windows"
  PART=1 check_staged "$img" vhdx "$PKG"
  after=$(sha "$img")
  run 0 "$GPUPV_PREP" stage "$img" "$PKG" --partition 1 --json
  expect_eq "$(jqv .changed)" false "$img: identical re-run"
  expect_eq "$(sha "$img")" "$after" "$img: an identical re-run changed the image"
  run 0 "$GPUPV_PREP" verify "$img" --partition 1 --json
  expect_eq "$(jqv .verified)" true "$img: verify"
  expect_eq "$(jqv .files_checked)" 4 "$img: files checked"
  run 0 "$GPUPV_PREP" remove "$img" --partition 1
  qemu-img check -q "$img" || fail "$img: qemu-img check after remove"
  pass "$(basename "$img"): staged, re-run, verified, removed"
done

# More than the volume holds: a clear error, the image unchanged.
BIG="$TMP/src/big.inf_amd64_0123456789abcdef"
mkdir -p "$BIG"
head -c 2000000 /dev/urandom >"$BIG/big.sys"
printf '[Version]\r\n' >"$BIG/big.inf"
before=$(sha "$TMP/test.vhdx")
run 1 "$GPUPV_PREP" stage "$TMP/test.vhdx" "$BIG" --partition 1
grep -q 'MiB free; nothing was written' "$TMP/err" || fail "no clear message: $(cat "$TMP/err")"
expect_eq "$(sha "$TMP/test.vhdx")" "$before" "a refused stage changed the image"
pass "test.vhdx: a package larger than the free space is refused"
