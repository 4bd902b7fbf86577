# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
# COMPREPLY=($(compgen ...)) is how completions are written: the words never hold blanks.
# shellcheck disable=SC2207
#
# bash completion for kekcrypt(8): verbs and sub-verbs, each verb's long options, DEVICE
# arguments (block devices and files; --header's detached header file), token IDs for --token (`kekcrypt kek list DEVICE
# --ids`), KEK URI schemes for --kek and --to. The lists below are the binary's:
# tests/host/completion.sh checks them against src/ and the binary.

_kekcrypt_verbs="format open close status verify dump kek recovery header rekey encrypt repair
	keyscript-passphrase keyscript-normalise boot-needs doctor config firstboot template adopt
	help"
_kekcrypt_common="--config= --debug --verbose --json --batch-mode --timeout= --help"
# The KEK URI schemes (kekcrypt kek providers).
_kekcrypt_schemes="file: pkcs11: vault-transit+https:// azure-kv+https://"

# The sub-verbs of VERB, nothing for a verb without.
_kekcrypt_subverbs() {
	case $1 in
	kek) echo "add remove list rotate providers" ;;
	recovery) echo "add remove verify" ;;
	header) echo "backup restore" ;;
	config) echo "check" ;;
	template) echo "mark clear show" ;;
	esac
}

# The options of VERB (with its sub-verb: "kek add"), besides the common ones; a trailing
# '=' marks an option that takes a value.
_kekcrypt_options() {
	local fmt="--kek= --cipher= --key-size= --label= --sector-size= --uuid= --recovery"
	case $1 in
	format) echo "$fmt --force --template --header=" ;;
	open) echo "--token= --readonly --allow-discards --recovery --key-file= --header=" ;;
	close | status | keyscript-normalise | "config check") echo "" ;;
	dump | repair | "template mark" | "template clear" | "template show") echo "--header=" ;;
	verify) echo "--token= --all --crypttab --header=" ;;
	rekey) echo "--resume --progress-json --resilience= --force --header=" ;;
	firstboot) echo "--crypttab --progress-json --force --header=" ;;
	encrypt) echo "$fmt --resume --progress-json --dry-run --shrink --remount --force --header=" ;;
	keyscript-passphrase) echo "--token= --retry-until= --crypttab-key= --header=" ;;
	boot-needs) echo "--for= --crypttab= --tokens --header=" ;;
	adopt) echo "--from= --kek= --bek= --root= --convert --header-backup-dir= --dry-run" ;;
	doctor) echo "--crypttab= --initramfs=" ;;
	"kek add") echo "--kek= --key-file= --recovery-key --wipe-passphrase --convert --header-backup=" \
		"--header=" ;;
	"kek remove") echo "--token= --force --header=" ;;
	"kek list") echo "--ids --header=" ;;
	"kek rotate") echo "--token= --all --to= --dry-run --if-newer --crypttab --header=" ;;
	"kek providers") echo "" ;;
	"recovery add") echo "--key-file= --recovery-key --force --header=" ;;
	"recovery remove") echo "--token= --force --header=" ;;
	"recovery verify") echo "--key-file= --header=" ;;
	"header backup") echo "--header=" ;;
	"header restore") echo "--force --header=" ;;
	esac
}

# Block devices and files.
_kekcrypt_devices() {
	local cur=$1 d
	COMPREPLY=()
	for d in /dev/disk/by-uuid/* /dev/sd* /dev/nvme* /dev/vd* /dev/xvd* /dev/mmcblk* \
		/dev/loop[0-9]* /dev/mapper/* /dev/md* /dev/dm-*; do
		[ -b "$d" ] && [[ $d == "$cur"* ]] && COMPREPLY+=("$d")
	done
	local IFS=$'\n'
	COMPREPLY+=($(compgen -f -- "$cur"))
}

_kekcrypt() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -n =: || return
	else
		cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	fi

	# The verb, its sub-verb and the first argument that is not an option (the DEVICE).
	local i w verb="" sub="" device="" nargs=0 config=()
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		--config) config=(--config "${words[i + 1]}") ;;
		--config=*) config=("$w") ;;
		esac
		case $w in
		--config | --timeout | -t | --token | --kek | -k | --to | --cipher | -c | \
			--key-size | -s | --label | -l | --sector-size | --uuid | --key-file | \
			--resilience | --retry-until | --crypttab-key | --for | --initramfs | \
			--header-backup | --header | --from | --bek | --root | --header-backup-dir)
			i=$((i + 1)) ;;
		-*) ;;
		*)
			if [ -z "$verb" ]; then
				verb=$w
			elif [ -z "$sub" ] && [ -n "$(_kekcrypt_subverbs "$verb")" ]; then
				sub=$w
			else
				nargs=$((nargs + 1))
				[ -n "$device" ] || device=$w
			fi ;;
		esac
	done

	# The value of an option.
	local opt=$prev val=$cur
	if [[ $cur == --*=* ]]; then
		opt=${cur%%=*} val=${cur#*=}
	fi
	case $opt in
	--kek | -k | --to)
		COMPREPLY=($(compgen -W "$_kekcrypt_schemes" -- "$val"))
		[[ $val == file:* ]] && COMPREPLY=($(compgen -P file: -f -- "${val#file:}"))
		# bash replaces only what follows the last ':' of the word.
		if declare -F __ltrim_colon_completions >/dev/null; then
			__ltrim_colon_completions "$val"
		fi
		compopt -o nospace 2>/dev/null
		return ;;
	--token)
		if [ -n "$device" ] && [ "$verb" != recovery ]; then
			COMPREPLY=($(compgen -W "$("${words[0]}" kek list "$device" --ids "${config[@]}" \
				2>/dev/null)" \
				-- "$val"))
		fi
		return ;;
	--config | --key-file | --header-backup | --header | --initramfs | --crypttab | \
		--crypttab-key)
		COMPREPLY=($(compgen -f -- "$val"))
		return ;;
	--bek | --root | --header-backup-dir)
		COMPREPLY=($(compgen -d -- "$val"))
		return ;;
	--from)
		COMPREPLY=($(compgen -W "ade" -- "$val"))
		return ;;
	--for)
		COMPREPLY=($(compgen -W "keyscript initrd" -- "$val"))
		return ;;
	--resilience)
		COMPREPLY=($(compgen -W "checksum journal" -- "$val"))
		return ;;
	--timeout | -t | --cipher | -c | --key-size | -s | --label | -l | --sector-size | \
		--uuid | --retry-until)
		return ;;
	esac

	if [ -z "$verb" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_kekcrypt_common --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_kekcrypt_verbs" -- "$cur"))
		fi
		return
	fi
	local subs
	subs=$(_kekcrypt_subverbs "$verb")
	if [ -n "$subs" ] && [ -z "$sub" ]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		local o
		o="$(_kekcrypt_options "$verb${sub:+ $sub}") $_kekcrypt_common"
		COMPREPLY=($(compgen -W "${o//=/}" -- "$cur"))
		return
	fi
	case $verb${sub:+ $sub} in
	help | "kek providers" | "config check" | doctor | boot-needs | adopt) ;;
	open)
		# open DEVICE NAME: the name is the user's.
		[ "$nargs" -eq 0 ] && _kekcrypt_devices "$cur" ;;
	close) ;;
	*)
		if [ "$nargs" -eq 0 ]; then
			_kekcrypt_devices "$cur"
		else
			# header backup|restore DEVICE FILE
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	esac
}
complete -F _kekcrypt kekcrypt
