#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kekcrypt doctor on image files, a test crypttab and initramfs images (newc cpio archives
# made with cpio and gzip; and as the tools write them, an early archive before the main one,
# zstd-compressed: read with libarchive, or by the real lsinitramfs without it): all well
# (exit 0); the initramfs
# readable by group or others while it holds secrets (KEK files, credential files: an error)
# and not (none); a forged token naming a KEK file not in [file] allowed-paths (a warning), and
# a volume with no other token (an error); the initramfs lacking
# kekcrypt or a KEK file; a KEK that no longer answers, with a recovery key (a warning) and
# without (an error); a volume without a recovery key (a warning); a second KEK that no longer
# answers while the first does (degraded redundancy: a warning); a volume without a kekcrypt
# token; a missing device; entries that do not
# use the keyscript ignored; no volume at all (exit 3); --json. Volumes for the token plugin
# (no key file, kekcrypt tokens): the plugin in the initramfs for x-initrd.attach ones,
# installed for the others. The crypttab settings kekcrypt reads: token=N naming no token of
# the volume, timeout=abc, an unknown keyscript setting, token-timeout=abc (each an error).
. "$(dirname "$0")/lib.sh"
need lsinitramfs cpio zstd

T=$T_DIR
KS=/usr/lib/kekcrypt/kekcrypt-keyscript
A=$T/a.img
B=$T/b.img
P=$T/plain.img
new_kek "$T/ka"
new_kek "$T/kb"
new_img "$A"
new_img "$B"
new_img "$P"
format_img "$A" "$T/ka"
format_img "$B" "$T/kb"
assert_exit -m "recovery key for a.img" 0 kc recovery add -q "$A" --pbkdf-memory 32 \
	--pbkdf-force-iterations 4
# The configuration allows the KEK files (kekcrypt's hooks copy nothing else).
(umask 077 && printf '[file]\nallowed-paths = %s, %s\n' "$T/ka" "$T/kb" >"$T/kc.conf")
echo -n "not a kekcrypt volume" | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 "$P" -

# pack NAME: $T/tree as $T/NAME.cpio, a gzipped newc archive readable by root only (as
# kekcrypt's hooks build an initramfs that holds secrets).
pack() {
	(cd "$T/tree" && find . | cpio -o -H newc --quiet | gzip -n >"$T/$1.cpio")
	chmod 600 "$T/$1.cpio"
}
# initramfs NAME PATH...: an archive holding the files at their absolute paths.
initramfs() {
	local name=$1 f
	shift
	rm -rf "$T/tree"
	mkdir -p "$T/tree"
	for f in "$@"; do
		mkdir -p "$T/tree$(dirname "$f")"
		cp "$f" "$T/tree$f"
	done
	pack "$name"
}
# The binary the doctor runs as (/proc/self/exe): libtool's wrapper runs .libs/kekcrypt or
# .libs/lt-kekcrypt; an installed one is itself.
BINS=()
for f in "$KEKCRYPT" "$(dirname "$KEKCRYPT")/.libs/kekcrypt" "$(dirname "$KEKCRYPT")/.libs/lt-kekcrypt"; do
	[ -e "$f" ] && BINS+=("$(readlink -f "$f")")
done
KSFILE=$T/ks
echo '#!/bin/sh' >"$KSFILE"
# The keyscript at its installed path inside the archive.
initramfs_with_ks() {
	local name=$1
	shift
	initramfs "$name" "$@"
	mkdir -p "$T/tree$(dirname "$KS")"
	cp "$KSFILE" "$T/tree$KS"
	pack "$name"
}
initramfs_with_ks good "${BINS[@]}" "$T/ka" "$T/kb"
initramfs_with_ks nobin "$T/ka" "$T/kb"
initramfs_with_ks nokek "${BINS[@]}" "$T/ka"

cat >"$T/crypttab" <<EOF
# comment
a $A none luks,keyscript=$KS
b $B timeout=30 luks,keyscript=$KS,initramfs
other $P none luks
EOF

doctor() {
	kc doctor --config "$T/kc.conf" --crypttab "$T/crypttab" "$@"
}

