#!/bin/sh
# The sidecar files: the Hyper-V script (GPU-PV with and without an
# instance path, DDA) against golden files, NanaBox output, `script` from
# a staged image's manifest, the host collector, and a host bundle staged
# end to end.  Parsing with the PowerShell grammar is in script-parse.sh.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit jq zip xxd fls icat iconv sfdisk

GOLD="$top_srcdir/tests/data/script"
GPU='\\?\PCI#VEN_10DE&DEV_2484&SUBSYS_146B10DE&REV_A1#4&2f1e4f4e&0&0008#{064092b3-625e-43bf-9eb5-dc845897dd59}\GPUPARAV'
export SOURCE_DATE_EPOCH=1700000000

PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n' >"$PKG/nv_dispig.inf"
head -c 100000 /dev/urandom >"$PKG/nvlddmkm.sys"

mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx "$TMP/g.raw" "$TMP/g.vhdx"
rm -f "$TMP/g.raw"
cd "$TMP"

# The tool's version and the image's random DiskIdentifier are left out
# of the comparison.
unversioned() {
  sed -e 's/^\(    Written by gpupv-prep\) [^ ]* for/\1 VERSION for/' \
    -e "s/^\(\$StagedDiskIdentifier = \)'{[0-9A-F-]*}'$/\1'{ID}'/" "$1"
}
golden() {  # FILE NAME
  unversioned "$1" >"$TMP/actual"
  diff -u "$GOLD/$2" "$TMP/actual" >"$TMP/diff" || {
    cat "$TMP/diff" >&2
    fail "$2 differs from the golden file (regenerate with GPUPV_GOLDEN=1 after review)"
  }
}
[ -z "${GPUPV_GOLDEN:-}" ] || golden() { unversioned "$1" >"$GOLD/$2"; }

# Staging writes the script with the run's settings; the image is
# named as given (relative here, so the golden file is stable).
run 0 "$GPUPV_PREP" stage g.vhdx "$PKG" --script gpupv.ps1 --vm-name 'Win 11 GPU' \
  --gpu "$GPU" --nanabox vm.7b
golden gpupv.ps1 gpupv-instance.ps1
"$GPUPV_PREP" inspect --json g.vhdx >"$TMP/id.json"
grep -q "^    \[string\]\$InstancePath = '\\\\\\\\?\\\\PCI#VEN_10DE" gpupv.ps1 ||
  fail "instance path default missing"
for f in gpupv.ps1; do
  ! grep -Eq 'Set-VMGpuPartitionAdapter|(Min|Max|Optimal)Partition' "$f" ||
    fail "$f sets partition sizes"
  grep -q '^Test-StagedDriver \$deviceId$' "$f" || fail "$f: no stale-driver check"
  grep -q "Folder = 'nv_dispig.inf_amd64_677da8a9230cea15'; DriverVer = '10/23/2023,31.0.15.4601'" "$f" ||
    fail "$f: staged package not recorded"
  # What the anchors' users learned: ShutDown (TurnOff leaves the guest
  # dirty), no checkpoints, -InstancePath where the cmdlet has it, 64 GB
  # of high MMIO, nothing reported as done under -WhatIf.
  for w in "^\$StopAction = 'ShutDown'" "CheckpointType'\] = 'Disabled'" \
      "AutomaticCheckpointsEnabled'\] = \$false" 'Get-VMSnapshot -VM \$vm' \
      "Parameters.ContainsKey('InstancePath')" 'HighMemoryMappedIoSpace = 68719476736' \
      '^if (-not \$WhatIfPreference) {' '-not \$_.InstancePath -and \$gpus\[0\].Name -eq \$InstancePath'; do
    grep -q -- "$w" "$f" || fail "$f lacks $w"
  done
  ! grep -q 'HostBuild -lt 22000' "$f" || fail "$f still guesses -InstancePath from the build"
  # The VM's disks are compared with the staged image's identifier.
  id=$(jq -r .image.disk_id "$TMP/id.json")
  grep -q "^\$StagedDiskIdentifier = '$id'$" "$f" || fail "$f: DiskIdentifier $id missing"
  grep -q 'Get-VHD -Path \$drive.Path' "$f" || fail "$f: no check of the VM's disks"
