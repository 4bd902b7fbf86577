#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario: open/close/status with real dm-crypt. Disks (formatted on the host):
#   /dev/vda  file KEK $KEK_DIR/a.bin         /dev/vdb  SoftHSM2 AES KEK ($P11_URI)
#   /dev/vdc  file KEK $KEK_DIR/wrong.bin, but the guest holds a different key at that path;
#             its recovery key is in /recovery.key
# Prints "KC-OK <check>" per passed check; any failure exits non-zero.
set -eu
. /scenario.env 2>/dev/null || true

fail() { echo "KC-FAIL $*"; exit 1; }
ok() { echo "KC-OK $*"; }
# Run a command that must fail with exit code $1.
expect_exit() {
	want=$1; shift
	set +e; "$@" >/tmp/out 2>&1; got=$?; set -e
	cat /tmp/out
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}

# json NAME: /tmp/NAME.json (a --json output) on one console line, "KC-JSON NAME {...}", for the
# host to validate against doc/schema/ (tests/vm/open-close.sh).
json() { printf 'KC-JSON %s %s\n' "$1" "$(tr -d '\n' </tmp/"$1".json)"; }

kekcrypt status --json >/tmp/status-all.json || fail "status with no mapping"
json status-all

# Round trips of 1, 8 and 16 MiB through each volume, with a close/reopen in between.
for case in vda:1 vda:8 vda:16 vdb:1 vdb:8; do
	dev=${case%:*} mib=${case#*:}
	{
		kekcrypt open /dev/$dev rt >/tmp/open.out
		grep -q "with token 0" /tmp/open.out || fail "open did not name the token"
		# dd with 1 MiB blocks: pipes and small reads are slow under emulation.
		dd if=/dev/urandom of=/tmp/data bs=1M count="$mib" 2>/dev/null
		want=$(sha256sum /tmp/data | cut -d' ' -f1)
		dd if=/tmp/data of=/dev/mapper/rt bs=1M conv=fsync 2>/dev/null
		kekcrypt close rt
		[ ! -e /dev/mapper/rt ] || fail "mapping still present after close"
		kekcrypt open /dev/$dev rt >/dev/null
		dd if=/dev/mapper/rt of=/tmp/back bs=1M count="$mib" 2>/dev/null
		got=$(sha256sum /tmp/back | cut -d' ' -f1)
		[ "$got" = "$want" ] || fail "$dev $mib MiB read back differs"
		kekcrypt close rt
		ok "roundtrip-$dev-${mib}MiB"
	}
done

# The raw device never holds the plaintext.
kekcrypt open /dev/vda pt --json >/tmp/open.json
json open
# 4.5 MiB of a recognisable line (no early-closing pipes: the guest shell has pipefail).
echo KEKCRYPT-PLAINTEXT-MARKER-0123456789 >/tmp/marker
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do
	cat /tmp/marker /tmp/marker >/tmp/marker2 && mv /tmp/marker2 /tmp/marker
done
dd if=/tmp/marker of=/dev/mapper/pt bs=1M conv=fsync 2>/dev/null
head -c 4194304 /dev/mapper/pt >/tmp/readback
grep -q KEKCRYPT-PLAINTEXT-MARKER /tmp/readback || fail "marker not readable"
# Where it could be: the header (16 MiB) and the data segment's start, where it was written;
# read into tmpfs first (grep -q on a pipe could end the reader early), not the whole 96 MiB
# device (an emulated grep took 45 s over it).
dd if=/dev/vda of=/tmp/raw bs=1M count=24 2>/dev/null
[ "$(stat -c %s /tmp/raw)" = 25165824 ] || fail "could not read the raw device"
if grep -qF KEKCRYPT-PLAINTEXT-MARKER /tmp/raw; then fail "plaintext on the raw device"; fi
rm -f /tmp/raw
ok "raw-device-ciphertext"

# The key reaches dm-crypt through the kernel keyring, not the table.
key=$(dmsetup table --showkeys pt | cut -d' ' -f5)
case "$key" in
:64:logon:*) ok "keyring-reference" ;;
*) fail "dm table key field is not a keyring reference" ;;
esac
kekcrypt status pt --json >/tmp/status.json
json status
grep -q '"kekcrypt":true' /tmp/status.json || fail "status does not see a kekcrypt volume"
grep -q '"key_in_keyring":true' /tmp/status.json || fail "status key_in_keyring"
grep -q '"cipher":"aes-xts-plain64"' /tmp/status.json || fail "status cipher"
grep -q '"key_bits":512' /tmp/status.json || fail "status key_bits"
grep -q '"device":"/dev/vda"' /tmp/status.json || fail "status backing device"
kekcrypt status >/tmp/st.txt
grep -q "/dev/mapper/pt is active" /tmp/st.txt || fail "status lists mappings"
ok "status"

