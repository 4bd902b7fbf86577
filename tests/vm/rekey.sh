#!/bin/bash
# Guest test: kekcrypt rekey (DEK rotation by LUKS2 online re-encryption) with real dm-crypt
# in a QEMU guest (tests/vm/scenario-rekey.sh):
#   1. online: SIGINT mid-run, resume with a plain `rekey` while the mapping is busy; the
#      content is unchanged, the old DEK is rejected, the KEKs are the same;
#   2. power loss at three points: the guest is cut off (sysrq 'b', no sync) in the middle of
#      the re-encryption, a second boot on the same disk image runs `rekey --resume`; the
#      whole content is unchanged (SHA-256 of all 64 MiB), and the header, read on the host,
#      is a plain LUKS2 volume again whose tokens open it with a new volume key.
# Usage: rekey.sh [CRASH_AFTER...]  (progress lines before the power cut; default 1 3 6)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vm_setup
head -c 32 /dev/urandom >"$VM_WORK/kek/a.bin"
chmod 600 "$VM_WORK/kek/a.bin"
dd if=/dev/urandom of="$VM_WORK/data.img" bs=1M count=64 status=none
want=$(sha256sum "$VM_WORK/data.img" | cut -d' ' -f1)
rc=0

# The volume: 16 MiB of LUKS2 header + 64 MiB of data; a file KEK and a SoftHSM2 KEK.
new_volume() {
	rm -f "$1"
	truncate -s 80M "$1"
	kc_host format -q "$1" --kek "file:$VM_WORK/kek/a.bin" --kek "$P11_URI" >/dev/null
}

guest() {
	local phase=$1 img=$2 log=$3
	shift 3
	vm_run "$VM_TOP/tests/vm/scenario-rekey.sh" --log "$log" --timeout 600 --memory 1024 \
		--disk "$img" --disk "$VM_WORK/data.img" \
		--file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" \
		--env "PHASE=$phase" --env "WANT=$want" "$@"
}

check() {
	if ! vm_expect "$@"; then
		{ echo "guest log ($1):"; tail -n 60 "$1"; } >&2
		rc=1
	fi
}

# 1. Online rekey, interrupted by SIGINT and resumed.
new_volume "$VM_WORK/a.img"
r=0
guest online "$VM_WORK/a.img" "$VM_WORK/online.log" || r=$?
[ "$r" -eq 0 ] || { vm_not_ok "online guest exited $r"; rc=1; }
check "$VM_WORK/online.log" KC-OK\ data-written KC-OK\ sigint-stops-cleanly \
	KC-OK\ resumed-online KC-OK\ content-identical KC-OK\ volume-key-changed \
	KC-OK\ old-dek-rejected KC-OK\ same-keks-new-tokens KC-OK\ reopen-new-dek \
	KC-SCENARIO-DONE

# 2. Power loss in the middle of the re-encryption, at each point asked for.
points=("$@")
[ "${#points[@]}" -gt 0 ] || points=(1 3 6)
for n in "${points[@]}"; do
	img=$VM_WORK/crash-$n.img
	new_volume "$img"
	digest0=$(cryptsetup luksDump "$img" | sed -n '/^Digests:/,$p')
	r=0
	guest crash "$img" "$VM_WORK/crash-$n.log" --env "CRASH_AFTER=$n" || r=$?
	# The guest never reports an exit status: it lost its power.
	if [ "$r" -eq 0 ] || grep -q '^KC-GUEST-EXIT' "$VM_WORK/crash-$n.log"; then
		vm_not_ok "crash-$n: the guest was not cut off (exit $r)"; rc=1
	fi
	check "$VM_WORK/crash-$n.log" KC-OK\ data-written KC-CRASH-NOW
	if ! cryptsetup luksDump "$img" | grep -q online-reencrypt; then
		vm_not_ok "crash-$n: no re-encryption pending after the power cut"; rc=1
	fi
	r=0
	guest resume "$img" "$VM_WORK/resume-$n.log" || r=$?
	[ "$r" -eq 0 ] || { vm_not_ok "resume-$n guest exited $r"; rc=1; }
	check "$VM_WORK/resume-$n.log" KC-OK\ reencryption-pending KC-OK\ resumed \
		KC-OK\ content-identical KC-SCENARIO-DONE
	# On the host: a plain LUKS2 volume again, new volume key, tokens that open it.
	dump=$(cryptsetup luksDump "$img")
	if grep -q -e online-reencrypt -e kekcrypt-rekey <<<"$dump"; then
		vm_not_ok "crash-$n: re-encryption state left in the header"; rc=1
	elif [ "$(sed -n '/^Digests:/,$p' <<<"$dump")" = "$digest0" ]; then
		vm_not_ok "crash-$n: volume key unchanged"; rc=1
	elif ! kc_host verify "$img" >/dev/null; then
		vm_not_ok "crash-$n: the tokens do not open the volume"; rc=1
	else
		vm_ok "crash-$n: header clean, new volume key, tokens verify"
	fi
done
vm_done "$rc"
