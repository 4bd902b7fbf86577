#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The libcryptsetup token plugin (libcryptsetup-token-kekcrypt.so) driven by the real
# cryptsetup, on header-only images: luksDump shows the plugin's dump; `open --test-passphrase
# --token-only` succeeds with the right file KEK and fails with a reason for a wrong or
# missing KEK and an unreachable Vault; without --token-only cryptsetup then falls back to a
# passphrase (no PIN prompt); `token import` of a malformed kekcrypt token is refused by the
# plugin's validate.
#
# libcryptsetup 2.6 loads plugins only from its compiled-in directory (no option to change
# it), so the test runs in a private mount namespace where a copy of the built plugin is
# bind-mounted over that directory, and /etc is an overlay holding a test kekcrypt.conf.
# Nothing outside the namespace changes. KC_PLUGIN names another plugin file to test.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need mount objdump

T=$T_DIR
PLUGIN=$(plugin_path)

# --- the plugin's exports -------------------------------------------------------------------
objdump -T "$PLUGIN" | awk '$2 == "g" && $4 != "*UND*" { print $6, $7 }' | sort >"$T/exports"
assert_eq -m "the plugin exports only cryptsetup_token_* at CRYPTSETUP_TOKEN_1.0" \
	"CRYPTSETUP_TOKEN_1.0 cryptsetup_token_buffer_free
CRYPTSETUP_TOKEN_1.0 cryptsetup_token_dump
CRYPTSETUP_TOKEN_1.0 cryptsetup_token_open
CRYPTSETUP_TOKEN_1.0 cryptsetup_token_validate
CRYPTSETUP_TOKEN_1.0 cryptsetup_token_version" "$(grep -v -E '^(CRYPTSETUP_TOKEN_1.0 )?CRYPTSETUP_TOKEN_1.0$' "$T/exports")"

# --- the namespace: plugin in libcryptsetup's token dir, kekcrypt.conf in /etc/kekcrypt --------
plugin_namespace
conf "# empty"

IMG=$T/disk.img
KEK=$T/kek.bin
OTHER=$T/other.bin
new_kek "$KEK"
new_kek "$OTHER"
new_img "$IMG"
# Formatted with the plugin present: libcryptsetup runs its validate on the token we write.
assert_exit -m "kekcrypt format with the plugin loaded (its validate accepts our token)" 0 \
	kc format -q "$IMG" --kek "file:$KEK"
unwrap_dek "$IMG" 0 "$KEK" "$T/dek"

# --- luksDump ---------------------------------------------------------------------------------
assert_exit -m "cryptsetup luksDump" 0 cryptsetup luksDump "$IMG"
assert_stdout_contains -m "luksDump: token 0 is kekcrypt" "0: kekcrypt"
assert_stdout_contains -m "luksDump: plugin dump names the provider" "Provider:    file"
assert_stdout_contains -m "luksDump: plugin dump names the KEK URI" "KEK URI:     file:$KEK"
assert_stdout_contains -m "luksDump: plugin dump names the wrap alg" "Wrap alg:    A256KWP"
assert_stdout_contains -m "luksDump: plugin dump gives the key version" "Key version: (none)"
assert_no_secret -m "luksDump shows no DEK" "$T/dek" "$OUT" "$ERR"

# --- open by token ----------------------------------------------------------------------------
assert_exit -m "open --test-passphrase --token-only: right KEK -> exit 0" 0 \
	cryptsetup open --test-passphrase --token-only -v "$IMG"
assert_stdout_contains -m "keyslot 0 unlocked through the token" "Key slot 0 unlocked."
assert_exit -m "open --token-type kekcrypt --token-only" 0 \
	cryptsetup open --test-passphrase --token-only --token-type kekcrypt "$IMG"
assert_exit -m "open --token-id 0 --token-only" 0 \
	cryptsetup open --test-passphrase --token-only --token-id 0 "$IMG"
# No --token-only: the token is tried first, nothing is asked (stdin is empty).
assert_exit -m "open --test-passphrase (token first, no prompt needed)" 0 \
	cryptsetup open --test-passphrase "$IMG" </dev/null
