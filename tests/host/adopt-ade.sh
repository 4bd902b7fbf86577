#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kekcrypt adopt --from ade (issue 14, item 7, the host half) on a system laid out as Azure
# Disk Encryption lays out a Linux VM (doc/ADE.md), under --root, with a file KEK and an
# Azure Key Vault one (the fixture): a BEK volume (VFAT, label "BEK VOLUME") holding
# LinuxPassPhraseFileName and LinuxPassPhraseFileName_1_0 (172 characters of base64, no
# newline), its files as the mounted volume shows them (the host
# cannot mount VFAT: mcopy reads them out); the OS volume "osencrypt" with its LUKS2 header
# detached in <root>/boot/luks/osluksheader (32 MiB) on a loop device; a LUKS2 data volume
# whose BEK passphrase is in keyslot 1 and whose tokens 0-4 are taken (the new ones skip 5);
# a LUKS1 data volume; a non-ADE crypttab line and a comment.
# Refusals that write nothing: ADE still encrypting (its ongoing-item file: 12), no BEK
# directory (3), a key file that is a symbolic link (14), a wrong passphrase for the data
# volumes while the OS volume's is right (8: the OS volume is not written either), LUKS1
# without --convert (27); without --bek, no filesystem labelled "BEK VOLUME" (3), and --bek
# DEVICE without VFAT (9); the BEK image on a loop device is found by its label (and where the
# kernel has no VFAT, as here, not mounted: 29). --dry-run writes nothing. Then the adopt:
# each volume's tokens alone unlock it (verify --all), its BEK keyslot still opens it, the
# LUKS1 volume is LUKS2 with its old header saved, crypttab is rewritten (mode kept, the
# other lines byte for byte, ADE's saved as crypttab.ade), fstab loses the BEK volume's line
# (fstab.ade kept), the --json validates; the passphrase is in no output. A second run says it
# is adopted and writes nothing.
# The OS volume has a token for the first KEK before (an adopt that stopped half-way): it
# keeps it and gets the other.
# Last, a LUKS1 OS volume (ADE on Ubuntu 18.04): its detached header file is converted.
. "$(dirname "$0")/lib.sh"
need blkid mkfs.vfat mcopy losetup node

T=$T_DIR
R=$T/root
mkdir -p "$R/etc" "$R/boot/luks" "$R/var/lib/azure_disk_encryption_config" "$T/hb"
# The KEKs: a file, and an RSA key in the Azure Key Vault fixture (managed identity).
new_kek "$T/k0"
"$FIX/tls.sh" "$T/tls" >/dev/null
fixture_start AZ node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --rsa-key kek-rsa
conf "[azure-kv]" "auth = managed-identity" "allowed-hosts = localhost" "ca-file = $T/tls/ca.pem" \
	"imds-endpoint = https://127.0.0.1:$AZ_PORT/metadata/identity/oauth2/token"
AZ=azure-kv+https://localhost:$AZ_PORT/keys/kek-rsa
KEKS=(--kek "file:$T/k0" --kek "$AZ")
FAST=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)

# The BEK passphrase as ADE writes it: 128 random bytes in base64, no newline.
(umask 077 && head -c 128 /dev/urandom | base64 -w0 >"$T/pass" &&
	head -c 128 /dev/urandom | base64 -w0 >"$T/wrong" && printf 'other' >"$T/other")
assert_eq -m "the BEK passphrase is 172 characters" 172 "$(wc -c <"$T/pass")"
new_img "$T/bek.img" 8M
mkfs.vfat -n "BEK VOLUME" "$T/bek.img" >/dev/null
mcopy -i "$T/bek.img" "$T/pass" ::LinuxPassPhraseFileName
mcopy -i "$T/bek.img" "$T/pass" ::LinuxPassPhraseFileName_1_0
assert_eq -m "the BEK image is VFAT labelled 'BEK VOLUME'" "vfat BEK VOLUME" \
	"$(blkid -o value -s TYPE "$T/bek.img") $(blkid -o value -s LABEL "$T/bek.img")"
