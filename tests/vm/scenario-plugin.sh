#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario: stock cryptsetup opens kekcrypt volumes through the token plugin
# (libcryptsetup-token-kekcrypt.so in libcryptsetup's token dir), with real dm-crypt. Disks
# (formatted on the host):
#   /dev/vda  file KEK $KEK_DIR/a.bin, present in the guest
#   /dev/vdb  file KEK $KEK_DIR/b.bin, absent from the guest
#   /dev/vdc  file KEK $KEK_DIR/a.bin, its LUKS2 header detached in /c.hdr (data from offset 0)
# Prints "KC-OK <check>" per passed check; any failure exits non-zero.
set -eu
. /scenario.env 2>/dev/null || true

fail() { echo "KC-FAIL $*"; exit 1; }
ok() { echo "KC-OK $*"; }
# Run a command that must fail with exit code $1; its output is left in /tmp/out.
expect_exit() {
	want=$1; shift
	set +e; "$@" >/tmp/out 2>&1; got=$?; set -e
	cat /tmp/out
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}
no_mapping() {
	[ ! -e "/dev/mapper/$1" ] || fail "mapping $1 exists"
	if dmsetup ls | grep -q "^$1[[:space:]]"; then fail "dmsetup lists $1"; fi
}

plugin=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
[ -f "$plugin/libcryptsetup-token-kekcrypt.so" ] || fail "no plugin in '$plugin'"
ok "plugin-installed"

# Token first, no key file, nothing on stdin: the plugin supplies the keyslot passphrase.
cryptsetup open /dev/vda kp </dev/null || fail "cryptsetup open /dev/vda (token first)"
[ -b /dev/mapper/kp ] || fail "no /dev/mapper/kp"
cryptsetup status kp | grep -q 'type:[[:space:]]*LUKS2' || fail "status kp is not LUKS2"
ok "open-token-first"

dd if=/dev/urandom of=/tmp/data bs=1M count=8 2>/dev/null
want=$(sha256sum /tmp/data | cut -d' ' -f1)
dd if=/tmp/data of=/dev/mapper/kp bs=1M conv=fsync 2>/dev/null
cryptsetup close kp
no_mapping kp
ok "write-close"

cryptsetup open --token-only /dev/vda kp </dev/null || fail "cryptsetup open --token-only /dev/vda"
dd if=/dev/mapper/kp of=/tmp/back bs=1M count=8 2>/dev/null
[ "$(sha256sum /tmp/back | cut -d' ' -f1)" = "$want" ] || fail "data read back differs"
ok "open-token-only-readback"
key=$(dmsetup table --showkeys kp | cut -d' ' -f5)
case "$key" in
:64:logon:*) ok "keyring-reference" ;;
*) fail "dm table key field is not a keyring reference" ;;
esac
cryptsetup close kp

# The same data through kekcrypt's own open: one volume, two unlock paths.
kekcrypt open /dev/vda kk >/dev/null
dd if=/dev/mapper/kk of=/tmp/back bs=1M count=8 2>/dev/null
[ "$(sha256sum /tmp/back | cut -d' ' -f1)" = "$want" ] || fail "kekcrypt open reads other data"
kekcrypt close kk
ok "kekcrypt-open-same-data"

cryptsetup open --token-only --token-type kekcrypt --test-passphrase /dev/vda </dev/null ||
	fail "--token-type kekcrypt --test-passphrase"
no_mapping kp
ok "test-passphrase-no-mapping"

# KEK file missing in the guest: the token fails, nothing is mapped.
[ ! -e "$KEK_DIR/b.bin" ] || fail "b.bin should be absent"
expect_exit 1 cryptsetup open --token-only /dev/vdb kn </dev/null
grep -q "KEK file '$KEK_DIR/b.bin': No such file or directory" /tmp/out ||
	fail "no reason given for the missing KEK"
no_mapping kn
ok "missing-kek-token-only-no-mapping"
# Without --token-only: falls back to a passphrase; a wrong one maps nothing either.
set +e; echo not-the-passphrase | cryptsetup open /dev/vdb kn >/tmp/out 2>&1; got=$?; set -e
cat /tmp/out
[ "$got" -eq 2 ] || fail "fallback with a wrong passphrase exited $got, expected 2"
grep -q "No key available with this passphrase" /tmp/out || fail "no passphrase message"
no_mapping kn
ok "missing-kek-fallback-wrong-passphrase"

# A detached header: cryptsetup --header hands the plugin a device whose header is that file.
# (/tmp/data's digest again: expect_exit's want is the exit status now.)
want=$(sha256sum /tmp/data | cut -d' ' -f1)
cryptsetup open --token-only --header /c.hdr /dev/vdc dh </dev/null ||
	fail "cryptsetup open --token-only --header /c.hdr /dev/vdc"
dd if=/tmp/data of=/dev/mapper/dh bs=1M conv=fsync 2>/dev/null
cryptsetup close dh
# The data starts at sector 0 of the device: the first MiB is no longer zero, and no LUKS magic.
if cmp -s -n 1048576 /dev/vdc /dev/zero; then fail "nothing written at the device's start"; fi
if cryptsetup isLuks /dev/vdc; then fail "/dev/vdc holds a LUKS header"; fi
ok "detached-header-cryptsetup"
kekcrypt open --header /c.hdr /dev/vdc dk >/dev/null
dd if=/dev/mapper/dk of=/tmp/back bs=1M count=8 2>/dev/null
[ "$(sha256sum /tmp/back | cut -d' ' -f1)" = "$want" ] || fail "kekcrypt open --header reads other data"
kekcrypt close dk
ok "detached-header-kekcrypt-open"
# Without the header the device is not a volume: refused, nothing mapped.
expect_exit 10 kekcrypt open /dev/vdc dn
grep -q "with --header" /tmp/out || fail "no hint to name the detached header"
no_mapping dn
ok "detached-header-required"

echo "KC-SCENARIO-DONE"
