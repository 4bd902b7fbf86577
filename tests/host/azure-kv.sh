#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The azure-kv provider against the Azure Key Vault protocol fixture
# (tests/fixtures/azure-kv/server.js, HTTPS on 127.0.0.1 with a test CA from tls.sh), and the
# fixture against Microsoft's SDK (sdk-check.mjs): both directions of wrap/unwrap between
# kekcrypt and the official client, managed identity, client-secret and client-certificate
# auth (a client assertion JWT, checked by the fixture and by the SDK's own), key rotation,
# every fault mode's exit code, retries seen in the fixture's counters, TLS failures, the
# deadline, and no token/secret/assertion/key/DEK in any output. Skips (77) only when node is missing.
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node is missing (apt-get install nodejs npm)"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] ||
	skip_all "node $(node --version) is older than 18"
need curl openssl

T=$T_DIR
FIXDIR=$FIX
fixture_sdk azure-kv @azure/keyvault-keys
AZDIR=$SDK_DIR

"$FIXDIR/tls.sh" "$T/tls" >/dev/null
CA=$T/tls/ca.pem
TENANT=test-tenant
CLIENT_ID=kekcrypt-test-client
(umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$T/client-secret")
PLAIN=$T/plain.log
# Client certificates (RSA, as RS256 needs): "app" is registered with the fixture's client,
# "stranger" is not. The *-both.pem files (certificate + key) are for the SDK.
for c in app stranger; do
	(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kekcrypt-$c" \
		-keyout "$T/$c.key" -out "$T/$c.pem" 2>/dev/null &&
		cat "$T/$c.pem" "$T/$c.key" >"$T/$c-both.pem")
done

node "$AZDIR/server.js" --cert "$T/tls/server.pem" --key "$T/tls/server.key" \
	--tenant "$TENANT" --client-id "$CLIENT_ID" --client-secret-file "$T/client-secret" \
	--client-cert "$T/app.pem" --rsa-key kek-rsa --rsa-key kek-rsa2 --oct-key kek-oct --plain-log "$PLAIN" \
	>"$T/fixture.out" 2>"$T/fixture.err" &
FX_PID=$!
trap 'rc=$?; kill "$FX_PID" 2>/dev/null; wait "$FX_PID" 2>/dev/null; (exit $rc); _t_cleanup' EXIT

for _ in $(seq 300); do
	grep -q '^PORT ' "$T/fixture.out" 2>/dev/null && break
	kill -0 "$FX_PID" 2>/dev/null || { cat "$T/fixture.err" >&2; false; }
	sleep 0.1
done
PORT=$(awk '/^PORT /{print $2}' "$T/fixture.out")
[ -n "$PORT" ]
BASE=https://localhost:$PORT
URI_RSA="azure-kv+https://localhost:$PORT/keys/kek-rsa"
diag "fixture on port $PORT"

# --- helpers -------------------------------------------------------------------------------

fx() {	# fx METHOD PATH [JSON]: a control request to the fixture
	curl -sS --cacert "$CA" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
		"$BASE$2"
}
fx_reset() { fx POST /_fixture/reset >/dev/null; }
fx_fault() {	# fx_fault MODE COUNT [TARGET] [EXTRA-JSON-MEMBERS]
	fx POST /_fixture/fault "{\"mode\":\"$1\",\"count\":$2,\"target\":\"${3:-vault}\"${4:+,$4}}" >/dev/null
}
fx_count() {	# fx_count NAME: a counter of the fixture (0 when unset)
	fx GET /_fixture/counters | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
fx_current() {	# fx_current KEY: the key's current version
	fx GET /_fixture/keys | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]]["current"])' "$1"
}

# conf FILE AUTH [EXTRA LINES...]: a private config pointing every endpoint at the fixture.
conf() {
	local f=$1 auth=$2
	shift 2
	{
		echo "[azure-kv]"
		echo "allowed-hosts = localhost"
		echo "ca-file = $CA"
		echo "imds-endpoint = https://127.0.0.1:$PORT/metadata/identity/oauth2/token"
		echo "authority-host = $BASE"
		echo "tenant-id = $TENANT"
		echo "client-id = $CLIENT_ID"
		echo "client-secret-file = $T/client-secret"
		echo "client-certificate-file = $T/app.pem"
		echo "client-certificate-key-file = $T/app.key"
		echo "auth = $auth"
		echo "max-attempts = 3"
		echo "connect-timeout-ms = 2000"
		echo "request-timeout-ms = 5000"
		local l
		for l in "$@"; do
			echo "$l"
		done
	} >"$f"
	chmod 600 "$f"
}

