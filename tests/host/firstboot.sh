#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# First boot of the clones of a template image (issue 14 item 5), offline on image files: a
# volume encrypted in place from an ext4 filesystem is marked a template (`template mark`);
# two copies of it (clones) each get a data key of their own from `firstboot` (LUKS2 digests
# different from the template's and from each other's), still verify, lose the mark, and
# decrypt (the DEK unwrapped and the data decrypted by python3-cryptography) to the original
# filesystem; a second run is a no-op that writes nothing. `format --template` marks a new
# volume. A clone whose firstboot was stopped by SIGINT mid-re-encryption is finished by the
# next run, data intact; one stopped after its rekey (mark in state "rekeyed") is not re-keyed
# again. With a [firstboot] KEK in the configuration the tokens end on that KEK only; one that
# does not work stops the run after the rekey with nothing removed, and the next run finishes
# (as it does one stopped between adding that KEK and removing the template's); a forged
# mark on a volume of a machine whose configuration names no [firstboot] KEK only re-keys it
# (same KEK); a malformed mark fails (exit 9) writing nothing, and `template clear` removes
# it. --crypttab runs on every kekcrypt volume of a crypttab.
. "$(dirname "$0")/lib.sh"
need mke2fs debugfs

T=$T_DIR
K=$T/kek.bin K2=$T/kek2.bin
new_kek "$K"
new_kek "$K2"

# The template: an ext4 filesystem of 32 MiB in an image of 64 MiB (the 32 MiB in-place
# encryption needs at the end), encrypted in place: 48 MiB of data, six 8 MiB chunks of rekey.
mkdir "$T/tree"
head -c 8M /dev/urandom >"$T/tree/blob"
echo "kekcrypt-firstboot-marker-$$" >"$T/tree/marker"
TPL=$T/template.img
mke2fs -q -t ext4 -d "$T/tree" -L kcdata "$TPL" 32M
cp --sparse=always "$TPL" "$T/fs.orig"
truncate -s 64M "$TPL"
kc encrypt "$TPL" --kek "file:$K" >/dev/null