assert_exit -m "all well: exit 0" 0 doctor --initramfs "$T/good.cpio"
assert_stdout_contains -m "... a is ok" "a ($A): ok"
assert_stdout_contains -m "... b has warnings" "b ($B): warnings"
assert_stdout_contains -m "... b has no recovery key: a warning" \
	"warning: no recovery key: if no KEK answers, the volume cannot be unlocked; add one with 'kekcrypt recovery add $B'"
assert_stdout_contains -m "... no other problem" "0 error(s), 1 warning(s)"
assert_not_contains -m "... the entry without the keyscript is not checked" "$(cat "$OUT")" "other"
assert_exit -m "all well, --json" 0 doctor --initramfs "$T/good.cpio" --json
assert_eq -m "json: ok, initramfs checked, two volumes, each unlocking with token 0" \
	"True True 2 [0, 0] [1, 0]" "$(json_get "$OUT" '" ".join(str(x) for x in [d["ok"], d["initramfs_checked"], len(d["volumes"]), [v["unlocks_with_token"] for v in d["volumes"]], [v["recovery_keys"] for v in d["volumes"]]])')"

# --- how the image is read ------------------------------------------------------------------
# As initramfs-tools and dracut write it: an uncompressed early archive (CPU microcode), NUL
# padding, then the main archive compressed (zstd here). kekcrypt and the keyscript are in the
# second one: doctor reads past the first.
mkdir -p "$T/early/kernel/x86/microcode"
echo microcode >"$T/early/kernel/x86/microcode/GenuineIntel.bin"
split_image() {	# split_image NAME FROM.cpio: FROM's files behind an early archive
	{ (cd "$T/early" && find . | cpio -o -H newc --quiet)
	  head -c 512 /dev/zero
	  gzip -dc "$T/$2.cpio" | zstd -q -c; } >"$T/$1.img"
	chmod 600 "$T/$1.img"
}
split_image good-split good
split_image nokek-split nokek
assert_exit -m "an early archive, then the main one zstd-compressed: all well" 0 \
	doctor --initramfs "$T/good-split.img"
assert_stdout_contains -m "... the same report" "0 error(s), 1 warning(s)"
assert_exit -m "... a KEK file missing from its main archive: an error (24)" 24 \
	doctor --initramfs "$T/nokek-split.img"