done
pass "stage --script: GPU-PV with an instance path matches its golden file"

# NanaBox: BOM, JSON, the fields NanaBox reads.
expect_eq "$(head -c 3 vm.7b | xxd -p)" efbbbf "NanaBox BOM"
tail -c +4 vm.7b >vm.json
jq -e . vm.json >/dev/null || fail "NanaBox file is not JSON"
expect_eq "$(jq -r .NanaBox.Type vm.json)" VirtualMachine "NanaBox Type"
expect_eq "$(jq -r .NanaBox.Version vm.json)" 1 "NanaBox Version"
expect_eq "$(jq -r .NanaBox.GuestType vm.json)" Windows "NanaBox GuestType"
expect_eq "$(jq -r .NanaBox.Name vm.json)" "Win 11 GPU" "NanaBox Name"
expect_eq "$(jq -r .NanaBox.Gpu.AssignmentMode vm.json)" List "NanaBox Gpu"
expect_eq "$(jq -r '.NanaBox.Gpu.SelectedDevices[0]' vm.json)" "$GPU" "NanaBox SelectedDevices"
expect_eq "$(jq -r '.NanaBox.ScsiDevices[0].Path' vm.json)" g.vhdx "NanaBox disk"
jq -e '.NanaBox.ProcessorCount > 0 and .NanaBox.MemorySize > 0' vm.json >/dev/null ||
  fail "NanaBox processors and memory"
pass "NanaBox: BOM, valid JSON, required fields, the instance path selected"

# `script` from the manifest gives the same script; it writes nothing.
before=$(sha g.vhdx)
run 0 "$GPUPV_PREP" script g.vhdx -o again.ps1
cmp -s gpupv.ps1 again.ps1 || fail "script from the manifest differs from stage --script"
run 0 "$GPUPV_PREP" script g.vhdx -o -
cmp -s gpupv.ps1 "$TMP/out" || fail "script -o - is not the script on standard output"
[ ! -e ./- ] || fail "script -o - wrote a file named -"
expect_eq "$(sha g.vhdx)" "$before" "script changed the image"
pass "script IMAGE: defaults come from the staging run; image untouched"

# Without an instance path; DDA.
run 0 "$GPUPV_PREP" script g.vhdx -o default.ps1 --gpu '' --vm-name guest
golden default.ps1 gpupv-default.ps1
grep -q "^    \[string\]\$InstancePath = ''" default.ps1 || fail "default GPU"
run 0 "$GPUPV_PREP" script g.vhdx -o dda.ps1 --dda 'PCIROOT(0)#PCI(0100)#PCI(0000)' --vm-name guest
golden dda.ps1 dda.ps1
for w in Dismount-VMHostAssignableDevice Add-VMAssignableDevice \
    "LocationPath = 'PCIROOT(0)#PCI(0100)#PCI(0000)'" 'HighMemoryMappedIoSpace = 34896609280' \
    'LowMemoryMappedIoSpace = 3221225472' "^\$StopAction = 'TurnOff'" \
    'ProductType -eq 1' 'Get-PnpDeviceProperty -InstanceId \$ids '; do
  grep -q -- "$w" dda.ps1 || fail "DDA script lacks $w"
done
! grep -q Add-VMGpuPartitionAdapter dda.ps1 || fail "DDA script adds a GPU-PV adapter"
# DDA guests use their own driver: no host-driver check, no switch for it.
! grep -Eq 'Test-StagedDriver|SkipDriverCheck|StagedPackages' dda.ps1 ||
  fail "DDA script compares the host's driver with the image"
# A step that fails is undone in the reverse order: mounted back before
# enabled, and only what this run did.
awk '/catch \{/ { c = 1 } c && /Mount-VMHostAssignableDevice -LocationPath/ && !m { m = NR }
  c && /Enable-PnpDevice -InstanceId/ && !e { e = NR }
  END { exit !(m && e && m < e) }' dda.ps1 || fail "DDA script: no rollback, or in the wrong order"
grep -q 'if (\$dismountedHere) {' dda.ps1 && grep -q 'if (\$disabledHere) {' dda.ps1 ||
  fail "DDA script undoes steps it did not do"
