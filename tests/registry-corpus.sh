#!/bin/sh
# The hive layer on Windows-made input (../shared/corpus): real SYSTEM
# hives take the real nvlddmkm and display-class exports exactly as
# hivexregedit --merge does (with the HostDriverStore rewrite applied to
# its input by sed); the dirty hive with its logs is replayed, the dirty
# ones without are refused; the NVIDIA INF's CopyToVm lines place exactly
# the files they name; real INFs parse; hivex's odd Unicode names survive.
. "$(dirname "$0")/functions.sh"
requires_corpus
requires qemu-img sgdisk mkntfs hivexregedit regfexport fls icat jq iconv \
  sfdisk xz awk

H=$CORPUS/hives
R=$CORPUS/reg/derived-from-real-hives
SYS=Windows/System32/config/SYSTEM
for f in regipy_SYSTEM regipy_SYSTEM_2 regipy_SYSTEM_WIN_10_1709 \
    regipy_SYSTEM_B regipy_SYSTEM_B.LOG1 regipy_SYSTEM_B.LOG2; do
  xz -dc "$H/$f.xz" >"$TMP/$f" || fail "cannot unpack $f"
done
REGS="$R/SYSTEM_B_ControlSet001_Services_nvlddmkm.hivexregedit.reg
$R/SYSTEM_B_ControlSet001_Control_Class_Display.hivexregedit.reg
$R/SYSTEM_WIN_10_1709_ControlSet001_Control_Class_Display.hivexregedit.reg"

# The rewrite, done on the exports' text: \DriverStore\ in UTF-16LE hex.
DS=$(utf16 '\DriverStore\' | sed 's/,00,00$//')
HDS=$(utf16 '\HostDriverStore\' | sed 's/,00,00$//')
n=0
for r in $REGS; do
  n=$((n + 1))
  sed "s/$DS/$HDS/g" "$r" >"$TMP/ref$n.reg"
  # As regedit writes: hex wrapped at 80 columns with '\', CRLF, UTF-16LE.
  awk '{
    line = $0
    while (length(line) > 80 && match(substr(line, 60), /,/)) {
      cut = 59 + RSTART
      printf "%s\\\n", substr(line, 1, cut)
      line = "  " substr(line, cut + 1)
    }
    print line
  }' "$r" | sed 's/$/\r/' >"$TMP/wrap$n.txt"
  { printf '\377\376'; iconv -f UTF-8 -t UTF-16LE "$TMP/wrap$n.txt"; } >"$TMP/wrap$n.reg"
done
grep -c "$HDS" "$TMP"/ref*.reg | awk -F: '{ s += $2 } END { exit s < 5 }' ||
  fail "the exports hold no DriverStore paths to rewrite"

# img HIVE [LOG1 LOG2]: a guest disk holding HIVE as its SYSTEM hive.
img() {
  mkgpt_windows "$TMP/d.img"
  "$IMGTOOL" put "$TMP/d.img" 3 $SYS "$1"
  [ $# -lt 3 ] || {
    "$IMGTOOL" put "$TMP/d.img" 3 $SYS.LOG1 "$2"
    "$IMGTOOL" put "$TMP/d.img" 3 $SYS.LOG2 "$3"
  }
}

# import NAME HIVE [LOGS]: stage both forms of the three exports; return
# the edited hive in $TMP/NAME.plain / .wrapped.
import() {
  name=$1; shift
  img "$@"
  run 0 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/ref0.reg" \
    --reg "$R/SYSTEM_B_ControlSet001_Services_nvlddmkm.hivexregedit.reg" \
    --reg "$R/SYSTEM_B_ControlSet001_Control_Class_Display.hivexregedit.reg" \
    --reg "$R/SYSTEM_WIN_10_1709_ControlSet001_Control_Class_Display.hivexregedit.reg" --json
  cp "$TMP/out" "$TMP/$name.json"
  guest_file "$TMP/d.img" raw $SYS "$TMP/$name.plain" || fail "$name: SYSTEM gone"
  img "$@"
  run 0 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/ref0.reg" --reg "$TMP/wrap1.reg" \
    --reg "$TMP/wrap2.reg" --reg "$TMP/wrap3.reg"
  guest_file "$TMP/d.img" raw $SYS "$TMP/$name.wrapped" || fail "$name: SYSTEM gone"
  for f in plain wrapped; do
    set -- $("$IMGTOOL" regf "$TMP/$name.$f")
    expect_eq "$3 $4" "clean sum-ok" "$name ($f): base block after the edit"
    hive_export "$TMP/$name.$f" "$TMP/$name.$f.reg"
  done
  diff -q "$TMP/$name.plain.reg" "$TMP/$name.wrapped.reg" >/dev/null ||
    fail "$name: the UTF-16LE wrapped exports gave another hive"
}

# A marker every run sets, so that a hive is written even where the
# exports change nothing (importing a hive's own keys into it).
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\gpupv-test]\r\n"Marker"=dword:00000001\r\n' >"$TMP/ref0.reg"

