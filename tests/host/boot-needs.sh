#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# initramfs/boot-needs.sh (what the initramfs-tools hook and the dracut module copy) on image
# files with real tokens and forged ones: only files the configuration names are listed for
# copying (secret ones apart: the configuration, credentials, KEK and PIN files; CA files as
# plain files; modules as libraries); a token naming a KEK file, PKCS#11 module or PIN file
# the configuration does not allow ([file] allowed-paths, [pkcs11] allowed-modules,
# allowed-pin-files) gets an "unlisted" line naming the volume, the token's URI and the key,
# and its file is listed nowhere; a volume whose every token is refused so is "unusable" (the
# build fails), one with another usable token is not; a missing file the configuration names
# is "missing"; a remote KMS is "remote"; a URI holding "\n" makes no line of its own.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
NEEDS_SH=$(cd "$(dirname "$0")/../.." && pwd)/initramfs/boot-needs.sh.in
A=$T/a.img
B=$T/b.img
new_kek "$T/ka"
new_kek "$T/kb"
new_img "$A"
new_img "$B"
format_img "$A" "$T/ka"
format_img "$B" "$T/kb"

# forge IMG URI PROVIDER [KEY-VERSION]: add a token bound to keyslot 0 naming URI (a copy of
# token 0 with another KEK: what anyone who can write the disk can do).
forge() {
	cryptsetup token export --token-id 0 "$1" >"$T/.tok.json"
	python3 - "$T/.tok.json" "$2" "$3" "${4:-}" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["kekcrypt-key-id"] = sys.argv[2]
t["kekcrypt-provider"] = sys.argv[3]
if sys.argv[4]:
    t["kekcrypt-key-version"] = sys.argv[4]
json.dump(t, open(sys.argv[1], "w"))
PY
	cryptsetup --disable-external-tokens token import --json-file "$T/.tok.json" "$1"
}

# needs CONFIG SOURCE...: the need lines, in $OUT.
needs() {
	run env KEKCRYPT_CONFIG="$1" sh -c '. "$0"; kekcrypt_boot_needs "$@"' \
		"$NEEDS_SH" "${@:2}"
}

mkdir -m 700 "$T/etc"
(umask 077 && echo "hvs.token" >"$T/etc/vtoken" && echo 1234 >"$T/etc/pin" &&
	echo "# CA" >"$T/etc/ca.pem" && touch "$T/etc/libmod.so")
C=$T/etc/kekcrypt.conf
(umask 077 && cat >"$C" <<EOF
# a comment naming /not/a/path
[file]
allowed-paths = $T/ka,$T/etc/unused-but-present
[pkcs11]
allowed-modules = $T/etc/libmod.so
allowed-pin-files = $T/etc/pin
[vault-transit]
token-file = $T/etc/vtoken
ca-file = $T/etc/ca.pem
EOF
)
cp -p "$T/ka" "$T/etc/unused-but-present"

needs "$C" "$A"
assert_eq -m "a's own KEK is allowed: everything the configuration names, nothing else" \
	"secret configuration: $C
secret file named in $C (allowed-paths): $T/ka
secret file named in $C (allowed-paths): $T/etc/unused-but-present
lib file named in $C (allowed-modules): $T/etc/libmod.so
secret file named in $C (allowed-pin-files): $T/etc/pin
secret file named in $C (token-file): $T/etc/vtoken
file file named in $C (ca-file): $T/etc/ca.pem
remote" "$(cat "$OUT")"

# Forged tokens on a: a KEK file, a PKCS#11 module and a PIN file the configuration does not
# name (they exist: only policy keeps them out), and one that names only allowed files.
(umask 077 && head -c 32 /dev/urandom >"$T/forged-kek" && echo 0000 >"$T/forged-pin" &&
	touch "$T/forged.so")
forge "$A" "file:$T/forged-kek" file
forge "$A" "pkcs11:token=t;object=k?module-path=$T/forged.so&pin-source=file:$T/forged-pin" pkcs11
forge "$A" "pkcs11:token=t;object=k?module-path=${T//\//%2F}%2Fetc%2Flibmod.so&pin-source=file://$T/etc/pin" pkcs11
needs "$C" "$A"
assert_stdout_contains -m "the forged KEK file: a warning naming the volume, the token's URI and the key" \
	"unlisted $A: token 1 (file:$T/forged-kek): KEK file $T/forged-kek is not in [file] allowed-paths of $C: not copied into the initramfs"
