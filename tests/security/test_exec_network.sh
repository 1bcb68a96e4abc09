#!/usr/bin/env bash
# Exec programs with `network: true` live in a network namespace of their own
# (only loopback) and go out through the runner's egress proxy, under the
# policy tine.http applies (common/outbound.h): they must not reach loopback
# listeners, the node's Redis over TCP, tined's own port, link-local or
# metadata addresses, the node's other addresses, nor a host outside
# allow_outbound, however they ask (a name, a numeric trick, a CONNECT to an
# address in those ranges, a program ignoring the proxy). A host the app
# lists by name is reached with curl, wget and python through the proxy, and
# tine.http agrees on each case.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
  skip "exec network" "network: true needs tined running as root (tests/security/test_unprivileged.sh checks the refusal)"
  finish_security
  exit $?
fi
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"

# The node's Redis on TCP, so there is a Redis port to attack.
RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$T/redis.log" &
PIDS+=($!)
wait_for 10 redis-cli -p "$RPORT" ping || { echo "redis did not start"; exit 1; }
start_node a --redis "redis://127.0.0.1:$RPORT"
TPORT=$(cat "$T/a/port")
load_doctor
CHECK="exec network"
need_layers net-namespace || { finish_security; exit $?; }
# As root with network namespaces, nothing may keep a networked program in
# the host's namespace.
check "the exec-network layer is on" "true" "$(layer_field exec-network active)"

# Listeners of the test: loopback v4, loopback v6, and every address (for
# the host's own non-loopback address). Each answers "hello from NAME" and
# logs every request it gets.
cat >"$T/serve.py" <<'PY'
import http.server, socket, sys
name, family, addr, portfile = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + name).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if family == "6" else socket.AF_INET
s = S((addr, 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
serve() { python3 "$T/serve.py" "$1" "$2" "$3" "$T/$1.port" 2>"$T/$1.log" & PIDS+=($!); wait_for 10 test -s "$T/$1.port"; }
serve lo4 4 127.0.0.1
serve lo6 6 ::1
serve any 4 0.0.0.0
L4=$(cat "$T/lo4.port") L6=$(cat "$T/lo6.port") LA=$(cat "$T/any.port")
HOSTIP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ print $4 }' | cut -d/ -f1 | head -1)
hits() { grep -c '"GET ' "$T/$1.log" || true; }

mkdir -p "$T/netdef" "$T/netallow"
cat >"$T/netdef/tine.yaml" <<'YAML'
app: netdef
functions:
  probe: { runtime: exec, handler: probe.sh, network: true, timeout: 30s }
  http:  { handler: h.lua#get, timeout: 10s }
YAML
cat >"$T/netallow/tine.yaml" <<'YAML'
app: netallow
allow_outbound: [ "127.0.0.1" ]
functions:
  probe: { runtime: exec, handler: probe.sh, network: true, timeout: 30s }
  http:  { handler: h.lua#get, timeout: 10s }
YAML
# probe.sh reads {"how": ..., "target": ...} and prints what it got, always
# exiting 0: curl (plain HTTP through the proxy), tunnel (curl with CONNECT),
# raw (a CONNECT written by hand), direct (bash's /dev/tcp, no proxy),
# noproxy (curl told to go around it), wget, python (urllib), git, pip.
cat >"$T/netdef/probe.sh" <<'SH'
#!/bin/bash
EVENT=$(cat)
arg() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$EVENT"; }
how=$(arg how) target=$(arg target)
case $how in
  curl) curl -sS -m 10 -o body -w '%{http_code} ' "$target" 2>&1; cat body 2>/dev/null ;;
  tunnel) curl -sS -m 10 -p -o body -w '%{http_code} ' "$target" 2>&1; cat body 2>/dev/null ;;
  raw) exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' "$target" "$target" >&3 &&
    timeout 10 head -c 400 <&3 | tr -d '\r' | grep -v '^$' | grep -v '^Content-\|^Connection' | tr '\n' ' ' ;;
  direct) (exec 3<>"/dev/tcp/${target%:*}/${target##*:}" && echo "CONNECTED") 2>&1 ;;
  noproxy) curl --noproxy '*' -sS -m 5 "$target" 2>&1 ;;
  wget) wget -q -O- -T 10 "$target" 2>&1 ;;
  python) python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "$target" 2>&1 | tail -1 ;;
  git) git ls-remote "$target" 2>&1 | tail -1 ;;
  pip) python3 -m pip download --no-deps --retries 0 --timeout 10 --index-url "$target" -d pkgs tine-nothing 2>&1 |
    grep -i "error\|403\|no matching" | head -2 | tr '\n' ' ' ;;