assert_exit -m "open --debug --token-only" 0 \
	cryptsetup open --test-passphrase --token-only --debug "$IMG"
assert_stdout_contains -m "--debug: libcryptsetup loads the plugin and its version" \
	"Token handler kekcrypt-0.1.0 loaded successfully"
assert_stdout_contains -m "--debug: the library's messages reach cryptsetup's log" \
	"kekcrypt: token 0 ('file:$KEK', provider file, A256KWP): data key unwrapped and verified"
python3 - "$T/dek" "$(cryptsetup luksUUID "$IMG")" "$T/pass" <<'PY'
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
dek = open(sys.argv[1], "rb").read()
p = HKDF(hashes.SHA256(), 32, sys.argv[2].encode(), b"kekcrypt keyslot passphrase v1").derive(dek)
open(sys.argv[3], "wb").write(p)
PY
assert_no_secret -m "--debug output holds neither the DEK" "$T/dek" "$OUT" "$ERR"
assert_no_secret -m "... nor the keyslot passphrase" "$T/pass" "$OUT" "$ERR"
assert_exit -m "the keyslot passphrase derived independently (HKDF) opens keyslot 0" 0 \
	cryptsetup open --test-passphrase --disable-external-tokens --key-file "$T/pass" \
	--key-slot 0 "$IMG"

# A recovery passphrase in another keyslot, for the fallbacks below.
printf 'recovery-pass' >"$T/recovery"
cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--volume-key-file "$T/dek" "$IMG" "$T/recovery"

# --- wrong KEK ----------------------------------------------------------------------------
cp -p "$KEK" "$T/kek.good"
cp "$OTHER" "$KEK"
assert_exit -m "wrong KEK: open --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only "$IMG"
assert_stderr_contains -m "wrong KEK: the reason names the device, token and KEK" \
	"kekcrypt: device '$IMG': token 0 (file:$KEK): KEK file '$KEK': the wrapped key failed its integrity check (wrong KEK?)"
assert_exit -m "wrong KEK, no --token-only: falls back to a passphrase; a wrong one -> exit 2" 2 \
	cryptsetup open --test-passphrase "$IMG" <<<"not-the-passphrase"
assert_stderr_contains -m "... 'No key available with this passphrase.'" \
	"No key available with this passphrase."
assert_not_contains -m "... and no token PIN is asked for" "$(cat "$OUT" "$ERR")" "PIN"
cp -p "$T/kek.good" "$KEK"

# --- missing KEK file (unreachable KEK) -------------------------------------------------------
mv "$KEK" "$T/kek.away"
assert_exit -m "missing KEK file: open --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only -v "$IMG"
assert_stderr_contains -m "missing KEK file: the reason" \
	"token 0 (file:$KEK): KEK file '$KEK': No such file or directory"
assert_stdout_contains -m "missing KEK file: cryptsetup -v: no usable token" \
	"No usable token is available."
assert_exit -m "missing KEK file: open --token-only --debug -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only --debug "$IMG"
assert_stdout_contains -m "missing KEK file: the plugin returns -ENOENT (unusable token)" \
	"Token 0 (kekcrypt) open failed with -2."
assert_exit -m "missing KEK file: falls back to the passphrase prompt; recovery passphrase -> 0" 0 \
	cryptsetup open --test-passphrase "$IMG" <"$T/recovery"
assert_stderr_contains -m "... after saying why the token failed" "No such file or directory"
assert_exit -m "missing KEK file: fallback with a wrong passphrase -> exit 2" 2 \
	cryptsetup open --test-passphrase "$IMG" <<<"not-the-passphrase"
mv "$T/kek.away" "$KEK"