# token_field IMG ID FIELD: a field of kekcrypt token ID
token_field() {
	cryptsetup token export --token-id "$2" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$3"
}

# last_plain OP: the hex key of the last "OP" line of the fixture's plaintext log
last_plain() {
	awk -v op="$1" '$1 == op {k = $4} END {print k}' "$PLAIN"
}

MI=$T/mi.conf
CS=$T/cs.conf
CC=$T/cc.conf
conf "$MI" managed-identity
conf "$CS" client-secret
conf "$CC" client-certificate

# --- managed identity ---------------------------------------------------------------------

IMG=$T/mi.img
new_img "$IMG"
fx_reset
# Expected requests: GET /metadata/identity/oauth2/token, GET /keys/kek-rsa (kty),
# POST /keys/kek-rsa/wrapkey.
assert_exit -m "format with managed identity (RSA key, no version in the URI)" 0 \
	kc format -q --config "$MI" "$IMG" --kek "$URI_RSA"
V1=$(fx_current kek-rsa)
assert_eq -m "token records the key's current version" "$V1" "$(token_field "$IMG" 0 kekcrypt-key-version)"
assert_eq -m "token records RSA-OAEP-256" RSA-OAEP-256 "$(token_field "$IMG" 0 kekcrypt-wrap-alg)"
assert_eq -m "one managed identity token request" 1 "$(fx_count token_imds)"
assert_eq -m "no unauthenticated request (the token is sent on the first request)" 0 "$(fx_count challenge)"
assert_exit -m "verify with managed identity" 0 kc verify --config "$MI" "$IMG"
assert_eq -m "verify unwrapped through the recorded version" "unwrap kek-rsa $V1" \
	"$(awk '$1 == "unwrap" {l = $1 " " $2 " " $3} END {print l}' "$PLAIN")"
assert_eq -m "the vault unwrapped the DEK it wrapped" "$(last_plain wrap)" "$(last_plain unwrap)"

# --- client secret ------------------------------------------------------------------------

IMG_CS=$T/cs.img
new_img "$IMG_CS"
fx_reset
# Expected: POST /test-tenant/oauth2/v2.0/token, GET /keys/kek-rsa, POST .../wrapkey.
assert_exit -m "format with client-secret auth" 0 kc format -q --config "$CS" "$IMG_CS" --kek "$URI_RSA"
assert_exit -m "verify with client-secret auth" 0 kc verify --config "$CS" "$IMG_CS"
assert_eq -m "client-credentials endpoint used (once per command)" 2 "$(fx_count token_client)"
assert_eq -m "managed identity endpoint not used" 0 "$(fx_count token_imds)"
BAD=$T/bad-secret.conf
conf "$BAD" client-secret "client-secret-file = $T/wrong-secret"
(umask 077 && echo wrong >"$T/wrong-secret")
# Expected: POST /test-tenant/oauth2/v2.0/token -> 401 invalid_client.
assert_exit -m "wrong client secret -> credential rejected (7)" 7 kc verify --config "$BAD" "$IMG_CS"
assert_stderr_contains -m "detail names the token endpoint's error" "invalid_client"
chmod 644 "$T/client-secret"
assert_exit -m "client secret file readable by others -> 14" 14 kc verify --config "$CS" "$IMG_CS"
chmod 600 "$T/client-secret"

# --- client certificate (client assertion) ------------------------------------------------

IMG_CC=$T/cc.img
new_img "$IMG_CC"
fx_reset
# Expected: POST /test-tenant/oauth2/v2.0/token with client_assertion (the fixture checks
# its RS256 signature against app.pem, x5t, aud, iss, sub, nbf, exp), GET /keys/kek-rsa,
# POST .../wrapkey.
assert_exit -m "format with client-certificate auth" 0 kc format -q --config "$CC" "$IMG_CC" --kek "$URI_RSA"
assert_exit -m "verify with client-certificate auth" 0 kc verify --config "$CC" "$IMG_CC"
assert_eq -m "two client assertions accepted (one per command)" "2 2 0" \
	"$(fx_count token_client) $(fx_count assertion_ok) $(fx_count assertion_rejected)"
assert_eq -m "managed identity endpoint not used" 0 "$(fx_count token_imds)"
python3 - "$(awk '$1 == "assertion" {a = $4} END {print a}' "$PLAIN")" "$T/app.pem" \
	"$T/assertion-claims.txt" <<'PY'
import base64, hashlib, json, ssl, sys
part = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
h, c = (part(p) for p in sys.argv[1].split(".")[:2])
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[2]).read())
x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
open(sys.argv[3], "w").write(" ".join([h["alg"], h["typ"], str(h["x5t"] == x5t),
	c["aud"].rsplit("/", 4)[-4], str(c["iss"] == c["sub"]), str(c["exp"] - c["nbf"]),
	str(len(c["jti"]))]))
