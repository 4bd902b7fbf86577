#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# verify --all checks every kekcrypt token on its own: exit 0 when all work, 26 (degraded)
# when some do, the error of plain verify when none does; text (a line per token) and --json
# (an object per token); plain verify keeps unlocking with the first token that works.
# Idempotence: kek add of a KEK the volume has a token for is a no-op (exit 0, says so, also
# in --json); the same --kek twice in format or kek add is a usage error; a header with no
# room for another token says so (exit 20) and is left as it was.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
K1=$T/kek1.bin
new_kek "$K0"
new_kek "$K1"
new_img "$IMG"

# --- format: the same KEK twice is a usage error -----------------------------------------------
assert_exit -m "format with the same --kek twice: usage error (exit 2)" 2 \
	kc format -q "$IMG" --kek "file:$K0" --kek "file:$K0"
assert_stderr_contains -m "... naming the KEK given twice" "--kek file:$K0 given twice"
assert_true -m "... and nothing written" is_all_zero "$IMG"

assert_exit -m "format with two file KEKs" 0 kc format -q "$IMG" --kek "file:$K0" --kek "file:$K1"

# --- every token works ---------------------------------------------------------------------------
sum=$(header_sum "$IMG")
assert_exit -m "verify --all, both KEKs there: exit 0" 0 kc verify --all "$IMG"
assert_stdout_contains -m "... token 0 ok" "token 0 (file:$K0): ok"
assert_stdout_contains -m "... token 1 ok" "token 1 (file:$K1): ok"
assert_exit -m "verify --all --json: exit 0" 0 kc verify --all --json "$IMG"
assert_eq -m "json: two tokens, both ok, their KEKs and keyslots, 2 working, 0 failed" \
	"[0, 1] [True, True] file:$K0 file:$K1 [0, 1] 2 0" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [[t["id"] for t in d["tokens"]], [t["ok"] for t in d["tokens"]], d["tokens"][0]["kek"], d["tokens"][1]["kek"], [t["keyslot"] for t in d["tokens"]], d["working"], d["failed"]])')"
assert_header_unchanged -m "verify --all writes nothing" "$IMG" "$sum"
assert_exit -m "verify --all --token 1: usage error" 2 kc verify --all --token 1 "$IMG"

# --- the second KEK's file removed: degraded -----------------------------------------------------
mv "$K1" "$K1.saved"
assert_exit -m "KEK 1 gone: plain verify still succeeds (exit 0)" 0 kc verify "$IMG"
assert_stdout_contains -m "... through token 0" "token 0 (file:$K0)"
assert_exit -m "KEK 1 gone: verify --all fails as degraded (exit 26)" 26 kc verify --all "$IMG"
assert_stdout_contains -m "... token 0 ok" "token 0 (file:$K0): ok"
assert_stdout_contains -m "... token 1 with its cause, naming the missing file" \
	"token 1 (file:$K1): KEK file '$K1': No such file or directory"
assert_stderr_contains -m "... and the verdict" "degraded: 1 of 2 tokens unlock it"
assert_exit -m "KEK 1 gone: verify --all --json: exit 26" 26 kc verify --all --json "$IMG"
assert_eq -m "json: token 0 ok; token 1 not, exit code 3 and its meaning; 1 working, 1 failed" \
	"True False 3 no usable token, key or file 1 1" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["tokens"][0]["ok"], d["tokens"][1]["ok"], d["tokens"][1]["exit_code"], d["tokens"][1]["meaning"], d["working"], d["failed"]])')"
assert_contains -m "json: token 1's error names the missing file" \
	"$(json_get "$OUT" 'd["tokens"][1]["error"]')" "$K1"
assert_eq -m "json: no error for token 0" "False" "$(json_get "$OUT" 'str("error" in d["tokens"][0])')"

# --- the second KEK's file replaced by another key: degraded, a wrong key ------------------------
new_kek "$K1"
assert_exit -m "KEK 1 replaced by another key: plain verify exit 0" 0 kc verify "$IMG"
assert_exit -m "KEK 1 replaced: verify --all exit 26" 26 kc verify --all --json "$IMG"
assert_eq -m "json: token 1 failed as a wrong key (exit code 8)" "True False 8" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["tokens"][0]["ok"], d["tokens"][1]["ok"], d["tokens"][1]["exit_code"]])')"

