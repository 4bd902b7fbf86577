#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job, end to end, on a fresh Debian 12 machine (as root; about 7 minutes on 2 CPUs,
# most of it three emulated boots of about 100 s each; the first run also installs the
# dependencies, builds kekcrypt and debootstraps the Debian root, which is cached after):
#   1. install the dependencies, build kekcrypt and its Debian packages;
#   2. a key vault reached over HTTPS (the Azure Key Vault fixture, with its managed-identity
#      token endpoint) holding two RSA keys that never leave it;
#   3. provision a VM: a Debian 12 root with kekcrypt installed from the packages with apt
#      (their maintainer scripts build the initramfs), whose root and data disks are
#      encrypted in place under the vault's key kek-rsa (the root by kekcrypt-encrypt-root, as
#      an OS disk is: crypttab and the initramfs set up in it first), with a recovery key each;
#   4. boot it in QEMU (TCG), unattended: the initramfs unlocks both disks through the vault;
#   5. rotate the KEK to the vault's other key (`kekcrypt kek rotate --to`): the tokens
#      change, the data key and the data do not;
#   6. boot again: unlocked unattended through the new key;
#   7. boot with the vault unreachable: after the deadline the recovery prompt comes, the
#      recovery keys are typed on the console and the boot completes.
# Each step says how long it took; the last lines say what was proved. The VM's steps are
# scripts/vm/boot-lib.sh's, which tests/vm/boot.sh checks in detail.
# KC_DEBS=DIR: use the packages scripts/build-debs.sh built there instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
VM_TOP=$PWD
# debs, root_*, disks_encrypt, host_ns, boot_start, boot_wait
# shellcheck source=vm/boot-lib.sh
. "$VM_TOP/scripts/vm/boot-lib.sh"
# Under /var/tmp, not /tmp (large images).
W=$(mktemp -d /var/tmp/kekcrypt-demo.XXXXXX)
trap 'rm -rf "$W"' EXIT
die() { echo "demo: FAILED: $*" >&2; exit 1; }

# step TITLE: end the step before (its time), start the next.
names=()
secs=()
step_name=
step_t0=
step_end() {
	[ -n "$step_name" ] || return 0
	names+=("$step_name")
	secs+=($((SECONDS - step_t0)))
	printf '   (%s s)\n' $((SECONDS - step_t0))
	step_name=
}
step() {
	step_end
	step_name=$*
	step_t0=$SECONDS
	printf '\n\033[1m== %s\033[0m\n' "$*"
}
# console NAME REGEX: the lines of boot NAME's console matching REGEX.
console() { tr -d '\r' <"$W/$1.log" | grep -aE -- "$2" || :; }
# seen NAME REGEX: the console of boot NAME has REGEX, or the demo stops there.
seen() {
	grep -aEq -- "$2" "$W/$1.log" ||
		{ tr -d '\r' <"$W/$1.log" | grep -av '^$' | tail -n 30; die "boot $1: no '$2' on the console"; }
}
# boot NAME FIXTURE-ARGS|down [boot-console.py options...]: boot the VM, wait for it; it must
# reach multi-user with both disks mounted from their mappings (and the data disk's file).
boot() {
	local rc
	boot_start "$@"
	rc=$(boot_wait "$1")
	[ "$rc" = 0 ] || { tr -d '\r' <"$W/$1.log" | grep -av '^$' | tail -n 30; cat "$W/$1.seen"
		die "boot $1 did not complete (exit $rc)"; }
	seen "$1" "KC-BOOT-OK root=/dev/mapper/root data=/dev/mapper/data marker=data-disk-$uuid_data"
	console "$1" 'KC-BOOT-OK'
}

