#!/usr/bin/env bash
# Measures tine.invoke: the latency of one hop (p50/p99, timed in Lua around
# each call) and a chain of 250 functions end to end (fn 1 invokes fn 2 ...
# invokes fn 250, all warm; timed inside fn 1 and over HTTP), next to the
# floor of this machine (relay_floor.c: the same four process wake-ups with
# no tine code, through one callee and rotating over CHAIN callees). Prints
# figures, asserts nothing. Not run by ctest.
#
#   TINE_BIN_DIR=$PWD/build/bin TINE_SOURCE_DIR=$PWD bash tests/perf/invoke_bench.sh
#   HOPS=20000 CHAIN=250 RUNS=50 PIN=1 ...   (PIN: run the node on that one CPU)
. "$(dirname "$0")/../integration/lib.sh"
HOPS=${HOPS:-20000}
CHAIN=${CHAIN:-250}
RUNS=${RUNS:-50}
PIN=${PIN:-}
pin() { if [ -n "$PIN" ]; then taskset -c "$PIN" "$@"; else "$@"; fi; }

cc -O2 -o "$T/relay_floor" "$SRC/tests/perf/relay_floor.c"
start_redis
if [ -n "$PIN" ]; then
  BIN_SAVED=$BIN; mkdir -p "$T/pinbin"
  printf '#!/bin/sh\nexec taskset -c %s %s/tined "$@"\n' "$PIN" "$BIN_SAVED" >"$T/pinbin/tined"
  chmod +x "$T/pinbin/tined"; BIN=$T/pinbin
fi
start_node a --redis "$REDIS_URL"
[ -n "$PIN" ] && BIN=$BIN_SAVED

# The hop app: `hop` invokes `echo` HOPS times and reports the distribution.
mkdir -p "$T/hop"
cat >"$T/hop/tine.yaml" <<'YAML'
app: hop
functions:
  hop:  { handler: hop.lua#hop, timeout: 10m }
  echo: { handler: hop.lua#echo }
routes:
  - { method: GET, path: /hop, function: hop }
YAML
cat >"$T/hop/hop.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.echo(ev) return { v = ev } end
function M.hop(req)
  local n = tonumber(req.query.n)
  local t = {}
  for i = 1, n do
    local t0 = tine.now()
    tine.invoke("echo", i)
    t[i] = tine.now() - t0
  end
  table.sort(t)
  local sum = 0
  for i = 1, n do sum = sum + t[i] end
  return { p50 = t[math.floor(n * 0.5)] * 1e6, p99 = t[math.floor(n * 0.99)] * 1e6,
           min = t[1] * 1e6, mean = sum / n * 1e6 }
end
return M
LUA
tine deploy "$T/hop" >/dev/null
http GET "/hop/hop?n=1000" >/dev/null # warm both sandboxes
out=$(http GET "/hop/hop?n=$HOPS")
echo "tine.invoke hop ($HOPS calls, timed in Lua): $(echo "${out#* }" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("p50 %.1f us  p99 %.1f us  min %.1f us  mean %.1f us" % (d["p50"], d["p99"], d["min"], d["mean"]))')"

# The chain app: c1 -> c2 -> ... -> cN, each a function of its own.
mkdir -p "$T/chain"
{
  echo "app: chain"
  echo "functions:"
  for i in $(seq 1 "$CHAIN"); do echo "  c$i: { handler: chain.lua#step }"; done
  echo "routes:"
  echo "  - { method: GET, path: /run, function: c1 }"
} >"$T/chain/tine.yaml"
cat >"$T/chain/chain.lua" <<LUA
local tine = require "tine"
local N = $CHAIN
local M = {}
function M.step(ev, ctx)
  local i = type(ev) == "table" and ev.i or 1
  if i == N then return { i = i } end
  local t0 = tine.now()
  local r = tine.invoke("c" .. (i + 1), { i = i + 1 })
  if i == 1 then r.inner_ms = (tine.now() - t0) * 1e3 end
  return r
end
return M
LUA
tine deploy "$T/chain" >/dev/null
cold=$(curl -s -o /dev/null -w '%{time_total}' "$URL/chain/run")
echo "chain of $CHAIN, first run (cold: starts $CHAIN sandboxes): $(python3 -c "print('%.1f ms' % ($cold * 1e3))")"
: >"$T/chain.txt"
for _ in $(seq 1 "$RUNS"); do
  curl -s -o "$T/chain.json" -w '%{time_total}\n' "$URL/chain/run" >>"$T/chain.txt"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inner_ms"])' "$T/chain.json" >>"$T/inner.txt"
done
python3 - "$T/chain.txt" "$T/inner.txt" "$CHAIN" "$RUNS" <<'PY'
import sys
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))]
http = [float(x) * 1e3 for x in open(sys.argv[1]) if x.strip()]
inner = [float(x) for x in open(sys.argv[2]) if x.strip()]
n = int(sys.argv[3])
print("chain of %s warm, %s runs: over HTTP p50 %.2f ms p99 %.2f ms; inside c1 (%d hops) p50 %.2f ms p99 %.2f ms"
      % (n, sys.argv[4], pct(http, .5), pct(http, .99), n - 1, pct(inner, .5), pct(inner, .99)))
PY
pin "$T/relay_floor" "$HOPS"
pin "$T/relay_floor" "$HOPS" "$CHAIN" 64
pin "$T/relay_floor" 200 "$CHAIN" 0 chain
pin "$T/relay_floor" 200 "$CHAIN" 64 chain
echo "($(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg))"
