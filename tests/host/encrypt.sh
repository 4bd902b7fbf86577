#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kekcrypt encrypt: an ext4 filesystem on an image file encrypted in place, offline (libcryptsetup
# re-encrypts an image file through its userspace crypto, without device-mapper). Each result is
# decrypted again by cryptsetup alone, with the recovery key, and compared byte for byte with the
# filesystem it started from: the data is the same, and it is really under the volume's key.
# Covered: --dry-run (says what it found, writes nothing); refusals, each with the device
# unchanged and a distinct exit code (a filesystem reaching into the last 32 MiB: the resize2fs
# to run, exit 20; a LUKS volume or a partition table: exit 11; content libblkid cannot size
# without --force: exit 11); --shrink (e2fsck -f -p, resize2fs: the decrypted result is a clean
# filesystem of the size asked for, with the same files; one e2fsck -p cannot fix: refused); the result an ordinary kekcrypt volume (verify, --uuid, --label, no
# plaintext left, no header file kept); an encryption stopped by SIGINT after a chunk and one
# killed at each of its own crash points (KC_TEST_CRASH_AT: the header file built, written onto
# the device, removed) are finished by `encrypt --resume`, and meanwhile the writers refuse and
# name `kekcrypt encrypt --resume`. Online (DEVICE NAME) the host checks the refusals only
# (device-mapper is in tests/vm/rekey.sh): a mounted device (with the commands to run
# instead), a bad NAME, --header, no device-mapper.
. "$(dirname "$0")/lib.sh"
need mke2fs e2fsck dumpe2fs debugfs cryptsetup blkid sfdisk losetup mount unshare

T=$T_DIR
K=$T/kek.bin
new_kek "$T/other.bin"
URI=file:$K
new_kek "$K"

# The files the filesystem holds: incompressible data and a marker to look for in plaintext.
data_tree 12
# fs IMG FS_MIB IMG_MIB: an ext4 filesystem of FS_MIB holding the tree, in an image of IMG_MIB;
# IMG.orig keeps the filesystem as it was.
fs() {
	rm -f "$1"
	mke2fs -q -t ext4 -d "$T/tree" -L kcdata "$1" "$2M"
	cp --sparse=always "$1" "$1.orig"
	truncate -s "$3M" "$1"
}
# decrypts_to_orig IMG KEYFILE: cryptsetup, with the recovery key, decrypts a copy of IMG back to
# the filesystem of IMG.orig.
decrypts_to_orig() {
	rm -f "$T/copy" "$T/copy.hdr"
	cp --sparse=always "$1" "$T/copy"
	cryptsetup reencrypt -q --decrypt --force-offline-reencrypt --header "$T/copy.hdr" \
		--key-file "$2" "$T/copy" >"$T/decrypt.log" 2>&1 &&
		cmp -s -n "$(stat -c %s "$1.orig")" "$T/copy" "$1.orig"
}
# recovery IMG: add a recovery key, in $T/rk (its printed form, no newline).
recovery() {
	kc recovery add -q "$1" "${RECOVERY_FAST[@]}" --json >"$T/rk.json" &&
		printf '%s' "$(json_get "$T/rk.json" 'd["recovery_key"]')" >"$T/rk"
}
state_empty() { [ -z "$(ls -A "$KC_STATE_DIR" 2>/dev/null)" ]; }

IMG=$T/disk.img

# --- help and usage ---------------------------------------------------------------------------
assert_exit 0 kc encrypt --help
assert_stdout_contains -m "--help names --resume" "--resume"
fs "$IMG" 48 96
assert_exit -m "no --kek: a usage error" 2 kc encrypt "$IMG"

# --- dry run ----------------------------------------------------------------------------------
sum=$(sha256sum <"$IMG")
assert_exit 0 kc encrypt "$IMG" --kek "$URI" --dry-run --json
assert_eq -m "dry run: ext4, 48 MiB used of 96, a 16 MiB header, 32 MiB needed at the end" \
	"ext4 $((48 << 20)) $((96 << 20)) $((16 << 20)) $((32 << 20)) True" \
	"$(json_get "$OUT" '" ".join(str(d[k]) for k in ["content", "content_bytes", "device_bytes", "header_bytes", "reserved_bytes", "dry_run"])')"
assert_exit 0 kc encrypt "$IMG" --kek "$URI" --dry-run
assert_stdout_contains -m "dry run: says nothing was written" "Nothing was written."
assert_eq -m "dry run: the image is unchanged" "$sum" "$(sha256sum <"$IMG")"

