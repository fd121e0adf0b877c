#!/bin/sh
# Image locking: a writer holds an exclusive lock for its session, so a
# second writer - another gpupv-prep or a qemu process with the image open
# - is refused with exit 8 and a message, and the image is not changed.
# Readers (inspect) share.
. "$(dirname "$0")/functions.sh"
requires qemu-img qemu-io

qemu-img create -q -f vhdx -o block_size=1M "$TMP/img.vhdx" 64M
b=$(sha "$TMP/img.vhdx")

# wait_for FILE WORD: until the background holder says it is ready.
wait_for() {
  i=0
  until grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || fail "holder never became ready: $(cat "$1")"
    sleep 0.1
  done
}

# writer_refused WHAT: a writable open now gets exit 8 and changes nothing.
writer_refused() {
  wb=$(sha "$TMP/img.vhdx")
  set +e
  "$IMGTOOL" touch "$TMP/img.vhdx" 2>"$TMP/err"
  wrc=$?
  set -e
  expect_eq "$wrc" 8 "writer's exit code ($1)"
  grep -q 'image is in use by another process' "$TMP/err" ||
    fail "message ($1): $(cat "$TMP/err")"
  expect_eq "$(sha "$TMP/img.vhdx")" "$wb" "image changed ($1)"
}

# Another gpupv-prep session writing.
"$IMGTOOL" hold "$TMP/img.vhdx" 30 >"$TMP/hold.out" 2>&1 &
holder=$!
wait_for "$TMP/hold.out" held
b=$(sha "$TMP/img.vhdx")
writer_refused "another gpupv-prep writing"
# Readers are refused too while a writer holds it: they would read a
# half-done change.
run 8 "$GPUPV_PREP" inspect "$TMP/img.vhdx"
# QEMU cannot open what we are writing.
if qemu-io -f vhdx -c 'read 0 512' "$TMP/img.vhdx" >/dev/null 2>&1; then
  fail "qemu-io opened an image gpupv-prep is writing"
fi
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
expect_eq "$(sha "$TMP/img.vhdx")" "$b" "image changed by refused sessions"

# QEMU holding the image open (a running VM): writers are refused.
mkfifo "$TMP/qemu.in"
qemu-io -f vhdx "$TMP/img.vhdx" <"$TMP/qemu.in" >"$TMP/qemu.out" 2>&1 &
qpid=$!
exec 9>"$TMP/qemu.in"
echo 'read 0 512' >&9
wait_for "$TMP/qemu.out" 'read 512/512'
writer_refused "qemu has the image open"
# A reader may look while QEMU runs it.
run 0 "$GPUPV_PREP" inspect "$TMP/img.vhdx"
echo quit >&9
exec 9>&-
wait "$qpid" 2>/dev/null || true

# Free again: a writer goes through.
"$IMGTOOL" touch "$TMP/img.vhdx"
pass lock