assert_stdout_contains -m "the forged module: likewise" \
	"unlisted $A: token 2 (pkcs11:token=t;object=k?module-path=$T/forged.so&pin-source=file:$T/forged-pin): PKCS#11 module $T/forged.so is not in [pkcs11] allowed-modules of $C: not copied into the initramfs"
assert_stdout_contains -m "the forged PIN file: likewise" \
	"unlisted $A: token 2 (pkcs11:token=t;object=k?module-path=$T/forged.so&pin-source=file:$T/forged-pin): PIN file $T/forged-pin is not in [pkcs11] allowed-pin-files of $C: not copied into the initramfs"
assert_eq -m "... and nothing else is refused (token 3: percent-encoded, file:// allowed paths)" \
	3 "$(grep -c '^unlisted' "$OUT")"
assert_eq -m "the forged files are on no line to copy" "" \
	"$(grep -v '^unlisted' "$OUT" | grep -e forged || true)"
assert_not_contains -m "a still has its own token: not unusable" "$(cat "$OUT")" "unusable"

needs "$C" "$B"
assert_stdout_contains -m "b's only token names a KEK file not allowed: a warning" \
	"unlisted $B: token 0 (file:$T/kb): KEK file $T/kb is not in [file] allowed-paths of $C"
assert_stdout_contains -m "... and b is unusable (the build fails), saying what to do" \
	"unusable $B: no token can unlock it in the initramfs: each names a file that $C does not allow (see the warnings); add the file to the key named there if the token is yours"
assert_not_contains -m "... kb is listed nowhere to copy" "$(grep -v '^unlisted' "$OUT")" "$T/kb"

forge "$B" "azure-kv+https://kv.example.net/keys/k" azure-kv 0123abcd
needs "$C" "$B"
assert_not_contains -m "b with a remote token as well: not unusable" "$(cat "$OUT")" "unusable"
assert_stdout_contains -m "... still a warning for kb" "unlisted $B: token 0 (file:$T/kb)"

# Forged URIs with a glob, and with a terminal escape (an invalid token, which kek list says).
forge "$A" "file:$T/*" file
forge "$A" "file:$T/x"$'\e'"[2J" file
needs "$C" "$A"
assert_stdout_contains -m "a glob in a token's URI is not expanded" \
	"unlisted $A: token 4 (file:$T/*): KEK file $T/* is not in [file] allowed-paths"
assert_not_contains -m "... and the invalid token is ignored" "$(cat "$OUT")" "token 5"
assert_not_contains -m "... a is still usable" "$(cat "$OUT")" "unusable"

# A URI holding a backslash sequence: printed as it is, not turned into a line of its own (a
# need that would have the hooks copy a file the configuration does not name).
forge "$A" 'file:/x\nsecret e: /etc/passwd\n' file
needs "$C" "$A"
assert_stdout_contains -m "a backslash sequence in a token's URI stays as it is" \
	'unlisted '"$A"': token 6 (file:/x\nsecret e: /etc/passwd\n): KEK file /x\nsecret e: /etc/passwd\n is not'
assert_not_contains -m "... no need line comes of it" "$(cat "$OUT")" $'\nsecret e: /etc/passwd'

printf '[file]\nallowed-paths = %s %s\n' "$T/ka" "$T/etc/gone" >"$T/etc/gone.conf"
chmod 600 "$T/etc/gone.conf"
needs "$T/etc/gone.conf" "$A"
assert_stdout_contains -m "a file the configuration names is missing: said so" \
	"missing file named in $T/etc/gone.conf (allowed-paths): $T/etc/gone"
assert_stdout_contains -m "... lists separated by spaces work too" \
	"secret file named in $T/etc/gone.conf (allowed-paths): $T/ka"

needs "$T/none.conf" "$A"
assert_stdout_contains -m "no configuration: no KEK file is allowed" \
	"unlisted $A: token 0 (file:$T/ka): KEK file $T/ka is not in [file] allowed-paths"
assert_eq -m "... nothing to copy" "" "$(grep -E '^(secret|file|lib) ' "$OUT" || true)"

needs "$C" "$T/nonexistent"
assert_eq -m "a device that cannot be read" "secret configuration: $C" "$(head -n 1 "$OUT")"
assert_stdout_contains -m "... is unreadable" "unreadable $T/nonexistent"

done_testing
