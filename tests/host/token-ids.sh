#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Every --token of a kekcrypt token accepts the token's ID or its KEK's URI: verify, kek
# rotate, kek remove, keyscript-passphrase. A URI no token has fails (exit 3); a URI that
# several tokens share is refused as ambiguous (exit 2, naming the IDs); something that is
# neither an ID nor a URI is a usage error. After a rotation by URI the token keeps its ID.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin K1=$T/kek1.bin K2=$T/kek2.bin
for k in "$K0" "$K1" "$K2"; do new_kek "$k"; done
new_img "$IMG"
assert_exit -m "format with two file KEKs" 0 kc format -q "$IMG" --kek "file:$K0" --kek "file:$K1"

# ids: "ID:KEK ..." from kek list --json
ids() {
	kc kek list --json "$IMG" >"$T/list.json"
	json_get "$T/list.json" '" ".join("%d:%s" % (t["id"], t["kek"]) for t in d["tokens"])'
}

assert_exit -m "verify --token URI of token 1" 0 kc verify "$IMG" --token "file:$K1" --json
assert_eq -m "... used token 1" 1 "$(json_get "$OUT" 'd["token"]')"
assert_exit -m "verify --token URI of token 0" 0 kc verify "$IMG" --token "file:$K0" --json
assert_eq -m "... used token 0" 0 "$(json_get "$OUT" 'd["token"]')"

sum=$(header_sum "$IMG")
assert_exit -m "verify --token with a URI no token has: exit 3" 3 kc verify "$IMG" --token "file:$K2"
assert_stderr_contains -m "... names the KEK" "no kekcrypt token for the KEK 'file:$K2'"
assert_exit -m "verify --token 'zero': usage error" 2 kc verify "$IMG" --token zero
assert_stderr_contains -m "... says what --token takes" "a token ID (0-31) or a KEK URI"
assert_exit -m "kek rotate --token with a URI no token has: exit 3" 3 \
	kc kek rotate "$IMG" --token "file:$K2" --to "file:$K2"
assert_header_unchanged -m "none of these wrote anything" "$IMG" "$sum"

assert_exit -m "kek rotate --token URI --to another KEK" 0 \
	kc kek rotate "$IMG" --token "file:$K1" --to "file:$K2" --json
assert_eq -m "... rotated token 1, which kept its ID" "1 1" \
	"$(json_get "$OUT" '"%d %d" % (d["rotated"][0]["old_token"], d["rotated"][0]["new_token"])')"
assert_eq -m "kek list: token 1 is now under KEK 2" "0:file:$K0 1:file:$K2" "$(ids)"

assert_exit -m "keyscript-passphrase --token URI" 0 \
	sh -c '"$1" keyscript-passphrase --config "$2" "$3" --token "$4" >"$5"' sh "$KEKCRYPT" \
	"$T_CONF" "$IMG" "file:$K2" "$T/pass"
assert_stderr_contains -m "... used token 1" "unlocked with token 1 (file:$K2)"

# Two tokens with the same KEK (token 0 copied as token 5): the URI is ambiguous.
cryptsetup token export --token-id 0 "$IMG" >"$T/t0.json"
cryptsetup token import --token-id 5 "$IMG" <"$T/t0.json"
sum=$(header_sum "$IMG")
assert_exit -m "two tokens under one KEK: verify --token URI is refused (exit 2)" 2 \
	kc verify "$IMG" --token "file:$K0"
assert_stderr_contains -m "... naming both tokens" "tokens 0, 5 of '$IMG' use this KEK"
assert_exit -m "... kek remove --token URI is refused too" 2 kc kek remove "$IMG" --token "file:$K0"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
assert_exit -m "kek remove --token 5 (by ID)" 0 kc kek remove "$IMG" --token 5
assert_exit -m "kek remove --token URI of token 1" 0 kc kek remove "$IMG" --token "file:$K2"
assert_stdout_contains -m "... removed token 1" "removed token 1"
assert_eq -m "token 0 is left" "0:file:$K0" "$(ids)"

done_testing
