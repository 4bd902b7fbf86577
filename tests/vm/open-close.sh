#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest test: kekcrypt open/close/status with real dm-crypt in a QEMU guest. The volumes are
# formatted on the host (file KEK, SoftHSM2 KEK, and one whose KEK the guest has wrong);
# the test asserts on the markers the guest prints, and validates the open and status --json
# documents it prints against their schemas (doc/schema/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vm_setup
for k in a wrong wrong-guest; do head -c 32 /dev/urandom >"$VM_WORK/kek/$k.bin"; done
chmod 600 "$VM_WORK"/kek/*.bin
for d in a b c; do truncate -s 96M "$VM_WORK/$d.img"; done
kc_host format -q "$VM_WORK/a.img" --kek "file:$VM_WORK/kek/a.bin"
kc_host format -q "$VM_WORK/b.img" --kek "$P11_URI"
kc_host format -q "$VM_WORK/c.img" --kek "file:$VM_WORK/kek/wrong.bin"
# The guest's copy of the KEK directory holds another key under wrong.bin.
mkdir -m 700 "$VM_WORK/guest-kek"
cp -p "$VM_WORK/kek/a.bin" "$VM_WORK/guest-kek/a.bin"
cp -p "$VM_WORK/kek/wrong-guest.bin" "$VM_WORK/guest-kek/wrong.bin"
# c.img's KEK is not in the guest; its recovery key is (argon2id kept cheap for emulation).
kc_host recovery add -q "$VM_WORK/c.img" --pbkdf-memory 32 --pbkdf-force-iterations 4 \
	--json >"$VM_WORK/rec.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recovery_key"])' \
	"$VM_WORK/rec.json" >"$VM_WORK/guest-kek/recovery.key"

log=$VM_WORK/guest.log
rc=0
vm_run "$VM_TOP/tests/vm/scenario-open-close.sh" --log "$log" --timeout 600 \
	--disk "$VM_WORK/a.img" --disk "$VM_WORK/b.img" --disk "$VM_WORK/c.img" \
	--bin "$(command -v setpriv)" \
	--file "$VM_WORK/guest-kek/a.bin:$VM_WORK/kek/a.bin" \
	--file "$VM_WORK/guest-kek/wrong.bin:$VM_WORK/kek/wrong.bin" \
	--file "$VM_WORK/guest-kek/recovery.key:/recovery.key" || rc=$?
vm_expect "$log" \
	KC-OK\ roundtrip-vda-1MiB KC-OK\ roundtrip-vda-8MiB KC-OK\ roundtrip-vda-16MiB \
	KC-OK\ roundtrip-vdb-1MiB KC-OK\ roundtrip-vdb-8MiB \
	KC-OK\ raw-device-ciphertext KC-OK\ keyring-reference KC-OK\ status \
	KC-OK\ name-and-device-in-use KC-OK\ busy-close-refused KC-OK\ readonly \
	KC-OK\ wrong-kek-no-mapping KC-OK\ recovery-open KC-OK\ permission-denied KC-OK\ close-missing \
	KC-SCENARIO-DONE || rc=1
# The --json documents the guest printed, each valid against its schema (as
# tests/host/json-schemas.sh checks the verbs that need no device-mapper).
for name in status-all open status open-recovery; do
	line=$(sed -n "s/^KC-JSON $name //p" "$log" | head -n 1 | tr -d '\r')
	printf '%s\n' "$line" >"$VM_WORK/$name.json"
	if [ -n "$line" ] && /usr/bin/python3 "$VM_TOP/tests/validate-json.py" "$VM_TOP/doc/schema" \
		"$VM_WORK/$name.json" >"$VM_WORK/why" 2>&1; then
		vm_ok "$name --json: valid against its schema"
	else
		vm_not_ok "$name --json: valid against its schema ($(head -c 300 "$VM_WORK/why"))"
		rc=1
	fi
done
if [ "$rc" -ne 0 ]; then
	{ echo "guest log:"; tail -n 60 "$log"; } >&2
fi
vm_done "$rc"
