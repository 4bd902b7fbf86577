#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The guest harness cannot hang: its stall watchdog (scripts/vm/qemu_watch.py) ends a guest that
# makes no progress within --stall seconds, with the guest's blocked tasks in the log, and
# leaves a guest that works quietly alone.
#   1. run-guest.sh, one guest: a scenario that first prints nothing for 3x the stall limit
#      while it works (CPU, then disk I/O) is not stopped; when it then blocks for good in
#      block I/O (a read from a suspended device-mapper device: state D, no I/O completing, as
#      in a lost virtio request) the watchdog ends it with exit 124, a KC-GUEST-STALL line
#      naming the command (--trace), the sysrq 'w' dump with the blocked task and QEMU's virtio
#      queue state; long before the run's own timeout.
#   2. boot-console.py (the whole-system boots): a guest blocked the same way is ended the
#      same way.
# TAP output. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# 12 s: the guest's heartbeat comes every 5 s, so a stall spans two of them.
STALL=12
W=$(mktemp -d /var/tmp/kc-watchdog.XXXXXX)
trap 'rm -rf "$W"' EXIT
TAP=0
fails=0
check() {	# check DESC COMMAND...
	local desc=$1
	shift
	TAP=$((TAP + 1))
	if "$@"; then echo "ok $TAP - $desc"; else echo "not ok $TAP - $desc"; fails=$((fails + 1)); fi
}
has() { grep -Eq -- "$2" "$1"; }
hasnt() { ! grep -Eq -- "$2" "$1"; }
# seconds since $1 (from date +%s) is at most $2
within() { [ $(($(date +%s) - $1)) -le "$2" ]; }

truncate -s 16M "$W/disk.img"
# busy.sh: quiet for 36 s (3x STALL), but working: bursts of CPU (1-2 s of spinning, then
# 2 s of sleep) for 18 s, then a direct read of 4 MiB (no page cache) every 2 s for 18 s. Every
# 5 s between two heartbeats holds a whole burst or read: work the watchdog sees, at a fraction
# of the host CPU a guest busy all the time costs.
cat >"$W/busy.sh" <<'SH'
end=$(($(date +%s) + 18))
while [ "$(date +%s)" -lt "$end" ]; do
	spin=$(($(date +%s) + 2))
	while [ "$(date +%s)" -lt "$spin" ]; do :; done
	sleep 2
done
end=$(($(date +%s) + 18))
while [ "$(date +%s)" -lt "$end" ]; do
	dd if=/dev/vda of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
	sleep 2
done
echo "KC-OK busy-done"
SH
# blocked.sh: a read that never completes.
cat >"$W/blocked.sh" <<'SH'
dmsetup create stuck --table "0 32768 linear /dev/vda 0"
dmsetup suspend stuck
echo "KC-OK suspended"
dd if=/dev/dm-0 of=/dev/null bs=4k count=1
echo "KC-FAIL the read returned"
SH
# Both in one guest (a boot less), the busy part untraced (--trace prints each command: no
# longer quiet).
{ echo '{ set +x; } 2>/dev/null'; cat "$W/busy.sh"; echo 'set -x'; cat "$W/blocked.sh"; } \
	>"$W/busy-blocked.sh"

# 1. Busy and quiet, then blocked, under run-guest.sh.
start=$(date +%s)
rc=0
"$VM_TOP/scripts/vm/run-guest.sh" --disk "$W/disk.img" --stall "$STALL" --trace --timeout 600 \
	--log "$W/blocked.log" "$W/busy-blocked.sh" 2>"$W/blocked.err" || rc=$?
check "run-guest: a scenario quiet for 3x the stall limit but working is not stopped" \
	has "$W/blocked.log" '^KC-OK busy-done'
check "run-guest: a blocked scenario ends with 124 (got $rc)" [ "$rc" -eq 124 ]
check "run-guest: ... within the watchdog time, not the 600 s timeout ($(($(date +%s) - start)) s)" \
	within "$start" $((3 * STALL + STALL + 90))
check "run-guest: the scenario got as far as the blocking read" has "$W/blocked.log" '^KC-OK suspended'
check "run-guest: a KC-GUEST-STALL line names the command" \
	has "$W/blocked.log" "^KC-GUEST-STALL: busy-blocked.sh: no progress for [0-9]+ s \\(last command: dd if=/dev/dm-0"
check "run-guest: the log holds the guest's blocked tasks (sysrq w)" \
	has "$W/blocked.log" 'sysrq: Show Blocked State'
check "run-guest: ... with the blocked dd in state D" has "$W/blocked.log" 'task:dd +state:D'
check "run-guest: ... and the CPUs' backtraces (sysrq l)" \
	has "$W/blocked.log" 'sysrq: Show backtrace of all active CPUs'
check "run-guest: ... and QEMU's virtio-blk queue state" \
	has "$W/blocked.log" '^KC-GUEST-MONITOR: .*\[virtio-blk\] queue 0: guest avail_idx=[0-9]+ last_avail_idx='
check "run-guest: the error names the stall" has "$W/blocked.err" 'run-guest: KC-GUEST-STALL: busy-blocked.sh'
check "run-guest: the scenario never went on" hasnt "$W/blocked.log" 'KC-FAIL'

# 2. The blocked scenario's guest under boot-console.py, as tests/vm/boot.sh runs whole systems.
kenv=$("$VM_TOP/scripts/vm/fetch-kernel.sh" --quiet)
"$VM_TOP/scripts/vm/mkinitrd.sh" --output "$W/initrd" --disks 1 --timeout 500 \
	--modules "$(sed -n 's/^KEKCRYPT_VM_MODULES=//p' <<<"$kenv")" "$W/blocked.sh"
start=$(date +%s)
rc=0
# shellcheck disable=SC2046 # the machine and drive settings are words
python3 "$VM_TOP/scripts/vm/boot-console.py" --log "$W/console.log" --timeout 600 \
	--done 'KC-NEVER' --stall "$STALL" --qmp "$W/qmp.sock" -- \
	qemu-system-x86_64 $(vm_qemu_machine_args) -m 512 -nographic -no-reboot \
	-kernel "$(sed -n 's/^KEKCRYPT_VM_VMLINUZ=//p' <<<"$kenv")" -initrd "$W/initrd" \
	-append "console=ttyS0 panic=-1 quiet $KC_VM_KERNEL_ARGS" \
	-qmp "unix:$W/qmp.sock,server=on,wait=off" \
	-drive "$(vm_qemu_drive "$W/disk.img")" >"$W/console.out" 2>&1 || rc=$?
check "boot-console: a blocked guest ends with 124 (got $rc)" [ "$rc" -eq 124 ]
check "boot-console: ... within the watchdog time ($(($(date +%s) - start)) s)" \
	within "$start" $((STALL + 90))
check "boot-console: a KC-GUEST-STALL line" has "$W/console.log" '^KC-GUEST-STALL: console.log: no progress for'
check "boot-console: the blocked dd in the log (sysrq w)" has "$W/console.log" 'task:dd +state:D'
check "boot-console: QEMU's virtio-blk queue state" has "$W/console.log" '^KC-GUEST-MONITOR: .*\[virtio-blk\]'
check "boot-console: says so" has "$W/console.out" 'boot-console: KC-GUEST-STALL'
echo "1..$TAP"
VM_DONE=1
[ "$fails" -eq 0 ]