PY
assert_eq -m "assertion: RS256, JWT, x5t = SHA-1 thumbprint, aud = tenant token endpoint, iss = sub, 10 min, uuid jti" \
	"RS256 JWT True $TENANT True 600 36" "$(cat "$T/assertion-claims.txt")"
STRANGER=$T/stranger.conf
conf "$STRANGER" client-certificate "client-certificate-file = $T/stranger.pem" \
	"client-certificate-key-file = $T/stranger.key"
fx_reset
# Expected: POST /test-tenant/oauth2/v2.0/token -> 401 invalid_client AADSTS700027.
assert_exit -m "certificate not registered with the client -> credential rejected (7)" 7 \
	kc verify --config "$STRANGER" "$IMG_CC"
assert_stderr_contains -m "detail carries Entra ID's error" "invalid_client: AADSTS700027"
assert_eq -m "the fixture rejected the assertion" 1 "$(fx_count assertion_rejected)"
MISMATCH=$T/mismatch.conf
conf "$MISMATCH" client-certificate "client-certificate-key-file = $T/stranger.key"
fx_reset
assert_exit -m "key not the certificate's -> 9, nothing sent" 9 kc verify --config "$MISMATCH" "$IMG_CC"
assert_stderr_contains -m "mismatch detail" "is not the key of the client certificate"
EC=$T/ec.conf
conf "$EC" client-certificate "client-certificate-file = $T/tls/client.pem" \
	"client-certificate-key-file = $T/tls/client.key"
assert_exit -m "EC key (RS256 needs RSA) -> 9" 9 kc verify --config "$EC" "$IMG_CC"
(umask 077 && openssl pkey -in "$T/app.key" -aes256 -passout pass:x -out "$T/app-enc.key")
ENC=$T/enc.conf
conf "$ENC" client-certificate "client-certificate-key-file = $T/app-enc.key"
assert_exit -m "encrypted key: refused without prompting -> 9" 9 kc verify --config "$ENC" "$IMG_CC" </dev/null
NOKEY=$T/nokey.conf
conf "$NOKEY" client-certificate
sed -i '/^client-certificate-key-file/d' "$NOKEY"
assert_exit -m "no client-certificate-key-file -> credential required (6)" 6 kc verify --config "$NOKEY" "$IMG_CC"
chmod 644 "$T/app.key"
assert_exit -m "client certificate key file readable by others -> 14" 14 kc verify --config "$CC" "$IMG_CC"
assert_stderr_contains -m "mode detail names the key file" "client certificate key file '$T/app.key' is accessible"
chmod 600 "$T/app.key"
assert_eq -m "no token request for any of the local failures" 0 "$(fx_count token_client)"

# --- Managed HSM style oct key: A256KW by kty, A256KWP by configuration --------------------

IMG_OCT=$T/oct.img
new_img "$IMG_OCT"
assert_exit -m "format with an oct-HSM key" 0 kc format -q --config "$MI" "$IMG_OCT" \
	--kek "azure-kv+https://localhost:$PORT/keys/kek-oct"
assert_eq -m "oct-HSM key wraps with A256KW" A256KW "$(token_field "$IMG_OCT" 0 kekcrypt-wrap-alg)"
assert_exit -m "verify oct-HSM (A256KW)" 0 kc verify --config "$MI" "$IMG_OCT"
KWP=$T/kwp.conf
conf "$KWP" managed-identity "wrap-alg = A256KWP"
new_img "$IMG_OCT"
assert_exit -m "format with wrap-alg = A256KWP" 0 kc format -q --config "$KWP" "$IMG_OCT" \
	--kek "azure-kv+https://localhost:$PORT/keys/kek-oct"
assert_eq -m "token records A256KWP" A256KWP "$(token_field "$IMG_OCT" 0 kekcrypt-wrap-alg)"
assert_exit -m "verify A256KWP" 0 kc verify --config "$MI" "$IMG_OCT"

# --- key rotation ---------------------------------------------------------------------------

