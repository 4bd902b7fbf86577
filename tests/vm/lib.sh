# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Helpers for the guest tests: a work dir, a SoftHSM2 token, running a scenario in the QEMU
# guest with the built kekcrypt, and TAP output. Sourced by tests/vm/*.sh.
# VM_TOP is the source tree (scripts, scenarios, fixtures; $KC_SRCDIR), VM_BUILD the build tree
# (kekcrypt, .libs; $KC_BUILDDIR): `make check` sets both (tests/Makemodule.am); run by hand,
# both are the tree this file is in.
# KC_SKIP_VM=1 skips the test ("1..0 # SKIP", exit 77; distcheck sets it).

VM_NAME=$(basename "$0" .sh)
if [ "${KC_SKIP_VM:-}" = 1 ]; then
	echo "1..0 # SKIP $VM_NAME: guest tests are off (KC_SKIP_VM=1)"
	exit 77
fi
VM_TOP=${KC_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VM_BUILD=${KC_BUILDDIR:-$VM_TOP}
# vm_qemu_machine_args, vm_qemu_drive: the QEMU settings of every guest.
. "$VM_TOP/scripts/vm/qemu-config.sh"
KEKCRYPT=${KEKCRYPT:-$VM_BUILD/kekcrypt}
VM_WORK=
# TAP: vm_ok and vm_not_ok number the results, vm_done prints the plan and exits; a test that
# stops before vm_done (set -e, a setup step) says "Bail out!". boot.sh and watchdog.sh count
# and plan their own results (VM_DONE=1 once planned).
VM_TAP=0
VM_FAILS=0
VM_DONE=0
# Libraries kekcrypt loads with dlopen() only when a KEK needs them (lib/dlopen.h), which the
# harness's ldd does not see: vm_run always copies p11-kit (SoftHSM2 KEKs); a guest that
# reaches a remote KMS adds --lib "$VM_LIBCURL".
VM_LIBP11KIT=/usr/lib/x86_64-linux-gnu/libp11-kit.so.0
# shellcheck disable=SC2034 # for the scripts that source this
VM_LIBCURL=/usr/lib/x86_64-linux-gnu/libcurl.so.4

vm_cleanup() {
	[ -z "$VM_WORK" ] || rm -rf "$VM_WORK"
}

vm_exit() {
	local rc=$?
	vm_cleanup
	if [ "$VM_DONE" = 0 ] && [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		echo "Bail out! $VM_NAME stopped (exit $rc)"
	fi
	exit "$rc"
}
trap vm_exit EXIT

vm_ok() {
	VM_TAP=$((VM_TAP + 1))
	echo "ok $VM_TAP - $*"
}

vm_not_ok() {
	VM_TAP=$((VM_TAP + 1))
	VM_FAILS=$((VM_FAILS + 1))
	echo "not ok $VM_TAP - $*"
}

# vm_bail REASON: a fatal error ("Bail out!"), exit 1.
vm_bail() {
	echo "Bail out! $VM_NAME: $*"
	VM_DONE=1
	exit 1
}

# vm_done [RC]: the plan; exit 1 when a result failed or RC (default 0) is not 0.
vm_done() {
	echo "1..$VM_TAP"
	VM_DONE=1
	[ "$VM_FAILS" = 0 ] && [ "${1:-0}" = 0 ] || exit 1
	exit 0
}

# Make VM_WORK with kek/ (file KEKs) and softhsm/ (a token with AES and RSA KEKs); the guest
# gets both at the same absolute paths, so the URIs written on the host work there.
vm_setup() {
	# Not under /tmp: the guest mounts a tmpfs there, hiding files copied to the same paths.
	VM_WORK=$(mktemp -d /var/tmp/kekcrypt-vm.XXXXXX)
	mkdir -m 700 "$VM_WORK/kek" "$VM_WORK/softhsm"
	eval "$("$VM_TOP/tests/fixtures/softhsm-setup.sh" "$VM_WORK/softhsm")"
	P11_URI="pkcs11:token=kekcrypt-test;object=kek-aes;type=secret-key?module-path=$KC_P11_MODULE&pin-source=file:$KC_P11_PIN_FILE"
	# Local policy: the config (on the host, and in the guest's /etc/kekcrypt) lets the
	# URIs name the SoftHSM2 module and the token's PIN file.
	VM_CONF=$VM_WORK/kekcrypt.conf
	(umask 077 && printf '[pkcs11]\nallowed-modules = %s\nallowed-pin-files = %s\n' \
		"$KC_P11_MODULE" "$KC_P11_PIN_FILE" >"$VM_CONF")
}

# kc_host ARGS...: kekcrypt on the host with the tests' config.
kc_host() {
	"$KEKCRYPT" "$@" --config "$VM_CONF"
}

# vm_files SRC_DIR DEST_DIR: --file arguments for every file below SRC_DIR.
vm_files() {
	local f
	while IFS= read -r -d '' f; do
		printf -- '--file\0%s:%s\0' "$f" "$2${f#"$1"}"
	done < <(find "$1" -type f -print0)
}

# vm_run SCENARIO [run-guest.sh options...]: the scenario runs with kekcrypt, its library,
# the SoftHSM2 module and token, and KEK_DIR, P11_URI and SOFTHSM2_CONF in its environment.
vm_run() {
	local scenario=$1 files=()
	shift
	mapfile -d '' files < <(vm_files "$VM_WORK/softhsm" "$VM_WORK/softhsm")
	# The binary in .libs/ finds the uninstalled libkekcrypt through LD_LIBRARY_PATH,
	# which ldd (in the harness) honours too.
	LD_LIBRARY_PATH="$VM_BUILD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$VM_TOP/scripts/vm/run-guest.sh" \
		--bin "$VM_BUILD/.libs/kekcrypt:/bin/kekcrypt" \
		--lib "$KC_P11_MODULE" --lib "$VM_LIBP11KIT" \
		"${files[@]}" \
		--env "KEK_DIR=$VM_WORK/kek" --env "P11_URI=$P11_URI" \
		--file "$VM_CONF:/etc/kekcrypt/kekcrypt.conf" \
		--env "SOFTHSM2_CONF=$SOFTHSM2_CONF" \
		"$@" "$scenario"
}

# vm_expect LOG MARKER...: every marker line must be in the guest log.
vm_expect() {
	local log=$1 m missing=0
	shift
	for m in "$@"; do
		if grep -q -- "^$m" "$log"; then
			vm_ok "$m"
		else
			vm_not_ok "$m"
			missing=1
		fi
	done
	return "$missing"
}
