#!/bin/sh
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each for
# FUZZ_TIME seconds (default 60) on a corpus seeded from test data made
# here.  Usage: tests/fuzz/run.sh BUILDDIR [HARNESS...]
# Findings land in BUILDDIR/fuzz/findings/; each becomes a regression
# input under tests/fuzz/regress/ (replayed by tests/fuzz-replay.sh; NTFS
# volumes gzipped).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILDDIR [HARNESS...]}" && pwd)
shift
out=$build/fuzz
time=${FUZZ_TIME:-60}
jobs=${FUZZ_JOBS:-1}
CC=${FUZZ_CC:-clang}
mkdir -p "$out/obj" "$out/findings"

libs=$(cd "$src" && sed -n '/^libgpupv_a_SOURCES/,/^[^\t]/p' Makefile.am |
  tr ' \t\\' '\n\n\n' | grep '^src/.*\.c$')
pc="libntfs-3g hivex libvhdi zlib libarchive ext2fs com_err"
flags="-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
  -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
  -I$build -I$src/include -I$src/src $(pkg-config --cflags $pc)"
objs=
for f in $libs; do
  o=$out/obj/$(basename "$f" .c).o
  if [ ! -e "$o" ] || [ "$src/$f" -nt "$o" ]; then
    $CC $flags -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o"
  fi
  objs="$objs $o"
done
link() {  # NAME SOURCE [DEFINES]
  name=$1 s=$2; shift 2
  $CC $flags -fsanitize=fuzzer "$@" "$src/tests/fuzz/$s" $objs \
    $(pkg-config --libs $pc) -lpthread -o "$out/$name"
}
link fuzz-vhdx fuzz-image.c -DFUZZ_FORMAT='"vhdx"'
link fuzz-vhd fuzz-image.c -DFUZZ_FORMAT='"vhd"'
link fuzz-part fuzz-image.c -DFUZZ_FORMAT='"raw"'
link fuzz-reg fuzz-reg.c
link fuzz-inf fuzz-inf.c
link fuzz-json fuzz-json.c
link fuzz-hivelog fuzz-hivelog.c
link fuzz-ntfs fuzz-ntfs.c -DFUZZ_MUTATOR
link fuzz-ext4 fuzz-ext4.c

