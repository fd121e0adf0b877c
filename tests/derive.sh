#!/bin/sh
# Golden-image pipelines: stage --output NEW and --child NEW.avhdx leave
# the input byte-identical.  NEW is judged by qemu-img (check, convert),
# libvhdi (the differencing child read through its parent) and sleuthkit
# (the staged files); a killed run leaves no NEW.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit fls icat istat jq sfdisk cmp

PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG/Display.NvContainer"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$PKG/nv_dispig.inf"
head -c 3000000 /dev/urandom >"$PKG/Display.NvContainer/big.bin"
echo small >"$PKG/small.txt"

mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$TMP/g.raw" "$TMP/base.vhdx"
base=$(sha "$TMP/base.vhdx")
P3=$(sfdisk -J "$TMP/g.raw" | jq '.partitiontable.partitions[2] | "\(.start) \(.size)"' -r)

# outside_same RAW: every sector outside the NTFS volume equals the input.
outside_same() {
  set -- "$1" $P3
  cmp -s -n $(($2 * 512)) "$1" "$TMP/g.raw" || fail "$1: differs before the volume"
  tail -c +$((($2 + $3) * 512 + 1)) "$1" >"$TMP/t1"
  tail -c +$((($2 + $3) * 512 + 1)) "$TMP/g.raw" >"$TMP/t2"
  cmp -s "$TMP/t1" "$TMP/t2" || fail "$1: differs after the volume"
}

for out in new.vhdx new.vhd new.raw fixed.vhdx; do
  fmtopt=
  [ "$out" != fixed.vhdx ] || fmtopt="--output-format vhdx-fixed"
  run 0 "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/$out" $fmtopt --json
  expect_eq "$(jqv .image)" "$TMP/$out" "$out: report names NEW"
  expect_eq "$(sha "$TMP/base.vhdx")" "$base" "$out: the input changed"
  case $out in
    *.vhdx) qf=vhdx; qemu-img check -q "$TMP/$out" || fail "$out: qemu-img check" ;;
    *.vhd) qf=vpc ;;
    *) qf=raw ;;
  esac
  expect_eq "$(qemu-img info --output=json "$TMP/$out" | jq -r '."virtual-size"')" \
    "$(stat -c %s "$TMP/g.raw")" "$out: virtual size"
  check_staged "$TMP/$out" $qf "$PKG"
  qemu-img convert -f $qf -O raw "$TMP/$out" "$TMP/out.raw"
  outside_same "$TMP/out.raw"
  ls "$TMP" | grep -q gpupv-tmp && fail "$out: a temporary file was left"
done
# Only used data is allocated: the dynamic output is far smaller than
# the disk, the fixed one holds it all.
[ $(du -k "$TMP/new.vhdx" | cut -f1) -lt 40000 ] || fail "new.vhdx allocates unused space"
[ $(du -k "$TMP/fixed.vhdx" | cut -f1) -ge $((160 * 1024)) ] ||
  fail "fixed.vhdx does not hold its blocks allocated"
pass "--output: vhdx, vhd, raw, fixed vhdx; the input untouched"

run 1 "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/new.vhdx"
grep -q "does not overwrite" "$TMP/err" || fail "existing NEW: $(cat "$TMP/err")"
run 2 "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/new.bin"
grep -q "output-format" "$TMP/err" || fail "unknown extension: $(cat "$TMP/err")"
run 2 "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/a.vhdx" --child "$TMP/b.avhdx"
# Killed while copying and at the commit: no NEW.
for f in derive-copied commit; do
  set +e
  (GPUPV_PREP_FAULT=$f "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" \
    --output "$TMP/k.vhdx" >/dev/null 2>&1) 2>/dev/null
  rc=$?
  set -e
  [ "$rc" -eq 137 ] || fail "fault $f: exit $rc, not killed"
  [ ! -e "$TMP/k.vhdx" ] || fail "killed at $f: NEW exists"
  rm -f "$TMP"/.k.vhdx.gpupv-tmp-*
done
expect_eq "$(sha "$TMP/base.vhdx")" "$base" "kills: the input changed"
# NEW appears while the run is copying (the run stops itself there, the
# file is made, the run goes on): NEW is not replaced, the run fails.
GPUPV_PREP_FAULT=derive-copied GPUPV_PREP_FAULT_SIGNAL=STOP \
  "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/late.vhdx" \
  >/dev/null 2>"$TMP/late.err" &
pid=$!
wait_stopped $pid
echo "made meanwhile" >"$TMP/late.vhdx"
resume $pid
[ "$rc" -ne 0 ] || fail "NEW made during the run: exit 0"
expect_eq "$(cat "$TMP/late.vhdx")" "made meanwhile" "NEW made during the run was replaced"
grep -q "late.vhdx" "$TMP/late.err" || fail "NEW made during the run: not named: $(cat "$TMP/late.err")"
ls -a "$TMP" | grep -q "late.vhdx.gpupv-tmp" && fail "NEW made during the run: a temporary was left"
# A dry run writes no file at all.
run 0 "$GPUPV_PREP" stage --dry-run "$TMP/base.vhdx" "$PKG" --output "$TMP/d.vhdx"
[ ! -e "$TMP/d.vhdx" ] || fail "--dry-run wrote NEW"
pass "--output refusals, kills and dry runs leave no NEW"

