#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build a self-contained initramfs (gzip'ed cpio) that runs one test scenario in the QEMU guest.
#
# Usage: scripts/vm/mkinitrd.sh --output FILE [options] SCENARIO.sh
#   --output FILE          where to write the initramfs (required)
#   --modules DIR          unpacked kernel modules dir (.../lib/modules/KVER);
#                          default: from scripts/vm/fetch-kernel.sh
#   --module NAME          load this kernel module too (with its dependencies); repeatable
#   --bin PATH[:DEST]      copy an executable (PATH or a command name) and the shared
#                          libraries ldd resolves; DEST defaults to /usr/bin/NAME; repeatable
#   --lib PATH[:DEST]      copy a shared library (e.g. a dlopen()ed module) and its
#                          dependencies; DEST defaults to PATH; repeatable
#   --file SRC:DEST        copy a file or directory to DEST in the guest (not under /dev,
#                          /proc, /sys; under /tmp it is kept: /tmp then gets no tmpfs)
#   --env NAME=VALUE       export NAME=VALUE to the scenario (/scenario.env); non-secret
#                          values only (they sit in the image and the temp dir); repeatable
#   --disks N              number of virtio disks /init waits for (vda, vdb, ...); default 0
#   --timeout SECONDS      in-guest limit for the scenario (default 240); on expiry the
#                          scenario's process group is killed and the exit code is 124
#   --trace                run the scenario with bash -x, each command on the console as
#                          "KC-GUEST-TRACE: <command>" (the stall watchdog names the last one)
#   --no-cache             do not use or fill the cache of base archives
#
# The image is two concatenated cpio archives (the kernel unpacks them in order):
# - a base archive, the same for every scenario and cached in
#   "${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}/initrd-base/": /init, busybox (all
#   applets), cryptsetup, dmsetup, mke2fs/mkfs.ext4, e2fsck, blockdev, keyctl (if
#   installed), their libraries, and the kernel modules for virtio disks and network,
#   device-mapper, dm-crypt with aes-xts-plain64 and AF_ALG (ext4 is built into Debian's
#   cloud kernel). Its cache key covers this script, the kernel, the tools and dpkg's state.
# - a scenario archive: /scenario.sh, /scenario.env, the harness settings and whatever
#   --bin/--lib/--file name.
# Libraries that ldd reports "not found" are an error: set LD_LIBRARY_PATH for uninstalled
# (libtool) builds. Libraries found outside the system directories are installed in
# /usr/lib/x86_64-linux-gnu in the guest, where the loader finds them without a cache.
#
# The generated /init prints on the console: KC-GUEST-BEGIN, then the scenario's output,
# then KC-GUEST-EXIT=<code> and KC-GUEST-END, and powers off. While the scenario runs, a
# heartbeat line "KC-GUEST-HB <sectors> <jiffies>" every 5 s gives the sectors read and
# written on the virtio disks and the CPU time used (user, nice, system, irq, softirq) so
# far: run-guest.sh's stall watchdog tells a guest at work from a stuck one by them. Failures of the harness itself
# (module load, missing disk) print KC-GUEST-SETUP-FAILED: <reason> and no KC-GUEST-EXIT.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
CACHE=${KEKCRYPT_VM_CACHE:-/var/cache/kekcrypt-vm}

# Default modules, in no particular order (dependencies are resolved from modinfo).
# virtio_pci/virtio_blk/virtio_net: disks and network; dm-mod/dm-crypt: device-mapper;
# xts (softdep ecb) + aesni-intel (crypto_simd, cryptd): aes-xts-plain64 (aes itself is
# built in); af_alg + algif_skcipher/algif_hash: libcryptsetup probes ciphers through AF_ALG.
readonly REQUIRED_MODULES="virtio_pci virtio_blk virtio_net dm-mod dm-crypt xts ecb aesni-intel
	af_alg algif_skcipher algif_hash"
