#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: `kekcrypt encrypt` (in place, issue 14) against `cryptsetup reencrypt --encrypt`
# (the same cipher aes-xts-plain64/512 bits, the same 16 MiB header in front and 32 MiB of
# room at the end: --reduce-device-size 32M, resilience datashift) on four copies of one
# 80 MiB disk holding a 48 MiB ext4 filesystem with 30 MiB of files, in one QEMU guest boot (real
# dm-crypt, software emulation: absolute numbers mean little, ratios do). Offline, and online
# (kekcrypt encrypt DEVICE NAME; cryptsetup reencrypt --encrypt --init-only DEVICE NAME, then
# --resume-only). Each encrypted filesystem is checked (e2fsck -fn) through its mapping.
# Prints times, MiB/s of the device and the ratios. Not a test.
# Usage: bench/encrypt.sh   (from a built tree, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/vm/lib.sh

vm_setup
head -c 32 /dev/urandom >"$VM_WORK/kek/a.bin" && chmod 600 "$VM_WORK/kek/a.bin"
mkdir "$VM_WORK/tree"
for i in $(seq 1 30); do
	head -c $((1 << 20)) /dev/urandom >"$VM_WORK/tree/f$i"
done
mke2fs -q -t ext4 -d "$VM_WORK/tree" "$VM_WORK/src.img" 48M
truncate -s 80M "$VM_WORK/src.img"
for d in a b c d; do cp --sparse=always "$VM_WORK/src.img" "$VM_WORK/$d.img"; done

cat >"$VM_WORK/bench.sh" <<'SH'
set -eu
. /bench-timing.sh
fsck_on() { e2fsck -fn "/dev/mapper/$1" >/dev/null 2>&1 || { echo "BENCH-FAILED fsck $1"; exit 1; }; }
kek=file:$KEK_DIR/a.bin
mkdir -p /var/lib/kekcrypt	# encrypt's state directory (the guest's root is a ramfs)
printf bench-passphrase >/run/pass
cs="--type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -c aes-xts-plain64 -s 512
	--reduce-device-size 32M --key-file /run/pass"

timed kekcrypt-offline kekcrypt encrypt /dev/vda --kek "$kek"
kekcrypt open /dev/vda a >/dev/null && fsck_on a && kekcrypt close a
# shellcheck disable=SC2086 # $cs: the options, word-split
timed cryptsetup-offline cryptsetup reencrypt -q --encrypt $cs /dev/vdb
cryptsetup open --key-file /run/pass /dev/vdb b && fsck_on b && cryptsetup close b

timed kekcrypt-online kekcrypt encrypt /dev/vdc c --kek "$kek"
fsck_on c && kekcrypt close c
online_cs() {
	# shellcheck disable=SC2086
	cryptsetup reencrypt -q --encrypt --init-only $cs /dev/vdd d &&
		cryptsetup reencrypt -q --resume-only --key-file /run/pass /dev/vdd
}
timed cryptsetup-online online_cs
fsck_on d && cryptsetup close d
echo BENCH-DONE
SH

log=$VM_WORK/bench.log
vm_run "$VM_WORK/bench.sh" --log "$log" --timeout 900 --memory 1024 \
	--disk "$VM_WORK/a.img" --disk "$VM_WORK/b.img" --disk "$VM_WORK/c.img" \
	--disk "$VM_WORK/d.img" --file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" \
	--file "$PWD/bench/guest-timing.sh:/bench-timing.sh" >/dev/null
grep -q '^BENCH-DONE' "$log" || { tail -n 40 "$log"; exit 1; }

awk '/^BENCH [a-z]/ { ms[$2] = $3 }
END {
	mib = 80
	for (n in ms)
		printf "%-22s %7.2f s  %6.2f MiB/s\n", n, ms[n] / 1000, mib / (ms[n] / 1000)
	printf "\nratio kekcrypt/cryptsetup (time, <1 is faster):\n"
	printf "  offline: %.2f\n", ms["kekcrypt-offline"] / ms["cryptsetup-offline"]
	printf "  online:  %.2f\n", ms["kekcrypt-online"] / ms["cryptsetup-online"]
}' "$log"
