#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# encrypt --header FILE and rekey --header FILE: in-place encryption and data key rotation with a
# detached LUKS2 header, offline on an image file (libcryptsetup re-encrypts it through its
# userspace crypto, without device-mapper). Each result is decrypted again by cryptsetup alone
# (--header, with a recovery key) and compared byte for byte with the filesystem it started from.
# Covered: --dry-run (no header in front, no room needed; neither FILE nor the device written);
# --shrink with --header is a usage error; the encryption of a filesystem that fills its whole
# device: FILE created 0600, the data left at offset 0 with no signature, no temporary file left,
# verify --header; FILE existing is refused (exit 11, unchanged) unless it holds an interrupted
# encryption; --resume without FILE: exit 3; stopped by SIGINT after a chunk (writers refuse
# meanwhile) and killed at each crash point of its own (KC_TEST_CRASH_AT: FILE.kekcrypt-new
# built, renamed to FILE), then finished by `encrypt --resume --header`; rekey --header rotates
# the data key (the LUKS2 digest changes), also stopped after a chunk and resumed; both on a loop
# device too, where an incomplete FILE.kekcrypt-new left by a killed run is replaced.
. "$(dirname "$0")/lib.sh"
need mke2fs cryptsetup blkid losetup

T=$T_DIR
K=$T/kek.bin
URI=file:$K
new_kek "$K"
new_kek "$T/other.bin"
data_tree 8
IMG=$T/disk.img
HDR=$T/hdr.img

# fs MIB: a fresh $IMG, an ext4 filesystem of MIB that fills it, kept in $IMG.orig; no $HDR.
fs() {
	rm -f "$IMG" "$HDR" "$HDR.kekcrypt-new"
	mke2fs -q -t ext4 -d "$T/tree" "$IMG" "$1M"
	cp --sparse=always "$IMG" "$IMG.orig"
}
# decrypts_to_orig: cryptsetup decrypts copies of $IMG and $HDR, with a recovery key added to
# the copy, back to $IMG.orig.
decrypts_to_orig() {
	rm -f "$T/copy" "$T/copy.hdr"
	cp --sparse=always "$IMG" "$T/copy"
	cp "$HDR" "$T/copy.hdr"
	kc recovery add -q --header "$T/copy.hdr" "$T/copy" "${RECOVERY_FAST[@]}" --json \
		>"$T/rk.json" &&
		printf '%s' "$(json_get "$T/rk.json" 'd["recovery_key"]')" >"$T/rk" &&
		cryptsetup reencrypt -q --decrypt --force-offline-reencrypt --header "$T/copy.hdr" \
			--key-file "$T/rk" "$T/copy" >"$T/decrypt.log" 2>&1 &&
		cmp -s "$T/copy" "$IMG.orig"
}
digest() {
	cryptsetup luksDump --dump-json-metadata "$HDR" >"$T/meta.json" &&
		json_get "$T/meta.json" '" ".join(v["digest"] for v in d["digests"].values())'
}

# --- dry run, usage ---------------------------------------------------------------------------
fs 48
sum=$(sha256sum <"$IMG")
assert_exit -m "--dry-run --header --json: exit 0" 0 \
	kc encrypt --header "$HDR" "$IMG" --kek "$URI" --dry-run --json
assert_eq -m "... ext4 filling the device, no header in front, no room needed, the header file" \
	"ext4 $((48 << 20)) $((48 << 20)) 0 0 $HDR" \
	"$(json_get "$OUT" '" ".join(str(d[k]) for k in ["content", "content_bytes", "device_bytes", "header_bytes", "reserved_bytes", "header"])')"
assert_exit -m "--dry-run --header (text)" 0 kc encrypt --header "$HDR" "$IMG" --kek "$URI" --dry-run
assert_stdout_contains -m "... says where the header would go" "Its LUKS2 header would go to the new file $HDR"
assert_true -m "... no header file made" test ! -e "$HDR"
assert_eq -m "... the image is unchanged" "$sum" "$(sha256sum <"$IMG")"
assert_exit -m "--shrink with --header: a usage error" 2 \
	kc encrypt --header "$HDR" "$IMG" --kek "$URI" --shrink
assert_exit -m "--resume --header with no header file: exit 3" 3 \
	kc encrypt --resume --header "$HDR" "$IMG"

# --- encrypt --header -------------------------------------------------------------------------
assert_exit -m "encrypt --header: a filesystem filling its device, exit 0" 0 \
	kc encrypt --header "$HDR" "$IMG" --kek "$URI"
assert_eq -m "... the header file made, mode 0600" 600 "$(stat -c %a "$HDR")"
assert_true -m "... no temporary file left" test ! -e "$HDR.kekcrypt-new"
assert_exit -m "... the device holds no signature (data at offset 0)" 2 blkid -p "$IMG"
assert_exit -m "dump --json --header" 0 kc dump --json --header "$HDR" "$IMG"
assert_eq -m "... data offset 0, no re-encryption left" "0 None" \
	"$(json_get "$OUT" '"%s %s" % (d["data_offset"], d.get("rekey"))')"
