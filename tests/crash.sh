#!/bin/sh
# kill -9 at random moments spread over a whole `stage` of a ~100 MB
# package, commit included: afterwards qemu-img (replaying the VHDX log as
# Hyper-V would), libvhdi (verify) and gpupv-prep see either the old state
# (no package) or the new one (the package complete and byte-exact),
# sleuthkit walks the volume, and the next stage completes.  The same for a
# raw image with its sidecar journal.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit fls jq cmp
TRIALS=${CRASH_TRIALS:-30}

PKG="$TMP/src/crash.inf_amd64_0123456789abcdef"
mkdir -p "$PKG/sub"
printf '[Version]\r\nDriverVer = 01/02/2024,1.2.3.4\r\n' >"$PKG/crash.inf"
for i in 1 2 3 4 5 6 7 8; do
  head -c 12000000 /dev/urandom >"$PKG/part$i.bin"
done
for i in $(seq 40); do echo "small $i" >"$PKG/sub/s$i.txt"; done

mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx -o block_size=8M "$TMP/g.raw" "$TMP/base.vhdx"
cp "$TMP/g.raw" "$TMP/base.raw"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# state IMAGE FMT: "old" or "new", or fail.
state() {
  run 0 "$GPUPV_PREP" inspect --json "$1"
  n=$(jqv '.host_driver_store | length')
  if [ "$n" = 0 ]; then
    echo old
  else
    expect_eq "$(jqv '.host_driver_store[0].package')" "$(basename "$PKG")" "$1: package"
    # verify re-reads every file through libvhdi (or raw) and its hash.
    "$GPUPV_PREP" verify "$1" >/dev/null 2>"$TMP/verr" || {
      cat "$TMP/verr" >&2; fail "$1: package present but not complete"; }
    echo new
  fi
}

trial() {  # IMAGE FMT DURATION_MS N
  img=$1 fmt=$2 dur=$3 t=$4
  cp "$TMP/base.$fmt" "$img"
  rm -f "$img.gpupv-journal"
  delay=$(( $(od -An -N4 -tu4 /dev/urandom) % (dur + dur / 5 + 1) ))
  "$GPUPV_PREP" stage "$img" "$PKG" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$fmt" = vhdx ]; then
    # Hyper-V's view: qemu replays a pending log on a writable open.
    cp "$img" "$TMP/q.vhdx"
    qemu-img check -q -r all "$TMP/q.vhdx" >/dev/null 2>&1 || true
    qemu-img check -q "$TMP/q.vhdx" || fail "trial $t: qemu-img check after replay"
    qemu-img convert -f vhdx -O raw "$TMP/q.vhdx" "$TMP/q.raw"
    "$IMGTOOL" dump "$img" "$TMP/ours.raw"
    cmp -s "$TMP/q.raw" "$TMP/ours.raw" || fail "trial $t: qemu and gpupv-prep see different disks"
    raw="$TMP/q.raw"
  else
    "$IMGTOOL" dump "$img" "$TMP/ours.raw"
    raw="$TMP/ours.raw"
  fi
  s=$(state "$img" "$fmt")
  fls -r -o "$START" "$raw" >/dev/null || fail "trial $t: sleuthkit cannot walk the volume"
  run 0 "$GPUPV_PREP" stage "$img" "$PKG"
  [ "$(state "$img" "$fmt")" = new ] || fail "trial $t: the next stage did not complete"
  [ ! -e "$img.gpupv-journal" ] || fail "trial $t: journal left behind"
  echo "  trial $t ($fmt): killed at $delay ms of ~$dur: $s state"
  echo "$s" >>"$TMP/states.$fmt"
}

