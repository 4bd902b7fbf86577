#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A lean CLI and plugin (lib/dlopen.h): libkekcrypt and the token plugin link neither libcurl,
# libssl nor p11-kit; kekcrypt loads libcurl (with the libssl it uses) for a remote KMS and
# p11-kit for a PKCS#11 KEK, with dlopen(), when a KEK first needs them, and names them in ELF
# .note.dlopen notes. What a process loaded is what ld.so initialised in it (LD_DEBUG=libs,
# dlopen()ed objects included):
#  - kekcrypt verify of a file-KEK volume, and stock `cryptsetup open --test-passphrase
#    --token-only` through the plugin, load neither; a SoftHSM2 KEK loads p11-kit and no
#    libcurl; a Vault Transit KEK (the protocol fixture) loads libcurl and libssl;
#  - with libcurl.so.4 and libp11-kit.so.0 made unloadable (an empty file bind-mounted over
#    each, in this test's private mount namespace): a file KEK still unlocks, also as the
#    second token after a Vault one, through kekcrypt and through the plugin; a Vault or
#    PKCS#11 KEK fails with exit 19 and a message naming the library and the package.
# Runs in a private mount namespace (plugin_namespace, as tests/host/plugin.sh); needs node for
# the Vault fixture (tests/fixtures/vault/server.js, built-ins only) and SoftHSM2.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need mount node ldd readelf
T=$T_DIR
LIBDIR=$(cd "$(dirname "$(plugin_path)")" && pwd)
# The shared library itself, whatever its soname version.
LIBKC=$(readlink -f "$LIBDIR/libkekcrypt.so")

# loaded CMD...: run CMD as `run` does ($RC, $OUT, $ERR) with ld.so reporting the objects it
# initialises; $LOADED gets their file names, one a line; $T/paths collects their paths.
loaded() {
	rm -f "$T"/.ld.*
	LD_DEBUG=libs LD_DEBUG_OUTPUT=$T/.ld run "$@"
	cat "$T"/.ld.* 2>/dev/null | sed -n 's@.*calling init: @@p' >>"$T/paths"
	LOADED=$(cat "$T"/.ld.* 2>/dev/null | sed -n 's@.*calling init: .*/@@p' | sort -u)
}

# has_lib [-n] DESC NAME: NAME (a file name prefix, e.g. libcurl.so.) is in $LOADED (-n: not).
has_lib() {
	local neg=
	if [ "$1" = -n ]; then
		neg=1
		shift
	fi
	if grep -q "^$2" <<<"$LOADED"; then
		[ -z "$neg" ] && ok "$1" || not_ok "$1" "loaded: $(grep "^$2" <<<"$LOADED")"
	else
		[ -n "$neg" ] && ok "$1" || not_ok "$1" "not among: $(echo $LOADED)"
	fi
}

# --- what the objects link --------------------------------------------------------------------
for so in "$LIBKC" "$(plugin_path)"; do
	assert_exit -m "ldd $(basename "$so")" 0 ldd "$so"
	assert_true -m "$(basename "$so") links no libcurl, libssl, p11-kit (ldd)" \
		bash -c '! grep -E "lib(curl|ssl|p11-kit)\." "$1"' _ "$OUT"
done
# What it may dlopen() instead, for packaging and initramfs tools: ELF .note.dlopen notes
# (https://systemd.io/ELF_DLOPEN_METADATA/).
assert_exit -m "readelf -p .note.dlopen $(basename "$LIBKC")" 0 \
	readelf -p .note.dlopen "$LIBKC"
assert_stdout_contains -m "libkekcrypt's dlopen notes name libcurl.so.4" '"soname":["libcurl.so.4"'
assert_stdout_contains -m "libkekcrypt's dlopen notes name libp11-kit.so.0" \
	'"soname":["libp11-kit.so.0"]'

# --- the setting: plugin in libcryptsetup's token dir, SoftHSM2, the Vault fixture -----------
plugin_namespace
src=0
softhsm_setup "$T/hsm" || src=$?
[ "$src" = 0 ] || {
	echo "not ok 1 - tests/fixtures/softhsm-setup.sh failed (exit $src)"
	T_DONE=1
	exit 1
}
"$FIX/tls.sh" "$T/tls" >/dev/null
VTOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && printf '%s\n' "$VTOKEN" >"$T/vault-token")
: >"$T/V.port"	# fixture_start reads it at once: no race with the server's redirection
fixture_start V node "$FIX/vault/server.js" --tls-dir "$T/tls" --token "$VTOKEN" --key k1
VURI=vault-transit+https://127.0.0.1:$V_PORT/v1/transit/keys/k1
P11URI="pkcs11:token=kekcrypt-test;object=kek-aes?module-path=$KC_P11_MODULE"
P11URI+="&pin-source=file:$KC_P11_PIN_FILE"
printf '[vault-transit]\nauth = token\ntoken-file = %s\nca-file = %s\nallowed-hosts = 127.0.0.1\n' \
	"$T/vault-token" "$T/tls/ca.pem" >>"$T_CONF"

