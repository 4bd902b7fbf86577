#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot test: a real Debian 12 whose root and data disks are kekcrypt volumes with their KEK in
# the Azure Key Vault fixture, unlocked by initramfs-tools + cryptsetup-initramfs through
# kekcrypt-keyscript, booted in QEMU (TCG) inside a network namespace of this test, where the
# fixture (with its managed-identity endpoint) listens on 127.0.0.1 and the guest reaches it
# at the user-network gateway 10.0.2.2.
#
# Built here: the root (scripts/vm/debian-root.sh, debootstrap cached), kekcrypt installed
# from this tree's Debian packages (scripts/build-debs.sh, or $KC_DEBS: scripts/test.sh builds
# them once) with apt in the chroot after crypttab and fstab, so that the packages' own
# maintainer scripts build the initramfs (update-initramfs with our hook; dracut's trigger
# with our module), and
# the disks: the root and data filesystems made as images, then encrypted in place on the
# host by `kekcrypt encrypt` (offline; libcryptsetup's userspace crypto, no device-mapper),
# which the guests then open through dm-crypt.
# A unit in the booted system runs `kekcrypt doctor` (lines "KC-DOCTOR: ..."), prints
# "KC-BOOT-OK root=... data=..." once multi-user is reached with both disks mounted, then
# powers off. Scenarios:
#   up      KMS up: boots unattended, root through the KMS, data through its file KEK;
#   down    KMS down: root's recovery prompt comes after the deadline (timeout=12 in
#           crypttab); its recovery key typed on the serial console (in mixed case with blanks
#           for the dashes) boots it, while data unlocks with its file KEK, needing no KMS.
# The data disk's KEK is a file in the root filesystem, allowed by [file] allowed-paths of
# kekcrypt.conf and so copied into the initramfs by the hook, which reads the tokens from
# header copies put where the chroot's /dev/disk/by-uuid would have the disks. The image of a
# machine with that volume alone (and a configuration of [file] alone) holds the file and no
# network stack (no libcurl).
# Clones of a template image (issue 14 item 5): that data disk is a template's, marked by
# `kekcrypt template mark` after `kekcrypt encrypt` (no recovery key: a template has none, so
# doctor warns of that and nothing else), kekcrypt-firstboot.service enabled in the root; up
# and down are two clones, each booting with a qcow2 overlay of the one data image that keeps
# its writes. The marker waits for the service, then prints its result, the data disk's mark
# (template show --json) and LUKS2 metadata (luksDump --dump-json-metadata). Each clone's first
# boot re-keys data online (service succeeded, mark none, a LUKS2 digest unlike the template's
# and unlike the other clone's); with both selected each then boots again from its overlay
# (KMS up, unattended):
#   up-again, down-again  data mounted, mark none, the digest its first boot left (firstboot
#                         found nothing to do), doctor as before.
#   (a slow or refusing KMS, a second call, a missing CLI: the keyscript's policy, tested on
#   the host with the same keyscript by tests/host/keyscript.sh)
# Every root's initramfs is built with forged tokens on root's header copy naming a KEK file,
# a PKCS#11 module and a PIN file that exist but that the configuration does not allow: the
# build warns about each and copies none; the image must be mode 0600 (it holds
# kekcrypt.conf), also when it was 0644 before.
# The same with dracut (a second root, scripts/vm/debian-root.sh --variant dracut: dracut and
# initramfs-tools conflict): crypttab without a keyscript, root marked x-initrd.attach, the
# initramfs built by dracut in the chroot with our module (90kekcrypt), so systemd-cryptsetup
# unlocks root in the initramfs and the data disk after switch-root through the token plugin:
#   dracut-up    KMS up: boots unattended (kekcrypt doctor in it: ok);
#   dracut-down  KMS down: the plugin retries until token-timeout=, then systemd-cryptsetup's
#                password prompt takes the recovery keys, typed in upper case without dashes.
# An Azure Disk Encryption VM adopted in place (issue 14 item 7; the image: tests/vm/ade-lib.sh):
#   ade          the VM as ADE left it, its BEK disk attached: the initramfs opens the OS volume
#                (header detached on /boot) with the BEK passphrase, systemd-cryptsetup the data
#                volume with its BEK key file; in it, `kekcrypt adopt --from ade` (the BEK volume
#                found by its label, mounted where only adopt sees it) enrols a token for the
#                fixture's KEK on both, rewrites crypttab and fstab, and the initramfs is built
#                again without ADE's hook;
#   ade-adopted  the same disks, the BEK disk detached: kekcrypt-keyscript unlocks the OS volume
#                through the KMS (the header copied into the image), the token plugin the data
#                volume, unattended; kekcrypt doctor is clean.
# The three roots are prepared side by side, then the boots run two at a time, each on snapshots
# of its variant's disks (a clone's data disk: its overlay; ADE's disks are written by its first
# boot, which the second then boots), and are checked in order.
# The steps themselves (the root, the disks, a boot) are scripts/vm/boot-lib.sh's, which
# scripts/demo.sh shows; this test checks what each did.
# Usage: tests/vm/boot.sh [SCENARIO...]   (default: all; needs root)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck source=../../scripts/vm/boot-lib.sh
. "$VM_TOP/scripts/vm/boot-lib.sh"
# shellcheck source=ade-lib.sh
. "$VM_TOP/tests/vm/ade-lib.sh"

KCLIB=libkekcrypt.so.1	# its soname (LIBKEKCRYPT_VERSION_INFO in configure.ac)
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(ade up down dracut-up dracut-down)
# up and down are two clones of one template (their data disks: overlays of one image); with
# both selected each boots again (up-again, down-again), after both first boots, in their order.
CLONES=()
all=()
for s in "${SCENARIOS[@]}"; do
	all+=("$s")
	case $s in up | down) CLONES+=("$s") ;; esac
	# ade's second boot starts once its first has ended (it boots the disks that one wrote).
	[ "$s" != ade ] || all+=(ade-adopted)
	if [ ${#CLONES[@]} = 2 ] && [ "$s" = "${CLONES[1]}" ]; then
		all+=("${CLONES[0]}-again" "${CLONES[1]}-again")
	fi
done
SCENARIOS=("${all[@]}")
VARIANTS=()
case " ${SCENARIOS[*]} " in *" up "* | *" down "*) VARIANTS+=(initramfs-tools) ;; esac
case " ${SCENARIOS[*]} " in *" dracut-"*) VARIANTS+=(dracut) ;; esac
case " ${SCENARIOS[*]} " in *" ade "*) VARIANTS+=(ade) ;; esac

