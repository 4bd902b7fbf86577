#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Several KEKs on one volume: any token unlocks; losing one KEK leaves the others working;
# kek add / list / remove; the last unlock path is only removed with --force.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
K1=$T/kek1.bin
K2=$T/kek2.bin
new_kek "$K0"
new_kek "$K1"
new_kek "$K2"
new_img "$IMG"

# meta: cryptsetup's view of the header as JSON in $T/meta.json
meta() {
	cryptsetup luksDump --dump-json-metadata "$IMG" >"$T/meta.json"
}

assert_exit -m "format with two file KEKs" 0 kc format -q "$IMG" --kek "file:$K0" --kek "file:$K1"
assert_stdout_contains "with 2 KEKs"
meta
assert_eq -m "two tokens in the header" '["0", "1"]' "$(json_get "$T/meta.json" 'sorted(d["tokens"])')"
assert_eq -m "two keyslots in the header" '["0", "1"]' "$(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_eq -m "token 0 bound to keyslot 0" '["0"]' "$(json_get "$T/meta.json" 'd["tokens"]["0"]["keyslots"]')"
assert_eq -m "token 1 bound to keyslot 1" '["1"]' "$(json_get "$T/meta.json" 'd["tokens"]["1"]["keyslots"]')"
unwrap_dek "$IMG" 0 "$K0" "$T/dek0"
unwrap_dek "$IMG" 1 "$K1" "$T/dek1"
assert_true -m "both tokens wrap the same DEK" cmp -s "$T/dek0" "$T/dek1"
assert_true -m "the two wrapped keys differ" python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["tokens"]
sys.exit(t["0"]["kekcrypt-wrapped-key"] == t["1"]["kekcrypt-wrapped-key"])' "$T/meta.json"

assert_exit 0 kc verify "$IMG" --token 0
assert_stdout_contains -m "verify --token 0 used token 0 and KEK 0" "token 0 (file:$K0)"
assert_exit 0 kc verify "$IMG" --token 1
assert_stdout_contains -m "verify --token 1 used token 1 and KEK 1" "token 1 (file:$K1)"
assert_exit 0 kc verify "$IMG"
assert_stdout_contains -m "verify without --token uses the first token" "token 0 (file:$K0)"

# Lose KEK 1: token 0 still unlocks, token 1 alone does not.
mv "$K1" "$K1.saved"
assert_exit -m "KEK 1 deleted: verify still works" 0 kc verify "$IMG"
assert_stdout_contains -m "... via token 0" "token 0 (file:$K0)"
assert_exit -m "KEK 1 deleted: verify --token 1 fails with exit 3" 3 kc verify "$IMG" --token 1
assert_stderr_contains -m "... naming token 1" "token 1"
assert_stderr_contains -m "... naming the missing KEK file" "$K1"
assert_exit -m "KEK 1 deleted: verify --token 0 works" 0 kc verify "$IMG" --token 0
mv "$K1.saved" "$K1"

# Lose KEK 0: the first token fails, verify goes on to token 1.
mv "$K0" "$K0.saved"
assert_exit -m "KEK 0 deleted: verify falls back to token 1" 0 kc verify "$IMG"
assert_stdout_contains -m "... and says so" "token 1 (file:$K1)"
assert_exit -m "KEK 0 deleted: verify --token 0 fails with exit 3" 3 kc verify "$IMG" --token 0
mv "$K0.saved" "$K0"

# Both lost: verify fails and lists every token.
mv "$K0" "$K0.saved"
mv "$K1" "$K1.saved"
sum=$(header_sum "$IMG")
assert_exit -m "both KEKs deleted: verify fails with exit 3" 3 kc verify "$IMG"
assert_stderr_contains -m "... naming the device" "$IMG"
assert_stderr_contains -m "... naming token 0" "token 0 (file:$K0)"
assert_stderr_contains -m "... naming token 1" "token 1 (file:$K1)"
assert_exit -m "both KEKs deleted: kek add cannot unwrap (exit 3)" 3 kc kek add "$IMG" --kek "file:$K2"
assert_header_unchanged -m "... and writes nothing" "$IMG" "$sum"
mv "$K0.saved" "$K0"
mv "$K1.saved" "$K1"

