#!/bin/sh
# Linux guests: ext2/3/4 roots made with mke2fs -d, inside GPT and MBR,
# raw, VHDX and VHD.  After stage, e2fsck -fn is clean and debugfs shows
# every file byte-exact with its mode, owner and time, the links, the
# loader configuration and the first-boot unit; an identical re-run leaves
# the image byte-identical; remove takes everything back; the refusals
# (journal needing recovery, unclean, unknown features, btrfs, xfs, LVM,
# a full file system) name the reason and leave the image byte-identical.
. "$(dirname "$0")/functions.sh"
requires mke2fs e2fsck debugfs tune2fs sfdisk qemu-img jq cmp sgdisk mkntfs hivexregedit

KVER=6.1.0-28-amd64
PKG="$TMP/src/nv_dispig.inf_amd64_0123456789abcdef"
WSL="$TMP/src/wsl-lib"

# The NVIDIA-shaped package: its INF copies the Linux user-mode files
# into 11,lxss\lib (one source under several names, as NVIDIA's does).
mkdir -p "$PKG/sub" "$WSL"
printf '%s\r\n' '[Version]' 'Signature = "$Windows NT$"' 'Class = Display' \
  'DriverVer = 11/16/2023, 31.0.15.4601' '' '[DestinationDirs]' \
  'DefaultDestDir = 11' 'nv_libcuda_copyfiles = 11,lxss\lib' '' \
  '[nv_libcuda_copyfiles]' 'libcuda.so,libcuda_loader.so,,0x00004000' \
  'libcuda.so.1,libcuda_loader.so,,0x00004000' \
  'libcuda.so.1.1,libcuda_loader.so,,0x00004000' \
  'libnvidia-ml.so.1,libnvidia-ml_loader.so,,0x00004000' \
  'libnvwgf2umx.so,,0x00004000' 'nvidia-smi,,,' >"$PKG/nv_dispig.inf"
