#!/usr/bin/env bash
# Pipelined invocations: with tined on one CPU, calls of a short function are
# sent behind a busy sandbox's running call instead of waking one process per
# call; every call still gets its own answer. When the running call ends its
# sandbox (a timeout, running out of memory), the calls pipelined behind it
# never started: they are sent again elsewhere and answered 200, while the
# overrunning call alone fails. A call waiting in a host call (tine.invoke of
# the same function) never gets calls pipelined behind it, so recursion
# under load does not deadlock.
. "$(dirname "$0")/lib.sh"

command -v wrk >/dev/null || { echo "wrk is not installed (scripts/deps.sh installs it)"; exit 1; }

# pool FN EXPR: EXPR evaluated on the newest pool of pipe.FN (tine ps --json).
pool() {
  tine --json ps pipe | python3 -c '
import json, sys
pools = [p for p in json.load(sys.stdin)["pools"] if p["function"] == sys.argv[1]]
p = max(pools, key=lambda q: q["version"]) if pools else None
print(eval(sys.argv[2]) if p else "")' "$1" "$2"
}

# load SECONDS PATH [CONNECTIONS]: wrk with 16 connections (or as many as
# given); prints "requests non2xx errors".
load() {
  wrk -t1 -c"${3:-16}" -d"$1" --timeout 8s "$URL$2" >"$T/wrk.out" 2>&1
  python3 - "$T/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
req = re.search(r"(\d+) requests in", t)
non = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
print(req.group(1) if req else 0, non.group(1) if non else 0, sum(map(int, err.groups())) if err else 0)
PY
}

# One CPU: two busy sandboxes would only take turns on it.
mkdir -p "$T/a"
taskset -c 0 "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/a" --sdk-dir "$SRC/sdk/lua" >"$T/a.log" 2>&1 &
NODE_PID=$!
PIDS+=($NODE_PID)
wait_for 20 test -s "$T/a/port" || { echo "tined did not start"; cat "$T/a.log"; exit 1; }
URL="http://127.0.0.1:$(cat "$T/a/port")"
TOKEN=$(cat "$T/a/admin.token")

mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: pipe
functions:
  count: { handler: p.lua#count, timeout: 1s, memory: 64, concurrency: 32 }
routes:
  - { method: GET, path: /count, function: count }
YAML
cat >"$T/app/p.lua" <<'LUA'
local tine = require("tine")
local n = 0
return {
  -- Short by default. ?spin=1 runs past the timeout, ?oom=1 runs out of
  -- memory, ?depth=N calls itself N deep through tine.invoke.
  count = function(req, ctx)
    local q = req.query or req
    if q.spin then local t = os.clock() + 5; while os.clock() < t do end end
    if q.oom then local t = {}; local i = 0; while true do i = i + 1; t[i] = string.rep("x", 65536) .. i end end
    local depth = tonumber(q.depth or 0)
    if depth > 0 then
      local r = tine.invoke("count", { depth = tostring(depth - 1) })
      return { status = 200, body = "depth " .. depth .. " " .. tostring(r) }
    end
    n = n + 1
    return { status = 200, body = tostring(n) }
  end,
}
LUA
check "deploy" "deployed pipe version 1" "$(tine deploy "$T/app")"
for _ in $(seq 20); do curl -s -o /dev/null "$URL/pipe/count"; done

# Under load the calls are pipelined, and each one is answered.
read -r reqs non errs <<<"$(load 2s /pipe/count)"
check "load: every call answered 2xx" "0 0" "$non $errs"
[ "$reqs" -gt 500 ] && ok "load: $reqs calls in 2s" || fail "load: calls in 2s" "$reqs"
piped=$(pool count 'p["pipelined"]')
[ "${piped:-0}" -gt 0 ] && ok "calls were pipelined ($piped)" || fail "calls were pipelined" "$(tine --json ps pipe)"
check "the average says short" "True" "$(pool count 'p["avg_ms"] < 1')"
# Sandboxes run SCHED_BATCH (policy 3, field 41 of /proc/PID/stat): woken by
# a call they do not preempt tined's loop turn.
spid=$(pool count 'p["sandboxes"][0]["pid"]')
check "sandboxes are SCHED_BATCH" "3" "$(awk '{print $41}' "/proc/$spid/stat" 2>/dev/null)"

# A sandbox sleeps once per call, waiting for the next one: tined reading its
# answer must not wake it for nothing (a read sleeping on a unix socket is
# woken each time the peer consumes what it wrote: the channel is two pipes).
switches() {
  local t=0 p v
  for p in $(pool count '" ".join(str(s["pid"]) for s in p["sandboxes"])'); do
    v=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$p/status" 2>/dev/null)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
sw0=$(switches)
for _ in $(seq 200); do curl -s -o /dev/null "$URL/pipe/count"; done
sw1=$(switches)
per=$(python3 -c "print(round(($sw1 - $sw0) / 200, 2))")
check "a sandbox sleeps once per call ($per switches per call)" "True" "$(python3 -c "print($per <= 1.3)")"

# A call that overruns its timeout under load: it alone gets 504; the calls
# pipelined behind it are sent again and answered.
requeued0=$(pool count 'p["requeued"]')
load 3s /pipe/count >"$T/load.res" &
LOAD=$!
sleep 0.5
codes=""
for _ in 1 2 3; do
  codes="$codes $(curl -s -o "$T/spin.body" -w '%{http_code}' "$URL/pipe/count?spin=1")"
done
wait $LOAD
read -r reqs non errs <"$T/load.res"
check "overrunning calls: 504 each" " 504 504 504" "$codes"
check_contains "504 names the timeout" "timed out after 1000 ms" "$(cat "$T/spin.body")"
check "the calls around them: all 2xx, none lost" "0 0" "$non $errs"
requeued=$(pool count 'p["requeued"]')
[ "${requeued:-0}" -gt "${requeued0:-0}" ] && ok "calls behind them were sent again ($requeued)" ||
  fail "calls behind them were sent again" "$(tine --json ps pipe)"

# Running out of memory ends the sandbox too (not under AddressSanitizer,
# which reserves more address space than the memory limit allows).
if ! ldd "$BIN/tined" | grep -q libasan; then
  load 3s /pipe/count >"$T/load.res" &
  LOAD=$!
  sleep 0.5
  code=$(curl -s -o "$T/oom.body" -w '%{http_code}' "$URL/pipe/count?oom=1")
  wait $LOAD
  read -r reqs non errs <"$T/load.res"
  check "out of memory under load: 500" "500" "$code"
  check "the calls around it: all 2xx" "0 0" "$non $errs"
fi

# Recursion through tine.invoke: a caller waiting in a host call never gets
# calls pipelined behind it, so its callee (the same function) runs at once
# instead of waiting for it until the timeout. Under load too (4 chains of 3
# calls stay below the concurrency of 32: no chain can starve another).
check_contains "a recursive call answers" "200 depth 1 " "$(http GET '/pipe/count?depth=1')"
read -r reqs non errs <<<"$(load 2s '/pipe/count?depth=2' 4)"
check "recursive invokes under load: all 2xx" "0 0" "$non $errs"
[ "$reqs" -gt 100 ] && ok "recursive invokes: $reqs calls in 2s" || fail "recursive invokes in 2s" "$reqs"
check_contains "a recursive answer after the load" "200 depth 2 depth 1 " "$(http GET '/pipe/count?depth=2')"

finish
