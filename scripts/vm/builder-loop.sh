#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run the boot test's builder step (tests/vm/boot.sh: open two kekcrypt volumes in the guest and
# dd an ext4 image through dm-crypt onto each) N times in a row, and count the runs that
# complete, stall (the harness's stall watchdog fired) or fail otherwise. Used to find and
# prove the guest configuration that does not lose block I/O (scripts/vm/README.md, "Stalls").
#
# Usage: scripts/vm/builder-loop.sh [options] [RUNS]      (default 20 runs; needs root)
#   --memory MB        guest memory (default: run-guest.sh's)
#   --smp N            guest CPUs (default: run-guest.sh's)
#   --machine TYPE     QEMU machine type (default: run-guest.sh's)
#   --drive-opts OPTS  extra -drive options for every disk, e.g. cache=none,aio=native
#   --dd-args ARGS     dd options for the copy (default "bs=4M conv=fsync", as boot.sh had)
#   --stall SECONDS    the watchdog's limit (default: run-guest.sh's)
#   --qemu-arg ARG     extra QEMU argument (repeatable), e.g. -global, virtio-blk-pci.ioeventfd=off
#   --fresh            before every run, copy a few hundred MiB of the host's /usr into a
#                      directory, make the ext4 image from it and delete the copy, as
#                      boot.sh does (the host is busy writing back when the guest starts)
#   --keep DIR         keep the console logs of every run in DIR
# Prints one line per run ("run 3: ok 41.2 s", "run 4: STALL ...") and a summary line
# "builder-loop: R runs, C complete, S stalled, F failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
RUNS=20
GUEST_ARGS=()
DD_ARGS="bs=4M conv=fsync"
KEEP=
FRESH=0

die() { echo "builder-loop: error: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	--memory | --smp | --machine | --drive-opts | --stall | --qemu-arg)
		[ $# -ge 2 ] || die "$1 needs an argument"
		GUEST_ARGS+=("$1" "$2")
		shift 2
		;;
	--dd-args) [ $# -ge 2 ] || die "$1 needs an argument"; DD_ARGS=$2; shift 2 ;;
	--keep) [ $# -ge 2 ] || die "$1 needs an argument"; KEEP=$2; shift 2 ;;
	--fresh) FRESH=1; shift ;;
	-*) die "unknown option '$1'" ;;
	*) RUNS=$1; shift ;;
	esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[ -x "$TOP/.libs/kekcrypt" ] || die "build kekcrypt first (make)"
[ -z "$KEEP" ] || mkdir -p "$KEEP"

W=$(mktemp -d /var/tmp/kc-builder-loop.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -m 700 "$W/etc"
head -c 32 /dev/urandom >"$W/etc/kek.bin"
chmod 600 "$W/etc/kek.bin"
echo "# file KEKs need no credentials" >"$W/etc/kekcrypt.conf"
chmod 600 "$W/etc/kekcrypt.conf"
k() { LD_LIBRARY_PATH="$TOP/.libs" "$TOP/.libs/kekcrypt" "$@" --config "$W/etc/kekcrypt.conf"; }

# The same sizes as boot.sh: a 640 MiB root volume holding a 600 MiB ext4 image, a 64 MiB data
# volume holding a 40 MiB one. The root image is filled from the host's /usr (about 420 MiB of
# real files, as a Debian root would be).
truncate -s 640M "$W/root.img"
truncate -s 64M "$W/data.img"
k format -q "$W/root.img" --kek "file:$W/etc/kek.bin" --label kc-root
k format -q "$W/data.img" --kek "file:$W/etc/kek.bin" --label kc-data
make_root_image() {
	rm -rf "$W/root-dir" "$W/root.ext4"
	mkdir "$W/root-dir"
	cp -a /usr/lib/gcc /usr/share/doc /usr/lib/python3 "$W/root-dir/"
	mke2fs -q -t ext4 -d "$W/root-dir" -L root "$W/root.ext4" 600M >/dev/null
	rm -rf "$W/root-dir"
}
make_root_image
mkdir "$W/data-dir"
echo data >"$W/data-dir/marker"
mke2fs -q -t ext4 -d "$W/data-dir" -L data "$W/data.ext4" 40M
rm -rf "$W/data-dir"

cat >"$W/builder.sh" <<SH
set -eu
kekcrypt open /dev/vda root
dd if=/dev/vdc of=/dev/mapper/root $DD_ARGS 2>/dev/null
kekcrypt close root
kekcrypt open /dev/vdb data
dd if=/dev/vdd of=/dev/mapper/data $DD_ARGS 2>/dev/null
kekcrypt close data
echo "KC-OK written"
SH

ok=0 stalled=0 failed=0
for i in $(seq "$RUNS"); do
	log="$W/run-$i.log"
	[ "$FRESH" = 0 ] || make_root_image
	start=$(date +%s.%N)
	rc=0
	LD_LIBRARY_PATH="$TOP/.libs" "$HERE/run-guest.sh" --log "$log" --timeout 900 --trace \
		--bin "$TOP/.libs/kekcrypt:/bin/kekcrypt" \
		--file "$W/etc:/etc/kekcrypt" --file "$W/etc/kek.bin:$W/etc/kek.bin" \
		--disk "$W/root.img" --disk "$W/data.img" --disk "$W/root.ext4" --disk "$W/data.ext4" \
		"${GUEST_ARGS[@]}" "$W/builder.sh" >"$W/run-$i.out" 2>&1 || rc=$?
	t=$(echo "$(date +%s.%N) - $start" | bc)
	if [ "$rc" -eq 0 ] && grep -q '^KC-OK written' "$log"; then
		ok=$((ok + 1))
		printf 'run %d: ok %.1f s\n' "$i" "$t"
	elif grep -q '^KC-GUEST-STALL' "$log"; then
		stalled=$((stalled + 1))
		printf 'run %d: STALL after %.1f s: %s\n' "$i" "$t" "$(grep -m1 '^KC-GUEST-STALL' "$log")"
	else
		failed=$((failed + 1))
		printf 'run %d: FAILED (exit %d) after %.1f s\n' "$i" "$rc" "$t"
		tail -n 5 "$W/run-$i.out" | sed 's/^/    /'
	fi
	[ -z "$KEEP" ] || cp "$log" "$W/run-$i.out" "$KEEP/"
done
echo "builder-loop: $RUNS runs, $ok complete, $stalled stalled, $failed failed"
[ "$ok" -eq "$RUNS" ]
