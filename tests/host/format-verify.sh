#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# format + verify with a file KEK, on an image file and on a loop device; the result is a
# LUKS2 volume cryptsetup accepts, with a kekcrypt token and PBKDF2/1000 keyslot and digest;
# dump shows the token and never the DEK; format refuses a device holding a filesystem or
# LUKS unless --force; --label, --cipher/--key-size and --sector-size reach the header.
. "$(dirname "$0")/lib.sh"
need losetup mkfs.ext4 blkid

T=$T_DIR
IMG=$T/disk.img
KEK=$T/kek.bin
URI=file:$KEK
new_kek "$KEK"
new_img "$IMG"

# --- format and verify on an image file -----------------------------------------------------
assert_exit 0 kc format -q "$IMG" --kek "$URI"
assert_stdout_contains "Formatted $IMG with 1 KEK"
assert_exit 0 kc verify "$IMG"
assert_stdout_contains -m "verify names the token" "token 0"
assert_stdout_contains -m "verify names the KEK URI" "$URI"

assert_exit 0 kc verify --json "$IMG"
assert_eq -m "verify --json: token 0" 0 "$(json_get "$OUT" 'd["token"]')"
assert_eq -m "verify --json: kek URI" "$URI" "$(json_get "$OUT" 'd["kek"]')"
assert_eq -m "verify --json: keyslot 0" 0 "$(json_get "$OUT" 'd["keyslot"]')"

# --- what cryptsetup sees -------------------------------------------------------------------
assert_exit -m "cryptsetup isLuks --type luks2 accepts it" 0 cryptsetup isLuks --type luks2 "$IMG"
assert_exit -m "cryptsetup luksDump accepts it" 0 cryptsetup luksDump "$IMG"
dumptext=$(cat "$OUT")
assert_contains -m "luksDump lists a token of type kekcrypt" "$dumptext" "0: kekcrypt"
assert_exit -m "cryptsetup luksDump --dump-json-metadata" 0 \
	cryptsetup luksDump --dump-json-metadata "$IMG"
cp "$OUT" "$T/meta.json"
assert_eq -m "one keyslot" 1 "$(json_get "$T/meta.json" 'len(d["keyslots"])')"
assert_eq -m "keyslot KDF is pbkdf2" pbkdf2 "$(json_get "$T/meta.json" 'd["keyslots"]["0"]["kdf"]["type"]')"
assert_eq -m "keyslot KDF has 1000 iterations" 1000 \
	"$(json_get "$T/meta.json" 'd["keyslots"]["0"]["kdf"]["iterations"]')"
assert_eq -m "digest is pbkdf2" pbkdf2 "$(json_get "$T/meta.json" 'd["digests"]["0"]["type"]')"
assert_eq -m "digest has 1000 iterations" 1000 \
	"$(json_get "$T/meta.json" 'd["digests"]["0"]["iterations"]')"
assert_eq -m "token 0 is of type kekcrypt" kekcrypt "$(json_get "$T/meta.json" 'd["tokens"]["0"]["type"]')"
assert_eq -m "token 0 is bound to keyslot 0" '["0"]' \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["keyslots"]')"
assert_eq -m "token field kekcrypt-version is \"1\"" 1 \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["kekcrypt-version"]')"
assert_eq -m "token field kekcrypt-provider" file \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["kekcrypt-provider"]')"
assert_eq -m "token field kekcrypt-key-id" "$URI" \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["kekcrypt-key-id"]')"
assert_eq -m "token field kekcrypt-wrap-alg" A256KWP \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["kekcrypt-wrap-alg"]')"
assert_true -m "token field kekcrypt-created is ISO 8601 UTC" python3 -c '
import json, re, sys
c = json.load(open(sys.argv[1]))["tokens"]["0"]["kekcrypt-created"]
sys.exit(0 if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c) else 1)' "$T/meta.json"
assert_eq -m "the file provider stores no key version" false \
	"$(json_get "$T/meta.json" '"kekcrypt-key-version" in d["tokens"]["0"]')"

# The independent unwrap gives a key of the volume's size (the real interoperability proof
# against cryptsetup is in secrets.sh).
unwrap_dek "$IMG" 0 "$KEK" "$T/dek"
assert_eq -m "unwrapped DEK is 64 bytes (aes-xts 512 bits)" 64 "$(stat -c %s "$T/dek")"

