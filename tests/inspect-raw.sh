#!/bin/sh
# inspect on raw disks: GPT and MBR (with logical partitions) as sgdisk and
# sfdisk made them; every start and size must match what sfdisk reports.
. "$(dirname "$0")/functions.sh"
requires sgdisk sfdisk jq mkntfs mkfs.fat

# compare_sfdisk IMAGE: our partitions against sfdisk --json.
compare_sfdisk() {
  sfdisk --json "$1" >"$TMP/sf.json"
  n=$(jq '.partitiontable.partitions | length' "$TMP/sf.json")
  expect_eq "$(jqv '.partitions | length')" "$n" "partition count"
  i=0
  while [ "$i" -lt "$n" ]; do
    node=$(jq -r ".partitiontable.partitions[$i].node" "$TMP/sf.json")
    idx=${node##*[!0-9]}
    st=$(jq ".partitiontable.partitions[$i].start" "$TMP/sf.json")
    sz=$(jq ".partitiontable.partitions[$i].size" "$TMP/sf.json")
    expect_eq "$(jqv ".partitions[] | select(.index == $idx) | .start")" \
      $((st * 512)) "start of partition $idx"
    expect_eq "$(jqv ".partitions[] | select(.index == $idx) | .size")" \
      $((sz * 512)) "size of partition $idx"
    i=$((i + 1))
  done
}

# GPT as Windows lays it out, NTFS volume without Windows.
truncate -s 100M "$TMP/gpt.img"
sgdisk -n 1:2048:+16M -t 1:EF00 -n 2:0:+16M -t 2:0C01 -n 3:0:0 -t 3:0700 \
  -c 3:"Basic data partition" "$TMP/gpt.img" >/dev/null
start=$(sgdisk -i 3 "$TMP/gpt.img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
end=$(sgdisk -i 3 "$TMP/gpt.img" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
mkntfs_at "$TMP/gpt.img" "$start" $((end - start + 1)) Data
mkfs.fat -F 16 -n ESP --offset 2048 "$TMP/gpt.img" $((16 * 1024)) >/dev/null
run 0 "$GPUPV_PREP" inspect --json "$TMP/gpt.img"
expect_eq "$(jqv .partition_table)" gpt "scheme"
compare_sfdisk "$TMP/gpt.img"
expect_eq "$(jqv '.partitions[0].type')" C12A7328-F81F-11D2-BA4B-00A0C93EC93B "ESP type"
expect_eq "$(jqv '.partitions[0].filesystem')" fat "ESP filesystem"
expect_eq "$(jqv '.partitions[0].label')" ESP "ESP label"
expect_eq "$(jqv '.partitions[1].type_name')" "Microsoft reserved" "MSR name"
expect_eq "$(jqv '.partitions[2].filesystem')" ntfs "NTFS filesystem"
expect_eq "$(jqv '.partitions[2].label')" Data "NTFS label"
expect_eq "$(jqv '.partitions[2].name')" "Basic data partition" "GPT name"
expect_eq "$(jqv .windows)" null "no Windows"
run 0 "$GPUPV_PREP" inspect "$TMP/gpt.img"
grep -q 'windows: *none found' "$TMP/out" || fail "human output"

# Primary GPT header destroyed: the backup is used, with a warning.
cp "$TMP/gpt.img" "$TMP/gpt-bad.img"
printf 'XXXXXXXX' | dd of="$TMP/gpt-bad.img" bs=1 seek=512 conv=notrunc status=none
run 0 "$GPUPV_PREP" inspect --json "$TMP/gpt-bad.img"
compare_sfdisk "$TMP/gpt.img"
jqv '.warnings[]' | grep -q 'primary GPT header is bad' || fail "no backup warning"

# MBR with primary, extended and logical partitions.
truncate -s 64M "$TMP/mbr.img"
sfdisk -q "$TMP/mbr.img" <<'SF'
label: dos
start=2048, size=16384, type=7
start=18432, size=40960, type=5
start=20480, size=8192, type=83
start=30720, size=8192, type=7
SF
run 0 "$GPUPV_PREP" inspect --json "$TMP/mbr.img"
expect_eq "$(jqv .partition_table)" mbr "scheme"
compare_sfdisk "$TMP/mbr.img"
expect_eq "$(jqv '[.partitions[].index] | join(",")')" "1,2,5,6" "MBR numbering"
expect_eq "$(jqv '.partitions[0].type')" 0x07 "MBR type"

# A whole-disk NTFS volume without a partition table.
truncate -s 16M "$TMP/super.img"
mkntfs -F -Q -q -L Whole "$TMP/super.img" >/dev/null 2>&1
run 0 "$GPUPV_PREP" inspect --json "$TMP/super.img"
expect_eq "$(jqv .partition_table)" none "superfloppy scheme"
expect_eq "$(jqv '.partitions[0].label')" Whole "superfloppy label"
pass inspect-raw
