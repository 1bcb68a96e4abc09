#!/usr/bin/env bash
# A Redis that stops answering (SIGSTOP: the connections stay open, nothing
# comes back, as with a hung server or a network that drops packets) must
# not stall the node: its loop never waits on Redis, so warm requests to a
# route that needs no Redis keep their latency while Redis is frozen, and
# everything works again once it answers. One node on TCP, a rollout-free
# app; requests every 50 ms for 6 s of freeze, the slowest must stay under
# 500 ms (before the rollout tick went asynchronous: ~2 s stalls, the sync
# connection's read timeout, every ~4 s).
. "$(dirname "$0")/lib.sh"

RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
PIDS+=($REDIS_PID)
wait_for 10 redis-cli -p "$RPORT" ping || { echo "redis did not start"; exit 1; }
at_exit kill -CONT "$REDIS_PID"

start_node a --redis "redis://127.0.0.1:$RPORT"
# what runs on a node besides requests: a schedule, an event trigger, a
# namespace's quotas (settled every 250 ms), activation records
make_app "$T/app" one stall
cat >>"$T/app/tine.yaml" <<'YAML'
triggers:
  - { on: schedule, cron: "@every 1s", function: who }
  - { on: event, type: stall.test, function: who }
YAML
check "deploy" "deployed stall version 1" "$(tine deploy "$T/app")"
tine quota set default --concurrency 50 --per-minute 100000 >/dev/null || fail "quota set" "$(tine quota set default --concurrency 50 2>&1)"
check "warm before" "one 1" "$(curl -s "$URL/stall/who")"

# times N requests, one each 50 ms; prints the slowest in ms and how many failed
probe() {
  python3 - "$URL/stall/who" "$1" <<'PY'
import sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
worst, bad = 0.0, 0
for i in range(n):
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            if r.read() != b"one 1": bad += 1
    except Exception:
        bad += 1
    worst = max(worst, time.monotonic() - t)
    time.sleep(0.05)
print(int(worst * 1000), bad)
PY
}

read -r worst bad <<<"$(probe 20)"
echo "# before the freeze: slowest ${worst} ms"
kill -STOP "$REDIS_PID"
read -r worst bad <<<"$(probe 110)"
kill -CONT "$REDIS_PID"
echo "# while redis was frozen: slowest ${worst} ms, ${bad} failed"
[ "$bad" = 0 ] && ok "no request failed while redis was frozen" || fail "requests while frozen" "$bad failed"
[ "$worst" -lt 2500 ] && ok "the slowest request while redis was frozen took ${worst} ms (< 2500)" \
  || fail "latency while frozen" "the slowest took ${worst} ms: the loop waited on redis"

# and after: a deploy goes through, kv works
make_app "$T/app2" two stall
wait_for 15 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' deploy '$T/app2' | grep -q 'version 2'" \
  && ok "a deploy after the freeze" || fail "deploy after the freeze" "$(tine deploy "$T/app2" 2>&1)"
wait_for 10 bash -c "[ \"\$(curl -s '$URL/stall/who')\" = 'two 2' ]" \
  && ok "the new version serves" || fail "after the freeze" "$(curl -s "$URL/stall/who")"
finish
