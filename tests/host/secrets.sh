#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Secrets stay secret: the DEK (and the KEK, the keyslot passphrase, the PIN) never appear in
# stdout, in the debug log (--debug, KC_DEBUG=1), nor in /proc/PID/cmdline or /proc/PID/environ
# of a running kekcrypt. The DEK is obtained independently (python3-cryptography unwraps the
# token with the KEK file) and proven to be the real volume key by cryptsetup, which is also an
# interoperability proof: an independent implementation reads our token.
. "$(dirname "$0")/lib.sh"
need gdb

python3 -c 'import cryptography.hazmat.primitives.keywrap' 2>/dev/null || {
	echo "not ok 1 - python3 'cryptography' is missing: apt-get install -y python3-cryptography"
	T_DONE=1
	exit 1
}

T=$T_DIR
IMG=$T/disk.img
KEK=$T/kek.bin
URI=file:$KEK
new_kek "$KEK"
new_img "$IMG"

# --- format with debug logging; then learn the DEK independently --------------------------------
assert_exit -m "format --debug" 0 kc format -q --debug "$IMG" --kek "$URI"
cp "$OUT" "$T/format.out"
cp "$ERR" "$T/format.err"
unwrap_dek "$IMG" 0 "$KEK" "$T/dek"
assert_eq -m "python3-cryptography unwraps a 64-byte DEK" 64 "$(stat -c %s "$T/dek")"

# Proof that it is the volume key: cryptsetup adds a keyslot only with the right volume key.
cp --sparse=always "$IMG" "$T/interop.img"
printf 'interop-passphrase' >"$T/newpass"
assert_exit -m "cryptsetup luksAddKey --volume-key-file accepts the independently unwrapped DEK" 0 \
	cryptsetup luksAddKey -q --volume-key-file "$T/dek" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/interop.img" "$T/newpass"
assert_exit -m "... and the new passphrase opens the volume" 0 \
	cryptsetup open --test-passphrase --key-file "$T/newpass" "$T/interop.img"
# Control: the same check refuses a wrong key, so the proof above means something.
head -c 64 /dev/urandom >"$T/notdek"
assert_exit -m "control: cryptsetup refuses a random 64-byte volume key (exit 2)" 2 \
	cryptsetup luksAddKey -q --volume-key-file "$T/notdek" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	"$T/interop.img" "$T/newpass"

# The keyslot bound to the token: its passphrase is HKDF-SHA256(DEK, salt = volume UUID,
# info = "kekcrypt keyslot passphrase v1") (lib/volume.c), what the token plugin hands to
# libcryptsetup. Derive it independently and let cryptsetup check it.
python3 - "$T/dek" "$(cryptsetup luksUUID "$IMG")" "$T/slotpass" <<'PY'
import os, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
dek = open(sys.argv[1], "rb").read()
p = HKDF(algorithm=hashes.SHA256(), length=32, salt=sys.argv[2].encode(),
         info=b"kekcrypt keyslot passphrase v1").derive(dek)
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, p)
os.close(fd)
PY
assert_exit -m "keyslot 0 opens with the HKDF passphrase derived from the DEK" 0 \
	cryptsetup open --test-passphrase --key-slot 0 --key-file "$T/slotpass" "$IMG"

# --- the logs --------------------------------------------------------------------------------------
assert_no_secret -m "format --debug: no DEK in stdout or the debug log" "$T/dek" "$T/format.out" "$T/format.err"
assert_no_secret -m "format --debug: no KEK in stdout or the debug log" "$KEK" "$T/format.out" "$T/format.err"
assert_no_secret -m "format --debug: no keyslot passphrase in stdout or the debug log" \
	"$T/slotpass" "$T/format.out" "$T/format.err"

