#!/bin/sh
# Volumes gpupv-prep must not change: hibernated (hiberfil.sys "hibr"),
# an unclean journal ($LogFile restart pages left by chkdsk), BitLocker,
# and a partition that is not NTFS.  inspect reports each state; a
# writable mount refuses with its own exit code and message and writes
# nothing.
. "$(dirname "$0")/functions.sh"
requires sgdisk sfdisk jq mkntfs mkfs.fat hivexregedit istat

mkgpt_windows "$TMP/base.raw"
sfx=$(sfdisk --json "$TMP/base.raw" | jq '.partitiontable.partitions[2].start')

run 0 "$GPUPV_PREP" inspect --json "$TMP/base.raw"
expect_eq "$(jqv .windows.volume_state)" clean "fresh volume"

# refuse RC PATTERN IMAGE: a writable mount of partition 3 is refused.
refuse() {
  b=$(sha "$3")
  set +e
  "$IMGTOOL" mkdir "$3" 3 Windows/System32/HostDriverStore 2>"$TMP/err"
  rc=$?
  set -e
  expect_eq "$rc" "$1" "exit code of a writable mount ($2)"
  grep -q "$2" "$TMP/err" || fail "expected '$2' in: $(cat "$TMP/err")"
  expect_eq "$(sha "$3")" "$b" "refused mount changed the image"
}

# Hibernated: hiberfil.sys whose header says "hibr".
cp "$TMP/base.raw" "$TMP/hib.raw"
{ printf 'hibr'; head -c 8188 /dev/zero; } >"$TMP/hiberfil.sys"
"$IMGTOOL" put "$TMP/hib.raw" 3 hiberfil.sys "$TMP/hiberfil.sys"
run 0 "$GPUPV_PREP" inspect --json "$TMP/hib.raw"
expect_eq "$(jqv .windows.volume_state)" hibernated "hibernated volume"
expect_eq "$(jqv .windows.partition)" 3 "hibernated volume still found"
refuse 5 'hibernated (Windows Fast Startup' "$TMP/hib.raw"
pass hibernated

# Unclean journal: both restart pages of $LogFile marked by chkdsk.
cp "$TMP/base.raw" "$TMP/log.raw"
lcn=$(istat -o "$sfx" "$TMP/log.raw" 2 | sed -n '/^\$DATA\|Type: \$DATA/{n;p;q}' | awk '{print $1}')
[ -n "$lcn" ] || fail "cannot find \$LogFile's clusters"
csize=$(fsstat -o "$sfx" "$TMP/log.raw" | sed -n 's/^Cluster Size: //p')
for page in 0 4096; do
  printf 'CHKD' | dd of="$TMP/log.raw" bs=1 seek=$((sfx * 512 + lcn * csize + page)) \
    conv=notrunc status=none
done
run 0 "$GPUPV_PREP" inspect --json "$TMP/log.raw"
expect_eq "$(jqv .windows.volume_state)" dirty "unclean journal"
refuse 6 'journal is unclean' "$TMP/log.raw"
pass unclean-journal

# BitLocker: the boot sector's OEM id.
cp "$TMP/base.raw" "$TMP/bl.raw"
printf -- '-FVE-FS-' | dd of="$TMP/bl.raw" bs=1 seek=$((sfx * 512 + 3)) conv=notrunc status=none
run 0 "$GPUPV_PREP" inspect --json "$TMP/bl.raw"
expect_eq "$(jqv '.partitions[2].filesystem')" bitlocker "BitLocker filesystem"
expect_eq "$(jqv .windows.volume_state)" bitlocker "BitLocker state"
expect_eq "$(jqv .windows.partition)" 3 "BitLocker partition"
refuse 7 'BitLocker' "$TMP/bl.raw"
pass bitlocker

# Not NTFS: the EFI system partition.
b=$(sha "$TMP/base.raw")
set +e
"$IMGTOOL" mkdir "$TMP/base.raw" 1 x 2>"$TMP/err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "FAT partition mounted as NTFS"
grep -q 'not an NTFS file system' "$TMP/err" || fail "non-NTFS message: $(cat "$TMP/err")"
expect_eq "$(sha "$TMP/base.raw")" "$b" "non-NTFS refusal changed the image"
run 4 "$GPUPV_PREP" inspect --partition 1 "$TMP/base.raw"
pass not-ntfs
