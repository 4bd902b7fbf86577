#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run one shell scenario inside a QEMU guest with real device-mapper/dm-crypt.
#
# Usage: scripts/vm/run-guest.sh [options] SCENARIO.sh
#   --disk IMG             raw image attached as virtio disk: /dev/vda, /dev/vdb, ... in order
#   --bin PATH[:DEST]      executable to copy into the guest with its libraries (see mkinitrd.sh)
#   --lib PATH[:DEST]      shared library (e.g. dlopen()ed) to copy with its dependencies
#   --file SRC:DEST        file or directory to copy into the guest
#   --module NAME          extra kernel module to load (with its dependencies)
#   --env NAME=VALUE       variable exported to the scenario (non-secret values only)
#   --timeout SECONDS      wall-time limit for the whole QEMU run (default 300); inside the
#                          guest the scenario gets SECONDS - max(20, SECONDS/5), at least
#                          SECONDS/2, so that a hung scenario is still reported by the guest
#   --memory MB            guest memory (default 512)
#   --smp N                guest CPUs (default 1)
#   --machine TYPE         QEMU machine type (default: see README.md, "Stalls")
#   --drive-opts OPTS      -drive options for every --disk (default: see README.md, "Stalls")
#   --stall SECONDS        stall watchdog: when the guest shows no progress (no console output,
#                          no block I/O, no CPU work) for SECONDS, dump its blocked tasks into
#                          the log and fail at once with 124 (default 45; 0 turns it off)
#   --trace                trace the scenario's commands on the console (bash -x), so that a
#                          stall or timeout names the command it happened in
#   --netns-setup CMD      run CMD (bash -c) in the background inside the private network
#                          namespace before QEMU starts, e.g. a key server on 127.0.0.1:PORT
#                          that the guest reaches as 10.0.2.2:PORT; killed afterwards
#   --netns-wait-port PORT wait (up to 30 s) until 127.0.0.1:PORT accepts connections in the
#                          namespace before starting QEMU; repeatable
#   --qemu-arg ARG         extra argument for qemu-system-x86_64; repeatable
#   --log FILE             guest console log (kept); default: a temporary file, removed on
#                          success and kept (path printed) on failure
#
# Exit status: the scenario's exit code (KC-GUEST-EXIT=<code> on the console), 124 if the
# run timed out or stalled, 125 if the harness failed or the guest's markers are missing.
# Must run as root (it creates network, PID and mount namespaces with unshare).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/qemu-config.sh"
readonly EXIT_TIMEOUT=124
readonly EXIT_HARNESS=125

DISKS=()
INITRD_ARGS=()
QEMU_EXTRA=()
WAIT_PORTS=()
TIMEOUT=300
MEMORY=512
SMP=1
# The guest configuration that does not lose block I/O (qemu-config.sh).
MACHINE=$KC_VM_MACHINE
DRIVE_OPTS=$KC_VM_DRIVE_OPTS
STALL=45
TRACE=0
NETNS_SETUP=
LOG=
LOG_IS_TEMP=0
SETUP_LOG=
SCENARIO=

TMP=
NS_PID=
WATCH_PID=
TRACE_ARG=

