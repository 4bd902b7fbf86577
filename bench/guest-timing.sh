# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Sourced by the benchmarks' guest scripts (bench/rekey.sh, bench/encrypt.sh copy it into the
# guest as /bench-timing.sh).
# now: milliseconds from /proc/uptime (centiseconds; busybox date has no %N).
now() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 10 * 10#${up#*.} )); }
# timed NAME COMMAND...: run COMMAND (its output discarded); "BENCH NAME MS" on success, its
# errors and "BENCH-FAILED NAME" (exit 1) on failure.
timed() {
	name=$1; shift
	t0=$(now)
	"$@" >/dev/null 2>/tmp/err || { cat /tmp/err; echo "BENCH-FAILED $name"; exit 1; }
	t1=$(now)
	echo "BENCH $name $((t1 - t0))"  # ms
}
