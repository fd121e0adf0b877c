#!/bin/sh
# Finding Windows by content: any case of the path, not the partition
# index; the build from SOFTWARE; the HostDriverStore listing; --partition.
# Our NTFS writes (the fixture) are judged by sleuthkit and ntfsfix.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk jq mkntfs mkfs.fat hivexregedit fls ntfsfix

# Names in another case than Windows uses; found all the same.
mkgpt_windows "$TMP/disk.raw" WINDOWS
printf 'driver' >"$TMP/a.sys"
head -c 100000 /dev/urandom >"$TMP/b.dll"
"$IMGTOOL" put "$TMP/disk.raw" 3 \
  "windows/system32/HostDriverStore/FileRepository/nv_dispi.inf_amd64_1234/a.sys" "$TMP/a.sys"
"$IMGTOOL" put "$TMP/disk.raw" 3 \
  "Windows/System32/HostDriverStore/FileRepository/nv_dispi.inf_amd64_1234/sub/b.dll" "$TMP/b.dll"
"$IMGTOOL" mkdir "$TMP/disk.raw" 3 \
  "Windows/System32/HostDriverStore/FileRepository/empty.inf_amd64_0"

qemu-img convert -q -f raw -O vhdx "$TMP/disk.raw" "$TMP/win.vhdx"
before=$(sha "$TMP/win.vhdx")
run 0 "$GPUPV_PREP" inspect "$TMP/win.vhdx" --json
expect_eq "$(jqv .windows.partition)" 3 "windows partition"
expect_eq "$(jqv .windows.system_root)" '\WINDOWS' "system root in stored case"
expect_eq "$(jqv .windows.build)" 22631 "build"
expect_eq "$(jqv .windows.volume_state)" clean "volume state"
expect_eq "$(jqv '.host_driver_store | length')" 2 "package count"
expect_eq "$(jqv '.host_driver_store[1].package')" nv_dispi.inf_amd64_1234 "package name"
expect_eq "$(jqv '.host_driver_store[1].files')" 2 "package files"
expect_eq "$(jqv '.host_driver_store[1].bytes')" 100006 "package bytes"
expect_eq "$(jqv '.host_driver_store[0].files')" 0 "empty package"
expect_eq "$(sha "$TMP/win.vhdx")" "$before" "inspect changed the image"
# One directory, not a second one in another case.
sfx=$(sfdisk --json "$TMP/disk.raw" | jq '.partitiontable.partitions[2].start')
ssz=$(sfdisk --json "$TMP/disk.raw" | jq '.partitiontable.partitions[2].size')
fls -o "$sfx" "$TMP/disk.raw" | grep -ci 'windows' | grep -qx 1 ||
  fail "two Windows folders: $(fls -o "$sfx" "$TMP/disk.raw")"
fls -r -o "$sfx" "$TMP/disk.raw" | grep -q 'b.dll' || fail "sleuthkit cannot see b.dll"
dd if="$TMP/disk.raw" of="$TMP/p3.ntfs" bs=512 skip="$sfx" count="$ssz" status=none
ntfsfix -n "$TMP/p3.ntfs" >"$TMP/fix.log" 2>&1 || { cat "$TMP/fix.log"; fail "ntfsfix -n"; }

run 0 "$GPUPV_PREP" inspect "$TMP/win.vhdx"
grep -q 'windows: *partition 3, \\WINDOWS, build 22631, volume clean' "$TMP/out" ||
  fail "human output: $(cat "$TMP/out")"

# --partition: the ESP holds no Windows (exit 4); no such partition (2).
run 4 "$GPUPV_PREP" inspect --partition 1 "$TMP/win.vhdx"
grep -q 'partition 1 holds no Windows' "$TMP/err" || fail "--partition 1 message"
run 2 "$GPUPV_PREP" inspect "$TMP/win.vhdx" --partition 9
run 0 "$GPUPV_PREP" inspect "$TMP/win.vhdx" --partition 3 --json
expect_eq "$(jqv .windows.partition)" 3 "forced partition"

# No SOFTWARE hive: build is null, Windows still found.
mkgpt_windows "$TMP/nosw.raw"
"$IMGTOOL" put "$TMP/nosw.raw" 3 "Windows/System32/config/SOFTWARE" /dev/null
run 0 "$GPUPV_PREP" inspect --json "$TMP/nosw.raw"
expect_eq "$(jqv .windows.partition)" 3 "windows without SOFTWARE"
expect_eq "$(jqv .windows.build)" null "build without SOFTWARE"
pass inspect-windows
