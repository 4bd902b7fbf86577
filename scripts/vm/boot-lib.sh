# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Whole-system boots of a Debian 12 whose root and data disks are kekcrypt volumes with their
# KEK in the Azure Key Vault fixture (HTTPS, managed identity), booted unattended in QEMU
# (TCG) through the initramfs kekcrypt's Debian packages build. Sourced by tests/vm/boot.sh
# (which checks every step) and scripts/demo.sh (which shows them).
#
# The caller sets VM_TOP (the source tree), W (a work directory; W/tls gets the fixture's
# PKI from tests/fixtures/tls.sh), DEBS (the directory of scripts/build-debs.sh's .deb files),
# KEKCRYPT (the kekcrypt of the host) and defines die MESSAGE. FIXTURE_ARGS adds options to
# the fixture (e.g. "--rsa-key kek-rsa-2": a second key, made when the state is first made).
# The functions for one root and its disks work on V (the variant: initramfs-tools or
# dracut), D (its directory), ROOT (the root filesystem being built, $D/root), kek (the KEK
# URI; kek_data, if set, the data disk's) and uuid_root / uuid_data, which the caller declares
# (local in a function is enough: these are called from it). DATA_TEMPLATE=yes makes the data
# disk that of a template image, whose clones re-key it at their first boot: root_config
# enables kekcrypt-firstboot.service, disks_encrypt puts a template mark on the data disk and
# gives it no recovery key (a template has none: every clone would share it).

# vm_qemu_machine_args, vm_qemu_drive
. "$VM_TOP/scripts/vm/qemu-config.sh"

PORT=8443
# shellcheck disable=SC2034 # used by the scripts that source this (also below)
URI="azure-kv+https://10.0.2.2:$PORT/keys/kek-rsa"
# The guest's console: the keyscript's recovery prompts and messages.
# shellcheck disable=SC2034
PROMPT_ROOT='recovery key or passphrase for root'
# shellcheck disable=SC2034
PROMPT_DATA='recovery key or passphrase for data'
# shellcheck disable=SC2034
KS_GAVEUP='kekcrypt keyscript-passphrase: not unlocked within the retry limit of'

# A vault with purge protection (recovery level Recoverable), as production should have: with
# the service's default (Recoverable+Purgeable) doctor would warn that the KEK can be deleted.
# Its keys are in ${KV_STATE:-$W/kv-state.json} (a boot gets a copy of its own).
fixture() {	# the fixture command line, with extra arguments
	echo "exec node '$VM_TOP/tests/fixtures/azure-kv/server.js' --port $PORT" \
		"--cert '$W/tls/server.pem' --key '$W/tls/server.key' --rsa-key kek-rsa" \
		"--recovery-level Recoverable --state '${KV_STATE:-$W/kv-state.json}' ${FIXTURE_ARGS:-} $*"
}
# In a PID namespace too (here and for the boots): when its first process ends, the kernel
# kills whatever is left in it (the fixture, QEMU), whatever way this test ends.
ns() { unshare --net --pid --mount --fork --mount-proc --kill-child -- "$@"; }

# debs: DEBS, the directory of kekcrypt's Debian packages: $KC_DEBS if it holds a build
# (scripts/test.sh builds them once), else $W/debs, built now by scripts/build-debs.sh.
debs() {
	if [ -n "${KC_DEBS:-}" ] && [ -f "$KC_DEBS/build.log" ]; then
		DEBS=$KC_DEBS
	else
		DEBS=$W/debs
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$VM_TOP/scripts/build-debs.sh" "$DEBS" ||
			die "building the Debian packages failed"
	fi
}

# kv_conf CA-PATH: kekcrypt.conf for the fixture (managed identity at the guests' gateway).
kv_conf() {
	printf '[azure-kv]\nauth = managed-identity\nallowed-hosts = 10.0.2.2\nca-file = %s\n' "$1"
	printf 'imds-endpoint = https://10.0.2.2:%s/metadata/identity/oauth2/token\n' "$PORT"
}

