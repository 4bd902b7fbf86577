# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Helpers for the host tests (tests/host/*.sh). Source it from a test:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives the test:
#  - $KC_SRCDIR (scripts, fixtures, data) and $KC_BUILDDIR (kekcrypt, .libs/, the check
#    programs), both absolute: `make check` sets them (tests/Makemodule.am); run by hand they
#    default to the tree this file is in, an in-tree build;
#  - $KEKCRYPT (absolute; default $KC_BUILDDIR/kekcrypt), $T_DIR (a private temporary directory
#    removed on exit), loop devices attached with loop_attach and always detached on exit;
#  - $T_CONF, the config `kc` runs with, and policy_allow to let URIs name things in it;
#  - TAP output: each assertion prints "ok N - what" or "not ok N - what" followed by "# "
#    diagnostics; assertions never abort the script; done_testing prints the plan "1..N" and
#    exits 1 if any failed;
#  - setup steps are plain commands under `set -e`: if one fails the script stops, prints
#    "not ok N - setup failed ..." and "Bail out!", and exits 1 (a failure, never a skip);
#    bail_out REASON does the same for a missing prerequisite the test cannot run without;
#  - skip_all REASON prints "1..0 # SKIP REASON" and exits 77, for a facility genuinely missing
#    on this machine (tests/bounded.sh fails it under CI=true).
#
# Conventions: `run CMD...` runs a command and keeps its exit status in $RC, its stdout in the
# file $OUT and its stderr in $ERR. assert_exit CODE CMD... is `run` plus a check of $RC.
# Every assertion accepts `-m DESCRIPTION` first to name the check.

set -euo pipefail
export LC_ALL=C

: "${KC_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KC_BUILDDIR:=$KC_SRCDIR}"
export KC_SRCDIR KC_BUILDDIR
# The test fixtures (tests/fixtures in the source tree).
FIX=$KC_SRCDIR/tests/fixtures

# bail_out REASON: a fatal error before or outside the checks (TAP "Bail out!"), exit 1.
bail_out() {
	echo "Bail out! $*"
	T_DONE=1
	exit 1
}

