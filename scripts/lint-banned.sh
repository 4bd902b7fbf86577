#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Banned C functions (STYLE.md 9): unbounded copies and formatting, unchecked number parsing,
# non-reentrant or predictable ones, and racy temporary names. Use snprintf, strtol/strtoul
# with an end check, strtok_r, getrandom/RAND_bytes, mkstemp instead.
# Reports FILE:LINE: CALL for each call in lib/ src/ common/ tokens/ (comments and string
# literals do not count) and fails if there is any. Usage: scripts/lint-banned.sh [SRCDIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

banned='atoi|atol|strcpy|strcat|sprintf|vsprintf|gets|strtok|rand|tmpnam|mktemp'
mapfile -t files < <(find lib src common tokens -name '*.[ch]' | sort)

# Blank out comments and string/char literals (keeping the line numbering), then look for a
# banned name called as a function: not a member (.x( ->x() nor part of a longer name.
awk -v banned="$banned" '
FNR == 1 { incomment = 0 }
{
	line = $0; out = ""; i = 1; n = length(line)
	while (i <= n) {
		c = substr(line, i, 1); c2 = substr(line, i, 2)
		if (incomment) {
			if (c2 == "*/") { incomment = 0; i += 2 } else i++
			continue
		}
		if (c2 == "/*") { incomment = 1; i += 2; continue }
		if (c2 == "//") break
		if (c == "\"" || c == "\047") {
			q = c; i++
			while (i <= n && substr(line, i, 1) != q)
				i += (substr(line, i, 1) == "\\") ? 2 : 1
			i++; out = out q q
			continue
		}
		out = out c; i++
	}
	re = "(^|[^.>_[:alnum:]])(" banned ")[[:space:]]*\\("
	while (match(out, re)) {
		call = substr(out, RSTART, RLENGTH)
		out = substr(out, RSTART + RLENGTH)
		sub(/^[^_[:alnum:]]/, "", call); sub(/[[:space:]]*\($/, "", call)
		printf "%s:%d: %s() is banned\n", FILENAME, FNR, call
		found = 1
	}
}
END { exit found }
' "${files[@]}" >&2 || { echo "lint-banned: banned functions used (see above)" >&2; exit 1; }
