#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Recovery keys: recovery add prints one key (8 groups of 8 modhex characters) once, stores it
# in an argon2id keyslot marked by a "kekcrypt-recovery" token; dump shows it; it is accepted
# with or without dashes, in any case, from a file or stdin, by `recovery verify` (a check
# with crypt_activate_by_passphrase(NULL)) and by cryptsetup itself; it works without the KEK;
# a wrong or malformed key is refused; it never appears in debug logs; recovery remove, and
# the last unlock path is kept unless --force; format --recovery. Mapping (open --recovery)
# needs device-mapper: here it must fail with exit 19 before asking anything.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
new_kek "$K0"
new_img "$IMG"
format_img "$IMG" "$K0"
RE='^[cbdefghijklnrtuv]{8}(-[cbdefghijklnrtuv]{8}){7}$'

meta() {
	cryptsetup luksDump --dump-json-metadata "$IMG" >"$T/meta.json"
}

assert_exit -m "recovery add" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}"
cp "$OUT" "$T/key"
key=$(cat "$T/key")
assert_true -m "stdout is exactly one key of 8 groups of 8 modhex characters" \
	grep -Eq "$RE" "$T/key"
assert_eq -m "... and nothing else" 1 "$(wc -l <"$T/key")"
assert_stderr_contains -m "stderr says it is shown only now" "shown only now"
assert_not_contains -m "the key is not on stderr" "$(cat "$ERR")" "${key:0:8}"
# With --debug: the debug log goes to stderr; the key is the line of stdout shaped like one.
assert_exit -m "recovery add --debug" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}" --debug
dkey=$(grep -E "$RE" "$OUT" || true)
assert_true -m "... prints a key" test -n "$dkey"
assert_not_contains -m "the key is not in the debug log" "$(cat "$ERR")" "${dkey:0:8}"
assert_not_contains -m "... nor without dashes" "$(cat "$ERR")" "$(echo "$dkey" | tr -d - | cut -c1-16)"
assert_exit -m "recovery remove of that second key" 0 kc recovery remove "$IMG" --token \
	"$(kc dump --json "$IMG" | python3 -c 'import json,sys; print(max(r["token"] for r in json.load(sys.stdin)["recovery_keys"]))')"
meta
rslot=$(json_get "$T/meta.json" '[v["keyslots"][0] for v in d["tokens"].values() if v["type"] == "kekcrypt-recovery"][0]')
assert_eq -m "a kekcrypt-recovery token marks one keyslot" 1 \
	"$(json_get "$T/meta.json" 'sum(1 for v in d["tokens"].values() if v["type"] == "kekcrypt-recovery")')"
assert_eq -m "its keyslot uses argon2id" argon2id "$(json_get "$T/meta.json" "d['keyslots']['$rslot']['kdf']['type']")"
assert_eq -m "with the capped memory" 32 "$(json_get "$T/meta.json" "d['keyslots']['$rslot']['kdf']['memory']")"
assert_not_contains -m "the header holds no form of the key" "$(cat "$T/meta.json")" "${key:0:8}"

assert_exit 0 kc dump "$IMG"
assert_stdout_contains -m "dump shows the recovery key's keyslot" "keyslot $rslot, created"
assert_exit 0 kc dump --json "$IMG"
assert_eq -m "dump --json: one recovery key" "[$rslot]" "$(json_get "$OUT" '[r["keyslot"] for r in d["recovery_keys"]]')"

assert_exit -m "recovery verify --key-file" 0 kc recovery verify "$IMG" --key-file "$T/key"
assert_stdout_contains "accepted by keyslot $rslot"
printf '%s' "$key" | tr a-z A-Z | tr -d - >"$T/key-upper"
assert_exit -m "upper case without dashes, from stdin" 0 kc recovery verify "$IMG" --key-file - <"$T/key-upper"
echo "$key" | tr - ' ' >"$T/key-spaces"
assert_exit -m "groups separated by spaces, stdin not a terminal" 0 kc recovery verify "$IMG" <"$T/key-spaces"
assert_exit -m "recovery verify --json" 0 kc recovery verify "$IMG" --key-file "$T/key" --json
assert_eq -m "json: keyslot" "$rslot" "$(json_get "$OUT" 'd["keyslot"]')"
assert_exit -m "recovery verify --debug" 0 kc recovery verify "$IMG" --key-file "$T/key" --debug
assert_not_contains -m "the key is not in the debug log of verify" "$(cat "$ERR")" "${key:0:8}"
tr -d '\n' <"$T/key" >"$T/key-raw"
assert_exit -m "cryptsetup accepts the key as printed" 0 \
	cryptsetup open --test-passphrase --key-slot "$rslot" --key-file "$T/key-raw" "$IMG"

