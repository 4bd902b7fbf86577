#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Crash safety of kek rotate, with file KEKs.
#  1. The library's test hook KC_TEST_CRASH_AT=N (lib/rotate.c) raises SIGKILL right after the
#     Nth header write. For every N of a rotation (until one runs to the end): after the kill
#     the header holds the marked new token and never two unmarked ones; dump shows the
#     interrupted rotation; the volume verifies; reading (dump, verify, kek list) leaves the
#     header byte for byte as it is (a header anyone can write must not make a reader write);
#     `kekcrypt repair` (as every writing command does first) completes it (new token
#     verified) or rolls it back (not verified), leaving one unmarked token, one keyslot and
#     the unchanged DEK, under the token's original ID (0). One crash point leaves the new
#     content already written over token 0 with the marked copy still there (W3 in
#     lib/rotate.c). Also a kill in the middle of that repair, a header as an earlier kekcrypt
#     left it (old token removed, new one verified under another ID: moved back to the old
#     ID), and one whose old ID now holds a token of another kind (left alone).
#  2. A few hundred rotations killed with SIGKILL at random times (timeout -s KILL): after
#     each, before anything recovers it, at most one unmarked token and at least one token;
#     then `kekcrypt verify` succeeds, and `kekcrypt repair` leaves no mark.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
K1=$T/kek1.bin
new_kek "$K0"
new_kek "$K1"
need timeout

# run_killed CMD...: `run`, for a command that is expected to die of SIGKILL (keeps the
# shell's "Killed" notice out of the TAP output).
run_killed() {
	RC=0
	( "$@" >"$OUT" 2>"$ERR"; exit $? ) 2>/dev/null || RC=$?
}

# state: the raw header as "unmarked=U marked=M keyslots=S kek=KEK-of-unmarked" (cryptsetup
# reads it, so nothing of kekcrypt recovers it first).
state() {
	cryptsetup luksDump --dump-json-metadata "$IMG" >"$T/meta.json"
	python3 - "$T/meta.json" "$K0" "$K1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
toks = [t for t in d["tokens"].values() if t["type"] == "kekcrypt"]
marked = [t for t in toks if "kekcrypt-rotating-from" in t]
unmarked = [t for t in toks if "kekcrypt-rotating-from" not in t]
names = {"file:" + sys.argv[2]: "K0", "file:" + sys.argv[3]: "K1"}
kek = ",".join(names.get(t["kekcrypt-key-id"], "?") for t in unmarked) or "-"
print("unmarked=%d marked=%d keyslots=%d kek=%s" % (len(unmarked), len(marked),
      len(d["keyslots"]), kek))
PY
}

# --- 1. every step ------------------------------------------------------------------------------
steps=0 w3_seen=0
for n in 1 2 3 4 5 6 7 8 9 10; do
	new_img "$IMG"
	format_img "$IMG" "$K0"
	unwrap_dek "$IMG" 0 "$K0" "$T/dek"
	run_killed env KC_TEST_CRASH_AT=$n "$KEKCRYPT" kek rotate "$IMG" --to "file:$K1"
	if [ "$RC" = 0 ]; then
		steps=$((n - 1))
		assert_eq -m "a rotation with the hook set past its last write completes" \
			"unmarked=1 marked=0 keyslots=1 kek=K1" "$(state)"
		break
	fi
	assert_eq -m "crash after write $n: killed by SIGKILL (exit 137)" 137 "$RC"
	s=$(state)
	case $s in
	*" marked=1 "*) ok "crash after write $n: the new token carries the mark ($s)" ;;
	*"unmarked=1 marked=0"*) ok "crash after write $n: the rotation was already committed ($s)" ;;
	*) not_ok "crash after write $n: unexpected header state" "$s" ;;
	esac
	[ "$s" = "unmarked=1 marked=1 keyslots=1 kek=K1" ] && w3_seen=$((w3_seen + 1))
	case $s in
	unmarked=0* | unmarked=1*) ok "crash after write $n: never two unmarked tokens" ;;
	*) not_ok "crash after write $n: never two unmarked tokens" "$s" ;;
	esac
	pending=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(sum(1 for t in d["tokens"].values() if "kekcrypt-rotating-from" in t))' "$T/meta.json")
	verified=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(sum(1 for t in d["tokens"].values() if t.get("kekcrypt-rotation-state") == "verified"))' "$T/meta.json")
	if [ "$pending" = 1 ]; then
		# A read-only view cannot recover it: dump shows it as pending.
		loop_attach -r "$IMG"
		assert_exit -m "crash after write $n: dump of a read-only view" 0 kc dump --json "$LOOP"
		assert_eq -m "crash after write $n: dump shows the pending rotation" \
			"pending" "$(json_get "$OUT" 'd["rotations"][0]["state"]')"
		assert_exit -m "crash after write $n: the read-only view verifies" 0 kc verify "$LOOP"
		loop_detach "$LOOP"
		assert_eq -m "crash after write $n: ... and recovers nothing" "$s" "$(state)"
		sum=$(header_sum "$IMG")
		assert_exit -m "crash after write $n: dump of the writable image" 0 \
			kc dump --json "$IMG"
		assert_eq -m "crash after write $n: dump shows it pending" "pending" \
			"$(json_get "$OUT" 'd["rotations"][0]["state"]')"
		assert_exit -m "crash after write $n: verify succeeds" 0 kc verify "$IMG"
		assert_exit -m "crash after write $n: kek list" 0 kc kek list "$IMG"
		assert_eq -m "crash after write $n: reading left the header byte-identical" \
			"$sum" "$(header_sum "$IMG")"
		assert_exit -m "crash after write $n: repair" 0 kc repair --json "$IMG"
		if [ "$verified" = 1 ]; then
			expect=completed kek=K1
		else
			expect="rolled back" kek=K0
		fi
		assert_eq -m "crash after write $n: repair says '$expect'" "$expect" \
			"$(json_get "$OUT" 'd["rotations"][0]["state"]')"
		assert_eq -m "crash after write $n: ... one repaired" 1 \
			"$(json_get "$OUT" 'd["repaired"]')"
	else
		kek=K1
	fi
	assert_exit -m "crash after write $n: verify succeeds after the repair" 0 kc verify "$IMG"
	assert_eq -m "crash after write $n: one unmarked token under $kek, one keyslot" \
		"unmarked=1 marked=0 keyslots=1 kek=$kek" "$(state)"
	tok=$(json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if v["type"] == "kekcrypt"][0]')
	unwrap_dek "$IMG" "$tok" "$([ "$kek" = K0 ] && echo "$K0" || echo "$K1")" "$T/dek2"
	assert_eq -m "crash after write $n: the token kept its ID" 0 "$tok"
	assert_true -m "crash after write $n: the DEK is unchanged" cmp -s "$T/dek" "$T/dek2"
	assert_exit -m "crash after write $n: a new rotation runs" 0 kc kek rotate "$IMG" --to "file:$K0"
	assert_exit -m "crash after write $n: ... and verifies" 0 kc verify "$IMG"
