#!/bin/bash
# Bench: whole-process time of `kekcrypt verify` (file KEK and SoftHSM2 AES KEK) against
# `cryptsetup open --test-passphrase` on the same kind of image (LUKS2 default argon2id and
# PBKDF2-1000 passphrase keyslots), measured in one run with hyperfine. Prints medians and
# ratios. Not a test: nothing here asserts a time.
# Usage: bench/verify.sh [RUNS]   (from a built source tree, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
# The real binary, not libtool's wrapper script (which costs a shell per run).
kekcrypt=${KEKCRYPT:-$PWD/.libs/kekcrypt}
export LD_LIBRARY_PATH=$PWD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

eval "$(tests/fixtures/softhsm-setup.sh "$work")"
head -c 32 /dev/urandom >"$work/kek" && chmod 600 "$work/kek"
printf 'bench-passphrase' >"$work/pass"
p11="pkcs11:token=kekcrypt-test;object=kek-aes;type=secret-key?module-path=$KC_P11_MODULE&pin-source=file:$KC_P11_PIN_FILE"
# Local policy: the config lets the URI name the SoftHSM2 module and its PIN file.
(umask 077 && printf '[pkcs11]\nallowed-modules = %s\nallowed-pin-files = %s\n' \
	"$KC_P11_MODULE" "$KC_P11_PIN_FILE" >"$work/kc.conf")
for img in file p11 argon pbkdf2; do truncate -s 32M "$work/$img.img"; done
"$kekcrypt" format -q "$work/file.img" --kek "file:$work/kek" >/dev/null
"$kekcrypt" format -q --config "$work/kc.conf" "$work/p11.img" --kek "$p11" >/dev/null
cryptsetup luksFormat -q --type luks2 "$work/argon.img" "$work/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$work/pbkdf2.img" "$work/pass"

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/r.json" \
	-n "kekcrypt verify (file KEK)" "$kekcrypt verify $work/file.img" \
	-n "kekcrypt verify (SoftHSM2 AES KEK)" "$kekcrypt verify --config $work/kc.conf $work/p11.img" \
	-n "cryptsetup --test-passphrase (LUKS2 default argon2id)" \
	"cryptsetup open --test-passphrase --key-file $work/pass $work/argon.img" \
	-n "cryptsetup --test-passphrase (pbkdf2-1000)" \
	"cryptsetup open --test-passphrase --key-file $work/pass $work/pbkdf2.img" >/dev/null

python3 - "$work/r.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: r["median"] * 1000 for r in res}
base = med["cryptsetup --test-passphrase (LUKS2 default argon2id)"]
print(f"{'command':58} {'median ms':>10} {'vs argon2id':>12}")
for name, ms in med.items():
    print(f"{name:58} {ms:10.2f} {ms / base:11.3f}x")
PY