mkdir -m 0700 "$T/bek"
mcopy -n -i "$T/bek.img" ::LinuxPassPhraseFileName ::LinuxPassPhraseFileName_1_0 "$T/bek/"

# The OS volume: header detached on /boot, data offset 0 on the device.
H=$R/boot/luks/osluksheader
new_img "$H"
new_img "$T/os.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" --header "$H" "$T/os.img" "$T/pass"
loop_attach "$T/os.img"
OS=$LOOP
# A data volume: another passphrase in keyslot 0, the BEK's in keyslot 1, tokens 0-4 taken.
new_img "$T/data1.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" "$T/data1.img" "$T/other"
cryptsetup luksAddKey -q "${FAST[@]}" --key-file "$T/other" "$T/data1.img" "$T/pass"
for i in 0 1 2 3 4; do
	echo '{"type":"other-tool","keyslots":[]}' |
		cryptsetup token import --token-id "$i" "$T/data1.img"
done
# A LUKS1 data volume (ADE on Ubuntu 18.04).
new_img "$T/data2.img"
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 "$T/data2.img" "$T/pass"

U1=$(cat /proc/sys/kernel/random/uuid)
OS_LINE="osencrypt $OS /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,discard,header=/boot/luks/osluksheader"
SWAP_LINE="swap	/dev/disk/by-id/no-such-disk	/dev/urandom	swap,cipher=aes-xts-plain64,size=256"
cat >"$R/etc/crypttab" <<EOF
# <target name>	<source device>	<key file>	<options>
$OS_LINE
$U1 $T/data1.img /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail
data2 $T/data2.img /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail,keyscript=/usr/sbin/azure_crypt_key.sh
$SWAP_LINE
EOF
chmod 0640 "$R/etc/crypttab"
cp -p "$R/etc/crypttab" "$T/crypttab.orig"
cat >"$R/etc/fstab" <<EOF
UUID=0a1b2c3d-0000-4000-8000-000000000001 / ext4 defaults 0 1
/dev/mapper/$U1 /data auto defaults,nofail,discard 0 0
LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0
EOF
cp -p "$R/etc/fstab" "$T/fstab.orig"
ADOPT=(adopt --from ade "${KEKS[@]}" --bek "$T/bek" --root "$R")
NO_BEK=(adopt --from ade "${KEKS[@]}" --root "$R")
CONVERT=(--convert --header-backup-dir "$T/hb")

# sums: the three headers and crypttab, to compare before and after.
sums() {
	echo "$(header_sum "$H") $(header_sum "$T/data1.img") $(header_sum "$T/data2.img")" \
		"$(cat "$R/etc/crypttab" "$R/etc/fstab" | sha256sum)"
}
# nothing_written DESC: the headers, crypttab, fstab, and no backup of any.
nothing_written() {
	assert_eq -m "$1: nothing written" "$BEFORE" "$(sums)"
	assert_eq -m "$1: no crypttab.ade, fstab.ade, header backup" "" \
		"$(find "$T/hb" "$R/etc" -name '*.ade' -o -name '*.luks1-header')"
}
# An adopt that stopped half-way: the OS volume has its file KEK's token (0) already.
kc kek add --header "$H" "$OS" --kek "file:$T/k0" --key-file "$T/pass" >/dev/null
BEFORE=$(sums)

# --- refusals -----------------------------------------------------------------------------------
assert_exit -m "no --from: usage error (2)" 2 kc adopt "${KEKS[@]}" --bek "$T/bek" --root "$R"
assert_exit -m "--from other: usage error (2)" 2 kc "${ADOPT[@]/ade/clevis}"
assert_exit -m "--convert without --header-backup-dir: usage error (2)" 2 \
	kc "${ADOPT[@]}" --convert