assert_stdout_contains -m "... naming it" "the initramfs lacks $T/kb"
# In this process, with libarchive: listers on PATH that fail are not run.
mkdir -p "$T/nolisters"
for f in lsinitramfs lsinitrd; do printf '#!/bin/sh\nexit 1\n' >"$T/nolisters/$f"; done
chmod 755 "$T"/nolisters/*
assert_exit -m "libarchive reads the image (lsinitramfs and lsinitrd that fail are not run)" 0 \
	env PATH="$T/nolisters:$PATH" "$KEKCRYPT" doctor --config "$T/kc.conf" \
	--crypttab "$T/crypttab" --initramfs "$T/good-split.img"
# Without libarchive (its file hidden in a private mount namespace), lsinitramfs lists it.
libarchive=$(ldconfig -p | awk '$1 == "libarchive.so.13" && /x86-64/ { p = $NF } END { print p }')
[ -n "$libarchive" ] ||
	bail_out "libarchive.so.13 is missing (scripts/install-deps.sh installs libarchive-dev)"
no_libarchive() {	# no_libarchive COMMAND...: COMMAND with libarchive's file hidden
	unshare --mount sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh \
		"$(readlink -f "$libarchive")" "$@"
}
assert_exit -m "without libarchive: lsinitramfs lists the image instead, all well" 0 \
	no_libarchive "$KEKCRYPT" doctor --config "$T/kc.conf" --crypttab "$T/crypttab" \
	--initramfs "$T/good-split.img"
assert_exit -m "... a failing lsinitramfs is what it uses then (exit 24)" 24 \
	no_libarchive env PATH="$T/nolisters:$PATH" "$KEKCRYPT" doctor --config "$T/kc.conf" \
	--crypttab "$T/crypttab" --initramfs "$T/good-split.img"

# --- the crypttab options kekcrypt reads, checked against the volume --------------------------
# a.img has one kekcrypt token (0): token=5 names none; timeout=abc is no time span; frob=1 is
# no keyscript setting; a plugin volume's token-timeout=abc neither. Each is an error.
cat >"$T/crypttab-opts" <<EOF
a $A token=5 luks,keyscript=$KS
b $B timeout=abc luks,keyscript=$KS
a2 $A token=0,frob=1 luks,keyscript=$KS
pa $A none luks,x-initrd.attach,token-timeout=abc
EOF
assert_exit -m "crypttab token=5 on a one-token volume, timeout=abc, an unknown setting: exit 24" 24 \
	kc doctor --config "$T/kc.conf" --crypttab "$T/crypttab-opts" --initramfs "$T/good.cpio" --json
cp "$OUT" "$T/opts.json"
# problems NAME: the problems doctor found for crypttab entry NAME, "|"-separated
problems() {
	json_get "$T/opts.json" '"|".join(p["severity"] + ": " + p["message"] for v in d["volumes"] if v["name"] == "'"$1"'" for p in v["problems"])'
}
assert_contains -m "token=5: an error naming it and the volume's tokens" "$(problems a)" \
	"error: crypttab: token=5 names no kekcrypt token of this volume (its tokens: 0)"
assert_contains -m "timeout=abc: an error naming the setting" "$(problems b)" \
	"error: crypttab: the keyscript's key field 'timeout=abc': bad 'timeout=abc' (a time span"
assert_contains -m "frob=1: an error naming the unknown setting" "$(problems a2)" \
	"error: crypttab: the keyscript's key field 'token=0,frob=1': unknown setting 'frob=1'"
assert_not_contains -m "... token=0 there is fine" "$(problems a2)" "token=0 names"
assert_contains -m "plugin volume, token-timeout=abc: an error" "$(problems pa)" \
	"error: crypttab: bad token-timeout= (a time span such as 60 or 2min)"
printf 'a %s token=0,timeout=2min luks,keyscript=%s\n' "$A" "$KS" >"$T/crypttab-opts"
assert_exit -m "token=0,timeout=2min: all well (exit 0)" 0 \
	kc doctor --config "$T/kc.conf" --crypttab "$T/crypttab-opts" --initramfs "$T/good.cpio"


# --- an initramfs that holds secrets must be readable by root only -----------------------------
cp -p "$T/good.cpio" "$T/readable.cpio"
chmod 644 "$T/readable.cpio"
assert_exit -m "the initramfs readable by others, holding KEK files: exit 24" 24 \
	doctor --initramfs "$T/readable.cpio"
assert_stdout_contains -m "... an error of the image" "initramfs $T/readable.cpio: EXPOSES SECRETS"
assert_stdout_contains -m "... naming the image, its mode, the secret files and the fix" \
	"error: the initramfs $T/readable.cpio is readable by group and others (mode 0644) and holds secrets: $T/ka, $T/kb; run chmod 600 $T/readable.cpio, and build it with UMASK=0077 (initramfs-tools: kekcrypt's conf-hook sets it; dracut writes new images 0600)"
assert_stdout_contains -m "... the volumes themselves are ok" "a ($A): ok"
assert_stdout_contains -m "... one error (and b's warning)" "1 error(s), 1 warning(s)"
assert_exit -m "... --json: exit 24" 24 doctor --initramfs "$T/readable.cpio" --json
assert_eq -m "json: not ok, the problem in initramfs_problems, in the volumes only b's warning" \
	"False error True [0, 1]" "$(json_get "$OUT" '" ".join(str(x) for x in [d["ok"], d["initramfs_problems"][0]["severity"], "mode 0644" in d["initramfs_problems"][0]["message"], [len(v["problems"]) for v in d["volumes"]]])')"
chmod 640 "$T/readable.cpio"
assert_exit -m "readable by group only: exit 24" 24 doctor --initramfs "$T/readable.cpio"
assert_stdout_contains -m "... says so" "is readable by group (mode 0640)"
chmod 604 "$T/readable.cpio"
assert_exit -m "readable by others only: exit 24" 24 doctor --initramfs "$T/readable.cpio"
assert_stdout_contains -m "... says so" "is readable by others (mode 0604)"
chmod 600 "$T/readable.cpio"
assert_exit -m "the same image, mode 0600: exit 0" 0 doctor --initramfs "$T/readable.cpio" --json
assert_eq -m "json: ok, no problem of the image" "True []" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["ok"], d["initramfs_problems"]])')"
initramfs_with_ks nosecret "${BINS[@]}"
chmod 644 "$T/nosecret.cpio"
assert_exit -m "a readable initramfs without KEK files: exit 24 (they are missing)" 24 \
	doctor --initramfs "$T/nosecret.cpio" --json
assert_eq -m "... but no problem of the image: it holds no secret" "[]" \
	"$(json_get "$OUT" 'd["initramfs_problems"]')"

# --- tokens naming KEK files the configuration does not allow ---------------------------------
# f.img: a copy of a.img with a forged token naming a KEK file not in [file] allowed-paths (it
# exists: only policy keeps it out); the hooks do not copy it, and a still unlocks.
F=$T/f.img
cp --sparse=always "$A" "$F"
new_kek "$T/forged"
cryptsetup token export --token-id 0 "$F" >"$T/forged.json"
sed -i "s|\"file:$T/ka\"|\"file:$T/forged\"|" "$T/forged.json"
cryptsetup --disable-external-tokens token import --json-file "$T/forged.json" "$F"
echo "f $F none luks,keyscript=$KS" >"$T/crypttab6"
assert_exit -m "a forged token naming a KEK file not allowed: a warning, exit 0" 0 \
	kc doctor --config "$T/kc.conf" --crypttab "$T/crypttab6" --initramfs "$T/good.cpio"
assert_stdout_contains -m "... naming the token and the file" \
	"warning: token 2 (file:$T/forged): KEK file '$T/forged' is not allowed by local policy"
assert_stdout_contains -m "... and the line that would allow it" \
	"add the line 'allowed-paths = $T/forged' to [file] there: not copied into the initramfs (a forged token, or add its file to the configuration)"
assert_not_contains -m "... and not asking for it in the initramfs" "$(cat "$OUT")" "lacks"
(umask 077 && printf '[file]\nallowed-paths = %s\n' "$T/ka" >"$T/ka-only.conf")
assert_exit -m "b's only KEK file not allowed: exit 24" 24 \
	kc doctor --config "$T/ka-only.conf" --crypttab "$T/crypttab" --initramfs "$T/good.cpio"
assert_stdout_contains -m "... a warning for the token" \
	"warning: token 0 (file:$T/kb): KEK file '$T/kb' is not allowed by local policy: [file] allowed-paths in $T/ka-only.conf"
assert_stdout_contains -m "... and an error: nothing unlocks b in the initramfs" \
	"error: no token can unlock it in the initramfs: token 0 names a file that $T/ka-only.conf does not name"
assert_stdout_contains -m "... a is ok" "a ($A): ok"

assert_exit -m "initramfs without kekcrypt: exit 24" 24 doctor --initramfs "$T/nobin.cpio"
assert_stdout_contains -m "... names what is missing" "error: the initramfs lacks kekcrypt (/"
assert_exit -m "initramfs without b's KEK file: exit 24" 24 doctor --initramfs "$T/nokek.cpio"
assert_stdout_contains -m "... names the file and that the configuration names it (allowed-paths)" \
	"the initramfs lacks $T/kb ([file] allowed-paths of $T/kc.conf)"

mv "$T/ka" "$T/ka.away"
assert_exit -m "a's KEK gone, but a has a recovery key: a warning, exit 0" 0 \
	doctor --initramfs "$T/good.cpio"
assert_stdout_contains -m "... says the boot would ask for the recovery key" \
	"warning: no KEK answers now"
assert_stdout_contains -m "... naming the cause" "$T/ka"
mv "$T/ka.away" "$T/ka"
mv "$T/kb" "$T/kb.away"
assert_exit -m "b's KEK gone and no recovery key: exit 24" 24 doctor --initramfs "$T/good.cpio"
assert_stdout_contains -m "... says the boot would fail" "there is no recovery key: the boot would fail"
mv "$T/kb.away" "$T/kb"

# d.img: a copy of a.img (recovery key) with a second KEK, kd, whose file then goes: a still
# unlocks (token 0), with less redundancy than its header promises: a warning, exit 0.
D=$T/d.img
cp --sparse=always "$A" "$D"
new_kek "$T/kd"
(umask 077 && printf '[file]\nallowed-paths = %s, %s\n' "$T/ka" "$T/kd" >"$T/kd.conf")
assert_exit -m "d: a second KEK added" 0 kc kek add "$D" --kek "file:$T/kd" --config "$T/kd.conf"
echo "d $D none luks,keyscript=$KS" >"$T/crypttab7"
initramfs_with_ks kd "${BINS[@]}" "$T/ka" "$T/kd"
assert_exit -m "d with both KEKs: exit 0" 0 \
	kc doctor --config "$T/kd.conf" --crypttab "$T/crypttab7" --initramfs "$T/kd.cpio"
assert_stdout_contains -m "... d is ok" "d ($D): ok"
mv "$T/kd" "$T/kd.away"
assert_exit -m "d's second KEK gone: degraded redundancy is a warning, exit 0" 0 \
	kc doctor --config "$T/kd.conf" --crypttab "$T/crypttab7" --initramfs "$T/kd.cpio" --json
assert_eq -m "json: ok, unlocks with token 0, token 2 failing, a warning naming it" \
	"True 0 [2] 0 warning degraded redundancy: token 2 (file:$T/kd) does not unlock it now: KEK file '$T/kd': No such file or directory" \
	"$(json_get "$OUT" '" ".join(str(x) for x in [d["ok"], d["volumes"][0]["unlocks_with_token"], d["volumes"][0]["failing_tokens"], d["errors"], "|".join(p["severity"] + " " + p["message"] for p in d["volumes"][0]["problems"] if "degraded" in p["message"])])')"
mv "$T/kd.away" "$T/kd"

cat >"$T/crypttab2" <<EOF
plain $P none luks,keyscript=$KS
gone /nonexistent/disk none luks,keyscript=$KS
EOF
assert_exit -m "a volume without a token and a missing device: exit 24" 24 \
	kc doctor --crypttab "$T/crypttab2" --initramfs "$T/good.cpio" --json
assert_eq -m "json: the problems of each volume" \
	"False|the device has no kekcrypt token|device /nonexistent/disk not found" \
	"$(json_get "$OUT" '"|".join([str(d["ok"])] + [v["problems"][0]["message"] for v in d["volumes"][:2]])')"

echo "keyfile $A /etc/some.key luks" >"$T/crypttab3"
assert_exit -m "no kekcrypt volume (a key file instead): exit 3" 3 \
	kc doctor --crypttab "$T/crypttab3" --initramfs "$T/good.cpio"
assert_exit -m "a missing crypttab: exit 3" 3 kc doctor --crypttab "$T/none"
# --- volumes unlocked by systemd-cryptsetup through the token plugin (no key file) -----------
# pa in the initramfs (x-initrd.attach, as the dracut module installs it), pb after it; the
# plain LUKS volume with no key file is not kekcrypt's and is left alone.
cat >"$T/crypttab4" <<EOF
pa $A none luks,x-initrd.attach,token-timeout=20
pb $B - luks
plain $P none luks
EOF
# with_tokendir DIR CMD...: CMD with DIR mounted over libcryptsetup's token directory (in a
# private mount namespace), so that the plugin is installed or not, whatever this host has.
# A token directory that does not exist yet (distcheck's, under a prefix not installed to) is
# made in an overlay of its nearest existing parent, inside the namespace only.
with_tokendir() {
	local dir=$1 ovl
	shift
	ovl=$(mktemp -d "$T_DIR/.tokovl.XXXXXX")
	unshare --mount --propagation private bash -c '
		p=$2
		while [ ! -d "$p" ]; do p=$(dirname "$p"); done
		if [ "$p" != "$2" ]; then
			mkdir "$3/up" "$3/work" &&
				mount -t overlay overlay -o "lowerdir=$p,upperdir=$3/up,workdir=$3/work" "$p" &&
				mkdir -p "$2" || exit 1
		fi
		mount --bind "$1" "$2" && shift 3 && exec "$@"' - "$dir" "$TOKENDIR" "$ovl" "$@"
}
assert_exit -m "plugin volumes, the initramfs without the plugin: exit 24" 24 \
	kc doctor --config "$T/kc.conf" --crypttab "$T/crypttab4" --initramfs "$T/good.cpio" --json
PLUGIN=$(json_get "$OUT" 'd["volumes"][0]["problems"][0]["message"]' |
	sed -n 's/^the initramfs lacks the token plugin \([^ ]*\) (with initramfs-tools, use keyscript=.*/\1/p')
