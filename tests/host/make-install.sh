#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `./configure && make install` with the default prefix (/usr/local), as a user builds from
# source, into a DESTDIR: everything lands where the tools that read it look, and the paths
# baked into the boot scripts and units are the installed ones.
#  - the initramfs-tools hook and conf-hook in the directories mkinitramfs runs
#    (/usr/share/initramfs-tools, never /usr/local/share), the dracut module in dracut's
#    modules directory as NNkekcrypt, the token plugin in the directory libcryptsetup itself
#    loads plugins from (crypt_token_external_path()), the keyscript at the path the README's
#    and the man page's crypttab lines name, the systemd units and the bash completion where
#    systemd and bash-completion read them (their pkg-config files);
#  - the hook, the keyscript, the dracut module, the service and the binary name the installed
#    kekcrypt, keyscript and plugin;
#  - /etc/kekcrypt is created with mode 0700 (also by a non-root install into a DESTDIR), the
#    example configuration is installed where kekcrypt(8) FILES says ($(docdir)/examples);
#  - the installed kekcrypt runs, and `make uninstall` leaves no file behind.
#
# The tree built is the distribution's (`make distdir` of this build: what a release tarball
# holds), configured with no option in a build directory of its own, so the test runs the same
# from an in-tree build, a VPATH one or a git checkout. A full build (-j1, about 30 s CPU):
# scripts/test.sh runs it in the plain build only, the sanitizer pass's flags change nothing in
# it.
. "$(dirname "$0")/lib.sh"

need make pkg-config setpriv
T=$T_DIR
SRC=$T/src
BUILD=$T/build
D=$T/dest
PREFIX=/usr/local

# imake ARGS...: make in DIR without the jobserver of the make that runs this test.
imake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"
}

# --- configure, build, install ----------------------------------------------------------------
imake -s -C "$KC_BUILDDIR" distdir distdir="$SRC" top_distdir="$SRC" >"$T/distdir.log" 2>&1 ||
	{ tail -n 20 "$T/distdir.log"; bail_out "make distdir failed"; }
mkdir "$BUILD"
run sh -c 'cd "$1" && "$2/configure" -q' sh "$BUILD" "$SRC"
assert_eq -m "configure with no option (default prefix), in a build directory of its own" \
	0 "$RC"
[ "$RC" = 0 ] || { _t_diag_files; bail_out "configure failed"; }
assert_eq -m "... its prefix is $PREFIX" "$PREFIX" \
	"$(sed -n 's/^prefix = //p' "$BUILD/Makefile")"
run imake -C "$BUILD" -j1 install DESTDIR="$D"
assert_eq -m "make -j1 install DESTDIR=..." 0 "$RC"
[ "$RC" = 0 ] || { tail -n 30 "$ERR" | sed 's/^/#   /'; bail_out "make install failed"; }

# installed PATH WHAT: PATH (absolute, on the target) is a file in the DESTDIR.
installed() {
	assert_true -m "$2: $1" test -f "$D$1"
}
# executable PATH WHAT: ... and executable.
executable() {
	assert_true -m "$2: $1 (executable)" test -f "$D$1" -a -x "$D$1"
}
# baked FILE VAR VALUE: FILE (installed, absolute) sets VAR=VALUE.
baked() {
	assert_eq -m "$(basename "$1") runs $2=$3" "$3" \
		"$(sed -n "s/^$2=\([^[:space:]]*\).*/\1/p" "$D$1")"
}

BIN=$PREFIX/bin/kekcrypt
executable "$BIN" "the command"
installed "$PREFIX/share/man/man8/kekcrypt.8" "the man page"
run env LD_LIBRARY_PATH="$D$PREFIX/lib" "$D$BIN" --version
assert_eq -m "the installed kekcrypt runs (with the installed libkekcrypt)" 0 "$RC"
assert_contains -m "... which it links" "$(LD_LIBRARY_PATH="$D$PREFIX/lib" ldd "$D$BIN" 2>&1)" \
	"$D$PREFIX/lib/libkekcrypt.so.1"

# --- initramfs-tools ----------------------------------------------------------------------------
# The directories mkinitramfs reads: its own run_scripts lines and the conf-hooks.d loop.
MKINITRAMFS=$(command -v mkinitramfs) || bail_out "mkinitramfs is missing (initramfs-tools-core)"
HOOK=/usr/share/initramfs-tools/hooks/kekcrypt
CONFHOOK=/usr/share/initramfs-tools/conf-hooks.d/kekcrypt
assert_true -m "mkinitramfs runs the hooks of /usr/share/initramfs-tools/hooks" \
	grep -q '^run_scripts /usr/share/initramfs-tools/hooks$' "$MKINITRAMFS"
assert_true -m "mkinitramfs reads /usr/share/initramfs-tools/conf-hooks.d" \
	grep -q 'for i in /usr/share/initramfs-tools/conf-hooks.d/\*' "$MKINITRAMFS"
executable "$HOOK" "the initramfs-tools hook"
installed "$CONFHOOK" "the initramfs-tools conf-hook"
assert_true -m "nothing under $PREFIX/share/initramfs-tools (mkinitramfs never reads it)" \
	test ! -e "$D$PREFIX/share/initramfs-tools"

# The keyscript: where the crypttab lines of the README and the man page say.
KEYSCRIPT=/usr/lib/kekcrypt/kekcrypt-keyscript
executable "$KEYSCRIPT" "the crypttab keyscript"
for doc in README.md man/kekcrypt.8.adoc; do
	grep -o 'keyscript=/[^,[:space:]`]*' "$SRC/$doc" | sort -u >"$T/named"
	assert_eq -m "$doc's crypttab lines name keyscript=$KEYSCRIPT" "keyscript=$KEYSCRIPT" \
		"$(cat "$T/named")"
