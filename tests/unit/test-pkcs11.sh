#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run test-pkcs11 against a fresh SoftHSM2 token in a temporary directory.
# Usage: test-pkcs11.sh [PATH-TO-test-pkcs11]   (default ./tests/unit/test-pkcs11)
# KC_TEST_WRAPPER="valgrind --error-exitcode=1 --leak-check=full" runs it under valgrind.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-./tests/unit/test-pkcs11}
[ -x "$bin" ] || { echo "test-pkcs11.sh: no test binary '$bin'" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kc-pkcs11.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rc=0
env=$("$here/../fixtures/softhsm-setup.sh" "$tmp") || rc=$?
if [ "$rc" -ne 0 ]; then
	# 77: SoftHSM2 or pkcs11-tool is missing; the setup script said which.
	exit "$rc"
fi
eval "$env"
${KC_TEST_WRAPPER:-} "$bin"