die() {
	echo "run-guest: error: $*" >&2
	exit "$EXIT_HARNESS"
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

# The part that runs inside the new network/PID/mount namespaces, as PID 1 of the PID
# namespace: when it exits, the kernel kills every process left in the namespace (the key
# server, QEMU), so nothing started here can outlive the run.
# Arguments: TIMEOUT LOG SETUP_CMD SETUP_LOG "PORT ..." QEMU_ARGV...
# shellcheck disable=SC2016 # expanded by the inner bash
readonly NETNS_MAIN='
set -euo pipefail
timeout=$1 log=$2 setup=$3 setup_log=$4 ports=$5
shift 5
setup_pid=
qemu_pid=

stop_setup() {
	local i

	[ -n "$setup_pid" ] || return 0
	kill -TERM -- "-$setup_pid" 2>/dev/null || true
	for i in $(seq 20); do
		kill -0 -- "-$setup_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$setup_pid" 2>/dev/null || true
	setup_pid=
}

cleanup() {
	[ -z "$qemu_pid" ] || kill -TERM "$qemu_pid" 2>/dev/null || true
	stop_setup
}
trap cleanup EXIT
trap "exit 143" TERM INT HUP

ip link set lo up || { echo "run-guest: error: cannot bring up lo in the namespace" >&2; exit 125; }
if [ -n "$setup" ]; then
	# Own session and process group, so that everything it starts is stopped together.
	setsid bash -c "$setup" </dev/null >>"$setup_log" 2>&1 &
	setup_pid=$!
fi
for port in $ports; do
	t=0
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		if [ -n "$setup_pid" ] && ! kill -0 "$setup_pid" 2>/dev/null; then
			echo "run-guest: error: --netns-setup exited before 127.0.0.1:$port was up" >&2
			exit 125
		fi
		if [ "$t" -ge 300 ]; then
			echo "run-guest: error: nothing listens on 127.0.0.1:$port after 30 s" >&2
			exit 125
		fi
		sleep 0.1
		t=$((t + 1))
	done
done

timeout --kill-after=5 "$timeout" "$@" </dev/null >>"$log" 2>&1 &
qemu_pid=$!
rc=0
wait "$qemu_pid" || rc=$?
qemu_pid=
exit "$rc"
'

stop_watchdog() {
	[ -n "$WATCH_PID" ] || return 0
	kill "$WATCH_PID" 2>/dev/null || : # it ends by itself when it sees KC-GUEST-END
	wait "$WATCH_PID" 2>/dev/null || : # its status is in $TMP/stall
	WATCH_PID=
}

cleanup() {
	local rc=$?

	set +e
	stop_watchdog
	if [ -n "$NS_PID" ]; then
		# unshare --kill-child: its child (PID 1 of the namespace) dies with it, and the
		# kernel then kills everything else in the PID namespace.
		kill -KILL "$NS_PID" 2>/dev/null
		wait "$NS_PID" 2>/dev/null
	fi
	[ -z "$TMP" ] || rm -rf "$TMP"
	# A temporary log that never received anything (the run failed before QEMU) goes too.
	if [ "$LOG_IS_TEMP" = 1 ] && [ ! -s "$LOG" ]; then
		rm -f "$LOG" "$SETUP_LOG"
	fi
	exit "$rc"
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		-h | --help) usage && exit 0 ;;
		--trace) TRACE=1 && shift && continue ;;
		--) shift && break ;;
		-*) [ $# -ge 2 ] || die "$1 needs an argument (see --help)" ;;
		*) break ;;
		esac
		case $1 in
		--disk)
			[ -f "$2" ] || [ -b "$2" ] || die "disk image '$2' does not exist"
			DISKS+=("$2")
			;;
		--bin | --lib | --file | --env | --module) INITRD_ARGS+=("$1" "$2") ;;
		--timeout) TIMEOUT=$2 ;;
		--memory) MEMORY=$2 ;;
		--smp) SMP=$2 ;;
		--machine) MACHINE=$2 ;;
		--drive-opts) DRIVE_OPTS=$2 ;;
		--stall) STALL=$2 ;;
		--netns-setup) NETNS_SETUP=$2 ;;
		--netns-wait-port)
			[[ $2 =~ ^[0-9]+$ ]] || die "--netns-wait-port '$2' is not a port number"
			WAIT_PORTS+=("$2")
			;;
		--qemu-arg) QEMU_EXTRA+=("$2") ;;
		--log) LOG=$2 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift 2
	done
	[ $# -eq 1 ] || die "expected exactly one SCENARIO argument (see --help)"
	SCENARIO=$1
	[ -f "$SCENARIO" ] || die "scenario '$SCENARIO' does not exist"
	[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
	[[ $MEMORY =~ ^[1-9][0-9]*$ ]] || die "--memory must be a positive integer (MB)"
	[[ $SMP =~ ^[1-9][0-9]*$ ]] || die "--smp must be a positive integer"
	[[ $STALL =~ ^[0-9]+$ ]] || die "--stall must be a number of seconds (0: off)"
	[ "$TRACE" = 0 ] || TRACE_ARG=--trace
	[[ $MACHINE =~ ^[a-z0-9.,=_-]+$ ]] || die "--machine '$MACHINE' is not a machine type"
	[ "${#DISKS[@]}" -le 26 ] || die "at most 26 disks"
}

# The scenario's own limit leaves the guest time to boot (several seconds, more on a loaded
# machine), report and power off: a margin of max(20 s, 20 %), at most half the run.
guest_timeout() {
	local margin=$((TIMEOUT / 5 > 20 ? TIMEOUT / 5 : 20))
	local t=$((TIMEOUT - margin))

	[ "$t" -ge $((TIMEOUT / 2)) ] || t=$((TIMEOUT / 2))
	echo $((t > 0 ? t : 1))
}

# Remove carriage returns and terminal control sequences (SeaBIOS clears the screen).
clean_log() {
	sed -i -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-zA-Z]//g' "$1"
}

# Print the tail of the logs after a failure.
report_failure() {
	local what=$1

	echo "run-guest: $what; last lines of the guest console:" >&2
	grep -av '^KC-GUEST-HB ' "$LOG" | tail -n "${2:-40}" | sed 's/^/  | /' >&2
	if [ -n "$NETNS_SETUP" ] && [ -s "$SETUP_LOG" ]; then
		echo "run-guest: last lines of the --netns-setup output ($SETUP_LOG):" >&2
		tail -n 20 "$SETUP_LOG" | sed 's/^/  | /' >&2
	fi
	echo "run-guest: full console log: $LOG" >&2
}

