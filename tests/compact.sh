#!/bin/sh
# compact: on dynamic VHDX (1 and 32 MiB blocks), dynamic VHD, raw and a
# differencing VHDX, after a package was staged and removed.  Judged by
# readers we did not write: every allocated NTFS cluster reads the same
# (sleuthkit's blkls -a), the ESP, the MSR and the partition tables are
# byte-equal, qemu-img check and libvhdi accept the file, and the file is
# as small as its used blocks.  Kills during compact leave a valid image
# with the same used contents; --output leaves the input untouched.
. "${top_srcdir:-.}/tests/functions.sh"
requires qemu-img vhdiinfo sgdisk mkntfs mkfs.fat blkls hivexregedit jq

P=$TMP/p/nv_cmp.inf_amd64_6666666666666666
mkdir -p "$P/sub"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$P/nv_cmp.inf"
for kib in 9000 3000 700 12000 5; do
  head -c $((kib * 1024)) /dev/urandom >"$P/f$kib.bin"
  head -c $((kib * 512)) /dev/urandom >"$P/sub/g$kib.bin"
done

guest_layout "$TMP/base.raw" 1G 32 >/dev/null
rm -f "$TMP/SYSTEM"
mkhive_system "$TMP/SYSTEM"
"$IMGTOOL" put "$TMP/base.raw" 3 Windows/System32/config/SYSTEM "$TMP/SYSTEM"
size() { stat -c %s "$1"; }

# to_raw IMAGE FMT OUT: the virtual disk (libvhdi for a differencing VHDX,
# which qemu-img cannot read).
to_raw() {
  rm -f "$3"
  case $2 in
  vhdx-diff) "$IMGTOOL" vhdi-dump "$1" "$3" "$TMP/parent.vhdx" >/dev/null ;;
  *) qemu-img convert -f "$2" -O raw "$1" "$3" ;;
  esac
}
img_check() {
  case $2 in
  vhdx) qemu-img check -q -f vhdx "$1" ;;
  vpc|vhdx-diff) vhdiinfo "$1" >/dev/null ;;
  esac
}
# same_used A.raw B.raw WHAT: allocated NTFS clusters, the other
# partitions and the tables read the same.
same_used() {
  start=$(sfdisk -J "$1" 2>/dev/null | jq '.partitiontable.partitions[2].start')
  blkls -a -o "$start" "$1" >"$TMP/a.blk" || fail "$3: blkls on the input"
  blkls -a -o "$start" "$2" >"$TMP/b.blk" || fail "$3: blkls on the output"
  cmp -s "$TMP/a.blk" "$TMP/b.blk" || fail "$3: allocated NTFS clusters differ"
  cmp -s -n $((start * 512)) "$1" "$2" || fail "$3: tables, ESP or MSR differ"
  n=$(($(size "$1") / 1048576))
  cmp -s -i $(((n - 1) * 1048576)) "$1" "$2" || fail "$3: the backup GPT differs"
}

# prepare FMT IMAGE: a staged, then removed, package; prints nothing.
prepare() {
  case $1 in
  vhdx1) qemu-img convert -f raw -O vhdx -o block_size=1M "$TMP/base.raw" "$2" ;;
  vhdx32) qemu-img convert -f raw -O vhdx -o block_size=32M "$TMP/base.raw" "$2" ;;
  vpc) qemu-img convert -f raw -O vpc "$TMP/base.raw" "$2" ;;
  raw) cp --sparse=always "$TMP/base.raw" "$2" ;;
  esac
  run 0 "$GPUPV_PREP" stage "$2" "$P"
  run 0 "$GPUPV_PREP" remove "$2"
}

for kind in vhdx1 vhdx32 vpc raw; do
  case $kind in vhdx*) fmt=vhdx ;; *) fmt=$kind ;; esac
  img=$TMP/c.$kind
  prepare "$kind" "$img"
  to_raw "$img" "$fmt" "$TMP/before.raw"
  s0=$(size "$img") a0=$(du -B1 "$img" | cut -f1)
  run 0 "$GPUPV_PREP" compact --dry-run --json "$img"
  expect_eq "$(size "$img")" "$s0" "$kind: size after a dry run"
  predicted=$(jqv .file_size_after)
  run 0 "$GPUPV_PREP" compact --json "$img"
  dropped=$(jqv .blocks_dropped) s1=$(size "$img") a1=$(du -B1 "$img" | cut -f1)
  img_check "$img" "$fmt" || fail "$kind: the image check fails after compact"
  to_raw "$img" "$fmt" "$TMP/after.raw"
  same_used "$TMP/before.raw" "$TMP/after.raw" "$kind"
  case $kind in
  raw)
    [ "$a1" -lt "$a0" ] || fail "raw: host allocation $a0 -> $a1" ;;
  *)
    # With 32 MiB blocks the package lay in blocks the volume's own
    # metadata keeps: nothing to drop, and nothing must grow.
    [ "$dropped" -gt 0 ] || [ "$kind" = vhdx32 ] || fail "$kind: no block dropped"
    [ "$s1" -lt "$s0" ] || { [ "$kind" = vhdx32 ] && [ "$s1" -le "$s0" ]; } ||
      fail "$kind: file $s0 -> $s1"
    [ "$s1" -le "$predicted" ] || fail "$kind: file $s1, the dry run said $predicted" ;;
  esac
  # Again: nothing left to give back.
  run 0 "$GPUPV_PREP" compact --json "$img"
  expect_eq "$(jqv .blocks_dropped)" 0 "$kind: blocks dropped by a second compact"
  expect_eq "$(size "$img")" "$s1" "$kind: size after a second compact"
  # Still a guest gpupv-prep can stage into.
  run 0 "$GPUPV_PREP" stage "$img" "$P"
  echo "  $kind: file $s0 -> $s1 bytes (dry run said $predicted), host $a0 -> $a1"