# --- Vault: no credentials, then unreachable ------------------------------------------------
# A vault-transit token in place of token 0 (validly shaped, bound to keyslot 0).
VIMG=$T/vault.img
cp --sparse=always "$IMG" "$VIMG"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VURI="vault-transit+https://127.0.0.1:$PORT/v1/transit/keys/k1"
token_edit "$VIMG" 0 "t.update({'kekcrypt-provider': 'vault-transit', 'kekcrypt-key-id': '$VURI',
 'kekcrypt-key-version': '1', 'kekcrypt-wrap-alg': 'vault-transit',
 'kekcrypt-wrapped-key': base64.b64encode(b'vault:v1:' + base64.b64encode(os.urandom(80))).decode()})"
assert_exit -m "vault token: luksDump" 0 cryptsetup luksDump "$VIMG"
assert_stdout_contains -m "vault token: dump names the provider" "Provider:    vault-transit"
assert_stdout_contains -m "vault token: dump names the URI" "KEK URI:     $VURI"
assert_stdout_contains -m "vault token: dump gives the key version" "Key version: 1"

# Local policy first: a Vault the config does not name gets nothing, not even a connection.
assert_exit -m "vault not in allowed-hosts: open --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only --token-type kekcrypt -v "$VIMG" </dev/null
assert_stderr_contains -m "vault not in allowed-hosts: the reason names the config line" \
	"add the line 'allowed-hosts = 127.0.0.1:$PORT' to [vault-transit]"
assert_stdout_contains -m "vault not in allowed-hosts: the token is unusable (-ENOENT), not retryable" \
	"No usable token (type kekcrypt) is available."

conf "[vault-transit]" "allowed-hosts = 127.0.0.1"
assert_exit -m "vault, no credentials: open --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only --token-type kekcrypt -v "$VIMG" </dev/null
assert_stderr_contains -m "vault, no credentials: the reason" "no Vault credentials configured"
assert_stdout_contains -m "vault, no credentials: a missing resource (-EAGAIN), not a PIN" \
	"Token (type kekcrypt) requires additional missing resource."
assert_not_contains -m "vault, no credentials: no token PIN prompt" "$(cat "$OUT" "$ERR")" "PIN"

printf 'hvs.test-token' >"$T/vault-token"
chmod 600 "$T/vault-token"
conf "[vault-transit]" "auth = token" "token-file = $T/vault-token" "allowed-hosts = 127.0.0.1"
assert_exit -m "vault unreachable (closed port): open --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only --debug "$VIMG" </dev/null
assert_stderr_contains -m "vault unreachable: the reason names the server" "127.0.0.1:$PORT"
assert_stdout_contains -m "vault unreachable: the plugin returns -EAGAIN (missing resource)" \
	"Token 0 (kekcrypt) open failed with -11."
assert_exit -m "vault unreachable: fallback to the passphrase; recovery passphrase -> 0" 0 \
	cryptsetup open --test-passphrase "$VIMG" <"$T/recovery"
assert_exit -m "vault unreachable: fallback with a wrong passphrase -> exit 2" 2 \
	cryptsetup open --test-passphrase "$VIMG" <<<"not-the-passphrase"
conf "# empty"

# --- under systemd-cryptsetup: retries until the crypttab's token-timeout= ---------------------
# systemd-cryptsetup tries a token once; the plugin, when its process is systemd-cryptsetup,
# retries what time may cure until the token-timeout= of the volume's /etc/crypttab entry.
# The plugin goes by the program's name, so a copy of cryptsetup named systemd-cryptsetup
# stands in for it (systemd-cryptsetup calls the same libcryptsetup function).
# assert_logged -m DESC TEXT: the last run's output (either stream) holds TEXT.
assert_logged() { assert_contains -m "$2" "$(cat "$OUT" "$ERR")" "$3"; }
SCS=$T/bin/systemd-cryptsetup
mkdir "$T/bin"
cp "$(command -v cryptsetup)" "$SCS"
VUUID=$(cryptsetup luksUUID "$VIMG")
printf 'vault-transit UUID=%s none luks,token-timeout=3\n' "$VUUID" >/etc/crypttab
conf "[vault-transit]" "auth = token" "token-file = $T/vault-token" "allowed-hosts = 127.0.0.1"
t0=$(date +%s%3N)
assert_exit -m "systemd-cryptsetup, vault unreachable, token-timeout=3: gives up -> exit 1" 1 \
	"$SCS" open --test-passphrase --token-only "$VIMG" </dev/null
