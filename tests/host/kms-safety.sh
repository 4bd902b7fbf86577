#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# KMS safety checks, against the Vault Transit and Azure Key Vault protocol fixtures
# (tests/fixtures/vault, tests/fixtures/azure-kv; HTTPS on 127.0.0.1):
#  - a wrap under a Vault key that does not exist is refused (Vault's encrypt would create it,
#    and the fixture does too, as shown), and no key is created; so is one the policy does not
#    let kekcrypt read; Azure answers a missing key with "no such key";
#  - format, kek add (stderr, and --json "warnings") and doctor warn about a key that can be
#    deleted for good (Vault deletion_allowed; an Azure vault without purge protection), is
#    disabled, or expires, each saying what to change; and not about a safe key.
# The fixtures use node built-ins only (no npm packages): exit 77 without node.
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node is missing (apt-get install nodejs)"

T=$T_DIR
"$FIX/tls.sh" "$T/tls" >/dev/null
CA=$T/tls/ca.pem
TOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && echo "$TOKEN" >"$T/token" && head -c 24 /dev/urandom | base64 >"$T/client-secret")
EXP=$(($(date +%s) + 30 * 86400))
EXP_ISO=$(date -u -d "@$EXP" +%Y-%m-%dT%H:%M:%SZ)

fixture_start V node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "$TOKEN" \
	--key safe --deletable-key loose
# Vault A has purge protection ("Recoverable"); vault B has not (the service's default).
fixture_start A node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --client-secret-file "$T/client-secret" --recovery-level Recoverable \
	--rsa-key safe --rsa-key disabled --rsa-key expiring \
	--key-attr disabled:enabled=false --key-attr "expiring:exp=$EXP"
fixture_start B node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --client-secret-file "$T/client-secret" --rsa-key purgeable

VURI=vault-transit+https://127.0.0.1:$V_PORT/v1/transit/keys
AURI=azure-kv+https://localhost:$A_PORT/keys
BURI=azure-kv+https://localhost:$B_PORT/keys

# conf FILE PORT: a private config for the Vault fixture and the Azure fixture on PORT.
conf() {
	(umask 077 && printf '%s\n' "[vault-transit]" "allowed-hosts = 127.0.0.1" "auth = token" \
		"token-file = $T/token" "ca-file = $CA" "[azure-kv]" "allowed-hosts = localhost" \
		"ca-file = $CA" "authority-host = https://localhost:$2" "tenant-id = test-tenant" \
		"client-id = kekcrypt-test-client" "client-secret-file = $T/client-secret" \
		"auth = client-secret" "max-attempts = 2" >"$1")
}
conf "$T/a.conf" "$A_PORT"
conf "$T/b.conf" "$B_PORT"

