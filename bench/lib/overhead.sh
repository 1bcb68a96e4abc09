# What the paired overhead scripts share (tls_overhead.sh, quota_overhead.sh):
# a Redis on a unix socket in $T, tined nodes on it, one wrk run measuring
# req/s and tined's CPU time per request (utime + stime over the requests wrk
# completed: steadier than req/s on a shared machine), rounds alternating
# two URLs, and the median of the ratios. Needs SRC, BIN, ROUNDS, SECS and
# CONNS set by the script; sets T (a temp dir, removed at exit) and PIDS
# (killed at exit). With two CPUs or more tined runs on cpu 0 and wrk on
# cpu 1.
T=$(mktemp -d /tmp/tine-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT
SRV=() CLI=()
if [ "$(nproc)" -ge 2 ]; then SRV=(taskset -c 0) CLI=(taskset -c 1); fi

# ov_redis: a redis-server on $T/redis.sock.
ov_redis() {
  redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
    --logfile "$T/redis.log" &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -s "$T/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# ov_start NAME [FLAGS...]: a tined without auth on the Redis; sets NODE_URL
# (https when flags are given: they are TLS's) and NODE_PID.
ov_start() {
  local name=$1 scheme=http
  shift
  [ $# -eq 0 ] || scheme=https
  "${SRV[@]}" "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$name" --sdk-dir "$SRC/sdk/lua" --no-auth \
    --redis "unix://$T/redis.sock" "$@" >"$T/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$T/$name/port" ] && break; sleep 0.05; done
  NODE_URL="$scheme://127.0.0.1:$(cat "$T/$name/port")"
}

ov_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
OV_HZ=$(getconf CLK_TCK)

# ov_run URL PID: one wrk run; prints "REQ_PER_S CPU_US_PER_REQUEST".
ov_run() {
  local c0 out
  c0=$(ov_ticks "$2")
  out=$("${CLI[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "$1")
  awk -v c="$(($(ov_ticks "$2") - c0))" -v hz="$OV_HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%s %.2f\n", r, c * 1e6 / hz / n}' <<<"$out"
}

ov_median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# ov_rounds NAME_A URL_A PID_A NAME_B URL_B PID_B: a 2 s warm-up of each,
# then ROUNDS pairs of runs (the order alternating), a row per round and
# the median ratios B/A of req/s and of CPU per request.
ov_rounds() {
  local na=$1 ua=$2 pa=$3 nb=$4 ub=$5 pb=$6 r a b rr=() cr=()
  for u in "$ua" "$ub"; do "${CLI[@]}" wrk -t1 -c"$CONNS" -d2s "$u" >/dev/null; done
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-6s %13s %13s %7s   %16s %16s %7s\n' round "$na req/s" "$nb req/s" ratio "$na cpu us/req" \
    "$nb cpu us/req" ratio
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then a=($(ov_run "$ua" "$pa")); b=($(ov_run "$ub" "$pb"))
    else b=($(ov_run "$ub" "$pb")); a=($(ov_run "$ua" "$pa")); fi
    rr+=("$(echo "${b[0]} / ${a[0]}" | bc -l)")
    cr+=("$(echo "${b[1]} / ${a[1]}" | bc -l)")
    printf '%-6s %13s %13s %7.3f   %16s %16s %7.3f\n' "$r" "${a[0]}" "${b[0]}" "${rr[-1]}" "${a[1]}" "${b[1]}" \
      "${cr[-1]}"
  done
  printf 'median %s/%s: throughput %.3f, tined CPU per request %.3f\n' "$nb" "$na" \
    "$(printf '%s\n' "${rr[@]}" | ov_median)" "$(printf '%s\n' "${cr[@]}" | ov_median)"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
