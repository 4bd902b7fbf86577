#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Enrolling volumes kekcrypt did not format (issue 14, items 1 and 4), on real LUKS2 headers
# made by cryptsetup: kek add authorised by an existing passphrase from --key-file FILE and
# --key-file - (read whole, as cryptsetup reads a key file), by a recovery key
# (--recovery-key) once the KEKs are gone, and recovery add by a passphrase; without a
# terminal and without --key-file a clear error; a wrong passphrase changes nothing; the
# passphrase keyslot stays unless --wipe-passphrase, which is refused when a clevis token
# holds that keyslot or when no token would still unlock the volume; the passphrase is in no
# log (debug or audit); dump, verify --all and doctor count only kekcrypt tokens beside
# passphrase and clevis keyslots, which doctor names as other ways in; the terminal prompt
# (through script(1)) echoes nothing. A LUKS1 volume, an ext4 image, a partitioned image and
# a zeroed one are each named for what they are (LUKS1: exit 27, the others 10) and left as
# they were; kek add --convert --header-backup FILE turns the LUKS1 volume into LUKS2 after
# saving its header in FILE, then enrols it.
. "$(dirname "$0")/lib.sh"
need blkid mkfs.ext4 script timeout

T=$T_DIR
IMG=$T/disk.img
PW='correct horse battery staple'
(umask 077 && printf '%s' "$PW" >"$T/pass" && printf 'wrong' >"$T/wrong" &&
	printf '%s\n' "$PW" >"$T/pass-nl")
for k in 0 1 2 3; do
	new_kek "$T/k$k"
done
: >"$T/kmsg"
export KC_AUDIT_KMSG_PATH=$T/kmsg

# luks2_img IMG: a LUKS2 volume as cryptsetup makes one, $T/pass its passphrase (keyslot 0).
luks2_img() {
	new_img "$1"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		"$1" "$T/pass"
}
# opens_with IMG FILE: cryptsetup accepts the content of FILE as a passphrase of IMG.
opens_with() {
	cryptsetup open --test-passphrase --key-file "$2" "$1"
}
# meta IMG: cryptsetup's view of the header as JSON in $T/meta.json
meta() {
	cryptsetup luksDump --dump-json-metadata "$1" >"$T/meta.json"
}

luks2_img "$IMG"
sum=$(header_sum "$IMG")
assert_exit -m "no kekcrypt token, no --key-file, no terminal: credential required (6)" 6 \
	kc kek add "$IMG" --kek "file:$T/k0" </dev/null
assert_stderr_contains -m "... saying how to give one" "--key-file FILE"
assert_header_unchanged -m "... and nothing is written" "$IMG" "$sum"
assert_exit -m "a wrong passphrase: wrong key (8)" 8 kc kek add "$IMG" --kek "file:$T/k0" \
	--key-file "$T/wrong"
assert_stderr_contains -m "... saying it opens no keyslot" \
	"device '$IMG': the passphrase given opens none of its keyslots"
assert_header_unchanged -m "... and nothing is written" "$IMG" "$sum"
assert_exit -m "a key file is read whole: its newline is part of it (8)" 8 \
	kc kek add "$IMG" --kek "file:$T/k0" --key-file "$T/pass-nl"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
assert_exit -m "a key file that does not exist: exit 3" 3 kc kek add "$IMG" --kek "file:$T/k0" \
	--key-file "$T/no-such-file"
assert_stderr_contains -m "... naming it" "$T/no-such-file"
assert_exit -m "an empty standard input: credential required (6)" 6 \
	kc kek add "$IMG" --kek "file:$T/k0" --key-file - </dev/null
assert_stderr_contains -m "... saying nothing was read" "no passphrase read"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
assert_exit -m "--key-file on kek remove: usage error" 2 kc kek remove "$IMG" --token 0 \
	--key-file "$T/pass"

# --key-file FILE, with the debug log on.
assert_exit -m "kek add --key-file FILE on a cryptsetup volume" 0 \
	kc kek add "$IMG" --kek "file:$T/k0" --key-file "$T/pass" --debug
assert_stdout_contains -m "... adds token 0, authorised by keyslot 0" \
	"added token 0 for file:$T/k0, authorised by the passphrase of keyslot 0"
assert_not_contains -m "the passphrase is not in the debug log" "$(cat "$ERR")" "$PW"
assert_not_contains -m "... nor in the output" "$(cat "$OUT")" "$PW"
meta "$IMG"
assert_eq -m "token 0 is a kekcrypt token" kekcrypt "$(json_get "$T/meta.json" 'd["tokens"]["0"]["type"]')"
assert_eq -m "the passphrase keyslot 0 is kept beside the token's" '["0", "1"]' \
	"$(json_get "$T/meta.json" 'sorted(d["keyslots"])')"