done
pass "compact keeps every used byte and gives the rest back"

# The file is no larger than its used blocks plus metadata: what
# qemu-img convert, which writes only blocks holding data, makes of the
# same virtual disk.
prepare vhdx1 "$TMP/m.vhdx"
run 0 "$GPUPV_PREP" compact "$TMP/m.vhdx"
to_raw "$TMP/m.vhdx" vhdx "$TMP/m.raw"
qemu-img convert -f raw -O vhdx -o block_size=1M "$TMP/m.raw" "$TMP/q.vhdx"
[ "$(size "$TMP/m.vhdx")" -le $(($(size "$TMP/q.vhdx") + 2 * 1048576)) ] ||
  fail "VHDX: $(size "$TMP/m.vhdx") bytes; qemu-img makes $(size "$TMP/q.vhdx") of it"
echo "  compacted $(size "$TMP/m.vhdx") bytes, qemu-img convert of it $(size "$TMP/q.vhdx")"
pass "a compacted VHDX holds its used blocks and metadata only"

# A differencing VHDX child: its blocks that hold only free clusters go,
# and the parent shows through them again.
qemu-img convert -f raw -O vhdx -o block_size=1M "$TMP/base.raw" "$TMP/parent.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/parent.vhdx" --child "$TMP/child.avhdx" "$P"
run 0 "$GPUPV_PREP" remove "$TMP/child.avhdx"
to_raw "$TMP/child.avhdx" vhdx-diff "$TMP/before.raw"
psum=$(sha "$TMP/parent.vhdx")
s0=$(size "$TMP/child.avhdx")
run 0 "$GPUPV_PREP" compact --json "$TMP/child.avhdx"
[ "$(jqv .blocks_dropped)" -gt 0 ] || fail "child: no block dropped"
[ "$(size "$TMP/child.avhdx")" -lt "$s0" ] || fail "child: not smaller"
expect_eq "$(sha "$TMP/parent.vhdx")" "$psum" "the parent of a compacted child"
img_check "$TMP/child.avhdx" vhdx-diff || fail "child: libvhdi"
to_raw "$TMP/child.avhdx" vhdx-diff "$TMP/after.raw"
same_used "$TMP/before.raw" "$TMP/after.raw" "child"
run 0 "$GPUPV_PREP" inspect "$TMP/child.avhdx"
pass "a differencing child compacts and its parent shows through"

# Kills during compact: a valid image with the same used contents; the
# next compact finishes the job.
for fmt in vhdx vpc; do
  case $fmt in vhdx) kind=vhdx1 late=vhdx-logged ;; *) kind=vpc late=journal-committed ;; esac
  prepare "$kind" "$TMP/ref.$fmt"
  run 0 "$GPUPV_PREP" compact "$TMP/ref.$fmt"
  for at in compact-discarded $late compact-packed; do
    prepare "$kind" "$TMP/k.$fmt"
    to_raw "$TMP/k.$fmt" "$fmt" "$TMP/before.raw"
    set +e
    GPUPV_PREP_FAULT=$at "$GPUPV_PREP" compact "$TMP/k.$fmt" >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "$fmt: compact was not killed at $at"
    run 0 "$GPUPV_PREP" inspect "$TMP/k.$fmt"
    # What a crash leaves is read as it is (a VHDX log or a journal
    # pending): gpupv-prep completes it on the next writable open.
    run 0 "$GPUPV_PREP" compact "$TMP/k.$fmt"
    img_check "$TMP/k.$fmt" "$fmt" || fail "$fmt: killed at $at: image check"
    to_raw "$TMP/k.$fmt" "$fmt" "$TMP/after.raw"
    same_used "$TMP/before.raw" "$TMP/after.raw" "$fmt killed at $at"
    expect_eq "$(size "$TMP/k.$fmt")" "$(size "$TMP/ref.$fmt")" \
      "$fmt: size after a kill at $at and a second compact"
    echo "  $fmt: killed at $at, then compacted: $(size "$TMP/k.$fmt") bytes"
  done
done
pass "kills during compact leave a valid image"

# --output: the input is only read.
prepare vhdx32 "$TMP/o.vhdx"
to_raw "$TMP/o.vhdx" vhdx "$TMP/before.raw"
osum=$(sha "$TMP/o.vhdx")
run 0 "$GPUPV_PREP" compact "$TMP/o.vhdx" --output "$TMP/o-new.vhd" --json
expect_eq "$(sha "$TMP/o.vhdx")" "$osum" "the input of compact --output"
vhdiinfo "$TMP/o-new.vhd" >/dev/null || fail "--output: libvhdi"
to_raw "$TMP/o-new.vhd" vpc "$TMP/after.raw"
same_used "$TMP/before.raw" "$TMP/after.raw" "--output"
run 1 "$GPUPV_PREP" compact "$TMP/o.vhdx" --output "$TMP/o-new.vhd"
grep -q "exists" "$TMP/err" || fail "--output over an existing file: $(cat "$TMP/err")"
pass "compact --output writes a compacted copy and leaves the input alone"