logs=()
debug_run() { # debug_run NAME CODE CMD...: keep stdout/stderr as $T/NAME.{out,err}
	local name=$1 code=$2
	shift 2
	assert_exit -m "$name: exit $code" "$code" "$@"
	cp "$OUT" "$T/$name.out"
	cp "$ERR" "$T/$name.err"
	logs+=("$T/$name.out" "$T/$name.err")
}
debug_run "verify --debug" 0 kc verify --debug "$IMG"
# Without a debug log on the success path (where the DEK is in memory) the secrecy checks of
# that path would be vacuous.
assert_true -m "verify --debug logs its steps on success" grep -q '^# ' "$T/verify --debug.err"
debug_run "KC_DEBUG=1 verify" 0 env KC_DEBUG=1 "$KEKCRYPT" verify "$IMG"
debug_run "verify --debug --json" 0 kc verify --debug --json "$IMG"
debug_run "dump --debug" 0 kc dump --debug "$IMG"
debug_run "dump --debug --json" 0 kc dump --debug --json "$IMG"
debug_run "kek list --debug --json" 0 kc kek list --debug --json "$IMG"
KEK2=$T/kek2.bin
new_kek "$KEK2"
debug_run "kek add --debug" 0 kc kek add --debug "$IMG" --kek "file:$KEK2"
# Another KEK: adding one the volume has is a no-op, which would unwrap nothing.
KEK3=$T/kek3.bin
new_kek "$KEK3"
debug_run "KC_DEBUG=1 kek add --json" 0 env KC_DEBUG=1 "$KEKCRYPT" kek add --json "$IMG" --kek "file:$KEK3"
debug_run "kek remove --debug" 0 kc kek remove --debug "$IMG" --token 2
# failures log too: a wrong KEK, a wrong-volume token
cp "$KEK2" "$T/kek2.saved"
new_kek "$KEK2"
debug_run "verify --debug --token 1 (wrong KEK)" 8 kc verify --debug "$IMG" --token 1
assert_true -m "verify --debug logs the failure of token 1" grep -q '^# token 1 failed' \
	"$T/verify --debug --token 1 (wrong KEK).err"
debug_run "KC_DEBUG=1 verify --token 1 (wrong KEK)" 8 env KC_DEBUG=1 "$KEKCRYPT" verify "$IMG" --token 1
assert_true -m "KC_DEBUG=1 turns the debug log on" grep -q '^# token 1 failed' \
	"$T/KC_DEBUG=1 verify --token 1 (wrong KEK).err"
cp "$T/kek2.saved" "$KEK2"
debug_run "open --debug (no device-mapper here)" 19 kc open --debug "$IMG" kc-secrets-test

# every log and output holds neither the DEK, nor a KEK, nor the keyslot passphrase
assert_no_secret -m "no DEK in any stdout or debug log" "$T/dek" "${logs[@]}"
assert_no_secret -m "no KEK in any stdout or debug log" "$KEK" "${logs[@]}"
assert_no_secret -m "no second KEK in any stdout or debug log" "$T/kek2.saved" "${logs[@]}"
assert_no_secret -m "no keyslot passphrase in any stdout or debug log" "$T/slotpass" "${logs[@]}"

# --- /proc/PID/cmdline and environ while the DEK is in memory --------------------------------
# gdb stops kekcrypt verify at crypt_volume_key_verify(cd, key, len), i.e. with the unwrapped
# DEK in memory, and copies the process's cmdline and environ (and, as proof that the stop is
# at the right moment, the key argument) to files.
cat >"$T/gdb.py" <<PY
import gdb
inf = gdb.selected_inferior()
pid = inf.pid
for what in ("cmdline", "environ"):
    with open("/proc/%d/%s" % (pid, what), "rb") as src, open("$T/proc.%s" % what, "wb") as dst:
        dst.write(src.read())
key = int(gdb.parse_and_eval("\$rsi"))
n = int(gdb.parse_and_eval("\$rdx"))
with open("$T/proc.key", "wb") as f:
    f.write(bytes(inf.read_memory(key, n)))
PY
chmod 0600 "$T/gdb.py"
if [ "$(uname -m)" != x86_64 ]; then
	not_ok "/proc check: the gdb script reads x86_64 argument registers; port it to $(uname -m)"
