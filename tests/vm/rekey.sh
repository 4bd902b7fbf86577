#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest test: kekcrypt rekey (DEK rotation by LUKS2 online re-encryption) with real dm-crypt
# in QEMU guests (tests/vm/scenario-rekey.sh):
#   1. power loss at three points: one guest rekeys three volumes, each stopped at its own
#      point in the re-encryption (the last one still running), and is cut off (sysrq 'b', no
#      sync); a second boot on the same disk images runs `rekey --resume` on each; the whole
#      content is unchanged (SHA-256 of all 8 MiB), and each header, read on the host, is a
#      plain LUKS2 volume again whose tokens open it with a new volume key;
#   2. online, in that second guest, on a volume of its own: SIGINT mid-run, resume with a
#      plain `rekey` while the mapping is busy; the content is unchanged, the old DEK is
#      rejected, the KEKs are the same;
#   3. in-place encryption (kekcrypt encrypt) in the same two guests, on two disks (80 and 64
#      MiB) each holding an 8 MiB ext4 filesystem full of files (their SHA-256 list made here): one
#      online (mounted from the disk, then `encrypt DEV NAME --remount`: unmounted, mounted
#      again from the mapping with its options, and written there while encrypting), one
#      offline, each frozen at its own point before the same power cut; `encrypt --resume`
#      in the second guest (online again for the first), then e2fsck and every file's SHA-256;
#      here, each header a plain kekcrypt volume whose tokens verify;
#   4. detached headers, online, in the second guest: `rekey --header` of an open volume
#      (content unchanged, a new volume key, reopened) and `encrypt --header FILE DEV NAME` of
#      an ext4 disk (the data where it was, e2fsck clean, every file's SHA-256).
# Usage: rekey.sh [CRASH_AFTER...]  (progress lines before the power cut, one volume each;
# default 1 3 4: the start, 4 and 6 MiB; at most 4, a volume's number of 2 MiB chunks)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vm_setup
head -c 32 /dev/urandom >"$VM_WORK/kek/a.bin"
chmod 600 "$VM_WORK/kek/a.bin"
dd if=/dev/urandom of="$VM_WORK/data.img" bs=1M count=8 status=none
want=$(sha256sum "$VM_WORK/data.img" | cut -d' ' -f1)
rc=0

# The volume: 16 MiB of LUKS2 header + 8 MiB of data (four 2 MiB chunks of re-encryption: a
# quarter of a small volume's data; the data is what costs under emulation, 16 MiB cost half
# a minute of CPU more),
# a file KEK and a SoftHSM2 KEK.
new_volume() {
	rm -f "$1"
	truncate -s 24M "$1"
	kc_host format -q "$1" --kek "file:$VM_WORK/kek/a.bin" --kek "$P11_URI" >/dev/null
}

# guest PHASE LOG DISK...: the scenario with the disks in order (/dev/vda, /dev/vdb, ...);
# /dev/vdb is always the data.
guest() {
	local phase=$1 log=$2 d disks=()
	shift 2
	for d in "$@"; do disks+=(--disk "$d"); done
	vm_run "$VM_TOP/tests/vm/scenario-rekey.sh" --log "$log" --timeout 600 --memory 1024 \
		--bin "$(command -v jq)" --bin "$(command -v mount):/usr/bin/mount" \
		"${disks[@]}" --file "$VM_WORK/kek/a.bin:$VM_WORK/kek/a.bin" \
		--env "PHASE=$phase" --env "WANT=$want" --env "VOLS=${VOLS:-}" \
		--env "CRASH_AFTER=${points[*]:-}" --env "ONLINE=${ONLINE:-}" --env "ENC=$ENC" \
		--env "DETACHED=${DETACHED:-}" "${DET_FILES[@]}" \
		--file "$VM_WORK/enc-files.sha256:/enc-files.sha256"
}

# 3. The in-place encryptions' disks: an 8 MiB ext4 filesystem holding about 3.5 MiB of
# files, on SIZE MiB (64 is encrypt's least: a 16 MiB header in front, 32 MiB free at the
# end; encrypted in chunks of 16 MiB, the header's size).
enc_tree=$VM_WORK/enc-tree
mkdir -p "$enc_tree/a" "$enc_tree/b"
for i in $(seq 1 24); do
	head -c $(((96 + i * 4) << 10)) /dev/urandom >"$enc_tree/$([ $((i % 2)) = 0 ] && echo a || echo b)/f$i"
