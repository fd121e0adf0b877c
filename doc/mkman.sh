#!/bin/sh
# mkman.sh BINARY: write gpupv-prep(1) on stdout, made from the built
# tool's own --help and `help COMMAND` texts, so the manual page and the
# help cannot tell two stories.  Only the prose around them (description,
# files, see also) is written here.
set -eu
bin=${1:?usage: mkman.sh BINARY}
help=$("$bin" --help)
version=$("$bin" --version | sed 's/^gpupv-prep //')
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
  date=$(date -u +%Y-%m-%d)
fi

# Text for roff: backslashes, leading dots and quotes, and hyphens.
roff() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'
}
# A help block (option lines "  -x, --long ARG  text", continuations
# indented further, anything else prose) as roff paragraphs.
options() {
  roff | awk '
    /^  \\-/ {
      line = substr($0, 3)
      if (match(line, /  +/)) {
        opt = substr(line, 1, RSTART - 1)
        text = substr(line, RSTART + RLENGTH)
      } else { opt = line; text = "" }
      printf ".TP\n.B %s\n", opt
      if (text != "") print text
      prose = 0
      next
    }
    /^     +[^ ]/ { sub(/^ +/, ""); print; next }
    /^$/ { prose = 0; next }
    { sub(/^ +/, ""); if (!prose) print ".PP"; print; prose = 1 }'
}
# The lines of a section of a help text, from its heading to a blank line.
section() {  # HEADING TEXT
  printf '%s\n' "$2" | awk -v h="$1" '
    $0 == h { on = 1; next }
    on && /^$/ { exit }
    on { print }'
}

cat <<ROFF
.TH GPUPV\\-PREP 1 "$date" "gpupv\\-prep $version" "User Commands"
.SH NAME
gpupv\\-prep \\- prepare Windows guest disks for Hyper\\-V GPU paravirtualization, offline
.SH SYNOPSIS
.B gpupv\\-prep
[\\fB\\-q\\fR] [\\fB\\-v\\fR] [\\fB\\-\\-no\\-progress\\fR]
.I COMMAND
[\\fIARGS\\fR]
.br
.B gpupv\\-prep help
[\\fICOMMAND\\fR]
.SH DESCRIPTION
.B gpupv\\-prep
writes host GPU driver packages into a Windows guest's disk image
(VHDX fixed, dynamic or differencing; VHD; raw) on Linux, with no
Hyper\\-V, no root and no helper VM: the package folders into
\\fBWindows\\eSystem32\\eHostDriverStore\\eFileRepository\\fR, the files a
driver's INF places in System32 and SysWOW64, and the registry settings
that go with them.
It also writes the PowerShell script that sets up the VM on the Hyper\\-V
host, a NanaBox configuration, and the collector that gathers the
packages on the host.
Every change is atomic: an interrupted run leaves the image as it was,
a refused one leaves it byte for byte unchanged, and a re\\-run with the
same packages writes nothing.
.SH COMMANDS
ROFF
section "Commands:" "$help" | while read -r name rest; do
  [ "$name" = help ] && continue
  h=$("$bin" help "$name")
  usage=$(printf '%s\n' "$h" | sed -n 's/^Usage: gpupv-prep //p' | roff)
  summary=$(printf '%s\n' "$h" | sed -n 2p | roff)
  printf '.SS "%s"\n%s\n' "$usage" "$summary"
  # The command's own options: the Options section without the ones
  # every command takes, listed once below.
  section "Options:" "$h" | grep -v -e '^  -q, --quiet' -e '^  -v, --verbose' \
    -e '^  --no-progress' | options
done
printf '.SH "OPTIONS OF EVERY COMMAND"\n'
section "Options of every command:" "$help" | options
printf '.SH ENVIRONMENT\n'
section "Environment:" "$help" | sed 's/^  \([A-Z_0-9]*=[^ ]*\) */  -\1  /' |
  options | sed 's/^\.B \\-/.B /'
printf '.SH "EXIT STATUS"\n'
section "Exit status:" "$help" | roff | awk '
  /^  [0-9]/ { sub(/^  /, ""); n = $1; sub(/^[^ ]+ +/, ""); printf ".TP\n.B %s\n%s\n", n, $0; next }
  { sub(/^ +/, ""); print }'
cat <<ROFF
.SH FILES
.TP
.I IMAGE.gpupv\\-journal
the undo journal of a raw or VHD image while a run commits; replayed or
refused by the next run, never left behind by a finished one.
.TP
.I Windows\\eSystem32\\eHostDriverStore\\egpupv\\-prep.json
in the guest: the manifest of what gpupv\\-prep staged (packages, file
hashes, System32 copies and their originals, registry edits), which
\\fBremove\\fR, \\fBverify\\fR, \\fBscript\\fR and updates read.
.TP
.I Windows\\eSystem32\\eHostDriverStore\\egpupv\\-prep\\-originals
in the guest: the System32 and SysWOW64 files a copy replaced.
.SH "JSON OUTPUT"
With \\fB\\-\\-json\\fR every command prints one JSON object on standard
output; its fields, per command, are listed in the README (section
"JSON output").  Every object begins with \\fBversion\\fR and
\\fBcommand\\fR and ends with \\fBwarnings\\fR; a failed run prints
\\fBerror\\fR with \\fBclass\\fR, \\fBexit_code\\fR and \\fBmessage\\fR.
.SH "SEE ALSO"
.BR qemu\\-img (1),
.BR virt\\-customize (1),
.BR virt\\-win\\-reg (1),
.BR hivexregedit (1),
.BR ntfs\\-3g (8)
ROFF
