#!/bin/sh
# A Windows-made VHDX with an active log (DiscUtils' test file): a
# read-only open replays it in memory and changes nothing; a writable open
# replays it into the file, after which QEMU opens the file without
# complaint and sees the same disk our in-memory replay showed.
. "$(dirname "$0")/functions.sh"
requires_corpus
requires qemu-img jq cmp gzip

gzip -dc "$CORPUS/vhd/discutils_vhdx-log-replay.vhdx.gz" >"$TMP/log.vhdx"
before=$(sha "$TMP/log.vhdx")
run 0 "$GPUPV_PREP" inspect --json "$TMP/log.vhdx"
expect_eq "$(jqv .image.log_replayed)" true "log replayed"
expect_eq "$(jqv '.partitions | length')" 2 "partitions after replay"
expect_eq "$(jqv '.partitions[0].start')" $((2048 * 512)) "partition 1 start"
expect_eq "$(jqv '.partitions[1].start')" $((206848 * 512)) "partition 2 start"
expect_eq "$(sha "$TMP/log.vhdx")" "$before" "read-only open changed the file"
"$IMGTOOL" dump "$TMP/log.vhdx" "$TMP/mem.raw"
expect_eq "$(sha "$TMP/log.vhdx")" "$before" "dump changed the file"

# QEMU refuses the file until its log is replayed.
if qemu-img info -f vhdx "$TMP/log.vhdx" >/dev/null 2>&1; then
  fail "qemu-img opened a file with an active log (test premise broken)"
fi
# Replay into the file: a writable session with no writes.
"$IMGTOOL" touch "$TMP/log.vhdx"
qemu-img check -q -f vhdx "$TMP/log.vhdx" || fail "qemu-img check after replay"
qemu-img convert -q -f vhdx -O raw "$TMP/log.vhdx" "$TMP/qemu.raw"
cmp "$TMP/mem.raw" "$TMP/qemu.raw" || fail "in-memory replay differs from QEMU's view"
run 0 "$GPUPV_PREP" inspect --json "$TMP/log.vhdx"
expect_eq "$(jqv .image.log_replayed)" false "log still active after replay"
expect_eq "$(jqv '.partitions | length')" 2 "partitions after replay into the file"
pass vhdx-log
