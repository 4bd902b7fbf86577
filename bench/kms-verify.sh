#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: whole-process time of `kekcrypt verify` against the KMS protocol fixtures (Azure Key
# Vault with managed identity and an RSA key; Vault Transit with AppRole), with a file KEK as
# the no-network baseline, and `clevis luks pass` against a local Tang server (the nearest
# thing Clevis has to an unwrap-only health check), measured in one hyperfine run. Prints the
# medians, the ratio to clevis, and the HTTP requests each unlock made, from the fixtures'
# counters and Tang's log. Not a test: nothing here asserts a time.
#
# Caveats, printed with the results too:
#  - `clevis luks unlock` needs device-mapper; `clevis luks pass` only decrypts the JWE in the
#    LUKS2 token (one Tang recovery request) and prints the passphrase: it does not check it
#    against a keyslot. `kekcrypt verify` unwraps the DEK and checks it against the LUKS2
#    digest; neither maps anything.
#  - Tang runs inetd style (one tangd process per connection, as Debian's tangd.socket with
#    Accept=yes does); the fixtures are Node.js HTTPS servers on 127.0.0.1, so the numbers
#    show client cost + loopback round trips, not a real cloud KMS's latency.
#
# Usage: bench/kms-verify.sh [RUNS]   (from a built source tree, as root; default 20 runs)
# Needs: hyperfine, cryptsetup, node (>= 18, `npm ci` not required: server.js uses built-ins
# only), openssl, python3, tang, clevis, clevis-luks, and systemd-socket-activate or socat.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
warmup=3
# The real binary, not libtool's wrapper script (which costs a shell per run).
kekcrypt=${KEKCRYPT:-$PWD/.libs/kekcrypt}
export LD_LIBRARY_PATH=$PWD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tangd=${TANGD:-/usr/libexec/tangd}
tangd_keygen=${TANGD_KEYGEN:-/usr/libexec/tangd-keygen}
fix=$PWD/tests/fixtures

die() {
	echo "kms-verify.sh: $*" >&2
	exit 1
}
for c in hyperfine cryptsetup node openssl python3 clevis; do
	command -v "$c" >/dev/null 2>&1 || die "$c is missing"
done
[ -x "$kekcrypt" ] || die "$kekcrypt is missing: build first (make)"
{ [ -x "$tangd" ] && [ -x "$tangd_keygen" ]; } ||
	die "tangd is missing (apt-get install tang clevis clevis-luks)"
command -v clevis-luks-pass >/dev/null 2>&1 || die "clevis-luks is missing (apt-get install clevis-luks)"

work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local p
	set +e	# a killed server's wait status (143) must not end the cleanup early
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$work"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port NAME FILE PID: the port a fixture printed as "PORT n" on its first line.
wait_port() {
	local port=""
	for _ in $(seq 300); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$2" 2>/dev/null)
		[ -n "$port" ] && break
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$port" ] || { cat "$work/$1.err" >&2; die "the $1 fixture did not start"; }
	echo "$port"
}

# ctl PORT METHOD PATH: a control request to a fixture (HTTPS, the test CA); prints the answer.
ctl() {
	python3 - "$work/tls/ca.pem" "$@" <<'PY'
import ssl, sys, urllib.request
ca, port, method, path = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                             data=b"{}" if method == "POST" else None,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())
PY
}

private() { (umask 077 && printf '%s\n' "$2" >"$1"); }

"$fix/tls.sh" "$work/tls" >/dev/null
ca=$work/tls/ca.pem

# --- Azure Key Vault fixture: managed identity, RSA key ------------------------------------
private "$work/az-secret" "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')"
node "$fix/azure-kv/server.js" --cert "$work/tls/server.pem" --key "$work/tls/server.key" \
	--client-secret-file "$work/az-secret" --rsa-key kek-rsa \
	>"$work/az.out" 2>"$work/az.err" &
pids+=($!)
az_port=$(wait_port az "$work/az.out" "$!")
{
	echo "[azure-kv]"
	echo "auth = managed-identity"
	echo "allowed-hosts = localhost"
	echo "ca-file = $ca"
	echo "imds-endpoint = https://127.0.0.1:$az_port/metadata/identity/oauth2/token"
} >"$work/az.conf"
chmod 600 "$work/az.conf"

# --- Vault Transit fixture: AppRole ---------------------------------------------------------
private "$work/role-id" "$(python3 -c 'import uuid; print(uuid.uuid4())')"
private "$work/secret-id" "$(python3 -c 'import uuid; print(uuid.uuid4())')"
node "$fix/vault/server.js" --tls-dir "$work/tls" \
	--approle "$(cat "$work/role-id"):$(cat "$work/secret-id")" --key k1 \
	>"$work/vault.out" 2>"$work/vault.err" &
pids+=($!)
vault_port=$(wait_port vault "$work/vault.out" "$!")
{
	echo "[vault-transit]"
	echo "allowed-hosts = 127.0.0.1"
	echo "auth = approle"
	echo "role-id-file = $work/role-id"
	echo "secret-id-file = $work/secret-id"
	echo "ca-file = $ca"
} >"$work/vault.conf"
chmod 600 "$work/vault.conf"

# --- Tang, inetd style on 127.0.0.1 ---------------------------------------------------------
mkdir -m 700 "$work/tang-db"
"$tangd_keygen" "$work/tang-db"
tang_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# TANG_INETD=socat forces socat where systemd-socket-activate exists.
if [ "${TANG_INETD:-}" != socat ] && command -v systemd-socket-activate >/dev/null 2>&1; then
	# --accept: one tangd per connection (without it tangd would get the listening socket).
	systemd-socket-activate --inetd --accept -l "127.0.0.1:$tang_port" \
		"$tangd" "$work/tang-db" >"$work/tang.log" 2>&1 &