TOKEN=$(curl -sS --cacert "$CA" -H 'Metadata: true' \
	"https://127.0.0.1:$PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sS --cacert "$CA" -X POST -H "Authorization: Bearer $TOKEN" \
	"$BASE/keys/kek-rsa/rotate?api-version=7.4" >/dev/null
V2=$(fx_current kek-rsa)
assert_true -m "the fixture rotated kek-rsa" [ -n "$V2" -a "$V2" != "$V1" ]
assert_exit -m "verify after rotation (recorded version)" 0 kc verify --config "$MI" "$IMG"
assert_eq -m "unwrap after rotation used the old version" "unwrap kek-rsa $V1" \
	"$(awk '$1 == "unwrap" {l = $1 " " $2 " " $3} END {print l}' "$PLAIN")"
IMG2=$T/rotated.img
new_img "$IMG2"
assert_exit -m "format after rotation" 0 kc format -q --config "$MI" "$IMG2" --kek "$URI_RSA"
assert_eq -m "new format records the new version" "$V2" "$(token_field "$IMG2" 0 kekcrypt-key-version)"
assert_exit -m "verify the new volume" 0 kc verify --config "$MI" "$IMG2"
IMG_PIN=$T/pinned.img
new_img "$IMG_PIN"
assert_exit -m "format with a version pinned in the URI" 0 kc format -q --config "$MI" "$IMG_PIN" \
	--kek "$URI_RSA/$V1"
assert_eq -m "pinned URI records its version" "$V1" "$(token_field "$IMG_PIN" 0 kekcrypt-key-version)"
assert_exit -m "verify the pinned volume" 0 kc verify --config "$MI" "$IMG_PIN"

# kek rotate without --to: rewrap under the vault's current version of the same key.
IMG_ROT=$T/kek-rotate.img
cp --sparse=always "$IMG" "$IMG_ROT"
assert_eq -m "before kek rotate: the token records V1" "$V1" \
	"$(token_field "$IMG_ROT" 0 kekcrypt-key-version)"
assert_exit -m "kek rotate --json (same key, latest version)" 0 \
	kc kek rotate --config "$MI" "$IMG_ROT" --json
assert_exit -m "kek list --json after the rotation" 0 kc kek list "$IMG_ROT" --json
assert_eq -m "one token, under kek-rsa at V2" "1 $URI_RSA $V2" "$(json_get "$OUT" \
	'" ".join([str(len(d["tokens"]))] + [d["tokens"][0][k] for k in ("kek", "key_version")])')"
assert_eq -m "the last wrap used V2" "wrap kek-rsa $V2" \
	"$(awk '$1 == "wrap" {l = $1 " " $2 " " $3} END {print l}' "$PLAIN")"
assert_exit -m "the rotated volume verifies" 0 kc verify --config "$MI" "$IMG_ROT"
assert_exit -m "kek rotate of the pinned volume" 0 kc kek rotate --config "$MI" "$IMG_PIN"
assert_exit -m "dump --json" 0 kc dump "$IMG_PIN" --json
assert_eq -m "... moves it off the pinned V1 to V2" "$V2" \
	"$(json_get "$OUT" '[t["key_version"] for t in d["tokens"]][0]')"

# --- one access token per command: kek add (unwrap via kek-rsa, wrap via kek-rsa2) --------

IMG_ADD=$T/add.img
cp --sparse=always "$IMG" "$IMG_ADD"
fx_reset
# Expected: 1 token request, POST kek-rsa/V1/unwrapkey, GET kek-rsa2, POST kek-rsa2/wrapkey.
assert_exit -m "kek add: a second Azure key" 0 kc kek add --config "$MI" "$IMG_ADD" \
	--kek "azure-kv+https://localhost:$PORT/keys/kek-rsa2"
assert_eq -m "kek add: one token request for unwrap and wrap" 1 "$(fx_count token_imds)"
assert_eq -m "kek add: one unwrap, one wrap" "1 1" "$(fx_count unwrap) $(fx_count wrap)"
assert_exit -m "verify through the added token" 0 kc verify --config "$MI" "$IMG_ADD" --token 1

# --- faults: each case states the request it expects -----------------------------------------

# fault_case DESC EXIT COUNTER EXPECTED-ATTEMPTS MODE COUNT [TARGET] [EXTRA]
fault_case() {
	local desc=$1 code=$2 counter=$3 attempts=$4
	shift 4
	fx_reset
	fx_fault "$@"
	assert_exit -m "$desc -> exit $code" "$code" kc verify --config "$MI" "$IMG"
	if [ -n "$counter" ]; then
		assert_eq -m "$desc: $attempts $counter request(s)" "$attempts" "$(fx_count "$counter")"
	fi
}

# POST unwrapkey -> 503, 503, 200: retried, succeeds on the third attempt.
fault_case "unwrap 503 twice then 200" 0 unwrap 3 503 2 unwrap
# POST unwrapkey -> 500 every time: max-attempts (3) then unreachable.
fault_case "unwrap 500 always" 4 unwrap 3 500 99 unwrap
# POST unwrapkey -> 429 (Retry-After: 0) every time.
fault_case "unwrap 429 always" 4 unwrap 3 429 99 unwrap '"retry_after":0'
# POST unwrapkey -> 429 with Retry-After: 1 once, then 200.
fault_case "unwrap 429 once (Retry-After 1)" 0 unwrap 2 429 1 unwrap '"retry_after":1'
# POST unwrapkey -> connection closed without a response, every time.
fault_case "unwrap connection dropped" 4 unwrap 3 drop 99 unwrap
# POST unwrapkey -> 403 Forbidden: no retry.
fault_case "unwrap 403" 5 unwrap 1 403 99 unwrap
assert_stderr_contains -m "403 detail names the permission" "lacks unwrapKey permission"
assert_stderr_contains -m "403 detail names host and key" "localhost:$PORT key 'kek-rsa'"
# POST unwrapkey -> 401 with a Bearer challenge although the token was valid.
fault_case "unwrap 401" 7 unwrap 1 401 99 unwrap
assert_stderr_contains -m "401 detail shows the challenge" 'authorization="https://login.microsoftonline.com/'
# POST unwrapkey -> 404 KeyNotFound.
fault_case "unwrap 404" 3 unwrap 1 404 99 unwrap
# POST unwrapkey -> 400 BadParameter (the vault cannot decrypt the blob).
fault_case "unwrap 400 BadParameter" 8 unwrap 1 badblob 99 unwrap
# POST unwrapkey -> 200 with half the body, then the connection closes.
fault_case "unwrap truncated response" 22 unwrap 1 truncated 99 unwrap
# POST unwrapkey -> 200 with a 2 MiB body (cap 1 MiB).
fault_case "unwrap huge response" 22 unwrap 1 huge 99 unwrap
# POST unwrapkey -> 200 with malformed JSON.
fault_case "unwrap malformed JSON" 22 unwrap 1 badjson 99 unwrap
# POST unwrapkey -> 200 with a value that is not base64url.
fault_case "unwrap value not base64url" 22 unwrap 1 badvalue 99 unwrap
# GET managed identity token -> 503 every time.
fault_case "token endpoint 503" 4 token_imds 3 503 99 token
# GET managed identity token -> 404 (no identity assigned).
fault_case "token endpoint 404" 6 token_imds 1 404 99 token
# Format: GET /keys/kek-rsa -> 403: nothing written.
fx_reset
fx_fault 403 99 get
NEW=$T/new.img
new_img "$NEW"
assert_exit -m "format with GET key 403 -> 5" 5 kc format -q --config "$MI" "$NEW" --kek "$URI_RSA"
assert_true -m "failed format wrote nothing" is_all_zero "$NEW"

# POST unwrapkey -> slower than the per-attempt timeout (500 ms), every time: the attempts
# time out and the command ends long before the fixture would answer.
SLOW=$T/slow.conf
conf "$SLOW" managed-identity "request-timeout-ms = 500" "max-attempts = 2"
fx_reset
fx_fault slow 99 unwrap '"delay_ms":20000'
start=$(date +%s)
assert_exit -m "slow unwrap, 500 ms per attempt -> unreachable (4)" 4 kc verify --config "$SLOW" "$IMG"
assert_stderr_contains -m "slow: detail says it timed out" "imed out"
assert_true -m "slow: gave up well before the 20 s answer" [ $(($(date +%s) - start)) -lt 15 ]
assert_eq -m "slow: 2 attempts" 2 "$(fx_count unwrap)"

# POST unwrapkey -> answer after 20 s, per-attempt timeout 60 s: verify's overall deadline
# (--timeout 3; tests/host/vault-transit.sh waits out the default 30 s) ends it.
LONG=$T/long.conf
conf "$LONG" managed-identity "request-timeout-ms = 60000" "max-attempts = 1"
fx_reset
fx_fault slow 99 unwrap '"delay_ms":20000'
start=$(date +%s%N)
assert_exit -m "unwrap slower than verify's deadline (--timeout 3) -> 16" 16 \
	kc verify --config "$LONG" "$IMG" --timeout 3
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_true -m "deadline: ended at the deadline ($elapsed_ms ms), before the fixture answered" \
	[ "$elapsed_ms" -ge 2900 -a "$elapsed_ms" -lt 15000 ]

# Connection refused: a port nobody listens on (bound, then closed).
CLOSED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
new_img "$NEW"
fx_reset
assert_exit -m "vault port closed -> unreachable (4)" 4 kc format -q --config "$MI" "$NEW" \
	--kek "azure-kv+https://localhost:$CLOSED/keys/kek-rsa"
assert_stderr_contains -m "connection refused detail names the host" "localhost:$CLOSED unreachable"

# --- TLS ------------------------------------------------------------------------------------

OTHER=$T/other-ca.conf
conf "$OTHER" managed-identity "ca-file = $T/tls/other-ca.pem"
assert_exit -m "wrong CA -> TLS failure (21)" 21 kc verify --config "$OTHER" "$IMG"
assert_stderr_contains -m "TLS detail names the host" "TLS failure talking to 127.0.0.1:$PORT"
NOCA=$T/no-ca.conf
conf "$NOCA" managed-identity
sed -i '/^ca-file/d' "$NOCA"
assert_exit -m "no ca-file: system CAs do not trust the test CA -> 21" 21 kc verify --config "$NOCA" "$IMG"

# --- hosts and URIs ---------------------------------------------------------------------------

NOHOST=$T/no-host.conf
conf "$NOHOST" managed-identity
sed -i '/^allowed-hosts/d' "$NOHOST"
fx_reset
new_img "$NEW"
assert_exit -m "a host allowed-hosts does not name -> 14 (local policy)" 14 \
	kc format -q --config "$NOHOST" "$NEW" --kek "$URI_RSA"
assert_stderr_contains -m "... naming the config line that would allow it" \
	"add the line 'allowed-hosts = localhost:$PORT' to [azure-kv]"
assert_eq -m "no token was requested for it" 0 "$(fx_count token_imds)"
for bad in "azure-kv+https://localhost:$PORT/secrets/x" "azure-kv+https://localhost:$PORT/keys/" \
	"azure-kv+https://localhost:$PORT/keys/a_b" "azure-kv+https://localhost:$PORT/keys/k/v/x" \
	"azure-kv+https://localhost:$PORT/keys/k?x=1"; do
	assert_exit -m "malformed URI '${bad#*$PORT}' -> 9" 9 kc format -q --config "$MI" "$NEW" --kek "$bad"
done
UNKNOWN=$T/unknown-auth.conf
conf "$UNKNOWN" kerberos
new_img "$NEW"
assert_exit -m "auth = kerberos (unknown) -> 9" 9 kc format -q --config "$UNKNOWN" "$NEW" --kek "$URI_RSA"

# --- no token, client secret, assertion, key or DEK in any output ---------------------------

fx_reset
new_img "$NEW"
run kc format -q --debug --config "$CS" "$NEW" --kek "$URI_RSA"
cp "$ERR" "$T/leak-format.err"
cp "$OUT" "$T/leak-format.out"
run kc verify --debug --config "$CS" "$NEW"
cp "$ERR" "$T/leak-verify.err"
cp "$OUT" "$T/leak-verify.out"
run kc verify --debug --config "$MI" "$NEW"
cp "$ERR" "$T/leak-mi.err"
run kc verify --debug --config "$CC" "$NEW"
cp "$ERR" "$T/leak-cc.err"
cp "$OUT" "$T/leak-cc.out"
assert_eq -m "client-certificate verify (debug) succeeded" 0 "$RC"
assert_contains -m "debug log names the certificate by thumbprint only" "$(cat "$T/leak-cc.err")" \
	"signed with certificate x5t"
assert_contains -m "debug log names the requests" "$(cat "$T/leak-verify.err")" "http: POST $BASE/keys/kek-rsa/$V2/unwrapkey -> 200 (attempt 1"
python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]))' "$(last_plain unwrap)" "$T/dek.bin"
LEAKS=("$T"/leak-*)
assert_no_secret -m "no DEK in output or debug log" "$T/dek.bin" "${LEAKS[@]}"
tr -d '\n' <"$T/client-secret" >"$T/client-secret.raw"
assert_no_secret -m "no client secret in output or debug log" "$T/client-secret.raw" "${LEAKS[@]}"
n=0
while read -r tok; do
	printf '%s' "$tok" >"$T/token.$n"
	n=$((n + 1))
