# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced first (before lib.sh) by a host test that mounts over system paths (the token plugin
# directory, /etc): the test runs again under `unshare --mount --propagation private`, so
# nothing outside it changes; without root it is skipped, saying why.
if [ -z "${KC_PRIVATE_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "1..0 # SKIP $(basename "$0" .sh): needs root for a private mount namespace"
		exit 77
	fi
	KC_PRIVATE_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