done
baked "$HOOK" KEKCRYPT "$BIN"
baked "$HOOK" KEYSCRIPT "$KEYSCRIPT"
baked "$KEYSCRIPT" KEKCRYPT "$BIN"
# cryptsetup-initramfs's askpass: where cryptsetup-initramfs puts it (Debian 12).
baked "$KEYSCRIPT" ASKPASS /lib/cryptsetup/askpass

# --- the token plugin -------------------------------------------------------------------------
# The directory libcryptsetup was built to load plugins from, asked of the library itself.
LIBDIR=$(python3 - <<'PY'
import ctypes
lib = ctypes.CDLL("libcryptsetup.so.12")
lib.crypt_token_external_path.restype = ctypes.c_char_p
print(lib.crypt_token_external_path().decode())
PY
)
diag "libcryptsetup's token directory: $LIBDIR"
find "$D" -name libcryptsetup-token-kekcrypt.so >"$T/plugins"
assert_eq -m "one token plugin is installed" 1 "$(wc -l <"$T/plugins")"
PLUGIN=$(sed "s|^$D||" "$T/plugins")
# The same directory once symlinks such as /lib -> usr/lib (merged /usr) are resolved.
assert_eq -m "... in libcryptsetup's token directory ($PLUGIN)" "$(readlink -m "$LIBDIR")" \
	"$(readlink -m "$(dirname "$PLUGIN")")"

# --- dracut -------------------------------------------------------------------------------------
# dracut.pc's, else dracut's default dracutbasedir's (configure does the same).
DRACUTDIR=$(pkg-config --variable=dracutmodulesdir dracut 2>/dev/null) ||
	DRACUTDIR=/usr/lib/dracut/modules.d
MODULE=$DRACUTDIR/90kekcrypt/module-setup.sh
executable "$MODULE" "the dracut module (NNkekcrypt)"
assert_true -m "nothing under $PREFIX/lib/dracut (dracut never reads it)" \
	test ! -e "$D$PREFIX/lib/dracut"
baked "$MODULE" KEKCRYPT "$BIN"
baked "$MODULE" KEKCRYPT_PLUGIN "$PLUGIN"

assert_eq -m "no placeholder is left in the boot scripts" "" \
	"$(sed -n '/%[A-Z_]\+%/p' "$D$HOOK" "$D$KEYSCRIPT" "$D$MODULE")"
assert_true -m "the binary looks for the plugin where it is installed (doctor)" \
	grep -q -a -F "$PLUGIN" "$D$BIN"
assert_true -m "... and names the installed keyscript's directory (doctor)" \
	grep -q -a -F "$(dirname "$KEYSCRIPT")" "$D$BIN"

# --- systemd, bash completion ---------------------------------------------------------------------
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null) ||
	UNITDIR=$PREFIX/lib/systemd/system
installed "$UNITDIR/kekcrypt-refresh.service" "the refresh service (systemd's unit directory)"
installed "$UNITDIR/kekcrypt-refresh.timer" "the refresh timer"
assert_eq -m "the service runs the installed kekcrypt" \
	"$BIN $BIN" "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$D$UNITDIR/kekcrypt-refresh.service" |
	tr '\n' ' ' | sed 's/ $//')"
COMPDIR=$(pkg-config --variable=completionsdir bash-completion 2>/dev/null) ||
	COMPDIR=$PREFIX/share/bash-completion/completions
installed "$COMPDIR/kekcrypt" "the bash completion (bash-completion's directory, the command's name)"

# --- /etc/kekcrypt and the example configuration ----------------------------------------------
assert_true -m "/etc/kekcrypt is created" test -d "$D/etc/kekcrypt"
assert_eq -m "... with mode 0700" 700 "$(stat -c %a "$D/etc/kekcrypt")"
EXAMPLE=$PREFIX/share/doc/kekcrypt/examples/kekcrypt.conf.example
installed "$EXAMPLE" "the example configuration (\$(docdir)/examples)"
assert_true -m "... is etc/kekcrypt.conf.example" cmp -s "$SRC/etc/kekcrypt.conf.example" "$D$EXAMPLE"
assert_true -m "kekcrypt(8) FILES names \$(docdir)/examples/kekcrypt.conf.example" \
	grep -q -F '_/usr/share/doc/kekcrypt/examples/kekcrypt.conf.example_::' \
	"$SRC/man/kekcrypt.8.adoc"

# The configuration directory's rule as a user without privileges (chmod, no chown).
chmod 0711 "$T"
NOBODY=$T/nobody
mkdir -m 0755 "$NOBODY"
chown nobody: "$NOBODY"
run setpriv --reuid=nobody --regid=nogroup --clear-groups \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$BUILD" install-configdir \
	DESTDIR="$NOBODY/dest"
assert_eq -m "non-root: make install-configdir DESTDIR=..." 0 "$RC"
assert_eq -m "... creates /etc/kekcrypt 0700" 700 "$(stat -c %a "$NOBODY/dest/etc/kekcrypt")"
chmod 0700 "$T"

# --- uninstall -----------------------------------------------------------------------------------
run imake -C "$BUILD" uninstall DESTDIR="$D"
assert_eq -m "make uninstall DESTDIR=..." 0 "$RC"
assert_eq -m "... leaves no file behind" "" "$(find "$D" -type f -o -type l)"

done_testing
