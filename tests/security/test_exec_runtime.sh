#!/usr/bin/env bash
# The exec runtime: a program from the bundle runs per invocation with the
# event (or the request) as JSON on stdin, TINE_* metadata in a clean
# environment, stdout as the response and stderr lines in the logs.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
mkdir -p "$T/rt/bin"
cat >"$T/rt/tine.yaml" <<'YAML'
app: rt
env: { FOO: from-manifest, NUM: "42" }
functions:
  cat:      { runtime: exec, handler: cat.sh }
  envelope: { runtime: exec, handler: envelope.sh }
  jsonbody: { runtime: exec, handler: jsonbody.sh }
  text:     { runtime: exec, handler: text.sh }
  empty:    { runtime: exec, handler: empty.sh }
  logs:     { runtime: exec, handler: logs.sh }
  fails:    { runtime: exec, handler: fails.sh }
  env:      { runtime: exec, handler: env.sh, memory: 48, timeout: 7s }
  flood:    { runtime: exec, handler: flood.sh }
  slow:     { runtime: exec, handler: slow.sh, timeout: 1s }
  net:      { runtime: exec, handler: net.sh }
  netok:    { runtime: exec, handler: net.sh, network: true }
  elf:      { runtime: exec, handler: bin/id }
  noshebang: { runtime: exec, handler: plain.sh }
  workdir:  { runtime: exec, handler: workdir.sh }
routes:
  - { method: POST, path: /cat, function: cat }
  - { method: GET, path: /envelope, function: envelope }
  - { method: GET, path: /jsonbody, function: jsonbody }
  - { method: GET, path: /text, function: text }
  - { method: GET, path: /empty, function: empty }
  - { method: GET, path: /fails, function: fails }
  - { method: GET, path: /env, function: env }
YAML
s() { printf '#!/bin/sh\n%s\n' "$2" >"$T/rt/$1"; }
s cat.sh 'exec cat'
s envelope.sh 'echo "{\"status\":201,\"headers\":{\"x-made\":\"yes\",\"content-type\":\"text/plain\"},\"body\":\"made it\"}"'
s jsonbody.sh 'echo "{\"status\":202,\"body\":{\"a\":[1,2]}}"'
s text.sh 'echo "plain words"'
s empty.sh 'true'
s logs.sh 'echo "first stderr line" >&2; echo "second stderr line" >&2; printf "no newline at the end" >&2; echo out'
s fails.sh 'echo "something broke" >&2; exit 3'
s env.sh 'env | sort; echo "cwd=$(pwd)"'
s flood.sh 'head -c 7340032 /dev/zero'
SLOW=$((3000001 + RANDOM * 2)) # a sleep no other test run on this machine uses
s slow.sh "sleep $SLOW & sleep 30"
printf '#!/bin/bash\nexec 3<>"/dev/tcp/127.0.0.1/$(sed -n "s/.*\\"port\\":\\([0-9]*\\).*/\\1/p")"\nprintf "GET /_tine/v1/health HTTP/1.0\\r\\n\\r\\n" >&3\ncat <&3\n' >"$T/rt/net.sh"
cp /usr/bin/id "$T/rt/bin/id"
printf 'echo "run by sh: $0"\n' >"$T/rt/plain.sh"
s workdir.sh 'ls -A; echo made >here.txt; echo "home=$HOME tmpdir=$TMPDIR"'
tine deploy "$T/rt" >/dev/null

# The event arrives on stdin; stdout is the response.
event='{"specversion":"1.0","type":"container.die","source":"docker","id":"e1","data":{"id":"c1","exit":137}}'
inv rt cat "$event"
check "event on stdin, stdout back" "true" \
  "$(python3 -c 'import json,sys; print(str(json.loads(sys.argv[1]) == json.loads(sys.argv[2])).lower())' "$event" "$ERR")"

# An HTTP request arrives as JSON with its body.
out=$(curl -s -X POST -H 'X-Test: yes' --data-binary 'hello body' "$URL/rt/cat?a=1&b=2")
check "request on stdin" "POST /cat a=1&b=2 yes hello body" "$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["method"], r["path"], r["query"], r["headers"]["x-test"], r["body"])' "$out")"
check "the request carries no ctx (it is in TINE_* variables)" "" "$(jfield ctx <<<"$out")"
curl -s -D "$T/h" -o "$T/b" "$URL/rt/cat" -X POST --data-binary 'x' >/dev/null
check_contains "JSON on stdout is served as application/json" "content-type: application/json" "$(tr -d '\r' <"$T/h")"

curl -s -D "$T/h" -o "$T/b" "$URL/rt/envelope"
check "envelope: status" "HTTP/1.1 201 Created" "$(head -1 "$T/h" | tr -d '\r')"
check_contains "envelope: header" "x-made: yes" "$(tr -d '\r' <"$T/h")"
check "envelope: body" "made it" "$(cat "$T/b")"
curl -s -D "$T/h" -o "$T/b" "$URL/rt/jsonbody"
check "envelope with a JSON body" '202 {"a":[1,2]}' "$(head -1 "$T/h" | cut -d' ' -f2) $(cat "$T/b")"
check_contains "envelope with a JSON body: content-type" "content-type: application/json" "$(tr -d '\r' <"$T/h")"
curl -s -D "$T/h" -o "$T/b" "$URL/rt/text"
check "plain stdout is the body" "plain words" "$(cat "$T/b")"
check_contains "plain stdout: text/plain" "content-type: text/plain; charset=utf-8" "$(tr -d '\r' <"$T/h")"
check "empty stdout: 204" "204" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/rt/empty")"