# It stops when the next wait would end past the limit: after at least the first wait (0.5 s
# or more), and not long after the 3 s.
ms=$(($(date +%s%3N) - t0))
assert_true -m "... after retrying, within about 3 s ($ms ms)" test "$ms" -ge 500 -a "$ms" -le 10000
assert_logged -m "... each retry is logged with its reason, as a warning" \
	"kekcrypt: warning: $VIMG: token 0: attempt 1 failed: "
assert_true -m "... with the backoff (1 s with jitter) and the time left" grep -Eq \
	'retrying in (0\.[5-9]|1\.0) s \([0-3] s left\)' "$OUT" "$ERR"
assert_true -m "... more than one attempt in the 3 s" grep -Eq \
	'not unlocked within the retry limit of 3 s \([2-9] attempts\)' "$OUT" "$ERR"
assert_true -m "... and why the last attempt failed" grep -Fq \
	"attempts): device '$VIMG': token 0 (vault-transit+https://" "$OUT" "$ERR"
assert_exit -m "plain cryptsetup with the same crypttab: one attempt" 1 \
	cryptsetup open --test-passphrase --token-only "$VIMG" </dev/null
assert_not_contains -m "... no retry" "$(cat "$OUT" "$ERR")" "retrying in"
printf 'vault-transit /dev/null none luks,token-timeout=3\n%s\n' \
	"other $VIMG none luks,token-timeout=1" >/etc/crypttab
assert_exit -m "an entry naming the image by path is found (token-timeout=1)" 1 \
	"$SCS" open --test-passphrase --token-only "$VIMG" </dev/null
assert_logged -m "... its timeout applies" "within the retry limit of 1 s"
printf 'img UUID=%s none luks,token-timeout=soon\n' "$(cryptsetup luksUUID "$IMG")" >/etc/crypttab
assert_exit -m "a bad token-timeout= value does not stop the unlock" 0 \
	"$SCS" open --test-passphrase --token-only "$IMG" </dev/null
assert_logged -m "... it is named, and systemd's default applies" \
	"bad token-timeout= in /etc/crypttab; using 30 s."
printf 'img UUID=%s none luks,token-timeout=20\n' "$(cryptsetup luksUUID "$IMG")" >/etc/crypttab
mv "$KEK" "$T/kek.away"
t0=$SECONDS
assert_exit -m "systemd-cryptsetup, missing KEK file (retrying cannot help): exit 1" 1 \
	"$SCS" open --test-passphrase --token-only --token-id 0 "$IMG" </dev/null
assert_not_contains -m "... at once, without retrying" "$(cat "$OUT" "$ERR")" "retrying in"
assert_true -m "... within a second or two" test $((SECONDS - t0)) -le 2
mv "$T/kek.away" "$KEK"
assert_exit -m "systemd-cryptsetup, KEK present: unlocks" 0 \
	"$SCS" open --test-passphrase --token-only "$IMG" </dev/null
assert_logged -m "... and logs when, for the boot bench" \
	"kekcrypt: $IMG: token 0: unlocked after 1 attempt(s), "

# A real Vault protocol fixture, sealed at first and unsealed 2.5 s later: the plugin keeps
# retrying and unlocks without a prompt. (node and the fixture's modules: scripts/install-deps.sh)
"$FIX/tls.sh" "$T/tls" >/dev/null
VTOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && echo "$VTOKEN" >"$T/vault-token")
node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "$VTOKEN" --key k1 \
	>"$T/vault.port" 2>"$T/vault.log" &
VPID=$!
for i in $(seq 100); do grep -q '^PORT' "$T/vault.port" && break; sleep 0.1; done
VP=$(sed -n 's/^PORT //p' "$T/vault.port")
conf "[vault-transit]" "auth = token" "token-file = $T/vault-token" "allowed-hosts = 127.0.0.1" "ca-file = $T/tls/ca.pem"
SIMG=$T/sealed.img
new_img "$SIMG"
assert_exit -m "a volume with its KEK in the Vault fixture" 0 kc format -q "$SIMG" \
	--kek "vault-transit+https://127.0.0.1:$VP/v1/transit/keys/k1"
