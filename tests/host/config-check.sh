#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The configuration is strict (kekcrypt(8) CONFIGURATION): a section or key kekcrypt does not
# know (a typo such as "auht =" or "[azure]") is an error naming FILE:LINE, exit 25, nothing
# done. `config check` reports that and what the configuration names: files that are missing
# or unsafe (owner, mode), allowed-hosts entries that are not HOST or HOST:PORT; doctor
# reports the same. etc/kekcrypt.conf.example, every setting uncommented, has only sections
# and keys kekcrypt knows, and a section for every provider.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
EX=$KC_SRCDIR/etc/kekcrypt.conf.example
new_kek "$K0"
new_img "$IMG"
format_img "$IMG" "$K0"
GOOD=("[file]" "allowed-paths = $K0")

# problems KIND: the messages of the problems of KIND in the JSON of `config check` ($OUT).
problems() {
	json_get "$OUT" "' | '.join(p['message'] for p in d['problems'] if p['problem'] == '$1')"
}

# --- typos are errors naming FILE:LINE, exit 25 ------------------------------------------------
conf "# kekcrypt test configuration" "" "[file]" "allowed-paths = $K0" "[azure-kv]" \
	"auht = managed-identity"
sum=$(header_sum "$IMG")
assert_exit -m "'auht =' in [azure-kv]: verify fails with exit 25" 25 kc verify "$IMG"
assert_stderr_contains -m "... naming FILE:LINE and the key" \
	"kekcrypt verify: $T_CONF:6: unknown key 'auht' in [azure-kv]"
assert_stderr_contains -m "... and the keys the section takes" "it takes: allowed-hosts, auth,"
assert_exit -m "... kek add with it: exit 25" 25 kc kek add "$IMG" --kek "file:$K0"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
conf "[azure]" "auth = managed-identity"
assert_exit -m "'[azure]': exit 25" 25 kc verify "$IMG"
assert_stderr_contains -m "... naming FILE:LINE and the section" \
	"$T_CONF:1: unknown section [azure]; the sections are [firstboot] and the providers': [file], [pkcs11]"
conf "[file]" "allowed-path = $K0"
assert_exit -m "'allowed-path' (for allowed-paths) in [file]: exit 25" 25 kc verify "$IMG"
assert_stderr_contains -m "... named" "$T_CONF:2: unknown key 'allowed-path' in [file]; it takes: allowed-paths"
conf "" "[file" "allowed-paths = $K0"
assert_exit -m "a broken section header: exit 25" 25 kc verify "$IMG"
assert_stderr_contains -m "... on line 2" "$T_CONF:2: bad section header"
conf "allowed-paths = $K0"
assert_exit -m "a key outside a section: exit 25" 25 kc verify "$IMG"
assert_stderr_contains -m "... on line 1" "$T_CONF:1: expected 'key = value' in a [section]"
conf "${GOOD[@]}"
assert_exit -m "the same, spelt right: verify works" 0 kc verify "$IMG"
new_kek "$T/other.bin"
conf "[file]" "allowed-paths = $K0 $T/other.bin"
cp "$K0" "$T/k0.saved"
new_kek "$K0"
assert_exit -m "a wrong KEK with a good configuration: exit 8, not 25" 8 kc verify "$IMG"
cp "$T/k0.saved" "$K0"

# --- config check ------------------------------------------------------------------------------
conf "${GOOD[@]}"
assert_exit -m "config check of a sound configuration: exit 0" 0 kc config check
assert_stdout_contains -m "... says ok" "$T_CONF: ok"
assert_exit -m "--json --config FILE before the verb" 0 \
	"$KEKCRYPT" --json --config "$T_CONF" config check
assert_eq -m "... ok, no problems" "True 0" "$(json_get "$OUT" 'd["ok"], len(d["problems"])' | tr -d '(),')"

conf "[azure-kv]" "auht = managed-identity"
assert_exit -m "config check with a typo: exit 25" 25 kc config check --json
assert_true -m "... the problem: does not load, at FILE:LINE" \
	grep -qF "$T_CONF:2: unknown key 'auht'" <<<"$(problems does-not-load)"
assert_exit -m "config check, text: exit 25" 25 kc config check
assert_stdout_contains -m "... lists the error" "error: $T_CONF:2: unknown key 'auht' in [azure-kv]"

(umask 022 && echo token >"$T/vault-token.0644" && echo ca >"$T/ca.pem.0664")
chmod 0664 "$T/ca.pem.0664"
(umask 077 && echo token >"$T/vault-token")
conf "[file]" "allowed-paths = $K0 $T/gone.bin" \
	"[vault-transit]" "allowed-hosts = vault.example:8200, [::1]:8200 10.0.0.1" \
	"allowed-hosts = https://vault.example:8200 *.vault.example" \
	"token-file = $T/vault-token.0644" "ca-file = $T/ca.pem.0664" \
	"[azure-kv]" "allowed-hosts = kv.vault.azure.net:99999" \
	"client-secret-file = $T/vault-token" \
	"[pkcs11]" "allowed-modules = $T/no-such-module.so"
