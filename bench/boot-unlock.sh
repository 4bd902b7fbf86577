#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: boot-time unlock of a kekcrypt root disk and data disk (Azure Key Vault fixture,
# managed identity), in the emulated Debian 12 guests of tests/vm/boot.sh, both ways:
# initramfs-tools + kekcrypt-keyscript ("up") and dracut + systemd-cryptsetup + the token
# plugin ("dracut-up"). For each of RUNS unattended boots of each, from the guest's console
# log: when the kernel started the initramfs (its "Run /init" line), when the unlock started
# (the keyscript, or systemd-cryptsetup@root), when root was unlocked (the keyscript's or
# the plugin's "unlocked after ... s since boot") and when data was; then the medians. Not
# a test: nothing here asserts a time.
#
# Caveats: the guests are software-emulated (QEMU TCG, no KVM), so every number is several
# times what a real VM sees; the KMS is a local Node.js fixture, so the network part is
# DHCP on QEMU's user network plus loopback round trips, not a cloud KMS's latency. The
# dracut guest unlocks data after switch-root, the initramfs-tools one in the initramfs.
#
# Usage: bench/boot-unlock.sh [RUNS]   (from a built source tree, as root; default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
logs=$(mktemp -d /var/tmp/kekcrypt-bench-boot.XXXXXX)
trap 'rm -rf "$logs"' EXIT

scenarios=()
for _ in $(seq "$runs"); do scenarios+=(up dracut-up); done
KC_BOOT_LOGS=$logs tests/vm/boot.sh "${scenarios[@]}" >"$logs/tap" 2>&1 ||
	{ tail -n 30 "$logs/tap"; echo "boot-unlock.sh: the boot test failed" >&2; exit 1; }

printf '%-16s %12s %14s %14s %14s\n' run "initramfs at" "unlock start" "root unlocked" "data unlocked"
for f in "$logs"/up-*.log "$logs"/dracut-up-*.log; do
	awk -v run="$(basename "$f" .log)" '
		function stamp() { match($0, /\[ *[0-9.]+\]/); return substr($0, RSTART + 1, RLENGTH - 2) + 0 }
		function since() { match($0, /, [0-9.]+ s since boot/); return substr($0, RSTART + 2) + 0 }
		/Run \/init as init process/ && !init { init = stamp() }
		# initramfs-tools: the keyscript logs both volumes by name and when it started.
		/kekcrypt: root: unlocked after/ {
			root = since(); match($0, /started at [0-9.]+ s/); start = substr($0, RSTART + 11) + 0 }
		/kekcrypt: data: unlocked after/ { data = since() }
		# dracut: systemd starts systemd-cryptsetup@root; the plugin logs root, then data.
		/systemd\[1\]: Starting systemd-cryptsetup@root.service/ && !start { start = stamp() }
		/systemd-cryptsetup\[[0-9]+\]: kekcrypt: .*: unlocked after/ {
			if (!root) root = since(); else if (!data) data = since() }
		END { printf "%-16s %11.2fs %13.2fs %13.2fs %13.2fs\n", run, init, start, root, data }' "$f"
done | tee "$logs/table"
for way in up dracut-up; do
	awk -v way="$way" '$1 ~ "^" way "-[0-9]+$" { n++; i[n] = $2 + 0; k[n] = $3 + 0; r[n] = $4 + 0 }
		function med(a, n,   j, t, m, x) {
			for (x = 1; x <= n; x++) t[x] = a[x]
			for (x = 2; x <= n; x++) { m = t[x]; for (j = x - 1; j > 0 && t[j] > m; j--) t[j + 1] = t[j]; t[j + 1] = m }
			return n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2 }
		END {
			for (x = 1; x <= n; x++) { a[x] = r[x] - i[x]; b[x] = r[x] - k[x] }
			printf "%s: median over %d boots: initramfs start -> root unlocked %.2f s (of which %.2f s from the unlock start: network + KMS unwrap + keyslot); root unlocked at %.2f s after the kernel started\n",
				way == "up" ? "initramfs-tools + keyscript" : "dracut + systemd-cryptsetup + plugin", n, med(a, n), med(b, n), med(r, n)
		}' "$logs/table"
done
echo "(QEMU TCG emulation and a local KMS fixture: compare runs with each other, not with real hardware)"
