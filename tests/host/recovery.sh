#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Recovery keys: recovery add prints one key (8 groups of 8 modhex characters) once, stores it
# in four PBKDF2-SHA256 keyslots (as printed, lower case without dashes, upper case with and
# without dashes) marked by one "kekcrypt-recovery" token (version 2); dump shows them as one
# key; it is accepted with or without dashes, in any case (even mixed), from a file or stdin,
# by `recovery verify` (a check with crypt_activate_by_passphrase(NULL)), and by cryptsetup
# itself (any keyslot, as systemd-cryptsetup's prompt tries it) in the four forms, not in mixed
# case; the default KDF is PBKDF2 with 100000 iterations, no benchmark; it works without the
# KEK; a wrong or malformed key is refused; it never appears in debug logs; recovery remove
# takes all four keyslots and the token, and the last unlock path is kept unless --force; a
# removal interrupted between the keyslots and the token is completed; a version-1 token (one
# argon2id keyslot, made here with cryptsetup as older kekcrypt did) still opens and is
# removed; format --recovery. Mapping (open --recovery) needs device-mapper: here it must fail
# with exit 19 before asking anything.
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
RTOK='[v for v in d["tokens"].values() if v["type"] == "kekcrypt-recovery"]'
rslots=$(json_get "$T/meta.json" "' '.join(${RTOK}[0]['keyslots'])")
read -r rslot _ <<<"$rslots"
assert_eq -m "one kekcrypt-recovery token" 1 "$(json_get "$T/meta.json" "len($RTOK)")"
assert_eq -m "... of version 2" 2 "$(json_get "$T/meta.json" "${RTOK}[0]['kekcrypt-recovery-version']")"
assert_eq -m "... marks four keyslots" 4 "$(wc -w <<<"$rslots")"
assert_eq -m "... all PBKDF2-SHA256 (--pbkdf-force-iterations 4 raised to 2000, the least)" \
	"pbkdf2 sha256 2000 pbkdf2 sha256 2000 pbkdf2 sha256 2000 pbkdf2 sha256 2000" \
	"$(json_get "$T/meta.json" "' '.join(' '.join(str(d['keyslots'][s]['kdf'].get(k)) for k in ('type', 'hash', 'iterations')) for s in '$rslots'.split())")"
assert_not_contains -m "the header holds no form of the key" "$(cat "$T/meta.json")" "${key:0:8}"
assert_not_contains -m "... not in upper case" "$(cat "$T/meta.json")" "$(tr a-z A-Z <<<"${key:0:8}")"

assert_exit 0 kc dump "$IMG"
assert_stdout_contains -m "dump shows the recovery key's keyslots" "keyslots $(tr ' ' , <<<"$rslots"), created"
assert_exit 0 kc dump --json "$IMG"
assert_eq -m "dump --json: one recovery key, its first keyslot" "[$rslot]" "$(json_get "$OUT" '[r["keyslot"] for r in d["recovery_keys"]]')"
assert_eq -m "dump --json: ... and its four keyslots" "$rslots" "$(json_get "$OUT" '" ".join(str(s) for s in d["recovery_keys"][0]["keyslots"])')"

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
printf '%s' "$key" | sed 's/[cdfhjlnrtv]/\U&/g' >"$T/key-mixed"
assert_exit -m "mixed case (cBdEfG...) through kekcrypt" 0 kc recovery verify "$IMG" --key-file "$T/key-mixed"
tr -d '\n' <"$T/key" >"$T/key-raw"
assert_exit -m "cryptsetup accepts the key as printed" 0 \
	cryptsetup open --test-passphrase --key-slot "$rslot" --key-file "$T/key-raw" "$IMG"
# cs_accepts WHAT FILE: cryptsetup, trying every keyslot as systemd-cryptsetup's passphrase
# prompt does, opens the volume with the text of FILE.
cs_accepts() {
	assert_exit -m "cryptsetup (any keyslot) accepts the key $1" 0 cryptsetup open \
		--test-passphrase --disable-external-tokens --key-file "$2" "$IMG"
}
cs_accepts "as printed" "$T/key-raw"
tr -d - <"$T/key-raw" >"$T/key-nodash"
cs_accepts "without dashes" "$T/key-nodash"
tr a-z A-Z <"$T/key-raw" >"$T/key-up"
cs_accepts "in upper case" "$T/key-up"
cs_accepts "in upper case without dashes" "$T/key-upper"
assert_exit -m "cryptsetup refuses mixed case (only kekcrypt normalises it)" 2 cryptsetup open \
	--test-passphrase --disable-external-tokens --key-file "$T/key-mixed" "$IMG"

