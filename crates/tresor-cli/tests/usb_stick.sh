#!/usr/bin/env bash
# Simulates a USB stick for the drive tests, as root, visible to nothing outside the test:
# an ext4 image on a loop device, mounted inside a private mount namespace whose /dev is a
# tmpfs copy carrying a /dev/disk/by-id/usb-* link to the loop device (how Linux, and so
# sysinfo, tells a USB drive). Usage: usb_stick.sh TRESOR_BIN OUT_DIR
set -euo pipefail
bin=$1
out=$2
work=$(mktemp -d /tmp/tresor-usb.XXXXXX)
truncate -s 32M "$work/stick.img"
mkfs.ext4 -q -L TRESORKEY "$work/stick.img"
loop=$(losetup --find --show "$work/stick.img")
cleanup() { losetup -d "$loop" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

export bin out work loop
unshare -m --propagation private bash -euo pipefail <<'INNER'
mnt=$work/mnt
mkdir -p "$mnt" "$work/olddev"
mount "$loop" "$mnt"

# A private /dev: the old one bind-mounted aside, a tmpfs in its place with the nodes the
# test needs, the loop device, and the by-id and by-label links udev would have made.
mount --bind /dev "$work/olddev"
mount -t tmpfs -o mode=755 tmpfs /dev
for node in null zero urandom random tty; do
  [ -e "$work/olddev/$node" ] && cp -a "$work/olddev/$node" /dev/ 2>/dev/null || true
done
cp -a "$work/olddev/$(basename "$loop")" /dev/ 2>/dev/null || touch "/dev/$(basename "$loop")"
mkdir -p /dev/disk/by-id /dev/disk/by-label
ln -s "../../$(basename "$loop")" /dev/disk/by-id/usb-Tresor_Test_Stick_0001-0:0
ln -s "../../$(basename "$loop")" /dev/disk/by-label/TRESORKEY

echo "$mnt" > "$out/mount_path"
"$bin" --json media list > "$out/media.json"

export TRESOR_KEY_PASSWORD='usb stick key password'
"$bin" --json key generate --drive "$mnt" --login ivan > "$out/generate.json"

# Pull the stick out and plug it back in.
umount "$mnt"
mount "$loop" "$mnt"
"$bin" --json key check --drive "$mnt" --login ivan > "$out/check.json"

# Write protection: a clear error, and nothing changes.
mount -o remount,ro "$mnt"
set +e
"$bin" key generate --drive "$mnt" --login olena 2> "$out/readonly.err"
echo $? > "$out/readonly.code"
set -e
mount -o remount,rw "$mnt"

# A full stick: a clear error, and the existing key still opens.
dd if=/dev/zero of="$mnt/filler" bs=64k status=none 2>/dev/null || true
dd if=/dev/zero of="$mnt/filler2" bs=1k status=none 2>/dev/null || true
set +e
"$bin" key generate --drive "$mnt" --login olena 2> "$out/full.err"
echo $? > "$out/full.code"
set -e
"$bin" --json key check --drive "$mnt" --login ivan > "$out/check_after_full.json"
ls -a "$mnt/Tresor" > "$out/folders_after_full"
umount "$mnt"
INNER
