#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario (runs inside the QEMU guest, see scripts/vm/README.md): proves the harness
# with stock cryptsetup and real dm-crypt on /dev/vda (at least 64 MiB).
# Prints "KC-OK <step>" after each step; any failure prints "KC-FAIL <why>" and exits 1.
set -euo pipefail

readonly DEV=/dev/vda
readonly NAME=kc-smoke
readonly KEY=/tmp/smoke.key
readonly MIB=32

ok() { echo "KC-OK $1"; }
fail() {
	echo "KC-FAIL $*"
	exit 1
}

[ -b "$DEV" ] || fail "$DEV is not a block device"
head -c 64 /dev/urandom >"$KEY"

cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --key-file "$KEY" "$DEV" || fail "luksFormat"
cryptsetup isLuks --type luks2 "$DEV" || fail "isLuks after luksFormat"
ok luksFormat

cryptsetup open --key-file "$KEY" "$DEV" "$NAME" || fail "open"
[ -b "/dev/mapper/$NAME" ] || fail "/dev/mapper/$NAME missing after open"
ok open

# The volume key reaches dm-crypt through the kernel keyring: the table holds a reference
# (:<size>:logon:<description>), not the key in hex. Print only the key field's shape.
table=$(dmsetup table --showkeys "$NAME") || fail "dmsetup table"
read -r -a field <<<"$table"
cipher=${field[3]} key=${field[4]}
echo "dm table: ${field[*]:0:4} key-field=${key%%:cryptsetup:*}:... ${field[*]:5}"
[ "$cipher" = aes-xts-plain64 ] || fail "cipher is '$cipher', expected aes-xts-plain64"
case $key in
:64:logon:cryptsetup:*) ok keyring ;;
*) fail "the dm-crypt table holds no keyring reference (key field of ${#key} characters)" ;;
esac

# Large data stays in files on tmpfs and moves with dd bs=1M: under TCG, pipes and small
# reads (head -c) cost several seconds per 32 MiB.
dd if=/dev/urandom of=/tmp/data bs=1M count="$MIB" 2>/dev/null || fail "random data"
want=$(sha256sum /tmp/data | cut -d' ' -f1)
echo "sha256 of ${MIB} MiB written: $want"
dd if=/tmp/data of="/dev/mapper/$NAME" bs=1M conv=fsync 2>/dev/null || fail "write"
ok write

cryptsetup close "$NAME" || fail "close"
[ ! -e "/dev/mapper/$NAME" ] || fail "/dev/mapper/$NAME still present after close"
ok close

# Ciphertext on the raw device: the data segment starts after the LUKS2 header.
offset=$(cryptsetup luksDump "$DEV" | sed -n 's/^[[:space:]]*offset: *\([0-9]*\) \[bytes\]/\1/p' |
	head -n 1)
[ -n "$offset" ] || fail "no data segment offset in luksDump"
[ $((offset % 1048576)) -eq 0 ] || fail "data offset $offset is not MiB-aligned"
dd if="$DEV" of=/tmp/raw bs=1M iflag=direct skip=$((offset / 1048576)) count="$MIB" 2>/dev/null ||
	fail "raw read"
! cmp -s /tmp/raw /tmp/data || fail "the raw device holds the plaintext"
rm -f /tmp/raw
ok ciphertext

cryptsetup open --key-file "$KEY" "$DEV" "$NAME" || fail "reopen"
ok reopen
dd if="/dev/mapper/$NAME" of=/tmp/back bs=1M count="$MIB" 2>/dev/null || fail "read back"
got=$(sha256sum /tmp/back | cut -d' ' -f1)
echo "sha256 of ${MIB} MiB read back: $got"
[ "$got" = "$want" ] || fail "read back after reopen differs"
rm -f /tmp/back
ok verify

# A file system on the mapping (ext4 is built into the guest kernel).
mkfs.ext4 -q -F "/dev/mapper/$NAME" || fail "mkfs.ext4"
mkdir -p /mnt/smoke
mount -t ext4 "/dev/mapper/$NAME" /mnt/smoke || fail "mount ext4"
dd if=/tmp/data of=/mnt/smoke/file bs=1M count=1 2>/dev/null || fail "write to ext4"
want=$(sha256sum /mnt/smoke/file | cut -d' ' -f1)
umount /mnt/smoke || fail "umount ext4"
e2fsck -f -n "/dev/mapper/$NAME" >/dev/null || fail "e2fsck"
mount -t ext4 -o ro "/dev/mapper/$NAME" /mnt/smoke || fail "remount ext4"
got=$(sha256sum /mnt/smoke/file | cut -d' ' -f1)
umount /mnt/smoke
[ "$got" = "$want" ] || fail "file on ext4 differs after remount"
ok ext4

cryptsetup close "$NAME" || fail "final close"
ok "done"
