#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kek rotate --if-newer (what kekcrypt-refresh.service runs) against the Vault Transit and
# Azure Key Vault protocol fixtures: with every key at its current version it writes nothing
# (header checksum unchanged) and exits 0; after a KMS-side rotation it rotates exactly the
# tokens whose key has a newer version, keeping their IDs, one audit event each; a file: token
# and an Azure URI pinning a version are left alone; a token whose KMS is unreachable is
# reported (exit 4) while another token of the volume still rotates; --crypttab runs it (and
# verify --all) on every crypttab volume with a kekcrypt token. JSON validated.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node is missing (apt-get install nodejs)"
need curl python3
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import jsonschema' 2>/dev/null ||
	bail_out "python3-jsonschema is missing (scripts/install-deps.sh installs it)"
T=$T_DIR

# The audit events, from a syslog socket of the test's own (/dev/log in a private /dev).
LOG=$T/syslog
private_syslog "$LOG"

fixture_sdk vault node-vault
VDIR=$SDK_DIR
fixture_sdk azure-kv @azure/keyvault-keys
AZDIR=$SDK_DIR
"$FIX/tls.sh" "$T/tls" >/dev/null
CA=$T/tls/ca.pem

TOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && echo "$TOKEN" >"$T/vault-token")
fixture_start V node "$VDIR/server.js" --tls-dir "$T/tls" --token "$TOKEN" --key k1 --key k2
fixture_start V2 node "$VDIR/server.js" --tls-dir "$T/tls" --token "$TOKEN" --key k1
V2_PID=${T_PIDS[-1]}
fixture_start A node "$AZDIR/server.js" --cert "$T/tls/server.pem" --key "$T/tls/server.key" \
	--rsa-key kek-rsa
VURI=vault-transit+https://127.0.0.1:$V_PORT/v1/transit/keys/k1
VURI2=vault-transit+https://127.0.0.1:$V_PORT/v1/transit/keys/k2
GONE=vault-transit+https://127.0.0.1:$V2_PORT/v1/transit/keys/k1
AURI=azure-kv+https://localhost:$A_PORT/keys/kek-rsa

CONF=$T/kc.conf
(umask 077 && cat >"$CONF" <<EOF
[vault-transit]
allowed-hosts = 127.0.0.1
auth = token
token-file = $T/vault-token
ca-file = $CA
max-attempts = 1
[azure-kv]
allowed-hosts = localhost
ca-file = $CA
auth = managed-identity
imds-endpoint = https://127.0.0.1:$A_PORT/metadata/identity/oauth2/token
max-attempts = 1
EOF
)

# KMS-side rotations.
vault_rotate() { # PORT KEY
	curl -sS --cacert "$CA" -X POST -H 'Content-Type: application/json' \
		-d "{\"key\": \"$2\"}" "https://127.0.0.1:$1/_fixture/rotate" >/dev/null
}
azure_rotate() {
	local tok
	tok=$(curl -sS --cacert "$CA" -H 'Metadata: true' \
		"https://127.0.0.1:$A_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
	curl -sS --cacert "$CA" -X POST -H "Authorization: Bearer $tok" \
		"https://localhost:$A_PORT/keys/kek-rsa/rotate?api-version=7.4" >/dev/null
}
azure_current() {
	curl -sS --cacert "$CA" "https://localhost:$A_PORT/_fixture/keys" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["kek-rsa"]["current"])'
}

# versions IMG: "ID:VERSION ..." of the kekcrypt tokens (kek list; "-" without a version).
versions() {
	kc kek list --json "$1" >"$T/list.json"
	json_get "$T/list.json" '" ".join("%d:%s" % (t["id"], t.get("key_version", "-")) for t in d["tokens"])'
}
# states: "ID:STATE ..." of the last kek rotate --if-newer --json.
states() {
	json_get "$OUT" '" ".join("%d:%s" % (t["id"], t["state"]) for t in d["tokens"])'
}
valid() { # DESC: $OUT validates against the schema it names
	assert_true -m "$1: valid JSON ($(json_get "$OUT" 'd["schema"]'))" \
		"$PY" -W ignore "$KC_SRCDIR/tests/validate-json.py" "$KC_SRCDIR/doc/schema" "$OUT"
}
# events: the kek-rotate audit events so far, "token=N trigger=T" each.
events() {
	sed -n 's/.*event=kek-rotate outcome=ok .*token=\([0-9]*\) .*trigger=\([a-z-]*\).*/token=\1 trigger=\2/p' "$LOG" |
		tr '\n' ';'
}

