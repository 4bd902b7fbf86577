#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kek rotate: under the same key (file KEK), --to another file KEK, --to a PKCS#11 key in
# SoftHSM2 and back, --all with two tokens, --dry-run writes nothing, and a new KEK that is
# missing, unreachable or of an unknown scheme leaves the old token in place and the header
# byte-identical. Every rotation keeps the token's ID (five in a row, and --all, checked with
# `kek list --json`). The DEK never changes (checked with an independent RFC 5649 unwrap), no
# keyslot is added or lost, and no rotation mark is left behind.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
K1=$T/kek1.bin
new_kek "$K0"
new_kek "$K1"
new_img "$IMG"
format_img "$IMG" "$K0"
unwrap_dek "$IMG" 0 "$K0" "$T/dek"

meta() {
	cryptsetup luksDump --dump-json-metadata "$IMG" >"$T/meta.json"
}
# tokens: "ID:KEK ..." of the kekcrypt tokens in the header
tokens() {
	meta
	json_get "$T/meta.json" '" ".join("%s:%s" % (k, v["kekcrypt-key-id"]) for k, v in sorted(d["tokens"].items()) if v["type"] == "kekcrypt")'
}
no_marks() {
	meta
	json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if any(x.startswith("kekcrypt-rotat") for x in v)]'
}

# --- same key ---------------------------------------------------------------------------------
assert_exit -m "rotate the only token under the same file KEK" 0 kc kek rotate "$IMG"
assert_stdout_contains -m "... reports the token, its ID kept" "token 0 rotated from file:$K0 to file:$K0"
assert_eq -m "one token left, under the same KEK, with the same ID" "0:file:$K0" "$(tokens)"
assert_eq -m "no rotation mark left" "[]" "$(no_marks)"
assert_eq -m "the keyslot is kept (shared by the new token)" '["0"]' "$(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_eq -m "the new token is bound to it" '["0"]' "$(json_get "$T/meta.json" 'd["tokens"]["0"]["keyslots"]')"
unwrap_dek "$IMG" 0 "$K0" "$T/dek1"
assert_true -m "the DEK is unchanged" cmp -s "$T/dek" "$T/dek1"
assert_exit 0 kc verify "$IMG"
assert_stdout_contains -m "verify uses the token" "token 0 (file:$K0)"
assert_exit -m "cryptsetup still accepts the header" 0 cryptsetup isLuks --type luks2 "$IMG"

# --- --to another file KEK, JSON ----------------------------------------------------------------
assert_exit -m "rotate --to another file KEK --json" 0 kc kek rotate "$IMG" --to "file:$K1" --json
cp "$OUT" "$T/rot.json"
assert_eq -m "json: old token 0" 0 "$(json_get "$T/rot.json" 'd["rotated"][0]["old_token"]')"
assert_eq -m "json: new token 0 (the ID is kept)" 0 "$(json_get "$T/rot.json" 'd["rotated"][0]["new_token"]')"
assert_eq -m "json: new KEK" "file:$K1" "$(json_get "$T/rot.json" 'd["rotated"][0]["new_kek"]')"
assert_eq -m "json: not a dry run" false "$(json_get "$T/rot.json" 'd["dry_run"]')"
assert_eq -m "the token is now under KEK 1 only" "0:file:$K1" "$(tokens)"
unwrap_dek "$IMG" 0 "$K1" "$T/dek2"
assert_true -m "KEK 1 unwraps the same DEK" cmp -s "$T/dek" "$T/dek2"
mv "$K0" "$K0.away"
assert_exit -m "the old KEK is no longer needed" 0 kc verify "$IMG"
mv "$K0.away" "$K0"

# --- five rotations in a row keep the ID ---------------------------------------------------------
kek_ids() {
	kc kek list --json "$IMG" >"$T/list.json"
	json_get "$T/list.json" '" ".join("%d:%s" % (t["id"], t["kek"]) for t in d["tokens"])'
}
before=$(kek_ids)
assert_eq -m "before: token 0 under KEK 1" "0:file:$K1" "$before"
for i in 1 2 3 4 5; do
	to=$K0
	[ $((i % 2)) = 0 ] && to=$K1
	assert_exit -m "rotation $i of 5 (--to file:${to##*/})" 0 kc kek rotate "$IMG" --to "file:$to"
