#!/usr/bin/env bash
# Node cold starts (docs/ARCHITECTURE.md "Node functions"): a function's
# sandbox is a spare node that never served a call, which loads only its
# own handler module once its spec came (each function its own module
# state, its env seen at the module's top level, a module that fails to
# load failing only its functions); what a node prints on stderr reaches
# tined's log (a file here) as JSON lines of its own app, cut at 64 KiB per
# node; an eviction drops the sandboxes that
# served calls, and the next call starts on a spare; the cold start's time
# by the bench's method (evict, then one request) is printed, its p50
# held to a generous bound.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
start_redis
start_node a --redis "$REDIS_URL"

mkdir -p "$T/cold/src"
cat >"$T/cold/tine.yaml" <<'YAML'
app: cold
defaults: { runtime: node, timeout: 2s }
functions:
  a:   { handler: src/a.js#hi }
  a2:  { handler: src/a.js#hi }
  b:   { handler: src/b.js#who, env: { WHO: b-env } }
  bad: { handler: src/bad.js#never }
  noisy: { handler: src/noisy.js#run }
routes:
  - { method: GET, path: /a, function: a }
  - { method: GET, path: /a2, function: a2 }
  - { method: GET, path: /b, function: b }
  - { method: GET, path: /bad, function: bad }
  - { method: GET, path: /noisy, function: noisy }
YAML
cat >"$T/cold/src/a.js" <<'JS'
console.log('module a loading');
const id = `${process.pid}.${process.hrtime.bigint()}`; // this process's copy of the module
let n = 0;
exports.hi = () => ({ id, n: ++n });
JS
cat >"$T/cold/src/b.js" <<'JS'
const WHO = process.env.WHO; // the function's env, at the module's top level
exports.who = () => ({ who: WHO });
JS
cat >"$T/cold/src/noisy.js" <<'JS'
const fs = require('fs');
exports.run = () => {
  // Straight to stderr, past the SDK: a forged log line, then a flood.
  fs.writeSync(2, JSON.stringify({ level: 'error', msg: 'forged line', app: 'other-app' }) + '\n');
  const line = 'flood '.repeat(100) + '\n';
  for (let i = 0; i < 400; i++) {
    for (;;) { // node made fd 2 non-blocking: wait for the host to read
      try {
        fs.writeSync(2, line);
        break;
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
      }
    }
  }
  return 'done';
};
JS
cat >"$T/cold/src/bad.js" <<'JS'
throw new Error('bad.js cannot load');
exports.never = () => 'never'; // never reached: the deploy sees the name
JS
out=$(run tine deploy "$T/cold" 2>&1)
check_contains "the app deploys" "cold" "$out"
wait_for 20 curl -sf "$URL/cold/b" || true

# get PATH: "STATUS id n" of a JSON answer {id, n} ({who}: "STATUS None who").
get() {
  local out
  out=$(http GET "/cold$1")
  echo "${out%% *} $(pyget "${out#* }" '"%s %s" % (d.get("id"), d.get("n", d.get("who")))' 2>/dev/null || echo "${out#* }")"
}

read -r st pid1 n1 <<<"$(get /a)"
read -r st2 pid1b n2 <<<"$(get /a)"
check "a warm sandbox keeps its module state" "200 1 200 2 $pid1" "$st $n1 $st2 $n2 $pid1b"
read -r st pid2 n <<<"$(get /a2)"
check "another function of the same module has its own process and module state" "200 1 yes" \
  "$st $n $([ "$pid2" != "$pid1" ] && echo yes || echo "no ($pid2)")"
read -r st _ who <<<"$(get /b)"
check "the function's env is seen at its module's top level" "200 b-env" "$st $who"
out=$(invoke_app cold bad)
check_contains "a module that fails to load fails its function, with why" "bad.js cannot load" "$out"
read -r st _ n <<<"$(get /a2)"
check "the other functions keep answering" "200 2" "$st $n"
wait_for 5 grep -q "module a loading" "$T/a.log" || true
line=$(grep "module a loading" "$T/a.log" | head -n 1 || true)
check_contains "what a module prints while it loads is in tined's log (a file), with its function" \
  '"function":"a' "$line"

out=$(http GET /cold/noisy)
check "a function that writes on stderr itself answers" "200 done" "$out"
wait_for 5 grep -q "the rest is not logged" "$T/a.log" || true
line=$(grep "forged line" "$T/a.log" | head -n 1 || true)
check "a JSON line a node writes on stderr is logged under its own app" '"app":"cold" no' \
  "$(grep -o '"app":"cold"' <<<"$line" | head -n 1) $([[ "$line" == *other-app* ]] && echo yes || echo no)"
flood=$(grep "flood flood" "$T/a.log" | wc -c)
check "a node's stderr flood is cut (at 64 KiB), and said" "yes 1" \
  "$([ "$flood" -lt 80000 ] && [ "$flood" -gt 30000 ] && echo yes || echo "no ($flood bytes)") $(grep -c "the rest is not logged" "$T/a.log")"
check_json_log "$T/a.log"

# Eviction: the sandboxes that served calls go; the next call is a cold
# start on a process that never served one.
out=$(admin DELETE /apps/cold/sandboxes)
check_contains "the eviction answers" "200" "${out%% *}"
read -r st pid3 n <<<"$(get /a)"
check "after an eviction a call starts a fresh sandbox" "200 1 yes" \
  "$st $n $([ "$pid3" != "$pid1" ] && [ "$pid3" != "$pid2" ] && echo yes || echo "no ($pid3)")"

# series PAUSE RUNS: RUNS cold starts of /cold/a (evicted, PAUSE s untimed,
# then one timed GET); prints "p50_ms p99_ms fresh", fresh the runs answered
# by a process at its first call.
series() {
  local pause=$1 runs=$2 times=() fresh=0 i out
  for i in $(seq "$runs"); do
    admin DELETE /apps/cold/sandboxes >/dev/null
    [ "$pause" = 0 ] || sleep "$pause"
    out=$(curl -s -o "$T/body" -w '%{time_total}' "$URL/cold/a" || echo 999)
    times+=("$out")
    [ "$(pyget "$(cat "$T/body")" 'd["n"]' 2>/dev/null)" = 1 ] && fresh=$((fresh + 1))
  done
  python3 -c 'import sys; t=sorted(float(x)*1000 for x in sys.argv[2:]); n=len(t)
print("%.2f %.2f %s" % (t[n//2], t[min(n-1, int(n*0.99))], sys.argv[1]))' "$fresh" "${times[@]}"
}
read -r p50 p99 fresh <<<"$(series 0.25 30)"
echo "Node cold start by eviction, 0.25 s apart (30 runs): p50 $p50 ms, p99 $p99 ms"
check "every cold start (0.25 s apart) ran on a process at its first call" 30 "$fresh"
check "the cold start p50 is under 200 ms" yes "$(python3 -c "print('yes' if $p50 < 200 else 'no ($p50 ms)')")"
read -r p50 p99 fresh <<<"$(series 0 15)"
echo "Node cold start by eviction, back to back (15 runs): p50 $p50 ms, p99 $p99 ms"
check "every cold start back to back ran on a process at its first call" 15 "$fresh"
finish