done < <(awk '$1 == "token" {print $4}' "$PLAIN" | tail -n 3)
assert_eq -m "three access tokens issued (one per command)" 3 "$n"
for i in $(seq 0 $((n - 1))); do
	assert_no_secret -m "access token $i not in output or debug log" "$T/token.$i" "${LEAKS[@]}"
done
awk '$1 == "assertion" {a = $4} END {printf "%s", a}' "$PLAIN" >"$T/assertion.jwt"
cut -d. -f3 <"$T/assertion.jwt" | tr -d '\n' >"$T/assertion.sig"
assert_true -m "the fixture saw the debug run's client assertion" [ -s "$T/assertion.sig" ]
assert_no_secret -m "no client assertion in output or debug log" "$T/assertion.jwt" "${LEAKS[@]}"
assert_no_secret -m "no client assertion signature in output or debug log" "$T/assertion.sig" "${LEAKS[@]}"
openssl pkey -in "$T/app.key" -outform DER -out "$T/app-key.der"
grep -v '^-----' "$T/app.key" | tr -d '\n' >"$T/app-key.b64"
assert_no_secret -m "no private key (DER) in output or debug log" "$T/app-key.der" "${LEAKS[@]}"
assert_no_secret -m "no private key (PEM text) in output or debug log" "$T/app-key.b64" "${LEAKS[@]}"

