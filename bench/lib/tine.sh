# shellcheck shell=bash
# tine's figures: warm hello, new connection, cold start, memory of a warm
# sandbox, tine.invoke hop and chain, deploy of a 250-function app, event
# ingest, and the variants of tined flags (isolation, activation records).

HELLO_APP=$ROOT/functions-examples/hello

# start_tined NAME [FLAGS...]: a tined on a free loopback port, pinned to the
# server cpus, with its own state dir (and private redis; under as_base, one
# of the baseline's). Sets TURL (https with --tls-cert among the flags),
# TTOKEN, TINED_PID; 1 with TINED_ERROR when it did not start (e.g. a
# refused flag).
start_tined() {
  local name=$1 deadline scheme=http
  [ "$BENCH_AS" = tine ] || name=$BENCH_AS-$name # the baseline's own state dirs
  local dir=$WORK/$name
  shift
  [[ " $* " != *" --tls-cert "* ]] || scheme=https
  rm -rf "$dir"
  mkdir -p "$dir"
  spawn "$WORK/$name.log" "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$dir" --sdk-dir "$TINED_SDK_DIR" "$@"
  TINED_PID=$SPAWNED_PID
  deadline=$((SECONDS + 20))
  until [ -s "$dir/port" ]; do
    if ! alive "$TINED_PID" || [ $SECONDS -ge $deadline ]; then
      TINED_ERROR=$(grep -v '^ ' "$WORK/$name.log" | tail -n 2 | paste -sd ' ')
      stop_pid "$TINED_PID"
      return 1
    fi
    sleep 0.05
  done
  TURL=$scheme://127.0.0.1:$(cat "$dir/port")
  TTOKEN=$(cat "$dir/admin.token")
  wait_http "$TURL/_tine/v1/health" 10 "$TINED_PID" || {
    TINED_ERROR="no answer on $TURL/_tine/v1/health"
    stop_pid "$TINED_PID"
    return 1
  }
}

# tine_cli ARGS...: the tine command against the running tined.
tine_cli() { "$BIN/tine" --url "$TURL" --token "$TTOKEN" "$@"; }

# deploy_app DIR: 1 with DEPLOY_ERROR when the deploy is refused.
deploy_app() {
  if ! tine_cli deploy "$1" >/dev/null 2>"$WORK/deploy.err"; then
    DEPLOY_ERROR="deploying $(basename "$1"): $(tail -n 1 "$WORK/deploy.err")"
    return 1
  fi
}

# admin_status METHOD PATH [curl args]: the HTTP status of an admin call.
admin_status() {
  local m=$1 p=$2
  shift 2
  curl -s -o /dev/null -w '%{http_code}' -X "$m" -H "Authorization: Bearer $TTOKEN" "$TURL/_tine/v1$p" "$@" || true
}

bench_tine() {
  say "tine: starting tined ${TINED_FLAGS_DEFAULT}"
  # shellcheck disable=SC2086 # the flags are words
  if ! start_tined tine $TINED_FLAGS_DEFAULT; then
    record_failed tine "tined did not start: $TINED_ERROR"
    return 0
  fi
  if [ "$BENCH_AS" = tine ]; then
    meta tine_version "$("$BIN/tine" --version) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
  else
    meta tine_base_version "$("$BIN/tine" --version) ($BIN)"
  fi
  if ! deploy_app "$HELLO_APP"; then
    record_failed tine "$DEPLOY_ERROR"
    stop_pid "$TINED_PID"
    return 0
  fi
  local url=$TURL/hello/
  wait_http "$url" 5 || record_failed tine "GET $url does not answer 200"
  wrk_load "$url" # warm throughput is measured in rounds (bench_warm)
  tine_memory
  measure_conn tine "$url"
  tine_cold cold
  tine_hop
  tine_chain
  tine_chain group
  tine_deploy_many
  tine_events
  stop_pid "$TINED_PID"
}