vm_setup	# VM_WORK, removed on exit
W=$VM_WORK/boot
mkdir "$W"
TAP=0
fails=0
ok() { TAP=$((TAP + 1)); echo "ok $TAP - $*"; }
not_ok() { TAP=$((TAP + 1)); fails=$((fails + 1)); echo "not ok $TAP - $*"; }
step() { echo "# $(date +%T) $*"; }
# (and end the boots still running: every process of theirs names this test's directory)
die() { echo "Bail out! $*"; [ -z "${W:-}" ] || pkill -f "$W/" || :; exit 1; }

# The packages are what is proven to boot (issue 16): those scripts/test.sh built, or built here.
step "kekcrypt: the Debian packages"
debs
echo "# in $DEBS"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
"$VM_TOP/tests/fixtures/tls.sh" "$W/tls" IP:10.0.2.2 >/dev/null

# json_doc_get FILE EXPR: the Python expression EXPR of the JSON document d in FILE.
json_doc_get() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}
# luks_digests FILE: the "digest" values of the LUKS2 digests (they change with the volume key)
# in the metadata FILE (cryptsetup luksDump --dump-json-metadata), sorted, on one line.
luks_digests() {
	json_doc_get "$1" '" ".join(sorted(v["digest"] for v in d["digests"].values()))'
}

# forge HEADER PROVIDER URI: add to the LUKS2 header HEADER a kekcrypt token naming URI
# (bound to keyslot 0, random wrapped key), as anyone who can write the disk could.
forge() {
	python3 -c 'import base64, json, os, sys
print(json.dumps({"type": "kekcrypt", "keyslots": ["0"], "kekcrypt-version": "1",
	"kekcrypt-provider": sys.argv[1], "kekcrypt-key-id": sys.argv[2],
	"kekcrypt-wrap-alg": "A256KWP", "kekcrypt-created": "2026-01-01T00:00:00Z",
	"kekcrypt-wrapped-key": base64.b64encode(os.urandom(72)).decode()}))' "$2" "$3" >"$D/forged.json"
	cryptsetup --disable-external-tokens token import --json-file "$D/forged.json" "$1" ||
		die "cannot add a forged token to $1"
}
# forged_warns TEXT...: the initramfs build warned about root's forged tokens, each TEXT in a
# warning that names root and a token.
forged_warns() {
	local t
	for t in "$@"; do
		# (grep without -q reads to the end: under pipefail, a reader that stops first can
		# fail the writer with SIGPIPE)
		if grep -F "kekcrypt: UUID=$uuid_root: token " "$D/initramfs.log" | grep -F "$t" >/dev/null; then
			ok "$V: the build warned: ...${t#*): }"
		else
			not_ok "$V: the build warned: ...${t#*): }"
			grep -i "kekcrypt" "$D/initramfs.log" | sed 's/^/# /'
		fi
	done
}

# list_image IMAGE OUT: the paths the initramfs IMAGE (a path in $ROOT) holds, one per line.
list_image() {
	if [ "$V" = dracut ]; then
		# lsinitrd lists like ls -l: the path is the last field (or before " -> ").
		chroot "$ROOT" lsinitrd "$1" | sed -e 's/ -> .*//' -e 's/.* //' >"$2"
	else
		chroot "$ROOT" lsinitramfs "$1" >"$2"
	fi
}

