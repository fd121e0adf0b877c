# Shared by the shell tests: skipping, failing, a temporary folder, and
# fixture builders that use only outside tools (truncate, sgdisk, sfdisk,
# mkntfs, mkfs.fat, qemu-img, hivexregedit) plus tests/imgtool.
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${GPUPV_PREP:=$top_builddir/gpupv-prep}"
: "${IMGTOOL:=$top_builddir/tests/imgtool}"
CORPUS=${GPUPV_CORPUS:-$top_srcdir/../shared/corpus}
export PATH="$PATH:/usr/sbin:/sbin"
# A run that succeeds must not carry an error it went past (cli.c).
export GPUPV_PREP_CHECK_ERRORS=1

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

requires() {
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
  done
}

requires_corpus() {
  [ -d "$CORPUS/vhd" ] || skip "test corpus not found at $CORPUS"
}

# run EXPECTED_RC CMD...: run, keep stdout in $TMP/out, stderr in $TMP/err.
run() {
  want=$1; shift
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  set -e
  [ "$rc" -eq "$want" ] || {
    cat "$TMP/err" >&2
    fail "'$*' exited $rc, expected $want"
  }
}

# jqv FILTER: a value from $TMP/out.
jqv() { jq -r "$1" "$TMP/out"; }

expect_eq() {
  [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

# mkhive_software FILE BUILD: a SOFTWARE hive holding CurrentBuildNumber.
mkhive_software() { guest_software_hive "$1" "$IMGTOOL" "$2" || fail "mkhive_software"; }

# mkhive_system FILE: a SYSTEM hive with Select\Current = 1 and the keys
# a GPU-PV run writes below (Services, Control\GraphicsDrivers).
mkhive_system() { guest_system_hive "$1" "$IMGTOOL" || fail "mkhive_system"; }

# mkntfs_at DISK START_SECTOR SECTORS LABEL: format a partition in place.
mkntfs_at() {
  truncate -s $(($3 * 512)) "$TMP/part.ntfs"
  mkntfs -F -Q -q -p "$2" -L "$4" "$TMP/part.ntfs" >/dev/null 2>&1 ||
    fail "mkntfs failed"
  dd if="$TMP/part.ntfs" of="$1" bs=1M oflag=seek_bytes seek=$(($2 * 512)) \
    conv=notrunc,sparse status=none
  rm -f "$TMP/part.ntfs"
}

. "$top_srcdir/data/guest-layout.sh"

# mkgpt_windows DISK [WINDIR]: a 160 MiB raw guest disk (ESP, MSR, NTFS at
# partition 3) holding WINDIR/System32/config/{SYSTEM,SOFTWARE} (WINDIR
# defaults to Windows).
mkgpt_windows() {
  guest_layout "$1" 160M 32 >/dev/null || fail "guest_layout"
  rm -f "$TMP/SYSTEM" "$TMP/SOFTWARE"
  mkhive_system "$TMP/SYSTEM"
  mkhive_software "$TMP/SOFTWARE" 22631
  "$IMGTOOL" put "$1" 3 "${2:-Windows}/System32/config/SYSTEM" "$TMP/SYSTEM"
  "$IMGTOOL" put "$1" 3 "${2:-Windows}/System32/config/SOFTWARE" "$TMP/SOFTWARE"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# wait_stopped PID: until the process stopped itself (at a fault point
# with GPUPV_PREP_FAULT_SIGNAL=STOP), at most 30 s.
wait_stopped() {
  ws=0
  until [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = T ]; do
    ws=$((ws + 1))
    [ $ws -lt 300 ] || { kill -9 "$1"; fail "the run never reached its stop"; }
    sleep 0.1
  done
}
# resume PID: let a stopped run go on and wait for it; its status in $rc.
resume() {
  kill -CONT "$1"
  set +e
  wait "$1"
  rc=$?
  set -e
}

# check_staged IMAGE QEMU_FMT PKGDIR: every file of a staged package, byte
# for byte, READONLY, kept mtime, no own security descriptor (sleuthkit on
# a raw copy made by qemu-img).  PART names the partition when the image
# has no Windows.
check_staged() {
  img=$1 fmt=$2 pkg=$3
  name=$(basename "$pkg")
  rm -f "$TMP/c.raw"
  qemu-img convert -f "$fmt" -O raw "$img" "$TMP/c.raw"
  run 0 "$GPUPV_PREP" inspect --json "$img"
  part=$(jqv '.windows.partition // empty')
  [ -n "$part" ] || part=${PART:-3}
  off=$(jq -r ".partitions[] | select(.index == $part) | .start / 512" "$TMP/out")
  fls -r -p -o "$off" "$TMP/c.raw" >"$TMP/fls" || fail "fls cannot walk the volume"
  (cd "$pkg" && find . -mindepth 1 | sed 's|^\./||' | sort) >"$TMP/want"
  n=0
  while IFS= read -r rel; do
    line=$(grep -i -F "/HostDriverStore/FileRepository/$name/$rel" "$TMP/fls" |
      awk -F'\t' -v p="$rel" 'tolower(substr($2, length($2) - length(p) + 1)) == tolower(p)' |
      grep -v '^[-rd/]* \*' | head -1)
    [ -n "$line" ] || fail "$img: $rel not found by fls"
    case "$(awk -F'\t' '{print $2}' <<EOT
$line
EOT
)" in */HostDriverStore/FileRepository/"$name/$rel") ;; *) fail "$img: $rel stored with another case" ;; esac
    inode=$(echo "$line" | sed 's/^[^ ]* \([0-9]*\)-.*/\1/')
    istat -o "$off" "$TMP/c.raw" "$inode" >"$TMP/istat"
    grep -q "Flags: Read Only" "$TMP/istat" || fail "$rel: no READONLY flag"
    ! grep -q 'SECURITY_DESCRIPTOR' "$TMP/istat" || fail "$rel: has its own security descriptor"
    if [ -f "$pkg/$rel" ]; then
      icat -o "$off" "$TMP/c.raw" "$inode" >"$TMP/got"
      cmp -s "$TMP/got" "$pkg/$rel" || fail "$img: $rel differs"
    fi
    # Files and folders keep the package's times, whatever creating
    # entries and 8.3 names inside a folder did to it on the way
    # ($STANDARD_INFORMATION, the first of istat's times).
    want=$(date -u -r "$pkg/$rel" '+%Y-%m-%d %H:%M:%S')
    [ "$(grep -m1 '^File Modified:' "$TMP/istat" | cut -f2 | cut -c1-19)" = "$want" ] ||
      fail "$rel: modification time not kept ($want): $(grep -m1 '^File Modified:' "$TMP/istat")"
    n=$((n + 1))
  done <"$TMP/want"
  [ "$fmt" != vhdx ] || qemu-img check -q "$img" || fail "$img: qemu-img check"
  echo "  $img: $n entries checked"
}


# guest_file IMAGE QEMU_FMT PATH OUT: copy a file out of the Windows
# volume (partition 3 unless PART says) with sleuthkit; PATH is matched
# without regard to case.  Returns 1 when it is not there.
guest_file() {
  rm -f "$TMP/g.raw"
  qemu-img convert -f "$2" -O raw "$1" "$TMP/g.raw"
  off=$(sfdisk -J "$TMP/g.raw" | jq ".partitiontable.partitions[$((${PART:-3} - 1))].start")
  inode=$(fls -r -p -u -o "$off" "$TMP/g.raw" | awk -F '\t' -v p="$3" '
    tolower($2) == tolower(p) { split($1, a, " "); sub(/-.*/, "", a[2]);
      sub(/:$/, "", a[2]); print a[2]; exit }')
  [ -n "$inode" ] || return 1
  icat -o "$off" "$TMP/g.raw" "$inode" >"$4"
}

# hive_export HIVEFILE OUT: the hive as hivexregedit and libregf read it
# (both must succeed); OUT gets hivexregedit's text.
hive_export() {
  hivexregedit --export "$1" '\' >"$2" 2>"$2.err" || fail "hivexregedit cannot read $1"
  regfexport "$1" >"$2.regf" 2>"$2.regf.err" || fail "regfexport cannot read $1"
  ! grep -q -i "unable\|error" "$2.regf.err" ||
    fail "regfexport reports errors on $1: $(head -3 "$2.regf.err")"
}

# utf16 STRING: its UTF-16LE bytes with a NUL, as .reg hex ("5c,00,...").
utf16() {
  printf '%s\0' "$1" | iconv -f UTF-8 -t UTF-16LE | od -An -v -tx1 |
    tr -s ' \n' ',' | sed 's/^,//; s/,$//'
}
