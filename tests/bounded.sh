#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run one test of `make check` under a time limit, so that a hung test fails by itself instead
# of taking the whole CI budget (automake's LOG_COMPILER; see tests/Makemodule.am).
#
# Usage: tests/bounded.sh TEST [ARGS...]
# The limit: $KC_TEST_TIMEOUT seconds if set, else 2400 for tests/vm/boot.sh (eight Debian
# boots and three builder guests), 1200 for the other guest tests, 600 for the rest. The guest
# harness's own watchdogs end a stalled guest within a minute or two; this is the backstop.
# On expiry the test's whole process group gets TERM, then KILL 30 s later (QEMU and the key
# servers live in PID namespaces that die with their unshare process), and the exit status
# is 124.
#
# A skip: the test prints the TAP plan `1..0 # SKIP why` and exits 77. automake's TAP driver
# reads the plan and counts any non-zero status as an error, so 77 becomes 0 here; under
# CI=true a skip is a failure instead (CI installs everything the tests need), except a guest
# test's skip asked for with KC_SKIP_VM=1 (distcheck).
set -u

test=$1
case ${KC_TEST_TIMEOUT:-} in
'')
	case $test in
	*/tests/vm/boot.sh | tests/vm/boot.sh) limit=2400 ;;
	*/tests/vm/* | tests/vm/*) limit=1200 ;;
	*) limit=600 ;;
	esac
	;;
*[!0-9]* | 0) echo "bounded: KC_TEST_TIMEOUT='$KC_TEST_TIMEOUT' is not a number of seconds" >&2
	exit 99 ;;
*) limit=$KC_TEST_TIMEOUT ;;
esac
# python3 itself, not a version manager's shim in front of it: pyenv's costs about 0.1 s of
# CPU a call, and the tests make thousands of calls.
if py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$py" ]; then
	PATH=${py%/*}:$PATH
fi
start=$SECONDS
timeout --kill-after=30 "$limit" "$@"
rc=$?
# Its cost, as a TAP comment in its log and appended to $KC_TEST_TIMES if set (scripts/test.sh
# lists the costliest): wall time, and the CPU time of the test and everything it waited for
# (QEMU included).
read -r -a stat </proc/$$/stat	# fields 16 and 17: children's user and system ticks
cost="$((SECONDS - start)) $(((stat[15] + stat[16]) / $(getconf CLK_TCK))) $test"
echo "# bounded: $cost (s wall, s CPU, test)"
[ -z "${KC_TEST_TIMES:-}" ] || echo "$cost" >>"$KC_TEST_TIMES"
if [ $((SECONDS - start)) -ge "$limit" ]; then
	echo "bounded: $test did not finish within its limit of $limit s; killed" >&2
	exit 124
fi
if [ "$rc" = 77 ]; then
	case $test in
	*tests/vm/*) [ "${KC_SKIP_VM:-}" = 1 ] && exit 0 ;;
	esac
	if [ "${CI:-}" = true ]; then
		echo "Bail out! $test skipped under CI=true, where every test must run"
		exit 1
	fi
	exit 0
fi
exit "$rc"
