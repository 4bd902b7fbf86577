#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The crypttab keyscript's policy (initramfs/initramfs-tools/kekcrypt-keyscript.in), on the
# host: the real keyscript, with %BINDIR% this build's CLI and %ASKPASS% a recording askpass
# (it notes the time it was asked and prints the volume's recovery key), run as cryptroot runs
# it (CRYPTTAB_NAME, _SOURCE, _KEY, _TRIED; standard output is the key) on an image formatted
# with an azure-kv KEK against the Azure Key Vault fixture (tests/fixtures/azure-kv, managed
# identity, HTTPS on 127.0.0.1):
#  - KMS up: what the keyscript prints opens the volume; askpass is not asked;
#  - every KMS answer 3 s late (inside the timeout): unlocked all the same, no askpass;
#  - the KMS refuses (403): the refusal named, no retry, askpass at once;
#  - CRYPTTAB_TRIED=1 (cryptsetup rejected the first answer): askpass at once, no KMS call;
#  - the kekcrypt binary missing: said so, askpass;
#  - KMS down (nothing listening): "attempt N failed ...; retrying in X s" lines, then askpass
#    once the crypttab timeout= is spent, not long after.
# Each time askpass answers, its recovery key opens the volume. What askpass gives goes through
# `kekcrypt keyscript-normalise`: the recovery key typed in upper case without dashes, or in
# mixed case with spaces, reaches cryptsetup in its printed form; a passphrase that is not a
# recovery key (even one of 64 modhex characters plus one) passes byte for byte. The boot test
# (tests/vm/boot.sh) boots the same keyscript in a real initramfs (KMS up and down).
# Runs in a private mount namespace (kekcrypt reads /etc/kekcrypt/kekcrypt.conf at boot).
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null 2>&1 || skip_all "node is missing (apt-get install nodejs npm)"
need curl mount
T=$T_DIR
FIX=$(cd "$(dirname "$0")/../fixtures" && pwd)
KS_IN=$(cd "$(dirname "$0")/../.." && pwd)/initramfs/initramfs-tools/kekcrypt-keyscript.in
plugin_namespace

"$FIX/tls.sh" "$T/tls" >/dev/null
fixture_start AZ node "$FIX/azure-kv/server.js" --cert "$T/tls/server.pem" \
	--key "$T/tls/server.key" --rsa-key kek-rsa
BASE=https://localhost:$AZ_PORT
conf "[azure-kv]" "auth = managed-identity" "allowed-hosts = localhost" "ca-file = $T/tls/ca.pem" \
	"imds-endpoint = https://127.0.0.1:$AZ_PORT/metadata/identity/oauth2/token"
fx() {	# fx METHOD PATH [JSON]: a control request to the fixture
	curl -sS --cacert "$T/tls/ca.pem" -X "$1" \
		${3:+-H 'Content-Type: application/json' -d "$3"} "$BASE$2"
}
unwraps() {	# the fixture's count of unwrap requests
	fx GET /_fixture/counters | python3 -c 'import json,sys; print(json.load(sys.stdin).get("unwrap", 0))'
}

IMG=$T/root.img
new_img "$IMG"
kc format -q "$IMG" --kek "azure-kv+https://localhost:$AZ_PORT/keys/kek-rsa"
kc recovery add -q "$IMG" --json --pbkdf-memory 32 --pbkdf-force-iterations 4 >"$T/rec.json"
json_get "$T/rec.json" 'd["recovery_key"]' >"$T/rec.key"
tr -d '\n' <"$T/rec.key" >"$T/printed"
cp "$T/printed" "$T/typed"	# what askpass gives: the key as printed, unless a case says

# The keyscript as installed, but with this build's CLI and a recording askpass.
cat >"$T/askpass" <<SH
#!/bin/sh
date +%s.%N >"$T/asked"
printf '%s\n' "\$1" >>"$T/asked"
cat "$T/typed"
SH
chmod 755 "$T/askpass"
make_keyscript() {	# make_keyscript BINDIR
	sed -e "s|%BINDIR%|$1|g" -e "s|%KEYSCRIPT%|$T/keyscript|g" -e "s|%ASKPASS%|$T/askpass|g" \
		"$KS_IN" >"$T/keyscript"
	chmod 755 "$T/keyscript"
}
make_keyscript "$(dirname "$KEKCRYPT")"

# keyscript KEY [TRIED]: run it as cryptroot does for the volume "root"; $OUT holds the key it
# printed, $ERR its console messages, $ASKED whether askpass was asked and $SECS how long the
# keyscript ran before it was (or before it ended).
keyscript() {
	local t0 t1
	rm -f "$T/asked"
	t0=$(date +%s.%N)
	CRYPTTAB_NAME=root CRYPTTAB_SOURCE=$IMG CRYPTTAB_KEY=$1 CRYPTTAB_TRIED=${2:-0} \
		run "$T/keyscript"
	t1=$(date +%s.%N)
	ASKED=no
	if [ -e "$T/asked" ]; then
		ASKED=yes
		t1=$(head -n 1 "$T/asked")
	fi
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	diag "keyscript (key '$1'): exit $RC, askpass $ASKED after $SECS s"
	sed 's/^/#   /' "$ERR"
}
# opens WHAT: the key the keyscript printed opens the volume.
opens() {
	assert_ok -m "$1 opens the volume (cryptsetup open --test-passphrase --key-file -)" \
		cryptsetup open --test-passphrase --disable-external-tokens --key-file "$T/key" "$IMG"
}
keep_key() { cp "$OUT" "$T/key"; }
# within WHAT LO HI: $SECS is in [LO, HI].
within() {
	assert_true -m "$1 ($SECS s, expected $2 to $3 s)" \
		awk -v s="$SECS" -v lo="$2" -v hi="$3" 'BEGIN { exit !(s >= lo && s <= hi) }'
}

