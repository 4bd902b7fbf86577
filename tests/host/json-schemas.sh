#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Every --json output validates against its JSON Schema in doc/schema/ (python3-jsonschema,
# tests/validate-json.py): each verb run on images made here with file KEKs, its "schema"
# field naming the schema file; a volume's "uuid" is the header's LUKS UUID. With --json a
# failure prints the error object on stdout, with the exit code of the same command without
# --json. A human error about several tokens gives one line per token.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import jsonschema' 2>/dev/null ||
	bail_out "python3-jsonschema is missing (scripts/install-deps.sh installs it)"
SCHEMAS=$KC_SRCDIR/doc/schema
VALIDATE=$KC_SRCDIR/tests/validate-json.py

T=$T_DIR
for k in 0 1 2; do new_kek "$T/kek$k.bin"; done
K0=$T/kek0.bin K1=$T/kek1.bin K2=$T/kek2.bin IMG=$T/disk.img
new_img "$IMG"
SEEN=" "

# valid NAME DESC: $OUT is one JSON document, "schema": "kekcrypt.NAME/1", valid against
# doc/schema/NAME.json.
valid() {
	local sid
	if ! sid=$(json_get "$OUT" 'd.get("schema") if isinstance(d, dict) else None' 2>&1) ||
		[ "$sid" != "kekcrypt.$1/1" ]; then
		not_ok "$2: schema kekcrypt.$1/1" "got: $sid" "$(head -c 2000 "$OUT")"
	elif "$PY" "$VALIDATE" "$SCHEMAS" "$OUT" 2>"$T/why"; then
		ok "$2: valid kekcrypt.$1/1"
	else
		not_ok "$2: valid kekcrypt.$1/1" "$(cat "$T/why")"
	fi
	SEEN+="$1 "
}

# json NAME CODE CMD...: CMD exits CODE and prints a valid kekcrypt.NAME/1 document.
json() {
	local name=$1 code=$2
	shift 2
	assert_exit "$code" "$@"
	valid "$name" "$(_t_cmdline "$@")"
}

# --- every output -----------------------------------------------------------------------------
json format 0 kc format -q "$IMG" --kek "file:$K0" --kek "file:$K1" --recovery \
	"${RECOVERY_FAST[@]}" --json
UUID=$(cryptsetup luksUUID "$IMG")
assert_eq -m "format: the volume's UUID (what crypttab needs)" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
json_get "$OUT" 'd["recovery_key"]' >"$T/rkey"
json verify 0 kc verify "$IMG" --json
assert_eq -m "verify: the UUID" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
json verify-all 0 kc verify --all "$IMG" --json
assert_eq -m "verify --all: the UUID" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
json dump 0 kc dump "$IMG" --json
json kek-list 0 kc kek list "$IMG" --json
assert_eq -m "kek list: an object with device, uuid and the tokens" "$IMG $UUID [0, 1]" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["device"], d["uuid"], [t["id"] for t in d["tokens"]]])')"
json kek-add 0 kc kek add "$IMG" --kek "file:$K2" --json
assert_eq -m "kek add: the UUID" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
TOK=$(json_get "$OUT" 'd["token"]')
json kek-rotate 0 kc kek rotate "$IMG" --token "$TOK" --to "file:$K0" --dry-run --json
json kek-remove 0 kc kek remove "$IMG" --token "$TOK" --json
assert_eq -m "kek remove: the token and the UUID" "$TOK $UUID" \
	"$(json_get "$OUT" '"%d %s" % (d["token"], d["uuid"])')"
json kek-providers 0 kc kek providers --json
json kek-refresh 0 kc kek rotate "$IMG" --all --if-newer --json
assert_eq -m "kek rotate --if-newer: file KEKs are left alone" "unversioned unversioned" \
	"$(json_get "$OUT" '" ".join(t["state"] for t in d["tokens"])')"
printf 'disk %s none luks\nabsent /nonexistent none luks\n' "$IMG" >"$T/crypttab-run"
json crypttab-run 0 kc kek rotate --crypttab="$T/crypttab-run" --all --if-newer --json
assert_eq -m "kek rotate --crypttab: one volume done, one skipped" "done skipped" \
	"$(json_get "$OUT" '" ".join(v["status"] for v in d["volumes"])')"
json crypttab-run 0 kc verify --crypttab="$T/crypttab-run" --all --json
assert_eq -m "verify --crypttab: the volume's verify-all document" "kekcrypt.verify-all/1" \
	"$(json_get "$OUT" 'd["volumes"][0]["result"]["schema"]')"
json recovery-add 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}" --json
json recovery-verify 0 kc recovery verify "$IMG" --key-file "$T/rkey" --json
json recovery-remove 0 kc recovery remove -q "$IMG" --json
json header-backup 0 kc header backup "$IMG" "$T/hdr" --json
json repair 0 kc repair "$IMG" --json
json boot-needs 0 kc boot-needs "$IMG" --json
# Enrolment by a passphrase (kek add --key-file, recovery add --key-file), with
# --wipe-passphrase and --convert: the optional fields of kek-add and recovery-add.
printf 'pw' >"$T/pw"
new_img "$T/plain.img"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/plain.img" "$T/pw"
json recovery-add 0 kc recovery add "$T/plain.img" "${RECOVERY_FAST[@]}" --key-file "$T/pw" \
	--json
json kek-add 0 kc kek add "$T/plain.img" --kek "file:$K0" --key-file "$T/pw" \
	--wipe-passphrase --convert --header-backup "$T/none.hdr" --json
