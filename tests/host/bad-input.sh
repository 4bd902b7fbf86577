#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad input: each failure has its own documented exit code (src/cli.h, kekcrypt(8)), a
# message on stderr naming the device and the cause, and leaves the header as it was.
. "$(dirname "$0")/lib.sh"
need losetup

T=$T_DIR
IMG=$T/disk.img
KEK=$T/kek.bin
URI=file:$KEK
new_kek "$KEK"
cp "$KEK" "$T/kek.good"
new_img "$IMG"
format_img "$IMG" "$KEK"

# fails [-m DESC] CODE IMG CAUSE CMD...: CMD exits CODE, says IMG's (or the device's) name and
# CAUSE on stderr, prints nothing that claims success, and IMG's header is unchanged.
# DEV_NAME overrides the device name looked for (e.g. a loop device backed by IMG).
fails() {
	local desc="" code img cause sum name
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	code=$1 img=$2 cause=$3
	shift 3
	[ -n "$desc" ] || desc=$(_t_cmdline "$@")
	name=${DEV_NAME:-$img}
	sum=$(header_sum "$img")
	assert_exit -m "$desc: exit $code" "$code" "$@"
	assert_stderr_contains -m "$desc: message names the device" "$name"
	assert_stderr_contains -m "$desc: message names the cause ('$cause')" "$cause"
	assert_header_unchanged -m "$desc: header unchanged" "$img" "$sum"
}

restore_kek() {
	cp "$T/kek.good" "$KEK"
	chmod 0600 "$KEK"
}

assert_exit -m "control: the good volume verifies" 0 kc verify "$IMG"

# --- KEK file problems ------------------------------------------------------------------------
new_kek "$KEK" # another random 32-byte key at the same path
fails -m "wrong KEK" 8 "$IMG" "integrity check" kc verify "$IMG"
assert_stderr_contains -m "wrong KEK: message names the token and KEK" "token 0 ($URI)"
new_kek "$T/kek-new.bin"
fails -m "wrong KEK: kek add" 8 "$IMG" "integrity check" kc kek add "$IMG" --kek "file:$T/kek-new.bin"
restore_kek

rm -f "$KEK"
fails -m "KEK file missing" 3 "$IMG" "No such file" kc verify "$IMG"
assert_stderr_contains -m "KEK file missing: message names the KEK file" "$KEK"
restore_kek

chmod 0644 "$KEK"
fails -m "KEK file world-readable (0644)" 14 "$IMG" "chmod 600" kc verify "$IMG"
assert_stderr_contains -m "KEK file world-readable: message names the KEK file" "$KEK"
chmod 0640 "$KEK"
fails -m "KEK file group-readable (0640)" 14 "$IMG" "chmod 600" kc verify "$IMG"
restore_kek

head -c 31 "$T/kek.good" >"$KEK"
fails -m "KEK file of 31 bytes" 9 "$IMG" "31 bytes" kc verify "$IMG"
cat "$T/kek.good" "$T/kek.good" >"$KEK"
fails -m "KEK file of 64 bytes" 9 "$IMG" "32 bytes" kc verify "$IMG"
: >"$KEK"
fails -m "empty KEK file" 9 "$IMG" "0 bytes" kc verify "$IMG"
restore_kek
assert_exit -m "control: the restored KEK verifies again" 0 kc verify "$IMG"

# --- KEK URI problems: at format nothing may be written ---------------------------------------
ZIMG=$T/zero.img
new_img "$ZIMG"
assert_exit -m "format with unknown URI scheme foo:bar: exit 15" 15 kc format -q "$ZIMG" --kek foo:bar
assert_stderr_contains -m "foo:bar: message names the scheme" "unsupported scheme 'foo'"
assert_stderr_contains -m "foo:bar: message names the device" "$ZIMG"
assert_true -m "foo:bar: nothing written (image still all zeros)" is_all_zero "$ZIMG"
assert_exit -m "format with a good and an unknown-scheme KEK: exit 15" 15 \
	kc format -q "$ZIMG" --kek "$URI" --kek foo:bar
assert_true -m "... nothing written (image still all zeros)" is_all_zero "$ZIMG"
fails -m "kek add foo:bar" 15 "$IMG" "unsupported scheme" kc kek add "$IMG" --kek foo:bar

assert_exit -m "format with a relative file URI: exit 9" 9 kc format -q "$ZIMG" --kek file:kek.bin
assert_stderr_contains -m "relative file URI: message says the path must be absolute" "absolute"
assert_stderr_contains -m "relative file URI: message names the device" "$ZIMG"
assert_true -m "relative file URI: nothing written (image still all zeros)" is_all_zero "$ZIMG"
fails -m "kek add with a relative file URI" 9 "$IMG" "absolute" kc kek add "$IMG" --kek file:kek.bin
fails -m "kek add with a file URI with a host" 9 "$IMG" "host" kc kek add "$IMG" --kek "file://host$KEK"
assert_exit -m "format with a missing KEK file: exit 3" 3 kc format -q "$ZIMG" --kek "file:$T/nonexistent"
assert_true -m "... nothing written (image still all zeros)" is_all_zero "$ZIMG"

