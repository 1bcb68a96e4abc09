#!/usr/bin/env bash
# Automatic rollouts (docs/releases.md): a deploy of a manifest with a
# rollout block over a live version starts a split of its first step and
# advances each interval while the new version's errors and p99 stay within
# bounds; on a breach (errors, and separately slowness) the split returns to
# the previous version at once (time from breach to rollback measured);
# pause, resume, abort; promote and split refused while one runs; the node
# restarted mid-rollout carries on; a bad rollout block is refused.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
LOAD=$SRC/tests/integration/load_clients.py

# rollout_app DIR TEXT ROLLOUT [who.lua body]: make_app with a rollout block.
rollout_app() {
  make_app "$1" "$2"
  printf 'rollout: %s\n' "$3" >>"$1/tine.yaml"
}
# state: the rollout's state.
state() { pyget "$(tine --json rollout status demo 2>/dev/null || echo '{}')" 'd.get("state")'; }
live() { pyget "$(tine --json versions demo)" 'd["live"]'; }
# deployed OUTPUT: the version number a deploy printed.
deployed() { sed -n 's/^deployed demo version \([0-9]*\).*/\1/p' <<<"$1"; }

make_app "$T/v1" one
check "v1 deployed" "deployed demo version 1" "$(run tine deploy "$T/v1")"

# --- bad input ---------------------------------------------------------------------
rollout_app "$T/bad" bad '{ steps: [5, 50], interval: 2s }'
check_contains "a rollout whose last step is not 100" "rollout.steps: the last step must be 100" "$(tine deploy "$T/bad" 2>&1 || true)"
rollout_app "$T/bad" bad '{ steps: [5, 100], interval: 2s, max_error_rate: 200% }'
check_contains "an error rate over 100%" "rollout.max_error_rate: '200%' is out of range 0%..100%" "$(tine deploy "$T/bad" 2>&1 || true)"
check "live untouched by them" "1" "$(live)"
check_contains "status of an app never rolled out" "demo has had no rollout" "$(tine rollout status demo 2>&1 || true)"
check_contains "rollout: an unknown command" "unknown rollout command 'go'" "$(tine rollout go demo 2>&1 || true)"

