#!/bin/sh
# The layers, as the linker sees them (nm on the built objects): each
# outside library has one user; the image layer runs one way down (no
# file of it calls back up, no circle), and so do the file systems; no
# code below the CLI prints through it or clears an error.
. "$(dirname "$0")/functions.sh"
requires nm

OBJ=$top_builddir/src
[ -f "$OBJ/libgpupv_a-blk.o" ] || skip "objects not found in $OBJ"

# syms: "MODULE DEFINED|UNDEFINED SYMBOL" for every object of the library.
for o in "$OBJ"/libgpupv_a-*.o; do
  m=$(basename "$o" .o | sed 's/^libgpupv_a-//')
  nm "$o" | awk -v m="$m" '
    $1 == "U" { print m, "U", $2; next }
    $2 ~ /^[TDRB]$/ { print m, "D", $3 }'
done >"$TMP/syms"
[ -s "$TMP/syms" ] || fail "nm found no symbols"

# edges: "FROM TO" when FROM calls (or reads) what TO defines.
awk '$2 == "D" { def[$3] = $1 } $2 == "U" { use[NR] = $1 " " $3 }
  END { for (i in use) { split(use[i], a, " ");
    if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]] } }' \
  "$TMP/syms" | sort -u >"$TMP/edges"

# One user each.
only() {  # PATTERN MODULE: who uses symbols of PATTERN we do not define
  users=$(awk -v p="$1" '$2 == "D" { ours[$3] = 1 }
    $2 == "U" && $3 ~ p { u[NR] = $1 " " $3 }
    END { for (i in u) { split(u[i], a, " "); if (!(a[2] in ours)) print a[1] } }' \
    "$TMP/syms" | sort -u | tr '\n' ' ')
  expect_eq "$users" "$2 " "users of $1"
}
only '^ntfs_' ntfs
only '^ext2fs_' ext4
only '^hivex_' hive
only '^archive_' unpack
pass "each outside library has one user"

# No file calls up into the image layer's front, the public API or fs.c.
up() {  # FROM-PATTERN TO
  bad=$(awk -v f="$1" -v t="$2" '$1 ~ f && $2 == t' "$TMP/edges")
  [ -z "$bad" ] || fail "calls up the layers: $bad"
}
for d in blk-raw blk-vhd blk-vhdx blk-vhdi blk-cow blk-file blk-journal vhdx-log txn; do
  up "^$d\$" blk
  up "^$d\$" image
done
up '^(blk|blk-raw|blk-vhd|blk-vhdx|blk-vhdi|blk-journal)$' txn
up '^(ntfs|ext4)$' fs
pass "the image layer and the file systems run one way down"

# No circle inside the image layer (a depth-first search for a back edge).
awk '
  { n[$1]; n[$2]; e[$1, $2] = 1 }
  function img(x) { return x ~ /^(image|blk.*|txn|vhdx-log)$/ }
  function dfs(v,   w) {
    state[v] = 1
    for (w in n)
      if (img(w) && ((v, w) in e)) {
        if (state[w] == 1) { print "circle through " v " -> " w; bad = 1 }
        else if (!state[w]) dfs(w)
      }
    state[v] = 2
  }
  END { for (v in n) if (img(v) && !state[v]) dfs(v); exit bad }' \
  "$TMP/edges" >"$TMP/cycle" || fail "the image layer has a circle: $(cat "$TMP/cycle")"
pass "no circle in the image layer"

# Errors: only error.c may clear one; nothing below the CLI prints it.
clr=$(awk '$2 == "U" && $3 == "gp_error_clear" { print $1 }' "$TMP/syms" | sort -u | tr '\n' ' ')
expect_eq "$clr" "" "gp_error_clear called below the CLI"
prn=$(awk '$2 == "U" && $3 ~ /^cli_/ { print $1 }' "$TMP/syms" | sort -u | tr '\n' ' ')
expect_eq "$prn" "" "the CLI's printing used below it"
pass layers
