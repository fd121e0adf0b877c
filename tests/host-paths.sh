#!/bin/sh
# Paths and text that meet the host: a FIFO as the image or as a parent
# is refused without blocking; a sidecar file named like the image, the
# new image or a package is refused before anything is written; text from
# the image (a GPT partition name with an escape sequence) reaches the
# terminal escaped.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit zip timeout fls jq

mkfifo "$TMP/fifo"
run 1 timeout 20 "$GPUPV_PREP" inspect "$TMP/fifo"
grep -q "FIFO, socket or character device is no disk image" "$TMP/err" ||
  fail "FIFO: $(cat "$TMP/err")"
mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx "$TMP/g.raw" "$TMP/p.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/p.vhdx" --disable-fast-startup --child "$TMP/c.avhdx"
run 1 timeout 20 "$GPUPV_PREP" inspect --parent "$TMP/fifo" "$TMP/c.avhdx"
grep -q "no disk image" "$TMP/err" || fail "FIFO parent: $(cat "$TMP/err")"
pass "a FIFO as the image or the parent is refused at once"

PKG=$TMP/src/nv_h.inf_amd64_1111111111111111
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$PKG/nv_h.inf"
echo x >"$PKG/a.dll"
(cd "$TMP/src" && zip -q -r ../pkg.zip nv_h.inf_amd64_1111111111111111)
before=$(sha "$TMP/g.raw")
run 2 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG" --script "$TMP/g.raw"
grep -q "names the image" "$TMP/err" || fail "--script IMAGE: $(cat "$TMP/err")"
run 2 "$GPUPV_PREP" stage "$TMP/g.raw" "$TMP/pkg.zip" --nanabox "$TMP/../$(basename "$TMP")/pkg.zip"
grep -q "names a package" "$TMP/err" || fail "--nanabox PACKAGE: $(cat "$TMP/err")"
run 2 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG" --output "$TMP/new.vhdx" --script "$TMP/new.vhdx"
grep -q "names the new image" "$TMP/err" || fail "--script NEW: $(cat "$TMP/err")"
ln -s g.raw "$TMP/alias.raw"
run 0 "$GPUPV_PREP" stage "$TMP/g.raw" "$PKG"
before=$(sha "$TMP/g.raw")
run 2 "$GPUPV_PREP" script "$TMP/g.raw" -o "$TMP/alias.raw"
expect_eq "$(sha "$TMP/g.raw")" "$before" "the image after refused sidecars"
[ ! -e "$TMP/new.vhdx" ] || fail "a new image was written"
pass "sidecar files never replace the image, the new image or a package"

# An escape sequence in a GPT partition name reaches the terminal escaped.
ESC=$(printf '\033')
sgdisk -c 2:"evil${ESC}[2Jname" "$TMP/g.raw" >/dev/null
run 0 "$GPUPV_PREP" inspect "$TMP/g.raw"
grep -q 'evil\\x1b\[2Jname' "$TMP/out" || fail "the name is not escaped: $(grep evil "$TMP/out")"
! grep -q "$ESC" "$TMP/out" || fail "a raw escape character reached the output"
pass "text from the image is escaped for the terminal"

