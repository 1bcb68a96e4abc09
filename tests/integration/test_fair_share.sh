#!/usr/bin/env bash
# Fair share between apps under the node-wide cap (--max-sandboxes 4): an
# app alone uses the whole cap; a second app's call is answered while the
# first holds every sandbox with long calls (its first sandbox goes past the
# cap, up to --app-reserve, and the first app gives it back as its calls
# end); with both loaded each gets half; an app's idle sandboxes stay its
# share while it holds no more than the other; without a reserve the next
# sandbox the hog frees goes to the waiting app, not to the hog's queue.
# Never a 429 for the second app. Slow calls wait in a tine.http call on a
# loopback fixture (http_fixture.py, /wait) until the test opens their gate,
# so they hold a sandbox without using a CPU.
. "$(dirname "$0")/lib.sh"

# The flag refuses bad values, naming itself.
for bad in "--app-reserve -1" "--app-reserve some" "--app-reserve 2000000"; do
  out=$(timeout 10 "$BIN/tined" $bad --state-dir "$T/x" 2>&1 || true)
  check_contains "tined $bad refused" "${bad%% *} ${bad#* }: expected a number from 0 to 1000000" "$out"
done

python3 "$SRC/tests/integration/http_fixture.py" "$T/gate.port" >"$T/gate.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$T/gate.port" || { echo "the HTTP fixture did not start"; exit 1; }
GATE=$(cat "$T/gate.port")
open_gate() { for g in "$@"; do curl -s -X POST "http://127.0.0.1:$GATE/open?gate=$g" >/dev/null; done; }

