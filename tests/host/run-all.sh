#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run the host tests and print a summary line "N passed, N failed[, N skipped]".
#
# Usage: tests/host/run-all.sh [-v] [TEST...]     (from the repository root)
#   TEST   names like format-verify (default: every tests/host/*.sh but lib.sh, run-all.sh and
#          the generators gen-*.sh)
#   -v     show every line of every test (default: failures and diagnostics only; the full
#          output of each test is kept in $KC_TEST_LOGDIR, default a new directory in /tmp)
# Environment: KC_BUILDDIR (the build tree, default this source tree), KEKCRYPT (default
# $KC_BUILDDIR/kekcrypt), KC_VALGRIND=0 to skip the valgrind runs,
# CI=true makes a skipped test count as a failure (CI must run everything).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ALL=()
for f in "$HERE"/*.sh; do
	n=$(basename "$f" .sh)
	case $n in lib | run-all | gen-*) continue ;; esac
	ALL+=("$n")
done
verbose=0
if [ "${1-}" = -v ]; then
	verbose=1
	shift
fi
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${ALL[@]}")
LOGDIR=${KC_TEST_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/kc-host-tests.XXXXXX")}
mkdir -p "$LOGDIR"

passed=0 failed=0 skipped=0
failed_names=() skipped_names=()
for t in "${tests[@]}"; do
	script=$HERE/${t%.sh}.sh
	log=$LOGDIR/${t%.sh}.log
	echo "# === ${t%.sh}"
	if [ ! -f "$script" ]; then
		echo "# no such test: $script"
		failed=$((failed + 1))
		failed_names+=("${t%.sh}")
		continue
	fi
	start=$SECONDS
	if [ "$verbose" = 1 ]; then
		bash "$script" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
	else
		bash "$script" >"$log" 2>&1
		rc=$?
		# failures with their diagnostics, skips, and the plan line
		awk '/^not ok /{show=1; print; next} /^ok /{show=0; next}
		     /^1\.\./{print; next} show || /SKIP/{print}' "$log"
	fi
	dur=$((SECONDS - start))
	case $rc in
	0)
		echo "PASS: ${t%.sh} (${dur}s)"
		passed=$((passed + 1))
		;;
	77)
		echo "SKIP: ${t%.sh}: $(grep -m1 'SKIP' "$log" | sed 's/^1\.\.0 # SKIP //')"
		skipped=$((skipped + 1))
		skipped_names+=("${t%.sh}")
		;;
	*)
		echo "FAIL: ${t%.sh} (exit $rc, ${dur}s; full output: $log)"
		failed=$((failed + 1))
		failed_names+=("${t%.sh}")
		;;
	esac
done

[ ${#failed_names[@]} -eq 0 ] || echo "# failed: ${failed_names[*]}"
[ ${#skipped_names[@]} -eq 0 ] || echo "# skipped: ${skipped_names[*]}"
echo "# logs: $LOGDIR"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] || exit 1
if [ "$skipped" -gt 0 ] && [ "${CI:-}" = true ]; then
	echo "# CI=true: skipped tests count as failures" >&2
	exit 1
fi
exit 0
