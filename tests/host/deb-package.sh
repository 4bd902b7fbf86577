#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Debian packages (debian/, README.source there): from a clean copy of the git checkout
# (the files git tracks or would, none of this tree's build), `dpkg-buildpackage -us -uc -b`
# builds them, with the symbols file matching the library's exports (dh_makeshlibs -c4);
# `lintian --pedantic` on the .changes reports no error and no warning that debian/ does not
# override; each package holds what it should, no file is in two of them, and the paths baked
# into the boot scripts and units are where the packages put things (the token plugin where
# libcryptsetup looks); the relations and maintainer scripts are the ones README.source gives;
# and the packages, unpacked into a throwaway root, run: kekcrypt --version with the packaged
# libkekcrypt, the plugin resolving it too.
#
# Costly (a full build, ~30 s CPU, and lintian): scripts/build-debs.sh builds with make
# -j$(nproc) and no test suite inside the build (nocheck). CI builds the packages once, before
# the tests (KC_DEBS, scripts/test.sh), and runs this test in the plain build only: the build
# copies the git checkout, which distcheck's tree is not.
. "$(dirname "$0")/lib.sh"

need git dpkg-buildpackage dpkg-deb dpkg-architecture dpkg-parsechangelog dh lintian
src_is_checkout ||
	bail_out "$KC_SRCDIR is not a git checkout: the test builds a copy of the tracked files"

T=$T_DIR
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
TOKENDIR=usr/lib/$MA/cryptsetup
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd)
UNITDIR=${UNITDIR#/}
[ -n "$UNITDIR" ] || bail_out "systemd.pc not found (systemd-dev or systemd)"

# --- the build ---------------------------------------------------------------------------------
# scripts/build-debs.sh: from a clean copy of the checkout. scripts/test.sh builds them once for
# this test and tests/vm/boot.sh (KC_DEBS); run alone, the test builds them itself.
VERSION=$(cd "$KC_SRCDIR" && dpkg-parsechangelog -S Version)
assert_eq -m "debian/changelog's version is configure.ac's (native package)" \
	"$(sed -n 's/^AC_INIT(\[kekcrypt\], \[\([^]]*\)\].*/\1/p' "$KC_SRCDIR/configure.ac")" "$VERSION"
if [ -n "${KC_DEBS:-}" ] && [ -f "$KC_DEBS/build.log" ]; then
	DEBS=$KC_DEBS
	diag "the packages scripts/test.sh built: $DEBS"
else
	DEBS=$T/debs
	# Not make check's jobserver: dpkg-buildpackage runs its own make -j.
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$KC_SRCDIR/scripts/build-debs.sh" "$DEBS"
	if [ "$RC" != 0 ]; then
		not_ok "scripts/build-debs.sh (dpkg-buildpackage -us -uc -b)" "exit $RC:"
		tail -n 40 "$ERR" | sed 's/^/#     /'
		bail_out "no packages to check"
	fi
fi
ok "dpkg-buildpackage -us -uc -b from a clean copy of the tree"
CHANGES=$DEBS/kekcrypt_${VERSION}_$(dpkg-architecture -qDEB_HOST_ARCH).changes
assert_true -m "... writes the .changes" test -f "$CHANGES"
# dh_makeshlibs -c4 fails the build on a difference; this says which names differ.
assert_eq -m "debian/libkekcrypt1.symbols lists the functions lib/libkekcrypt.sym exports" \
	"$(sed -n 's/^[[:space:]]*\(kc_[a-z0-9_]*\);.*/\1/p' "$KC_SRCDIR/lib/libkekcrypt.sym" | sort)" \
	"$(sed -n 's/^ \(kc_[a-z0-9_]*\)@.*/\1/p' "$KC_SRCDIR/debian/libkekcrypt1.symbols" | sort)"

# --- lintian ----------------------------------------------------------------------------------
# Overridden tags are not printed; any E: or W: left is one debian/ neither fixes nor overrides.
run lintian --pedantic "$CHANGES"
assert_eq -m "lintian --pedantic: exit 0" 0 "$RC"
assert_eq -m "lintian --pedantic: no error and no warning that is not overridden" "" \
	"$(grep -hE '^[EW]: ' "$OUT" "$ERR" || :)"

# --- what each package holds ------------------------------------------------------------------
deb() {
	local f=$DEBS/$1_${VERSION}_
	if [ -f "${f}all.deb" ]; then echo "${f}all.deb"; else echo "${f}$(dpkg-architecture -qDEB_HOST_ARCH).deb"; fi
}
# contents PACKAGE: "MODE PATH" per entry (a directory's path ends in /), paths without "./".
contents() {
	dpkg-deb -c "$(deb "$1")" | awk '{ p = $6; sub(/^\.\//, "", p); print $1, p }'
}
# holds PACKAGE PATH...: each PATH (a file or link) is in PACKAGE.
holds() {
	local pkg=$1 list p missing=""
	shift
	list=$(contents "$pkg" | awk '{ print $2 }')
	for p in "$@"; do
		grep -qxF "$p" <<<"$list" || missing+=" $p"
	done
	assert_eq -m "$pkg holds $*" "" "${missing# }"
}
PKGS="kekcrypt libkekcrypt1 libkekcrypt-dev kekcrypt-initramfs kekcrypt-dracut"
for p in $PKGS; do
	assert_true -m "$p is built" test -f "$(deb "$p")"
done
holds kekcrypt usr/bin/kekcrypt usr/share/man/man8/kekcrypt.8.gz \
	"$TOKENDIR/libcryptsetup-token-kekcrypt.so" "$UNITDIR/kekcrypt-refresh.service" \
	"$UNITDIR/kekcrypt-refresh.timer" "$UNITDIR/kekcrypt-firstboot.service" \
	usr/share/kekcrypt/schema/doctor.json usr/share/kekcrypt/schema/firstboot.json \
	usr/share/doc/kekcrypt/examples/kekcrypt.conf.example usr/share/doc/kekcrypt/copyright
assert_eq -m "kekcrypt creates /etc/kekcrypt readable by root only" "drwx------ etc/kekcrypt/" \
	"$(contents kekcrypt | grep ' etc/kekcrypt/$')"
holds libkekcrypt1 "usr/lib/$MA/libkekcrypt.so.1"
assert_eq -m "libkekcrypt1: the library and nothing else (no .so link, no .la)" "" \
	"$(contents libkekcrypt1 | awk '$2 !~ /\/$/ { print $2 }' |
		grep -vE "^usr/lib/$MA/libkekcrypt\.so\.1(\.[0-9.]+)?$|^usr/share/doc/" || :)"
