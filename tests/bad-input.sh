#!/bin/sh
# Corrupt and lying images: each gives a short error naming the file, a
# non-zero exit, and leaves the file unchanged.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk od

# expect_bad RC FILE PATTERN [inspect options]
expect_bad() {
  want=$1 f=$2 pat=$3; shift 3
  b=$(sha "$f")
  run "$want" "$GPUPV_PREP" inspect "$@" "$f"
  grep -q "^gpupv-prep: inspect: $f: " "$TMP/err" ||
    fail "message does not name $f: $(cat "$TMP/err")"
  grep -q "$pat" "$TMP/err" || fail "$f: expected '$pat' in: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/err")" -le 2 ] || fail "$f: message longer than 2 lines"
  expect_eq "$(sha "$f")" "$b" "$f changed"
  # compact opens it for writing: the same refusal, the file as it was.
  run "$want" "$GPUPV_PREP" compact "$@" "$f"
  grep -q "^gpupv-prep: compact: $f: " "$TMP/err" ||
    fail "compact: message does not name $f: $(cat "$TMP/err")"
  expect_eq "$(sha "$f")" "$b" "$f changed by compact"
  pass "$(basename "$f"): $pat"
}

u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
hex1() { od -An -tx1 -j "$2" -N1 "$1" | tr -d ' '; }

truncate -s 64M "$TMP/base.raw"
sgdisk -n 1:2048:0 -t 1:0700 "$TMP/base.raw" >/dev/null
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/base.raw" "$TMP/base.vhdx"
head -c 40M /dev/urandom | dd of="$TMP/base.raw" bs=1M seek=2 conv=notrunc status=none
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/base.raw" "$TMP/data.vhdx"

RT=196608
# Which region table entry is the BAT (GUID 2DC27766-...: first byte 66)?
if [ "$(hex1 "$TMP/data.vhdx" $((RT + 16)))" = 66 ]; then
  BATE=$((RT + 16)) METAE=$((RT + 48))
else
  BATE=$((RT + 48)) METAE=$((RT + 16))
fi
BAT=$(u64 "$TMP/data.vhdx" $((BATE + 16)))
META=$(u64 "$TMP/data.vhdx" $((METAE + 16)))
fixrt() {  # both region tables
  "$IMGTOOL" crc32c "$1" 196608 65536 196612
  "$IMGTOOL" crc32c "$1" 262144 65536 262148
}
pokert() {  # FILE OFFSET_IN_TABLE WIDTH VALUE, in both copies
  "$IMGTOOL" poke "$1" $((196608 + $2)) "$3" "$4"
  "$IMGTOOL" poke "$1" $((262144 + $2)) "$3" "$4"
  fixrt "$1"
}

# Truncated VHDX: only the first 1.5 MiB.
head -c 1572864 "$TMP/data.vhdx" >"$TMP/trunc.vhdx"
expect_bad 3 "$TMP/trunc.vhdx" 'lies\|past the end\|too small\|truncated'
# Truncated in the middle of the data blocks.
size=$(stat -c %s "$TMP/data.vhdx")
head -c $((size / 2)) "$TMP/data.vhdx" >"$TMP/half.vhdx"
expect_bad 3 "$TMP/half.vhdx" 'BAT entry'

# Both header CRCs bad.
cp "$TMP/data.vhdx" "$TMP/hdr.vhdx"
"$IMGTOOL" poke "$TMP/hdr.vhdx" $((65536 + 1000)) u8 1
"$IMGTOOL" poke "$TMP/hdr.vhdx" $((131072 + 1000)) u8 1
expect_bad 3 "$TMP/hdr.vhdx" 'both VHDX headers are corrupt'
# One bad header: the other is used, with a warning.
cp "$TMP/data.vhdx" "$TMP/hdr1.vhdx"
"$IMGTOOL" poke "$TMP/hdr1.vhdx" $((65536 + 1000)) u8 1
run 0 "$GPUPV_PREP" inspect --json "$TMP/hdr1.vhdx"
jq -r '.warnings[]' "$TMP/out" | grep -q 'header 1 is corrupt' || fail "no header warning"

# Both region tables bad.
cp "$TMP/data.vhdx" "$TMP/rt.vhdx"
"$IMGTOOL" poke "$TMP/rt.vhdx" $((196608 + 100)) u8 1
"$IMGTOOL" poke "$TMP/rt.vhdx" $((262144 + 100)) u8 1
expect_bad 3 "$TMP/rt.vhdx" 'region tables are corrupt'

