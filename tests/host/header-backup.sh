#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# header backup / restore: the backup is a private (0600) new file, never an overwrite; after
# the only token is destroyed (kek remove --force), restoring the backup makes the volume
# verify again; a backup of another volume is refused (exit 23) unless --force; a file that
# is not a LUKS2 header, and a device without a LUKS2 header, are refused (exit 10).
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
OTHER=$T/other.img
K0=$T/kek0.bin
K1=$T/kek1.bin
new_kek "$K0"
new_kek "$K1"
new_img "$IMG"
new_img "$OTHER"
format_img "$IMG" "$K0"
format_img "$OTHER" "$K1"

assert_exit -m "header backup" 0 kc header backup "$IMG" "$T/hdr.bak"
assert_eq -m "the backup is mode 0600" 600 "$(stat -c %a "$T/hdr.bak")"
assert_exit -m "cryptsetup reads the backup as LUKS2" 0 cryptsetup isLuks --type luks2 "$T/hdr.bak"
assert_eq -m "same UUID as the device" "$(cryptsetup luksUUID "$IMG")" "$(cryptsetup luksUUID "$T/hdr.bak")"
bsum=$(sha256sum <"$T/hdr.bak")
assert_exit -m "a second backup to the same file is refused (exit 11)" 11 kc header backup "$IMG" "$T/hdr.bak"
assert_stderr_contains -m "... saying it exists" "exists"
assert_eq -m "... and the file is untouched" "$bsum" "$(sha256sum <"$T/hdr.bak")"
ln -s "$T/elsewhere" "$T/link.bak"
assert_exit -m "a dangling symlink as FILE is refused too (exit 11)" 11 kc header backup "$IMG" "$T/link.bak"
assert_true -m "... and nothing is created through it" test ! -e "$T/elsewhere"
assert_exit -m "backup of a device without LUKS2: exit 10" 10 kc header backup "$T/kek0.bin" "$T/x.bak"
assert_exit -m "header backup --json" 0 kc header backup "$IMG" "$T/hdr2.bak" --json
assert_eq -m "json: file" "$T/hdr2.bak" "$(json_get "$OUT" 'd["file"]')"

# Destroy the only token, then restore.
assert_exit -m "kek remove --force the only token" 0 kc kek remove --force -q "$IMG" --token 0
assert_exit -m "the volume no longer verifies (exit 3)" 3 kc verify "$IMG"
assert_exit -m "header restore -q" 0 kc header restore -q "$IMG" "$T/hdr.bak"
assert_stdout_contains "header restored"
assert_exit -m "the volume verifies again" 0 kc verify "$IMG"
assert_stdout_contains -m "... with the restored token" "token 0 (file:$K0)"

# Another volume's backup.
assert_exit 0 kc header backup "$OTHER" "$T/other.bak"
sum=$(header_sum "$IMG")
assert_exit -m "restoring another volume's backup is refused (exit 23)" 23 \
	kc header restore -q "$IMG" "$T/other.bak"
assert_stderr_contains -m "... naming both UUIDs" "$(cryptsetup luksUUID "$OTHER")"
assert_stderr_contains -m "... mentioning --force" "--force"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
printf 'not a header' >"$T/junk.bak"
assert_exit -m "a file that is not a LUKS2 header: exit 10" 10 kc header restore -q "$IMG" "$T/junk.bak"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
assert_exit -m "a missing backup file: exit 3" 3 kc header restore -q "$IMG" "$T/none.bak"
assert_exit -m "--force restores another volume's header" 0 \
	kc header restore -q --force "$IMG" "$T/other.bak"
assert_eq -m "... the device now has the other UUID" "$(cryptsetup luksUUID "$OTHER")" "$(cryptsetup luksUUID "$IMG")"

# A device whose header was wiped.
dd if=/dev/zero of="$IMG" bs=1M count=16 conv=notrunc status=none
assert_exit -m "restore onto a device without a LUKS2 header is refused (exit 10)" 10 \
	kc header restore -q "$IMG" "$T/hdr.bak"
assert_stderr_contains -m "... mentioning --force" "--force"
assert_exit -m "... and done with --force" 0 kc header restore -q --force "$IMG" "$T/hdr.bak"
assert_exit -m "the volume verifies with its first KEK" 0 kc verify "$IMG"
assert_stdout_contains "file:$K0"

done_testing
