# Sourced by data/demo.sh, bench/ and tests/functions.sh: lay out a raw
# disk as Windows Setup does on a Hyper-V Gen 2 VM - GPT with an EFI system
# partition (FAT), an MSR, and an NTFS volume filling the rest.
#
# guest_layout DISK SIZE ESP_MIB: creates DISK (sparse), prints the NTFS
# partition's first sector.
guest_layout() {
  gl_disk=$1 gl_esp=$3
  rm -f "$gl_disk"
  truncate -s "$2" "$gl_disk"
  sgdisk -n 1:2048:+"$gl_esp"M -t 1:EF00 -c 1:"EFI system partition" \
    -n 2:0:+16M -t 2:0C01 -c 2:"Microsoft reserved partition" \
    -n 3:0:0 -t 3:0700 -c 3:"Basic data partition" "$gl_disk" >/dev/null
  if [ "$gl_esp" -ge 64 ]; then gl_fat=32; else gl_fat=16; fi
  mkfs.fat -F "$gl_fat" -n SYSTEM --offset 2048 "$gl_disk" \
    $((gl_esp * 1024)) >/dev/null 2>&1
  gl_start=$(sgdisk -i 3 "$gl_disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  gl_end=$(sgdisk -i 3 "$gl_disk" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
  truncate -s $(((gl_end - gl_start + 1) * 512)) "$gl_disk.ntfs"
  mkntfs -F -Q -q -p "$gl_start" -L Windows "$gl_disk.ntfs" >/dev/null 2>&1 || {
    rm -f "$gl_disk.ntfs"
    echo "guest_layout: mkntfs failed" >&2
    return 1
  }
  dd if="$gl_disk.ntfs" of="$gl_disk" bs=1M oflag=seek_bytes \
    seek=$((gl_start * 512)) conv=notrunc,sparse status=none
  rm -f "$gl_disk.ntfs"
  echo "$gl_start"
}

# guest_hives DISK PART IMGTOOL [WINDIR]: SYSTEM and SOFTWARE hives made by
# the project's own code (IMGTOOL mkhive), filled through hivexregedit, put
# into WINDIR/System32/config of partition PART.  SYSTEM has Select
# (Current = 1) and ControlSet001/002 with Control\GraphicsDrivers and
# Services, the keys a GPU-PV run writes below; SOFTWARE has Windows 11's
# CurrentBuildNumber.
guest_hives() {
  gh_dir=$(mktemp -d "${TMPDIR:-/tmp}/gpupv-hives.XXXXXX")
  guest_system_hive "$gh_dir/SYSTEM" "$3" &&
    guest_software_hive "$gh_dir/SOFTWARE" "$3" 22631 &&
    "$3" put "$1" "$2" "${4:-Windows}/System32/config/SYSTEM" "$gh_dir/SYSTEM" &&
    "$3" put "$1" "$2" "${4:-Windows}/System32/config/SOFTWARE" "$gh_dir/SOFTWARE"
  gh_rc=$?
  rm -rf "$gh_dir"
  return $gh_rc
}

# guest_system_hive FILE IMGTOOL
guest_system_hive() {
  "$2" mkhive "$1" || return 1
  cat >"$1.reg" <<'REG'
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SYSTEM\Select]
"Current"=dword:00000001
"Default"=dword:00000001
"LastKnownGood"=dword:00000002
"Failed"=dword:00000000

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\GraphicsDrivers]
"TdrDelay"=dword:00000002

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Control]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet002\Services]
REG
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$1" "$1.reg"
  gs_rc=$?
  rm -f "$1.reg"
  return $gs_rc
}

# guest_software_hive FILE IMGTOOL BUILD
guest_software_hive() {
  "$2" mkhive "$1" || return 1
  cat >"$1.reg" <<REG
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft]

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT]

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]
"CurrentBuildNumber"="$3"
"ProductName"="Windows 11 Pro"
"DisplayVersion"="23H2"
REG
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$1" "$1.reg"
  gw_rc=$?
  rm -f "$1.reg"
  return $gw_rc
}

# linux_layout DISK ROOT MIB: a raw GPT disk whose one partition (at 1 MiB,
# MIB MiB) is an ext4 file system holding the tree ROOT (mke2fs -d).
linux_layout() {
  rm -f "$1" "$1.ext4"
  truncate -s "$3M" "$1.ext4"
  mke2fs -q -F -t ext4 -d "$2" "$1.ext4" >/dev/null || {
    rm -f "$1.ext4"
    echo "linux_layout: mke2fs failed" >&2
    return 1
  }
  truncate -s $(($3 + 2))M "$1"
  printf 'label: gpt\nstart=2048, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
    $(($3 * 2048)) | sfdisk -q "$1" >/dev/null 2>&1
  dd if="$1.ext4" of="$1" bs=1M seek=1 conv=notrunc status=none
  rm -f "$1.ext4"
}