: >"$R/var/lib/azure_disk_encryption_config/azure_crypt_ongoing_item.ini"
assert_exit -m "ADE still encrypting (its ongoing-item file): busy (12)" 12 \
	kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "azure_crypt_ongoing_item.ini exists"
rm "$R/var/lib/azure_disk_encryption_config/azure_crypt_ongoing_item.ini"
nothing_written "ongoing"

assert_exit -m "no BEK volume there: exit 3" 3 kc adopt --from ade "${KEKS[@]}" \
	--bek "$T/no-bek" --root "$R" "${CONVERT[@]}"
assert_stderr_contains -m "... naming it" "the BEK volume $T/no-bek"
assert_exit -m "no --bek, and no filesystem labelled 'BEK VOLUME': exit 3" 3 \
	kc "${NO_BEK[@]}" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "no filesystem is labelled 'BEK VOLUME'"
assert_exit -m "--bek DEVICE that holds no VFAT: exit 9" 9 \
	kc adopt --from ade "${KEKS[@]}" --bek "$OS" --root "$R" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "the BEK volume $OS holds no filesystem, not VFAT"
# The BEK disk attached: found by its label and mounted privately (read-only), where the kernel
# has VFAT; the hosts here have not (modules off), and adopt says so with exit 29.
loop_attach -r "$T/bek.img"
BEKDEV=$LOOP
run kc "${NO_BEK[@]}" "${CONVERT[@]}" --dry-run
if grep -qw vfat /proc/filesystems; then
	assert_eq -m "no --bek: the BEK volume found by its label, mounted, a dry run" 0 "$RC"
	assert_stdout_contains -m "... naming it" "BEK volume: $BEKDEV (mounted read-only, privately)"
	assert_eq -m "... nothing left mounted" "" "$(grep -F "$BEKDEV" /proc/self/mountinfo)"
else
	assert_eq -m "no --bek: the BEK volume found by its label; no VFAT here: exit 29" 29 "$RC"
	assert_stderr_contains -m "... naming it" "the BEK volume $BEKDEV: this kernel cannot mount VFAT"
fi
assert_eq -m "... no temporary directory left" "" "$(find /tmp -maxdepth 1 -name 'kekcrypt-bek.*')"
loop_detach "$BEKDEV"

mkdir "$T/bek-link"
ln -s "$T/pass" "$T/bek-link/LinuxPassPhraseFileName"
cp "$T/pass" "$T/bek-link/LinuxPassPhraseFileName_1_0"
assert_exit -m "a key file that is a symbolic link: refused (14)" 14 kc adopt --from ade \
	"${KEKS[@]}" --bek "$T/bek-link" --root "$R" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "LinuxPassPhraseFileName is a symbolic link: refused"
nothing_written "symbolic link"
mkdir "$T/bek-fifo"
cp "$T/pass" "$T/bek-fifo/LinuxPassPhraseFileName"
mkfifo "$T/bek-fifo/LinuxPassPhraseFileName_1_0"
assert_exit -m "a key file that is not a regular file (a FIFO): refused (14)" 14 \
	timeout 10 "$KEKCRYPT" --config "$T_CONF" adopt --from ade "${KEKS[@]}" \
	--bek "$T/bek-fifo" --root "$R" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "LinuxPassPhraseFileName_1_0 is not a regular file: refused"

# The OS volume's key file is right, the data volumes' wrong: refused before the OS volume
# is written to.
mkdir "$T/bek-wrong"
cp "$T/pass" "$T/bek-wrong/LinuxPassPhraseFileName"
cp "$T/wrong" "$T/bek-wrong/LinuxPassPhraseFileName_1_0"
assert_exit -m "a BEK passphrase that opens nothing: wrong key (8)" 8 kc adopt --from ade \
	"${KEKS[@]}" --bek "$T/bek-wrong" --root "$R" "${CONVERT[@]}"
