#!/bin/sh
# Atomic commits: a process killed at each step of a commit leaves the old
# state (before the commit point) or the new one (after it), as read by
# qemu-img (which replays a VHDX log like Hyper-V), libvhdi and us; the
# next writable open completes a raw or VHD sidecar journal.
. "$(dirname "$0")/functions.sh"
requires qemu-img cmp

# killed POINT IMG REF: random writes until the first commit, killed at POINT.
killed() {
  set +e
  GPUPV_PREP_FAULT=$1 "$IMGTOOL" randwrite "$2" "$3" 16 "$(od -An -N4 -tu4 /dev/urandom)" \
    >/dev/null 2>&1
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