done
assert_true -m "the rotation has several header writes ($steps), each one was interrupted" \
	test "$steps" -ge 4
assert_eq -m "one crash point left the new content in token 0 and the marked copy (W3)" 1 "$w3_seen"

# A crash in the middle of recovery: rotation killed once its new token is verified, then
# the repairing command killed after its first write (the new content written as token 0).
new_img "$IMG"
format_img "$IMG" "$K0"
run_killed env KC_TEST_CRASH_AT=2 "$KEKCRYPT" kek rotate "$IMG" --to "file:$K1"
assert_eq -m "rotation killed after the verified mark" 137 "$RC"
run_killed env KC_TEST_CRASH_AT=1 "$KEKCRYPT" repair "$IMG"
assert_eq -m "repair killed after its first write" 137 "$RC"
assert_eq -m "... token 0 holds the new content, the marked copy is still there" \
	"unmarked=1 marked=1 keyslots=1 kek=K1" "$(state)"
assert_exit -m "verify succeeds through the marked token" 0 kc verify "$IMG"
assert_exit -m "a writing command (kek rotate) repairs first, then rotates the one token" 0 \
	kc kek rotate "$IMG" --to "file:$K0"
assert_eq -m "... the rotation committed and the new one too" \
	"unmarked=1 marked=0 keyslots=1 kek=K0" "$(state)"
assert_exit -m "repair: nothing left" 0 kc repair --json "$IMG"
assert_eq -m "... it says 0" 0 "$(json_get "$OUT" 'd["repaired"]')"
assert_eq -m "... and token 0 is the one left" 0 \
	"$(json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if v["type"] == "kekcrypt"][0]')"

# What an earlier kekcrypt left when killed after its third write: the old token removed, the
# verified new one still marked under another ID. Repair moves it back to the old ID.
new_img "$IMG"
format_img "$IMG" "$K0"
run_killed env KC_TEST_CRASH_AT=2 "$KEKCRYPT" kek rotate "$IMG" --to "file:$K1"
assert_eq -m "earlier kekcrypt's state: rotation killed after the verified mark" 137 "$RC"
cryptsetup token remove --token-id 0 "$IMG"
assert_eq -m "... the old token removed" "unmarked=0 marked=1 keyslots=1 kek=-" "$(state)"
assert_exit -m "... repair" 0 kc repair --json "$IMG"
assert_eq -m "... says completed" completed "$(json_get "$OUT" 'd["rotations"][0]["state"]')"
assert_eq -m "... one unmarked token under KEK 1" "unmarked=1 marked=0 keyslots=1 kek=K1" "$(state)"
assert_eq -m "... with the old token's ID" '["0"]' \
	"$(json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if v["type"] == "kekcrypt"]')"
assert_exit -m "... it verifies" 0 kc verify "$IMG"