# Useful but not essential: skipped with a warning if the kernel lacks them.
readonly OPTIONAL_MODULES="virtio_rng crc32c-intel"
# NAME:DEST. Scenarios run under bash; /bin/sh is dash as on Debian (Debian's busybox
# prefers its applets to PATH in its own shell, so it must not be the scenario's shell).
readonly BASE_TOOLS="bash:/usr/bin/bash dash:/usr/bin/dash cryptsetup:/usr/sbin/cryptsetup
	dmsetup:/usr/sbin/dmsetup mke2fs:/usr/sbin/mke2fs e2fsck:/usr/sbin/e2fsck
	blockdev:/usr/sbin/blockdev"
readonly OPTIONAL_TOOLS="keyctl:/usr/bin/keyctl"
# Where the guest's loader looks without an ld.so.cache (Debian amd64 multiarch).
readonly GUEST_LIBDIR=/usr/lib/x86_64-linux-gnu
readonly SYSTEM_LIBDIRS=" /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib "
readonly TOOL_PATH=/usr/sbin:/usr/bin:/sbin:/bin

OUTPUT=
MODDIR=
KVER=
SCENARIO=
DISKS=0
TIMEOUT=240
TRACE=0
USE_CACHE=1
EXTRA_MODULES=()
BINS=()
LIBS=()
FILES=()
ENVS=()

WORK=
ROOT=
declare -A COPIED=()
declare -A MOD_SEEN=()
MOD_ORDER=()

die() {
	echo "mkinitrd: error: $*" >&2
	exit 1
}

warn() {
	echo "mkinitrd: warning: $*" >&2
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"
}

# Print guest path $1 below /usr where the image's merged-/usr links (/lib -> usr/lib ...)
# would take it. The scenario archive must not contain /lib, /bin ... as directories: the
# kernel would replace the base archive's symlinks with them.
canon() {
	case $1 in
	/lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}

# Copy host file $1 to $2 inside $ROOT (dereferencing symlinks). With $3 = dep, skip files
# already present (in this archive or in the base archive).
put_file() {
	local src=$1 dest kind=${3:-explicit}

	dest=$(canon "$2")
	[ "$kind" = dep ] && [ -n "${COPIED[$dest]:-}" ] && return 0
	[ -e "$src" ] || die "'$src' does not exist"
	mkdir -p "$ROOT${dest%/*}"
	cp -L --preserve=mode "$src" "$ROOT$dest" || die "cannot copy '$src' to '$dest'"
	COPIED[$dest]=1
}

# Copy the shared libraries (and the ELF interpreter) that ELF file $1 needs. The image
# mirrors the host's merged /usr, so system libraries keep their paths.
put_deps() {
	local elf=$1 out line name lib

	if ! out=$(LC_ALL=C ldd "$elf" 2>&1); then
		case $out in
		*"not a dynamic executable"* | *"statically linked"*) return 0 ;;
		*) die "ldd '$elf' failed: $out" ;;
		esac
	fi
	while IFS= read -r line; do
		name=${line#"${line%%[![:space:]]*}"}
		name=${name%% *}
		case $line in
		*"=> not found"*)
			die "'$elf' needs $name, which ldd cannot find (set LD_LIBRARY_PATH?)"
			;;
		*"=> /"*)
			lib=${line#*=> }
			lib=${lib%% (0x*}
			;;
		[[:space:]]/*)
			put_file "$name" "$name" dep # the ELF interpreter
			continue
			;;
		*) continue ;; # linux-vdso.so.1
		esac
		if [[ $SYSTEM_LIBDIRS == *" ${lib%/*} "* ]]; then
			put_file "$lib" "$lib" dep
		else
			put_file "$lib" "$GUEST_LIBDIR/$name" dep
		fi
	done <<<"$out"
}

# Resolve $1 (a path or a command name) to an executable path.
find_exec() {
	local p=$1

	if [[ $p != */* ]]; then
		p=$(PATH="$PATH:$TOOL_PATH" command -v "$p") || die "executable '$1' not found in PATH"
	fi
	[[ -f $p && -x $p ]] || die "'$p' is not an executable file"
	echo "$p"
}