# prepare VARIANT: $W/VARIANT/ gets root.img and data.img (kekcrypt volumes holding the
# root filesystem of a Debian 12 with kekcrypt installed and the initramfs of VARIANT, and a
# data filesystem), vmlinuz, initrd.img, the recovery keys rec-root.key and rec-data.key,
# and uuid-root / uuid-data.
prepare() {
local V=$1
local D=$W/$1
local ROOT=$D/root
local kek=$URI kek_data=$URI DATA_TEMPLATE=
mkdir "$D"
step "$V: root filesystem"
"$VM_TOP/scripts/vm/debian-root.sh" --variant "$V" "$ROOT"
step "$V: KMS credentials, disks formatted on the host (fixture in a private namespace)"
root_kms_conf
if [ "$V" = initramfs-tools ]; then
	# The data disk's KEK: a file, at the same path on the host (in host.sh's private /etc)
	# and in the root, allowed by name (the tokens' word is not enough).
	kek_data=file:/etc/kekcrypt/kek.bin
	# And the data disk is a template's, its boots clones (boot-lib.sh).
	DATA_TEMPLATE=yes
	printf '[file]\nallowed-paths = /etc/kekcrypt/kek.bin\n' >>"$ROOT/etc/kekcrypt/kekcrypt.conf"
	(umask 077 && head -c 32 /dev/urandom >"$D/kek.bin")
	cp -p "$D/kek.bin" "$ROOT/etc/kekcrypt/kek.bin"
fi
local uuid_root uuid_data
root_headers
# Forged tokens on root's header copy (anyone who can write a disk can add them) naming a KEK
# file, a PKCS#11 module and a PIN file that exist in the root but that the configuration does
# not allow: the build of the image below warns and copies none of them.
(umask 077 && head -c 32 /dev/urandom >"$ROOT/etc/kekcrypt/forged-kek.bin" &&
	echo 1234 >"$ROOT/etc/kekcrypt/forged.pin")
cp "$ROOT/usr/lib/$MA/libjson-c.so.5" "$ROOT/usr/lib/forged-pkcs11.so"
forge "$ROOT/dev/disk/by-uuid/$uuid_root" file file:/etc/kekcrypt/forged-kek.bin
forge "$ROOT/dev/disk/by-uuid/$uuid_root" pkcs11 \
	"pkcs11:token=forged;object=kek?module-path=/usr/lib/forged-pkcs11.so&pin-source=file:/etc/kekcrypt/forged.pin"

step "$V: crypttab, fstab, the marker unit, the initramfs built in the chroot"
root_config
local kver f want want_entry rc mode had_image=no
kver=$(ls "$ROOT/lib/modules")
# The image the root already has (made when its kernel was installed), readable by all: the
# build must leave it readable by root only, as it holds secrets (kekcrypt.conf, KEK file).
if [ -e "$ROOT/boot/initrd.img-$kver" ]; then
	chmod 644 "$ROOT/boot/initrd.img-$kver"
	had_image=yes
fi
# This image is checked for what our hook and module did (below); the one that boots is
# kekcrypt-encrypt-root's (disks_encrypt), built the distribution's way. So this one leaves
# the kernel's modules out (MODULES=list; dracut's no_kernel): a fraction of a full build.
if [ "$V" = dracut ]; then
	mkdir -p "$ROOT/etc/dracut.conf.d"
	echo 'no_kernel="yes"' >"$ROOT/etc/dracut.conf.d/90-kc-test-lean.conf"
else
	sed -i.kc-full 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
fi
root_install_debs
rm -f "$ROOT/etc/dracut.conf.d/90-kc-test-lean.conf"
[ ! -e "$ROOT/etc/initramfs-tools/initramfs.conf.kc-full" ] ||
	mv "$ROOT/etc/initramfs-tools/initramfs.conf.kc-full" "$ROOT/etc/initramfs-tools/initramfs.conf"
if grep -Eq "^(dracut|update-initramfs): Generating /boot/initrd.img-$kver" "$D/initramfs.log"; then
	ok "$V: apt installed the packages, whose maintainer scripts built the image"
else
	not_ok "$V: apt installed the packages, whose maintainer scripts built the image"
	tail -n 20 "$D/initramfs.log" | sed 's/^/# /'
fi
list_image "/boot/initrd.img-$kver" "$D/initrd1.paths"
# The extra builds below test what our hook and module do, not the kernel modules: they leave
# those out (dracut --no-kernel; mkinitramfs -d with MODULES=list), which makes them a fraction
# of a full build. The image that boots was built above the way the distribution builds it.
if [ "$V" != dracut ]; then
	cp -a "$ROOT/etc/initramfs-tools" "$ROOT/tmp/lean-conf"
	sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/tmp/lean-conf/initramfs.conf"
fi
# A file a volume needs, missing: the build fails and says which (then put back).
local hide=/etc/kekcrypt/ca.pem
mv "$ROOT$hide" "$D/hidden"
if [ "$V" = dracut ]; then
	chroot "$ROOT" dracut --force --no-hostonly --no-kernel --kver "$kver" /tmp/broken.img \
		>"$D/broken.log" 2>&1
else
	chroot "$ROOT" mkinitramfs -d /tmp/lean-conf -o /tmp/broken.img "$kver" >"$D/broken.log" 2>&1
fi && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -Eq "kekcrypt: .*: $hide is missing" "$D/broken.log"; then
	ok "$V: with $hide missing the initramfs build fails and names it"
else
	not_ok "$V: with $hide missing the initramfs build fails and names it (exit $rc)"
	tail -n 5 "$D/broken.log" | sed 's/^/# /'
fi
mv "$D/hidden" "$ROOT$hide"
rm -f "$ROOT/tmp/broken.img"
if [ "$V" = initramfs-tools ]; then
	# The image of a machine whose only volume has a file KEK (data's crypttab line, a
	# configuration of [file] alone), written over an existing one readable by others:
	# mkinitramfs -o keeps an existing file's mode, so the hook makes it readable by root only
	# and says so; it holds the KEK file and no network stack.
	cp "$ROOT/etc/crypttab" "$D/crypttab"
	cp -p "$ROOT/etc/kekcrypt/kekcrypt.conf" "$D/kekcrypt.conf"
	grep '^data ' "$D/crypttab" >"$ROOT/etc/crypttab"
	printf '[file]\nallowed-paths = /etc/kekcrypt/kek.bin\n' >"$ROOT/etc/kekcrypt/kekcrypt.conf"
	install -m 644 /dev/null "$ROOT/tmp/readable.img"
	chroot "$ROOT" mkinitramfs -d /tmp/lean-conf -o /tmp/readable.img "$kver" \
		>"$D/readable.log" 2>&1 ||
		{ tail -n 30 "$D/readable.log"; die "mkinitramfs -o /tmp/readable.img failed"; }
	cp "$D/crypttab" "$ROOT/etc/crypttab"
	cp -p "$D/kekcrypt.conf" "$ROOT/etc/kekcrypt/kekcrypt.conf"
	mode=$(stat -c %a "$ROOT/tmp/readable.img")
	if [ "$mode" = 600 ] && grep -q "^I: kekcrypt: /tmp/readable.img holds .*: made it readable by root only" "$D/readable.log"; then
		ok "$V: an existing image readable by others, written again, is made 0600 and said so"
	else
		not_ok "$V: an existing image readable by others, written again, is made 0600 and said so (mode $mode)"
		grep kekcrypt "$D/readable.log" | sed 's/^/# /'
	fi
	chroot "$ROOT" lsinitramfs /tmp/readable.img >"$D/readable.paths"
	if grep -qx etc/kekcrypt/kek.bin "$D/readable.paths" &&
		! grep -q '/libcurl\.so' "$D/readable.paths"; then
		ok "$V: the data disk's (file KEK) image holds the KEK file and no libcurl"
	else
		not_ok "$V: the data disk's (file KEK) image holds the KEK file and no libcurl"
		grep -E 'kek\.bin|/libcurl\.so' "$D/readable.paths" | sed 's/^/# /'
	fi
	rm -f "$ROOT/tmp/readable.img"
fi
rm -rf "$ROOT/dev/disk"
if grep -q 'cannot read the tokens' "$D/initramfs.log"; then
	not_ok "$V: the initramfs build read the volumes' tokens"
else
	ok "$V: the initramfs build read the volumes' tokens"
fi
# The forged tokens: a warning each, naming the volume, the token's URI and the key.
forged_warns \
	"file:/etc/kekcrypt/forged-kek.bin): KEK file" \
	"forged-pkcs11.so&pin-source=file:/etc/kekcrypt/forged.pin): PKCS#11 module '/usr/lib/forged-pkcs11.so' is not allowed by local policy"
if grep -q forged "$D/initrd1.paths"; then
	not_ok "$V: none of the files the forged tokens name is in the initramfs"
	grep forged "$D/initrd1.paths" | sed 's/^/# /'
else
	ok "$V: none of the files the forged tokens name is in the initramfs"
fi
mode=$(stat -c %a "$ROOT/boot/initrd.img-$kver")
if [ "$mode" = 600 ]; then
	ok "$V: the initramfs (holding kekcrypt.conf$([ "$V" = dracut ] || echo " and the KEK file")) is mode 0600"
else
	not_ok "$V: the initramfs (holding kekcrypt.conf) is mode 0600 (it is $mode)"
fi
# dracut copies the new image over the existing one, which keeps its mode: the module made it
# readable by root only. (update-initramfs writes a new file, created under UMASK.)
if [ "$V" = dracut ] && [ "$had_image" = yes ]; then
	if grep -q "kekcrypt: /boot/initrd.img-$kver holds .*: made it readable by root only" \
		"$D/initramfs.log"; then
		ok "$V: the module made the existing image readable by root only, and said so"
	else
		not_ok "$V: the module made the existing image readable by root only, and said so"
	fi
fi
step "$V: the filesystems, encrypted in place on the host (kekcrypt encrypt, kekcrypt-encrypt-root)"
rm -rf "$ROOT/tmp/lean-conf"
disks_encrypt
local keys="a recovery key each" keys_ok=yes
if [ "$DATA_TEMPLATE" = yes ]; then
	keys="a recovery key for root, data marked a template instead"
	[ "$(json_doc_get "$D/data-template.json" 'd["mark"]')" = template ] &&
		[ ! -e "$D/rec-data.json" ] || keys_ok=no
	# What each clone starts from.
	luks_digests <(cryptsetup luksDump --dump-json-metadata "$D/data.img") >"$D/digest-template"
fi
if [ "$(cryptsetup luksUUID "$D/root.img")" = "$uuid_root" ] &&
	[ "$(cryptsetup luksUUID "$D/data.img")" = "$uuid_data" ] &&
	! grep -qa "data-disk-$uuid_data" "$D/data.img" && [ -z "$(ls -A "$D/state")" ] &&
	[ "$keys_ok" = yes ]; then
	ok "$V: root and data filesystems encrypted in place with $kek and $kek_data (no plaintext left, no header file kept), $keys"
else
	not_ok "$V: root and data filesystems encrypted in place with $kek and $kek_data (no plaintext left, no header file kept), $keys"
fi
# kekcrypt-encrypt-root: root's crypttab entry, and the image that boots, built again in the
# filesystem before it was encrypted, reading the tokens of both disks.
if [ "$V" = dracut ]; then
	want_entry="root UUID=$uuid_root none luks,x-initrd.attach,token-timeout=30"
else
	want_entry="root UUID=$uuid_root timeout=12 luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript,initramfs"
fi
if grep -qxF "crypttab: $want_entry" <(sed -n 's/^kekcrypt-encrypt-root: //p' "$D/encrypt-root.log"); then
	ok "$V: kekcrypt-encrypt-root wrote root's crypttab entry"
else
	not_ok "$V: kekcrypt-encrypt-root wrote root's crypttab entry"
	sed 's/^/# /' "$D/encrypt-root.log"
fi
if grep -q 'cannot read the tokens' "$D/encrypt-root.log"; then
	not_ok "$V: its initramfs build read the volumes' tokens"
else
	ok "$V: its initramfs build read the volumes' tokens"
fi
cp "$D/initrd.img" "$ROOT/tmp/new.img"
list_image /tmp/new.img "$D/initrd.paths"
if [ "$V" = dracut ]; then
	chroot "$ROOT" lsinitrd -f etc/crypttab /tmp/new.img >"$D/initrd.crypttab"
	if grep -qxF "$want_entry" "$D/initrd.crypttab" && ! grep -q '^data' "$D/initrd.crypttab"; then
		ok "$V: the initramfs crypttab holds root (x-initrd.attach), not data"
	else
		not_ok "$V: the initramfs crypttab holds root (x-initrd.attach), not data"
		sed 's/^/# /' "$D/initrd.crypttab"
	fi
	want="usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-kekcrypt.so usr/bin/kekcrypt
		etc/kekcrypt/kekcrypt.conf etc/kekcrypt/ca.pem usr/lib/$MA/$KCLIB
		usr/lib/systemd/systemd-cryptsetup usr/lib/systemd/systemd-networkd"
else
	want="usr/bin/kekcrypt usr/lib/kekcrypt/kekcrypt-keyscript etc/kekcrypt/kekcrypt.conf
		etc/kekcrypt/ca.pem etc/kekcrypt/kek.bin cryptroot/crypttab usr/lib/$MA/$KCLIB"
fi
for f in $want; do
	if grep -qx "$f" "$D/initrd.paths"; then ok "$V: the initramfs holds $f"; else not_ok "$V: the initramfs holds $f"; fi
done
# A remote KEK needs the NIC driver.
if grep -q 'virtio_net.ko' "$D/initrd.paths"; then
	ok "$V: the initramfs holds virtio_net"
else
	not_ok "$V: the initramfs holds virtio_net"
fi
# kekcrypt loads libcurl with dlopen() (ldd does not list it): the hook and the module copy it
# for a remote KEK (a file-KEK image holds no network stack: above).
if grep -q '/libcurl\.so\.4$' "$D/initrd.paths"; then
	ok "$V: the initramfs holds libcurl.so.4 (remote KEK)"
else
	not_ok "$V: the initramfs holds libcurl.so.4 (remote KEK)"
fi
# kekcrypt dlopen()s it, so nothing else pulls in what it links (dracut resolves only
# executable files, and libcurl is 0644).
missing=
for dep in $(chroot "$ROOT" ldd /usr/lib/x86_64-linux-gnu/libcurl.so.4 |
	awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
	grep -q "/${dep##*/}\$" "$D/initrd.paths" || missing+=" ${dep##*/}"
done
if [ -z "$missing" ]; then
	ok "$V: ... with every library libcurl links"
else
	not_ok "$V: ... with every library libcurl links (missing:$missing)"
fi

rm -rf "$ROOT"
}

# The roots are prepared side by side (each is mostly one process at a time: apt, an initramfs
# build, the encryption), each with a fixture of its own in a namespace of its own; their TAP
# lines are replayed in order afterwards. The fixture's key is made first, once, so that both
# (and every boot) read the same one from its state file.
ns bash -c "ip link set lo up
$(fixture) >'$W/kv-init.port' 2>'$W/kv-init.log' &
for i in \$(seq 100); do grep -q '^PORT' '$W/kv-init.port' && break; sleep 0.1; done
kill %1" || die "the fixture did not start"
[ -s "$W/kv-state.json" ] || die "the fixture made no key state: $(cat "$W/kv-init.log")"
prep_in_background() {
	ok() { echo "KC-PREP-OK $*"; }
	not_ok() { echo "KC-PREP-NOT-OK $*"; }
	if [ "$1" = ade ]; then ade_prepare; else prepare "$1"; fi
}
prep_pids=()
for v in "${VARIANTS[@]}"; do
	(prep_in_background "$v") >"$W/prep-$v.out" 2>&1 &
	prep_pids+=($!)
done
for i in "${!VARIANTS[@]}"; do
	rc=0
	wait "${prep_pids[$i]}" || rc=$?
	while IFS= read -r line; do
		case $line in
		"KC-PREP-OK "*) ok "${line#KC-PREP-OK }" ;;
		"KC-PREP-NOT-OK "*) not_ok "${line#KC-PREP-NOT-OK }" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$W/prep-${VARIANTS[$i]}.out"
	[ "$rc" = 0 ] || die "preparing ${VARIANTS[$i]} failed (exit $rc)"
