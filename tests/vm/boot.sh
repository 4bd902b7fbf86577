#!/bin/bash
# Boot test: a real Debian 12 whose root and data disks are kekcrypt volumes with their KEK in
# the Azure Key Vault fixture, unlocked by initramfs-tools + cryptsetup-initramfs through
# kekcrypt-keyscript, booted in QEMU (TCG) inside a network namespace of this test, where the
# fixture (with its managed-identity endpoint) listens on 127.0.0.1 and the guest reaches it
# at the user-network gateway 10.0.2.2.
#
# Built here: the root (scripts/vm/debian-root.sh, debootstrap cached), kekcrypt installed by
# `make install DESTDIR=` from a --prefix=/usr build of this tree's distdir, crypttab and
# fstab, the initramfs made by the real update-initramfs in the chroot (with our hook), the
# disks formatted on the host (header only) and filled through dm-crypt in a builder guest.
# A unit in the booted system runs `kekcrypt doctor` (lines "KC-DOCTOR: ..."), prints
# "KC-BOOT-OK root=... data=..." once multi-user is reached with both disks mounted, then
# powers off. Scenarios:
#   up      KMS up: boots unattended;
#   down    KMS down: the recovery prompt comes after the deadline (timeout=20 in crypttab);
#           the recovery keys typed on the serial console boot it;
#   slow    every KMS answer 3 s late, inside the deadline: boots unattended;
#   refused the KMS refuses (403): the keyscript says retrying cannot help and prompts at
#           once; the recovery key boots it.
# Usage: tests/vm/boot.sh [SCENARIO...]   (default: all; needs root)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PORT=8443
URI="azure-kv+https://10.0.2.2:$PORT/keys/kek-rsa"
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(up down slow refused)

vm_setup	# VM_WORK, removed on exit; vm_run for the builder guest
W=$VM_WORK/boot
mkdir "$W"
ROOT=$W/root
TAP=0
fails=0
ok() { TAP=$((TAP + 1)); echo "ok $TAP - $*"; }
not_ok() { TAP=$((TAP + 1)); fails=$((fails + 1)); echo "not ok $TAP - $*"; }
step() { echo "# $(date +%T) $*"; }
die() { echo "Bail out! $*"; exit 1; }

fixture() {	# the fixture command line, with extra arguments
	echo "exec node '$VM_TOP/tests/fixtures/azure-kv/server.js' --port $PORT" \
		"--cert '$W/tls/server.pem' --key '$W/tls/server.key' --rsa-key kek-rsa" \
		"--state '$W/kv-state.json' $*"
}

step "root filesystem"
"$VM_TOP/scripts/vm/debian-root.sh" "$ROOT"

step "kekcrypt: distdir, --prefix=/usr build, make install DESTDIR=root"
make -C "$VM_TOP" -s distdir distdir="$W/src" >"$W/dist.log" 2>&1 ||
	{ tail "$W/dist.log"; die "make distdir failed"; }
(cd "$W/src" && ./configure -q --prefix=/usr --sysconfdir=/etc >"$W/build.log" 2>&1 &&
	make -s -j"$(nproc)" >>"$W/build.log" 2>&1 &&
	make -s install DESTDIR="$ROOT" >>"$W/build.log" 2>&1) ||
	{ tail -n 30 "$W/build.log"; die "build or install failed"; }

