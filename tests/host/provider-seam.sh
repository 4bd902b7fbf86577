#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A KEK provider is one file and one table line (issue 13): a copy of the source tree gets the
# test-only provider tests/providers/seamtest.c as lib/providers/seamtest.c and one line in
# lib/Makemodule.am's KC_PROVIDERS, and nothing else (the test checks the difference of the
# two trees). Built with this build's configure options, that tree's kekcrypt lists the
# provider (kek providers, --help), formats a volume with it, verifies it, rotates it
# to the key's new version (the provider's wrap, no special case elsewhere), names its key file
# for an initramfs (boot-needs) and refuses one local policy does not allow; its token plugin
# unlocks the volume inside cryptsetup; doctor says the volume is ok.
. "$(dirname "$0")/private-ns.sh"
. "$(dirname "$0")/lib.sh"
need mount autoreconf make diff

T=$T_DIR
SRC=$KC_SRCDIR
BUILD=$KC_BUILDDIR

# --- the tree: this one's files, then the provider's file and its line ------------------------
mkdir "$T/orig"
if [ -e "$SRC/.git" ] && command -v git >/dev/null 2>&1; then
	(cd "$SRC" && git ls-files -z | xargs -0 tar cf -) | tar xf - -C "$T/orig"
else
	(cd "$SRC" && tar cf - --exclude=.libs --exclude='*.o' --exclude='*.lo' .) |
		tar xf - -C "$T/orig"
fi
cp -a "$T/orig" "$T/seam"
cp "$SRC/tests/providers/seamtest.c" "$T/seam/lib/providers/seamtest.c"
sed -i 's|^KC_PROVIDERS = \\$|&\n\tlib/providers/seamtest.c \\|' "$T/seam/lib/Makemodule.am"
(cd "$T" && diff -ruN orig seam >"$T/change.diff") || true
assert_eq -m "the change: one new file and one line in one other" \
	"lib/Makemodule.am
lib/providers/seamtest.c" \
	"$(sed -n 's|^+++ seam/\([^[:space:]]*\).*|\1|p' "$T/change.diff" | sort)"
assert_eq -m "... in lib/Makemodule.am, one line added and none removed" \
	"+	lib/providers/seamtest.c \\" \
	"$(sed -n '/^+++ seam\/lib\/Makemodule.am/,/^diff /p' "$T/change.diff" |
		grep -E '^[-+][^-+]')"

# --- built as this build was configured ------------------------------------------------------
eval "set -- $("$BUILD/config.status" --config)"
# Less distcheck's relative --srcdir (the new tree's configure is named by its path) and its
# --with-tokendir under a prefix: this tree is never installed, and doctor must find its plugin
# where plugin_namespace puts it, in libcryptsetup's own token directory.
args=()
for a in "$@"; do
	case $a in --srcdir=* | --with-tokendir=*) ;; *) args+=("$a") ;; esac
done
set -- "${args[@]}"
mkdir "$T/build"
diag "building the tree with the provider (configure $*)"
(cd "$T/seam" && autoreconf -fi >"$T/autoreconf.log" 2>&1)
(cd "$T/build" && "$T/seam/configure" "$@" >"$T/configure.log" 2>&1 &&
	make -j"$(nproc)" >"$T/make.log" 2>&1) || {
	tail -30 "$T/make.log" "$T/configure.log" | sed 's/^/# /'
	false
}
KEKCRYPT=$T/build/kekcrypt
KC_PLUGIN=$T/build/.libs/libcryptsetup-token-kekcrypt.so
export KC_PLUGIN

assert_exit -m "kek providers --json lists it" 0 kc kek providers --json
assert_eq -m "... with the syntax and summary of its table entry" \
	"seamtest:/PATH|a test-only file of key versions" \
	"$(json_get "$OUT" '[p["syntax"] + "|" + p["summary"] for p in d["providers"] if p["name"] == "seamtest"][0]')"
assert_exit -m "kekcrypt --help" 0 "$KEKCRYPT" --help
assert_stdout_contains -m "... shows its URI syntax among the KEK URIs" "seamtest:/PATH"

# --- format, verify, rotate ----------------------------------------------------------------
plugin_namespace
KEYS=$T/keys
hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
(umask 077 && echo "v1 $(hex)" >"$KEYS")
conf "[seamtest]" "allowed-paths = $KEYS"
IMG=$T/a.img
new_img "$IMG"
assert_exit -m "format --kek seamtest:$KEYS" 0 kc format -q "$IMG" --kek "seamtest:$KEYS"
assert_exit -m "verify" 0 kc verify "$IMG"
assert_stdout_contains -m "... through token 0" "token 0 (seamtest:$KEYS)"
assert_exit -m "kek list --json" 0 kc kek list "$IMG" --json
assert_eq -m "... the token holds the provider and the key version v1" "seamtest v1" \
	"$(json_get "$OUT" 'd["tokens"][0]["provider"] + " " + d["tokens"][0]["key_version"]')"
echo "v2 $(hex)" >>"$KEYS"
assert_exit -m "kek rotate, after the key got version v2" 0 kc kek rotate "$IMG"
assert_exit -m "kek list --json" 0 kc kek list "$IMG" --json
assert_eq -m "... the token is now wrapped under v2" "v2" \
	"$(json_get "$OUT" 'd["tokens"][0]["key_version"]')"
sed -i '/^v1 /d' "$KEYS"
assert_exit -m "verify with v1 gone from the key file" 0 kc verify "$IMG"

# --- policy, boot, the plugin, doctor --------------------------------------------------------
assert_exit -m "boot-needs" 0 kc boot-needs "$IMG"
assert_stdout_contains -m "... lists the key file as a secret for the initramfs" \
	"$(printf 'secret\t%s\t' "$KEYS")"
conf "[seamtest]" "allowed-paths = $T/elsewhere"
assert_exit -m "a key file local policy does not allow: refused (exit 14)" 14 kc verify "$IMG"
assert_stderr_contains -m "... naming the config line" "[seamtest] allowed-paths in $T_CONF"
conf "[seamtest]" "allowed-paths = $KEYS"
assert_exit -m "cryptsetup open --token-only through the tree's plugin" 0 \
	cryptsetup open --test-passphrase --token-only "$IMG"
assert_exit -m "luksDump" 0 cryptsetup luksDump "$IMG"
assert_stdout_contains -m "... the plugin's dump names the provider" "Provider:    seamtest"
echo "s $IMG none luks" >"$T/crypttab"
# With a recovery key, as doctor wants every volume to have (else a warning).
assert_exit -m "recovery add" 0 \
	kc recovery add -q "$IMG" --pbkdf-memory 32 --pbkdf-force-iterations 4
assert_exit -m "doctor: the volume is ok" 0 kc doctor --crypttab "$T/crypttab"
assert_stdout_contains -m "... says so" "s ($IMG): ok"

done_testing