# SIGTERM or SIGINT in the middle of a run (from an archive, so there is an
# unpacked copy; with a registry edit, so there is a hive copy): the old
# state, no temporary left, exit 128 + the signal.
mkdir -p "$TMP/t"
(cd "$TMP/src" && tar -cf ../pkg.tar nv_h.inf_amd64_1111111111111111)
for s in TERM:143 INT:130; do
  sig=${s%:*} want=${s#*:}
  cp "$TMP/p.vhdx" "$TMP/s.vhdx"
  mkdir -p "$TMP/big/nv_big.inf_amd64_3333333333333333"
  printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$TMP/big/nv_big.inf_amd64_3333333333333333/nv_big.inf"
  for i in 1 2 3; do echo "$i" >"$TMP/big/nv_big.inf_amd64_3333333333333333/f$i.dll"; done
  TMPDIR=$TMP/t GPUPV_PREP_FAULT=stage-file-2 GPUPV_PREP_FAULT_SIGNAL=$sig \
    run "$want" "$GPUPV_PREP" stage "$TMP/s.vhdx" "$TMP/pkg.tar" \
    "$TMP/big/nv_big.inf_amd64_3333333333333333" --disable-fast-startup
  grep -q "stopped by signal" "$TMP/err" || fail "$sig: $(cat "$TMP/err")"
  [ -z "$(ls -A "$TMP/t")" ] || fail "$sig: temporaries left: $(ls -A "$TMP/t")"
  run 0 "$GPUPV_PREP" inspect --json "$TMP/s.vhdx"
  expect_eq "$(jqv '.host_driver_store | length')" 0 "$sig: packages after the signal"
  qemu-img check -q "$TMP/s.vhdx" || fail "$sig: qemu-img check"
done
pass "SIGTERM and SIGINT leave the old state and no temporaries"

# A sidecar that cannot be written after the commit: exit 1, and the
# report still says what the run did to the image.
cp "$TMP/p.vhdx" "$TMP/r.vhdx"
run 1 "$GPUPV_PREP" stage "$TMP/r.vhdx" "$PKG" --script "$TMP/no/such/dir/x.ps1"
grep -q "^staged .*nv_h.inf_amd64_1111111111111111" "$TMP/out" || fail "no report: $(cat "$TMP/out")"
grep -q "x.ps1" "$TMP/err" || fail "the sidecar error is not named"
pass "a sidecar failing after the commit still gets the report printed"

# verify reads a child whose parent lives in another folder, as inspect
# does (libvhdi alone looks beside the child).
mkdir -p "$TMP/A" "$TMP/B"
cp "$TMP/p.vhdx" "$TMP/A/base.vhdx"
run 0 "$GPUPV_PREP" stage "$TMP/A/base.vhdx" "$PKG" --child "$TMP/B/kid.avhdx"
run 0 "$GPUPV_PREP" verify --json "$TMP/B/kid.avhdx"
expect_eq "$(jqv .reader) $(jqv .verified)" "libvhdi true" "verify of a child in another folder"
pass "verify finds a parent in another folder"

# --child writes a differencing VHDX: any other name is refused.
run 2 "$GPUPV_PREP" stage "$TMP/p.vhdx" "$PKG" --child "$TMP/kid.vhd"
grep -q "name it .avhdx or .vhdx" "$TMP/err" || fail "--child NAME.vhd: $(cat "$TMP/err")"
[ ! -e "$TMP/kid.vhd" ] || fail "a child was written under a .vhd name"
pass "--child refuses a name that is not .avhdx or .vhdx"

# A package file swapped for a symbolic link while the run is copying
# (the run stops itself after its first file): the link is not followed
# into the host, the run fails naming the file, and the image keeps its
# old state (the data already copied went to free clusters of a raw
# image, which still read as free).
SW=$TMP/src/sw.inf_amd64_2222222222222222
mkdir -p "$SW"
printf '[Version]\r\nDriverVer = 01/01/2024,1.0\r\n' >"$SW/sw.inf"
for f in a b c d; do head -c 300000 /dev/urandom >"$SW/$f.bin"; done
head -c 300000 /dev/urandom >"$TMP/host-secret"
cp "$TMP/g.raw" "$TMP/sw.raw"
GPUPV_PREP_FAULT=stage-file-1 GPUPV_PREP_FAULT_SIGNAL=STOP \
  "$GPUPV_PREP" stage "$TMP/sw.raw" "$SW" >/dev/null 2>"$TMP/sw.err" &
pid=$!
wait_stopped $pid
for f in a b c d; do
  rm "$SW/$f.bin"
  ln -s "$TMP/host-secret" "$SW/$f.bin"
done
resume $pid
[ "$rc" -ne 0 ] || fail "a swapped package file was staged (exit 0)"
grep -q "sw.inf_amd64_2222222222222222/[a-d].bin: became a symbolic link" "$TMP/sw.err" ||
  fail "the swapped file is not named: $(cat "$TMP/sw.err")"
run 0 "$GPUPV_PREP" inspect "$TMP/sw.raw" --json
expect_eq "$(jqv '[.host_driver_store[].package] | join(",")')" \
  nv_h.inf_amd64_1111111111111111 "the packages after a failed swap"
off=$(sgdisk -i 3 "$TMP/sw.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
fls -r -o "$off" "$TMP/sw.raw" >"$TMP/sw.fls" || fail "sleuthkit cannot read the volume"
grep -q "sw.inf_amd64" "$TMP/sw.fls" && fail "sleuthkit sees the folder of the failed run"
pass "a package file swapped for a link mid-run is refused: $(head -c 160 "$TMP/sw.err")"