# root_kms_conf: the root's /etc/kekcrypt (kekcrypt.conf and the fixture's CA) and the host's
# $W/host.conf.
root_kms_conf() {
	# shellcheck disable=SC2174 # -p for a second run; the parent exists
	mkdir -m 700 -p "$ROOT/etc/kekcrypt"
	kv_conf /etc/kekcrypt/ca.pem >"$ROOT/etc/kekcrypt/kekcrypt.conf"
	cp "$W/tls/ca.pem" "$ROOT/etc/kekcrypt/ca.pem"
	chmod 600 "$ROOT/etc/kekcrypt/kekcrypt.conf"
	# Renamed into place: the boot test prepares its two roots side by side, and one may read
	# it while the other writes it (the same content).
	(umask 077 && kv_conf "$W/tls/ca.pem" >"$W/host.conf.$BASHPID" &&
		mv "$W/host.conf.$BASHPID" "$W/host.conf")
}

# host_ns COMMANDS: run COMMANDS (k = kekcrypt with host.conf) on the host in a private
# namespace, where the fixture listens on 10.0.2.2 as it will for the guests, and /etc is an
# overlay holding the file KEK at the path the tokens name.
host_ns() {
	cat >"$D/host.sh" <<SH
set -euo pipefail
ip link set lo up
ip addr add 10.0.2.2/32 dev lo
$(fixture --bind 10.0.2.2) >"$D/fixture.port" 2>"$D/fixture.log" &
for i in \$(seq 100); do grep -q '^PORT' "$D/fixture.port" && break; sleep 0.1; done
mkdir -p "$D/etc-up" "$D/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$D/etc-up,workdir=$D/etc-work" /etc
mkdir -p -m 700 /etc/kekcrypt
[ ! -e "$D/kek.bin" ] || cp -p "$D/kek.bin" /etc/kekcrypt/kek.bin
k() { KC_STATE_DIR="$D/state" "$KEKCRYPT" "\$@" --config "$W/host.conf"; }
$1
kill %1
SH
	ns bash "$D/host.sh"
}

# root_headers: choose the disks' UUIDs (uuid_root, uuid_data; also in $D/uuid-root and
# $D/uuid-data) and put headers with their tokens where the chroot's /dev/disk/by-uuid would
# have the disks.
root_headers() {
	# The disks' UUIDs, chosen now: the initramfs apt's install builds (root_install_debs)
	# reads the volumes' tokens before the disks are encrypted (disks_encrypt), from headers
	# formatted with the same UUIDs and KEKs: the same tokens as the disks will have.
	uuid_root=$(cat /proc/sys/kernel/random/uuid)
	uuid_data=$(cat /proc/sys/kernel/random/uuid)
	echo "$uuid_root" >"$D/uuid-root"
	echo "$uuid_data" >"$D/uuid-data"
	truncate -s 20M "$D/root.hdr" "$D/data.hdr"
	# shellcheck disable=SC2154 # kek: the caller's
	host_ns "k format -q $D/root.hdr --kek $kek --uuid $uuid_root
k format -q $D/data.hdr --kek ${kek_data:-$kek} --uuid $uuid_data" ||
		die "formatting the headers on the host failed"
	# The headers where the chroot's /dev/disk/by-uuid would have the disks: the initramfs
	# hook and the dracut module read the tokens (KEK files, remote KMSs) as on a real machine.
	mkdir -p "$ROOT/dev/disk/by-uuid"
	dd if="$D/root.hdr" of="$ROOT/dev/disk/by-uuid/$uuid_root" bs=1M count=16 status=none
	dd if="$D/data.hdr" of="$ROOT/dev/disk/by-uuid/$uuid_data" bs=1M count=16 status=none
}

