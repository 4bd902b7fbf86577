#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest test: stock cryptsetup unlocks a kekcrypt volume through the token plugin, with real
# dm-crypt in a QEMU guest. The plugin goes into the guest's libcryptsetup token dir, and
# libkekcrypt (with kekcrypt) into its library dir. The volumes are formatted on the host with
# file KEKs; the guest holds one KEK and not the other. A third volume has its LUKS2 header
# detached (a file, as Azure Disk Encryption keeps an OS disk's): cryptsetup --header through
# the plugin and kekcrypt open --header map it. Asserts on the guest's markers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PLUGIN=$VM_BUILD/.libs/libcryptsetup-token-kekcrypt.so
[ -f "$PLUGIN" ] || vm_bail "plugin not built: $PLUGIN"
# Where libcryptsetup looks for plugins (the guest runs the host's cryptsetup and libraries).
TOKDIR=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
[ -n "$TOKDIR" ] || vm_bail "cryptsetup has no external token support"

vm_setup
for k in a b; do head -c 32 /dev/urandom >"$VM_WORK/kek/$k.bin"; done
chmod 600 "$VM_WORK"/kek/*.bin
for d in a b c; do truncate -s 64M "$VM_WORK/$d.img"; done
kc_host format -q "$VM_WORK/a.img" --kek "file:$VM_WORK/kek/a.bin"
kc_host format -q "$VM_WORK/b.img" --kek "file:$VM_WORK/kek/b.bin"
kc_host format -q --header "$VM_WORK/c.hdr" "$VM_WORK/c.img" --kek "file:$VM_WORK/kek/a.bin"

log=$VM_WORK/guest.log
rc=0
vm_run "$VM_TOP/tests/vm/scenario-plugin.sh" --log "$log" --timeout 600 \
	--disk "$VM_WORK/a.img" --disk "$VM_WORK/b.img" --disk "$VM_WORK/c.img" \
	--lib "$PLUGIN:$TOKDIR/libcryptsetup-token-kekcrypt.so" \
	--file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" --file "$VM_WORK/c.hdr:/c.hdr" || rc=$?
vm_expect "$log" \
	KC-OK\ plugin-installed KC-OK\ open-token-first KC-OK\ write-close \
	KC-OK\ open-token-only-readback KC-OK\ keyring-reference \
	KC-OK\ kekcrypt-open-same-data KC-OK\ test-passphrase-no-mapping \
	KC-OK\ missing-kek-token-only-no-mapping KC-OK\ missing-kek-fallback-wrong-passphrase \
	KC-OK\ detached-header-cryptsetup KC-OK\ detached-header-kekcrypt-open \
	KC-OK\ detached-header-required KC-SCENARIO-DONE || rc=1
if [ "$rc" -ne 0 ]; then
	{ echo "guest log:"; tail -n 60 "$log"; } >&2
fi
vm_done "$rc"
