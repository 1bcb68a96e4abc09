# shellcheck shell=bash
# Helpers shared by bench/run's parts: messages, the results file, the
# processes started, ports, CPU pinning and the two load tools (wrk and
# http-timer). Sourced by bench/run, which sets the settings and paths.

say() { echo "bench: $*" >&2; }

# die CODE MESSAGE: stop the whole run (only for missing tools).
die() {
  local code=$1; shift
  echo "bench: $*" >&2
  exit "$code"
}

PIDS=()
FAILURES=0

# Creates the work dir and the results file, and arranges the cleanup.
bench_init() {
  WORK=$(mktemp -d /tmp/tine-bench.XXXXXX)
  RESULTS=$WORK/results.tsv
  : >"$RESULTS"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Stops every process this run started (by pid) and removes the work dir,
# unless BENCH_KEEP=1 asks to keep the logs.
bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
}

# The results file: one line per value, "FIGURE<TAB>SYSTEM<TAB>VALUE<TAB>NOTE".
# Values are raw (µs, req/s, KiB) or "n/a"; report.py turns them into the table.
# Inside as_base (tine.sh), what is recorded for tine is the baseline's.
record() {
  local system=$2
  [ "$system" = tine ] && system=$BENCH_AS
  printf '%s\t%s\t%s\t%s\n' "$1" "$system" "$3" "${4:-}" >>"$RESULTS"
}
BENCH_AS=tine

# record_na SYSTEM REASON FIGURE...: figures that could not be measured
# because the feature is not there (yet). Not a failure.
record_na() {
  local system=$1 reason=$2 f; shift 2
  for f in "$@"; do record "$f" "$system" n/a "$reason"; done
  say "$system: n/a: $reason"
}

# record_failed SYSTEM REASON FIGURE...: something that should have run did
# not; the run will exit 1 after printing the table.
record_failed() {
  local system=$1 reason=$2 f; shift 2
  for f in "$@"; do record "$f" "$system" failed "$reason"; done
  [ $# -gt 0 ] || record "-" "$system" failed "$reason"
  FAILURES=$((FAILURES + 1))
  say "$system: FAILED: $reason"
}

# meta KEY VALUE: a fact printed with the table (versions, settings).
meta() {
  local key=$1
  shift
  printf 'meta\t%s\t%s\t\n' "$key" "$*" >>"$RESULTS"
}

# pin_client CMD...: runs a load generator on the client cpus.
pin_client() {
  if [ -n "$CLIENT_CPUS" ]; then taskset -c "$CLIENT_CPUS" "$@"; else "$@"; fi
}

# spawn LOG CMD...: starts a server on the server cpus in the background;
# sets SPAWNED_PID (taskset execs the command, so it is the server's pid).
spawn() {
  local log=$1; shift
  local pin=()
  [ -z "$SERVER_CPUS" ] || pin=(taskset -c "$SERVER_CPUS")
  "${pin[@]}" "$@" >"$log" 2>&1 </dev/null &
  SPAWNED_PID=$!
  PIDS+=("$SPAWNED_PID")
}

# alive PID: true while the process runs (a zombie does not count).
alive() {
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $s != Z* ]]
}

# stop_pid PID: TERM, up to 5 s to exit, then KILL.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    alive "$pid" || break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# why_down PID LOG: why a server does not answer, for a failure note.
why_down() {
  local st=0 out
  out=$(tail -n 3 "$2" 2>/dev/null | paste -sd ' ')
  if alive "$1"; then
    echo "running but not answering; log: ${out:-empty}"
    return
  fi
  wait "$1" 2>/dev/null || st=$?
  echo "exited with status $st; log: ${out:-empty}"
}

# free_port: a loopback port nobody listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS [PID]: until URL answers 200; fails early if PID exits.
wait_http() {
  local url=$1 pid=${3:-} deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
    if [ -n "$pid" ] && ! alive "$pid"; then return 1; fi
    sleep 0.05
  done
  return 1
}

