# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# The boot test's Azure Disk Encryption VM (issue 14 item 7): a Debian 12 laid out as ADE lays
# out an encrypted Ubuntu 20.04/22.04 VM (doc/ADE.md, section 2a and "Summary for design"),
# made on the host for tests/vm/boot.sh (which sources this after boot-lib.sh and checks
# what its boots print). Written here after ADE's public description and source; none of ADE's
# code is in it.
#
# The OS disk is partitioned (GPT): partition 1 is /boot (ext4), holding the kernel, the
# initramfs and the OS volume's detached LUKS2 header, /boot/luks/osluksheader (a 32 MiB
# file); partition 2 is the root filesystem, encrypted in place with that header (data offset
# 0: nothing on the partition but ciphertext) under the BEK passphrase, as ADE does it
# (`cryptsetup reencrypt --encrypt --header`, offline: the host has no device-mapper). The data
# disk is a LUKS2 volume with its header on it, made the same way, mapped under an ADE-style
# UUID name. The BEK disk: one VFAT partition labelled "BEK VOLUME" holding
# LinuxPassPhraseFileName and LinuxPassPhraseFileName_1_0 (the passphrase: 172 characters of
# base64, no newline). crypttab and fstab as ADE writes them (its osencrypt line appended
# without a newline), root=/dev/mapper/osencrypt; the initramfs unlocks the OS volume the way
# ADE's crypt-ade-hook and crypt-ade-boot do: the hook copies the header into the image and
# the BEK volume's filesystem modules; a script of init-premount mounts the BEK volume and
# runs `cryptsetup luksOpen --header`. After switch-root systemd-cryptsetup opens the data
# volume with its BEK key file (the BEK volume mounted by fstab first).
#
# kekcrypt is installed from the packages (as an operator would on the running VM) and a unit
# runs the guest's part: on the ADE boot (no /etc/crypttab.ade yet) it brings the network up
# (systemd-networkd, DHCP) and runs `kekcrypt adopt --from ade --kek $URI --json` (lines
# "KC-ADOPT: <json>", "KC-ADOPT-EXIT=N"), then what adopt says is left: a recovery key per
# volume (what they print on stderr: "KC-ADE-NOTE: ..."), ADE's initramfs hook and script
# removed and the initramfs rebuilt (update-initramfs
# -u: "KC-INITRAMFS-EXIT=N"), and prints crypttab ("KC-ADE-CRYPTTAB: ", lines joined by |); on
# the next boot, kekcrypt doctor ("KC-DOCTOR: ..."); on each, the marker "KC-BOOT-OK root=...
# data=... marker=... bek=..." and when each step ended ("KC-ADE-T: STEP UPTIME").
# The image's initramfs is lean (MODULES=list, the modules the guest needs listed), so that
# the rebuild in the emulated guest is quick.