# --child: a differencing VHDX over the input.
run 0 "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --child "$TMP/child.avhdx" --json
expect_eq "$(sha "$TMP/base.vhdx")" "$base" "--child: the parent changed"
vhdiinfo "$TMP/child.avhdx" >"$TMP/vi" || fail "vhdiinfo cannot read the child"
grep -q "Disk type.*Differential" "$TMP/vi" || fail "not differencing: $(cat "$TMP/vi")"
"$IMGTOOL" vhdi-dump "$TMP/child.avhdx" "$TMP/child-vhdi.raw" "$TMP/base.vhdx" ||
  fail "libvhdi cannot read the child through its parent"
"$IMGTOOL" dump "$TMP/child.avhdx" "$TMP/child-ours.raw" ||
  fail "our reader cannot read the child"
cmp -s "$TMP/child-vhdi.raw" "$TMP/child-ours.raw" || fail "libvhdi and our reader disagree"
check_staged "$TMP/child-vhdi.raw" raw "$PKG"
outside_same "$TMP/child-vhdi.raw"
run 0 "$GPUPV_PREP" inspect --json "$TMP/child.avhdx"
expect_eq "$(jqv .image.subformat)" differencing "--child: inspect"
expect_eq "$(jqv '.image.chain | length')" 1 "--child: chain"
run 0 "$GPUPV_PREP" verify "$TMP/child.avhdx"
# The child takes more staging (into itself, in place).
run 0 "$GPUPV_PREP" stage "$TMP/child.avhdx" --disable-fast-startup
"$IMGTOOL" vhdi-dump "$TMP/child.avhdx" "$TMP/child2.raw" "$TMP/base.vhdx" ||
  fail "libvhdi cannot read the child after a second run"
expect_eq "$(sha "$TMP/base.vhdx")" "$base" "second run: the parent changed"
# A child of a child (a checkpoint chain).
run 0 "$GPUPV_PREP" stage "$TMP/child.avhdx" "$PKG" --child "$TMP/grand.avhdx" --disable-fast-startup
run 0 "$GPUPV_PREP" inspect --json "$TMP/grand.avhdx"
expect_eq "$(jqv '.image.chain | length')" 2 "grandchild chain"
# --parent-path: where the parent will be on the Hyper-V host, recorded
# as the absolute path besides the relative one (read back by libvhdi).
run 0 "$GPUPV_PREP" stage "$TMP/base.vhdx" --child "$TMP/pp.avhdx" \
  --parent-path 'D:\Hyper-V\Golden images\base.vhdx' --disable-fast-startup
vhdiinfo "$TMP/pp.avhdx" >"$TMP/vi" 2>&1 || fail "vhdiinfo: $(cat "$TMP/vi")"
cp "$TMP/vi" "$TMP/vi.pp"
"$IMGTOOL" vhdi-dump "$TMP/pp.avhdx" "$TMP/pp.raw" "$TMP/base.vhdx" ||
  fail "libvhdi cannot read the --parent-path child through its parent"
grep -q -F 'Parent filename		: D:\Hyper-V\Golden images\base.vhdx' "$TMP/vi.pp" ||
  fail "libvhdi does not read --parent-path back: $(cat "$TMP/vi.pp")"
# Without it, no host path passes for a Windows one.
vhdiinfo "$TMP/child.avhdx" >"$TMP/vi" 2>&1
grep 'Parent filename' "$TMP/vi" | grep -q 'tmp' &&
  fail "a host path recorded as the child's Windows path: $(cat "$TMP/vi")"
run 2 "$GPUPV_PREP" stage "$TMP/base.vhdx" --child "$TMP/x.avhdx" --parent-path /tmp/base.vhdx
run 2 "$GPUPV_PREP" stage "$TMP/base.vhdx" --parent-path 'D:\base.vhdx' --disable-fast-startup
[ -e "$TMP/x.avhdx" ] && fail "a refused --parent-path made a child"
rm -f "$TMP/pp.avhdx"
# Staging into a parent that a child beside it reads through: warned,
# in --json too (the dry run says it before anything is written).
run 0 "$GPUPV_PREP" stage "$TMP/base.vhdx" --disable-fast-startup --dry-run --json
jqv '.warnings[]' | grep -q "is the parent of .*child.avhdx" ||
  fail "no warning about the child: $(cat "$TMP/out")"
# The parent changed after the child was made: named, exit 9.
cp "$TMP/base.vhdx" "$TMP/base.keep"
"$GPUPV_PREP" stage "$TMP/base.vhdx" --disable-fast-startup >"$TMP/out" 2>"$TMP/err"
grep -q "is the parent of .*child.avhdx" "$TMP/err" || fail "no warning on stderr: $(cat "$TMP/err")"
run 9 "$GPUPV_PREP" inspect "$TMP/child.avhdx"
grep -q "does not match" "$TMP/err" || fail "mismatched parent: $(cat "$TMP/err")"
rm "$TMP/base.vhdx"
run 9 "$GPUPV_PREP" inspect "$TMP/child.avhdx"
grep -q "base.vhdx" "$TMP/err" || fail "missing parent not named: $(cat "$TMP/err")"
# ... and the child's own facts are still reported.
grep -q "^format: *vhdx differencing" "$TMP/out" || fail "missing parent: no facts: $(cat "$TMP/out")"
grep -q "^parent: *missing (the file names .*base.vhdx)" "$TMP/out" ||
  fail "missing parent: not said: $(cat "$TMP/out")"
run 9 "$GPUPV_PREP" inspect "$TMP/child.avhdx" --json
expect_eq "$(jqv .image.subformat)" differencing "missing parent: --json image"
expect_eq "$(jqv .error.exit_code)" 9 "missing parent: --json error"
pass "--child: read through its parent by libvhdi and by us, staged files exact, parent untouched"