# vault METHOD PATH [JSON]: a request to the Vault fixture, with the token for /v1/ paths.
vault() {
	curl -sS --cacert "$CA" -X "$1" -H "X-Vault-Token: $TOKEN" \
		${3:+-H 'Content-Type: application/json' -d "$3"} "https://127.0.0.1:$V_PORT$2"
}
vault_keys() { vault GET /_fixture/keys | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["keys"])))'; }
vault_count() { vault GET /_fixture/counters | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# kinds: the "kind"s of the --json warnings of the last run, space-separated.
kinds() { json_get "$OUT" '" ".join(w["kind"] for w in d["warnings"])'; }
# message KIND: the message of the last run's --json warning of KIND.
message() { json_get "$OUT" "[w['message'] for w in d['warnings'] if w['kind'] == '$1'][0]"; }

# fmt NAME CONF URI: format image NAME with URI, --json.
fmt() {
	new_img "$T/$1.img"
	run kc format -q --json --config "$2" "$T/$1.img" --kek "$3"
}

# --- a Vault key that does not exist -----------------------------------------------------
assert_eq -m "the Vault fixture has the keys it was started with" "loose safe" "$(vault_keys)"
# The fixture, as Vault, makes a key on encrypt: what the check below must prevent.
vault POST /v1/transit/encrypt/proof '{"plaintext":"AAAAAAAAAAAAAAAAAAAAAA=="}' >/dev/null
assert_eq -m "the fixture creates a missing key on encrypt, as Vault does" "loose proof safe" \
	"$(vault_keys)"
vault POST /_fixture/reset >/dev/null
new_img "$T/typo.img"
assert_exit -m "format under a misspelt Vault key: exit 3 (not found)" 3 \
	kc format -q --config "$T/a.conf" "$T/typo.img" --kek "$VURI/saef"
assert_stderr_contains -m "... says Vault has no such key and why it refuses" \
	"key transit/saef: Vault has no such key: refusing to wrap, since Vault's encrypt would create a new key of that name"
assert_eq -m "... no encrypt request reached Vault" 0 "$(vault_count encrypt)"
assert_eq -m "... and no key was created" "loose proof safe" "$(vault_keys)"
assert_true -m "... nothing was written to the image" is_all_zero "$T/typo.img"

fmt vsafe "$T/a.conf" "$VURI/safe"
assert_eq -m "format under an existing, safe Vault key: exit 0" 0 "$RC"
assert_eq -m "... no warnings in --json" "" "$(kinds)"
assert_not_contains -m "... none on stderr" "$(cat "$ERR")" "warning"

assert_exit -m "kek add under a misspelt Vault key: exit 3" 3 \
	kc kek add --config "$T/a.conf" "$T/vsafe.img" --kek "$VURI/lose"
assert_eq -m "... and no key was created" "loose proof safe" "$(vault_keys)"
assert_exit -m "kek rotate --to a misspelt Vault key: exit 3" 3 \
	kc kek rotate --config "$T/a.conf" "$T/vsafe.img" --token 0 --to "$VURI/sfae"
assert_eq -m "... and no key was created" "loose proof safe" "$(vault_keys)"
assert_exit -m "... the volume still opens with its token 0" 0 \
	kc verify --config "$T/a.conf" "$T/vsafe.img" --token 0

vault POST /_fixture/fault '{"mode":"403","endpoint":"key_read"}' >/dev/null
vault POST /_fixture/reset >/dev/null
# (a key the volume has no token for yet: adding its own KEK again is a no-op)
assert_exit -m "kek add when the policy does not let kekcrypt read the key: exit 5 (refused)" 5 \
	kc kek add --config "$T/a.conf" "$T/vsafe.img" --kek "$VURI/proof"
assert_stderr_contains -m "... says what to grant" "grant the 'read' capability on transit/keys/proof"
assert_eq -m "... and encrypts nothing" 0 "$(vault_count encrypt)"

# --- deletable keys --------------------------------------------------------------------------
fmt vloose "$T/a.conf" "$VURI/loose"
assert_eq -m "format under a Vault key with deletion_allowed: exit 0 (a warning only)" 0 "$RC"
assert_eq -m "... --json warns: deletable" "deletable" "$(kinds)"
assert_contains -m "... and says how to forbid deletion" "$(message deletable)" \
	"vault write transit/keys/loose/config deletion_allowed=false"
assert_stderr_contains -m "... on stderr too" "kekcrypt format: warning: KEK '$VURI/loose': the key can be deleted for good (deletion_allowed is true"

run kc kek add --json --config "$T/a.conf" "$T/vsafe.img" --kek "$VURI/loose"
assert_eq -m "kek add of a deletable Vault key: exit 0" 0 "$RC"
assert_eq -m "... --json warns: deletable" "deletable" "$(kinds)"
assert_stderr_contains -m "... on stderr too" "kekcrypt kek add: warning: KEK '$VURI/loose'"

fmt bpurge "$T/b.conf" "$BURI/purgeable"
assert_eq -m "format under a key of an Azure vault without purge protection: exit 0" 0 "$RC"
assert_eq -m "... --json warns: deletable" "deletable" "$(kinds)"
assert_contains -m "... names the recovery level and the fix" "$(message deletable)" \
	"(recoveryLevel Recoverable+Purgeable: no purge protection)"
assert_contains -m "... enable purge protection" "$(message deletable)" \
	"az keyvault update --name localhost --enable-purge-protection true"

# --- Azure: safe, disabled, expiring, missing ------------------------------------------------
fmt asafe "$T/a.conf" "$AURI/safe"
assert_eq -m "format under a safe Azure key (purge protection, enabled, no expiry): exit 0" 0 "$RC"
assert_eq -m "... no warnings" "" "$(kinds)"

fmt adisabled "$T/a.conf" "$AURI/disabled"
assert_eq -m "format under a disabled Azure key: exit 0 (Key Vault wraps with it)" 0 "$RC"
assert_eq -m "... --json warns: disabled" "disabled" "$(kinds)"
assert_contains -m "... says how to enable it" "$(message disabled)" \
	"az keyvault key set-attributes --vault-name localhost --name disabled --enabled true"
assert_exit -m "... and indeed it does not open: exit 5 (refused)" 5 \
	kc verify --config "$T/a.conf" "$T/adisabled.img"
assert_stderr_contains -m "... the error says the key is disabled" "the key is disabled in the vault"

fmt aexpiring "$T/a.conf" "$AURI/expiring"
assert_eq -m "format under an Azure key that expires: exit 0" 0 "$RC"
assert_eq -m "... --json warns: expires" "expires" "$(kinds)"
assert_contains -m "... says when ($EXP_ISO) and what to do" "$(message expires)" \
	"the key expires on $EXP_ISO; after that the vault still unwraps with it but wraps nothing"

run kc kek add --json --config "$T/a.conf" "$T/asafe.img" --kek "$AURI/expiring"
assert_eq -m "kek add of an expiring Azure key: exit 0" 0 "$RC"
assert_eq -m "... --json warns: expires" "expires" "$(kinds)"
run kc kek add --json --config "$T/a.conf" "$T/vsafe.img" --kek "$AURI/safe"
assert_eq -m "kek add of a safe Azure key: exit 0" 0 "$RC"
assert_eq -m "... no warnings" "" "$(kinds)"

# A key the KMS will not describe (no "get" permission): a warning that says so, not a failure.
# With wrap-alg set, the check's GET is the only one kek add makes.
cp "$T/a.conf" "$T/a-alg.conf"
echo "wrap-alg = RSA-OAEP-256" >>"$T/a-alg.conf"
curl -sS --cacert "$CA" -d '{"mode":"403","count":1,"target":"get"}' \
	"https://localhost:$A_PORT/_fixture/fault" >/dev/null
run kc kek add --json --config "$T/a-alg.conf" "$T/asafe.img" --kek "$AURI/safe"
assert_eq -m "kek add when the key cannot be read: exit 0" 0 "$RC"
assert_eq -m "... --json warns: unchecked" "unchecked" "$(kinds)"
assert_contains -m "... saying why" "$(message unchecked)" \
	"KEK '$AURI/safe': could not ask the KMS about the key: Azure Key Vault localhost:$A_PORT key 'safe': the identity lacks get permission"

new_img "$T/amissing.img"
assert_exit -m "format under a missing Azure key: exit 3 (not found)" 3 \
	kc format -q --config "$T/a.conf" "$T/amissing.img" --kek "$AURI/saef"
assert_stderr_contains -m "... says there is no such key" "key 'saef': no such key or version in the vault (KeyNotFound)"

# --- doctor ------------------------------------------------------------------------------------
# vsafe now also has tokens for loose (Vault) and safe (Azure); asafe one for expiring.
: >"$T/crypttab-a"
for v in vsafe vloose asafe adisabled aexpiring; do
	echo "$v $T/$v.img none luks" >>"$T/crypttab-a"
done
echo "bpurge $T/bpurge.img none luks" >"$T/crypttab-b"
# doctor_warnings NAME: the volume's warnings of the last doctor --json run, one per line.
doctor_warnings() {
	json_get "$OUT" "'\\n'.join(p['message'] for v in d['volumes'] if v['name'] == '$1' for p in v['problems'] if p['severity'] == 'warning')"
}
run kc doctor --json --config "$T/a.conf" --crypttab "$T/crypttab-a" --initramfs "$T/none"
assert_eq -m "doctor ran on crypttab-a" 5 "$(json_get "$OUT" 'len(d["volumes"])')"
assert_contains -m "doctor: vsafe's token 1 (loose) is deletable" "$(doctor_warnings vsafe)" \
	"token 1: KEK '$VURI/loose': the key can be deleted for good"
assert_not_contains -m "... and nothing about its token 0 (safe)" "$(doctor_warnings vsafe)" \
	"$VURI/safe'"
assert_contains -m "doctor: vloose is deletable" "$(doctor_warnings vloose)" \
	"token 0: KEK '$VURI/loose': the key can be deleted for good"
assert_contains -m "doctor: asafe's token 1 expires" "$(doctor_warnings asafe)" \
	"token 1: KEK '$AURI/expiring': the key expires on $EXP_ISO"
assert_not_contains -m "... and nothing about its token 0 (safe)" "$(doctor_warnings asafe)" \
	"$AURI/safe'"
assert_contains -m "doctor: adisabled is disabled" "$(doctor_warnings adisabled)" \
	"token 0: KEK '$AURI/disabled': the key is disabled"
assert_contains -m "doctor: aexpiring expires" "$(doctor_warnings aexpiring)" \
	"token 0: KEK '$AURI/expiring': the key expires on $EXP_ISO"
run kc doctor --config "$T/a.conf" --crypttab "$T/crypttab-a" --initramfs "$T/none"
assert_stdout_contains -m "doctor's text output has the warning" \
	"  warning: token 0: KEK '$AURI/disabled': the key is disabled"
run kc doctor --json --config "$T/b.conf" --crypttab "$T/crypttab-b" --initramfs "$T/none"
assert_contains -m "doctor: bpurge is deletable (no purge protection)" "$(doctor_warnings bpurge)" \
	"token 0: KEK '$BURI/purgeable': the key can be deleted for good (recoveryLevel Recoverable+Purgeable"

done_testing
