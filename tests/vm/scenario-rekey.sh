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
# With ENC="ON OFF SUMS" (e.g. "vde vdf vdg"), crash and resume also encrypt in place (kekcrypt
# encrypt) two ext4 disks full of files (their SHA-256 list made on the host: /enc-files.sha256):
#   crash: a dry run online changes nothing; OFF encrypted offline, frozen in its first chunk;
#     ON encrypted online as mapping "enc", stopped by SIGINT after its first chunk (the
#     mapping stays), mounted from it and written (the new files synced, their SHA-256 list
#     kept on the raw disk SUMS), then continued by the same command without NAME (through
#     the mapping) with a writer busy on it, and frozen in its next chunk; both before the
#     rekeys.
#   resume: `encrypt --resume ON enc` opens the mapping again and continues online (a chunk
#     at least left after the crash recovery); `kekcrypt open OFF` maps the interrupted
#     encryption (files as listed, read-only; it names the resume command), then, closed,
#     `encrypt --resume OFF` continues offline;
#     both filesystems e2fsck clean, every file's SHA-256 as written.
#   (crash: ON is mounted from the disk first, and `encrypt ON enc --remount` moves the mount
#   to the mapping.)
# detached: DETACHED="R E" (e.g. "vdj vdk"), volumes whose LUKS2 headers are files in /hdr:
#   R formatted on the host (/hdr/det-r.hdr), opened as w, the data written, re-keyed online
#   through its header with a reader busy: content unchanged, a new volume key, nothing
#   pending, reopened; E an ext4 disk full of files (/enc-files.sha256) encrypted online
#   (`encrypt --header /hdr/det-e.hdr E de`): the data where it was (E holds no LUKS header),
#   e2fsck clean and every file's SHA-256 through the mapping.
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
# json_first FILE EXPR, json_last FILE EXPR: the first (last) JSON value in FILE (- for standard
# input) makes the jq expression EXPR true; false when FILE holds none (jq -e alone exits 0 on
# empty input).
json_first() { jq -e -s "length > 0 and (first | $2)" "$1" >/dev/null; }
json_last() { jq -e -s "length > 0 and (last | $2)" "$1" >/dev/null; }
# The LUKS2 metadata of DEVICE, as JSON; its digests; whether a re-encryption is pending (the
# online-reencrypt requirement); whether kekcrypt's rekey marks are left (the bridge token, or a
# token's "kekcrypt-rekey" member).
meta() { cryptsetup luksDump --dump-json-metadata "$1"; }
digests() { meta "$DEV" | jq -cS '.digests'; }
reencrypt_pending() {
	meta "$1" | json_first - '.config.requirements.mandatory // [] | any(startswith("online-reencrypt"))'
}
rekey_marks() {
	meta "$1" | json_first - 'any(.tokens[]; .type == "kekcrypt-rekey" or has("kekcrypt-rekey"))'
}
# The volume's KEK URIs, sorted, and its token ids (kekcrypt dump --json, read with jq).
keks() { kekcrypt dump --json "$DEV" | jq -r '.tokens[].kek' | sort; }
token_ids() { kekcrypt dump --json "$DEV" | jq -r '.tokens[].id'; }
# Wait until FILE has at least N lines (progress objects); fail after ~120 s. (A FILE not
# there yet counts 0 lines: grep prints no count for it.)
wait_lines() {
	i=0
	while n=$(grep -c 'done' "$1" 2>/dev/null); [ "${n:-0}" -lt "$2" ]; do
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

	# First run: stopped by SIGINT once its first chunk is done (the second line: the first
	# says 0 bytes), so that two chunks at least are left: the stop comes after the chunk
	# under way, and a guest whose chunks are quick must not finish before the signal lands.
	kekcrypt rekey "$DEV" --progress-json >/tmp/p1 2>/tmp/e1 &
	pid=$!
	wait_lines /tmp/p1 2
	kill -INT "$pid"
	set +e; wait "$pid"; rc=$?; set -e
	cat /tmp/e1
	[ "$rc" -eq 17 ] || fail "interrupted rekey exited $rc, expected 17"
	grep -q "kekcrypt rekey --resume $DEV" /tmp/e1 || fail "no resume hint"
	tail -n 1 /tmp/p1
	grep '^{' /tmp/p1 | json_last - '.total == 8388608' || fail "progress JSON total"
	reencrypt_pending "$DEV" || fail "no re-encryption pending"
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
	if reencrypt_pending "$DEV"; then fail "re-encryption still pending"; fi
	if rekey_marks "$DEV"; then fail "rekey marks left"; fi
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
	for id in $(token_ids); do
		kekcrypt verify "$DEV" --token "$id" >/dev/null || fail "new token $id"
	done
	ok "same-keks-new-tokens"

	kekcrypt close v
	kekcrypt open "$DEV" v >/dev/null
	[ "$(content_sha v)" = "$WANT" ] || fail "content after reopen"
	kekcrypt close v
	ok "reopen-new-dek"
}

