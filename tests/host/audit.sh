#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The audit trail (lib/audit.c, kekcrypt(8) AUDIT): every change verb (format, kek add /
# remove / rotate, recovery add / remove, header restore, rekey start and finish) and every
# unlock through a token (keyscript-passphrase, the token plugin under cryptsetup) writes one
# syslog line to /dev/log, identifier kekcrypt, facility authpriv, with the volume's UUID,
# the device, the token, the KEK URI, the outcome (a failure's error name and message) and,
# for unlocks, the attempts. Read verbs (verify, dump, header backup) write none. No secret
# (the DEK, the keyslot passphrase, the recovery key) is in any line. Where nothing listens on
# /dev/log the line goes to the kernel log (KC_AUDIT_KMSG_PATH, the test hook, stands in for
# /dev/kmsg).
# Runs in a private mount namespace with a /dev of its own (a tmpfs with the few nodes needed),
# whose /dev/log is a datagram socket of a small receiver that writes each message, one a
# line, to $T/syslog.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need python3 mount mknod cryptsetup
T=$T_DIR
plugin_namespace

# /dev of our own: the host has no /dev/log, and its /dev must not change.
LOG=$T/syslog
private_syslog "$LOG"

N=0	# events so far
# logged K: wait (up to 5 s) until the receiver has written K more lines than before; then
# the newest is the event; sets N to the count. A count that differs is a failed check.
logged() {
	local want=$((N + $1)) i
	for i in $(seq 50); do
		[ "$(wc -l <"$LOG")" -ge "$want" ] && break
		sleep 0.1
	done
	# one more moment for a line that should not come
	[ "$1" = 0 ] && sleep 0.3
	assert_eq -m "... $1 event(s) logged" "$want" "$(wc -l <"$LOG")"
	N=$(wc -l <"$LOG")
}
# ev FIELD [BACK]: the value of FIELD of the last event (BACK -1: the one before...); "-" when
# the event has no such field; FIELD _head: the syslog header before the message.
ev() {
	python3 - "$LOG" "$1" "${2:-0}" <<'PY'
import shlex, sys
lines = open(sys.argv[1]).read().splitlines()
line = lines[int(sys.argv[3]) - 1]
head, _, msg = line.partition(": audit: ")
if sys.argv[2] == "_head":
    print(head)
    sys.exit()
fields = dict(kv.split("=", 1) for kv in shlex.split(msg))
print(fields.get(sys.argv[2], "-"))
PY
}
# check_event DESC FIELD=VALUE...: the last event has these fields.
check_event() {
	local desc=$1 kv
	shift
	for kv in "$@"; do
		assert_eq -m "$desc: ${kv%%=*}" "${kv#*=}" "$(ev "${kv%%=*}")"
	done
}

# An image file and three file KEKs: $K0, $K1, $K2.
IMG=$T/disk.img
new_img "$IMG"
for i in 0 1 2; do
	new_kek "$T/kek$i.bin"
	printf -v "K$i" '%s' "$T/kek$i.bin"
done

assert_exit -m "format" 0 kc format -q "$IMG" --kek "file:$K0"
logged 1
UUID=$(cryptsetup luksUUID "$IMG")
check_event "format" event=format outcome=ok "device=$IMG" "uuid=$UUID" token=0 "kek=file:$K0" \
	uid=0 attempts=- error=-
assert_true -m "format: elapsed in seconds" grep -Eq ' elapsed=[0-9]+\.[0-9]{3}( |$)' "$LOG"
assert_contains -m "identifier kekcrypt with the PID, authpriv.notice (<85>)" "$(ev _head)" \
	"<85>"
assert_true -m "... an RFC 3164 header" grep -Eq \
	'^<85>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} kekcrypt\[[0-9]+\]$' <(ev _head)
unwrap_dek "$IMG" 0 "$K0" "$T/dek0"

assert_exit -m "kek add" 0 kc kek add "$IMG" --kek "file:$K1"
logged 1
check_event "kek add" event=kek-add outcome=ok "device=$IMG" "uuid=$UUID" token=1 \
	"kek=file:$K1"