json config-check 0 kc config check --json
printf 'disk %s none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript\n' "$IMG" >"$T/crypttab"
# No initramfs here: doctor reports that (exit 24), in its own document.
json doctor 24 kc doctor --crypttab "$T/crypttab" --initramfs "$T/none" --json
json rekey 0 kc rekey "$IMG" --json
assert_eq -m "rekey: the UUID" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
mke2fs -q -t ext4 "$T/fs.img" 40M && truncate -s 80M "$T/fs.img"
json encrypt 0 kc encrypt "$T/fs.img" --kek "file:$K0" --dry-run --json
json encrypt 0 kc encrypt "$T/fs.img" --kek "file:$K0" --json
assert_eq -m "encrypt: the UUID" "$(cryptsetup luksUUID "$T/fs.img")" "$(json_get "$OUT" 'd["uuid"]')"

# --- errors: JSON on stdout, the same exit code ----------------------------------------------
# err DESC CODE VERB CMD...: CMD exits CODE without --json, and with --json too, printing a
# valid error object that says that code and VERB.
err() {
	local desc=$1 code=$2 verb=$3
	shift 3
	assert_exit -m "$desc: exit $code" "$code" "$@"
	assert_eq -m "$desc: nothing on stdout without --json" "" "$(cat "$OUT")"
	cp "$ERR" "$T/human.err"
	assert_exit -m "$desc --json: exit $code" "$code" "$@" --json
	valid error "$desc"
	assert_eq -m "$desc: exit_code $code, the verb" "$code $verb" \
		"$(json_get "$OUT" '"%d %s" % (d["error"]["exit_code"], d["error"]["verb"])')"
	assert_contains -m "$desc: the message is the human one" "$(head -n 1 "$T/human.err")" \
		"$(json_get "$OUT" 'd["error"]["message"][:60]')"
}
new_img "$T/zero.img"
err "verify of an all-zero image" 10 verify kc verify "$T/zero.img"
err "kek add without --kek" 2 "kek add" kc kek add "$IMG"
err "verify --token 9" 3 verify kc verify "$IMG" --token 9
assert_exit -m "an unknown verb, --json before it: exit 2" 2 kc --json frobnicate
valid error "unknown verb"
SEEN+="status status-all open "
assert_exit -m "status without device-mapper --json: exit 19" 19 kc status --json
valid error "status without device-mapper"
assert_exit -m "open without device-mapper --json: exit 19" 19 kc open "$IMG" x --json
valid error "open without device-mapper"

# --- several tokens fail: one line per token ----------------------------------------------------
IMG=$T/two.img
new_img "$IMG"
format_img "$IMG" "$K0" "$K1"
mv "$K0" "$K0.saved"
mv "$K1" "$K1.saved"
assert_exit -m "verify, both KEK files gone: exit 3" 3 kc verify "$IMG"
assert_eq -m "the first line names the device, one line per token after it" \
	"kekcrypt verify: device '$IMG': no token could unlock it:
  token 0 (file:$K0): KEK file '$K0': No such file or directory
  token 1 (file:$K1): KEK file '$K1': No such file or directory" "$(cat "$ERR")"
assert_exit -m "... --json: exit 3" 3 kc verify "$IMG" --json
valid error "both KEK files gone"
assert_contains -m "... the JSON message lists both tokens" "$(json_get "$OUT" 'd["error"]["message"]')" \
	"token 0 (file:$K0): KEK file '$K0': No such file or directory; token 1 (file:$K1)"
json verify-all 3 kc verify --all "$IMG" --json
mv "$K0.saved" "$K0"
mv "$K1.saved" "$K1"

# --- template marks and firstboot -------------------------------------------------------------
new_img "$T/tpl.img"
json format 0 kc format -q "$T/tpl.img" --kek "file:$K0" --template --json
json template 0 kc template show "$T/tpl.img" --json
json firstboot 0 kc firstboot "$T/tpl.img" --json
assert_eq -m "firstboot: it was marked, and re-keyed" "template true" \
	"$(json_get "$OUT" 'd["mark"]') $(json_get "$OUT" 'd["rekeyed"]')"
echo "tpl $T/tpl.img none luks" >"$T/fb.crypttab"
json crypttab-run 0 kc firstboot --crypttab="$T/fb.crypttab" --json

# --- adopt --from ade (tests/host/adopt-ade.sh has the whole layout): a dry run, then the adopt --
mkdir -p "$T/ade/etc" "$T/bek"
(umask 077 && head -c 128 /dev/urandom | base64 -w0 >"$T/bek/LinuxPassPhraseFileName")
new_img "$T/ade.img"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/ade.img" "$T/bek/LinuxPassPhraseFileName"
echo "data $T/ade.img /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,nofail" >"$T/ade/etc/crypttab"
json adopt 0 kc adopt --from ade --kek "file:$K0" --bek "$T/bek" --root "$T/ade" --dry-run --json
json adopt 0 kc adopt --from ade --kek "file:$K0" --bek "$T/bek" --root "$T/ade" --json
assert_eq -m "adopt: token 0 added, crypttab rewritten" "0 true" \
	"$(json_get "$OUT" 'd["volumes"][0]["tokens"][0]["token"]') $(json_get "$OUT" 'd["crypttab_rewritten"]')"

# --- every schema file is a schema, and each was used above (status, status-all, open: not
# here, without device-mapper; the guest tests run them) ------------------------------------------
for f in "$SCHEMAS"/*.json; do
	n=$(basename "$f" .json)
	assert_true -m "$n.json is a JSON Schema" "$PY" -c 'import json, sys, jsonschema
s = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(s).check_schema(s)' "$f"
	assert_true -m "$n.json: installed and distributed (doc/Makemodule.am)" \
		grep -q "doc/schema/$n\.json" "$KC_SRCDIR/doc/Makemodule.am"
	[ "$n" = common ] || assert_contains -m "$n.json: an output this test checked" "$SEEN" " $n "
done

done_testing