assert_true -m "... the problem names the plugin's path" test -n "$PLUGIN"
TOKENDIR=$(dirname "$PLUGIN")
assert_eq -m "json: pa and pb are plugin volumes, pa in the initramfs; plain is not listed" \
	"pa token-plugin True|pb token-plugin False" \
	"$(json_get "$OUT" '"|".join(" ".join([v["name"], v["method"], str(v["in_initramfs"])]) for v in d["volumes"])')"
mkdir "$T/tok-empty" "$T/tok-plugin"
touch "$T/tok-plugin/${PLUGIN##*/}"
initramfs plugin "$T/tok-plugin/${PLUGIN##*/}" "$T/ka" "$T/kb"
# The plugin at its installed path inside the archive.
mkdir -p "$T/tree$TOKENDIR"
mv "$T/tree$T/tok-plugin/${PLUGIN##*/}" "$T/tree$PLUGIN"
pack plugin
assert_exit -m "the plugin in the initramfs and installed: exit 0" 0 \
	with_tokendir "$T/tok-plugin" "$KEKCRYPT" doctor --config "$T/kc.conf" --crypttab "$T/crypttab4" \
	--initramfs "$T/plugin.cpio"
assert_stdout_contains -m "... pa ok" "pa ($A): ok"
assert_stdout_contains -m "... pb: only the warning of no recovery key" "pb ($B): warnings"
assert_not_contains -m "... the keyscript is not asked for" "$(cat "$OUT")" "keyscript"
assert_exit -m "the plugin not installed: pb (unlocked after the initramfs) would fail: exit 24" 24 \
	with_tokendir "$T/tok-empty" "$KEKCRYPT" doctor --config "$T/kc.conf" --crypttab "$T/crypttab4" \
	--initramfs "$T/plugin.cpio"