# stderr lines go to the invocation's logs (and tined's log).
inv rt logs '{}'
check "stdout with stderr beside it" "out" "$(tr -d '\n' <<<"$ERR")"
wait_for 5 grep -q "no newline at the end" "$T/a.log" || true
for line in "first stderr line" "second stderr line" "no newline at the end"; do
  check_contains "stderr logged: $line" "\"msg\":\"$line\",\"app\":\"rt\",\"version\":\"1\",\"function\":\"logs\"" \
    "$(cat "$T/a.log")"
done

# A failing program: 500, its exit status and the tail of stderr.
inv rt fails '{}'
check "exit status 3: 500" "500" "$STATUS"
check "exit status 3: the error names it with stderr" "fails.sh exited with status 3: something broke" "$ERR"
check_contains "over HTTP too" "500" "$(http GET /rt/fails)"

# A clean environment: metadata, the manifest's env, nothing of tined's.
curl -s -D "$T/h" -o "$T/b" "$URL/rt/env"
id=$(grep -i '^x-tine-invocation-id:' "$T/h" | cut -d' ' -f2 | tr -d '\r')
envs=$(cat "$T/b")
for v in TINE_APP=rt TINE_FUNCTION=env TINE_VERSION=1 "TINE_INVOCATION_ID=$id" TINE_KIND=http TINE_TIMEOUT_MS=7000 \
  TINE_MEMORY_MB=48 FOO=from-manifest NUM=42 "bin:/usr/local/bin:/usr/bin:/bin" TINE_HOSTCALL_FDS=240,241; do
  check_contains "env has $v" "$v" "$envs"
done
for v in TINE_BIN_DIR TINE_SOURCE_DIR REDIS_URL TMPDIR=$T; do
  if [[ "$envs" == *"$v"* ]]; then fail "env lacks $v" "found in [$envs]"; else ok "env lacks $v"; fi
done
if layer_on root-dir; then
  check_contains "the working dir is the private /tmp" "cwd=/tmp" "$envs"
fi

# Bodies: text as "body", bytes as "body_base64"; python3 runs as an interpreter.
printf 'caf\xc3\xa9' >"$T/utf8"
check "UTF-8 body" "- $(printf 'caf\xc3\xa9' | sha256sum | cut -d' ' -f1)" \
  "$(curl -s -X POST --data-binary @"$T/utf8" "$URL/rt/cat" | python3 -c '
import hashlib, json, sys
print("-", hashlib.sha256(json.load(sys.stdin)["body"].encode()).hexdigest())')"
printf '\xff\x00\xfe' >"$T/bin"
out=$(curl -s -X POST --data-binary @"$T/bin" "$URL/rt/cat")
check "binary body as body_base64" "/wD+" "$(jfield body_base64 <<<"$out")"

inv rt flood '{}'
check "more than 6 MiB on stdout" "flood.sh wrote more than 6291456 bytes to stdout (the response limit) and was stopped" \
  "$ERR"

inv rt slow '{}'
check "timeout: 504" "504 function slow timed out after 1000 ms" "$STATUS $ERR"
if layer_on pid-namespace; then
  sleep 0.5
  check "timeout: the program's children are gone" "" "$(pgrep -f "sleep $SLOW\$" || true)"
else
  skip "timeout: the program's children are gone" "layer pid-namespace is off: $(layer_why pid-namespace)"
fi

port=$(cat "$T/a/port")
inv rt net "{\"port\":$port}"
if layer_on net-namespace; then
  check "network: false cannot connect" "500" "$STATUS"
  check_contains "network: false names the error" "Network is unreachable" "$ERR"
else
  skip "network: false cannot connect" "layer net-namespace is off: $(layer_why net-namespace)"
fi
inv rt netok "{\"port\":$port}"
if [[ "$(layer_why exec-network)" == *"network: true is refused"* ]]; then
  check "network: true refused when not root" "500" "$STATUS"
  check_contains "network: true: the reason" "network: true is not available on this node" "$ERR"
elif layer_on exec-network; then
  # Its own namespace: tined's port is not there, and the proxy refuses
  # loopback (tests/security/test_exec_network.sh has the rest).
  check "network: true cannot reach tined directly" "500" "$STATUS"
  check_contains "network: true: nothing listens on its loopback" "Connection refused" "$ERR"
else
  skip "network: true" "layer exec-network is off: $(layer_why exec-network)"
fi

inv rt elf '{}'
check_contains "a binary without exec permission runs (from a copy)" "uid=" "$ERR"
inv rt noshebang '{}'
check_contains "a script without #! runs under /bin/sh" "run by sh: " "$ERR"
inv rt workdir '{}'
first=$ERR
inv rt workdir '{}'
check "the working dir starts empty every time" "$first" "$ERR"
if layer_on root-dir; then
  check_contains "HOME and TMPDIR are the working dir" "home=/tmp tmpdir=/tmp" "$ERR"
else
  check_contains "HOME and TMPDIR are the working dir" "home=$T/tmp/tine-" "$ERR"
fi
check "no working dir left on the host" "" "$(run find "$T/tmp" -mindepth 2)"
finish_security
