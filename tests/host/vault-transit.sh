#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The "vault-transit" provider against the Vault protocol fixture (tests/fixtures/vault/
# server.js, HTTPS on 127.0.0.1 with a throwaway CA from tests/fixtures/tls.sh):
#  - the fixture itself is checked with node-vault (sdk-check.mjs), and kekcrypt's tokens
#    interoperate with that client in both directions, proven with cryptsetup;
#  - format / verify / kek add with token, AppRole and cert auth, and with a namespace;
#  - key rotation: old tokens still unlock, new ones record the new version;
#  - every fault maps to its exit code (src/cli.h), retries are visible in the fixture's
#    counters, and no token, secret_id or DEK reaches stderr or the debug log;
#  - one AppRole login per command, however many transit calls it makes.
# Needs node (exit 77 without it) and `npm ci` in tests/fixtures/vault (a failure without).
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node is missing (apt-get install nodejs)"
fixture_sdk vault node-vault
VDIR=$SDK_DIR

T=$T_DIR
"$FIX/tls.sh" "$T/tls" >/dev/null
CA=$T/tls/ca.pem

# vault_start NAME ARGS...: start a fixture (stopped on exit); sets NAME_PORT. Its stderr
# goes to $T/NAME.log.
vault_start() {
	local name=$1
	shift
	fixture_start "$name" node "$VDIR/server.js" --tls-dir "$T/tls" "$@"
}

# vctl PORT METHOD PATH [JSON]: a control request to a fixture; prints the answer.
vctl() {
	python3 - "$CA" "$@" <<'PY'
import json, ssl, sys, urllib.request
ca, port, method, path = sys.argv[1:5]
data = sys.argv[5].encode() if len(sys.argv) > 5 else None
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=data, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())
PY
}