# Wrong and malformed keys.
python3 -c 'import secrets; a = "cbdefghijklnrtuv"; print("-".join("".join(secrets.choice(a) for _ in range(8)) for _ in range(8)))' >"$T/wrong"
sum=$(header_sum "$IMG")
assert_exit -m "a wrong recovery key: exit 8" 8 kc recovery verify "$IMG" --key-file "$T/wrong"
assert_stderr_contains -m "... says it does not open the volume" "does not open"
echo "${key:0:70}a" >"$T/bad"
assert_exit -m "a character outside the alphabet: exit 9" 9 kc recovery verify "$IMG" --key-file "$T/bad"
assert_not_contains -m "... without echoing the key" "$(cat "$ERR")" "${key:0:8}"
echo "${key:0:62}" >"$T/short"
assert_exit -m "a truncated key: exit 9" 9 kc recovery verify "$IMG" --key-file "$T/short"
assert_header_unchanged -m "checks write nothing" "$IMG" "$sum"

# Without the KEK, only the recovery key opens it.
mv "$K0" "$K0.away"
assert_exit -m "KEK gone: verify fails" 3 kc verify "$IMG"
assert_exit -m "KEK gone: the recovery key still opens it" 0 kc recovery verify "$IMG" --key-file "$T/key"
assert_exit -m "recovery add needs a token that unwraps (exit 3)" 3 kc recovery add "$IMG" "${RECOVERY_FAST[@]}"
mv "$K0.away" "$K0"

# open --recovery needs device-mapper, which this host lacks: refused up front.
assert_exit -m "open --recovery without device-mapper: exit 19" 19 kc open "$IMG" rec-test --recovery --key-file "$T/key"
assert_exit -m "open --key-file without --recovery: usage error" 2 kc open "$IMG" rec-test --key-file "$T/key"

# --json add, a second key, removal of one.
assert_exit -m "recovery add --json" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}" --json
cp "$OUT" "$T/add.json"
json_get "$T/add.json" 'd["recovery_key"]' >"$T/key2"
assert_true -m "json: the key" grep -Eq "$RE" "$T/key2"
slot2=$(json_get "$T/add.json" 'd["keyslot"]')
assert_exit -m "the second key verifies" 0 kc recovery verify "$IMG" --key-file "$T/key2"
assert_stdout_contains "keyslot $slot2"
assert_exit 0 kc dump --json "$IMG"
assert_eq -m "dump: two recovery keys" 2 "$(json_get "$OUT" 'len(d["recovery_keys"])')"
tok2=$(json_get "$OUT" "[r['token'] for r in d['recovery_keys'] if r['keyslot'] == $slot2][0]")
assert_exit -m "recovery remove --token (the second)" 0 kc recovery remove "$IMG" --token "$tok2"
assert_stdout_contains "removed 1 recovery key"
assert_exit -m "the removed key no longer opens it" 8 kc recovery verify "$IMG" --key-file "$T/key2"
assert_exit -m "the first still does" 0 kc recovery verify "$IMG" --key-file "$T/key"

# The last unlock path.
assert_exit -m "with a recovery key, removing the only KEK token needs no --force" 0 \
	kc kek remove "$IMG" --token "$(json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if v["type"] == "kekcrypt"][0]')"
sum=$(header_sum "$IMG")
assert_exit -m "removing the last recovery key, the last unlock path, is refused (exit 12)" 12 \
	kc recovery remove "$IMG" -q
assert_stderr_contains -m "... mentioning --force" "--force"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
assert_exit -m "recovery remove --force -q" 0 kc recovery remove "$IMG" --force -q
meta
assert_eq -m "no keyslot left" 0 "$(json_get "$T/meta.json" 'len(d["keyslots"])')"
assert_eq -m "no token left" 0 "$(json_get "$T/meta.json" 'len(d["tokens"])')"
assert_exit -m "recovery remove with none: exit 3" 3 kc recovery remove "$IMG" -q

# A normal removal while a KEK token is there.
new_img "$IMG"
format_img "$IMG" "$K0"
assert_exit 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}"
assert_exit -m "recovery remove -q (all) with a KEK token left" 0 kc recovery remove "$IMG" -q
meta
assert_eq -m "only the KEK token and its keyslot are left" "1 1" \
	"$(json_get "$T/meta.json" 'len(d["tokens"])') $(json_get "$T/meta.json" 'len(d["keyslots"])')"
assert_exit 0 kc verify "$IMG"

# format --recovery (with the default, benchmarked argon2id: one real-cost keyslot).
F=$T/f.img
new_img "$F"
assert_exit -m "format --recovery" 0 kc format -q "$F" --kek "file:$K0" --recovery "${RECOVERY_FAST[@]}"
grep -E '^[cbdefghijklnrtuv-]{71}$' "$OUT" >"$T/fkey" || true
assert_true -m "format --recovery prints the key" grep -Eq "$RE" "$T/fkey"
assert_exit -m "... which verifies" 0 kc recovery verify "$F" --key-file "$T/fkey"
assert_exit -m "... and the KEK too" 0 kc verify "$F"
new_img "$F"
assert_exit -m "format --recovery --json" 0 kc format -q "$F" --kek "file:$K0" --recovery --json \
	--iter-time 200 --pbkdf-memory 65536
json_get "$OUT" 'd["recovery_key"]' >"$T/fkey2"
assert_exit -m "... its key verifies (benchmarked argon2id)" 0 kc recovery verify "$F" --key-file "$T/fkey2"

done_testing
