#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Harness smoke test: LUKS2 with stock cryptsetup and real dm-crypt in the QEMU guest
# (tests/vm/smoke-cryptsetup.sh), asserted on the KC-OK markers the guest prints.
# TAP output. Exit 0: pass; 77: skipped (not root or QEMU missing, and not in CI; or
# KC_SKIP_VM=1); other: fail.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

readonly STEPS="luksFormat open keyring write close ciphertext reopen verify ext4 done"

# Missing prerequisites skip the test on a developer machine but fail it in CI.
need() {
	[ "${CI:-}" = true ] && vm_bail "$* (CI=true: no skipping)"
	echo "1..0 # SKIP run-smoke: $*"
	exit 77
}

main() {
	local log rc=0 step

	[ "$(id -u)" = 0 ] || need "must run as root (network namespace, device nodes)"
	command -v qemu-system-x86_64 >/dev/null || need "qemu-system-x86_64 not found"
	VM_WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-smoke.XXXXXX")
	truncate -s 64M "$VM_WORK/disk.img"
	log=$VM_WORK/guest.log

	"$VM_TOP/scripts/vm/run-guest.sh" --disk "$VM_WORK/disk.img" --timeout 240 --log "$log" \
		"$VM_TOP/tests/vm/smoke-cryptsetup.sh" || rc=$?

	for step in $STEPS; do
		if grep -qx "KC-OK $step" "$log"; then
			vm_ok "$step"
		else
			vm_not_ok "$step"
		fi
	done
	# The header the guest wrote is a LUKS2 header on the host too.
	if cryptsetup isLuks --type luks2 "$VM_WORK/disk.img"; then
		vm_ok "host sees LUKS2 header"
	else
		vm_not_ok "host sees LUKS2 header"
	fi
	if [ "$rc" -ne 0 ] || [ "$VM_FAILS" -ne 0 ]; then
		echo "run-smoke: FAIL (run-guest.sh exit $rc); guest log:" >&2
		sed 's/^/  | /' "$log" >&2
	fi
	vm_done "$rc"
}

main "$@"
