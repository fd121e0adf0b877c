#!/bin/sh
# The fuzz harnesses (tests/fuzz/) replayed without libFuzzer over the
# regression inputs in tests/fuzz/regress/ (each finding of `make fuzz`
# becomes one) and over hostile images made here: each must return.
# Under ./configure --enable-sanitizers this runs with ASan and UBSan.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk

R=$top_srcdir/tests/fuzz/regress
B=$top_builddir/tests/fuzz
n=0
for kind in reg inf json hivelog; do
  for f in "$R/$kind"/*; do
    [ -e "$f" ] || continue
    "$B/replay-$kind" "$f" || fail "replay-$kind crashed on $(basename "$f")"
    n=$((n + 1))
  done
done
# NTFS and ext volumes (kept gzipped: they are mostly zeros).
for kind in ntfs ext4; do
  for f in "$R/$kind"/*.gz; do
    [ -e "$f" ] || continue
    gzip -dc "$f" >"$TMP/vol"
    "$B/replay-$kind" "$TMP/vol" || fail "replay-$kind crashed on $(basename "$f")"
    n=$((n + 1))
  done
done
# Images: real ones cut short, with their headers and tables swapped
# about, and anything kept under regress/image.
truncate -s 8M "$TMP/d.raw"
sgdisk -n 1:2048:0 "$TMP/d.raw" >/dev/null
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/d.raw" "$TMP/d.vhdx"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic "$TMP/d.raw" "$TMP/d.vhd"
for img in d.raw d.vhdx d.vhd; do
  for cut in 512 4096 65536 196608 1048576 2097152 3145728; do
    head -c $cut "$TMP/$img" >"$TMP/cut"
    "$B/replay-image" "$TMP/cut" || fail "replay-image crashed on $img cut at $cut"
    n=$((n + 1))
  done
done
dd if="$TMP/d.vhdx" of="$TMP/swap.vhdx" bs=64K count=1 status=none
dd if="$TMP/d.vhdx" bs=64K skip=3 count=2 status=none >>"$TMP/swap.vhdx"
dd if="$TMP/d.vhdx" bs=64K skip=1 count=2 status=none >>"$TMP/swap.vhdx"
tail -c +327681 "$TMP/d.vhdx" >>"$TMP/swap.vhdx"
"$B/replay-image" "$TMP/swap.vhdx" || fail "replay-image crashed on swapped regions"
for f in "$R/image"/*; do
  [ -e "$f" ] || continue
  "$B/replay-image" "$f" || fail "replay-image crashed on $(basename "$f")"
  n=$((n + 1))
done
pass "$n inputs replayed through the fuzz harnesses"
