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
# answers; sets UP_URL and UP_PID, or returns 1 with UP_ERROR.
peer_start() {
  local system=$1 url=$2 secs=$3 log=$4
  shift 4
  say "$system: starting"
  spawn "$log" "$@"
  UP_PID=$SPAWNED_PID
  UP_URL=$url
  if ! wait_http "$url" "$secs" "$UP_PID"; then
    UP_ERROR="no answer from $url within $secs s: $(why_down "$UP_PID" "$log")"
    stop_pid "$UP_PID"
    return 1
  fi
}

# peer_measure SYSTEM PSS_PID PSS_NOTE: the figures every peer gets in its
# own block (after the load of one warm round); warm throughput is measured
# in rounds (bench_warm).
peer_measure() {
  wrk_load "$UP_URL"
  measure_pss "$1" "$2" "$3"
  measure_conn "$1" "$UP_URL"
}

# Each X_up starts peer X serving hello (UP_URL, UP_PID) or returns 1 with
# UP_ERROR; its state lives under $WORK/X.
nginx_up() {
  local dir=$WORK/nginx port
  mkdir -p "$dir/tmp"
  port=$(free_port)
  fill_template "$BENCH/peers/nginx.conf.in" "$dir/nginx.conf" DIR="$dir" PORT="$port" NDK="$NGINX_NDK" \
    LUA="$NGINX_LUA" LUA_PATH="$NGINX_LUA_PATH"
  # -e: nginx opens its error log before reading the config.
  peer_start nginx+lua "http://127.0.0.1:$port/hello/" 10 "$dir/error.log" \
    env LD_LIBRARY_PATH="$NGINX_LUAJIT_DIR" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

workerd_up() {
  local dir=$WORK/workerd port
  mkdir -p "$dir"
  port=$(free_port)
  cp "$BENCH/peers/hello.js" "$dir/hello.js"
  fill_template "$BENCH/peers/workerd.capnp.in" "$dir/config.capnp" PORT="$port"
  peer_start workerd "http://127.0.0.1:$port/hello/" 30 "$dir/workerd.log" "$WORKERD" serve "$dir/config.capnp"
}

cgi_up() {
  local dir=$WORK/cgi deadline
  mkdir -p "$dir"
  rm -f "$dir/port"
  say "cgi: starting"
  spawn "$dir/cgi.log" "$CGI_SERVER" 0 "$dir/port" "$BENCH/peers/hello.cgi"
  UP_PID=$SPAWNED_PID
  deadline=$((SECONDS + 5))
  until [ -s "$dir/port" ] || [ $SECONDS -ge $deadline ] || ! alive "$UP_PID"; do sleep 0.05; done
  UP_URL=http://127.0.0.1:$(cat "$dir/port" 2>/dev/null || echo 0)/hello/
  if ! wait_http "$UP_URL" 5 "$UP_PID"; then
    UP_ERROR="no answer from cgi-server: $(why_down "$UP_PID" "$dir/cgi.log")"
    stop_pid "$UP_PID"
    return 1
  fi
}

bench_nginx() {
  meta nginx_version "$(nginx_version), lua module $NGINX_LUA_VERSION"
  nginx_up || { record_failed nginx+lua "$UP_ERROR"; return 0; }
  local worker
  worker=$(pgrep -P "$UP_PID" | head -n 1)
  peer_measure nginx+lua "${worker:-$UP_PID}" "the one nginx worker"
  record cold_p50_us nginx+lua n/a "no cold start: the Lua runs in the warm worker"
  stop_pid "$UP_PID"
}

bench_workerd() {
  meta workerd_version "$("$WORKERD" --version 2>&1 | head -n 1) (npm workerd@$WORKERD_VERSION)"
  workerd_up || { record_failed workerd "$UP_ERROR"; return 0; }
  peer_measure workerd "$UP_PID" "the workerd process serving the worker"
  record cold_p50_us workerd n/a "no cold start measured: the isolate stays loaded"
  stop_pid "$UP_PID"
}

bench_cgi() {
  meta cgi "cgi-server (bench/cgi_server.c): fork + exec of /bin/sh $(readlink -f /bin/sh) per request"
  cgi_up || { record_failed cgi "$UP_ERROR"; return 0; }
  record pss_kib cgi n/a "a handler lives for one request only"
  # Every CGI request is a cold start: one series gives both figures.
  say "cgi: $COLD_RUNS requests, each a fork + exec on a new connection"
  if timer_measure "$UP_URL" --runs "$COLD_RUNS" --warmup 20 --expect "hello, world"; then
    record_series cold cgi "every request forks and execs the handler"
    record_series conn cgi "every request forks and execs the handler"
  else
    record_failed cgi "per-request series: $TIMER_ERROR" cold_p50_us conn_p50_us
  fi
  stop_pid "$UP_PID"
}