step "KMS credentials, disks formatted on the host (fixture in a private namespace)"
"$VM_TOP/tests/fixtures/tls.sh" "$W/tls" IP:10.0.2.2 >/dev/null
conf() {	# conf CA-PATH
	printf '[azure-kv]\nauth = managed-identity\nallowed-hosts = 10.0.2.2\nca-file = %s\n' "$1"
	printf 'imds-endpoint = https://10.0.2.2:%s/metadata/identity/oauth2/token\n' "$PORT"
}
mkdir -m 700 -p "$ROOT/etc/kekcrypt"
conf /etc/kekcrypt/ca.pem >"$ROOT/etc/kekcrypt/kekcrypt.conf"
cp "$W/tls/ca.pem" "$ROOT/etc/kekcrypt/ca.pem"
chmod 600 "$ROOT/etc/kekcrypt/kekcrypt.conf"
(umask 077 && conf "$W/tls/ca.pem" >"$W/host.conf")
truncate -s 640M "$W/root.img"
truncate -s 64M "$W/data.img"
cat >"$W/host.sh" <<SH
set -euo pipefail
ip link set lo up
ip addr add 10.0.2.2/32 dev lo
$(fixture --bind 10.0.2.2) >"$W/fixture.port" 2>"$W/fixture.log" &
for i in \$(seq 100); do grep -q '^PORT' "$W/fixture.port" && break; sleep 0.1; done
k() { "$KEKCRYPT" "\$@" --config "$W/host.conf"; }
k format -q "$W/root.img" --kek "$URI" --label kc-root
k format -q "$W/data.img" --kek "$URI" --label kc-data
# Cheap argon2id: the guest is emulated (a real one benchmarks on the machine itself).
k recovery add -q "$W/root.img" --json --pbkdf-memory 32 --pbkdf-force-iterations 4 >"$W/rec-root.json"
k recovery add -q "$W/data.img" --json --pbkdf-memory 32 --pbkdf-force-iterations 4 >"$W/rec-data.json"
kill %1
SH
unshare --net bash "$W/host.sh" || die "formatting on the host failed"
for d in root data; do
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recovery_key"])' \
		"$W/rec-$d.json" >"$W/rec-$d.key"
done
uuid_root=$(cryptsetup luksUUID "$W/root.img")
uuid_data=$(cryptsetup luksUUID "$W/data.img")
ok "root and data disks formatted with the Azure KEK and a recovery key each"

step "crypttab, fstab, the marker unit, update-initramfs in the chroot"
KS=/usr/lib/kekcrypt/kekcrypt-keyscript
cat >"$ROOT/etc/crypttab" <<EOF
root UUID=$uuid_root timeout=20 luks,keyscript=$KS,initramfs
data UUID=$uuid_data timeout=10 luks,keyscript=$KS,initramfs
EOF
cat >"$ROOT/etc/fstab" <<EOF
/dev/mapper/root / ext4 defaults 0 1
/dev/mapper/data /data ext4 defaults 0 2
EOF
mkdir -p "$ROOT/data"
echo kekcrypt-boot >"$ROOT/etc/hostname"
cat >"$ROOT/etc/systemd/system/kc-boot-marker.service" <<'EOF'
[Unit]
Description=kekcrypt boot test marker
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kc-boot-marker
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
EOF
# kekcrypt doctor in the booted system (real devices, crypttab and initramfs), then the marker.
cat >"$ROOT/usr/local/sbin/kc-boot-marker" <<'EOF'
#!/bin/sh
kekcrypt doctor >/run/doctor.txt 2>&1
echo "KC-DOCTOR-EXIT=$?" >>/run/doctor.txt
sed 's/^/KC-DOCTOR: /' /run/doctor.txt >/dev/ttyS0
echo "KC-BOOT-OK root=$(findmnt -no SOURCE /) data=$(findmnt -no SOURCE /data) marker=$(cat /data/marker)" >/dev/ttyS0
EOF
chmod 755 "$ROOT/usr/local/sbin/kc-boot-marker"
ln -sf /etc/systemd/system/kc-boot-marker.service \
	"$ROOT/etc/systemd/system/multi-user.target.wants/kc-boot-marker.service"
# The serial console is the only console: no getty fighting the askpass prompt on it.
ln -sf /dev/null "$ROOT/etc/systemd/system/serial-getty@ttyS0.service"
chroot "$ROOT" update-initramfs -u -k all >"$W/initramfs.log" 2>&1 ||
	{ tail -n 30 "$W/initramfs.log"; die "update-initramfs failed"; }
