#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The LUKS2 header is untrusted input (DESIGN.md, "Trust boundary"; lib/policy.c): anyone who
# can write a disk can write its tokens. Each attack is played on image files with forged
# tokens, with something standing for the attacker that records what reaches it. The
# attacker must get nothing, and the real token must still unlock. Each attack also runs
# through stock cryptsetup with the token plugin (`open --token-only`, and as
# systemd-cryptsetup), and a control shows that the recorder does see what it would get.
#  1. Vault: a forged token before the real one names the attacker's Vault (a second fixture
#     whose certificate the CA trusts): no request reaches it from verify, the keyscript's
#     keyscript-passphrase, cryptsetup or systemd-cryptsetup; the warning names the token.
#  2. Azure: the same with a forged vault in Azure's own domain (evil.vault.azure.net, mapped
#     in the namespace's /etc/hosts), allowed-hosts naming only the victim's vault.
#  3. PKCS#11: a forged module-path to a library any user could write, whose constructor
#     leaves a mark: never loaded; a pin-source the config does not name is never opened.
#  4. rekey: a forged token with a file KEK owned by another user, and one naming another key
#     on the allowed Vault: rekey refuses and names them; the new data key never reaches the
#     attacker's KEK; afterwards the attacker's key unwraps no token to the volume's key.
#  5. every crash point of a rekey (KC_TEST_CRASH_AT): verify, dump, kek list,
#     keyscript-passphrase and the plugin leave the header byte-identical; writers refuse
#     until `rekey --resume`, which finishes it.
#  6. the last unlock path: an orphan keyslot and a forged token do not count; a forged
#     bridge or rekey mark never makes rekey destroy the last keyslot of the data.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need mount curl gcc node setpriv
T=$T_DIR
plugin_namespace
# A copy of cryptsetup named systemd-cryptsetup: the plugin's systemd path (tests/host/plugin.sh).
SCS=$T/bin/systemd-cryptsetup
mkdir "$T/bin"
cp "$(command -v cryptsetup)" "$SCS"

# Names the fixtures answer to, all on 127.0.0.1 (each fixture its own port).
cat >>/etc/hosts <<EOF
127.0.0.1 victim-vault.test attacker.test victim.vault.azure.net evil.vault.azure.net
EOF
"$FIX/tls.sh" "$T/tls" DNS:victim-vault.test DNS:attacker.test DNS:victim.vault.azure.net \
	DNS:evil.vault.azure.net >/dev/null

# The attacker's directory: owned by another user, writable by all.
EVIL=$(mktemp -d /tmp/kc-evil.XXXXXX)
chown nobody "$EVIL"
chmod 0777 "$EVIL"
PIDS=()
# shellcheck disable=SC2154 # _rc is assigned in the trap itself
trap '_rc=$?; kill "${PIDS[@]}" 2>/dev/null; rm -rf "$EVIL"; (exit $_rc); _t_cleanup' EXIT

# requests PORT: how many API requests the fixture on PORT has served (Vault: "total"; Azure:
# every counter but "requests", which counts the fixture's own control requests too).
requests() {
	curl -s --cacert "$T/tls/ca.pem" "https://127.0.0.1:$1/_fixture/counters" |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
print(d["total"] if "total" in d else sum(v for k, v in d.items() if k != "requests"))'
}
# forge IMG ID PYTHON: token ID of IMG becomes a copy of token 0 changed by PYTHON (dict t),
# bound to the same keyslot; the real token moves to the first free id after it.
forge_before() {
	local img=$1 py=$2
	cryptsetup token export --token-id 0 "$img" >"$T/real.json"
	cryptsetup --disable-external-tokens token import --token-id 1 --json-file "$T/real.json" \
		"$img"
	token_edit "$img" 0 "$py"
}
# plugin_open IMG [ARGS]: stock cryptsetup through the plugin, by token only, mapping nothing
# (libcryptsetup picks the order of the tokens; --token-id 0 makes it try the forged one).
plugin_open() { cryptsetup open --test-passphrase --token-only -v "$@" </dev/null; }

# --- 1. Vault ------------------------------------------------------------------------------------
VTOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && echo "$VTOKEN" >"$T/vtoken")
# The fixtures run in the background until the test ends (fixture_start, tests/host/lib.sh).
fixture_start vault node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "$VTOKEN" --key k1 --key k2
fixture_start attacker node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "hvs.attacker" --key k1
# shellcheck disable=SC2154 # fixture_start sets NAME_PORT (printf -v)
VP=$vault_PORT AP=$attacker_PORT
conf "[vault-transit]" "auth = token" "token-file = $T/vtoken" "ca-file = $T/tls/ca.pem" \
	"allowed-hosts = victim-vault.test"