# pss_kib PID: proportional set size of a process in KiB.
pss_kib() { awk '/^Pss:/ { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null; }

# median: the middle of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# parse_kv ARRAY LINE: "k=v k=v" into the associative array named ARRAY.
parse_kv() {
  local -n into=$1
  local kv
  into=()
  for kv in $2; do into[${kv%%=*}]=${kv#*=}; done
}

declare -A W H

# wrk_warm URL [DURATION]: a warm-up run (WRK_WARMUP), nothing recorded.
wrk_warm() {
  pin_client wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" --timeout 5s -d"${2:-$WRK_WARMUP}" \
    ${WRK_HEADER:+-H "$WRK_HEADER"} "$1" >/dev/null 2>&1 || true
}

# wrk_load URL: the load of one warm round (warm-up and a measured run's
# length), nothing recorded: what a system has served before its memory and
# new-connection figures are taken.
wrk_load() {
  wrk_warm "$1"
  wrk_warm "$1" "$WRK_DURATION"
}

# wrk_once URL: one measured run (WRK_DURATION), with the header
# WRK_HEADER when set; sets WRK_LINE to its report
# ("rps=... p50_us=... ..."). 1 with WRK_ERROR on failure.
wrk_once() {
  local out
  if ! out=$(pin_client wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" --timeout 5s -d"$WRK_DURATION" \
    ${WRK_HEADER:+-H "$WRK_HEADER"} -s "$BENCH/wrk_report.lua" "$1" 2>&1); then
    WRK_ERROR="wrk failed: $(tail -n 1 <<<"$out")"
    return 1
  fi
  if ! out=$(grep '^wrk-report ' <<<"$out"); then
    WRK_ERROR="wrk printed no report"
    return 1
  fi
  WRK_LINE=${out#wrk-report }
}

# record_warm SYSTEM PREFIX REPORT...: the report with the median throughput
# of a system's runs; PREFIX "warm" records its rps and latency percentiles,
# any other prefix the rps only.
record_warm() {
  local system=$1 prefix=$2 note=${WARM_NOTE:-}
  shift 2
  parse_kv W "$(printf '%s\n' "$@" | sort -t= -k2 -g | sed -n "$((($# + 1) / 2))p")"
  if [ "${W[requests]}" = 0 ]; then
    record_failed "$system" "wrk completed no request" "${prefix}_rps"
    return 0
  fi
  if [ "${W[socket_errors]}" != 0 ] || [ "${W[non2xx]}" != 0 ]; then
    note="${note:+$note; }wrk saw ${W[socket_errors]} socket errors and ${W[non2xx]} non-2xx answers in ${W[requests]} requests"
  fi
  [ $# -eq "$WRK_REPEAT" ] || note="${note:+$note; }median of $# runs, $((WRK_REPEAT - $#)) could not run"
  local all
  all=$(printf '%s\n' "$@" | sed -n 's/^rps=\([0-9]*\).*/\1/p' | paste -sd ' ')
  record "${prefix}_rps" "$system" "${W[rps]}" "${note:+$note; }rounds (req/s, in order): $all"
  [ "$prefix" = warm ] || return 0
  record warm_p50_us "$system" "${W[p50_us]}" "$note"
  record warm_p90_us "$system" "${W[p90_us]}" "$note"
  record warm_p99_us "$system" "${W[p99_us]}" "$note"
}

# The warm figures are measured in rounds, the systems in turn: in each of
# WRK_REPEAT rounds every system is started, warmed up, measured once and
# stopped, and a system's figure is its median run. A machine whose speed
# drifts over minutes (a shared VM) then weighs on every system alike, where
# measuring one system after the other would hand the drift to the ratios.
#
# warm_rounds ENTRY...: ENTRY is "SYSTEM|PREFIX|UP_FUNCTION [ARGS]"; the up
# function starts the system (hello at UP_URL, its pid UP_PID) or returns 1
# with UP_ERROR, and UP_NA=1 when the figure does not exist (a tined that
# refuses a variant's flags): then it is n/a, not a failure.
#
# Each system is first measured at every connection count of WRK_SWEEP
# (one short run each, WRK_SWEEP_DURATION) and its rounds use the count at
# which it served most: a server is measured at its best rather than at
# one count that suits some (tine, nginx at 16) and starves others
# (workerd wants 32 or more). The counts and their throughput go in the
# note of its figure.
warm_sweep() {
  local e=$1 system prefix up c best=0 best_c=$WRK_CONNECTIONS tried=""
  IFS='|' read -r system prefix up <<<"$e"
  SWEEP_NOTE=""
  [ -n "$WRK_SWEEP" ] || return 0
  say "connections sweep: $system ($prefix): $WRK_SWEEP"
  UP_NA=0
  WRK_HEADER=
  # shellcheck disable=SC2086 # the function and its arguments are words
  $up || return 0
  local saved=$WRK_CONNECTIONS dur=$WRK_DURATION
  for c in $WRK_SWEEP; do
    WRK_CONNECTIONS=$c WRK_DURATION=$WRK_SWEEP_DURATION
    wrk_warm "$UP_URL" 1s
    if wrk_once "$UP_URL"; then
      parse_kv W "$WRK_LINE"
      tried+="${tried:+, }-c$c ${W[rps]%.*}"
      if [ "${W[rps]%.*}" -gt "$best" ]; then best=${W[rps]%.*} best_c=$c; fi
    else
      say "$system at -c$c: $WRK_ERROR"
    fi
  done
  WRK_CONNECTIONS=$saved WRK_DURATION=$dur
  stop_pid "$UP_PID"
  SWEEP_CONNS=$best_c
  SWEEP_NOTE="at -c$best_c, its best of a sweep ($tried req/s)"
}

warm_rounds() {
  local r e system prefix up
  local -A runs=() errors=() na=() conns=() sweep=()
  for e in "$@"; do
    SWEEP_CONNS=$WRK_CONNECTIONS
    warm_sweep "$e"
    IFS='|' read -r system prefix up <<<"$e"
    conns[$prefix:$system]=$SWEEP_CONNS
    sweep[$prefix:$system]=$SWEEP_NOTE
  done
  local default_conns=$WRK_CONNECTIONS
  for ((r = 1; r <= WRK_REPEAT; r++)); do
    for e in "$@"; do
      IFS='|' read -r system prefix up <<<"$e"
      say "warm round $r/$WRK_REPEAT: $system ($prefix)"
      UP_NA=0
      WRK_HEADER= # an up function may set a header wrk sends (a key)
      WRK_CONNECTIONS=${conns[$prefix:$system]}
      # shellcheck disable=SC2086 # the function and its arguments are words
      if ! $up; then
        errors[$prefix:$system]=$UP_ERROR
        [ "$UP_NA" = 1 ] && na[$prefix:$system]=1
        continue
      fi
      wrk_warm "$UP_URL"
      if wrk_once "$UP_URL"; then
        runs[$prefix:$system]+="$WRK_LINE"$'\n'
      else
        errors[$prefix:$system]=$WRK_ERROR
      fi
      stop_pid "$UP_PID"
    done
  done
  WRK_CONNECTIONS=$default_conns
  for e in "$@"; do
    IFS='|' read -r system prefix up <<<"$e"
    local lines=()
    mapfile -t lines < <(printf '%s' "${runs[$prefix:$system]:-}")
    if [ ${#lines[@]} -eq 0 ] && [ -n "${na[$prefix:$system]:-}" ]; then
      record_na "$system" "${errors[$prefix:$system]}" "${prefix}_rps"
    elif [ ${#lines[@]} -eq 0 ]; then
      record_failed "$system" "${errors[$prefix:$system]:-no run}" "${prefix}_rps"
    else
      WARM_NOTE=${sweep[$prefix:$system]}
      record_warm "$system" "$prefix" "${lines[@]}"
      WARM_NOTE=
    fi
  done
}

# timer_measure ARGS...: runs http-timer on the client cpus; fills H (p50_us,
# p90_us, p99_us, max_us, ...). 1 with TIMER_ERROR (its last line) on failure.
timer_measure() {
  local out
  if ! out=$(pin_client "$HTTP_TIMER" "$@" 2>"$WORK/timer.err"); then
    # Its last line, without the "http-timer: URL " the note already implies.
    TIMER_ERROR=$(tail -n 1 "$WORK/timer.err" | sed 's/^http-timer: [^ ]* //')
    return 1
  fi
  parse_kv H "$out"
}

# record_series PREFIX SYSTEM NOTE: p50 and p99 of the last timer_measure.
record_series() {
  record "$1_p50_us" "$2" "${H[p50_us]}" "$3"
  record "$1_p99_us" "$2" "${H[p99_us]}" "$3"
}

# measure_conn SYSTEM URL: one request on a new connection each time, warm.
measure_conn() {
  say "$1: $CONN_RUNS requests, each on a new connection"
  if timer_measure "$2" --runs "$CONN_RUNS" --warmup 20 --expect "hello, world"; then
    record_series conn "$1" ""
  else
    record_failed "$1" "new-connection series: $TIMER_ERROR" conn_p50_us conn_p99_us
  fi
}

# measure_pss SYSTEM PID NOTE: memory of one warm instance.
measure_pss() {
  local kib
  if kib=$(pss_kib "$2") && [ -n "$kib" ]; then
    record pss_kib "$1" "$kib" "$3"
  else
    record_failed "$1" "cannot read /proc/$2/smaps_rollup" pss_kib
  fi
}
