#!/bin/sh
# The --json reports against the schemas the README documents: every
# command's object has exactly the documented fields, each of its type,
# with "version" and "command" first and "warnings" last; a failure
# (usage, bad input, a missing image) prints the error object on stdout.
. "$(dirname "$0")/functions.sh"
requires qemu-img sgdisk mkntfs hivexregedit jq

PKG="$TMP/src/nv_dispig.inf_amd64_677da8a9230cea15"
mkdir -p "$PKG"
printf '[Version]\r\nDriverVer = 10/23/2023,31.0.15.4601\r\n[Mfg]\r\n' >"$PKG/nv_dispig.inf"
head -c 70000 /dev/urandom >"$PKG/nvlddmkm.sys"
mkgpt_windows "$TMP/g.raw"
qemu-img convert -f raw -O vhdx "$TMP/g.raw" "$TMP/g.vhdx"
IMG=$TMP/g.vhdx

# schema NAME 'FIELD:TYPE ...': the object in $TMP/out has these
# top-level fields in this order, nothing else, each of the jq type
# given (TYPE|null allows null).
schema() {
  sname=$1 want=$2
  got=$(jq -r 'keys_unsorted | join(" ")' "$TMP/out") ||
    fail "$sname: not JSON: $(head -c 300 "$TMP/out")"
  names=$(for f in $want; do printf '%s ' "${f%%:*}"; done)
  expect_eq "$got" "${names% }" "$sname: fields"
  for f in $want; do
    k=${f%%:*} t=${f#*:}
    tt=$(jq -r ".$k | type" "$TMP/out")
    case "|$t|" in
      *"|$tt|"*) ;;
      *) fail "$sname: .$k is $tt, not $t" ;;
    esac
  done
  expect_eq "$(jqv .version)" 1 "$sname: version"
}
# fields NAME PATH 'FIELD:TYPE ...': each object at the jq path has these.
fields() {
  fname=$1 fpath=$2 want=$3
  n=$(jq "[$fpath] | length" "$TMP/out")
  [ "$n" -gt 0 ] || fail "$fname: nothing at $fpath"
  for f in $want; do
    k=${f%%:*} t=${f#*:}
    bad=$(jq -r "[$fpath | .$k | type] | map(. as \$x | select((\"|$t|\" | contains(\"|\" + \$x + \"|\")) | not)) | length" "$TMP/out")
    expect_eq "$bad" 0 "$fname: $fpath.$k is not $t"
  done
  keys=$(jq -r "[$fpath | keys_unsorted | join(\" \")] | unique | join(\",\")" "$TMP/out")
  names=$(for f in $want; do printf '%s ' "${f%%:*}"; done)
  expect_eq "$keys" "${names% }" "$fname: fields of $fpath"
}

PKGS='name:string inf:string driver_ver:string|null action:string replaces:string|null role:string|null gpu:string|null files:number bytes:number'
REGISTRY='values_set:number values_deleted:number keys_created:number keys_deleted:number hives_written:array'

run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --dry-run --json
schema "stage --dry-run" 'version:number command:string image:string partition:number guest:string repository:string dry_run:boolean changed:boolean files_written:number bytes_written:number verified:boolean space:object registry:object system_files:array system_files_kept:number packages:array warnings:array'
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --json
schema stage 'version:number command:string image:string partition:number guest:string repository:string dry_run:boolean changed:boolean files_written:number bytes_written:number verified:boolean space:object registry:object system_files:array system_files_kept:number packages:array warnings:array'
expect_eq "$(jqv .command)" stage "command"
fields stage '.packages[]' "$PKGS"
fields stage '.space' 'free:number needed:number'
fields stage '.registry' "$REGISTRY"
expect_eq "$(jqv '.packages[0].action')" stage "stage action"

run 0 "$GPUPV_PREP" verify "$IMG" --json
schema verify 'version:number command:string image:string partition:number guest:string repository:string verified:boolean files_checked:number reader:string problems:array packages:array warnings:array'
fields verify '.packages[]' "$PKGS"
expect_eq "$(jqv '.packages[0].action')" check "verify action"

run 0 "$GPUPV_PREP" inspect "$IMG" --json
schema inspect 'version:number command:string image:object partition_table:string partitions:array windows:object linux:null host_driver_store:array warnings:array'
fields inspect '.image' 'path:string format:string subformat:string|null virtual_size:number file_size:number logical_sector_size:number physical_sector_size:number block_size:number|null parent:string|null disk_id:string|null creator:string|null log_replayed:boolean journal_replayed:boolean chain:array'
fields inspect '.partitions[]' 'index:number start:number size:number type:string type_name:string|null name:string|null filesystem:string label:string|null'
fields inspect '.windows' 'partition:number system_root:string build:string|null product:string|null volume_state:string hives:object'
fields inspect '.windows.hives' 'SYSTEM:string|null SOFTWARE:string|null'
fields inspect '.host_driver_store[]' 'package:string files:number bytes:number driver_ver:string|null wddm:string|null role:string|null gpu:string|null'

run 0 "$GPUPV_PREP" script "$IMG" -o "$TMP/s.ps1" --nanabox "$TMP/n.7b" --json
schema script 'version:number command:string image:string written:array warnings:array'
fields script '.written[]' 'kind:string path:string'
expect_eq "$(jqv '[.written[].kind] | join(",")')" hyper-v-script,nanabox "script: what was written"
run 0 "$GPUPV_PREP" host-script -o "$TMP/h.ps1" --json
schema host-script 'version:number command:string written:array warnings:array'
expect_eq "$(jqv '.written[0].kind')" host-script "host-script: kind"

run 0 "$GPUPV_PREP" remove "$IMG" --json
schema remove 'version:number command:string image:string partition:number guest:string repository:string dry_run:boolean changed:boolean files_written:number bytes_written:number verified:boolean registry:object system_files:array system_files_kept:number packages:array warnings:array'
expect_eq "$(jqv '.packages[0].action')" remove "remove action"

qemu-img convert -f raw -O vpc "$TMP/g.raw" "$TMP/g.vhd"
run 0 "$GPUPV_PREP" compact "$TMP/g.vhd" --dry-run --json
schema compact 'version:number command:string image:string dry_run:boolean ntfs_volumes:number unused_bytes:number block_size:number|null blocks_dropped:number file_size_before:number file_size_after:number allocated_before:number allocated_after:number|null warnings:array'
pass "every command's --json has its documented fields and types"

# Warnings that say what the run cannot know is right: a package folder
# not named as DriverStore names it, a DriverVer Windows would not write.
mkdir -p "$TMP/odd/my-driver"
printf '[Version]\r\nDriverVer = garbage\r\n' >"$TMP/odd/my-driver/odd.inf"
echo x >"$TMP/odd/my-driver/a.dll"
run 0 "$GPUPV_PREP" stage "$IMG" "$TMP/odd/my-driver" --dry-run --json
jqv '.warnings[]' | grep -q "package folder 'my-driver' is not named as the host's DriverStore names it (odd.inf_<arch>_<16 hex digits>)" ||
  fail "no warning for the folder name: $(jqv '.warnings')"
jqv '.warnings[]' | grep -q "DriverVer 'garbage' is not MM/DD/YYYY,a.b.c.d" ||
  fail "no warning for DriverVer: $(jqv '.warnings')"
run 0 "$GPUPV_PREP" stage "$IMG" "$PKG" --dry-run --json
expect_eq "$(jqv '.warnings | length')" 0 "a well-named package warned about"
pass "a folder name and a DriverVer that GPU-PV cannot use are warned about"

# The human summary counts each kind apart; a registry-only run says so.
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\gpupvtest]\r\n"Start"=dword:00000003\r\n' >"$TMP/svc.reg"
run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/svc.reg"
grep -q "wrote 0 files (0 bytes) into .*, edited the registry (1 value set, 0 deleted, 1 key created, 0 deleted)" "$TMP/out" ||
  fail "registry-only summary: $(cat "$TMP/out")"
