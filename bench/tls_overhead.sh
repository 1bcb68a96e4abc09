#!/usr/bin/env bash
# Warm throughput of the hello app over HTTPS and over plain HTTP in one run:
# two nodes on one Redis (one with --tls-cert, a certificate made here by
# openssl), alternating runs of `wrk -t1 -cC` (HTTP/1.1 kept alive; over TLS
# the handshakes happen once per connection, before the measured seconds).
# With two CPUs or more, tined runs on cpu 0 and wrk on cpu 1. Prints, per
# round, each node's req/s and tined's CPU time per request (utime + stime
# over the requests wrk completed: steadier than req/s on a shared machine),
# then the ratios; asserts nothing (timings depend on the machine).
#   bench/tls_overhead.sh [ROUNDS] [SECONDS] [CONNECTIONS]
# BENCH_TINE_BIN (or TINE_BIN_DIR) measures another build's bin directory.
set -euo pipefail
ROUNDS=${1:-6}
SECS=${2:-5}
CONNS=${3:-16}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_TINE_BIN:-${TINE_BIN_DIR:-$SRC/build/bin}}
for tool in wrk openssl redis-server curl bc; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/deps.sh)" >&2; exit 2; }
done
T=$(mktemp -d /tmp/tine-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT
SRV=() CLI=()
if [ "$(nproc)" -ge 2 ]; then SRV=(taskset -c 0) CLI=(taskset -c 1); fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/node.key" -out "$T/node.pem" 2>/dev/null
redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
  --logfile "$T/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -s "$T/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done

start() { # start NAME [FLAGS...]: sets NODE_URL, NODE_PID
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
start plain
PLAIN=$NODE_URL PLAIN_PID=$NODE_PID
start tls --tls-cert "$T/node.pem" --tls-key "$T/node.key"
TLS=$NODE_URL TLS_PID=$NODE_PID
"$BIN/tine" --url "$PLAIN" --token "" deploy "$SRC/functions-examples/hello" >/dev/null
for u in "$PLAIN" "$TLS"; do curl -sf --cacert "$T/node.pem" "$u/hello/" >/dev/null; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# run URL PID: one wrk run; prints "REQ_PER_S CPU_US_PER_REQUEST".
run() {
  local c0 out
  c0=$(ticks "$2")
  out=$("${CLI[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "$1/hello/")
  awk -v c="$(($(ticks "$2") - c0))" -v hz="$HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%s %.2f\n", r, c * 1e6 / hz / n}' <<<"$out"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
for u in "$PLAIN" "$TLS"; do "${CLI[@]}" wrk -t1 -c"$CONNS" -d2s "$u/hello/" >/dev/null; done # warm-up
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %13s %13s %7s   %14s %14s %7s\n' round "http req/s" "https req/s" ratio "http cpu us/req" \
  "https cpu us/req" ratio
rr=() cr=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=($(run "$PLAIN" "$PLAIN_PID")); b=($(run "$TLS" "$TLS_PID"))
  else b=($(run "$TLS" "$TLS_PID")); a=($(run "$PLAIN" "$PLAIN_PID")); fi
  rr+=("$(echo "${b[0]} / ${a[0]}" | bc -l)")
  cr+=("$(echo "${b[1]} / ${a[1]}" | bc -l)")
  printf '%-6s %13s %13s %7.3f   %14s %14s %7.3f\n' "$r" "${a[0]}" "${b[0]}" "${rr[-1]}" "${a[1]}" "${b[1]}" "${cr[-1]}"
done
printf 'median https/http: throughput %.3f, tined CPU per request %.3f\n' \
  "$(printf '%s\n' "${rr[@]}" | median)" "$(printf '%s\n' "${cr[@]}" | median)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