done
assert_eq -m "after five rotations: still token 0, now under KEK 0" "0:file:$K0" "$(kek_ids)"
assert_exit -m "... back to KEK 1" 0 kc kek rotate "$IMG" --to "file:$K1"
assert_eq -m "... token 0 under KEK 1" "$before" "$(kek_ids)"
assert_eq -m "no rotation mark left" "[]" "$(no_marks)"
assert_eq -m "one keyslot" 1 "$(json_get "$T/meta.json" 'len(d["keyslots"])')"

# --- failures leave the old token in place ------------------------------------------------------
fails_in_place() { # DESC CODE CAUSE ARGS...
	local desc=$1 code=$2 cause=$3 sum
	shift 3
	sum=$(header_sum "$IMG")
	assert_exit -m "$desc: exit $code" "$code" kc kek rotate "$IMG" "$@"
	assert_stderr_contains -m "$desc: says the token is left in place" "token 0 ('file:$K1') not rotated, left in place"
	assert_stderr_contains -m "$desc: names the cause" "$cause"
	assert_header_unchanged -m "$desc: header unchanged" "$IMG" "$sum"
}
fails_in_place "nonexistent KEK file" 3 "$T/nope.bin" --to "file:$T/nope.bin"
head -c 32 /dev/urandom >"$T/open.bin"
chmod 0644 "$T/open.bin"
fails_in_place "world-readable KEK file" 14 "$T/open.bin" --to "file:$T/open.bin"
head -c 20 /dev/urandom | base64 >"$T/vault-token"
chmod 0600 "$T/vault-token"
printf '[vault-transit]\ntoken-file = %s\nmax-attempts = 1\n' "$T/vault-token" >"$T/kc.conf"
chmod 0600 "$T/kc.conf"
fails_in_place "KMS the config does not allow" 14 "allowed-hosts = 127.0.0.1:1" \
	--config "$T/kc.conf" --to "vault-transit+https://127.0.0.1:1/v1/transit/keys/kek"
echo "allowed-hosts = 127.0.0.1:1" >>"$T/kc.conf"
fails_in_place "unreachable KMS" 4 "unreachable" --config "$T/kc.conf" \
	--to "vault-transit+https://127.0.0.1:1/v1/transit/keys/kek"
sum=$(header_sum "$IMG")
assert_exit -m "unsupported scheme: exit 15" 15 kc kek rotate "$IMG" --to "kmip://127.0.0.1/1"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
mv "$K1" "$K1.away"
fails_in_place "old KEK missing (cannot unwrap)" 3 "$K1" --to "file:$K0"
mv "$K1.away" "$K1"
assert_exit -m "still verifies with KEK 1" 0 kc verify "$IMG"

# --- dry run --------------------------------------------------------------------------------------
sum=$(header_sum "$IMG")
assert_exit -m "--dry-run --to KEK 0" 0 kc kek rotate "$IMG" --to "file:$K0" --dry-run
assert_stdout_contains -m "... says nothing was written" "nothing written"
assert_header_unchanged -m "--dry-run writes nothing" "$IMG" "$sum"
assert_exit -m "--dry-run --json" 0 kc kek rotate "$IMG" --dry-run --json
assert_eq -m "json: dry_run true" true "$(json_get "$OUT" 'd["dry_run"]')"
assert_header_unchanged -m "--dry-run --json writes nothing" "$IMG" "$sum"
assert_exit -m "--dry-run to a missing KEK fails (exit 3)" 3 kc kek rotate "$IMG" --to "file:$T/nope.bin" --dry-run
assert_header_unchanged -m "... and writes nothing" "$IMG" "$sum"

