#!/usr/bin/env bash
# OTLP export (--otlp-endpoint): a small collector (otlp_collector.py)
# receives each invocation as a span in OTLP/HTTP JSON; the test checks the
# spans' shape: resource, scope, ids (the trace, the span, the parent's span
# for a call made with tine.invoke and for an incoming traceparent), name,
# kind, times, attributes, an error's status. A collector that refuses
# (500) loses spans, not the node; a bad URL stops tined at start.
. "$(dirname "$0")/lib.sh"
start_redis
python3 "$SRC/tests/integration/otlp_collector.py" "$T/collector.port" "$T/spans.jsonl" >"$T/collector.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$T/collector.port" || { echo "the collector did not start"; exit 1; }
CPORT=$(cat "$T/collector.port")
start_node a --redis "$REDIS_URL" --docker-events off --otlp-endpoint "http://127.0.0.1:$CPORT/v1/traces"

mkdir -p "$T/o"
cat >"$T/o/tine.yaml" <<'YAML'
app: o
functions:
  root:  { handler: o.lua#root }
  child: { handler: o.lua#child }
  boom:  { handler: o.lua#boom }
routes:
  - { method: GET, path: /root, function: root }
  - { method: GET, path: /boom, function: boom }
YAML
cat >"$T/o/o.lua" <<'LUA'
local tine = require "tine"
return {
  root = function(req, ctx) tine.invoke("child", {}); return ctx.invocation_id end,
  child = function() return "c" end,
  boom = function() error("no") end,
}
LUA
tine deploy "$T/o" >/dev/null
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
ROOT=$(http GET /o/root -H "traceparent: 00-$TRACE-00f067aa0ba902b7-01" | cut -d' ' -f2)
http GET /o/boom >/dev/null
wait_for 10 sh -c "grep -c boom '$T/spans.jsonl' >/dev/null" || true
sleep 0.2

check "a batch reached the collector" "True" "$(python3 -c 'import os,sys; print(os.path.getsize(sys.argv[1]) > 0)' "$T/spans.jsonl" 2>&1)"
cat >"$T/shape.py" <<'PY'
import json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
root_id, trace = sys.argv[2], sys.argv[3]
out = {}
out["path"] = sorted({r["path"] for r in reqs})
out["content_type"] = sorted({r["content_type"] for r in reqs})
spans = []
for r in reqs:
    for rs in r["body"]["resourceSpans"]:
        attrs = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
        out["service"] = attrs.get("service.name")
        out["instance"] = bool(attrs.get("service.instance.id"))
        for ss in rs["scopeSpans"]:
            out["scope"] = ss["scope"]["name"]
            spans.extend(ss["spans"])
def attr(s, k):
    for a in s["attributes"]:
        if a["key"] == k:
            return list(a["value"].values())[0]
by_fn = {attr(s, "tine.function"): s for s in spans}
root, child, boom = by_fn["root"], by_fn["child"], by_fn["boom"]
hexid = lambda v, n: bool(re.fullmatch("[0-9a-f]{%d}" % n, v)) and v != "0" * n
out["ids"] = all(hexid(s["traceId"], 32) and hexid(s["spanId"], 16) for s in spans)
out["root"] = [root["traceId"] == trace, root["parentSpanId"], root["name"], root["kind"], attr(root, "tine.invocation_id") == root_id]
out["child"] = [child["traceId"] == trace, child["parentSpanId"] == root["spanId"], child["kind"], attr(child, "tine.trigger")]
out["times"] = all(int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"]) and int(s["startTimeUnixNano"]) > 1.7e18 for s in spans)
out["boom"] = [boom["traceId"] == attr(boom, "tine.invocation_id"), "parentSpanId" in boom, boom["status"]["code"], attr(boom, "http.response.status_code")]
print(json.dumps(out, sort_keys=True))
PY
shape=$(python3 "$T/shape.py" "$T/spans.jsonl" "$ROOT" "$TRACE" 2>&1)
check "endpoint and content type" '["/v1/traces"] ["application/json"]' "$(pyget "$shape" 'json.dumps(d["path"]) + " " + json.dumps(d["content_type"])')"
check "resource and scope" "tine True tine" "$(pyget "$shape" 'd["service"] + " " + str(d["instance"]) + " " + d["scope"]')"
check "ids are hex of the right length" "True" "$(pyget "$shape" 'd["ids"]')"
check "the root: the incoming trace and span, name, SERVER" '[true, "00f067aa0ba902b7", "o/root", 2, true]' "$(pyget "$shape" 'json.dumps(d["root"])')"
check "the invoked child: the root's span as parent, INTERNAL" '[true, true, 1, "invoke"]' "$(pyget "$shape" 'json.dumps(d["child"])')"
check "times in ns, start before end" "True" "$(pyget "$shape" 'd["times"]')"
check "a failed call: its own trace, no parent, STATUS_CODE_ERROR, 500" '[true, false, 2, "500"]' "$(pyget "$shape" 'json.dumps(d["boom"])')"

# the exporter's counters in /metrics: the three spans were taken, none failed
metric() { # metric <name{labels}> <metrics text>: its value, or "missing"
    printf '%s\n' "$2" | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "missing" }'
}
m=$(curl -s "$URL/metrics")
check "exported spans counted" "3" "$(metric tine_otlp_spans_exported_total "$m")"
check "no failed post" "0" "$(metric tine_otlp_posts_failed_total "$m")"
check "nothing dropped" "0 0" "$(metric 'tine_otlp_spans_dropped_total{reason="queue_full"}' "$m") $(metric 'tine_otlp_spans_dropped_total{reason="post_failed"}' "$m")"
check "queue empty" "0" "$(metric tine_otlp_queue_length "$m")"
check "never failed" "0.000" "$(metric tine_otlp_last_error_timestamp_seconds "$m")"
check_contains "with HELP and TYPE lines" "# TYPE tine_otlp_spans_exported_total counter" "$m"
check_contains "the queue is a gauge" "# TYPE tine_otlp_queue_length gauge" "$m"

# a collector that refuses: the node goes on serving
start_node b --redis "$REDIS_URL" --docker-events off --otlp-endpoint "http://127.0.0.1:$CPORT/fail"
check "served while the collector refuses" "200" "$(http GET /o/root | cut -d' ' -f1)"
wait_for 10 grep -q "did not take a batch" "$T/b.log" || true
check_contains "the refusal is logged" "otlp: the collector at http://127.0.0.1:$CPORT/fail did not take a batch of spans" "$(cat "$T/b.log")"
wait_for 10 sh -c "curl -s '$URL/metrics' | grep -q '^tine_otlp_spans_dropped_total{reason=\"post_failed\"} 2'" || true
m=$(curl -s "$URL/metrics")
check "the failed post counted" "True" "$(python3 -c 'import sys; print(1 <= int(sys.argv[1]) <= 2)' "$(metric tine_otlp_posts_failed_total "$m")" 2>&1)"
check "its spans (root and child) counted as dropped" "2" "$(metric 'tine_otlp_spans_dropped_total{reason="post_failed"}' "$m")"
check "none exported by b" "0" "$(metric tine_otlp_spans_exported_total "$m")"
check "the time of the failure, unix seconds" "True" "$(python3 -c 'import sys,time; print(abs(float(sys.argv[1]) - time.time()) < 60)' "$(metric tine_otlp_last_error_timestamp_seconds "$m")" 2>&1)"
check "a bad endpoint stops tined at start" "1" "$(tined_status c --redis "$REDIS_URL" --otlp-endpoint ftp://x)"
check_contains "with the reason" "--otlp-endpoint ftp://x: expected an http:// or https:// URL" "$(cat "$T/c.log")"
finish
