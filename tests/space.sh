#!/bin/sh
# Where staged bytes land (DESIGN.md §9): an update between two versions
# of a package with the commit limit far below the package size (so no
# payload may go through the overlay), on VHDX, VHD and raw, judged by
# sleuthkit and qemu-img; kill -9 at moments during an update leaves one
# version or the other, complete; file growth per byte staged for dynamic
# VHDX (1, 2, 32 MiB blocks) and VHD; staging again into freed space grows
# nothing; kills then a good run end at the size of one good run; refusals
# (volume too small, case twins, an 8.3 alias clash) leave the file
# byte-identical and a differencing child valid.
. "${top_srcdir:-.}/tests/functions.sh"
requires qemu-img vhdiinfo sgdisk mkntfs mkfs.fat fls icat istat hivexregedit jq

# mkpkg DIR DRIVERVER SEED: about 20 MiB in 26 files and two folders.
mkpkg() {
  mkdir -p "$1/sub/deeper"
  printf '[Version]\r\nClass=Display\r\nDriverVer = %s\r\n' "$2" >"$1/nv_test.inf"
  i=0
  for kib in 1 3 700 2048 5000 17 64 9000 333 1 2 1200; do
    head -c $((kib * 1024 + i * 37 + $3)) /dev/urandom >"$1/file$i.dll"
    i=$((i + 1))
  done
  for kib in 4 900 30 1500; do
    head -c $((kib * 1024 + $3)) /dev/urandom >"$1/sub/s$kib.bin"
    head -c $((kib * 512)) /dev/urandom >"$1/sub/deeper/d$kib.bin"
  done
  head -c 100 /dev/urandom >"$1/tiny.cat"
}
V1=$TMP/p1/nv_test.inf_amd64_1111111111111111
V2=$TMP/p2/nv_test.inf_amd64_2222222222222222
mkpkg "$V1" "10/23/2023,31.0.15.4601" 11
mkpkg "$V2" "11/14/2023,31.0.15.4700" 22
bytes=$(du -sb "$V1" | cut -f1)

mkgpt_windows "$TMP/base.raw"
size() { stat -c %s "$1"; }
# img_check IMAGE FMT: qemu-img check for VHDX, libvhdi for VHD (qemu-img
# checks no VHD), nothing for raw.
img_check() {
  case "$2" in
  vhdx) qemu-img check -q -f vhdx "$1" ;;
  vpc) vhdiinfo "$1" >/dev/null ;;
  esac
}

# staged_packages IMAGE: the HostDriverStore folders, as inspect lists them.
staged_packages() {
  run 0 "$GPUPV_PREP" inspect --json "$1"
  jqv '[.host_driver_store[].package] | sort | join(",")'
}

# ---- an update that never sends payload through the overlay ----------
for fmt in vhdx vpc raw; do
  img=$TMP/u.$fmt
  qemu-img convert -f raw -O "$fmt" "$TMP/base.raw" "$img"
  GPUPV_PREP_COMMIT_LIMIT_MB=1 run 0 "$GPUPV_PREP" stage "$img" "$V1"
  GPUPV_PREP_COMMIT_LIMIT_MB=1 run 0 "$GPUPV_PREP" stage --dry-run "$img" "$V2"
  GPUPV_PREP_COMMIT_LIMIT_MB=1 run 0 "$GPUPV_PREP" stage "$img" "$V2" --json
  expect_eq "$(jqv '[.packages[] | .action] | sort | join(",")')" "remove,stage" \
    "$fmt: update actions"
  expect_eq "$(staged_packages "$img")" "$(basename "$V2")" "$fmt: folders after the update"
  check_staged "$img" "$fmt" "$V2"
  img_check "$img" "$fmt" || fail "$fmt: qemu-img check / vhdiinfo"
  # The same with a commit limit a real update passes but the payload
  # would not: a dry run and a real run agree.
  pass "$fmt: update of a $((bytes / 1048576)) MiB package with a 1 MiB commit limit"
done

# A staged file damaged in place (same size and time: a re-run would not
# notice): verify reports it, stage --repair writes it again, with the
# commit limit far below the file's size.
img=$TMP/u.raw
start=$(sfdisk -J "$img" 2>/dev/null | jq '.partitiontable.partitions[2].start')
inode=$(fls -r -p -o "$start" "$img" | awk -F'\t' '/FileRepository\/nv_test.inf_amd64_2222222222222222\/file7.dll$/ {
  split($1, a, " "); sub(/-.*/, "", a[2]); sub(/:$/, "", a[2]); print a[2]; exit }')