: "${KEKCRYPT:=$KC_BUILDDIR/kekcrypt}"
case $KEKCRYPT in
/*) ;;
*) KEKCRYPT=$PWD/$KEKCRYPT ;;
esac
export KEKCRYPT
[ -x "$KEKCRYPT" ] || bail_out "kekcrypt binary '$KEKCRYPT' not found; build it first (make)"
T_NAME=$(basename "$0" .sh)
T_N=0
T_FAILED=0
T_LOOPS=()
T_PIDS=()
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kc-$T_NAME.XXXXXX")
chmod 0700 "$T_DIR"
OUT=$T_DIR/.out
ERR=$T_DIR/.err
RC=0
: >"$OUT"
: >"$ERR"

T_DONE=0

_t_cleanup() {
	local rc=$? dev
	set +e
	for dev in "${T_PIDS[@]}"; do
		kill "$dev" 2>/dev/null && wait "$dev" 2>/dev/null
	done
	for dev in "${T_LOOPS[@]}"; do
		[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	done
	if [ "$T_DONE" = 0 ] && [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		T_N=$((T_N + 1))
		echo "not ok $T_N - setup failed (exit $rc at line ${T_LINE:-?}); aborted"
		_t_diag_files
		echo "Bail out! $T_NAME: setup failed"
		rc=1
	fi
	if [ -n "${T_KEEP:-}" ]; then
		echo "# kept $T_DIR"
	else
		rm -rf "$T_DIR"
	fi
	exit "$rc"
}
trap _t_cleanup EXIT
trap 'T_LINE=$LINENO' ERR
trap 'exit 130' INT TERM

_t_diag_files() {
	if [ -s "$OUT" ]; then
		echo "#   stdout:"
		head -c 4000 "$OUT" | sed 's/^/#     /'
	fi
	if [ -s "$ERR" ]; then
		echo "#   stderr:"
		head -c 4000 "$ERR" | sed 's/^/#     /'
	fi
}

# ok DESCRIPTION / not_ok DESCRIPTION [DIAGNOSTIC...]
ok() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1"
}

not_ok() {
	local d=$1
	shift
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $d"
	local l
	for l in "$@"; do
		echo "#   $l"
	done
	return 0
}

# Print a diagnostic line.
diag() {
	echo "# $*"
}

skip_all() {
	echo "1..0 # SKIP $T_NAME: $*"
	T_DONE=1
	exit 77
}

# Finish: the plan line and the exit status.
done_testing() {
	echo "1..$T_N"
	if [ "$T_FAILED" -gt 0 ]; then
		echo "# $T_NAME: $T_FAILED of $T_N checks failed"
		T_DONE=1
		exit 1
	fi
	T_DONE=1
	exit 0
}

# A readable rendering of a command for test names.
_t_cmdline() {
	local s="" a
	for a in "$@"; do
		[ "$a" = "$KEKCRYPT" ] && a=kekcrypt
		a=${a//$T_DIR/\$T}
		case $a in
		*[[:space:]]* | "") s+=" '$a'" ;;
		*) s+=" $a" ;;
		esac
	done
	echo "${s# }"
}

# run CMD...: $RC, $OUT, $ERR. Never fails.
run() {
	"$@" >"$OUT" 2>"$ERR" && RC=0 || RC=$?
	return 0
}

# Audit events (lib/audit.c) go to the kernel log where nothing listens on /dev/log, as on
# these hosts: to a file of the test's instead, not into the host's kernel log.
export KC_AUDIT_KMSG_PATH=$T_DIR/.kmsg
: >"$KC_AUDIT_KMSG_PATH"
# `encrypt` keeps a header being written in /var/lib/kekcrypt (lib/encrypt.c): the test's own.
export KC_STATE_DIR=$T_DIR/.state

# Local policy (lib/policy.c): URIs may name only the modules, PIN files and endpoints the
# config allows. $T_CONF is the test's own config (private, in $T_DIR); `kc` passes it unless
# the command names a config itself; policy_allow adds an allowance to it.
T_CONF=$T_DIR/.kc-test.conf
(umask 077 && : >"$T_CONF")

# policy_allow SECTION KEY VALUE: add the line "KEY = VALUE" to [SECTION] of $T_CONF (list
# keys such as allowed-hosts may be given on several lines).
policy_allow() {
	printf '[%s]\n%s = %s\n' "$1" "$2" "$3" >>"$T_CONF"
}

# kc ARGS...: run kekcrypt (with --config $T_CONF unless ARGS have a --config).
kc() {
	local a
	for a in "$@"; do
		case $a in --config | --config=*) "$KEKCRYPT" "$@"; return ;; esac
	done
	"$KEKCRYPT" "$@" --config "$T_CONF"
}

# assert_exit [-m DESC] CODE CMD...
assert_exit() {
	local desc="" code
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	code=$1
	shift
	[ -n "$desc" ] || desc="$(_t_cmdline "$@") -> exit $code"
	run "$@"
	if [ "$RC" = "$code" ]; then
		ok "$desc"
	else
		not_ok "$desc" "expected exit $code, got $RC: $(_t_cmdline "$@")"
		_t_diag_files
	fi
	return 0
}

# assert_ok [-m DESC] CMD...: exit 0.
assert_ok() {
	if [ "$1" = -m ]; then
		assert_exit -m "$2" 0 "${@:3}"
	else
		assert_exit 0 "$@"
	fi
}

# assert_true [-m DESC] CMD...: a check that succeeds when CMD exits 0 (output not captured).
assert_true() {
	local desc=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	[ -n "$desc" ] || desc=$(_t_cmdline "$@")
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc" "command failed: $(_t_cmdline "$@")"
	fi
	return 0
}

# assert_contains [-m DESC] HAYSTACK NEEDLE: fixed-string match in a string.
assert_contains() {
	local desc=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	[ -n "$desc" ] || desc="output contains '$2'"
	if [[ $1 == *"$2"* ]]; then
		ok "$desc"
	else
		not_ok "$desc" "'$2' not found in:" "$(printf '%s' "$1" | head -c 3000 | sed '2,$s/^/#     /')"
	fi
	return 0
}

# assert_not_contains [-m DESC] HAYSTACK NEEDLE
assert_not_contains() {
	local desc=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	[ -n "$desc" ] || desc="output does not contain '$2'"
	if [[ $1 != *"$2"* ]]; then
		ok "$desc"
	else
		not_ok "$desc" "'$2' unexpectedly found"
	fi
	return 0
}

# assert_stdout_contains / assert_stderr_contains [-m DESC] NEEDLE: on the last run.
assert_stdout_contains() {
	if [ "$1" = -m ]; then
		assert_contains -m "$2" "$(cat "$OUT")" "$3"
	else
		assert_contains -m "stdout contains '$1'" "$(cat "$OUT")" "$1"
	fi
}

assert_stderr_contains() {
	if [ "$1" = -m ]; then
		assert_contains -m "$2" "$(cat "$ERR")" "$3"
	else
		assert_contains -m "stderr contains '$1'" "$(cat "$ERR")" "$1"
	fi
}

# assert_eq [-m DESC] EXPECTED ACTUAL
assert_eq() {
	local desc=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	[ -n "$desc" ] || desc="'$2' = '$1'"
	if [ "$1" = "$2" ]; then
		ok "$desc"
	else
		not_ok "$desc" "expected: '$1'" "actual:   '$2'"
	fi
	return 0
}

# src_is_checkout: the source tree is the top of a git checkout (not a tarball, nor one
# unpacked inside a checkout, as distcheck's is when CI runs in a clone).
src_is_checkout() {
	local top
	top=$(git -C "$KC_SRCDIR" rev-parse --show-toplevel 2>/dev/null) &&
		[ "$(cd "$top" && pwd -P)" = "$(cd "$KC_SRCDIR" && pwd -P)" ]
}

# interrupt_after_chunk ARGS...: run kekcrypt ARGS (rekey or encrypt with --progress-json; with
# --config $T_CONF) in the background and send it SIGINT as soon as it reports a chunk done (read
# from a pipe: no polling delay in which it could finish); RC is its exit status, its stderr in
# $ERR.
interrupt_after_chunk() {
	local fifo=$T_DIR/.progress.fifo pid line
	rm -f "$fifo"
	mkfifo "$fifo"
	"$KEKCRYPT" "$@" --config "$T_CONF" >"$fifo" 2>"$ERR" &
	pid=$!
	exec 3<"$fifo"
	while read -r line <&3; do
		case $line in *'"done":'[1-9]*) kill -INT "$pid"; break ;; esac
	done
	cat <&3 >/dev/null	# the rest, so that it never blocks on a full pipe
	exec 3<&-
	RC=0
	wait "$pid" || RC=$?
}

# header_sum IMG: sha256 of the first 16 MiB (LUKS2 binary headers, JSON areas, keyslots).
# OpenSSL's, which uses the CPU's SHA instructions: coreutils' sha256sum took 0.15 s of CPU a
# call, and the host tests make hundreds.
header_sum() {
	head -c 16777216 "$1" | openssl dgst -sha256 -r | cut -d' ' -f1
}

# assert_header_unchanged [-m DESC] IMG SUM
assert_header_unchanged() {
	local desc=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	[ -n "$desc" ] || desc="header of $(_t_cmdline "$1") unchanged"
	local now
	now=$(header_sum "$1")
	if [ "$now" = "$2" ]; then
		ok "$desc"
	else
		not_ok "$desc" "sha256 of the first 16 MiB was $2, now $now"
	fi
	return 0
}

# is_all_zero FILE: true when FILE holds only zero bytes.
is_all_zero() {
	cmp -s -n "$(stat -c %s "$1")" "$1" /dev/zero
}

# new_img PATH [SIZE]: a sparse image file of zeros (default 32M).
new_img() {
	rm -f "$1"
	truncate -s "${2:-32M}" "$1"
}

# data_tree MIB: $T_DIR/tree, the files of a filesystem that a test encrypts: MIB of
# incompressible data (blob) and a line to look for in plaintext (marker,
# "kekcrypt-plaintext-marker-PID").
data_tree() {
	mkdir "$T_DIR/tree"
	head -c "$1M" /dev/urandom >"$T_DIR/tree/blob"
	echo "kekcrypt-plaintext-marker-$$" >"$T_DIR/tree/marker"
}

# Recovery keys in tests: PBKDF2 at the least kekcrypt allows, 2000 iterations (the default is
# 100000; --pbkdf-memory is ignored since recovery keyslots no longer use argon2id).
# shellcheck disable=SC2034 # for the tests that source this file
RECOVERY_FAST=(--pbkdf-memory 32 --pbkdf-force-iterations 4)

# new_kek PATH: a random 32-byte KEK file, mode 0600.
new_kek() {
	(umask 077 && head -c 32 /dev/urandom >"$1")
	chmod 0600 "$1"
}

# format_img IMG KEKFILE...: format IMG with file KEKs (setup step: aborts on failure).
format_img() {
	local img=$1 args=() k
	shift
	for k in "$@"; do
		args+=(--kek "file:$k")
	done
	if ! "$KEKCRYPT" format -q "$img" "${args[@]}" >"$OUT" 2>"$ERR"; then
		echo "# format_img $img failed:" >&2
		cat "$ERR" >&2
		return 1
	fi
}

# loop_attach [-r] IMG: attach IMG to a free loop device (read-only with -r) and set $LOOP to
# it; every device attached this way is detached on exit, also on failure. (Not usable as
# `dev=$(loop_attach ...)`: the subshell would lose the record.)
loop_attach() {
	local ro=()
	if [ "$1" = -r ]; then
		ro=(-r)
		shift
	fi
	LOOP=$(losetup --show -f "${ro[@]}" "$1") || {
		echo "# losetup failed for $1 (only 8 loop devices exist: losetup -a):" >&2
		losetup -a >&2 || true
		return 1
	}
	T_LOOPS+=("$LOOP")
}

# fixture_start NAME CMD...: start a server that prints "PORT n" as its first line on stdout
# once it listens (the fixtures in tests/fixtures do); sets NAME_PORT. Its stderr goes to
# $T_DIR/NAME.log. Stopped (TERM) on exit.
fixture_start() {
	local name=$1 i port=""
	shift
	# The file exists before the wait reads it: the background job's redirection may come
	# after the first read, and sed on a missing file fails the test (set -e).
	: >"$T_DIR/$name.port"
	"$@" >"$T_DIR/$name.port" 2>"$T_DIR/$name.log" &
	T_PIDS+=($!)
	for i in $(seq 100); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$T_DIR/$name.port")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { cat "$T_DIR/$name.log" >&2; return 1; }
	printf -v "${name}_PORT" '%s' "$port"
}

# private_syslog LOG: in a test that sourced private-ns.sh first, a /dev of its own (a tmpfs
# with the nodes tests use) whose /dev/log is a datagram socket that appends each message to
# LOG, one line each (newlines as \n): the audit events (lib/audit.c) of what the test runs.
private_syslog() {
	local i
	mount -t tmpfs -o mode=755 tmpfs /dev
	mknod -m 666 /dev/null c 1 3
	mknod -m 666 /dev/zero c 1 5
	mknod -m 666 /dev/random c 1 8
	mknod -m 666 /dev/urandom c 1 9
	ln -s /proc/self/fd /dev/fd
	ln -s /proc/self/fd/0 /dev/stdin
	ln -s /proc/self/fd/1 /dev/stdout
	ln -s /proc/self/fd/2 /dev/stderr
	: >"$1"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).replace(b"\n", b"\\n") + b"\n")
' "$1" &
	T_PIDS+=($!)
	for i in $(seq 50); do
		[ -S /dev/log ] && break
		sleep 0.1
	done
	[ -S /dev/log ] || bail_out "the test's syslog receiver did not start"
}

# loop_detach DEV
loop_detach() {
	local i
	losetup -d "$1"
	for i in "${!T_LOOPS[@]}"; do
		[ "${T_LOOPS[i]}" = "$1" ] && T_LOOPS[i]=""
	done
	return 0
}

# Tools that need the real ELF binary rather than libtool's wrapper script (gdb, valgrind):
# kc_tool TOOL [TOOL ARGS] -- KEKCRYPT ARGS...
kc_tool() {
	local tool=() libtool
	while [ "$1" != -- ]; do
		tool+=("$1")
		shift
	done
	shift
	libtool=$(dirname "$KEKCRYPT")/libtool
	if head -c 4096 "$KEKCRYPT" | grep -q 'libtool' && [ -x "$libtool" ]; then
		"$libtool" --mode=execute "${tool[@]}" "$KEKCRYPT" "$@"
	else
		"${tool[@]}" "$KEKCRYPT" "$@"
	fi
}

# json_get FILE PYTHON-EXPR: evaluate EXPR with `d` = the parsed JSON of FILE, print it.
json_get() {
	python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2"
}

# token_replace IMG ID FILE: put the JSON in FILE in place of token ID, through cryptsetup
# (which recomputes the header checksums; external token plugins are not asked).
token_replace() {
	cryptsetup --disable-external-tokens token remove --token-id "$2" "$1"
	cryptsetup --disable-external-tokens token import --json-file "$3" --token-id "$2" "$1"
}

# token_edit IMG ID PYTHON: rewrite token ID of IMG; PYTHON changes the dict `t` (modules
# base64, json and os are imported).
token_edit() {
	cryptsetup token export --token-id "$2" "$1" >"$T_DIR/.tok-in.json"
	python3 - "$T_DIR/.tok-in.json" "$T_DIR/.tok-out.json" "$3" <<'PY'
import base64, json, os, sys
t = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(t, open(sys.argv[2], "w"))
PY
	token_replace "$1" "$2" "$T_DIR/.tok-out.json"
}

# need CMD...: fail (not skip) when a tool the test requires is missing.
need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			bail_out "required tool '$c' is missing (scripts/install-deps.sh installs it)"
	done
}

need cryptsetup python3 sha256sum openssl

# unwrap_dek IMG TOKEN_ID KEKFILE OUTFILE: an independent unwrap of token TOKEN_ID's wrapped
# key with python3-cryptography's RFC 5649 implementation (no kekcrypt code involved).
unwrap_dek() {
	cryptsetup token export --token-id "$2" "$1" >"$T_DIR/.tok.json"
	python3 - "$T_DIR/.tok.json" "$3" "$4" <<'PY'
import base64, json, os, sys
try:
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
except ImportError:
    sys.exit("python3 'cryptography' is missing: apt-get install -y python3-cryptography")
tok = json.load(open(sys.argv[1]))
kek = open(sys.argv[2], "rb").read()
dek = aes_key_unwrap_with_padding(kek, base64.b64decode(tok["kekcrypt-wrapped-key"], validate=True))
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, dek)
os.close(fd)
PY
}

# secret_forms FILE: print the representations of the bytes of FILE that a leak could take,
# one a line: lower-case hex, upper-case hex, base64, base64 without padding, and
# colon/space-separated hex as dumps print it (first 16 bytes, enough to be unique).
secret_forms() {
	python3 - "$1" <<'PY'
import base64, sys
b = open(sys.argv[1], "rb").read()
h = b.hex()
print(h)
print(h.upper())
print(base64.b64encode(b).decode())
print(base64.b64encode(b).decode().rstrip("="))
print(base64.urlsafe_b64encode(b).decode().rstrip("="))
print(" ".join("%02x" % c for c in b[:16]))
print(":".join("%02x" % c for c in b[:16]))
# any 16-byte window of the hex would already be a leak; the head is enough to catch a
# truncated print
print(h[:32])
PY
}

# assert_no_secret [-m DESC] SECRETFILE FILE...: none of FILEs holds the bytes of SECRETFILE,
# raw or in any of the secret_forms.
assert_no_secret() {
	local desc="" secret f form hit=""
	if [ "$1" = -m ]; then
		desc=$2
		shift 2
	fi
	secret=$1
	shift
	[ -n "$desc" ] || desc="no secret in $(_t_cmdline "$@")"
	for f in "$@"; do
		if python3 -c 'import sys
s = open(sys.argv[1], "rb").read(); d = open(sys.argv[2], "rb").read()
sys.exit(0 if s and s in d else 1)' "$secret" "$f"; then
			hit+="raw bytes in $(_t_cmdline "$f"); "
		fi
		while IFS= read -r form; do
			if grep -qiF -- "$form" "$f"; then
				hit+="'$form' in $(_t_cmdline "$f"); "
			fi
		done < <(secret_forms "$secret")
	done
	if [ -z "$hit" ]; then
		ok "$desc"
	else
		not_ok "$desc" "secret found: $hit"
	fi
	return 0
}

# have_pkcs11: true when kekcrypt was built with the PKCS#11 provider (the pkcs11: scheme is
# not "unsupported", exit 15). Nothing is written: the probe image is all zeros and the URI
# names no module.
have_pkcs11() {
	local probe=$T_DIR/.pkcs11-probe.img rc=0
	new_img "$probe" 1M
	"$KEKCRYPT" format -q "$probe" --kek 'pkcs11:token=kekcrypt-probe;object=none' \
		>/dev/null 2>&1 || rc=$?
	rm -f "$probe"
	[ "$rc" != 15 ]
}

# softhsm_setup DIR: run tests/fixtures/softhsm-setup.sh into DIR and eval its exports
# (SOFTHSM2_CONF, KC_P11_MODULE, KC_P11_PIN_FILE). Returns its exit status (77: no SoftHSM2).
softhsm_setup() {
	local setup rc=0
	mkdir -p "$1"
	chmod 0700 "$1"
	setup=$("$FIX/softhsm-setup.sh" "$1") || rc=$?
	[ "$rc" = 0 ] || return "$rc"
	eval "$setup"
	policy_allow pkcs11 allowed-modules "$KC_P11_MODULE"
	policy_allow pkcs11 allowed-pin-files "$KC_P11_PIN_FILE"
}

# fixture_sdk NAME MODULE: set SDK_DIR to tests/fixtures/NAME with its npm packages (`npm ci`
# there; scripts/install-deps.sh does it), MODULE among them; bails out without them. A source
# tree without them (distcheck's, unpacked from the tarball) borrows those of
# $KC_NODE_MODULES_FROM/NAME: the fixture's files are copied into $T_DIR next to a link.
fixture_sdk() {
	SDK_DIR=$FIX/$1
	local from=${KC_NODE_MODULES_FROM:-}/$1/node_modules
	if [ ! -d "$SDK_DIR/node_modules/$2" ] && [ -n "${KC_NODE_MODULES_FROM:-}" ] &&
		[ -d "$from/$2" ]; then
		SDK_DIR=$T_DIR/.fixture-$1
		cp -r "$FIX/$1" "$SDK_DIR"
		ln -s "$from" "$SDK_DIR/node_modules"
	fi
	[ -d "$SDK_DIR/node_modules/$2" ] ||
		bail_out "$2 is not installed: run 'npm ci' in tests/fixtures/$1"
}

# The built token plugin (KC_PLUGIN names another); fails the test when it is missing.
plugin_path() {
	local p=${KC_PLUGIN:-$KC_BUILDDIR/.libs/libcryptsetup-token-kekcrypt.so}
	[ -f "$p" ] || { echo "plugin '$p' not built (make)" >&2; return 1; }
	echo "$p"
}

# plugin_namespace: for a test that re-executed itself under `unshare --mount --propagation
# private` (libcryptsetup 2.6 loads plugins only from its compiled-in directory): a copy of
# the built plugin bind-mounted over that directory, /etc an overlay (so that the test may
# write /etc/kekcrypt/kekcrypt.conf, /etc/crypttab, /etc/hosts), and $T_CONF the config the
# plugin reads. conf LINE... writes it. Nothing outside the namespace changes.
plugin_namespace() {
	local tokdir plugin

	plugin=$(plugin_path)
	tokdir=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
	[ -n "$tokdir" ] && [ -d "$tokdir" ] ||
		bail_out "cryptsetup has no external token directory ('$tokdir')"
	mkdir -m 755 "$T_DIR/.tokens" "$T_DIR/.etc-up" "$T_DIR/.etc-work"
	cp "$plugin" "$T_DIR/.tokens/libcryptsetup-token-kekcrypt.so"
	mount --bind "$T_DIR/.tokens" "$tokdir"
	mount -t overlay overlay \
		-o "lowerdir=/etc,upperdir=$T_DIR/.etc-up,workdir=$T_DIR/.etc-work" /etc
	# shellcheck disable=SC2174 # -p for a second run; the parent exists
	mkdir -p -m 700 /etc/kekcrypt
	T_CONF=/etc/kekcrypt/kekcrypt.conf
	: >"$T_CONF"
	chmod 600 "$T_CONF"
	diag "plugin in $tokdir (private mount namespace)"
}

# conf LINE...: replace $T_CONF with these lines.
conf() {
	(umask 077 && printf '%s\n' "$@" >"$T_CONF")
}
