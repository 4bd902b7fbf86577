#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kekcrypt-refresh.service and .timer, kekcrypt-firstboot.service (systemd/): `make install`
# puts them into the unit
# directory with the binary's path filled in (none with systemdsystemunitdir=no), and
# uninstall removes them; systemd-analyze verify accepts them without a warning; the timer is
# hourly with a random delay and catches up after downtime; and the service's ExecStart
# commands, run as they are written, against an /etc/crypttab of the test's own (a copy of
# /etc over /etc in a private mount namespace): they pick up a new KEK version on every
# crypttab volume and exit non-zero when a volume is degraded; firstboot's re-keys the marked
# volume of a crypttab, leaves the other one byte for byte, and a second run writes nothing.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"

T=$T_DIR
UNITS=/units
DEST=$T/dest

# inst ARGS...: make install-systemd or uninstall-systemd in the build tree, as make install
# and make uninstall run them, without the jobserver of the make that runs this test.
inst() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$KC_BUILDDIR" "$@" >"$T/make.out" 2>&1
}

# --- installation ------------------------------------------------------------------------------
assert_exit -m "make install-systemd DESTDIR=... bindir=/opt/kc/bin" 0 \
	inst install-systemd DESTDIR="$DEST" bindir=/opt/kc/bin systemdsystemunitdir="$UNITS"
SVC=$DEST$UNITS/kekcrypt-refresh.service
TIMER=$DEST$UNITS/kekcrypt-refresh.timer
FB=$DEST$UNITS/kekcrypt-firstboot.service
assert_true -m "the service is installed" test -f "$SVC"
assert_true -m "kekcrypt-firstboot.service is installed" test -f "$FB"
assert_eq -m "... ExecStart: firstboot --crypttab, from bindir" \
	"/opt/kc/bin/kekcrypt firstboot --crypttab" "$(sed -n 's/^ExecStart=//p' "$FB")"
assert_eq -m "... after cryptsetup.target (the volumes mapped), wanted by multi-user.target" \
	"After=cryptsetup.target network-online.target WantedBy=multi-user.target" \
	"$(grep -E '^(After|WantedBy)=' "$FB" | tr '\n' ' ' | sed 's/ $//')"
assert_true -m "the timer is installed" test -f "$TIMER"
assert_eq -m "ExecStart: kek rotate --if-newer, then verify --all, from bindir" \
	"/opt/kc/bin/kekcrypt kek rotate --all --if-newer --crypttab
/opt/kc/bin/kekcrypt verify --all --crypttab" "$(sed -n 's/^ExecStart=//p' "$SVC")"
assert_eq -m "the service is a oneshot" "Type=oneshot" "$(grep '^Type=' "$SVC")"
assert_eq -m "the timer: hourly, a random delay, persistent, wanted by timers.target" \
	"OnCalendar=hourly RandomizedDelaySec=15min Persistent=true WantedBy=timers.target" \
	"$(grep -E '^(OnCalendar|RandomizedDelaySec|Persistent|WantedBy)=' "$TIMER" | tr '\n' ' ' | sed 's/ $//')"
assert_true -m "no placeholder left" test -z "$(grep -l '%[A-Z]*%' "$SVC" "$TIMER" "$FB")"
assert_exit -m "make uninstall-systemd" 0 \
	inst uninstall-systemd DESTDIR="$DEST" systemdsystemunitdir="$UNITS"
assert_true -m "... removes all three" test ! -e "$SVC" -a ! -e "$TIMER" -a ! -e "$FB"
assert_exit -m "systemdsystemunitdir=no: make install-systemd" 0 \
	inst install-systemd DESTDIR="$T/none" systemdsystemunitdir=no
assert_eq -m "... installs nothing" "" "$(find "$T/none" -type f 2>/dev/null)"

# --- systemd-analyze verify ----------------------------------------------------------------------
# The ExecStart binary must exist for verify: the units of the build's kekcrypt.
BIN=$(dirname "$KEKCRYPT")
assert_exit -m "install with bindir=$BIN" 0 \
	inst install-systemd DESTDIR="$T/real" bindir="$BIN" systemdsystemunitdir="$UNITS"