assert_exit -m "kek add of a KEK file that does not exist fails" 3 \
	kc kek add "$IMG" --kek "file:$T/missing.bin"
logged 1
check_event "failed kek add" event=kek-add outcome=failed "uuid=$UUID" token=- \
	"kek=file:$T/missing.bin" error=ENOENT
assert_contains -m "failed kek add: the message names the file" "$(ev message)" "$T/missing.bin"
assert_contains -m "... warning severity (authpriv.warning, <84>)" "$(ev _head)" "<84>"

# A URI its provider refuses may hold a secret: a PKCS#11 pin-value is never logged.
run kc kek add "$IMG" --kek "pkcs11:token=t;object=o;pin-value=31415926535897"
assert_true -m "kek add with a pin-value in the URI fails" test "$RC" != 0
logged 1
check_event "refused URI" event=kek-add outcome=failed kek=-
assert_not_contains -m "... the PIN is in no event" "$(cat "$LOG")" 31415926535897

assert_exit -m "kek rotate --token 1 --to KEK 2" 0 kc kek rotate "$IMG" --token 1 --to "file:$K2"
logged 1
check_event "kek rotate" event=kek-rotate outcome=ok "uuid=$UUID" token=1 "kek=file:$K2" \
	"from=file:$K1"

assert_exit -m "kek rotate --dry-run" 0 kc kek rotate "$IMG" --token 1 --dry-run
logged 0

