#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Migration from Clevis (issue 14, item 6), with the real clevis and a real Tang server: a
# LUKS2 image made by cryptsetup, bound by `clevis luks bind` to tangd (run per connection
# under socat on 127.0.0.1 in a network namespace this test makes, its keys made by
# tangd-keygen), is enrolled under a file KEK with the documented pipe
# `clevis luks pass -d IMG -s SLOT | kekcrypt kek add IMG --kek URI --key-file -`.
#  - Before: dump, kek list and verify ignore the clevis token (no kekcrypt token: empty lists,
#    verify exits 3); kek remove refuses to touch it.
#  - The negatives change nothing (header bytes compared): a wrong key on standard input exits
#    8 saying it opens no keyslot; Tang down, `clevis luks pass` prints nothing and kek add
#    exits 6 saying nothing was read.
#  - The migration: token added beside clevis's (authorised by the passphrase of the clevis
#    keyslot), verify exits 0 with its JSON, kek list shows the token and not clevis's,
#    verify --token 0 (clevis's) exits 3, doctor names the passphrase's and clevis's keyslots
#    as other ways in; the clevis binding still works (`clevis luks pass` again opens its keyslot through Tang);
#    --wipe-passphrase refuses the clevis keyslot; kekcrypt asks Tang nothing.
#  - A hostile "clevis" token carrying a copy of the kekcrypt token's fields is never taken
#    for one (dump, list, verify, kek remove).
#  - Tang stopped: clevis cannot open the volume, kekcrypt still verifies it.
#  - Clean-up: `clevis luks unbind -s SLOT -f` removes clevis's token and keyslot; kekcrypt
#    still verifies, the header holds no foreign token, doctor names only the original
#    passphrase as another way in, and kek add --wipe-passphrase removes that one too.
# Needs root (network namespace), clevis, clevis-luks, tang, socat.
if [ -z "${KC_CLEVIS_NETNS:-}" ]; then
	exec unshare --net env KC_CLEVIS_NETNS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

need clevis clevis-luks-bind clevis-luks-pass clevis-luks-unbind jose curl socat ip
TANGD=/usr/libexec/tangd
TANGD_KEYGEN=/usr/libexec/tangd-keygen
[ -x "$TANGD" ] && [ -x "$TANGD_KEYGEN" ] ||
	bail_out "tangd is missing (scripts/install-deps.sh installs tang)"

T=$T_DIR
IMG=$T/disk.img
TANG_PORT=7500
TANG_URL=http://127.0.0.1:$TANG_PORT
ip link set lo up

# tang_start: tangd, one process per connection, its log (one line a request) in tang.log.
tang_start() {
	socat "TCP-LISTEN:$TANG_PORT,bind=127.0.0.1,reuseaddr,fork" "EXEC:$TANGD $T/tang-db" \
		2>>"$T/tang.log" &
	TANG_PID=$!
	T_PIDS+=("$TANG_PID")
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$TANG_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	bail_out "tangd did not listen on $TANG_URL"
}
tang_stop() {
	kill "$TANG_PID"
	wait "$TANG_PID" || :	# killed: 143
}
# tang_recs: key recovery requests Tang answered so far.
tang_recs() {
	grep -c 'POST /rec/.* => 200' "$T/tang.log" || :
}
# meta: cryptsetup's view of the header as JSON in $T/meta.json
meta() {
	cryptsetup luksDump --dump-json-metadata "$IMG" >"$T/meta.json"
}
# opens_slot SLOT: the passphrase on standard input opens keyslot SLOT (cryptsetup's check).
opens_slot() {
	cryptsetup open --test-passphrase --key-slot "$1" --key-file - "$IMG"
}

mkdir -m 700 "$T/tang-db"
"$TANGD_KEYGEN" "$T/tang-db"
: >"$T/tang.log"
tang_start
new_kek "$T/k0"
PW='original passphrase'
(umask 077 && printf '%s' "$PW" >"$T/pass" && printf 'not the clevis passphrase' >"$T/wrong")
new_img "$IMG"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$IMG" "$T/pass"

assert_exit -m "clevis luks bind to the Tang server, authorised by the original passphrase" 0 \
	clevis luks bind -y -d "$IMG" -k "$T/pass" tang "{\"url\":\"$TANG_URL\"}"
meta
assert_eq -m "... token 0 is clevis's" clevis "$(json_get "$T/meta.json" 'd["tokens"]["0"]["type"]')"
SLOT=$(json_get "$T/meta.json" 'd["tokens"]["0"]["keyslots"][0]')
assert_eq -m "... holding a new keyslot 1 beside the passphrase's 0" '1 ["0", "1"]' \
	"$SLOT $(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_true -m "... clevis luks pass gives the passphrase of that keyslot (through Tang)" \
	bash -c 'clevis luks pass -d "$1" -s "$2" | cryptsetup open --test-passphrase --key-slot "$2" --key-file - "$1"' \
	_ "$IMG" "$SLOT"