else
	command -v socat >/dev/null 2>&1 || die "need systemd-socket-activate or socat to run tangd"
	socat "TCP-LISTEN:$tang_port,bind=127.0.0.1,reuseaddr,fork" \
		"EXEC:$tangd $work/tang-db" >"$work/tang.log" 2>&1 &
fi
pids+=($!)
for _ in $(seq 100); do
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
		"$tang_port" 2>/dev/null && break
	sleep 0.1
done
tang_requests() {	# tang_requests adv|rec: Tang requests served so far (tangd logs each on stderr)
	grep -cE "(GET|POST) /$1" "$work/tang.log" || true
}

# --- images ------------------------------------------------------------------------------------
head -c 32 /dev/urandom >"$work/kek" && chmod 600 "$work/kek"
printf 'bench-passphrase' >"$work/pass" && chmod 600 "$work/pass"
for img in az vault file tang; do truncate -s 32M "$work/$img.img"; done
"$kekcrypt" format -q --config "$work/az.conf" "$work/az.img" \
	--kek "azure-kv+https://localhost:$az_port/keys/kek-rsa" >/dev/null
"$kekcrypt" format -q --config "$work/vault.conf" "$work/vault.img" \
	--kek "vault-transit+https://127.0.0.1:$vault_port/v1/transit/keys/k1" >/dev/null
"$kekcrypt" format -q "$work/file.img" --kek "file:$work/kek" >/dev/null
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$work/tang.img" "$work/pass"
clevis luks bind -y -d "$work/tang.img" -k "$work/pass" tang "{\"url\":\"http://127.0.0.1:$tang_port\"}"
# The keyslot clevis added: the one its token points at.
slot=$(cryptsetup token export --token-id 0 "$work/tang.img" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["keyslots"][0])')
# Sanity (outside the timing): each command works, and clevis's passphrase opens its slot.
"$kekcrypt" verify --config "$work/az.conf" "$work/az.img" >/dev/null
"$kekcrypt" verify --config "$work/vault.conf" "$work/vault.img" >/dev/null
"$kekcrypt" verify "$work/file.img" >/dev/null
clevis luks pass -d "$work/tang.img" -s "$slot" |
	cryptsetup open --test-passphrase --key-slot "$slot" --key-file - "$work/tang.img" ||
	die "clevis luks pass did not give the passphrase of keyslot $slot"

# --- measure ------------------------------------------------------------------------------------
# Only the commands below talk to the servers from here on, each to its own: the counters'
# deltas over the hyperfine run divided by its invocations (warmup + runs) are per unlock.
ctl "$az_port" POST /_fixture/reset >/dev/null
ctl "$vault_port" POST /_fixture/reset >/dev/null
adv_before=$(tang_requests adv)
rec_before=$(tang_requests rec)

az_name="kekcrypt verify (Azure KV fixture, MI, RSA key)"
vault_name="kekcrypt verify (Vault Transit fixture, AppRole)"
file_name="kekcrypt verify (file KEK, no network)"
clevis_name="clevis luks pass (Tang on 127.0.0.1)"
hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$work/r.json" \
	-n "$az_name" "$kekcrypt verify --config $work/az.conf $work/az.img" \
	-n "$vault_name" "$kekcrypt verify --config $work/vault.conf $work/vault.img" \
	-n "$file_name" "$kekcrypt verify $work/file.img" \
	-n "$clevis_name" "clevis luks pass -d $work/tang.img -s $slot" >/dev/null

ctl "$az_port" GET /_fixture/counters >"$work/az.counters"
ctl "$vault_port" GET /_fixture/counters >"$work/vault.counters"
echo "{\"adv\": $(($(tang_requests adv) - adv_before)), \"rec\": $(($(tang_requests rec) - rec_before))}" \
	>"$work/tang.counters"

python3 - "$work" "$((warmup + runs))" "$az_name" "$vault_name" "$file_name" "$clevis_name" <<'PY'
import json, sys
work, n, az, vault, file_, clevis = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
res = json.load(open(f"{work}/r.json"))["results"]
med = {r["command"]: r["median"] * 1000 for r in res}

def per_unlock(name, skip):
    c = json.load(open(f"{work}/{name}.counters"))
    parts = {k: v / n for k, v in c.items() if v and k not in skip}
    total = sum(parts.values())
    return f"{total:.2f} (" + " + ".join(f"{k} {v:.2f}" for k, v in parts.items()) + ")"

reqs = {
    az: per_unlock("az", {"requests"}),
    vault: per_unlock("vault", {"total"}),
    file_: "0",
    clevis: per_unlock("tang", set()),
}
base = med[clevis]
print(f"{'command':50} {'median ms':>10} {'vs clevis':>10}  requests per unlock")
for name, ms in med.items():
    print(f"{name:50} {ms:10.2f} {ms / base:9.3f}x  {reqs[name]}")
print(f"\nrequests per unlock = counter deltas over all {n} invocations of each command "
      f"(warmup included) / {n}.")
PY
cat <<EOF
Notes: clevis luks pass only decrypts the JWE in the LUKS2 token (Tang recovery) and prints
the passphrase; it does not check it against keyslot $slot (clevis luks unlock would, but needs
device-mapper). kekcrypt verify unwraps the DEK and checks it against the LUKS2 digest.
Servers are local (Node.js fixtures over HTTPS, tangd over HTTP, inetd style), so these are
client costs plus loopback round trips, not real KMS latencies.
EOF
