#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Process hygiene (DESIGN.md, "Trust boundary"): nothing taken from the environment, no core
# dumps. The Vault fixture (tests/fixtures/vault/server.js) runs off loopback, at 10.9.9.1 in
# a network namespace this test makes, so that libcurl would go through an environment proxy
# if kekcrypt let it (loopback hosts never go through a proxy):
#  - https_proxy, HTTPS_PROXY, ALL_PROXY, all_proxy (and http_proxy) name a recording proxy
#    (tests/fixtures/proxy/proxy.py): verify works and the proxy sees no connection; control:
#    curl, with the same environment, does go through it;
#  - `proxy =` in the config: the request goes through the proxy (CONNECT seen), also with
#    NO_PROXY=*; a proxy URL with credentials, or of another scheme, is refused unechoed;
#  - SSLKEYLOGFILE: kekcrypt writes no TLS secrets (control: curl writes them);
#  - a kekcrypt blocked on a slow KMS has "Max core file size 0 0" and is not dumpable: a
#    process without CAP_SYS_PTRACE cannot open its /proc/PID/mem, which it could if the
#    process were dumpable (control: a sleep with the same credentials).
# Needs root (network namespace), node, python3, curl, setpriv.
if [ -z "${KC_HYGIENE_NETNS:-}" ]; then
	exec unshare --net env KC_HYGIENE_NETNS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

need node curl setpriv ip
T=$T_DIR
KMS=10.9.9.1
ip link set lo up
ip addr add "$KMS/32" dev lo

"$FIX/tls.sh" "$T/tls" "IP:$KMS" >/dev/null
CA=$T/tls/ca.pem
TOKEN=hvs.$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
(umask 077 && echo "$TOKEN" >"$T/token")
fixture_start V node "$FIX/vault/server.js" --tls-dir "$T/tls" --listen "$KMS" --token "$TOKEN" --key k1
fixture_start PROXY /usr/bin/python3 "$FIX/proxy/proxy.py" "$T/proxy.rec"
VAULT=https://$KMS:$V_PORT
PROXY=http://127.0.0.1:$PROXY_PORT
URI=vault-transit+$VAULT/v1/transit/keys/k1

# vctl METHOD PATH [JSON]: a control request to the fixture, never through a proxy.
vctl() {
	curl -sSf --noproxy '*' --cacert "$CA" -X "$1" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$VAULT$2"
}

# conf FILE LINE...: a private config with a [vault-transit] section using the token.
conf() {
	local f=$1
	shift
	(umask 077 && {
		echo "[vault-transit]"
		printf '%s\n' "auth = token" "token-file = $T/token" "ca-file = $CA" \
			"allowed-hosts = $KMS" "$@"
	} >"$f")
}

# The environment a proxy-honouring client would follow.
PROXY_ENV=(https_proxy="$PROXY" HTTPS_PROXY="$PROXY" ALL_PROXY="$PROXY" all_proxy="$PROXY"
	http_proxy="$PROXY")
recorded() { cat "$T/proxy.rec"; }
conf "$T/plain.conf"
conf "$T/empty-proxy.conf" "proxy ="
conf "$T/proxy.conf" "proxy = $PROXY"
IMG=$T/disk.img
new_img "$IMG"
"$KEKCRYPT" format -q --config "$T/plain.conf" "$IMG" --kek "$URI" >"$OUT" 2>"$ERR"

# --- proxies -------------------------------------------------------------------------------
: >"$T/proxy.rec"
assert_ok -m "control: curl follows https_proxy to the KMS" \
	env "${PROXY_ENV[@]}" curl -sSf --cacert "$CA" "$VAULT/v1/sys/health"
assert_contains -m "control: the proxy recorded curl's CONNECT" "$(recorded)" \
	"CONNECT $KMS:$V_PORT"

: >"$T/proxy.rec"
assert_ok -m "verify with proxy variables in the environment" \
	env "${PROXY_ENV[@]}" "$KEKCRYPT" verify --config "$T/plain.conf" "$IMG"
assert_eq -m "the environment's proxy saw no connection" "" "$(recorded)"
assert_ok -m "verify with 'proxy =' (empty) and proxy variables in the environment" \
	env "${PROXY_ENV[@]}" "$KEKCRYPT" verify --config "$T/empty-proxy.conf" "$IMG"