V=$T/vault.img
new_img "$V"
assert_exit -m "vault: format under the victim's Vault" 0 \
	kc format -q "$V" --kek "vault-transit+https://victim-vault.test:$VP/v1/transit/keys/k1"
EVIL_URI="vault-transit+https://attacker.test:$AP/v1/transit/keys/k1"
forge_before "$V" "t['kekcrypt-key-id'] = '$EVIL_URI'"
assert_exit -m "vault: verify with a forged token first" 0 kc verify "$V"
assert_stdout_contains -m "vault: ... unlocked through the real token 1" "token 1 ("
assert_stderr_contains -m "vault: ... warning that names the forged token" \
	"warning: device '$V': skipped (not allowed by local policy"
assert_stderr_contains -m "vault: ... and its endpoint" "endpoint 'attacker.test:$AP'"
assert_exit -m "vault: keyscript-passphrase (the initramfs keyscript's unlock)" 0 \
	kc keyscript-passphrase "$V"
assert_exit -m "vault: stock cryptsetup open --token-only through the plugin" 0 plugin_open "$V"
assert_exit -m "vault: cryptsetup open --token-id 0 (the forged token): no unlock" 1 \
	plugin_open "$V" --token-id 0
assert_contains -m "vault: ... cryptsetup's log names the refusal" "$(cat "$OUT" "$ERR")" \
	"allowed-hosts"
printf 'v UUID=%s none luks,token-timeout=5\n' "$(cryptsetup luksUUID "$V")" >/etc/crypttab
assert_exit -m "vault: systemd-cryptsetup through the plugin" 0 \
	"$SCS" open --test-passphrase --token-only "$V"
rm -f /etc/crypttab
assert_eq -m "vault: the attacker's Vault got no request at all" 0 "$(requests "$AP")"
assert_exit -m "vault: rekey refuses the forged token (local policy: exit 14)" 14 kc rekey "$V"
assert_stderr_contains -m "vault: ... naming it" "token 0 ($EVIL_URI)"
assert_eq -m "vault: ... and the attacker still got nothing" 0 "$(requests "$AP")"
# Control: were the attacker allowed, it would be asked (the recorder works).
conf "[vault-transit]" "auth = token" "token-file = $T/vtoken" "ca-file = $T/tls/ca.pem" \
	"allowed-hosts = victim-vault.test attacker.test"
assert_exit -m "control: with the attacker in allowed-hosts, verify still works" 0 kc verify "$V"
assert_true -m "control: ... and the attacker's Vault was asked (the token went there)" \
	test "$(requests "$AP")" -gt 0
conf "[vault-transit]" "auth = token" "token-file = $T/vtoken" "ca-file = $T/tls/ca.pem" \
	"allowed-hosts = victim-vault.test"

# --- 2. Azure: a vault in Azure's own domain -------------------------------------------------------
fixture_start azure node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --rsa-key kek-rsa
fixture_start evil_azure node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --rsa-key kek-rsa
# shellcheck disable=SC2154 # fixture_start sets NAME_PORT (printf -v)
ZP=$azure_PORT EP=$evil_azure_PORT
azconf() {
	conf "[azure-kv]" "auth = managed-identity" "ca-file = $T/tls/ca.pem" \
		"imds-endpoint = https://127.0.0.1:$ZP/metadata/identity/oauth2/token" "$@"
}
azconf "allowed-hosts = victim.vault.azure.net"
Z=$T/azure.img
new_img "$Z"
assert_exit -m "azure: format under the victim's vault" 0 \
	kc format -q "$Z" --kek "azure-kv+https://victim.vault.azure.net:$ZP/keys/kek-rsa"
forge_before "$Z" "t['kekcrypt-key-id'] = 'azure-kv+https://evil.vault.azure.net:$EP/keys/kek-rsa'"
curl -s -X POST --cacert "$T/tls/ca.pem" "https://127.0.0.1:$ZP/_fixture/reset" >/dev/null
assert_exit -m "azure: verify with a forged vault in Azure's domain first" 0 kc verify "$Z"
assert_stderr_contains -m "azure: ... the warning names it" "endpoint 'evil.vault.azure.net:$EP'"
assert_exit -m "azure: stock cryptsetup open --token-only through the plugin" 0 plugin_open "$Z"
assert_exit -m "azure: cryptsetup open --token-id 0 (the forged token): no unlock" 1 \
	plugin_open "$Z" --token-id 0
