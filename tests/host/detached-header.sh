#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Detached LUKS2 headers (--header FILE, crypttab header=; Azure Disk Encryption keeps the OS
# disk's header in a file on the boot partition), with file KEKs, on an image file and a loop
# device: format --header creates the header file (0600), leaves the data device without any
# signature (data at offset 0) and removes a header file it created when it fails; an existing
# header is refused without --force; verify, kek add/list/remove, recovery add, dump --json,
# header backup and repair through the header; stock cryptsetup opens it through the token
# plugin (--test-passphrase --header) and with the recovery key; without --header the data
# device is "not a LUKS2 volume" with a hint; a --header naming a directory (exit 2) or nothing
# (exit 3); the verbs that do not support one refuse it with exit 28, before or after the verb
# (encrypt and rekey with --header: tests/host/encrypt-header.sh); firstboot --header re-keys a
# template's clone through its header (online: the guest test tests/vm/rekey.sh);
# --crypttab runs take each line's header=; boot-needs lists the header file (crypttab header=
# and --header); doctor checks the volume through crypttab's header=, and says when the header
# is missing or the initramfs lacks it; the keyscript passes CRYPTTAB_OPTION_header on. `open`
# needs device-mapper: the guest's business, not this test's.
# Runs in a private mount namespace: the built plugin in libcryptsetup's token directory.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need losetup mount lsinitramfs cpio

T=$T_DIR
KS_IN=$KC_SRCDIR/initramfs/initramfs-tools/kekcrypt-keyscript.in
plugin_namespace

DATA=$T/data.img
HDR=$T/hdr.img
KEK=$T/kek.bin
KEK2=$T/kek2.bin
new_kek "$KEK"
new_kek "$KEK2"
new_img "$DATA"
conf "[file]" "allowed-paths = $KEK, $KEK2"

# --- format --header -------------------------------------------------------------------------
assert_exit -m "format --header HDR DATA (HDR absent): exit 0" 0 \
	kc format -q --header "$HDR" "$DATA" --kek "file:$KEK"
assert_true -m "the header file was created" test -f "$HDR"
assert_eq -m "... mode 0600" 600 "$(stat -c %a "$HDR")"
assert_true -m "the data device is untouched (all zeros: no signature, data at offset 0)" \
	is_all_zero "$DATA"
assert_exit -m "cryptsetup isLuks --type luks2 HDR" 0 cryptsetup isLuks --type luks2 "$HDR"
assert_exit -m "cryptsetup isLuks DATA: not LUKS" 1 cryptsetup isLuks "$DATA"
UUID=$(cryptsetup luksUUID "$HDR")

assert_exit -m "verify --header: exit 0" 0 kc verify --header "$HDR" "$DATA"
assert_stdout_contains -m "verify names the token" "token 0"
assert_exit -m "--header before the verb: exit 0" 0 kc --header "$HDR" verify "$DATA"

# --- without the header, or with a bad one -----------------------------------------------------
assert_exit -m "verify DATA without --header: exit 10" 10 kc verify "$DATA"
assert_stderr_contains -m "... not a LUKS2 volume" "device '$DATA' is not a LUKS2 volume"
assert_stderr_contains -m "... with the hint" "if its LUKS2 header is detached, name it with --header"
assert_exit -m "--header naming a directory: exit 2" 2 kc verify --header "$T" "$DATA"
assert_stderr_contains -m "... says why" "header file '$T' is neither a regular file nor a block device"
assert_exit -m "--header naming nothing: exit 3" 3 kc verify --header "$T/none.img" "$DATA"
assert_stderr_contains -m "... says why" "header file '$T/none.img': No such file or directory"
assert_exit -m "--header naming a file that holds no header: exit 10" 10 \
	kc verify --header "$KEK" "$DATA"
assert_stderr_contains -m "... the header file named" "header file '$KEK' is not a LUKS2 volume"