assert_ok -m "... and still opens the volume" opens_with "$IMG" "$T/pass"
assert_exit -m "verify opens it through the new token" 0 kc verify "$IMG" --token 0
assert_stdout_contains "token 0 (file:$T/k0)"
assert_true -m "the audit event: kek-add, by passphrase, token 0" grep -Eq \
	"audit: event=kek-add outcome=ok device=$IMG uuid=[-0-9a-f]+ token=0 kek=file:$T/k0 .*by=passphrase" \
	"$T/kmsg"

# Asked on a terminal (script(1) gives it one): no echo, the newline typed is not part of it.
IMG3=$T/disk3.img
luks2_img "$IMG3"
mkfifo "$T/tty-in"
timeout 60 script -qefc "$KEKCRYPT --config $T_CONF kek add $IMG3 --kek file:$T/k0" "$T/typescript" \
	<"$T/tty-in" >/dev/null 2>&1 &
exec 9>"$T/tty-in"
for _ in $(seq 300); do
	grep -q "Enter an existing passphrase for $IMG3: " "$T/typescript" && break
	sleep 0.1
done
printf '%s\n' "$PW" >&9
exec 9>&-
assert_true -m "the terminal prompt: kek add exits 0" wait $!
assert_true -m "... it asked 'Enter an existing passphrase for DEVICE:'" \
	grep -q "Enter an existing passphrase for $IMG3: " "$T/typescript"
assert_true -m "... and added the token" grep -q "added token 0 for file:$T/k0, authorised by the passphrase of keyslot 0" "$T/typescript"
assert_not_contains -m "... without echoing the passphrase" "$(cat "$T/typescript")" "$PW"
assert_exit -m "... verify opens it through the new token" 0 kc verify "$IMG3"

# --key-file -: standard input, read whole.
assert_exit -m "kek add --key-file - (standard input) --json" 0 \
	kc kek add "$IMG" --kek "file:$T/k1" --key-file - --json <"$T/pass"
cp "$OUT" "$T/add.json"
assert_eq -m "... token 1 added" "1 True" "$(json_get "$T/add.json" 'd["token"], d["added"]' | tr -d '(),')"
assert_eq -m "... authorised by the passphrase of keyslot 0" "passphrase 0" \
	"$(json_get "$T/add.json" 'd["authorised_by"] + " " + str(d["auth_keyslot"])')"
assert_exit -m "verify --token 1" 0 kc verify "$IMG" --token 1
assert_exit -m "the same KEK again: nothing written (exit 0)" 0 \
	kc kek add "$IMG" --kek "file:$T/k1" --key-file "$T/pass"
assert_stdout_contains "already has a token for file:$T/k1 (token 1); nothing written"

# A clevis binding beside the kekcrypt tokens: a second passphrase in keyslot 5 held by a
# clevis token (its JWE is not used here).
(umask 077 && printf 'clevis-made secret' >"$T/clevis-pass")
cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-slot 5 \
	--key-file "$T/pass" "$IMG" "$T/clevis-pass"
printf '{"type":"clevis","keyslots":["5"],"jwe":{"ciphertext":"","encrypted_key":"","iv":"","protected":"eyJ9","tag":""}}' |
	cryptsetup token import --token-id 7 "$IMG"
assert_exit -m "dump --json" 0 kc dump --json "$IMG"
cp "$OUT" "$T/dump.json"
assert_eq -m "dump lists the two kekcrypt tokens only (not clevis's)" "[0, 1]" \
	"$(json_get "$T/dump.json" '[t["id"] for t in d["tokens"]]')"
assert_eq -m "... and no recovery key" "[]" "$(json_get "$T/dump.json" 'd["recovery_keys"]')"
assert_exit -m "verify --all: both kekcrypt tokens work" 0 kc verify --all --json "$IMG"
cp "$OUT" "$T/all.json"
assert_eq -m "... 2 working, 0 failed: the passphrase and clevis keyslots are no tokens" \
	"2 0" "$(json_get "$T/all.json" 'd["working"], d["failed"]' | tr -d '(),')"
# doctor: the passphrase and clevis keyslots are named as other ways in, not misreported as
# none. (Its exit status also covers this host's initramfs, which is not this test's.)
echo "enr $IMG none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript" >"$T/crypttab"
run kc doctor --crypttab "$T/crypttab" --json
cp "$OUT" "$T/doctor.json"
assert_eq -m "doctor: keyslots 0 and 5 are other ways in" "[0, 5]" \
	"$(json_get "$T/doctor.json" 'd["volumes"][0]["other_keyslots"]')"
assert_eq -m "... it unlocks with token 0, no recovery key" "0 0" \
	"$(json_get "$T/doctor.json" 'd["volumes"][0]["unlocks_with_token"], d["volumes"][0]["recovery_keys"]' | tr -d '(),')"
