#!/bin/sh
# The same disk as raw, VHDX (dynamic, fixed) and VHD (dynamic, fixed),
# converted by qemu-img: inspect must agree with qemu-img info, and the
# virtual disk we read must equal the raw original byte for byte (and
# equal what libvhdi reads).
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk jq mkntfs mkfs.fat hivexregedit cmp

mkgpt_windows "$TMP/disk.raw"
size=$(stat -c %s "$TMP/disk.raw")

check() {  # FILE QEMU_FMT FORMAT SUBFORMAT
  f=$1
  run 0 "$GPUPV_PREP" inspect --json "$f"
  qemu-img info -f "$2" --output=json "$f" >"$TMP/qi.json"
  expect_eq "$(jqv .image.format)" "$3" "$f format"
  expect_eq "$(jqv .image.subformat)" "$4" "$f subformat"
  expect_eq "$(jqv .image.virtual_size)" "$(jq '."virtual-size"' "$TMP/qi.json")" \
    "$f virtual size vs qemu-img"
  expect_eq "$(jqv .image.virtual_size)" "$size" "$f virtual size vs raw"
  expect_eq "$(jqv '.windows.partition')" 3 "$f windows partition"
  expect_eq "$(jqv '.windows.build')" 22631 "$f windows build"
  expect_eq "$(jqv '[.partitions[].start] | join(",")')" \
    "$(sfdisk --json "$TMP/disk.raw" | jq -r '[.partitiontable.partitions[].start * 512] | join(",")')" \
    "$f partition starts"
  "$IMGTOOL" dump "$f" "$TMP/dump.raw"
  cmp "$TMP/disk.raw" "$TMP/dump.raw" || fail "$f: our reader differs from the raw disk"
  if [ "$3" != raw ]; then
    "$IMGTOOL" vhdi-dump "$f" "$TMP/vdump.raw"
    cmp "$TMP/disk.raw" "$TMP/vdump.raw" || fail "$f: libvhdi's reader differs"
  fi
}

check "$TMP/disk.raw" raw raw null
qemu-img convert -q -f raw -O vhdx "$TMP/disk.raw" "$TMP/d.vhdx"
check "$TMP/d.vhdx" vhdx vhdx dynamic
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/disk.raw" "$TMP/d1.vhdx"
check "$TMP/d1.vhdx" vhdx vhdx dynamic
expect_eq "$(jqv .image.block_size)" 1048576 "1 MiB block size"
qemu-img convert -q -f raw -O vhdx -o subformat=fixed "$TMP/disk.raw" "$TMP/f.vhdx"
check "$TMP/f.vhdx" vhdx vhdx fixed
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$TMP/disk.raw" "$TMP/d.vhd"
check "$TMP/d.vhd" vpc vhd dynamic
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$TMP/disk.raw" "$TMP/f.vhd"
check "$TMP/f.vhd" vpc vhd fixed
pass inspect-formats
