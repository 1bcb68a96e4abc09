#!/usr/bin/env bash
# Invoke latency through the OpenWhisk-compatible API (/api/v1) against
# tine's own route, on one node: the same Lua hello as a tine app (GET
# /hello/) and as an OpenWhisk action (POST /api/v1/namespaces/_/actions/
# hello?blocking=true&result=true, a blocking invoke as `wsk action invoke
# -br` sends it). Measured with bench/http_timer.c over one keep-alive
# connection: warm (a sandbox ready) and cold (the app's sandboxes evicted
# before each sample, DELETE /_tine/v1/apps/APP/sandboxes, untimed).
# Prints p50/p99 of each and the difference; asserts nothing (timings depend
# on the machine).
#   bench/openwhisk_overhead.sh [WARM_RUNS] [COLD_RUNS]
# BENCH_TINE_BIN (or TINE_BIN_DIR) measures another build's bin directory.
set -euo pipefail
WARM=${1:-3000}
COLD=${2:-200}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_TINE_BIN:-${TINE_BIN_DIR:-$SRC/build/bin}}
ROUNDS=1 SECS=1 CONNS=1 # bench/lib/overhead.sh's settings (its wrk rounds are not used here)
for tool in redis-server curl cc; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/deps.sh)" >&2; exit 2; }
done
# shellcheck source=bench/lib/overhead.sh
. "$SRC/bench/lib/overhead.sh" # T, PIDS, cleanup at exit, ov_redis, ov_start

cc -std=c11 -O2 -Wall -Wextra -o "$T/http-timer" "$SRC/bench/http_timer.c"
ov_redis
ov_start node
tine() { "$BIN/tine" --url "$NODE_URL" --token "" "$@"; }
tine deploy "$SRC/functions-examples/hello" >/dev/null
# The same answer as functions-examples/hello's, as an OpenWhisk action.
curl -sf -X PUT "$NODE_URL/api/v1/namespaces/_/actions/hello" -H 'content-type: application/json' \
  -d '{"exec":{"kind":"lua","code":"function main(params) return { greeting = \"hello, world\" } end"},
       "limits":{"memory":64,"timeout":1000}}' >/dev/null
TINE_URL="$NODE_URL/hello/"
OW_URL="$NODE_URL/api/v1/namespaces/_/actions/hello?blocking=true&result=true"
curl -sf "$TINE_URL" | grep -q "hello, world"
curl -sf -X POST "$OW_URL" -d '{}' | grep -q "hello, world"

# timed NAME ARGS...: one http-timer series; prints "NAME p50 p99".
timed() {
  local name=$1 out
  shift
  out=$("${CLI[@]}" "$T/http-timer" --reuse --expect "hello, world" "$@")
  awk -v n="$name" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
    END {printf "%-22s %10s %10s\n", n, v["p50_us"], v["p99_us"]}' <<<"$out"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %10s %10s\n' series p50_us p99_us
{
  timed "warm tine route" "$TINE_URL" --runs "$WARM" --warmup 200
  timed "warm /api/v1 invoke" "$OW_URL" --method POST --body '{}' --content-type application/json \
    --runs "$WARM" --warmup 200
  timed "cold tine route" "$TINE_URL" --runs "$COLD" --warmup 3 \
    --evict "$NODE_URL/_tine/v1/apps/hello/sandboxes"
  timed "cold /api/v1 invoke" "$OW_URL" --method POST --body '{}' --content-type application/json \
    --runs "$COLD" --warmup 3 --evict "$NODE_URL/_tine/v1/apps/ow-default/sandboxes"
} | tee "$T/table"
awk '{p50[$1" "$2] = $(NF-1); p99[$1" "$2] = $NF}
  END {printf "/api/v1 minus the tine route: warm p50 %+d us, p99 %+d us; cold p50 %+d us, p99 %+d us\n",
    p50["warm /api/v1"] - p50["warm tine"], p99["warm /api/v1"] - p99["warm tine"],
    p50["cold /api/v1"] - p50["cold tine"], p99["cold /api/v1"] - p99["cold tine"]}' "$T/table"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