head -c 300000 /dev/urandom >"$PKG/libcuda_loader.so"
head -c 5000 /dev/urandom >"$PKG/libnvidia-ml_loader.so"
head -c 700000 /dev/urandom >"$PKG/libnvwgf2umx.so"
head -c 9000 /dev/urandom >"$PKG/nvidia-smi"
for i in $(seq 30); do echo "file $i" >"$PKG/sub/f$i.txt"; done
touch -d '2023-11-16 10:00:00.123456789' "$PKG"/* "$PKG"/sub/*
head -c 40000 /dev/urandom >"$WSL/libdxcore.so"
head -c 30000 /dev/urandom >"$WSL/libd3d12.so"
head -c 90000 /dev/urandom >"$WSL/libd3d12core.so"

# A Debian-like root: os-release through a link, merged /usr, a kernel.
ROOT="$TMP/root"
mkdir -p "$ROOT/etc/ld.so.conf.d" "$ROOT/etc/systemd/system" \
  "$ROOT/usr/lib/modules/$KVER" "$ROOT/var/lib"
printf '%s\n' 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' \
  'NAME="Debian GNU/Linux"' 'VERSION_ID="12"' 'ID=debian' \
  >"$ROOT/usr/lib/os-release"
ln -s ../usr/lib/os-release "$ROOT/etc/os-release"
ln -s usr/lib "$ROOT/lib"
echo /usr/local/lib >"$ROOT/etc/ld.so.conf.d/libc.conf"

# mkpart FILE MB MKE2FS-OPTIONS...: an ext file system of ROOT.
mkpart() {
  f=$1 mb=$2; shift 2
  truncate -s "${mb}M" "$f"
  mke2fs -q -F "$@" -d "$ROOT" "$f" >/dev/null || fail "mke2fs $*"
}

# mkdisk OUT SCHEME PART: the partition at 1 MiB in a GPT or MBR disk.
mkdisk() {
  out=$1 scheme=$2 part=$3
  psize=$(($(stat -c %s "$part") / 512))
  truncate -s $(((psize + 4096) * 512)) "$out"
  if [ "$scheme" = gpt ]; then
    printf 'label: gpt\nstart=2048, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
      "$psize" | sfdisk -q "$out" >/dev/null 2>&1
  else
    printf 'label: dos\nstart=2048, size=%s, type=83\n' "$psize" |
      sfdisk -q "$out" >/dev/null 2>&1
  fi
  dd if="$part" of="$out" bs=1M seek=1 conv=notrunc status=none
}

# part_of IMAGE: the partition as a raw file, for e2fsck and debugfs.
part_of() {
  case $1 in
  *.vhdx) qemu-img convert -f vhdx -O raw "$1" "$TMP/conv.raw" ;;
  *.vhd) qemu-img convert -f vpc -O raw "$1" "$TMP/conv.raw" ;;
  *) cp "$1" "$TMP/conv.raw" ;;
  esac
  dd if="$TMP/conv.raw" of="$TMP/p.ext" bs=1M skip=1 status=none
}

fsck_clean() {
  e2fsck -fn "$TMP/p.ext" >"$TMP/fsck" 2>&1 || {
    cat "$TMP/fsck" >&2; fail "$1: e2fsck -fn is not clean"; }
}

dbg() { debugfs -R "$1" "$TMP/p.ext" 2>/dev/null; }

# check_file GUESTPATH HOSTFILE MODE: contents, mode, owner, mtime.
check_file() {
  dbg "dump $1 $TMP/dumped" && cmp -s "$TMP/dumped" "$2" ||
    fail "$1 differs from $2"
  dbg "stat $1" >"$TMP/stat"
  grep -q "Mode:  0*$3 " "$TMP/stat" || fail "$1: mode is not $3: $(grep Mode: "$TMP/stat")"
  grep -q 'User: *0 *Group: *0 ' "$TMP/stat" || fail "$1: not owned by root"
  want=$(printf '0x%08x' "$(stat -c %Y "$2")")
  grep -Eq "mtime: $want(:| )" "$TMP/stat" || fail "$1: mtime is not $want: $(grep mtime "$TMP/stat")"
}

check_link() {  # GUESTPATH TARGET
  dbg "stat $1" | grep -q "Fast link dest: \"$2\"" ||
    fail "$1 is not a link to $2: $(dbg "stat $1" | head -3)"
}

check_staged() {  # IMAGE WHAT
  part_of "$1"
  fsck_clean "$2"
  d=/usr/lib/wsl/drivers/$(basename "$PKG")
  check_file "$d/libcuda_loader.so" "$PKG/libcuda_loader.so" 444
  check_file "$d/sub/f7.txt" "$PKG/sub/f7.txt" 444
  dbg "stat $d/sub" | grep -q 'Mode:  0555 ' || fail "$2: folder mode"
  check_file /usr/lib/wsl/lib/libcuda.so.1.1 "$PKG/libcuda_loader.so" 555
  check_link /usr/lib/wsl/lib/libcuda.so.1 libcuda.so.1.1
  check_link /usr/lib/wsl/lib/libcuda.so libcuda.so.1
  check_file /usr/lib/wsl/lib/libnvidia-ml.so.1 "$PKG/libnvidia-ml_loader.so" 555
  check_file /usr/lib/wsl/lib/nvidia-smi "$PKG/nvidia-smi" 555
  check_file /usr/lib/wsl/lib/libdxcore.so "$WSL/libdxcore.so" 555
  check_link /usr/lib/wsl/lib/libD3D12Core.so libd3d12core.so
  [ "$(dbg 'cat /etc/ld.so.conf.d/ld.wsl.conf' | grep -v '^#')" = /usr/lib/wsl/lib ] ||
    fail "$2: ld.wsl.conf"
  dbg 'cat /etc/systemd/system/gpupv-prep-firstboot.service' |
    grep -q '^ExecStart=/usr/lib/wsl/gpupv-prep-firstboot$' || fail "$2: unit"
  dbg 'stat /usr/lib/wsl/gpupv-prep-firstboot' | grep -q 'Mode:  0755 ' ||
    fail "$2: first-boot script mode"
  check_link /etc/systemd/system/multi-user.target.wants/gpupv-prep-firstboot.service \
    /etc/systemd/system/gpupv-prep-firstboot.service
  dbg 'cat /usr/lib/wsl/gpupv-prep.json' | jq -e '.packages[0].name' >/dev/null ||
    fail "$2: manifest"
}

check_removed() {  # IMAGE WHAT
  part_of "$1"
  fsck_clean "$2"
  for f in /usr/lib/wsl/drivers/$(basename "$PKG") /usr/lib/wsl/lib/libcuda.so \
    /usr/lib/wsl/lib/libcuda.so.1.1 /usr/lib/wsl/lib/libdxcore.so \
    /etc/ld.so.conf.d/ld.wsl.conf /etc/systemd/system/gpupv-prep-firstboot.service \
    /etc/systemd/system/multi-user.target.wants/gpupv-prep-firstboot.service \
    /usr/lib/wsl/gpupv-prep.json; do
    dbg "stat $f" | grep -q Inode: && fail "$2: $f is still there"
  done
  dbg 'cat /etc/ld.so.conf.d/libc.conf' | grep -q /usr/local/lib ||
    fail "$2: the guest's own loader file went"
}

# One full round: stage, re-run, verify, remove.
round() {  # IMAGE WHAT
  run 0 "$GPUPV_PREP" inspect --json "$1"
  expect_eq "$(jqv .linux.version_id)" 12 "$2: os-release VERSION_ID"
  expect_eq "$(jqv .linux.kernels[0])" "$KVER" "$2: kernel"
  run 0 "$GPUPV_PREP" stage "$1" "$PKG" "$WSL"
  check_staged "$1" "$2"
  h=$(sha "$1")
  run 0 "$GPUPV_PREP" stage "$1" "$PKG" "$WSL"
  grep -q 'nothing to do' "$TMP/out" || fail "$2: the re-run changed something"
  expect_eq "$(sha "$1")" "$h" "$2: image after an identical re-run"
  run 0 "$GPUPV_PREP" verify --json "$1"
  expect_eq "$(jqv .verified)" true "$2: verify"
  run 0 "$GPUPV_PREP" remove "$1"
  check_removed "$1" "$2"
  pass "$2: staged, re-run byte-identical, verified, removed"
}

mkpart "$TMP/p4k.ext" 64 -t ext4 -b 4096
mkdisk "$TMP/gpt.raw" gpt "$TMP/p4k.ext"
round "$TMP/gpt.raw" "ext4 4 KiB blocks, GPT, raw"
# Nanoseconds too, where the inode has room for them (ext4's 256 bytes):
# .123456789 s is 0x1d6f3454 once shifted past the two epoch bits.
run 0 "$GPUPV_PREP" stage "$TMP/gpt.raw" "$PKG"
part_of "$TMP/gpt.raw"
dbg "stat /usr/lib/wsl/drivers/$(basename "$PKG")/nvidia-smi" |
  grep -q 'mtime: 0x6555e820:1d6f3454' || fail "nanoseconds of mtime"
run 0 "$GPUPV_PREP" remove "$TMP/gpt.raw"
pass "times kept to the nanosecond"

mkpart "$TMP/p1k.ext" 64 -t ext4 -b 1024 -O ^has_journal
mkdisk "$TMP/mbr.raw" mbr "$TMP/p1k.ext"
round "$TMP/mbr.raw" "ext4 1 KiB blocks without a journal, MBR, raw"

mkpart "$TMP/p64.ext" 64 -t ext4 -O 64bit,metadata_csum
mkdisk "$TMP/d64.raw" gpt "$TMP/p64.ext"
qemu-img convert -f raw -O vhdx "$TMP/d64.raw" "$TMP/d64.vhdx"
round "$TMP/d64.vhdx" "ext4 64-bit, GPT, VHDX"

mkpart "$TMP/p3.ext" 64 -t ext3
mkdisk "$TMP/d3.raw" mbr "$TMP/p3.ext"
qemu-img convert -f raw -O vpc -o subformat=dynamic "$TMP/d3.raw" "$TMP/d3.vhd"
round "$TMP/d3.vhd" "ext3, MBR, VHD"

mkpart "$TMP/p2.ext" 64 -t ext2 -I 128
mkdisk "$TMP/d2.raw" gpt "$TMP/p2.ext"
round "$TMP/d2.raw" "ext2 with 128-byte inodes, GPT, raw"

# A folder indexed by an htree (e2fsck -D builds it) gets ld.wsl.conf.
for i in $(seq 3000); do echo "/opt/l$i" >"$ROOT/etc/ld.so.conf.d/x$i.conf"; done
mkpart "$TMP/ph.ext" 64 -t ext4 -N 8192
rm -f "$ROOT"/etc/ld.so.conf.d/x*.conf
e2fsck -fyD "$TMP/ph.ext" >/dev/null 2>&1 || true
debugfs -R 'htree /etc/ld.so.conf.d' "$TMP/ph.ext" 2>/dev/null | grep -q 'Root node' ||
  fail "the fixture's /etc/ld.so.conf.d has no htree"
mkdisk "$TMP/h.raw" gpt "$TMP/ph.ext"
run 0 "$GPUPV_PREP" stage "$TMP/h.raw" "$PKG" "$WSL"
part_of "$TMP/h.raw"
fsck_clean "htree"
[ "$(dbg 'cat /etc/ld.so.conf.d/ld.wsl.conf' | grep -v '^#')" = /usr/lib/wsl/lib ] ||
  fail "htree: ld.wsl.conf"
pass "a file added to a folder indexed by an htree: e2fsck -fn clean"

# A dry run writes nothing and reads the result back.
cp "$TMP/p4k.ext" "$TMP/dry.ext"
mkdisk "$TMP/dry.raw" gpt "$TMP/dry.ext"
h=$(sha "$TMP/dry.raw")
run 0 "$GPUPV_PREP" stage --dry-run --json "$TMP/dry.raw" "$PKG" "$WSL"
expect_eq "$(jqv .guest)" linux "dry run: guest"
expect_eq "$(jqv .verified)" true "dry run: read back"
expect_eq "$(sha "$TMP/dry.raw")" "$h" "dry run: image"
pass "a dry run reads the result back and leaves the image byte-identical"

# verify finds a library the guest deleted.
run 0 "$GPUPV_PREP" stage "$TMP/dry.raw" "$PKG" "$WSL"
part_of "$TMP/dry.raw"
debugfs -w -R 'rm /usr/lib/wsl/lib/nvidia-smi' "$TMP/p.ext" >/dev/null 2>&1
dd if="$TMP/p.ext" of="$TMP/dry.raw" bs=1M seek=1 conv=notrunc status=none
run 1 "$GPUPV_PREP" verify "$TMP/dry.raw"
grep -q 'nvidia-smi.*missing' "$TMP/out" || fail "verify: $(cat "$TMP/out")"
pass "verify names a library removed in the guest"

# An update: the package's newer version replaces the older one, and the
# library links follow it.
NEW="$TMP/src2/nv_dispig.inf_amd64_fedcba9876543210"
mkdir -p "$TMP/src2"
cp -a "$PKG" "$NEW"
sed -i 's#11/16/2023, 31.0.15.4601#12/01/2023, 31.0.15.5000#' "$NEW/nv_dispig.inf"
head -c 310000 /dev/urandom >"$NEW/libcuda_loader.so"
cp "$TMP/p4k.ext" "$TMP/up.ext"
mkdisk "$TMP/up.raw" gpt "$TMP/up.ext"
run 0 "$GPUPV_PREP" stage "$TMP/up.raw" "$PKG" "$WSL"
run 0 "$GPUPV_PREP" stage --json "$TMP/up.raw" "$NEW"
expect_eq "$(jqv '[.packages[].action] | sort | join(",")')" "remove,stage" "update: actions"
part_of "$TMP/up.raw"
fsck_clean update
check_file /usr/lib/wsl/lib/libcuda.so.1.1 "$NEW/libcuda_loader.so" 555
check_file /usr/lib/wsl/lib/libdxcore.so "$WSL/libdxcore.so" 555
dbg "stat /usr/lib/wsl/drivers/$(basename "$PKG")" | grep -q Inode: &&
  fail "update: the older package is still there"
pass "an update replaces the older package and its libraries, keeps the WSL libraries"

# Refusals, each naming the reason, the image byte-identical.
refuse() {  # RC PATTERN WHAT PART
  mkdisk "$TMP/r.raw" gpt "$4"
  h=$(sha "$TMP/r.raw")
  run "$1" "$GPUPV_PREP" stage "$TMP/r.raw" "$PKG"
  grep -q "$2" "$TMP/err" || fail "$3: message: $(cat "$TMP/err")"
  expect_eq "$(sha "$TMP/r.raw")" "$h" "$3: image after the refusal"
  [ ! -e "$TMP/r.raw.gpupv-journal" ] || fail "$3: a journal was left"
  pass "$3 refused (exit $1), image byte-identical"
}
# refuse_debugfs RC PATTERN WHAT BASE REQUEST: BASE changed by debugfs -w.
refuse_debugfs() {
  cp "$4" "$TMP/x.ext"
  debugfs -w -R "$5" "$TMP/x.ext" >/dev/null 2>&1
  refuse "$1" "$2" "$3" "$TMP/x.ext"
}
refuse_debugfs 6 'partition at offset 1048576: the ext4 journal needs recovery' "a journal needing recovery" "$TMP/p4k.ext" 'feature needs_recovery'
refuse_debugfs 6 'was not cleanly unmounted' "a file system not cleanly unmounted" "$TMP/p4k.ext" 'ssv state 0'
refuse_debugfs 3 'uses a feature libext2fs .* does not know' "an unknown incompatible feature" "$TMP/p4k.ext" 'feature FEATURE_I30'
refuse_debugfs 3 'uses a feature libext2fs .* does not know' "an unknown read-only-compatible feature" "$TMP/p4k.ext" 'feature FEATURE_R30'
refuse_debugfs 6 'has errors recorded' "a file system with errors recorded" "$TMP/p4k.ext" 'ssv state 3'
refuse_debugfs 3 'keeps its journal on another device' "a journal elsewhere" "$TMP/p4k.ext" 'ssv journal_inum 0'
cp "$TMP/p4k.ext" "$TMP/x.ext"
tune2fs -O mmp "$TMP/x.ext" >/dev/null 2>&1
refuse 3 'multi-mount protection' "multi-mount protection" "$TMP/x.ext"
refuse_debugfs 3 'group layout is impossible (first data block 255' "an impossible group layout" "$TMP/p1k.ext" 'ssv first_data_block 255'
# A loader file the guest already has is not taken over.
rm -rf "$TMP/ownroot"; cp -a "$ROOT" "$TMP/ownroot"
echo /usr/lib/wsl/lib >"$TMP/ownroot/etc/ld.so.conf.d/ld.wsl.conf"
truncate -s 64M "$TMP/x.ext"
mke2fs -q -F -t ext4 -d "$TMP/ownroot" "$TMP/x.ext" >/dev/null
refuse 1 '/etc/ld.so.conf.d/ld.wsl.conf exists and was not placed by gpupv-prep' \
  "a loader file gpupv-prep did not write" "$TMP/x.ext"
truncate -s 64M "$TMP/x.ext"
dd if=/dev/zero of="$TMP/x.ext" bs=1M count=1 conv=notrunc status=none
printf '_BHRfS_M' | dd of="$TMP/x.ext" bs=1 seek=$((65536 + 64)) conv=notrunc status=none
refuse 3 'partition 1 is btrfs; gpupv-prep writes NTFS and ext2/3/4 only (libguestfs' btrfs "$TMP/x.ext"
dd if=/dev/zero of="$TMP/x.ext" bs=1M count=1 conv=notrunc status=none
printf 'XFSB' | dd of="$TMP/x.ext" conv=notrunc status=none
refuse 3 'partition 1 is xfs' xfs "$TMP/x.ext"
dd if=/dev/zero of="$TMP/x.ext" bs=1M count=1 conv=notrunc status=none
printf 'LABELONE' | dd of="$TMP/x.ext" bs=1 seek=512 conv=notrunc status=none
printf 'LVM2 001' | dd of="$TMP/x.ext" bs=1 seek=536 conv=notrunc status=none
refuse 3 'partition 1 is an LVM physical volume' LVM "$TMP/x.ext"
# Nearly full: 8 MiB with 7 MiB taken.
rm -rf "$TMP/fullroot"; cp -a "$ROOT" "$TMP/fullroot"
head -c 6500000 /dev/urandom >"$TMP/fullroot/var/lib/big"
truncate -s 8M "$TMP/x.ext"
mke2fs -q -F -t ext4 -d "$TMP/fullroot" "$TMP/x.ext" >/dev/null
refuse 1 'the change needs about .* on the ext4 volume' "a nearly full file system" "$TMP/x.ext"

# Registry options are for Windows.
run 2 "$GPUPV_PREP" stage --driver-store-copy-mode 1 "$TMP/gpt.raw" "$PKG"
grep -q 'holds Linux (Debian GNU/Linux 12 (bookworm)); --reg' "$TMP/err" ||
  fail "registry option: $(cat "$TMP/err")"
pass "registry options on a Linux guest are a usage error"

# inspect reports what the first-boot unit left.
run 0 "$GPUPV_PREP" stage "$TMP/gpt.raw" "$PKG" "$WSL"
part_of "$TMP/gpt.raw"
printf 'ok 2026-11-30T10:00:00Z: ldconfig ran\n' >"$TMP/status"
debugfs -w -R 'mkdir /var/lib/gpupv-prep' "$TMP/p.ext" >/dev/null 2>&1
debugfs -w -R "write $TMP/status /var/lib/gpupv-prep/firstboot.status" "$TMP/p.ext" >/dev/null 2>&1
dd if="$TMP/p.ext" of="$TMP/gpt.raw" bs=1M seek=1 conv=notrunc status=none
run 0 "$GPUPV_PREP" inspect --json "$TMP/gpt.raw"
expect_eq "$(jqv .linux.first_boot)" "ok 2026-11-30T10:00:00Z: ldconfig ran" "first-boot status"
expect_eq "$(jqv '.host_driver_store[0].package')" "$(basename "$PKG")" "inspect: package"
run 0 "$GPUPV_PREP" inspect "$TMP/gpt.raw"
grep -q '^linux: *partition 1, ext4, Debian GNU/Linux 12, volume clean' "$TMP/out" ||
  fail "inspect: $(cat "$TMP/out")"
pass "inspect reports the distribution, kernels, packages and first-boot status"

# kill -9 at random moments of a stage of a ~160 MB package into a VHDX:
# after qemu replays the log as Hyper-V would, e2fsck -fn is clean and
# the guest holds the old state or the new one, whole.
BIG="$TMP/src3/big.inf_amd64_00112233445566ff"
mkdir -p "$BIG"
printf '[Version]\r\nDriverVer = 01/02/2024,1.2.3.4\r\n' >"$BIG/big.inf"
for i in 1 2 3 4; do head -c 40000000 /dev/urandom >"$BIG/part$i.bin"; done
mkpart "$TMP/pk.ext" 256 -t ext4
mkdisk "$TMP/k.raw" gpt "$TMP/pk.ext"
qemu-img convert -f raw -O vhdx -o block_size=8M "$TMP/k.raw" "$TMP/k0.vhdx"
cp "$TMP/k0.vhdx" "$TMP/kt.vhdx"
t0=$(date +%s%N); "$GPUPV_PREP" stage "$TMP/kt.vhdx" "$BIG" >/dev/null; t1=$(date +%s%N)
dur=$(((t1 - t0) / 1000000))
old=0 new=0
for t in $(seq "${CRASH_TRIALS:-12}"); do
  cp "$TMP/k0.vhdx" "$TMP/k.vhdx"
  delay=$(( $(od -An -N4 -tu4 /dev/urandom) % (dur + dur / 5 + 1) ))
  "$GPUPV_PREP" stage "$TMP/k.vhdx" "$BIG" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cp "$TMP/k.vhdx" "$TMP/q.vhdx"
  qemu-img check -q -r all "$TMP/q.vhdx" >/dev/null 2>&1 || true
  part_of "$TMP/q.vhdx"
  fsck_clean "kill $t at $delay ms"
  if dbg 'stat /usr/lib/wsl/gpupv-prep.json' | grep -q Inode:; then
    run 0 "$GPUPV_PREP" verify "$TMP/k.vhdx"
    new=$((new + 1))
  else
    dbg "stat /usr/lib/wsl/drivers/$(basename "$BIG")" | grep -q Inode: &&
      fail "kill $t: a package folder without a manifest"
    old=$((old + 1))
  fi
  run 0 "$GPUPV_PREP" stage "$TMP/k.vhdx" "$BIG"
  run 0 "$GPUPV_PREP" verify "$TMP/k.vhdx"
done
pass "$((old + new)) kills over a $dur ms stage: $old old, $new new, e2fsck clean each time"

# --dkms: the module's source in /usr/src/NAME-VERSION, built by the
# first-boot script; the Hyper-V script turns Secure Boot off.
DK="$TMP/src/dxgkrnl-dkms"
mkdir -p "$DK/dxgkrnl" "$DK/include/uapi"
printf '%s\n' 'PACKAGE_NAME="dxgkrnl"' 'PACKAGE_VERSION="2.0.3"' \
  'BUILT_MODULE_NAME[0]="dxgkrnl"' 'AUTOINSTALL="yes"' >"$DK/dkms.conf"
echo 'obj-m := dxgkrnl/' >"$DK/Makefile"
echo '/* module */' >"$DK/dxgkrnl/dxgmodule.c"
echo '/* uapi */' >"$DK/include/uapi/d3dkmthk.h"
cp "$TMP/p4k.ext" "$TMP/dk.ext"
mkdisk "$TMP/dk.raw" gpt "$TMP/dk.ext"
run 0 "$GPUPV_PREP" stage --dkms "$DK" --script "$TMP/dk.ps1" "$TMP/dk.raw" "$PKG" "$WSL"
part_of "$TMP/dk.raw"
fsck_clean dkms
check_file /usr/src/dxgkrnl-2.0.3/include/uapi/d3dkmthk.h "$DK/include/uapi/d3dkmthk.h" 644
check_file /usr/src/dxgkrnl-2.0.3/dkms.conf "$DK/dkms.conf" 644
dbg 'cat /usr/lib/wsl/gpupv-prep-firstboot' >"$TMP/fb.sh"
grep -q 'dkms install -m dxgkrnl -v 2.0.3 -k "$(uname -r)"' "$TMP/fb.sh" ||
  fail "dkms: the first-boot script does not build the module"