# ade_prepare: $W/ade/ gets disk.img (the OS disk), data.img, bek.img (the BEK disk), vmlinuz
# and initrd.img (the ADE image's), kver, bek.key (the passphrase), and the names the checks
# use: name-data (the data volume's mapping), uuid-data, partuuid-root, uuid-boot.
ade_prepare() {
local V=ade
local D=$W/ade
local ROOT=$D/root
local kver uuid_boot partuuid_root partuuid_boot uuid_data name_data mib=$((1 << 20))
mkdir "$D"
step "$V: root filesystem"
"$VM_TOP/scripts/vm/debian-root.sh" --variant initramfs-tools "$ROOT"
kver=$(ls "$ROOT/lib/modules")
echo "$kver" >"$D/kver"
root_kms_conf
uuid_boot=$(cat /proc/sys/kernel/random/uuid)
partuuid_root=$(cat /proc/sys/kernel/random/uuid)
partuuid_boot=$(cat /proc/sys/kernel/random/uuid)
uuid_data=$(cat /proc/sys/kernel/random/uuid)
name_data=$(cat /proc/sys/kernel/random/uuid)	# ADE names a data volume's mapping so
echo "$uuid_boot" >"$D/uuid-boot"
echo "$partuuid_root" >"$D/partuuid-root"
echo "$uuid_data" >"$D/uuid-data"
echo "$name_data" >"$D/name-data"
# The BEK passphrase: 128 random bytes in base64, no newline.
(umask 077 && head -c 128 /dev/urandom | base64 -w0 >"$D/bek.key")

step "$V: crypttab, fstab, ADE's initramfs scripts, the test's unit"
local B=/mnt/azure_bek_disk
cat >"$ROOT/etc/crypttab" <<-EOF
# <target name>	<source device>		<key file>	<options>
$name_data /dev/disk/by-uuid/$uuid_data $B/LinuxPassPhraseFileName_1_0 luks,nofail
EOF
printf '%s' "osencrypt /dev/disk/by-partuuid/$partuuid_root $B/LinuxPassPhraseFileName luks,discard,header=/boot/luks/osluksheader" \
	>>"$ROOT/etc/crypttab"
cat >"$ROOT/etc/fstab" <<-EOF
/dev/mapper/osencrypt / ext4 defaults 0 1
UUID=$uuid_boot /boot ext4 defaults 0 2
/dev/mapper/$name_data /data auto defaults,nofail,discard 0 0
LABEL=BEK\\040VOLUME $B auto defaults,discard,nofail 0 0
EOF
mkdir -p "$ROOT/data" "$ROOT$B" "$ROOT/boot/luks"
echo kekcrypt-ade >"$ROOT/etc/hostname"
# A lean image, here and when the guest builds it again: the modules listed only, and gzip at
# its fastest (the root has no zstd): a build in the emulated guest took 2 minutes of its CPU
# with gzip's default. (The header in it is 32 MiB, half of it random: LUKS2's keyslots area.)
sed -i -e 's/^MODULES=.*/MODULES=list/' -e 's/^COMPRESS=.*/COMPRESS=gzip/' \
	"$ROOT/etc/initramfs-tools/initramfs.conf"
echo COMPRESSLEVEL=1 >>"$ROOT/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk >>"$ROOT/etc/initramfs-tools/modules"
# The network after boot (adopt reaches the KMS, the plugin unlocks data), keeping the address
# the initramfs gave eth0 when kekcrypt-keyscript brought it up.
cat >"$ROOT/etc/systemd/network/20-eth0.network" <<-'EOF'
[Match]
Name=eth0
[Network]
DHCP=ipv4
KeepConfiguration=yes
EOF
chroot "$ROOT" systemctl -q enable systemd-networkd.service
cat >"$ROOT/etc/systemd/system/kc-ade-marker.service" <<-'EOF'
[Unit]
Description=kekcrypt boot test: adopt an ADE VM
After=multi-user.target
RequiresMountsFor=/data
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kc-ade-marker
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
EOF
cat >"$ROOT/usr/local/sbin/kc-ade-marker" <<-EOF
#!/bin/sh
out=/dev/ttyS0
# t STEP: when STEP ended (seconds since boot), for the test's log.
t() { echo "KC-ADE-T: \$1 \$(cut -d' ' -f1 /proc/uptime)" >\$out; }
bek=\$(findmnt -no SOURCE $B || echo none)
t booted
if [ ! -e /etc/crypttab.ade ]; then
	/lib/systemd/systemd-networkd-wait-online -i eth0 -4 --timeout=60 >/dev/null 2>&1 ||
		echo "KC-ADE: no network" >\$out
	kekcrypt adopt --from ade --kek $URI --json >/run/adopt.json 2>/run/adopt.err
	echo "KC-ADOPT-EXIT=\$?" >\$out
	t adopt
	echo "KC-ADOPT: \$(tr -d '\\n' </run/adopt.json)" >\$out
	sed 's/^/KC-ADOPT-ERR: /' /run/adopt.err >\$out
	# What adopt says is left: a recovery key for each volume (once the BEK disk is gone, what
	# opens it when no KEK answers; cheap, the guest is emulated), ADE's hook and script
	# removed, the initramfs built again. (doctor: on the next boot)
	for v in "--header /boot/luks/osluksheader /dev/disk/by-partuuid/$partuuid_root" /dev/disk/by-uuid/$uuid_data; do
		kekcrypt recovery add -q \$v --pbkdf-memory 32 --pbkdf-force-iterations 4 >/dev/null \\
			2>/run/recovery.err || echo "KC-ADE: recovery add \$v failed" >\$out
		sed 's/^/KC-ADE-NOTE: /' /run/recovery.err >\$out
	done
	t recovery-keys
	rm -f /usr/share/initramfs-tools/hooks/crypt-ade-hook \\
		/usr/share/initramfs-tools/scripts/init-premount/crypt-ade-boot
	update-initramfs -u -k $kver >/run/initramfs.log 2>&1
	echo "KC-INITRAMFS-EXIT=\$?" >\$out
	t initramfs
	sed 's/^/KC-INITRAMFS: /' /run/initramfs.log >\$out
	echo "KC-ADE-CRYPTTAB: \$(tr '\\n' '|' </etc/crypttab)" >\$out
else
	kekcrypt doctor >/run/doctor.txt 2>&1
	echo "KC-DOCTOR-EXIT=\$?" >>/run/doctor.txt
	sed 's/^/KC-DOCTOR: /' /run/doctor.txt >\$out
	t doctor
fi
sync
echo "KC-BOOT-OK root=\$(findmnt -no SOURCE /) data=\$(findmnt -no SOURCE /data) marker=\$(cat /data/marker) bek=\$bek" >\$out
EOF
chmod 755 "$ROOT/usr/local/sbin/kc-ade-marker"
ln -sf /etc/systemd/system/kc-ade-marker.service \
	"$ROOT/etc/systemd/system/multi-user.target.wants/kc-ade-marker.service"
# The emulated guest's settings of the other roots.
root_guest_settings

step "$V: kekcrypt installed, the disks encrypted as ADE does, the ADE image built"
# (its packages' image built before ADE's hook is there: the header it copies is not yet)
root_install_debs
# ADE's hook: the header and what mounting the BEK volume needs, into the image.
mkdir -p "$ROOT/usr/share/initramfs-tools/scripts/init-premount"
cat >"$ROOT/usr/share/initramfs-tools/hooks/crypt-ade-hook" <<-'EOF'
#!/bin/sh
# The boot test's imitation of Azure Disk Encryption's initramfs hook.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
mkdir -p "$DESTDIR/boot/luks" "$DESTDIR/mnt/azure_bek_disk"
cp /boot/luks/osluksheader "$DESTDIR/boot/luks/osluksheader"
manual_add_modules vfat nls_cp437 nls_ascii
copy_exec /sbin/cryptsetup
EOF
# ... and its script, which opens the OS volume before the root is looked for.
cat >"$ROOT/usr/share/initramfs-tools/scripts/init-premount/crypt-ade-boot" <<-EOF
#!/bin/sh
# The boot test's imitation of Azure Disk Encryption's init-premount script.
[ "\$1" = prereqs ] && { echo udev; exit 0; }
i=0
while [ \$i -lt 60 ] && { [ ! -e /dev/disk/by-partuuid/$partuuid_root ] ||
	[ ! -e '/dev/disk/by-label/BEK\\x20VOLUME' ]; }; do
	sleep 1
	i=\$((i + 1))
done
modprobe vfat
mount -t vfat -o ro '/dev/disk/by-label/BEK\\x20VOLUME' $B
cryptsetup luksOpen /dev/disk/by-partuuid/$partuuid_root osencrypt \\
	--header /boot/luks/osluksheader -d $B/LinuxPassPhraseFileName &&
	echo "KC-ADE-INITRAMFS: osencrypt opened with the BEK passphrase"
umount $B
EOF
chmod 755 "$ROOT/usr/share/initramfs-tools/hooks/crypt-ade-hook" \
	"$ROOT/usr/share/initramfs-tools/scripts/init-premount/crypt-ade-boot"
# The root filesystem without /boot (its own partition), encrypted in place with the header
# on /boot under the BEK passphrase; cheap PBKDF: the guest is emulated.
local fast=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
mv "$ROOT/boot" "$D/boot-dir"
mkdir "$ROOT/boot"
# (room for the initramfs the guest builds: mkinitramfs works in /var/tmp)
mke2fs -q -t ext4 -d "$ROOT" -L root "$D/root.fs" "$(($(du -sm "$ROOT" | cut -f1) + 256))M"
rmdir "$ROOT/boot"
mv "$D/boot-dir" "$ROOT/boot"
truncate -s 32M "$ROOT/boot/luks/osluksheader"
cryptsetup reencrypt -q --encrypt --type luks2 --header "$ROOT/boot/luks/osluksheader" \
	--force-offline-reencrypt --key-file "$D/bek.key" "${fast[@]}" "$D/root.fs" ||
	die "$V: encrypting the root filesystem with a detached header failed"
# The image that boots: ADE's hook copies the header made just now.
chroot "$ROOT" update-initramfs -u -k "$kver" >"$D/ade-initramfs.log" 2>&1 ||
	{ tail -n 30 "$D/ade-initramfs.log"; die "$V: building ADE's initramfs failed"; }
cp "$ROOT/boot/vmlinuz-$kver" "$D/vmlinuz"
cp "$ROOT/boot/initrd.img-$kver" "$D/initrd.img"
local boot_mib=192 root_mib
mke2fs -q -t ext4 -d "$ROOT/boot" -L boot -U "$uuid_boot" "$D/boot.fs" ${boot_mib}M
# The OS disk: GPT, /boot at 1 MiB, the root after it.
root_mib=$((($(stat -c %s "$D/root.fs") + mib - 1) / mib))
truncate -s "$((1 + boot_mib + root_mib + 1))M" "$D/disk.img"
sfdisk -q "$D/disk.img" <<-EOF
label: gpt
start=2048, size=$((boot_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$partuuid_boot
start=$(((1 + boot_mib) * 2048)), size=$((root_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$partuuid_root
EOF
dd if="$D/boot.fs" of="$D/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$D/root.fs" of="$D/disk.img" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none
rm -f "$D/boot.fs" "$D/root.fs"
echo $((1 * mib)) >"$D/boot-offset"
# The data disk: ext4 with the marker, encrypted in place (its header at the front) under the
# same passphrase.
mkdir "$D/data-dir"
echo "ade-data-disk-$uuid_data" >"$D/data-dir/marker"
mke2fs -q -t ext4 -d "$D/data-dir" -L data "$D/data.img" 40M
truncate -s +32M "$D/data.img"
cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 32M --uuid "$uuid_data" \
	--force-offline-reencrypt --key-file "$D/bek.key" "${fast[@]}" "$D/data.img" ||
	die "$V: encrypting the data disk failed"
# The BEK disk: an MBR, one VFAT partition labelled "BEK VOLUME" at 1 MiB holding the key files.
truncate -s 16M "$D/bek.img"
printf 'label: dos\nstart=2048, type=c\n' | sfdisk -q "$D/bek.img"
mkfs.vfat --offset 2048 -n "BEK VOLUME" "$D/bek.img" $((15 * 1024)) >/dev/null
mcopy -i "$D/bek.img@@1M" "$D/bek.key" ::LinuxPassPhraseFileName
mcopy -i "$D/bek.img@@1M" "$D/bek.key" ::LinuxPassPhraseFileName_1_0
rm -rf "$ROOT" "$D/data-dir"
}