assert_eq -m "azure: the forged vault got no request (no access token went there)" 0 \
	"$(requests "$EP")"
assert_true -m "azure: the real vault was used" test "$(requests "$ZP")" -gt 0
azconf "allowed-hosts = victim.vault.azure.net evil.vault.azure.net"
assert_exit -m "control: with the forged vault allowed, verify works" 0 kc verify "$Z"
assert_true -m "control: ... and the forged vault was asked" test "$(requests "$EP")" -gt 0
azconf "allowed-hosts = victim.vault.azure.net"

# --- 3. PKCS#11: a module any user could write, a PIN file the config does not name ------------
KEK=$T/kek.bin
new_kek "$KEK"
cat >"$T/evil.c" <<EOF
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void)
{
	int fd = open("$EVIL/MARK", O_WRONLY | O_CREAT, 0666);

	if (fd >= 0)
		close(fd);
}
EOF
gcc -shared -fPIC -o "$EVIL/evil.so" "$T/evil.c"
chown nobody "$EVIL/evil.so"
chmod 0777 "$EVIL/evil.so"
P=$T/p11.img
new_img "$P"
format_img "$P" "$KEK"
(umask 077 && echo "root-only secret" >"$T/private")
forge_before "$P" "t.update({'kekcrypt-provider': 'pkcs11', 'kekcrypt-wrap-alg': 'A256KWP',
 'kekcrypt-key-id': 'pkcs11:token=x;object=y?module-path=$EVIL/evil.so&pin-source=file:$T/private'})"
conf "# no PKCS#11 module allowed"
assert_exit -m "pkcs11: verify with a forged module-path first" 0 kc verify "$P"
assert_stderr_contains -m "pkcs11: ... the warning names the module" "PKCS#11 module '$EVIL/evil.so'"
assert_exit -m "pkcs11: stock cryptsetup open --token-only through the plugin" 0 plugin_open "$P"
assert_exit -m "pkcs11: cryptsetup open --token-id 0 (the forged token): no unlock" 1 \
	plugin_open "$P" --token-id 0
assert_true -m "pkcs11: the module was never loaded (no mark)" test ! -e "$EVIL/MARK"
conf "[pkcs11]" "allowed-modules = $EVIL/evil.so"
assert_exit -m "pkcs11: even named in allowed-modules, a module others can write: verify" 0 \
	kc verify "$P"
assert_stderr_contains -m "pkcs11: ... refused for its owner" "is owned by uid"
assert_true -m "pkcs11: ... and still never loaded" test ! -e "$EVIL/MARK"
python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$EVIL/evil.so"
assert_true -m "control: loading the module does leave the mark" test -e "$EVIL/MARK"
rm -f "$EVIL/MARK"
# A pin-source the config does not name is never opened: a FIFO whose writer would be
# released by any open.
mkfifo -m 600 "$T/pin-fifo"
( echo 1234 >"$T/pin-fifo" ) &
WRITER=$!
PIDS+=("$WRITER")
token_edit "$P" 0 "t['kekcrypt-key-id'] = 'pkcs11:token=kekcrypt-test;object=kek-aes?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$T/pin-fifo'"
conf "[pkcs11]" "allowed-modules = /usr/lib/softhsm/libsofthsm2.so"
assert_exit -m "pkcs11: verify with a pin-source the config does not name" 0 kc verify "$P"
assert_stderr_contains -m "pkcs11: ... refused, naming allowed-pin-files" "allowed-pin-files"
assert_exit -m "pkcs11: ... and through the plugin" 0 plugin_open "$P"
assert_exit -m "pkcs11: ... forced to that token: no unlock" 1 plugin_open "$P" --token-id 0
sleep 0.2
assert_true -m "pkcs11: the PIN file was never opened (its writer still waits)" kill -0 "$WRITER"

