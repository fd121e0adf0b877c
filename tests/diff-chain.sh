#!/bin/sh
# Differencing VHDX: a child made byte by byte (tests/imgtool mkchild) over
# a parent qemu-img made.  Read through the chain it must equal the raw
# disk it describes - by our reader and by libvhdi's - the parent is found
# from the locator's relative path or --parent, writes into the child read
# back right through both, and a parent that changed after the child was
# made is refused by name.
. "$(dirname "$0")/functions.sh"
requires qemu-img cmp jq

head -c 16M /dev/urandom >"$TMP/parent.raw"
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/parent.raw" "$TMP/parent.vhdx"
"$IMGTOOL" mkchild "$TMP/parent.vhdx" "$TMP/parent.raw" "$TMP/child.avhdx" "$TMP/expected.raw"
pbefore=$(sha "$TMP/parent.vhdx")

run 0 "$GPUPV_PREP" inspect --json "$TMP/child.avhdx"
expect_eq "$(jqv .image.subformat)" differencing "subformat"
expect_eq "$(jqv .image.parent)" "$TMP/parent.vhdx" "parent path"
expect_eq "$(jqv '.image.chain | length')" 1 "chain length"
expect_eq "$(jqv '.image.chain[0].subformat')" dynamic "parent subformat"
expect_eq "$(jqv .image.virtual_size)" $((16 << 20)) "virtual size"

"$IMGTOOL" dump "$TMP/child.avhdx" "$TMP/ours.raw"
cmp "$TMP/expected.raw" "$TMP/ours.raw" || fail "our chain read differs"
"$IMGTOOL" vhdi-dump "$TMP/child.avhdx" "$TMP/vhdi.raw" "$TMP/parent.vhdx"
cmp "$TMP/expected.raw" "$TMP/vhdi.raw" || fail "libvhdi's chain read differs"
expect_eq "$(sha "$TMP/parent.vhdx")" "$pbefore" "parent changed by reading"

# Writes into the differencing file (a copy): random lengths and
# alignments, sub-sector and block-crossing, zeros too; not-present blocks
# become partially present with sector bitmaps.  Both readers must see
# exactly what was written over the parent, and the parent stays as it was.
cp "$TMP/child.avhdx" "$TMP/wchild.avhdx"
cp "$TMP/expected.raw" "$TMP/exp2.raw"
"$IMGTOOL" randwrite "$TMP/wchild.avhdx" "$TMP/exp2.raw" 300 7 300000 ||
  fail "writes into a differencing VHDX failed"
"$IMGTOOL" dump "$TMP/wchild.avhdx" "$TMP/w-ours.raw"
cmp "$TMP/exp2.raw" "$TMP/w-ours.raw" || fail "our read after differencing writes differs"
"$IMGTOOL" vhdi-dump "$TMP/wchild.avhdx" "$TMP/w-vhdi.raw" "$TMP/parent.vhdx"
cmp "$TMP/exp2.raw" "$TMP/w-vhdi.raw" || fail "libvhdi's read after differencing writes differs"
expect_eq "$(sha "$TMP/parent.vhdx")" "$pbefore" "parent changed by writes into the child"
rm -f "$TMP/wchild.avhdx"

# Parent moved away: named in the error; --parent finds it (before or
# after the image argument).
mv "$TMP/parent.vhdx" "$TMP/moved.vhdx"
run 9 "$GPUPV_PREP" inspect "$TMP/child.avhdx"
grep -q 'parent.vhdx' "$TMP/err" || fail "missing parent not named"
run 0 "$GPUPV_PREP" inspect "$TMP/child.avhdx" --parent "$TMP/moved.vhdx" --json
expect_eq "$(jqv .image.parent)" "$TMP/moved.vhdx" "--parent"
"$IMGTOOL" dump "$TMP/child.avhdx" "$TMP/ours2.raw" "$TMP/moved.vhdx"
cmp "$TMP/expected.raw" "$TMP/ours2.raw" || fail "read with --parent differs"

