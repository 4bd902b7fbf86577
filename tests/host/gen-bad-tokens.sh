#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Generate LUKS2 images whose kekcrypt token is malformed while the LUKS2 header itself stays
# valid: the token JSON is rewritten and put back with `cryptsetup token remove` +
# `cryptsetup token import --token-id N` (cryptsetup checks only the generic token fields and
# recomputes the header checksums).
#
# Usage: gen-bad-tokens.sh GOOD_IMG KEKFILE OUTDIR
#
#   GOOD_IMG  a kekcrypt volume whose token 0 is a good file-KEK token bound to keyslot 0
#   KEKFILE   its KEK (used to build the large-metadata base image, see "big" below)
#   OUTDIR    receives NAME.img for each variant and cases.tsv, one line per variant:
#               NAME <TAB> EXPECTED-VERIFY-EXIT <TAB> DEFECT (a substring the error message
#               and dump's reason must contain; "-" for the controls, which verify) <TAB>
#               DESCRIPTION
#             and skipped.tsv: NAME <TAB> why (variants cryptsetup itself refuses to store).
#
# Exit status: 0, or 1 if a variant could not be generated for another reason than a refusal
# by cryptsetup.
set -euo pipefail
export LC_ALL=C

[ $# -eq 3 ] || {
	echo "usage: $0 GOOD_IMG KEKFILE OUTDIR" >&2
	exit 2
}
GOOD=$1
KEK=$2
OUT=$3
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-gen-bad-tokens.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

CS=(cryptsetup --disable-external-tokens)
"${CS[@]}" token export --token-id 0 "$GOOD" >"$WORK/good.json"

# --- the large-metadata base image ----------------------------------------------------------
# The default LUKS2 JSON area (12 KiB) cannot hold a 100 KiB field: "big.base" is a LUKS2
# volume with a 256 KiB metadata area made by cryptsetup itself, with the same DEK as GOOD_IMG
# (unwrapped by python3-cryptography) and a kekcrypt token wrapped by python3-cryptography.
# That it verifies is checked by bad-tokens.sh (variant "big-control"): it also shows that a
# token written by an independent implementation is accepted.
python3 - "$WORK/good.json" "$KEK" "$WORK/dek" "$WORK/big-token.json" <<'PY'
import base64, json, os, sys
from cryptography.hazmat.primitives.keywrap import (aes_key_unwrap_with_padding,
                                                    aes_key_wrap_with_padding)
tok = json.load(open(sys.argv[1]))
kek = open(sys.argv[2], "rb").read()
dek = aes_key_unwrap_with_padding(kek, base64.b64decode(tok["kekcrypt-wrapped-key"]))
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, dek)
os.close(fd)
tok["kekcrypt-wrapped-key"] = base64.b64encode(aes_key_wrap_with_padding(kek, dek)).decode()
json.dump(tok, open(sys.argv[4], "w"))
PY
printf 'kekcrypt-gen-bad-tokens' >"$WORK/pass"
rm -f "$WORK/big.img"
truncate -s 32M "$WORK/big.img"
"${CS[@]}" luksFormat -q --type luks2 --luks2-metadata-size 256k \
	--volume-key-file "$WORK/dek" --key-size $(($(stat -c %s "$WORK/dek") * 8)) \
	--cipher "$(python3 -c 'import json, sys
d = json.load(sys.stdin); print(d["segments"]["0"]["encryption"])' < <(cryptsetup luksDump --dump-json-metadata "$GOOD"))" \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$WORK/big.img" "$WORK/pass"
"${CS[@]}" token import --json-file "$WORK/big-token.json" --token-id 0 "$WORK/big.img"

# "two": GOOD_IMG plus an unbound passphrase keyslot 1, so that a token may name two keyslots.
cp --sparse=always "$GOOD" "$WORK/two.img"
"${CS[@]}" luksAddKey -q --volume-key-file "$WORK/dek" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--new-key-slot 1 "$WORK/two.img" "$WORK/pass"

# --- the variants -------------------------------------------------------------------------------
# Each variant: name, base image (good|big|two), expected verify exit, defect substring, and a
# python expression turning the good token `t` (a dict) into the bad JSON text.
python3 - "$WORK/good.json" "$WORK/variants" <<'PY'
import base64, json, os, sys