assert_eq -m "libkekcrypt1 is named after the library's SONAME" "libkekcrypt.so.1" \
	"$(dpkg-deb --ctrl-tarfile "$(deb libkekcrypt1)" | tar -xOf - ./shlibs | awk '{ print $1 ".so." $2 }')"
holds libkekcrypt-dev "usr/lib/$MA/libkekcrypt.so" usr/include/kekcrypt.h \
	"usr/lib/$MA/pkgconfig/kekcrypt.pc"
holds kekcrypt-initramfs usr/share/initramfs-tools/hooks/kekcrypt \
	usr/share/initramfs-tools/conf-hooks.d/kekcrypt usr/lib/kekcrypt/kekcrypt-keyscript
holds kekcrypt-dracut usr/lib/dracut/modules.d/90kekcrypt/module-setup.sh
all=$(for p in $PKGS; do contents "$p" | awk '$2 !~ /\/$/ { print $2 }'; done)
assert_eq -m "no file is in two packages" "" "$(sort <<<"$all" | uniq -d)"
assert_eq -m "no libtool .la file in any package" "" "$(grep '\.la$' <<<"$all" || :)"

# The plugin goes where this system's libcryptsetup looks for external tokens (its
# compiled-in path, /lib/<multiarch>/cryptsetup: the same directory on a merged-/usr system).
# (Readers that take the whole input: one that stops early can kill the writer with SIGPIPE,
# which pipefail makes this test's failure.)
lcs=$(ldconfig -p | awk '/libcryptsetup\.so\.12 / && !f { print $NF; f = 1 }')
lcs_tokendir=$(grep -aoE '/[a-z0-9_/.-]*lib[a-z0-9_/.-]*/cryptsetup' "$lcs" | sed -n 1p)
assert_eq -m "the plugin's directory is libcryptsetup's ($lcs_tokendir)" \
	"$(realpath -m "$lcs_tokendir")" "$(realpath -m "/$TOKENDIR")"

# --- relations and maintainer scripts ---------------------------------------------------------
field() {
	dpkg-deb -f "$(deb "$1")" "$2"
}
ctrl() {
	dpkg-deb --ctrl-tarfile "$(deb "$1")" | tar -xOf - "./$2" 2>/dev/null || :
}
assert_contains -m "kekcrypt depends on libkekcrypt1 (shlibs)" "$(field kekcrypt Depends)" \
	"libkekcrypt1 (>= $VERSION)"
assert_contains -m "kekcrypt depends on libcryptsetup12 (shlibs, the plugin's too)" \
	"$(field kekcrypt Depends)" "libcryptsetup12"
# dlopen()ed (lib/dlopen.h), unseen by dpkg-shlibdeps: as the library's .note.dlopen rank them.
assert_eq -m "libkekcrypt1 recommends libcurl4, libp11-kit0 and libmount1 (dlopen, recommended)" \
	"libcurl4, libp11-kit0, libmount1" "$(field libkekcrypt1 Recommends)"