# keyscript-normalise (the initramfs-tools keyscript's prompt): a recovery key in any form
# becomes the printed form; anything else passes unchanged (tests/host/keyscript.sh runs it
# through the keyscript).
assert_exit -m "keyscript-normalise: mixed case" 0 kc keyscript-normalise <"$T/key-mixed"
assert_true -m "... gives the key as printed" cmp -s "$T/key-raw" "$OUT"
assert_exit -m "keyscript-normalise: groups separated by spaces, a newline" 0 \
	kc keyscript-normalise <"$T/key-spaces"
assert_true -m "... gives the key as printed" cmp -s "$T/key-raw" "$OUT"
printf 'a passphrase\n' >"$T/pass"
assert_exit -m "keyscript-normalise: a passphrase" 0 kc keyscript-normalise <"$T/pass"
assert_true -m "... passes unchanged" cmp -s "$T/pass" "$OUT"
head -c 10000 /dev/urandom >"$T/big"
assert_exit -m "keyscript-normalise: 10000 random bytes (more than its buffer)" 0 \
	kc keyscript-normalise <"$T/big"
assert_true -m "... pass unchanged" cmp -s "$T/big" "$OUT"

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
slots2=$(json_get "$OUT" "' '.join(str(s) for r in d['recovery_keys'] if r['token'] == $tok2 for s in r['keyslots'])")
assert_eq -m "... the second has four keyslots" 4 "$(wc -w <<<"$slots2")"
assert_exit -m "recovery remove --token (the second)" 0 kc recovery remove "$IMG" --token "$tok2"
assert_stdout_contains "removed 1 recovery key"
meta
assert_eq -m "... its token is gone, and its four keyslots" "False 0" \
	"$(json_get "$T/meta.json" "str('$tok2' in d['tokens']) + ' ' + str(sum(1 for s in '$slots2'.split() if s in d['keyslots']))")"
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

# An interrupted removal: libcryptsetup removed two of the four keyslots (unbinding them from
# the token) when the process died. The token still marks the other two, which still open the
# volume; recovery remove completes it.
assert_exit 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}" --json
json_get "$OUT" 'd["recovery_key"]' >"$T/key3"
meta
read -r s1 s2 s3 s4 <<<"$(json_get "$T/meta.json" "' '.join(${RTOK}[0]['keyslots'])")"
assert_ok -m "(two keyslots of four killed, as a crash would leave them)" \
	cryptsetup luksKillSlot -q "$IMG" "$s1"
assert_ok cryptsetup luksKillSlot -q "$IMG" "$s3"
meta
assert_eq -m "the token marks the other two" "$s2 $s4" "$(json_get "$T/meta.json" "' '.join(${RTOK}[0]['keyslots'])")"
assert_exit -m "... which kekcrypt still tries (no dashes: keyslot $s2)" 0 \
	kc recovery verify "$IMG" --key-file "$T/key3"
assert_stdout_contains "accepted by keyslot $s2"
assert_exit -m "recovery remove completes the removal" 0 kc recovery remove "$IMG" -q
meta
assert_eq -m "... only the KEK token and its keyslot are left" "1 1" \
	"$(json_get "$T/meta.json" 'len(d["tokens"])') $(json_get "$T/meta.json" 'len(d["keyslots"])')"

# A version-1 token, as older kekcrypt wrote: one argon2id keyslot holding the printed form.
python3 -c 'import secrets; a = "cbdefghijklnrtuv"; print("-".join("".join(secrets.choice(a) for _ in range(8)) for _ in range(8)), end="")' >"$T/v1key"
assert_exit -m "(the keyslot passphrase of the KEK token, to add a keyslot with cryptsetup)" 0 \
	kc keyscript-passphrase "$IMG"
cp "$OUT" "$T/kspass"
assert_ok -m "(a version-1 recovery keyslot, 7, added by cryptsetup)" cryptsetup luksAddKey -q \
	--pbkdf argon2id --pbkdf-memory 32 --pbkdf-force-iterations 4 --key-file "$T/kspass" \
	--new-key-slot 7 "$IMG" "$T/v1key"
rm -f "$T/kspass"
printf '{"type":"kekcrypt-recovery","keyslots":["7"],"kekcrypt-recovery-version":"1","kekcrypt-recovery-created":"2026-01-02T03:04:05Z"}' >"$T/v1.json"
assert_ok -m "(... and its version-1 token)" cryptsetup --disable-external-tokens token import \
	--json-file "$T/v1.json" "$IMG"
