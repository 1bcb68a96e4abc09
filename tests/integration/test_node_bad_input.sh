#!/usr/bin/env bash
# Node functions that fail: a module that cannot be loaded (an error, a
# syntax error, a missing export, memory exhausted, a loop), a handler that
# runs out of memory, crashes or exits, a Node binary that cannot start.
# Each costs only its own sandbox, the caller gets a clear error naming the
# function, nothing is restarted in a loop, and another app keeps answering.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

mkdir -p "$T/ok"
cat >"$T/ok/tine.yaml" <<'YAML'
app: ok
functions:
  hi: { runtime: node, handler: ok.js#hi }
routes:
  - { method: GET, path: /hi, function: hi }
YAML
printf 'exports.hi = () => "still here";\n' >"$T/ok/ok.js"
tine deploy "$T/ok" >/dev/null
alive() { check "$1: another app answers" "200 still here" "$(http GET /ok/hi)"; }
alive "at the start"

mkdir -p "$T/bad"
cat >"$T/bad/tine.yaml" <<'YAML'
app: bad
defaults: { runtime: node, memory: 64, timeout: 1s }
functions:
  good:    { handler: good.js#handle }
  throws:  { handler: throws.js#handle }
  syntax:  { handler: syntax.js#handle }
  noexp:   { handler: good.js#handel }
  hog:     { handler: hog.js#handle }
  loops:   { handler: loops.js#handle }
  oom:     { handler: good.js#oom }
  crash:   { handler: good.js#crash }
  exits:   { handler: good.js#exits }
YAML
cat >"$T/bad/good.js" <<'JS'
exports.handle = () => 'good';
// handel: mentioned here so that the deploy's check lets it through
exports.oom = (req) => {
  if (req && req.small) return 'served after running out of memory';
  const hog = [];
  for (;;) hog.push(new Array(1 << 20).fill(7));
};
exports.crash = () => process.abort();
exports.exits = () => process.exit(3);
JS
printf 'throw new RangeError("this module refuses to load");\nexports.handle = () => 1;\n' >"$T/bad/throws.js"
printf 'exports.handle = () => {\n  return 1 +;\n};\n' >"$T/bad/syntax.js"
printf 'const hog = []; for (;;) hog.push(new Array(1 << 20).fill(1));\nexports.handle = () => 1;\n' >"$T/bad/hog.js"
printf 'for (;;) {}\nexports.handle = () => 1;\n' >"$T/bad/loops.js"
tine deploy "$T/bad" >/dev/null
inv() { invoke_app bad "$@"; }
check "the module that loads serves" "200|good" "$(inv good)"
check "a module that throws at load: 500 naming the function and the error" \
  "500|function throws failed to load: RangeError: this module refuses to load (at /app/throws.js:1)" "$(inv throws)"
check_contains "in the activation's logs too" "function throws failed to load: RangeError" \
  "$(logs_of bad throws RangeError)"
check_contains "a syntax error: 500 naming the function" "500|function syntax failed to load: SyntaxError: Unexpected token" \
  "$(inv syntax)"
check "an export the module lacks: 500 naming it" \
  "500|function noexp failed to load: module 'good.js' exports no function 'handel' (it exports: crash, exits, handle, oom)" \
  "$(inv noexp)"
check "memory exhausted at load: 500 naming the function" "500|function hog failed to load: out of memory: V8 could not grow the heap" "$(inv hog)"
check "a loop at load: 504 naming the function" "504|the sandbox of loops did not finish loading within 1000 ms" \
  "$(inv loops)"
check "the good module still serves" "200|good" "$(inv good)"
alive "after the broken modules"

check "a handler that runs out of memory: 500 naming it" "500|function oom ran out of memory (memory: 64 MB)" "$(inv oom)"
check "its function serves again" "200|served after running out of memory" "$(inv oom '{"small":true}')"
check_contains "a handler that aborts: 502" "502|the sandbox of crash crashed" "$(inv crash)"
check_contains "a handler that exits: 502" "502|the sandbox of exits crashed" "$(inv exits)"
check "the version serves on" "200|good" "$(inv good)"
alive "after the crashes"

# A failed load is not retried in the background: the warm sandboxes of a
# function whose load failed are not refilled, and nothing loops.
n1=$(grep -c "function loops failed to load\|the sandbox of loops did not finish loading" "$T/a.log" || true)
sleep 2
n2=$(grep -c "function loops failed to load\|the sandbox of loops did not finish loading" "$T/a.log" || true)
check "no start is retried without a call" "$n1" "$n2"

check_json_log "$T/a.log"

# A node that cannot start (a second tined on the same Redis, its node
# missing): the Node host says why; the next call within the backoff fails
# at once, without a new host.
TINE_NODE=/nonexistent/node start_node b --redis "$REDIS_URL"
check "no node binary: 503 naming why" \
  "503|cannot start the Node host: cannot run /nonexistent/node (TINE_NODE): No such file or directory (app ok version 1)" \
  "$(invoke_app ok hi)"
t1=$(date +%s%N)
check_contains "the next call: the same error" "503|cannot start the Node host" "$(invoke_app ok hi)"
fast=$(( ($(date +%s%N) - t1) / 1000000 ))
[ "$fast" -lt 500 ] && ok "at once ($fast ms)" || fail "at once" "it took $fast ms"
check "one host started, not a restart loop" 1 "$(grep -v '"invocation"' "$T/b.log" | grep -c "cannot start the Node host.*(app ok version 1)" || true)"
check_json_log "$T/b.log"
finish