if command -v systemd-analyze >/dev/null 2>&1; then
	# --man=no: the man page is not installed here. Unknown keys are only warnings (stderr).
	assert_exit -m "systemd-analyze verify the timer and the service" 0 \
		systemd-analyze verify --man=no "$T/real$UNITS/kekcrypt-refresh.timer" \
		"$T/real$UNITS/kekcrypt-refresh.service" "$T/real$UNITS/kekcrypt-firstboot.service"
	assert_eq -m "... without a warning" "" "$(cat "$ERR")"
else
	ok "systemd-analyze verify # SKIP systemd-analyze is missing"
fi

# --- the ExecStart commands, as written, on /etc/crypttab ----------------------------------------
new_kek "$T/kek0.bin"
new_kek "$T/kek1.bin"
for v in a b; do
	new_img "$T/$v.img"
	format_img "$T/$v.img" "$T/kek0.bin" "$T/kek1.bin"
done
cp -a /etc "$T/etc"
printf 'a %s none luks\nb %s none luks\n' "$T/a.img" "$T/b.img" >"$T/etc/crypttab"
mount --bind "$T/etc" /etc
mapfile -t CMDS < <(sed -n 's/^ExecStart=//p' "$T/real$UNITS/kekcrypt-refresh.service")
assert_eq -m "two ExecStart commands" 2 "${#CMDS[@]}"
read -ra ROTATE <<<"${CMDS[0]}"
read -ra VERIFY <<<"${CMDS[1]}"
sum=$(header_sum "$T/a.img")
assert_exit -m "ExecStart 1 (kek rotate --if-newer --crypttab): exit 0" 0 "${ROTATE[@]}"
assert_stdout_contains -m "... goes through /etc/crypttab" "b ($T/b.img):"
assert_stdout_contains -m "... file KEKs: nothing to pick up" \
	"token 1 (file:$T/kek1.bin): not versioned: left alone"
assert_header_unchanged -m "... nothing written" "$T/a.img" "$sum"
assert_exit -m "ExecStart 2 (verify --all --crypttab): exit 0" 0 "${VERIFY[@]}"
assert_stdout_contains -m "... checks every token of every volume" "token 1 (file:$T/kek1.bin): ok"
mv "$T/kek1.bin" "$T/kek1.away"
assert_exit -m "a KEK gone: ExecStart 2 exits 26 (degraded), so the unit fails" 26 "${VERIFY[@]}"
mv "$T/kek1.away" "$T/kek1.bin"

# kekcrypt-firstboot.service's command: a is marked, b is not.
read -ra FIRSTBOOT <<<"$(sed -n 's/^ExecStart=//p' "$T/real$UNITS/kekcrypt-firstboot.service")"
kc template mark "$T/a.img" >/dev/null
digest() { cryptsetup luksDump --dump-json-metadata "$1" | json_get /dev/stdin '" ".join(sorted(v["digest"] for v in d["digests"].values()))'; }
da=$(digest "$T/a.img")
sum=$(header_sum "$T/b.img")
assert_exit -m "firstboot ExecStart: exit 0" 0 "${FIRSTBOOT[@]}" --json
cp "$OUT" "$T/fb.json"
assert_eq -m "... a re-keyed, b had no mark" "true none" \
	"$(json_get "$T/fb.json" '" ".join([str(d["volumes"][0]["result"]["rekeyed"]).lower(), d["volumes"][1]["result"]["mark"]])')"
assert_true -m "... a has a new key" test "$(digest "$T/a.img")" != "$da"
assert_header_unchanged -m "... b left as it was" "$T/b.img" "$sum"
sum=$(header_sum "$T/a.img")
assert_exit -m "a second run: exit 0" 0 "${FIRSTBOOT[@]}"
assert_header_unchanged -m "... writes nothing" "$T/a.img" "$sum"

done_testing
