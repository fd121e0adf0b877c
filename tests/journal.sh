#!/bin/sh
# The sidecar journal of raw and VHD images is bound to the state it was
# written against: after a run killed past its commit point, an image
# changed meanwhile (as a VM would change it) makes the journal stale, and
# it is refused, the image left as it is; an unchanged image gets it
# completed.  Through a symbolic link the journal is the target's; a link
# planted where the journal's temporary goes is never written through.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit od

PKG1=$TMP/a/nv_j.inf_amd64_1111111111111111
PKG2=$TMP/b/nv_j.inf_amd64_2222222222222222
for p in "$PKG1" "$PKG2"; do
  mkdir -p "$p"
  printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$p/nv_j.inf"
  head -c 300000 /dev/urandom >"$p/data.bin"
done
mkgpt_windows "$TMP/g.raw"
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG1"
cp "$TMP/g.raw" "$TMP/v1.raw"

# killed past the commit point: the journal stays beside the image.
killed() {
  set +e
  GPUPV_PREP_FAULT=journal-committed "$GPUPV_PREP" stage "$1" "$PKG2" >/dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "the run was not killed"
}
killed "$TMP/g.raw"
J=$TMP/g.raw.gpupv-journal
[ -f "$J" ] || fail "no journal after the commit point"
cp "$TMP/g.raw" "$TMP/committed.raw"
cp "$J" "$TMP/journal.saved"

# The image changes where the journal writes (its first page).
off=$(od -An -tu8 -j 64 -N8 "$J" | tr -d ' ')
head -c 4096 /dev/urandom | dd of="$TMP/g.raw" bs=4096 seek=$((off / 4096)) conv=notrunc status=none
before=$(sha "$TMP/g.raw")
for cmd in inspect verify; do
  run 3 "$GPUPV_PREP" $cmd "$TMP/g.raw"
  grep -q "journal .* is stale" "$TMP/err" || fail "$cmd: $(cat "$TMP/err")"
done
run 3 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG2"
expect_eq "$(sha "$TMP/g.raw")" "$before" "the image after a stale journal"
cmp -s "$J" "$TMP/journal.saved" || fail "the stale journal changed"
pass "a stale journal is refused and nothing is written"

# The image as the killed run left it: the journal is completed.
cp "$TMP/committed.raw" "$TMP/g.raw"
run 0 "$GPUPV_PREP" inspect --json "$TMP/g.raw"
expect_eq "$(jqv '.image.journal_replayed')" true "journal read in memory"
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG2"
[ ! -e "$J" ] || fail "the journal was not completed"
run 0 "$GPUPV_PREP" verify "$TMP/g.raw" --json
expect_eq "$(jqv '.packages[0].name')" "$(basename "$PKG2")" "after the journal"
pass "a journal over the state it was written for is completed"

# Through a symbolic link: the journal is the target's.
cp "$TMP/v1.raw" "$TMP/t.raw"
ln -s t.raw "$TMP/link.raw"
killed "$TMP/link.raw"
[ -f "$TMP/t.raw.gpupv-journal" ] || fail "the journal is not beside the target"
[ ! -e "$TMP/link.raw.gpupv-journal" ] || fail "a journal beside the link"
run 0 "$GPUPV_PREP" verify "$TMP/t.raw" --json
expect_eq "$(jqv '.packages[0].name')" "$(basename "$PKG2")" "the target, through its own name"
pass "through a symbolic link the journal is the target's"

# A link planted where the journal's temporary goes is not followed.
cp "$TMP/v1.raw" "$TMP/p.raw"
echo precious >"$TMP/victim"
ln -s victim "$TMP/p.raw.gpupv-journal.tmp"
run 0 "$GPUPV_PREP" stage "$TMP/p.raw" "$PKG2"
expect_eq "$(cat "$TMP/victim")" precious "the file a planted link named"
pass "a planted link is never written through"
