#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run test-tls against tests/fixtures/tls-echo.py (loopback only), with a test PKI from
# tests/fixtures/tls.sh in a temporary directory.
# Usage: test-tls.sh [PATH-TO-test-tls]   (default: in $KC_BUILDDIR, which make check sets,
# else in the tree this script is in)
# KC_TEST_WRAPPER="valgrind --error-exitcode=1 --leak-check=full" runs it under valgrind.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${KC_BUILDDIR:-$here/../..}/tests/unit/test-tls}
[ -x "$bin" ] || { echo "Bail out! test-tls.sh: no test binary '$bin'"; exit 1; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
command -v "$py" >/dev/null 2>&1 || { echo "1..0 # SKIP test-tls: no python3"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kc-tls.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rc=0
"$here/../fixtures/tls.sh" "$tmp/tls" >/dev/null || rc=$?
[ "$rc" -ne 77 ] || { echo "1..0 # SKIP test-tls: no openssl CLI"; exit 77; }
[ "$rc" -eq 0 ] || { echo "Bail out! test-tls.sh: tls.sh failed (exit $rc)"; exit 1; }
"$py" "$here/../fixtures/tls-echo.py" "$tmp/tls" "$tmp/ready" &
pid=$!
i=0
while [ ! -e "$tmp/ready" ]; do
	kill -0 "$pid" 2>/dev/null || { echo "Bail out! test-tls.sh: the fixture died"; exit 1; }
	i=$((i + 1))
	[ "$i" -lt 200 ] || { echo "Bail out! test-tls.sh: the fixture did not start"; exit 1; }
	sleep 0.05
done
set -a
. "$tmp/ready"
set +a
KC_TLS_DIR=$tmp/tls ${KC_TEST_WRAPPER:-} "$bin"
