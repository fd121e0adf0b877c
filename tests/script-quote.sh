#!/bin/sh
# Data in the Hyper-V script stays data: a VM name, a GPU path and a
# DriverVer holding every quote PowerShell knows (' and U+2018-U+201B end
# a single-quoted string), control characters and bytes that are not
# UTF-8 leave the script's code exactly as it is with plain values.  The
# judge is tests/ps-quotes.mjs, a tokenizer with PowerShell's own quoting
# rules (the tree-sitter grammar does not know U+2018-U+201B); the JSON and
# NanaBox outputs must be valid UTF-8 too.
. "$(dirname "$0")/functions.sh"
requires node jq qemu-img sgdisk mkntfs hivexregedit iconv
q() { node "$top_srcdir/tests/ps-quotes.mjs" "$@"; }

# The tokenizer must see an injection, or a pass means nothing.
printf "\$a = 'x\xe2\x80\x99; Remove-Item C:\\\\; \xe2\x80\x98y'\n" >"$TMP/inj.ps1"
printf "\$a = 'x; Remove-Item C:\\\\; y'\n" >"$TMP/ok.ps1"
[ "$(q skeleton "$TMP/inj.ps1")" != "$(q skeleton "$TMP/ok.ps1")" ] ||
  fail "the tokenizer does not see a string ended by U+2019"

mkgpt_windows "$TMP/g.raw"
cp "$TMP/g.raw" "$TMP/h.raw"
mkpkg() {  # DIR DRIVERVER
  mkdir -p "$1"
  printf '[Version]\r\nDriverVer = 10/23/2023,%s\r\n' "$2" >"$1/nv_dispig.inf"
  echo x >"$1/nvlddmkm.sys"
}
RS=$(printf '\xe2\x80\x99') LS=$(printf '\xe2\x80\x98') LO=$(printf '\xe2\x80\x9a')
HI=$(printf '\xe2\x80\x9b') ESC=$(printf '\033') BAD=$(printf '\377')
EVIL="31.0${RS}+\$(Start-Process calc)+${LS}x${HI}${LO}'"
mkpkg "$TMP/p1/nv_dispig.inf_amd64_1111111111111111" "31.0.15.4601"
mkpkg "$TMP/p2/nv_dispig.inf_amd64_1111111111111111" "$EVIL"
VM_EVIL="Bob${RS}s VM${LS}; Remove-Item C:\\ -Recurse; ${HI}'${ESC}[31m${BAD}"
GPU_EVIL="\\\\?\\PCI#${LO}\$(calc)${RS}#GPUPARAV"
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$TMP/p1/nv_dispig.inf_amd64_1111111111111111" \
  --script "$TMP/plain.ps1" --vm-name "Bobs VM" --gpu 'PCI#x#GPUPARAV' --nanabox "$TMP/plain.7b"
run 0 "$GPUPV_PREP" stage "$TMP/h.raw" "$TMP/p2/nv_dispig.inf_amd64_1111111111111111" \
  --script "$TMP/evil.ps1" --vm-name "$VM_EVIL" --gpu "$GPU_EVIL" --nanabox "$TMP/evil.7b"
q skeleton "$TMP/plain.ps1" >"$TMP/plain.skel" || fail "plain script: tokenizer"
q skeleton "$TMP/evil.ps1" >"$TMP/evil.skel" || fail "hostile script: tokenizer"
# The values with control characters are concatenations: ('a' + [char]0x1b + 'b').
sed -E "s/\('\?'( \+ \[char\]0x[0-9a-f]+( \+ '\?')?)+\)/'?'/g" "$TMP/evil.skel" >"$TMP/evil.norm"
diff -u "$TMP/plain.skel" "$TMP/evil.norm" >&2 ||
  fail "hostile values change the script's code"
# And the literals hold the values as given (U+FFFD for the byte that is not
# UTF-8, the escape outside the quotes).
q literals "$TMP/evil.ps1" >"$TMP/lits"
grep -q -F "\"Bob${RS}s VM${LS}; Remove-Item C:\\\\ -Recurse; ${HI}'\"" "$TMP/lits" ||
  fail "the VM name literal: $(head -3 "$TMP/lits")"
grep -q -F "\"10/23/2023,31.0${RS}+\$(Start-Process calc)+${LS}x${HI}${LO}'\"" "$TMP/lits" ||
  fail "the DriverVer literal: $(cat "$TMP/lits")"
grep -q '\[char\]0x1b' "$TMP/evil.ps1" || fail "the escape character is not outside the quotes"
! grep -q "$ESC" "$TMP/evil.ps1" || fail "a raw escape character in the script"
iconv -f UTF-8 -t UTF-8 "$TMP/evil.ps1" >/dev/null || fail "the script is not valid UTF-8"
if [ -d "$top_srcdir/tests/node_modules/tree-sitter-powershell" ]; then
  node "$top_srcdir/tests/ps-parse.mjs" "$TMP/evil.ps1" || fail "tree-sitter: hostile script"
fi
pass "hostile VM name, GPU path and DriverVer stay data in the script"

# script IMAGE rebuilds the script from the guest's manifest: the same.
run 0 "$GPUPV_PREP" script "$TMP/h.raw" -o "$TMP/again.ps1"
cmp -s "$TMP/evil.ps1" "$TMP/again.ps1" || fail "script from the manifest differs"
# NanaBox and --json: valid UTF-8, valid JSON.
tail -c +4 "$TMP/evil.7b" | jq -e .NanaBox.Name >/dev/null || fail "NanaBox file is not JSON"
iconv -f UTF-8 -t UTF-8 "$TMP/evil.7b" >/dev/null || fail "NanaBox file is not valid UTF-8"
run 0 "$GPUPV_PREP" inspect --json "$TMP/h.raw"
iconv -f UTF-8 -t UTF-8 "$TMP/out" >/dev/null || fail "inspect --json is not valid UTF-8"
jq -e . "$TMP/out" >/dev/null || fail "inspect --json is not JSON"
pass "script IMAGE, NanaBox and --json carry the same values safely"

# A field too long for a script is refused, not cut.
long=$(head -c 3000 /dev/zero | tr '\0' 'v')
run 1 "$GPUPV_PREP" script "$TMP/h.raw" -o "$TMP/long.ps1" --vm-name "$long"
grep -q "VM name is longer than" "$TMP/err" || fail "long VM name: $(cat "$TMP/err")"
[ ! -e "$TMP/long.ps1" ] || fail "a script was written for a refused VM name"
pass "an overlong value is refused"
