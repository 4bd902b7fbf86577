#!/bin/bash
# Install what is needed, build with warnings as errors, run the static checks (`make lint`,
# scripts/lint-*.sh), and run every test (`make check`):
# unit, fuzz corpus replay, host tests on images and loop devices, and the QEMU guest tests
# with real dm-crypt; then the unit, fuzz replay and host suites again in an ASan + UBSan
# build (scripts/test-sanitizers.sh). Needs root. Usage: scripts/test.sh
#
# Three chains run side by side, each printing its lines with a prefix: [boot] the boot test,
# [vm] the other guest tests one at a time (each software-emulated guest keeps a CPU busy),
# and [host] the unit, fuzz and host tests (make -j), then the sanitizer pass. Each chain's
# summary is in tests/boot-suite.log, tests/vm-suite.log and tests/host-suite.log.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# CI runs the guest tests: KC_SKIP_VM=1 (distcheck's switch) must not skip them here.
[ "${KC_SKIP_VM:-}" != 1 ] || { echo "test: KC_SKIP_VM=1 would skip the guest tests" >&2; exit 1; }
scripts/install-deps.sh
if [ ! -x configure ]; then ./autogen.sh; fi
if [ ! -f Makefile ]; then ./configure --enable-werror; fi
make -j"$(nproc)"
make lint
# Everything the tests run, built before the chains start (both would build it otherwise).
make -j"$(nproc)" check TESTS=
echo "test: built in $((SECONDS - start)) s"

# make check's own list, split by where the tests run: the boot test (the longest: three
# Debian roots, five boots) on its own, the other guest tests, and the rest.
all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - print-tests)
boot=() vm=() host=()
for t in $all; do
	case $t in
	tests/vm/boot.sh) boot+=("$t") ;;
	tests/vm/*) vm+=("$t") ;;
	*) host+=("$t") ;;
	esac
done

# chain NAME COMMAND...: run COMMAND with its output prefixed; its status in $tmp/NAME.rc.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
host_chain() {
	make -j"$(nproc)" check TESTS="${host[*]}" TEST_SUITE_LOG=tests/host-suite.log ||
		{ tail -n 200 tests/host-suite.log; return 1; }
	scripts/test-sanitizers.sh
}
chain boot check boot "${boot[@]}" &
chain vm check vm "${vm[@]}" &
chain host host_chain &
wait
rc=0
for name in host vm boot; do
	read -r r s <"$tmp/$name.rc"
	echo "test: $name chain: exit $r after $s s"
	[ "$r" = 0 ] || rc=1
done
echo "test: all done in $((SECONDS - start)) s (exit $rc)"
exit "$rc"
