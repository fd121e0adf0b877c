#!/bin/sh
# Differencing VHDX: a child made byte by byte (tests/imgtool mkchild) over
# a parent qemu-img made.  Read through the chain it must equal the raw
# disk it describes - by our reader and by libvhdi's - the parent is found
# from the locator's relative path or --parent, and a parent that changed
# after the child was made is refused by name.
. "$(dirname "$0")/functions.sh"
requires qemu-img cmp jq

head -c 16M /dev/urandom >"$TMP/parent.raw"
qemu-img convert -q -f raw -O vhdx -o block_size=1M "$TMP/parent.raw" "$TMP/parent.vhdx"
"$IMGTOOL" mkchild "$TMP/parent.vhdx" "$TMP/parent.raw" "$TMP/child.avhdx" "$TMP/expected.raw"
pbefore=$(sha "$TMP/parent.vhdx")

run 0 "$GPUPV_PREP" inspect --json "$TMP/child.avhdx"
expect_eq "$(jqv .image.subformat)" differencing "subformat"
expect_eq "$(jqv .image.parent)" "$TMP/parent.vhdx" "parent path"
expect_eq "$(jqv '.image.chain | length')" 1 "chain length"
expect_eq "$(jqv '.image.chain[0].subformat')" dynamic "parent subformat"
expect_eq "$(jqv .image.virtual_size)" $((16 << 20)) "virtual size"

"$IMGTOOL" dump "$TMP/child.avhdx" "$TMP/ours.raw"
cmp "$TMP/expected.raw" "$TMP/ours.raw" || fail "our chain read differs"
"$IMGTOOL" vhdi-dump "$TMP/child.avhdx" "$TMP/vhdi.raw" "$TMP/parent.vhdx"
cmp "$TMP/expected.raw" "$TMP/vhdi.raw" || fail "libvhdi's chain read differs"
expect_eq "$(sha "$TMP/parent.vhdx")" "$pbefore" "parent changed by reading"

# Writing into a differencing file is refused (for now), file unchanged.
b=$(sha "$TMP/child.avhdx")
cp "$TMP/expected.raw" "$TMP/exp2.raw"
if "$IMGTOOL" randwrite "$TMP/child.avhdx" "$TMP/exp2.raw" 1 1 2>"$TMP/err"; then
  fail "write into a differencing VHDX accepted"
fi
grep -q 'differencing' "$TMP/err" || fail "refusal message: $(cat "$TMP/err")"

# Parent moved away: named in the error; --parent finds it (before or
# after the image argument).
mv "$TMP/parent.vhdx" "$TMP/moved.vhdx"
run 9 "$GPUPV_PREP" inspect "$TMP/child.avhdx"
grep -q 'parent.vhdx' "$TMP/err" || fail "missing parent not named"
run 0 "$GPUPV_PREP" inspect "$TMP/child.avhdx" --parent "$TMP/moved.vhdx" --json
expect_eq "$(jqv .image.parent)" "$TMP/moved.vhdx" "--parent"
"$IMGTOOL" dump "$TMP/child.avhdx" "$TMP/ours2.raw" "$TMP/moved.vhdx"
cmp "$TMP/expected.raw" "$TMP/ours2.raw" || fail "read with --parent differs"

# A write to the parent gives it a new DataWriteGuid: the child no
# longer matches, and says so.
cp "$TMP/parent.raw" "$TMP/ref.raw"
"$IMGTOOL" randwrite "$TMP/moved.vhdx" "$TMP/ref.raw" 1 5
run 9 "$GPUPV_PREP" inspect --parent "$TMP/moved.vhdx" "$TMP/child.avhdx"
grep -q 'does not match' "$TMP/err" || fail "changed parent accepted: $(cat "$TMP/err")"
pass diff-chain