assert_stdout_contains -m "... says systemd-cryptsetup would ask for a passphrase" \
	"error: the token plugin $PLUGIN is not installed: systemd-cryptsetup would ask for a passphrase"
assert_stdout_contains -m "... pa still ok" "pa ($A): ok"

# --- a remote KEK: the credentials named in the configuration and the CA bundle --------------
# r.img: a copy of a.img whose token 0 names a Vault that does not answer (a warning: a.img
# has a recovery key), with a configuration naming a token file and no ca-file.
R=$T/r.img
cp --sparse=always "$A" "$R"
VPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token_edit "$R" 0 "t.update({'kekcrypt-provider': 'vault-transit',
 'kekcrypt-key-id': 'vault-transit+https://127.0.0.1:$VPORT/v1/transit/keys/k1',
 'kekcrypt-key-version': '1', 'kekcrypt-wrap-alg': 'vault-transit',
 'kekcrypt-wrapped-key': base64.b64encode(b'vault:v1:' + base64.b64encode(os.urandom(80))).decode()})"
(umask 077 && echo "hvs.doctor-test" >"$T/vtoken" &&
	printf '[vault-transit]\nauth = token\ntoken-file = %s\nallowed-hosts = 127.0.0.1\n' \
		"$T/vtoken" >"$T/vault.conf")