sh -n "$TMP/fb.sh" || fail "dkms: the first-boot script is not valid sh"
grep -q 'Set-VMFirmware -VM $vm -EnableSecureBoot Off' "$TMP/dk.ps1" ||
  fail "dkms: the Hyper-V script keeps Secure Boot"
if command -v node >/dev/null 2>&1 && [ -d "$top_srcdir/tests/node_modules/web-tree-sitter" ]; then
  node "$top_srcdir/tests/ps-parse.mjs" "$TMP/dk.ps1" || fail "dkms: script parse"
fi
h=$(sha "$TMP/dk.raw")
run 0 "$GPUPV_PREP" stage "$TMP/dk.raw" "$PKG" "$WSL"
expect_eq "$(sha "$TMP/dk.raw")" "$h" "dkms: a run without --dkms keeps the module and its script"
run 0 "$GPUPV_PREP" remove "$TMP/dk.raw"
part_of "$TMP/dk.raw"
fsck_clean "dkms removed"
dbg 'stat /usr/src/dxgkrnl-2.0.3' | grep -q Inode: && fail "dkms: /usr/src/dxgkrnl-2.0.3 is left"
pass "--dkms places the source, the first boot builds it, remove takes it away"

run 10 "$GPUPV_PREP" stage --dkms "$TMP/src" "$TMP/dk.raw" "$PKG"
grep -q 'no dkms.conf' "$TMP/err" || fail "--dkms without dkms.conf: $(cat "$TMP/err")"
mkgpt_windows "$TMP/win.raw"
run 2 "$GPUPV_PREP" stage --dkms "$DK" "$TMP/win.raw" "$PKG"
grep -q 'holds Windows' "$TMP/err" || fail "--dkms on Windows: $(cat "$TMP/err")"
pass "--dkms on a Windows guest is a usage error"