assert_eq -m "... Tang answered one recovery request" 1 "$(tang_recs)"

# Before: the clevis token is not kekcrypt's.
assert_exit -m "dump --json of the clevis volume" 0 kc dump --json "$IMG"
cp "$OUT" "$T/dump0.json"
assert_eq -m "... no kekcrypt token, both keyslots listed" '[] [0, 1]' \
	"$(json_get "$T/dump0.json" 'd["tokens"]') $(json_get "$T/dump0.json" 'd["keyslots"]')"
assert_exit -m "kek list --json" 0 kc kek list --json "$IMG"
assert_eq -m "... no token" "[]" "$(json_get "$OUT" 'd["tokens"]')"
assert_exit -m "verify: no kekcrypt token (3)" 3 kc verify "$IMG"
assert_stderr_contains -m "... saying so" "device '$IMG' has no kekcrypt token"
sum=$(header_sum "$IMG")
assert_exit -m "kek remove --token 0 (clevis's): refused" 3 kc kek remove "$IMG" --token 0 --force
assert_stderr_contains -m "... as no kekcrypt token" "device '$IMG' has no kekcrypt token 0"
assert_header_unchanged -m "... clevis's token and keyslot untouched" "$IMG" "$sum"

# The negatives write nothing.
assert_exit -m "a wrong key on standard input: wrong key (8)" 8 \
	kc kek add "$IMG" --kek "file:$T/k0" --key-file - <"$T/wrong"
assert_stderr_contains -m "... saying it opens no keyslot" \
	"device '$IMG': the passphrase given opens none of its keyslots"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
tang_stop
assert_exit -m "Tang down: the pipe gives kek add nothing, credential required (6)" 6 \
	bash -c 'clevis luks pass -d "$1" -s "$2" | "$KEKCRYPT" kek add "$1" --kek "file:$3" --key-file - --config "$4"' \
	_ "$IMG" "$SLOT" "$T/k0" "$T_CONF"
assert_stderr_contains -m "... clevis says it could not reach Tang" "Error communicating with server $TANG_URL"
assert_stderr_contains -m "... kekcrypt that nothing was read" "no passphrase read"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
tang_start

# The migration, as documented.
assert_exit -m "clevis luks pass -d IMG -s SLOT | kekcrypt kek add IMG --kek file:K --key-file -" 0 \
	bash -c 'clevis luks pass -d "$1" -s "$2" | "$KEKCRYPT" kek add "$1" --kek "file:$3" --key-file - --json --config "$4"' \
	_ "$IMG" "$SLOT" "$T/k0" "$T_CONF"
cp "$OUT" "$T/add.json"
assert_eq -m "... token 1 added (0 is clevis's), authorised by the passphrase of the clevis keyslot" \
	"1 True passphrase $SLOT" \
	"$(json_get "$T/add.json" 'd["token"], d["added"], d["authorised_by"], d["auth_keyslot"]' | tr -d "(),'")"
assert_not_contains -m "... the clevis passphrase is not in its output" "$(cat "$OUT" "$ERR")" \
	"$(clevis luks pass -d "$IMG" -s "$SLOT")"
recs=$(tang_recs)
assert_exit -m "verify --json" 0 kc verify --json "$IMG"
cp "$OUT" "$T/verify.json"
assert_eq -m "... through token 1, keyslot 2, the file KEK" "1 2 file:$T/k0" \
	"$(json_get "$T/verify.json" 'd["token"], d["keyslot"], d["kek"]' | tr -d "(),'")"
assert_eq -m "... and kekcrypt asked Tang nothing" "$recs" "$(tang_recs)"
assert_exit -m "kek list --json" 0 kc kek list --json "$IMG"
assert_eq -m "... the new token only, not clevis's" "[[1, 2, \"file:$T/k0\"]]" \
	"$(json_get "$OUT" '[[t["id"], t["keyslot"], t["kek"]] for t in d["tokens"]]')"
assert_exit -m "verify --token 0 (clevis's): no kekcrypt token 0 (3)" 3 kc verify "$IMG" --token 0
assert_stderr_contains -m "... saying so" "device '$IMG' has no kekcrypt token 0"
# doctor's exit status also covers this host's initramfs, which is not this test's.
echo "cl $IMG none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript" >"$T/crypttab"
run kc doctor --crypttab "$T/crypttab" --json
cp "$OUT" "$T/doctor.json"
assert_eq -m "doctor: token 1 unlocks; the passphrase's and clevis's keyslots are other ways in" \
	"1 [0, 1]" "$(json_get "$T/doctor.json" 'd["volumes"][0]["unlocks_with_token"]') $(json_get \
	"$T/doctor.json" 'd["volumes"][0]["other_keyslots"]')"
meta
assert_eq -m "luksDump: clevis's token 0 still holds keyslot $SLOT" "[\"clevis\", [\"$SLOT\"]]" \
	"$(json_get "$T/meta.json" '[d["tokens"]["0"]["type"], d["tokens"]["0"]["keyslots"]]')"