[ -n "$inode" ] || fail "repair: file7.dll not found by fls"
cluster=$(istat -o "$start" "$img" "$inode" | sed -n '/^Type: \$DATA/,$p' | awk 'NR == 2 { print $1 }')
[ -n "$cluster" ] || fail "repair: no data cluster of file7.dll"
head -c 4096 /dev/urandom | dd of="$img" bs=4096 seek=$((start / 8 + cluster)) conv=notrunc status=none
run 1 "$GPUPV_PREP" verify "$img" --json
expect_eq "$(jqv '.problems | length')" 1 "problems verify finds"
run 0 "$GPUPV_PREP" stage "$img" "$V2" --json
expect_eq "$(jqv '.changed')" false "a re-run without --repair"
GPUPV_PREP_COMMIT_LIMIT_MB=1 run 0 "$GPUPV_PREP" stage --repair "$img" "$V2" --json
expect_eq "$(jqv '[.packages[].action] | join(",")')" repair "the action of --repair"
expect_eq "$(jqv .files_written)" 1 "files --repair wrote"
run 0 "$GPUPV_PREP" verify "$img"
check_staged "$img" raw "$V2"
pass "stage --repair writes a damaged file again, atomically"

# A commit limit below what even the metadata needs: refused, unchanged.
img=$TMP/u.vhdx
before=$(sha "$img")
GPUPV_PREP_COMMIT_LIMIT_MB=0 run 1 "$GPUPV_PREP" stage --dry-run "$img" "$V1"
grep -q "more than one atomic commit takes" "$TMP/err" || fail "dry run: $(cat "$TMP/err")"
GPUPV_PREP_COMMIT_LIMIT_MB=0 run 1 "$GPUPV_PREP" stage "$img" "$V1"
grep -q "more than one atomic commit takes" "$TMP/err" || fail "limit: $(cat "$TMP/err")"
expect_eq "$(staged_packages "$img")" "$(basename "$V2")" "after a refused commit"
pass "a commit over the limit is refused by the dry run and the real run alike"

# ---- kill -9 during an update: one version or the other, complete -----
for fmt in vhdx vpc raw; do
  qemu-img convert -f raw -O "$fmt" "$TMP/base.raw" "$TMP/k1.$fmt"
  run 0 "$GPUPV_PREP" stage "$TMP/k1.$fmt" "$V1"
  case $fmt in vhdx) late=vhdx-logged ;; *) late=journal-committed ;; esac
  for at in stage-file-1 stage-file-9 stage-file-20 commit $late 0.01 0.03; do
    img=$TMP/k.$fmt
    rm -f "$img" "$img.gpupv-journal"
    cp "$TMP/k1.$fmt" "$img"
    case $at in
    0.*)
      "$GPUPV_PREP" stage "$img" "$V2" >/dev/null 2>&1 &
      pid=$!
      sleep "$at"
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true ;;
    *)
      set +e
      GPUPV_PREP_FAULT=$at "$GPUPV_PREP" stage "$img" "$V2" >/dev/null 2>&1
      [ $? -ne 0 ] || fail "$fmt: not killed at $at"
      set -e ;;
    esac
    got=$(staged_packages "$img")
    case "$got" in
    "$(basename "$V1")") ver=$V1 ;;
    "$(basename "$V2")") ver=$V2 ;;
    *) fail "$fmt: killed at $at: folders '$got'" ;;
    esac
    run 0 "$GPUPV_PREP" verify "$img" --json
    expect_eq "$(jqv '.packages | length')" 1 "$fmt: packages after a kill"
    expect_eq "$(jqv '.packages[0].name')" "$(basename "$ver")" "$fmt: manifest after a kill"
    # A writable open completes what the killed run committed; then
    # the outside readers judge the file.
    run 0 "$GPUPV_PREP" stage "$img" "$ver"
    check_staged "$img" "$fmt" "$ver" >/dev/null
    img_check "$img" "$fmt" || fail "$fmt: image check after a kill"
    echo "  $fmt: killed at $at: $(basename "$ver")"
  done
  pass "$fmt: kills during an update leave version 1 or 2, complete"
done

# ---- growth per byte staged ------------------------------------------
# A disk large enough that fresh blocks are needed: 2 GiB.
guest_layout "$TMP/big.raw" 2G 32 >/dev/null
rm -f "$TMP/SYSTEM"
mkhive_system "$TMP/SYSTEM"
"$IMGTOOL" put "$TMP/big.raw" 3 Windows/System32/config/SYSTEM "$TMP/SYSTEM"
check_growth() {  # IMAGE BLOCK_BYTES LABEL
  s0=$(size "$1")
  run 0 "$GPUPV_PREP" stage "$1" "$V1"
  s1=$(size "$1")
  limit=$((bytes + bytes / 20 + $2))
  [ $((s1 - s0)) -le "$limit" ] ||
    fail "$3: the file grew $((s1 - s0)) bytes for $bytes staged (limit $limit)"
  # Staged again after a remove: the freed clusters are in stored
  # blocks, and nothing grows.
  run 0 "$GPUPV_PREP" remove "$1"
  run 0 "$GPUPV_PREP" stage "$1" "$V1"
  s2=$(size "$1")
  expect_eq "$s2" "$s1" "$3: size after remove and stage again"
  echo "  $3: grew $((s1 - s0)) bytes for $bytes staged; again after remove: +$((s2 - s1))"
}
for bs in 1M 2M 32M; do
  qemu-img convert -f raw -O vhdx -o block_size=$bs "$TMP/big.raw" "$TMP/g.vhdx"
  check_growth "$TMP/g.vhdx" $(( ${bs%M} * 1048576 )) "dynamic VHDX, $bs blocks"