# --- KMS up ---------------------------------------------------------------------------------
keyscript timeout=20
keep_key
assert_eq -m "up: exit 0" 0 "$RC"
assert_eq -m "up: askpass not asked" no "$ASKED"
assert_stderr_contains -m "up: unlocked, the attempts and the time since boot said" \
	"kekcrypt: $IMG: token 0: unlocked after 1 attempt(s), "
assert_not_contains -m "up: no retry" "$(cat "$ERR")" "retrying"
opens "up: the passphrase printed"

# --- every answer 3 s late ------------------------------------------------------------------
fx POST /_fixture/fault '{"mode":"slow","count":1000,"target":"any","delay_ms":3000}' >/dev/null
keyscript timeout=30
keep_key
fx POST /_fixture/reset >/dev/null
assert_eq -m "slow: exit 0" 0 "$RC"
assert_eq -m "slow: askpass not asked" no "$ASKED"
assert_stderr_contains -m "slow: unlocked at the first attempt" "token 0: unlocked after 1 attempt(s)"
within "slow: it waited for the late answers" 3 29
opens "slow: the passphrase printed"

# --- refused --------------------------------------------------------------------------------
fx POST /_fixture/fault '{"mode":"403","count":1000,"target":"vault"}' >/dev/null
keyscript timeout=20
keep_key
fx POST /_fixture/reset >/dev/null
assert_eq -m "refused: askpass asked" yes "$ASKED"
within "refused: at once, well before the timeout of 20 s" 0 5
assert_stderr_contains -m "refused: the refusal named (403 Forbidden)" \
	"lacks unwrapKey permission on the key (Forbidden: "
assert_stderr_contains -m "refused: the keyscript gave up on the KMS" \
	"kekcrypt: root: not unlocked through the KMS/HSM (exit "
assert_not_contains -m "refused: no retry" "$(cat "$ERR")" "retrying"
assert_stdout_contains -m "refused: askpass's answer is the key" "$(cat "$T/rec.key")"
opens "refused: the recovery key askpass gave"
assert_contains -m "refused: askpass prompted for root and its device" "$(cat "$T/asked")" \
	"Enter the recovery key or passphrase for root ($IMG): "

# --- a second call: cryptsetup rejected the first answer --------------------------------------
before=$(unwraps)
keyscript timeout=20 1
keep_key
assert_eq -m "tried: askpass asked" yes "$ASKED"
within "tried: at once" 0 2
assert_eq -m "tried: no KMS call" "$before" "$(unwraps)"
opens "tried: the recovery key askpass gave"

# --- what is typed at the prompt -------------------------------------------------------------
# typed WHAT: askpass gives $T/typed; the keyscript (CRYPTTAB_TRIED=1: straight to the prompt)
# prints the key as printed, which opens the volume.
typed() {
	keyscript timeout=20 1
	keep_key
	assert_eq -m "typed $1: askpass asked" yes "$ASKED"
	assert_true -m "typed $1: the key as printed reaches cryptsetup" cmp -s "$T/printed" "$OUT"
	opens "typed $1: the normalised key"
}
tr -d - <"$T/printed" | tr a-z A-Z >"$T/typed"
typed "in upper case without dashes"
{ tr - ' ' <"$T/printed" | sed 's/[cdfhjlnrtv]/\U&/g'; echo; } >"$T/typed"
typed "in mixed case with spaces and a newline"
printf 'Pass phrase - \303\244 not a key\n\tend' >"$T/typed"
keyscript timeout=20 1
assert_true -m "a passphrase passes byte for byte (spaces, newline, UTF-8, tab)" cmp -s "$T/typed" "$OUT"
{ cat "$T/printed"; printf b; } >"$T/typed"
keyscript timeout=20 1
assert_true -m "a recovery key with one character too many passes unchanged" cmp -s "$T/typed" "$OUT"
cp "$T/printed" "$T/typed"

# --- the CLI missing from the initramfs -------------------------------------------------------
make_keyscript "$T/no-such-dir"
keyscript timeout=20
keep_key
make_keyscript "$(dirname "$KEKCRYPT")"
assert_eq -m "missing CLI: askpass asked" yes "$ASKED"
assert_stderr_contains -m "missing CLI: said so" \
	"kekcrypt: root: $T/no-such-dir/kekcrypt is missing from the initramfs"
opens "missing CLI: the recovery key askpass gave"

# --- KMS down: nothing listens ----------------------------------------------------------------
kill "${T_PIDS[0]}"
wait "${T_PIDS[0]}" 2>/dev/null || true
# 8 s: time for two retries even when each attempt (a process start, under ASan in CI, on a
# busy machine) takes over a second; with 5 s, CI once saw one retry only.
keyscript timeout=8
keep_key
assert_eq -m "down: askpass asked" yes "$ASKED"
# The retry loop stops when the next wait would pass the deadline: askpass may come a little
# before it (after three attempts, 1.5 s at the earliest), never long after.
within "down: askpass once the timeout of 8 s is spent, not long after" 1.5 10
assert_true -m "down: 'attempt N failed ...; retrying in X s' lines" \
	grep -Eq "kekcrypt: warning: $IMG: attempt 1 failed: .*; retrying in [0-9.]+ s \\([0-9]+ s left\\)" "$ERR"
assert_true -m "down: more than one retry" \
	test "$(grep -c 'retrying in' "$ERR")" -ge 2
assert_stderr_contains -m "down: the retry limit named" "not unlocked within the retry limit of 8 s"
assert_stderr_contains -m "down: the keyscript gave up on the KMS" \
	"kekcrypt: root: not unlocked through the KMS/HSM (exit "
opens "down: the recovery key askpass gave"

done_testing