run 0 "$GPUPV_PREP" stage "$IMG" --reg "$TMP/svc.reg"
grep -q "nothing to do: .* already holds what was asked" "$TMP/out" || fail "re-run: $(cat "$TMP/out")"
run 0 "$GPUPV_PREP" remove "$IMG"
grep -q "edited the registry (.* 1 deleted)" "$TMP/out" || fail "remove does not say it deleted the key: $(cat "$TMP/out")"

# A sidecar that cannot be written after the image was committed: the
# report of what the run did is still printed, with the error in it.
cp "$TMP/g.raw" "$TMP/side.raw"
run 1 "$GPUPV_PREP" stage "$TMP/side.raw" "$PKG" --script "$TMP/no-such-dir/s.ps1" --json
expect_eq "$(jqv '.packages[0].action')" stage "sidecar failure: the report"
expect_eq "$(jqv .changed)" true "sidecar failure: the run committed"
jqv .error.message | grep -q "no-such-dir" || fail "sidecar failure: error not in the report: $(cat "$TMP/out")"
grep -q "no-such-dir" "$TMP/err" || fail "sidecar failure: nothing on stderr"
run 0 "$GPUPV_PREP" verify "$TMP/side.raw"
pass "a sidecar failing after the commit: the report, with the error"

# Failures: the error object on stdout, the message on stderr as well.
ERR='version:number command:string|null error:object warnings:array'
failed() {  # RC CLASS ARGS...
  frc=$1 fclass=$2; shift 2
  run "$frc" "$GPUPV_PREP" "$@"
  schema "$* (failed)" "$ERR"
  fields "$* (failed)" '.error' 'class:string exit_code:number message:string'
  expect_eq "$(jqv .error.class)" "$fclass" "$*: error class"
  expect_eq "$(jqv .error.exit_code)" "$frc" "$*: exit code in the error"
  grep -q '^gpupv-prep: ' "$TMP/err" || fail "$*: nothing on stderr"
}
failed 2 usage stage "$IMG" --json --bogus
failed 2 usage script "$IMG" --json -o -
failed 1 failure inspect "$TMP/missing.vhdx" --json
printf 'REGEDIT5\r\n' >"$TMP/bad.reg"
failed 10 bad-input stage "$IMG" --reg "$TMP/bad.reg" --json
failed 2 usage nosuchcommand --json
pass "failures answer with the error object"
