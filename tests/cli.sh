#!/bin/sh
# CLI conventions: --version, help, usage errors with exit 2, messages
# that name the file, options before or after positional arguments.
. "$(dirname "$0")/functions.sh"

run 0 "$GPUPV_PREP" --version
grep -q '^gpupv-prep [0-9]' "$TMP/out" || fail "--version output"
run 0 "$GPUPV_PREP" --help
grep -q 'inspect' "$TMP/out" || fail "--help lists no commands"
grep -q 'Exit status' "$TMP/out" || fail "--help lacks exit codes"
run 0 "$GPUPV_PREP" help inspect
grep -q 'Usage: gpupv-prep inspect' "$TMP/out" || fail "help inspect"
run 0 "$GPUPV_PREP" inspect --help
grep -q -- '--json' "$TMP/out" || fail "inspect --help"

run 2 "$GPUPV_PREP"
run 2 "$GPUPV_PREP" frobnicate
grep -q "unknown command 'frobnicate'" "$TMP/err" || fail "unknown command message"
run 2 "$GPUPV_PREP" inspect
grep -q 'missing IMAGE' "$TMP/err" || fail "missing image message"
run 2 "$GPUPV_PREP" inspect --bogus x.img
run 2 "$GPUPV_PREP" inspect --partition abc x.img
run 2 "$GPUPV_PREP" inspect a.img b.img

run 1 "$GPUPV_PREP" inspect "$TMP/does-not-exist.vhdx"
grep -q "^gpupv-prep: inspect: $TMP/does-not-exist.vhdx: No such file" "$TMP/err" ||
  fail "missing file message: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" -le 2 ] || fail "message longer than two lines"
run 1 "$GPUPV_PREP" inspect "$TMP"
grep -q "is a directory" "$TMP/err" || fail "directory message"

# Options after the positional argument.
truncate -s 1M "$TMP/blank.img"
run 0 "$GPUPV_PREP" inspect "$TMP/blank.img" --json
expect_eq "$(jqv .image.format)" raw "format of a blank file"
expect_eq "$(jqv .windows)" null "windows of a blank file"
run 0 "$GPUPV_PREP" inspect --json "$TMP/blank.img"

# Usage errors: one line with our prefix (getopt's own silenced), then
# the hint; each conflicting or out-of-range option refused before
# anything is read (x.img does not exist).
usage() {  # PATTERN ARGS...
  upat=$1; shift
  run 2 "$GPUPV_PREP" "$@"
  grep -q -- "^gpupv-prep: $1: .*$upat" "$TMP/err" ||
    fail "$*: expected '$upat' in: $(cat "$TMP/err")"
  expect_eq "$(grep -vc '^Try ' "$TMP/err")" 1 "$*: more than one line"
}
usage "unknown option '--bogus'" stage x.img --bogus
usage "unknown option '-Z'" inspect -jZ x.img
usage "option '--reg' needs a value" stage x.img --reg
usage "option '-o' needs a value" script x.img -o
usage "--dda and --gpu exclude each other" stage x.img --dda L --gpu G
usage "--dda and --gpu exclude each other" script x.img -o s.ps1 --dda L --gpu G
usage "--nanabox writes a GPU-PV configuration" script x.img --dda L --nanabox n.7b
usage "--cpus and --memory go into the NanaBox file" stage x.img --cpus 4
usage "--cpus and --memory go into the NanaBox file" script x.img -o s.ps1 --memory 8G
usage "--cpus: '0' is not a count" script x.img --nanabox n.7b --cpus 0
usage "--high-mmio: '32' is not a size" stage x.img --high-mmio 32
usage "--low-mmio: '4G' is not a size from 128M to 3584M" stage x.img --low-mmio 4G
usage "give 4608 MiB of memory-mapped IO in all" stage x.img --low-mmio 512M --high-mmio 4G
usage "--memory: '8' is not a size" script x.img --nanabox n.7b --memory 8
usage "only one of the script and the NanaBox file" script x.img -o - --nanabox -
usage "stage prints its report on standard output" stage x.img --script -
usage "--output and --child exclude each other" stage x.img --output a.vhdx --child b.avhdx
usage "--dry-run: verify writes nothing anyway" verify x.img --dry-run
# Each command takes the options it declares; the others of the family
# are refused by name, as are values out of their declared bounds.
usage "--force: verify deletes nothing" verify x.img --force
usage "verify takes no registry or guest options" verify x.img --reg f.reg
usage "remove takes no registry or guest options" remove x.img --repair
usage "remove takes no host options" remove x.img --script s.ps1
usage "remove takes no host options" remove x.img --vm-name VM
usage "--short-names: auto, on or off" stage x.img --short-names maybe
usage "--driver-store-copy-mode: a number from 0 to 2, not '3'" stage x.img --driver-store-copy-mode 3
usage "--driver-store-copy-mode: a number from 0 to 2, not '-1'" stage x.img --driver-store-copy-mode -1
usage "not '0x100000000'" stage x.img --gpu-virtualization-flags 0x100000000
usage "--output-format: vhdx, vhdx-fixed, vhd or raw" stage x.img --output x.vhdx --output-format qcow2
usage "--output-format: vhdx, vhdx-fixed, vhd or raw" compact x.img --output y.img --output-format qcow2
usage "--child c.img: the new child is a differencing VHDX" stage x.img --child c.img
usage "--parent-path: 'C:/x.vhdx' is not an absolute Windows path" stage x.img --child c.avhdx --parent-path C:/x.vhdx
usage "--partition: '70000' is not a partition number" stage x.img --partition 70000
usage "--vm-name: empty" script x.img -o s.ps1 --vm-name ''
usage "--cpus: '1025' is not a count" script x.img --nanabox n.7b --cpus 1025
usage "unknown option '--reg'" inspect x.img --reg f.reg
usage "unexpected argument 'y.img'" verify x.img y.img
# A value the bounds allow, in hex too, passes the parser: what fails
# next is the missing image.
run 1 "$GPUPV_PREP" stage x.img --gpu-virtualization-flags 0xffffffff --driver-store-copy-mode 2
grep -q "x.img" "$TMP/err" || fail "a valid option value refused: $(cat "$TMP/err")"
[ ! -e s.ps1 ] && [ ! -e n.7b ] || fail "a refused run wrote a sidecar file"
pass cli