assert_exit -m "recovery add" 0 kc recovery add "$IMG" "${RECOVERY_FAST[@]}"
cp "$OUT" "$T/recovery.key"
logged 1
check_event "recovery add" event=recovery-add outcome=ok "uuid=$UUID" token=- kek=-
slot=$(cryptsetup luksDump --dump-json-metadata "$IMG" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print([v["keyslots"][0] for v in d["tokens"].values() if v["type"] == "kekcrypt-recovery"][0])')
assert_eq -m "recovery add: its keyslot" "$slot" "$(ev keyslot)"
rtok=$(cryptsetup luksDump --dump-json-metadata "$IMG" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print([k for k, v in d["tokens"].items() if v["type"] == "kekcrypt-recovery"][0])')

# open maps: no device-mapper here, so failed unlocks, logged all the same.
run kc open "$IMG" audit-t
assert_true -m "open (no device-mapper here) fails" test "$RC" != 0
logged 1
check_event "failed open" event=unlock outcome=failed by=open name=audit-t "uuid=$UUID" \
	error=ENOTSUP
run kc open "$IMG" audit-r --recovery --key-file "$T/recovery.key"
assert_true -m "open --recovery (no device-mapper here) fails" test "$RC" != 0
logged 1
check_event "failed open --recovery" event=unlock outcome=failed by=recovery-key \
	name=audit-r "uuid=$UUID" error=ENOTSUP

assert_exit -m "recovery remove" 0 kc recovery remove -q "$IMG"
logged 1
check_event "recovery remove" event=recovery-remove outcome=ok "uuid=$UUID" "token=$rtok"

# Read verbs leave no trace.
assert_exit -m "verify" 0 kc verify "$IMG"
assert_exit -m "dump" 0 kc dump "$IMG"
# A value with spaces and quotes is quoted, its quotes escaped: a backup named so.
BAK="$T/hdr \"1\" b=c.bak"
assert_exit -m "header backup" 0 kc header backup "$IMG" "$BAK"
logged 0

assert_exit -m "header restore" 0 kc header restore -q "$IMG" "$BAK"
logged 1
check_event "header restore" event=header-restore outcome=ok "device=$IMG" "uuid=$UUID" \
	"file=$BAK"
assert_contains -m "... the file quoted, its quotes escaped" "$(tail -n 1 "$LOG")" \
	" file=\"$T/hdr \\\"1\\\" b=c.bak\" "

assert_exit -m "kek remove --token 0" 0 kc kek remove "$IMG" --token 0
logged 1
check_event "kek remove" event=kek-remove outcome=ok "uuid=$UUID" token=0 "kek=file:$K0"

# Boot unlocks: the keyscript's verb, and the token plugin inside cryptsetup.
assert_exit -m "keyscript-passphrase" 0 kc keyscript-passphrase "$IMG"
cp "$OUT" "$T/keyslot.pass"
logged 1
check_event "keyscript unlock" event=unlock outcome=ok by=keyscript "device=$IMG" \
	"uuid=$UUID" token=1 "kek=file:$K2" attempts=1
mv "$K2" "$K2.away"
assert_exit -m "keyscript-passphrase with the KEK gone fails" 3 kc keyscript-passphrase "$IMG"
logged 1
check_event "failed keyscript unlock" event=unlock outcome=failed by=keyscript "uuid=$UUID" \
	token=- attempts=1 error=ENOENT
mv "$K2.away" "$K2"
assert_exit -m "cryptsetup open --test-passphrase (the token plugin)" 0 \
	cryptsetup open --test-passphrase "$IMG"
logged 1
check_event "plugin unlock" event=unlock outcome=ok by=token-plugin "uuid=$UUID" token=1 \
	"kek=file:$K2" attempts=1

# Rekey (offline, on the image): a start and a finish event.
assert_exit -m "rekey" 0 kc rekey "$IMG"
logged 2
check_event "rekey finish" event=rekey-finish outcome=ok "uuid=$UUID" "kek=file:$K2"
newtok=$(ev token)
assert_true -m "rekey finish: the new token is a number" test "$newtok" -ge 0
assert_eq -m "rekey start (the event before): event" rekey-start "$(ev event -1)"
assert_eq -m "rekey start: the token it starts from" 1 "$(ev token -1)"
assert_eq -m "rekey start: not a resume" no "$(ev resume -1)"
unwrap_dek "$IMG" "$newtok" "$K2" "$T/dek1"

# Nothing secret in any event.
assert_no_secret -m "the first DEK is in no event" "$T/dek0" "$LOG"
assert_no_secret -m "the DEK after rekey is in no event" "$T/dek1" "$LOG"
assert_no_secret -m "the keyslot passphrase is in no event" "$T/keyslot.pass" "$LOG"
tr -d '\n-' <"$T/recovery.key" >"$T/recovery.bare"
tr -d '\n' <"$T/recovery.key" >"$T/recovery.line"
assert_not_contains -m "the recovery key is in no event" "$(cat "$LOG")" "$(cat "$T/recovery.line")"
assert_not_contains -m "... nor without dashes" "$(cat "$LOG")" "$(cut -c1-16 "$T/recovery.bare")"

# Nothing listening on /dev/log: the kernel log instead.
# (the receiver ends by our SIGTERM: its status, 143, says nothing about the test)
kill "${T_PIDS[-1]}"
wait "${T_PIDS[-1]}" 2>/dev/null || true
: >"$T/kmsg"
export KC_AUDIT_KMSG_PATH=$T/kmsg
assert_exit -m "kek add with no syslog listening" 0 kc kek add "$IMG" --kek "file:$K0"
assert_eq -m "... one record in the kernel log" 1 "$(wc -l <"$T/kmsg")"
assert_true -m "... identifier kekcrypt, authpriv.notice, the event" grep -Eq \
	"^<85>kekcrypt\[[0-9]+\]: audit: event=kek-add outcome=ok device=$IMG uuid=$UUID token=[0-9]+ kek=file:$K0 " \
	"$T/kmsg"
KC_AUDIT_KMSG_PATH=$T/no-such-kmsg
assert_exit -m "a hook naming no file" 0 kc kek remove "$IMG" --token "file:$K0"
assert_true -m "... creates none" test ! -e "$T/no-such-kmsg"
assert_eq -m "the syslog receiver got no more events" "$N" "$(wc -l <"$LOG")"

done_testing
