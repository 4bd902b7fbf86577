#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The bash completion (completion/kekcrypt.bash): what it offers for verbs, sub-verbs,
# options, --token (the token IDs of a real volume, `kek list --ids`) and --kek (the URI
# schemes), run as bash runs it (under bash-completion's _init_completion when installed);
# and that its lists are the binary's: its verbs are src/kekcrypt.c's table, every option it
# offers is one the binary accepts for that verb, every long option in src/ is offered, every
# provider of `kek providers --json` has its scheme.
. "$(dirname "$0")/lib.sh"

T=$T_DIR
SCRIPT=$KC_SRCDIR/completion/kekcrypt.bash

# Run as an interactive bash has it: bash-completion first when installed (scripts/install-deps.sh).
if [ -r /usr/share/bash-completion/bash_completion ]; then
	set +eu
	# shellcheck disable=SC1091 # the system's
	. /usr/share/bash-completion/bash_completion
	set -eu
	diag "with bash-completion's _init_completion"
else
	diag "without bash-completion (its fallback)"
fi
set +u
# shellcheck source=../../completion/kekcrypt.bash
. "$SCRIPT"
set -u
assert_contains -m "complete -p kekcrypt: the function _kekcrypt" \
	"$(complete -p kekcrypt)" "-F _kekcrypt kekcrypt"