# Overlapping regions: metadata placed on the BAT.
cp "$TMP/data.vhdx" "$TMP/overlap.vhdx"
pokert "$TMP/overlap.vhdx" $((METAE - RT + 16)) u64 "$BAT"
expect_bad 3 "$TMP/overlap.vhdx" 'overlap'

# A region past the end of the file.
cp "$TMP/data.vhdx" "$TMP/far.vhdx"
pokert "$TMP/far.vhdx" $((BATE - RT + 16)) u64 $((1 << 40))
expect_bad 3 "$TMP/far.vhdx" 'past the end of the file'

# Unknown region marked required.
cp "$TMP/data.vhdx" "$TMP/unk.vhdx"
n=$(u32 "$TMP/unk.vhdx" $((RT + 8)))
e=$((16 + 32 * n))
pokert "$TMP/unk.vhdx" "$e" u64 0x1122334455667788
pokert "$TMP/unk.vhdx" $((e + 8)) u64 0x99aabbccddeeff00
pokert "$TMP/unk.vhdx" $((e + 16)) u64 $((64 << 20))
pokert "$TMP/unk.vhdx" $((e + 24)) u32 1048576
pokert "$TMP/unk.vhdx" $((e + 28)) u32 1
pokert "$TMP/unk.vhdx" 8 u32 $((n + 1))
expect_bad 3 "$TMP/unk.vhdx" 'unknown region .* marked required'

# Unknown metadata item marked required: rewrite the GUID of an item
# (the Page 83 id) and set IsRequired.
cp "$TMP/data.vhdx" "$TMP/meta.vhdx"
cnt=$(od -An -tu2 -j $((META + 10)) -N2 "$TMP/meta.vhdx" | tr -d ' ')
i=0
while [ "$i" -lt "$cnt" ]; do
  if [ "$(hex1 "$TMP/meta.vhdx" $((META + 32 + 32 * i)))" = ab ]; then  # BECA12AB
    "$IMGTOOL" poke "$TMP/meta.vhdx" $((META + 32 + 32 * i)) u32 0xdeadbeef
    "$IMGTOOL" poke "$TMP/meta.vhdx" $((META + 32 + 32 * i + 24)) u32 4
  fi
  i=$((i + 1))
done
expect_bad 3 "$TMP/meta.vhdx" 'unknown metadata item .* marked required'