# --- not LUKS, truncated, corrupt -------------------------------------------------------------
fails -m "verify on an all-zero image" 10 "$ZIMG" "not a LUKS2 volume" kc verify "$ZIMG"
fails -m "dump on an all-zero image" 10 "$ZIMG" "not a LUKS2 volume" kc dump "$ZIMG"
fails -m "kek list on an all-zero image" 10 "$ZIMG" "not a LUKS2 volume" kc kek list "$ZIMG"
fails -m "kek add on an all-zero image" 10 "$ZIMG" "not a LUKS2 volume" kc kek add "$ZIMG" --kek "$URI"
fails -m "kek remove on an all-zero image" 10 "$ZIMG" "not a LUKS2 volume" kc kek remove "$ZIMG" --token 0
assert_true -m "the all-zero image is still all zeros" is_all_zero "$ZIMG"

assert_exit -m "verify on a device that does not exist: exit 3" 3 kc verify "$T/nonexistent.img"
assert_stderr_contains -m "... naming it" "$T/nonexistent.img"

TIMG=$T/truncated.img
cp "$IMG" "$TIMG"
truncate -s 8K "$TIMG"
fails -m "verify on a LUKS image truncated to 8 KiB" 10 "$TIMG" "not a LUKS2 volume" kc verify "$TIMG"
fails -m "dump on a LUKS image truncated to 8 KiB" 10 "$TIMG" "not a LUKS2 volume" kc dump "$TIMG"
assert_eq -m "the truncated image keeps its size" 8192 "$(stat -c %s "$TIMG")"

