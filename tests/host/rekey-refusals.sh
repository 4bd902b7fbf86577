#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# rekey's refusals that need no device-mapper: a header with no room for the new keyslots and
# tokens (filled by `kek add` until it says so) makes rekey fail with exit 20, say what to
# do, and leave the volume as it was: the same tokens and keyslots, and the old KEK still
# unwraps the same data key. A volume with a recovery key (four keyslots, one per typed form)
# is refused with exit 12 naming one recovery key, header unchanged. A device that is not
# LUKS2 is refused with exit 10, a wrong flag with exit 2. (The re-encryption itself, with crashes and resume, is tests/vm/rekey.sh.)
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
new_kek "$K0"
new_img "$IMG" 48M
format_img "$IMG" "$K0"

# Fill the header: each `kek add` of a new KEK takes a keyslot and a token, until one is
# refused (adding a KEK the volume has is a no-op).
n=1
while new_kek "$T/kek$n.bin" && [ "$n" -lt 40 ] &&
	kc kek add "$IMG" --kek "file:$T/kek$n.bin" >"$OUT" 2>"$ERR"; do
	n=$((n + 1))
done
assert_true -m "kek add stops with a full header before 40 tokens ($n tokens)" test "$n" -lt 40
assert_exit -m "one more kek add: no room (exit 20)" 20 kc kek add "$IMG" --kek "file:$T/kek$n.bin"

assert_exit -m "dump --json before" 0 kc dump "$IMG" --json
before=$(cat "$OUT")
assert_exit -m "rekey on a full header: exit 20" 20 kc rekey "$IMG"
assert_stderr_contains -m "... names the device" "$IMG"
assert_stderr_contains -m "... says what is missing" "No space left"
assert_stderr_contains -m "... and what to do" "kekcrypt kek remove"
assert_exit -m "dump --json after" 0 kc dump "$IMG" --json
assert_eq -m "the same tokens and keyslots as before" "$before" "$(cat "$OUT")"
assert_exit -m "the volume still verifies with the old KEK" 0 kc verify "$IMG"
assert_exit -m "cryptsetup reads the JSON metadata" 0 \
	cryptsetup luksDump --dump-json-metadata "$IMG"
assert_contains -m "... (it lists our tokens)" "$(cat "$OUT")" '"type":"kekcrypt"'
assert_not_contains -m "no rekey marks left in the header" "$(cat "$OUT")" "kekcrypt-rekey"

sum=$(header_sum "$K0")
assert_exit -m "rekey of a file that is not LUKS2: exit 10" 10 kc rekey "$K0"
assert_header_unchanged -m "... and the file is untouched" "$K0" "$sum"
assert_exit -m "rekey with an unknown flag: exit 2" 2 kc rekey "$IMG" --no-such-flag
assert_exit -m "rekey with a bad --resilience: exit 2" 2 kc rekey "$IMG" --resilience none

R=$T/rec.img
new_img "$R"
format_img "$R" "$K0"
assert_exit -m "(a recovery key)" 0 kc recovery add -q "$R" "${RECOVERY_FAST[@]}"
sum=$(header_sum "$R")
assert_exit -m "rekey with a recovery key: refused (exit 12)" 12 kc rekey "$R"
assert_stderr_contains -m "... counting its four keyslots as one recovery key" \
	"1 recovery key(s) and 0 other keyslot(s) not held by a kekcrypt token"
assert_header_unchanged -m "... header unchanged" "$R" "$sum"

done_testing
