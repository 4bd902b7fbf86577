#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The KEK providers are one table (lib/provider.c); what users read comes from it or is held
# against it: `kekcrypt kek providers --json` lists each one's name, URI syntax and summary;
# `kekcrypt --help` shows every syntax; an unsupported scheme's error lists every scheme; and
# the documentation (kekcrypt(8) and the README) names every provider's URI scheme and its
# configuration section, so that a new provider cannot be left out of them unnoticed.
. "$(dirname "$0")/lib.sh"

TOP=$KC_SRCDIR
assert_exit -m "kek providers --json" 0 kc kek providers --json
cp "$OUT" "$T_DIR/providers.json"
n=$(json_get "$T_DIR/providers.json" 'len(d["providers"])')
assert_true -m "at least the four providers of this release ($n)" test "$n" -ge 4
assert_exit -m "kekcrypt --help" 0 kc --help
cp "$OUT" "$T_DIR/help.txt"
new_img "$T_DIR/x.img"
assert_exit -m "format with an unknown scheme: exit 15" 15 kc format -q "$T_DIR/x.img" --kek nosuch:x
cp "$ERR" "$T_DIR/unsupported.txt"
for i in $(seq 0 $((n - 1))); do
	name=$(json_get "$T_DIR/providers.json" "d['providers'][$i]['name']")
	syntax=$(json_get "$T_DIR/providers.json" "d['providers'][$i]['syntax']")
	scheme=${syntax%%:*}
	assert_true -m "$name: --help shows its syntax" grep -qF -- "$syntax" "$T_DIR/help.txt"
	assert_true -m "$name: the unsupported-scheme error lists '$scheme'" \
		grep -qF -- "$scheme" "$T_DIR/unsupported.txt"
	assert_true -m "$name: kekcrypt(8) documents the scheme '$scheme:'" \
		grep -qF -- "*$scheme:" "$TOP/man/kekcrypt.8.adoc"
	assert_true -m "$name: kekcrypt(8) documents its configuration section [$name]" \
		grep -qF -- "*[$name]*" "$TOP/man/kekcrypt.8.adoc"
	assert_true -m "$name: the README names the scheme '$scheme:'" \
		grep -qF -- "$scheme:" "$TOP/README.md"
done
done_testing
