#!/bin/bash
# Bench: boot-time unlock of a kekcrypt root disk and data disk (Azure Key Vault fixture,
# managed identity), in the emulated Debian 12 guest of tests/vm/boot.sh. For each of RUNS
# unattended boots, from the guest's console log: when the kernel started the initramfs
# (its "Run /init" line), when kekcrypt-keyscript started and unlocked root, and when data
# was unlocked; then the medians. Not a test: nothing here asserts a time.
#
# Caveats: the guest is software-emulated (QEMU TCG, no KVM), so every number is several
# times what a real VM sees; the KMS is a local Node.js fixture, so the network part is
# DHCP on QEMU's user network plus loopback round trips, not a cloud KMS's latency.
#
# Usage: bench/boot-unlock.sh [RUNS]   (from a built source tree, as root; default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
logs=$(mktemp -d /var/tmp/kekcrypt-bench-boot.XXXXXX)
trap 'rm -rf "$logs"' EXIT

scenarios=()
for _ in $(seq "$runs"); do scenarios+=(up); done
KC_BOOT_LOGS=$logs tests/vm/boot.sh "${scenarios[@]}" >"$logs/tap" 2>&1 ||
	{ tail -n 30 "$logs/tap"; echo "boot-unlock.sh: the boot test failed" >&2; exit 1; }

printf '%-6s %12s %14s %14s %14s\n' run "initramfs at" "keyscript at" "root unlocked" "data unlocked"
for f in "$logs"/up-*.log; do
	awk -v run="$(basename "$f" .log)" '
		/Run \/init as init process/ && !init { gsub(/[][]/, "", $1); init = $1 + 0 }
		/kekcrypt: root: unlocked after/ {
			match($0, /, [0-9.]+ s since boot/); root = substr($0, RSTART + 2) + 0
			match($0, /started at [0-9.]+ s/); ks = substr($0, RSTART + 11) + 0 }
		/kekcrypt: data: unlocked after/ {
			match($0, /, [0-9.]+ s since boot/); data = substr($0, RSTART + 2) + 0 }
		END { printf "%-6s %11.2fs %13.2fs %13.2fs %13.2fs\n", run, init, ks, root, data }' "$f"
done | tee "$logs/table"
awk 'NR > 0 { i[NR] = $2 + 0; k[NR] = $3 + 0; r[NR] = $4 + 0; d[NR] = $5 + 0 }
	function med(a, n,   j, t, m, x) {
		for (x = 1; x <= n; x++) t[x] = a[x]
		for (x = 2; x <= n; x++) { m = t[x]; for (j = x - 1; j > 0 && t[j] > m; j--) t[j + 1] = t[j]; t[j + 1] = m }
		return n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2 }
	END {
		n = NR
		for (x = 1; x <= n; x++) { a[x] = r[x] - i[x]; b[x] = r[x] - k[x] }
		printf "median over %d boots: initramfs start -> root unlocked %.2f s (network up + KMS unwrap + keyslot: %.2f s in the keyscript); root unlocked at %.2f s after the kernel started\n", n, med(a, n), med(b, n), med(r, n)
	}' "$logs/table"
echo "(QEMU TCG emulation and a local KMS fixture: compare runs with each other, not with real hardware)"
