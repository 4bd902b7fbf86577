#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench: whole-process cost of `kekcrypt verify` (file KEK and SoftHSM2 AES KEK) and of stock
# `cryptsetup open --test-passphrase --token-only` through the token plugin, against
# `cryptsetup open --test-passphrase` on the same kind of image (LUKS2 default argon2id and
# PBKDF2-1000 passphrase keyslots), measured in one run. For each command: the median wall
# time (hyperfine), the peak RSS (GNU time's %M, median of 5 runs) and the number of shared
# objects the process loaded (ld.so's "calling init" lines under LD_DEBUG=libs, dlopen()ed
# ones included), each also as a ratio to cryptsetup on the PBKDF2-1000 keyslot (issue 13's
# goal: kekcrypt verify with a file KEK within 1.5x of its time, and at most 8 MiB of RSS).
# Not a test: nothing here asserts a number.
#
# libcryptsetup 2.6 loads token plugins only from its compiled-in directory, so the script runs
# in a private mount namespace where the built plugin is bind-mounted over that directory and
# /etc is an overlay holding the SoftHSM2 policy in /etc/kekcrypt/kekcrypt.conf (the plugin's
# config); the CLI rows are measured before that mount, with the system's token directory.
# Usage: bench/verify.sh [RUNS]   (from a built source tree, as root)
set -euo pipefail
if [ -z "${KC_BENCH_NS:-}" ]; then
	KC_BENCH_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
cd "$(dirname "$0")/.."
runs=${1:-30}
# The real binary, not libtool's wrapper script (which costs a shell per run).
kekcrypt=${KEKCRYPT:-$PWD/.libs/kekcrypt}
plugin=$PWD/.libs/libcryptsetup-token-kekcrypt.so
export LD_LIBRARY_PATH=$PWD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

eval "$(tests/fixtures/softhsm-setup.sh "$work")"
head -c 32 /dev/urandom >"$work/kek" && chmod 600 "$work/kek"
printf 'bench-passphrase' >"$work/pass"
p11="pkcs11:token=kekcrypt-test;object=kek-aes;type=secret-key?module-path=$KC_P11_MODULE&pin-source=file:$KC_P11_PIN_FILE"
# Local policy: the config lets the URI name the SoftHSM2 module and its PIN file.
(umask 077 && printf '[pkcs11]\nallowed-modules = %s\nallowed-pin-files = %s\n' \
	"$KC_P11_MODULE" "$KC_P11_PIN_FILE" >"$work/kc.conf")
for img in file p11 argon pbkdf2; do truncate -s 32M "$work/$img.img"; done
"$kekcrypt" format -q "$work/file.img" --kek "file:$work/kek" >/dev/null
"$kekcrypt" format -q --config "$work/kc.conf" "$work/p11.img" --kek "$p11" >/dev/null
cryptsetup luksFormat -q --type luks2 "$work/argon.img" "$work/pass"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$work/pbkdf2.img" "$work/pass"

names=() cmds=()
row() {
	names+=("$1")
	cmds+=("$2")
}
# bench_rows N: the rows given since the last call: hyperfine's times into $work/rN.json; peak
# RSS (KiB) and shared objects into $work/mem.tsv, one "NAME<TAB>KIB<TAB>COUNT" line each.
bench_rows() {
	local i kib n args=()
	for i in "${!names[@]}"; do
		args+=(-n "${names[i]}" "${cmds[i]}")
		for _ in 1 2 3 4 5; do
			# shellcheck disable=SC2086 # the command line is split as hyperfine -N does
			/usr/bin/time -f %M -o "$work/rss" ${cmds[i]} >/dev/null 2>&1
			cat "$work/rss"
		done | sort -n | sed -n 3p >"$work/kib"
		kib=$(cat "$work/kib")
		rm -f "$work"/ld.*
		# shellcheck disable=SC2086
		LD_DEBUG=libs LD_DEBUG_OUTPUT=$work/ld ${cmds[i]} >/dev/null 2>&1
		n=$(cat "$work"/ld.* | sed -n 's/.*calling init: //p' | sort -u | wc -l)
		printf '%s\t%s\t%s\n' "${names[i]}" "$kib" "$n" >>"$work/mem.tsv"
	done
	hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/r$1.json" "${args[@]}" \
		>/dev/null
	names=() cmds=()
}

row "kekcrypt verify (file KEK)" "$kekcrypt verify $work/file.img"
row "kekcrypt verify (SoftHSM2 AES KEK)" "$kekcrypt verify --config $work/kc.conf $work/p11.img"
row "cryptsetup --test-passphrase (LUKS2 default argon2id)" \
	"cryptsetup open --test-passphrase --key-file $work/pass $work/argon.img"
row "cryptsetup --test-passphrase (pbkdf2-1000)" \
	"cryptsetup open --test-passphrase --key-file $work/pass $work/pbkdf2.img"
bench_rows 1

# The plugin: in libcryptsetup's token directory (private mount), with the policy in /etc.
tokdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
mkdir -m 755 "$work/plugin-dir" "$work/etc-up" "$work/etc-work"
cp "$plugin" "$work/plugin-dir/"
mount --bind "$work/plugin-dir" "$tokdir"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc-up,workdir=$work/etc-work" /etc
# shellcheck disable=SC2174 # -p for a second run; the parent exists
mkdir -p -m 700 /etc/kekcrypt
cp "$work/kc.conf" /etc/kekcrypt/kekcrypt.conf
row "cryptsetup --token-only, plugin (file KEK)" \
	"cryptsetup open --test-passphrase --token-only $work/file.img"
row "cryptsetup --token-only, plugin (SoftHSM2 AES KEK)" \
	"cryptsetup open --test-passphrase --token-only $work/p11.img"
bench_rows 2

python3 - "$work/mem.tsv" "$work/r1.json" "$work/r2.json" <<'PY'
import json, sys
med = {}
for f in sys.argv[2:]:
    med.update({r["command"]: r["median"] * 1000 for r in json.load(open(f))["results"]})
mem = {}
for line in open(sys.argv[1]):
    name, kib, n = line.rstrip("\n").split("\t")
    mem[name] = (int(kib), int(n))
argon = med["cryptsetup --test-passphrase (LUKS2 default argon2id)"]
base = "cryptsetup --test-passphrase (pbkdf2-1000)"
print(f"{'command':52} {'median ms':>9} {'vs argon2id':>11} {'vs pbkdf2':>9}"
      f" {'peak RSS KiB':>12} {'vs pbkdf2':>9} {'shared objs':>11} {'vs pbkdf2':>9}")
for name, ms in med.items():
    kib, n = mem[name]
    print(f"{name:52} {ms:9.2f} {ms / argon:10.3f}x {ms / med[base]:8.3f}x"
          f" {kib:12d} {kib / mem[base][0]:8.3f}x {n:11d} {n / mem[base][1]:8.3f}x")
PY
