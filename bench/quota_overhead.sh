#!/usr/bin/env bash
# Warm throughput of hello with quotas set on its namespace against hello
# without, in one run on one node: two copies of the app, `hello` in a
# namespace without quotas and `hello-q` in one with every quota set (high
# enough never to refuse, so each call is admitted against them), served by
# the same tined, alternating runs of `wrk -t1 -cC` (bench/lib/overhead.sh).
# Prints, per round, each app's req/s and tined's CPU time per request, then
# the median ratios; asserts nothing (timings depend on the machine).
#   bench/quota_overhead.sh [ROUNDS] [SECONDS] [CONNECTIONS]
# BENCH_TINE_BIN (or TINE_BIN_DIR) measures another build's bin directory.
set -euo pipefail
ROUNDS=${1:-10}
SECS=${2:-5}
CONNS=${3:-16}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_TINE_BIN:-${TINE_BIN_DIR:-$SRC/build/bin}}
for tool in wrk redis-server curl bc; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/deps.sh)" >&2; exit 2; }
done
# shellcheck source=bench/lib/overhead.sh
. "$SRC/bench/lib/overhead.sh" # T, PIDS, cleanup at exit

ov_redis
ov_start node
tine() { "$BIN/tine" --url "$NODE_URL" --token "" "$@"; }
tine namespaces create plain >/dev/null
tine namespaces create q >/dev/null
for app in hello hello-q; do
  mkdir -p "$T/$app"
  cp -r "$SRC/functions-examples/hello"/. "$T/$app/"
  ns=plain
  [ "$app" = hello ] || ns=q
  sed -i "s/^app: hello\$/app: $app\nnamespace: $ns/" "$T/$app/tine.yaml"
  tine deploy "$T/$app" >/dev/null
  curl -sf "$NODE_URL/$app/" >/dev/null
done
tine quota set q --concurrency 1000000 --sandboxes 1000000 --memory 1000000 --per-minute 1000000000 \
  --spend-per-day 1000000 >/dev/null
ov_rounds none "$NODE_URL/hello/" "$NODE_PID" quota "$NODE_URL/hello-q/" "$NODE_PID"