# --- the verbs, through the header -------------------------------------------------------------
assert_exit -m "kek add --header: exit 0" 0 kc kek add --header "$HDR" "$DATA" --kek "file:$KEK2"
assert_exit -m "kek list --json --header" 0 kc kek list --json --header "$HDR" "$DATA"
assert_eq -m "... two tokens, the second for KEK2" "file:$KEK file:$KEK2" \
	"$(json_get "$OUT" '" ".join(t["kek"] for t in d["tokens"])')"
assert_exit -m "verify --all --header: both tokens work" 0 kc verify --all --header "$HDR" "$DATA"
assert_exit -m "kek remove --header --token 1" 0 kc kek remove -q --header "$HDR" "$DATA" --token 1
assert_exit -m "kek list --ids --header: token 0 left" 0 kc kek list --ids --header "$HDR" "$DATA"
assert_eq -m "... only token 0" 0 "$(cat "$OUT")"
assert_exit -m "recovery add --header" 0 kc recovery add -q --json --header "$HDR" "$DATA" \
	"${RECOVERY_FAST[@]}"
json_get "$OUT" 'd["recovery_key"]' | tr -d '\n' >"$T/rec.key"
assert_exit -m "dump --json --header" 0 kc dump --json --header "$HDR" "$DATA"
assert_eq -m "... the header's UUID" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
assert_eq -m "... data offset 0" 0 "$(json_get "$OUT" 'd["data_offset"]')"
assert_eq -m "... one kekcrypt token" 1 "$(json_get "$OUT" 'len(d["tokens"])')"
assert_exit -m "header backup --header" 0 kc header backup --header "$HDR" "$DATA" "$T/backup.img"
assert_eq -m "... the backup is of the header's volume" "$UUID" "$(cryptsetup luksUUID "$T/backup.img")"
assert_exit -m "repair --header: nothing to do, exit 0" 0 kc repair --header "$HDR" "$DATA"
assert_true -m "the data device is still untouched" is_all_zero "$DATA"

# --- stock cryptsetup -------------------------------------------------------------------------
assert_exit -m "cryptsetup open --test-passphrase --token-only --header: the plugin unlocks" 0 \
	cryptsetup open --test-passphrase --token-only -v --header "$HDR" "$DATA"
assert_stdout_contains -m "... keyslot 0 through the token" "Key slot 0 unlocked."
# --disable-external-tokens: the key file alone, not the plugin's token first.
assert_exit -m "cryptsetup open --test-passphrase --header with the recovery key" 0 \
	cryptsetup open --test-passphrase -v --disable-external-tokens --header "$HDR" "$DATA" \
	--key-file "$T/rec.key"
assert_stdout_contains -m "... in a recovery keyslot (1)" "Key slot 1 unlocked."

# --- refusals -----------------------------------------------------------------------------------
for v in status close doctor config; do
	assert_exit -m "$v --header: exit 28" 28 kc "$v" --header "$HDR" "$DATA"
	assert_stderr_contains -m "... says $v does not support it" \
		"'$v' does not support a detached LUKS2 header"
done
assert_exit -m "--header before status: exit 28" 28 kc --header "$HDR" status "$DATA"
assert_exit -m "... with --json: the error object" 28 kc --json --header "$HDR" status "$DATA"
assert_eq -m "... exit_code 28 in it" 28 "$(json_get "$OUT" 'd["error"]["exit_code"]')"
# --- firstboot --header: a template's clone re-keyed through its header (offline here) ------
new_img "$T/tpl.img"
assert_exit -m "format --template --header: exit 0" 0 \
	kc format -q --template --header "$T/tpl.hdr" "$T/tpl.img" --kek "file:$KEK"
before=$(cryptsetup luksDump --dump-json-metadata "$T/tpl.hdr")
assert_exit -m "firstboot --header: exit 0" 0 \
	kc firstboot --json --header "$T/tpl.hdr" "$T/tpl.img"
assert_eq -m "... a template's, re-keyed" "template True" \
	"$(json_get "$OUT" 'd["mark"] + " " + str(d["rekeyed"])')"