good = json.load(open(sys.argv[1]))
outdir = sys.argv[2]
os.makedirs(outdir, exist_ok=True)
W = "kekcrypt-wrapped-key"
b64 = good[W]
variants = []

DEL = object()

def v(name, exit_code, defect, desc, text=None, base="good", **changes):
    """Token = good token with CHANGES (DEL deletes a field), or raw TEXT."""
    if text is None:
        t = dict(good)
        for k, val in changes.items():
            if val is DEL:
                t.pop(k, None)
            else:
                t[k] = val
        text = json.dumps(t)
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        f.write(text)
    variants.append((name, base, exit_code, defect, desc))

# controls
v("control", 0, "-", "the good token, rewritten unchanged")
v("unknown-field", 0, "-", "an unknown extra field is tolerated (format version 1)",
  **{"kekcrypt-future-field": "x"})
v("big-control", 0, "-", "token built by python3-cryptography on a 256 KiB-metadata volume "
  "made by cryptsetup", base="big")

# wrong JSON types
v("version-number", 9, "kekcrypt-version", "format version as a JSON number",
  **{"kekcrypt-version": 1})
v("provider-array", 9, "kekcrypt-provider", "provider as an array", **{"kekcrypt-provider": ["file"]})
v("key-id-object", 9, "kekcrypt-key-id", "key-id as an object",
  **{"kekcrypt-key-id": {"uri": good["kekcrypt-key-id"]}})
v("key-id-null", 9, "kekcrypt-key-id", "key-id null", **{"kekcrypt-key-id": None})
v("wrapped-number", 9, W, "wrapped key as a number", **{W: 12345})
v("wrapped-bool", 9, W, "wrapped key as a boolean", **{W: True})
v("created-number", 9, "kekcrypt-created", "created as a number", **{"kekcrypt-created": 1700000000})
v("keyslots-string", 9, "keyslots", "keyslots not an array", keyslots="0")
v("keyslots-number", 9, "keyslots", "keyslots holding a number", keyslots=[0])
v("keyslots-two", 9, "keyslot", "bound to two keyslots", keyslots=["0", "1"], base="two")

# bad base64
v("b64-bad-chars", 9, "base64", "characters outside the base64 alphabet",
  **{W: b64[:10] + "!*$%" + b64[14:]})
v("b64-space", 9, "base64", "a space inside the base64", **{W: b64[:40] + " " + b64[41:]})
v("b64-urlsafe", 9, "base64", "base64url alphabet ('-' and '_')",
  **{W: "-_" + b64[2:]})
v("b64-length", 9, "base64", "length not a multiple of 4", **{W: b64[:-1]})
v("b64-extra-pad", 9, "base64", "padding on an unpadded string", **{W: b64 + "===="})
v("b64-pad-middle", 9, "base64", "padding in the middle", **{W: b64[:20] + "==" + b64[22:]})
v("b64-only-pad", 9, "base64", "nothing but padding", **{W: "===="})

# absurd sizes
v("wrapped-4", 9, "4 bytes", "a wrapped key of 4 bytes",
  **{W: base64.b64encode(os.urandom(4)).decode()})
v("wrapped-600", 9, "600 bytes", "a wrapped key of 600 bytes",
  **{W: base64.b64encode(os.urandom(600)).decode()})
v("wrapped-100k", 9, W, "a 100 KiB wrapped key", base="big",
  **{W: base64.b64encode(os.urandom(75 * 1024)).decode()})
v("key-id-100k", 9, "kekcrypt-key-id", "a 100 KiB key-id", base="big",
  **{"kekcrypt-key-id": "file:/" + "a" * (100 * 1024)})
v("created-100k", 9, "kekcrypt-created", "a 100 KiB created", base="big",
  **{"kekcrypt-created": "2" * (100 * 1024)})
v("version-long", 9, "kekcrypt-version", "a 100 KiB version", base="big",
  **{"kekcrypt-version": "1" * (100 * 1024)})
v("provider-empty", 9, "kekcrypt-provider", "an empty provider", **{"kekcrypt-provider": ""})
v("key-id-nul", 9, "kekcrypt-key-id", "a NUL inside the key-id",
  **{"kekcrypt-key-id": good["kekcrypt-key-id"] + "\u0000.evil"})