# Seeds, made with outside tools where possible.
seeds=$out/seeds
if [ ! -d "$seeds" ]; then
  mkdir -p "$seeds/vhdx" "$seeds/vhd" "$seeds/part" "$seeds/reg" \
    "$seeds/inf" "$seeds/json" "$seeds/hivelog"
  t=$(mktemp -d)
  truncate -s 8M "$t/d.raw"
  sgdisk -n 1:2048:8000 -n 2:8192:0 "$t/d.raw" >/dev/null
  cp "$t/d.raw" "$seeds/part/gpt"
  truncate -s 4M "$t/m.raw"
  printf 'start=2048, type=7\nstart=4096, type=5\nstart=4200, type=7\n' |
    sfdisk -q "$t/m.raw" >/dev/null 2>&1 || true
  cp "$t/m.raw" "$seeds/part/mbr"
  head -c 1M /dev/urandom | dd of="$t/d.raw" bs=1M seek=1 conv=notrunc status=none
  qemu-img convert -q -f raw -O vhdx -o block_size=1M "$t/d.raw" "$seeds/vhdx/dyn"
  qemu-img convert -q -f raw -O vpc -o subformat=dynamic "$t/d.raw" "$seeds/vhd/dyn"
  qemu-img create -q -f vpc -o subformat=fixed "$seeds/vhd/fixed" 1M
  cp "$src/data/sample.reg" "$seeds/reg/sample.reg"
  for r in "$src"/../shared/corpus/reg/derived-from-real-hives/*.reg; do
    [ -e "$r" ] && head -c 20000 "$r" >"$seeds/reg/$(basename "$r")"
  done
  cp "$src"/data/sample-package/*/*.inf "$seeds/inf/"
  for i in "$src"/../shared/corpus/inf/open/*.inf; do
    [ -e "$i" ] && cp "$i" "$seeds/inf/"
  done
  printf '{"format": 1, "gpus": [{"name": "g", "instance_path": "x", "install_section": "S"}], "reg": ["a.reg"]}' >"$seeds/json/bundle"
  printf '{"format": 1, "gpus": [{"instance_path": "x", "package": "d.inf_amd64_1", "packages": [{"folder": "d.inf_amd64_1", "role": "device"}, {"folder": "c.inf_amd64_1", "role": "companion"}], "extras": [{"file": "extras/System32/a.dll", "path": "C:\\\\Windows\\\\System32\\\\a.dll"}]}]}' >"$seeds/json/bundle-set"
  printf '{"format": 1, "packages": [{"name": "p", "role": "device", "gpu": "x", "files": []}], "system_files": [{"dest": "\\\\Windows\\\\System32\\\\DriverStore\\\\FileRepository\\\\p", "package": "p", "source": "junction", "size": 0, "sha256": "%064d", "link": "C:\\\\Windows\\\\System32\\\\HostDriverStore\\\\FileRepository\\\\p"}]}' 0 >"$seeds/json/manifest-set"
  printf '{"format": 1, "packages": [{"name": "p", "files": [{"path": "a", "size": 1, "mtime_ns": 0, "sha256": "%064d"}, {"path": "d", "dir": true}]}], "registry": [{"op": "value", "hive": "SYSTEM", "key": "k", "name": "n", "old": {"type": 4, "hex": "01000000"}}], "system_files": []}' 0 >"$seeds/json/manifest"
  "$build/tests/imgtool" mkhive "$t/h"
  { printf '\0\0\0\0\0\0\0\0'; cat "$t/h"; } >"$seeds/hivelog/empty"
  # A dirty hive (sequences 9 and 1) and a .LOG1 with one entry (HvLE,
  # sequence 9) that rewrites its only bin; the hashes are not checked
  # in fuzzing builds.
  p="$build/tests/imgtool"
  "$p" poke "$t/h" 4 u32 9
  head -c 512 "$t/h" >"$t/log"
  "$p" poke "$t/log" 28 u32 6
  truncate -s $((512 + 4608)) "$t/log"
  printf 'HvLE' | dd of="$t/log" bs=1 seek=512 conv=notrunc status=none
  "$p" poke "$t/log" 516 u32 4608
  "$p" poke "$t/log" 524 u32 9
  "$p" poke "$t/log" 528 u32 4096
  "$p" poke "$t/log" 532 u32 1
  "$p" poke "$t/log" 556 u32 4096
  dd if="$t/h" bs=4096 skip=1 count=1 status=none |
    dd of="$t/log" bs=1 seek=560 conv=notrunc status=none
  printf '\000\024\000\000\000\000\000\000' >"$seeds/hivelog/replay"
  cat "$t/log" "$t/h" >>"$seeds/hivelog/replay"
  # Hives with keys, values, classes and shared security for compaction:
  # hivex's own test hive, and one hivexregedit filled and emptied again
  # (so that it holds the cells hivex freed).
  "$p" mkhive "$t/m"
  printf 'Windows Registry Editor Version 5.00\n\n[\\A]\n"s"="text"\n"d"=dword:00000007\n"b"=hex:%s\n\n[\\A\\B]\n@="x"\n\n[\\C]\n"q"=hex(b):01,00,00,00,00,00,00,00\n' \
    "$(head -c 600 /dev/zero | od -An -v -tx1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//')" >"$t/m.reg"
  if command -v hivexregedit >/dev/null; then
    hivexregedit --merge "$t/m" "$t/m.reg"
    printf 'Windows Registry Editor Version 5.00\n\n[-\\C]\n\n[\\A]\n"s"="other"\n' >"$t/m2.reg"
    hivexregedit --merge "$t/m" "$t/m2.reg"
  fi
  { printf '\0\0\0\0\0\0\0\0'; cat "$t/m"; } >"$seeds/hivelog/keys"
  [ -e "$src/../shared/corpus/hives/hivex_special" ] &&
    { printf '\0\0\0\0\0\0\0\0'; cat "$src/../shared/corpus/hives/hivex_special"; } \
      >"$seeds/hivelog/special"
  rm -rf "$t"
fi

# A small NTFS volume laid out as a guest: the folders stage writes, a
# manifest, and enough names in System32 for index blocks.
if [ ! -e "$seeds/ntfs/guest" ]; then
  mkdir -p "$seeds/ntfs"
  t=$(mktemp -d) p="$build/tests/imgtool"
  truncate -s 2M "$t/v"
  mkntfs -F -Q -q "$t/v" >/dev/null 2>&1
  "$p" mkdir "$t/v" 0 \
    Windows/System32/HostDriverStore/FileRepository/a.inf_amd64_0123456789abcdef
  printf '{"format": 1}' >"$t/f"
  "$p" put "$t/v" 0 Windows/System32/HostDriverStore/gpupv-prep.json "$t/f"
  for i in $(seq 1 40); do
    "$p" put "$t/v" 0 "Windows/System32/file-with-long-name-$i.dll" "$t/f"
  done
  "$p" put "$t/v" 0 Windows/System32/old.dll "$t/f"
  cp "$t/v" "$seeds/ntfs/guest"
  rm -rf "$t"
fi

# Small ext file systems laid out as a Linux guest (mke2fs -d): ext4 with
# and without metadata_csum, with a journal and 64-bit, ext2 with 128-byte
# inodes; a staged package, a manifest and a file to remove.
if [ ! -e "$seeds/ext4/csum" ]; then
  mkdir -p "$seeds/ext4"
  t=$(mktemp -d)
  mkdir -p "$t/r/etc" "$t/r/usr/lib/wsl/drivers/a.inf_amd64_0123456789abcdef" \
    "$t/r/usr/lib/wsl/lib" "$t/r/usr/lib/modules/6.1.0-1-amd64" \
    "$t/r/etc/systemd/system"
  printf 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' >"$t/r/etc/os-release"
  printf '{"format": 1}' >"$t/r/usr/lib/wsl/gpupv-prep.json"
  echo old >"$t/r/etc/old"
  for i in $(seq 1 40); do echo "$i" >"$t/r/usr/lib/wsl/drivers/a.inf_amd64_0123456789abcdef/file-$i.so"; done
  ln -s file-1.so "$t/r/usr/lib/wsl/drivers/a.inf_amd64_0123456789abcdef/link"
  ln -s usr/lib "$t/r/lib"
  mk() {  # NAME SIZE OPTIONS...
    n=$1 s=$2; shift 2
    truncate -s "$s" "$t/$n"
    mke2fs -q -F "$@" -d "$t/r" "$t/$n" >/dev/null 2>&1 && cp "$t/$n" "$seeds/ext4/$n"
  }
  mk csum 1M -t ext4 -b 1024 -O ^has_journal
  mk nocsum 1M -t ext4 -b 1024 -O ^has_journal,^metadata_csum
  mk journal 4M -t ext4 -b 1024 -J size=1 -O 64bit
  mk ext2 1M -t ext2 -b 1024 -I 128
  rm -rf "$t"
fi

run_one() {  # NAME SEEDDIR MAXLEN [LIBFUZZER OPTION]
  mkdir -p "$out/corpus/$1" "$out/findings/$1"
  "$out/$1" ${4:-} -max_total_time="$time" -max_len="$3" -rss_limit_mb=2048 \
    -timeout=20 -print_final_stats=1 -artifact_prefix="$out/findings/$1/" \
    "$out/corpus/$1" "$seeds/$2" >"$out/$1.log" 2>&1 || true
  grep -E "INITED|DONE|stat::number_of_executed_units|ERROR" "$out/$1.log" |
    sed "s|^|$1: |"
}
want=${*:-"fuzz-vhdx fuzz-vhd fuzz-part fuzz-reg fuzz-inf fuzz-json fuzz-hivelog fuzz-ntfs fuzz-ext4"}
# FUZZ_JOBS at a time: each batch is waited for before the next.
n=0
for h in $want; do
  case $h in
    fuzz-vhdx) run_one $h vhdx 6000000 ;;
    fuzz-vhd) run_one $h vhd 3000000 ;;
    fuzz-part) run_one $h part 9000000 ;;
    fuzz-reg) run_one $h reg 65536 ;;
    fuzz-inf) run_one $h inf 65536 ;;
    fuzz-json) run_one $h json 16384 ;;
    fuzz-hivelog) run_one $h hivelog 65536 ;;
    # libntfs-3g keeps an inode it could not write back (a failed
    # ntfs_inode_close on a corrupt index) and leaks one when a mount
    # fails part-way: leaks of the library's, one per failed operation,
    # that would stop every run.  Our own paths are leak-checked by
    # `make check-sanitizers`.  It also allocates whatever size a $Secure
    # index entry states (an $SDH entry shorter than its header asks for
    # 2^64 - 20 bytes); malloc then fails and libntfs-3g takes the error
    # path, as it does outside ASan, which would abort instead.
    fuzz-ntfs) ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 \
      run_one $h ntfs 2097152 -detect_leaks=0 ;;
    fuzz-ext4) run_one $h ext4 4194304 ;;
  esac &
  n=$((n + 1))
  if [ "$n" -ge "$jobs" ]; then
    wait
    n=0
  fi
done
wait
ls "$out"/findings/*/ 2>/dev/null | grep -E "crash|leak|timeout|oom" &&
  { echo "fuzz: findings in $out/findings"; exit 1; }
echo "fuzz: no findings"