assert_exit -m "... template show --header" 0 kc template show --json --header "$T/tpl.hdr" "$T/tpl.img"
assert_eq -m "... the mark is gone" none "$(json_get "$OUT" 'd["mark"]')"
after=$(cryptsetup luksDump --dump-json-metadata "$T/tpl.hdr")
assert_true -m "... a new volume key (the LUKS2 digests differ)" \
	test "$(json_get <(echo "$before") 'd["digests"]')" != "$(json_get <(echo "$after") 'd["digests"]')"
assert_exit -m "... the data device holds no signature (blkid -p: nothing found)" 2 \
	blkid -p "$T/tpl.img"
assert_exit -m "... verify --header: exit 0" 0 kc verify --header "$T/tpl.hdr" "$T/tpl.img"
assert_exit -m "format over an existing header without --force: exit 11" 11 \
	kc format -q --header "$HDR" "$DATA" --kek "file:$KEK"
assert_stderr_contains -m "... names the header file" "'$HDR' holds a signature of type crypto_LUKS"
# A KEK file that the configuration allows but that is not there (a config of its own: doctor
# below would rightly complain about it).
(umask 077 && printf '[file]\nallowed-paths = %s\n' "$T/none.bin" >"$T/none.conf")
assert_exit -m "format --header NEW with a KEK file that does not exist: fails (exit 3)" 3 \
	kc format -q --config "$T/none.conf" --header "$T/new.img" "$DATA" --kek "file:$T/none.bin"
assert_true -m "... and leaves no header file behind" test ! -e "$T/new.img"

# --- a loop device ------------------------------------------------------------------------------
new_img "$T/loop.img"
loop_attach "$T/loop.img"
assert_exit -m "format --header on a loop device" 0 \
	kc format -q --header "$T/loophdr.img" "$LOOP" --kek "file:$KEK"
assert_exit -m "verify --header on the loop device" 0 kc verify --header "$T/loophdr.img" "$LOOP"
assert_true -m "the loop device holds no signature" is_all_zero "$T/loop.img"
assert_exit -m "cryptsetup open --test-passphrase --token-only --header on the loop device" 0 \
	cryptsetup open --test-passphrase --token-only --header "$T/loophdr.img" "$LOOP"

# --- crypttab: --crypttab runs, boot-needs, doctor -------------------------------------------
KS=/usr/lib/kekcrypt/kekcrypt-keyscript
printf 'hd %s none luks,header=%s,keyscript=%s\n' "$DATA" "$HDR" "$KS" >"$T/crypttab"
assert_exit -m "verify --all --crypttab: the line's header= is used" 0 \
	kc verify --all --json --crypttab="$T/crypttab"
assert_not_contains -m "... (reading it, it says nothing of the initramfs)" "$(cat "$ERR")" \
	"initramfs"
assert_eq -m "... the volume done" "done" "$(json_get "$OUT" 'd["volumes"][0]["status"]')"
assert_exit -m "--crypttab with --header: exit 2" 2 \
	kc verify --all --crypttab="$T/crypttab" --header "$HDR"
# firstboot.service's run: a template's clone named in crypttab with header=.
new_img "$T/tpl2.img"
kc format -q --template --header "$T/tpl2.hdr" "$T/tpl2.img" --kek "file:$KEK"
printf 'hd %s none luks,header=%s,keyscript=%s\n' "$T/tpl2.img" "$T/tpl2.hdr" "$KS" \
	>"$T/crypttab2"
assert_exit -m "firstboot --crypttab: a header= line's volume re-keyed through it" 0 \
	kc firstboot --crypttab="$T/crypttab2"
# (and since the keyscript unlocks it in the initramfs, which holds a copy of that header)
assert_stderr_contains -m "... it says that the initramfs must be built again" \
	"kekcrypt: note: $T/tpl2.hdr changed, and the initramfs holds a copy of it (crypttab: hd)"
assert_exit -m "... its mark gone" 0 kc template show --json --header "$T/tpl2.hdr" "$T/tpl2.img"
assert_eq -m "... (none)" none "$(json_get "$OUT" 'd["mark"]')"

