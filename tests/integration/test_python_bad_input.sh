#!/usr/bin/env bash
# Python functions that fail: a module that cannot be imported (an error,
# a syntax error, memory exhausted, a fork bomb), one that never finishes
# importing or kills its interpreter, a handler that runs out of memory or
# crashes. Each costs only its sandbox or its version's zygote, the caller
# gets a clear error naming the function, the zygote is not restarted in a
# loop, and another app keeps answering.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

# An app that must keep answering throughout.
mkdir -p "$T/ok"
cat >"$T/ok/tine.yaml" <<'YAML'
app: ok
functions:
  hi: { runtime: python, handler: ok.py#hi }
routes:
  - { method: GET, path: /hi, function: hi }
YAML
printf 'def hi(req, ctx):\n    return "still here"\n' >"$T/ok/ok.py"
tine deploy "$T/ok" >/dev/null
alive() { check "$1: another app answers" "200 still here" "$(http GET /ok/hi)"; }
alive "at the start"

# Modules that fail to import, beside one that works: the version's zygote
# starts; only the functions of the broken modules fail, each naming why.
mkdir -p "$T/bad"
cat >"$T/bad/tine.yaml" <<'YAML'
app: bad
defaults: { runtime: python, memory: 64 }
functions:
  good:    { handler: good.py#handle }
  raises:  { handler: raises.py#handle }
  syntax:  { handler: syntax.py#handle }
  hog:     { handler: hog.py#handle }
  forks:   { handler: forks.py#handle }
  oom:     { handler: good.py#oom }
  crash:   { handler: good.py#crash }
  exits:   { handler: good.py#exits }
YAML
cat >"$T/bad/good.py" <<'PY'
import os
def handle(req, ctx):
    return "good"
def oom(req, ctx):
    if req is not None and req.get("small"):
        return "served after running out of memory"
    hog = []
    while True:
        hog.append(bytearray(16 * 1024 * 1024))
def crash(req, ctx):
    os.abort()
def exits(req, ctx):
    os._exit(3)
PY
printf 'raise RuntimeError("this module refuses to load")\ndef handle(req, ctx): pass\n' >"$T/bad/raises.py"
printf 'def handle(req, ctx)\n    return 1\n' >"$T/bad/syntax.py"
printf 'HOG = bytearray(4 << 30)\ndef handle(req, ctx): pass\n' >"$T/bad/hog.py"
cat >"$T/bad/forks.py" <<'PY'
import os
kids = 0
try:
    while True:
        if os.fork() == 0:
            import time
            time.sleep(600)
        kids += 1
except OSError as e:
    raise RuntimeError("forked %d, then %s" % (kids, e))
def handle(req, ctx): pass
PY
tine deploy "$T/bad" >/dev/null
inv() { # inv FN [JSON]: prints "STATUS|ERROR or BODY" of an admin invoke of app bad
  invoke_app bad "$@"
}
check "the module that loads serves" "200|good" "$(inv good)"
check "a module that raises at import: 500 naming the function and the error" \
  "500|function raises failed to load: RuntimeError: this module refuses to load (at /app/raises.py:1)" \
  "$(inv raises)"
check_contains "in the activation's logs too" "function raises failed to load: RuntimeError" \
  "$(logs_of bad raises RuntimeError)"
check_contains "a syntax error names the line" "500|function syntax failed to load: SyntaxError: expected ':' (syntax.py, line 1)" \
  "$(inv syntax)"
check "memory exhausted at import: MemoryError" "500|function hog failed to load: MemoryError: out of memory (at /app/hog.py:1)" \
  "$(inv hog)"
check_contains "a fork bomb at import stops at the process limit" "500|function forks failed to load: RuntimeError: forked" \
  "$(inv forks)"
check "the good module still serves" "200|good" "$(inv good)"
alive "after the broken modules"

out=$(inv oom)
check "a handler that runs out of memory: 500 naming it" "500|function oom ran out of memory (memory: 64 MB)" "$out"
check "its function serves again" "200|served after running out of memory" "$(inv oom '{"small":true}')"
out=$(inv crash)
check_contains "a handler that aborts: 502" "502|the sandbox of crash crashed" "$out"
out=$(inv exits)
check_contains "a handler that exits: 502" "502|the sandbox of exits crashed" "$out"
check "the version serves on" "200|good" "$(inv good)"
alive "after the crashes"

# A module that never finishes importing: the zygote is killed at the
# import limit and the functions fail with why; the next call within the
# backoff fails at once, without a new zygote.
mkdir -p "$T/loop"
cat >"$T/loop/tine.yaml" <<'YAML'
app: loop
defaults: { runtime: python, timeout: 1s }
functions:
  f: { handler: fine.py#handle }
  g: { handler: loops.py#handle }
YAML
printf 'def handle(req, ctx):\n    return "fine"\n' >"$T/loop/fine.py"
printf 'while True:\n    pass\ndef handle(req, ctx): pass\n' >"$T/loop/loops.py"
tine deploy "$T/loop" >/dev/null
out=$(invoke_app loop f)
t1=$(date +%s%N)
check "a loop at import: 504 naming the module" \
  "504|the Python zygote of loop version 1 did not finish importing within 3000 ms (it was importing loops.py); killed" "$out"
out=$(invoke_app loop f)
t2=$(date +%s%N)
check_contains "the next call fails with the same error" "504|the Python zygote of loop version 1 did not finish" "$out"
fast=$(( (t2 - t1) / 1000000 ))
[ "$fast" -lt 500 ] && ok "at once ($fast ms), without a new zygote" || fail "at once" "it took $fast ms"
# The zygote's own failure is logged once (each call's failure after it is
# a line of that call, with its invocation id).
kills=$(grep -v '"invocation"' "$T/a.log" | grep -c "the Python zygote of loop version 1 did not finish" || true)
check "one zygote killed, not a restart loop" 1 "$kills"
alive "after the loop at import"

# A module that kills its interpreter while it is imported.
mkdir -p "$T/die"
cat >"$T/die/tine.yaml" <<'YAML'
app: die
defaults: { runtime: python }
functions:
  f: { handler: dies.py#handle }
YAML
printf 'import os\nos.abort()\ndef handle(req, ctx): pass\n' >"$T/die/dies.py"
tine deploy "$T/die" >/dev/null
check "a zygote killed while importing: 502 naming the module" \
  "502|the Python zygote of die version 1 died while importing dies.py (see the node's log)" "$(invoke_app die f)"
wait_for 5 grep -q "the Python zygote of die version 1 was killed by signal" "$T/a.log" \
  && ok "the node's log says how it died" || fail "the node's log says how it died" "$(grep -c 'die version' "$T/a.log")"
alive "at the end"
check_json_log "$T/a.log"
finish
