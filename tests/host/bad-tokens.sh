#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Malformed kekcrypt tokens in an otherwise valid LUKS2 header (made by gen-bad-tokens.sh):
# verify fails with exit 9 (malformed; 3 for an unknown provider) naming the token and the
# defect, never crashes, never writes; dump still works and shows the token INVALID with the
# reason. One valgrind run takes every variant through verify and the header description
# dump shows (tests/unit/verify-images, one process); KC_VALGRIND=all (`make check-valgrind`)
# runs each variant's `kekcrypt verify` and `dump --json` under valgrind too, KC_VALGRIND=0
# none (the ASan build).
. "$(dirname "$0")/lib.sh"

T=$T_DIR
HERE=$KC_SRCDIR/tests/host
KEK=$T/kek.bin
GOOD=$T/good.img
new_kek "$KEK"
new_img "$GOOD"
format_img "$GOOD" "$KEK"

VALGRIND=()
if [ "${KC_VALGRIND:-1}" != 0 ]; then
	if command -v valgrind >/dev/null 2>&1; then
		VALGRIND=(valgrind --error-exitcode=99 -q --leak-check=full --show-leak-kinds=definite
			--errors-for-leak-kinds=definite)
	else
		diag "valgrind is not installed (apt-get install valgrind): memory checks not run"
	fi
fi
IMAGES=()

bash "$HERE/gen-bad-tokens.sh" "$GOOD" "$KEK" "$T/gen"
assert_true -m "the generator produced at least 40 variants" \
	test "$(wc -l <"$T/gen/cases.tsv")" -ge 40
while IFS=$'\t' read -r name why; do
	diag "variant $name not tested: $why"
done <"$T/gen/skipped.tsv"

# check_variant NAME IMG CODE DEFECT DESCRIPTION
# CODE 0: a good token; 8: well-formed but wrong (dump, which unwraps nothing, shows it valid);
# otherwise malformed (dump shows it INVALID with the reason).
check_variant() {
	local name=$1 img=$2 code=$3 defect=$4 desc=$5 sum malformed=1
	local d="$name ($desc)"
	case $code in 0 | 8) malformed=0 ;; esac
	sum=$(header_sum "$img")
	assert_exit -m "$d: verify exits $code" "$code" kc verify "$img"
	assert_true -m "$d: verify did not crash (exit $RC < 128)" test "$RC" -lt 128
	if [ "$code" != 0 ]; then
		assert_stderr_contains -m "$d: verify names the token" "token 0"
		assert_stderr_contains -m "$d: verify names the defect ('$defect')" "$defect"
		assert_stderr_contains -m "$d: verify names the device" "$img"
	fi
	assert_exit -m "$d: dump still works" 0 kc dump "$img"
	if [ "$malformed" = 1 ]; then
		assert_stdout_contains -m "$d: dump shows token 0 INVALID" "0: INVALID: "
		assert_contains -m "$d: dump gives the reason ('$defect')" \
			"$(grep 'INVALID' "$OUT" || :)" "$defect"
	else
		assert_contains -m "$d: dump shows token 0 valid" "$(cat "$OUT")" "0: file:"
	fi
	assert_exit -m "$d: dump --json still works" 0 kc dump --json "$img"
	if [ "$malformed" = 1 ]; then
		assert_eq -m "$d: dump --json: valid false" false "$(json_get "$OUT" 'd["tokens"][0]["valid"]')"
		assert_contains -m "$d: dump --json: problem names the defect" \
			"$(json_get "$OUT" 'd["tokens"][0].get("problem", "")')" "$defect"
	else
		assert_eq -m "$d: dump --json: valid true" true "$(json_get "$OUT" 'd["tokens"][0]["valid"]')"
	fi
	assert_exit -m "$d: kek list still works" 0 kc kek list "$img"
	IMAGES+=("$img")
	if [ "${#VALGRIND[@]}" -gt 0 ] && [ "${KC_VALGRIND:-}" = all ]; then
		assert_exit -m "$d: verify under valgrind: exit $code, no memory error" "$code" \
			kc_tool "${VALGRIND[@]}" -- verify "$img"
		assert_exit -m "$d: dump --json under valgrind: no memory error" 0 \
			kc_tool "${VALGRIND[@]}" -- dump --json "$img"
	fi
	assert_header_unchanged -m "$d: header unchanged" "$img" "$sum"
}