# --- a rollout passing every step ----------------------------------------------------
rollout_app "$T/v2" two '{ steps: [20, 50, 100], interval: 2s, max_error_rate: 1%, max_p99: 250ms, min_requests: 20 }'
check "deploy starts the rollout" "deployed demo version 2: rolling out, 20% of clients first (tine rollout status demo)" "$(run tine deploy "$T/v2")"
check "the old version stays live meanwhile" "1" "$(live)"
python3 "$LOAD" "$URL" /demo/who 30 "$T/pass.log" &
loadpid=$!
wait_for 20 sh -c "'$BIN/tine' --url '$URL' --token '$TOKEN' --json rollout status demo | grep -q '\"percent\": *50'" || true
check_contains "it advanced to 50%" "[50%]" "$(run tine rollout status demo)"
check_contains "promote while it runs is refused" "a rollout of demo version 2 is under way: nothing made live" "$(tine promote demo 1 2>&1 || true)"
check_contains "split while it runs is refused" "a rollout of demo is under way" "$(tine split demo 1=10 2>&1 || true)"
check_contains "a plain deploy while it runs is refused" "a rollout of demo version 2 is under way" "$(tine deploy --force "$T/v1" 2>&1 || true)"
wait_for 20 sh -c "[ \"\$('$BIN/tine' --url '$URL' --token '$TOKEN' --json rollout status demo | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = passed ]" || true
touch "$T/STOP"; wait "$loadpid" || true; rm -f "$T/STOP"
check "the rollout passed every step" "passed" "$(state)"
check "version 2 is live" "2" "$(live)"
check "its split ended" "None" "$(pyget "$(run tine --json versions demo)" 'd["split"]')"
status=$(run tine rollout status demo)
check_contains "status: the decision" "every step passed: version 2 is live" "$status"
check_contains "status: counts per version" "2 (new)" "$status"
served=$(awk '{print $2}' "$T/pass.log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
echo "answers during the passing rollout (count version): $served"
check "no failed answer during it" "0" "$(awk '$3 != 200' "$T/pass.log" | wc -l)"

# --- a rollout failing by errors: rolled back at once ----------------------------------
rollout_app "$T/v3" three '{ steps: [20, 100], interval: 30s, max_error_rate: 1%, min_requests: 20 }'
sed -i 's/^function M.who(req, ctx) return VERSION .. " " .. tostring(ctx.version) end/function M.who(req, ctx) error("v3 is broken") end/' "$T/v3/who.lua"
out=$(run tine deploy "$T/v3")
V3=$(deployed "$out")
check_contains "v3 (broken) rolls out" "deployed demo version $V3: rolling out, 20%" "$out"
python3 "$LOAD" "$URL" /demo/who 20 "$T/errors.log" &
loadpid=$!
wait_for 20 sh -c "[ \"\$('$BIN/tine' --url '$URL' --token '$TOKEN' --json rollout status demo | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = failed ]" || true
sleep 1
touch "$T/STOP"; wait "$loadpid" || true; rm -f "$T/STOP"
check "the rollout failed" "failed" "$(state)"
check_contains "with the reason" "error rate 100.00%" "$(pyget "$(run tine --json rollout status demo)" 'd["reason"]')"
check "version 2 stays live" "2" "$(live)"
check "the split returned to version 2" "None" "$(pyget "$(run tine --json versions demo)" 'd["split"]')"
# Breach: the answer that gave v3 its min_requests-th (20th) error;
# rollback: when the driver ended the split (ended_ms of the rollout, the
# same wall clock). After it every answer comes from version 2.
ended=$(pyget "$(run tine --json rollout status demo)" 'd["ended_ms"]')
rb=$(python3 - "$T/errors.log" "$V3" "$ended" <<'PY'
import sys
rows = sorted((int(t), v, int(s)) for t, v, s in (l.split() for l in open(sys.argv[1])))
v3 = [r for r in rows if r[1] == sys.argv[2]]
ended = int(sys.argv[3])
breach = v3[19][0] if len(v3) >= 20 else None
last = v3[-1][0] if v3 else ended
after = [r for r in rows if r[0] > max(last, ended) + 50]
print(ended - breach if breach is not None else -1, len(v3), sum(1 for r in after if r[1] != "2"), len(after))
PY
)
read -r rb_ms n3 stray after <<<"$rb"
echo "breach to rollback (errors): ${rb_ms} ms; v3 answered $n3 requests; $after answers after, $stray of them not from version 2"
check "breach to rollback under 1 s (errors: ${rb_ms} ms)" "yes" "$([ "$rb_ms" -ge 0 ] && [ "$rb_ms" -lt 1000 ] && echo yes || echo no)"
check "every answer after the rollback from version 2" "0" "$stray"

# --- a rollout failing by slowness -----------------------------------------------------------
rollout_app "$T/v4" four '{ steps: [30, 100], interval: 30s, max_p99: 250ms, min_requests: 10 }'
# 300 ms of CPU per call, well inside its timeout (a timeout would count as an error).
sed -i 's/^function M.who(req, ctx) return VERSION .. " " .. tostring(ctx.version) end/function M.who(req, ctx) local t = os.clock() + 0.3 while os.clock() < t do end return VERSION .. " " .. tostring(ctx.version) end/' "$T/v4/who.lua"
sed -i 's/who: { handler: who.lua#who, timeout: 2s }/who: { handler: who.lua#who, timeout: 20s }/' "$T/v4/tine.yaml"
out=$(run tine deploy "$T/v4")
V4=$(deployed "$out")
check_contains "v4 (slow) rolls out" "deployed demo version $V4: rolling out, 30%" "$out"
python3 "$LOAD" "$URL" /demo/who 30 "$T/slow.log" --threads 4 &
loadpid=$!
wait_for 30 sh -c "[ \"\$('$BIN/tine' --url '$URL' --token '$TOKEN' --json rollout status demo | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = failed ]" || true
sleep 1
touch "$T/STOP"; wait "$loadpid" || true; rm -f "$T/STOP"
check "the slow rollout failed" "failed" "$(state)"
check_contains "with the reason" "is over max_p99 250ms" "$(pyget "$(run tine --json rollout status demo)" 'd["reason"]')"
check "version 2 stays live" "2" "$(live)"
ended=$(pyget "$(run tine --json rollout status demo)" 'd["ended_ms"]')
rb=$(python3 - "$T/slow.log" "$V4" "$ended" <<'PY'
import sys
rows = sorted((int(t), v, int(s)) for t, v, s in (l.split() for l in open(sys.argv[1])))
v4 = [r for r in rows if r[1] == sys.argv[2]]
breach = v4[9][0] if len(v4) >= 10 else None
print(int(sys.argv[3]) - breach if breach is not None else -1, len(v4))
PY
)
read -r rb_ms n4 <<<"$rb"
echo "breach to rollback (slowness): ${rb_ms} ms from v4's 10th answer to the split's end; v4 answered $n4 requests (calls in flight finish after it)"
check "breach to rollback under 1 s (slowness: ${rb_ms} ms)" "yes" "$([ "$rb_ms" -ge 0 ] && [ "$rb_ms" -lt 1000 ] && echo yes || echo no)"

# --- pause, resume, abort ---------------------------------------------------------------------
rollout_app "$T/v5" five '{ steps: [20, 50, 100], interval: 2s, min_requests: 5 }'
check_contains "v5 rolls out" ": rolling out, 20%" "$(run tine deploy "$T/v5")"
check_contains "pause" "paused" "$(run tine rollout pause demo)"
check_contains "pausing again is refused" "is paused: it cannot be paused" "$(tine rollout pause demo 2>&1 || true)"
# Prune while it is paused: the rollout's versions (the new one, and the
# live one it replaces) stay; older ones go.
ro=$(run tine --json rollout status demo)
pruned=$(run tine --json versions prune demo --keep 0)
check "prune --keep 0 during a rollout: its versions kept, others pruned" "True True True" \
  "$(pyget "$pruned" "str($(pyget "$ro" 'd["version"]') in d['kept']) + ' ' + str($(pyget "$ro" 'd["from"]') in d['kept']) + ' ' + str(len(d['pruned']) > 0)")"
python3 "$LOAD" "$URL" /demo/who 3 "$T/paused.log"
check "paused: still at step 1 after its interval" "1 paused" "$(pyget "$(run tine --json rollout status demo)" 'str(d["step"]) + " " + d["state"]')"
check_contains "resume" "running" "$(run tine rollout resume demo)"
check_contains "resuming a running one is refused" "is running: it cannot be resumed" "$(tine rollout resume demo 2>&1 || true)"
check_contains "abort" "aborted" "$(run tine rollout abort demo)"
check "aborted: version 2 stays live" "2" "$(live)"
check "aborted: no split" "None" "$(pyget "$(run tine --json versions demo)" 'd["split"]')"
c=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL" /demo/who 200 --header x-tine-client)
check "aborted: every client on version 2" '{"2": 200}' "$c"
check_contains "aborting again is refused" "is aborted: it cannot be aborted" "$(tine rollout abort demo 2>&1 || true)"

# --- the node restarted mid-rollout ---------------------------------------------------------------
rollout_app "$T/v6" six '{ steps: [20, 50, 100], interval: 2s, min_requests: 5 }'
out=$(run tine deploy "$T/v6")
V6=$(deployed "$out")
check_contains "v6 rolls out" "deployed demo version $V6: rolling out, 20%" "$out"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
start_node a --redis "$REDIS_URL"
check "after the restart the rollout is still running" "running" "$(state)"
python3 "$LOAD" "$URL" /demo/who 30 "$T/restart.log" &
loadpid=$!
wait_for 25 sh -c "[ \"\$('$BIN/tine' --url '$URL' --token '$TOKEN' --json rollout status demo | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = passed ]" || true
touch "$T/STOP"; wait "$loadpid" || true; rm -f "$T/STOP"
check "the restarted node carried the rollout through" "passed" "$(state)"
check "version $V6 is live" "$V6" "$(live)"

# --- counters per version ---------------------------------------------------------------------------
counters=$(admin GET /apps/demo/counters)
check_contains "counters: version $V6 answered requests on this node" "\"version\":$V6,\"requests\":" "$(tr -d ' ' <<<"$counters")"
metrics=$(curl -s "$URL/metrics")
check_contains "/metrics: requests per version" "tine_version_requests_total{app=\"demo\",version=\"$V6\"}" "$metrics"
check_contains "/metrics: latency histogram per version" "tine_version_duration_seconds_bucket{app=\"demo\",version=\"$V6\",le=\"+Inf\"}" "$metrics"

audit=$(admin GET '/audit?limit=1000')
for action in rollout.pause rollout.resume rollout.abort; do
  check_contains "audit: $action" "\"action\":\"$action\"" "$audit"
done
finish
