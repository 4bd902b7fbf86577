#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# An interrupted rekey, made on the host: an offline `kekcrypt rekey` (libcryptsetup
# re-encrypts an image file without device-mapper) stopped with SIGINT after its first
# chunks. Every verb that touches the volume then says "a rekey is in progress (N/144 MiB):
# run 'kekcrypt rekey --resume IMG'" rather than what the half-changed header makes it fail
# with: the writers (kek add / remove / rotate / rotate --all, recovery add / remove, repair)
# refuse (exit 12) and write nothing, also when named by a --token URI that old and new tokens
# share; format refuses (exit 11) and says it; verify works through a new token and notes
# it, and through an old token fails with the rekey message first (exit 12); dump (text and --json) shows the phase, bytes done and total, resilience,
# new tokens and keyslots, the bridge and reencrypt keyslots; doctor warns. Reading leaves the
# header byte-identical. After `rekey --resume` all is quiet again. A rekey killed before the
# re-encryption began (KC_TEST_CRASH_AT, lib/rekey.c) is the phase "prepared".
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img K0=$T/kek0.bin
new_kek "$K0"
new_img "$IMG" 160M
format_img "$IMG" "$K0"
MIB=$((144 * 1024 * 1024))

# Start the rekey; once a chunk is done, SIGINT: it stops after the current chunk.
interrupt_after_chunk rekey "$IMG" --progress-json
assert_eq -m "rekey stopped by SIGINT after a chunk: exit 17" 17 "$RC"
assert_contains -m "... says how to continue" "$(cat "$ERR")" "kekcrypt rekey --resume $IMG"

assert_exit -m "dump --json" 0 kc dump --json "$IMG"
cp "$OUT" "$T/dump.json"
rk() { json_get "$T/dump.json" "d[\"rekey\"][\"$1\"]"; }
done_b=$(rk done_bytes)
assert_eq -m "dump: phase re-encrypting" re-encrypting "$(rk phase)"
assert_eq -m "dump: total bytes: the data of 144 MiB" "$MIB" "$(rk total_bytes)"
assert_true -m "dump: some bytes done, not all ($done_b)" test "$done_b" -gt 0 -a "$done_b" -lt "$MIB"
assert_eq -m "dump: resilience checksum" checksum "$(rk resilience)"
assert_eq -m "dump: the new token 1 and its keyslot 1" "[1] [1]" "$(rk new_tokens) $(rk new_keyslots)"
assert_true -m "dump: the bridge and reencrypt keyslots ($(rk bridge_keyslot), $(rk reencrypt_keyslot))" \
	test "$(rk bridge_keyslot)" -ge 0 -a "$(rk reencrypt_keyslot)" -ge 0
SUMMARY="a rekey is in progress ($((done_b >> 20))/144 MiB)"
assert_eq -m "dump: the summary" "$SUMMARY" "$(rk summary)"
MSG="$SUMMARY: run 'kekcrypt rekey --resume $IMG'"

sum=$(header_sum "$IMG")
assert_exit -m "dump (text)" 0 kc dump "$IMG"
assert_stdout_contains -m "... shows the rekey" "Rekey:       $MSG"
assert_stdout_contains -m "... its bytes" "$done_b of $MIB bytes under the new key"
assert_exit -m "verify works (through the new token)" 0 kc verify --json "$IMG"
assert_eq -m "... token 1" 1 "$(json_get "$OUT" 'd["token"]')"
assert_eq -m "... --json shows the rekey" "$SUMMARY" "$(json_get "$OUT" 'd["rekey"]["summary"]')"
assert_stderr_contains -m "... and notes it" "note: device '$IMG': $MSG"
assert_exit -m "verify --token 0 (the old token): exit 12" 12 kc verify "$IMG" --token 0
assert_stderr_contains -m "... says the rekey first" "kekcrypt verify: device '$IMG': $MSG ("
cat >"$T/crypttab" <<CT
v $IMG none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript
CT
assert_exit -m "doctor (no initramfs to list: exit 24)" 24 \
	kc doctor --crypttab "$T/crypttab" --initramfs "$T/none.img" --json
assert_contains -m "doctor: a warning names the rekey" \
	"$(json_get "$OUT" '"|".join(p["severity"] + ": " + p["message"] for p in d["volumes"][0]["problems"])')" \
	"warning: $SUMMARY: run 'kekcrypt rekey --resume $IMG'"
assert_header_unchanged -m "reading (dump, verify, doctor) left the header as it was" "$IMG" "$sum"

# refused IDESC ARGS...: the writer refuses with exit 12 and the rekey message, writing nothing.
refused() {
	local desc=$1
	shift
	assert_exit -m "$desc: exit 12" 12 kc "$@"
	assert_stderr_contains -m "$desc: says the rekey is in progress, and what to run" \
		"device '$IMG': $MSG first"
}
refused "kek add" kek add "$IMG" --kek "file:$K0"
refused "kek remove --token 0" kek remove "$IMG" --token 0
refused "kek rotate" kek rotate "$IMG" --token 0
refused "kek rotate --all" kek rotate "$IMG" --all
refused "recovery add" recovery add -q "$IMG" --pbkdf-memory 32 --pbkdf-force-iterations 4
refused "recovery remove" recovery remove -q "$IMG"
refused "repair" repair "$IMG"
assert_exit -m "kek rotate --token URI (old and new token share it): exit 12" 12 \
	kc kek rotate "$IMG" --token "file:$K0"
assert_stderr_contains -m "... says the rekey is in progress" "device '$IMG': $MSG"
assert_exit -m "format without --force: exit 11" 11 kc format -q "$IMG" --kek "file:$K0"
assert_stderr_contains -m "... says the rekey is in progress" "device '$IMG': $MSG ("
assert_header_unchanged -m "none of them wrote anything" "$IMG" "$sum"

assert_exit -m "rekey --resume finishes it" 0 kc rekey --resume "$IMG"
assert_exit -m "dump --json" 0 kc dump --json "$IMG"
assert_eq -m "... no rekey" true "$(json_get "$OUT" 'd["rekey"] is None')"
assert_exit -m "verify" 0 kc verify "$IMG"
assert_not_contains -m "... without a note" "$(cat "$ERR")" "rekey"
assert_exit -m "kek add works again" 0 kc kek add "$IMG" --kek "file:$K0"

# Killed after its first header write: new token and keyslot added, no data touched.
new_img "$IMG" 32M
format_img "$IMG" "$K0"
run env KC_TEST_CRASH_AT=2 "$KEKCRYPT" rekey --config "$T_CONF" "$IMG"
assert_eq -m "rekey killed after its second header write" 137 "$RC"
assert_exit -m "dump --json" 0 kc dump --json "$IMG"
assert_eq -m "... phase prepared" prepared "$(json_get "$OUT" 'd["rekey"]["phase"]')"
PREP="a rekey is in progress (prepared; no data re-encrypted yet)"
assert_eq -m "... its summary" "$PREP" "$(json_get "$OUT" 'd["rekey"]["summary"]')"
assert_exit -m "kek add refuses: exit 12" 12 kc kek add "$IMG" --kek "file:$K0"
assert_stderr_contains -m "... saying so" "device '$IMG': $PREP: run 'kekcrypt rekey --resume $IMG' first"

done_testing