echo "r $R none luks,keyscript=$KS" >"$T/crypttab5"
assert_exit -m "remote KEK, the initramfs without the token file and the CA bundle: exit 24" 24 \
	kc doctor --config "$T/vault.conf" --crypttab "$T/crypttab5" --initramfs "$T/good.cpio"
assert_stdout_contains -m "... names the credential file and where it is named" \
	"error: the initramfs lacks $T/vtoken ([vault-transit] token-file of $T/vault.conf)"
assert_stdout_contains -m "... and the CA bundle" \
	"error: the initramfs lacks /etc/ssl/certs/ca-certificates.crt (the system's CA bundle ([vault-transit] names no ca-file))"
assert_stdout_contains -m "... the Vault not answering is a warning (recovery key)" \
	"warning: no KEK answers now"
# libcurl, which kekcrypt dlopen()s (ldd does not show it): where boot-needs says it is.
LIBCURL=$(kc boot-needs --config "$T/vault.conf" "$R" | awk -F'\t' '$1 == "lib" && $2 ~ /libcurl/ { print $2 }')
assert_true -m "boot-needs names libcurl for a remote KEK ($LIBCURL)" test -e "$LIBCURL"
assert_stdout_contains -m "... and doctor says the initramfs lacks it" \
	"error: the initramfs lacks $LIBCURL (libcurl.so.4, which kekcrypt loads for HTTPS to a KMS)"