# The manifest comes from the guest: records naming files gpupv-prep
# cannot have written (outside /usr/lib/wsl/lib and its own files, paths
# that climb, links that leave the folder) are refused with nothing done.
cp "$TMP/p4k.ext" "$TMP/lie.ext"
mkdisk "$TMP/lie0.raw" gpt "$TMP/lie.ext"
run 0 "$GPUPV_PREP" stage "$TMP/lie0.raw" "$PKG" "$WSL"
part_of "$TMP/lie0.raw"
dbg 'cat /usr/lib/wsl/gpupv-prep.json' >"$TMP/good.json"
cp "$TMP/p.ext" "$TMP/lie-good.ext"
linux_lie() {  # JQ-FILTER PATTERN
  cp "$TMP/lie-good.ext" "$TMP/p.ext"
  jq -c "$1" "$TMP/good.json" >"$TMP/lie.json"
  debugfs -w -R 'rm /usr/lib/wsl/gpupv-prep.json' "$TMP/p.ext" >/dev/null 2>&1
  debugfs -w -R "write $TMP/lie.json /usr/lib/wsl/gpupv-prep.json" "$TMP/p.ext" >/dev/null 2>&1
  mkdisk "$TMP/lie.raw" gpt "$TMP/p.ext"
  h=$(sha "$TMP/lie.raw")
  run 3 "$GPUPV_PREP" remove "$TMP/lie.raw"
  grep -q -- "$2" "$TMP/err" || fail "manifest lie $1: $(cat "$TMP/err")"
  expect_eq "$(sha "$TMP/lie.raw")" "$h" "manifest lie $1: image"
}
linux_lie '.system_files[0].dest = "/etc/shadow"' 'names /etc/shadow'
linux_lie '.system_files[0].dest = "/usr/lib/wsl/lib/../../../../etc/shadow"' 'names /usr/lib/wsl/lib/../'
linux_lie '.system_files[0].dest = "/usr/src/x/../../etc/shadow"' 'names /usr/src/x/../'
linux_lie '.system_files[0].link = "../../../etc/shadow"' 'no System32, SysWOW64 or /usr/lib/wsl file'
linux_lie '.system_files[0].backup = "/etc/shadow"' 'no System32, SysWOW64 or /usr/lib/wsl file'
linux_lie '.packages[0].files[0].path = "../../../../etc/shadow"' "lists '../../../../etc/shadow'"
pass "a Linux guest's manifest that names other files is refused, byte-identical"

