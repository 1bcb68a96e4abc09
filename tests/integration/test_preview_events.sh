#!/usr/bin/env bash
# Events of a previewed version (docs/releases.md "Events and schedules"):
# an event pinned by its tineversion attribute (APP@N or APP@TAG) runs that
# version's matching triggers only; tine.emit from a previewed version pins
# its event to that version, so the preview's event-triggered functions run
# in the preview and live is untouched; an event pinned to a version that
# does not exist goes to the app's dead letters with a reason naming it; a
# malformed pin is refused at ingest.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
# mk DIR VERSION_TEXT: app pv whose functions note in tine.kv which
# version ran them.
mk() {
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<'YAML'
app: pv
functions:
  got: { handler: h.lua#got }
  emit: { handler: h.lua#emit }
  chain: { handler: h.lua#chain }
routes:
  - { method: GET, path: /emit, function: emit }
triggers:
  - { on: event, type: pv.ping, function: got }
  - { on: event, type: pv.chain, function: chain }
YAML
  cat >"$1/h.lua" <<LUA
local tine = require "tine"
local M = {}
local VERSION = "$2"
function M.got(event, ctx)
  tine.kv.incr("n:" .. event.id)
  tine.kv.set("got:" .. event.id, VERSION .. " " .. tostring(ctx.version))
end
function M.emit(req, ctx)
  tine.emit("pv.chain", { from = VERSION })
  return "emitted by " .. VERSION
end
function M.chain(event, ctx)
  tine.kv.incr("chain:" .. VERSION)
end
return M
LUA
}
mk "$T/v1" one
mk "$T/v2" two
check "v1 live" "deployed pv version 1" "$(run tine deploy "$T/v1")"
check_contains "v2 staged" "staged pv version 2" "$(run tine deploy --stage "$T/v2")"
ping() { # ping ID [EXTRA_JSON_ATTRS]
  post_event "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/t\",\"type\":\"pv.ping\"${2:-}}"
}

# --- Not pinned: live only.
check_contains "an event" "202" "$(ping e1)"
wait_kv 10 pv got:e1 "one 1" || true
check "not pinned: the live version's trigger ran" "one 1" "$(rkv pv got:e1)"

# --- Pinned to a stored version, and to a tag: that version only.
check_contains "an event pinned to pv@2" "202" "$(ping e2 ',"tineversion":"pv@2"')"
wait_kv 10 pv got:e2 "two 2" || true
check "pinned to pv@2: version 2's trigger ran" "two 2" "$(rkv pv got:e2)"
sleep 0.5
check "... and not live's (one run in all)" "1" "$(rkv pv n:e2)"
run tine tag pv beta 2 >/dev/null
check_contains "an event pinned to pv@beta" "202" "$(ping e3 ',"tineversion":"pv@beta"')"
wait_kv 10 pv got:e3 "two 2" || true
check "pinned to the tag: version 2's trigger ran" "two 2" "$(rkv pv got:e3)"
check_contains "pinned to the live version by number" "202" "$(ping e4 ',"tineversion":"pv@1"')"
wait_kv 10 pv got:e4 "one 1" || true
check "pinned to pv@1: live ran it" "one 1" "$(rkv pv got:e4)"

# --- tine.emit in a preview stays in the preview.
check "the preview emits" "200 emitted by two" "$(http GET /pv@2/emit)"
wait_kv 10 pv chain:two 1 || true
check "its event ran the preview's trigger" "1" "$(rkv pv chain:two)"
sleep 0.5
check "... and not live's" "" "$(rkv pv chain:one)"
check "live emits" "200 emitted by one" "$(http GET /pv/emit)"
wait_kv 10 pv chain:one 1 || true
check "live's event ran live's trigger" "1" "$(rkv pv chain:one)"
sleep 0.5
check "... and not the preview's" "1" "$(rkv pv chain:two)"

# --- Pinned to a version that does not exist: a dead letter naming it.
check_contains "an event pinned to pv@9: accepted" "202" "$(ping e9 ',"tineversion":"pv@9"')"
dead_letters() { [ "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:pv)" -ge 1 ]; }
wait_for 10 dead_letters || true
dlq=$(redis-cli -s "$T/redis.sock" XRANGE tine:dlq:pv - + | paste -sd ' ')
check_contains "... in pv's dead letters" '"id":"e9"' "$dlq"
check_contains "... with the reason" "its tineversion names pv@9: app pv has no version 9" "$dlq"
check "... and no function ran it" "" "$(rkv pv n:e9)"

# --- tine split --events: that share of events goes to the split's version.
# batch PREFIX N: N pv.ping events PREFIX-1..PREFIX-N in one append.
batch() {
  admin POST /events -H 'Content-Type: application/cloudevents-batch+json' --data-binary "$(python3 -c 'import json,sys; print(json.dumps([{"specversion":"1.0","id":"%s-%d" % (sys.argv[1], i),
    "source":"/t","type":"pv.ping"} for i in range(1, int(sys.argv[2]) + 1)]))' "$1" "$2")"
}
# tally PREFIX N: "ONE TWO RUNS": events run by v1, by v2, runs in all.
tally() {
  local one=0 two=0 runs=0 i
  for i in $(seq 1 "$2"); do
    case "$(rkv pv "got:$1-$i")" in "one 1") one=$((one + 1)) ;; "two 2") two=$((two + 1)) ;; esac
    runs=$((runs + $(rkv pv "n:$1-$i")))
  done
  echo "$one $two $runs"
}
all_ran() { [ "$(rkv pv "got:$1-$2")" != "" ]; }
check "split without --events" "pv: version 2 gets 50% of clients, the live version the rest" "$(run tine split pv 2=50)"
check_contains "200 events" "202" "$(batch plain 200)"
wait_for 30 all_ran plain 200 || true
sleep 0.5
check "a split without --events: every event on live, once" "200 0 200" "$(tally plain 200)"
check "split --events" "pv: version 2 gets 50% of clients and of events and schedule ticks, the live version the rest" \
  "$(run tine split pv 2=50 --events)"
