#!/usr/bin/env bash
# tine.log cannot flood or forge tined's log (issue 16 item 5): a function
# logging 100 MB grows tined's log by a bounded amount while another app
# keeps answering, and its activation says lines were dropped; an app over
# its log rate (--log-rate) loses lines, counted in one note; a line holding
# newlines, a forged JSON line, ANSI escapes and invalid UTF-8 stays one
# record whose text is escaped: tined's log holds no forged line and no raw
# control byte, and neither does `tine logs`.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --log-rate 64KiB
make_victim
mkdir -p "$T/noisy"
cat >"$T/noisy/tine.yaml" <<'YAML'
app: noisy
functions:
  flood: { handler: n.lua#flood, timeout: 20s }
  burst: { handler: n.lua#burst, timeout: 10s }
  forge: { handler: n.lua#forge }
routes:
  - { method: GET, path: /flood, function: flood }
  - { method: GET, path: /burst, function: burst }
  - { method: GET, path: /forge, function: forge }
YAML
cat >"$T/noisy/n.lua" <<'LUA'
local tine = require "tine"
local M = {}
local line = string.rep("x", 1000)
function M.flood()           -- 100 MB of log lines
  for i = 1, 100000 do tine.log(line, i) end
  return "flooded"
end
function M.burst()           -- 40 KB: under the invocation's cap, over the rate when many run
  for i = 1, 40 do tine.log(line, i) end
  return "burst"
end
function M.forge()
  tine.log('before\n{"ts":"2026-01-01T00:00:00.000Z","level":"error","msg":"forged"}\n\27[31mred\27[0m \255\254 end')
  tine.log.error("second\r\n[other/app v1] forged too\0nul")
  return "forged"
end
return M
LUA
check "deploy" "deployed noisy version 1" "$(tine deploy "$T/noisy")"
LOG="$T/a.log"
# logs_have APP FN NEEDLE: waits (records are written in batches) until
# `tine logs APP FN` holds NEEDLE; prints those logs.
logs_have() {
  local out deadline=$((SECONDS + 10))
  while :; do
    out=$(tine logs "$1" "$2" --limit 10000 2>&1 || true)
    [[ "$out" == *"$3"* || $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  printf '%s' "$out"
}
size() { stat -c %s "$LOG"; }

# --- 100 MB logged: tined's log grows by little, the node keeps serving
# another app, and the activation says what was dropped.
median_us() { # median_us N PATH: the median time of N calls, in µs
  for _ in $(seq "$1"); do curl -s -o /dev/null -w '%{time_total}\n' "$URL$2"; done |
    sort -n | awk '{a[NR]=$1} END {printf "%d", a[int((NR+1)/2)] * 1000000}'
}
before_us=$(median_us 20 /victim/hi)
start_size=$(size)
floods=()
for i in 1 2 3 4; do curl -s -m 60 -o "$T/flood.$i" "$URL/noisy/flood" & floods+=($!); done
sleep 0.2
during_us=$(median_us 20 /victim/hi)
wait "${floods[@]}"
check "every flood answered" "floodedfloodedfloodedflooded" "$(cat "$T"/flood.1 "$T"/flood.2 "$T"/flood.3 "$T"/flood.4)"
grown=$(($(size) - start_size))
# 4 x 100 MB asked; each invocation keeps 64 KiB, the app's bucket holds 128 KiB
# (and refills at 64 KiB/s): well under 1 MB in all.
[ "$grown" -lt 1000000 ] && ok "tined's log grew by $grown bytes for 400 MB logged" ||
  fail "tined's log bounded" "it grew by $grown bytes"
[ "$during_us" -lt 250000 ] && ok "another app answered meanwhile (median $during_us µs, $before_us µs before)" ||
  fail "another app keeps its latency" "median $during_us µs during the flood, $before_us µs before"
victim_ok "flood"
need="log lines of this invocation dropped: over the limit of 64 KiB of log lines per invocation"
check_contains "the activation says lines were dropped" "$need" "$(logs_have noisy flood "$need" | grep -F "$need" | head -1)"

# --- over the app's rate: lines dropped, one note in tined's log, and the
# activation says how many of its lines the rate took.
sleep 2 # the bucket refills
bursts=()
for i in $(seq 12); do curl -s -o /dev/null "$URL/noisy/burst" & bursts+=($!); done
wait "${bursts[@]}"
wait_for 5 grep -q '"msg":"app noisy: [0-9]* log lines ([0-9]* bytes) dropped: over its log rate of 64 KiB per second' "$LOG" || true
check_contains "tined's log notes the lines dropped over the rate" \
  "dropped: over its log rate of 64 KiB per second (tined --log-rate)" "$(grep '"app":"noisy"' "$LOG" | grep '"level":"warn"' || true)"
need="log lines of this invocation dropped: over the app's log rate of 64 KiB per second"
check_contains "an activation notes the lines the rate took" "$need" \
  "$(logs_have noisy burst "$need" | grep -F "$need" | head -1)"

# --- forging: every line tined wrote is JSON (or one of its own plain
# "tined: " lines), the forged text is only inside a msg of app noisy, and
# no raw control byte is left.
check "forge answered" "200 forged" "$(http GET /noisy/forge)"
wait_for 5 grep -q 'forged too' "$LOG" || true
verdict=$(python3 - "$LOG" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
problems = ["raw byte %r in tined's log" % b for b in (b"\x1b", b"\r", b"\x00", b"\x9b") if b in raw]
seen = 0
for line in raw.decode("utf-8", "replace").split("\n"):
    if line == "" or line.startswith("tined: "):
        continue
    try:
        d = json.loads(line)
    except ValueError:
        problems.append("not a JSON line: %r" % line[:120])
        continue
    if "forged" in json.dumps(d):
        if d.get("app") != "noisy" or d.get("function") != "forge" or "forged" not in d.get("msg", ""):
            problems.append("a forged line: %r" % line[:120])
        else:
            seen += 1
print("; ".join(problems) if problems else "ok %d" % seen)
PY
)
check "tined's log: no forged line, no raw control byte" "ok 2" "$verdict"
logs=$(logs_have noisy forge "forged too")
check_contains "tine logs: one record, newlines escaped" \
  'before\n{"ts":"2026-01-01T00:00:00.000Z","level":"error","msg":"forged"}\n\x1b[31mred\x1b[0m' "$logs"
check_contains "tine logs: invalid UTF-8 shown as U+FFFD" $'\xef\xbf\xbd\xef\xbf\xbd end' "$logs"
check_contains "tine logs: CR, LF and NUL escaped" 'second\r\n[other/app v1] forged too\x00nul' "$logs"
raw=$(tine logs noisy forge | od -An -c | tr -s ' ' | grep -c '033\|\\r' || true)
check "tine logs: no raw ESC or CR reaches the terminal" "0" "$raw"
finish_security
