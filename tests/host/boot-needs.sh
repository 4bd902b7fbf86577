#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `kekcrypt boot-needs` (what the initramfs-tools hook and the dracut module copy; lib/boot.c)
# on image files with real tokens and forged ones: only files the configuration names are
# listed for copying (secret ones apart: the configuration, credentials, KEK and PIN files;
# CA files as plain files; modules as libraries); a token naming a KEK file, PKCS#11 module or
# PIN file the configuration does not allow ([file] allowed-paths, [pkcs11] allowed-modules,
# allowed-pin-files) gets an "unlisted" line naming the volume, the token's URI and the key,
# and its file is listed nowhere; a volume whose every token is refused so is "unusable" (the
# build fails), one with another usable token is not; a missing file the configuration names
# is "missing"; a remote KMS needs the "network"; --tokens lists a volume's own tokens' needs
# only (a file KEK's volume needs no network whatever the configuration names); the crypttab
# entries of each kind of initramfs are selected; no forged URI can make a line of its own.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
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

# needs CONFIG DEVICE...: the need lines, in $OUT.
needs() {
	run kc boot-needs --config "$1" "${@:2}"
}
# line KIND PATH WHAT: one need line as the verb prints it.
line() {
	printf '%s\t%s\t%s' "$1" "$2" "$3"
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

# The libraries kekcrypt dlopen()s (ldd cannot show them), where the dynamic linker's cache
# has them.
# (awk reads to the end: exiting early would kill ldconfig with SIGPIPE, a failure under
# pipefail.)
sysdir() { ldconfig -p | awk -v n="$1" '$1 == n && !found { print $NF; found = 1 }'; }
LIBP11=$(sysdir libp11-kit.so.0)
LIBCURL=$(sysdir libcurl.so.4)
needs "$C" "$A"
assert_eq -m "a's own KEK is allowed: everything the configuration names, nothing else" \
	"$(line secret "$C" "the configuration")
$(line secret "$T/ka" "[file] allowed-paths of $C")
$(line secret "$T/etc/unused-but-present" "[file] allowed-paths of $C")
$(line lib "$LIBP11" "libp11-kit.so.0, which kekcrypt loads for PKCS#11")
$(line lib "$T/etc/libmod.so" "[pkcs11] allowed-modules of $C")
$(line secret "$T/etc/pin" "[pkcs11] allowed-pin-files of $C")
$(line network - "a KMS reached over HTTPS ([vault-transit])")
$(line lib "$LIBCURL" "libcurl.so.4, which kekcrypt loads for HTTPS to a KMS")
$(line file "$T/etc/ca.pem" "[vault-transit] ca-file of $C")
$(line secret "$T/etc/vtoken" "[vault-transit] token-file of $C")" "$(cat "$OUT")"

# Forged tokens on a: a KEK file, a PKCS#11 module and a PIN file the configuration does not
# name (they exist: only policy keeps them out), and one that names only allowed files.
(umask 077 && head -c 32 /dev/urandom >"$T/forged-kek" && echo 0000 >"$T/forged-pin" &&
	touch "$T/forged.so")
forge "$A" "file:$T/forged-kek" file
forge "$A" "pkcs11:token=t;object=k?module-path=$T/forged.so&pin-source=file:$T/forged-pin" pkcs11
forge "$A" "pkcs11:token=t;object=k?module-path=${T//\//%2F}%2Fetc%2Flibmod.so&pin-source=file://$T/etc/pin" pkcs11
needs "$C" "$A"
assert_stdout_contains -m "the forged KEK file: a warning naming the volume, the token's URI and the key" \
	"$(line unlisted "$A" "token 1 (file:$T/forged-kek): KEK file '$T/forged-kek' is not allowed by local policy: [file] allowed-paths in $C does not name it")"
assert_stdout_contains -m "the forged module: likewise" \
	"$(line unlisted "$A" "token 2 (pkcs11:token=t;object=k?module-path=$T/forged.so&pin-source=file:$T/forged-pin): PKCS#11 module '$T/forged.so' is not allowed by local policy: [pkcs11] allowed-modules in $C does not name it")"
assert_eq -m "... and nothing else is refused (token 3: percent-encoded, file:// allowed paths)" \
	2 "$(grep -c '^unlisted' "$OUT")"
assert_eq -m "the forged files are on no line to copy" "" \
	"$(grep -v '^unlisted' "$OUT" | grep -e forged || true)"
assert_not_contains -m "a still has its own token: not unusable" "$(cat "$OUT")" "unusable"

needs "$C" "$B"
assert_stdout_contains -m "b's only token names a KEK file not allowed: a warning" \
	"$(line unlisted "$B" "token 0 (file:$T/kb): KEK file '$T/kb' is not allowed by local policy: [file] allowed-paths in $C")"
assert_stdout_contains -m "... and b is unusable (the build fails), saying what to do" \
	"$(line unusable "$B" "no token can unlock it in the initramfs: token 0 names a file that $C does not name (see the warnings); if the token is yours, add its file there")"
assert_not_contains -m "... kb is listed nowhere to copy" "$(grep -v '^unlisted' "$OUT")" "$T/kb"

(umask 077 && printf '[azure-kv]\nallowed-hosts = kv.example.net\n' >>"$C")
forge "$B" "azure-kv+https://kv.example.net/keys/k" azure-kv 0123abcd
needs "$C" "$B"
assert_not_contains -m "b with a remote token as well: not unusable" "$(cat "$OUT")" "unusable"
assert_stdout_contains -m "... still a warning for kb" "$(line unlisted "$B" "token 0 (file:$T/kb)")"
assert_stdout_contains -m "... the network" "$(printf 'network\t-\ta KMS reached over HTTPS')"
assert_stdout_contains -m "... and the system's CA bundle ([azure-kv] names no ca-file)" \
	"$(line file /etc/ssl/certs/ca-certificates.crt "the system's CA bundle")"

# --tokens: what a volume's own tokens need, without the configuration's whole list (the
# keyscript asks it at boot and brings the network up only for a volume that needs it).
run kc boot-needs --config "$C" --tokens "$A"
assert_stdout_contains -m "--tokens: a's KEK file" "$(line secret "$T/ka" "a KEK file ([file] allowed-paths)")"
assert_not_contains -m "... no network: a names no remote KMS (the configuration does)" \
	"$(cat "$OUT")" "network"
assert_not_contains -m "... nor what only the configuration names" "$(cat "$OUT")" "$T/etc/vtoken"
run kc boot-needs --config "$C" --tokens "$B"
assert_stdout_contains -m "--tokens: b's remote token needs the network" "$(printf 'network\t-\t')"
assert_stdout_contains -m "... and b's refused token is still reported" \
	"$(line unlisted "$B" "token 0 (file:$T/kb)")"

# Forged URIs with a glob, and with a terminal escape and newlines: no need line comes of them
# (the hooks read one line per need, fields separated by tabs).
forge "$A" "file:$T/*" file
forge "$A" "file:$T/x"$'\e'"[2J" file
forge "$A" $'file:/x\nsecret\t/etc/passwd\tx\n' file
needs "$C" "$A"
assert_stdout_contains -m "a glob in a token's URI is not expanded" \
	"$(line unlisted "$A" "token 4 (file:$T/*): KEK file '$T/*' is not allowed by local policy")"
assert_not_contains -m "no line copies /etc/passwd" "$(cat "$OUT")" "$(printf 'secret\t/etc/passwd')"
assert_eq -m "every line has three fields" "" "$(awk -F'\t' 'NF != 3' "$OUT")"
assert_not_contains -m "... and no escape character reaches the output" "$(cat "$OUT")" $'\e'
assert_not_contains -m "... a is still usable" "$(cat "$OUT")" "unusable"

printf '[file]\nallowed-paths = %s %s\n' "$T/ka" "$T/etc/gone" >"$T/etc/gone.conf"
chmod 600 "$T/etc/gone.conf"
needs "$T/etc/gone.conf" "$A"
assert_stdout_contains -m "a file the configuration names is missing: said so" \
	"$(line missing "$T/etc/gone" "[file] allowed-paths of $T/etc/gone.conf")"
assert_stdout_contains -m "... lists separated by spaces work too" \
	"$(line secret "$T/ka" "[file] allowed-paths of $T/etc/gone.conf")"

needs "$T/none.conf" "$A"
assert_eq -m "an explicit config that does not exist: exit 3" 3 "$RC"
printf '# empty\n' >"$T/etc/empty.conf"
chmod 600 "$T/etc/empty.conf"
needs "$T/etc/empty.conf" "$A"
assert_stdout_contains -m "an empty configuration: no KEK file is copied (none is named)" \
	"$(line unlisted "$A" "token 0 (file:$T/ka): KEK file $T/ka is not in [file] allowed-paths of $T/etc/empty.conf: not copied into the initramfs")"
assert_eq -m "... nothing but the configuration to copy" "$(line secret "$T/etc/empty.conf" "the configuration")" \
	"$(grep -E '^(secret|file|lib)' "$OUT")"

needs "$C" "$T/nonexistent"
assert_eq -m "a device that cannot be read: the configuration first" \
	"$(line secret "$C" "the configuration")" "$(head -n 1 "$OUT")"
assert_stdout_contains -m "... and the device is unreadable" "$(printf 'unreadable\t%s' "$T/nonexistent")"

# The crypttab entries each kind of initramfs unlocks.
cat >"$T/crypttab" <<EOF
# a comment
ks $A none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript
other $B none luks,keyscript=/lib/cryptsetup/scripts/passdev
dr $B none luks,x-initrd.attach,token-timeout=20
late $A none luks
EOF
run kc boot-needs --config "$C" --for keyscript --crypttab "$T/crypttab"
assert_eq -m "--for keyscript: the entry with kekcrypt-keyscript, and only it" \
	"$(printf 'entry\tks\tks %s none luks,keyscript=/usr/lib/kekcrypt/kekcrypt-keyscript' "$A")" \
	"$(grep '^entry' "$OUT")"
assert_stdout_contains -m "... and its KEK file" "$(line secret "$T/ka" "[file] allowed-paths of $C")"
run kc boot-needs --config "$C" --for initrd --crypttab "$T/crypttab" --json
assert_eq -m "--for initrd --json: the x-initrd.attach entry" "dr" \
	"$(json_get "$OUT" '",".join(e["name"] for e in d["entries"])')"
printf 'x %s none luks\n' "$A" >"$T/crypttab2"
run kc boot-needs --config "$C" --for keyscript --crypttab "$T/crypttab2"
assert_eq -m "no entry of that kind: nothing at all" "" "$(cat "$OUT")"
assert_exit -m "--for something else: a usage error" 2 kc boot-needs --for grub --crypttab "$T/crypttab"
assert_exit -m "--tokens with --for: a usage error" 2 \
	kc boot-needs --tokens --for keyscript --crypttab "$T/crypttab"

done_testing