# BAT entries: past EOF, absurd offset, invalid state, into the BAT.
for case in "$((6 | (1024 << 20)))":'points at offset' \
            "$((6 | ((1 << 43) << 20)))":'points at offset' \
            7:'has state 7' \
            "$((6 | BAT))":'into a metadata region'; do
  v=${case%%:*} pat=${case#*:}
  cp "$TMP/data.vhdx" "$TMP/bat.vhdx"
  "$IMGTOOL" poke "$TMP/bat.vhdx" $((BAT + 8 * 3)) u64 "$v"
  expect_bad 3 "$TMP/bat.vhdx" "$pat"
done

# A block size that is not a power of two.
cp "$TMP/data.vhdx" "$TMP/bs.vhdx"
i=0
while [ "$i" -lt "$cnt" ]; do
  if [ "$(hex1 "$TMP/bs.vhdx" $((META + 32 + 32 * i)))" = 37 ]; then  # CAA16737
    off=$(u32 "$TMP/bs.vhdx" $((META + 32 + 32 * i + 16)))
    "$IMGTOOL" poke "$TMP/bs.vhdx" $((META + off)) u32 3000000
  fi
  i=$((i + 1))
done
expect_bad 3 "$TMP/bs.vhdx" 'block size 3000000'

# GPT whose entry array overruns the disk (both headers), and a partition
# past the end of the disk.
truncate -s 8M "$TMP/gpt.raw"
sgdisk -n 1:2048:+2M -t 1:0700 "$TMP/gpt.raw" >/dev/null
last=$(( $(stat -c %s "$TMP/gpt.raw") / 512 - 1 ))
cp "$TMP/gpt.raw" "$TMP/gpt-arr.raw"
for lba in 1 "$last"; do
  "$IMGTOOL" poke "$TMP/gpt-arr.raw" $((lba * 512 + 72)) u64 $((last - 10))
  "$IMGTOOL" crc32 "$TMP/gpt-arr.raw" $((lba * 512)) 92 $((lba * 512 + 16))
done
expect_bad 3 "$TMP/gpt-arr.raw" 'GPT is corrupt.*entry array overruns the disk'
# An absurd entry count in both headers.
cp "$TMP/gpt.raw" "$TMP/gpt-cnt.raw"
for lba in 1 "$last"; do
  "$IMGTOOL" poke "$TMP/gpt-cnt.raw" $((lba * 512 + 80)) u32 4000000000
  "$IMGTOOL" crc32 "$TMP/gpt-cnt.raw" $((lba * 512)) 92 $((lba * 512 + 16))
done
expect_bad 3 "$TMP/gpt-cnt.raw" 'absurd entry count'
cp "$TMP/gpt.raw" "$TMP/gpt-part.raw"
"$IMGTOOL" poke "$TMP/gpt-part.raw" $((2 * 512 + 40)) u64 99999999
"$IMGTOOL" crc32 "$TMP/gpt-part.raw" 1024 16384 $((512 + 88))
"$IMGTOOL" crc32 "$TMP/gpt-part.raw" 512 92 $((512 + 16))
expect_bad 3 "$TMP/gpt-part.raw" 'GPT entry 1 .* overruns the disk'

# MBR partition past the end; an EBR chain that loops.
truncate -s 8M "$TMP/mbr.raw"
printf 'label: dos\nstart=2048, size=999999, type=7\n' | sfdisk -q --no-tell-kernel "$TMP/mbr.raw" 2>/dev/null ||
  { printf 'label: dos\nstart=2048, size=4096, type=7\n' | sfdisk -q "$TMP/mbr.raw"
    "$IMGTOOL" poke "$TMP/mbr.raw" $((446 + 12)) u32 999999; }
expect_bad 3 "$TMP/mbr.raw" 'lies outside the disk'
truncate -s 8M "$TMP/ebr.raw"
printf 'label: dos\nstart=2048, size=8192, type=5\nstart=4096, size=2048, type=7\n' |
  sfdisk -q "$TMP/ebr.raw"
# The first EBR links to a second one 100 sectors on, which links to
# itself (links are relative to the extended partition's start).
"$IMGTOOL" poke "$TMP/ebr.raw" $((2048 * 512 + 462 + 4)) u8 5
"$IMGTOOL" poke "$TMP/ebr.raw" $((2048 * 512 + 462 + 8)) u32 100
"$IMGTOOL" poke "$TMP/ebr.raw" $((2048 * 512 + 462 + 12)) u32 100
e2=$(((2048 + 100) * 512))
"$IMGTOOL" poke "$TMP/ebr.raw" $((e2 + 462 + 4)) u8 5
"$IMGTOOL" poke "$TMP/ebr.raw" $((e2 + 462 + 8)) u32 100
"$IMGTOOL" poke "$TMP/ebr.raw" $((e2 + 462 + 12)) u32 100
"$IMGTOOL" poke "$TMP/ebr.raw" $((e2 + 510)) u16 0xaa55
expect_bad 3 "$TMP/ebr.raw" 'chain is longer'

# VHD: footer checksum bad (fixed, no copy); dynamic header bad; BAT
# entry past the end; truncated dynamic VHD.
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$TMP/gpt.raw" "$TMP/f.vhd"
s=$(stat -c %s "$TMP/f.vhd")
"$IMGTOOL" poke "$TMP/f.vhd" $((s - 512 + 64)) u32 0
expect_bad 3 "$TMP/f.vhd" 'footer is corrupt'
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$TMP/base.raw" "$TMP/d.vhd"
cp "$TMP/d.vhd" "$TMP/dh.vhd"
"$IMGTOOL" poke "$TMP/dh.vhd" $((512 + 36)) u32 0
expect_bad 3 "$TMP/dh.vhd" 'dynamic header is corrupt'
cp "$TMP/d.vhd" "$TMP/db.vhd"
batoff=$(od -An -tx1 -j $((512 + 16)) -N8 "$TMP/db.vhd" | tr -d ' ')
"$IMGTOOL" poke "$TMP/db.vhd" $((0x$batoff + 4 * 5)) u32 0x00ffff7f
expect_bad 3 "$TMP/db.vhd" 'BAT entry 5'
s=$(stat -c %s "$TMP/d.vhd")
head -c $((s / 2)) "$TMP/d.vhd" >"$TMP/dt.vhd"
expect_bad 3 "$TMP/dt.vhd" 'BAT entry\|outside\|past the end'
pass bad-input