# --- no KEK works: the error plain verify gives --------------------------------------------------
rm "$K1"
mv "$K0" "$K0.saved"
assert_exit -m "both KEKs gone: plain verify exit 3" 3 kc verify "$IMG"
assert_exit -m "both KEKs gone: verify --all exit 3 too, not 26" 3 kc verify --all "$IMG"
assert_stdout_contains -m "... token 0 listed with its cause" "token 0 (file:$K0): KEK file '$K0'"
assert_stdout_contains -m "... token 1 listed with its cause" "token 1 (file:$K1): KEK file '$K1'"
assert_exit -m "both KEKs gone: verify --all --json exit 3" 3 kc verify --all --json "$IMG"
assert_eq -m "json: both tokens listed, none ok" "[False, False] 0 2" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [[t["ok"] for t in d["tokens"]], d["working"], d["failed"]])')"
mv "$K0.saved" "$K0"
mv "$K1.saved" "$K1"
assert_exit -m "both KEKs back: verify --all exit 0" 0 kc verify --all "$IMG"

# A LUKS2 volume without a kekcrypt token.
P=$T/plain.img
new_img "$P"
echo -n "passphrase" | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 "$P" -
assert_exit -m "verify --all of a volume without a kekcrypt token: exit 3" 3 kc verify --all "$P"
assert_stderr_contains -m "... says so" "has no kekcrypt token"

# --- kek add is idempotent ---------------------------------------------------------------------------
sum=$(header_sum "$IMG")
assert_exit -m "kek add of a KEK the volume has (token 1): exit 0" 0 kc kek add "$IMG" --kek "file:$K1"
assert_stdout_contains -m "... says it already has a token for it" \
	"already has a token for file:$K1 (token 1)"
assert_header_unchanged -m "... and writes nothing" "$IMG" "$sum"
assert_exit -m "kek add of it again, --json: exit 0" 0 kc kek add --json "$IMG" --kek "file:$K0"
assert_eq -m "json: not added, the existing token 0" "False 0 file:$K0" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["added"], d["token"], d["kek"]])')"
assert_header_unchanged -m "... and writes nothing" "$IMG" "$sum"
assert_exit -m "kek add with --kek twice: usage error (exit 2)" 2 \
	kc kek add "$IMG" --kek "file:$K1" --kek "file:$K1"
assert_header_unchanged -m "... and writes nothing" "$IMG" "$sum"
K2=$T/kek2.bin
new_kek "$K2"
assert_exit -m "kek add of a new KEK, --json: exit 0" 0 kc kek add --json "$IMG" --kek "file:$K2"
assert_eq -m "json: added, token 2" "True 2" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["added"], d["token"]])')"

# --- a full header ---------------------------------------------------------------------------------
# New KEKs until the header has no room for another token (LUKS2: at most 32 keyslots and a
# JSON area of 12 KiB by default, which fills first here).
full=
for i in $(seq 3 40); do
	new_kek "$T/kek$i.bin"
	sum=$(header_sum "$IMG")
	if ! "$KEKCRYPT" kek add "$IMG" --kek "file:$T/kek$i.bin" --config "$T_CONF" \
		>"$OUT" 2>"$ERR"; then
		full=$i
		break
	fi
done
assert_true -m "kek add fails before 40 tokens (at KEK ${full:-none})" test -n "$full"
assert_exit -m "the full header: kek add exit 20" 20 kc kek add "$IMG" --kek "file:$T/kek$full.bin"
assert_stderr_contains -m "... says the header has no room for another token" \
	"the LUKS2 header has no room for another token"
assert_header_unchanged -m "... and leaves the header as it was" "$IMG" "$sum"
assert_exit -m "kek add of a KEK it has, header full: still a no-op, exit 0" 0 \
	kc kek add "$IMG" --kek "file:$K0"
assert_exit -m "the full header: verify --all, every token ok (exit 0)" 0 kc verify --all --json "$IMG"
assert_eq -m "json: $full tokens, all working" "$full $full 0" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [len(d["tokens"]), d["working"], d["failed"]])')"

done_testing