done

# boot_result NAME: wait for the boot to end; its TAP line.
boot_result() {
	local name=$1 rc
	rc=$(boot_wait "$name")
	sed -n "s/^boot-console: \(QEMU used .*\)/# $name: \1/p" "$W/$name.seen"
	if [ "$rc" = 0 ]; then
		ok "$name: the guest reached the done marker"
	else
		not_ok "$name: the guest reached the done marker (exit $rc)"
		# What the driver saw and the console's last lines, for the log of a failed run.
		{ cat "$W/$name.seen"; tr -d '\r' <"$W/$name.log" | grep -av '^$' | tail -n 40; } |
			sed 's/^/#   /'
		[ -z "${KC_BOOT_LOGS:-}" ] || cp "$W/$name.log" "$KC_BOOT_LOGS/$name-failed.log"
	fi
}

# booted NAME: the marker with both mappings and the data disk's file.
booted() {
	if grep -q "KC-BOOT-OK root=/dev/mapper/root data=/dev/mapper/data marker=data-disk-$uuid_data" \
		"$W/$1.log"; then
		ok "$1: booted with root and data mounted from their mappings"
	else
		not_ok "$1: booted with root and data mounted from their mappings"
		echo "# --- console ($1), last lines:"; tail -n 40 "$W/$1.log" | sed 's/^/# /'
		sed 's/^/# /' "$W/$1.seen"
	fi
}
has() {	# has NAME DESC REGEX
	if grep -Eq -- "$3" "$W/$1.log"; then ok "$1: $2"; else not_ok "$1: $2"; fi
}
hasnt() {
	if grep -Eq -- "$3" "$W/$1.log"; then not_ok "$1: $2"; else ok "$1: $2"; fi
}
# in_order NAME DESC REGEX...: each REGEX first appears after the one before it.
in_order() {
	local name=$1 desc=$2 last=0 n re
	shift 2
	for re in "$@"; do
		n=$(grep -En -m 1 -- "$re" "$W/$name.log" | cut -d: -f1)
		if [ -z "$n" ] || [ "$n" -le "$last" ]; then
			not_ok "$name: $desc ('$re' at line '${n:-none}', after line $last)"
			return
		fi
		last=$n
	done
	ok "$name: $desc"
}
# after_deadline NAME DEADLINE-REGEX PROMPT-REGEX: the prompt was seen (boot-console.py's
# clock) after the deadline message and within 10 s of it (an emulated guest on a busy host
# took 7 s once).
after_deadline() {
	local t_dead t_ask
	t_dead=$(awk -v p="$2" '$1 == "seen" && index($0, p) { print int($2); exit }' "$W/$1.seen")
	t_ask=$(awk -v p="$3" '$1 == "seen" && index($0, p) { print int($2); exit }' "$W/$1.seen")
	if [ -n "$t_dead" ] && [ -n "$t_ask" ] && [ "$t_ask" -ge "$t_dead" ] &&
		[ "$t_ask" -le $((t_dead + 10)) ]; then
		ok "$1: the prompt came right after the deadline (${t_dead} s, ${t_ask} s)"
	else
		not_ok "$1: the prompt came right after the deadline ('$t_dead' s, '$t_ask' s)"
	fi
}