# kek add a third KEK.
assert_exit -m "kek add a third KEK" 0 kc kek add "$IMG" --kek "file:$K2"
assert_stdout_contains -m "kek add reports the new token 2" "added token 2 for file:$K2"
assert_exit 0 kc kek list --json "$IMG"
cp "$OUT" "$T/list.json"
assert_eq -m "kek list --json shows 3 tokens" 3 "$(json_get "$T/list.json" 'len(d["tokens"])')"
assert_eq -m "kek list --json: ids 0 1 2" "[0, 1, 2]" "$(json_get "$T/list.json" '[t["id"] for t in d["tokens"]]')"
assert_eq -m "kek list --json: the KEKs" "[\"file:$K0\", \"file:$K1\", \"file:$K2\"]" \
	"$(json_get "$T/list.json" '[t["kek"] for t in d["tokens"]]')"
assert_eq -m "kek list --json: all valid" "[true, true, true]" \
	"$(json_get "$T/list.json" '[t["valid"] for t in d["tokens"]]')"
assert_eq -m "kek list --json: keyslots 0 1 2" "[0, 1, 2]" \
	"$(json_get "$T/list.json" '[t["keyslot"] for t in d["tokens"]]')"
assert_exit 0 kc kek list "$IMG"
assert_stdout_contains -m "kek list (text) shows the new KEK" "2: file:$K2"
assert_exit 0 kc verify "$IMG" --token 2
assert_stdout_contains -m "the new token unlocks" "token 2 (file:$K2)"
unwrap_dek "$IMG" 2 "$K2" "$T/dek2"
assert_true -m "the new token wraps the same DEK" cmp -s "$T/dek0" "$T/dek2"
assert_exit -m "cryptsetup still accepts the header" 0 cryptsetup isLuks --type luks2 "$IMG"

# kek remove.
assert_exit -m "kek remove --token 0" 0 kc kek remove "$IMG" --token 0
assert_stdout_contains "removed token 0"
meta
assert_eq -m "token 0 is gone from the header" '["1", "2"]' "$(json_get "$T/meta.json" 'sorted(d["tokens"])')"
assert_eq -m "keyslot 0 is gone too" '["1", "2"]' "$(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_exit -m "verify still works after removing token 0" 0 kc verify "$IMG"
assert_stdout_contains -m "... via token 1" "token 1 (file:$K1)"
assert_exit -m "verify --token 0 now: no such token (exit 3)" 3 kc verify "$IMG" --token 0
assert_stderr_contains -m "... naming the token" "token 0"
assert_exit -m "kek remove of a token that does not exist: exit 3" 3 kc kek remove "$IMG" --token 0
assert_exit 0 kc kek list --json "$IMG"
assert_eq -m "kek list --json shows 2 tokens" 2 "$(json_get "$OUT" 'len(d["tokens"])')"

assert_exit -m "kek remove --token 1" 0 kc kek remove "$IMG" --token 1
assert_exit -m "token 2 still unlocks" 0 kc verify "$IMG"
assert_stdout_contains "token 2 (file:$K2)"

# The last unlock path.
sum=$(header_sum "$IMG")
assert_exit -m "removing the last token is refused (exit 12)" 12 kc kek remove "$IMG" --token 2
assert_stderr_contains -m "... naming the device" "$IMG"
assert_stderr_contains -m "... saying it is the last way to unlock" "last"
assert_stderr_contains -m "... mentioning --force" "--force"
assert_header_unchanged -m "the refused remove left the header byte-identical" "$IMG" "$sum"
assert_exit -m "the volume still verifies" 0 kc verify "$IMG"
assert_exit -m "kek remove --force -q removes the last token" 0 kc kek remove --force -q "$IMG" --token 2
meta
assert_eq -m "no token left" 0 "$(json_get "$T/meta.json" 'len(d["tokens"])')"
assert_eq -m "no keyslot left" 0 "$(json_get "$T/meta.json" 'len(d["keyslots"])')"
assert_exit 0 kc kek list --json "$IMG"
assert_eq -m "kek list --json: empty" "[]" "$(json_get "$OUT" 'd["tokens"]')"
assert_exit -m "verify with no kekcrypt token: exit 3" 3 kc verify "$IMG"
assert_stderr_contains -m "... saying there is no kekcrypt token" "no kekcrypt token"

# A keyslot that is not ours is another way to unlock: then removing our only token is fine.
IMG2=$T/disk2.img
new_img "$IMG2"
format_img "$IMG2" "$K0"
unwrap_dek "$IMG2" 0 "$K0" "$T/dek-2"
printf 'recovery-pass' >"$T/pass"
cryptsetup luksAddKey -q --volume-key-file "$T/dek-2" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$IMG2" "$T/pass"
assert_exit -m "with a passphrase keyslot left, removing the only token needs no --force" \
	0 kc kek remove "$IMG2" --token 0
assert_exit -m "the passphrase still opens the volume" 0 \
	cryptsetup open --test-passphrase --key-file "$T/pass" "$IMG2"

done_testing
