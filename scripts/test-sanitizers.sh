#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The unit tests, the fuzz corpus replays and the host tests again, built with AddressSanitizer
# and UndefinedBehaviorSanitizer (configure --enable-sanitizers), in a copy of the source tree:
# the tests take binaries from the build tree (KC_BUILDDIR, tests/Makemodule.am), but a
# source tree configured in place (as scripts/test.sh leaves it) refuses a second, separate
# build directory, so the second build gets a tree of its own. Not the guest tests: they run the plugin and the CLI inside a
# QEMU guest, which the sanitizer build changes nothing about but the time it takes.
#
# Left out: tests/host/plugin.sh. It loads our token plugin into the system's cryptsetup,
# which is not built with ASan: the ASan runtime would have to be preloaded (LD_PRELOAD of
# libasan) into cryptsetup and every helper it runs. The plugin is glue; the library code it
# calls runs under the sanitizers in the CLI tests.
# Also tests/host/lean.sh: it asserts which libraries the plain build loads (and loads the
# plugin into cryptsetup too); the sanitizer build adds its runtimes to that list.
#
# A sanitizer report fails the run even where a test expects kekcrypt to fail: reports go to
# files (log_path) and any report file is an error. LeakSanitizer is on; valgrind is off
# (KC_VALGRIND=0): it cannot run an ASan binary.
#
# Usage: scripts/test-sanitizers.sh [DIR]   (DIR: where to build; default a new /tmp directory,
# removed after a successful run). Needs a git checkout with node_modules installed in the
# fixtures (scripts/install-deps.sh does that).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/kc-sanitizers.XXXXXX")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
start=$SECONDS

# The files git knows and the new ones it does not ignore, as they are in the working tree;
# the fixtures' npm packages (ignored) by symbolic link.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -a -t "$dir"
for m in tests/fixtures/*/node_modules; do
	[ -d "$m" ] && ln -sfn "$top/$m" "$dir/$m"
done

cd "$dir"
./autogen.sh >/dev/null
./configure -q --enable-werror --enable-sanitizers
make -j"$(nproc)" >/dev/null

# make check's own list, less the guest tests, plugin.sh, lean.sh and provider-seam.sh (a
# second build of the tree whose plugin goes into cryptsetup, as plugin.sh).
all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - print-tests)
tests=()
for t in $all; do
	case $t in
	tests/host/plugin.sh | tests/host/lean.sh | tests/host/provider-seam.sh | tests/vm/*) ;;
	tests/unit/* | tests/fuzz/* | tests/host/*) tests+=("$t") ;;
	*) echo "test-sanitizers: unknown test '$t': say in this script whether it runs" >&2
	   exit 1 ;;
	esac
done

logs=$dir/sanitizer-reports
mkdir -p "$logs"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
export KC_VALGRIND=0
# rotate-crash.sh's kill loop: 30 rounds instead of up to 300 in 75 s, which ASan makes too
# slow for (each round is a process start and a rotation).
export KC_CRASH_ROUNDS=30
# The checks in other host tests that load the token plugin into the system's cryptsetup
# (untrusted-header.sh: forged tokens through stock cryptsetup) take the plain build's plugin,
# for the reason plugin.sh is left out; the library code behind it runs under the sanitizers
# in the same tests' CLI checks.
if [ -f "$top/.libs/libcryptsetup-token-kekcrypt.so" ]; then
	export KC_PLUGIN=$top/.libs/libcryptsetup-token-kekcrypt.so
fi
rc=0
make -j"$(nproc)" check TESTS="${tests[*]}" || rc=$?
if [ "$rc" != 0 ]; then
	cat tests/*/*.log | tail -n 200
fi
if [ -n "$(ls -A "$logs")" ]; then
	echo "test-sanitizers: sanitizer reports:" >&2
	head -n 60 "$logs"/* >&2
	rc=1
fi
echo "test-sanitizers: ${#tests[@]} tests, $((SECONDS - start)) s, in $dir (exit $rc)"
if [ "$rc" = 0 ] && [ $# -eq 0 ]; then
	rm -rf "$dir"
fi
exit "$rc"