esac
exit 0
SH
cat >"$T/netdef/h.lua" <<'LUA'
local tine = require "tine"
return { get = function(ev)
  local ok, r = pcall(tine.http.request, { url = ev.url })
  if ok then return r.status .. " " .. r.body end
  return "error " .. tostring(r)
end }
LUA
cp "$T/netdef/probe.sh" "$T/netdef/h.lua" "$T/netallow/"
tine deploy "$T/netdef" >/dev/null
tine deploy "$T/netallow" >/dev/null

# probe APP HOW TARGET: sets OUT (the program's output, or its error).
probe() {
  inv "$1" probe "{\"how\":\"$2\",\"target\":\"$3\"}"
  OUT=$ERR
  [ "$STATUS" = 200 ] || OUT="status $STATUS: $ERR"
}
# refused NAME APP HOW TARGET NEEDLE: the proxy answered 403 naming why.
refused() {
  probe "$2" "$3" "$4"
  if [[ "$OUT" == *"403"* && "$OUT" == *"$5"* ]]; then ok "$1: refused (${OUT:0:140})"
  elif [[ "$3" == tunnel && "$OUT" == *"CONNECT tunnel failed, response 403"* ]]; then ok "$1: refused (${OUT:0:140})"
  else fail "$1" "expected 403 with [$5], got [$OUT]"; fi
}
# lua_http NAME APP URL NEEDLE: tine.http's answer holds NEEDLE.
lua_http() {
  inv "$2" http "{\"url\":\"$3\"}"
  if [[ "$ERR" == *"$4"* ]]; then ok "$1 (${ERR:0:140})"; else fail "$1" "expected [$4], got [$ERR]"; fi
}
LOOP="a loopback address; list the host in allow_outbound to reach it"

# --- the default policy (no allow_outbound)
refused "127.0.0.1 (a listener of the test)" netdef curl "http://127.0.0.1:$L4/" "is at 127.0.0.1, $LOOP"
refused "::1 (a listener of the test)" netdef curl "http://[::1]:$L6/" "is at ::1, $LOOP"
refused "the node's Redis over TCP" netdef raw "127.0.0.1:$RPORT" "is at 127.0.0.1, $LOOP"
refused "tined's own port" netdef curl "http://127.0.0.1:$TPORT/_tine/v1/health" "is at 127.0.0.1, $LOOP"
refused "cloud metadata (169.254.169.254)" netdef curl "http://169.254.169.254/latest/meta-data/" \
  "is at 169.254.169.254, a link-local address"
if [ -n "$HOSTIP" ]; then
  refused "the host's own address $HOSTIP" netdef curl "http://$HOSTIP:$LA/" "is at $HOSTIP, an address of this node"
else
  skip "the host's own address" "this machine has no global IPv4 address"
