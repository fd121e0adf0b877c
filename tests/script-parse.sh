#!/bin/sh
# Every PowerShell file gpupv-prep emits parses with the tree-sitter
# PowerShell grammar (npm web-tree-sitter + tree-sitter-powershell, which
# bootstrap.sh installs under tests/node_modules).  A parse error fails.
. "$(dirname "$0")/functions.sh"
requires node qemu-img sgdisk mkntfs hivexregedit
[ -d "$top_srcdir/tests/node_modules/web-tree-sitter" ] &&
  [ -d "$top_srcdir/tests/node_modules/tree-sitter-powershell" ] ||
  skip "npm packages not installed (npm install --prefix tests, as bootstrap.sh does)"
parse() { node "$top_srcdir/tests/ps-parse.mjs" "$@"; }

# The parser itself must catch an error, or a pass means nothing.
printf 'if ($a -eq {\n' >"$TMP/broken.ps1"
! parse "$TMP/broken.ps1" 2>/dev/null || fail "the parser accepts a broken script"

PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$PKG/nv_dispig.inf"
echo x >"$PKG/nvlddmkm.sys"
mkgpt_windows "$TMP/g.raw"
GPU='\\?\PCI#VEN_10DE&DEV_2484&SUBSYS_146B10DE&REV_A1#4&2f1e4f4e&0&0008#{064092b3-625e-43bf-9eb5-dc845897dd59}\GPUPARAV'
# Names with quotes and PowerShell's special characters must stay data.
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG" --script "$TMP/a.ps1" \
  --vm-name "O'Brien \$env:X \`\"; Remove-Item" --gpu "$GPU" --low-mmio 2G --high-mmio 64G
run 0 "$GPUPV_PREP" script "$TMP/g.raw" -o "$TMP/b.ps1" --gpu ''
run 0 "$GPUPV_PREP" script "$TMP/g.raw" -o "$TMP/c.ps1" --dda 'PCIROOT(0)#PCI(0300)#PCI(0000)'
run 0 "$GPUPV_PREP" host-script -o "$TMP/collect.ps1"
parse "$TMP/a.ps1" "$TMP/b.ps1" "$TMP/c.ps1" "$TMP/collect.ps1" \
  "$top_srcdir"/tests/data/script/*.ps1 || fail "an emitted script does not parse"
grep -q "VMName = 'O''Brien \$env:X \`\"; Remove-Item'" "$TMP/a.ps1" ||
  fail "the VM name is not a single-quoted literal"
# With nothing staged the package list is empty and still parses.
run 0 "$GPUPV_PREP" remove "$TMP/g.raw"
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG" --script "$TMP/d.ps1"
parse "$TMP/d.ps1" || fail "script after re-staging does not parse"
pass "GPU-PV, DDA and collector scripts parse with tree-sitter-powershell"