# The device lookup asks once, not once per PnP device.
! grep -q 'foreach (\$d in Get-PnpDevice)' dda.ps1 || fail "DDA script queries devices one by one"
# GPU-PV: every package of the set must still be in the host's DriverStore.
grep -q 'Test-Path -LiteralPath (Join-Path \$store \$_.Folder)' default.ps1 ||
  fail "GPU-PV script checks only the device's own package"
pass "script: GPU-PV without an instance path and DDA match their golden files"

# Usage errors.
run 2 "$GPUPV_PREP" script g.vhdx
run 2 "$GPUPV_PREP" script g.vhdx -o x.ps1 --low-mmio lots
run 2 "$GPUPV_PREP" verify g.vhdx --script x.ps1
[ ! -e x.ps1 ] || fail "a refused command wrote a script"

# The host collector.
run 0 "$GPUPV_PREP" host-script -o collect.ps1
for w in Get-VMHostPartitionableGpu DEVPKEY_Device_DriverInfPath DEVPKEY_Device_DriverInfSection \
    Get-WindowsDriver gpupv-bundle.json 'reg.exe export' CreateFromDirectory; do
  grep -q "$w" collect.ps1 || fail "collector lacks $w"
done
# The zip goes beside the script, never into the Windows folder (where an
# elevated PowerShell starts), and the size collected is reported.
grep -q "^    \[string\]\$OutFile = '',\$" collect.ps1 &&
  grep -q '\$dir = \$PSScriptRoot' collect.ps1 &&
  grep -q 'OutFile.StartsWith(\$windir, \[StringComparison\]::OrdinalIgnoreCase)' collect.ps1 ||
  fail "collector may write its zip into System32"
grep -q 'Measure-Object -Property Length -Sum' collect.ps1 || fail "collector does not report the size"
# Every package of the GPU, with its role: CopyINF companions (by the
# device's driver version), extension INFs, software components.
for w in '-match '"'"'^CopyINF' "Role = 'companion'" 'Find-Companion \$name \$version' \
    "DEVPKEY_Device_ExtendedConfigurationIds" "Role = 'extension'" "DEVPKEY_Device_Children" \
    "StartsWith('SWD" "Role = 'component'" 'packages = \$packages' 'driver_ver = \$p.Version'; do
  grep -q -- "$w" collect.ps1 || fail "collector lacks $w"
done
pass "host-script writes the collector"

# A bundle as the collector makes it, staged end to end.
mkdir -p bundle
cp -r "$PKG" bundle/
# Two install sections whose CopyToVm lines clash; the bundle names one.
BP=bundle/$(basename "$PKG")
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n[Section048]\r\nAddReg = a48\r\n[Section049]\r\nAddReg = a49\r\n[a48]\r\nHKR,"CopyToVmOverwrite",F,0x00010000,"x48.dll","x.dll"\r\n[a49]\r\nHKR,"CopyToVmOverwrite",F,0x00010000,"x49.dll","x.dll"\r\n' >"$BP/nv_dispig.inf"
echo 48 >"$BP/x48.dll"
echo 49 >"$BP/x49.dll"
cat >bundle/gpupv-bundle.json <<EOF
{
  "format": 1,
  "tool": "gpupv-prep host-script",
  "host_build": 26100,
  "gpus": [
    {
      "name": "NVIDIA GeForce RTX 3070",
      "instance_path": "$(printf '%s' "$GPU" | sed 's/\\/\\\\/g')",
      "hardware_id": "PCI\\\\VEN_10DE&DEV_2484&SUBSYS_146B10DE&REV_A1",
      "inf_path": "oem12.inf",
      "install_section": "Section048",
      "driver_version": "31.0.15.4601",
      "package": "nv_dispig.inf_amd64_677da8a9230cea15",
      "service": "nvlddmkm"
    }
  ],
  "reg": ["nvlddmkm.reg"]
}
EOF
# As reg.exe export writes it: UTF-16LE, BOM, CRLF; ImagePath as hex(2).
{ printf '\377\376'; printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\nvlddmkm]\r\n"Start"=dword:00000003\r\n"ImagePath"=hex(2):%s\r\n' \
    "$(utf16 '\SystemRoot\System32\DriverStore\FileRepository\nv_dispig.inf_amd64_677da8a9230cea15\nvlddmkm.sys')" |
    iconv -f UTF-8 -t UTF-16LE; } >bundle/nvlddmkm.reg
