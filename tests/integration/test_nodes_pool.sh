#!/usr/bin/env bash
# The node's sandboxes in its heartbeat (GET /_tine/v1/nodes): "pool" has
# them now by state (starting, warm idle, busy), "pool_history" a sample
# every 5 s of the last 5 minutes, so the console's chart of a node starts
# with what came before it was opened.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/p"
cat >"$T/p/tine.yaml" <<'YAML'
app: p
functions:
  spin: { handler: p.lua#spin, timeout: 30s }
routes:
  - { method: GET, path: /spin, function: spin }
YAML
cat >"$T/p/p.lua" <<'LUA'
return { spin = function(req)
  -- busy for 2 to 3 s of wall clock (os.clock's CPU time stretches under load)
  local t = os.time() + tonumber(req.query.s or "0")
  while os.time() < t do end
  return "done"
end }
LUA
tine deploy "$T/p" >/dev/null
nodes() { admin GET /nodes | cut -d' ' -f2-; }
pool_of() { pyget "$(nodes)" '" ".join(str(d["nodes"][0]["pool"][k]) for k in ("starting", "idle", "busy"))'; }
pool_within_6s() { # pool_within_6s WANT: the pool once it is WANT (heartbeats come every second), else the last seen
  local got=missing
  for _ in $(seq 1 30); do
    got=$(pool_of)
    [ "$got" = "$1" ] && break
    sleep 0.2
  done
  echo "$got"
}

wait_for 10 sh -c "curl -s -H 'Authorization: Bearer $TOKEN' $URL/_tine/v1/nodes | grep -q pool_history" || true
check "no sandbox yet" "0 0 0" "$(pool_of)"
curl -s "$URL/p/spin?s=3" >"$T/spin.out" &
SPIN=$!
check "a busy sandbox while the call runs" "0 0 1" "$(pool_within_6s "0 0 1")"
wait "$SPIN"
check "the call answered" "done" "$(cat "$T/spin.out")"
check "then a warm idle one" "0 1 0" "$(pool_within_6s "0 1 0")"
sleep 5.5 # one more sample
h=$(nodes)
check "samples every 5 s" "5000" "$(pyget "$h" 'd["nodes"][0]["pool_history"]["step_ms"]')"
check "as many times as counts of each state" "True" "$(pyget "$h" 'len({len(d["nodes"][0]["pool_history"][k]) for k in ("t", "starting", "idle", "busy")}) == 1 and len(d["nodes"][0]["pool_history"]["t"]) >= 2')"
check "times in unix seconds, 5 s or more apart, oldest first" "True" "$(pyget "$h" 'all(b - a >= 5 for a, b in zip(d["nodes"][0]["pool_history"]["t"], d["nodes"][0]["pool_history"]["t"][1:])) and abs(d["nodes"][0]["pool_history"]["t"][-1] - __import__("time").time()) < 10')"
check "the warm idle sandbox sampled" "1" "$(pyget "$h" 'd["nodes"][0]["pool_history"]["idle"][-1]')"
check "no sandbox in the first sample" "0 0 0" "$(pyget "$h" '" ".join(str(d["nodes"][0]["pool_history"][k][0]) for k in ("starting", "idle", "busy"))')"
finish