assert_exit -m "boot-needs --for keyscript with a header= line" 0 \
	kc boot-needs --for keyscript --crypttab "$T/crypttab"
assert_stdout_contains -m "... lists the header file" \
	"$(printf 'file\t%s\tthe detached LUKS2 header of %s' "$HDR" "$DATA")"
assert_stdout_contains -m "... and the KEK file, read through the header" \
	"$(printf 'secret\t%s\t' "$KEK")"
assert_exit -m "boot-needs --header HDR DATA" 0 kc boot-needs --header "$HDR" "$DATA"
assert_stdout_contains -m "... lists the header file" "$(printf 'file\t%s\t' "$HDR")"
assert_exit -m "boot-needs --for with --header: exit 2" 2 \
	kc boot-needs --for keyscript --crypttab "$T/crypttab" --header "$HDR"
printf 'hd %s none luks,header=%s,keyscript=%s\n' "$DATA" "$T/gone.img" "$KS" >"$T/crypttab-gone"
assert_exit -m "boot-needs: a header= file that is not there" 0 \
	kc boot-needs --for keyscript --crypttab "$T/crypttab-gone"
assert_stdout_contains -m "... is 'missing' (the hooks fail the build)" \
	"$(printf 'missing\t%s\t' "$T/gone.img")"

# initramfs NAME PATH...: a gzipped newc archive (root only) holding PATHs, the keyscript
# at its installed path and the CLI (what doctor looks for).
initramfs() {
	local name=$1 f
	shift
	rm -rf "$T/tree"
	for f in "$@" "$T/ks"; do
		mkdir -p "$T/tree$(dirname "$f")"
		cp "$f" "$T/tree$f"
	done
	mkdir -p "$T/tree$(dirname "$KS")"
	cp "$T/ks" "$T/tree$KS"
	(cd "$T/tree" && find . | cpio -o -H newc --quiet | gzip -n >"$T/$name.cpio")
	chmod 600 "$T/$name.cpio"
}
echo '#!/bin/sh' >"$T/ks"
BINS=()
for f in "$KEKCRYPT" "$(dirname "$KEKCRYPT")/.libs/kekcrypt" "$(dirname "$KEKCRYPT")/.libs/lt-kekcrypt"; do
	[ -e "$f" ] && BINS+=("$(readlink -f "$f")")
done
initramfs good "${BINS[@]}" "$KEK" "$KEK2" "$T_CONF" "$HDR"
initramfs nohdr "${BINS[@]}" "$KEK" "$KEK2" "$T_CONF"

assert_exit -m "doctor, crypttab header=, the header in the initramfs: exit 0" 0 \
	kc doctor --json --crypttab "$T/crypttab" --initramfs "$T/good.cpio"
assert_eq -m "... the volume checked through its header" "hd $HDR 0 True" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["volumes"][0]["name"], d["volumes"][0]["header"], d["volumes"][0]["unlocks_with_token"], d["volumes"][0]["ok"]])')"
# The header changed since the image was built (here a recovery key added): the boot would read
# the image's older copy, which lacks it (or, after a rekey, maps the old volume key).
cp -p "$HDR" "$T/hdr.saved"
assert_exit -m "a recovery key added through the header file" 0 kc recovery add -q --header "$HDR" \
	"$DATA" --pbkdf-memory 32 --pbkdf-force-iterations 4
assert_exit -m "doctor: the initramfs's copy of the header is older: exit 24" 24 \
	kc doctor --crypttab "$T/crypttab" --initramfs "$T/good.cpio"
assert_stdout_contains -m "... says so, and what to do" \
	"error: the initramfs holds an older copy of the detached header $HDR, which the boot reads: build the initramfs again (update-initramfs -u, or dracut -f)"
initramfs rebuilt "${BINS[@]}" "$KEK" "$KEK2" "$T_CONF" "$HDR"
assert_exit -m "... built again: exit 0" 0 \
	kc doctor --crypttab "$T/crypttab" --initramfs "$T/rebuilt.cpio"
