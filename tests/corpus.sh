#!/bin/sh
# Every image in the corpus inspected with the expected result; none is
# changed by it.
. "$(dirname "$0")/functions.sh"
requires_corpus
requires jq gzip unzip

V=$CORPUS/vhd
gzip -dc "$V/dissect_fixed.vhdx.gz" >"$TMP/fixed.vhdx"
gzip -dc "$V/dissect_dynamic.vhdx.gz" >"$TMP/dynamic.vhdx"
gzip -dc "$V/dissect_fixed.vhd.gz" >"$TMP/fixed.vhd"
gzip -dc "$V/dissect_dynamic.vhd.gz" >"$TMP/dynamic.vhd"
gzip -dc "$V/dissect_differencing.avhdx.gz" >"$TMP/diff.avhdx"
cp "$V/dfvfs_fat-differential.vhd" "$TMP/diff.vhd"
unzip -q -d "$TMP" "$V/velociraptor_test.vhdx.zip"

one() {  # FILE FORMAT SUBFORMAT VSIZE BLOCK NPARTS SCHEME FS LABEL
  b=$(sha "$1")
  run 0 "$GPUPV_PREP" inspect --json "$1"
  expect_eq "$(jqv .image.format)" "$2" "$1 format"
  expect_eq "$(jqv .image.subformat)" "$3" "$1 subformat"
  expect_eq "$(jqv .image.virtual_size)" "$4" "$1 size"
  expect_eq "$(jqv .image.block_size)" "$5" "$1 block size"
  expect_eq "$(jqv '.partitions | length')" "$6" "$1 partitions"
  expect_eq "$(jqv .partition_table)" "$7" "$1 scheme"
  expect_eq "$(jqv '.partitions[0].filesystem')" "$8" "$1 filesystem"
  expect_eq "$(jqv '.partitions[0].label')" "$9" "$1 label"
  expect_eq "$(jqv '.partitions[0].start')" 65536 "$1 start at LBA 128"
  expect_eq "$(jqv .windows)" null "$1 windows"
  expect_eq "$(sha "$1")" "$b" "$1 changed"
}
one "$TMP/fixed.vhdx" vhdx fixed 10485760 2097152 1 mbr ntfs "New Volume"
one "$TMP/dynamic.vhdx" vhdx dynamic 10485760 33554432 1 mbr ntfs "New Volume"
one "$TMP/fixed.vhd" vhd fixed 10485760 null 1 mbr ntfs "New Volume"
one "$TMP/dynamic.vhd" vhd dynamic 10485760 2097152 1 mbr ntfs "New Volume"
one "$TMP/test.vhdx" vhdx dynamic 5242880 33554432 1 gpt ntfs "Test Volume"
expect_eq "$(jqv .image.creator)" "Microsoft Windows 10.0.20348.0" "creator"

# The checkpoint's parent is absent: named in a clear error, exit 9.
b=$(sha "$TMP/diff.avhdx")
run 9 "$GPUPV_PREP" inspect "$TMP/diff.avhdx"
grep -q 'Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx' "$TMP/err" ||
  fail "missing parent not named: $(cat "$TMP/err")"
expect_eq "$(sha "$TMP/diff.avhdx")" "$b" "checkpoint changed"
# A parent that is not the one the child was made from: exit 9, mismatch.
run 9 "$GPUPV_PREP" inspect --parent "$TMP/dynamic.vhdx" "$TMP/diff.avhdx"
grep -q 'does not match' "$TMP/err" || fail "mismatch message: $(cat "$TMP/err")"
run 9 "$GPUPV_PREP" inspect "$TMP/diff.vhd"
grep -q 'fat-parent.vhd' "$TMP/err" || fail "VHD parent not named"
pass corpus
