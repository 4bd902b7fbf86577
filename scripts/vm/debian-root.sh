#!/bin/bash
# Unpack a minimal Debian 12 root filesystem into DIR, for the boot tests (tests/vm/boot*.sh).
#
# Usage: scripts/vm/debian-root.sh [--variant initramfs-tools] DIR
#   --variant V  initramfs-tools (default): cryptsetup-initramfs + initramfs-tools
#
# The first run builds the root with debootstrap --variant=minbase from the mirror in this
# machine's apt configuration (read now, never stored in the repo), with the Debian cloud
# kernel, systemd, cryptsetup and kekcrypt's runtime libraries, and keeps it as a tarball in
# $KEKCRYPT_VM_CACHE (default /var/cache/kekcrypt-vm) named after the package list; later
# runs unpack that. DIR must not exist. Needs root.
set -euo pipefail

CACHE=${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}
SUITE=bookworm
VARIANT=initramfs-tools
COMMON=(systemd-sysv udev kmod linux-image-cloud-amd64 cryptsetup e2fsprogs ca-certificates
	libcryptsetup12 libjson-c5 libcurl4 libp11-kit0 libdevmapper1.02.1 libblkid1 libssl3
	util-linux iproute2)

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

while [ $# -gt 1 ]; do
	case $1 in
	--variant) VARIANT=$2; shift 2 ;;
	*) die "unknown option $1" ;;
	esac
done
[ $# -eq 1 ] || die "usage: $0 [--variant initramfs-tools] DIR"
DIR=$1
[ ! -e "$DIR" ] || die "$DIR exists"
[ "$(id -u)" -eq 0 ] || die "run as root"

case $VARIANT in
initramfs-tools) PKGS=("${COMMON[@]}" initramfs-tools cryptsetup-initramfs) ;;
*) die "unknown variant $VARIANT" ;;
esac
key=$(printf '%s\n' "$SUITE" "${PKGS[@]}" | sha256sum | cut -c1-16)
tarball=$CACHE/debian-root-$VARIANT-$key.tar

if [ ! -s "$tarball" ]; then
	command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh)"
	url=$(mirror | head -n 1)
	[ -n "$url" ] || die "no $SUITE mirror in the apt configuration"
	mkdir -p "$CACHE"
	build=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
	trap 'rm -rf "$build"' EXIT
	echo "debian-root: debootstrap $SUITE ($VARIANT) from the apt mirror, once" >&2
	if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PKGS[*]}")" \
		"$SUITE" "$build/root" "$url" >"$build/log" 2>&1; then
		tail -n 30 "$build/log" >&2
		die "debootstrap failed"
	fi
	rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*
	tar -C "$build/root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$build"
	trap - EXIT
fi
mkdir -p "$DIR"
tar -C "$DIR" -xf "$tarball"