# comp WORD...: the completions of the last WORD (the one being completed), sorted, one line.
comp() {
	COMP_WORDS=("$KEKCRYPT" "$@")
	COMP_CWORD=$#
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	set +eu
	_kekcrypt
	set -eu
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

# --- what it offers ----------------------------------------------------------------------------
src_verbs=$(sed -n '/verbs\[\] = {/,/NULL/p' "$KC_SRCDIR/src/kekcrypt.c" | grep -o '&verb_[a-z_]*' |
	sed 's/&//' | while read -r v; do
		grep -h -A1 "^const struct verb $v = {" "$KC_SRCDIR"/src/*.c |
			sed -n 's/.*\.name = "\(.*\)",/\1/p'
	done | sort | tr '\n' ' ')
diag "src/kekcrypt.c's verbs: $src_verbs"
assert_true -m "src/kekcrypt.c's verb table is read (17 verbs or more)" \
	test "$(wc -w <<<"$src_verbs")" -ge 17
assert_eq -m "kekcrypt <TAB>: the verbs of src/kekcrypt.c's table, and help" \
	"$(printf '%s\n' $src_verbs help | sort | tr '\n' ' ')" "$(comp "")"
assert_eq -m "kekcrypt ke<TAB>: kek" "kek keyscript-normalise keyscript-passphrase " "$(comp ke)"
assert_eq -m "kekcrypt kek <TAB>: its sub-verbs" "add list providers remove rotate " "$(comp kek "")"
assert_eq -m "kekcrypt recovery <TAB>" "add remove verify " "$(comp recovery "")"
assert_eq -m "kekcrypt header <TAB>" "backup restore " "$(comp header "")"
assert_eq -m "kekcrypt config <TAB>" "check " "$(comp config "")"
out=$(comp format /dev/null --)
for o in --kek --cipher --key-size --label --sector-size --uuid --recovery --force --json \
	--config --timeout --batch-mode; do
	assert_contains -m "kekcrypt format DEV --<TAB> offers $o" " $out" " $o "
done
assert_not_contains -m "... not kek's --token" "$out" "--token"
assert_eq -m "kekcrypt kek rotate DEV --d<TAB>: --dry-run, --debug" "--debug --dry-run " \
	"$(comp kek rotate /dev/null --d)"
assert_eq -m "kekcrypt --kek <TAB> (format): the URI schemes" \
	"azure-kv+https:// file: pkcs11: vault-transit+https:// " "$(comp format /dev/null --kek "")"
assert_eq -m "kekcrypt kek add DEV --kek v<TAB>" "vault-transit+https:// " \
	"$(comp kek add /dev/null --kek v)"
touch "$T/kek-a.bin"
# bash-completion's __ltrim_colon_completions: bash replaces what follows "file:" only.
want="file:$T/kek-a.bin "
declare -F __ltrim_colon_completions >/dev/null && want="$T/kek-a.bin "
assert_eq -m "--kek file:\$T/kek-<TAB>: the files" "$want" \
	"$(comp format /dev/null --kek "file:$T/kek-")"
assert_eq -m "kekcrypt verify \$T/kek-<TAB>: a file as DEVICE" "$T/kek-a.bin " \
	"$(comp verify "$T/kek-")"

# --token: the IDs of a volume with two kekcrypt tokens.
IMG=$T/disk.img
new_kek "$T/k0.bin"
new_kek "$T/k1.bin"
new_img "$IMG"
format_img "$IMG" "$T/k0.bin"
kc kek add "$IMG" --kek "file:$T/k1.bin" >/dev/null
assert_eq -m "kek list --ids: one ID a line" "$(printf '0\n1')" "$(kc kek list "$IMG" --ids)"
assert_exit -m "kek list --ids --json: exit 2" 2 kc kek list "$IMG" --ids --json
assert_exit -m "kek rotate --ids: exit 2 (list's only)" 2 kc kek rotate "$IMG" --ids
assert_eq -m "kekcrypt kek remove IMG --token <TAB>: the token IDs" "0 1 " \
	"$(comp kek remove "$IMG" --config "$T_CONF" --token "")"
assert_eq -m "kekcrypt verify --token <TAB> IMG (option before DEVICE, --token=)" "0 1 " \
	"$(comp --config "$T_CONF" verify "$IMG" "--token=")"

# --- its lists are the binary's ----------------------------------------------------------------
# Every option offered for each verb is one the binary takes for it: an option without a
# value followed by an unknown one reports the unknown one; one with a value given last says
# it needs an argument. Both exit 2 before doing anything.
verbs_subs=""
for v in $_kekcrypt_verbs; do
	[ "$v" = help ] && continue
	subs=$(_kekcrypt_subverbs "$v")
	if [ -n "$subs" ]; then
		for s in $subs; do verbs_subs+="$v $s,"; done
	else
		verbs_subs+="$v,"
	fi
done
bad=() n=0
while IFS= read -r -d , vs; do
	[ -n "$vs" ] || continue
	read -r -a vsa <<<"$vs"
	run "$KEKCRYPT" "${vsa[@]}" --help
	[ "$RC" = 0 ] || bad+=("kekcrypt $vs --help: exit $RC")
	for o in $(_kekcrypt_options "$vs") $_kekcrypt_common; do
		n=$((n + 1))
		case $o in
		*=)
			run "$KEKCRYPT" "${vsa[@]}" "${o%=}"
			want="option '${o%=}' needs an argument" ;;
		*)
			run "$KEKCRYPT" "${vsa[@]}" "$o" --zz-not-an-option
			want="unknown option '--zz-not-an-option'" ;;
		esac
		[ "$o" = --help ] && continue
		if [ "$RC" != 2 ] || ! grep -qF -- "$want" "$ERR"; then
			bad+=("kekcrypt $vs $o: exit $RC, $(head -c 200 "$ERR")")
		fi
	done
done <<<"$verbs_subs"
diag "$n options of $(tr -cd , <<<"$verbs_subs" | wc -c) verbs probed"
if [ "${#bad[@]}" -eq 0 ]; then
	ok "every verb offered has --help, every option offered is the binary's for that verb"
else
	not_ok "every verb offered has --help, every option offered is the binary's for that verb" \
		"${bad[@]}"
fi

# Every long option in src/ (the getopt tables and cli.h's macros) is offered somewhere.
missing=()
for o in $(grep -ho '{ "[a-z][a-z-]*", *[a-z_]*argument' "$KC_SRCDIR"/src/*.c "$KC_SRCDIR"/src/cli.h |
	sed 's/{ "\([a-z-]*\)".*/\1/' | sort -u); do
	# recovery keyslots' KDF cost, for tests only and not in --help (src/cli.h)
	case $o in pbkdf-memory | iter-time | pbkdf-force-iterations) continue ;; esac
	grep -qE -- "--$o([= \"]|\$)" "$SCRIPT" || missing+=("--$o")
done
assert_eq -m "every long option in src/ is in the completion" "" "${missing[*]}"

# Every provider's URI syntax starts with a scheme the completion offers.
run "$KEKCRYPT" kek providers --json
syntaxes=$(json_get "$OUT" '"\n".join(p["syntax"] for p in d["providers"])')
while IFS= read -r s; do
	found=""
	for p in $_kekcrypt_schemes; do [[ $s == "$p"* ]] && found=$p; done
	assert_true -m "provider URI $s: its scheme is offered ($found)" test -n "$found"
done <<<"$syntaxes"

done_testing
