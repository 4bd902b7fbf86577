#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run test-pkcs11 against a fresh SoftHSM2 token in a temporary directory.
# Usage: test-pkcs11.sh [PATH-TO-test-pkcs11]   (default: in $KC_BUILDDIR, which make check sets,
# else in the tree this script is in)
# KC_TEST_WRAPPER="valgrind --error-exitcode=1 --leak-check=full" runs it under valgrind.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${KC_BUILDDIR:-$here/../..}/tests/unit/test-pkcs11}
[ -x "$bin" ] || { echo "Bail out! test-pkcs11.sh: no test binary '$bin'"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kc-pkcs11.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rc=0
env=$("$here/../fixtures/softhsm-setup.sh" "$tmp") || rc=$?
if [ "$rc" -eq 77 ]; then
	# SoftHSM2 or pkcs11-tool is missing; the setup script said which on stderr.
	echo "1..0 # SKIP test-pkcs11: SoftHSM2 or pkcs11-tool is missing"
	exit 77
fi
[ "$rc" -eq 0 ] || { echo "Bail out! test-pkcs11.sh: softhsm-setup.sh failed (exit $rc)"; exit 1; }
eval "$env"
${KC_TEST_WRAPPER:-} "$bin"