# The old ID now holds a token of another kind: repair leaves it alone and only drops the
# marks of the new token, which keeps its own ID.
new_img "$IMG"
format_img "$IMG" "$K0"
run_killed env KC_TEST_CRASH_AT=2 "$KEKCRYPT" kek rotate "$IMG" --to "file:$K1"
assert_eq -m "foreign token at the old ID: rotation killed after the verified mark" 137 "$RC"
cryptsetup token remove --token-id 0 "$IMG"
echo '{"type":"other-tool","keyslots":[],"note":"keep me"}' |
	cryptsetup token import --token-id 0 "$IMG"
assert_exit -m "... repair" 0 kc repair "$IMG"
state >/dev/null
assert_eq -m "... the other tool's token is untouched" "keep me" \
	"$(json_get "$T/meta.json" 'd["tokens"]["0"]["note"]')"
assert_eq -m "... the new token kept its ID, unmarked" "unmarked=1 marked=0 keyslots=1 kek=K1" \
	"$(state)"
assert_exit -m "... it verifies" 0 kc verify "$IMG"

# --- 2. random kills ---------------------------------------------------------------------------
new_img "$IMG"
format_img "$IMG" "$K0"
unwrap_dek "$IMG" 0 "$K0" "$T/dek"
# Calibrate: how long one rotation takes here, in ms.
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
	"$KEKCRYPT" kek rotate "$IMG" >/dev/null
done
t_ms=$(( ($(date +%s%N) - t0) / 5000000 + 1 ))
diag "one rotation takes about $t_ms ms"
ROUNDS=${KC_CRASH_ROUNDS:-300}
# All rounds of a short run (KC_CRASH_ROUNDS below 50: scripts/test-sanitizers.sh), else at
# least 50 however loaded the machine is; beyond those, bounded in time.
min_rounds=$((ROUNDS < 50 ? ROUNDS : 50))
deadline=$(( $(date +%s) + ${KC_CRASH_SECONDS:-75} ))
killed=0 pendings=0 bad=0 done_rounds=0 to=$K1
for ((i = 0; i < ROUNDS; i++)); do
	[ "$done_rounds" -lt "$min_rounds" ] || [ "$(date +%s)" -lt "$deadline" ] || break
	# kill somewhere between the start of the process and a bit after its usual end
	d=$(( RANDOM % (t_ms * 12 / 10 + 1) ))
	run_killed timeout -s KILL "$(printf '0.%03d' "$d")" "$KEKCRYPT" kek rotate "$IMG" \
		--to "file:$to"
	rc=$RC
	done_rounds=$((done_rounds + 1))
	if [ "$rc" = 137 ]; then
		killed=$((killed + 1))
	elif [ "$rc" != 0 ]; then
		bad=$((bad + 1))
		not_ok "round $i: rotation failed with exit $rc" "$(cat "$ERR")"
		continue
	fi
	s=$(state)
	case $s in
	*" marked=1 "*) pendings=$((pendings + 1)) ;;
	esac
	case $s in
	"unmarked=0 marked=1"* | "unmarked=1 marked=0"* | "unmarked=1 marked=1"*) ;;
	*)
		bad=$((bad + 1))
		not_ok "round $i (killed after ${d} ms): bad header state" "$s"
		;;
	esac
	if ! "$KEKCRYPT" verify "$IMG" >"$OUT" 2>"$ERR"; then
		bad=$((bad + 1))
		not_ok "round $i (killed after ${d} ms, state $s): verify failed" "$(cat "$ERR")"
	fi
	if [ "$(state)" != "$s" ]; then
		bad=$((bad + 1))
		not_ok "round $i: verify changed the header" "$s -> $(state)"
	fi
	if ! "$KEKCRYPT" repair "$IMG" >"$OUT" 2>"$ERR"; then
		bad=$((bad + 1))
		not_ok "round $i (killed after ${d} ms, state $s): repair failed" "$(cat "$ERR")"
	fi
	s2=$(state)
	case $s2 in
	"unmarked=1 marked=0 keyslots=1"*) ;;
	*)
		bad=$((bad + 1))
		not_ok "round $i: repair did not recover the header" "$s -> $s2"
		;;
	esac
	[ "$bad" -lt 5 ] || break
	[ "$to" = "$K1" ] && to=$K0 || to=$K1
done
diag "$done_rounds rounds, $killed killed, $pendings left a pending rotation"
assert_eq -m "random SIGKILLs: every state was safe, verify read it, repair recovered it" 0 "$bad"
# Fewer only when the loop stopped early (five bad rounds).
assert_true -m "at least $min_rounds rounds ran ($done_rounds)" \
	test "$done_rounds" -ge "$min_rounds"
assert_true -m "some kills hit the middle of a rotation ($pendings)" test "$pendings" -ge 1
tok=$(json_get "$T/meta.json" '[k for k, v in d["tokens"].items() if v["type"] == "kekcrypt"][0]')
kek=$(json_get "$T/meta.json" '[v["kekcrypt-key-id"] for v in d["tokens"].values() if v["type"] == "kekcrypt"][0]')
unwrap_dek "$IMG" "$tok" "${kek#file:}" "$T/dek2"
assert_true -m "after all that, the DEK is unchanged" cmp -s "$T/dek" "$T/dek2"

done_testing