# --- two tokens: --all, and the choice of token ---------------------------------------------------
assert_exit -m "kek add KEK 0 as a second token" 0 kc kek add "$IMG" --kek "file:$K0"
assert_eq "0:file:$K1 1:file:$K0" "$(tokens)"
sum=$(header_sum "$IMG")
assert_exit -m "two tokens, no --token nor --all: usage error" 2 kc kek rotate "$IMG"
assert_stderr_contains -m "... asking for --token or --all" "--all"
assert_exit -m "--all with --to: usage error" 2 kc kek rotate "$IMG" --all --to "file:$K0"
assert_exit -m "--token and --all: usage error" 2 kc kek rotate "$IMG" --all --token 0
assert_exit -m "--token of a missing token: exit 3" 3 kc kek rotate "$IMG" --token 7
assert_header_unchanged -m "none of these wrote anything" "$IMG" "$sum"
before=$(kek_ids)
assert_exit -m "rotate --all" 0 kc kek rotate "$IMG" --all --json
assert_eq -m "json: two tokens rotated" 2 "$(json_get "$OUT" 'len(d["rotated"])')"
assert_eq -m "json: each kept its ID" "0:0 1:1" \
	"$(json_get "$OUT" '" ".join("%d:%d" % (t["old_token"], t["new_token"]) for t in d["rotated"])')"
assert_eq -m "rotate --all: the same IDs under the same KEKs (kek list)" "$before" "$(kek_ids)"
for i in 2 3; do
	assert_exit -m "rotate --all, round $i" 0 kc kek rotate "$IMG" --all
done
assert_eq -m "... IDs still kept" "$before" "$(kek_ids)"
assert_eq -m "no rotation mark left" "[]" "$(no_marks)"
assert_eq -m "still two keyslots" 2 "$(json_get "$T/meta.json" 'len(d["keyslots"])')"
for tok in $(json_get "$T/meta.json" '" ".join(sorted(d["tokens"]))'); do
	assert_exit -m "token $tok verifies after --all" 0 kc verify "$IMG" --token "$tok"
done
assert_exit -m "rotate --token 0 (KEK 1 -> same key)" 0 kc kek rotate "$IMG" --token 0
assert_exit 0 kc kek list --json "$IMG"
assert_eq -m "kek list: still two valid tokens" "[true, true]" "$(json_get "$OUT" '[t["valid"] for t in d["tokens"]]')"

# --- PKCS#11 (SoftHSM2) -------------------------------------------------------------------------
src=0
if have_pkcs11; then
	softhsm_setup "$T/hsm" || src=$?
else
	src=15
fi
if [ "$src" = 0 ]; then
	cp "$KC_P11_PIN_FILE" "$T/pin"
	chmod 0600 "$T/pin"
	policy_allow pkcs11 allowed-pin-files "$T/pin"
	P11="pkcs11:token=kekcrypt-test;object=kek-aes?module-path=$KC_P11_MODULE&pin-source=file:$T/pin"
	P11RSA="pkcs11:token=kekcrypt-test;object=kek-rsa?module-path=$KC_P11_MODULE&pin-source=file:$T/pin"
	P=$T/p11.img
	new_img "$P"
	format_img "$P" "$K0"
	unwrap_dek "$P" 0 "$K0" "$T/dek-p"
	IMG=$P
	assert_exit -m "rotate a file KEK token --to an AES key in SoftHSM2" 0 kc kek rotate "$P" --to "$P11"
	assert_eq -m "the token is now the PKCS#11 one, same ID" "0:$P11" "$(tokens)"
	mv "$K0" "$K0.away"
	assert_exit -m "the HSM alone opens it" 0 kc verify "$P"
	mv "$K0.away" "$K0"
	assert_exit -m "rotate the PKCS#11 token under the same HSM key" 0 kc kek rotate "$P"
	assert_eq -m "... one token, same key" "0:$P11" "$(tokens)"
	assert_exit -m "rotate --to the RSA key in SoftHSM2" 0 kc kek rotate "$P" --to "$P11RSA"
	assert_exit -m "... verifies" 0 kc verify "$P"
	assert_stdout_contains -m "... through the RSA key" "kek-rsa"
	cp "$T/pin" "$T/pin.good"
	echo 0000 >"$T/pin"
	sum=$(header_sum "$P")
	assert_exit -m "HSM PIN rejected: rotating back to the file KEK fails (exit 7)" 7 kc kek rotate "$P" --to "file:$K0"
	assert_header_unchanged -m "... header unchanged" "$P" "$sum"
	cp "$T/pin.good" "$T/pin"
	assert_exit -m "rotate back --to the file KEK" 0 kc kek rotate "$P" --to "file:$K0"
	assert_eq -m "... only the file token is left" "0:file:$K0" "$(tokens)"
	unwrap_dek "$P" 0 "$K0" "$T/dek-p2"
	assert_true -m "after file -> AES HSM -> RSA HSM -> file, the DEK is the same" cmp -s "$T/dek-p" "$T/dek-p2"
	assert_eq -m "no rotation mark left" "[]" "$(no_marks)"