new_kek "$T/file.bin"
IMG=$T/a.img
new_img "$IMG"
assert_exit -m "format with a Vault, an Azure and a file KEK" 0 kc format -q --config "$CONF" \
	"$IMG" --kek "$VURI" --kek "$AURI" --kek "file:$T/file.bin"
AV1=$(azure_current)
assert_eq -m "versions recorded: Vault 1, Azure's current, none for the file KEK" \
	"0:1 1:$AV1 2:-" "$(versions "$IMG")"

# --- nothing newer: nothing written -----------------------------------------------------------
sum=$(header_sum "$IMG")
assert_exit -m "--if-newer with every key current: exit 0" 0 \
	kc kek rotate --config "$CONF" --all --if-newer "$IMG"
assert_stdout_contains -m "... token 0 is at the current version" \
	"token 0 ($VURI): already at the current version (1)"
assert_stdout_contains -m "... so is token 1" "token 1 ($AURI): already at the current version"
assert_stdout_contains -m "... the file KEK is left alone" \
	"token 2 (file:$T/file.bin): not versioned: left alone"
assert_header_unchanged -m "... the header is byte-identical" "$IMG" "$sum"
assert_eq -m "... no kek-rotate event" "" "$(events)"

# --- Vault rotates k1: only token 0 moves ------------------------------------------------------
vault_rotate "$V_PORT" k1
assert_exit -m "after Vault rotates k1: --if-newer --json, exit 0" 0 \
	kc kek rotate --config "$CONF" --all --if-newer "$IMG" --json
valid "--if-newer after a Vault rotation"
assert_eq -m "... token 0 rotated, the others not" "0:rotated 1:current 2:unversioned" "$(states)"
assert_eq -m "... json: from version 1 to 2" "1 2" \
	"$(json_get "$OUT" '"%s %s" % (d["tokens"][0]["old_key_version"], d["tokens"][0]["key_version"])')"
assert_eq -m "... json: rotated 1, failed 0" "1 0" "$(json_get "$OUT" '"%d %d" % (d["rotated"], d["failed"])')"
assert_eq -m "... the IDs are kept, token 0 now at version 2" "0:2 1:$AV1 2:-" "$(versions "$IMG")"
assert_eq -m "... one audit event, for token 0" "token=0 trigger=if-newer;" "$(events)"
assert_exit -m "... token 0 unlocks" 0 kc verify --config "$CONF" --token 0 "$IMG"
sum=$(header_sum "$IMG")
assert_exit -m "a second run: exit 0" 0 kc kek rotate --config "$CONF" --all --if-newer "$IMG"
assert_stdout_contains -m "... token 0 is now current" "token 0 ($VURI): already at the current version (2)"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"

# --- Azure rotates the key: only token 1 moves; --token ------------------------------------------
azure_rotate
AV2=$(azure_current)
assert_true -m "the Azure fixture has a new current version" [ "$AV2" != "$AV1" ]
sum=$(header_sum "$IMG")
assert_exit -m "--if-newer --token 0 (its key has nothing newer): exit 0" 0 \
	kc kek rotate --config "$CONF" --token 0 --if-newer "$IMG"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
assert_exit -m "--if-newer --token 1" 0 kc kek rotate --config "$CONF" --token 1 --if-newer "$IMG"
assert_stdout_contains -m "... now at the new version" "token 1 ($AURI): now at version $AV2 (was $AV1)"
assert_eq -m "... IDs kept, token 1 at the new version" "0:2 1:$AV2 2:-" "$(versions "$IMG")"
assert_eq -m "... one more audit event, for token 1" \
	"token=0 trigger=if-newer;token=1 trigger=if-newer;" "$(events)"
assert_exit -m "... token 1 unlocks" 0 kc verify --config "$CONF" --token 1 "$IMG"

# --- an Azure URI pinning a version is left alone ---------------------------------------------
PIN=$T/pinned.img
new_img "$PIN"
assert_exit -m "format under the pinned version" 0 kc format -q --config "$CONF" "$PIN" \
	--kek "$AURI/$AV2"
azure_rotate
sum=$(header_sum "$PIN")
assert_exit -m "after another Azure rotation: --if-newer on the pinned token, exit 0" 0 \
	kc kek rotate --config "$CONF" --all --if-newer "$PIN" --json
valid "--if-newer, pinned URI"
assert_eq -m "... not versioned" "0:unversioned" "$(states)"
assert_header_unchanged -m "... nothing written" "$PIN" "$sum"

