#!/usr/bin/env bash
# Activation records are written to Redis in batches; none that a node
# answered for is lost on a clean stop, and none is written twice:
#  * a stop (SIGTERM) right after the calls: the batch still pending is
#    written before tined exits;
#  * Redis away while calls come, then back: the records that waited arrive,
#    each once, and the usage counts every call once;
#  * a stop while Redis is away: the records and usage wait in the state dir
#    (activations.spill) and the next start writes them, each once.
. "$(dirname "$0")/lib.sh"

tcp_redis
stop_node() { kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true; }

# call N: N calls of /dur/who; their invocation ids appended to $T/ids.
call() {
  for _ in $(seq "$1"); do
    curl -s -o /dev/null -D - "$URL/dur/who" | tr -d '\r' |
      awk 'tolower($1) == "x-tine-invocation-id:" {print $2}' >>"$T/ids"
  done
}
# listed: the ids of the app's records as listed, sorted.
listed() { tine --json activations dur --limit 1000 | python3 -c 'import json, sys; print("\n".join(sorted(a["id"] for a in json.load(sys.stdin)["activations"])))'; }
# same_ids: "ok" when the listing holds each called id once and nothing else,
# else what differs.
same_ids() {
  local want got
  want=$(sort "$T/ids"); got=$(listed)
  if [ "$want" = "$got" ]; then echo ok; else echo "called $(wc -l <"$T/ids"), listed $(wc -w <<<"$got"), $(diff <(echo "$want") <(echo "$got") | grep -c '^[<>]') differ"; fi
}
invocations() { R HGET "tine:usage:dur:$(date -u +%F)" 'who|1|invocations'; }

redis_up
start_node a --redis "$RURL"
make_app "$T/app" one dur
tine deploy "$T/app" >/dev/null
: >"$T/ids"

# --- 1. a stop right after the calls ------------------------------------------
call 20
stop_node
start_node b --redis "$RURL"
check "a clean stop writes the pending batch: each record once" ok "$(same_ids)"
check "usage counted once per call" 20 "$(invocations)"

# --- 2. Redis away, then back -------------------------------------------------
wait_for 5 bash -c "curl -s '$URL/metrics' | grep -q '^tine_activations_pending 0'" || true
redis_down
call 15
check_contains "records wait while redis is away" "tine_activations_pending 15" "$(curl -s "$URL/metrics")"
redis_up
wait_for 15 bash -c "curl -s '$URL/metrics' | grep -q '^tine_activations_pending 0'" || true
check "records that waited arrive, each once" ok "$(same_ids)"
check "usage counted once per call" 35 "$(invocations)"
check_contains "none dropped" "tine_activations_dropped_total 0" "$(curl -s "$URL/metrics")"

# --- 3. a stop while Redis is away --------------------------------------------
redis_down
call 12
stop_node
check_contains "the node says where they wait" "12 activation records and 1 usage counters wait in $T/b/activations.spill" \
  "$(cat "$T/b.log")"
test -s "$T/b/activations.spill" && ok "spilled to the state dir" || fail "spill file" "missing or empty"
redis_up
start_node b --redis "$RURL"
wait_for 15 bash -c "curl -s '$URL/metrics' | grep -q '^tine_activations_pending 0'" || true
check "records of a stop while redis was away arrive on the next start, each once" ok "$(same_ids)"
check "and their usage" 47 "$(invocations)"
test -e "$T/b/activations.spill" && fail "spill file removed" "still there" || ok "spill file removed once read"
check_contains "a record read back is complete" '"status":200' "$(tine --json activation "$(tail -n 1 "$T/ids")")"
stop_node
start_node b --redis "$RURL"
check "a second start writes nothing again" ok "$(same_ids)"
check "nor counts usage again" 47 "$(invocations)"
finish