main() {
	local kenv vmlinuz d rc=0 ns_rc=0 exit_line start end

	parse_args "$@"
	[ "$(id -u)" = 0 ] || die "must run as root (unshare --net/--pid)"
	for d in qemu-system-x86_64 unshare ip timeout setsid; do
		command -v "$d" >/dev/null || die "'$d' not found (install qemu-system-x86, iproute2)"
	done

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kc-guest.XXXXXX")
	if [ -z "$LOG" ]; then
		LOG=$(mktemp "${TMPDIR:-/tmp}/kekcrypt-vm-$(basename "$SCENARIO" .sh).XXXXXX.log")
		LOG_IS_TEMP=1
	fi
	: >"$LOG" || die "cannot write log file '$LOG'"
	SETUP_LOG="${LOG%.log}.netns.log"
	[ -z "$NETNS_SETUP" ] || : >"$SETUP_LOG"

	kenv=$("$HERE/fetch-kernel.sh" --quiet) || die "fetch-kernel.sh failed"
	vmlinuz=$(sed -n 's/^KEKCRYPT_VM_VMLINUZ=//p' <<<"$kenv")
	"$HERE/mkinitrd.sh" --output "$TMP/initrd.cpio.gz" \
		--modules "$(sed -n 's/^KEKCRYPT_VM_MODULES=//p' <<<"$kenv")" \
		--disks "${#DISKS[@]}" --timeout "$(guest_timeout)" \
		"${INITRD_ARGS[@]}" ${TRACE_ARG:+"$TRACE_ARG"} "$SCENARIO" || die "mkinitrd.sh failed"

	# No iPXE option ROM for the NIC (romfile=): it only costs boot time. QMP on a socket
	# and sysrq enabled: the stall watchdog dumps the guest's blocked tasks through them.
	local qemu=(qemu-system-x86_64)
	mapfile -t -O 1 qemu < <(KC_VM_MACHINE=$MACHINE vm_qemu_machine_args)
	# shellcheck disable=SC2054 # the commas are QEMU's option syntax
	qemu+=(-m "$MEMORY" -smp "$SMP" -nographic -no-reboot
		-kernel "$vmlinuz" -initrd "$TMP/initrd.cpio.gz"
		-append "console=ttyS0 panic=-1 quiet $KC_VM_KERNEL_ARGS"
		-qmp "unix:$TMP/qmp.sock,server=on,wait=off"
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
		-device virtio-rng-pci)
	for d in "${DISKS[@]}"; do
		qemu+=(-drive "$(vm_qemu_drive "$d" "$DRIVE_OPTS")")
	done
	qemu+=("${QEMU_EXTRA[@]}")

	start=${EPOCHREALTIME/./}
	printf '%s' "$NETNS_MAIN" >"$TMP/netns-main.sh"
	unshare --net --pid --mount --fork --mount-proc --kill-child -- \
		bash "$TMP/netns-main.sh" "$TIMEOUT" "$LOG" "$NETNS_SETUP" "$SETUP_LOG" \
		"${WAIT_PORTS[*]}" "${qemu[@]}" &
	NS_PID=$!
	if [ "$STALL" -gt 0 ]; then
		python3 "$HERE/qemu_watch.py" --log "$LOG" --qmp "$TMP/qmp.sock" --stall "$STALL" \
			--status "$TMP/stall" --name "$(basename "$SCENARIO")" &
		WATCH_PID=$!
	fi
	wait "$NS_PID" || ns_rc=$?
	NS_PID=
	stop_watchdog
	end=${EPOCHREALTIME/./}
	clean_log "$LOG"

	exit_line=$(grep -aoE 'KC-GUEST-EXIT=[0-9]+$' "$LOG" | tail -n 1) || true
	if [ -s "$TMP/stall" ]; then
		rc=$EXIT_TIMEOUT
		report_failure "$(cat "$TMP/stall")" 150
	elif [ -n "$exit_line" ] && grep -aq 'KC-GUEST-END$' "$LOG"; then
		rc=${exit_line#KC-GUEST-EXIT=}
		if [ "$rc" -eq "$EXIT_TIMEOUT" ] && grep -aq '^KC-GUEST-TIMEOUT' "$LOG"; then
			report_failure "the scenario timed out in the guest"
		elif [ "$rc" -ne 0 ]; then
			report_failure "scenario exited with $rc"
		fi
	elif [ "$ns_rc" -eq 124 ] || [ "$ns_rc" -eq 137 ]; then
		rc=$EXIT_TIMEOUT
		report_failure "timed out after ${TIMEOUT}s (QEMU killed)"
	else
		rc=$EXIT_HARNESS
		if grep -aq 'KC-GUEST-SETUP-FAILED' "$LOG"; then
			report_failure "guest setup failed: $(grep -a 'KC-GUEST-SETUP-FAILED' "$LOG" | head -n 1)"
		else
			report_failure "no KC-GUEST-EXIT/KC-GUEST-END markers (namespace/QEMU exit status $ns_rc)"
		fi
	fi
	printf 'run-guest: %s: exit %s, QEMU ran %d.%d s\n' "$(basename "$SCENARIO")" "$rc" \
		$(((end - start) / 1000000)) $(((end - start) / 100000 % 10)) >&2
	if [ "$rc" -eq 0 ] && [ "$LOG_IS_TEMP" = 1 ]; then
		rm -f "$LOG"
		[ -z "$NETNS_SETUP" ] || rm -f "$SETUP_LOG"
	fi
	return "$rc"
}

main "$@"