check_contains "versions says so" "split: version 2 gets 50% of clients and of events and schedule ticks" \
  "$(run tine versions pv)"
check_contains "200 events" "202" "$(batch split 200)"
wait_for 30 all_ran split 200 || true
sleep 0.5
counts=$(tally split 200)
echo "split --events 50% over 200 events: $counts (v1 v2 runs)"
read -r n1 n2 runs <<<"$counts"
check "each event ran once, on one side" "200 200" "$((n1 + n2)) $runs"
check "about half on version 2 (5 sd: 65..135), got $n2" "yes" "$([ "$n2" -ge 65 ] && [ "$n2" -le 135 ] && echo yes || echo no)"
# The same event id again: the same side (deterministic per id).
first=$(rkv pv got:split-7)
post_event '{"specversion":"1.0","id":"split-7","source":"/t","type":"pv.ping"}' >/dev/null
again() { [ "$(rkv pv n:split-7)" = 2 ]; }
wait_for 10 again || true
check "the same event id runs on the same version again" "2 $first" "$(rkv pv n:split-7) $(rkv pv got:split-7)"
acts_ok() { [ "$(admin GET "/apps/pv/activations?function=got&limit=1000" | cut -d" " -f2- | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"activations\"]))")" -ge 400 ]; }
wait_for 15 acts_ok || true
acts=$(admin GET "/apps/pv/activations?function=got&limit=1000" | cut -d" " -f2-)
echo "$acts" >"$T/acts.json"
check "the activation records name both versions" "[1, 2]" \
  "$(python3 -c 'import json,sys; print(sorted({a["version"] for a in json.load(open(sys.argv[1]))["activations"]}))' "$T/acts.json" 2>&1)"
check_contains "--events with --clear: usage error" "--events goes with VERSION=PERCENT" \
  "$(tine split pv --clear --events 2>&1 || true)"
run tine split pv --clear >/dev/null

# --- A malformed pin: refused at ingest, naming the attribute.
check_contains "tineversion without @" "400" "$(ping bad1 ',"tineversion":"pv"')"
check_contains "... says what it expects" "attribute 'tineversion': expected APP@VERSION or APP@TAG" \
  "$(ping bad2 ',"tineversion":"@2"')"
finish