# --- the official SDK against the fixture, and against kekcrypt ---------------------------

SDK=(env NODE_EXTRA_CA_CERTS="$CA" node "$AZDIR/sdk-check.mjs")
# kekcrypt -> SDK: the SDK unwraps the token kekcrypt wrote; the result must be the volume
# key (cryptsetup accepts it as such).
python3 -c 'import base64,sys; print(base64.b64encode(base64.b64decode(sys.argv[1])).decode())' \
	"$(token_field "$NEW" 0 kekcrypt-wrapped-key)" >"$T/wrapped.b64"
assert_exit -m "SDK unwraps kekcrypt's wrapped DEK" 0 "${SDK[@]}" unwrap "$BASE" "$TENANT" "$CLIENT_ID" \
	"$T/client-secret" "$BASE/keys/kek-rsa/$(token_field "$NEW" 0 kekcrypt-key-version)" \
	RSA-OAEP-256 "$(cat "$T/wrapped.b64")" "$T/sdk-dek.bin"
(umask 077 && echo probe >"$T/probe-pass")
cp --sparse=always "$NEW" "$T/probe.img"
assert_exit -m "the SDK's DEK is the volume key (cryptsetup luksAddKey --volume-key-file)" 0 \
	cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--volume-key-file "$T/sdk-dek.bin" "$T/probe.img" "$T/probe-pass"
