# shellcheck shell=bash
# The runtimes side by side (issue 20): hello as a Python function
# (bench/apps/hello-py), as a Node function (bench/apps/hello-js) and as
# `runtime: exec` running python3 per call
# (bench/apps/hello-exec-py, the baseline a user had before), beside the Lua
# hello of bench_tine (figures cold_p50_us, warm_rps, pss_kib): cold starts
# after eviction, the memory of a warm Python sandbox, and warm throughput
# in the warm rounds (RUNTIME_ROUNDS, run by bench_warm).

PY_APP=$BENCH/apps/hello-py
JS_APP=$BENCH/apps/hello-js
EXEC_PY_APP=$BENCH/apps/hello-exec-py
RUNTIME_ROUNDS=(
  "tine|warm_python|runtime_up warm-python $PY_APP hello-py"
  "tine|warm_node|runtime_up warm-node $JS_APP hello-js"
  "tine|warm_exec_python|runtime_up warm-exec-python $EXEC_PY_APP hello-exec-py"
)

# runtime_cold APP PREFIX [PAUSE]: COLD_RUNS cold starts of APP's hello (its
# sandboxes evicted before each, then PAUSE seconds untimed), as
# PREFIX_p50_us / _p99_us.
runtime_cold() {
  local app=$1 prefix=$2 pause=${3:-} runs=$COLD_RUNS evict=/apps/$1/sandboxes paced=()
  # exec runs a program per call: every call is cold, and slow; fewer runs.
  [ "$prefix" = cold_exec_python ] && runs=$(((COLD_RUNS + 5) / 6))
  [ -n "$pause" ] && paced=(--prepare "sleep $pause")
  say "tine: $runs cold starts of $app${pause:+, $pause s apart}"
  if timer_measure "$TURL/$app/" --runs "$runs" --warmup 3 --expect "hello, world" \
    --evict "$TURL/_tine/v1$evict" --token "$TTOKEN" "${paced[@]}"; then
    record_series "$prefix" tine "$app: cold by eviction (DELETE /_tine/v1$evict${pause:+, then $pause s untimed}) before each of $runs runs"
  else
    record_failed tine "$app cold-start series: $TIMER_ERROR" "${prefix}_p50_us" "${prefix}_p99_us"
  fi
}

# The PSS of the warm sandboxes of APP left by a load (their median), as
# FIGURE.
runtime_memory() {
  local app=$1 figure=$2 pids pid kib values=()
  pids=$(curl -s -H "Authorization: Bearer $TTOKEN" "$TURL/_tine/v1/sandboxes" | python3 -c '
import json, sys
for pool in json.load(sys.stdin).get("pools", []):
    if pool.get("app") == sys.argv[1] and not pool.get("retired"):
        for s in pool.get("sandboxes", []):
            if s.get("state") == "idle":
                print(s["pid"])' "$app" 2>/dev/null || true)
  for pid in $pids; do
    kib=$(pss_kib "$pid") && [ -n "$kib" ] && values+=("$kib")
  done
  if [ ${#values[@]} -eq 0 ]; then
    record_failed tine "no readable warm sandbox of $app in GET /_tine/v1/sandboxes" "$figure"
    return 0
  fi
  record "$figure" tine "$(printf '%s\n' "${values[@]}" | median)" \
    "median of the ${#values[@]} warm $app sandboxes after the load of one warm round"
}

bench_runtimes() {
  say "tine (runtimes): starting tined ${TINED_FLAGS_DEFAULT}"
  # shellcheck disable=SC2086 # the flags are words
  if ! start_tined runtimes $TINED_FLAGS_DEFAULT; then
    record_failed tine "tined did not start: $TINED_ERROR" cold_python_p50_us
    return 0
  fi
  if ! deploy_app "$PY_APP" || ! deploy_app "$JS_APP" || ! deploy_app "$EXEC_PY_APP"; then
    record_failed tine "$DEPLOY_ERROR" cold_python_p50_us cold_node_p50_us cold_exec_python_p50_us
    stop_pid "$TINED_PID"
    return 0
  fi
  wait_http "$TURL/hello-py/" 10 || record_failed tine "GET $TURL/hello-py/ does not answer 200"
  wrk_load "$TURL/hello-py/"
  runtime_memory hello-py pss_python_kib
  wait_http "$TURL/hello-js/" 10 || record_failed tine "GET $TURL/hello-js/ does not answer 200"
  wrk_load "$TURL/hello-js/"
  runtime_memory hello-js pss_node_kib
  runtime_cold hello-py cold_python
  # A Node cold start takes a started spare, whose replacement takes node's
  # start (tens of ms): back to back, cold starts outrun the spares. The
  # budget's figure leaves NODE_COLD_PAUSE between them; the burst figure
  # none.
  runtime_cold hello-js cold_node "${NODE_COLD_PAUSE:-0.25}"
  runtime_cold hello-js cold_node_burst
  runtime_cold hello-exec-py cold_exec_python
  stop_pid "$TINED_PID"
}

# runtime_up NAME APP_DIR APP: a tined serving APP for the warm rounds.
runtime_up() {
  local name=$1 dir=$2 app=$3
  if ! start_tined "$name" $TINED_FLAGS_DEFAULT; then
    UP_ERROR="tined: did not start: $TINED_ERROR"
    return 1
  fi
  UP_PID=$TINED_PID
  UP_URL=$TURL/$app/
  if ! deploy_app "$dir" || ! wait_http "$UP_URL" 10; then
    UP_ERROR="$name: ${DEPLOY_ERROR:-GET $UP_URL does not answer 200}"
    stop_pid "$UP_PID"
    return 1
  fi
}
