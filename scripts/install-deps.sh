#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install every package kekcrypt needs to build, test, run the guest tests and benchmarks,
# on a fresh Debian 12 machine. Idempotent. Needs root.
# Usage: scripts/install-deps.sh [--only PACKAGE...]
#   --only  only these packages of the list below (scripts/test.sh installs debootstrap first,
#           to start the boot test's Debian roots beside the rest of the install)
set -euo pipefail

packages=(
	# build
	autoconf automake libtool pkg-config gcc make
	libcryptsetup-dev libjson-c-dev libssl-dev libcurl4-openssl-dev libblkid-dev
	libdevmapper-dev libp11-kit-dev p11-kit libext2fs-dev libmount-dev libarchive-dev asciidoctor
	# make lint
	shellcheck
	# host tests
	cryptsetup-bin softhsm2 opensc python3 python3-cryptography gdb valgrind e2fsprogs
	util-linux fdisk xxd openssl
	# tests/host/adopt-ade.sh: an Azure Disk Encryption BEK volume (VFAT)
	dosfstools mtools
	# tests/host/json-schemas.sh: --json outputs against doc/schema/
	python3-jsonschema
	# tests/host/completion.sh: the completion under bash-completion (its _init_completion)
	bash-completion
	# tests/host/man-page.sh: man --warnings on the page
	man-db
	# guest tests (QEMU with a Debian kernel fetched by scripts/vm/fetch-kernel.sh)
	qemu-system-x86 busybox-static kmod cpio iproute2 keyutils dmsetup
	# tests/vm/rekey.sh: its guest reads `kekcrypt dump --json`
	jq
	# boot tests: a Debian root made with debootstrap (scripts/vm/debian-root.sh); qemu-img
	# for the template's clones' disk overlays (tests/vm/boot.sh)
	debootstrap qemu-utils
	# packaging: dpkg-buildpackage and lintian (tests/host/deb-package.sh, debian/); systemd.pc
	dpkg-dev debhelper lintian systemd
	# kekcrypt doctor test: lsinitramfs lists initramfs images
	initramfs-tools-core
	# KMS protocol fixtures (tests/fixtures/*/server.js) and the vendors' SDKs that check them
	nodejs npm curl
	# benchmarks (Clevis/Tang are the peer measured in bench/kms-verify.sh) and
	# tests/host/clevis.sh (migration from Clevis: tangd run per connection under socat; clevis
	# needs jose, luksmeta and curl)
	hyperfine tang clevis clevis-luks jose luksmeta socat
)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root" >&2
	exit 1
fi
only=()
if [ "${1:-}" = --only ]; then
	shift
	for p in "$@"; do
		printf '%s\n' "${packages[@]}" | grep -qx -- "$p" ||
			{ echo "install-deps: --only $p: not a package of this script's list" >&2; exit 2; }
	done
	only=("$@")
elif [ $# -gt 0 ]; then
	echo "usage: $0 [--only PACKAGE...]" >&2
	exit 2
fi
[ ${#only[@]} -eq 0 ] || packages=("${only[@]}")
# Package lists fetched in the last 10 minutes (an earlier --only call) are not fetched again.
lists_fresh() {
	find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -10 2>/dev/null | grep -q .
}
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
# nodejs may come from elsewhere than Debian (e.g. NodeSource): then keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vx -e nodejs -e npm -e '' || :)
fi
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
else
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	lists_fresh || apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ ${#only[@]} -eq 0 ] || exit 0

# The guest tests' kernel comes from the archive too (apt-get download): it needs package
# lists even when every package above was already installed.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
	apt-get update -q
fi
"$(dirname "$0")/vm/fetch-kernel.sh" --quiet >/dev/null

# The official KMS client SDKs, from the npm registry, pinned by each lock file.
top=$(cd "$(dirname "$0")/.." && pwd)
for dir in "$top"/tests/fixtures/*/; do
	[ -f "$dir/package-lock.json" ] || continue
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		echo "install-deps: npm ci in ${dir#"$top"/}"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done