# A write to the parent gives it a new DataWriteGuid: the child no
# longer matches, and says so.
cp "$TMP/parent.raw" "$TMP/ref.raw"
"$IMGTOOL" randwrite "$TMP/moved.vhdx" "$TMP/ref.raw" 1 5
run 9 "$GPUPV_PREP" inspect --parent "$TMP/moved.vhdx" "$TMP/child.avhdx"
grep -q 'does not match' "$TMP/err" || fail "changed parent accepted: $(cat "$TMP/err")"
pass diff-chain-vhdx

# Differencing VHD: the same, with per-block sector bitmaps.
head -c 12M /dev/urandom >"$TMP/vparent.raw"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on \
  "$TMP/vparent.raw" "$TMP/vparent.vhd"
"$IMGTOOL" mkchild-vhd "$TMP/vparent.vhd" "$TMP/vparent.raw" "$TMP/vchild.vhd" "$TMP/vexp.raw"
run 0 "$GPUPV_PREP" inspect --json "$TMP/vchild.vhd"
expect_eq "$(jqv .image.subformat)" differencing "VHD subformat"
expect_eq "$(jqv .image.parent)" "$TMP/vparent.vhd" "VHD parent"
"$IMGTOOL" dump "$TMP/vchild.vhd" "$TMP/vours.raw"
cmp "$TMP/vexp.raw" "$TMP/vours.raw" || fail "our VHD chain read differs"
# (libvhdi 20210425 is no judge here: it reads VHD sector bitmaps least
# significant bit first, which the Windows-made file below disproves.)
# A parent with another unique id is refused.
cp "$TMP/vparent.vhd" "$TMP/other.vhd"
chmod u+w "$TMP/other.vhd"
"$IMGTOOL" vhd-set-id "$TMP/other.vhd" 77777777777777777777777777777777
run 9 "$GPUPV_PREP" inspect --parent "$TMP/other.vhd" "$TMP/vchild.vhd"
grep -q 'does not match' "$TMP/err" || fail "VHD parent mismatch: $(cat "$TMP/err")"
pass diff-chain-vhd

# The Windows-made differencing VHD (diskpart, FAT): over a blank parent
# that carries the id it expects, the sectors its bitmaps mark present
# must be the FAT copies at sectors 134 and 143 and the root directory at
# 152 - bit 7 of a bitmap byte is its first sector.
if [ -d "$CORPUS/vhd" ]; then
  cp "$CORPUS/vhd/dfvfs_fat-differential.vhd" "$TMP/fat-child.vhd"
  chmod u+w "$TMP/fat-child.vhd"
  qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$TMP/fat-parent.vhd" 4M
  pid=$(od -An -tx1 -j $((512 + 40)) -N16 "$TMP/fat-child.vhd" | tr -d ' \n')
  "$IMGTOOL" vhd-set-id "$TMP/fat-parent.vhd" "$pid"
  "$IMGTOOL" dump "$TMP/fat-child.vhd" "$TMP/fat.raw" "$TMP/fat-parent.vhd"
  expect_eq "$(od -An -tx1 -j $((134 * 512)) -N4 "$TMP/fat.raw" | tr -d ' ')" f8ffffff "FAT 1 at sector 134"
  expect_eq "$(od -An -tx1 -j $((143 * 512)) -N4 "$TMP/fat.raw" | tr -d ' ')" f8ffffff "FAT 2 at sector 143"
  expect_eq "$(od -An -c -j $((152 * 512)) -N4 "$TMP/fat.raw" | tr -d ' ')" TEST "root directory at sector 152"
  expect_eq "$(od -An -tx1 -j $((129 * 512)) -N16 "$TMP/fat.raw" | tr -d ' ')" 00000000000000000000000000000000 "sector 129 from the parent"
  pass diff-chain-vhd-windows
else
  echo "corpus absent: Windows-made differencing VHD not checked"
fi
