#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs shellcheck over every tracked shell script: *.sh, *.sh.in, and the files whose first
# line is a sh/bash shebang or a "shellcheck shell=" directive (the initramfs keyscript, hook
# and conf-hook, .ci/run). Settings in .shellcheckrc.
# Severity "warning": warnings and errors are bugs or likely ones and must be fixed (or
# disabled on the line with a reason); "info" and "style" (mostly quoting of values that
# cannot split) are left to review. Usage: scripts/lint-shell.sh [SRCDIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

command -v shellcheck >/dev/null || { echo "lint-shell: shellcheck is not installed" >&2; exit 1; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	{ echo "lint-shell: not a git checkout (the tracked scripts are checked)" >&2; exit 1; }

is_shell() {
	case $1 in *.sh | *.sh.in) return 0 ;; esac
	[ -f "$1" ] &&
		head -n 1 "$1" | grep -qE '^#!(/usr)?/bin/(env )?(ba)?sh\b|^# shellcheck shell='
}
scripts=()
while IFS= read -r -d '' f; do
	if is_shell "$f"; then scripts+=("$f"); fi
done < <(git ls-files -z)
echo "lint-shell: shellcheck -S warning over ${#scripts[@]} scripts"
printf '%s\0' "${scripts[@]}" | xargs -0 -n 8 -P 2 shellcheck -S warning
