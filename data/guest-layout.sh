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