# root_config: crypttab (keyscript for initramfs-tools; systemd-cryptsetup and the token
# plugin for dracut; root's entry until disks_encrypt hands it to kekcrypt-encrypt-root, with
# ROOT_TIMEOUT), fstab, the marker unit (kekcrypt doctor's lines "KC-DOCTOR: ...",
# then "KC-BOOT-OK root=... data=... marker=..." on the console once multi-user is reached,
# then poweroff), and the console and kvm settings of an emulated guest. With DATA_TEMPLATE=yes,
# kekcrypt-firstboot.service enabled, and the marker first waits (up to 300 s) for it to end,
# then prints "KC-FIRSTBOOT: " and the unit's state and result (systemctl show's KEY=VALUE
# pairs), "KC-FIRSTBOOT-MARK: " and `kekcrypt template show --json` of the data disk (/dev/vdb),
# "KC-FIRSTBOOT-LUKS: " and its LUKS2 metadata (cryptsetup luksDump --dump-json-metadata), each
# document on one line, and the unit's journal ("KC-FIRSTBOOT-LOG: ...").
root_config() {
	local KS=/usr/lib/kekcrypt/kekcrypt-keyscript
	if [ "$V" = dracut ]; then
		# No keyscript: systemd-cryptsetup and the token plugin; root in the initramfs. The
		# deadlines (ROOT_TIMEOUT for root's entry) run while the initramfs brings the network
		# up (systemd-networkd) and, for data, right after switch-root while udev loads modules:
		# on an emulated guest of a busy host those took 14 s, so 30 s each (the KMS-down boot
		# waits them out).
		ROOT_TIMEOUT=30
		# zstd, not dracut's default gzip (initramfs-tools' default is zstd already): the
		# generic image is ~95 MB of cpio, which the emulated kernel unpacks at boot and
		# lsinitrd (kekcrypt doctor's check of the image, in the booted guest) decompresses
		# five times; under emulation doctor took over 2 minutes with gzip. At level 3, not
		# dracut's 15 for "zstd": 0.7 s of CPU for the generic image instead of 17.6, for an
		# image 14% larger, decompressed as fast.
		mkdir -p "$ROOT/etc/dracut.conf.d"
		echo 'compress="zstd -3 -q -T0"' >"$ROOT/etc/dracut.conf.d/80-kc-vm-zstd.conf"
		cat >"$ROOT/etc/crypttab" <<-EOF
	root UUID=$uuid_root none luks,x-initrd.attach,token-timeout=$ROOT_TIMEOUT
	data UUID=$uuid_data none luks,token-timeout=30,x-systemd.device-timeout=5min
	EOF
	else
		ROOT_TIMEOUT=12
		cat >"$ROOT/etc/crypttab" <<-EOF
	root UUID=$uuid_root timeout=$ROOT_TIMEOUT luks,keyscript=$KS,initramfs
	data UUID=$uuid_data timeout=6 luks,keyscript=$KS,initramfs
	EOF
	fi
	# After switch-root, udev took 38 s to announce the data mapping on an emulated guest of a busy
	# host; systemd's default 90 s for a device then ran out once (CI: emergency mode, a locked
	# root account's "Press Enter to continue."): 5 minutes, here and for data's crypttab device.
	cat >"$ROOT/etc/fstab" <<-EOF
	/dev/mapper/root / ext4 defaults 0 1
	/dev/mapper/data /data ext4 defaults,x-systemd.device-timeout=5min 0 2
	EOF
	mkdir -p "$ROOT/data"
	echo kekcrypt-boot >"$ROOT/etc/hostname"
	cat >"$ROOT/etc/systemd/system/kc-boot-marker.service" <<-'EOF'
	[Unit]
	Description=kekcrypt boot test marker
	# After the clones' firstboot too, when it runs: the marker's wait for it (below) then
	# finds it done, instead of asking systemctl every second while the rekey runs (18 s of
	# emulated CPU).
	After=multi-user.target kekcrypt-firstboot.service
	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/kc-boot-marker
	ExecStartPost=/bin/systemctl poweroff --no-block
	[Install]
	WantedBy=multi-user.target
	EOF
	# kekcrypt doctor in the booted system (real devices, crypttab and initramfs), then the marker.
	# With kekcrypt-firstboot.service enabled, after it ended (a rekey takes a while), and what it
	# did: its state and the data disk's mark and LUKS2 metadata (digests), as the JSON the tools
	# print, for the test to read. sync before the marker: a boot that writes to a disk overlay
	# (not a snapshot) is killed right after it.
	cat >"$ROOT/usr/local/sbin/kc-boot-marker" <<-'EOF'
	#!/bin/sh
	fb=kekcrypt-firstboot.service
	if systemctl -q is-enabled $fb 2>/dev/null; then
		i=0
		while [ $i -lt 300 ] && systemctl show -p ActiveState --value $fb |
			grep -Eqx 'active|activating|deactivating|reloading'; do
			sleep 1
			i=$((i + 1))
		done
		{
		echo "KC-FIRSTBOOT: $(systemctl show -p ActiveState,SubState,Result,ExecMainStatus,ExecMainExitTimestampMonotonic $fb | tr '\n' ' ')"
		echo "KC-FIRSTBOOT-MARK: $(kekcrypt template show --json /dev/vdb 2>&1 | tr -d '\n')"
		echo "KC-FIRSTBOOT-LUKS: $(cryptsetup luksDump --dump-json-metadata /dev/vdb 2>&1 | tr -d '\n')"
		journalctl -b -u $fb -o cat --no-pager | sed 's/^/KC-FIRSTBOOT-LOG: /'
		} >/dev/ttyS0
	fi
	kekcrypt doctor >/run/doctor.txt 2>&1
	echo "KC-DOCTOR-EXIT=$?" >>/run/doctor.txt
	sed 's/^/KC-DOCTOR: /' /run/doctor.txt >/dev/ttyS0
	sync
	echo "KC-BOOT-OK root=$(findmnt -no SOURCE /) data=$(findmnt -no SOURCE /data) marker=$(cat /data/marker)" >/dev/ttyS0
	EOF
	chmod 755 "$ROOT/usr/local/sbin/kc-boot-marker"
	ln -sf /etc/systemd/system/kc-boot-marker.service \
		"$ROOT/etc/systemd/system/multi-user.target.wants/kc-boot-marker.service"
	# As systemctl enable does (the unit comes with the packages, installed later).
	[ "${DATA_TEMPLATE:-}" != yes ] ||
		ln -sf /lib/systemd/system/kekcrypt-firstboot.service \
			"$ROOT/etc/systemd/system/multi-user.target.wants/kekcrypt-firstboot.service"
	root_guest_settings
}

