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
# ADE's legacy azure_crypt_mount (doc/ADE.md section 3) lists two more data volumes (and the OS
# volume, skipped: crypttab has it): one by the BEK passphrase, one by its cleartext key (a
# disable was started), which fstab mounts already; crypttab names a third volume by its
# cleartext key. Each gets its tokens, crypttab a line, fstab a nofail line unless it mounts
# the mapping already, and azure_crypt_mount is moved aside to azure_crypt_mount.ade; a
# malformed line and lines that would inject into crypttab or fstab are refused (9) with
# nothing written; a volume whose header holds a decryption (a disable under way) is refused
# (12). A system with azure_crypt_mount alone (no crypttab, no fstab), its volume by a
# cleartext key: adopted without a BEK volume, crypttab and fstab created. ADE's resource disk
# (resourceencrypt, mounted on /mnt/resource) is adopted like any data volume.
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
# Volumes whose disable ADE had started: its cleartext key (128 random bytes) in keyslot 1.
ADE_DIR=$R/var/lib/azure_disk_encryption_config
U3=$(cat /proc/sys/kernel/random/uuid)
U5=$(cat /proc/sys/kernel/random/uuid)
new_img "$T/data3.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" "$T/data3.img" "$T/pass"
for v in data4 data5; do
	key=$ADE_DIR/cleartext_key_$v
	[ "$v" = data5 ] && key=$ADE_DIR/cleartext_key_$U5
	(umask 077 && head -c 128 /dev/urandom >"$key")
	new_img "$T/$v.img"
	cryptsetup luksFormat -q --type luks2 "${FAST[@]}" "$T/$v.img" "$T/pass"
	cryptsetup luksAddKey -q "${FAST[@]}" --key-file "$T/pass" "$T/$v.img" "$key"
done
# azure_crypt_mount as ADE writes it: the OS volume, a volume by the BEK passphrase, one by its
# cleartext key.
ACM=$ADE_DIR/azure_crypt_mount
printf '%s\n' "osencrypt $OS /boot/luks/osluksheader / ext4 False 0" \
	"$U3 $T/data3.img None /data3 ext4 False 0" "$U5 $T/data5.img None /data5 xfs True" >"$ACM"
cp -p "$ACM" "$T/acm.orig"

U1=$(cat /proc/sys/kernel/random/uuid)
OS_LINE="osencrypt $OS /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,discard,header=/boot/luks/osluksheader"
SWAP_LINE="swap	/dev/disk/by-id/no-such-disk	/dev/urandom	swap,cipher=aes-xts-plain64,size=256"
cat >"$R/etc/crypttab" <<EOF
# <target name>	<source device>	<key file>	<options>
$OS_LINE
$U1 $T/data1.img /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail
data2 $T/data2.img /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail,keyscript=/usr/sbin/azure_crypt_key.sh
$SWAP_LINE
data4 $T/data4.img /var/lib/azure_disk_encryption_config/cleartext_key_data4 luks,nofail
EOF
# ADE appends its lines without a newline at the end.
truncate -s -1 "$R/etc/crypttab"
chmod 0640 "$R/etc/crypttab"
cp -p "$R/etc/crypttab" "$T/crypttab.orig"
cat >"$R/etc/fstab" <<EOF
UUID=0a1b2c3d-0000-4000-8000-000000000001 / ext4 defaults 0 1
/dev/mapper/$U1 /data auto defaults,nofail,discard 0 0
LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0
/dev/mapper/$U5 /data5 xfs defaults,nofail 0 0
EOF
cp -p "$R/etc/fstab" "$T/fstab.orig"
ADOPT=(adopt --from ade "${KEKS[@]}" --bek "$T/bek" --root "$R")
NO_BEK=(adopt --from ade "${KEKS[@]}" --root "$R")
CONVERT=(--convert --header-backup-dir "$T/hb")

