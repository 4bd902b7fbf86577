#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The man pages (man/kekcrypt.8 and man/kekcrypt-encrypt-root.8, generated from their .adoc by
# asciidoctor) render cleanly: `man --warnings` prints nothing, and no asciidoc markup is left
# in the text (a
# '*' or '_' that asciidoctor did not take as bold or italic, as in *x*_Y_ without the
# unconstrained **x**__Y__). It has the FILES and COPYRIGHT sections. The README is
# self-contained: every relative path it names (in backquotes) is in the source tree, none is
# outside it.
. "$(dirname "$0")/lib.sh"

PAGE=$KC_SRCDIR/man/kekcrypt.8
command -v man >/dev/null || bail_out "man (man-db) is not installed: scripts/install-deps.sh"

# man formats for an 80-column terminal when stdout is not one; MANWIDTH makes it sure.
export MANWIDTH=80
assert_exit -m "man --warnings -l man/kekcrypt.8" 0 man --warnings -l "$PAGE"
assert_eq -m "... prints no warning" "" "$(cat "$ERR")"
text=$(cat "$OUT")
assert_true -m "... renders the whole page (SEE ALSO, the last section)" \
	grep -q '^SEE ALSO' "$OUT"
# What is left of asciidoc markup: '*' next to a letter, _WORD_ not inside an identifier.
left=$(awk '/\*[A-Za-z_]|[A-Za-z]\*[A-Za-z ,.;:]|(^|[^A-Za-z0-9_])_[A-Z][A-Za-z]*_([^A-Za-z0-9_]|$)/ {
	print NR ": " $0 }' "$OUT" | head -n 20)
assert_eq -m "... no asciidoc markup left in the text" "" "$left"
for s in SYNOPSIS "EXIT STATUS" FILES COPYRIGHT; do
	assert_true -m "section $s" grep -q "^$s\$" "$OUT"
done
assert_contains -m "FILES: the bash completion" "$text" "/usr/share/bash-completion/completions/kekcrypt"
assert_contains -m "COPYRIGHT: the licenses" "$text" "(LGPL-2.1-or-later)"
# kekcrypt-encrypt-root(8), the same way.
PAGE2=$KC_SRCDIR/man/kekcrypt-encrypt-root.8
assert_exit -m "man --warnings -l man/kekcrypt-encrypt-root.8" 0 man --warnings -l "$PAGE2"
assert_eq -m "... prints no warning" "" "$(cat "$ERR")"
assert_true -m "... renders the whole page (SEE ALSO, the last section)" grep -q '^SEE ALSO' "$OUT"
left=$(awk '/\*[A-Za-z_]|[A-Za-z]\*[A-Za-z ,.;:]|(^|[^A-Za-z0-9_])_[A-Z][A-Za-z]*_([^A-Za-z0-9_]|$)/ {
	print NR ": " $0 }' "$OUT" | head -n 20)
assert_eq -m "... no asciidoc markup left in the text" "" "$left"

# --- the README --------------------------------------------------------------------------------
# Paths in `...`: a word with a '/', not absolute (those are the installed system's) nor ./
# (a built program); test logs are written by the tests. The README describes the repository
# (scripts/ and bench/ are not in the tarball): checked in a git checkout only.
if src_is_checkout; then
	missing=()
	while IFS= read -r p; do
		case $p in /* | ./* | *.log | *'$'*) continue ;; esac
		# In git, or a build output that .gitignore names (e.g. tests/debs).
		[ -n "$(git -C "$KC_SRCDIR" ls-files -- "${p%/}")" ] ||
			git -C "$KC_SRCDIR" check-ignore -q -- "${p%/}" || missing+=("$p")
	done < <(grep -o '`[^` ]*`' "$KC_SRCDIR/README.md" | tr -d '`' |
		awk '/^[A-Za-z0-9_.-]*\/[A-Za-z0-9_.\/-]*$/')
	assert_eq -m "every path the README names is in git (or a build output it ignores)" "" "${missing[*]}"
else
	diag "not a git checkout (a tarball): the README's paths are the repository's, not checked"
fi
outside=$(awk '/\.\.\/[A-Za-z]/ && !/\.\.\/configure/ { print NR ": " $0 }' "$KC_SRCDIR/README.md")
assert_eq -m "the README names nothing outside the repository (../)" "" "$outside"
assert_true -m "... its design document is in the repository (doc/DESIGN.md)" \
	grep -q '`doc/DESIGN.md`' "$KC_SRCDIR/README.md"

done_testing