done
qemu-img convert -f raw -O vpc "$TMP/big.raw" "$TMP/g.vhd"
check_growth "$TMP/g.vhd" $((2 * 1048576)) "dynamic VHD"
pass "growth at most 1.05 x the bytes staged plus one block; none into stored free space"

# ---- kills, then a good run: the size of one good run ----------------
for fmt in vhdx vpc; do
  qemu-img convert -f raw -O "$fmt" "$TMP/big.raw" "$TMP/one.$fmt"
  run 0 "$GPUPV_PREP" stage "$TMP/one.$fmt" "$V1"
  qemu-img convert -f raw -O "$fmt" "$TMP/big.raw" "$TMP/kk.$fmt"
  for fault in stage-file-3 stage-file-12; do
    set +e
    GPUPV_PREP_FAULT=$fault "$GPUPV_PREP" stage "$TMP/kk.$fmt" "$V1" >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "$fmt: the run with fault $fault was not killed"
  done
  run 0 "$GPUPV_PREP" stage "$TMP/kk.$fmt" "$V1"
  a=$(size "$TMP/one.$fmt") b=$(size "$TMP/kk.$fmt")
  block=$((32 * 1048576))
  [ "$b" -le $((a + block)) ] || fail "$fmt: two kills and a good run: $b bytes, one good run: $a"
  img_check "$TMP/kk.$fmt" "$fmt" || fail "$fmt: image check after kills"
  echo "  $fmt: one good run $a bytes, two kills and a good run $b bytes"
done
pass "interrupted runs leave no blocks behind"

# ---- refusals: byte-identical, children still valid --------------------
qemu-img convert -f raw -O vhdx "$TMP/base.raw" "$TMP/r.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/r.vhdx" --child "$TMP/r-child.avhdx" "$V1"
refuse() {  # WHAT PATTERN ARGS...
  what=$1 pat=$2
  shift 2
  before=$(sha "$TMP/r.vhdx")
  run 1 "$GPUPV_PREP" stage "$TMP/r.vhdx" "$@"
  grep -q "$pat" "$TMP/err" || fail "$what: message: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/err")" -le 2 ] || fail "$what: message longer than two lines"
  expect_eq "$(sha "$TMP/r.vhdx")" "$before" "$what: image changed"
  run 0 "$GPUPV_PREP" inspect "$TMP/r-child.avhdx"
  echo "  refused: $what"
}
# Too large by a little: the volume's free bytes plus one cluster.
mkdir -p "$TMP/big/nv_big.inf_amd64_3333333333333333"
printf '[Version]\r\nDriverVer = 01/01/2024,31.0.15.5000\r\n' \
  >"$TMP/big/nv_big.inf_amd64_3333333333333333/nv_big.inf"
run 0 "$GPUPV_PREP" stage --dry-run --json "$TMP/r.vhdx" "$TMP/big/nv_big.inf_amd64_3333333333333333"
fb=$(jqv '.space.free')
truncate -s $((fb + 4096)) "$TMP/big/nv_big.inf_amd64_3333333333333333/big.bin"
refuse "volume too small" "nothing was written" "$TMP/big/nv_big.inf_amd64_3333333333333333"
rm -rf "$TMP/big"
# Case twins.
T=$TMP/twins/nv_twin.inf_amd64_4444444444444444
mkdir -p "$T"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$T/nv_twin.inf"
echo a >"$T/Driver.dll"
echo b >"$T/driver.DLL"
refuse "case twins" "differ only in case" "$T"
# A name equal to the 8.3 alias its sibling gets first.
A=$TMP/alias/nv_alias.inf_amd64_5555555555555555
mkdir -p "$A"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$A/nv_alias.inf"
echo a >"$A/aaaaaaaaaa.dll"
echo b >"$A/aaaaaa~1.dll"
refuse "8.3 alias clash" "8.3 alias" "$A" --short-names on
# The host file system too small for what the image file may grow by.
GPUPV_PREP_HOST_FREE_MB=1 refuse "host file system full" "host file system holding it has" "$V2"
pass "refusals leave the image byte-identical and its child valid"