# sums: the headers, crypttab, fstab and ADE's directory, to compare before and after.
sums() {
	local i
	for i in "$H" "$T"/data[1-5].img; do
		header_sum "$i"
	done
	cat "$R/etc/crypttab" "$R/etc/fstab" | sha256sum
	ls "$ADE_DIR"
	cat "$ADE_DIR"/azure_crypt_mount* | sha256sum
}
# nothing_written DESC: the headers, crypttab, fstab, and no backup of any.
nothing_written() {
	assert_eq -m "$1: nothing written" "$BEFORE" "$(sums)"
	assert_eq -m "$1: no crypttab.ade, fstab.ade, azure_crypt_mount.ade, header backup" "" \
		"$(find "$T/hb" "$R/etc" "$ADE_DIR" -name '*.ade' -o -name '*.luks1-header')"
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

# The cleartext key file is read like a BEK key file: missing (3), a symbolic link (14).
mv "$ADE_DIR/cleartext_key_data4" "$T/ck4"
assert_exit -m "a cleartext key file missing: exit 3, before anything is written" 3 \
	kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stderr_contains -m "... naming it" \
	"data4: ADE's cleartext key file $ADE_DIR/cleartext_key_data4 does not exist"
ln -s "$T/ck4" "$ADE_DIR/cleartext_key_data4"
assert_exit -m "a cleartext key file that is a symbolic link: refused (14)" 14 \
	kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "cleartext_key_data4 is a symbolic link: refused"
rm "$ADE_DIR/cleartext_key_data4"
mv "$T/ck4" "$ADE_DIR/cleartext_key_data4"
nothing_written "cleartext key missing, a symbolic link"

# acm_refused DESC LINE WHAT: azure_crypt_mount with LINE at the end (line 4) is refused (9),
# saying WHAT, and nothing is written.
acm_refused() {
	local before=$BEFORE
	printf '%s\n' "$2" >>"$ACM"
	BEFORE=$(sums)
	assert_exit -m "azure_crypt_mount: $1: refused (9)" 9 kc "${ADOPT[@]}" "${CONVERT[@]}"
	assert_stderr_contains -m "... saying which line and why" "$ACM: line 4: $3"
	assert_stderr_contains -m "... and that nothing is written" ": refused, nothing written"
	nothing_written "azure_crypt_mount: $1"
	cp -p "$T/acm.orig" "$ACM"
	BEFORE=$before
}
acm_refused "5 fields" "vol6 $T/data3.img None /data6 ext4" \
	"it does not have 6 or 7 space-separated fields"
acm_refused "8 fields" "vol6 $T/data3.img None /data6 ext4 False 0 extra" \
	"it does not have 6 or 7 space-separated fields"
acm_refused "uses_cleartext_key neither True nor False" "vol6 $T/data3.img None /data6 ext4 Yes 0" \
	"field 6 (uses_cleartext_key) is neither True nor False"
acm_refused "a keyslot out of range" "vol6 $T/data3.img None /data6 ext4 False 32" \
	"field 7 (the keyslot) is not a number from -1 to 31"
acm_refused "a relative mount point" "vol6 $T/data3.img None data6 ext4 False 0" \
	"field 4 (the mount point) is neither None nor an absolute path"
# Injections: what would break crypttab's or fstab's columns or add options.
acm_refused "a mapper name with a newline (two lines)" $'evil\nname '"$T/data3.img None /d ext4 False 0" \
	"it does not have 6 or 7 space-separated fields"
acm_refused "a mapper name starting a comment" "#vol6 $T/data3.img None /data6 ext4 False 0" \
	"field 1 is not a mapper name"
acm_refused "a mapper name with a carriage return" $'vol6\r '"$T/data3.img None /d ext4 False 0" \
	"field 1 is not a mapper name"
acm_refused "a header with a comma (crypttab options)" \
	"vol6 $T/data3.img /boot/h,keyscript=/tmp/evil /data6 ext4 False 0" \
	"field 3 (the LUKS header) is neither None nor an absolute path"
acm_refused "a device with a vertical tab" $'vol6 /dev/sdc\v None /data6 ext4 False 0' \
	"field 2 (the device) is not an absolute path"
acm_refused "a mount point with fstab's escape for a space" \
	'vol6 /dev/sdc None /data\040x ext4 False 0' \
	"field 4 (the mount point) is neither None nor an absolute path"
acm_refused "a file system type with a comma" "vol6 $T/data3.img None /data6 ext4,rw False 0" \
	"field 5 is not a file system type"
assert_true -m "azure_crypt_mount as ADE wrote it again" cmp "$T/acm.orig" "$ACM"

assert_exit -m "--dry-run" 0 kc "${ADOPT[@]}" "${CONVERT[@]}" --dry-run
assert_stdout_contains -m "... says what it would do" \
	"a token for file:$T/k0 would be added, authorised by the BEK passphrase (keyslot 1)"
assert_stdout_contains -m "... for each KEK" \
	"a token for $AZ would be added, authorised by the BEK passphrase (keyslot 1)"
assert_stdout_contains -m "... and the LUKS1 conversion" "would be converted from LUKS1"
assert_stdout_contains -m "... and which token is there already (a half-done adopt)" \
	"has a token for file:$T/k0 already (token 0)"
assert_stdout_contains -m "... that ADE had started a disable, and the cleartext key used" \
	"ADE had started a disable (decryption) of this volume: authorised by its cleartext key $ADE_DIR/cleartext_key_data4 (keyslot 1)"
assert_stdout_contains -m "... authorising the tokens" \
	"a token for file:$T/k0 would be added, authorised by ADE's cleartext key (keyslot 1)"
assert_stdout_contains -m "... the volumes of azure_crypt_mount" \
	"listed in $ACM (ADE's extension opened and mounted it after boot)"
assert_stdout_contains -m "... the fstab line of one" "  /dev/mapper/$U3 /data3 ext4 defaults,nofail 0 0"
assert_stdout_contains -m "... and that azure_crypt_mount would be moved aside" \
	"$ACM: would be moved aside to $ACM.ade"
nothing_written "--dry-run"

# --- the adopt ----------------------------------------------------------------------------------
assert_exit -m "adopt --from ade --convert --json" 0 kc "${ADOPT[@]}" "${CONVERT[@]}" --json
cp "$OUT" "$T/adopt.json"
assert_true -m "... its output is a valid kekcrypt.adopt/1" python3 \
	"$KC_SRCDIR/tests/validate-json.py" "$KC_SRCDIR/doc/schema" "$T/adopt.json"
assert_no_secret -m "... the passphrase is in none of its output" "$T/pass" "$OUT" "$ERR"
assert_eq -m "... six volumes with a token per KEK, added but the OS volume's first one" \
	"osencrypt:0=False,1=True $U1:6=True,7=True data2:0=True,1=True data4:0=True,1=True $U3:0=True,1=True $U5:0=True,1=True" \
	"$(json_get "$T/adopt.json" '" ".join("%s:%s" % (v["name"], ",".join("%d=%s" % (t["token"], t["added"]) for t in v["tokens"])) for v in d["volumes"])')"
assert_eq -m "... authorised by the BEK passphrase's keyslot (1 on the data volume), the cleartext key's (1)" \
	"0 1 0 1 0 1" "$(json_get "$T/adopt.json" '" ".join(str(v["auth_keyslot"]) for v in d["volumes"])')"
assert_eq -m "... from crypttab or azure_crypt_mount; a disable started on two" \
	"crypttab:False crypttab:False crypttab:False crypttab:True azure_crypt_mount:False azure_crypt_mount:True" \
	"$(json_get "$T/adopt.json" '" ".join("%s:%s" % (v["source"], v["ade_disable_started"]) for v in d["volumes"])')"

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
for i in 3 4 5; do
	assert_ok -m "data$i: each of its tokens alone unlocks it" kc verify --all "$T/data$i.img"
done
assert_ok -m "the cleartext key still opens its volume" cryptsetup open --test-passphrase \
	--key-file "$ADE_DIR/cleartext_key_data4" "$T/data4.img"
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
assert_true -m "crypttab: the cleartext key's line through the token plugin" \
	grep -qFx "data4 $T/data4.img none luks,nofail" "$R/etc/crypttab"
assert_true -m "crypttab: a line for azure_crypt_mount's volume by the BEK passphrase" \
	grep -qFx "$U3 $T/data3.img none luks,nofail" "$R/etc/crypttab"
assert_true -m "crypttab: ... and for its volume by the cleartext key" \
	grep -qFx "$U5 $T/data5.img none luks,nofail" "$R/etc/crypttab"
assert_eq -m "crypttab: 8 lines (ADE's last one ended), no OS line from azure_crypt_mount" \
	"8 1" "$(wc -l <"$R/etc/crypttab") $(grep -c '^osencrypt ' "$R/etc/crypttab")"
assert_eq -m "crypttab: the comment and the non-ADE line byte for byte, in place" \
	"$(sed -n '1p;5p' "$T/crypttab.orig")" "$(sed -n '1p;5p' "$R/etc/crypttab")"
assert_eq -m "crypttab: its mode kept" 640 "$(stat -c %a "$R/etc/crypttab")"
assert_true -m "crypttab.ade: ADE's crypttab as it was" cmp "$T/crypttab.orig" \
	"$R/etc/crypttab.ade"
assert_eq -m "fstab: the BEK volume's line removed, the others in place, a nofail line for the one not mounted" \
	"$(sed 3d "$T/fstab.orig")
/dev/mapper/$U3 /data3 ext4 defaults,nofail 0 0" "$(cat "$R/etc/fstab")"
assert_true -m "fstab.ade: fstab as it was" cmp "$T/fstab.orig" "$R/etc/fstab.ade"
assert_eq -m "... one line, said in the JSON" "1 true 1" \
	"$(json_get "$T/adopt.json" 'd["fstab_bek_lines"]') $(json_get "$T/adopt.json" 'd["fstab_rewritten"]') $(json_get "$T/adopt.json" 'd["fstab_lines_added"]')"
assert_eq -m "... its fstab line in the volume's JSON" "None None None None /dev/mapper/$U3 /data3 ext4 defaults,nofail 0 0|/dev/mapper/$U5 /data5 xfs defaults,nofail 0 0" \
	"$(json_get "$T/adopt.json" '" ".join(str(v["fstab_line"]) for v in d["volumes"][:5]) + "|" + d["volumes"][5]["fstab_line"]')"
assert_true -m "azure_crypt_mount moved aside, as ADE wrote it" cmp "$T/acm.orig" "$ACM.ade"
assert_true -m "... none left" test ! -e "$ACM"
assert_eq -m "... said in the JSON" "true $ACM.ade" \
	"$(json_get "$T/adopt.json" 'd["azure_crypt_mount_moved"]') $(json_get "$T/adopt.json" 'd["azure_crypt_mount_backup"]')"
assert_eq -m "the rest is said: rebuild the initramfs, doctor, the BEK disk" true \
	"$(json_get "$T/adopt.json" 'all(any(w in s for s in d["next_steps"]) for w in ["rebuild the initramfs", "doctor", "detach the BEK disk"])')"

# --- again: adopted ---------------------------------------------------------------------------
BEFORE=$(sums)
assert_exit -m "a second run" 0 kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stdout_contains -m "... says it is adopted" "already adopted"
assert_eq -m "... and writes nothing" "$BEFORE" "$(sums)"
assert_true -m "... crypttab.ade still ADE's" cmp "$T/crypttab.orig" "$R/etc/crypttab.ade"
assert_true -m "... fstab.ade too" cmp "$T/fstab.orig" "$R/etc/fstab.ade"
assert_true -m "... azure_crypt_mount.ade too" cmp "$T/acm.orig" "$ACM.ade"

# An adopt that stopped before moving azure_crypt_mount aside: finished, nothing else written.
mv "$ACM.ade" "$ACM"
assert_exit -m "azure_crypt_mount back: adopt again" 0 kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stdout_contains -m "... its volumes have their tokens" "has a token for $AZ already (token 1)"
assert_stdout_contains -m "... azure_crypt_mount moved aside" "$ACM: moved aside to $ACM.ade"
assert_eq -m "... and nothing else written (crypttab and fstab have their lines)" "$BEFORE" "$(sums)"
cp -p "$T/acm.orig" "$ACM"
assert_exit -m "azure_crypt_mount and azure_crypt_mount.ade both there: refused (11)" 11 \
	kc "${ADOPT[@]}" "${CONVERT[@]}"
assert_stderr_contains -m "... saying so" "$ACM.ade exists already"
rm "$ACM"

# --- azure_crypt_mount alone, by a cleartext key: no crypttab, no fstab, no BEK volume ----------
R4=$T/root4
mkdir -p "$R4/etc" "$R4/var/lib/azure_disk_encryption_config"
U7=$(cat /proc/sys/kernel/random/uuid)
K7=$R4/var/lib/azure_disk_encryption_config/cleartext_key_$U7
(umask 077 && head -c 128 /dev/urandom >"$K7")
new_img "$T/data7.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" "$T/data7.img" "$K7"
echo "osencrypt /dev/sda1 /boot/luks/osluksheader / ext4 False 0" \
	>"$R4/var/lib/azure_disk_encryption_config/azure_crypt_mount"
assert_exit -m "azure_crypt_mount with the OS volume alone (ADE does not use it): nothing to adopt (3)" \
	3 kc adopt --from ade --kek "file:$T/k0" --root "$R4"
assert_eq -m "... nothing written, the file left in place" "azure_crypt_mount" \
	"$(find "$R4/etc" "$R4/var/lib/azure_disk_encryption_config" -type f ! -name 'cleartext_key_*' -printf '%f\n')"
echo "$U7 $T/data7.img None /data7 None True" >"$R4/var/lib/azure_disk_encryption_config/azure_crypt_mount"
assert_exit -m "azure_crypt_mount alone, by a cleartext key, without a BEK volume: adopted" 0 \
	kc adopt --from ade --kek "file:$T/k0" --root "$R4"
assert_stdout_contains -m "... crypttab created" "$R4/etc/crypttab: created"
assert_eq -m "... with the volume's line, root's, mode 644" "$U7 $T/data7.img none luks,nofail 644" \
	"$(cat "$R4/etc/crypttab") $(stat -c %a "$R4/etc/crypttab")"
assert_eq -m "... fstab created with its line (file system None: auto)" \
	"/dev/mapper/$U7 /data7 auto defaults,nofail 0 0" "$(cat "$R4/etc/fstab")"
assert_eq -m "... no backup of files that were not there" "" \
	"$(find "$R4/etc" -name '*.ade')"
assert_ok -m "... its token alone unlocks it" kc verify "$T/data7.img"
assert_exit -m "... a second run" 0 kc adopt --from ade --kek "file:$T/k0" --root "$R4"
assert_stdout_contains -m "... says it is adopted" "already adopted"

# --- a disable under way: the header holds a decryption ---------------------------------------
R3=$T/root3
mkdir -p "$R3/etc" "$R3/boot" "$R3/var/lib/azure_disk_encryption_config"
K6=$R3/var/lib/azure_disk_encryption_config/cleartext_key_data6
(umask 077 && head -c 128 /dev/urandom >"$K6")
new_img "$R3/boot/h6"
new_img "$T/data6.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" --header "$R3/boot/h6" "$T/data6.img" "$T/pass"
cryptsetup luksAddKey -q "${FAST[@]}" --header "$R3/boot/h6" --key-file "$T/pass" "$T/data6.img" "$K6"
loop_attach "$T/data6.img"
D6=$LOOP
assert_ok -m "ADE's disable: a decryption started in the header" cryptsetup reencrypt --decrypt \
	--init-only --header "$R3/boot/h6" --key-file "$K6" "$D6"
echo "data6 $D6 /var/lib/azure_disk_encryption_config/cleartext_key_data6 luks,nofail,header=/boot/h6" \
	>"$R3/etc/crypttab"
B6=$(header_sum "$R3/boot/h6")
assert_exit -m "a volume being decrypted, by its cleartext key (no BEK volume needed): busy (12)" \
	12 kc adopt --from ade --kek "file:$T/k0" --root "$R3"
assert_stderr_contains -m "... saying that ADE's disable is under way" \
	"data6: $D6: ADE had started a disable (its cleartext key is there) and the header holds a re-encryption in progress (a decryption)"
assert_eq -m "... nothing written" "$B6 no-backup" \
	"$(header_sum "$R3/boot/h6") $(test -e "$R3/etc/crypttab.ade" && echo backup || echo no-backup)"
loop_detach "$D6"

# --- a LUKS1 OS volume (ADE on Ubuntu 18.04): its detached header converted ---------------------
R2=$T/root2
mkdir -p "$R2/etc" "$R2/boot/luks" "$T/hb2"
H2=$R2/boot/luks/osluksheader
new_img "$H2"
new_img "$T/os2.img"
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --header "$H2" \
	"$T/os2.img" "$T/pass"
# (its only line, appended by ADE without a newline)
printf '%s' "osencrypt $T/os2.img /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,discard,header=/boot/luks/osluksheader" \
	>"$R2/etc/crypttab"
assert_exit -m "a LUKS1 OS volume with a detached header: adopt --convert" 0 kc adopt \
	--from ade --kek "file:$T/k0" --bek "$T/bek" --root "$R2" --convert --header-backup-dir "$T/hb2"
assert_eq -m "... its header file is LUKS2 now" 2 \
	"$(cryptsetup luksDump "$H2" | sed -n 's/^Version:[[:space:]]*//p')"
assert_eq -m "... its LUKS1 header saved" 1 \
	"$(cryptsetup luksDump "$T/hb2/osencrypt.luks1-header" | sed -n 's/^Version:[[:space:]]*//p')"
assert_ok -m "... its token alone unlocks it" kc verify --header "$H2" "$T/os2.img"
# cryptsetup-initramfs' hook reads crypttab with a shell loop, which skips a last line without
# a newline: the OS volume would not be in the initramfs (found by the boot test).
assert_eq -m "... its crypttab line, adopt's, ends with a newline (ADE's had none)" 1 \
	"$(wc -l <"$R2/etc/crypttab")"

# --- the resource disk: ADE's "resourceencrypt" (doc/ADE.md, section 3) -------------------------
# ADE encrypts the resource (temporary) disk's partition with the BEK passphrase, maps it as
# resourceencrypt and mounts it on /mnt/resource; it is adopted like any data volume. (After a
# redeploy Azure attaches a new, blank resource disk: kekcrypt(8), adopt, says what then.)
R4=$T/root4
mkdir -p "$R4/etc"
new_img "$T/resource.img"
cryptsetup luksFormat -q --type luks2 "${FAST[@]}" "$T/resource.img" "$T/pass"
echo "resourceencrypt $T/resource.img /mnt/azure_bek_disk/LinuxPassPhraseFileName luks,nofail" \
	>"$R4/etc/crypttab"
RD_FSTAB="/dev/mapper/resourceencrypt /mnt/resource auto defaults,discard,nofail 0 0"
printf '%s\n' "$RD_FSTAB" 'LABEL=BEK\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0' \
	>"$R4/etc/fstab"
assert_exit -m "the resource disk (resourceencrypt): adopt --json" 0 kc adopt --from ade \
	--kek "file:$T/k0" --bek "$T/bek" --root "$R4" --json
assert_eq -m "... one volume, its token added, authorised by the BEK passphrase" \
	"resourceencrypt 0=True 0" \
	"$(json_get "$OUT" '" ".join("%s %s %d" % (v["name"], ",".join("%d=%s" % (t["token"], t["added"]) for t in v["tokens"]), v["auth_keyslot"]) for v in d["volumes"])')"
assert_ok -m "... its token alone unlocks it" kc verify "$T/resource.img"
assert_eq -m "... crypttab: through the token plugin, options kept" \
	"resourceencrypt $T/resource.img none luks,nofail" "$(cat "$R4/etc/crypttab")"
assert_eq -m "... fstab: its line kept, the BEK volume's removed" "$RD_FSTAB" "$(cat "$R4/etc/fstab")"

done_testing