# write_app APP: slow (waits for its gate) and hi (answers at once).
write_app() {
  mkdir -p "$T/$1"
  cat >"$T/$1/tine.yaml" <<YAML
app: $1
allow_outbound: [ 127.0.0.1 ]
functions:
  slow: { handler: f.lua#slow, concurrency: 8, timeout: 50s }
  hi:   { handler: f.lua#hi }
routes:
  - { method: GET, path: /slow, function: slow }
  - { method: GET, path: /hi, function: hi }
YAML
  cat >"$T/$1/f.lua" <<LUA
local tine = require "tine"
return {
  slow = function(req)
    return tine.http.request{ url = "http://127.0.0.1:$GATE/wait?gate=" .. req.query.gate }.body
  end,
  hi = function() return "hi from $1" end,
}
LUA
}
write_app hog
write_app small

# pool APP FN EXPR: EXPR on the pool `p` of APP.FN (newest version), from
# tine ps --json; node EXPR: EXPR on the node's stats `n`.
pool() {
  tine --json ps "$1" | python3 -c '
import json, sys
ps = sorted((p for p in json.load(sys.stdin)["pools"] if p["function"] == sys.argv[1]), key=lambda p: p["version"])
p = ps[-1] if ps else {"busy": 0, "idle": 0, "queued": 0, "starting": 0}
print(eval(sys.argv[2]))' "$2" "$3"
}
node() { tine --json ps | python3 -c 'import json, sys; n = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
is() { [ "$("${@:2}")" = "$1" ]; } # is VALUE COMMAND...: the command prints VALUE
# get NAME PATH: GET in the background (its pid joins GETS), status and body
# in $T/NAME.code and $T/NAME.body; settle: waits for them.
GETS=()
get() {
  curl -s -m 60 -o "$T/$1.body" -w '%{http_code}' "$URL$2" >"$T/$1.code" &
  GETS+=($!)
}
settle() {
  for p in "${GETS[@]}"; do wait "$p" || true; done
  GETS=()
}
answered() { # answered NAME...: "STATUS BODY" of each, one per line
  for n in "$@"; do echo "$(cat "$T/$n.code" 2>/dev/null) $(cat "$T/$n.body" 2>/dev/null)"; done
}
# timed PATH: "SECONDS STATUS BODY" of a GET that gives up after 15 s.
timed() {
  curl -s -m 15 -o "$T/timed.body" -w '%{time_total} %{http_code}' "$URL$1" || true
  echo " $(cat "$T/timed.body" 2>/dev/null)"
}
within() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2"; }

start_redis
start_node a --redis "$REDIS_URL" --max-sandboxes 4
tine deploy "$T/hog" >/dev/null
tine deploy "$T/small" >/dev/null
check "the default reserve for a cap of 4 is 1" "1" "$(node 'n["app_reserve"]')"

# An app alone on the node uses the whole cap; its further calls wait (the
# reserve is only for an app holding no sandbox).
for i in 1 2 3 4; do get a$i "/hog/slow?gate=a$i"; done
wait_for 30 is 4 pool hog slow 'p["busy"]' && ok "one app alone uses the whole cap (4 busy)" ||
  fail "one app alone uses the whole cap" "$(tine ps)"
for i in 5 6; do get a$i "/hog/slow?gate=a$i"; done
wait_for 20 is 2 pool hog slow 'p["queued"]' && ok "its further calls wait in its queue" ||
  fail "its further calls wait in its queue" "$(tine --json ps hog)"
check "the cap holds for one app" "4" "$(node 'n["sandboxes"]')"

# Another app's call, while the hog's calls hold every sandbox: answered at
# once (a cold start), not after them (they wait for gates never opened yet).
read -r secs code body < <(timed /small/hi)
check "the second app is answered while the first holds the cap" "200 hi from small" "$code $body"
within "$secs" 5 && ok "within 5 s ($secs s)" || fail "the second app answered within 5 s" "$secs s"
check "its first sandbox is past the cap, by the reserve" "5" "$(node 'n["sandboxes"]')"
check "the hog still runs its four calls" "4 2" "$(pool hog slow '"%d %d" % (p["busy"], p["queued"])')"

# Both loaded: the second app's first call takes its idle sandbox's place,
# the rest wait; as the hog's calls end it gives sandboxes back until each
# has half the cap.
for i in 1 2 3 4; do get b$i "/small/slow?gate=b$i"; done
wait_for 20 is "1 3" pool small slow '"%d %d" % (p["busy"] + p["starting"], p["queued"])' &&
  ok "the second app's slow calls: one runs, three wait" ||
  fail "the second app's slow calls: one runs, three wait" "$(tine --json ps small)"
check "still one past the cap" "5" "$(node 'n["sandboxes"]')"
open_gate a1
wait_for 20 is "4 3" node '"%d %d" % (n["sandboxes"], [p["busy"] for p in n["pools"] if p["app"] == "hog"][0])' &&
  ok "the hog's first ended call gives the reserve back (4 sandboxes, 3 of the hog)" ||
  fail "the hog gives the reserve back" "$(tine ps)"
open_gate a2
wait_for 20 is "2 2" node '"%d %d" % tuple(sum(p["busy"] + p["starting"] for p in n["pools"] if p["app"] == a) for a in ("hog", "small"))' &&
  ok "both loaded: each app gets half the cap (2 and 2)" || fail "each app gets half the cap" "$(tine ps)"
check "the rest wait in their queues" "2 2" \
  "$(pool hog slow 'p["queued"]') $(pool small slow 'p["queued"]')"
open_gate a3
wait_for 20 is 1 pool hog slow 'p["queued"]' || fail "the hog's next call started" "$(tine --json ps hog)"
check "at half each, the hog keeps its sandbox for its next call" "2 2" \
  "$(node '"%d %d" % tuple(sum(p["busy"] + p["starting"] for p in n["pools"] if p["app"] == a) for a in ("hog", "small"))')"
open_gate a4 a5 a6 b1 b2 b3 b4
settle
check "every call of the hog answered" "$(printf '200 opened a%d\n' 1 2 3 4 5 6)" "$(answered a1 a2 a3 a4 a5 a6)"
check "every call of the second app answered, no 429" "$(printf '200 opened b%d\n' 1 2 3 4)" "$(answered b1 b2 b3 b4)"
check "never more than the cap once the calls ended" "4" "$(node 'n["sandboxes"]')"

# Each app holds two idle sandboxes now. The second app's are its share
# while it holds no more than the hog: the hog's new calls do not close them.
for i in 1 2 3 4; do get c$i "/hog/slow?gate=c$i"; done
wait_for 20 is "2 2" pool hog slow '"%d %d" % (p["busy"], p["queued"])' &&
  ok "the hog gets its two sandboxes, its other calls wait" ||
  fail "the hog gets its two sandboxes" "$(tine --json ps)"
check "the second app's idle sandboxes stay" "2" "$(pool small slow 'p["idle"]')"
pids=$(pool small slow '" ".join(sorted(str(s["pid"]) for s in p["sandboxes"]))')
open_gate d1
read -r secs code body < <(timed "/small/slow?gate=d1")
check "the second app's next call is answered" "200 opened d1" "$code $body"
check "by one of them (the same processes)" "$pids" "$(pool small slow '" ".join(sorted(str(s["pid"]) for s in p["sandboxes"]))')"
tine evict small >/dev/null
wait_for 20 is 4 pool hog slow 'p["busy"]' && ok "with the second app gone, the hog uses the whole cap again" ||
  fail "with the second app gone, the hog uses the whole cap again" "$(tine --json ps)"
open_gate c1 c2 c3 c4
settle
check "the hog's calls answered" "$(printf '200 opened c%d\n' 1 2 3 4)" "$(answered c1 c2 c3 c4)"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# Without a reserve the node never goes past its cap: the second app waits,
# but for the hog's next ended call only (that sandbox is given back), not
# for the hog's queue.
start_node b --redis "$REDIS_URL" --max-sandboxes 4 --app-reserve 0
for i in 1 2 3 4; do get e$i "/hog/slow?gate=e$i"; done
wait_for 30 is 4 pool hog slow 'p["busy"]' || fail "the hog holds the cap" "$(tine ps)"
for i in 5 6; do get e$i "/hog/slow?gate=e$i"; done
wait_for 20 is 2 pool hog slow 'p["queued"]' || fail "the hog's calls wait" "$(tine --json ps hog)"
get f1 /small/hi
wait_for 20 is 1 pool small hi 'p["queued"]' && ok "without a reserve the second app's call waits" ||
  fail "without a reserve the second app's call waits" "$(tine --json ps)"
check "the node stays at its cap" "4" "$(node 'n["sandboxes"]')"
check "waiting for room, in the stats" "True" "$(pool small hi 'p["waiting_for_room"]')"
open_gate e1
wait_for 20 test -s "$T/f1.code" && ok "the hog's first ended call makes room for it" ||
  fail "the hog's first ended call makes room for it" "$(tine --json ps)"
check "the second app answered" "200 hi from small" "$(answered f1)"
check "the hog's queue waited" "3 2" "$(pool hog slow '"%d %d" % (p["busy"], p["queued"])')"
open_gate e2 e3 e4 e5 e6
settle
check "the hog's calls answered" "$(printf '200 opened e%d\n' 1 2 3 4 5 6)" "$(answered e1 e2 e3 e4 e5 e6)"
finish
