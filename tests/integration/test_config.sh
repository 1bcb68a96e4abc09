#!/usr/bin/env bash
# Configuration: the same names as flags, TINE_* variables and config-file
# keys; flags beat the environment, which beats the file; bad keys and values
# are refused with the place named.
. "$(dirname "$0")/lib.sh"
start_redis
cat >"$T/tined.conf" <<CONF
# a comment
redis = $REDIS_URL
no-auth = true
admin-token = from-the-file
CONF
start_node f --config "$T/tined.conf"
check_contains "config file read: its admin token is required" "401" "$(http GET /_tine/v1/apps)"
check_contains "config file token accepted" "200" "$(http GET /_tine/v1/apps -H 'Authorization: Bearer from-the-file')"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
TINE_ADMIN_TOKEN=from-env start_node f --config "$T/tined.conf"
check_contains "env beats the file" "200" "$(http GET /_tine/v1/apps -H 'Authorization: Bearer from-env')"
check_contains "file value no longer used" "401" "$(http GET /_tine/v1/apps -H 'Authorization: Bearer from-the-file')"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
TINE_ADMIN_TOKEN=from-env start_node f --config "$T/tined.conf" --admin-token from-flag
check_contains "flag beats env" "200" "$(http GET /_tine/v1/apps -H 'Authorization: Bearer from-flag')"
printf 'colour = red\n' >"$T/bad.conf"
out=$("$BIN/tined" --config "$T/bad.conf" 2>&1 || true)
check_contains "unknown config key named with its line" "bad.conf:1: unknown key 'colour'" "$out"
out=$("$BIN/tined" --max-bundle-size lots --state-dir "$T/x" 2>&1 || true)
check_contains "bad size refused" "expected a size such as 16MiB" "$out"
out=$("$BIN/tined" --listen nowhere --state-dir "$T/y" --redis "$REDIS_URL" --sdk-dir "$SRC/sdk/lua" 2>&1 || true)
check_contains "bad listen address refused" "expected HOST:PORT" "$out"
out=$("$BIN/tined" --bogus 2>&1 || true)
check_contains "unknown flag refused" "unknown option '--bogus'" "$out"
finish