done
(cd "$enc_tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$VM_WORK/enc-files.sha256"
# enc_disk IMG SIZE
enc_disk() {
	mke2fs -q -t ext4 -d "$enc_tree" -L encdata "$1" 8M
	truncate -s "$2M" "$1"
}

# meta_is IMG EXPR: the LUKS2 metadata of IMG (luksDump --dump-json-metadata, read whole: a
# reader that stops at its first match, as grep -q does, can fail the dump with SIGPIPE)
# makes the jq expression EXPR true.
meta_is() {
	local m
	m=$(cryptsetup luksDump --dump-json-metadata "$1") && [ -n "$m" ] &&
		jq -e "$2" <<<"$m" >/dev/null
}
PENDING='.config.requirements.mandatory // [] | any(startswith("online-reencrypt"))'
MARKS='any(.tokens[]; .type == "kekcrypt-rekey" or has("kekcrypt-rekey"))'
digests() { cryptsetup luksDump --dump-json-metadata "$1" | jq -cS '.digests'; }

check() {
	if ! vm_expect "$@"; then
		{ echo "guest log ($1):"; tail -n 60 "$1"; } >&2
		rc=1
	fi
}

# 1. Power loss in the middle of the re-encryption, at each point asked for: a volume each,
# /dev/vda, then /dev/vdc, /dev/vdd, ... (/dev/vdb is the data).
points=("$@")
[ "${#points[@]}" -gt 0 ] || points=(1 3 4)
imgs=() VOLS='' letters=(a c d e f g h i) disk_letters=(a b c d e f g h i j k l)
declare -A digest0
for i in "${!points[@]}"; do
	n=${points[$i]}
	img=$VM_WORK/crash-$n.img
	new_volume "$img"
	digest0[$img]=$(digests "$img")
	imgs+=("$img")
	VOLS+="${VOLS:+ }vd${letters[$i]}"
done
disks=("${imgs[0]}" "$VM_WORK/data.img" "${imgs[@]:1}")
# 3. The online and offline encryptions' disks and a raw disk for the online one's file list.
encs=("$VM_WORK/enc-on.img" "$VM_WORK/enc-off.img")
# Online, 80 MiB: three chunks (32 MiB are left for a mapping of 64 MiB), so that after the
# power cut in the second one the resume still has one to encrypt through the mapping.
enc_disk "${encs[0]}" 80
enc_disk "${encs[1]}" 64
truncate -s 1M "$VM_WORK/enc-sums.img"
n=${#disks[@]}
ENC="vd${disk_letters[n]} vd${disk_letters[n + 1]} vd${disk_letters[n + 2]}"
disks+=("${encs[@]}" "$VM_WORK/enc-sums.img")
# 2. The online rekey's volume, on the next disk of the second guest.
new_volume "$VM_WORK/a.img"
ONLINE=vd${disk_letters[${#disks[@]}]}
# 4. Detached headers, online, on the two disks after it in the second guest: a volume of 8 MiB
# whose header is the file det-r.hdr, and an 8 MiB ext4 disk full of files to encrypt with its
# header going to a new file (both in the guest's /hdr).
truncate -s 8M "$VM_WORK/det-r.img"
kc_host format -q --header "$VM_WORK/det-r.hdr" "$VM_WORK/det-r.img" \
	--kek "file:$VM_WORK/kek/a.bin" >/dev/null
enc_disk "$VM_WORK/det-e.img" 8
DETACHED="vd${disk_letters[${#disks[@]} + 1]} vd${disk_letters[${#disks[@]} + 2]}"
DET_FILES=()
r=0
guest crash "$VM_WORK/crash.log" "${disks[@]}" || r=$?
# The guest never reports an exit status: it lost its power.
if [ "$r" -eq 0 ] || grep -q '^KC-GUEST-EXIT' "$VM_WORK/crash.log"; then
	vm_not_ok "crash: the guest was not cut off (exit $r)"; rc=1
fi
check "$VM_WORK/crash.log" KC-OK\ encrypt-dry-run-online KC-OK\ encrypt-remounted KC-OK\ encrypt-online-mounted-written \
	KC-OK\ encrypt-frozen KC-OK\ data-written KC-CRASH-NOW
for img in "${imgs[@]}" "${encs[@]}"; do
	if ! meta_is "$img" "$PENDING"; then
		vm_not_ok "${img##*/}: no re-encryption pending after the power cut"; rc=1
	fi
done
r=0
DET_FILES=(--file "$VM_WORK/det-r.hdr:/hdr/det-r.hdr")
guest "resume online detached" "$VM_WORK/resume.log" "${disks[@]}" "$VM_WORK/a.img" \
	"$VM_WORK/det-r.img" "$VM_WORK/det-e.img" || r=$?
[ "$r" -eq 0 ] || { vm_not_ok "resume guest exited $r"; rc=1; }
check "$VM_WORK/resume.log" KC-OK\ encrypt-resumed-online KC-OK\ encrypt-interrupted-open \
	KC-OK\ encrypt-resumed-offline KC-OK\ encrypt-fsck-clean KC-OK\ encrypt-files-identical \
	KC-OK\ reencryption-pending KC-OK\ resumed \
	KC-OK\ content-identical \
	KC-OK\ data-written KC-OK\ sigint-stops-cleanly KC-OK\ resumed-online \
	KC-OK\ online-content-identical KC-OK\ volume-key-changed KC-OK\ old-dek-rejected \
	KC-OK\ same-keks-new-tokens \
	KC-OK\ reopen-new-dek KC-OK\ detached-online-rekey KC-OK\ detached-online-encrypt \
	KC-SCENARIO-DONE
# On the host: plain LUKS2 volumes again, new volume keys (the rekeyed ones), tokens that
# open them.
for img in "${imgs[@]}" "${encs[@]}"; do
	if meta_is "$img" "$PENDING" || meta_is "$img" "$MARKS"; then
		vm_not_ok "${img##*/}: re-encryption state left in the header"; rc=1
	elif [ "$(digests "$img")" = "${digest0[$img]:-}" ]; then
		vm_not_ok "${img##*/}: volume key unchanged"; rc=1
	elif ! kc_host verify "$img" >/dev/null; then
		vm_not_ok "${img##*/}: the tokens do not open the volume"; rc=1
	else
		vm_ok "${img##*/}: header clean, new volume key, tokens verify"
	fi
done
vm_done "$rc"
