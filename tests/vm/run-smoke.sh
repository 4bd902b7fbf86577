#!/bin/bash
# Harness smoke test: LUKS2 with stock cryptsetup and real dm-crypt in the QEMU guest
# (tests/vm/smoke-cryptsetup.sh), asserted on the KC-OK markers the guest prints.
# Exit 0: pass; 77: skipped (not root or QEMU missing, and not in CI); other: fail.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly STEPS="luksFormat open keyring write close ciphertext reopen verify ext4 done"
WORK=

cleanup() {
	[ -z "$WORK" ] || rm -rf "$WORK"
}

# Missing prerequisites skip the test on a developer machine but fail it in CI.
need() {
	echo "run-smoke: $*" >&2
	[ "${CI:-}" = true ] && exit 1
	exit 77
}

main() {
	local log rc=0 step missing=0

	[ "$(id -u)" = 0 ] || need "must run as root (network namespace, device nodes)"
	command -v qemu-system-x86_64 >/dev/null || need "qemu-system-x86_64 not found"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-smoke.XXXXXX")
	trap cleanup EXIT
	truncate -s 64M "$WORK/disk.img"
	log=$WORK/guest.log

	"$TOP/scripts/vm/run-guest.sh" --disk "$WORK/disk.img" --timeout 240 --log "$log" \
		"$TOP/tests/vm/smoke-cryptsetup.sh" || rc=$?

	for step in $STEPS; do
		if grep -qx "KC-OK $step" "$log"; then
			echo "ok - $step"
		else
			echo "not ok - $step"
			missing=1
		fi
	done
	# The header the guest wrote is a LUKS2 header on the host too.
	if cryptsetup isLuks --type luks2 "$WORK/disk.img"; then
		echo "ok - host sees LUKS2 header"
	else
		echo "not ok - host sees LUKS2 header"
		missing=1
	fi
	if [ "$rc" -ne 0 ] || [ "$missing" -ne 0 ]; then
		echo "run-smoke: FAIL (run-guest.sh exit $rc); guest log:" >&2
		sed 's/^/  | /' "$log" >&2
		exit 1
	fi
	echo "run-smoke: PASS"
}

main "$@"