# The verb that changes the header says so, when /etc/crypttab has the initramfs unlock a volume
# through it (here /etc is an overlay in a private mount namespace, its crypttab $T/crypttab).
with_crypttab() {	# with_crypttab CMD...
	mkdir -p "$T/etc-up" "$T/etc-work"
	unshare -m bash -c 'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc &&
		cp "$3" /etc/crypttab && shift 3 && exec "$@"' _ "$T/etc-up" "$T/etc-work" \
		"$T/crypttab" "$@"
}
assert_exit -m "recovery add through a header crypttab's initramfs entry names" 0 \
	with_crypttab "$KEKCRYPT" recovery add -q --header "$HDR" "$DATA" --config "$T_CONF" \
	--pbkdf-memory 32 --pbkdf-force-iterations 4
assert_stderr_contains -m "... says the initramfs must be built again" \
	"kekcrypt: note: $HDR changed, and the initramfs holds a copy of it (crypttab: hd), which the next boot reads: build the initramfs again (update-initramfs -u, or dracut -f) before rebooting ('kekcrypt doctor' checks it)"
assert_exit -m "a verb that only reads it (verify)" 0 \
	with_crypttab "$KEKCRYPT" verify --header "$HDR" "$DATA" --config "$T_CONF"
assert_not_contains -m "... says nothing of the initramfs" "$(cat "$ERR")" "initramfs"
assert_exit -m "a change without such a crypttab entry" 0 kc recovery add -q --header "$HDR" \
	"$DATA" --pbkdf-memory 32 --pbkdf-force-iterations 4
assert_not_contains -m "... says nothing of the initramfs" "$(cat "$ERR")" "initramfs"
cp -p "$T/hdr.saved" "$HDR"
assert_exit -m "doctor: the initramfs lacks the header file: exit 24" 24 \
	kc doctor --crypttab "$T/crypttab" --initramfs "$T/nohdr.cpio"
assert_stdout_contains -m "... says so" "the initramfs lacks $HDR (the detached LUKS2 header of $DATA)"
assert_exit -m "doctor: the header= file is missing: exit 24" 24 \
	kc doctor --crypttab "$T/crypttab-gone" --initramfs "$T/good.cpio"
assert_stdout_contains -m "... says so" \
	"its detached LUKS2 header $T/gone.img (crypttab header=) is missing"

# --- the keyscript ------------------------------------------------------------------------------
cat >"$T/askpass" <<SH
#!/bin/sh
echo asked >"$T/asked"
cat "$T/rec.key"
SH
chmod 755 "$T/askpass"
sed -e "s|%BINDIR%|$(dirname "$KEKCRYPT")|g" -e "s|%KEYSCRIPT%|$T/keyscript|g" \
	-e "s|%ASKPASS%|$T/askpass|g" "$KS_IN" >"$T/keyscript"
chmod 755 "$T/keyscript"
CRYPTTAB_NAME=hd CRYPTTAB_SOURCE=$DATA CRYPTTAB_KEY=none CRYPTTAB_TRIED=0 \
	CRYPTTAB_OPTION_header=$HDR run "$T/keyscript"
assert_eq -m "keyscript with CRYPTTAB_OPTION_header: exit 0" 0 "$RC"
assert_true -m "... askpass not asked" test ! -e "$T/asked"
cp "$OUT" "$T/pass"
assert_exit -m "... what it printed opens the volume (cryptsetup --header)" 0 \
	cryptsetup open --test-passphrase -v --disable-external-tokens --header "$HDR" "$DATA" \
	--key-file "$T/pass"
assert_stdout_contains -m "... in token 0's keyslot 0 (not the recovery key's)" "Key slot 0 unlocked."
CRYPTTAB_NAME=hd CRYPTTAB_SOURCE=$DATA CRYPTTAB_KEY=none CRYPTTAB_TRIED=0 run "$T/keyscript"
assert_true -m "keyscript without it: the device alone is not a volume, askpass asked" \
	test -e "$T/asked"

done_testing
