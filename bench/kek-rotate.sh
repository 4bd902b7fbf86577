#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: `kekcrypt kek rotate` time per volume, whole processes, in one hyperfine run, next to
# the nearest cryptsetup operation, `cryptsetup luksChangeKey` (a header-only passphrase
# change, PBKDF2 with 1000 iterations like kekcrypt's token-bound keyslots):
#   - file KEK: rotate --to another file KEK, alternating between two;
#   - SoftHSM2 AES KEK: rotate --to the token's second AES key, alternating;
#   - Azure Key Vault fixture (managed identity, RSA): rotate without --to, i.e. rewrap
#     under the vault's current version of the same key (one access token, one unwrap, one
#     get, one wrap per run).
# Each run rotates one volume: unwrap through the old KEK, wrap under the new one, write the
# new token, verify it (unwrap + digest check), remove the old token. Not a test: nothing
# here asserts a time.
#
# Caveats, printed with the results: the Azure fixture is a local Node.js server, so its
# numbers are client cost plus loopback round trips, not a cloud KMS's latency; Clevis has no
# equivalent to time here (`clevis luks regen` rebinds a pin by re-encrypting a new
# passphrase, and asks for a running Tang).
#
# Usage: bench/kek-rotate.sh [RUNS]   (from a built source tree, as root; default 20 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
kekcrypt=${KEKCRYPT:-$PWD/.libs/kekcrypt}
export LD_LIBRARY_PATH=$PWD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fix=$PWD/tests/fixtures

die() {
	echo "kek-rotate.sh: $*" >&2
	exit 1
}
for c in hyperfine cryptsetup node python3; do
	command -v "$c" >/dev/null 2>&1 || die "$c is missing"
done
[ -x "$kekcrypt" ] || die "$kekcrypt is missing: build first (make)"

work=$(mktemp -d)
fixture_pid=
cleanup() {
	[ -z "$fixture_pid" ] || kill "$fixture_pid" 2>/dev/null || :
	rm -rf "$work"
}
trap cleanup EXIT

kc() { "$kekcrypt" "$@"; }
for k in k1 k2; do (umask 077 && head -c 32 /dev/urandom >"$work/$k"); done
mkdir -m 700 "$work/hsm"
eval "$("$fix/softhsm-setup.sh" "$work/hsm")"
p11() { echo "pkcs11:token=kekcrypt-test;object=$1;type=secret-key?module-path=$KC_P11_MODULE&pin-source=file:$KC_P11_PIN_FILE"; }
# Local policy: the config lets the URIs name the SoftHSM2 module and its PIN file.
(umask 077 && printf '[pkcs11]\nallowed-modules = %s\nallowed-pin-files = %s\n' \
	"$KC_P11_MODULE" "$KC_P11_PIN_FILE" >"$work/p11.conf")

"$fix/tls.sh" "$work/tls" >/dev/null
node "$fix/azure-kv/server.js" --cert "$work/tls/server.pem" --key "$work/tls/server.key" \
	--rsa-key kek-rsa >"$work/az.out" 2>"$work/az.err" &
fixture_pid=$!
for _ in $(seq 300); do grep -q '^PORT' "$work/az.out" && break; sleep 0.1; done
port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$work/az.out")
[ -n "$port" ] || die "the Azure fixture did not start: $(cat "$work/az.err")"
(umask 077 && printf '[azure-kv]\nauth = managed-identity\nallowed-hosts = localhost\nca-file = %s\nimds-endpoint = https://127.0.0.1:%s/metadata/identity/oauth2/token\n' \
	"$work/tls/ca.pem" "$port" >"$work/az.conf")

for v in file hsm az cs; do truncate -s 32M "$work/$v.img"; done
kc format -q "$work/file.img" --kek "file:$work/k1" >/dev/null
kc format -q --config "$work/p11.conf" "$work/hsm.img" --kek "$(p11 kek-aes)" >/dev/null
kc format -q --config "$work/az.conf" "$work/az.img" \
	--kek "azure-kv+https://localhost:$port/keys/kek-rsa" >/dev/null
printf 'old' >"$work/pass-a"
printf 'new' >"$work/pass-b"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$work/pass-a" "$work/cs.img"

# Each command alternates between two KEKs (or passphrases), so every run does the same work.
cat >"$work/file.sh" <<SH
if "$kekcrypt" kek list "$work/file.img" | grep -q "file:$work/k1"; then to=$work/k2; else to=$work/k1; fi
exec "$kekcrypt" kek rotate "$work/file.img" --to "file:\$to"
SH
cat >"$work/hsm.sh" <<SH
if "$kekcrypt" kek list "$work/hsm.img" | grep -q "object=kek-aes;"; then to='$(p11 kek-aes-2)'; else to='$(p11 kek-aes)'; fi
exec "$kekcrypt" kek rotate --config "$work/p11.conf" "$work/hsm.img" --to "\$to"
SH
cat >"$work/cs.sh" <<SH
if cryptsetup open --test-passphrase --key-file "$work/pass-a" "$work/cs.img" 2>/dev/null; then
	exec cryptsetup luksChangeKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$work/pass-a" "$work/cs.img" "$work/pass-b"
fi
exec cryptsetup luksChangeKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$work/pass-b" "$work/cs.img" "$work/pass-a"
SH

hyperfine -N --runs "$runs" --warmup 2 --export-json "$work/h.json" \
	-n "kekcrypt kek rotate (file KEK)" "bash $work/file.sh" \
	-n "kekcrypt kek rotate (SoftHSM2 AES)" "bash $work/hsm.sh" \
	-n "kekcrypt kek rotate (Azure fixture, current version)" \
	"$kekcrypt kek rotate --config $work/az.conf $work/az.img" \
	-n "cryptsetup luksChangeKey (pbkdf2-1000)" "bash $work/cs.sh" >"$work/h.txt" 2>&1 ||
	{ cat "$work/h.txt"; die "hyperfine failed"; }

kc verify "$work/file.img" >/dev/null || die "the file volume no longer verifies"
kc verify --config "$work/p11.conf" "$work/hsm.img" >/dev/null ||
	die "the SoftHSM2 volume no longer verifies"
kc verify --config "$work/az.conf" "$work/az.img" >/dev/null || die "the Azure volume no longer verifies"
python3 - "$work/h.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = res[-1]["median"]
print(f"{'command':52} {'median':>9} {'vs luksChangeKey':>17}")
for r in res:
    print(f"{r['command']:52} {r['median'] * 1000:7.1f}ms {r['median'] / base:16.2f}x")
PY
echo "(one volume per run; the file/SoftHSM2/cryptsetup runs include a shell that picks the"
echo " other key; the Azure fixture is local, so network latency to a real vault is not in it)"
