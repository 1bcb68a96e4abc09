# shellcheck shell=bash
# The peers, each serving the same "hello, world\n" at GET /hello/ on
# loopback: nginx + Lua (in-process Lua, the ceiling), workerd (Cloudflare's
# Workers runtime) and a fork-per-request CGI server (no warm instances).

# fill_template IN OUT NAME=VALUE...: copies IN to OUT replacing each @NAME@.
fill_template() {
  local in=$1 out=$2 kv script=()
  shift 2
  for kv in "$@"; do script+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${script[@]}" "$in" >"$out"
}

# peer_start SYSTEM URL SECONDS LOG CMD...: starts a peer and waits until it
# answers; 1 (recorded as a failure) when it does not.
peer_start() {
  local system=$1 url=$2 secs=$3 log=$4
  shift 4
  say "$system: starting"
  spawn "$log" "$@"
  PEER_PID=$SPAWNED_PID
  if ! wait_http "$url" "$secs" "$PEER_PID"; then
    record_failed "$system" "no answer from $url within $secs s: $(why_down "$PEER_PID" "$log")"
    stop_pid "$PEER_PID"
    return 1
  fi
}

# peer_measure SYSTEM URL PSS_PID PSS_NOTE: the figures every peer gets.
peer_measure() {
  measure_warm "$1" "$2" || record_failed "$1" "$WRK_ERROR" warm_rps
  measure_pss "$1" "$3" "$4"
  measure_conn "$1" "$2"
}

bench_nginx() {
  local dir=$WORK/nginx port url worker
  mkdir -p "$dir/tmp"
  port=$(free_port)
  url=http://127.0.0.1:$port/hello/
  fill_template "$BENCH/peers/nginx.conf.in" "$dir/nginx.conf" DIR="$dir" PORT="$port" NDK="$NGINX_NDK" \
    LUA="$NGINX_LUA" LUA_PATH="$NGINX_LUA_PATH"
  meta nginx_version "$(nginx_version), lua module $NGINX_LUA_VERSION"
  # -e: nginx opens its error log before reading the config.
  peer_start nginx+lua "$url" 10 "$dir/error.log" \
    env LD_LIBRARY_PATH="$NGINX_LUAJIT_DIR" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || return 0
  worker=$(pgrep -P "$PEER_PID" | head -n 1)
  peer_measure nginx+lua "$url" "${worker:-$PEER_PID}" "the one nginx worker"
  record cold_p50_us nginx+lua n/a "no cold start: the Lua runs in the warm worker"
  stop_pid "$PEER_PID"
}

bench_workerd() {
  local dir=$WORK/workerd port url
  mkdir -p "$dir"
  port=$(free_port)
  url=http://127.0.0.1:$port/hello/
  cp "$BENCH/peers/hello.js" "$dir/hello.js"
  fill_template "$BENCH/peers/workerd.capnp.in" "$dir/config.capnp" PORT="$port"
  meta workerd_version "$("$WORKERD" --version 2>&1 | head -n 1) (npm workerd@$WORKERD_VERSION)"
  peer_start workerd "$url" 30 "$dir/workerd.log" "$WORKERD" serve "$dir/config.capnp" || return 0
  peer_measure workerd "$url" "$PEER_PID" "the workerd process serving the worker"
  record cold_p50_us workerd n/a "no cold start measured: the isolate stays loaded"
  stop_pid "$PEER_PID"
}

bench_cgi() {
  local dir=$WORK/cgi url deadline
  mkdir -p "$dir"
  meta cgi "cgi-server (bench/cgi_server.c): fork + exec of /bin/sh $(readlink -f /bin/sh) per request"
  spawn "$dir/cgi.log" "$CGI_SERVER" 0 "$dir/port" "$BENCH/peers/hello.cgi"
  PEER_PID=$SPAWNED_PID
  deadline=$((SECONDS + 5))
  until [ -s "$dir/port" ] || [ $SECONDS -ge $deadline ] || ! alive "$PEER_PID"; do sleep 0.05; done
  url=http://127.0.0.1:$(cat "$dir/port" 2>/dev/null || echo 0)/hello/
  if ! wait_http "$url" 5 "$PEER_PID"; then
    record_failed cgi "no answer from cgi-server: $(why_down "$PEER_PID" "$dir/cgi.log")"
    stop_pid "$PEER_PID"
    return 0
  fi
  measure_warm cgi "$url" || record_failed cgi "$WRK_ERROR" warm_rps
  record pss_kib cgi n/a "a handler lives for one request only"
  # Every CGI request is a cold start: one series gives both figures.
  say "cgi: $COLD_RUNS requests, each a fork + exec on a new connection"
  if timer_measure "$url" --runs "$COLD_RUNS" --warmup 20 --expect "hello, world"; then
    record_series cold cgi "every request forks and execs the handler"
    record_series conn cgi "every request forks and execs the handler"
  else
    record_failed cgi "per-request series: $TIMER_ERROR" cold_p50_us conn_p50_us
  fi
  stop_pid "$PEER_PID"
}
