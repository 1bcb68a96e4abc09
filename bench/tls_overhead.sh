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
# shellcheck source=bench/lib/overhead.sh
. "$SRC/bench/lib/overhead.sh" # T, PIDS, cleanup at exit

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/node.key" -out "$T/node.pem" 2>/dev/null
ov_redis
ov_start plain
PLAIN=$NODE_URL PLAIN_PID=$NODE_PID
ov_start tls --tls-cert "$T/node.pem" --tls-key "$T/node.key"
TLS=$NODE_URL TLS_PID=$NODE_PID
"$BIN/tine" --url "$PLAIN" --token "" deploy "$SRC/functions-examples/hello" >/dev/null
for u in "$PLAIN" "$TLS"; do curl -sf --cacert "$T/node.pem" "$u/hello/" >/dev/null; done
ov_rounds http "$PLAIN/hello/" "$PLAIN_PID" https "$TLS/hello/" "$TLS_PID"
