#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# PKCS#11 KEKs in SoftHSM2 (tests/fixtures/softhsm-setup.sh: token "kekcrypt-test" with AES
# keys "kek-aes", "kek-aes-2" and the RSA pair "kek-rsa"): format and verify with an AES and an
# RSA KEK, both on one volume, mixed with a file KEK; wrong PIN -> 7, no pin-source -> 6,
# no such object -> 3, a token whose key-id names another AES key -> 8. Every failure names the
# device and the cause and leaves the header unchanged.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
if ! have_pkcs11; then
	# Not a skip: the provider is part of kekcrypt (lib/providers/pkcs11.c).
	echo "not ok 1 - kekcrypt has no PKCS#11 provider: 'pkcs11:' URIs are an unsupported scheme (exit 15)"
	T_DONE=1
	exit 1
fi
src=0
softhsm_setup "$T/hsm" || src=$?
[ "$src" = 77 ] && skip_all "SoftHSM2 or pkcs11-tool is missing (apt-get install softhsm2 opensc)"
[ "$src" = 0 ] || {
	echo "not ok 1 - tests/fixtures/softhsm-setup.sh failed (exit $src)"
	T_DONE=1
	exit 1
}
diag "SOFTHSM2_CONF=$SOFTHSM2_CONF module=$KC_P11_MODULE"

# The PIN file the tokens name is a private copy, so that it can be made wrong and restored.
PIN=$T/pin
cp "$KC_P11_PIN_FILE" "$PIN"
chmod 0600 "$PIN"
policy_allow pkcs11 allowed-pin-files "$PIN"
p11() { # p11 OBJECT [PIN-SOURCE-PATH | ""]
	local u="pkcs11:token=kekcrypt-test;object=$1?module-path=$KC_P11_MODULE"
	[ -z "${2-$PIN}" ] || u+="&pin-source=file:${2-$PIN}"
	echo "$u"
}
AES=$(p11 kek-aes)
AES2=$(p11 kek-aes-2)
RSA=$(p11 kek-rsa)
KEK=$T/kek.bin
new_kek "$KEK"

# fails [-m DESC] CODE IMG CAUSE CMD... (as in bad-input.sh)
fails() {
	local desc="" code img cause sum
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	code=$1 img=$2 cause=$3
	shift 3
	sum=$(header_sum "$img")
	assert_exit -m "$desc: exit $code" "$code" "$@"
	assert_stderr_contains -m "$desc: message names the device" "$img"
	assert_stderr_contains -m "$desc: message names the cause ('$cause')" "$cause"
	assert_header_unchanged -m "$desc: header unchanged" "$img" "$sum"
}

# --- AES KEK ------------------------------------------------------------------------------------
A=$T/aes.img
new_img "$A"
assert_exit -m "format with the SoftHSM AES KEK" 0 kc format -q "$A" --kek "$AES"
assert_exit -m "verify with the AES KEK" 0 kc verify "$A"
assert_stdout_contains -m "verify names token 0 and the PKCS#11 URI" "token 0 ($AES)"
assert_exit 0 kc dump --json "$A"
cp "$OUT" "$T/aes.json"
assert_eq -m "dump: provider pkcs11" pkcs11 "$(json_get "$T/aes.json" 'd["tokens"][0]["provider"]')"
assert_eq -m "dump: the URI" "$AES" "$(json_get "$T/aes.json" 'd["tokens"][0]["kek"]')"
assert_contains -m "dump: an AES key wrap algorithm" \
	"$(json_get "$T/aes.json" 'd["tokens"][0]["wrap_alg"]')" "A256KW"
assert_exit -m "cryptsetup accepts the header" 0 cryptsetup isLuks --type luks2 "$A"
assert_eq -m "the token in the header is of type kekcrypt" kekcrypt \
	"$(cryptsetup token export --token-id 0 "$A" | python3 -c 'import json, sys; print(json.load(sys.stdin)["type"])')"

# --- RSA KEK ------------------------------------------------------------------------------------
R=$T/rsa.img
new_img "$R"
assert_exit -m "format with the SoftHSM RSA KEK" 0 kc format -q "$R" --kek "$RSA"
assert_exit -m "verify with the RSA KEK" 0 kc verify "$R"
assert_stdout_contains -m "verify names token 0 and the RSA URI" "token 0 ($RSA)"
assert_exit 0 kc dump --json "$R"
assert_contains -m "dump: an RSA-OAEP wrap algorithm" "$(json_get "$OUT" 'd["tokens"][0]["wrap_alg"]')" "RSA-OAEP"
assert_true -m "dump: an RSA-3072 ciphertext (384 bytes)" \
	test "$(json_get "$OUT" 'd["tokens"][0]["wrapped_bytes"]')" = 384

