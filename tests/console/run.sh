#!/usr/bin/env bash
# The console's browser test (console.test.mjs) against a real node: a
# redis-server, a tined on loopback, 100 small apps and "shop", whose
# functions log, fail, invoke, emit and write a log line holding HTML.
. "$(dirname "$0")/../integration/lib.sh"
HERE=$SRC/tests/console
command -v node >/dev/null || skip_all "node is not installed (scripts/deps.sh)"
[ -x /usr/bin/chromium ] || skip_all "/usr/bin/chromium is not installed (scripts/deps.sh)"
# The npm packages, from the committed lockfile, into the test's folder.
if [ ! -d "$HERE/node_modules/puppeteer-core" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || skip_all "npm ci failed (no registry?)"
fi
start_redis
start_node a --redis "$REDIS_URL" --docker-events off

# 100 apps for the page weight and speed of the app list, 8 deploys at a
# time (a bare `wait` would wait for the node too).
deploys=()
for i in $(seq -w 0 99); do
  make_app "$T/apps/a$i" "v1" "app$i" >/dev/null
  tine deploy "$T/apps/a$i" >/dev/null &
  deploys+=($!)
  if [ ${#deploys[@]} -eq 8 ] || [ "$i" = 99 ]; then
    for p in "${deploys[@]}"; do wait "$p" || fail "deploy" "a deploy of the 100 apps failed"; done
    deploys=()
  fi
done
check "100 apps" "100" "$(admin GET /apps | cut -d' ' -f2- | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["apps"]))')"
http GET /app000/who >/dev/null

mkdir -p "$T/shop"
cat >"$T/shop/tine.yaml" <<'YAML'
app: shop
functions:
  hi:     { handler: s.lua#hi }
  fail:   { handler: s.lua#fail }
  root:   { handler: s.lua#root, timeout: 5s }
  child:  { handler: s.lua#child }
  paid:   { handler: s.lua#paid }
  broken: { handler: s.lua#broken }
  tick:   { handler: s.lua#child }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /fail, function: fail }
  - { method: POST, path: /root, function: root }
triggers:
  - { on: event, type: order.paid, function: paid }
  - { on: event, type: order.broken, function: broken, attempts: 1 }
  - { on: schedule, cron: "0 3 * * *", function: tick }
  - { on: event, type: "note.*", function: paid }
YAML
cat >"$T/shop/s.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.hi(req)
  print("hello " .. (req.query.n or "") .. " <img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>")
  return "hi"
end
function M.fail() error("<b>not bold</b>") end
function M.root(req, ctx)
  tine.invoke("child", {})
  tine.emit("order.paid", {})
  return ctx.invocation_id
end
function M.child() return "c" end
function M.paid() print("paid") end
function M.broken() error("<i>broken</i> on purpose") end
return M
LUA
check "deploy shop v1" "deployed shop version 1" "$(tine deploy "$T/shop")"
echo "-- v2" >>"$T/shop/s.lua"
check "deploy shop v2" "deployed shop version 2" "$(tine deploy "$T/shop")"
check "tag shop v2" "0" "$(tine tag shop stable 2 >/dev/null; echo $?)"
echo "-- v3" >>"$T/shop/s.lua"
check_contains "stage shop v3" "staged shop version 3" "$(tine deploy --stage "$T/shop")"
for n in 1 2 3; do http GET "/shop/hi?n=$n" >/dev/null; done
http GET /shop/fail >/dev/null
ROOT_ID=$(http POST /shop/root | cut -d' ' -f2)
admin POST /events -H 'Content-Type: application/cloudevents+json' \
  --data-binary '{"specversion":"1.0","id":"b-1","source":"/t","type":"order.broken"}' >/dev/null
# an event type holding HTML: the console shows it as text
admin POST /events -H 'Content-Type: application/cloudevents+json' \
  --data-binary '{"specversion":"1.0","id":"n-1","source":"/t","type":"note.<img src=x onerror=\"window.__xss=3\">"}' >/dev/null
wait_for 20 sh -c "redis-cli -s '$T/redis.sock' XLEN tine:dlq:shop | grep -qv '^0'" || true
wait_for 20 sh -c "redis-cli -s '$T/redis.sock' LLEN tine:recent:shop:event:paid | grep -q '^2'" || true
check "a dead letter to replay" "1" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:shop)"

# "roll": version 2 rolling out (half the clients first, an hour a step)
make_app "$T/roll" "r1" roll >/dev/null
tine deploy "$T/roll" >/dev/null
make_app "$T/roll" "r2" roll >/dev/null
printf 'rollout: { steps: [50, 100], interval: 1h, min_requests: 5 }\n' >>"$T/roll/tine.yaml"
check_contains "roll v2 rolls out" "rolling out, 50% of clients first" "$(tine deploy "$T/roll")"
for n in $(seq 1 20); do http GET /roll/who -H "x-tine-client: c$n" >/dev/null; done

VIEWER=$(tine keys create look --role viewer --app app00)
EXPIRING=$(tine keys create brief --role viewer --expires 1)
sleep 1.2

mkdir -p "${TINE_CONSOLE_ARTIFACTS:-$T/artifacts}"
rm -f "${TINE_CONSOLE_ARTIFACTS:-$T/artifacts}"/console-*.png
if URL=$URL TOKEN=$TOKEN VIEWER=$VIEWER EXPIRING=$EXPIRING ROOT_ID=$ROOT_ID \
  ARTIFACTS=${TINE_CONSOLE_ARTIFACTS:-$T/artifacts} node "$HERE/console.test.mjs" >"$T/browser.out" 2>&1; then
  ok "browser test"
else
  fail "browser test" "exit $?"
fi
cat "$T/browser.out"
# Each check of the browser test counts here too.
PASSED=$((PASSED + $(grep -c '^ok ' "$T/browser.out" || true)))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$T/browser.out" || true)))
finish