# root_guest_settings: what every booted root of these tests has for an emulated guest: the
# disks solid-state, no gettys, no maintenance jobs, no unused generators, no kvm.
root_guest_settings() {
	# The disks solid-state, as a cloud disk is (QEMU's virtio disks say rotational), before
	# anything writes a LUKS2 header: on a rotational disk libcryptsetup wipes a destroyed
	# keyslot's area in 35 passes (Gutmann's patterns), and at the end of a re-encryption (the
	# clones' firstboot) its resilience area, the 16 MiB of free keyslot space: 560 MiB written
	# (scripts/vm/mkinitrd.sh does the same in the other guests).
	cat >"$ROOT/etc/systemd/system/kc-test-ssd.service" <<-'EOF'
	[Unit]
	Description=kekcrypt boot test: the virtio disks are solid-state
	DefaultDependencies=no
	Before=sysinit.target kekcrypt-firstboot.service
	[Service]
	Type=oneshot
	ExecStart=/bin/sh -c 'for r in /sys/block/vd*/queue/rotational; do echo 0 >"$r"; done'
	[Install]
	WantedBy=sysinit.target
	EOF
	mkdir -p "$ROOT/etc/systemd/system/sysinit.target.wants"
	ln -sf /etc/systemd/system/kc-test-ssd.service \
		"$ROOT/etc/systemd/system/sysinit.target.wants/kc-test-ssd.service"
	# The serial console is the only console: no getty fighting the askpass prompt on it.
	ln -sf /dev/null "$ROOT/etc/systemd/system/serial-getty@ttyS0.service"
	# Nor on the virtual consoles nobody sees, and no maintenance jobs: an emulated guest's
	# CPU time goes to what the boot proves. Nor the modules systemd loads early for what these
	# guests do not use (FUSE, loop devices, pstore, DRM, configfs): each modprobe took 2-3 s of
	# emulated CPU per boot (dm_mod's stays).
	local unit gen
	for unit in getty@.service getty-static.service e2scrub_reap.service e2scrub_all.timer \
		apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer \
		systemd-tmpfiles-clean.timer modprobe@configfs.service modprobe@drm.service \
		modprobe@efi_pstore.service modprobe@fuse.service modprobe@loop.service; do
		ln -sf /dev/null "$ROOT/etc/systemd/system/$unit"
	done
	# Nor the systemd generators these guests have no use for (each a process start, about a
	# second of emulated CPU per boot): those of fstab and crypttab stay, they set up the volumes.
	mkdir -p "$ROOT/etc/systemd/system-generators"
	for gen in debug getty gpt-auto hibernate-resume integritysetup rc-local run sysv \
		system-update veritysetup; do
		ln -sf /dev/null "$ROOT/etc/systemd/system-generators/systemd-$gen-generator"
	done
	# No kvm: udev would load it for the emulated CPU's virtualization extensions, and its module
	# load stalled a guest CPU for 45 s on a busy host (a soft lockup, right after switch-root).
	printf 'blacklist kvm\nblacklist kvm_amd\nblacklist kvm_intel\n' >"$ROOT/etc/modprobe.d/kc-test-no-kvm.conf"
}

