#!/usr/bin/env bash
# CloudEvents ingest: an event posted in structured, batch and binary mode
# reaches the function whose trigger matches its type and source (globs);
# invalid events get 400 naming the attribute; nothing matching, nothing run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
# The events flags are checked at start.
out=$("$BIN/tined" --docker-events maybe 2>&1; echo "rc=$?")
check_contains "--docker-events takes on or off" "tined: --docker-events maybe: expected on or off" "$out"
check_contains "--docker-events maybe: exit 2" "rc=2" "$out"
out=$("$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/bad" --sdk-dir "$SRC/sdk/lua" --redis "$REDIS_URL" \
  --log-paths relative/dir 2>&1; echo "rc=$?")
check_contains "--log-paths wants absolute directories" "--log-paths: 'relative/dir' is not an absolute directory" "$out"
check_contains "--log-paths relative: exit 1" "rc=1" "$out"
check_contains "tined --help lists the events flags" "--log-paths V" "$("$BIN/tined" --help)"
start_node a --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: evapp
functions:
  onev: { handler: h.lua#onev }
  other: { handler: h.lua#other }
triggers:
  - { on: event, type: 'demo.*', source: '/tests/*', function: onev }
  - { on: event, type: other.thing, function: other }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.onev(event, ctx)
  tine.kv.incr("count:" .. event.id)
  tine.kv.set("type:" .. event.id, event.type)
  local d = event.data
  if type(d) == "table" then d = tine.json.encode(d) end
  tine.kv.set("data:" .. event.id, tostring(d or event.data_base64 or ""))
  if event.traceparent then tine.kv.set("ext:" .. event.id, event.traceparent) end
  return { ok = true }
end
function M.other(event, ctx)
  tine.kv.incr("other:" .. event.id)
end
return M
LUA
tine deploy "$T/app" >/dev/null

# Structured mode.
out=$(post_event '{"specversion":"1.0","id":"s-1","source":"/tests/it","type":"demo.created","data":{"n":1}}')
check "structured: 202" "202" "${out%% *}"
check_contains "structured: answers the event id" '"ids":["s-1"]' "$out"
wait_kv 10 evapp count:s-1 1 || true
check "structured: the function ran once" "1" "$(rkv evapp count:s-1)"
check "structured: the function got the data" '{"n":1}' "$(rkv evapp data:s-1)"

# Binary mode: ce-* headers, the body is the data (JSON content type).
out=$(admin POST /events -H 'ce-specversion: 1.0' -H 'ce-id: b-1' -H 'ce-source: /tests/bin' \
  -H 'ce-type: demo.binary' -H 'ce-traceparent: 00-abc-01' -H 'Content-Type: application/json' \
  --data-binary '{"hello":"world"}')
check "binary: 202" "202" "${out%% *}"
wait_kv 10 evapp count:b-1 1 || true
check "binary: the function ran once" "1" "$(rkv evapp count:b-1)"
check "binary: JSON body became data" '{"hello":"world"}' "$(rkv evapp data:b-1)"
check "binary: extension header became an attribute" "00-abc-01" "$(rkv evapp ext:b-1)"

# Binary mode with a non-JSON body: data_base64.
out=$(admin POST /events -H 'ce-specversion: 1.0' -H 'ce-id: b-2' -H 'ce-source: /tests/bin' \
  -H 'ce-type: demo.bytes' -H 'Content-Type: application/octet-stream' --data-binary 'abc')
check "binary octets: 202" "202" "${out%% *}"
wait_kv 10 evapp data:b-2 "YWJj" || true
check "binary octets: data_base64" "YWJj" "$(rkv evapp data:b-2)"

# Batch mode: all appended at once.
out=$(admin POST /events -H 'Content-Type: application/cloudevents-batch+json' --data-binary \
  '[{"specversion":"1.0","id":"k-1","source":"/tests/x","type":"demo.a"},{"specversion":"1.0","id":"k-2","source":"/tests/x","type":"other.thing"}]')
check "batch: 202" "202" "${out%% *}"
check_contains "batch: both ids" '"ids":["k-1","k-2"]' "$out"
wait_kv 10 evapp count:k-1 1 || true
wait_kv 10 evapp other:k-2 1 || true
check "batch: first event to onev" "1" "$(rkv evapp count:k-1)"
check "batch: second event to other" "1" "$(rkv evapp other:k-2)"
check "batch: second event not to onev (type does not match)" "" "$(rkv evapp count:k-2)"

# Globs: a source outside /tests/* does not match onev.
post_event '{"specversion":"1.0","id":"n-1","source":"/elsewhere","type":"demo.created"}' >/dev/null
post_event '{"specversion":"1.0","id":"n-2","source":"/tests/y","type":"demo.late"}' >/dev/null
wait_kv 10 evapp count:n-2 1 || true
check "a non-matching source is not delivered" "" "$(rkv evapp count:n-1)"

# Invalid events: 400 naming the attribute; nothing stored.
len_before=$(redis-cli -s "$T/redis.sock" XLEN tine:events)
check "missing source" '400 {"error":"attribute '"'"'source'"'"': required"}' \
  "$(post_event '{"specversion":"1.0","id":"x","type":"demo.a"}')"
check "bad specversion" '400 {"error":"attribute '"'"'specversion'"'"': expected \"1.0\", got \"0.3\""}' \
  "$(post_event '{"specversion":"0.3","id":"x","source":"/a","type":"demo.a"}')"
check "empty id" '400 {"error":"attribute '"'"'id'"'"': must not be empty"}' \
  "$(post_event '{"specversion":"1.0","id":"","source":"/a","type":"demo.a"}')"
check "bad time" '400 {"error":"attribute '"'"'time'"'"': expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"}' \
  "$(post_event '{"specversion":"1.0","id":"x","source":"/a","type":"demo.a","time":"yesterday"}')"
check "bad extension name" '400 {"error":"attribute '"'"'Bad_Name'"'"': extension names are 1 to 20 lower-case letters or digits"}' \
  "$(post_event '{"specversion":"1.0","id":"x","source":"/a","type":"demo.a","Bad_Name":1}')"
out=$(admin POST /events -H 'Content-Type: application/cloudevents-batch+json' --data-binary \
  '[{"specversion":"1.0","id":"ok","source":"/tests/x","type":"demo.a"},{"specversion":"1.0","id":"y","source":"/a"}]')
check "batch: the index and the attribute" '400 {"error":"batch[1]: attribute '"'"'type'"'"': required"}' "$out"
out=$(admin POST /events -H 'ce-specversion: 1.0' -H 'ce-id: b-9' -H 'ce-type: demo.x' --data-binary 'x')
check "binary: missing ce-source" '400 {"error":"attribute '"'"'source'"'"': required"}' "$out"
out=$(admin POST /events -H 'Content-Type: application/json' --data-binary '{"id":"1"}')
check_contains "no ce headers, no structured type" "attribute 'specversion': required (binary mode" "$out"
out=$(post_event '{"specversion":"1.0",')
check_contains "malformed JSON: 400 with where" '400 {"error":"body: line 1 column' "$out"
check "rejected events are not stored" "$len_before" "$(redis-cli -s "$T/redis.sock" XLEN tine:events)"

# The ingest endpoint needs the admin token.
out=$(http POST /_tine/v1/events -H 'Content-Type: application/cloudevents+json' \
  --data-binary '{"specversion":"1.0","id":"u","source":"/tests/u","type":"demo.a"}')
check "without the token: 401" "401" "${out%% *}"
check "GET is refused" "405" "$(admin GET /events | cut -d' ' -f1)"

# The CLI: tine events emit.
out=$(tine events emit --type demo.cli --source /tests/cli --data '{"v":7}' --id cli-1)
check "tine events emit" "accepted event cli-1" "$out"
wait_kv 10 evapp count:cli-1 1 || true
check "emit: the function ran" '{"v":7}' "$(rkv evapp data:cli-1)"
out=$(tine events emit --type demo.cli --source /tests/cli --data '{bad' 2>&1; echo "rc=$?")
check_contains "emit: bad JSON data is a usage error" "rc=2" "$out"

# Every delivered entry was acknowledged and deleted.
sleep 0.5
check "nothing pending" "0" "$(redis-cli -s "$T/redis.sock" XPENDING tine:events tine | head -1)"
check "the stream is empty again" "0" "$(redis-cli -s "$T/redis.sock" XLEN tine:events)"
finish