assert_exit -m "verify --header: the token unwraps the data key" 0 kc verify --header "$HDR" "$IMG"
assert_true -m "no plaintext left (the marker is gone)" \
	bash -c '! grep -qa "$1" "$2"' - "kekcrypt-plaintext-marker-$$" "$IMG"
assert_true -m "cryptsetup decrypts it back to the filesystem it was" decrypts_to_orig

sum=$(sha256sum <"$HDR")
assert_exit -m "encrypt --header naming an existing volume's header: exit 11" 11 \
	kc encrypt --header "$HDR" "$IMG" --kek "$URI"
assert_stderr_contains -m "... says why" "header file '$HDR' already exists and holds no interrupted encryption"
assert_eq -m "... the header is unchanged" "$sum" "$(sha256sum <"$HDR")"
assert_exit -m "... and --resume: exit 11 too" 11 kc encrypt --resume --header "$HDR" "$IMG"

# --- rekey --header ---------------------------------------------------------------------------
before=$(digest)
assert_exit -m "rekey --header (offline): exit 0" 0 kc rekey --header "$HDR" "$IMG"
assert_true -m "... a new data key (the LUKS2 digest changed)" test "$(digest)" != "$before"
assert_exit -m "... verify --header" 0 kc verify --header "$HDR" "$IMG"
assert_true -m "... the data is the same" decrypts_to_orig

# --- stopped after a chunk (SIGINT), then --resume ------------------------------------------------
fs 64
interrupt_after_chunk encrypt --header "$HDR" "$IMG" --kek "$URI" --progress-json
assert_eq -m "encrypt --header stopped by SIGINT after a chunk: exit 17" 17 "$RC"
assert_contains -m "... says how to continue, naming the header" "$(cat "$ERR")" \
	"kekcrypt encrypt --resume --header $HDR $IMG"
assert_exit -m "meanwhile kek add --header refuses: exit 12" 12 \
	kc kek add --header "$HDR" "$IMG" --kek "file:$T/other.bin"
assert_stderr_contains -m "... naming encrypt --resume" "kekcrypt encrypt --resume $IMG"
assert_exit -m "encrypt --resume --header finishes it" 0 kc encrypt --resume --header "$HDR" "$IMG"
assert_stdout_contains -m "... and says it resumed" "encrypted in place (resumed)"
assert_true -m "... to the filesystem it was" decrypts_to_orig

before=$(digest)
interrupt_after_chunk rekey --header "$HDR" "$IMG" --progress-json
assert_eq -m "rekey --header stopped by SIGINT after a chunk: exit 17" 17 "$RC"
assert_exit -m "rekey --resume --header finishes it" 0 kc rekey --resume --header "$HDR" "$IMG"
assert_true -m "... a new data key" test "$(digest)" != "$before"
assert_true -m "... the data is the same" decrypts_to_orig

# --- a loop device ------------------------------------------------------------------------------
fs 24
loop_attach "$IMG"
# What a run killed while building the header leaves: an incomplete HDR.kekcrypt-new.
head -c 4096 /dev/zero >"$HDR.kekcrypt-new"
assert_exit -m "encrypt --header on a loop device, an incomplete HDR.kekcrypt-new left" 0 \
	kc encrypt --header "$HDR" "$LOOP" --kek "$URI"
assert_true -m "... which was replaced (none left)" test ! -e "$HDR.kekcrypt-new"
assert_exit -m "... rekey --header on it" 0 kc rekey --header "$HDR" "$LOOP"
assert_exit -m "... verify --header" 0 kc verify --header "$HDR" "$LOOP"
loop_detach "$LOOP"
assert_true -m "... the data is the same" decrypts_to_orig

# --- killed at each crash point of its own, then --resume ----------------------------------------
for n in 1 2; do
	fs 40
	rc=0
	KC_TEST_CRASH_AT=$n "$KEKCRYPT" encrypt -q --config "$T_CONF" --header "$HDR" "$IMG" \
		--kek "$URI" >/dev/null 2>&1 || rc=$?
	assert_eq -m "crash point $n: killed (SIGKILL)" 137 "$rc"
	if [ "$n" = 1 ]; then
		assert_true -m "... built in HDR.kekcrypt-new, no HDR yet" \
			test -e "$HDR.kekcrypt-new" -a ! -e "$HDR"
	else
		assert_true -m "... renamed to HDR" test -e "$HDR" -a ! -e "$HDR.kekcrypt-new"
	fi
	assert_exit -m "... encrypt --resume --header finishes it" 0 \
		kc encrypt --resume --header "$HDR" "$IMG"
	assert_true -m "... no temporary file left" test ! -e "$HDR.kekcrypt-new"
	assert_true -m "... to the filesystem it was" decrypts_to_orig
done

done_testing