assert_true -m "the clevis binding still works: clevis luks pass opens its keyslot" \
	bash -c 'clevis luks pass -d "$1" -s "$2" | cryptsetup open --test-passphrase --key-slot "$2" --key-file - "$1"' \
	_ "$IMG" "$SLOT"
assert_eq -m "... through Tang" "$((recs + 1))" "$(tang_recs)"
sum=$(header_sum "$IMG")
assert_exit -m "--wipe-passphrase of the clevis keyslot: refused (12)" 12 \
	bash -c 'clevis luks pass -d "$1" -s "$2" | "$KEKCRYPT" kek add "$1" --kek "file:$3" --key-file - --wipe-passphrase --config "$4"' \
	_ "$IMG" "$SLOT" "$T/k0" "$T_CONF"
assert_stderr_contains -m "... naming the clevis token" "keyslot $SLOT belongs to token 0 (type 'clevis')"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"

# A hostile token of type clevis carrying the kekcrypt token's fields is never kekcrypt's.
cryptsetup token export --token-id 1 "$IMG" |
	python3 -c 'import json, sys; t = json.load(sys.stdin); t["type"] = "clevis"; print(json.dumps(t))' |
	cryptsetup --disable-external-tokens token import --token-id 5 "$IMG"
sum=$(header_sum "$IMG")
assert_exit -m "a 'clevis' token with kekcrypt's fields: dump --json" 0 kc dump --json "$IMG"
assert_eq -m "... lists token 1 only" "[1]" "$(json_get "$OUT" '[t["id"] for t in d["tokens"]]')"
assert_exit -m "... kek list --json lists token 1 only" 0 kc kek list --json "$IMG"
assert_eq -m "... (ids)" "[1]" "$(json_get "$OUT" '[t["id"] for t in d["tokens"]]')"
assert_exit -m "... verify --token 5: not a kekcrypt token (3)" 3 kc verify "$IMG" --token 5
assert_stderr_contains -m "... saying so" "device '$IMG' has no kekcrypt token 5"
assert_exit -m "... kek remove --token 5: refused (3)" 3 kc kek remove "$IMG" --token 5 --force
assert_stderr_contains -m "... saying so" "device '$IMG' has no kekcrypt token 5"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
cryptsetup --disable-external-tokens token remove --token-id 5 "$IMG"

# Tang gone: clevis cannot open the volume any more, kekcrypt can.
tang_stop
assert_exit -m "Tang stopped: clevis luks pass fails" 1 clevis luks pass -d "$IMG" -s "$SLOT"
assert_exit -m "... kekcrypt verify still opens the volume" 0 kc verify "$IMG"

# Clean-up: remove the clevis binding with clevis's own tool.
assert_exit -m "clevis luks unbind -d IMG -s SLOT -f" 0 clevis luks unbind -d "$IMG" -s "$SLOT" -f
meta
assert_eq -m "luksDump: no foreign token left, only kekcrypt's" '{"1": "kekcrypt"}' \
	"$(json_get "$T/meta.json" '{k: v["type"] for k, v in d["tokens"].items()}')"
assert_eq -m "... keyslot $SLOT gone: the passphrase's and kekcrypt's left" '["0", "2"]' \
	"$(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_exit -m "verify --json after unbind" 0 kc verify --json "$IMG"
assert_eq -m "... still token 1" 1 "$(json_get "$OUT" 'd["token"]')"
assert_exit -m "dump --json" 0 kc dump --json "$IMG"
assert_eq -m "... keyslots 0 and 2, token 1" "[0, 2] [1]" \
	"$(json_get "$OUT" 'd["keyslots"]') $(json_get "$OUT" '[t["id"] for t in d["tokens"]]')"
run kc doctor --crypttab "$T/crypttab" --json
cp "$OUT" "$T/doctor.json"
assert_eq -m "doctor: token 1 unlocks, none failing, only keyslot 0 is another way in" \
	"1 [] [0]" "$(json_get "$T/doctor.json" 'd["volumes"][0]["unlocks_with_token"]') $(json_get \
	"$T/doctor.json" 'd["volumes"][0]["failing_tokens"]') $(json_get "$T/doctor.json" \
	'd["volumes"][0]["other_keyslots"]')"
assert_exit -m "the original passphrase too: kek add --wipe-passphrase" 0 \
	kc kek add "$IMG" --kek "file:$T/k0" --key-file "$T/pass" --wipe-passphrase --json
assert_eq -m "... keyslot 0 wiped" 0 "$(json_get "$OUT" 'd["wiped_keyslot"]')"
assert_exit -m "... verify still works" 0 kc verify "$IMG"
run kc doctor --crypttab "$T/crypttab" --json
assert_eq -m "... doctor: no other way in" "[]" "$(json_get "$OUT" 'd["volumes"][0]["other_keyslots"]')"

done_testing