printf 'sealed UUID=%s none luks,token-timeout=30\n' "$(cryptsetup luksUUID "$SIMG")" \
	>/etc/crypttab
vseal() {
	python3 - "$T/tls/ca.pem" "$VP" "$1" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
req = urllib.request.Request(f"https://127.0.0.1:{sys.argv[2]}/_fixture/seal", method="POST",
    data=('{"sealed": %s}' % sys.argv[3]).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, context=ctx, timeout=10).read()
PY
}
vseal true
(sleep 2.5 && vseal false) &
UNSEAL=$!
assert_exit -m "systemd-cryptsetup, Vault sealed for 2.5 s: unlocks without a prompt" 0 \
	"$SCS" open --test-passphrase --token-only "$SIMG" </dev/null
assert_logged -m "... after saying the Vault is sealed" "Vault is sealed"
assert_true -m "... on a later attempt" grep -Eq \
	"kekcrypt: $SIMG: token 0: unlocked after [2-9] attempt\(s\), [0-9.]+ s since boot" "$OUT" "$ERR"
wait "$UNSEAL"
kill "$VPID"
rm -f /etc/crypttab
conf "# empty"

# --- validate: malformed tokens are refused at import ----------------------------------------
cryptsetup token export --token-id 0 "$IMG" >"$T/good.json"
SUM=$(header_sum "$IMG")
# bad NAME PYTHON: a broken copy of token 0 in $T/bad-NAME.json.
bad() {
	python3 - "$T/good.json" "$T/bad-$1.json" "$2" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(t, open(sys.argv[2], "w"))
PY
}
bad version 't["kekcrypt-version"] = "7"'
bad base64 't["kekcrypt-wrapped-key"] = "not*base64"'
bad no-uri 'del t["kekcrypt-key-id"]'
bad short 't["kekcrypt-wrapped-key"] = "AAAA"'
bad provider 't["kekcrypt-provider"] = "nosuch"'
bad uri-mismatch 't["kekcrypt-key-id"] = "pkcs11:token=x;object=y"'
bad alg 't["kekcrypt-wrap-alg"] = "RSA-OAEP"'
bad int-version 't["kekcrypt-version"] = 1'
for b in version base64 no-uri short provider uri-mismatch alg int-version; do
	assert_exit -m "token import of a malformed token ($b) is refused" 1 \
		cryptsetup token import --json-file "$T/bad-$b.json" "$IMG"
done
assert_header_unchanged -m "the refused imports left the header unchanged" "$IMG" "$SUM"
assert_exit -m "token import --debug of a bad version" 1 \
	cryptsetup token import --debug --json-file "$T/bad-version.json" "$IMG"
assert_stdout_contains -m "--debug: the plugin's validate says why" \
	"kekcrypt token invalid: token format version 7 is not supported"
assert_exit -m "token import of a well-formed kekcrypt token is accepted" 0 \
	cryptsetup token import --json-file "$T/good.json" --token-id 5 "$IMG"

# A malformed token already in the header (written past the plugin): dumped as invalid,
# skipped by open, which still succeeds through token 0.
token_replace "$IMG" 5 "$T/bad-base64.json"
assert_exit -m "luksDump with a malformed kekcrypt token" 0 cryptsetup luksDump "$IMG"
assert_stdout_contains -m "luksDump: the malformed token is shown as invalid" \
	"Invalid kekcrypt token: field 'kekcrypt-wrapped-key' is not valid base64"
assert_exit -m "open --token-id 5 (malformed) --token-only -> exit 1" 1 \
	cryptsetup open --test-passphrase --token-only --token-id 5 "$IMG"
assert_exit -m "open --token-only with a malformed token 5 still unlocks through token 0" 0 \
	cryptsetup open --test-passphrase --token-only "$IMG"

umount /etc
done_testing