# --- both on one volume, and with a file KEK ---------------------------------------------------------
B=$T/both.img
new_img "$B"
assert_exit -m "format with the AES and the RSA KEK" 0 kc format -q "$B" --kek "$AES" --kek "$RSA"
assert_exit -m "verify --token 0 (AES)" 0 kc verify "$B" --token 0
assert_stdout_contains "token 0 ($AES)"
assert_exit -m "verify --token 1 (RSA)" 0 kc verify "$B" --token 1
assert_stdout_contains "token 1 ($RSA)"
assert_exit -m "kek add a file KEK to the HSM volume" 0 kc kek add "$B" --kek "file:$KEK"
assert_exit -m "verify --token 2 (file)" 0 kc verify "$B" --token 2
unwrap_dek "$B" 2 "$KEK" "$T/dek-b"
F=$T/file.img
new_img "$F"
format_img "$F" "$KEK"
assert_exit -m "kek add the AES-2 KEK to a file-KEK volume" 0 kc kek add "$F" --kek "$AES2"
assert_exit -m "verify --token 1 (AES-2)" 0 kc verify "$F" --token 1
assert_stdout_contains "token 1 ($AES2)"

# --- wrong PIN -> 7 ------------------------------------------------------------------------------------
cp "$PIN" "$T/pin.good"
printf '%s\n' "not-the-pin-$RANDOM" >"$PIN"
fails -m "verify with a wrong PIN in the PIN file" 7 "$A" "PIN" kc verify "$A"
assert_stderr_contains -m "wrong PIN: names the token" "token 0"
fails -m "kek add with a wrong PIN" 7 "$A" "PIN" kc kek add "$A" --kek "file:$KEK"
fails -m "kek add of an HSM KEK with a wrong PIN (file token unlocks)" 7 "$F" "PIN" \
	kc kek add "$F" --kek "$AES"
Z=$T/zero.img
new_img "$Z"
assert_exit -m "format with a wrong PIN: exit 7" 7 kc format -q "$Z" --kek "$AES"
assert_true -m "format with a wrong PIN wrote nothing" is_all_zero "$Z"
cp "$T/pin.good" "$PIN"
chmod 0600 "$PIN"
assert_exit -m "the right PIN again: verify works" 0 kc verify "$A"
assert_exit -m "kek remove the file token; the HSM token remains" 0 kc kek remove "$F" --token 0
assert_exit -m "verify through the HSM alone" 0 kc verify "$F"

# --- no pin-source -> 6 ------------------------------------------------------------------------------
NOPIN=$(p11 kek-aes "")
assert_exit -m "format with a URI without pin-source: exit 6" 6 kc format -q "$Z" --kek "$NOPIN"
assert_stderr_contains -m "... saying a PIN is required" "PIN"
assert_stderr_contains -m "... naming the device" "$Z"
assert_true -m "... nothing written" is_all_zero "$Z"
NP=$T/nopin.img
cp --sparse=always "$A" "$NP"
token_edit "$NP" 0 "t['kekcrypt-key-id'] = '$NOPIN'"
fails -m "verify with a token whose URI has no pin-source" 6 "$NP" "PIN" kc verify "$NP"

# --- no such object -> 3 --------------------------------------------------------------------------------
NOOBJ=$(p11 kek-nosuch)
assert_exit -m "format with an object that does not exist: exit 3" 3 kc format -q "$Z" --kek "$NOOBJ"
assert_stderr_contains -m "... naming the object" "kek-nosuch"
assert_stderr_contains -m "... naming the device" "$Z"
assert_true -m "... nothing written" is_all_zero "$Z"
NO=$T/noobj.img
cp --sparse=always "$A" "$NO"
token_edit "$NO" 0 "t['kekcrypt-key-id'] = '$NOOBJ'"
fails -m "verify with a token naming an object that does not exist" 3 "$NO" "kek-nosuch" kc verify "$NO"
fails -m "kek add with an object that does not exist" 3 "$F" "kek-nosuch" kc kek add "$F" --kek "$NOOBJ"

# --- another AES key -> 8 -------------------------------------------------------------------------------
SW=$T/swapped.img
cp --sparse=always "$A" "$SW"
token_edit "$SW" 0 "t['kekcrypt-key-id'] = '$AES2'"
fails -m "verify with the token's key-id swapped to kek-aes-2" 8 "$SW" "token 0" kc verify "$SW"
assert_stderr_contains -m "... naming kek-aes-2" "kek-aes-2"
assert_exit -m "the unswapped volume still verifies" 0 kc verify "$A"

done_testing
