#!/bin/sh
# A host bundle as the collector makes it for a GPU whose driver is a set
# of packages (AMD's: the display package, CopyINF companions for OpenGL
# and Vulkan, an extension INF, a software component): every package
# staged under its own folder name with its role (sleuthkit reads the
# folders back), the manifest and inspect keep roles and GPU, an update
# of the set replaces all of it (a package the new set drops goes too), a
# second GPU's set leaves the first's alone, remove clears everything,
# and bundles or manifests with lies in them are refused.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit jq zip fls istat sfdisk

GPU1='\\?\PCI#VEN_1002&DEV_73BF&SUBSYS_0E3A1002&REV_C1#6&1a2b3c4d&0&00000019#{064092b3-625e-43bf-9eb5-dc845897dd59}\GPUPARAV'
GPU2='\\?\PCI#VEN_1002&DEV_744C&SUBSYS_0E3A1002&REV_C8#6&5e6f7a8b&0&00000019#{064092b3-625e-43bf-9eb5-dc845897dd59}\GPUPARAV'
IMG=$TMP/d.img
mkgpt_windows "$IMG"

# pkg DIR INF VERSION: a package folder holding its INF and one file.
pkg() {
  mkdir -p "$1"
  printf '[Version]\r\nDriverVer = 05/10/2024,%s\r\n' "$3" >"$1/$2"
  head -c 3000 /dev/urandom >"$1/$2.bin"
}
jsesc() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }
# bundle OUT GPU VERSION HASH ROLE=INF...: a zip as collect.ps1 writes it.
bundle() {
  out=$1 gpu=$2 ver=$3 hash=$4
  shift 4
  d=$TMP/b.$(basename "$out" .zip)
  rm -rf "$d"
  mkdir -p "$d"
  list= dev=
  for ri in "$@"; do
    role=${ri%%=*} inf=${ri#*=}
    folder=${inf}_amd64_$hash
    pkg "$d/$folder" "$inf" "$ver"
    [ "$role" = device ] && dev=$folder
    list="$list${list:+,}{\"folder\": \"$folder\", \"role\": \"$role\", \"driver_ver\": \"$ver\"}"
  done
  # EXTRAS: files from System32/SysWOW64 ("DIR/NAME"), holding $ver.
  ex=
  for e in ${EXTRAS:-}; do
    mkdir -p "$d/extras/${e%/*}"
    echo "$ver $e" >"$d/extras/$e"
    ex="$ex${ex:+,}{\"file\": \"extras/$e\", \"path\": \"C:\\\\Windows\\\\${e%/*}\\\\${e#*/}\"}"
  done
  cat >"$d/gpupv-bundle.json" <<EOF
{"format": 1, "tool": "gpupv-prep host-script", "host_build": 26100,
 "gpus": [{"name": "AMD Radeon RX 6800", "instance_path": "$(jsesc "$gpu")",
   "inf_path": "oem7.inf", "install_section": "ati2mtag_Navi21",
   "driver_version": "$ver", "package": "$dev", "packages": [$list],
   "extras": [$ex]}],
 "reg": []}
EOF
  rm -f "$out"
  (cd "$d" && zip -qr "$out" .)
}
SET1="device=u0401234.inf companion=amdogl.inf companion=amdvlk.inf extension=amdxe.inf component=amdfendr.inf"
EXTRAS="System32/amdxx64.dll SysWOW64/amdxx32.dll" \
  bundle "$TMP/set1.zip" "$GPU1" 31.0.24027.1012 1111111111111111 $SET1
# The guest has a SysWOW64, and a System32 file of its own that an extra
# replaces (kept, and put back by remove).
echo "the guest's own" >"$TMP/own.dll"
"$IMGTOOL" put "$IMG" 3 Windows/System32/amdxx64.dll "$TMP/own.dll"
"$IMGTOOL" put "$IMG" 3 Windows/SysWOW64/kernel32.dll "$TMP/own.dll"
"$IMGTOOL" put "$IMG" 3 Windows/System32/DriverStore/FileRepository/own.inf_amd64_0/own.inf "$TMP/own.dll"

run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/set1.zip" --driverstore-links --json
expect_eq "$(jqv '[.system_files[] | select(.action == "linked")] | length')" 5 "set 1: a junction per package"
jqv '.packages[] | .name + " " + .role + " " + .action' | sort >"$TMP/got"
sort >"$TMP/want" <<'EOF'
amdfendr.inf_amd64_1111111111111111 component stage
amdogl.inf_amd64_1111111111111111 companion stage
amdvlk.inf_amd64_1111111111111111 companion stage
amdxe.inf_amd64_1111111111111111 extension stage
u0401234.inf_amd64_1111111111111111 device stage
EOF
diff -u "$TMP/want" "$TMP/got" || fail "set 1: packages and roles"
expect_eq "$(jqv '[.packages[].gpu] | unique | join(" ")')" "$GPU1" "set 1: the GPU of every package"
# listed: the staged package folders, as sleuthkit reads them.  An index
# block that emptied stays allocated to the folder but unused ($BITMAP 0),
# as Windows leaves it too; fls still lists its stale entries as if in
# use, so each entry's MFT record must be allocated as well.
listed() {
  off=$(sfdisk -J "$IMG" | jq ".partitiontable.partitions[2].start")
  fls -r -p -u -o "$off" "$IMG" |
    sed -n 's|^d/d \([0-9]*\)-.*	Windows/System32/HostDriverStore/FileRepository/\([^/]*\)$|\1 \2|p' |
    while read -r ino name; do
      istat -o "$off" "$IMG" "$ino" | grep -q '^Allocated Directory$' && echo "$name"
    done | sort
}
listed >"$TMP/folders"
sed 's/ .*//' "$TMP/want" | sort | diff -u - "$TMP/folders" || fail "set 1: folders on the volume"
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/m.json"
expect_eq "$(jq -r '.packages[] | select(.name | startswith("amdxe")) | .role' "$TMP/m.json")" extension \
  "manifest role"
# The extras, where they came from, tied to the device package.
for e in System32/amdxx64.dll SysWOW64/amdxx32.dll; do
  guest_file "$IMG" raw "Windows/$e" "$TMP/x" || fail "extra $e not placed"
  expect_eq "$(cat "$TMP/x")" "31.0.24027.1012 $e" "extra $e"
done
expect_eq "$(jq -r '.system_files[] | select(.dest | endswith("amdxx64.dll")) | .package + " " + .source + " " + (.backup // "-")' "$TMP/m.json")" \
  'u0401234.inf_amd64_1111111111111111 extras/System32/amdxx64.dll \Windows\System32\HostDriverStore\gpupv-prep-originals\System32\amdxx64.dll' \
  "manifest: the extra and the original it replaced"
run 0 "$GPUPV_PREP" inspect --json "$IMG"
expect_eq "$(jqv '[.host_driver_store[].role] | join(" ")')" "device companion companion extension component" \
  "inspect: grouped, in role order"
run 0 "$GPUPV_PREP" inspect "$IMG"
grep -q -F -x " GPU $GPU1" "$TMP/out" || fail "inspect: no heading for the GPU: $(cat "$TMP/out")"
run 0 "$GPUPV_PREP" verify "$IMG" --json
expect_eq "$(jqv .verified)" true "verify set 1"
after=$(sha "$IMG")
run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/set1.zip" --json
expect_eq "$(jqv .changed)" false "set 1 re-run"
expect_eq "$(sha "$IMG")" "$after" "set 1 re-run changed the image"
pass "a GPU's set staged with roles; manifest, inspect and verify agree; re-run unchanged"

# The next driver: new folders for the set, and no component any more.
EXTRAS="System32/amdxx64.dll SysWOW64/amdxx32.dll" \
  bundle "$TMP/set2.zip" "$GPU1" 31.0.24033.1003 2222222222222222 \
  device=u0401234.inf companion=amdogl.inf companion=amdvlk.inf extension=amdxe.inf
run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/set2.zip" --json
expect_eq "$(jqv '[.packages[] | select(.action == "remove")] | length')" 5 "set 2: the whole old set goes"
expect_eq "$(jqv '[.packages[] | select(.action == "stage")] | length')" 4 "set 2: the new set comes"
# Junctions follow the set: one per new package, none for the dropped one.
expect_eq "$(jqv '[.system_files[] | select(.action == "linked") | .path | sub(".*\\\\"; "")] | sort | join(" ")')" \
  "amdogl.inf_amd64_2222222222222222 amdvlk.inf_amd64_2222222222222222 amdxe.inf_amd64_2222222222222222 u0401234.inf_amd64_2222222222222222" \
  "set 2: junctions"
listed >"$TMP/folders"
printf '%s\n' amdogl.inf_amd64_2222222222222222 amdvlk.inf_amd64_2222222222222222 \
  amdxe.inf_amd64_2222222222222222 u0401234.inf_amd64_2222222222222222 |
  diff -u - "$TMP/folders" || fail "set 2: folders on the volume"
guest_file "$IMG" raw Windows/System32/amdxx64.dll "$TMP/x" || fail "set 2: extra gone"
expect_eq "$(cat "$TMP/x")" "31.0.24033.1003 System32/amdxx64.dll" "set 2: the extra updated"
pass "an update replaces the whole set, the dropped component too, and its extras"

# Another GPU's set leaves the first GPU's alone.
bundle "$TMP/gpu2.zip" "$GPU2" 31.0.24033.1003 3333333333333333 device=u0412345.inf companion=amdogl2.inf
run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/gpu2.zip" --json
expect_eq "$(jqv '[.packages[] | select(.action == "remove")] | length')" 0 "second GPU: nothing removed"
expect_eq "$(listed | wc -l)" 6 "second GPU: both sets staged"
run 0 "$GPUPV_PREP" inspect "$IMG"
expect_eq "$(grep -c '^ GPU ' "$TMP/out")" 2 "inspect: one heading per GPU"
pass "a second GPU's set is staged beside the first"

# remove clears every package of every set.
run 0 "$GPUPV_PREP" remove "$IMG" --json
expect_eq "$(jqv '[.packages[] | select(.action == "remove")] | length')" 6 "remove: all packages"
expect_eq "$(listed | wc -l)" 0 "remove: folders left ($(listed))"
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/x" &&
  fail "remove left the manifest"
guest_file "$IMG" raw Windows/System32/amdxx64.dll "$TMP/x" || fail "remove: the original is gone"
expect_eq "$(cat "$TMP/x")" "the guest's own" "remove: the guest's own file put back"
guest_file "$IMG" raw Windows/SysWOW64/amdxx32.dll "$TMP/x" && fail "remove left an extra"
pass "remove clears all sets and their extras, originals put back"

# Lies in a bundle: bad input (exit 10), the image untouched.
lie() {  # JQ-FILTER PATTERN
  rm -rf "$TMP/lie"
  mkdir "$TMP/lie"
  (cd "$TMP/lie" && unzip -q "$TMP/set1.zip")
  jq "$1" "$TMP/lie/gpupv-bundle.json" >"$TMP/lie.json"
  mv "$TMP/lie.json" "$TMP/lie/gpupv-bundle.json"
  before=$(sha "$IMG")
  run 10 "$GPUPV_PREP" stage "$IMG" "$TMP/lie"
  grep -q -- "$2" "$TMP/err" || fail "bundle lie $1: $(cat "$TMP/err")"
  expect_eq "$(sha "$IMG")" "$before" "bundle lie $1: the image changed"
}
requires unzip
lie '.gpus[0].packages[0].folder = "absent.inf_amd64_0"' 'lists the package absent.inf_amd64_0, which the bundle does not hold'
lie '.gpus[0].packages[1].role = "driver"' 'is not a list of package folders with a role'
lie '.gpus[0].packages[1].folder = "../../etc"' 'is not a list of package folders with a role'
lie '.gpus[0].extras[0].path = "C:\\Program Files\\AMD\\amdxx64.dll"' 'extras\[0\] is not a file of the bundle from'
lie '.gpus[0].extras[0].path = "C:\\Windows\\System32\\drivers\\x.sys"' 'extras\[0\] is not a file of the bundle from'
lie '.gpus[0].extras[0].file = "../../../etc/passwd"' 'extras\[0\] is not a file of the bundle from'
lie '.gpus[0].extras[1].file = "extras/none.dll"' 'names extras/none.dll, which the bundle does not hold'
# A folder of the bundle that is a link out of it.
rm -rf "$TMP/lie" "$TMP/outside"
mkdir -p "$TMP/lie" "$TMP/outside"
(cd "$TMP/lie" && unzip -q "$TMP/set1.zip")
echo secret >"$TMP/outside/amdxx64.dll"
rm -rf "$TMP/lie/extras/System32"
ln -s "$TMP/outside" "$TMP/lie/extras/System32"
before=$(sha "$IMG")
run 10 "$GPUPV_PREP" stage "$IMG" "$TMP/lie"
grep -q 'names extras/System32/amdxx64.dll, which the bundle does not hold' "$TMP/err" ||
  fail "a linked extras folder: $(cat "$TMP/err")"
expect_eq "$(sha "$IMG")" "$before" "a linked extras folder: the image changed"
pass "bundles listing absent packages or files, unknown roles, paths outside System32/SysWOW64 or folders linked out are refused"

# A manifest whose package claims a role gpupv-prep does not write.
run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/set1.zip"
guest_file "$IMG" raw Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/m.json"
jq -c '.packages[0].role = "administrator"' "$TMP/m.json" >"$TMP/lie.json"
"$IMGTOOL" put "$IMG" 3 Windows/System32/HostDriverStore/gpupv-prep.json "$TMP/lie.json"
before=$(sha "$IMG")
run 3 "$GPUPV_PREP" remove "$IMG"
grep -q 'has a role or GPU gpupv-prep does not write' "$TMP/err" || fail "manifest role: $(cat "$TMP/err")"
expect_eq "$(sha "$IMG")" "$before" "manifest role lie: the image changed"
pass "a manifest role gpupv-prep does not write is refused"
