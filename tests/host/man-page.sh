#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The man page (man/kekcrypt.8, generated from man/kekcrypt.8.adoc by asciidoctor) renders
# cleanly: `man --warnings` prints nothing, and no asciidoc markup is left in the text (a
# '*' or '_' that asciidoctor did not take as bold or italic, as in *x*_Y_ without the
# unconstrained **x**__Y__). It has the FILES and COPYRIGHT sections.
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

done_testing