# Damaged metadata never crashes, hangs or writes: random bytes over the
# superblock, group descriptors, bitmaps and inode tables of a copy; each
# run ends with a documented exit status and the image byte-identical.
i=0
while [ "$i" -lt "${LINUX_DAMAGE_TRIALS:-40}" ]; do
  i=$((i + 1))
  cp "$TMP/p1k.ext" "$TMP/dmg.ext"
  n=$(( $(od -An -N2 -tu2 /dev/urandom) % 16 + 1 ))
  while [ "$n" -gt 0 ]; do
    off=$(( 1024 + $(od -An -N4 -tu4 /dev/urandom) % (300 * 1024) ))
    head -c $(( $(od -An -N1 -tu1 /dev/urandom) % 64 + 1 )) /dev/urandom |
      dd of="$TMP/dmg.ext" bs=1 seek="$off" conv=notrunc status=none
    n=$((n - 1))
  done
  mkdisk "$TMP/dmg.raw" mbr "$TMP/dmg.ext"
  h=$(sha "$TMP/dmg.raw")
  for cmd in inspect dry-run stage; do
    case $cmd in
    inspect) args="inspect $TMP/dmg.raw" ;;
    dry-run) args="stage --dry-run $TMP/dmg.raw $PKG" ;;
    *) args="stage $TMP/dmg.raw $PKG" ;;
    esac
    set +e
    # shellcheck disable=SC2086
    timeout 60 "$GPUPV_PREP" $args >/dev/null 2>"$TMP/err"
    rc=$?
    set -e
    case $rc in
    0|1|3|4|6) ;;
    *) cat "$TMP/err" >&2; fail "damage $i: '$cmd' exited $rc" ;;
    esac
    if [ "$cmd" != stage ] || [ "$rc" -ne 0 ]; then
      [ "$(sha "$TMP/dmg.raw")" = "$h" ] || {
        cat "$TMP/err" >&2
        cp "$TMP/dmg.ext" "${LINUX_DAMAGE_KEEP:-$TMP}/damaged.ext" 2>/dev/null || true
        fail "damage $i: '$cmd' exited $rc and changed the image"
      }
    fi
  done
  if [ "$rc" -eq 0 ]; then
    part_of "$TMP/dmg.raw"
    # What was staged reads back; e2fsck judges only what we wrote.
    run 0 "$GPUPV_PREP" verify "$TMP/dmg.raw"
  fi
done
pass "$i damaged file systems: no crash, no hang, refusals byte-identical"