# The reference: hivexregedit --merge of the same edits.
reference() {
  cp "$1" "$TMP/ref.hive"
  for r in "$TMP/ref0.reg" "$TMP/ref1.reg" "$TMP/ref2.reg" "$TMP/ref3.reg"; do
    tr -d '\r' <"$r" >"$TMP/m.reg"
    hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$TMP/ref.hive" "$TMP/m.reg" ||
      fail "hivexregedit --merge $r"
  done
  hive_export "$TMP/ref.hive" "$2"
}

# A clean hive (Windows 10 with an NVIDIA GPU's exports from another).
import clean "$TMP/regipy_SYSTEM"
reference "$TMP/regipy_SYSTEM" "$TMP/clean.ref.reg"
diff -u "$TMP/clean.ref.reg" "$TMP/clean.plain.reg" >"$TMP/diff" ||
  fail "regipy_SYSTEM: differs from hivexregedit --merge: $(head -20 "$TMP/diff")"
pass "regipy_SYSTEM: imports equal hivexregedit --merge, UTF-16LE wrapped form too"
# Setting a value rewrites its whole key in hivex; the edits of one key
# are written together, so the hive grows as much as hivexregedit's own
# merge makes it grow (it was 14.85 MB where the merge gives 11.85 MB).
ours=$(stat -c %s "$TMP/clean.plain") ref=$(stat -c %s "$TMP/ref.hive")
[ $((ours * 100)) -le $((ref * 101)) ] ||
  fail "regipy_SYSTEM: the imports grew the hive to $ours bytes; hivexregedit --merge: $ref"
pass "regipy_SYSTEM: $(stat -c %s "$TMP/regipy_SYSTEM") bytes, $ours after the imports (hivexregedit --merge: $ref)"

# Stage/remove cycles: hivex frees cells it never reuses; the hive is
# rewritten with only the cells in use, so cycles do not pile them up.
# Each state is read back by hivex and libregf (hive_export); remove restores the
# original contents every time.
img "$TMP/regipy_SYSTEM"
hive_export "$TMP/regipy_SYSTEM" "$TMP/orig.reg"
sizes=
for c in 1 2 3; do
  run 0 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/ref0.reg" --reg "$TMP/ref1.reg" \
    --reg "$TMP/ref2.reg" --reg "$TMP/ref3.reg"
  guest_file "$TMP/d.img" raw $SYS "$TMP/cy.staged" || fail "cycle $c: SYSTEM gone"
  hive_export "$TMP/cy.staged" "$TMP/cy.staged.reg"
  diff -q "$TMP/clean.ref.reg" "$TMP/cy.staged.reg" >/dev/null ||
    fail "cycle $c: the staged hive differs from hivexregedit --merge"
  run 0 "$GPUPV_PREP" remove "$TMP/d.img"
  guest_file "$TMP/d.img" raw $SYS "$TMP/cy.removed" || fail "cycle $c: SYSTEM gone"
  hive_export "$TMP/cy.removed" "$TMP/cy.removed.reg"
  diff -q "$TMP/orig.reg" "$TMP/cy.removed.reg" >/dev/null ||
    fail "cycle $c: remove did not restore the hive"
  for f in staged removed; do
    set -- $("$IMGTOOL" regf "$TMP/cy.$f")
    expect_eq "$3 $4" "clean sum-ok" "cycle $c ($f): base block"
  done
  sizes="$sizes $(stat -c %s "$TMP/cy.staged") $(stat -c %s "$TMP/cy.removed")"
done
set -- $sizes
[ "$5" -le "$1" ] && [ "$6" -le "$2" ] ||
  fail "three stage/remove cycles grew the hive: $sizes (staged, removed per cycle)"