# --- kekcrypt dump ----------------------------------------------------------------------------
assert_exit 0 kc dump "$IMG"
cp "$OUT" "$T/dump.txt"
assert_stdout_contains -m "dump shows token 0 with its URI" "0: $URI"
assert_stdout_contains -m "dump shows the provider" "provider:  file"
assert_stdout_contains -m "dump shows the wrap algorithm and size" "A256KWP (72 bytes)"
assert_stdout_contains -m "dump shows the cipher" "aes-xts-plain64"
assert_stdout_contains -m "dump shows the key size" "512 bits"
assert_exit 0 kc dump --json "$IMG"
cp "$OUT" "$T/dump.json"
assert_true -m "dump --json is valid JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/dump.json"
assert_eq -m "dump --json: one token" 1 "$(json_get "$T/dump.json" 'len(d["tokens"])')"
assert_eq -m "dump --json: token id" 0 "$(json_get "$T/dump.json" 'd["tokens"][0]["id"]')"
assert_eq -m "dump --json: token valid" true "$(json_get "$T/dump.json" 'd["tokens"][0]["valid"]')"
assert_eq -m "dump --json: kek" "$URI" "$(json_get "$T/dump.json" 'd["tokens"][0]["kek"]')"
assert_eq -m "dump --json: provider" file "$(json_get "$T/dump.json" 'd["tokens"][0]["provider"]')"
assert_eq -m "dump --json: keyslot" 0 "$(json_get "$T/dump.json" 'd["tokens"][0]["keyslot"]')"
assert_eq -m "dump --json: wrap_alg" A256KWP "$(json_get "$T/dump.json" 'd["tokens"][0]["wrap_alg"]')"
assert_eq -m "dump --json: wrapped_bytes" 72 "$(json_get "$T/dump.json" 'd["tokens"][0]["wrapped_bytes"]')"
assert_eq -m "dump --json: format_version" 1 "$(json_get "$T/dump.json" 'd["tokens"][0]["format_version"]')"
assert_eq -m "dump --json: created as in the header" \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["kekcrypt-created"]')" \
	"$(json_get "$T/dump.json" 'd["tokens"][0]["created"]')"
assert_eq -m "dump --json: uuid as cryptsetup reports it" "$(cryptsetup luksUUID "$IMG")" \
	"$(json_get "$T/dump.json" 'd["uuid"]')"
assert_eq -m "dump --json: cipher" aes-xts-plain64 "$(json_get "$T/dump.json" 'd["cipher"]')"
assert_eq -m "dump --json: key_bits" 512 "$(json_get "$T/dump.json" 'd["key_bits"]')"
assert_eq -m "dump --json: sector_size" 512 "$(json_get "$T/dump.json" 'd["sector_size"]')"
assert_eq -m "dump --json: keyslots" "[0]" "$(json_get "$T/dump.json" 'd["keyslots"]')"
assert_no_secret -m "dump and dump --json never show the DEK" "$T/dek" "$T/dump.txt" "$T/dump.json"
assert_exit 0 kc kek list "$IMG"
cp "$OUT" "$T/list.txt"
assert_exit 0 kc kek list --json "$IMG"
cp "$OUT" "$T/list.json"
assert_no_secret -m "kek list never shows the DEK" "$T/dek" "$T/list.txt" "$T/list.json"

# --- on a loop device -------------------------------------------------------------------------
LIMG=$T/loop.img
new_img "$LIMG"
loop_attach "$LIMG"
diag "loop device $LOOP"
assert_exit -m "format on a loop device" 0 kc format -q "$LOOP" --kek "$URI"
assert_exit -m "verify on the loop device" 0 kc verify "$LOOP"
assert_stdout_contains -m "verify on the loop device names token and KEK" "token 0 ($URI)"
assert_exit -m "cryptsetup isLuks --type luks2 on the loop device" 0 \
	cryptsetup isLuks --type luks2 "$LOOP"
assert_exit -m "dump on the loop device" 0 kc dump --json "$LOOP"
assert_eq -m "dump --json on the loop device names the device" "$LOOP" "$(json_get "$OUT" 'd["device"]')"
loop_detach "$LOOP"
assert_exit -m "the image behind the loop device verifies" 0 kc verify "$LIMG"