assert_eq -m "the environment's proxy saw no connection ('proxy =')" "" "$(recorded)"

assert_ok -m "verify through the configured proxy" \
	env NO_PROXY='*' no_proxy='*' "$KEKCRYPT" verify --config "$T/proxy.conf" "$IMG"
assert_contains -m "the configured proxy carried the request (NO_PROXY ignored)" \
	"$(recorded)" "CONNECT $KMS:$V_PORT"

: >"$T/proxy.rec"
for bad in "http://kekcrypt:hunter2pw@127.0.0.1:$PROXY_PORT" "ftp://127.0.0.1:$PROXY_PORT" \
	"127.0.0.1:$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/path?q=hunter2pw"; do
	conf "$T/bad.conf" "proxy = $bad"
	run "$KEKCRYPT" verify --config "$T/bad.conf" "$IMG"
	if [ "$RC" != 0 ] && grep -q "proxy" "$ERR" && ! grep -q hunter2pw "$ERR"; then
		ok "proxy = $bad: refused, not echoed"
	else
		not_ok "proxy = $bad: refused, not echoed (exit $RC)"
		_t_diag_files
	fi
done
assert_eq -m "a refused proxy saw no connection" "" "$(recorded)"

# --- TLS key log -----------------------------------------------------------------------------
assert_ok -m "control: curl honours SSLKEYLOGFILE" \
	env SSLKEYLOGFILE="$T/curl.keylog" curl -sSf --noproxy '*' --cacert "$CA" \
	"$VAULT/v1/sys/health"
assert_true -m "control: curl wrote TLS secrets" grep -q SECRET "$T/curl.keylog"
assert_ok -m "verify with SSLKEYLOGFILE set" \
	env SSLKEYLOGFILE="$T/kc.keylog" "$KEKCRYPT" verify --config "$T/plain.conf" "$IMG"
assert_true -m "no TLS secrets in SSLKEYLOGFILE" test ! -s "$T/kc.keylog"

# --- core dumps --------------------------------------------------------------------------------
# Both the process and the reader run without CAP_SYS_PTRACE (setpriv, dropped from the
# bounding set and so from root's permitted set), with the same credentials otherwise: the
# kernel then lets the reader open /proc/PID/mem only when PID is dumpable. (Not
# /proc/PID/environ: recent kernels let the same user read it regardless.)
NOPTRACE=(setpriv --bounding-set -sys_ptrace)
# open_mem PID: open /proc/PID/mem for reading, without CAP_SYS_PTRACE; fails with EACCES.
open_mem() {
	"${NOPTRACE[@]}" python3 -c 'import os, sys
os.close(os.open("/proc/%s/mem" % sys.argv[1], os.O_RDONLY))' "$1"
}
vctl POST /_fixture/reset >/dev/null
vctl POST /_fixture/fault '{"mode":"slow","endpoint":"decrypt","delay_ms":20000}' >/dev/null
"${NOPTRACE[@]}" "$KEKCRYPT" verify --config "$T/plain.conf" "$IMG" \
	>"$T/slow.out" 2>&1 &
KC_PID=$!
T_PIDS+=("$KC_PID")
"${NOPTRACE[@]}" sleep 60 &
SLEEP_PID=$!
T_PIDS+=("$SLEEP_PID")
for i in $(seq 100); do
	[ "$(vctl GET /_fixture/counters | json_get /dev/stdin 'd["decrypt"]')" -ge 1 ] && break
	sleep 0.1
done
assert_true -m "kekcrypt is waiting for the KMS" kill -0 "$KC_PID"
assert_true -m "kekcrypt's RLIMIT_CORE is 0" \
	grep -Eq '^Max core file size +0 +0 ' "/proc/$KC_PID/limits"
assert_ok -m "control: a dumpable process's memory opens without CAP_SYS_PTRACE" \
	open_mem "$SLEEP_PID"
run open_mem "$KC_PID"
if [ "$RC" != 0 ] && grep -q "Permission denied" "$ERR"; then
	ok "kekcrypt is not dumpable: its memory is closed without CAP_SYS_PTRACE"
else
	not_ok "kekcrypt is not dumpable: its memory is closed without CAP_SYS_PTRACE" \
		"open of /proc/$KC_PID/mem exited $RC"
	_t_diag_files
fi
kill "$KC_PID" "$SLEEP_PID"
done_testing