initrd=$(ls "$ROOT"/boot/initrd.img-*)
kernel=$(ls "$ROOT"/boot/vmlinuz-*)
chroot "$ROOT" lsinitramfs "/boot/${initrd##*/}" >"$W/initrd.list"
for f in usr/bin/kekcrypt usr/lib/kekcrypt/kekcrypt-keyscript etc/kekcrypt/kekcrypt.conf \
	etc/kekcrypt/ca.pem cryptroot/crypttab usr/lib/libkekcrypt.so.0; do
	if grep -qx "$f" "$W/initrd.list"; then ok "the initramfs holds $f"; else not_ok "the initramfs holds $f"; fi
done
if grep -q 'virtio_net.ko' "$W/initrd.list"; then ok "the initramfs holds virtio_net"; else not_ok "the initramfs holds virtio_net"; fi

step "the filesystems, written through dm-crypt in a builder guest"
mkdir "$W/data-dir"
echo "data-disk-$uuid_data" >"$W/data-dir/marker"
mke2fs -q -t ext4 -d "$ROOT" -L root "$W/root.ext4" 600M
mke2fs -q -t ext4 -d "$W/data-dir" -L data "$W/data.ext4" 40M
cp "$ROOT/etc/kekcrypt/kekcrypt.conf" "$W/guest.conf"
cat >"$W/builder.sh" <<'SH'
set -eu
kekcrypt open /dev/vda root
dd if=/dev/vdc of=/dev/mapper/root bs=4M conv=fsync 2>/dev/null
kekcrypt close root
kekcrypt open /dev/vdb data
dd if=/dev/vdd of=/dev/mapper/data bs=4M conv=fsync 2>/dev/null
kekcrypt close data
echo "KC-OK written"
SH
rc=0
vm_run "$W/builder.sh" --log "$W/builder.log" --timeout 900 \
	--disk "$W/root.img" --disk "$W/data.img" --disk "$W/root.ext4" --disk "$W/data.ext4" \
	--file "$W/guest.conf:/etc/kekcrypt/kekcrypt.conf" \
	--file "$W/tls/ca.pem:/etc/kekcrypt/ca.pem" \
	--netns-setup "$(fixture)" --netns-wait-port "$PORT" || rc=$?
if [ "$rc" -eq 0 ] && grep -q '^KC-OK written' "$W/builder.log"; then
	ok "root and data filesystems written through dm-crypt"
else
	tail -n 30 "$W/builder.log"
	die "the builder guest failed ($rc)"
fi
rm -f "$W/root.ext4" "$W/data.ext4"