put_bin() {
	local src=$1 dest=$2

	if head -c 2 "$src" | grep -q '^#!'; then
		warn "'$src' is a script (libtool wrapper? use .libs/NAME): its interpreter is not copied"
	fi
	put_file "$src" "$dest"
	put_deps "$src"
}

put_lib() {
	local src=$1 dest=$2

	[ -f "$src" ] || die "library '$src' does not exist"
	put_file "$src" "$dest"
	put_deps "$src"
}

# Split "A:B" at the last colon into SPLIT_A and SPLIT_B (B empty when there is no colon).
split_spec() {
	if [[ $1 == *:* ]]; then
		SPLIT_A=${1%:*}
		SPLIT_B=${1##*:}
	else
		SPLIT_A=$1
		SPLIT_B=
	fi
}

modinfo_k() {
	modinfo -b "${MODDIR%/lib/modules/*}" -k "$KVER" "$@" 2>/dev/null
}

# Append module $1 and, before it, its dependencies to MOD_ORDER (depth-first post-order:
# a valid insmod order). Returns 2 if there is no such module, 0 otherwise (built-in too).
resolve_module() {
	local name=$1 file deps softdep dep

	file=$(modinfo_k -F filename "$name" | head -n 1) || true
	[ -n "$file" ] || return 2
	[ "$file" = "(builtin)" ] && return 0
	[ -n "${MOD_SEEN[$file]:-}" ] && return 0
	MOD_SEEN[$file]=1
	[ -f "$file" ] || die "modinfo names '$file' for module '$name', which does not exist"

	# "softdep pre:" modules load first; they may be aliases (crypto-crc32c).
	softdep=$(modinfo -F softdep "$file" | sed -n 's/.*pre:\(.*\)/\1/p' | sed 's/post:.*//')
	deps=$(modinfo -F depends "$file" | tr ',' ' ')
	for dep in $softdep; do
		resolve_alias "$dep"
	done
	for dep in $deps; do
		resolve_module "$dep" || die "module '$name' depends on '$dep', which is missing"
	done
	MOD_ORDER+=("${file#"$MODDIR"/}")
}

# An alias may match several modules (e.g. crc32c_generic and crc32c-intel): take them all.
resolve_alias() {
	local f

	while IFS= read -r f; do
		[[ -n $f && $f != "(builtin)" ]] || continue
		resolve_module "$f" || warn "softdep '$1' -> '$f' cannot be resolved, ignoring"
	done < <(modinfo_k -F filename "$1" || true)
}

put_modules() {
	local m rel

	for m in $REQUIRED_MODULES "${EXTRA_MODULES[@]}"; do
		resolve_module "$m" || die "kernel $KVER has no module '$m'"
	done
	for m in $OPTIONAL_MODULES; do
		resolve_module "$m" || warn "kernel $KVER has no module '$m', skipping it"
	done
	for rel in "${MOD_ORDER[@]}"; do
		put_file "$MODDIR/$rel" "/lib/modules/$KVER/$rel"
	done
	for m in modules.order modules.builtin modules.builtin.modinfo; do
		[ ! -f "$MODDIR/$m" ] || put_file "$MODDIR/$m" "/lib/modules/$KVER/$m"
	done
	# modules.dep/alias for the subset, so that the kernel's request_module() (through
	# busybox modprobe) finds what is in the image.
	depmod -b "$ROOT" "$KVER" || die "depmod on the image failed"
	printf '%s\n' "${MOD_ORDER[@]}" >"$ROOT/etc/kc-modules"
}

# Busybox applet links, unless a real program of that name is already in the image (in
# either sbin or bin: the guest's PATH would otherwise let an applet shadow it).
put_busybox() {
	local bb applet name links=()

	bb=$(command -v busybox) || die "busybox not found (install busybox-static)"
	! ldd "$bb" >/dev/null 2>&1 || die "'$bb' is dynamically linked; install busybox-static"
	put_file "$bb" /usr/bin/busybox
	while IFS= read -r applet; do
		name=${applet##*/}
		[ -e "$ROOT/usr/sbin/$name" ] || [ -e "$ROOT/usr/bin/$name" ] ||
			[ -L "$ROOT/usr/sbin/$name" ] || [ -L "$ROOT/usr/bin/$name" ] ||
			links+=("$ROOT/$applet")
	done < <("$bb" --list-full)
	# One process for ~300 links (perl-base is essential on Debian).
	perl -e 'for (@ARGV) { symlink("/usr/bin/busybox", $_) or die "symlink $_: $!\n" }' \
		"${links[@]}" || die "cannot create busybox applet links"
}

put_base_tools() {
	local t p

	for t in $BASE_TOOLS; do
		p=$(PATH=$TOOL_PATH command -v "${t%%:*}") ||
			die "'${t%%:*}' not found (install cryptsetup-bin, dmsetup, e2fsprogs, util-linux)"
		put_bin "$p" "${t#*:}"
	done
	ln -s dash "$ROOT/usr/bin/sh"
	ln -s mke2fs "$ROOT/usr/sbin/mkfs.ext4"
	ln -s mke2fs "$ROOT/usr/sbin/mkfs.ext2"
	ln -s e2fsck "$ROOT/usr/sbin/fsck.ext4"
	for t in $OPTIONAL_TOOLS; do
		if p=$(PATH=$TOOL_PATH command -v "${t%%:*}"); then
			put_bin "$p" "${t#*:}"
		else
			warn "'${t%%:*}' not found (package keyutils); the guest will have none"
		fi
	done
	[ ! -f /etc/mke2fs.conf ] || put_file /etc/mke2fs.conf /etc/mke2fs.conf
}

base_skeleton() {
	local d

	# Merged /usr, like the host, so that ldd's paths and the loader's defaults agree.
	mkdir -p "$ROOT"/usr/{bin,sbin,lib,lib64} "$ROOT"/{dev,proc,sys,run,tmp,etc,root,mnt}
	for d in bin sbin lib lib64; do
		ln -s "usr/$d" "$ROOT/$d"
	done
	# The kernel opens /dev/console for /init before anything is mounted.
	mknod -m 600 "$ROOT/dev/console" c 5 1 ||
		die "cannot create /dev/console in the image (must run as root)"
	cat >"$ROOT/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$ROOT/etc/group" <<-'EOF'
		root:x:0:
		nogroup:x:65534:
	EOF
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$ROOT/etc/hosts"
	ln -s /proc/mounts "$ROOT/etc/mtab"
}

write_init() {
	cat >"$ROOT/init" <<-'EOF'
		#!/usr/bin/busybox sh
		# Generated by kekcrypt scripts/vm/mkinitrd.sh: run /scenario.sh, report, power off.
		export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb

		setup_failed() {
			echo "KC-GUEST-SETUP-FAILED: $*"
			echo "KC-GUEST-END"
			sleep 0.2
			poweroff -f
			sleep 5
			exit 1
		}

		mount -t proc proc /proc || setup_failed "mount /proc"
		mount -t sysfs sysfs /sys || setup_failed "mount /sys"
		mount -t devtmpfs devtmpfs /dev || setup_failed "mount devtmpfs on /dev"
		exec </dev/console >/dev/console 2>&1
		mkdir -p /dev/pts /dev/shm
		mount -t devpts devpts /dev/pts
		mount -t tmpfs -o mode=1777 tmpfs /dev/shm
		# /run and /tmp get a tmpfs unless --file put something there: the root file system
		# is a tmpfs already, and a mount would hide those files.
		if [ -z "$(ls -A /run)" ]; then
			mount -t tmpfs -o mode=0755 tmpfs /run || setup_failed "mount /run"
		fi
		if [ -z "$(ls -A /tmp)" ]; then
			mount -t tmpfs -o mode=1777 tmpfs /tmp || setup_failed "mount /tmp"
		fi
		chmod 1777 /tmp
		mkdir -p /run/cryptsetup /run/lock /root
		[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
		. /etc/kc-harness.conf || setup_failed "no /etc/kc-harness.conf"
		echo "KC-GUEST-BEGIN"

		while read -r m; do
			name=${m##*/}
			name=${name%.ko}
			[ -d "/sys/module/$(echo "$name" | tr - _)" ] && continue
			insmod "/lib/modules/$KC_KVER/$m" || setup_failed "insmod $m failed"
		done </etc/kc-modules

		# Disks: /dev/vda, /dev/vdb, ... in the order QEMU was given them.
		n=0
		for d in a b c d e f g h i j k l m n o p q r s t u v w x y z; do
			[ "$n" -lt "$KC_DISKS" ] || break
			n=$((n + 1))
			t=0
			while ! [ -b "/dev/vd$d" ]; do
				[ "$t" -lt 300 ] || setup_failed "disk /dev/vd$d did not appear within 30 s"
				sleep 0.1
				t=$((t + 1))
			done
			# Solid-state, as a cloud disk is (QEMU's virtio disks say rotational): on a
			# rotational device libcryptsetup wipes a destroyed keyslot's area in 35
			# passes (Gutmann's patterns, a third from /dev/urandom), and at the end of a
			# re-encryption its resilience area, the 16 MiB of free keyslot space: 560 MiB
			# written, 6 of a rekey's 10-12 s of guest time; one random pass here.
			echo 0 >"/sys/block/vd$d/queue/rotational"
		done

		# QEMU user networking: static 10.0.2.15/24, gateway (the host side) 10.0.2.2.
		ip link set lo up
		t=0
		while [ -d /sys/module/virtio_net ] && ! [ -e /sys/class/net/eth0 ] && [ "$t" -lt 50 ]; do
			sleep 0.1
			t=$((t + 1))
		done
		if [ -e /sys/class/net/eth0 ]; then
			ip link set eth0 up &&
				ip addr add 10.0.2.15/24 dev eth0 &&
				ip route add default via 10.0.2.2 ||
				setup_failed "network configuration of eth0"
		fi

		[ ! -s /scenario.env ] || . /scenario.env || setup_failed "cannot read /scenario.env"
		cd /tmp
		# The heartbeat: I/O and CPU counters, for the host's stall watchdog.
		(
			while sleep 5; do
				io=$(awk '$3 ~ /^vd[a-z]+$/ { s += $6 + $10 } END { print s + 0 }' /proc/diskstats)
				cpu=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat)
				echo "KC-GUEST-HB $io $cpu"
			done
		) &
		heartbeat=$!
		# bash -e -o pipefail; the scenario runs in its own session and process group so that
		# the in-guest timeout can kill it together with everything it started.
		setsid bash -e -o pipefail /scenario.sh </dev/null &
		pid=$!
		(
			sleep "$KC_TIMEOUT"
			echo "KC-GUEST-TIMEOUT: scenario killed after ${KC_TIMEOUT}s"
			: >/run/kc-timeout
			kill -KILL -- "-$pid" "$pid" 2>/dev/null
		) &
		watchdog=$!
		wait "$pid"
		rc=$?
		kill "$watchdog" "$heartbeat" 2>/dev/null
		[ ! -e /run/kc-timeout ] || rc=124
		# Stray background processes of the scenario must not write after the markers.
		kill -KILL -- "-$pid" 2>/dev/null
		sync
		echo "KC-GUEST-EXIT=$rc"
		echo "KC-GUEST-END"
		# Let the UART drain before the machine goes away.
		sleep 0.2
		poweroff -f
		sleep 5
	EOF
	chmod 0755 "$ROOT/init"
}

# Write the cpio archive of $ROOT to $1, gzip'ed (-1: the guest's gunzip is the slow side
# either way, and a better ratio saves little). Names sorted: directories before contents.
write_cpio() {
	(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet |
		gzip -1) >"$1" || die "cpio/gzip failed"
}

# Print the cache key of the base archive: everything that goes into it.
base_key() {
	local t p

	{
		sha256sum "$SELF"
		echo "$MODDIR" "${EXTRA_MODULES[*]}"
		for t in busybox $BASE_TOOLS $OPTIONAL_TOOLS; do
			p=$(PATH=$TOOL_PATH command -v "${t%%:*}") && stat -L -c '%n %s %Y' "$p" ||
				echo "$t missing"
		done
		stat -c '%n %s %Y' /var/lib/dpkg/status /etc/mke2fs.conf 2>/dev/null || true
	} | sha256sum | cut -c1-32
}

# Build the base archive into $1 and its file list into $1.files.
build_base() {
	local out=$1

	ROOT="$WORK/base"
	mkdir "$ROOT"
	base_skeleton
	put_base_tools
	put_busybox
	put_modules
	write_init
	write_cpio "$out.tmp.$$"
	(cd "$ROOT" && find . -mindepth 1 ! -type d | sed 's/^\.//') >"$out.files.tmp.$$"
	mv -f "$out.files.tmp.$$" "$out.files"
	mv -f "$out.tmp.$$" "$out"
}

# Print the path of the base archive, from the cache or freshly built.
base_archive() {
	local dir="$CACHE/initrd-base" key out

	if [ "$USE_CACHE" = 0 ] || ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
		build_base "$WORK/base.cpio.gz" >&2
		echo "$WORK/base.cpio.gz"
		return 0
	fi
	key=$(base_key)
	out="$dir/$key.cpio.gz"
	if [ ! -f "$out" ] || [ ! -f "$out.files" ]; then
		exec 8>"$dir/.lock"
		flock -w 300 8 || die "timed out waiting for '$dir/.lock'"
		if [ ! -f "$out" ] || [ ! -f "$out.files" ]; then
			build_base "$out" >&2
			# Keep the 8 newest bases; older ones belong to superseded tools or kernels.
			find "$dir" -maxdepth 1 -name '*.cpio.gz' -printf '%T@ %p\n' | sort -rn |
				tail -n +9 | cut -d' ' -f2- | while IFS= read -r f; do
				rm -f "$f" "$f.files"
			done
		fi
		exec 8>&-
	fi
	touch "$out"
	echo "$out"
}

# Quote $1 for a POSIX shell.
shquote() {
	printf "'%s'" "${1//\'/\'\\\'\'}"
}

write_scenario_config() {
	local e name value

	printf 'KC_KVER=%s\nKC_DISKS=%s\nKC_TIMEOUT=%s\n' "$(shquote "$KVER")" "$DISKS" \
		"$TIMEOUT" >"$ROOT/etc/kc-harness.conf"
	: >"$ROOT/scenario.env"
	for e in "${ENVS[@]}"; do
		name=${e%%=*}
		value=${e#*=}
		[[ $e == *=* && $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
			die "--env '$e': expected NAME=VALUE"
		printf 'export %s=%s\n' "$name" "$(shquote "$value")" >>"$ROOT/scenario.env"
	done
	# --trace: bash takes no PS4 from the environment when run as root, so the scenario
	# starts by setting it.
	if [ "$TRACE" = 1 ]; then
		printf '%s\n' "PS4='KC-GUEST-TRACE: '; set -x" | cat - "$SCENARIO" >"$ROOT/scenario.sh"
	else
		cp "$SCENARIO" "$ROOT/scenario.sh"
	fi
	chmod 0755 "$ROOT/scenario.sh"
}

# A real program given with --bin must win over a busybox applet of the same name,
# wherever busybox put its link.
shadow_applet() {
	local dest name applet

	dest=$(canon "$1")
	name=${dest##*/}

	while IFS= read -r applet; do
		applet=$(canon "/$applet")
		[[ ${applet##*/} == "$name" && $applet != "$dest" ]] || continue
		mkdir -p "$ROOT${applet%/*}"
		ln -sfn "$dest" "$ROOT$applet"
	done < <(busybox --list-full)
}

build_scenario() {
	local out=$1 files=$2 spec f src dest

	ROOT="$WORK/scenario"
	mkdir -p "$ROOT/etc"
	while IFS= read -r f; do
		COPIED[$f]=1
	done <"$files"
	for spec in "${BINS[@]}"; do
		split_spec "$spec"
		src=$(find_exec "$SPLIT_A")
		dest=${SPLIT_B:-/usr/bin/${src##*/}}
		put_bin "$src" "$dest"
		shadow_applet "$dest"
	done
	for spec in "${LIBS[@]}"; do
		split_spec "$spec"
		put_lib "$SPLIT_A" "${SPLIT_B:-$SPLIT_A}"
	done
	for spec in "${FILES[@]}"; do
		[[ $spec == *:/* ]] || die "--file '$spec': expected SRC:/ABSOLUTE/DEST"
		split_spec "$spec"
		[ -e "$SPLIT_A" ] || die "--file source '$SPLIT_A' does not exist"
		dest=$(canon "$SPLIT_B")
		case $dest in
		/dev/* | /proc/* | /sys/*) die "--file '$spec': $SPLIT_B is hidden by a mount at boot" ;;
		esac
		mkdir -p "$ROOT${dest%/*}"
		cp -a "$SPLIT_A" "$ROOT$dest" || die "cannot copy '$SPLIT_A' to '$SPLIT_B'"
	done
	write_scenario_config
	write_cpio "$out"
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--no-cache)
			USE_CACHE=0
			shift
			continue
			;;
		--trace)
			TRACE=1
			shift
			continue
			;;
		-h | --help) usage && exit 0 ;;
		--) shift && break ;;
		-*) [ $# -ge 2 ] || die "$1 needs an argument (see --help)" ;;
		*) break ;;
		esac
		case $1 in
		--output) OUTPUT=$2 ;;
		--modules) MODDIR=$2 ;;
		--module) EXTRA_MODULES+=("$2") ;;
		--bin) BINS+=("$2") ;;
		--lib) LIBS+=("$2") ;;
		--file) FILES+=("$2") ;;
		--env) ENVS+=("$2") ;;
		--disks) DISKS=$2 ;;
		--timeout) TIMEOUT=$2 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift 2
	done
	[ $# -eq 1 ] || die "expected exactly one SCENARIO argument (see --help)"
	SCENARIO=$1
	[ -n "$OUTPUT" ] || die "--output is required"
	[ -f "$SCENARIO" ] || die "scenario '$SCENARIO' does not exist"
	[[ $DISKS =~ ^[0-9]+$ && $DISKS -le 26 ]] || die "--disks must be 0..26"
	[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
}

main() {
	local kenv base t

	parse_args "$@"
	for t in cpio gzip ldd modinfo depmod perl flock; do
		command -v "$t" >/dev/null || die "'$t' not found"
	done
	if [ -z "$MODDIR" ]; then
		kenv=$("$HERE/fetch-kernel.sh" --quiet) || die "fetch-kernel.sh failed"
		MODDIR=$(sed -n 's/^KEKCRYPT_VM_MODULES=//p' <<<"$kenv")
	fi
	MODDIR=${MODDIR%/}
	[ -d "$MODDIR" ] || die "modules directory '$MODDIR' does not exist"
	[[ $MODDIR == */lib/modules/* ]] || die "--modules must be .../lib/modules/KVER"
	KVER=${MODDIR##*/}

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-initrd.XXXXXX")
	# shellcheck disable=SC2064 # expand $WORK now
	trap "rm -rf '$WORK'" EXIT
	base=$(base_archive)
	build_scenario "$WORK/scenario.cpio.gz" "${base%.cpio.gz}.cpio.gz.files"
	cat "$base" "$WORK/scenario.cpio.gz" >"$OUTPUT.tmp.$$" || die "cannot write '$OUTPUT'"
	mv -f "$OUTPUT.tmp.$$" "$OUTPUT"
}

main "$@"
