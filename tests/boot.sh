#!/bin/sh
# make check-boot: the strongest judge of a Linux guest.  A small Debian
# (debootstrap from Debian's archive, with a kernel) is put on ext4 in a
# GPT disk converted to VHDX, gpupv-prep stages an NVIDIA-shaped package
# (its user-mode libraries are real ELF shared objects with their sonames)
# and the host's WSL libraries into it, and QEMU boots it (KVM when
# /dev/kvm works, TCG otherwise; the kernel and initrd given directly).
# On the serial console the guest shows that the first-boot unit ran,
# that `ldconfig -p` lists the staged libraries from /usr/lib/wsl/lib, and
# that the unit disabled itself.  Slow (minutes): not part of `make check`.
. "$(dirname "$0")/functions.sh"
requires debootstrap qemu-system-x86_64 qemu-img mke2fs sfdisk gcc e2fsck
[ "$(id -u)" -eq 0 ] || skip "debootstrap needs root"
MIRROR=${GPUPV_BOOT_MIRROR:-http://deb.debian.org/debian}
SUITE=${GPUPV_BOOT_SUITE:-bookworm}
CACHE=${GPUPV_BOOT_CACHE:-$top_builddir/boot-cache}

# The guest tree, made once and kept (as a tarball) for later runs.
mkdir -p "$CACHE"
if [ ! -s "$CACHE/$SUITE-root.tar" ]; then
  echo "debootstrap $SUITE from $MIRROR (a few minutes) ..."
  debootstrap --variant=minbase \
    --include=linux-image-amd64,systemd-sysv,udev,kmod,initramfs-tools \
    "$SUITE" "$TMP/root" "$MIRROR" >"$TMP/debootstrap.log" 2>&1 || {
    tail -20 "$TMP/debootstrap.log" >&2
    grep -q 'Failed getting release file\|Couldn.t download\|Temporary failure' \
      "$TMP/debootstrap.log" && skip "debootstrap cannot reach $MIRROR"
    fail "debootstrap failed"
  }
  rm -rf "$TMP/root/var/cache/apt/archives"/*.deb
  tar -C "$TMP/root" -cf "$CACHE/$SUITE-root.tar.tmp" . &&
    mv "$CACHE/$SUITE-root.tar.tmp" "$CACHE/$SUITE-root.tar"
else
  mkdir -p "$TMP/root"
  tar -C "$TMP/root" -xf "$CACHE/$SUITE-root.tar"
fi
R="$TMP/root"
KERNEL=$(ls "$R"/boot/vmlinuz-* 2>/dev/null | tail -1)
INITRD=$(ls "$R"/boot/initrd.img-* 2>/dev/null | tail -1)
[ -n "$KERNEL" ] && [ -n "$INITRD" ] || fail "no kernel or initrd in the guest tree"

# The test's own unit (part of the fixture, not of what is staged): after
# the first-boot unit, report on the serial console, then power off.
cat >"$R/etc/systemd/system/gpupv-boot-check.service" <<'EOF'
[Unit]
Description=gpupv-prep boot test report
After=gpupv-prep-firstboot.service multi-user.target
[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/sh -c 'echo "BOOTCHECK status: $(cat /var/lib/gpupv-prep/firstboot.status 2>&1)"; ldconfig -p | grep /usr/lib/wsl/lib | sed "s/^/BOOTCHECK ldconfig:/"; if [ -e /etc/systemd/system/multi-user.target.wants/gpupv-prep-firstboot.service ]; then echo "BOOTCHECK unit: still enabled"; else echo "BOOTCHECK unit: disabled"; fi; journalctl -b -u gpupv-prep-firstboot --no-pager -o cat | sed "s/^/BOOTCHECK journal: /"; echo "BOOTCHECK done"; systemctl poweroff'
[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/gpupv-boot-check.service \
  "$R/etc/systemd/system/multi-user.target.wants/gpupv-boot-check.service"
echo gpupv-boot >"$R/etc/hostname"
printf '/dev/vda1 / ext4 defaults 0 1\n' >"$R/etc/fstab"

# The package: real shared objects under the INF's names.
PKG="$TMP/src/nv_dispig.inf_amd64_0123456789abcdef"
WSL="$TMP/src/wsl-lib"
mkdir -p "$PKG" "$WSL"
so() {  # OUT SONAME
  printf 'int %s_probe(void) { return 1; }\n' "$(echo "$2" | tr -c 'a-z0-9\n' _)" >"$TMP/so.c"
  gcc -shared -fPIC -Wl,-soname,"$2" -o "$1" "$TMP/so.c" || fail "gcc $2"
}
so "$PKG/libcuda_loader.so" libcuda.so.1
so "$PKG/libnvidia-ml_loader.so" libnvidia-ml.so.1
so "$PKG/libnvwgf2umx.so" libnvwgf2umx.so
so "$WSL/libdxcore.so" libdxcore.so
so "$WSL/libd3d12.so" libd3d12.so
so "$WSL/libd3d12core.so" libd3d12core.so
printf '%s\r\n' '[Version]' 'Class = Display' 'DriverVer = 11/16/2023, 31.0.15.4601' \
  '' '[DestinationDirs]' 'nv_libcuda_copyfiles = 11,lxss\lib' '' \
  '[nv_libcuda_copyfiles]' 'libcuda.so,libcuda_loader.so,,0x00004000' \
  'libcuda.so.1,libcuda_loader.so,,0x00004000' \
  'libcuda.so.1.1,libcuda_loader.so,,0x00004000' \
  'libnvidia-ml.so.1,libnvidia-ml_loader.so,,0x00004000' \
  'libnvwgf2umx.so,,0x00004000' >"$PKG/nv_dispig.inf"

# ext4 on GPT, as a cloud image has it, converted to VHDX.
truncate -s 2G "$TMP/p.ext"
mke2fs -q -F -t ext4 -d "$R" "$TMP/p.ext" >/dev/null || fail "mke2fs -d"
truncate -s 2100M "$TMP/disk.raw"
printf 'label: gpt\nstart=2048, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
  $((2 * 1024 * 2048)) | sfdisk -q "$TMP/disk.raw" >/dev/null 2>&1
dd if="$TMP/p.ext" of="$TMP/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$TMP/p.ext"
qemu-img convert -f raw -O vhdx "$TMP/disk.raw" "$TMP/guest.vhdx"
rm -f "$TMP/disk.raw"

run 0 "$GPUPV_PREP" inspect "$TMP/guest.vhdx"
grep -q "^linux: .*Debian GNU/Linux" "$TMP/out" || fail "inspect: $(cat "$TMP/out")"
run 0 "$GPUPV_PREP" stage "$TMP/guest.vhdx" "$PKG" "$WSL"
cat "$TMP/out"

# KVM where /dev/kvm works: a short probe boots the kernel without a
# root file system (it panics and stops); /dev/kvm that exists but fails
# (nested virtualization often does) gives no console output, and TCG is
# used instead.
accel=tcg timeout=900
if [ -w /dev/kvm ]; then
  timeout 30 qemu-system-x86_64 -accel kvm -m 512 -display none \
    -monitor none -no-reboot -nodefaults -serial "file:$TMP/probe.log" \
    -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 panic=-1" \
    >/dev/null 2>&1 || true
  if grep -q 'Linux version' "$TMP/probe.log" 2>/dev/null; then
    accel=kvm timeout=300
  else
    echo "/dev/kvm does not run this kernel here; using TCG"
  fi
fi
echo "booting with $accel (at most $timeout s) ..."
set +e
timeout "$timeout" qemu-system-x86_64 -accel "$accel" -m 1024 -smp 2 \
  -display none -monitor none -no-reboot -nodefaults \
  -serial "file:$TMP/serial.log" \
  -kernel "$KERNEL" -initrd "$INITRD" \
  -append "root=/dev/vda1 rw console=ttyS0 panic=-1 systemd.show_status=1" \
  -drive "file=$TMP/guest.vhdx,format=vhdx,if=virtio" >"$TMP/qemu.log" 2>&1
rc=$?
set -e
grep 'BOOTCHECK\|gpupv-prep-firstboot' "$TMP/serial.log" || true
[ "$rc" -ne 124 ] || { tail -30 "$TMP/serial.log" >&2; fail "the guest did not power off within $timeout s"; }
grep -q 'BOOTCHECK done' "$TMP/serial.log" || { tail -40 "$TMP/serial.log" >&2; fail "no report from the guest"; }
grep -q '^BOOTCHECK status: ok .*ldconfig ran; /usr/lib/wsl/lib is in the loader cache' "$TMP/serial.log" ||
  fail "the first-boot unit did not record success"
for lib in libcuda.so.1 libnvidia-ml.so.1 libdxcore.so libd3d12.so libd3d12core.so; do
  grep -q "BOOTCHECK ldconfig:.*$lib .*=> /usr/lib/wsl/lib/" "$TMP/serial.log" ||
    fail "ldconfig -p does not list $lib from /usr/lib/wsl/lib"
done
grep -q 'BOOTCHECK unit: disabled' "$TMP/serial.log" || fail "the first-boot unit is still enabled"
grep -q 'BOOTCHECK journal: gpupv-prep-firstboot: ldconfig ran' "$TMP/serial.log" ||
  fail "the unit's message is not in the journal"
pass "booted ($accel): the first-boot unit ran ldconfig, the loader finds /usr/lib/wsl/lib, the unit disabled itself"

# What the guest left: inspect reports it, and the image is still sound.
run 0 "$GPUPV_PREP" inspect --json "$TMP/guest.vhdx"
jqv .linux.first_boot | grep -q '^ok ' || fail "inspect: first_boot is $(jqv .linux.first_boot)"
run 0 "$GPUPV_PREP" verify "$TMP/guest.vhdx"
pass "inspect reports the first boot's status; verify still matches"