elif [ "$src" = 77 ]; then
	ok "PKCS#11 rotation # SKIP SoftHSM2 or pkcs11-tool is missing (apt-get install softhsm2 opensc)"
else
	not_ok "PKCS#11 rotation: SoftHSM2 setup failed or no PKCS#11 provider (status $src)"
fi

# --- Vault Transit (protocol fixture): rotation without --to uses Vault's rewrap --------------
if command -v node >/dev/null 2>&1; then
	"$FIX/tls.sh" "$T/tls" >/dev/null
	VTOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
	(umask 077 && echo "$VTOKEN" >"$T/vtoken" &&
		printf '[vault-transit]\nauth = token\ntoken-file = %s\nca-file = %s\nallowed-hosts = 127.0.0.1\n' \
			"$T/vtoken" "$T/tls/ca.pem" >"$T/vault.conf")
	# Stopped with the test (fixture_start, tests/host/lib.sh); sets vault_PORT.
	fixture_start vault node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "$VTOKEN" \
		--key k1 --key k2
	# shellcheck disable=SC2154 # fixture_start sets NAME_PORT (printf -v)
	VP=$vault_PORT
	vctl() { # METHOD PATH [BODY]
		curl -sf --cacert "$T/tls/ca.pem" -X "$1" -H 'Content-Type: application/json' \
			${3:+-d "$3"} "https://127.0.0.1:$VP$2"
	}
	VU=vault-transit+https://127.0.0.1:$VP/v1/transit/keys/k1
	VU2=vault-transit+https://127.0.0.1:$VP/v1/transit/keys/k2
	V=$T/vault.img
	IMG=$V
	new_img "$V"
	assert_exit -m "format under Vault key k1 (version 1)" 0 kc format -q --config "$T/vault.conf" "$V" --kek "$VU"
	vctl POST /_fixture/rotate '{"key": "k1"}' >/dev/null
	vctl POST /_fixture/reset >/dev/null
	assert_exit -m "Vault rotated k1: kek rotate" 0 kc kek rotate --config "$T/vault.conf" "$V" --json
	assert_eq -m "json: from key version 1 to 2" "1 2" \
		"$(json_get "$OUT" 'd["rotated"][0]["old_key_version"]') $(json_get "$OUT" 'd["rotated"][0]["new_key_version"]')"
	vctl GET /_fixture/counters >"$T/counters.json"
	assert_eq -m "Vault: one rewrap, no encrypt (the DEK did not leave Vault for the wrap), one decrypt (the verification)" \
		"1 0 1" "$(json_get "$T/counters.json" '"%d %d %d" % (d["rewrap"], d["encrypt"], d["decrypt"])')"
	meta
	assert_eq -m "the token holds a vault:v2 ciphertext" "2" \
		"$(json_get "$T/meta.json" '[v["kekcrypt-key-version"] for v in d["tokens"].values()][0]')"
	assert_exit -m "it verifies" 0 kc verify --config "$T/vault.conf" "$V"
	assert_exit -m "kek rotate --to another Vault key" 0 kc kek rotate --config "$T/vault.conf" "$V" --to "$VU2"
	assert_eq -m "... the token is under k2" "0:$VU2" "$(tokens)"
	assert_exit -m "... and verifies" 0 kc verify --config "$T/vault.conf" "$V"
else
	ok "Vault Transit rotation # SKIP node is missing (apt-get install nodejs)"
fi

done_testing