assert_exit -m "config check with problems in what it names: exit 25" 25 kc config check --json
assert_true -m "... a KEK file in allowed-paths that does not exist" \
	grep -qF "[file] allowed-paths of $T_CONF: '$T/gone.bin' does not exist" <<<"$(problems missing)"
assert_true -m "... a PKCS#11 module that does not exist" \
	grep -qF "'$T/no-such-module.so' does not exist" <<<"$(problems missing)"
assert_true -m "... a token file readable by others (chmod 600)" \
	grep -qF "'$T/vault-token.0644' is accessible by group or others (mode 0644); chmod 600 it" \
	<<<"$(problems unusable)"
assert_true -m "... a CA file writable by the group" \
	grep -qF "'$T/ca.pem.0664' is writable by group or others (mode 0664)" <<<"$(problems unusable)"
assert_true -m "... an allowed-hosts entry with a scheme" \
	grep -qF "'https://vault.example:8200' is not HOST or HOST:PORT" <<<"$(problems bad-entry)"
assert_true -m "... a wildcard" grep -qF "'*.vault.example' is not HOST" <<<"$(problems bad-entry)"
assert_true -m "... a port out of range" grep -qF "'kv.vault.azure.net:99999' is not HOST" \
	<<<"$(problems bad-entry)"
assert_eq -m "... and nothing else (the good entries, the private file: no problem)" 7 \
	"$(json_get "$OUT" 'len(d["problems"])')"
assert_exit -m "verify with that configuration still works (problems of unused parts)" 0 \
	kc verify "$IMG"

conf "${GOOD[@]}"
chmod 0644 "$T_CONF"
assert_exit -m "config check of a configuration readable by others: exit 14" 14 kc config check
assert_stdout_contains -m "... says so" "is accessible by group or others (mode 0644)"
chmod 0600 "$T_CONF"
assert_exit -m "config check --config of a file that does not exist: exit 3" 3 \
	kc config check --config "$T/none.conf"
assert_exit -m "config without 'check': exit 2" 2 kc config
assert_exit -m "config frob: exit 2" 2 kc config frob

# --- doctor runs the same check ----------------------------------------------------------------
echo "v $IMG none luks" >"$T/crypttab"
conf "[azure-kv]" "auht = managed-identity"
assert_exit -m "doctor with a typo in the configuration: exit 24" 24 \
	kc doctor --crypttab "$T/crypttab" --initramfs "$T/none.img"
assert_stdout_contains -m "... reports the configuration broken" "configuration $T_CONF: BROKEN"
assert_stdout_contains -m "... with the error at FILE:LINE" "error: $T_CONF:2: unknown key 'auht'"
conf "${GOOD[@]}" "[vault-transit]" "allowed-hosts = https://vault.example" \
	"token-file = $T/vault-token.0644"
assert_exit -m "doctor --json with an unsafe token file and a bad allowed-hosts entry: exit 24" 24 \
	kc doctor --json --crypttab "$T/crypttab" --initramfs "$T/none.img"
assert_eq -m "... both among config_problems, as errors" "2 error error" \
	"$(json_get "$OUT" '" ".join([str(len(d["config_problems"]))] + [p["severity"] for p in d["config_problems"]])')"
assert_true -m "... the token file named" grep -qF "$T/vault-token.0644" <<<"$(json_get "$OUT" 'd["config_problems"]')"

# --- the example configuration -----------------------------------------------------------------
# Every setting ("#key = value", "#[section]") uncommented; prose ("# text") dropped.
(umask 077 && sed -n 's/^#\([a-z[]\)/\1/p' "$EX" >"$T/example.conf")
assert_true -m "the example has settings" test "$(wc -l <"$T/example.conf")" -gt 30
assert_exit -m "config check of the example, uncommented: it loads (its files do not exist here)" \
	25 kc config check --config "$T/example.conf" --json
assert_eq -m "... no section or key kekcrypt does not know" "" "$(problems does-not-load)"
assert_eq -m "... only problems of the files it names (missing or unsafe)" 0 \
	"$(json_get "$OUT" 'len([p for p in d["problems"] if p["problem"] not in ("missing", "unusable")])')"
assert_exit 0 kc kek providers --json
names=$(json_get "$OUT" '" ".join(p["name"] for p in d["providers"])')
for section in $names; do
	assert_true -m "the example has a section [$section]" grep -qxF "#[$section]" "$EX"
	# The keys the provider takes, from the error an unknown one gives: each is documented
	# (as a setting) in the example's section.
	conf "[$section]" "x-unknown = 1"
	run kc config check --json
	keys=$(json_get "$OUT" 'd["problems"][0]["message"].split("it takes: ")[1]' | tr -d ',')
	for k in $keys; do
		assert_true -m "the example documents [$section] $k" python3 -c '
import re, sys
text = open(sys.argv[1]).read().split("\n#[" + sys.argv[2] + "]\n")[1].split("\n#[")[0]
sys.exit(0 if re.search("^#" + re.escape(sys.argv[3]) + " = ", text, re.M) else 1)' \
			"$EX" "$section" "$k"
	done
done
done_testing
