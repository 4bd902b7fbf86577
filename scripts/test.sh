#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what is needed, build with warnings as errors, run the static checks (`make lint`,
# scripts/lint-*.sh), and run every test of `make check`: unit, fuzz corpus replay, host
# tests on images and loop devices, and the QEMU guest tests with real dm-crypt. Needs root.
# Usage: scripts/test.sh
#
# The boot test's two Debian roots are made (scripts/vm/debian-root.sh --cache-only:
# debootstrap, on a machine's first run) from the start, beside the install of the other
# packages and the build. Then three chains
# run side by side, each printing its lines with a prefix: [boot] the Debian packages' build
# (scripts/build-debs.sh), the boot test (the longest test), then the packages'
# test (tests/host/deb-package.sh, on those it built) and tests/host/provider-seam.sh (a build
# of its own); [vm] the other guest tests one at a time (each software-emulated guest keeps a
# CPU busy), the smoke test first, then `make lint`; and [host]: the unit and
# fuzz tests and the host tests that need this plain build (make -j), then
# scripts/test-sanitizers.sh, `make distcheck` of the unit, fuzz and host tests in an ASan +
# UBSan build. The host tests run once, in that build, except those that need the plain one
# (below): running each twice cost CI minutes and proved nothing the sanitizer pass does not,
# while the guest tests run the plain build. Each chain's summary is in tests/boot-suite.log,
# tests/vm-suite.log, tests/host-suite.log and tests/late-suite.log (the boot chain's host
# tests); at the end, each test's wall and CPU time (tests/bounded.sh's "# bounded:" lines in
# the logs).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# The tests run the tools scripts/install-deps.sh installs (python3 with python3-cryptography
# and python3-jsonschema, node, cryptsetup...), found through Debian's own PATH, not through
# whatever comes first in the caller's: on the machines CI runs on, a pyenv shim (a bash
# script that execs another interpreter) came first and cost 0.12 s of CPU per python3 start,
# of which the tests make thousands.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# CI runs the guest tests: KC_SKIP_VM=1 (distcheck's switch) must not skip them here.
[ "${KC_SKIP_VM:-}" != 1 ] || { echo "test: KC_SKIP_VM=1 would skip the guest tests" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test: run as root (packages, loop devices, QEMU guests)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# roots_cache: the boot test's two Debian roots made (debootstrap, on a machine's first run, CI's
# every run: ~110 s of CPU here) or found in the cache, side by side; the status in
# $tmp/roots.rc. Started first, with debootstrap alone installed: beside the other packages'
# install (CI's machines have none; apt's downloads and dpkg leave a CPU free), the build and
# the packages' build, which need neither.
roots_cache() {
	local v pids=() rc=0
	for v in initramfs-tools dracut; do
		scripts/vm/debian-root.sh --variant "$v" --cache-only &
		pids+=($!)
	done
	for v in "${pids[@]}"; do wait "$v" || rc=1; done
	echo "$rc" >"$tmp/roots.rc.tmp" && mv "$tmp/roots.rc.tmp" "$tmp/roots.rc"
}
scripts/install-deps.sh --only debootstrap
roots_cache >"$tmp/roots.log" 2>&1 &
scripts/install-deps.sh
if [ ! -x configure ]; then ./autogen.sh; fi
if [ ! -f Makefile ]; then ./configure --enable-werror; fi
make -j"$(nproc)"
# Everything the tests run, built before the chains start (both would build it otherwise).
make -j"$(nproc)" check TESTS=
# The Debian packages, once, at the start of the boot chain (below): tests/vm/boot.sh installs
# them into its guests, tests/host/deb-package.sh (after it, in the boot chain) checks them.
export KC_DEBS=$PWD/tests/debs
rm -rf "$KC_DEBS"
echo "test: built in $((SECONDS - start)) s"

# make check's own list, split by where the tests run: the boot test (the longest: two
# Debian roots, six boots), the other guest tests, and the rest.
all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - print-tests)
# The host tests that run in the plain build: those the sanitizer pass leaves out (it says
# why: plugin.sh, lean.sh, provider-seam.sh, deb-package.sh, make-install.sh, bad-tokens.sh:
# its valgrind pass cannot run an ASan binary) and rotate-crash.sh (all 300 rounds of its kill
# loop; the ASan build runs 30).
boot=() vm=() host=() late=()
for t in $all; do
	case $t in
	tests/vm/boot.sh) boot+=("$t") ;;
	tests/vm/*) vm+=("$t") ;;
	tests/unit/* | tests/fuzz/*) host+=("$t") ;;
	tests/host/deb-package.sh | tests/host/provider-seam.sh) late+=("$t") ;;
	tests/host/plugin.sh | tests/host/lean.sh | \
		tests/host/make-install.sh | tests/host/bad-tokens.sh | tests/host/rotate-crash.sh)
		host+=("$t") ;;
	tests/host/*) ;;	# in scripts/test-sanitizers.sh only
	*) echo "test: unknown test '$t': say in this script where it runs" >&2; exit 1 ;;
	esac
done

# chain NAME COMMAND...: run COMMAND with its output prefixed; its status in $tmp/NAME.rc.
export KC_TEST_TIMES=$tmp/times	# tests/bounded.sh: "WALL CPU TEST" per test
# tests/vm/boot.sh keeps each boot's console log here (a failed one's too).
export KC_BOOT_LOGS=${KC_BOOT_LOGS:-$PWD/tests/vm/boot-logs}
mkdir -p "$KC_BOOT_LOGS"
: >"$KC_TEST_TIMES"
chain() {
	local name=$1 rc=0
	shift
	local t0=$SECONDS
	"$@" > >(sed -u "s/^/[$name] /") 2>&1 || rc=$?
	echo "$rc $((SECONDS - t0))" >"$tmp/$name.rc"
}
# check NAME TESTS...: make check of TESTS, one at a time, its summary in tests/NAME-suite.log.
check() {
	local name=$1
	shift
	make check TESTS="$*" TEST_SUITE_LOG="tests/$name-suite.log" ||
		{ tail -n 200 "tests/$name-suite.log"; return 1; }
}
# (The chains run as `chain NAME FUNC || ...`, where set -e does not stop a function: each
# step's failure is returned explicitly.)
host_chain() {
	local rc=0
	# rotate-crash.sh's kill loop bounded at 45 s, not 75: 160 rounds in 75 s under CI's load
	# (42 of them left a rotation pending), 35 s of CPU; at least 50 rounds whatever the load.
	KC_CRASH_SECONDS=45 make -j"$(nproc)" check TESTS="${host[*]}" TEST_SUITE_LOG=tests/host-suite.log ||
		{ tail -n 200 tests/host-suite.log; rc=1; }
	scripts/test-sanitizers.sh || rc=1
	return "$rc"
}
boot_chain() {
	local rc=0
	scripts/build-debs.sh "$KC_DEBS" || rc=1
	# The roots (roots_cache, started before the build).
	while [ ! -e "$tmp/roots.rc" ]; do sleep 1; done
	[ "$(cat "$tmp/roots.rc")" = 0 ] || { cat "$tmp/roots.log"; rc=1; }
	[ "$rc" = 0 ] || return 1
	check boot "${boot[@]}" || rc=1
	check late "${late[@]}" || rc=1
	return "$rc"
}
# The boot test is the longest single test; the boot chain runs after it the host tests of the
# packages it built, the vm chain the smoke test, the other guest tests and then the static
# checks (shellcheck takes ~40 s of CPU). (A first run here, CI's kind, with those checks at
# the boot chain's end: host chain 665 s, vm 569, boot 652, after 112 s of install and build.)
vm_chain() {
	local rc=0
	check vm "${vm[@]}" || rc=1
	make lint || rc=1
	return "$rc"
}
chain boot boot_chain &
chain vm vm_chain &
chain host host_chain &
wait
# Where the time went: the costliest tests (the sanitizer pass's are under kekcrypt-*/_build);
# every test's in tests/test-times.log.
sort -rn -k2 "$KC_TEST_TIMES" |
	while read -r wall cpu t; do printf 'test: %5d s CPU %5d s wall  %s\n' "$cpu" "$wall" "$t"; done \
		>tests/test-times.log
head -n 15 tests/test-times.log
rc=0
for name in host vm boot; do
	read -r r s <"$tmp/$name.rc"
	echo "test: $name chain: exit $r after $s s"
	[ "$r" = 0 ] || rc=1
done
read -r -a stat </proc/$$/stat	# fields 16 and 17: the CPU time of everything run above
echo "test: all done in $((SECONDS - start)) s, $(((stat[15] + stat[16]) / $(getconf CLK_TCK))) s CPU (exit $rc)"
exit "$rc"