assert_stderr_contains -m "... saying it opens none of the data volume's keyslots" \
	"device '$T/data1.img': the passphrase given opens none of its keyslots"

assert_exit -m "a LUKS1 volume without --convert: exit 27, before anything is written" 27 \
	kc "${ADOPT[@]}"
assert_stderr_contains -m "... saying what to do" "--convert --header-backup-dir DIR"
nothing_written "wrong passphrase, LUKS1"

assert_exit -m "--dry-run" 0 kc "${ADOPT[@]}" "${CONVERT[@]}" --dry-run
assert_stdout_contains -m "... says what it would do" \
	"a token for file:$T/k0 would be added, authorised by the BEK passphrase (keyslot 1)"
assert_stdout_contains -m "... for each KEK" \
	"a token for $AZ would be added, authorised by the BEK passphrase (keyslot 1)"
assert_stdout_contains -m "... and the LUKS1 conversion" "would be converted from LUKS1"
assert_stdout_contains -m "... and which token is there already (a half-done adopt)" \
	"has a token for file:$T/k0 already (token 0)"
nothing_written "--dry-run"

# --- the adopt ----------------------------------------------------------------------------------
assert_exit -m "adopt --from ade --convert --json" 0 kc "${ADOPT[@]}" "${CONVERT[@]}" --json
cp "$OUT" "$T/adopt.json"
assert_true -m "... its output is a valid kekcrypt.adopt/1" python3 \
	"$KC_SRCDIR/tests/validate-json.py" "$KC_SRCDIR/doc/schema" "$T/adopt.json"
assert_no_secret -m "... the passphrase is in none of its output" "$T/pass" "$OUT" "$ERR"
assert_eq -m "... three volumes with a token per KEK, added but the OS volume's first one" \
	"osencrypt:0=False,1=True $U1:6=True,7=True data2:0=True,1=True" \
	"$(json_get "$T/adopt.json" '" ".join("%s:%s" % (v["name"], ",".join("%d=%s" % (t["token"], t["added"]) for t in v["tokens"])) for v in d["volumes"])')"
assert_eq -m "... authorised by the BEK passphrase's keyslot (1 on the data volume)" \
	"0 1 0" "$(json_get "$T/adopt.json" '" ".join(str(v["auth_keyslot"]) for v in d["volumes"])')"

# verify --all: each token unwraps on its own (the file KEK; Azure Key Vault through the fixture)
assert_ok -m "the OS volume: each of its tokens alone unlocks it (detached header)" \
	kc verify --all --header "$H" "$OS" --json
assert_eq -m "... file and azure-kv" "file-ok azure-kv+https-ok" \
	"$(json_get "$OUT" '" ".join(t["kek"].split(":")[0] + ("-ok" if t["ok"] else "-failed") for t in d["tokens"])')"
assert_ok -m "the data volume: each of its tokens alone unlocks it" kc verify --all "$T/data1.img"
assert_ok -m "the LUKS1 volume, now LUKS2: each of its tokens alone unlocks it" \
	kc verify --all "$T/data2.img"
assert_eq -m "... converted to LUKS2" 2 \
	"$(cryptsetup luksDump "$T/data2.img" | sed -n 's/^Version:[[:space:]]*//p')"
assert_eq -m "... its LUKS1 header saved" LUKS1 \
	"$(cryptsetup luksDump "$T/hb/data2.luks1-header" | sed -n 's/^Version:[[:space:]]*1$/LUKS1/p')"
assert_ok -m "the BEK passphrase still opens the OS volume" cryptsetup open --test-passphrase \
	--header "$H" --key-file "$T/pass" "$OS"
assert_ok -m "... and the data volume" cryptsetup open --test-passphrase \
	--key-file "$T/pass" "$T/data1.img"
assert_ok -m "... and the converted one" cryptsetup open --test-passphrase \
	--key-file "$T/pass" "$T/data2.img"