# --- online (NAME): what the host can check without device-mapper ----------------------------
assert_exit -m "online: DEVICE NAME and a third word: a usage error" 2 \
	kc encrypt "$IMG" enc extra --kek "$URI"
assert_exit -m "online: a NAME with '/': exit 9" 9 kc encrypt "$IMG" a/b --kek "$URI" --dry-run
assert_stderr_contains -m "... says so" "'a/b' is not a valid mapping name"
assert_exit -m "online --dry-run without device-mapper: exit 19" 19 \
	kc encrypt "$IMG" enc --kek "$URI" --dry-run --json
assert_eq -m "... a kekcrypt.error/1 object naming device-mapper" "kekcrypt.error/1 True" \
	"$(json_get "$OUT" 'd["schema"] + " " + str("device-mapper" in d["error"]["message"])')"
assert_exit -m "online with --header, no device-mapper: exit 19" 19 \
	kc encrypt "$IMG" enc --kek "$URI" --header "$T/online.hdr"
assert_true -m "... no header file made" test ! -e "$T/online.hdr"
assert_eq -m "online refusals: the image is unchanged" "$sum" "$(sha256sum <"$IMG")"
# A mounted filesystem: refused, with the commands that encrypt it online (in a private mount
# namespace, so that the mount cannot outlive the test).
loop_attach "$IMG"
mkdir -p "$T/mnt"
assert_exit -m "mounted: refused, exit 12" 12 unshare -m --propagation private \
	sh -c 'mount -o ro "$1" "$2" && shift 2 && exec "$@"' - "$LOOP" "$T/mnt" \
	"$KEKCRYPT" encrypt "$LOOP" enc --kek "$URI" --config "$T_CONF"
assert_stderr_contains -m "... naming the mount point and the commands to run" \
	"is mounted at '$T/mnt': a mounted filesystem cannot move under dm-crypt. Unmount it, encrypt it online and mount the mapping instead: 'umount $T/mnt; kekcrypt encrypt $LOOP enc --kek URI...; mount /dev/mapper/enc $T/mnt'"
assert_exit -m "mounted, offline: refused the same way, NAME a placeholder" 12 \
	unshare -m --propagation private sh -c 'mount -o ro "$1" "$2" && shift 2 && exec "$@"' - \
	"$LOOP" "$T/mnt" "$KEKCRYPT" encrypt "$LOOP" --kek "$URI" --config "$T_CONF"
assert_stderr_contains -m "... kekcrypt encrypt DEVICE NAME" \
	"kekcrypt encrypt $LOOP NAME --kek URI...; mount /dev/mapper/NAME $T/mnt"
assert_stderr_contains -m "... and that --remount does it" \
	"or let encrypt do that: 'kekcrypt encrypt $LOOP NAME --remount --kek URI...'"
assert_exit -m "--remount without NAME: a usage error" 2 \
	kc encrypt "$LOOP" --remount --kek "$URI"
# --remount, what the host can check (no device-mapper; the guest test runs it): the online
# checks come before the unmount; a filesystem mounted at two places is refused.
assert_exit -m "--remount --dry-run, mounted, no device-mapper: exit 19" 19 \
	unshare -m --propagation private sh -c 'd=$1 m=$2; mount -o ro "$d" "$m" || exit 98
		shift 2; "$@"; rc=$?
		grep -q "^$d $m " /proc/mounts || { echo "unmounted" >&2; exit 99; }; exit $rc' - \
	"$LOOP" "$T/mnt" "$KEKCRYPT" encrypt "$LOOP" enc --remount --dry-run --kek "$URI" \
	--config "$T_CONF"
assert_stderr_contains -m "... says device-mapper" "device-mapper"
mkdir -p "$T/mnt2"
assert_exit -m "--remount, mounted at two places: exit 12" 12 unshare -m --propagation private \
	sh -c 'mount -o ro "$1" "$2" && mount -o ro "$1" "$3" && shift 3 && exec "$@"' - \
	"$LOOP" "$T/mnt" "$T/mnt2" "$KEKCRYPT" encrypt "$LOOP" enc --remount --kek "$URI" \
	--config "$T_CONF"
assert_stderr_contains -m "... says so" "is mounted at 2 places ('$T/mnt' first)"
loop_detach "$LOOP"
assert_eq -m "mounted: the image is unchanged" "$sum" "$(sha256sum <"$IMG")"

# --- refusals ---------------------------------------------------------------------------------
fs "$T/full.img" 80 96
sum=$(sha256sum <"$T/full.img")
assert_exit -m "a filesystem reaching into the last 32 MiB: exit 20" 20 \
	kc encrypt "$T/full.img" --kek "$URI"