# Only the hop and the 250-chain (BENCH_ONLY=hop): a tined of their own.
bench_tine_hop() {
  say "tine: starting tined ${TINED_FLAGS_DEFAULT}"
  # shellcheck disable=SC2086 # the flags are words
  if ! start_tined tine $TINED_FLAGS_DEFAULT; then
    record_failed tine "tined did not start: $TINED_ERROR"
    return 0
  fi
  meta tine_version "$("$BIN/tine" --version) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
  tine_hop
  tine_chain
  tine_chain group
  stop_pid "$TINED_PID"
}

# PSS of the warm hello sandboxes left by the load (their median).
tine_memory() {
  local pids pid kib values=()
  pids=$(curl -s -H "Authorization: Bearer $TTOKEN" "$TURL/_tine/v1/sandboxes" | python3 -c '
import json, sys
for pool in json.load(sys.stdin).get("pools", []):
    if pool.get("app") == "hello" and not pool.get("retired"):
        for s in pool.get("sandboxes", []):
            if s.get("state") == "idle":
                print(s["pid"])' 2>/dev/null || true)
  for pid in $pids; do
    kib=$(pss_kib "$pid") && [ -n "$kib" ] && values+=("$kib")
  done
  if [ ${#values[@]} -eq 0 ]; then
    record_failed tine "no readable warm hello sandbox in GET /_tine/v1/sandboxes" pss_kib
    return 0
  fi
  record pss_kib tine "$(printf '%s\n' "${values[@]}" | median)" \
    "median of the ${#values[@]} warm hello sandboxes after the load of one warm round"
}

# tine_cold PREFIX: cold starts of hello. Prefers the eviction endpoint; when
# it is not there, deploys a fresh version (which has no sandbox) before each
# run. The note says which.
tine_cold() {
  local prefix=$1 how args
  local evict=/apps/hello/sandboxes
  if [ "$(admin_status DELETE "$evict")" = 200 ]; then
    how="cold by eviction (DELETE /_tine/v1$evict) before each run"
    args=(--evict "$TURL/_tine/v1$evict" --token "$TTOKEN")
  else
    how="cold by a fresh deploy of hello before each run (no eviction endpoint: it answered 404)"
    args=(--prepare "$(printf '%q ' "$BIN/tine" --url "$TURL" --token "$TTOKEN" deploy "$HELLO_APP")")
  fi
  say "tine: $COLD_RUNS cold starts ($how)"
  if timer_measure "$TURL/hello/" --runs "$COLD_RUNS" --warmup 3 --expect "hello, world" "${args[@]}"; then
    record_series "$prefix" tine "$how"
  else
    record_failed tine "cold-start series: $TIMER_ERROR" "${prefix}_p50_us" "${prefix}_p99_us"
  fi
}

# The hop: p50/p99 of GET /one (one tine.invoke) minus those of GET /zero
# (none), both over one keep-alive connection. n/a without tine.invoke.
tine_hop() {
  local figs=(hop_p50_us hop_p99_us) z50 z99
  if ! deploy_app "$BENCH/apps/hop"; then
    record_na tine "$DEPLOY_ERROR" "${figs[@]}"
    return 0
  fi
  say "tine: tine.invoke hop, $HOP_RUNS requests with and without one hop"
  if ! timer_measure "$TURL/bench-hop/one" --reuse --warmup 50 --runs "$HOP_RUNS" --expect "hop done"; then
    record_na tine "tine.invoke did not work: $TIMER_ERROR" "${figs[@]}"
    return 0
  fi
  local o50=${H[p50_us]} o99=${H[p99_us]}
  if ! timer_measure "$TURL/bench-hop/zero" --reuse --warmup 50 --runs "$HOP_RUNS" --expect "hop done"; then
    record_failed tine "hop baseline: $TIMER_ERROR" "${figs[@]}"
    return 0
  fi
  z50=${H[p50_us]} z99=${H[p99_us]}
  local note="request with one tine.invoke minus request without, same percentile"
  record hop_p50_us tine "$(awk -v a="$o50" -v b="$z50" 'BEGIN { printf "%.1f", a - b }')" "$note"
  record hop_p99_us tine "$(awk -v a="$o99" -v b="$z99" 'BEGIN { printf "%.1f", a - b }')" "$note"
  tine_group_hop
}

# The hop inside a co-location group (bench/apps/hop-group): GET /loop times
# batches of 100 in-process tine.invoke calls in Lua; group_hop_p50_us is
# the median batch's per-hop time, group_hop_p99_us the 99th percentile's.
tine_group_hop() {
  local figs=(group_hop_p50_us group_hop_p99_us) out dir=$WORK/hop-group
  mkdir -p "$dir"
  cp "$BENCH/apps/hop-group/tine.yaml" "$BENCH/apps/hop/hop.lua" "$dir/"
  if ! deploy_app "$dir"; then
    record_na tine "$DEPLOY_ERROR" "${figs[@]}"
    return 0
  fi
  say "tine: in-process hop in a group, 200 batches of 100 calls"
  curl -s "$TURL/bench-hop-group/loop?n=20" >/dev/null || true # warms the sandbox and the JIT
  if ! out=$(curl -sf "$TURL/bench-hop-group/loop?n=200") || [ -z "$out" ]; then
    record_na tine "GET /bench-hop-group/loop failed (no co-location groups?)" "${figs[@]}"
    return 0
  fi
  local note="tine.invoke inside one group's sandbox, timed in Lua per batch of 100 (payload {from=...}, text answer)"
  record group_hop_p50_us tine "$(tr ' ' '\n' <<<"$out" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" "$note"
  record group_hop_p99_us tine "$(tr ' ' '\n' <<<"$out" | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; print v[i] }')" "$note"
}

# A chain app: GET /chain calls fn_1, fn_i tine.invokes fn_{i+1}, the last
# answers. Measured warm (after two untimed runs) over one connection.
# tine_chain [group]: with `group`, every function in one co-location group
# (app bench-chain-group, figures group_chain_*): the chain runs in one
# sandbox; group_chain_first_us is the first chain after the deploy (the
# sandbox loading all CHAIN_LENGTH functions included).
tine_chain() {
  local grouped=${1:-} app=bench-chain prefix=chain group_key=""
  if [ -n "$grouped" ]; then app=bench-chain-group prefix=group_chain group_key=", group: chain"; fi
  local dir=$WORK/$app i figs=("${prefix}_p50_us" "${prefix}_p99_us")
  mkdir -p "$dir"
  {
    echo "app: $app"
    echo "defaults: { timeout: 30s }"
    echo "functions:"
    for ((i = 1; i <= CHAIN_LENGTH; i++)); do echo "  fn_$i: { handler: chain.lua#fn_$i$group_key }"; done
    echo "routes:"
    echo "  - { method: GET, path: /chain, function: fn_1 }"
  } >"$dir/tine.yaml"
  cat >"$dir/chain.lua" <<LUA
-- Generated by bench/lib/tine.sh: fn_i calls fn_{i+1}; the last one answers.
local tine = require "tine"
local M = {}
local LAST = $CHAIN_LENGTH
for i = 1, LAST - 1 do
  M["fn_" .. i] = function(event, ctx)
    return tine.invoke("fn_" .. (i + 1), { depth = i + 1 })
  end
end
M["fn_" .. LAST] = function(event, ctx)
  return "chain end " .. LAST
end
return M
LUA
  if ! deploy_app "$dir"; then
    record_na tine "$DEPLOY_ERROR" "${figs[@]}"
    return 0
  fi
  local url=$TURL/$app/chain expect="chain end $CHAIN_LENGTH"
  if [ -n "$grouped" ]; then
    local first
    first=$(curl -s -o /dev/null -w '%{time_total}' "$url" || echo 0)
    record group_chain_first_us tine "$(awk -v t="$first" 'BEGIN { printf "%.0f", t * 1e6 }')" \
      "the first chain right after the deploy: one sandbox loading all $CHAIN_LENGTH functions, then the chain"
    say "tine: $CHAIN_LENGTH-function chain in one group, $CHAIN_RUNS runs"
    if timer_measure "$url" --reuse --warmup 2 --runs "$CHAIN_RUNS" --expect "$expect"; then
      record_series "$prefix" tine "end to end over one keep-alive connection, the $CHAIN_LENGTH functions in one group (one sandbox)"
    else
      record_na tine "the chain did not complete: $TIMER_ERROR" "${figs[@]}"
    fi
    return 0
  fi
  # Right after the deploy: the first chain starts the sandboxes (untimed),
  # the next ones run on sandboxes that have served once (cold caches).
  say "tine: $CHAIN_LENGTH-function chain right after its deploy, $CHAIN_FRESH_RUNS runs"
  if timer_measure "$url" --reuse --warmup 1 --runs "$CHAIN_FRESH_RUNS" --expect "$expect"; then
    record_series chain_fresh tine "the first chains after the deploy (the one starting the sandboxes untimed)"
  else
    record_na tine "the chain did not complete (tine.invoke missing?): $TIMER_ERROR" chain_fresh_p50_us chain_fresh_p99_us
    record_na tine "the chain did not complete" "${figs[@]}" chain_idle_p50_us chain_idle_p99_us
    return 0
  fi
  say "tine: $CHAIN_LENGTH-function chain, $CHAIN_RUNS runs back to back"
  if timer_measure "$url" --reuse --warmup 2 --runs "$CHAIN_RUNS" --expect "$expect"; then
    record_series chain tine "end to end over one keep-alive connection, back to back, all $CHAIN_LENGTH sandboxes warm"
  else
    record_na tine "the chain did not complete: $TIMER_ERROR" "${figs[@]}"
  fi
  say "tine: $CHAIN_LENGTH-function chain after idle gaps of ${CHAIN_IDLE_GAP}s, $CHAIN_IDLE_RUNS runs"
  if timer_measure "$url" --reuse --runs "$CHAIN_IDLE_RUNS" --prepare "sleep $CHAIN_IDLE_GAP" --expect "$expect"; then
    record_series chain_idle tine "each chain after ${CHAIN_IDLE_GAP}s without requests"
  else
    record_na tine "the chain did not complete: $TIMER_ERROR" chain_idle_p50_us chain_idle_p99_us
  fi
  tine_relay_floor
}

# The floor under the chain: CHAIN_LENGTH bare processes relaying 100 bytes
# through an epoll router over pipes (tests/perf/relay_floor.c), the same
# wake-ups with no tine code, pinned like the node.
tine_relay_floor() {
  local out p50 p99
  local pin=()
  [ -z "$SERVER_CPUS" ] || pin=(taskset -c "$SERVER_CPUS")
  if ! cc -O2 -o "$WORK/relay_floor" "$ROOT/tests/perf/relay_floor.c" 2>"$WORK/relay.err"; then
    record_na tine "relay_floor.c does not build: $(tail -n 1 "$WORK/relay.err")" chain_floor_p50_us chain_floor_p99_us
    return 0
  fi
  out=$("${pin[@]}" "$WORK/relay_floor" 200 "$CHAIN_LENGTH" 0 chain)
  p50=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p50") print $(i + 1) * 1000 }' <<<"$out")
  p99=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1) * 1000 }' <<<"$out")
  local note="$CHAIN_LENGTH bare processes relaying through an epoll router over pipes (tests/perf/relay_floor.c)"
  record chain_floor_p50_us tine "$p50" "$note"
  record chain_floor_p99_us tine "$p99" "$note"
}

# Deploy of a generated app of DEPLOY_FUNCTIONS functions (one file each),
# timed from `tine deploy` until the last route answers from the new version.
tine_deploy_many() {
  local dir=$WORK/many i n=$DEPLOY_FUNCTIONS
  mkdir -p "$dir/fns"
  {
    echo "app: bench-many"
    echo "functions:"
    for ((i = 1; i <= n; i++)); do echo "  f$i: { handler: fns/f$i.lua#main }"; done
    echo "routes:"
    for ((i = 1; i <= n; i++)); do echo "  - { method: GET, path: /f$i, function: f$i }"; done
  } >"$dir/tine.yaml"
  for ((i = 1; i <= n; i++)); do
    printf 'local M = {}\nfunction M.main(req, ctx)\n  return "f%d v" .. tostring(ctx.version) .. "."\nend\nreturn M\n' \
      "$i" >"$dir/fns/f$i.lua"
  done
  say "tine: $DEPLOY_RUNS deploys of a $n-function app"
  # The same files each time: --force makes each a new version (a build
  # without --force makes one anyway).
  local force=()
  "$BIN/tine" deploy --help 2>&1 | grep -q -- --force && force=(--force)
  # Version k answers "f250 vk.": sample i (from 0) deploys version i + 1.
  if timer_measure "$TURL/bench-many/f$n" --poll --runs "$DEPLOY_RUNS" --expect "f$n v{n}." \
    --timed-cmd "$(printf '%q ' "$BIN/tine" --url "$TURL" --token "$TTOKEN" deploy "${force[@]}" "$dir")"; then
    record deploy_p50_us tine "${H[p50_us]}" "tine deploy + first answer of the new version's last route"
    record deploy_max_us tine "${H[max_us]}" "tine deploy + first answer of the new version's last route"
  else
    record_failed tine "deploy of $n functions: $TIMER_ERROR" deploy_p50_us deploy_max_us
  fi
}

# Event ingest: a CloudEvent POSTed to /_tine/v1/events until the function it
# triggers has stored its id. n/a while the node has no such endpoint.
tine_events() {
  local figs=(event_p50_us event_p99_us) code
  local ingest=$TURL/_tine/v1/events
  local event='{"specversion":"1.0","id":"bench-{i}","source":"bench","type":"bench.ping","data":{}}'
  if ! deploy_app "$BENCH/apps/events"; then
    record_na tine "$DEPLOY_ERROR" "${figs[@]}"
    return 0
  fi
  code=$(admin_status POST /events -H 'Content-Type: application/cloudevents+json' \
    --data '{"specversion":"1.0","id":"probe","source":"bench","type":"bench.probe","data":{}}')
  if [ "$code" = 404 ]; then
    record_na tine "POST /_tine/v1/events answered 404 (no event ingest yet)" "${figs[@]}"
    return 0
  fi
  say "tine: $EVENT_RUNS events from ingest to the function having run"
  if timer_measure "$ingest" --method POST --auth --token "$TTOKEN" --body "$event" \
    --content-type application/cloudevents+json --reuse --warmup 5 --runs "$EVENT_RUNS" \
    --until "$TURL/bench-events/last" --until-expect "[bench-{i}]"; then
    record_series event tine "POST until GET /bench-events/last shows the id the function stored"
  else
    record_na tine "event ingest did not reach the function: $TIMER_ERROR" "${figs[@]}"
  fi
}

# tine_up NAME [FLAGS...]: a tined with FLAGS serving hello, for the warm
# rounds: UP_URL, UP_PID, or 1 with UP_ERROR (and UP_NA=1 when tined does
# not start: it refuses the flags; bench_tine records the default's failure).
tine_up() {
  local name=$1
  shift
  if ! start_tined "$name" "$@"; then
    UP_ERROR="tined $*: did not start: $TINED_ERROR"
    UP_NA=1
    return 1
  fi
  UP_PID=$TINED_PID
  UP_URL=$TURL/hello/
  if ! deploy_app "$HELLO_APP" || ! wait_http "$UP_URL" 5; then
    UP_ERROR="$name: ${DEPLOY_ERROR:-GET $UP_URL does not answer 200}"
    stop_pid "$UP_PID"
    return 1
  fi
}

# tine_variant NAME FLAGS PREFIX: one more tined with FLAGS, measuring cold
# starts. n/a when tined refuses the flags.
tine_variant() {
  local name=$1 flags=$2 prefix=$3 figs
  figs=("${prefix}_p50_us" "${prefix}_p99_us")
  say "tine ($name): starting tined $flags"
  # shellcheck disable=SC2086 # the flags are words
  if ! start_tined "$name" $flags; then
    record_na tine "tined $flags: did not start: $TINED_ERROR" "${figs[@]}"
    return 0
  fi
  if ! deploy_app "$HELLO_APP"; then
    record_failed tine "$name: $DEPLOY_ERROR" "${figs[@]}"
  else
    tine_cold "$prefix"
  fi
  stop_pid "$TINED_PID"
}

# tine_up_keys NAME public|private|quota: hello in namespace bench, on a
# node holding BENCH_KEYS API keys of ten namespaces (made through the API,
# so their audit entries too); warm rounds then load the public route, or a
# private one (auth: key) with an invoker key that wrk sends (WRK_HEADER),
# or the public route with every quota set on namespace bench, high enough
# never to refuse (so each call is admitted against them: issue 19).
tine_up_keys() {
  local name=$1 route=$2 dir=$WORK/hello-keys i key
  rm -rf "$dir" # the app's copy; start_tined clears the state dir
  if ! start_tined "$name"; then
    UP_ERROR="tined: did not start: $TINED_ERROR"
    return 1
  fi
  UP_PID=$TINED_PID
  if ! tine_cli namespaces create bench >/dev/null 2>"$WORK/keys.err"; then
    UP_ERROR="tine namespaces create: $(tail -n 1 "$WORK/keys.err") (a build without API keys?)"
    UP_NA=1
    stop_pid "$UP_PID"
    return 1
  fi
  for ((i = 0; i < 10; i++)); do tine_cli namespaces create "ns-$i" >/dev/null; done
  for ((i = 0; i < BENCH_KEYS; i++)); do
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $TTOKEN" "$TURL/_tine/v1/keys" \
      --data "{\"name\":\"k$i\",\"role\":\"deployer\",\"namespace\":\"ns-$((i % 10))\"}"
  done
  key=$(tine_cli keys create bench --role invoker --namespace bench 2>/dev/null)
  mkdir -p "$dir"
  cp -r "$HELLO_APP"/. "$dir/"
  sed -i 's/^app: hello/app: hello\nnamespace: bench/' "$dir/tine.yaml"
  echo "  - { method: GET, path: /private, function: hi, auth: key }" >>"$dir/tine.yaml"
  UP_URL=$TURL/hello/
  if [ "$route" = private ]; then
    UP_URL=$TURL/hello/private
    WRK_HEADER="Authorization: Bearer $key"
  fi
  if ! deploy_app "$dir" || ! curl -sf ${WRK_HEADER:+-H "$WRK_HEADER"} -o /dev/null "$UP_URL"; then
    UP_ERROR="$name: ${DEPLOY_ERROR:-GET $UP_URL does not answer 200}"
    stop_pid "$UP_PID"
    return 1
  fi
  if [ "$route" = quota ] && ! tine_cli quota set bench --concurrency 1000000 --sandboxes 1000000 \
    --memory 1000000 --per-minute 1000000000 --spend-per-day 1000000 >/dev/null 2>"$WORK/quota.err"; then
    UP_ERROR="tine quota set: $(tail -n 1 "$WORK/quota.err") (a build without quotas?)"
    UP_NA=1
    stop_pid "$UP_PID"
    return 1
  fi
}

# The warm rounds of API keys on (bench_warm, and BENCH_ONLY=keys): the
# public route, the private one with a key, and the public route with
# quotas set on its namespace, beside tine's own warm hello and the
# baseline build's (BASE_ROUNDS).
KEYS_ROUNDS=("tine|warm_keys_public|tine_up_keys warm-keys-public public"
  "tine|warm_keys_private|tine_up_keys warm-keys-private private"
  "tine|warm_quota|tine_up_keys warm-quota quota")

# tine_up_split NAME: hello with a traffic split active (issue 21): version
# 1 live, version 2 staged and given 50% of clients; wrk sends an
# x-tine-client header, so every request hashes its client key against the
# split (as a split app's requests do), and all of them stay on one side.
tine_up_split() {
  local name=$1
  if ! tine_up "$name" $TINED_FLAGS_DEFAULT; then
    return 1
  fi
  if ! tine_cli deploy --stage --force "$HELLO_APP" >/dev/null 2>"$WORK/split.err" ||
    ! tine_cli split hello 2=50 >/dev/null 2>>"$WORK/split.err"; then
    UP_ERROR="tine split: $(tail -n 1 "$WORK/split.err") (a build without splits?)"
    UP_NA=1
    stop_pid "$UP_PID"
    return 1
  fi
  WRK_HEADER="x-tine-client: bench-client"
  if ! curl -sf -H "$WRK_HEADER" -o /dev/null "$UP_URL"; then
    UP_ERROR="$name: GET $UP_URL does not answer 200 with the split"
    stop_pid "$UP_PID"
    return 1
  fi
}

# The warm rounds of a split (bench_warm, and BENCH_ONLY=split), beside
# tine's own warm hello.
SPLIT_ROUNDS=("tine|warm_split|tine_up_split warm-split")

# The warm rounds of the baseline build (BENCH_BASE_BIN), when there is one.
BASE_ROUNDS=()
if [ -n "$BASE_BIN" ]; then
  BASE_ROUNDS=("tine-base|warm|as_base tine_up warm-base $TINED_FLAGS_DEFAULT"
    "tine-base|warm_act_on|as_base tine_up warm-base-act-on $TINED_FLAGS_ACTIVATIONS_ON"
    "tine-base|warm_act_off|as_base tine_up warm-base-act-off $TINED_FLAGS_ACTIVATIONS_OFF")
fi

# tine_up_tls NAME [FLAGS...]: tine_up over HTTPS, with a certificate for
# 127.0.0.1 made once by openssl; curl and the CLI trust it. wrk speaks
# HTTP/1.1 over TLS on kept-alive connections (one handshake each).
tine_up_tls() {
  local d=$WORK/tls
  if [ ! -s "$d/node.pem" ]; then
    mkdir -p "$d"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1" -keyout "$d/node.key" -out "$d/node.pem" 2>"$d/openssl.err"; then
      UP_ERROR="openssl could not make a certificate: $(tail -n 1 "$d/openssl.err")"
      return 1
    fi
  fi
  export CURL_CA_BUNDLE=$d/node.pem TINE_CACERT=$d/node.pem
  tine_up "$@" --tls-cert "$d/node.pem" --tls-key "$d/node.key"
}

bench_tine_variants() {
  tine_variant isolation-on "$TINED_FLAGS_ISOLATION_ON" cold_iso_on
  tine_variant isolation-off "$TINED_FLAGS_ISOLATION_OFF" cold_iso_off
}

# as_base COMMAND...: COMMAND run against the baseline build (BENCH_BASE_BIN),
# its figures recorded as system tine-base.
as_base() {
  local bin=$BIN sdk=$TINED_SDK_DIR rc=0
  BIN=$BASE_BIN TINED_SDK_DIR=$BASE_SDK BENCH_AS=tine-base
  "$@" || rc=$?
  BIN=$bin TINED_SDK_DIR=$sdk BENCH_AS=tine
  return $rc
}

# The warm figures of every system, in rounds (warm_rounds, common.sh): tine,
# its activation-record variants, the baseline build's when there is one
# (BASE_ROUNDS), the API-key variants, a split, tine over HTTPS, and the peers.
bench_warm() {
  warm_rounds "tine|warm|tine_up warm $TINED_FLAGS_DEFAULT" \
    "${BASE_ROUNDS[@]}" \
    "tine|warm_act_on|tine_up warm-act-on $TINED_FLAGS_ACTIVATIONS_ON" \
    "tine|warm_act_off|tine_up warm-act-off $TINED_FLAGS_ACTIVATIONS_OFF" \
    "${KEYS_ROUNDS[@]}" \
    "${SPLIT_ROUNDS[@]}" \
    "${RUNTIME_ROUNDS[@]}" \
    "tine|warm_tls|tine_up_tls warm-tls $TINED_FLAGS_DEFAULT" \
    "nginx+lua|warm|nginx_up" "workerd|warm|workerd_up" "cgi|warm|cgi_up"
}
