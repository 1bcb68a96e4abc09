#!/usr/bin/env bash
# Billing: every invocation gets an activation record priced by the formula
# (100 ms units, rounded up, at least one; GB-s; cost in exact decimals), a
# timeout bills up to the timeout, usage totals equal the sum of the records
# after 1,000 invocations across two versions, and the admin API refuses bad
# queries with a reason.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

make_bill_app() { # make_bill_app DIR TAG
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<'YAML'
app: bill
functions:
  spin128:  { handler: f.lua#spin, memory: 128 }
  spin512:  { handler: f.lua#spin, memory: 512 }
  spin1024: { handler: f.lua#spin, memory: 1024 }
  hang:     { handler: f.lua#hang, timeout: 300ms, memory: 256 }
  c:        { handler: f.lua#count, memory: 256 }
routes:
  - { method: GET, path: /spin128, function: spin128 }
  - { method: GET, path: /spin512, function: spin512 }
  - { method: GET, path: /spin1024, function: spin1024 }
  - { method: GET, path: /hang, function: hang }
  - { method: GET, path: /c, function: c }
YAML
  cat >"$1/f.lua" <<LUA
local M = {}
-- Busy-waits for the wall time given in ?ms= (there is no sleep in the
-- sandbox; remaining_ms() follows the wall clock).
function M.spin(req, ctx)
  local ms = tonumber(req.query.ms) or 0
  local start = ctx.remaining_ms()
  while start - ctx.remaining_ms() < ms do end
  return "spun " .. ms
end
function M.hang(req, ctx) while true do end end
function M.count(req, ctx) return "$2" end
return M
LUA
}
make_bill_app "$T/app" v1
tine deploy "$T/app" >/dev/null

# activation ID: the record, once the recorder has written it (100 ms batches).
record() {
  local id=$1 i
  for i in $(seq 1 100); do
    if tine --json activation "$id" >"$T/rec.json" 2>/dev/null; then cat "$T/rec.json"; return 0; fi
    sleep 0.05
  done
  echo "{}"
}
invoke_id() { # invoke_id PATH: the invocation id of one GET
  curl -s -o /dev/null -D - "$URL$1" | tr -d '\r' | awk 'tolower($1) == "x-tine-invocation-id:" {print $2}'
}

# Each record against the formula, in exact decimals (Python's Decimal).
check_record() { # check_record NAME RECORD MEMORY BILLED_MS
  local verdict
  verdict=$(python3 - "$2" "$3" "$4" <<'PY'
import json, sys
from decimal import Decimal, ROUND_HALF_UP
rec, mem, billed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
gb_s = Decimal(mem) / 1024 * Decimal(billed) / 1000
compute = (gb_s * Decimal("0.0000166667")).quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)
cost = compute + Decimal("0.0000002")
want = {"billed_ms": billed, "memory_mb": mem, "mb_ms": mem * billed}
bad = [f"{k}={rec.get(k)} (want {v})" for k, v in want.items() if rec.get(k) != v]
if Decimal(rec.get("gb_s", "-1")) != gb_s: bad.append(f"gb_s={rec.get('gb_s')} (want {gb_s})")
if Decimal(rec.get("cost", "-1")) != cost: bad.append(f"cost={rec.get('cost')} (want {cost})")
if rec.get("cost_pusd") != int(cost * 10**12): bad.append(f"cost_pusd={rec.get('cost_pusd')}")
for k in ("id", "app", "version", "function", "trigger", "start", "duration_us", "queued_us", "cpu_us",
          "status", "outcome", "cold", "cold_start_us", "logs", "node", "billed"):
    if k not in rec: bad.append("no " + k)
print("ok" if not bad else "; ".join(bad))
PY
)
  check "$1" ok "$verdict"
}

for mem in 128 512 1024; do
  for ms in 0 30 230; do
    billed=100
    [ "$ms" = 230 ] && billed=300
    id=$(invoke_id "/bill/spin$mem?ms=$ms")
    rec=$(record "$id")
    check_record "spin $ms ms at $mem MB bills $billed ms" "$rec" "$mem" "$billed"
  done
done
check_contains "a record names its function" '"function":"spin1024"' "$rec"
check_contains "a record names its trigger" '"trigger":"http"' "$rec"

# A timeout bills up to the timeout: 300 ms, not the next unit.
id=$(invoke_id /bill/hang)
rec=$(record "$id")
check_record "a timeout bills up to the timeout" "$rec" 256 300
check_contains "the timeout's record says so" '"status":504,"outcome":"timeout"' "$rec"
check_contains "the timeout's record has the error" '"error":' "$rec"

# 1,000 invocations across two versions: the usage totals are the sums of
# the activation records, exactly.
curl -s -o /dev/null "$URL/bill/c?n=[1-500]"
make_bill_app "$T/app" v2
tine deploy "$T/app" >/dev/null
curl -s -o /dev/null "$URL/bill/c?n=[1-500]"
usage_c() { tine --json usage bill --by version | python3 -c '
import json, sys
print(sum(r["invocations"] for r in json.load(sys.stdin)["rows"] if r["function"] == "c"))'; }
wait_for 10 test "$(usage_c)" = 1000 || true
check "usage counted 1000 invocations of c" 1000 "$(usage_c)"
tine --json usage bill --by version >"$T/usage.json"
tine --json activations bill c --limit 2000 >"$T/acts.json"
verdict=$(python3 - "$T/usage.json" "$T/acts.json" <<'PY'
import json, sys
from decimal import Decimal
usage = json.load(open(sys.argv[1]))
acts = json.load(open(sys.argv[2]))["activations"]
if len(acts) != 1000:
    print(f"{len(acts)} records"); sys.exit()
sums = {}
for a in acts:
    s = sums.setdefault(a["version"], {"invocations": 0, "billed_ms": 0, "mb_ms": 0, "cost_pusd": 0, "cost": Decimal(0)})
    s["invocations"] += 1
    for k in ("billed_ms", "mb_ms", "cost_pusd"):
        s[k] += a[k]
    s["cost"] += Decimal(a["cost"])
rows = {r["version"]: r for r in usage["rows"] if r["function"] == "c"}
bad = []
if sorted(rows) != sorted(sums) or len(rows) != 2:
    bad.append(f"versions {sorted(rows)} vs {sorted(sums)}")
for v, s in sums.items():
    r = rows.get(v, {})
    for k in ("invocations", "billed_ms", "mb_ms", "cost_pusd"):
        if r.get(k) != s[k]: bad.append(f"v{v} {k}: usage {r.get(k)} records {s[k]}")
    if Decimal(r.get("cost", "-1")) != s["cost"]: bad.append(f"v{v} cost: usage {r.get('cost')} records {s['cost']}")
    if Decimal(r.get("gb_s", "-1")) != Decimal(s["mb_ms"]) / 1024000: bad.append(f"v{v} gb_s {r.get('gb_s')}")
total = usage["total"]
if total["invocations"] != sum(r["invocations"] for r in usage["rows"]): bad.append("total invocations")
if Decimal(total["cost"]) != sum(Decimal(r["cost"]) for r in usage["rows"]): bad.append("total cost")
print("ok" if not bad else "; ".join(bad))
PY
)
check "usage per version equals the sum of 1000 records" ok "$verdict"
out=$(tine usage bill --by version)
check_contains "usage table" "FUNCTION  VERSION  INVOCATIONS  BILLED_UNITS  GB_S" "$out"
check_contains "usage table has a total row" "total" "$out"
check_contains "usage table row of c v1" "c         1        500          500" "$out"
out=$(tine usage bill --csv --by day)
check_contains "usage as CSV" "DAY,INVOCATIONS,BILLED_UNITS,GB_S,COST" "$out"
out=$(tine activations bill c --limit 3)
check "activations lists the asked number" 4 "$(echo "$out" | wc -l | tr -d ' ')"
check_contains "activations table" "ID" "$(echo "$out" | head -1)"
check_contains "activation shows the cost" "GB-s, cost 0.0000" "$(tine activation "$id")"

# Bad queries are refused with a reason; unknown things are 404.
check_contains "usage needs an app" '400 {"error":"query: app: required' "$(admin GET /usage)"
check_contains "usage of an unknown app" "404" "$(admin GET '/usage?app=nope')"
check_contains "usage by something else" "query: by: expected function, version or day" \
  "$(admin GET '/usage?app=bill&by=week')"
check_contains "usage with a bad date" "query: from: '2026-02-30': expected a date YYYY-MM-DD" \
  "$(admin GET '/usage?app=bill&from=2026-02-30')"
check_contains "usage from after to" "400" "$(admin GET '/usage?app=bill&from=2026-03-02&to=2026-03-01')"
check_contains "usage with an unknown parameter" "query: unknown parameter 'color'" \
  "$(admin GET '/usage?app=bill&color=red')"
check_contains "activations limit checked" "query: limit: expected a number from 1 to 100000" \
  "$(admin GET '/apps/bill/activations?limit=0')"
check_contains "an id that is not hex" "400" "$(admin GET /activations/zz)"
check_contains "an unknown id" "404" "$(admin GET /activations/0123456789abcdef)"
check_contains "usage needs the token" "401" "$(http GET '/_tine/v1/usage?app=bill')"
out=$(tine usage bill --by week 2>&1 || true)
check_contains "the CLI checks --by" "--by must be function, version or day" "$out"
finish
