#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Unpack a minimal Debian 12 root filesystem into DIR, for the boot tests (tests/vm/boot*.sh).
#
# Usage: scripts/vm/debian-root.sh [--variant initramfs-tools|dracut] DIR
#        scripts/vm/debian-root.sh [--variant ...] --cache-only
#   --variant V  initramfs-tools (default): initramfs-tools + cryptsetup-initramfs;
#                dracut: dracut + dracut-network (the two conflict, hence two roots)
#   --cache-only only make sure the cached tarball exists (scripts/test.sh makes both while
#                the Debian packages build, before the boot test unpacks them)
#
# The first run builds the root with debootstrap --variant=minbase from the mirror in this
# machine's apt configuration (read now, never stored in the repo), with the Debian cloud
# kernel, systemd, cryptsetup and kekcrypt's runtime libraries, and keeps it as a tarball in
# $KEKCRYPT_VM_CACHE (default /var/cache/kekcrypt-vm) named after the package list; later
# runs unpack that (a run that finds another making it waits for it). DIR must not exist.
# Needs root. (A first run here, both variants side by side, with the kernel's initramfs
# built: 160 s, 210 s of CPU; without it, below, ~110 s of CPU. One debootstrap of what they
# share, then each variant's packages by apt in a chroot, was tried: 220 s, 240 s of CPU.)
#
# The kernel is installed without its initramfs (INITRD=No): every user of the root builds
# one with kekcrypt installed, and the one made here was thrown away (dracut's generic image
# alone took ~60 s of CPU, a third of a first run). An empty file stands in for it, mode 0644
# as the kernel's postinst leaves an image: update-initramfs -u rebuilds only an image that
# exists, and the boot test checks that an existing image readable by all is made root's only.
set -euo pipefail

CACHE=${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}
SUITE=bookworm
VARIANT=initramfs-tools
KERNEL=linux-image-cloud-amd64
# libarchive13: kekcrypt doctor reads the initramfs with it (it suggests it; without it, doctor
# runs lsinitramfs or lsinitrd, which took minutes in an emulated guest).
COMMON=(systemd-sysv udev kmod cryptsetup e2fsprogs ca-certificates libcryptsetup12 libjson-c5 libcurl4 libp11-kit0 libdevmapper1.02.1 libblkid1 libssl3
	util-linux iproute2 libarchive13)

die() {
	echo "debian-root: $*" >&2
	exit 1
}

# The first http(s) mirror of $SUITE in the apt sources (deb822 or one-line format).
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v suite="$SUITE" '
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
			/^$/ { if (found) { print found; exit } uri = "" }
			END { if (found) print found }' "$f" | head -n 1
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' "$f"
	done
}

CACHE_ONLY=0
while [ $# -gt 0 ]; do
	case $1 in
	--variant) [ $# -gt 1 ] || die "--variant needs a value"; VARIANT=$2; shift 2 ;;
	--cache-only) CACHE_ONLY=1; shift ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -eq $((1 - CACHE_ONLY)) ] ||
	die "usage: $0 [--variant initramfs-tools|dracut] DIR, or [--variant ...] --cache-only"
DIR=${1:-}
[ -z "$DIR" ] || [ ! -e "$DIR" ] || die "$DIR exists"
[ "$(id -u)" -eq 0 ] || die "run as root"

# The kernel is installed by apt in the chroot, not by debootstrap: debootstrap takes the
# first alternative of its "initramfs-tools | linux-initramfs-tool", which conflicts with dracut.
case $VARIANT in
initramfs-tools) PKGS=("${COMMON[@]}" initramfs-tools cryptsetup-initramfs) ;;
# dbus: networkd; procps: pgrep for dracut's network module; zstd: the image's compression
# (scripts/vm/boot-lib.sh, root_config).
dracut) PKGS=("${COMMON[@]}" dracut dracut-network dbus procps zstd) ;;
*) die "unknown variant $VARIANT" ;;
esac
# (RECIPE: how the root is made, beyond its packages: 2 since the kernel's image is not built.)
RECIPE=2
key=$(printf '%s\n' "$SUITE" "${PKGS[@]}" "$KERNEL" "recipe $RECIPE" | sha256sum | cut -c1-16)
tarball=$CACHE/debian-root-$VARIANT-$key.tar

# One maker per variant: another run (--cache-only's, say) may be making it now.
mkdir -p "$CACHE"
exec {lock}>"$CACHE/.debian-root-$VARIANT.lock"
flock "$lock"
if [ ! -s "$tarball" ]; then
	command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh)"
	url=$(mirror | head -n 1)
	[ -n "$url" ] || die "no $SUITE mirror in the apt configuration"
	build=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
	trap 'rm -rf "$build"' EXIT
	echo "debian-root: debootstrap $SUITE ($VARIANT) from the apt mirror, once" >&2
	if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PKGS[*]}")" \
		"$SUITE" "$build/root" "$url" >"$build/log" 2>&1; then
		tail -n 30 "$build/log" >&2
		die "debootstrap failed"
	fi
	# /proc and /sys for the kernel's postinst (it builds an initramfs); the chroot's
	# sources.list is debootstrap's, with the same mirror.
	r=$build/root
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	mount -t proc proc "$r/proc" && mount -t sysfs sys "$r/sys" && mount --bind /dev "$r/dev"
	trap 'umount "$r/dev" "$r/sys" "$r/proc" 2>/dev/null; rm -rf "$build"' EXIT
	if ! chroot "$r" env DEBIAN_FRONTEND=noninteractive INITRD=No apt-get install -y \
		--no-install-recommends "$KERNEL" >>"$build/log" 2>&1; then
		tail -n 30 "$build/log" >&2
		die "installing $KERNEL in the chroot failed"
	fi
	kvers=$(ls "$r/lib/modules")
	[ "$(wc -w <<<"$kvers")" = 1 ] || die "expected one kernel in the chroot, found: $kvers"
	[ ! -e "$r/boot/initrd.img-$kvers" ] || die "INITRD=No did not keep the kernel's image out"
	install -m 644 /dev/null "$r/boot/initrd.img-$kvers"
	umount "$r/dev" "$r/sys" "$r/proc"
	: >"$r/etc/resolv.conf"
	trap 'rm -rf "$build"' EXIT
	rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*
	tar -C "$build/root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$build"
	trap - EXIT
fi
flock -u "$lock"
[ "$CACHE_ONLY" = 0 ] || exit 0
mkdir -p "$DIR"
# Less what a test system never reads: apt's caches, the translations and the documentation
# (a third of the root, which every boot test writes through dm-crypt under emulation).
tar -C "$DIR" -xf "$tarball" --exclude='./var/cache/apt/*.bin' \
	--exclude='./usr/share/locale/*' --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*'