assert_exit -m "version 1: dump --json shows it, keyslot 7 only" 0 kc dump --json "$IMG"
assert_eq -m "... keyslot 7 only" "7 [7] 2026-01-02T03:04:05Z" \
	"$(json_get "$OUT" '" ".join(str(x) for x in (d["recovery_keys"][0]["keyslot"], d["recovery_keys"][0]["keyslots"], d["recovery_keys"][0]["created"]))')"
v1tok=$(json_get "$OUT" 'd["recovery_keys"][0]["token"]')
tr a-z A-Z <"$T/v1key" | tr -d - >"$T/v1key-upper"
assert_exit -m "version 1: kekcrypt accepts it in upper case without dashes" 0 \
	kc recovery verify "$IMG" --key-file "$T/v1key-upper"
assert_stdout_contains "accepted by keyslot 7"
assert_exit -m "version 1: cryptsetup accepts it as printed" 0 cryptsetup open --test-passphrase \
	--disable-external-tokens --key-file "$T/v1key" "$IMG"
assert_exit -m "version 1: recovery remove --token" 0 kc recovery remove "$IMG" -q --token "$v1tok"
assert_stdout_contains "removed 1 recovery key"
meta
assert_eq -m "... its token and keyslot 7 are gone" "1 1 false" \
	"$(json_get "$T/meta.json" 'len(d["tokens"])') $(json_get "$T/meta.json" 'len(d["keyslots"])') $(json_get "$T/meta.json" '"7" in d["keyslots"]')"
assert_exit 0 kc verify "$IMG"

# No KEK answers: another recovery key still counts as a way to unlock (its keyslots, PBKDF2
# at 2000 iterations or more, are not taken for kekcrypt's own derived ones at 1000).
new_img "$IMG"
format_img "$IMG" "$K0"
assert_exit 0 kc recovery add -q "$IMG" "${RECOVERY_FAST[@]}"
assert_exit 0 kc recovery add -q "$IMG" "${RECOVERY_FAST[@]}"
assert_exit 0 kc dump --json "$IMG"
read -r rtok1 rtok2 <<<"$(json_get "$OUT" '" ".join(str(r["token"]) for r in d["recovery_keys"])')"
mv "$K0" "$K0.away"
assert_exit -m "KEK gone: removing one of two recovery keys is allowed" 0 \
	kc recovery remove "$IMG" -q --token "$rtok1"
assert_exit -m "KEK gone: removing the other, the last that works, is refused (exit 12)" 12 \
	kc recovery remove "$IMG" -q --token "$rtok2"
mv "$K0.away" "$K0"

# format --recovery with the default KDF: PBKDF2-SHA256, 100000 iterations, no benchmark; the
# argon2id options of older versions are accepted and change nothing.
F=$T/f.img
new_img "$F"
assert_exit -m "format --recovery --json" 0 kc format -q "$F" --kek "file:$K0" --recovery --json \
	--iter-time 200 --pbkdf-memory 65536
json_get "$OUT" 'd["recovery_key"]' >"$T/fkey"
assert_true -m "format --recovery prints the key" grep -Eq "$RE" "$T/fkey"
assert_exit -m "... which verifies" 0 kc recovery verify "$F" --key-file "$T/fkey"
assert_exit -m "... and the KEK too" 0 kc verify "$F"
cryptsetup luksDump --dump-json-metadata "$F" >"$T/fmeta.json"
assert_eq -m "... four keyslots of PBKDF2-SHA256, 100000 iterations" \
	"pbkdf2 sha256 100000 pbkdf2 sha256 100000 pbkdf2 sha256 100000 pbkdf2 sha256 100000" \
	"$(json_get "$T/fmeta.json" "' '.join(' '.join(str(d['keyslots'][s]['kdf'].get(k)) for k in ('type', 'hash', 'iterations')) for s in ${RTOK}[0]['keyslots'])")"
tr -d '\n' <"$T/fkey" >"$T/fkey-raw"
for form in "as printed:cat" "without dashes:tr -d -" "in upper case:tr a-z A-Z" \
	"in upper case without dashes:tr -d - | tr a-z A-Z"; do
	sh -c "${form#*:}" <"$T/fkey-raw" >"$T/fkey-form"
	assert_exit -m "... cryptsetup (any keyslot) accepts it ${form%%:*}" 0 cryptsetup open \
		--test-passphrase --disable-external-tokens --key-file "$T/fkey-form" "$F"
done

done_testing
