#!/bin/sh
# Random writes of any size and alignment (sub-sector, block-crossing,
# all-zero) through our VHDX and VHD writers and into a raw reference:
# qemu-img compare finds them equal, qemu-img check finds no errors or
# leaks, libvhdi reads the same bytes.
. "$(dirname "$0")/functions.sh"
requires qemu-img vhdiinfo cmp

roundtrip() {  # NAME QEMU_FMT CREATE_OPTS SIZE COUNT [SEED_FROM_RAW]
  name=$1 fmt=$2 opts=$3 size=$4 count=$5
  img="$TMP/$name" ref="$TMP/$name.ref"
  rm -f "$img" "$ref"
  if [ "${6:-}" = prefilled ]; then
    head -c "$size" /dev/urandom >"$ref"
    # A hole of zeros so that some blocks stay unallocated.
    dd if=/dev/zero of="$ref" bs=1M seek=2 count=3 conv=notrunc status=none
    qemu-img convert -q -f raw -O "$fmt" ${opts:+-o "$opts"} "$ref" "$img"
  else
    truncate -s "$size" "$ref"
    qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$img" "$size"
  fi
  "$IMGTOOL" randwrite "$img" "$ref" "$count" "$(od -An -N4 -tu4 /dev/urandom)" ||
    fail "$name: randwrite"
  qemu-img compare -q -f "$fmt" -F raw "$img" "$ref" ||
    fail "$name: qemu-img compare finds a difference"
  # qemu-img checks VHDX only (it has no check for vpc).
  [ "$fmt" != vhdx ] || qemu-img check -q -f "$fmt" "$img" || fail "$name: qemu-img check"
  vhdiinfo "$img" >"$TMP/vhdiinfo.txt" 2>&1 || { cat "$TMP/vhdiinfo.txt"; fail "$name: vhdiinfo"; }
  "$IMGTOOL" vhdi-dump "$img" "$TMP/vdump.raw"
  cmp "$TMP/vdump.raw" "$ref" || fail "$name: libvhdi reads other bytes"
  # A second session on the same file (headers updated again).
  "$IMGTOOL" randwrite "$img" "$ref" 20 7 || fail "$name: second session"
  qemu-img compare -q -f "$fmt" -F raw "$img" "$ref" || fail "$name: second compare"
  [ "$fmt" != vhdx ] || qemu-img check -q -f "$fmt" "$img" || fail "$name: second check"
  pass "$name"
}

roundtrip dyn1m.vhdx vhdx block_size=1M 48M 300
roundtrip dyn32m.vhdx vhdx "" 80M 200
roundtrip dyn256m.vhdx vhdx block_size=256M 300M 60
roundtrip fixed.vhdx vhdx subformat=fixed 24M 200
roundtrip pre.vhdx vhdx block_size=2M 24M 150 prefilled
roundtrip dyn.vhd vpc subformat=dynamic,force_size=on 40M 300
roundtrip fixed.vhd vpc subformat=fixed,force_size=on 24M 200
roundtrip pre.vhd vpc subformat=dynamic,force_size=on 24M 150 prefilled

# A raw image is the reference itself; check the writer on it anyway.
truncate -s 8M "$TMP/r.raw"; cp "$TMP/r.raw" "$TMP/r.ref"
"$IMGTOOL" randwrite "$TMP/r.raw" "$TMP/r.ref" 100 3
cmp "$TMP/r.raw" "$TMP/r.ref" || fail "raw writer"
pass write-roundtrip
