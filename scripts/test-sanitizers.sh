#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The unit tests, the fuzz corpus replays and the host tests, built with AddressSanitizer and
# UndefinedBehaviorSanitizer, as `make distcheck` (in CI, scripts/test.sh, the only run of most
# host tests): the release tarball is unpacked with a
# read-only source tree, configured with --enable-sanitizers in a build directory of its own,
# built, tested (these tests), installed, uninstalled and cleaned. So one pass proves the
# tarball complete, the build and the tests VPATH-safe, and the code clean under the
# sanitizers. Not the guest tests (distcheck sets KC_SKIP_VM=1): they run the plugin and the
# CLI inside a QEMU guest, which the sanitizer build changes nothing about but the time.
#
# Left out: tests/host/plugin.sh. It loads our token plugin into the system's cryptsetup,
# which is not built with ASan: the ASan runtime would have to be preloaded (LD_PRELOAD of
# libasan) into cryptsetup and every helper it runs. The plugin is glue; the library code it
# calls runs under the sanitizers in the CLI tests. Other host tests' checks through stock
# cryptsetup (untrusted-header.sh) take this tree's plain plugin (KC_PLUGIN).
# Also tests/host/lean.sh: it asserts which libraries the plain build loads (and loads the
# plugin into cryptsetup too); the sanitizer build adds its runtimes to that list. And
# tests/host/provider-seam.sh: a second build of the tree whose plugin goes into cryptsetup.
# And tests/host/deb-package.sh: it builds the Debian packages from a copy of the git
# checkout (distcheck's tree is none), with Debian's flags; the sanitizers change nothing in it.
# And tests/host/make-install.sh: a build of its own with configure's defaults (no sanitizer),
# whose install distcheck's own install into its prefix does not replace (the default paths).
# And tests/host/bad-tokens.sh: the CLI over its bad tokens, run in the plain build under
# valgrind (memory errors and leaks on every input); the token parser's undefined behaviour is
# this pass's tests/fuzz/replay-token.sh (UBSan over the token corpus). Running it here as
# well cost half a minute of CPU on CI's critical path.
#
# A sanitizer report fails the run even where a test expects kekcrypt to fail: reports go to
# files (log_path) and any report file is an error. LeakSanitizer is on; valgrind is off
# (KC_VALGRIND=0): it cannot run an ASan binary.
#
# Usage: scripts/test-sanitizers.sh   (from a configured and built tree, as scripts/test.sh
# leaves it, with the fixtures' node_modules installed: scripts/install-deps.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -f Makefile ] || { echo "test-sanitizers: configure and build the tree first" >&2; exit 1; }
start=$SECONDS

# make check's own list, less the guest tests, plugin.sh, lean.sh, provider-seam.sh,
# deb-package.sh, make-install.sh and bad-tokens.sh.
all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - print-tests)
tests=()
for t in $all; do
	case $t in
	tests/host/plugin.sh | tests/host/lean.sh | tests/host/provider-seam.sh | \
		tests/host/deb-package.sh | tests/host/make-install.sh | tests/host/bad-tokens.sh | \
		tests/vm/*) ;;
	tests/unit/* | tests/fuzz/* | tests/host/*) tests+=("$t") ;;
	*) echo "test-sanitizers: unknown test '$t': say in this script whether it runs" >&2
	   exit 1 ;;
	esac
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/kc-sanitizer-reports.XXXXXX")
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
export KC_VALGRIND=0
# rotate-crash.sh's kill loop: 30 rounds instead of up to 300 in 75 s, which ASan makes too
# slow for (each round is a process start and a rotation).
export KC_CRASH_ROUNDS=30
if [ -f "$top/.libs/libcryptsetup-token-kekcrypt.so" ]; then
	export KC_PLUGIN=$top/.libs/libcryptsetup-token-kekcrypt.so
fi
rc=0
make -j"$(nproc)" distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror --enable-sanitizers" \
	TESTS="${tests[*]}" || rc=$?
if [ "$rc" != 0 ]; then
	# distcheck leaves its tree behind when the tests fail: their logs.
	cat kekcrypt-*/_build/sub/test-suite.log 2>/dev/null | tail -n 200
fi
if [ -n "$(ls -A "$logs")" ]; then
	echo "test-sanitizers: sanitizer reports:" >&2
	head -n 60 "$logs"/* >&2
	rc=1
fi
echo "test-sanitizers: ${#tests[@]} tests in make distcheck, $((SECONDS - start)) s (exit $rc)"
[ "$rc" != 0 ] || rm -rf "$logs"
exit "$rc"
