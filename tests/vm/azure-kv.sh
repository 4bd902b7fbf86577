#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest test: a volume whose KEK is in the Azure Key Vault fixture. The fixture runs in the
# harness's private network namespace on 127.0.0.1; the guest reaches it at the user-network
# gateway 10.0.2.2 and authenticates with a managed-identity token from the fixture's
# metadata endpoint, as an Azure VM would. Asserts on the guest's markers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vm_setup
port=8443	# fixed: the namespace is private to this run
"$VM_TOP/tests/fixtures/tls.sh" "$VM_WORK/tls" IP:10.0.2.2 >/dev/null
mkdir -m 700 "$VM_WORK/etc"
cat >"$VM_WORK/etc/kekcrypt.conf" <<CONF
[azure-kv]
auth = managed-identity
allowed-hosts = 10.0.2.2
ca-file = /etc/kekcrypt/ca.pem
imds-endpoint = https://10.0.2.2:$port/metadata/identity/oauth2/token
CONF
chmod 600 "$VM_WORK/etc/kekcrypt.conf"
truncate -s 64M "$VM_WORK/disk.img"

log=$VM_WORK/guest.log
rc=0
vm_run "$VM_TOP/tests/vm/scenario-azure-kv.sh" --log "$log" --timeout 600 \
	--disk "$VM_WORK/disk.img" --env "KV_PORT=$port" --lib "$VM_LIBCURL" \
	--file "$VM_WORK/etc/kekcrypt.conf:/etc/kekcrypt/kekcrypt.conf" \
	--file "$VM_WORK/tls/ca.pem:/etc/kekcrypt/ca.pem" \
	--netns-setup "exec node '$VM_TOP/tests/fixtures/azure-kv/server.js' --port $port \
		--cert '$VM_WORK/tls/server.pem' --key '$VM_WORK/tls/server.key' --rsa-key kek-rsa" \
	--netns-wait-port "$port" || rc=$?
vm_expect "$log" "KC-OK network" "KC-OK format" "KC-OK open-write-reopen-read" \
	KC-SCENARIO-DONE || rc=1
[ "$rc" -eq 0 ] || { { echo "guest log:"; tail -n 40 "$log"; } >&2; }
vm_done "$rc"