KEK=$T/kek.bin
new_kek "$KEK"
for img in file p11 vault both; do new_img "$T/$img.img"; done
assert_ok -m "format: file KEK" kc format -q "$T/file.img" --kek "file:$KEK"
assert_ok -m "format: SoftHSM2 KEK" kc format -q "$T/p11.img" --kek "$P11URI"
assert_ok -m "format: Vault KEK" kc format -q "$T/vault.img" --kek "$VURI"
assert_ok -m "format: Vault KEK, then a file KEK" kc format -q "$T/both.img" --kek "$VURI" \
	--kek "file:$KEK"

# --- what each unlock loads -------------------------------------------------------------------
loaded kc verify "$T/file.img"
assert_eq -m "file KEK: kekcrypt verify" 0 "$RC"
has_lib "file KEK: ld.so reports what kekcrypt loaded (libkekcrypt.so among it)" libkekcrypt.so.
has_lib -n "file KEK: kekcrypt verify loads no libcurl" libcurl.so.
has_lib -n "file KEK: ... no libssl" libssl.so.
has_lib -n "file KEK: ... no p11-kit" libp11-kit.so.
diag "kekcrypt verify, file KEK: $(wc -l <<<"$LOADED") shared objects"

loaded cryptsetup open --test-passphrase --token-only "$T/file.img"
assert_eq -m "file KEK: cryptsetup --token-only through the plugin" 0 "$RC"
has_lib "file KEK: cryptsetup loaded the plugin" libcryptsetup-token-kekcrypt.so
has_lib -n "file KEK: cryptsetup with the plugin loads no libcurl" libcurl.so.
has_lib -n "file KEK: ... no libssl" libssl.so.
has_lib -n "file KEK: ... no p11-kit" libp11-kit.so.
diag "cryptsetup with the plugin, file KEK: $(wc -l <<<"$LOADED") shared objects"

loaded kc verify "$T/p11.img"
assert_eq -m "SoftHSM2 KEK: kekcrypt verify" 0 "$RC"
has_lib "SoftHSM2 KEK: kekcrypt verify loads p11-kit" libp11-kit.so.0
has_lib -n "SoftHSM2 KEK: ... and no libcurl" libcurl.so.

loaded cryptsetup open --test-passphrase --token-only "$T/p11.img"
assert_eq -m "SoftHSM2 KEK: cryptsetup --token-only through the plugin" 0 "$RC"
has_lib "SoftHSM2 KEK: the plugin loads p11-kit" libp11-kit.so.0
has_lib -n "SoftHSM2 KEK: ... and no libcurl" libcurl.so.

loaded kc verify "$T/vault.img"
assert_eq -m "Vault KEK: kekcrypt verify" 0 "$RC"
has_lib "Vault KEK: kekcrypt verify loads libcurl" libcurl.so.4
has_lib "Vault KEK: ... and libssl" libssl.so.3

loaded cryptsetup open --test-passphrase --token-only "$T/vault.img"
assert_eq -m "Vault KEK: cryptsetup --token-only through the plugin" 0 "$RC"
has_lib "Vault KEK: the plugin loads libcurl" libcurl.so.4

# --- libcurl and p11-kit missing --------------------------------------------------------------
# The files the dynamic linker opened for them above, replaced by an empty file: dlopen() fails
# ("file too short") as it would with the library not installed.
: >"$T/empty"
for soname in libcurl.so.4 libp11-kit.so.0; do
	path=$(grep -m 1 "/$soname\$" "$T/paths")
	mount --bind "$T/empty" "$(readlink -f "$path")"
done

assert_ok -m "no libcurl, no p11-kit: a file KEK still unlocks (kekcrypt verify)" \
	kc verify "$T/file.img"
assert_ok -m "no libcurl, no p11-kit: ... and through the plugin" \
	cryptsetup open --test-passphrase --token-only "$T/file.img"
assert_ok -m "no libcurl: a Vault token first, then a file KEK: kekcrypt verify unlocks" \
	kc verify "$T/both.img"
assert_stdout_contains -m "... with token 1, the file KEK" "token 1 (file:$KEK)"
assert_ok -m "no libcurl: a Vault token first, then a file KEK: the plugin unlocks" \
	cryptsetup open --test-passphrase --token-only "$T/both.img"

assert_exit -m "no libcurl: Vault KEK -> exit 19 (the system lacks a facility)" 19 \
	kc verify "$T/vault.img"
assert_stderr_contains -m "no libcurl: the error names the library and why it failed" \
	"libcurl.so.4, needed for HTTPS to a KMS, cannot be loaded ("
assert_stderr_contains -m "no libcurl: ... and the package to install" "install libcurl4"
assert_exit -m "no libcurl: Vault KEK through the plugin -> exit 1 (no usable token)" 1 \
	cryptsetup open --test-passphrase --token-only --debug "$T/vault.img"
assert_stderr_contains -m "no libcurl: the plugin's log names the library" \
	"libcurl.so.4, needed for HTTPS to a KMS, cannot be loaded"
assert_exit -m "no p11-kit: SoftHSM2 KEK -> exit 19" 19 kc verify "$T/p11.img"
assert_stderr_contains -m "no p11-kit: the error names the library and the package" \
	"libp11-kit.so.0, needed for PKCS#11, cannot be loaded"
assert_stderr_contains -m "no p11-kit: ... and the package to install" "install libp11-kit0"

done_testing