# root_install_debs: kekcrypt installed into the root with apt from $DEBS, whose maintainer
# scripts build the initramfs (apt's output in $D/initramfs.log); the kernel and that image
# copied to $D/vmlinuz and $D/initrd.img.
root_install_debs() {
	local kver
	kver=$(ls "$ROOT/lib/modules")
	# kekcrypt installed now, with apt from the packages (no download: every dependency is in
	# the root), as an administrator would: its maintainer scripts build the image. kekcrypt-
	# initramfs's postinst runs update-initramfs -u; kekcrypt-dracut activates the
	# update-initramfs trigger, on which dracut (Debian's package: a generic image, not hostonly)
	# rebuilds it with our module, which adds the x-initrd.attach entries of crypttab.
	mkdir -p "$ROOT/tmp/debs"
	cp "$DEBS"/kekcrypt_*.deb "$DEBS"/libkekcrypt1_*.deb "$ROOT/tmp/debs/"
	if [ "$V" = dracut ]; then
		cp "$DEBS"/kekcrypt-dracut_*.deb "$ROOT/tmp/debs/"
	else
		cp "$DEBS"/kekcrypt-initramfs_*.deb "$ROOT/tmp/debs/"
	fi
	chroot "$ROOT" sh -c 'apt-get install -y /tmp/debs/*.deb' >"$D/initramfs.log" 2>&1 ||
		{ tail -n 30 "$D/initramfs.log"; die "apt-get install of the packages failed"; }
	rm -rf "$ROOT/tmp/debs"
	cp "$ROOT/boot/initrd.img-$kver" "$D/initrd.img"
	cp "$ROOT/boot/vmlinuz-$kver" "$D/vmlinuz"
}

