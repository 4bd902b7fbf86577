#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kekcrypt-encrypt-root's checks, on ext4 images made here: every refusal (a LUKS volume, no
# filesystem, another filesystem, not Debian, no kekcrypt in it, no initramfs package of ours,
# no kernel, /boot on the root without --boot-outside, a /boot partition that is not attached, a
# crypttab entry of that name, no configuration, a filesystem reaching its end) says why, exits
# 1 and leaves the image byte for byte as it was; bad usage exits 2; --dry-run on a system it
# can handle says what it would write (the crypttab entry for initramfs-tools and for dracut,
# the fstab change for a root named by its partition) and changes nothing. The whole run, on a
# real Debian image that then boots, is tests/vm/boot.sh's: it encrypts its roots with this
# script.
. "$(dirname "$0")/lib.sh"
need mke2fs mkswap blkid findmnt losetup unshare sha256sum

T=$T_DIR
ER=$KC_BUILDDIR/kekcrypt-encrypt-root
[ -x "$ER" ] || bail_out "$ER is not built"
export KEKCRYPT
K=$T/kek.bin
new_kek "$K"
URI=file:$K
policy_allow file allowed-paths "$K"

# sys DIR [VARIANT]: a minimal tree that passes for a Debian system with kekcrypt and the
# initramfs package of VARIANT (initramfs-tools, dracut) installed, a kernel, a configuration.
sys() {
	mkdir -p "$1/etc/kekcrypt" "$1/usr/bin" "$1/boot" "$1/lib/modules/6.1.0-kc" "$1/dev"
	printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n' >"$1/etc/os-release"
	printf '#!/bin/sh\n' >"$1/usr/bin/kekcrypt"
	chmod 755 "$1/usr/bin/kekcrypt"
	if [ "${2:-initramfs-tools}" = dracut ]; then
		mkdir -p "$1/usr/lib/dracut/modules.d/90kekcrypt"
		: >"$1/usr/lib/dracut/modules.d/90kekcrypt/module-setup.sh"
	else
		mkdir -p "$1/usr/share/initramfs-tools/hooks"
		: >"$1/usr/share/initramfs-tools/hooks/kekcrypt"
		: >"$1/usr/share/initramfs-tools/hooks/cryptroot"
	fi
	: >"$1/boot/vmlinuz-6.1.0-kc"
	printf '[file]\nallowed-paths = /etc/kekcrypt/kek.bin\n' >"$1/etc/kekcrypt/kekcrypt.conf"
	printf 'LABEL=root / ext4 defaults 0 1\n' >"$1/etc/fstab"
}
# img NAME DIR: an ext4 image of DIR with room for the header at its end (32 MiB free).
img() {
	mke2fs -q -t ext4 -d "$2" -L root "$T/$1.img" 32M
	truncate -s +32M "$T/$1.img"
}
# refused DESC IMG TEXT [ARGS...]: the script refuses IMG, exit 1, saying TEXT, IMG unchanged.
refused() {
	local desc=$1 img=$2 text=$3 before
	shift 3
	before=$(sha256sum <"$img")
	assert_exit -m "$desc: refused, exit 1" 1 "$ER" "$img" --kek "$URI" --config "$T_CONF" "$@"
	assert_stderr_contains -m "... saying: $text" "$text"
	assert_eq -m "... the image unchanged" "$before" "$(sha256sum <"$img")"
}

# --- usage ---------------------------------------------------------------------------------------
assert_exit -m "--help: exit 0" 0 "$ER" --help
assert_stdout_contains -m "--help names --boot-outside" "--boot-outside"
sys "$T/ok"
img ok "$T/ok"
assert_exit -m "no --kek: usage, exit 2" 2 "$ER" "$T/ok.img"
assert_exit -m "no DEVICE: usage, exit 2" 2 "$ER" --kek "$URI"
assert_exit -m "an unknown option: exit 2" 2 "$ER" "$T/ok.img" --kek "$URI" --frobnicate
assert_exit -m "--name with a slash: exit 2" 2 "$ER" "$T/ok.img" --kek "$URI" --name a/b
assert_exit -m "--timeout 0: exit 2" 2 "$ER" "$T/ok.img" --kek "$URI" --timeout 0
assert_exit -m "--uuid that is not one: exit 2" 2 "$ER" "$T/ok.img" --kek "$URI" --uuid nope

