#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: `kekcrypt rekey` against `cryptsetup reencrypt` (new volume key, same cipher
# aes-xts-plain64/512 bits, checksum resilience) on the same 64 MiB device, in the same QEMU
# guest boot (real dm-crypt, software emulation: absolute numbers mean little, ratios do).
# Online (mapping open) and offline. kekcrypt uses 8 MiB chunks; cryptsetup is measured with
# --hotzone-size 8M and with its default. Prints times, MiB/s and ratios. Not a test.
# Usage: bench/rekey.sh   (from a built tree, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/vm/lib.sh

vm_setup
head -c 32 /dev/urandom >"$VM_WORK/kek/a.bin" && chmod 600 "$VM_WORK/kek/a.bin"
truncate -s 80M "$VM_WORK/v.img"
kc_host format -q "$VM_WORK/v.img" --kek "file:$VM_WORK/kek/a.bin" >/dev/null

cat >"$VM_WORK/bench.sh" <<'SH'
set -eu
. /bench-timing.sh
fill() { dd if=/dev/urandom of=/dev/mapper/v bs=1M count=64 conv=fsync 2>/dev/null; }

kekcrypt open /dev/vda v >/dev/null
fill
timed kekcrypt-online kekcrypt rekey /dev/vda
kekcrypt close v
timed kekcrypt-offline kekcrypt rekey /dev/vda

printf bench-passphrase >/run/pass
cs_format() {
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		-c aes-xts-plain64 -s 512 --key-file /run/pass /dev/vda
}
cs_format
cryptsetup open --key-file /run/pass /dev/vda v
fill
timed cryptsetup-online-8M cryptsetup reencrypt -q --key-file /run/pass \
	--resilience checksum --hotzone-size 8M /dev/vda
timed cryptsetup-online-default cryptsetup reencrypt -q --key-file /run/pass \
	--resilience checksum /dev/vda
cryptsetup close v
timed cryptsetup-offline-8M cryptsetup reencrypt -q --key-file /run/pass \
	--resilience checksum --hotzone-size 8M /dev/vda
timed cryptsetup-offline-default cryptsetup reencrypt -q --key-file /run/pass \
	--resilience checksum /dev/vda
echo BENCH-DONE
SH

log=$VM_WORK/bench.log
vm_run "$VM_WORK/bench.sh" --log "$log" --timeout 900 --memory 1024 --disk "$VM_WORK/v.img" \
	--file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" \
	--file "$PWD/bench/guest-timing.sh:/bench-timing.sh" >/dev/null
grep -q '^BENCH-DONE' "$log" || { tail -n 40 "$log"; exit 1; }

awk '/^BENCH [a-z]/ { ns[$2] = $3 * 1e6 }
END {
	mib = 64
	for (n in ns)
		printf "%-28s %7.2f s  %6.2f MiB/s\n", n, ns[n] / 1e9, mib / (ns[n] / 1e9)
	printf "\nratio kekcrypt/cryptsetup (time, <1 is faster):\n"
	printf "  online,  8 MiB hotzone:  %.2f\n", ns["kekcrypt-online"] / ns["cryptsetup-online-8M"]
	printf "  online,  cryptsetup default hotzone: %.2f\n",
		ns["kekcrypt-online"] / ns["cryptsetup-online-default"]
	printf "  offline, 8 MiB hotzone:  %.2f\n", ns["kekcrypt-offline"] / ns["cryptsetup-offline-8M"]
	printf "  offline, cryptsetup default hotzone: %.2f\n",
		ns["kekcrypt-offline"] / ns["cryptsetup-offline-default"]
}' "$log"