# The in-place encryptions of the crash phase (ENC), frozen where they are before the rekeys.
encrypt_crash() {
	set -- $ENC
	kekcrypt encrypt "/dev/$1" enc --kek "file:$KEK_DIR/a.bin" --dry-run --json >/tmp/dry ||
		{ cat /tmp/dry; fail "online dry run"; }
	json_first /tmp/dry '.online == true and .name == "enc"' ||
		fail "online dry run: $(cat /tmp/dry)"
	if cryptsetup isLuks "/dev/$1" || [ -e /dev/mapper/enc ]; then
		fail "the dry run wrote a header or opened a mapping"
	fi
	ok "encrypt-dry-run-online"

	kekcrypt encrypt "/dev/$2" --kek "file:$KEK_DIR/a.bin" --progress-json >/tmp/p-off \
		2>/tmp/e-off &
	off=$!
	wait_lines /tmp/p-off 1
	kill -STOP "$off"
	echo "$2 (offline): $(tail -n 1 /tmp/p-off)"

	# Online, the filesystem mounted from the device (noatime: an option to keep): --remount
	# unmounts it and mounts it from the mapping as soon as that is open; a first run stopped
	# by SIGINT after its first chunk leaves the mapping open and mounted.
	mkdir -p /mnt/enc
	mount -o noatime "/dev/$1" /mnt/enc
	kekcrypt encrypt "/dev/$1" enc --remount --kek "file:$KEK_DIR/a.bin" --dry-run --json \
		>/tmp/dry || { cat /tmp/dry; fail "--remount dry run"; }
	json_first /tmp/dry '.mount_point == "/mnt/enc"' ||
		fail "--remount dry run: $(cat /tmp/dry)"
	grep -q "^/dev/$1 /mnt/enc " /proc/mounts || fail "the --remount dry run unmounted it"
	kekcrypt encrypt "/dev/$1" enc --remount --kek "file:$KEK_DIR/a.bin" --kek "$P11_URI" \
		--progress-json >/tmp/p-on 2>/tmp/e-on &
	on=$!
	wait_lines /tmp/p-on 1
	kill -INT "$on"
	set +e; wait "$on"; rc=$?; set -e
	[ "$rc" -eq 17 ] || { cat /tmp/e-on; fail "online encrypt stopped by SIGINT exited $rc"; }
	grep -q "kekcrypt encrypt --resume /dev/$1" /tmp/e-on || fail "no resume hint"
	echo "$1 (online, stopped): $(tr '\n' ' ' </tmp/p-on)"
	grep -q "^/dev/mapper/enc /mnt/enc ext4 rw,noatime" /proc/mounts ||
		{ cat /tmp/e-on /proc/mounts; fail "--remount: not mounted from the mapping as before"; }
	ok "encrypt-remounted"
	# The filesystem, mounted from the mapping, half encrypted: files written and synced,
	# their list kept on the raw disk SUMS; then a writer busy into the power cut (its files
	# are not checked: never synced).
	mkdir /mnt/enc/new
	for i in 1 2 3 4 5 6 7 8; do
		dd if=/dev/urandom of=/mnt/enc/new/g$i bs=64k count=2 2>/dev/null
	done
	sync
	(cd /mnt/enc && sha256sum new/*) >/tmp/new.sha256
	{ cat /tmp/new.sha256; echo END; } | dd of="/dev/$3" conv=fsync 2>/dev/null
	ok "encrypt-online-mounted-written"
	( n=0
	while :; do
		dd if=/dev/urandom of=/mnt/enc/busy-$((n % 4)) bs=16k count=1 2>/dev/null
		n=$((n + 1))
		sleep 0.2
	done ) &
	# The same command without NAME continues through the open mapping; frozen in its next
	# chunk.
	kekcrypt encrypt "/dev/$1" --kek "file:$KEK_DIR/a.bin" --kek "$P11_URI" --progress-json \
		>/tmp/p-on2 2>/tmp/e-on2 &
	on=$!
	wait_lines /tmp/p-on2 1
	kill -STOP "$on"
	echo "$1 (online, resumed): $(tr '\n' ' ' </tmp/p-on2)"
	# Not finished (the host checks each header after the cut: a frozen run may hold its
	# metadata lock, so nothing here reads them).
	for p in /tmp/p-on2 /tmp/p-off; do
		# (the progress objects only: a run that ended prints its report after them)
		if grep '^{' "$p" | json_last - '.done == .total'; then
			fail "$p: the encryption ended before the power cut"
		fi
	done
	ok "encrypt-frozen"
}

# e2fsck -f -p (a journal replayed, safe fixes: exit 0 or 1), then -f -n must find nothing.
fsck_clean() {
	set +e; e2fsck -f -p "$1" >/tmp/fsck.out 2>&1; rc=$?; set -e
	[ "$rc" -le 1 ] || { cat /tmp/fsck.out; fail "e2fsck -f -p $1 exited $rc"; }
	e2fsck -f -n "$1" >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "e2fsck -f -n $1"; }
}

# files_identical MAPPING LIST...: mounted, each file of each SHA-256 LIST reads as listed.
files_identical() {
	m=$1
	shift
	mount "/dev/mapper/$m" /mnt/enc
	for list in "$@"; do
		(cd /mnt/enc && sha256sum -c "$list" >/tmp/sums.out 2>&1) ||
			{ grep -v ': OK$' /tmp/sums.out; fail "$m: files differ ($list)"; }
		echo "$m: $(wc -l <"$list") files of $list identical"
	done
	umount /mnt/enc
}

encrypt_resume() {
	set -- $ENC
	sed -n '/^END$/q;p' "/dev/$3" >/tmp/new.sha256
	[ "$(wc -l </tmp/new.sha256)" -eq 8 ] || fail "the files' list on $3"
	kekcrypt encrypt --resume "/dev/$1" enc --progress-json >/tmp/o-on 2>/tmp/e-on || {
		cat /tmp/e-on
		cryptsetup luksDump "/dev/$1" | sed -n '/^Data segments/,/^Keyslots/p'
		kekcrypt encrypt --resume "/dev/$1" enc --debug 2>&1 | tail -n 30
		fail "$1: encrypt --resume failed"
	}
	cat /tmp/o-on
	grep -q "encrypted in place (resumed), online through enc;" /tmp/o-on ||
		fail "$1: not resumed online"
	# Data was left to encrypt through the mapping after the crash recovery.
	if head -n 1 /tmp/o-on | json_first - '.done == .total'; then
		fail "$1: nothing was left to encrypt online"
	fi
	ok "encrypt-resumed-online"
	# OFF, whose offline encryption the power cut stopped, opens like any volume (libcryptsetup
	# recovers the chunk and maps both parts): its files read as listed, and open says what
	# finishes the encryption. Closed again, then resumed offline.
	kekcrypt open "/dev/$2" mid >/tmp/o-mid 2>/tmp/e-mid ||
		{ cat /tmp/e-mid; fail "$2: open of the interrupted encryption failed"; }
	grep -q "run 'kekcrypt encrypt --resume /dev/$2' to finish it" /tmp/e-mid ||
		fail "$2: open did not say what finishes the encryption: $(cat /tmp/e-mid)"
	mkdir -p /mnt/enc
	mount -o ro /dev/mapper/mid /mnt/enc
	(cd /mnt/enc && sha256sum -c /enc-files.sha256 >/tmp/sums.out 2>&1) ||
		{ grep -v ': OK$' /tmp/sums.out; fail "$2: files differ through the mapping mid-way"; }
	umount /mnt/enc
	kekcrypt close mid
	ok "encrypt-interrupted-open"
	kekcrypt encrypt --resume "/dev/$2" --json >/tmp/o-off 2>/tmp/e-off ||
		{ cat /tmp/e-off; fail "$2: encrypt --resume failed"; }
	json_first /tmp/o-off '.resumed == true and .online == false' ||
		fail "$2: not resumed offline: $(cat /tmp/o-off)"
	ok "encrypt-resumed-offline"
	kekcrypt open "/dev/$2" enc2 >/dev/null
	fsck_clean /dev/mapper/enc
	fsck_clean /dev/mapper/enc2
	ok "encrypt-fsck-clean"
	mkdir -p /mnt/enc
	files_identical enc /enc-files.sha256 /tmp/new.sha256
	files_identical enc2 /enc-files.sha256
	kekcrypt close enc
	kekcrypt close enc2
	ok "encrypt-files-identical"
}

phase_crash() {
	[ -z "${ENC:-}" ] || encrypt_crash
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
	[ -z "${ENC:-}" ] || encrypt_resume
	for vol in $VOLS; do
		reencrypt_pending "/dev/$vol" ||
			fail "$vol: no re-encryption pending"
	done
	ok "reencryption-pending"
	for vol in $VOLS; do
		kekcrypt rekey --resume "/dev/$vol" --progress-json >"/tmp/p2-$vol" 2>"/tmp/e2-$vol" || {
			# For whoever reads the log: the re-encryption's metadata, then libcryptsetup's
			# own account of the refusal (a rare failure seen once after the power cut).
			cat "/tmp/e2-$vol"
			cryptsetup luksDump --dump-json-metadata "/dev/$vol" |
				jq -c '{segments, keyslots: (.keyslots | map_values({type, mode, direction, area}))}' || :
			kekcrypt rekey --resume "/dev/$vol" --debug 2>&1 | tail -n 40 || :
			fail "$vol: resume failed"
		}
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

phase_detached() {
	set -- $DETACHED
	h=/hdr/det-r.hdr
	kekcrypt open --header "$h" "/dev/$1" w >/dev/null
	dd if=/dev/vdb of=/dev/mapper/w bs=1M conv=fsync 2>/dev/null
	meta "$h" | jq -cS '.digests' >/tmp/det-digests.before
	start_reader w
	kekcrypt rekey --header "$h" "/dev/$1" >/tmp/o-dr 2>/tmp/e-dr ||
		{ cat /tmp/o-dr /tmp/e-dr; fail "detached: online rekey"; }
	stop_reader
	cat /tmp/o-dr
	grep -q "online through w" /tmp/o-dr || fail "detached: the rekey was not online"
	[ "$(content_sha w)" = "$WANT" ] || fail "detached: content changed by the rekey"
	if meta "$h" | jq -cS '.digests' | cmp -s - /tmp/det-digests.before; then
		fail "detached: volume key unchanged"
	fi
	if reencrypt_pending "$h" || rekey_marks "$h"; then fail "detached: rekey state left"; fi
	kekcrypt close w
	kekcrypt open --header "$h" "/dev/$1" w >/dev/null
	[ "$(content_sha w)" = "$WANT" ] || fail "detached: content after reopen"
	kekcrypt close w
	ok "detached-online-rekey"

	kekcrypt encrypt --header /hdr/det-e.hdr "/dev/$2" de --kek "file:$KEK_DIR/a.bin" \
		>/tmp/o-de 2>/tmp/e-de || { cat /tmp/o-de /tmp/e-de; fail "detached: online encrypt"; }
	cat /tmp/o-de
	grep -q "online through de" /tmp/o-de || fail "detached: the encryption was not online"
	if cryptsetup isLuks "/dev/$2"; then fail "detached: a LUKS header on the data device"; fi
	fsck_clean /dev/mapper/de
	files_identical de /enc-files.sha256
	kekcrypt close de
	ok "detached-online-encrypt"
}

[ -n "${PHASE:-}" ] || fail "no PHASE"
# encrypt's state directory (the header file until it is on the device); the guest's root is
# a ramfs without /var/lib.
[ -z "${ENC:-}" ] || mkdir -p /var/lib/kekcrypt
for phase in $PHASE; do
	case $phase in
	online) phase_online ;;
	detached) phase_detached ;;
	crash) phase_crash ;;
	resume) phase_resume ;;
	*) fail "unknown PHASE '$phase'" ;;
	esac
done
echo "KC-SCENARIO-DONE"