else
	export KC_SECRETS_TEST=canary KC_DEBUG=1
	assert_exit -m "kekcrypt verify under gdb, stopped at crypt_volume_key_verify" 0 \
		kc_tool gdb -nx -batch -q \
		-ex 'set breakpoint pending on' -ex 'set debuginfod enabled off' \
		-ex 'break crypt_volume_key_verify' -ex run -ex "source $T/gdb.py" -ex kill \
		--args -- verify "$IMG"
	unset KC_SECRETS_TEST KC_DEBUG
	assert_true -m "gdb stopped at the breakpoint and read /proc/PID/cmdline" test -s "$T/proc.cmdline"
	assert_true -m "gdb read /proc/PID/environ" test -s "$T/proc.environ"
	assert_true -m "the environ read is the kekcrypt process's (it holds the test's canary)" \
		grep -qa 'KC_SECRETS_TEST=canary' "$T/proc.environ"
	assert_true -m "at the breakpoint the process holds the DEK (the stop is at the right moment)" \
		cmp -s "$T/proc.key" "$T/dek"
	assert_no_secret -m "no DEK in /proc/PID/cmdline" "$T/dek" "$T/proc.cmdline"
	assert_no_secret -m "no DEK in /proc/PID/environ" "$T/dek" "$T/proc.environ"
	assert_no_secret -m "no KEK in /proc/PID/cmdline or environ" "$KEK" "$T/proc.cmdline" "$T/proc.environ"
	assert_no_secret -m "no keyslot passphrase in /proc/PID/cmdline or environ" "$T/slotpass" \
		"$T/proc.cmdline" "$T/proc.environ"
fi

# --- the PIN of a PKCS#11 KEK ------------------------------------------------------------------
# Needs the PKCS#11 provider and SoftHSM2 (CI installs both; without them this fails, it is not
# skipped).
if ! have_pkcs11; then
	not_ok "PIN secrecy: kekcrypt has no PKCS#11 provider (pkcs11: URIs are 'unsupported', exit 15)"
else
	src=0
	softhsm_setup "$T/hsm" || src=$?
	if [ "$src" = 77 ]; then
		not_ok "PIN secrecy: SoftHSM2 is not installed (apt-get install softhsm2 opensc)"
	elif [ "$src" != 0 ]; then
		not_ok "PIN secrecy: tests/fixtures/softhsm-setup.sh failed (exit $src)"
	else
		P11="pkcs11:token=kekcrypt-test;object=kek-aes?module-path=$KC_P11_MODULE&pin-source=file:$KC_P11_PIN_FILE"
		tr -d '\n' <"$KC_P11_PIN_FILE" >"$T/pin"
		cp -p "$KC_P11_PIN_FILE" "$T/pin.saved"
		PIMG=$T/p11.img
		new_img "$PIMG"
		logs=()
		debug_run "pkcs11 format --debug" 0 kc format -q --debug "$PIMG" --kek "$P11"
		debug_run "pkcs11 verify --debug" 0 kc verify --debug "$PIMG"
		debug_run "pkcs11 KC_DEBUG=1 dump" 0 env KC_DEBUG=1 "$KEKCRYPT" dump "$PIMG"
		debug_run "pkcs11 kek add --debug" 0 kc kek add --debug "$PIMG" --kek "file:$KEK"
		# a wrong PIN in the PIN file: neither PIN may be logged
		printf '%s\n' "9$(cat "$T/pin")" >"$KC_P11_PIN_FILE"
		tr -d '\n' <"$KC_P11_PIN_FILE" >"$T/badpin"
		debug_run "pkcs11 verify --debug --token 0 with a wrong PIN" 7 kc verify --debug "$PIMG" --token 0
		cp -p "$T/pin.saved" "$KC_P11_PIN_FILE"
		assert_true -m "pkcs11 debug log of the wrong PIN run is not empty" grep -q '^# ' \
			"$T/pkcs11 verify --debug --token 0 with a wrong PIN.err"
		assert_no_secret -m "no PIN in any stdout or debug log of the PKCS#11 runs" "$T/pin" "${logs[@]}"
		assert_no_secret -m "no wrong PIN in any stdout or debug log" "$T/badpin" "${logs[@]}"
		unwrap_dek "$PIMG" 1 "$KEK" "$T/p11dek"
		assert_no_secret -m "no DEK in any stdout or debug log of the PKCS#11 runs" "$T/p11dek" "${logs[@]}"
		# the PIN under gdb: not in cmdline/environ either
		export KC_SECRETS_TEST=canary
		assert_exit -m "pkcs11 verify under gdb" 0 kc_tool gdb -nx -batch -q \
			-ex 'set breakpoint pending on' -ex 'set debuginfod enabled off' \
			-ex 'break crypt_volume_key_verify' -ex run -ex "source $T/gdb.py" -ex kill \
			--args -- verify "$PIMG" --token 0 --config "$T_CONF"
		unset KC_SECRETS_TEST
		assert_no_secret -m "no PIN in /proc/PID/cmdline or environ" "$T/pin" "$T/proc.cmdline" "$T/proc.environ"
	fi
fi

done_testing