assert_eq -m "libkekcrypt1 suggests libext2fs2 (dlopen, suggested)" "libext2fs2" \
	"$(field libkekcrypt1 Suggests)"
assert_contains -m "kekcrypt-initramfs depends on cryptsetup-initramfs" \
	"$(field kekcrypt-initramfs Depends)" "cryptsetup-initramfs"
assert_contains -m "kekcrypt-initramfs depends on kekcrypt" \
	"$(field kekcrypt-initramfs Depends)" "kekcrypt (>= $VERSION)"
assert_contains -m "kekcrypt-dracut depends on kekcrypt" "$(field kekcrypt-dracut Depends)" \
	"kekcrypt (>= $VERSION)"
for s in postinst postrm; do
	assert_contains -m "kekcrypt-initramfs $s runs update-initramfs -u (as cryptsetup-initramfs)" \
		"$(ctrl kekcrypt-initramfs "$s")" "update-initramfs -u"
done
for p in kekcrypt-initramfs kekcrypt-dracut; do
	assert_contains -m "$p activates the update-initramfs trigger" "$(ctrl "$p" triggers)" \
		"activate-noawait update-initramfs"
done
# --no-start: no deb-systemd-invoke (start/restart) in kekcrypt's scripts.
assert_not_contains -m "installing kekcrypt does not start kekcrypt-refresh.timer" \
	"$(ctrl kekcrypt postinst)" "deb-systemd-invoke"

# --- unpacked: it runs, and the baked-in paths are the packaged ones ----------------------------
R=$T/root
for p in $PKGS; do
	dpkg-deb -x "$(deb "$p")" "$R"
done
export LD_LIBRARY_PATH=$R/usr/lib/$MA
assert_exit -m "the packaged kekcrypt --version runs" 0 "$R/usr/bin/kekcrypt" --version
assert_stdout_contains -m "... and prints $VERSION" "$VERSION"
assert_contains -m "... with the packaged libkekcrypt.so.1" "$(ldd "$R/usr/bin/kekcrypt")" \
	"libkekcrypt.so.1 => $R/usr/lib/$MA/libkekcrypt.so.1"
ldd_plugin=$(ldd "$R/$TOKENDIR/libcryptsetup-token-kekcrypt.so")
assert_contains -m "the packaged plugin resolves the packaged libkekcrypt.so.1" "$ldd_plugin" \
	"libkekcrypt.so.1 => $R/usr/lib/$MA/libkekcrypt.so.1"
assert_not_contains -m "... and every other library" "$ldd_plugin" "not found"
unset LD_LIBRARY_PATH
boot_files=("$R/usr/share/initramfs-tools/hooks/kekcrypt" "$R/usr/lib/kekcrypt/kekcrypt-keyscript"
	"$R/usr/lib/dracut/modules.d/90kekcrypt/module-setup.sh" "$R/$UNITDIR/kekcrypt-refresh.service"
	"$R/$UNITDIR/kekcrypt-firstboot.service")
assert_eq -m "no %PLACEHOLDER% left in the boot scripts and units" "" \
	"$(grep -lE '%[A-Z]+%' "${boot_files[@]}" || :)"
hook=$(cat "$R/usr/share/initramfs-tools/hooks/kekcrypt")
assert_contains -m "the hook runs the packaged kekcrypt" "$hook" "KEKCRYPT=/usr/bin/kekcrypt"
assert_contains -m "the hook copies the packaged keyscript" "$hook" \
	"KEYSCRIPT=/usr/lib/kekcrypt/kekcrypt-keyscript"
module=$(cat "$R/usr/lib/dracut/modules.d/90kekcrypt/module-setup.sh")
assert_contains -m "the dracut module installs the packaged kekcrypt" "$module" \
	"KEKCRYPT=/usr/bin/kekcrypt"
assert_contains -m "the dracut module installs the packaged plugin" "$module" \
	"KEKCRYPT_PLUGIN=/$TOKENDIR/libcryptsetup-token-kekcrypt.so"
assert_eq -m "the service runs the packaged kekcrypt" \
	"/usr/bin/kekcrypt kek rotate --all --if-newer --crypttab
/usr/bin/kekcrypt verify --all --crypttab" \
	"$(sed -n 's/^ExecStart=//p' "$R/$UNITDIR/kekcrypt-refresh.service")"
assert_eq -m "kekcrypt-firstboot.service runs the packaged kekcrypt" \
	"/usr/bin/kekcrypt firstboot --crypttab" \
	"$(sed -n 's/^ExecStart=//p' "$R/$UNITDIR/kekcrypt-firstboot.service")"

done_testing
