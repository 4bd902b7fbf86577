#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Licensing (LICENSE): every source file names its license in an SPDX-License-Identifier line;
# the library's parts (lib/, common/, tokens/) are LGPL-2.1-or-later, everything else is
# GPL-2.0-or-later; the license texts (COPYING, COPYING.LGPL-2.1) and LICENSE are in the
# tarball and installed to $(docdir).
#
# The files are git's (git ls-files) in a checkout, the tarball's (find) in `make distcheck`.
# Source files are code and build files: C, shell, Python, JavaScript, automake, autoconf, m4,
# templates (*.in), systemd units, and anything that starts with "#!". Data files (JSON
# schemas and fixtures' package files, the fuzz corpus, Markdown, the generated man page) are
# not.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
cd "$KC_SRCDIR"

if src_is_checkout; then
	git ls-files >"$T/files"
else
	# A tarball: what it has of these (scripts/ and bench/ are not in it).
	dirs=()
	for d in lib common tokens src initramfs systemd etc scripts bench tests completion doc man; do
		[ ! -d "$d" ] || dirs+=("$d")
	done
	{
		printf '%s\n' Makefile.am configure.ac autogen.sh m4/kc-flags.m4
		find "${dirs[@]}" -type f -not -path '*/node_modules/*'
	} | sort >"$T/files"
fi
diag "$(wc -l <"$T/files") files"

is_source() {
	case $1 in
	tests/fuzz/corpus/* | *.json | *.md | man/kekcrypt.8 | *.adoc | *.txt) return 1 ;;
	*.c | *.h | *.sh | *.py | *.js | *.mjs | *.in | *.am | *.ac | *.m4 | *.bash) return 0 ;;
	*.service | *.timer | */conf-hooks.d/*) return 0 ;;
	esac
	[ "$(head -c 2 "$1")" = "#!" ]
}

# Which license a path must carry.
expected_license() {
	case $1 in
	lib/* | common/* | tokens/*) echo LGPL-2.1-or-later ;;
	*) echo GPL-2.0-or-later ;;
	esac
}

n=0 bad=()
while IFS= read -r f; do
	[ -f "$f" ] || continue
	is_source "$f" || continue
	n=$((n + 1))
	# The first SPDX line, within the first 5 lines (after a shebang, as a comment).
	lic=$(head -n 5 "$f" | sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+-]*\).*/\1/p' | head -n 1)
	want=$(expected_license "$f")
	if [ -z "$lic" ]; then
		bad+=("$f: no SPDX-License-Identifier in its first 5 lines (want $want)")
	elif [ "$lic" != "$want" ]; then
		bad+=("$f: $lic, want $want")
	fi
done <"$T/files"
diag "$n source files"
if [ "$n" -gt 100 ]; then
	ok "the source files are found ($n)"
else
	not_ok "the source files are found" "only $n: is the file list right?"
fi
if [ "${#bad[@]}" -eq 0 ]; then
	ok "every source file has the SPDX-License-Identifier of its part"
else
	not_ok "every source file has the SPDX-License-Identifier of its part" "${bad[@]}"
fi

# The SPDX identifiers used anywhere are the two of LICENSE.
named=$(while IFS= read -r f; do
	[ -f "$f" ] && head -n 5 "$f" | sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+-]*\).*/\1/p'
done <"$T/files" | sort -u | tr '\n' ' ')
assert_eq -m "the only licenses named are GPL-2.0-or-later and LGPL-2.1-or-later" \
	"GPL-2.0-or-later LGPL-2.1-or-later " "$named"

# --- the license texts -------------------------------------------------------------------------
assert_true -m "COPYING is the GPL version 2" grep -q '^ *Version 2, June 1991$' COPYING
assert_true -m "... in full (the last section)" grep -q 'END OF TERMS AND CONDITIONS' COPYING
assert_true -m "COPYING.LGPL-2.1 is the LGPL version 2.1" \
	grep -q '^ *Version 2.1, February 1999$' COPYING.LGPL-2.1
assert_true -m "... in full" grep -q 'END OF TERMS AND CONDITIONS' COPYING.LGPL-2.1
for d in lib/ common/ tokens/; do
	assert_true -m "LICENSE puts $d under the LGPL" grep -q "^  $d" LICENSE
done

# In the tarball: the distribution directory as `make dist` would make it (no archive).
assert_exit -m "make distdir" 0 make -s -C "$KC_BUILDDIR" distdir distdir="$T/dist"
for f in LICENSE COPYING COPYING.LGPL-2.1; do
	assert_true -m "$f is in the tarball" cmp -s "$f" "$T/dist/$f"
done
# Installed to $(docdir) (automake's install rule for dist_doc_DATA alone).
assert_exit -m "make install-dist_docDATA DESTDIR=" 0 \
	make -s -C "$KC_BUILDDIR" install-dist_docDATA DESTDIR="$T/root"
for f in LICENSE COPYING COPYING.LGPL-2.1; do
	found=$(cd "$T/root" && find . -name "$f" -path '*/share/doc/kekcrypt/*' | head -n 1)
	assert_true -m "$f is installed to \$(docdir) (share/doc/kekcrypt)" test -n "$found"
done

done_testing