# digests IMG: the "digest" values of the LUKS2 digests (they change with the volume key).
digests() {
	cryptsetup luksDump --dump-json-metadata "$1" | python3 -c 'import json, sys
print(" ".join(sorted(v["digest"] for v in json.load(sys.stdin)["digests"].values())))'
}
# mark IMG: what `template show --json` says.
mark() {
	kc template show --json "$1" >"$T/mark.json" && json_get "$T/mark.json" 'd["mark"]'
}
# kek_uris IMG: the KEK URIs of the kekcrypt tokens, in token order.
kek_uris() {
	kc kek list --json "$1" >"$T/list.json" &&
		json_get "$T/list.json" '" ".join(t["kek"] for t in d["tokens"])'
}
# dek_of IMG KEKFILE OUT: the DEK of IMG's first token, unwrapped by python3-cryptography
# (unwrap_dek; no kekcrypt code involved), in OUT.
dek_of() {
	local id
	kc kek list --json "$1" >"$T/dl.json" && id=$(json_get "$T/dl.json" 'd["tokens"][0]["id"]') &&
		unwrap_dek "$1" "$id" "$2" "$3"
}
# decrypts_with IMG DEKFILE: DEKFILE decrypts IMG's data segment (aes-xts-plain64, 512-byte
# sectors, python3-cryptography) to the template's filesystem: exit 0, else 1.
decrypts_with() {
	local off
	cryptsetup luksDump --dump-json-metadata "$1" >"$T/meta.json" &&
		off=$(json_get "$T/meta.json" 'd["segments"]["0"]["offset"]') &&
		python3 - "$1" "$off" "$2" "$T/fs.orig" <<'PY'
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
img, off, dek, orig = sys.argv[1:]
key = open(dek, "rb").read()
want = open(orig, "rb").read()
with open(img, "rb") as f:
    f.seek(int(off))
    data = f.read(len(want))
out = bytearray()
for i in range(0, len(data), 512):
    d = Cipher(algorithms.AES(key), modes.XTS((i // 512).to_bytes(16, "little"))).decryptor()
    out += d.update(data[i:i + 512]) + d.finalize()
sys.exit(0 if out == want else 1)
PY
}
# decrypts_to_orig IMG KEKFILE: dek_of, then decrypts_with.
decrypts_to_orig() {
	dek_of "$1" "$2" "$T/dek" && decrypts_with "$1" "$T/dek"
}
# fb_json IMG: firstboot --json on IMG (exit 0), its document in $T/fb.json.
fb_json() {
	assert_exit -m "firstboot $(basename "$1")" 0 kc firstboot --json "$1"
	cp "$OUT" "$T/fb.json"
}
fb() { json_get "$T/fb.json" "d[\"$1\"]"; }

# --- marking ----------------------------------------------------------------------------------
assert_exit -m "template show: an unmarked volume" 0 mark "$TPL"
assert_eq -m "... mark none" none "$(cat "$OUT")"
assert_exit -m "template mark" 0 kc template mark "$TPL"
assert_stdout_contains -m "... says so" "$TPL: template mark: template"
assert_eq -m "template show: template" template "$(mark "$TPL")"
assert_exit -m "dump shows the mark" 0 kc dump "$TPL"
assert_stdout_contains -m "... in text" "Template:    template: 'kekcrypt firstboot' gives each clone"
assert_exit -m "dump --json" 0 kc dump --json "$TPL"
assert_eq -m "... in JSON" template "$(json_get "$OUT" 'd["template"]')"
sum=$(header_sum "$TPL")
assert_exit -m "template mark again: exit 0" 0 kc template mark "$TPL"
assert_header_unchanged -m "... writes nothing" "$TPL" "$sum"
assert_exit -m "template with no sub-verb: a usage error" 2 kc template "$TPL"

new_img "$T/new.img"
assert_exit -m "format --template" 0 kc format -q "$T/new.img" --kek "file:$K" --template --json
assert_eq -m "... its JSON says template" true "$(json_get "$OUT" 'd["template"]')"
assert_eq -m "... and it is marked" template "$(mark "$T/new.img")"
assert_exit -m "format --template --recovery: a usage error" 2 \
	kc format -q "$T/new.img" --kek "file:$K" --template --recovery
assert_stderr_contains -m "... saying why" "--recovery and --template exclude each other"

dek_of "$TPL" "$K" "$T/dek.tpl"
assert_ok -m "the check of the payload: the template's DEK decrypts it to its filesystem" \
	decrypts_with "$TPL" "$T/dek.tpl"

# --- two clones -------------------------------------------------------------------------------
cp --sparse=always "$TPL" "$T/a.img"
cp --sparse=always "$TPL" "$T/b.img"
D0=$(digests "$TPL")
assert_eq -m "the clones start with the template's key" "$D0 $D0" \
	"$(digests "$T/a.img") $(digests "$T/b.img")"
fb_json "$T/a.img"
assert_eq -m "clone a: mark template, re-keyed, not resumed, 1 token" "template true false 1" \
	"$(fb mark) $(fb rekeyed) $(fb resumed) $(fb tokens)"
assert_exit -m "firstboot clone b (text)" 0 kc firstboot "$T/b.img"
assert_stdout_contains -m "... says what it did" "$T/b.img: data key rotated; template mark removed; 1 token(s)"
DA=$(digests "$T/a.img") DB=$(digests "$T/b.img")
assert_true -m "clone a's key is not the template's ($DA)" test "$DA" != "$D0"
assert_true -m "clone b's key is not the template's ($DB)" test "$DB" != "$D0"
assert_true -m "the clones' keys differ" test "$DA" != "$DB"
assert_exit -m "clone a verifies" 0 kc verify "$T/a.img"
assert_exit -m "clone b verifies" 0 kc verify "$T/b.img"
assert_eq -m "both marks are gone" "none none" "$(mark "$T/a.img") $(mark "$T/b.img")"
assert_exit -m "dump --json" 0 kc dump --json "$T/a.img"
assert_eq -m "... template none" none "$(json_get "$OUT" 'd["template"]')"
assert_eq -m "the tokens are on the template's KEK" "file:$K" "$(kek_uris "$T/a.img")"
sum=$(header_sum "$T/a.img")
fb_json "$T/a.img"
assert_eq -m "a second run: mark none, nothing done" "none false 0 0" \
	"$(fb mark) $(fb rekeyed) $(fb keks_added) $(fb tokens_removed)"
assert_header_unchanged -m "... writes nothing" "$T/a.img" "$sum"
assert_exit -m "a second run (text)" 0 kc firstboot "$T/a.img"
assert_stdout_contains -m "... says there was nothing to do" "$T/a.img: no template mark; nothing to do"
assert_ok -m "clone a decrypts to the template's filesystem" decrypts_to_orig "$T/a.img" "$K"
assert_ok -m "clone b too" decrypts_to_orig "$T/b.img" "$K"
assert_exit -m "the template's DEK no longer decrypts clone a" 1 decrypts_with "$T/a.img" "$T/dek.tpl"

# --- interrupted ------------------------------------------------------------------------------
cp --sparse=always "$TPL" "$T/c.img"
interrupt_after_chunk firstboot "$T/c.img" --progress-json
assert_eq -m "firstboot stopped by SIGINT after a chunk: exit 17" 17 "$RC"
assert_contains -m "... says how to continue" "$(cat "$ERR")" "Continue with 'kekcrypt firstboot $T/c.img'"
assert_eq -m "... the mark is still there" template "$(mark "$T/c.img")"
assert_exit -m "dump --json" 0 kc dump --json "$T/c.img"
assert_eq -m "... a rekey is in progress" re-encrypting "$(json_get "$OUT" 'd["rekey"]["phase"]')"
fb_json "$T/c.img"
assert_eq -m "the next run finishes it: re-keyed, resumed" "template true true" \
	"$(fb mark) $(fb rekeyed) $(fb resumed)"
DC=$(digests "$T/c.img")
assert_true -m "clone c's key is its own" test "$DC" != "$D0" -a "$DC" != "$DA" -a "$DC" != "$DB"
assert_eq -m "... mark gone" none "$(mark "$T/c.img")"
assert_exit -m "... verifies" 0 kc verify "$T/c.img"
assert_ok -m "... decrypts to the template's filesystem" decrypts_to_orig "$T/c.img" "$K"

# Stopped after the rekey, before the mark was removed: the mark says "rekeyed".
# token_mark IMG STATE [VERSION]: put a template mark of STATE (and format VERSION) on IMG.
token_mark() {
	printf '{"type":"kekcrypt-template","keyslots":[],"kekcrypt-template-version":"%s","kekcrypt-template-state":"%s"}' \
		"${3:-1}" "$2" >"$T/mark-token.json"
	cryptsetup --disable-external-tokens token import --json-file "$T/mark-token.json" "$1"
}
token_mark "$T/c.img" rekeyed
assert_eq -m "a mark in state rekeyed" rekeyed "$(mark "$T/c.img")"
fb_json "$T/c.img"
assert_eq -m "firstboot: not re-keyed again" "rekeyed false" "$(fb mark) $(fb rekeyed)"
assert_eq -m "... the key unchanged, the mark gone" "$DC none" "$(digests "$T/c.img") $(mark "$T/c.img")"

# --- per-instance KEKs ------------------------------------------------------------------------
cp --sparse=always "$TPL" "$T/d.img"
cp "$T_CONF" "$T/plain.conf"
printf '[firstboot]\nkek = file:%s\n' "$K2" >>"$T_CONF"
fb_json "$T/d.img"
assert_eq -m "[firstboot] KEK: re-keyed, 1 KEK added, 1 token removed, 1 token" "true 1 1 1" \
	"$(fb rekeyed) $(fb keks_added) $(fb tokens_removed) $(fb tokens)"
assert_eq -m "... the tokens are on the new KEK only" "file:$K2" "$(kek_uris "$T/d.img")"
assert_exit -m "... which unwraps" 0 kc verify "$T/d.img"
assert_true -m "... a key of its own" test "$(digests "$T/d.img")" != "$D0"
assert_eq -m "... mark gone" none "$(mark "$T/d.img")"

# A [firstboot] KEK that does not work: the rekey is done, nothing is removed, the mark says
# "rekeyed"; once the KEK works the next run finishes without re-keying again.
K3=$T/kek3.bin
cp --sparse=always "$TPL" "$T/g.img"
cp "$T/plain.conf" "$T_CONF"
printf '[firstboot]\nkek = file:%s\n' "$K3" >>"$T_CONF"
assert_exit -m "firstboot with a [firstboot] KEK file missing: exit 3" 3 kc firstboot "$T/g.img"
assert_eq -m "... the template's token kept, the mark says rekeyed" "file:$K rekeyed" \
	"$(kek_uris "$T/g.img") $(mark "$T/g.img")"
DG=$(digests "$T/g.img")
assert_true -m "... re-keyed" test "$DG" != "$D0"
new_kek "$K3"
fb_json "$T/g.img"
assert_eq -m "the KEK there: finished without a second rekey, 1 added, 1 removed" \
	"rekeyed false 1 1" "$(fb mark) $(fb rekeyed) $(fb keks_added) $(fb tokens_removed)"
assert_eq -m "... on the new KEK only, the key unchanged, the mark gone" "file:$K3 $DG none" \
	"$(kek_uris "$T/g.img") $(digests "$T/g.img") $(mark "$T/g.img")"

# Stopped between adding the [firstboot] KEK and removing the template's: the next run removes.
cp --sparse=always "$TPL" "$T/h.img"
kc kek add "$T/h.img" --kek "file:$K3" >/dev/null
kc template clear "$T/h.img" >/dev/null
token_mark "$T/h.img" rekeyed
fb_json "$T/h.img"
assert_eq -m "KEK added before: none added, 1 removed, on the new KEK only" "0 1 file:$K3" \
	"$(fb keks_added) $(fb tokens_removed) $(kek_uris "$T/h.img")"

# A forged mark on a volume of a machine without [firstboot]: re-keyed, KEK unchanged.
cp "$T/plain.conf" "$T_CONF"
new_img "$T/e.img"
kc format -q "$T/e.img" --kek "file:$K" >/dev/null
DE=$(digests "$T/e.img")
token_mark "$T/e.img" template
fb_json "$T/e.img"
assert_eq -m "forged mark, no [firstboot]: re-keyed, no KEK added or removed" "true 0 0" \
	"$(fb rekeyed) $(fb keks_added) $(fb tokens_removed)"
assert_eq -m "... still on its own KEK" "file:$K" "$(kek_uris "$T/e.img")"
assert_true -m "... a new key" test "$(digests "$T/e.img")" != "$DE"

# A malformed mark: an error, nothing written; template clear removes it.
token_mark "$T/e.img" template 2
sum=$(header_sum "$T/e.img")
assert_exit -m "firstboot with a mark of an unknown version: exit 9" 9 kc firstboot "$T/e.img"
assert_stderr_contains -m "... saying why" "template mark version '2' is not supported"
assert_header_unchanged -m "... writes nothing" "$T/e.img" "$sum"
assert_exit -m "dump --json still works" 0 kc dump --json "$T/e.img"
assert_eq -m "... the mark is invalid" invalid "$(json_get "$OUT" 'd["template"]')"
assert_exit -m "template mark over it" 0 kc template mark "$T/e.img"
assert_eq -m "... a mark that reads" template "$(mark "$T/e.img")"
assert_eq -m "... and only one" 1 "$(cryptsetup luksDump --dump-json-metadata "$T/e.img" |
	json_get /dev/stdin 'sum(t["type"] == "kekcrypt-template" for t in d["tokens"].values())')"
token_mark "$T/e.img" template 2
assert_exit -m "template clear" 0 kc template clear "$T/e.img"
assert_eq -m "... the mark is gone" none "$(mark "$T/e.img")"
assert_exit -m "template clear again: exit 0" 0 kc template clear "$T/e.img"

# --- --crypttab -------------------------------------------------------------------------------
cp --sparse=always "$TPL" "$T/f.img"
cat >"$T/crypttab" <<CT
f $T/f.img none luks
e $T/e.img none luks
CT
assert_exit -m "firstboot --crypttab --json" 0 kc firstboot --crypttab="$T/crypttab" --json
cp "$OUT" "$T/run.json"
assert_eq -m "... both done, f re-keyed, e had no mark" "firstboot done true done none" \
	"$(json_get "$T/run.json" '" ".join([d["verb"], d["volumes"][0]["status"], str(d["volumes"][0]["result"]["rekeyed"]).lower(), d["volumes"][1]["status"], d["volumes"][1]["result"]["mark"]])')"
assert_eq -m "... f's mark gone" none "$(mark "$T/f.img")"
assert_exit -m "firstboot DEVICE --crypttab: a usage error" 2 \
	kc firstboot "$T/f.img" --crypttab="$T/crypttab"

done_testing