# --- format refuses to overwrite data --------------------------------------------------------
FIMG=$T/ext4.img
new_img "$FIMG"
mkfs.ext4 -F -q "$FIMG"
sum=$(header_sum "$FIMG")
assert_exit -m "format refuses an ext4 image (exit 11)" 11 kc format -q "$FIMG" --kek "$URI"
assert_stderr_contains -m "the refusal names the device" "$FIMG"
assert_stderr_contains -m "the refusal names the filesystem" "ext4"
assert_stderr_contains -m "the refusal mentions --force" "--force"
assert_header_unchanged -m "the ext4 image is untouched" "$FIMG" "$sum"
assert_eq -m "blkid still sees ext4" ext4 "$(blkid -p -o value -s TYPE "$FIMG")"
assert_exit -m "format --force overwrites the ext4 image" 0 kc format -q --force "$FIMG" --kek "$URI"
assert_exit -m "the forced volume verifies" 0 kc verify "$FIMG"
assert_exit -m "the forced volume is LUKS2" 0 cryptsetup isLuks --type luks2 "$FIMG"

sum=$(header_sum "$IMG")
KEK2=$T/kek2.bin
new_kek "$KEK2"
assert_exit -m "format refuses an image holding kekcrypt LUKS2 (exit 11)" 11 \
	kc format -q "$IMG" --kek "file:$KEK2"
assert_stderr_contains -m "the refusal names the device" "$IMG"
assert_stderr_contains -m "the refusal names LUKS" "crypto_LUKS"
assert_header_unchanged -m "the LUKS header is untouched" "$IMG" "$sum"
assert_exit -m "the old KEK still verifies" 0 kc verify "$IMG"

PIMG=$T/plain-luks.img
new_img "$PIMG"
printf 'pass' >"$T/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$PIMG" "$T/pass"
sum=$(header_sum "$PIMG")
assert_exit -m "format refuses a cryptsetup LUKS2 volume (exit 11)" 11 \
	kc format -q "$PIMG" --kek "$URI"
assert_header_unchanged -m "the cryptsetup volume is untouched" "$PIMG" "$sum"

# --- format options ---------------------------------------------------------------------------
OIMG=$T/opts.img
new_img "$OIMG"
assert_exit -m "format with --label, --cipher aes-cbc-essiv:sha256, --key-size 256, --sector-size 4096" \
	0 kc format -q "$OIMG" --kek "$URI" --label kc-test-label --cipher aes-cbc-essiv:sha256 \
	--key-size 256 --sector-size 4096
assert_exit 0 kc dump --json "$OIMG"
cp "$OUT" "$T/opts.json"
assert_eq -m "dump --json: label" kc-test-label "$(json_get "$T/opts.json" 'd["label"]')"
assert_eq -m "dump --json: cipher" aes-cbc-essiv:sha256 "$(json_get "$T/opts.json" 'd["cipher"]')"
assert_eq -m "dump --json: key_bits" 256 "$(json_get "$T/opts.json" 'd["key_bits"]')"
assert_eq -m "dump --json: sector_size" 4096 "$(json_get "$T/opts.json" 'd["sector_size"]')"
assert_exit 0 cryptsetup luksDump --dump-json-metadata "$OIMG"
cp "$OUT" "$T/opts-meta.json"
assert_eq -m "cryptsetup sees the label" kc-test-label \
	"$(cryptsetup luksDump "$OIMG" | sed -n 's/^Label:[[:space:]]*//p')"
assert_eq -m "cryptsetup sees the cipher" aes-cbc-essiv:sha256 \
	"$(json_get "$T/opts-meta.json" 'd["segments"]["0"]["encryption"]')"
assert_eq -m "cryptsetup sees the sector size" 4096 \
	"$(json_get "$T/opts-meta.json" 'd["segments"]["0"]["sector_size"]')"
assert_eq -m "cryptsetup sees a 256-bit key" 32 \
	"$(json_get "$T/opts-meta.json" 'd["keyslots"]["0"]["key_size"]')"
assert_exit -m "the volume with options verifies" 0 kc verify "$OIMG"
unwrap_dek "$OIMG" 0 "$KEK" "$T/dek256"
assert_eq -m "its DEK is 32 bytes" 32 "$(stat -c %s "$T/dek256")"

done_testing