# disks_encrypt: $D/root.img and $D/data.img, the root filesystem and a data filesystem
# holding "marker", encrypted in place on the host with the UUIDs root_headers chose, and a
# recovery key each: $D/rec-DISK.key, and as a person types it at the prompts,
# $D/rec-DISK.typed-sd and $D/rec-DISK.typed-keyscript. The data disk by `kekcrypt encrypt`
# under $kek_data (or $kek), with DATA_TEMPLATE=yes then marked a template (`kekcrypt template
# mark`; its --json in $D/data-template.json) instead of given a recovery key; the root disk by kekcrypt-encrypt-root under $kek, as an
# administrator encrypts an OS disk: root's crypttab entry (ROOT_TIMEOUT), the initramfs built
# again in the filesystem (reading the tokens of root's new header and of the data disk,
# attached here as a loop device), the kernel and that initramfs copied out to $D/vmlinuz and
# $D/initrd.img (the guests boot them directly: --boot-outside), then the encryption; its
# output in $D/encrypt-root.log.
disks_encrypt() {
	mkdir "$D/data-dir" "$D/boot"
	echo "data-disk-$uuid_data" >"$D/data-dir/marker"
	# Not root_headers' header copies; root's entry is kekcrypt-encrypt-root's to write (the
	# one above made the image apt's install built a complete one).
	rm -rf "$ROOT/dev/disk"
	sed -i '/^root /d' "$ROOT/etc/crypttab"
	# Its content and 96 MiB to spare (kekcrypt-encrypt-root's new initramfs; the booted system
	# writes little; journald keeps its own share free), then the room encryption needs: a 16 MiB header in front, 32 MiB in all.
	mke2fs -q -t ext4 -d "$ROOT" -L root "$D/root.img" "$(($(du -sm "$ROOT" | cut -f1) + 96))M"
	mke2fs -q -t ext4 -d "$D/data-dir" -L data "$D/data.img" 40M
	truncate -s +32M "$D/root.img" "$D/data.img"
	# Offline, through libcryptsetup's userspace crypto (the host has no device-mapper); the
	# guests then read the disks through dm-crypt. Cheap argon2id for the recovery keys: the guest
	# is emulated (a real one benchmarks on the machine itself).
	local fast="--json --pbkdf-memory 32 --pbkdf-force-iterations 4" recs="root data"
	local data_key="k recovery add -q $D/data.img $fast >$D/rec-data.json"
	if [ "${DATA_TEMPLATE:-}" = yes ]; then
		data_key="k template mark --json $D/data.img >$D/data-template.json"
		recs=root
	fi
	host_ns "k encrypt -q $D/data.img --kek ${kek_data:-$kek} --uuid $uuid_data
	$data_key
	loop=\$(losetup -f --show -r $D/data.img)
	rc=0
	KEKCRYPT=$KEKCRYPT KC_STATE_DIR=$D/state ${ENCRYPT_ROOT:-$(dirname "$KEKCRYPT")/kekcrypt-encrypt-root} \\
		$D/root.img --kek $kek --uuid $uuid_root --config $W/host.conf --timeout $ROOT_TIMEOUT \\
		--boot-outside --export-boot $D/boot >$D/encrypt-root.log 2>&1 || rc=\$?
	losetup -d \$loop
	[ \$rc = 0 ] || { tail -n 40 $D/encrypt-root.log; exit 1; }
	k recovery add -q $D/root.img $fast >$D/rec-root.json" ||
		die "encrypting the disks on the host failed"
	cp "$D"/boot/vmlinuz-* "$D/vmlinuz"
	cp "$D"/boot/initrd.img-* "$D/initrd.img"
	local d
	for d in $recs; do
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recovery_key"])' \
			"$D/rec-$d.json" >"$D/rec-$d.key"
		# As a person types it at the prompts: in upper case without dashes (at
		# systemd-cryptsetup's, dracut, one of the forms a recovery key has a keyslot of its own
		# for), and in mixed case with blanks for the dashes (at the keyscript's,
		# initramfs-tools, which normalises what it reads).
		sed 's/[cdfhjlnrtv]/\U&/g; s/-/ /g' "$D/rec-$d.key" >"$D/rec-$d.typed-keyscript"
		tr -d - <"$D/rec-$d.key" | tr a-z A-Z >"$D/rec-$d.typed-sd"
	done
}