while IFS=$'\t' read -r name code defect desc; do
	check_variant "$name" "$T/gen/$name.img" "$code" "$defect" "$desc"
done <"$T/gen/cases.tsv"

# --- well-formed tokens with the wrong content -------------------------------------------------
IMG=$T/tampered.img
cp --sparse=always "$GOOD" "$IMG"
token_edit "$IMG" 0 't["kekcrypt-wrapped-key"] = base64.b64encode(os.urandom(72)).decode()'
check_variant tampered "$IMG" 8 "integrity check" "a random 72-byte wrapped key"

# The token of another volume wrapped by the same KEK: unwraps fine, fails the digest check.
OTHER=$T/other.img
new_img "$OTHER"
format_img "$OTHER" "$KEK"
IMG=$T/transplant.img
cp --sparse=always "$GOOD" "$IMG"
cryptsetup token export --token-id 0 "$OTHER" >"$T/other.json"
token_replace "$IMG" 0 "$T/other.json"
check_variant transplant "$IMG" 8 "does not match this volume" "token copied from another volume"

# Every variant above, under valgrind in one process.
if [ "${#VALGRIND[@]}" -gt 0 ]; then
	DRIVER=$(dirname "$KEKCRYPT")/tests/unit/verify-images
	assert_exit -m "valgrind: the ${#IMAGES[@]} variants through verify and dump, one process" 0 \
		"$(dirname "$KEKCRYPT")/libtool" --mode=execute "${VALGRIND[@]}" \
		"$DRIVER" "$T_CONF" "${IMAGES[@]}"
	assert_eq -m "... each of them read" "${#IMAGES[@]}" "$(grep -c ': verify ' "$OUT")"
fi

# A bad token 0 does not stop a good token 1.
IMG=$T/bad-then-good.img
new_img "$IMG"
K1=$T/kek1.bin
new_kek "$K1"
format_img "$IMG" "$KEK" "$K1"
token_edit "$IMG" 0 't["kekcrypt-wrapped-key"] = "!!!!"'
sum=$(header_sum "$IMG")
assert_exit -m "bad token 0, good token 1: verify succeeds" 0 kc verify "$IMG"
assert_stdout_contains -m "... through token 1" "token 1 (file:$K1)"
assert_exit -m "bad token 0, good token 1: verify --token 0 exits 9" 9 kc verify "$IMG" --token 0
assert_stderr_contains -m "... naming the defect" "base64"
assert_exit -m "bad token 0, good token 1: kek add works through token 1" 0 \
	kc kek add "$IMG" --kek "file:$T/kek.bin"
assert_exit -m "bad token 0 can be removed (another token remains)" 0 kc kek remove "$IMG" --token 0
assert_exit -m "... and the volume still verifies" 0 kc verify "$IMG"

# The error text is read by people: the token is named once, not "token 0: token 0: ...".
IMG=$T/gen/b64-space.img
run kc verify "$IMG"
assert_not_contains -m "verify does not repeat the token prefix" "$(cat "$ERR")" "token 0: token 0"
run kc dump "$IMG"
assert_not_contains -m "dump does not repeat the token prefix" "$(cat "$OUT")" "INVALID: token 0: "

# The header is anyone's to write: dump must not pass terminal control sequences through.
IMG=$T/escape.img
cp --sparse=always "$GOOD" "$IMG"
token_edit "$IMG" 0 't["kekcrypt-key-id"] = "file:/tmp/\u001b]0;owned\u0007\u001b[2J\u001b[31mred"'
run kc dump "$IMG"
assert_true -m "dump with an escape sequence in the key-id: exit < 128" test "$RC" -lt 128
assert_true -m "dump does not print raw control characters from the header" \
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(any(c < 32 and c not in (9, 10) for c in d))' "$OUT"
run kc verify "$IMG"
assert_true -m "verify does not print raw control characters from the header" \
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(any(c < 32 and c not in (9, 10) for c in d))' "$ERR"

done_testing