# Name already in use; device already open under another name.
expect_exit 11 kekcrypt open /dev/vdb pt
grep -q "already exists" /tmp/out || fail "name-in-use message"
expect_exit 12 kekcrypt open /dev/vda other
[ ! -e /dev/mapper/other ] || fail "second mapping of one device appeared"
ok "name-and-device-in-use"

# A busy mapping is not closed.
mkfs.ext4 -q /dev/mapper/pt
mkdir -p /mnt && mount /dev/mapper/pt /mnt
expect_exit 12 kekcrypt close pt
grep -q "in use" /tmp/out || fail "busy close message"
[ -e /dev/mapper/pt ] || fail "busy mapping disappeared"
umount /mnt
kekcrypt close pt
ok "busy-close-refused"

# Read-only open refuses writes.
kekcrypt open --readonly /dev/vda ro >/dev/null
[ "$(blockdev --getro /dev/mapper/ro)" = 1 ] || fail "read-only mapping is writable"
if dd if=/dev/zero of=/dev/mapper/ro bs=4096 count=1 conv=fsync 2>/dev/null; then
	fail "write to a read-only mapping succeeded"
fi
kekcrypt status ro --json >/tmp/st.json
grep -q '"readonly":true' /tmp/st.json || fail "status readonly"
kekcrypt close ro
ok "readonly"

# Wrong KEK: exit 8 and no mapping.
expect_exit 8 kekcrypt open /dev/vdc bad
grep -q "integrity check" /tmp/out || fail "wrong-KEK message"
[ ! -e /dev/mapper/bad ] || fail "mapping appeared with a wrong KEK"
dmsetup ls >/tmp/ls.txt
if grep -q bad /tmp/ls.txt; then fail "dmsetup lists a mapping for a wrong KEK"; fi
ok "wrong-kek-no-mapping"

# Break-glass: the recovery key opens /dev/vdc, whose KEK the guest lacks; a wrong one maps
# nothing.
echo cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc >/tmp/wrong.key
expect_exit 8 kekcrypt open /dev/vdc rec --recovery --key-file /tmp/wrong.key
[ ! -e /dev/mapper/rec ] || fail "mapping appeared with a wrong recovery key"
kekcrypt open /dev/vdc rec --recovery --key-file /recovery.key >/tmp/open.out
grep -q "with the recovery key" /tmp/open.out || fail "recovery open did not say so"
dd if=/dev/urandom of=/tmp/data bs=1M count=2 2>/dev/null
dd if=/tmp/data of=/dev/mapper/rec bs=1M conv=fsync 2>/dev/null
kekcrypt close rec
kekcrypt open /dev/vdc rec --recovery --key-file - --json </recovery.key >/tmp/open-recovery.json
json open-recovery
dd if=/dev/mapper/rec of=/tmp/back bs=1M count=2 2>/dev/null
[ "$(sha256sum </tmp/back)" = "$(sha256sum </tmp/data)" ] || fail "recovery round trip differs"
kekcrypt close rec
ok "recovery-open"

# An unprivileged caller is told permission is denied (exit 14), and nothing is mapped.
expect_exit 14 setpriv --reuid=65534 --regid=65534 --clear-groups kekcrypt open /dev/vda np
grep -q "permission denied" /tmp/out || fail "permission message"
[ ! -e /dev/mapper/np ] || fail "mapping appeared for an unprivileged caller"
ok "permission-denied"

# Errors on closing what does not exist.
expect_exit 3 kekcrypt close nosuch
ok "close-missing"
echo "KC-SCENARIO-DONE"