[ "$1" -lt "$ref" ] ||
  fail "the staged hive ($1 bytes) is no smaller than hivexregedit --merge's ($ref)"
pass "regipy_SYSTEM: three stage/remove cycles, staged/removed sizes:$sizes (original $(stat -c %s "$TMP/regipy_SYSTEM"), merge $ref)"

# The dirty hive with its logs: replayed, then imported.
import dirty "$TMP/regipy_SYSTEM_B" "$TMP/regipy_SYSTEM_B.LOG1" "$TMP/regipy_SYSTEM_B.LOG2"
jq -r '.warnings[]' "$TMP/dirty.json" | grep -q 'was dirty; 24 entries of its transaction logs were replayed' ||
  fail "SYSTEM_B: replay not reported: $(cat "$TMP/dirty.json")"
# The replayed base, by a run that only sets the marker; the imports on it
# must equal hivexregedit's merge of them on that base.
img "$TMP/regipy_SYSTEM_B" "$TMP/regipy_SYSTEM_B.LOG1" "$TMP/regipy_SYSTEM_B.LOG2"
run 0 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/ref0.reg"
guest_file "$TMP/d.img" raw $SYS "$TMP/replayed" || fail "SYSTEM_B gone"
set -- $("$IMGTOOL" regf "$TMP/replayed")
expect_eq "$3 $4" "clean sum-ok" "SYSTEM_B after replay"
[ "$1" -gt 2130 ] || fail "SYSTEM_B: sequence $1 is not past the last log entry (2130)"
reference "$TMP/replayed" "$TMP/dirty.ref.reg"
diff -u "$TMP/dirty.ref.reg" "$TMP/dirty.plain.reg" >"$TMP/diff" ||
  fail "SYSTEM_B: differs from hivexregedit --merge: $(head -20 "$TMP/diff")"
# The logs held data the primary lacked.
hivexregedit --export --unsafe-printable-strings "$TMP/regipy_SYSTEM_B" '\' >"$TMP/primary.reg" 2>/dev/null ||
  hivexregedit --export "$TMP/regipy_SYSTEM_B" '\' >"$TMP/primary.reg"
hive_export "$TMP/replayed" "$TMP/replayed.reg"
cmp -s "$TMP/primary.reg" "$TMP/replayed.reg" && fail "SYSTEM_B: the replay changed nothing"
pass "regipy_SYSTEM_B: .LOG1/.LOG2 replayed (to sequence $1), then imports equal hivexregedit --merge"

# Dirty hives without their logs: refused, image untouched.
for h in regipy_SYSTEM_B regipy_SYSTEM_2 regipy_SYSTEM_WIN_10_1709; do
  img "$TMP/$h"
  before=$(sha "$TMP/d.img")
  run 6 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/ref0.reg"
  grep -q "hive is dirty" "$TMP/err" || fail "$h: $(cat "$TMP/err")"
  expect_eq "$(sha "$TMP/d.img")" "$before" "$h: refused, yet the image changed"
done
pass "dirty hives without logs refused, images unchanged"

# hivex's special hive (odd Unicode names) as SOFTWARE: an edit keeps them.
cp "$CORPUS/hives/hivex_special" "$TMP/special"
chmod u+w "$TMP/special"
mkgpt_windows "$TMP/d.img"
"$IMGTOOL" put "$TMP/d.img" 3 Windows/System32/config/SOFTWARE "$TMP/special"
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\gpupv]\r\n"v"="1"\r\n' >"$TMP/sw.reg"
run 0 "$GPUPV_PREP" stage "$TMP/d.img" --reg "$TMP/sw.reg"
guest_file "$TMP/d.img" raw Windows/System32/config/SOFTWARE "$TMP/special.new"
tr -d '\r' <"$TMP/sw.reg" >"$TMP/m.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$TMP/special" "$TMP/m.reg"
hive_export "$TMP/special" "$TMP/special.ref.reg"
hive_export "$TMP/special.new" "$TMP/special.new.reg"
diff -u "$TMP/special.ref.reg" "$TMP/special.new.reg" || fail "hivex_special: names changed"
grep -q '[^ -~]' "$TMP/special.new.reg" || fail "hivex_special: no non-ASCII names to check"
pass "hivex_special: odd Unicode names survive an edit"