# What libcurl links: kekcrypt dlopen()s libcurl, so no tool finds these from kekcrypt's ELF
# dependencies (the dracut module once left them out).
mapfile -t CURLDEPS < <(ldd "$LIBCURL" |
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
NGHTTP2=$(ldd "$LIBCURL" | awk '$1 ~ /^libnghttp2/ { print $3 }')
assert_true -m "libcurl links libnghttp2 ($NGHTTP2)" test -e "$NGHTTP2"
ca_bundle() {
	mkdir -p "$T/tree/etc/ssl/certs"
	echo "# CA bundle" >"$T/tree/etc/ssl/certs/ca-certificates.crt"
}
initramfs_with_ks remote-nodeps "${BINS[@]}" "$T/vtoken" "$LIBCURL"
ca_bundle
pack remote-nodeps
assert_exit -m "... with both in the initramfs but not what libcurl links: exit 24" 24 \
	kc doctor --config "$T/vault.conf" --crypttab "$T/crypttab5" --initramfs "$T/remote-nodeps.cpio"
assert_stdout_contains -m "... names each library libcurl links, e.g. libnghttp2" \
	"error: the initramfs lacks $NGHTTP2, which $LIBCURL links (libcurl.so.4, which kekcrypt loads for HTTPS to a KMS)"
initramfs_with_ks remote "${BINS[@]}" "$T/vtoken" "$LIBCURL" "${CURLDEPS[@]}"
ca_bundle
pack remote
assert_exit -m "... with them too: exit 0 (a warning only)" 0 \
	kc doctor --config "$T/vault.conf" --crypttab "$T/crypttab5" --initramfs "$T/remote.cpio"
assert_stdout_contains -m "... one warning, no error" "0 error(s), 1 warning(s)"
chmod 644 "$T/remote.cpio"
assert_exit -m "... readable by others: exit 24" 24 \
	kc doctor --config "$T/vault.conf" --crypttab "$T/crypttab5" --initramfs "$T/remote.cpio"
assert_stdout_contains -m "... the token file is a secret" "mode 0644) and holds secrets: $T/vtoken;"
chmod 600 "$T/remote.cpio"
printf 'ca-file = %s\n' "$T/ka" >>"$T/vault.conf"
initramfs_with_ks remote-ca "${BINS[@]}" "$T/vtoken" "$T/ka" "$LIBCURL" "${CURLDEPS[@]}"
assert_exit -m "a ca-file in the configuration instead of the bundle: exit 0" 0 \
	kc doctor --config "$T/vault.conf" --crypttab "$T/crypttab5" --initramfs "$T/remote-ca.cpio"

echo "not an archive" >"$T/bad.img"
assert_exit -m "an initramfs that cannot be listed: exit 24" 24 doctor --initramfs "$T/bad.img"
assert_stdout_contains -m "... says so" "cannot list the initramfs $T/bad.img"
assert_exit -m "an unknown flag: exit 2" 2 kc doctor --bogus
assert_exit -m "an argument: exit 2" 2 kc doctor "$A"

done_testing
