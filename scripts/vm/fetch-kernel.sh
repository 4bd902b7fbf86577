#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetch Debian's cloud kernel for the QEMU test guest, without installing it on the host.
#
# Usage: scripts/vm/fetch-kernel.sh [--quiet]
#
# Resolves linux-image-cloud-amd64 to the versioned package it depends on
# (linux-image-6.1.0-N-cloud-amd64), downloads it with `apt-get download`, unpacks it with
# `dpkg-deb -x` into the cache directory and runs depmod on the unpacked tree.
#
# Cache: "${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}", one directory per package version;
# a finished directory is never modified again, so readers need no lock. Concurrent runs
# serialise on an flock.
#
# Prints (and records in $CACHE/kernel.env) lines of the form NAME=VALUE:
#   KEKCRYPT_VM_KVER=6.1.0-N-cloud-amd64
#   KEKCRYPT_VM_VMLINUZ=/…/boot/vmlinuz-6.1.0-N-cloud-amd64
#   KEKCRYPT_VM_MODULES=/…/lib/modules/6.1.0-N-cloud-amd64
# Environment:
#   KEKCRYPT_VM_CACHE       cache directory (default /var/cache/kekcrypt-vm)
#   KEKCRYPT_VM_KERNEL_PKG  exact package to use instead of resolving the metapackage
#   KEKCRYPT_VM_LOCK_WAIT   seconds to wait for a concurrent fetch (default 900)
set -euo pipefail

readonly META_PKG=linux-image-cloud-amd64
CACHE=${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}
LOCK_WAIT=${KEKCRYPT_VM_LOCK_WAIT:-900}
QUIET=0
WORK=

die() {
	echo "fetch-kernel: error: $*" >&2
	exit 1
}

info() {
	[ "$QUIET" = 1 ] || echo "fetch-kernel: $*" >&2
}

# Print the versioned kernel package the metapackage depends on.
resolve_pkg() {
	local dep

	if [ -n "${KEKCRYPT_VM_KERNEL_PKG:-}" ]; then
		echo "$KEKCRYPT_VM_KERNEL_PKG"
		return 0
	fi
	dep=$(apt-cache depends --no-recommends --no-suggests "$META_PKG" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1) || true
	[ -n "$dep" ] || return 1
	echo "$dep"
}

# Print the candidate version apt would download for package $1.
candidate_version() {
	apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n 1
}

# Print what identifies the state of apt's package lists (and the package override).
apt_stamp() {
	local lists

	lists=$(stat -c %Y /var/lib/apt/lists 2>/dev/null) || lists=none
	printf '%s:%s' "$lists" "${KEKCRYPT_VM_KERNEL_PKG:-meta}"
}

# Print the newest finished kernel directory in the cache (fallback when apt knows nothing).
newest_cached() {
	local d best=

	for d in "$CACHE"/linux-image-*; do
		[ -f "$d/.complete" ] || continue
		best=$d
	done
	[ -n "$best" ] || return 1
	echo "$best"
}

# Print NAME=VALUE lines describing the unpacked kernel in directory $1.
describe() {
	local dir=$1 kver vmlinuz moddir

	kver=$(cat "$dir/.kver")
	vmlinuz="$dir/root/boot/vmlinuz-$kver"
	moddir=$(cat "$dir/.moddir")
	[ -f "$vmlinuz" ] || die "'$vmlinuz' is missing; remove '$dir' and retry"
	[ -d "$moddir" ] || die "'$moddir' is missing; remove '$dir' and retry"
	printf 'KEKCRYPT_VM_KVER=%s\nKEKCRYPT_VM_VMLINUZ=%s\nKEKCRYPT_VM_MODULES=%s\n' \
		"$kver" "$vmlinuz" "$moddir"
}