step "1. dependencies, kekcrypt built, its Debian packages built"
scripts/install-deps.sh
[ -x configure ] || ./autogen.sh >/dev/null
[ -f Makefile ] || ./configure -q --enable-werror
make -j"$(nproc)" >/dev/null
KEKCRYPT=$VM_TOP/kekcrypt
"$KEKCRYPT" --version
debs
ls "$DEBS"/*.deb

# The VM: variant initramfs-tools (cryptsetup-initramfs with kekcrypt's keyscript).
V=initramfs-tools
D=$W/vm
ROOT=$D/root
mkdir "$D"
URI2=${URI%/kek-rsa}/kek-rsa-2
FIXTURE_ARGS="--rsa-key kek-rsa-2"
kek=$URI
uuid_root=
uuid_data=

step "2. provision the VM: Debian 12 root, kekcrypt from the packages, disks under $kek"
tests/fixtures/tls.sh "$W/tls" IP:10.0.2.2 >/dev/null
"$VM_TOP/scripts/vm/debian-root.sh" --variant "$V" "$ROOT"
root_kms_conf
echo "kekcrypt.conf of the VM (the vault's CA, managed identity at the metadata endpoint):"
sed 's/^/    /' "$ROOT/etc/kekcrypt/kekcrypt.conf"
root_headers
root_config
echo "crypttab of the VM:"
sed 's/^/    /' "$ROOT/etc/crypttab"
root_install_debs
grep -E '^(Setting up kekcrypt|update-initramfs: Generating)' "$D/initramfs.log" | sed 's/^/    /'
disks_encrypt
echo "kekcrypt-encrypt-root on the root disk:"
grep '^kekcrypt-encrypt-root: ' "$D/encrypt-root.log" | sed 's/^/    /'
# The data disk's file is on it in plain before, nowhere after.
! grep -qa "data-disk-$uuid_data" "$D/data.img" || die "the data disk holds its file in plain"
echo "the data disk's file (data-disk-$uuid_data) is nowhere on it in plain"
host_ns "k kek list $D/root.img" || die "listing root's KEKs failed"
echo "root disk: $(du -h --apparent-size "$D/root.img" | cut -f1), data disk: $(du -h --apparent-size "$D/data.img" | cut -f1), encrypted in place"

step "3. boot the VM unattended, the vault up"
boot up "" --mark "kekcrypt: /dev/vda: token 0: unlocked"
console up 'kekcrypt: /dev/vd[ab]: token 0: unlocked'
console up 'KC-DOCTOR: '
seen up "kekcrypt: /dev/vda: token 0: unlocked after 1 attempt.*/keys/kek-rsa\\)"
seen up "kekcrypt: /dev/vdb: token 0: unlocked after 1 attempt.*/keys/kek-rsa\\)"
seen up "KC-DOCTOR: root \\(UUID=$uuid_root\\): ok"
seen up "KC-DOCTOR: data \\(UUID=$uuid_data\\): ok"

step "4. rotate the KEK of both disks to the vault's other key, $URI2"
host_ns "k kek rotate $D/root.img --to $URI2
k kek rotate $D/data.img --to $URI2
k verify $D/root.img
k kek list $D/root.img" || die "kek rotate failed"

step "5. boot again, unattended, through the new key"
boot rotated "" --mark "kekcrypt: /dev/vda: token 0: unlocked"
console rotated 'kekcrypt: /dev/vd[ab]: token 0: unlocked'
seen rotated "kekcrypt: /dev/vda: token 0: unlocked after 1 attempt.*/keys/kek-rsa-2\\)"
seen rotated "kekcrypt: /dev/vdb: token 0: unlocked after 1 attempt.*/keys/kek-rsa-2\\)"

step "6. boot with the vault unreachable: the recovery prompt, answered with the recovery keys"
echo "(the recovery keys kekcrypt recovery add gave at provisioning are typed at the prompts)"
boot down down --mark "$KS_GAVEUP 12 s" \
	--answer "$PROMPT_ROOT=$D/rec-root.typed-sd" \
	--answer "$PROMPT_DATA=$D/rec-data.typed-keyscript"
console down "$KS_GAVEUP|kekcrypt: (root|data): not unlocked|$PROMPT_ROOT|$PROMPT_DATA|: set up successfully"
echo "what the driver saw on the console, in seconds since QEMU started:"
sed 's/^/    /' "$W/down.seen"
seen down "$KS_GAVEUP 12 s .*device '/dev/vda'"
seen down "$PROMPT_ROOT"
seen down 'root: set up successfully'
console down 'KC-DOCTOR: '
step_end

printf '\n\033[1m== proved\033[0m\n'
cat <<MSG
- kekcrypt's Debian packages installed with apt into a Debian 12 root built the initramfs
  (initramfs-tools, cryptsetup-initramfs, kekcrypt's hook and keyscript);
- the VM's root and data disks were encrypted in place under an RSA key of a key vault
  reached over HTTPS with a managed identity, with a recovery key each (the data disk's file
  is no longer on it in plain);
- the VM booted unattended in QEMU: the initramfs brought the network up, unwrapped both
  data keys through the vault and mounted root and data (kekcrypt doctor in it: both ok);
- the KEK was rotated to another key of the vault without touching the data, and the next
  boot unlocked both disks, unattended, through the new key, the data disk's file intact;
- with the vault unreachable the boot waited out root's 12 s deadline, asked for the
  recovery key, and completed once the recovery keys were typed on the console.
MSG
printf '\n\033[1m== time per step\033[0m\n'
for i in "${!names[@]}"; do
	printf '%5d s  %s\n' "${secs[$i]}" "${names[$i]}"
done
printf '%5d s  in all\n' "$SECONDS"