# The LUKS2 header is stored twice: the primary at 0, the secondary at the end of the first
# metadata area (hdr_size, 16 KiB by default); each is a 4 KiB binary header then JSON.
hdr_size=$(python3 -c 'import struct, sys
f = open(sys.argv[1], "rb"); b = f.read(16)
assert b[:6] == b"LUKS\xba\xbe", "not LUKS2"
print(struct.unpack(">Q", b[8:16])[0])' "$IMG")
diag "LUKS2 metadata area: $hdr_size bytes"
poke() { # poke IMG OFFSET: overwrite 16 bytes at OFFSET
	printf 'kekcrypt-CORRUPT' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

CIMG=$T/corrupt-json.img
cp "$IMG" "$CIMG"
poke "$CIMG" $((4096 + 100))
poke "$CIMG" $((hdr_size + 4096 + 100))
fails -m "verify with both JSON areas corrupt" 10 "$CIMG" "header is corrupt" kc verify "$CIMG"
fails -m "dump with both JSON areas corrupt" 10 "$CIMG" "header is corrupt" kc dump "$CIMG"
fails -m "kek add with both JSON areas corrupt" 10 "$CIMG" "header is corrupt" kc kek add "$CIMG" --kek "$URI"
assert_exit -m "cryptsetup agrees it is not LUKS" 1 cryptsetup isLuks "$CIMG"

CIMG=$T/corrupt-bin.img
cp "$IMG" "$CIMG"
poke "$CIMG" 448 # the header checksum
poke "$CIMG" $((hdr_size + 448))
fails -m "verify with both binary headers corrupt" 10 "$CIMG" "header is corrupt" kc verify "$CIMG"
fails -m "dump with both binary headers corrupt" 10 "$CIMG" "header is corrupt" kc dump "$CIMG"

CIMG=$T/corrupt-magic.img
cp "$IMG" "$CIMG"
poke "$CIMG" 0
poke "$CIMG" "$hdr_size"
fails -m "verify with both magics overwritten" 10 "$CIMG" "not a LUKS2 volume" kc verify "$CIMG"

# One copy corrupt: libcryptsetup recovers from the other one (and repairs the header, as
# cryptsetup itself does, so the header is not compared here).
CIMG=$T/corrupt-one.img
cp "$IMG" "$CIMG"
poke "$CIMG" $((4096 + 100))
assert_exit -m "one JSON copy corrupt: verify recovers from the other copy" 0 kc verify "$CIMG"
assert_exit -m "... and cryptsetup accepts the header afterwards" 0 cryptsetup isLuks --type luks2 "$CIMG"

# --- configuration file -----------------------------------------------------------------------
CONF=$T/kekcrypt.conf
printf '# kekcrypt test configuration\n' >"$CONF"
chmod 0600 "$CONF"
assert_exit -m "control: a private (0600) config file is accepted" 0 kc verify --config "$CONF" "$IMG"
chmod 0644 "$CONF"
sum=$(header_sum "$IMG")
assert_exit -m "config file of mode 0644: exit 14" 14 kc verify --config "$CONF" "$IMG"
assert_stderr_contains -m "config 0644: message names the config file" "$CONF"
assert_stderr_contains -m "config 0644: message names the cause" "accessible by group or others"
assert_exit -m "config file of mode 0644 at kek add: exit 14" 14 \
	kc kek add --config "$CONF" "$IMG" --kek "file:$T/kek-new.bin"
assert_header_unchanged -m "config 0644: header unchanged" "$IMG" "$sum"
assert_exit -m "config file of mode 0644 at format: exit 14" 14 \
	kc format -q --config "$CONF" "$ZIMG" --kek "$URI"
assert_true -m "config 0644 at format: nothing written" is_all_zero "$ZIMG"
chmod 0600 "$CONF"
# kekcrypt(8): 3 = "no usable ... file", 25 = "the configuration file does not parse"
assert_exit -m "a --config file that does not exist: exit 3" 3 kc verify --config "$T/nonexistent.conf" "$IMG"
assert_stderr_contains -m "... naming it" "$T/nonexistent.conf"
printf '[file\nthis is not a key = value line\n' >"$CONF"
assert_exit -m "an unparsable config file: exit 25" 25 kc verify --config "$CONF" "$IMG"
assert_stderr_contains -m "... naming it" "$CONF"

# --- bad command lines: exit 2, nothing written ------------------------------------------------
sum=$(header_sum "$IMG")
usage() { # usage DESC CMD...
	local d=$1
	shift
	assert_exit -m "$d: exit 2" 2 "$@"
	assert_true -m "$d: says what is wrong on stderr" test -s "$ERR"
}
usage "verify --bogus (unknown option)" kc verify --bogus "$IMG"
assert_stderr_contains -m "verify --bogus: names the option" "--bogus"
usage "verify without DEVICE" kc verify
assert_stderr_contains -m "verify without DEVICE: says a DEVICE is expected" "DEVICE"
usage "verify --token abc" kc verify "$IMG" --token abc
assert_stderr_contains -m "verify --token abc: quotes the bad value" "abc"
usage "verify --token -1" kc verify "$IMG" --token -1
usage "verify with two devices" kc verify "$IMG" "$IMG"
usage "format --bogus" kc format -q --bogus "$ZIMG" --kek "$URI"
usage "format without DEVICE" kc format -q --kek "$URI"
usage "format without --kek" kc format -q "$ZIMG"
usage "format --key-size abc" kc format -q "$ZIMG" --kek "$URI" --key-size abc
usage "format --sector-size abc" kc format -q "$ZIMG" --kek "$URI" --sector-size abc
assert_true -m "bad format command lines wrote nothing" is_all_zero "$ZIMG"
usage "dump --bogus" kc dump --bogus "$IMG"
usage "dump without DEVICE" kc dump
usage "kek remove --token abc" kc kek remove "$IMG" --token abc
usage "kek remove without --token" kc kek remove "$IMG"
usage "kek add without --kek" kc kek add "$IMG"
usage "kek frobnicate" kc kek frobnicate "$IMG"
usage "kek without a subcommand" kc kek
usage "unknown verb" kc frobnicate "$IMG"
usage "no verb" kc
usage "open without NAME" kc open "$IMG"
assert_header_unchanged -m "bad command lines left the header unchanged" "$IMG" "$sum"

# --- read-only devices ------------------------------------------------------------------------
loop_attach -r "$IMG"
RO=$LOOP
diag "read-only loop device $RO"
assert_exit -m "control: verify works on a read-only loop device" 0 kc verify "$RO"
assert_exit -m "control: dump works on a read-only loop device" 0 kc dump "$RO"
DEV_NAME=$RO
fails -m "kek add on a read-only loop device" 13 "$IMG" "read-only" kc kek add "$RO" --kek "file:$T/kek-new.bin"
fails -m "kek remove on a read-only loop device" 13 "$IMG" "read-only" kc kek remove -q --force "$RO" --token 0
loop_detach "$RO"
ROZ=$T/ro-zero.img
new_img "$ROZ"
loop_attach -r "$ROZ"
DEV_NAME=$LOOP
fails -m "format on a read-only loop device" 13 "$ROZ" "read-only" kc format -q "$LOOP" --kek "$URI"
assert_true -m "format on a read-only loop device wrote nothing" is_all_zero "$ROZ"
loop_detach "$LOOP"
unset DEV_NAME

# --- mapping verbs without device-mapper --------------------------------------------------------
# The kernel lists device-mapper in /proc/misc when it has it; /dev/mapper/control may exist
# as a stale node (libdevmapper creates it) even when the kernel has none (ENODEV).
if grep -qw device-mapper /proc/misc; then
	diag "this kernel has device-mapper: the no-device-mapper checks do not apply"
else
	diag "no device-mapper in the kernel; /dev/mapper/control $([ -e /dev/mapper/control ] && echo exists || echo is absent)"
	fails -m "open without device-mapper" 19 "$IMG" "device-mapper is not available" kc open "$IMG" kc-test
	assert_exit -m "close without device-mapper: exit 19" 19 kc close kc-test
	assert_stderr_contains -m "close: message says device-mapper is not available" "device-mapper is not available"
	assert_exit -m "status without device-mapper: exit 19" 19 kc status
	assert_stderr_contains -m "status: message says device-mapper is not available" "device-mapper is not available"
fi

done_testing