# SDK -> kekcrypt: the SDK wraps the DEK of a volume made by cryptsetup; a kekcrypt token
# holding the SDK's wrapped key must unlock it.
SDKIMG=$T/sdk.img
# The previous case's token 0, if there is one (cryptsetup formatted the image without any).
sdk_token_clear() {
	if cryptsetup token export --token-id 0 "$SDKIMG" >/dev/null 2>&1; then
		cryptsetup token remove --token-id 0 "$SDKIMG"
	fi
}
new_img "$SDKIMG"
head -c 64 /dev/urandom >"$T/sdk-vk.bin"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--volume-key-file "$T/sdk-vk.bin" --key-size 512 "$SDKIMG" "$T/probe-pass"
for alg in RSA-OAEP-256:kek-rsa RSA-OAEP:kek-rsa2 A256KW:kek-oct; do
	key=${alg#*:}
	alg=${alg%%:*}
	assert_exit -m "SDK wraps a DEK with $alg ($key)" 0 "${SDK[@]}" wrap "$BASE" "$TENANT" "$CLIENT_ID" \
		"$T/client-secret" "$BASE/keys/$key" "$alg" "$T/sdk-vk.bin" "$T/sdk-wrap.json"
	python3 - "$T/sdk-wrap.json" "$alg" "azure-kv+https://localhost:$PORT/keys/$key" "$T/sdk-token.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
tok = {"type": "kekcrypt", "keyslots": ["0"], "kekcrypt-version": "1",
       "kekcrypt-provider": "azure-kv", "kekcrypt-key-id": sys.argv[3],
       "kekcrypt-key-version": w["kid"].rsplit("/", 1)[1], "kekcrypt-wrap-alg": sys.argv[2],
       "kekcrypt-wrapped-key": w["value"], "kekcrypt-created": "2024-01-01T00:00:00Z"}
json.dump(tok, open(sys.argv[4], "w"))
PY
	sdk_token_clear
	cryptsetup token import --json-file "$T/sdk-token.json" --token-id 0 "$SDKIMG"
	assert_exit -m "kekcrypt unwraps the SDK's $alg wrapped DEK and it matches the volume" 0 \
		kc verify --config "$MI" "$SDKIMG"
done

# The SDK's ClientCertificateCredential (PS256, x5t#S256, its own assertion code) gets its
# token from the fixture with the registered certificate, and not with another one: the
# fixture's assertion check speaks the protocol Microsoft's client speaks.
assert_exit -m "SDK ClientCertificateCredential wraps a DEK (registered certificate)" 0 \
	"${SDK[@]}" wrap "$BASE" "$TENANT" "$CLIENT_ID" "cert:$T/app-both.pem" "$BASE/keys/kek-rsa" \
	RSA-OAEP-256 "$T/sdk-vk.bin" "$T/sdk-wrap.json"
python3 - "$T/sdk-wrap.json" "azure-kv+https://localhost:$PORT/keys/kek-rsa" "$T/sdk-token.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
tok = {"type": "kekcrypt", "keyslots": ["0"], "kekcrypt-version": "1",
       "kekcrypt-provider": "azure-kv", "kekcrypt-key-id": sys.argv[2],
       "kekcrypt-key-version": w["kid"].rsplit("/", 1)[1], "kekcrypt-wrap-alg": "RSA-OAEP-256",
       "kekcrypt-wrapped-key": w["value"], "kekcrypt-created": "2024-01-01T00:00:00Z"}
json.dump(tok, open(sys.argv[3], "w"))
PY
sdk_token_clear
cryptsetup token import --json-file "$T/sdk-token.json" --token-id 0 "$SDKIMG"
assert_exit -m "kekcrypt (client-certificate auth) unwraps the SDK's wrapped DEK" 0 \
	kc verify --config "$CC" "$SDKIMG"
assert_exit -m "SDK ClientCertificateCredential with an unregistered certificate fails" 1 \
	"${SDK[@]}" wrap "$BASE" "$TENANT" "$CLIENT_ID" "cert:$T/stranger-both.pem" \
	"$BASE/keys/kek-rsa" RSA-OAEP-256 "$T/sdk-vk.bin" "$T/sdk-wrap.json"
assert_stderr_contains -m "the SDK reports Entra ID's AADSTS700027" "AADSTS700027"

# --- key attributes: the SDK's KeyClient reads and updates them; kekcrypt's KMS safety checks
# see what it set (tests/host/kms-safety.sh has the rest of those checks) ------------------
# props_of FILE: "enabled expiresOn recoveryLevel" of a props answer.
props_of() {
	python3 -c 'import json,sys; p = json.load(open(sys.argv[1])); print(p["enabled"], p["expiresOn"], p["recoveryLevel"])' "$1"
}
assert_exit -m "SDK KeyClient.getKey reads kek-rsa2's properties" 0 "${SDK[@]}" props "$BASE" \
	"$TENANT" "$CLIENT_ID" "$T/client-secret" "$BASE/keys/kek-rsa2" - - "$T/props0.json"
assert_eq -m "... enabled, no expiry, the vault's recovery level (no purge protection)" \
	"True None Recoverable+Purgeable" "$(props_of "$T/props0.json")"
EXP=$(($(date +%s) + 86400))
assert_exit -m "SDK KeyClient.updateKeyProperties disables kek-rsa2 and sets an expiry" 0 \
	"${SDK[@]}" props "$BASE" "$TENANT" "$CLIENT_ID" "$T/client-secret" "$BASE/keys/kek-rsa2" - \
	"{\"enabled\":false,\"expiresOn\":$EXP}" "$T/props1.json"
assert_eq -m "... and reads them back" "False $EXP Recoverable+Purgeable" "$(props_of "$T/props1.json")"
new_img "$T/attrs.img"
run kc format -q --json --config "$CS" "$T/attrs.img" --kek "azure-kv+https://localhost:$PORT/keys/kek-rsa2"
assert_eq -m "kekcrypt format under it: exit 0" 0 "$RC"
assert_eq -m "... warns that it is disabled, deletable and expires" "disabled deletable expires" \
	"$(json_get "$OUT" '" ".join(w["kind"] for w in d["warnings"])')"
assert_exit -m "... and it does not unwrap while disabled: exit 5" 5 kc verify --config "$CS" "$T/attrs.img"
assert_exit -m "SDK KeyClient.updateKeyProperties enables it again" 0 "${SDK[@]}" props "$BASE" \
	"$TENANT" "$CLIENT_ID" "$T/client-secret" "$BASE/keys/kek-rsa2" - '{"enabled":true}' \
	"$T/props2.json"
assert_exit -m "... and then it unwraps" 0 kc verify --config "$CS" "$T/attrs.img"

# --- valgrind: a whole verify (token, unwrap, TLS) without leaks or errors -----------------
# KC_VALGRIND=0 (the ASan build of scripts/test-sanitizers.sh, which valgrind cannot run)
# turns it off, as in the other host tests.

if [ "${KC_VALGRIND:-1}" = 0 ]; then
	diag "KC_VALGRIND=0: the valgrind runs are off"
elif command -v valgrind >/dev/null 2>&1; then
	assert_exit -m "valgrind verify: no leaks, no errors" 0 kc_tool valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite --error-exitcode=1 -- verify --config "$MI" "$IMG"
	assert_exit -m "valgrind verify with client-certificate auth: no leaks, no errors" 0 \
		kc_tool valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
		--error-exitcode=1 -- verify --config "$CC" "$IMG_CC"
else
	not_ok "valgrind is missing (apt-get install valgrind)"
fi

done_testing
