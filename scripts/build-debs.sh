#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the Debian packages (debian/) from a clean copy of this git checkout: the files git
# tracks or would track (not ignored), as in the working tree, none of its build; a file
# deleted but not committed yet is left out, as a commit would. No test suite inside the build
# (nocheck: scripts/test.sh runs it). Puts the .deb files, the .changes and the .buildinfo in
# OUTDIR, and dpkg-buildpackage's output in OUTDIR/build.log, written last: its presence says
# the packages are complete. scripts/test.sh builds them once for tests/host/deb-package.sh
# and tests/vm/boot.sh ($KC_DEBS).
# Usage: scripts/build-debs.sh OUTDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/kc-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$top" ls-files -z --cached --others --exclude-standard |
	tar -C "$top" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$work/src" -xf -
# Not a calling make's jobserver: dpkg-buildpackage runs its own make -j.
if ! (cd "$work/src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
	>"$work/build.log" 2>&1; then
	echo "build-debs: dpkg-buildpackage failed; the end of its output:" >&2
	tail -n 40 "$work/build.log" >&2
	exit 1
fi
rm -f "$out/build.log"
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"
mv "$work/build.log" "$out/build.log"
