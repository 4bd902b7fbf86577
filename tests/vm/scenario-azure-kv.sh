#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest scenario: a volume whose KEK is in the Azure Key Vault fixture, reached at the
# user-network gateway 10.0.2.2 with a managed-identity token from the fixture's metadata
# endpoint. Format, open, write, close, reopen, read back, through real dm-crypt.
set -eu
. /scenario.env

fail() { echo "KC-FAIL $*"; exit 1; }
ok() { echo "KC-OK $*"; }

# The harness's init configured eth0 (10.0.2.15/24 via 10.0.2.2).
ip route >/tmp/routes
grep -q "default via 10.0.2.2" /tmp/routes || fail "no route to the gateway"
ok "network"

uri="azure-kv+https://10.0.2.2:$KV_PORT/keys/kek-rsa"
kekcrypt format -q /dev/vda --kek "$uri"
kekcrypt dump /dev/vda --json >/tmp/dump.json
grep -q '"provider":"azure-kv"' /tmp/dump.json || fail "token provider"
grep -q '"key_version":"' /tmp/dump.json || fail "key version recorded"
ok "format"

kekcrypt open /dev/vda kv >/tmp/open.out
grep -q "with token 0 (azure-kv+https://10.0.2.2" /tmp/open.out || fail "open names the KEK"
head -c 8388608 /dev/urandom >/tmp/data
want=$(sha256sum </tmp/data | cut -d' ' -f1)
dd if=/tmp/data of=/dev/mapper/kv bs=1M conv=fsync 2>/dev/null
kekcrypt close kv
kekcrypt open /dev/vda kv >/dev/null
head -c 8388608 /dev/mapper/kv >/tmp/back
[ "$(sha256sum </tmp/back | cut -d' ' -f1)" = "$want" ] || fail "read back differs"
kekcrypt status kv --json >/tmp/st.json
grep -q '"kekcrypt":true' /tmp/st.json || fail "status"
kekcrypt close kv
ok "open-write-reopen-read"
echo "KC-SCENARIO-DONE"