# --- 4. rekey: the new data key goes only to KEKs that hold the current one ---------------------
R=$T/rekey.img
new_img "$R"
format_img "$R" "$KEK"
unwrap_dek "$R" 0 "$KEK" "$T/dek-before"
head -c 32 /dev/urandom >"$EVIL/kek.bin"
chown nobody "$EVIL/kek.bin"
chmod 0600 "$EVIL/kek.bin"
python3 - "$EVIL/kek.bin" "$T/evil-wrapped" <<'PY'
import base64, os, sys
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
kek = open(sys.argv[1], "rb").read()
open(sys.argv[2], "w").write(base64.b64encode(aes_key_wrap_with_padding(kek, os.urandom(64))).decode())
PY
cryptsetup token export --token-id 0 "$R" >"$T/t0.json"
python3 - "$T/t0.json" "$T/evil.json" "$EVIL/kek.bin" "$(cat "$T/evil-wrapped")" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["kekcrypt-key-id"] = "file:" + sys.argv[3]
t["kekcrypt-wrapped-key"] = sys.argv[4]
json.dump(t, open(sys.argv[2], "w"))
PY
cryptsetup --disable-external-tokens token import --token-id 1 --json-file "$T/evil.json" "$R"
sum=$(header_sum "$R")
conf "# file KEKs: ownership decides"
assert_exit -m "rekey with a forged file KEK owned by another user: refused (exit 14)" 14 kc rekey "$R"
assert_stderr_contains -m "rekey: ... names the token" "token 1 (file:$EVIL/kek.bin)"
assert_stderr_contains -m "rekey: ... and why" "owned by uid"
assert_header_unchanged -m "rekey: ... header unchanged" "$R" "$sum"
# The attacker's key must unwrap no token to a key that opens the volume.
attacker_gets_nothing() {
	local id n=0
	for id in $(json_get_tokens "$R"); do
		cryptsetup token export --token-id "$id" "$R" >"$T/tok.json"
		python3 - "$T/tok.json" "$EVIL/kek.bin" "$T/got" <<'PY' || continue
import base64, json, sys
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
t = json.load(open(sys.argv[1]))
try:
    k = aes_key_unwrap_with_padding(open(sys.argv[2], "rb").read(),
                                    base64.b64decode(t["kekcrypt-wrapped-key"]))
except Exception:
    sys.exit(1)
open(sys.argv[3], "wb").write(k)
PY
		if cryptsetup open --test-passphrase --disable-external-tokens --volume-key-file "$T/got" "$R" 2>/dev/null ||
			cmp -s "$T/got" "$T/dek-before"; then
			n=$((n + 1))
		fi
	done
	[ "$n" = 0 ]
}
json_get_tokens() {
	cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json, sys; print(" ".join(k for k, v in json.load(sys.stdin)["tokens"].items() if v["type"] == "kekcrypt"))'
}
assert_true -m "rekey refused: the attacker's key opens nothing" attacker_gets_nothing
assert_exit -m "rekey: remove the forged token" 0 kc kek remove -q "$R" --token 1
assert_exit -m "rekey: now it runs" 0 kc rekey "$R"
assert_true -m "rekeyed: the attacker's key opens nothing" attacker_gets_nothing
unwrap_dek "$R" "$(json_get_tokens "$R")" "$KEK" "$T/dek-after"
assert_false_cmp() { ! cmp -s "$1" "$2"; }
assert_true -m "rekeyed: a new data key" assert_false_cmp "$T/dek-before" "$T/dek-after"
# Another key on the allowed Vault (the attacker's, on a shared server): policy allows the
# host, but the token does not unwrap the current key, so the new one is never sent there.
conf "[vault-transit]" "auth = token" "token-file = $T/vtoken" "ca-file = $T/tls/ca.pem" \
	"allowed-hosts = victim-vault.test"
R2=$T/rekey2.img
new_img "$R2"
assert_exit -m "rekey/vault: format under k1" 0 \
	kc format -q "$R2" --kek "vault-transit+https://victim-vault.test:$VP/v1/transit/keys/k1"
cryptsetup token export --token-id 0 "$R2" >"$T/v0.json"
python3 - "$T/v0.json" "$T/v1.json" <<PY
import json, sys
t = json.load(open(sys.argv[1]))
t["kekcrypt-key-id"] = "vault-transit+https://victim-vault.test:$VP/v1/transit/keys/k2"
json.dump(t, open(sys.argv[2], "w"))
PY
cryptsetup --disable-external-tokens token import --token-id 1 --json-file "$T/v1.json" "$R2"
curl -s -X POST --cacert "$T/tls/ca.pem" "https://127.0.0.1:$VP/_fixture/reset" >/dev/null
sum=$(header_sum "$R2")
assert_exit -m "rekey/vault: a token naming another key (k2) with k1's ciphertext: refused" 8 \
	kc rekey "$R2"
