#!/bin/sh
# Atomic commits: a process killed at each step of a commit leaves the old
# state (before the commit point) or the new one (after it), as read by
# qemu-img (which replays a VHDX log like Hyper-V), libvhdi and us; the
# next writable open completes a raw or VHD sidecar journal.
. "$(dirname "$0")/functions.sh"
requires qemu-img cmp

# killed POINT IMG REF [SEED MAXLEN]: random writes until the first commit,
# killed at POINT.
killed() {
  set +e
  GPUPV_PREP_FAULT=$1 "$IMGTOOL" randwrite "$2" "$3" 16 \
    "${4:-$(od -An -N4 -tu4 /dev/urandom)}" ${5:+"$5"} >/dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 137 ] || fail "$1: expected the process killed (137), got $rc"
}

same() {  # FMT IMG RAW WHAT
  qemu-img compare -q -f "$1" -F raw "$2" "$3" || fail "$4: qemu-img sees other contents"
  "$IMGTOOL" dump "$2" "$TMP/dump.raw"
  cmp -s "$TMP/dump.raw" "$3" || fail "$4: gpupv-prep reads other contents"
}

for spec in vhdx:vhdx: vpc:vhd:subformat=dynamic,force_size=on raw:raw:; do
  fmt=${spec%%:*} rest=${spec#*:} ext=${rest%%:*} opts=${rest#*:}
  img="$TMP/t.$ext" ref="$TMP/t.ref" old="$TMP/t.old"

  # Killed before the commit point: the old state.
  rm -f "$img"*; truncate -s 0 "$ref"; truncate -s 24M "$ref"
  qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$img" 24M
  cp "$ref" "$old"
  killed commit "$img" "$ref"
  [ ! -e "$img.gpupv-journal" ] || fail "$ext: journal left before the commit point"
  same "$fmt" "$img" "$old" "$ext killed before commit"
  [ "$fmt" != vhdx ] || qemu-img check -q "$img" || fail "$ext: qemu-img check"
  pass "$ext: killed before the commit point reads the old state"

  # Killed after the commit point, before the pages are in place.
  point=journal-committed
  [ "$fmt" != vhdx ] || point=vhdx-logged
  rm -f "$img"*; truncate -s 0 "$ref"; truncate -s 24M "$ref"
  qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$img" 24M
  killed "$point" "$img" "$ref"
  before=$(sha "$img")
  "$IMGTOOL" dump "$img" "$TMP/dump.raw"
  cmp -s "$TMP/dump.raw" "$ref" || fail "$ext: read-only open does not see the committed state"
  expect_eq "$(sha "$img")" "$before" "$ext: a read-only open changed the file"
  if [ "$fmt" = vhdx ]; then
    # qemu replays the log on a writable open, as Hyper-V does.
    cp "$img" "$TMP/q.vhdx"
    qemu-img check -q -r all "$TMP/q.vhdx" >/dev/null 2>&1 || true
    qemu-img compare -q -f vhdx -F raw "$TMP/q.vhdx" "$ref" ||
      fail "vhdx: qemu's log replay gives other contents"
    qemu-img check -q "$TMP/q.vhdx" || fail "vhdx: qemu-img check after its replay"
  else
    [ -e "$img.gpupv-journal" ] || fail "$ext: no journal after the commit point"
    run 0 "$GPUPV_PREP" inspect --json "$img"
    expect_eq "$(jqv .image.journal_replayed)" true "$ext: inspect reports the journal"
  fi
  "$IMGTOOL" touch "$img"
  [ ! -e "$img.gpupv-journal" ] || fail "$ext: journal left after a writable open"
  same "$fmt" "$img" "$ref" "$ext after recovery"
  [ "$fmt" != vhdx ] || qemu-img check -q "$img" || fail "$ext: qemu-img check after recovery"
  pass "$ext: killed after the commit point reads the new state, completed on open"
done


# A commit that rewrites many pages in place: a sequence of log entries
# (126 pages each) in the existing 1 MiB log, then one that needs a larger
# log relocated to the end of the file.  qemu replays both.
head -c 24M /dev/urandom >"$TMP/fill.raw"
for case in 100000:"two entries in the old log" 2097152:"a relocated log"; do
  maxlen=${case%%:*} what=${case#*:}
  img="$TMP/f.vhdx" ref="$TMP/f.ref"
  rm -f "$img"
  qemu-img convert -f raw -O vhdx -o block_size=2M "$TMP/fill.raw" "$img"
  cp "$TMP/fill.raw" "$ref"
  size0=$(stat -c %s "$img")
  killed vhdx-logged "$img" "$ref" 1 "$maxlen"
  log=$(od -An -j$((65536 + 68)) -N4 -tu4 "$img" | tr -d ' ')
  if [ "$maxlen" = 100000 ]; then
    expect_eq "$log" 1048576 "$what: log length"
  else
    [ "$log" -gt 1048576 ] && [ "$(stat -c %s "$img")" -gt "$size0" ] ||
      fail "$what: the log was not relocated (length $log)"
  fi
  "$IMGTOOL" dump "$img" "$TMP/dump.raw"
  cmp -s "$TMP/dump.raw" "$ref" || fail "$what: our replay gives other contents"
  cp "$img" "$TMP/q.vhdx"
  qemu-img check -q -r all "$TMP/q.vhdx" >/dev/null 2>&1 || true
  qemu-img compare -q -f vhdx -F raw "$TMP/q.vhdx" "$ref" ||
    fail "$what: qemu's log replay gives other contents"
  qemu-img check -q "$TMP/q.vhdx" || fail "$what: qemu-img check after its replay"
  "$IMGTOOL" touch "$img"
  same vhdx "$img" "$ref" "$what after our recovery"
  qemu-img check -q "$img" || fail "$what: qemu-img check after our recovery"
  pass "vhdx: killed after committing $what: qemu and we replay the new state"
done
