#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario: kekcrypt rekey (DEK rotation by LUKS2 re-encryption) with real dm-crypt.
#   /dev/vdb  8 MiB of random data made on the host; its SHA-256 is $WANT
#   the volumes: formatted on the host (file KEK $KEK_DIR/a.bin + SoftHSM2 $P11_URI)
# PHASE: one or more of these, run in order (the online test shares the resume phase's guest:
# a boot less):
# online: write the data through the mapping of /dev/$ONLINE (default vda), rekey it while a
#   reader keeps the mapping busy, stop the first run with SIGINT, finish it with a plain
#   `rekey`, then check content, old DEK, KEKs and a reopen.
# crash: volumes $VOLS (e.g. "vda vdc vdd"; vdb stays the data), each with its point
#   in $CRASH_AFTER (e.g. "1 3 4"): write the data to each, start an online rekey of each in
#   turn and freeze it (SIGSTOP) after its number of progress lines, the last one left
#   running (with a reader keeping its mapping busy), then cut the power (sysrq 'b': no sync,
#   no shutdown): one power loss catches every volume in the middle of its re-encryption, at
#   its own point.
# resume: after the crash, for each of $VOLS: `rekey --resume` (offline), then open and
#   check the content.
# Prints "KC-OK <check>" per passed check; any failure exits non-zero.
set -eu
. /scenario.env 2>/dev/null || true
DEV=/dev/${ONLINE:-vda}

fail() { echo "KC-FAIL $*"; exit 1; }
ok() { echo "KC-OK $*"; }
# Whole mapping content, SHA-256 (dd with 1 MiB blocks: pipes are slow under emulation).
content_sha() {
	dd if=/dev/mapper/"$1" of=/tmp/content bs=1M 2>/dev/null
	sha256sum /tmp/content | cut -d' ' -f1
	rm -f /tmp/content
}
digests() { cryptsetup luksDump "$DEV" | sed -n '/^Digests:/,$p'; }
keks() { kekcrypt dump "$DEV" | grep -E '^  [0-9]+: ' | sed 's/^  [0-9]*: //' | sort; }
# Wait until FILE has at least N lines (progress objects); fail after ~120 s.
wait_lines() {
	i=0
	while [ "$(grep -c 'done' "$1" 2>/dev/null || true)" -lt "$2" ]; do
		i=$((i + 1))
		[ "$i" -lt 1200 ] || fail "no progress in $1"
		sleep 0.1
	done
}
# fill [DEVICE [MAPPING]]: open DEVICE ($DEV) as MAPPING (v) and write the data into it.
fill() {
	kekcrypt open "${1:-$DEV}" "${2:-v}" >/dev/null
	dd if=/dev/vdb of=/dev/mapper/"${2:-v}" bs=1M conv=fsync 2>/dev/null
	[ "$(content_sha "${2:-v}")" = "$WANT" ] ||
		fail "data written through ${2:-v} reads back wrong"
}
# start_reader [MAPPING]: a reader keeps MAPPING (v) in use during the re-encryption, a MiB
# every 0.1 s across the volume, so that reads meet the rekey's table swaps without taking
# the emulated CPU from it (reading without a pause, it made a chunk take 25 s). It only
# makes load: a read that fails while the rekey swaps the mapping's table is retried, and the
# content is checked afterwards by content_sha.
start_reader() {
	rm -f /tmp/stop-reader
	( n=0
	while [ ! -e /tmp/stop-reader ]; do
		dd if=/dev/mapper/"${1:-v}" of=/dev/null bs=1M count=1 skip="$n" 2>/dev/null || true
		n=$(((n + 1) % 8))
		sleep 0.1
	done ) &
	READER=$!
}
stop_reader() { touch /tmp/stop-reader; wait "$READER" || true; }