START=$(sgdisk -i 3 "$TMP/g.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
for fmt in vhdx raw; do
  cp "$TMP/base.$fmt" "$TMP/time.$fmt"
  t0=$(now_ms); "$GPUPV_PREP" stage "$TMP/time.$fmt" "$PKG" >/dev/null; t1=$(now_ms)
  dur=$((t1 - t0))
  n=$TRIALS
  [ "$fmt" = vhdx ] || n=$((TRIALS / 3 + 1))
  for t in $(seq "$n"); do trial "$TMP/c.$fmt" "$fmt" "$dur" "$t"; done
  pass "$fmt: $n kills over a ${dur} ms stage: $(grep -c old "$TMP/states.$fmt" || true) old, $(grep -c new "$TMP/states.$fmt" || true) new, none torn"
done

# The host file system fills up while the image grows (a file size limit
# stands in for a full disk, which needs root to set up): a clear error,
# and the image keeps its old state and size.
cp "$TMP/base.vhdx" "$TMP/full.vhdx"
size=$(stat -c %s "$TMP/full.vhdx")
set +e
(trap '' XFSZ; ulimit -f $(((size + 16 * 1024 * 1024) / 1024)); \
  exec "$GPUPV_PREP" stage "$TMP/full.vhdx" "$PKG") >/dev/null 2>"$TMP/fullerr"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "disk full: stage succeeded"
grep -q "full" "$TMP/fullerr" || { cat "$TMP/fullerr" >&2; fail "disk full: no clear message"; }
expect_eq "$(stat -c %s "$TMP/full.vhdx")" "$size" "disk full: file size"
[ "$(state "$TMP/full.vhdx" vhdx)" = old ] || fail "disk full: not the old state"
qemu-img check -q "$TMP/full.vhdx" || fail "disk full: qemu-img check"
pass "host file system full: clear error, old state: $(head -c 200 "$TMP/fullerr")"

# A fixed VHDX --output reserves its whole size with posix_fallocate,
# which returns its error instead of setting errno: the message must say
# what failed (it said "No such file or directory"), and no NEW is left.
set +e
(trap '' XFSZ; ulimit -f $(((size + 16 * 1024 * 1024) / 1024)); \
  exec "$GPUPV_PREP" stage "$TMP/base.vhdx" "$PKG" --output "$TMP/fixed-out.vhdx" \
  --output-format vhdx-fixed) >/dev/null 2>"$TMP/fallerr"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "fixed --output past the file size limit succeeded"
grep -q "File too large\|full" "$TMP/fallerr" || fail "posix_fallocate's error not said: $(cat "$TMP/fallerr")"
grep -q "No such file" "$TMP/fallerr" && fail "posix_fallocate's error misreported: $(cat "$TMP/fallerr")"
ls -a "$TMP" | grep -q "fixed-out" && fail "a failed fixed --output left a file"
pass "fixed --output on a full host: $(head -c 200 "$TMP/fallerr")"

# Killed after the commit point, before the log was applied: libvhdi
# would read the old state, so verify checks through our reader (which
# replays the log in memory), says so, and leaves the file as it is.
cp "$TMP/base.vhdx" "$TMP/logged.vhdx"
set +e
(GPUPV_PREP_FAULT=vhdx-logged exec "$GPUPV_PREP" stage "$TMP/logged.vhdx" "$PKG") \
  >/dev/null 2>&1
set -e
before=$(sha "$TMP/logged.vhdx")
run 0 "$GPUPV_PREP" verify "$TMP/logged.vhdx" --json
expect_eq "$(jqv .reader)" gpupv-prep "verify with a pending log: reader"
expect_eq "$(jqv .verified)" true "verify with a pending log"
jqv '.warnings[]' | grep -q "VHDX log is not applied yet" || fail "pending log not said"
expect_eq "$(sha "$TMP/logged.vhdx")" "$before" "verify changed a file with a pending log"
pass "verify with a pending VHDX log reads the new state"

# A dry run over the pending log does what the real run will: its own
# writes land on the replayed state and read back.
mkdir -p "$TMP/dry/nv_dry.inf_amd64_4444444444444444"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$TMP/dry/nv_dry.inf_amd64_4444444444444444/nv_dry.inf"
head -c 200000 /dev/urandom >"$TMP/dry/nv_dry.inf_amd64_4444444444444444/d.bin"
run 0 "$GPUPV_PREP" stage --dry-run --json "$TMP/logged.vhdx" "$TMP/dry/nv_dry.inf_amd64_4444444444444444"
expect_eq "$(jqv .verified)" true "dry run over a pending log: read back"
expect_eq "$(sha "$TMP/logged.vhdx")" "$before" "a dry run changed a file with a pending log"
run 0 "$GPUPV_PREP" stage --json "$TMP/logged.vhdx" "$TMP/dry/nv_dry.inf_amd64_4444444444444444"
run 0 "$GPUPV_PREP" verify "$TMP/logged.vhdx"
pass "a dry run over a pending VHDX log agrees with the real run"
