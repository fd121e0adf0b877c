#!/bin/sh
# Security descriptors as Windows derives them.  The oracle is the
# Windows-made volume in the corpus: for each folder holding objects
# Windows made, a new file or folder gpupv-prep creates beside them must
# carry the same DACL, byte for byte, and the same owner (Administrators,
# as an elevated administrator's copy has).  The descriptors are read by
# ntfssecaudit, which reads $Secure itself.  A fresh mkntfs volume with an
# automatically inherited parent checks the INHERITED marks, mapped
# generic rights and CREATOR OWNER.
. "$(dirname "$0")/functions.sh"
requires_corpus
requires unzip ntfssecaudit mkntfs

unzip -q -d "$TMP" "$CORPUS/vhd/velociraptor_test.vhdx.zip"
IMG=$TMP/test.vhdx
echo new >"$TMP/new.txt"
"$IMGTOOL" put "$IMG" 1 Hello2.txt "$TMP/new.txt"
"$IMGTOOL" put "$IMG" 1 Users/Administrator/Secret2.txt "$TMP/new.txt"
"$IMGTOOL" mkdir "$IMG" 1 Users/Ours
"$IMGTOOL" mkdir "$IMG" 1 Windows/Ours
"$IMGTOOL" dump "$IMG" "$TMP/d.raw"
dd if="$TMP/d.raw" of="$TMP/v.ntfs" bs=64K skip=1 status=none

# sd VOLUME PATH: the descriptor's bytes as hex, one string.
sd() {
  ntfssecaudit -v "$1" "$2" 2>/dev/null |
    sed -n 's/^ *[0-9a-f]\{6\}  //p' | tr -d ' \n'
}
# dacl HEX: the DACL (at the offset the header gives, of its own size).
dacl() {
  h=$1
  off=$((0x$(printf '%s' "$h" | cut -c39-40)$(printf '%s' "$h" | cut -c37-38)$(printf '%s' "$h" | cut -c35-36)$(printf '%s' "$h" | cut -c33-34)))
  size=$((0x$(printf '%s' "$h" | cut -c$((off * 2 + 7))-$((off * 2 + 8)))$(printf '%s' "$h" | cut -c$((off * 2 + 5))-$((off * 2 + 6)))))
  printf '%s' "$h" | cut -c$((off * 2 + 1))-$(((off + size) * 2))
}
owner() {
  ntfssecaudit "$1" "$2" 2>/dev/null | sed -n 's/^Windows owner //p'
}
same() {  # WINDOWS-MADE OURS
  w=$(sd "$TMP/v.ntfs" "$1") o=$(sd "$TMP/v.ntfs" "$2")
  [ -n "$w" ] && [ -n "$o" ] || fail "no descriptor for $1 or $2"
  expect_eq "$(dacl "$o")" "$(dacl "$w")" "DACL of $2 (Windows made $1 beside it)"
  expect_eq "$(owner "$TMP/v.ntfs" "$2")" "$(owner "$TMP/v.ntfs" "$1")" "owner of $2"
}
same /Hello.txt.txt /Hello2.txt
same /Users/Administrator/Secret.txt.txt /Users/Administrator/Secret2.txt
same /Users/Administrator /Users/Ours
same /Windows/System32 /Windows/Ours
pass "files and folders get the DACL Windows gave its own beside them"

# Automatic inheritance: a parent whose DACL is marked auto-inherited
# (as every folder of an installed Windows is) passes its ACEs on marked
# INHERITED; CREATOR OWNER becomes the owner, GENERIC_ALL FILE_ALL_ACCESS,
# and a folder keeps the inherit-only original to pass on.  mkntfs's root
# has no such mark, so the chain starts one level down: our own folder,
# whose descriptor then carries the mark only if the root had it.
truncate -s 16M "$TMP/m.raw"
mkntfs -F -Q -q "$TMP/m.raw" >/dev/null 2>&1
"$IMGTOOL" mkdir "$TMP/m.raw" 0 a/b
"$IMGTOOL" put "$TMP/m.raw" 0 a/b/f.txt "$TMP/new.txt"
for p in /a /a/b /a/b/f.txt; do
  h=$(sd "$TMP/m.raw" "$p")
  [ -n "$h" ] || fail "no descriptor for $p"
  # No ACE may keep a generic right or CREATOR OWNER unless it is
  # inherit-only (flags & 0x08), waiting to be passed on.
  d=$(dacl "$h")
  n=$((0x$(printf '%s' "$d" | cut -c11-12)$(printf '%s' "$d" | cut -c9-10)))
  at=16
  i=0
  while [ $i -lt $n ]; do
    flags=$((0x$(printf '%s' "$d" | cut -c$((at + 3))-$((at + 4)))))
    asz=$((0x$(printf '%s' "$d" | cut -c$((at + 7))-$((at + 8)))$(printf '%s' "$d" | cut -c$((at + 5))-$((at + 6)))))
    mask=$(printf '%s' "$d" | cut -c$((at + 9))-$((at + 16)))
    sid=$(printf '%s' "$d" | cut -c$((at + 17))-$((at + asz * 2)))
    if [ $((flags & 8)) -eq 0 ]; then
      case $mask in ??????[1-9a-f]?) fail "$p: ACE $i keeps a generic right ($mask)" ;; esac
      [ "$sid" = 010100000000000300000000 ] && fail "$p: ACE $i keeps CREATOR OWNER"
    fi
    at=$((at + asz * 2))
    i=$((i + 1))
  done
  expect_eq "$(owner "$TMP/m.raw" "$p")" S-1-5-32-544 "owner of $p"
done
pass "generic rights mapped, CREATOR OWNER replaced, Administrators the owner"