assert_contains -m "... the warning names them instead of saying it cannot be unlocked" \
	"$(json_get "$T/doctor.json" '[p["message"] for p in d["volumes"][0]["problems"]]')" \
	"only keyslot(s) 0 5 (not kekcrypt's"
sum=$(header_sum "$IMG")
assert_exit -m "--wipe-passphrase of a keyslot a clevis token holds: refused (12)" 12 \
	kc kek add "$IMG" --kek "file:$T/k1" --key-file "$T/clevis-pass" --wipe-passphrase
assert_stderr_contains -m "... naming the clevis token" "keyslot 5 belongs to token 7 (type 'clevis')"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"

# recovery add authorised by the passphrase.
assert_exit -m "recovery add --key-file" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}" \
	--key-file "$T/pass" --json
cp "$OUT" "$T/rec.json"
json_get "$T/rec.json" 'd["recovery_key"]' >"$T/rkey"
chmod 600 "$T/rkey"
assert_eq -m "... authorised by the passphrase of keyslot 0" "passphrase 0" \
	"$(json_get "$T/rec.json" 'd["authorised_by"] + " " + str(d["auth_keyslot"])')"
assert_exit -m "... and the key works" 0 kc recovery verify "$IMG" --key-file "$T/rkey"

# The KEKs are gone: the token path fails; the recovery key re-protects the volume.
rm "$T/k0" "$T/k1"
sum=$(header_sum "$IMG")
assert_exit -m "KEKs deleted: kek add through the tokens fails (3)" 3 \
	kc kek add "$IMG" --kek "file:$T/k2"
assert_stderr_contains -m "... and says how to authorise it without them" \
	"without a working KEK, authorise with the recovery key (--recovery-key) or a passphrase (--key-file)"
assert_header_unchanged -m "... nothing written" "$IMG" "$sum"
assert_exit -m "kek add --recovery-key (the key on standard input)" 0 \
	kc kek add "$IMG" --kek "file:$T/k2" --recovery-key <"$T/rkey"
assert_stdout_contains -m "... authorised by the recovery key" "authorised by the recovery key of keyslot"
new=$(kc kek list --json "$IMG" | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)["tokens"] if t["kek"].endswith("/k2")][0])')
assert_exit -m "verify opens it through the new token" 0 kc verify "$IMG" --token "$new"
assert_true -m "the audit event says by=recovery-key" grep -q "token=$new kek=file:$T/k2 .*by=recovery-key" "$T/kmsg"
assert_exit -m "a passphrase given as a recovery key: not a recovery key (9)" 9 \
	kc kek add "$IMG" --kek "file:$T/k3" --recovery-key --key-file "$T/pass"
assert_not_contains -m "the passphrase is in no audit record" "$(cat "$T/kmsg")" "$PW"

# --wipe-passphrase: refused while no token would unlock the volume, done once one does.
IMG2=$T/disk2.img
luks2_img "$IMG2"
assert_exit -m "enrol a second volume" 0 kc kek add "$IMG2" --kek "file:$T/k3" --key-file "$T/pass"
cp "$T/k3" "$T/k3.saved"
new_kek "$T/k3"
sum=$(header_sum "$IMG2")
assert_exit -m "--wipe-passphrase when the token no longer unwraps: refused (12)" 12 \
	kc kek add "$IMG2" --kek "file:$T/k3" --key-file "$T/pass" --wipe-passphrase
assert_stderr_contains -m "... as the last way in" "keyslot 0 is the last way to unlock it"
assert_header_unchanged -m "... nothing written" "$IMG2" "$sum"
assert_ok -m "... the passphrase still opens it" opens_with "$IMG2" "$T/pass"
mv "$T/k3.saved" "$T/k3"
assert_exit -m "--wipe-passphrase with a working token" 0 \
	kc kek add "$IMG2" --kek "file:$T/k3" --key-file - --wipe-passphrase --json <"$T/pass"
cp "$OUT" "$T/wipe.json"
assert_eq -m "... keyslot 0 wiped, no token added (it existed)" "0 False" \
	"$(json_get "$T/wipe.json" 'd["wiped_keyslot"], d["added"]' | tr -d '(),')"
assert_true -m "... the passphrase opens nothing now" bash -c '! cryptsetup open --test-passphrase --key-file "$1" "$2" 2>/dev/null' _ "$T/pass" "$IMG2"
assert_exit -m "... the token still does" 0 kc verify "$IMG2"
assert_true -m "... the audit event names the wiped keyslot" grep -q "wiped-keyslot=0" "$T/kmsg"