# --- what the device holds -------------------------------------------------------------------------
truncate -s 48M "$T/empty.img"
refused "an empty device" "$T/empty.img" "holds no filesystem that blkid recognises"
truncate -s 48M "$T/luks.img"
kc format -q "$T/luks.img" --kek "$URI"
refused "a LUKS volume" "$T/luks.img" "is a LUKS volume already: add KEKs with 'kekcrypt kek add"
truncate -s 40M "$T/swap.img"
mkswap "$T/swap.img" >/dev/null
refused "something else (swap)" "$T/swap.img" "holds swap: only an ext2/3/4 root can be encrypted in place"
mke2fs -q -t ext4 "$T/full.img" 64M
refused "a filesystem reaching the device's end" "$T/full.img" "kekcrypt encrypt --dry-run refused"

# --- what the system on it is ------------------------------------------------------------------------
mkdir "$T/notdebian"
img notdebian "$T/notdebian"
refused "no os-release" "$T/notdebian.img" "does not hold a Debian system"
sys "$T/nokc"
rm "$T/nokc/usr/bin/kekcrypt"
img nokc "$T/nokc"
refused "kekcrypt not installed in it" "$T/nokc.img" "kekcrypt is not installed in it: install the kekcrypt and kekcrypt-initramfs"
sys "$T/nohook"
rm "$T/nohook/usr/share/initramfs-tools/hooks/kekcrypt"
img nohook "$T/nohook"
refused "no initramfs package of ours" "$T/nohook.img" "neither kekcrypt-initramfs"
sys "$T/nokernel"
rm "$T/nokernel/boot/vmlinuz-6.1.0-kc"
img nokernel "$T/nokernel"
refused "no kernel" "$T/nokernel.img" "no kernel in it"
refused "/boot on the root filesystem" "$T/ok.img" "/boot is on the root filesystem: a boot loader cannot read the kernel"
sys "$T/bootpart"
printf 'UUID=0badc0de-0000-4000-8000-000000000000 /boot ext4 defaults 0 2\n' >>"$T/bootpart/etc/fstab"
img bootpart "$T/bootpart"
refused "a /boot partition not attached here" "$T/bootpart.img" \
	"its /boot partition (UUID=0badc0de-0000-4000-8000-000000000000 in fstab) is not attached"
sys "$T/named"
printf 'root UUID=11111111-2222-4333-8444-555555555555 none luks\n' >"$T/named/etc/crypttab"
img named "$T/named"
refused "a crypttab entry named root" "$T/named.img" "has an entry named 'root'" --boot-outside
sys "$T/noconf"
rm "$T/noconf/etc/kekcrypt/kekcrypt.conf"
img noconf "$T/noconf"
refused "no kekcrypt.conf" "$T/noconf.img" "give the one it needs at boot with --image-config" \
	--boot-outside

# --- --dry-run -------------------------------------------------------------------------------------------
before=$(sha256sum <"$T/ok.img")
U=6d1b2c3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d
assert_exit -m "--dry-run --boot-outside (initramfs-tools): exit 0" 0 \
	"$ER" "$T/ok.img" --kek "$URI" --config "$T_CONF" --boot-outside --uuid "$U" --timeout 30 --dry-run
# (the keyscript where this build installs it: /usr/lib/kekcrypt by default, distcheck's prefix)
assert_true -m "... the crypttab entry: the keyscript, its timeout, initramfs" \
	grep -Eq "^kekcrypt-encrypt-root: crypttab: root UUID=$U timeout=30 luks,keyscript=/[^ ,]*/kekcrypt-keyscript,initramfs\$" "$OUT"
assert_stdout_contains -m "... says nothing was changed" "dry run: nothing was changed"
assert_eq -m "... the image unchanged" "$before" "$(sha256sum <"$T/ok.img")"
[ -z "$(findmnt -rn -S "$T/ok.img")" ] && [ -z "$(losetup -j "$T/ok.img")" ]
assert_eq -m "... nothing left mounted or attached" 0 $?
sys "$T/dracut" dracut
printf '/dev/vda1 / ext4 defaults 0 1\n' >"$T/dracut/etc/fstab"
img dracut "$T/dracut"
assert_exit -m "--dry-run, dracut, root named by its partition: exit 0" 0 \
	"$ER" "$T/dracut.img" --kek "$URI" --config "$T_CONF" --boot-outside --uuid "$U" --name sys --dry-run
assert_stdout_contains -m "... the crypttab entry for systemd-cryptsetup in the initramfs" \
	"crypttab: sys UUID=$U none luks,x-initrd.attach"
assert_stdout_contains -m "... fstab: the mapping instead of the partition" \
	"fstab: / from /dev/mapper/sys instead of /dev/vda1"
done_testing