# boot_start NAME FIXTURE-ARGS|down [boot-console.py options...]: boot the disks of variant $V
# ($D) in a fresh namespace, in the background; the console log is $W/NAME.log, the driver's
# "seen" lines $W/NAME.seen, its exit status $W/NAME.rc. The disks are snapshots (QEMU's
# snapshot=on: the guest's writes go to a scratch overlay), so boots of one variant can run
# side by side, each from the disks encrypted on the host; the fixture, if up, has its own copy of
# the key state. BOOT_DATA=FILE: the data disk is FILE instead, a qcow2 overlay of $D/data.img
# that keeps the guest's writes (a clone of the data disk, booted again later). BOOT_DRIVES=
# "DRIVE..." (vm_qemu_drive's values, blank-separated): the disks instead of root's and data's;
# BOOT_INITRD=FILE the initramfs instead of $D/initrd.img; BOOT_ROOTDEV the root= device
# (/dev/mapper/root).
boot_start() {
	local name=$1 fx=$2
	local append="root=${BOOT_ROOTDEV:-/dev/mapper/root} ro console=ttyS0 ip=dhcp panic=-1 net.ifnames=0"
	# The stall watchdog's dump of blocked tasks needs sysrq (boot-console.py --stall); the
	# guests' common arguments: scripts/vm/qemu-config.sh.
	append+=" $KC_VM_KERNEL_ARGS"
	shift 2
	# dracut: no emergency shell; the journal (the plugin's messages) on the console, also
	# where the plugin unlocks a data volume after the initramfs (ade).
	[ "$V" != dracut ] || append+=" rd.shell=0 rd.emergency=poweroff"
	[ "$V" = initramfs-tools ] || append+=" systemd.journald.forward_to_console=1"
	cp "$W/kv-state.json" "$W/$name.kv-state.json"
	local drives d
	drives="$(vm_qemu_drive "$D/root.img" snapshot=on) $(vm_qemu_drive "$D/data.img" snapshot=on)"
	[ -z "${BOOT_DATA:-}" ] || drives="${drives% *} $(vm_qemu_drive "$BOOT_DATA" "$KC_VM_DRIVE_OPTS" qcow2)"
	drives=${BOOT_DRIVES:-$drives}
	# One CPU each: two emulated CPUs spent more host CPU (one spinning on a lock the other
	# held while the host ran something else) for no faster boot: 4 boots ~500 -> ~420 s of CPU.
	cat >"$W/$name.ns.sh" <<SH
set -eu
ip link set lo up
if [ "$fx" != down ]; then
	$(KV_STATE=$W/$name.kv-state.json fixture "$fx") >"$W/$name.fixture.port" 2>"$W/$name.fixture.log" &
	for i in \$(seq 100); do grep -q '^PORT' "$W/$name.fixture.port" && break; sleep 0.1; done
fi
exec python3 "$VM_TOP/scripts/vm/boot-console.py" --log "$W/$name.log" --timeout 600 \\
	--stall 120 --qmp "$W/$name.qmp" --done 'KC-BOOT-OK' ${*:+$(printf "%q " "$@")} -- \\
	qemu-system-x86_64 $(vm_qemu_machine_args | tr '\n' ' ') -smp 1 -m 1024 -nographic \\
	-no-reboot -kernel "$D/vmlinuz" -initrd "${BOOT_INITRD:-$D/initrd.img}" -append "$append" \\
	-qmp unix:"$W/$name.qmp",server=on,wait=off \\
	$(for d in $drives; do printf -- '-drive %q ' "$d"; done) \\
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
SH
	{ ns bash "$W/$name.ns.sh" >"$W/$name.seen" 2>&1 && echo 0 || echo $?; } >"$W/$name.rc.tmp" &&
		mv "$W/$name.rc.tmp" "$W/$name.rc" &
}

# boot_wait NAME: wait for the boot NAME to end; print the driver's exit status (0: the done
# marker came).
boot_wait() {
	while [ ! -e "$W/$1.rc" ]; do sleep 1; done
	cat "$W/$1.rc"
}
