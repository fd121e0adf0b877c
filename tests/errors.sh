#!/bin/sh
# Errors live in scopes: every path of the volume layer that tolerates a
# failure (a path that is not there, a state or a guess that reads what it
# can) leaves a caller's recorded error alone, and leaves nothing behind
# that would hide the next real failure.  On NTFS and on ext4, through
# imgtool errscope; the image is not changed (no commit).
. "$(dirname "$0")/functions.sh"
requires mkntfs sgdisk mke2fs sfdisk

mkgpt_windows "$TMP/win.img"
before=$(sha "$TMP/win.img")
"$IMGTOOL" errscope "$TMP/win.img" 3 >"$TMP/out" 2>"$TMP/err" ||
  fail "NTFS: $(cat "$TMP/err")"
expect_eq "$(grep -c '^keeps: ' "$TMP/out")" 5 "NTFS: checks of a kept error"
expect_eq "$(grep -c '^then the real one: ' "$TMP/out")" 5 "NTFS: checks of a real error"
expect_eq "$(sha "$TMP/win.img")" "$before" "NTFS: errscope changed the image"
pass "NTFS: tolerated failures stay in their scopes"

# An ext4 root (etc/os-release) at 1 MiB in a GPT disk.
mkdir -p "$TMP/root/etc"
echo 'ID=debian' >"$TMP/root/etc/os-release"
truncate -s 64M "$TMP/p.ext"
mke2fs -q -F -t ext4 -d "$TMP/root" "$TMP/p.ext" >/dev/null || fail "mke2fs"
truncate -s $((64 * 1024 * 1024 + 4096 * 512)) "$TMP/lx.img"
printf 'label: gpt\nstart=2048, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
  sfdisk -q "$TMP/lx.img" >/dev/null 2>&1 || fail "sfdisk"
dd if="$TMP/p.ext" of="$TMP/lx.img" bs=1M seek=1 conv=notrunc status=none
before=$(sha "$TMP/lx.img")
"$IMGTOOL" errscope "$TMP/lx.img" 1 >"$TMP/out" 2>"$TMP/err" ||
  fail "ext4: $(cat "$TMP/err")"
expect_eq "$(grep -c '^keeps: ' "$TMP/out")" 5 "ext4: checks of a kept error"
expect_eq "$(grep -c '^then the real one: ' "$TMP/out")" 5 "ext4: checks of a real error"
expect_eq "$(sha "$TMP/lx.img")" "$before" "ext4: errscope changed the image"
pass "ext4: tolerated failures stay in their scopes"

# Through the CLI, tolerated on the way and then the real failure: a
# SOFTWARE hive that is not a hive makes the build unknown (a warning that
# names the hive, not the copy read), and is then the reason a run that
# edits it is refused, with the image unchanged.
mkgpt_windows "$TMP/junk.img"
head -c 8192 /dev/urandom >"$TMP/junk"
"$IMGTOOL" put "$TMP/junk.img" 3 Windows/System32/config/SOFTWARE "$TMP/junk"
run 0 "$GPUPV_PREP" inspect --json "$TMP/junk.img"
jqv '.warnings[]' | grep -q "^cannot read the guest's build: Windows/System32/config/SOFTWARE: " ||
  fail "inspect: the build warning: $(jqv '.warnings[]')"
jqv '.warnings[]' | grep -q 'gpupv-prep-hive' && fail "a temporary file named: $(jqv '.warnings[]')"
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\gpupv-test]\r\n"a"=dword:00000001\r\n' >"$TMP/sw.reg"
before=$(sha "$TMP/junk.img")
run 3 "$GPUPV_PREP" stage "$TMP/junk.img" --reg "$TMP/sw.reg"
grep -q '^gpupv-prep: stage: .*junk.img: .*config.SOFTWARE: not a registry hive' "$TMP/err" ||
  fail "stage: the real failure: $(cat "$TMP/err")"
expect_eq "$(sha "$TMP/junk.img")" "$before" "stage changed a refused image"
pass "a tolerated failure, then the real one, through the CLI"

# The whole CLI: a run that went on past an untried failure exits 70
# under GPUPV_PREP_CHECK_ERRORS (every test runs with it).  inspect walks
# every tolerant path of guest detection, Windows and Linux.
run 0 "$GPUPV_PREP" inspect --json "$TMP/lx.img"
run 0 "$GPUPV_PREP" inspect --json "$TMP/win.img"
pass errors