# --- one KMS unreachable: reported, the other token still rotates --------------------------------
B=$T/b.img
new_img "$B"
assert_exit -m "format with a Vault KEK on a second server and the Azure KEK" 0 \
	kc format -q --config "$CONF" "$B" --kek "$GONE" --kek "$AURI"
kill "$V2_PID"
wait "$V2_PID" 2>/dev/null || diag "the second Vault fixture ended"
azure_rotate
AV4=$(azure_current)
assert_exit -m "one KMS unreachable: exit 4" 4 kc kek rotate --config "$CONF" --all --if-newer "$B"
assert_stdout_contains -m "... token 0 reported with its cause" "token 0 ($GONE): not rotated:"
assert_stdout_contains -m "... (unreachable)" "unreachable"
assert_stdout_contains -m "... token 1 still rotated" "token 1 ($AURI): now at version $AV4"
assert_stderr_contains -m "... the error names the token" "token 0 not moved to its KMS's current version"
assert_eq -m "... token 1 at the new version, token 0 as it was" "0:1 1:$AV4" "$(versions "$B")"
assert_exit -m "... --json: exit 4 too" 4 kc kek rotate --config "$CONF" --all --if-newer "$B" --json
valid "--if-newer with an unreachable KMS"
assert_eq -m "... json: token 0 failed (exit_code 4), token 1 current" "0:failed 1:current 4" \
	"$(states) $(json_get "$OUT" 'd["tokens"][0]["exit_code"]')"

# --- --crypttab: every volume ------------------------------------------------------------------
C=$T/c.img
new_img "$C"
assert_exit -m "a third volume under Vault k2" 0 kc format -q --config "$CONF" "$C" --kek "$VURI2"
printf 'a %s none luks\nc %s none luks\nplain %s none luks\n' "$IMG" "$C" "$T/file.bin" \
	>"$T/crypttab"
vault_rotate "$V_PORT" k1
vault_rotate "$V_PORT" k2
assert_exit -m "--crypttab after Vault rotates k1 and k2: exit 0" 0 \
	kc kek rotate --config "$CONF" --crypttab="$T/crypttab" --all --if-newer --json
valid "--crypttab"
assert_eq -m "... a and c done, the non-LUKS entry skipped" "done done skipped" \
	"$(json_get "$OUT" '" ".join(v["status"] for v in d["volumes"])')"
assert_eq -m "... per volume: a's tokens 0 and 1 rotated (Vault k1, Azure), c's token 0" \
	"0:rotated 1:rotated 2:unversioned|0:rotated" \
	"$(json_get "$OUT" '"|".join(" ".join("%d:%s" % (t["id"], t["state"]) for t in v["result"]["tokens"]) for v in d["volumes"][:2])')"
assert_eq -m "... a: the IDs kept, at the new versions" "0:3 1:$AV4 2:-" "$(versions "$IMG")"
assert_eq -m "... c: at version 2" "0:2" "$(versions "$C")"
assert_exit -m "verify --all --crypttab: exit 0" 0 \
	kc verify --config "$CONF" --crypttab="$T/crypttab" --all
assert_stdout_contains -m "... names each volume" "c ($C):"
assert_exit -m "verify --all --crypttab --json" 0 \
	kc verify --config "$CONF" --crypttab="$T/crypttab" --all --json
valid "verify --all --crypttab"
printf 'b %s none luks\n' "$B" >>"$T/crypttab"
sum=$(header_sum "$IMG")
assert_exit -m "--crypttab with b's KMS unreachable: exit 4" 4 \
	kc kek rotate --config "$CONF" --crypttab="$T/crypttab" --all --if-newer
assert_stdout_contains -m "... b reported" "token 0 ($GONE): not rotated:"
assert_header_unchanged -m "... a: nothing newer, nothing written" "$IMG" "$sum"
assert_exit -m "verify --all --crypttab, b degraded: exit 26" 26 \
	kc verify --config "$CONF" --crypttab="$T/crypttab" --all

# --- usage -----------------------------------------------------------------------------------------
assert_exit -m "--if-newer without --all or --token: usage error" 2 kc kek rotate --if-newer "$IMG"
assert_exit -m "--if-newer with --to: usage error" 2 \
	kc kek rotate --token 0 --if-newer --to "file:$T/file.bin" "$IMG"
assert_exit -m "--crypttab FILE (a DEVICE with it): usage error" 2 \
	kc kek rotate --all --if-newer --crypttab "$T/crypttab"
assert_exit -m "--crypttab without --if-newer: usage error" 2 \
	kc kek rotate --all --crypttab="$T/crypttab"
assert_exit -m "verify --crypttab without --all: usage error" 2 \
	kc verify --crypttab="$T/crypttab"

done_testing