(cd bundle && zip -qr ../bundle.zip .)
cp g.vhdx b.vhdx
run 0 "$GPUPV_PREP" remove b.vhdx
run 0 "$GPUPV_PREP" stage b.vhdx bundle.zip --json --script b.ps1 --vm-name guest
expect_eq "$(jqv '.packages[0].name')" nv_dispig.inf_amd64_677da8a9230cea15 "bundle package"
expect_eq "$(jqv '.registry.hives_written[0]')" '\Windows\System32\config\SYSTEM' "bundle .reg imported"
expect_eq "$(jqv '.system_files | map(.path + " <- " + .source) | join(" ")')" '\Windows\System32\x.dll <- nv_dispig.inf_amd64_677da8a9230cea15\x48.dll' \
  "the bundle's install section chooses the CopyToVm lines"
jqv '.warnings[]' | grep -q conflicts && fail "a conflict warned about despite the install section"
guest_file b.vhdx vhdx Windows/System32/config/SYSTEM b.SYSTEM || fail "no SYSTEM"
hivexregedit --export b.SYSTEM '\ControlSet001\Services\nvlddmkm' | grep -q -F \
  "$(utf16 '\SystemRoot\System32\HostDriverStore\FileRepository\nv_dispig.inf_amd64_677da8a9230cea15\nvlddmkm.sys')" ||
  fail "the bundle's ImagePath was not imported with HostDriverStore"
grep -q "InstancePath = '\\\\\\\\?\\\\PCI#VEN_10DE&DEV_2484" b.ps1 || fail "bundle instance path not used"
grep -q '    GPU: NVIDIA GeForce RTX 3070' b.ps1 || fail "bundle GPU name not in the script"
after=$(sha b.vhdx)
run 0 "$GPUPV_PREP" stage b.vhdx bundle.zip --json --vm-name guest
expect_eq "$(jqv .changed)" false "bundle re-run"
expect_eq "$(sha b.vhdx)" "$after" "bundle re-run changed the image"
run 0 "$GPUPV_PREP" script b.vhdx -o b2.ps1
cmp -s b.ps1 b2.ps1 || fail "the manifest did not keep the bundle's settings"
# A new setting alone is recorded.
run 0 "$GPUPV_PREP" stage b.vhdx bundle.zip --json --vm-name other
expect_eq "$(jqv .changed)" true "a new VM name is a change"
run 0 "$GPUPV_PREP" script b.vhdx -o b3.ps1
grep -q "VMName = 'other'" b3.ps1 || fail "new VM name not recorded"
qemu-img check -q b.vhdx || fail "qemu-img check"
pass "a host bundle: staged, its GPU recorded for the script, re-run unchanged"

# Broken bundles: refused with the culprit named, the image unchanged.
before=$(sha b.vhdx)
mkdir -p bad1 bad2
cp -r "$PKG" bad1/ && cp -r "$PKG" bad2/
printf '{"format": 1, "gpus": [' >bad1/gpupv-bundle.json
sed 's|"reg": \["nvlddmkm.reg"\]|"reg": ["../nvlddmkm.reg"]|' bundle/gpupv-bundle.json >bad2/gpupv-bundle.json
run 10 "$GPUPV_PREP" stage b.vhdx bad1
grep -q 'gpupv-bundle.json is not a format 1 bundle' "$TMP/err" || fail "bad JSON: $(cat "$TMP/err")"
run 10 "$GPUPV_PREP" stage b.vhdx bad2
grep -q 'reg entry 0 is not a file name in the bundle' "$TMP/err" || fail "bad reg: $(cat "$TMP/err")"
run 2 "$GPUPV_PREP" stage b.vhdx bundle bundle.zip
grep -q 'a second host bundle' "$TMP/err" || fail "two bundles: $(cat "$TMP/err")"
expect_eq "$(sha b.vhdx)" "$before" "a refused bundle changed the image"
pass "broken bundles are refused by name; the image is unchanged"
