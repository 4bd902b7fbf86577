#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: `kekcrypt open` + `close` against `cryptsetup open` + `close` in the same QEMU guest
# boot (real dm-crypt): kekcrypt with a file KEK and with a SoftHSM2 KEK; cryptsetup with a
# passphrase under LUKS2 defaults (argon2id, benchmarked in the guest) and under PBKDF2-1000.
# Prints medians and ratios. Not a test: nothing is asserted about time.
# Usage: bench/open-close.sh [ITERATIONS]   (from a built tree, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/vm/lib.sh
iters=${1:-15}

vm_setup
head -c 32 /dev/urandom >"$VM_WORK/kek/a.bin" && chmod 600 "$VM_WORK/kek/a.bin"
for d in file p11 argon pbkdf2; do truncate -s 64M "$VM_WORK/$d.img"; done
kc_host format -q "$VM_WORK/file.img" --kek "file:$VM_WORK/kek/a.bin"
kc_host format -q "$VM_WORK/p11.img" --kek "$P11_URI"

cat >"$VM_WORK/bench.sh" <<SH
set -eu
printf bench-passphrase >/run/pass
# LUKS2 defaults are benchmarked here, in the guest, as a user's cryptsetup would.
cryptsetup luksFormat -q --type luks2 /dev/vdc /run/pass
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/vdd /run/pass
now() { date +%s%N; }
run() {
	name=\$1; shift
	i=0
	while [ \$i -lt $iters ]; do
		t0=\$(now)
		"\$@" >/dev/null
		t1=\$(now)
		echo "BENCH \$name \$((t1 - t0))"
		i=\$((i + 1))
	done
}
run kekcrypt-file sh -c 'kekcrypt open /dev/vda b && kekcrypt close b'
run kekcrypt-softhsm2 sh -c 'kekcrypt open /dev/vdb b && kekcrypt close b'
run cryptsetup-argon2id sh -c 'cryptsetup open --key-file /run/pass /dev/vdc b && cryptsetup close b'
run cryptsetup-pbkdf2-1000 sh -c 'cryptsetup open --key-file /run/pass /dev/vdd b && cryptsetup close b'
SH
log=$VM_WORK/bench.log
vm_run "$VM_WORK/bench.sh" --bin /usr/bin/date --memory 1024 --timeout 1200 --log "$log" \
	--disk "$VM_WORK/file.img" --disk "$VM_WORK/p11.img" --disk "$VM_WORK/argon.img" \
	--disk "$VM_WORK/pbkdf2.img" --file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" >/dev/null
python3 - "$log" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1], errors="replace"):
    p = line.split()
    if len(p) == 3 and p[0] == "BENCH":
        runs.setdefault(p[1], []).append(int(p[2]) / 1e6)
base = statistics.median(runs["cryptsetup-argon2id"])
print(f"open+close in one QEMU (TCG) guest boot, {len(runs['kekcrypt-file'])} iterations each")
print(f"{'':26} {'median ms':>10} {'vs cryptsetup argon2id':>24}")
for name, ms in runs.items():
    m = statistics.median(ms)
    print(f"{name:26} {m:10.1f} {m / base:23.3f}x")
PY
