#!/bin/bash
# Install what is needed, build with warnings as errors, run the static checks (`make lint`,
# scripts/lint-*.sh), and run every test (`make check`):
# unit, fuzz corpus replay, host tests on images and loop devices, and the QEMU guest tests
# with real dm-crypt; then the unit, fuzz replay and host suites again in an ASan + UBSan
# build (scripts/test-sanitizers.sh). Needs root. Usage: scripts/test.sh
#
# Two chains run side by side, each printing its lines with a prefix: [vm] the guest tests,
# one at a time (each QEMU guest is software-emulated and keeps the CPUs busy), and [host]
# the unit, fuzz and host tests (make -j), then the sanitizer pass. Each chain's summary is
# in tests/vm-suite.log and tests/host-suite.log.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/install-deps.sh
if [ ! -x configure ]; then ./autogen.sh; fi
if [ ! -f Makefile ]; then ./configure --enable-werror; fi
make -j"$(nproc)"
make lint
# Everything the tests run, built before the chains start (both would build it otherwise).
make -j"$(nproc)" check TESTS=
echo "test: built in $((SECONDS - start)) s"

# make check's own list, split by where the tests run.
all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - print-tests)
vm=() host=()
for t in $all; do
	case $t in
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
host_chain() {
	make -j"$(nproc)" check TESTS="${host[*]}" TEST_SUITE_LOG=tests/host-suite.log ||
		{ tail -n 200 tests/host-suite.log; return 1; }
	scripts/test-sanitizers.sh
}
vm_chain() {
	make check TESTS="${vm[*]}" TEST_SUITE_LOG=tests/vm-suite.log ||
		{ tail -n 200 tests/vm-suite.log; return 1; }
}
chain vm vm_chain &
chain host host_chain &
wait
rc=0
for name in host vm; do
	read -r r s <"$tmp/$name.rc"
	echo "test: $name chain: exit $r after $s s"
	[ "$r" = 0 ] || rc=1
done
echo "test: all done in $((SECONDS - start)) s (exit $rc)"
exit "$rc"