assert_eq -m "the data volume's token 5 stays free" "" \
	"$(cryptsetup luksDump --dump-json-metadata "$T/data1.img" | json_get /dev/stdin 'd["tokens"].get("5", "")')"

KS='keyscript=/[^ ,]*/kekcrypt-keyscript'
assert_true -m "crypttab: the OS line unlocks through kekcrypt-keyscript, header= kept" \
	grep -qEx "osencrypt $OS none luks,discard,header=/boot/luks/osluksheader,$KS" \
	"$R/etc/crypttab"
assert_true -m "crypttab: a data line through the token plugin (no key file), options kept" \
	grep -qFx "$U1 $T/data1.img none luks,nofail" "$R/etc/crypttab"
assert_true -m "crypttab: ADE's keyscript= is dropped" \
	grep -qFx "data2 $T/data2.img none luks,nofail" "$R/etc/crypttab"
assert_eq -m "crypttab: the comment and the non-ADE line byte for byte, in place" \
	"$(sed -n '1p;5p' "$T/crypttab.orig")" "$(sed -n '1p;5p' "$R/etc/crypttab")"
assert_eq -m "crypttab: its mode kept" 640 "$(stat -c %a "$R/etc/crypttab")"
assert_true -m "crypttab.ade: ADE's crypttab as it was" cmp "$T/crypttab.orig" \
	"$R/etc/crypttab.ade"
assert_eq -m "fstab: the BEK volume's line removed, the others in place" \
	"$(sed 3d "$T/fstab.orig")" "$(cat "$R/etc/fstab")"
assert_true -m "fstab.ade: fstab as it was" cmp "$T/fstab.orig" "$R/etc/fstab.ade"
assert_eq -m "... one line, said in the JSON" "1 true" \
	"$(json_get "$T/adopt.json" 'd["fstab_bek_lines"]') $(json_get "$T/adopt.json" 'd["fstab_rewritten"]')"
assert_eq -m "the rest is said: rebuild the initramfs, doctor, the BEK disk" true \
	"$(json_get "$T/adopt.json" 'all(any(w in s for s in d["next_steps"]) for w in ["rebuild the initramfs", "doctor", "detach the BEK disk"])')"

# --- again: adopted ---------------------------------------------------------------------------
BEFORE=$(sums)
assert_exit -m "a second run" 0 kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stdout_contains -m "... says it is adopted" "already adopted"
assert_eq -m "... and writes nothing" "$BEFORE" "$(sums)"
assert_true -m "... crypttab.ade still ADE's" cmp "$T/crypttab.orig" "$R/etc/crypttab.ade"
assert_true -m "... fstab.ade too" cmp "$T/fstab.orig" "$R/etc/fstab.ade"

# --- a LUKS1 OS volume (ADE on Ubuntu 18.04): its detached header converted ---------------------
R2=$T/root2
mkdir -p "$R2/etc" "$R2/boot/luks" "$T/hb2"
H2=$R2/boot/luks/osluksheader
new_img "$H2"
new_img "$T/os2.img"
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --header "$H2" \
	"$T/os2.img" "$T/pass"
echo "osencrypt $T/os2.img /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,discard,header=/boot/luks/osluksheader" \
	>"$R2/etc/crypttab"
assert_exit -m "a LUKS1 OS volume with a detached header: adopt --convert" 0 kc adopt \
	--from ade --kek "file:$T/k0" --bek "$T/bek" --root "$R2" --convert --header-backup-dir "$T/hb2"
assert_eq -m "... its header file is LUKS2 now" 2 \
	"$(cryptsetup luksDump "$H2" | sed -n 's/^Version:[[:space:]]*//p')"
assert_eq -m "... its LUKS1 header saved" 1 \
	"$(cryptsetup luksDump "$T/hb2/osencrypt.luks1-header" | sed -n 's/^Version:[[:space:]]*//p')"
assert_ok -m "... its token alone unlocks it" kc verify --header "$H2" "$T/os2.img"

done_testing