# Download and unpack package $1 (version $2) into $3. Called with the lock held.
download_unpack() {
	local pkg=$1 ver=$2 dest=$3 work deb kver moddir

	# Left over by an interrupted run (we hold the lock, so nobody else is working).
	rm -rf "$CACHE"/.work.*
	work=$(mktemp -d "$CACHE/.work.XXXXXX")
	WORK=$work
	chmod 0755 "$work"
	info "downloading $pkg $ver"
	# Sandbox user root: the work directory is root's, _apt could not write there.
	if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
		die "'apt-get download $pkg=$ver' failed (run 'apt-get update' first, or check the apt sources)"
	fi
	deb=$(find "$work" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
	[ -n "$deb" ] || die "apt-get download produced no ${pkg}_*.deb in '$work'"
	info "unpacking $(basename "$deb")"
	dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x '$deb' failed"

	kver=${pkg#linux-image-}
	[ -f "$work/root/boot/vmlinuz-$kver" ] || die "no boot/vmlinuz-$kver in '$deb'"
	if [ -d "$work/root/lib/modules/$kver" ]; then
		moddir="lib/modules/$kver"
	elif [ -d "$work/root/usr/lib/modules/$kver" ]; then
		moddir="usr/lib/modules/$kver"
	else
		die "no modules directory for $kver in '$deb'"
	fi
	# The package leaves modules.dep to its postinst; generate it for modinfo/modprobe -b.
	# depmod -b BASE reads BASE/lib/modules/KVER.
	depmod -b "$work/root/${moddir%lib/modules/*}" "$kver" ||
		die "depmod on the unpacked kernel failed"
	[ -s "$work/root/$moddir/modules.dep" ] || die "depmod wrote no modules.dep"
	rm -f "$deb"

	echo "$kver" >"$work/.kver"
	echo "$dest/root/$moddir" >"$work/.moddir"
	echo "$pkg $ver" >"$work/.package"
	touch "$work/.complete"
	mv -T "$work" "$dest" || die "cannot move '$work' to '$dest'"
	WORK=
}

main() {
	local pkg ver dir out stamp old_stamp

	while [ $# -gt 0 ]; do
		case $1 in
		--quiet | -q) QUIET=1 ;;
		-h | --help)
			sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
			exit 0
			;;
		*) die "unknown argument '$1' (see --help)" ;;
		esac
		shift
	done
	command -v apt-get >/dev/null || die "apt-get not found (Debian host required)"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	command -v depmod >/dev/null || die "depmod not found (install kmod)"
	command -v flock >/dev/null || die "flock not found (install util-linux)"
	mkdir -p "$CACHE" || die "cannot create cache directory '$CACHE'"
	trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT

	# Fast path: apt's package lists have not changed since the last resolution, so the
	# answer is the same (apt-cache alone costs about 2 s).
	stamp="$(apt_stamp)"
	if [ -f "$CACHE/resolved" ] && read -r old_stamp dir <"$CACHE/resolved" &&
		[ "$old_stamp" = "$stamp" ] && [ -f "$dir/.complete" ]; then
		describe "$dir"
		return 0
	fi

	exec 9>"$CACHE/.lock" || die "cannot open lock file '$CACHE/.lock'"
	flock -w "$LOCK_WAIT" 9 || die "timed out after ${LOCK_WAIT}s waiting for '$CACHE/.lock'"

	if pkg=$(resolve_pkg) && ver=$(candidate_version "$pkg") && [ -n "$ver" ] &&
		[ "$ver" != "(none)" ]; then
		# ':' (epoch) and '~' are fine in a directory name but keep it tidy.
		dir="$CACHE/$pkg"_$(echo "$ver" | tr ':~' '%_')
		if [ -f "$dir/.complete" ]; then
			info "using cached $pkg $ver"
		else
			rm -rf "$dir"
			download_unpack "$pkg" "$ver" "$dir"
		fi
	elif [ -n "${KEKCRYPT_VM_KERNEL_PKG:-}" ]; then
		die "apt has no candidate for KEKCRYPT_VM_KERNEL_PKG='$KEKCRYPT_VM_KERNEL_PKG'"
	elif dir=$(newest_cached); then
		info "apt cannot resolve $META_PKG; using cached $(cat "$dir/.package")"
	else
		die "apt cannot resolve $META_PKG (run 'apt-get update'?) and '$CACHE' holds no kernel"
	fi

	out=$(describe "$dir")
	printf '%s %s\n' "$stamp" "$dir" >"$CACHE/resolved.tmp.$$"
	mv -f "$CACHE/resolved.tmp.$$" "$CACHE/resolved"
	printf '%s\n' "$out" >"$CACHE/kernel.env.tmp.$$"
	mv -f "$CACHE/kernel.env.tmp.$$" "$CACHE/kernel.env"
	printf '%s\n' "$out"
}

main "$@"