# Foreign content is named, with its exit status, and left as it was.
L1=$T/luks1.img
new_img "$L1"
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 "$L1" "$T/pass"
EXT=$T/ext4.img
new_img "$EXT"
mkfs.ext4 -q -F "$EXT"
PT=$T/parted.img
new_img "$PT"
# An MBR with one Linux partition from sector 2048, 8 MiB long.
python3 -c '
import struct, sys
mbr = bytearray(512)
mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 16384)
mbr[510:512] = b"\x55\xaa"
with open(sys.argv[1], "r+b") as f:
    f.write(mbr)' "$PT"
ZERO=$T/zero.img
new_img "$ZERO"
for img in "$L1" "$EXT" "$PT" "$ZERO"; do
	eval "sum_$(basename "$img" .img)=\$(header_sum \"\$img\")"
done
assert_exit -m "LUKS1: exit 27" 27 kc kek add "$L1" --kek "file:$T/k3" --key-file "$T/pass"
assert_stderr_contains -m "... says it is LUKS1 and how to convert it" \
	"device '$L1' is a LUKS1 volume: convert it to LUKS2 first with 'kekcrypt kek add $L1 --convert --header-backup FILE"
assert_exit -m "LUKS1: dump exits 27 too" 27 kc dump "$L1"
assert_exit -m "ext4: exit 10" 10 kc kek add "$EXT" --kek "file:$T/k3" --key-file "$T/pass"
assert_stderr_contains -m "... says it holds ext4" "device '$EXT' is not a LUKS2 volume: it holds ext4"
assert_exit -m "a partition table: exit 10" 10 kc verify "$PT"
assert_stderr_contains -m "... says so" "device '$PT' is not a LUKS2 volume: it holds a partition table (dos)"
assert_exit -m "zeros: exit 10" 10 kc kek add "$ZERO" --kek "file:$T/k3" --key-file "$T/pass"
assert_stderr_contains -m "... nothing recognisable" \
	"device '$ZERO' is not a LUKS2 volume: it holds no LUKS header and nothing else recognisable"
# shellcheck disable=SC2154 # set by the eval above
{
	assert_header_unchanged -m "the LUKS1 volume is unchanged" "$L1" "$sum_luks1"
	assert_header_unchanged -m "the ext4 image is unchanged" "$EXT" "$sum_ext4"
	assert_header_unchanged -m "the partitioned image is unchanged" "$PT" "$sum_parted"
	assert_header_unchanged -m "the zeroed image is unchanged" "$ZERO" "$sum_zero"
}

# --convert
assert_exit -m "--convert without --header-backup: usage error" 2 \
	kc kek add "$L1" --kek "file:$T/k3" --key-file "$T/pass" --convert
assert_header_unchanged -m "... nothing written" "$L1" "$sum_luks1"
assert_exit -m "--convert ext4: not converted (10)" 10 kc kek add "$EXT" --kek "file:$T/k3" \
	--key-file "$T/pass" --convert --header-backup "$T/ext4.hdr"
assert_true -m "... no backup written" test ! -e "$T/ext4.hdr"
assert_exit -m "kek add --convert --header-backup on the LUKS1 volume" 0 \
	kc kek add "$L1" --kek "file:$T/k3" --key-file "$T/pass" --convert --header-backup "$T/luks1.hdr"
assert_stdout_contains -m "... says it converted it and where the LUKS1 header is" \
	"$L1: converted from LUKS1 to LUKS2; its LUKS1 header is saved in $T/luks1.hdr"
assert_stdout_contains -m "... then enrolled it" "added token 0 for file:$T/k3"
assert_eq -m "blkid: LUKS version 2 now" 2 "$(blkid -p -o value -s VERSION "$L1")"
meta "$L1"
assert_eq -m "luksDump JSON: token 0 is kekcrypt's" kekcrypt "$(json_get "$T/meta.json" 'd["tokens"]["0"]["type"]')"
assert_eq -m "the header backup is a LUKS header" crypto_LUKS \
	"$(blkid -p -o value -s TYPE "$T/luks1.hdr")"
assert_eq -m "... of version 1" 1 "$(blkid -p -o value -s VERSION "$T/luks1.hdr")"
assert_eq -m "... mode 0600" 600 "$(stat -c %a "$T/luks1.hdr")"
assert_ok -m "the passphrase still opens the converted volume" opens_with "$L1" "$T/pass"
assert_exit -m "verify opens it through the new token" 0 kc verify "$L1"
assert_true -m "the audit trail has the conversion" grep -q "event=luks1-convert outcome=ok device=$L1" "$T/kmsg"
assert_exit -m "--convert of a LUKS2 volume: nothing to convert, no backup" 0 \
	kc kek add "$L1" --kek "file:$T/k2" --key-file "$T/pass" --convert --header-backup "$T/again.hdr"
assert_true -m "... no backup written" test ! -e "$T/again.hdr"

done_testing