# counter PORT NAME: one of the fixture's counters.
counter() {
	vctl "$1" GET /_fixture/counters | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

reset() { vctl "$1" POST /_fixture/reset >/dev/null; }
fault() { vctl "$1" POST /_fixture/fault "$2" >/dev/null; }

# tok_export IMG ID FILE / tok_replace IMG ID FILE: raw token JSON through cryptsetup.
tok_export() {
	cryptsetup token export --token-id "$2" "$1" >"$3"
}

tok_replace() {
	cryptsetup token remove --token-id "$2" "$1"
	cryptsetup token import --json-file "$3" --token-id "$2" "$1"
}

# private FILE CONTENT: a mode 0600 file.
private() {
	(umask 077 && printf '%s\n' "$2" >"$1")
}

# conf FILE LINE...: a private config file with a [vault-transit] section.
conf() {
	local f=$1
	shift
	(umask 077 && { echo "[vault-transit]"; echo "allowed-hosts = 127.0.0.1"
		printf '%s\n' "$@"; } >"$f")
}

# Credentials: random, so that a leak check can look for them.
TOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
NARROW=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
ROLE_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
SECRET_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
private "$T/token" "$TOKEN"
private "$T/narrow-token" "$NARROW"
private "$T/role-id" "$ROLE_ID"
private "$T/secret-id" "$SECRET_ID"
private "$T/bad-secret-id" "$(python3 -c 'import uuid; print(uuid.uuid4())')"

vault_start V --token "$TOKEN" --token "$NARROW:other" --approle "$ROLE_ID:$SECRET_ID" \
	--cert-role kekcrypt --key k1 --key k2 --key k3
P=$V_PORT
URI=vault-transit+https://127.0.0.1:$P/v1/transit/keys/k1
URI2=vault-transit+https://127.0.0.1:$P/v1/transit/keys/k2
URI3=vault-transit+https://127.0.0.1:$P/v1/transit/keys/k3

conf "$T/token.conf" "auth = token" "token-file = $T/token" "ca-file = $CA"
conf "$T/approle.conf" "auth = approle" "role-id-file = $T/role-id" \
	"secret-id-file = $T/secret-id" "ca-file = $CA"
conf "$T/cert.conf" "auth = cert" "client-cert = $T/tls/client.pem" \
	"client-key = $T/tls/client.key" "cert-role = kekcrypt" "ca-file = $CA"

# --- the fixture against node-vault ------------------------------------------------------
run node "$VDIR/sdk-check.mjs" check --endpoint "https://127.0.0.1:$P" --ca "$CA" --key k1 \
	--role-id-file "$T/role-id" --secret-id-file "$T/secret-id" \
	--client-cert "$T/tls/client.pem" --client-key "$T/tls/client.key" --cert-role kekcrypt
if [ "$RC" = 0 ]; then
	ok "node-vault drives the fixture: $(tail -n 1 "$OUT" | sed 's/^# //')"
else
	not_ok "node-vault drives the fixture (exit $RC)"
	_t_diag_files
fi

# --- token auth --------------------------------------------------------------------------
IMG=$T/disk.img
new_img "$IMG"
reset "$P"
assert_exit -m "format with token auth" 0 kc format -q --debug --config "$T/token.conf" "$IMG" --kek "$URI"
cp "$ERR" "$T/format.err"
assert_eq -m "format made one encrypt request" 1 "$(counter "$P" encrypt)"
tok_export "$IMG" 0 "$T/tok0.json"
assert_eq -m "token: provider vault-transit" vault-transit "$(json_get "$T/tok0.json" 'd["kekcrypt-provider"]')"
assert_eq -m "token: wrap alg vault-transit" vault-transit "$(json_get "$T/tok0.json" 'd["kekcrypt-wrap-alg"]')"
assert_eq -m "token: key version 1" 1 "$(json_get "$T/tok0.json" 'd["kekcrypt-key-version"]')"
json_get "$T/tok0.json" '__import__("base64").b64decode(d["kekcrypt-wrapped-key"]).decode()' >"$T/ct0"
assert_true -m "token: the wrapped key is Vault's vault:v1: ciphertext" grep -Eq '^vault:v1:[A-Za-z0-9+/]+=*$' "$T/ct0"
reset "$P"
assert_exit -m "verify with token auth" 0 kc verify --debug --config "$T/token.conf" "$IMG"
cp "$ERR" "$T/verify.err"
assert_stdout_contains -m "verify names token 0 and the KEK" "token 0 ($URI)"
assert_eq -m "verify made one decrypt request" 1 "$(counter "$P" decrypt)"

# --- interoperability with node-vault, both directions -----------------------------------
run node "$VDIR/sdk-check.mjs" decrypt --endpoint "https://127.0.0.1:$P" --ca "$CA" --key k1 \
	--token-file "$T/token" --in "$T/ct0" --out "$T/dek"
assert_eq -m "node-vault decrypts kekcrypt's wrapped key to 64 bytes" "0 64" "$RC $(stat -c %s "$T/dek" 2>/dev/null)"
cp --sparse=always "$IMG" "$T/interop.img"
private "$T/newpass" interop-pass
assert_exit -m "cryptsetup accepts node-vault's plaintext as the volume key" 0 \
	cryptsetup luksAddKey -q --volume-key-file "$T/dek" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/interop.img" "$T/newpass"
head -c 64 /dev/urandom >"$T/notdek"
run cryptsetup luksAddKey -q --volume-key-file "$T/notdek" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/interop.img" "$T/newpass"
assert_true -m "control: cryptsetup refuses a random volume key" \
	test "$RC" != 0 -a -n "$(grep -i 'volume key does not match' "$ERR")"

# The other way: node-vault wraps a volume key, kekcrypt unwraps it from a hand-made token.
head -c 64 /dev/urandom >"$T/dek2"
run node "$VDIR/sdk-check.mjs" encrypt --endpoint "https://127.0.0.1:$P" --ca "$CA" --key k1 \
	--token-file "$T/token" --in "$T/dek2" --out "$T/ct2"
assert_eq -m "node-vault encrypts a volume key" 0 "$RC"
IMG2=$T/sdk.img
new_img "$IMG2"
private "$T/pass2" sdk-pass
cryptsetup luksFormat -q --type luks2 --volume-key-file "$T/dek2" --key-size 512 \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$IMG2" "$T/pass2"
python3 - "$T/ct2" "$URI" "$T/sdk-token.json" <<'PY'
import base64, json, sys
ct = open(sys.argv[1], "rb").read()
v = ct.split(b":")[1][1:].decode()
json.dump({"type": "kekcrypt", "keyslots": ["0"], "kekcrypt-version": "1",
           "kekcrypt-provider": "vault-transit", "kekcrypt-key-id": sys.argv[2],
           "kekcrypt-key-version": v, "kekcrypt-wrap-alg": "vault-transit",
           "kekcrypt-wrapped-key": base64.b64encode(ct).decode(),
           "kekcrypt-created": "2026-01-01T00:00:00Z"}, open(sys.argv[3], "w"))
PY
cryptsetup token import --json-file "$T/sdk-token.json" "$IMG2"
assert_exit -m "kekcrypt verify unwraps node-vault's ciphertext to the volume key" 0 \
	kc verify --config "$T/token.conf" "$IMG2"

# --- AppRole, one login per command -------------------------------------------------------
IMG3=$T/approle.img
new_img "$IMG3"
reset "$P"
assert_exit -m "format with AppRole auth and two Vault KEKs" 0 \
	kc format -q --debug --config "$T/approle.conf" "$IMG3" --kek "$URI" --kek "$URI2"
cp "$ERR" "$T/approle-format.err"
assert_eq -m "... one AppRole login for two encrypts" "1 2" "$(counter "$P" login_approle) $(counter "$P" encrypt)"
reset "$P"
assert_exit -m "kek add a third Vault KEK with AppRole" 0 kc kek add --debug --config "$T/approle.conf" "$IMG3" --kek "$URI3"
cp "$ERR" "$T/approle-add.err"
assert_eq -m "... one login for a decrypt and an encrypt" "1 1 1" \
	"$(counter "$P" login_approle) $(counter "$P" decrypt) $(counter "$P" encrypt)"
for id in 0 1 2; do
	assert_exit -m "AppRole: verify --token $id" 0 kc verify --config "$T/approle.conf" "$IMG3" --token "$id"
done
vctl "$P" GET /_fixture/tokens >"$T/issued.json"
ISSUED=$(json_get "$T/issued.json" '"\n".join(d["issued"])')
assert_true -m "the fixture issued AppRole tokens (the leak checks below are not vacuous)" test -n "$ISSUED"
conf "$T/badsecret.conf" "auth = approle" "role-id-file = $T/role-id" \
	"secret-id-file = $T/bad-secret-id" "ca-file = $CA"
reset "$P"
assert_exit -m "AppRole with a wrong secret_id: exit 7 (rejected)" 7 kc verify --config "$T/badsecret.conf" "$IMG3"
assert_stderr_contains -m "... naming the Vault host" "127.0.0.1:$P"
assert_stderr_contains -m "... and the cause" "invalid role or secret ID"
assert_eq -m "... after one login attempt, no transit call" "1 0" "$(counter "$P" login_approle) $(counter "$P" decrypt)"
conf "$T/nocred.conf" "ca-file = $CA"
assert_exit -m "no Vault credentials configured: exit 6" 6 kc verify --config "$T/nocred.conf" "$IMG3"
assert_stderr_contains -m "... saying which settings are missing" "auth = token, approle or cert"
conf "$T/noroleid.conf" "auth = approle" "secret-id-file = $T/secret-id" "ca-file = $CA"
assert_exit -m "auth = approle without role-id-file: exit 6" 6 kc verify --config "$T/noroleid.conf" "$IMG3"

# --- cert auth ------------------------------------------------------------------------------
IMG4=$T/cert.img
new_img "$IMG4"
reset "$P"
assert_exit -m "format with cert auth" 0 kc format -q --config "$T/cert.conf" "$IMG4" --kek "$URI"
assert_exit -m "verify with cert auth" 0 kc verify --config "$T/cert.conf" "$IMG4"
assert_eq -m "... one cert login per command" 2 "$(counter "$P" login_cert)"
conf "$T/cert-badrole.conf" "auth = cert" "client-cert = $T/tls/client.pem" \
	"client-key = $T/tls/client.key" "cert-role = nosuchrole" "ca-file = $CA"
assert_exit -m "cert auth with an unknown role: exit 7" 7 kc verify --config "$T/cert-badrole.conf" "$IMG4"

# --- namespaces -----------------------------------------------------------------------------
vault_start N --namespace team-a --token "$TOKEN" --key k1
NP=$N_PORT
NURI=vault-transit+https://127.0.0.1:$NP/v1/transit/keys/k1
conf "$T/ns.conf" "auth = token" "token-file = $T/token" "namespace = team-a" "ca-file = $CA"
IMG5=$T/ns.img
new_img "$IMG5"
assert_exit -m "format with namespace = team-a (X-Vault-Namespace)" 0 kc format -q --config "$T/ns.conf" "$IMG5" --kek "$NURI"
assert_exit -m "verify in the namespace" 0 kc verify --config "$T/ns.conf" "$IMG5"
assert_exit -m "without the namespace, Vault denies: exit 5" 5 kc verify --config "$T/token.conf" "$IMG5"
IMG6=$T/ns-path.img
new_img "$IMG6"
assert_exit -m "the namespace as a path prefix of the mount works too" 0 kc format -q --config "$T/token.conf" \
	"$IMG6" --kek "vault-transit+https://127.0.0.1:$NP/v1/team-a/transit/keys/k1"
assert_exit -m "... and verifies" 0 kc verify --config "$T/token.conf" "$IMG6"

# --- key rotation ---------------------------------------------------------------------------
vctl "$P" POST /_fixture/rotate '{"key": "k1"}' >/dev/null
assert_exit -m "after rotating k1, the v1 token still unlocks" 0 kc verify --config "$T/token.conf" "$IMG"
IMG7=$T/rotated.img
new_img "$IMG7"
assert_exit -m "format after the rotation" 0 kc format -q --config "$T/token.conf" "$IMG7" --kek "$URI"
tok_export "$IMG7" 0 "$T/tok7.json"
assert_eq -m "... records key version 2" 2 "$(json_get "$T/tok7.json" 'd["kekcrypt-key-version"]')"
assert_true -m "... and a vault:v2: ciphertext" python3 -c 'import base64, json, sys
d = json.load(open(sys.argv[1])); sys.exit(not base64.b64decode(d["kekcrypt-wrapped-key"]).startswith(b"vault:v2:"))' "$T/tok7.json"
assert_exit -m "the v2 token verifies" 0 kc verify --config "$T/token.conf" "$IMG7"

# Rewrap (for `kek rotate`): the v1 ciphertext becomes v2 inside Vault, no decrypt involved.
REWRAP=$KC_BUILDDIR/tests/unit/test-vault-rewrap
if [ -x "$REWRAP" ]; then
	reset "$P"
	assert_exit -m "rewrap the v1 wrapped key under k1's latest version" 0 \
		"$REWRAP" "$T/token.conf" "$URI" "$T/ct0" "$T/ct0-v2"
	assert_stdout_contains -m "... alg vault-transit, version 2" "vault-transit 2"
	assert_true -m "... a vault:v2: ciphertext" grep -q '^vault:v2:' "$T/ct0-v2"
	assert_eq -m "... one rewrap request and no decrypt" "1 0" "$(counter "$P" rewrap) $(counter "$P" decrypt)"
	python3 - "$T/tok0.json" "$T/ct0-v2" "$T/tok0-v2.json" <<'PY'
import base64, json, sys
d = json.load(open(sys.argv[1]))
d["kekcrypt-wrapped-key"] = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
d["kekcrypt-key-version"] = "2"
json.dump(d, open(sys.argv[3], "w"))
PY
	cp --sparse=always "$IMG" "$T/rewrapped.img"
	tok_replace "$T/rewrapped.img" 0 "$T/tok0-v2.json"
	assert_exit -m "the rewrapped token unlocks the volume" 0 kc verify --config "$T/token.conf" "$T/rewrapped.img"
else
	not_ok "tests/unit/test-vault-rewrap is not built (make check builds it)"
fi

# A token whose version field disagrees with its ciphertext is refused before any request.
python3 - "$T/tok0.json" "$T/tok-badver.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["kekcrypt-key-version"] = "7"
json.dump(d, open(sys.argv[2], "w"))
PY
cp --sparse=always "$IMG" "$T/badver.img"
tok_replace "$T/badver.img" 0 "$T/tok-badver.json"
reset "$P"
assert_exit -m "key version 7 with a vault:v1: ciphertext: malformed token (exit 9)" 9 kc verify --config "$T/token.conf" "$T/badver.img"
assert_eq -m "... and no request sent" 0 "$(counter "$P" total)"

# --- faults -----------------------------------------------------------------------------------
# expect_fault DESC CODE FAULT-JSON [NEEDLE]: verify $IMG with the fault armed for decrypt.
expect_fault() {
	reset "$P"
	fault "$P" "$3"
	assert_exit -m "$1: exit $2" "$2" kc verify --config "$T/token.conf" "$IMG"
	if [ -n "${4:-}" ]; then
		assert_stderr_contains -m "... the message says '$4'" "$4"
	fi
	fault "$P" '{"mode": "none"}'
}

reset "$P"
fault "$P" '{"mode": "503", "count": 2, "endpoint": "decrypt"}'
assert_exit -m "503 twice, then success: verify succeeds" 0 kc verify --config "$T/token.conf" "$IMG"
assert_eq -m "... after 3 decrypt attempts" 3 "$(counter "$P" decrypt)"
expect_fault "503 on every attempt" 4 '{"mode": "503", "count": -1, "endpoint": "decrypt"}' "HTTP 503"
assert_eq -m "... retried up to 4 attempts" 4 "$(counter "$P" decrypt)"
expect_fault "429 on every attempt (Retry-After: 1)" 4 '{"mode": "429", "count": -1, "endpoint": "decrypt"}' "429"
expect_fault "500 on every attempt" 4 '{"mode": "500", "count": -1, "endpoint": "decrypt"}' "HTTP 500"
vctl "$P" POST /_fixture/seal '{"sealed": true}' >/dev/null
reset "$P"
assert_exit -m "a sealed Vault: exit 4" 4 kc verify --config "$T/token.conf" "$IMG"
assert_stderr_contains -m "... saying Vault is sealed" "Vault is sealed"
vctl "$P" POST /_fixture/seal '{"sealed": false}' >/dev/null
expect_fault "403 permission denied" 5 '{"mode": "403", "count": -1, "endpoint": "decrypt"}' \
	"permission denied (token expired or lacks policy for transit/k1)"
assert_eq -m "... after exactly one request" 1 "$(counter "$P" decrypt)"
assert_stderr_contains -m "... naming the Vault host and key" "Vault 127.0.0.1:$P, key transit/k1"
conf "$T/narrow.conf" "auth = token" "token-file = $T/narrow-token" "ca-file = $CA"
assert_exit -m "a token without policy for the key: exit 5" 5 kc verify --config "$T/narrow.conf" "$IMG"
expect_fault "404" 3 '{"mode": "404", "count": -1, "endpoint": "decrypt"}' "not found"
expect_fault "a decrypt that fails its integrity check: exit 8 (wrong key)" 8 \
	'{"mode": "authfail", "count": -1, "endpoint": "decrypt"}' "integrity check"
expect_fault "a truncated answer" 22 '{"mode": "truncated", "count": -1, "endpoint": "decrypt"}'
expect_fault "a 2 MiB answer" 22 '{"mode": "huge", "count": -1, "endpoint": "decrypt"}'
expect_fault "an answer that is not JSON" 22 '{"mode": "badjson", "count": -1, "endpoint": "decrypt"}'
expect_fault "an answer without data.plaintext" 22 '{"mode": "nofield", "count": -1, "endpoint": "decrypt"}' \
	"no data.plaintext"
expect_fault "a plaintext that is not base64" 22 '{"mode": "badb64", "count": -1, "endpoint": "decrypt"}' \
	"not base64"
IMG8=$T/wrongmount.img
new_img "$IMG8"
assert_exit -m "format with a mount that does not exist: exit 3" 3 kc format -q --config "$T/token.conf" \
	"$IMG8" --kek "vault-transit+https://127.0.0.1:$P/v1/nosuchmount/keys/k1"
assert_true -m "... leaving the image untouched" is_all_zero "$IMG8"
conf "$T/wrongca.conf" "auth = token" "token-file = $T/token" "ca-file = $T/tls/other-ca.pem"
assert_exit -m "a server certificate from another CA: exit 21 (TLS)" 21 kc verify --config "$T/wrongca.conf" "$IMG"
FREE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
assert_exit -m "connection refused: exit 4" 4 kc format -q --config "$T/token.conf" "$IMG8" \
	--kek "vault-transit+https://127.0.0.1:$FREE_PORT/v1/transit/keys/k1"
assert_stderr_contains -m "... naming the host" "127.0.0.1:$FREE_PORT"
for bad in "vault-transit+https://127.0.0.1:$P/transit/keys/k1" \
	"vault-transit+https://127.0.0.1:$P/v1/transit/k1" \
	"vault-transit+https://127.0.0.1:$P/v1/transit/keys/k1?x=1" \
	"vault-transit+https://user@127.0.0.1:$P/v1/transit/keys/k1" \
	"vault-transit+https://127.0.0.1:99999/v1/transit/keys/k1" \
	"vault-transit+https://127.0.0.1:$P/v1/../keys/k1"; do
	assert_exit -m "malformed URI '$bad': exit 9" 9 kc format -q --config "$T/token.conf" "$IMG8" --kek "$bad"
done

# The deadline: verify gives up at --timeout when Vault does not answer (the request timeout is
# set past it, so it is the overall deadline that ends the wait; its 30 s default is checked in
# tests/unit/test-retry.c, so no test waits it out).
conf "$T/slow.conf" "auth = token" "token-file = $T/token" "ca-file = $CA" "request-timeout-ms = 60000"
reset "$P"
fault "$P" '{"mode": "slow", "count": 1, "endpoint": "decrypt", "delay_ms": 45000}'
t0=$(date +%s%3N)
assert_exit -m "no answer before the deadline (--timeout 3): exit 16" 16 \
	kc verify --config "$T/slow.conf" --timeout 3 "$IMG"
ms=$(($(date +%s%3N) - t0))
assert_true -m "... ended by the 3 s deadline, not the 60 s request timeout or the 45 s answer ($ms ms)" \
	test "$ms" -ge 2500 -a "$ms" -le 15000
fault "$P" '{"mode": "none"}'

# --- no secret in stderr or the debug log ---------------------------------------------------
printf '%s' "$TOKEN" >"$T/s-token"
printf '%s' "$SECRET_ID" >"$T/s-secret"
logs=("$T/format.err" "$T/verify.err" "$T/approle-format.err" "$T/approle-add.err")
assert_true -m "the debug logs are not empty (the checks below are not vacuous)" grep -q '^# ' "${logs[@]}"
assert_no_secret -m "no Vault token in the debug logs" "$T/s-token" "${logs[@]}"
assert_no_secret -m "no secret_id in the debug logs" "$T/s-secret" "${logs[@]}"
assert_no_secret -m "no DEK in the debug logs" "$T/dek" "$T/format.err" "$T/verify.err"
i=0
while IFS= read -r tok; do
	i=$((i + 1))
	printf '%s' "$tok" >"$T/s-issued$i"
	assert_no_secret -m "no AppRole-issued token $i in the debug logs" "$T/s-issued$i" "${logs[@]}"
done <<<"$ISSUED"

# --- valgrind on a verify ---------------------------------------------------------------------
if [ "${KC_VALGRIND:-1}" != 0 ] && command -v valgrind >/dev/null 2>&1; then
	run kc_tool valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		-- verify --config "$T/approle.conf" "$IMG3"
	if [ "$RC" = 0 ]; then
		ok "valgrind: verify with AppRole auth, no errors, no definite leaks"
	else
		not_ok "valgrind: verify with AppRole auth (exit $RC)"
		grep -E 'definitely|Invalid|uninitialised|ERROR SUMMARY' "$ERR" | head -20 | sed 's/^/#   /'
	fi
fi

done_testing