assert_stderr_contains -m "rekey/vault: ... names it" "token 1 (vault-transit+https://victim-vault.test:$VP/v1/transit/keys/k2)"
assert_header_unchanged -m "rekey/vault: ... header unchanged" "$R2" "$sum"
assert_eq -m "rekey/vault: no new data key was sent to Vault (no encrypt)" 0 \
	"$(curl -s --cacert "$T/tls/ca.pem" "https://127.0.0.1:$VP/_fixture/counters" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["encrypt"])')"

# --- 5. readers never write, whatever a crashed rekey left ----------------------------------------
conf "# file KEKs"
C=$T/crash.img
readers_leave_it() {	# readers_leave_it N
	local sum
	sum=$(header_sum "$C")
	run kc verify "$C"
	run kc dump --json "$C"
	run kc kek list "$C"
	run kc keyscript-passphrase "$C"
	run plugin_open "$C"
	assert_header_unchanged -m "crash at write $1: verify, dump, kek list, keyscript-passphrase, cryptsetup: header byte-identical" "$C" "$sum"
}
n=1
while [ "$n" -le 30 ]; do
	new_img "$C"
	format_img "$C" "$KEK"
	( KC_TEST_CRASH_AT=$n "$KEKCRYPT" rekey "$C" --config "$T_CONF" >/dev/null 2>&1 ) 2>/dev/null && rc=0 || rc=$?
	[ "$rc" = 137 ] || break
	readers_leave_it "$n"
	if [ "$n" = 3 ]; then
		assert_exit -m "crash at write 3: kek add refused while rekey leftovers exist (exit 12)" 12 \
			kc kek add "$C" --kek "file:$KEK"
		assert_stderr_contains -m "crash at write 3: ... saying what to run" "rekey --resume"
		assert_exit -m "crash at write 3: kek remove refused too (exit 12)" 12 \
			kc kek remove -q "$C" --token 0
	fi
	assert_exit -m "crash at write $n: rekey finishes it" 0 kc rekey "$C"
	assert_exit -m "crash at write $n: ... and it verifies" 0 kc verify "$C"
	n=$((n + 1))
done
assert_eq -m "a rekey run to its end once the hook was past its last write ($((n - 1)) crash points)" 0 "$rc"
assert_true -m "at least 6 crash points were tried" test "$n" -gt 6

# --- 6. the last unlock path ----------------------------------------------------------------------
L=$T/last.img
K2=$T/kek2.bin
new_kek "$K2"
new_img "$L"
format_img "$L" "$KEK"
assert_exit -m "last path: kek add a second KEK" 0 kc kek add "$L" --kek "file:$K2"
cryptsetup --disable-external-tokens token remove --token-id 1 "$L"
sum=$(header_sum "$L")
assert_exit -m "last path: an orphan keyslot (token gone) does not count: kek remove refused (12)" \
	12 kc kek remove -q "$L" --token 0
assert_stderr_contains -m "last path: ... it says why" "last way to unlock it"
assert_header_unchanged -m "last path: ... header unchanged" "$L" "$sum"
cryptsetup --disable-external-tokens token import --token-id 1 --json-file "$T/evil.json" "$L"
assert_exit -m "last path: a forged, unusable token does not count either (12)" 12 \
	kc kek remove -q "$L" --token 0
# A real second way (a recovery key) does count.
assert_exit -m "last path: recovery add" 0 kc recovery add -q "$L" --pbkdf-memory 32 \
	--pbkdf-force-iterations 4
assert_exit -m "last path: with a recovery key, kek remove of token 0 is allowed" 0 \
	kc kek remove -q "$L" --token 0
# A forged bridge naming the only keyslot, and a forged rekey mark on the only token: rekey
# must leave the data openable.
B=$T/bridge.img
new_img "$B"
format_img "$B" "$KEK"
printf '{"type":"kekcrypt-rekey","keyslots":["0"]}' >"$T/bridge.json"
cryptsetup --disable-external-tokens token import --token-id 5 --json-file "$T/bridge.json" "$B"
assert_exit -m "forged bridge on the only keyslot: rekey" 0 kc rekey "$B"
assert_exit -m "... the volume still unlocks" 0 kc verify "$B"
M=$T/mark.img
new_img "$M"
format_img "$M" "$KEK"
token_edit "$M" 0 "t['kekcrypt-rekey'] = 'new'"
run kc rekey "$M"
assert_exit -m "forged rekey mark on the only token: the volume still unlocks after rekey" 0 \
	kc verify "$M"

done_testing