assert_stderr_contains -m "... says how to shrink it" "resize2fs $T/full.img 64M"
assert_eq -m "... the image is unchanged" "$sum" "$(sha256sum <"$T/full.img")"
# Encryption sectors larger than the filesystem's blocks: dm-crypt's logical block is the
# sector, and the filesystem would not mount from the mapping.
img_sum=$(sha256sum <"$IMG")
assert_eq -m "the 48 MiB ext4 has 1 KiB blocks" 1024 "$(blkid -p -s BLOCK_SIZE -o value "$IMG")"
assert_exit -m "--sector-size 4096 over 1 KiB blocks: exit 9" 9 \
	kc encrypt "$IMG" --kek "$URI" --sector-size 4096
assert_stderr_contains -m "... says why and what to use" \
	"its ext4 filesystem has blocks of 1024 bytes, smaller than the encryption sector of 4096 it would then be read through, and would not mount: use --sector-size 1024"
assert_eq -m "... the image is unchanged" "$img_sum" "$(sha256sum <"$IMG")"
rm -f "$T/b4k.img"
mke2fs -q -t ext4 -b 4096 "$T/b4k.img" 32M
truncate -s 64M "$T/b4k.img"
assert_exit -m "--sector-size 4096 over 4 KiB blocks: accepted (dry run)" 0 \
	kc encrypt "$T/b4k.img" --kek "$URI" --sector-size 4096 --dry-run

# --shrink: checked and shrunk to leave the room, then encrypted; the files are all there.
assert_exit -m "--shrink --dry-run: says it would shrink it to 64 MiB" 0 \
	kc encrypt "$T/full.img" --kek "$URI" --shrink --dry-run --json
assert_eq -m "... shrunk_to_bytes 64 MiB, nothing written" "$((64 << 20)) $sum" \
	"$(json_get "$OUT" 'd["shrunk_to_bytes"]') $(sha256sum <"$T/full.img")"
assert_exit -m "--shrink: exit 0" 0 kc encrypt "$T/full.img" --kek "$URI" --shrink
assert_stdout_contains -m "... says it shrank it" "filesystem checked and shrunk to 64 MiB"
recovery "$T/full.img"
rm -f "$T/copy" "$T/copy.hdr"
cp --sparse=always "$T/full.img" "$T/copy"
assert_ok -m "... cryptsetup decrypts it" cryptsetup reencrypt -q --decrypt --force-offline-reencrypt \
	--header "$T/copy.hdr" --key-file "$T/rk" "$T/copy"
assert_ok -m "... to a clean filesystem (e2fsck -fn)" e2fsck -fn "$T/copy"
assert_eq -m "... of 64 MiB" $((64 << 10)) \
	"$(dumpe2fs -h "$T/copy" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { print c * s / 1024 }')"
assert_eq -m "... holding the same files" "$(cat "$T/tree/marker") $(sha256sum <"$T/tree/blob")" \
	"$(debugfs -R 'cat /marker' "$T/copy" 2>/dev/null) $(debugfs -R 'cat /blob' "$T/copy" 2>/dev/null | sha256sum)"
fs "$T/bad.img" 80 96
# A root inode that is not a directory: e2fsck -p leaves that to a person (exit 4).
debugfs -w -R 'sif <2> mode 0100644' "$T/bad.img" >/dev/null 2>&1
assert_exit -m "--shrink of a filesystem e2fsck -p cannot fix: exit 1" 1 \
	kc encrypt "$T/bad.img" --kek "$URI" --shrink
assert_stderr_contains -m "... says to run e2fsck" "run 'e2fsck -f $T/bad.img'"
assert_eq -m "... neither shrunk nor encrypted" "ext4 $((80 << 10))" \
	"$(blkid -p -s TYPE -o value "$T/bad.img") $(dumpe2fs -h "$T/bad.img" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { print c * s / 1024 }')"

new_img "$T/luks.img" 40M
format_img "$T/luks.img" "$K"
sum=$(sha256sum <"$T/luks.img")
assert_exit -m "a LUKS volume: exit 11" 11 kc encrypt "$T/luks.img" --kek "$URI"
assert_stderr_contains -m "... says it is one" "is already a LUKS volume"
assert_eq -m "... unchanged" "$sum" "$(sha256sum <"$T/luks.img")"

new_img "$T/pt.img" 80M
echo 'label: gpt' | sfdisk -q "$T/pt.img" >/dev/null
sum=$(sha256sum <"$T/pt.img")
assert_exit -m "a partition table: exit 11" 11 kc encrypt "$T/pt.img" --kek "$URI"
assert_stderr_contains -m "... says to encrypt the partitions" "holds a partition table (gpt)"
assert_eq -m "... unchanged" "$sum" "$(sha256sum <"$T/pt.img")"

