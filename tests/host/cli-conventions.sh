#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Command line conventions (kekcrypt(8) COMMON OPTIONS): the common options work before the
# verb as well as after it; short options mean what they mean in cryptsetup (-t is the
# timeout, there is no -T, the token is only --token); -v says more on stderr; every error is
# "kekcrypt VERB: ..."; `recovery remove` without --token (every recovery key) is refused
# without a terminal unless -q.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
IMG=$T/disk.img
K0=$T/kek0.bin
new_kek "$K0"
new_img "$IMG"
format_img "$IMG" "$K0"

# --- common options before the verb ----------------------------------------------------------
assert_exit -m "--json --config before the verb" 0 \
	"$KEKCRYPT" --json --config "$T_CONF" verify "$IMG"
assert_eq -m "... JSON output, token 0" 0 "$(json_get "$OUT" 'd["token"]')"
assert_exit -m "--json after the verb" 0 kc verify "$IMG" --json
assert_eq -m "... the same JSON" 0 "$(json_get "$OUT" 'd["token"]')"
new_img "$T/other.img"
new_kek "$T/kek1.bin"
assert_exit -m "-q before the verb (format asks nothing)" 0 \
	"$KEKCRYPT" -q --config "$T_CONF" format "$T/other.img" --kek "file:$T/kek1.bin" </dev/null
assert_exit -m "--config=FILE and -t before the verb, --token after" 0 \
	"$KEKCRYPT" "--config=$T_CONF" -t 5 verify "$IMG" --token 0
assert_exit -m "an unknown option before the verb: exit 2" 2 "$KEKCRYPT" --bogus verify "$IMG"
assert_stderr_contains -m "... named, as kekcrypt's" "kekcrypt: unknown option '--bogus'"
assert_exit -m "an unknown verb: exit 2" 2 "$KEKCRYPT" -q frobnicate "$IMG"
assert_stderr_contains -m "... named" "kekcrypt: unknown verb 'frobnicate'"
assert_exit -m "--help before the verb: the tool's help" 0 "$KEKCRYPT" --help
assert_stdout_contains -m "... lists the common options" "Common options (before or after the verb)"

# --- short options as in cryptsetup ------------------------------------------------------------
assert_exit -m "-t is the timeout: -t 0 is not a valid one (exit 2)" 2 kc verify "$IMG" -t 0
assert_stderr_contains -m "... says --timeout" "invalid --timeout '0'"
assert_exit -m "-t 7 -v: accepted" 0 kc -v -t 7 verify "$IMG"
assert_stderr_contains -m "... and the deadline is 7 s" "kekcrypt verify: configuration $T_CONF; deadline 7 s"
assert_exit -m "--timeout 9 -v" 0 kc verify "$IMG" --timeout 9 --verbose
assert_stderr_contains -m "... deadline 9 s" "deadline 9 s"
assert_exit -m "-T does not exist (cryptsetup's --tries): exit 2" 2 kc verify "$IMG" -T 5
assert_stderr_contains -m "... named, pointing to -t" "kekcrypt verify: unknown option '-T' (the timeout is -t, --timeout)"
assert_exit -m "--timeout without its value (last): exit 2" 2 "$KEKCRYPT" verify "$IMG" --timeout
assert_stderr_contains -m "... named as given" "kekcrypt verify: option '--timeout' needs an argument"
assert_exit -m "-t without its value (last): exit 2" 2 "$KEKCRYPT" verify "$IMG" -t
assert_stderr_contains -m "... named as given" "kekcrypt verify: option '-t' needs an argument"
assert_exit -m "--token selects the token" 0 kc verify "$IMG" --token 0
assert_exit -m "--token 5: no such token (exit 3)" 3 kc verify "$IMG" --token 5
for verb in "verify $IMG" "open $IMG name" "kek remove $IMG" "recovery remove $IMG" \
	"keyscript-passphrase $IMG"; do
	# shellcheck disable=SC2086 # the verb and its arguments
	assert_exit -m "kekcrypt $verb -t 1 (a timeout, not a token) --token x: exit 2" 2 \
		kc $verb -t 1 --token x
	assert_stderr_contains -m "... the bad value is --token's" "invalid --token 'x'"
done

# --- -v --------------------------------------------------------------------------------------
assert_exit -m "verify without -v" 0 kc verify "$IMG"
assert_eq -m "... says nothing on stderr" "" "$(cat "$ERR")"
assert_exit -m "verify -v" 0 kc verify -v "$IMG"
assert_stderr_contains -m "... names the configuration it used" "configuration $T_CONF"
assert_exit -m "verify --debug" 0 kc verify --debug "$IMG"
assert_true -m "... says more than -v" test "$(wc -l <"$ERR")" -gt 1

# --- every error is "kekcrypt VERB: ..." -------------------------------------------------------
for verb in format open close status verify dump kek recovery header rekey repair \
	keyscript-passphrase boot-needs doctor; do
	assert_exit -m "$verb --bogus: exit 2" 2 kc "$verb" --bogus
	assert_eq -m "... the error begins 'kekcrypt $verb'" "kekcrypt $verb" \
		"$(head -n1 "$ERR" | cut -c1-$((9 + ${#verb})))"
	assert_exit -m "$verb --config (no argument): exit 2" 2 "$KEKCRYPT" "$verb" --config
	assert_stderr_contains -m "... named, with the verb" "kekcrypt $verb: option '--config' needs an argument"
done
new_kek "$T/kek1.bin"
assert_exit -m "verify with a wrong KEK: exit 8" 8 kc verify "$T/other.img"
assert_true -m "... the error begins 'kekcrypt verify: '" grep -q "^kekcrypt verify: " "$ERR"
assert_exit -m "verify of a missing device" 3 kc verify "$T/missing.img"
assert_true -m "... the error begins 'kekcrypt verify: '" grep -q "^kekcrypt verify: " "$ERR"

# --- recovery remove without --token -----------------------------------------------------------
assert_exit -m "recovery add" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}"
cp "$OUT" "$T/key"
sum=$(header_sum "$IMG")
assert_exit -m "recovery remove without --token, no terminal: refused (exit 2)" 2 \
	kc recovery remove "$IMG" </dev/null
assert_stderr_contains -m "... saying why and what to give" "without --token, this removes every recovery key"
assert_header_unchanged -m "... header unchanged" "$IMG" "$sum"
assert_exit -m "... the recovery key still verifies" 0 \
	kc recovery verify "$IMG" --key-file "$T/key"
assert_exit -m "recovery remove -q (before the verb): removes them all" 0 \
	"$KEKCRYPT" -q --config "$T_CONF" recovery remove "$IMG" </dev/null
assert_stdout_contains "removed 1 recovery key"
assert_exit -m "... the key no longer verifies" 8 kc recovery verify "$IMG" --key-file "$T/key"
done_testing