# The NVIDIA 546.01 INF with a package of the files its CopyToVm lines
# name: exactly those land in System32 and SysWOW64.
NV=$CORPUS/inf/vendor-proprietary/nvidia_546.01_nv_dispig.inf
PKG="$TMP/src/nv_dispig.inf_amd64_5b1a6b0c1d2e3f40"
mkdir -p "$PKG"
cp "$NV" "$PKG/nv_dispig.inf"
for f in nvcudadebugger.dll nvcuda_loader64.dll nvcuvid64.dll nvEncodeAPI64.dll \
    nvapi64.dll nvml_loader.dll OpenCL64.dll vulkan-1-x64.dll nvcuda_loader32.dll \
    nvcuvid32.dll nvEncodeAPI.dll nvapi.dll OpenCL32.dll vulkan-1-x86.dll; do
  echo "$f" >"$PKG/$f"
done
mkgpt_windows "$TMP/d.img"
"$IMGTOOL" put "$TMP/d.img" 3 Windows/SysWOW64/kernel32.dll "$TMP/sw.reg"
run 0 "$GPUPV_PREP" stage "$TMP/d.img" "$PKG" --json
jqv '.system_files[] | .path + " " + (.source | sub(".*\\\\"; ""))' | sort >"$TMP/got"
sort >"$TMP/want" <<'EOF'
\Windows\SysWOW64\OpenCL.dll OpenCL32.dll
\Windows\SysWOW64\nvEncodeAPI.dll nvEncodeAPI.dll
\Windows\SysWOW64\nvapi.dll nvapi.dll
\Windows\SysWOW64\nvcuda.dll nvcuda_loader32.dll
\Windows\SysWOW64\nvcuvid.dll nvcuvid32.dll
\Windows\SysWOW64\vulkan-1.dll vulkan-1-x86.dll
\Windows\System32\OpenCL.dll OpenCL64.dll
\Windows\System32\nvEncodeAPI64.dll nvEncodeAPI64.dll
\Windows\System32\nvapi64.dll nvapi64.dll
\Windows\System32\nvcuda.dll nvcuda_loader64.dll
\Windows\System32\nvcudadebugger.dll nvcudadebugger.dll
\Windows\System32\nvcuvid.dll nvcuvid64.dll
\Windows\System32\nvml.dll nvml_loader.dll
\Windows\System32\vulkan-1.dll vulkan-1-x64.dll
EOF
diff -u "$TMP/want" "$TMP/got" || fail "NVIDIA CopyToVm: other files than its 67 lines name"
guest_file "$TMP/d.img" raw Windows/SysWOW64/nvcuda.dll "$TMP/x" || fail "SysWOW64/nvcuda.dll missing"
cmp -s "$TMP/x" "$PKG/nvcuda_loader32.dll" || fail "SysWOW64/nvcuda.dll is not nvcuda_loader32.dll"
guest_file "$TMP/d.img" raw Windows/System32/nvml.dll "$TMP/x" || fail "System32/nvml.dll missing"
cmp -s "$TMP/x" "$PKG/nvml_loader.dll" || fail "System32/nvml.dll is not nvml_loader.dll"
expect_eq "$(jqv '.packages[0].driver_ver')" "10/26/2023,31.0.15.4601" "NVIDIA DriverVer"
pass "NVIDIA 546.01: its CopyToVm lines place exactly 14 files under their guest names"

# Real INFs parse: UTF-16LE Intel, Microsoft's samples.
for inf in vendor-proprietary/intel_igdlh64_10.18.15.4256_utf16le.inf:07/17/2015,10.18.15.4256 \
    open/ms-sample_KMDOD_sampledisplay.inf:03/15/2011,0.03.15.0011 \
    open/ms-sample_IddSampleDriver.inf:null; do
  file=${inf%%:*} dv=${inf#*:}
  P="$TMP/inf/$(basename "$file" .inf).inf_amd64_0000000000000000"
  mkdir -p "$P"
  cp "$CORPUS/inf/$file" "$P/$(basename "$file")"
  mkgpt_windows "$TMP/d.img"
  run 0 "$GPUPV_PREP" stage --dry-run "$TMP/d.img" "$P" --json
  expect_eq "$(jqv '.packages[0].driver_ver')" "$dv" "$file: DriverVer"
done
pass "the Intel UTF-16LE INF and Microsoft's sample INFs parse"