new_img "$T/zero.img" 80M
assert_exit -m "nothing libblkid knows, without --force: exit 11" 11 \
	kc encrypt "$T/zero.img" --kek "$URI"
assert_stderr_contains -m "... asks for --force" "use --force"
assert_true -m "... unchanged (all zero)" is_all_zero "$T/zero.img"
assert_exit -m "... with --force: encrypted" 0 kc encrypt "$T/zero.img" --kek "$URI" --force
assert_exit -m "... and verifies" 0 kc verify "$T/zero.img"

# --- encrypt ----------------------------------------------------------------------------------
UUID=$(cat /proc/sys/kernel/random/uuid)
assert_exit 0 kc encrypt "$IMG" --kek "$URI" --uuid "$UUID" --label kc-enc --json
assert_eq -m "encrypt --json: the UUID asked for" "$UUID" "$(json_get "$OUT" 'd["uuid"]')"
assert_eq -m "... offline: online false, name null" "False None" \
	"$(json_get "$OUT" 'str(d["online"]) + " " + str(d["name"])')"
assert_eq -m "the header: that UUID and label" "$UUID kc-enc" \
	"$(cryptsetup luksUUID "$IMG") $(blkid -p -s LABEL -o value "$IMG")"
assert_exit -m "verify: the token unwraps the data key" 0 kc verify "$IMG"
assert_true -m "no header file kept" state_empty
assert_true -m "no plaintext left (the marker is gone)" \
	bash -c '! grep -qa "$1" "$2"' - "kekcrypt-plaintext-marker-$$" "$IMG"
recovery "$IMG"
assert_true -m "cryptsetup decrypts it back to the filesystem it was" decrypts_to_orig "$IMG" "$T/rk"
assert_exit -m "encrypting it again: already LUKS, exit 11" 11 kc encrypt "$IMG" --kek "$URI"

# --- stopped after a chunk (SIGINT), then --resume ---------------------------------------------
fs "$IMG" 160 192
interrupt_after_chunk encrypt "$IMG" --kek "$URI" --progress-json
assert_eq -m "stopped by SIGINT after a chunk: exit 17" 17 "$RC"
assert_contains -m "... says how to continue" "$(cat "$ERR")" "kekcrypt encrypt --resume $IMG"
assert_exit -m "meanwhile kek add refuses: exit 12" 12 kc kek add "$IMG" --kek "file:$T/other.bin"
assert_stderr_contains -m "... naming the encryption and its command" \
	"an in-place encryption is in progress: run 'kekcrypt encrypt --resume $IMG'"
assert_exit -m "meanwhile rekey refuses: exit 12" 12 kc rekey "$IMG"
assert_stderr_contains -m "... naming encrypt --resume" "kekcrypt encrypt --resume $IMG"
assert_exit -m "dump --json shows it" 0 kc dump "$IMG" --json
assert_eq -m "... phase encrypting, and the command" "encrypting kekcrypt encrypt --resume" \
	"$(json_get "$OUT" 'd["rekey"]["phase"] + " " + d["rekey"]["resume"]')"
assert_exit -m "encrypt --resume finishes it" 0 kc encrypt --resume "$IMG"
assert_stdout_contains -m "... and says it resumed" "encrypted in place (resumed)"
recovery "$IMG"
assert_true -m "... to the filesystem it was" decrypts_to_orig "$IMG" "$T/rk"
assert_exit -m "--resume with nothing to resume: exit 3" 3 kc encrypt --resume "$IMG"

# --- killed at each crash point of its own, then the same command again ---------------------------
for n in 1 2 3; do
	fs "$IMG" 40 80
	rc=0
	KC_TEST_CRASH_AT=$n "$KEKCRYPT" encrypt -q --config "$T_CONF" "$IMG" --kek "$URI" \
		>/dev/null 2>&1 || rc=$?
	assert_eq -m "crash point $n: killed (SIGKILL)" 137 "$rc"
	if [ "$n" -lt 3 ]; then
		assert_true -m "... the header file is kept" test -n "$(ls -A "$KC_STATE_DIR")"
	else
		assert_true -m "... the header file is gone" state_empty
	fi
	assert_exit -m "... encrypt --resume finishes it" 0 kc encrypt --resume "$IMG"
	assert_true -m "... no header file kept" state_empty
	recovery "$IMG"
	assert_true -m "... to the filesystem it was" decrypts_to_orig "$IMG" "$T/rk"
done

done_testing