# boot NAME FIXTURE-ARGS|down [boot-console.py options...]: boot the disks in a fresh
# namespace; the console log is $W/NAME.log, the driver's "seen" lines $W/NAME.seen.
boot() {
	local name=$1 fx=$2
	shift 2
	cat >"$W/$name.ns.sh" <<SH
set -eu
ip link set lo up
if [ "$fx" != down ]; then
	$(fixture "$fx") >"$W/$name.fixture.port" 2>"$W/$name.fixture.log" &
	for i in \$(seq 100); do grep -q '^PORT' "$W/$name.fixture.port" && break; sleep 0.1; done
fi
exec python3 "$VM_TOP/scripts/vm/boot-console.py" --log "$W/$name.log" --timeout 600 \\
	--done 'KC-BOOT-OK' ${*:+$(printf "%q " "$@")} -- \\
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -nographic -no-reboot \\
	-kernel "$kernel" -initrd "$initrd" \\
	-append "root=/dev/mapper/root ro console=ttyS0 ip=dhcp panic=-1 net.ifnames=0" \\
	-drive file="$W/root.img",if=virtio,format=raw \\
	-drive file="$W/data.img",if=virtio,format=raw \\
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0
SH
	if unshare --net bash "$W/$name.ns.sh" >"$W/$name.seen" 2>&1; then
		ok "$name: the guest reached the done marker"
	else
		not_ok "$name: the guest reached the done marker (exit $?)"
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

PROMPT_ROOT='recovery key or passphrase for root'
PROMPT_DATA='recovery key or passphrase for data'
for s in "${SCENARIOS[@]}"; do
	step "boot: $s"
	case $s in
	up)
		boot up "" --mark 'kekcrypt: root: unlocked'
		booted up
		has up "the keyscript unlocked root through the KMS" 'kekcrypt: root: unlocked after'
		has up "and data" 'kekcrypt: data: unlocked after'
		has up "it logged the time since boot" 'unlocked after [0-9]+ attempt\(s\), [0-9.]+ s since boot'
		hasnt up "no recovery prompt" "$PROMPT_ROOT"
		has up "kekcrypt doctor in the booted system: root ok" "KC-DOCTOR: root \\(UUID=$uuid_root\\): ok"
		has up "... data ok" "KC-DOCTOR: data \\(UUID=$uuid_data\\): ok"
		has up "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		;;
	down)
		boot down down --mark 'did not unlock it within 20 s' \
			--answer "$PROMPT_ROOT=$W/rec-root.key" --answer "$PROMPT_DATA=$W/rec-data.key"
		booted down
		has down "it said the KMS did not answer in time" 'kekcrypt: root: the KMS/HSM did not unlock it within 20 s'
		has down "after retrying with backoff" 'kekcrypt: root: retrying in [0-9]+ s'
		has down "the data disk too" 'kekcrypt: data: the KMS/HSM did not unlock it within 10 s'
		# The prompt comes after the deadline, not before, and not long after.
		t_dead=$(awk '$1 == "seen" && /did not unlock it within 20 s/ { print int($2) }' "$W/down.seen")
		t_ask=$(awk -v p="$PROMPT_ROOT" '$1 == "seen" && index($0, p) { print int($2) }' "$W/down.seen")
		if [ -n "$t_dead" ] && [ -n "$t_ask" ] && [ "$t_ask" -ge "$t_dead" ] &&
			[ "$t_ask" -le $((t_dead + 5)) ]; then
			ok "down: the prompt came right after the deadline (${t_dead} s, ${t_ask} s)"
		else
			not_ok "down: the prompt came right after the deadline ('$t_dead' s, '$t_ask' s)"
		fi
		has down "cryptroot set up root from the recovery key" 'root: set up successfully'
		has down "kekcrypt doctor: no KEK answers, a recovery key exists (a warning)" \
			'KC-DOCTOR:   warning: no KEK answers now: .*ask for the recovery key'
		has down "... exit 0" 'KC-DOCTOR: KC-DOCTOR-EXIT=0'
		;;
	slow)
		boot slow "--fault '{\"mode\":\"slow\",\"count\":1000,\"target\":\"any\",\"delay_ms\":3000}'"
		booted slow
		has slow "unlocked through the slow KMS" 'kekcrypt: root: unlocked after'
		hasnt slow "no recovery prompt" "$PROMPT_ROOT"
		;;
	refused)
		boot refused "--fault '{\"mode\":\"403\",\"count\":1000,\"target\":\"vault\"}'" \
			--answer "$PROMPT_ROOT=$W/rec-root.key" --answer "$PROMPT_DATA=$W/rec-data.key"
		booted refused
		has refused "the refusal is named" 'kekcrypt: root: attempt 1 failed \(exit [0-9]+\)'
		has refused "retrying is not attempted" 'kekcrypt: root: retrying cannot fix this'
		hasnt refused "no retry loop" 'kekcrypt: root: retrying in'
		;;
	*) die "unknown scenario $s" ;;
	esac
	hasnt "$s" "no shell was offered" '\(initramfs\)|BusyBox .* built-in shell'
	hasnt "$s" "nothing but the keyscript tried the tokens" "kekcrypt: device '/dev/vd"
	[ -z "${KC_BOOT_LOGS:-}" ] || cp "$W/$s.log" "$KC_BOOT_LOGS/$s-$TAP.log"
done
echo "1..$TAP"
[ "$fails" -eq 0 ]