# versions, providers, algorithms
v("version-2", 9, "version 2", "unknown token format version \"2\"", **{"kekcrypt-version": "2"})
v("version-0", 9, "version 0", "token format version \"0\"", **{"kekcrypt-version": "0"})
v("version-text", 9, "kekcrypt-version", "format version \"one\"", **{"kekcrypt-version": "one"})
v("provider-nosuch", 3, "nosuch", "unknown provider \"nosuch\"", **{"kekcrypt-provider": "nosuch"})
v("provider-bad-chars", 9, "kekcrypt-provider", "provider with invalid characters",
  **{"kekcrypt-provider": "../../file"})
v("key-id-pkcs11", 9, "does not belong", "file provider with a pkcs11: key-id",
  **{"kekcrypt-key-id": "pkcs11:token=t;object=o"})
v("key-id-vault", 9, "does not belong", "file provider with a vault-transit+https: key-id",
  **{"kekcrypt-key-id": "vault-transit+https://127.0.0.1:8200/v1/transit/keys/k"})
v("key-id-no-scheme", 9, "does not belong", "key-id without a scheme",
  **{"kekcrypt-key-id": "/etc/kekcrypt/kek.bin"})
v("wrap-alg-other", 9, "wrap algorithm", "wrap algorithm A128KW for a file KEK",
  **{"kekcrypt-wrap-alg": "A128KW"})
v("wrap-alg-bad-chars", 9, "kekcrypt-wrap-alg", "wrap algorithm with invalid characters",
  **{"kekcrypt-wrap-alg": "A256KWP;rm"})
v("key-version-file", 9, "key version", "a key version on a file KEK",
  **{"kekcrypt-key-version": "3"})

# missing fields
for field in ("version", "provider", "key-id", "wrap-alg", "wrapped-key", "created"):
    v("missing-" + field, 9, "kekcrypt-" + field, "field kekcrypt-%s missing" % field,
      **{"kekcrypt-" + field: DEL})
v("missing-keyslots", 9, "keyslots", "field keyslots missing", keyslots=DEL)

# not a JSON object / not JSON
v("json-array", 9, "JSON object", "a JSON array", text=json.dumps([good]))
v("json-string", 9, "JSON object", "a JSON string", text=json.dumps("kekcrypt"))
v("json-truncated", 9, "JSON object", "truncated JSON", text=json.dumps(good)[:-5])
v("json-deep", 9, "JSON object", "an extra field nested 10000 levels deep",
  text=json.dumps(good)[:-1] + ', "x": ' + "[" * 10000 + "]" * 10000 + "}")

with open(os.path.join(outdir, "list"), "w") as lst:
    for name, base, code, defect, desc in variants:
        lst.write("\t".join((name, base, str(code), defect, desc)) + "\n")
PY

: >"$OUT/cases.tsv"
: >"$OUT/skipped.tsv"
rc=0
while IFS=$'\t' read -r name base code defect desc; do
	img=$OUT/$name.img
	case $base in
	good) cp --sparse=always "$GOOD" "$img" ;;
	big) cp --sparse=always "$WORK/big.img" "$img" ;;
	two) cp --sparse=always "$WORK/two.img" "$img" ;;
	esac
	if ! "${CS[@]}" token remove --token-id 0 "$img" 2>"$WORK/err"; then
		echo "gen-bad-tokens: $name: cannot remove token 0: $(cat "$WORK/err")" >&2
		rc=1
		continue
	fi
	if "${CS[@]}" token import --json-file "$WORK/variants/$name.json" --token-id 0 "$img" \
		2>"$WORK/err"; then
		printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$defect" "$desc" >>"$OUT/cases.tsv"
	else
		# cryptsetup validates the generic token fields (a JSON object, "type" a string,
		# "keyslots" an array of existing keyslot numbers as strings) and refuses the rest:
		# such a token can never reach kekcrypt through libcryptsetup.
		printf '%s\tcryptsetup refuses to store it: %s\n' "$name" \
			"$(tr '\n' ' ' <"$WORK/err")" >>"$OUT/skipped.tsv"
		rm -f "$img"
	fi
done <"$WORK/variants/list"
exit $rc