phase_online() {
	fill
	ok "data-written"
	cryptsetup token export --token-id 0 "$DEV" >/tmp/old-token.json
	digests >/tmp/digests.before
	keks >/tmp/keks.before
	[ "$(wc -l </tmp/keks.before)" -eq 2 ] || fail "expected two KEKs before"
	start_reader

	# First run: stopped by SIGINT after a few chunks; resumable.
	kekcrypt rekey "$DEV" --progress-json >/tmp/p1 2>/tmp/e1 &
	pid=$!
	wait_lines /tmp/p1 3
	kill -INT "$pid"
	set +e; wait "$pid"; rc=$?; set -e
	cat /tmp/e1
	[ "$rc" -eq 17 ] || fail "interrupted rekey exited $rc, expected 17"
	grep -q "kekcrypt rekey --resume $DEV" /tmp/e1 || fail "no resume hint"
	tail -n 1 /tmp/p1
	grep -q '"total":8388608' /tmp/p1 || fail "progress JSON total"
	cryptsetup luksDump "$DEV" | grep -q online-reencrypt || fail "no re-encryption pending"
	[ "$(content_sha v)" = "$WANT" ] || fail "content differs in the middle of the rekey"
	ok "sigint-stops-cleanly"

	# A plain rekey continues it, online, with the reader still busy.
	kekcrypt rekey "$DEV" >/tmp/o2 2>/tmp/e2 || { cat /tmp/o2 /tmp/e2; fail "resume"; }
	cat /tmp/o2
	grep -q "(resumed), online through v" /tmp/o2 || fail "rekey did not resume online"
	stop_reader
	ok "resumed-online"

	[ "$(content_sha v)" = "$WANT" ] || fail "content changed by the rekey"
	ok "online-content-identical"
	cryptsetup luksDump "$DEV" >/tmp/dump.after
	if grep -q online-reencrypt /tmp/dump.after; then fail "re-encryption still pending"; fi
	if grep -q kekcrypt-rekey /tmp/dump.after; then fail "rekey marks left"; fi
	digests >/tmp/digests.after
	if cmp -s /tmp/digests.before /tmp/digests.after; then fail "volume key digest unchanged"; fi
	ok "volume-key-changed"

	# The old token (old DEK under the same KEK) no longer opens the volume.
	sed 's/"keyslots":\[[^]]*\]/"keyslots":[]/' /tmp/old-token.json >/tmp/old-token-nk.json
	cryptsetup token import --token-id 20 --json-file /tmp/old-token-nk.json "$DEV"
	set +e; kekcrypt verify "$DEV" --token 20 >/tmp/v.out 2>&1; rc=$?; set -e
	cat /tmp/v.out
	[ "$rc" -eq 8 ] || fail "old token verify exited $rc, expected 8 (wrong key)"
	cryptsetup token remove --token-id 20 "$DEV"
	ok "old-dek-rejected"

	keks >/tmp/keks.after
	cmp -s /tmp/keks.before /tmp/keks.after || fail "KEKs changed: $(cat /tmp/keks.after)"
	for id in $(kekcrypt dump "$DEV" | grep -E '^  [0-9]+: ' | sed 's/^  \([0-9]*\):.*/\1/'); do
		kekcrypt verify "$DEV" --token "$id" >/dev/null || fail "new token $id"
	done
	ok "same-keks-new-tokens"

	kekcrypt close v
	kekcrypt open "$DEV" v >/dev/null
	[ "$(content_sha v)" = "$WANT" ] || fail "content after reopen"
	kekcrypt close v
	ok "reopen-new-dek"
}

phase_crash() {
	set -- $CRASH_AFTER
	for vol in $VOLS; do
		fill "/dev/$vol" "$vol"
	done
	ok "data-written"
	for vol in $VOLS; do
		# The last one keeps running into the power cut, its mapping busy with a reader;
		# the others are frozen where they are, with no I/O waiting on them (a frozen
		# rekey may hold its device suspended).
		[ $# -gt 1 ] || start_reader "$vol"
		kekcrypt rekey "/dev/$vol" --progress-json >"/tmp/p-$vol" 2>"/tmp/e-$vol" &
		pid=$!
		wait_lines "/tmp/p-$vol" "$1"
		echo "$vol: $(tail -n 1 "/tmp/p-$vol")"
		shift
		[ $# -eq 0 ] || kill -STOP "$pid"
	done
	echo "KC-CRASH-NOW"
	# Power loss: reboot at once, without syncing or shutting anything down (QEMU runs
	# with -no-reboot, so it exits; the disk image keeps what reached it).
	echo b >/proc/sysrq-trigger
	sleep 30
	fail "still running after sysrq b"
}

phase_resume() {
	for vol in $VOLS; do
		cryptsetup luksDump "/dev/$vol" | grep -q online-reencrypt ||
			fail "$vol: no re-encryption pending"
	done
	ok "reencryption-pending"
	for vol in $VOLS; do
		kekcrypt rekey --resume "/dev/$vol" --progress-json >"/tmp/p2-$vol" 2>"/tmp/e2-$vol" ||
			{ cat "/tmp/e2-$vol"; fail "$vol: resume failed"; }
		echo "$vol: $(head -n 1 "/tmp/p2-$vol") ... $(tail -n 1 "/tmp/p2-$vol")"
	done
	ok "resumed"
	for vol in $VOLS; do
		kekcrypt open "/dev/$vol" v >/dev/null
		[ "$(content_sha v)" = "$WANT" ] ||
			fail "$vol: content differs after power loss and resume"
		kekcrypt close v
	done
	ok "content-identical"
}

[ -n "${PHASE:-}" ] || fail "no PHASE"
for phase in $PHASE; do
	case $phase in
	online) phase_online ;;
	crash) phase_crash ;;
	resume) phase_resume ;;
	*) fail "unknown PHASE '$phase'" ;;
	esac
done
echo "KC-SCENARIO-DONE"