# guest_doc NAME PREFIX: what the guest of boot NAME printed after "PREFIX: " (its first line).
guest_doc() {
	tr -d '\r' <"$W/$1.log" | sed -n "s/^.*$2: //p" | sed -n 1p
}
# firstboot_ran NAME: boot NAME's kekcrypt-firstboot.service ran and ended successfully, and the
# data disk has no template mark left; its LUKS2 digests in $W/NAME.digest.
firstboot_ran() {
	local name=$1 state kv bad=
	state=" $(guest_doc "$name" KC-FIRSTBOOT) "
	for kv in ActiveState=inactive Result=success ExecMainStatus=0; do
		[[ $state == *" $kv "* ]] || bad+=" $kv"
	done
	[[ $state =~ \ ExecMainExitTimestampMonotonic=[1-9] ]] || bad+=" ExecMainExitTimestamp"
	if [ -z "$bad" ]; then
		ok "$name: kekcrypt-firstboot.service ran and succeeded"
	else
		not_ok "$name: kekcrypt-firstboot.service ran and succeeded (not:$bad; state:$state)"
		tr -d '\r' <"$W/$name.log" | grep -a 'KC-FIRSTBOOT-LOG: ' | sed 's/^/#   /'
	fi
	guest_doc "$name" KC-FIRSTBOOT-MARK >"$W/$name.mark.json"
	guest_doc "$name" KC-FIRSTBOOT-LUKS >"$W/$name.luks.json"
	if [ "$(json_doc_get "$W/$name.mark.json" 'd["mark"]')" = none ]; then
		ok "$name: the data disk has no template mark"
	else
		not_ok "$name: the data disk has no template mark"
		sed 's/^/#   /' "$W/$name.mark.json"
	fi
	luks_digests "$W/$name.luks.json" >"$W/$name.digest" || :
}
# firstboot_first NAME: boot NAME, a clone's first, re-keyed the data disk: firstboot_ran,
# and a LUKS2 digest that is not the template's, nor the first clone's (for the second).
firstboot_first() {
	local name=$1 digest
	firstboot_ran "$name"
	digest=$(cat "$W/$name.digest")
	if [ -n "$digest" ] && [ "$digest" != "$(cat "$D/digest-template")" ]; then
		ok "$name: the clone re-keyed the data disk (its LUKS2 digest is not the template's)"
	else
		not_ok "$name: the clone re-keyed the data disk (its LUKS2 digest is not the template's)"
	fi
	[ ${#CLONES[@]} = 2 ] && [ "$name" = "${CLONES[1]}" ] || return 0
	if [ -n "$digest" ] && [ "$digest" != "$(cat "$W/${CLONES[0]}.digest")" ]; then
		ok "$name: ... nor the other clone's (${CLONES[0]}): each has a volume key of its own"
	else
		not_ok "$name: ... nor the other clone's (${CLONES[0]}): each has a volume key of its own"
	fi
}
# doctor_data NAME: kekcrypt doctor in boot NAME had one thing to say of the data disk (a clone
# of a template, which has no recovery key): a warning that it has none.
doctor_data() {
	local said
	said=$(tr -d '\r' <"$W/$1.log" | awk -v h="KC-DOCTOR: data (UUID=$uuid_data): " '
		index($0, h) { on = 1; print; next }
		on && /KC-DOCTOR:   / { print; next }
		{ on = 0 }')
	# (no pipe into head or grep -q: under pipefail the writer can die of SIGPIPE when they
	# stop reading first, which failed this check once in CI)
	if [ "$(wc -l <<<"$said")" = 2 ] && [[ ${said%%$'\n'*} == *': warnings' ]] &&
		[[ ${said##*$'\n'} == 'KC-DOCTOR:   warning: no recovery key: '* ]]; then
		ok "$1: kekcrypt doctor: data works, its one warning: no recovery key (a template's clone)"
	else
		not_ok "$1: kekcrypt doctor: data works, its one warning: no recovery key (a template's clone)"
		printf '%s\n' "$said" | sed 's/^/#   /'
	fi
}

# ade_booted NAME BEK: ADE's VM booted with its volumes mounted from their mappings, the BEK
# volume mounted from BEK (none: not mounted).
ade_booted() {
	local want="KC-BOOT-OK root=/dev/mapper/osencrypt data=/dev/mapper/$name_data marker=ade-data-disk-$uuid_data bek=$2"
	# (grep without -q: under pipefail, tr could die of SIGPIPE when grep stops reading first)
	if tr -d '\r' <"$W/$1.log" | grep -xF "$want" >/dev/null; then
		ok "$1: booted with the OS and data volumes mounted from their mappings, BEK volume: $2"
	else
		not_ok "$1: booted with the OS and data volumes mounted from their mappings, BEK volume: $2"
		echo "# --- console ($1), last lines:"; tail -n 40 "$W/$1.log" | sed 's/^/# /'
	fi
}
# ade_initrd: $D/initrd-adopted.img, the initramfs ade's guest built, read from its /boot
# partition once it ended (debugfs, no mount); the paths it holds in $D/initrd-adopted.paths.
ade_initrd() {
	[ ! -s "$D/initrd-adopted.img" ] || return 0
	debugfs -R "dump /initrd.img-$(cat "$D/kver") $D/initrd-adopted.img" \
		"$D/disk.img?offset=$(cat "$D/boot-offset")" >"$D/debugfs.log" 2>&1 || :
	if [ ! -s "$D/initrd-adopted.img" ]; then
		cat "$D/debugfs.log"
		die "cannot read the initramfs ade built from its disk"
	fi
	# (gzip: the image's COMPRESS; no early archive in front of it)
	zcat "$D/initrd-adopted.img" | cpio -t --quiet | sed 's|^\./||' >"$D/initrd-adopted.paths"
}
# ade_adopted: what ade's guest did after the boot: adopt (its --json), the initramfs built
# again, crypttab as adopt left it.
ade_adopted() {
	local doc=$W/ade.adopt.json img=$D/initrd-adopted.paths tab
	# When each of the guest's steps ended (seconds since its boot).
	echo "# ade: $(tr -d '\r' <"$W/ade.log" | sed -n 's/^KC-ADE-T: //p' | tr '\n' ' ')"
	has ade "kekcrypt adopt --from ade exited 0" 'KC-ADOPT-EXIT=0[^0-9]'
	guest_doc ade KC-ADOPT >"$doc"
	# Both volumes, each given a token for the KEK, authorised by the BEK passphrase (found on
	# the volume labelled BEK VOLUME), the OS volume through its detached header.
	if [ "$(json_doc_get "$doc" '" ".join("%s:%s:%s:%s" % (v["name"], v["method"], v["header"],
		",".join(str(t["added"]) for t in v["tokens"])) for v in sorted(d["volumes"], key=lambda v: v["name"] != "osencrypt"))')" = \
		"osencrypt:keyscript:/boot/luks/osluksheader:True $name_data:token-plugin:None:True" ] &&
		[ "$(json_doc_get "$doc" 'd["crypttab_rewritten"], d["fstab_bek_lines"], d["already_adopted"]')" = "(True, 1, False)" ]; then
		ok "ade: adopt gave both volumes a token (the OS volume's through its header), rewrote crypttab, removed the BEK line from fstab"
	else
		not_ok "ade: adopt gave both volumes a token (the OS volume's through its header), rewrote crypttab, removed the BEK line from fstab"
		sed 's/^/#   /' "$doc"
		tr -d '\r' <"$W/ade.log" | grep -a 'KC-ADOPT-ERR' | sed 's/^/#   /'
	fi
	tab=$(guest_doc ade KC-ADE-CRYPTTAB)
	if [[ "|$tab" == *"|osencrypt /dev/disk/by-partuuid/$(cat "$D/partuuid-root") none luks,discard,header=/boot/luks/osluksheader,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript|"* ]] &&
		[[ "|$tab" == *"|$name_data /dev/disk/by-uuid/$uuid_data none luks,nofail|"* ]]; then
		ok "ade: crypttab: the OS volume through kekcrypt-keyscript with its header=, data through the plugin"
	else
		not_ok "ade: crypttab: the OS volume through kekcrypt-keyscript with its header=, data through the plugin"
		echo "#   $tab"
	fi
	# (the OS volume's recovery key goes to its header, which the old image holds a copy of)
	has ade "recovery add through the header said that the initramfs must be built again" \
		'KC-ADE-NOTE: kekcrypt: note: /boot/luks/osluksheader changed, and the initramfs holds a copy of it \(crypttab: osencrypt\)'
	has ade "the initramfs was built again" 'KC-INITRAMFS-EXIT=0[^0-9]'
	ade_initrd
	if grep -qx boot/luks/osluksheader "$img" && grep -qx usr/lib/kekcrypt/kekcrypt-keyscript "$img" &&
		! grep -q crypt-ade "$img"; then
		ok "ade: the new initramfs holds the header and kekcrypt-keyscript, not ADE's script"
	else
		not_ok "ade: the new initramfs holds the header and kekcrypt-keyscript, not ADE's script"
		sed 's/^/#   /' "$img"
		tr -d '\r' <"$W/ade.log" | grep -a 'KC-INITRAMFS: ' | tail -n 20 | sed 's/^/#   /'
	fi
}
# ade_doctor_clean NAME: kekcrypt doctor said ok of both volumes and nothing else (no error, no
# warning), exit 0.
ade_doctor_clean() {
	local said
	said=$(tr -d '\r' <"$W/$1.log" | sed -n 's/^KC-DOCTOR: //p')
	if [ "$(wc -l <<<"$said")" = 4 ] && grep -qE "^osencrypt \(.*\): ok$" <<<"$said" &&
		grep -qE "^$name_data \(.*\): ok$" <<<"$said" &&
		grep -qx '0 error(s), 0 warning(s)' <<<"$said" && grep -qx 'KC-DOCTOR-EXIT=0' <<<"$said"; then
		ok "$1: kekcrypt doctor: both volumes ok, no warning, exit 0"
	else
		not_ok "$1: kekcrypt doctor: both volumes ok, no warning, exit 0"
		printf '%s\n' "$said" | sed 's/^/#   /'
	fi
}

# systemd-cryptsetup's prompt (systemd 252), and the plugin's messages on the console.
SD_PROMPT_ROOT='Please enter passphrase for disk .*root'
SD_PROMPT_DATA='Please enter passphrase for disk .*data'
# scenario_vars SCENARIO: its variant V, disks D, and what its console should show.
scenario_vars() {
	case $1 in dracut-*) V=dracut ;; ade*) V=ade ;; *) V=initramfs-tools ;; esac
	D=$W/$V
	if [ "$V" = ade ]; then
		uuid_data=$(cat "$D/uuid-data")
		name_data=$(cat "$D/name-data")
		return
	fi
	uuid_root=$(cat "$D/uuid-root")
	uuid_data=$(cat "$D/uuid-data")
	by_root="kekcrypt: /dev/disk/by-uuid/$uuid_root: token 0:"
	by_data="kekcrypt: /dev/disk/by-uuid/$uuid_data: token 0:"
	# The keyscript's kekcrypt names the device cryptroot resolved (root is the first disk).
	ks_root='kekcrypt: /dev/vda: token 0:'
	ks_data='kekcrypt: /dev/vdb: token 0:'
	ks_root_warn='kekcrypt: warning: /dev/vda:'
	ks_gaveup=$KS_GAVEUP
}
# start_boot SCENARIO: start its boot.
declare -A is_started=()
start_boot() {
	local s=$1
	is_started[$s]=1
	scenario_vars "$s"
	step "boot: $s (started)"
	# A clone: its data disk an overlay of the template's, kept for its second boot.
	case $s in
	up | down)
		qemu-img create -q -f qcow2 -b "$D/data.img" -F raw "$W/$s.data.qcow2" ||
			die "qemu-img create of $s's data overlay failed" ;;
	esac
	case $s in
	up)
		BOOT_DATA=$W/up.data.qcow2 boot_start up "" --mark "$ks_root unlocked" ;;
	down)
		BOOT_DATA=$W/down.data.qcow2 boot_start down down --mark "$ks_gaveup 12 s" \
			--answer "$PROMPT_ROOT=$D/rec-root.typed-keyscript" ;;
	up-again | down-again)
		# After the clone's first boot (its overlay is written by one QEMU at a time).
		boot_wait "${s%-again}" >/dev/null
		BOOT_DATA=$W/${s%-again}.data.qcow2 boot_start "$s" "" --mark "$ks_root unlocked" ;;
	dracut-up)
		boot_start dracut-up "" --mark "$by_root unlocked after" ;;
	dracut-down)
		boot_start dracut-down down --mark 'not unlocked within the retry limit of 30 s' \
			--answer "$SD_PROMPT_ROOT=$D/rec-root.typed-sd" \
			--answer "$SD_PROMPT_DATA=$D/rec-data.typed-sd" ;;
	ade)
		# ADE's VM: its disks written (adopt, the new initramfs), the BEK disk a snapshot.
		BOOT_ROOTDEV=/dev/mapper/osencrypt BOOT_DRIVES="$(vm_qemu_drive "$D/disk.img") $(
			vm_qemu_drive "$D/data.img") $(vm_qemu_drive "$D/bek.img" snapshot=on)" \
			boot_start ade "" --mark 'KC-ADOPT-EXIT' ;;
	ade-adopted)
		# After ade (ready): the initramfs it built; no BEK disk.
		ade_initrd
		BOOT_ROOTDEV=/dev/mapper/osencrypt BOOT_INITRD=$D/initrd-adopted.img BOOT_DRIVES="$(
			vm_qemu_drive "$D/disk.img" snapshot=on) $(vm_qemu_drive "$D/data.img" snapshot=on)" \
			boot_start ade-adopted "" --mark "kekcrypt: osencrypt: " ;;
	*) die "unknown scenario $s" ;;
	esac
}
# ended SCENARIO: its boot has ended.
ended() { [ -e "$W/$1.rc" ]; }
# ready SCENARIO: it can start: a second boot (SCENARIO-again, ade-adopted) after the first has
# ended (a disk that both write is written by one QEMU at a time).
ready() {
	case $1 in
	*-again) ended "${1%-again}" ;;
	ade-adopted) ended ade ;;
	*) : ;;
	esac
}
# fill: start boots, the first ready ones in SCENARIOS' order, while fewer than two run.
fill() {
	local s running=0
	for s in "${!is_started[@]}"; do ended "$s" || running=$((running + 1)); done
	for s in "${SCENARIOS[@]}"; do
		[ "$running" -lt 2 ] || return 0
		if [ -n "${is_started[$s]:-}" ] || ! ready "$s"; then continue; fi
		start_boot "$s"
		running=$((running + 1))
	done
}
# Two boots at a time, each started as soon as a slot is free and it is ready (not in the order
# of the checks, which wait for each boot in turn): a guest often waits (for a deadline, the
# network, a prompt) and the second keeps the CPUs busy meanwhile.
for ((n = 0; n < ${#SCENARIOS[@]}; n++)); do
	s=${SCENARIOS[$n]}
	fill
	until ended "$s"; do
		sleep 1
		fill
	done
	scenario_vars "$s"
	boot_result "$s"
	step "boot: $s (checked)"
	case $s in
	up)
		booted up
		has up "the keyscript unlocked root through the KMS, logging the time since boot" \
			"$ks_root unlocked after 1 attempt\\(s\\), [0-9.]+ s since boot \\(azure-kv\\+https://10\\.0\\.2\\.2:$PORT/keys/kek-rsa\\)\\."
		has up "and data with its file KEK" \
			"$ks_data unlocked after 1 attempt\\(s\\).*\\(file:/etc/kekcrypt/kek\\.bin\\)"
		in_order up "root, then data" "$ks_root unlocked" "$ks_data unlocked"
		# root's token names the KMS, data's a KEK file: only root waits for the network.
		has up "the keyscript brought the network up for root" 'kekcrypt: root: bringing the network up'
		hasnt up "... not for data (a KEK file)" 'kekcrypt: data: bringing the network up'
		hasnt up "no recovery prompt" "$PROMPT_ROOT"
		has up "kekcrypt doctor in the booted system: root ok" "KC-DOCTOR: root \\(UUID=$uuid_root\\): ok"
		doctor_data up
		has up "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		firstboot_first up
		;;
	down)
		booted down
		has down "it said the KMS did not answer within root's timeout (12 s)" \
			"$ks_gaveup 12 s \\([0-9]+ attempts\\): device '/dev/vda': .*unreachable"
		has down "after retrying with backoff" \
			"$ks_root_warn attempt 2 failed: .*unreachable.*; retrying in [0-9.]+ s \\([0-9]+ s left\\)"
		has down "the keyscript named the fallback" 'kekcrypt: root: not unlocked through the KMS/HSM \(exit [0-9]+\)'
		# The prompt comes after the deadline, not before, and not long after.
		after_deadline down "$ks_gaveup 12 s" "$PROMPT_ROOT"
		has down "cryptroot set up root from the recovery key (typed in mixed case, blanks for dashes)" \
			'root: set up successfully'
		# No KMS, no network needed: the KEK file is in the initramfs.
		has down "the data disk unlocked with its file KEK, no KMS needed" \
			"$ks_data unlocked after 1 attempt\\(s\\).*\\(file:/etc/kekcrypt/kek\\.bin\\)"
		hasnt down "no recovery prompt for data" "$PROMPT_DATA"
		has down "kekcrypt doctor: no KEK answers, a recovery key exists (a warning)" \
			'KC-DOCTOR:   warning: no KEK answers now: .*ask for the recovery key'
		doctor_data down
		has down "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		# Data's file KEK works without the KMS: this clone re-keys as the other one does.
		firstboot_first down
		;;
	up-again | down-again)
		booted "$s"
		has "$s" "the keyscript unlocked root through the KMS" "$ks_root unlocked after 1 attempt"
		# (any token id: the rekey replaced the template's token 0 with one of its own)
		has "$s" "and data with its file KEK" \
			"${ks_data% 0:} [0-9]+: unlocked after 1 attempt\\(s\\).*\\(file:/etc/kekcrypt/kek\\.bin\\)"
		hasnt "$s" "no recovery prompt" "$PROMPT_ROOT|$PROMPT_DATA"
		firstboot_ran "$s"
		if [ -s "$W/$s.digest" ] &&
			[ "$(cat "$W/$s.digest")" = "$(cat "$W/${s%-again}.digest" 2>/dev/null)" ]; then
			ok "$s: the data disk has the LUKS2 digest its first boot left (firstboot did nothing)"
		else
			not_ok "$s: the data disk has the LUKS2 digest its first boot left (firstboot did nothing)"
		fi
		has "$s" "kekcrypt doctor: root ok" "KC-DOCTOR: root \\(UUID=$uuid_root\\): ok"
		doctor_data "$s"
		has "$s" "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		;;
	dracut-up)
		booted dracut-up
		has dracut-up "the plugin unlocked root through the KMS, logging the time since boot" \
			"$by_root unlocked after [0-9]+ attempt\\(s\\), [0-9.]+ s since boot"
		has dracut-up "and data" "$by_data unlocked after"
		in_order dracut-up "root in the initramfs, data after switch-root" \
			"$by_root unlocked after" 'Switch Root' "$by_data unlocked after"
		hasnt dracut-up "no password prompt" 'Please enter passphrase'
		has dracut-up "kekcrypt doctor in the booted system: root (plugin, initramfs) ok" \
			"KC-DOCTOR: root \\(UUID=$uuid_root\\): ok"
		has dracut-up "... data (plugin, after the initramfs) ok" "KC-DOCTOR: data \\(UUID=$uuid_data\\): ok"
		has dracut-up "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		;;
	dracut-down)
		booted dracut-down
		has dracut-down "the plugin retried root with backoff" \
			"kekcrypt: warning: ${by_root#kekcrypt: } attempt 1 failed: .*unreachable.*; retrying in [0-9.]+ s"
		has dracut-down "until root's token-timeout (30 s)" \
			"kekcrypt: not unlocked within the retry limit of 30 s \\([0-9]+ attempts\\): device '/dev/disk/by-uuid/$uuid_root'"
		has dracut-down "and data's (30 s)" \
			"kekcrypt: not unlocked within the retry limit of 30 s \\([0-9]+ attempts\\): device '/dev/disk/by-uuid/$uuid_data'"
		after_deadline dracut-down 'not unlocked within the retry limit of 30 s' "$SD_PROMPT_ROOT"
		in_order dracut-down "root's prompt in the initramfs, data's after switch-root" \
			"$SD_PROMPT_ROOT" 'Switch Root' "$SD_PROMPT_DATA"
		;;
	ade)
		ade_booted ade "/dev/vdc1"
		has ade "ADE's initramfs script opened the OS volume with the BEK passphrase" \
			'KC-ADE-INITRAMFS: osencrypt opened with the BEK passphrase'
		ade_adopted
		;;
	ade-adopted)
		ade_booted ade-adopted none
		has ade-adopted "kekcrypt-keyscript unlocked the OS volume (header on /boot) through the KMS" \
			"kekcrypt: /dev/[^:]*: token [0-9]+: unlocked after 1 attempt\\(s\\), [0-9.]+ s since boot \\(azure-kv\\+https://10\\.0\\.2\\.2:$PORT/keys/kek-rsa\\)"
		has ade-adopted "the token plugin unlocked the data volume through the KMS" \
			"kekcrypt: /dev/disk/by-uuid/$uuid_data: token [0-9]+: unlocked after"
		hasnt ade-adopted "no passphrase or recovery prompt" \
			'Please enter passphrase|recovery key or passphrase for'
		hasnt ade-adopted "ADE's initramfs script is gone" 'KC-ADE-INITRAMFS'
		ade_doctor_clean ade-adopted
		;;
	*) die "unknown scenario $s" ;;
	esac
	hasnt "$s" "kvm was not loaded (blacklisted)" 'kvm: Nested Virtualization enabled'
	hasnt "$s" "no shell was offered" \
		'\(initramfs\)|BusyBox .* built-in shell|[Ee]mergency shell|dracut:/#|[Ee]mergency mode|root account is locked'
	[ "$V" != initramfs-tools ] ||
		hasnt "$s" "nothing but the keyscript tried the tokens" "kekcrypt: device '/dev/vd"
	[ -z "${KC_BOOT_LOGS:-}" ] || cp "$W/$s.log" "$KC_BOOT_LOGS/$s-$TAP.log"
done
echo "1..$TAP"
VM_DONE=1
[ "$fails" -eq 0 ]
