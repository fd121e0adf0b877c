#!/bin/sh
# Set up a build on a fresh Debian 12 machine: install every build and test
# dependency (as root, with apt-get), then autoreconf, configure and make.
# Run again it is quick: packages already present are not fetched again and
# configure is skipped when the build tree is current.
set -eu
cd "$(dirname "$0")"

BUILD_DEPS="build-essential autoconf automake libtool pkg-config
  ntfs-3g-dev libhivex-dev libvhdi-dev zlib1g-dev libarchive-dev
  libext2fs-dev comerr-dev"
TEST_DEPS="qemu-utils ntfs-3g sleuthkit libfsntfs-utils libregf-utils
  libhivex-bin libwin-hivex-perl libvhdi-utils gdisk fdisk dosfstools mtools jq xz-utils
  gzip unzip zip gcab xxd time e2fsprogs debootstrap qemu-system-x86 seabios"

missing=""
for p in $BUILD_DEPS $TEST_DEPS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap.sh: missing packages:$missing" >&2
    echo "bootstrap.sh: run as root, or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The PowerShell grammar that judges the emitted scripts (test-only, from
# the npm registry).  Without node the parse test skips; Debian's nodejs
# is installed only when the machine has no node of its own.
if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } ||
    echo "bootstrap.sh: nodejs not installed; tests/script-parse.sh will skip" >&2
fi
if command -v npm >/dev/null 2>&1 && [ ! -d tests/node_modules/web-tree-sitter ]; then
  npm install --prefix tests --no-audit --no-fund --loglevel=error >/dev/null ||
    echo "bootstrap.sh: npm install failed; tests/script-parse.sh will skip" >&2
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
  autoreconf -fi
fi
if [ ! -f Makefile ] || [ configure -nt config.status ]; then
  ./configure --quiet
fi
make -j"$(nproc)"