fi
refused "localhost" netdef curl "http://localhost:$L4/" "host localhost is at "
refused "a decimal name of 127.0.0.1 (2130706433)" netdef curl "http://2130706433:$L4/" "is at 127.0.0.1, $LOOP"
refused "a short name of 127.0.0.1 (127.1)" netdef curl "http://127.1:$L4/" "is at 127.0.0.1, $LOOP"
refused "localhost through CONNECT (curl -p)" netdef tunnel "http://localhost:$L4/" "localhost"
probe netdef git "http://127.0.0.1:$L4/repo.git"
check_contains "git through the proxy: refused" "403" "$OUT"
# tined's log holds function lines as JSON: {"msg":"[tine] network: ...","app":"netdef","function":"probe",...}
netlog() { grep -F "\"msg\":\"[tine] network: $1" "$T/a.log" | grep -F '"app":"netdef","version":"1","function":"probe"' || true; }
refusals() { netlog "GET 127.0.0.1:$L4 refused" | grep -c . || true; }
before=$(refusals)
probe netdef pip "http://127.0.0.1:$L4/simple"
wait_for 5 test "$(refusals)" -gt "$before" || true
check_contains "pip through the proxy: no index" "No matching distribution" "$OUT"
check "pip through the proxy: refused (a log line)" "yes" "$([ "$(refusals)" -gt "$before" ] && echo yes)"
for t in "127.0.0.1:$L4" "[::1]:$L6" "[::ffff:127.0.0.1]:$L4" "0.0.0.0:$L4" "[::]:$L6" "169.254.169.254:80" \
  "[fe80::1]:80" "[fd00:ec2::254]:80" "localhost:$L4" "2130706433:$L4" "0x7f000001:$L4" "127.1:$L4"; do
  refused "CONNECT $t" netdef raw "$t" "HTTP/1.1 403 Forbidden tine: host "
done
check "the test's loopback listeners saw no request" "0 0 0" "$(hits lo4) $(hits lo6) $(hits any)"
check_contains "refusals are in the invocation's logs" "network: CONNECT 127.0.0.1:$RPORT refused" \
  "$(netlog "CONNECT 127.0.0.1:$RPORT refused")"

# --- a program that ignores the proxy has no network at all
probe netdef direct "127.0.0.1:$L4"
check_contains "no proxy: loopback has nothing listening" "Connection refused" "$OUT"
if [ -n "$HOSTIP" ]; then
  probe netdef direct "$HOSTIP:$LA"
  check_contains "no proxy: no route out" "Network is unreachable" "$OUT"
fi
probe netdef noproxy "http://127.0.0.1:$L4/"
check_contains "curl --noproxy: refused" "Failed to connect" "$OUT"
check "still no request reached the listeners" "0 0 0" "$(hits lo4) $(hits lo6) $(hits any)"

# --- tine.http applies the same policy
if [ -n "$HOSTIP" ]; then
  lua_http "tine.http: the host's own address refused too" netdef "http://$HOSTIP:$LA/" \
    "is at $HOSTIP, one of this node's own"
fi
lua_http "tine.http: loopback refused" netdef "http://127.0.0.1:$L4/" "is at 127.0.0.1"
check "tine.http did not reach the listeners" "0 0" "$(hits lo4) $(hits any)"

# --- allow_outbound: [127.0.0.1], a deliberate opt-in by name
# reached NAME HOW WANT: the client's output holds WANT and its requests
# reached the test's listener.
reached() {
  local before
  before=$(hits lo4)
  probe netallow "$2" "http://127.0.0.1:$L4$4"
  if [[ "$OUT" == *"$3"* ]] && [ "$(hits lo4)" -gt "$before" ]; then ok "listed: $1 through the proxy (${OUT:0:80})"
  else fail "listed: $1" "expected [$3] and a request at the listener ($before, then $(hits lo4)), got [$OUT]"; fi
}
reached curl curl "200 hello from lo4" /
reached "curl with a CONNECT tunnel" tunnel "200 hello from lo4" /
reached wget wget "hello from lo4" /
reached "python urllib" python "hello from lo4" /
reached "git (a dumb server with no refs)" git "" /repo.git
reached "pip (an index without the package)" pip "No matching distribution" /simple
before=$(hits lo4)
lua_http "listed: tine.http agrees" netallow "http://127.0.0.1:$L4/" "200 hello from lo4"
refused "listed app, unlisted name at the same address" netallow curl "http://localhost:$L4/" \
  "host localhost not allowed by allow_outbound"
refused "listed app, another host" netallow tunnel "https://example.com/" "example.com"
lua_http "tine.http agrees on the unlisted name" netallow "http://localhost:$L4/" \
  "host localhost not allowed by allow_outbound"
check "only the listed name reached the listener (tine.http, once)" "1" "$(($(hits lo4) - before))"
finish_security
