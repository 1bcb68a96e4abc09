#!/usr/bin/env bash
# tine dev (docs/testing.md): an ephemeral node serves the app; a save
# deploys again (the time from save to served measured, budget 200 ms); a
# manifest error and a Lua error are printed as file:line[:col] and the
# watch goes on; the app's log lines are streamed; a watched directory that
# disappears stops it with an error, and its node with it.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
A="$T/app"
mkdir -p "$A"
cp "$SRC/functions-examples/hello/tine.yaml" "$A/"
cat >"$A/hello.lua" <<'LUA'
local tine = require "tine"
return { hi = function(req) tine.log("greeting " .. (req.params.name or "?")); return "v1 " .. (req.params.name or "") end }
LUA
"$BIN/tine" dev "$A" >"$T/dev.out" 2>&1 &
DEV=$!
PIDS+=($DEV)
out_has() { grep -q -F "$1" "$T/dev.out"; }
wait_for 20 out_has "deployed hello version 1" || { cat "$T/dev.out"; fail "tine dev starts" "no deploy"; finish; }
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/dev.out" | head -n 1)
check "it serves the app" "200 v1 ada" "$(http GET /hello/hi/ada)"

sed -i 's/"v1 "/"v2 "/' "$A/hello.lua"
wait_for 10 out_has "deployed hello version 2" || true
check "a save deploys again" "200 v2 ada" "$(http GET /hello/hi/ada)"
ms=$(sed -n 's/.*version 2 (saved -> served in \([0-9]*\) ms).*/\1/p' "$T/dev.out")
echo "save to served: $ms ms"
if ldd "$BIN/tined" | grep -q libasan; then
  skip "save to served within 200 ms" "an AddressSanitizer build (${ms:-none} ms)"
else
  check "save to served within 200 ms" "yes" "$([ -n "$ms" ] && [ "$ms" -le 200 ] && echo yes || echo "no: ${ms:-none} ms")"
fi

cp "$A/tine.yaml" "$T/good.yaml"
printf 'app: hello\nfunctions:\n  hi: { handler: hello.lua#hi, memory: lots }\n' >"$A/tine.yaml"
wait_for 10 out_has "still watching" || true
check_contains "a manifest error as file:line:col" "$A/tine.yaml:3:" "$(cat "$T/dev.out")"
check "the node still serves the last good version" "200 v2 bo" "$(http GET /hello/hi/bo)"
cp "$T/good.yaml" "$A/tine.yaml"
wait_for 10 out_has "deployed hello version 3" || true
check_contains "fixed: deployed again" "deployed hello version 3" "$(cat "$T/dev.out")"
echo 'local x = = 1' >>"$A/hello.lua"
wait_for 10 out_has "$A/hello.lua:3:" || true
check_contains "a Lua error as file:line" "$A/hello.lua:3: '<eof>' expected near 'local'" "$(cat "$T/dev.out")"
sed -i '$d' "$A/hello.lua"
wait_for 10 out_has "deployed hello version 4" || true
check_contains "and the watch went on" "deployed hello version 4" "$(cat "$T/dev.out")"
wait_for 10 out_has "info: greeting bo" || true
check_contains "the app's log lines are streamed" "hi v2 info: greeting bo" "$(cat "$T/dev.out")"

rm -rf "$A"
wait_for 10 out_has "disappeared" || true
check_contains "a directory that disappears stops it" "tine: the watched directory $A disappeared; stopping" \
  "$(cat "$T/dev.out")"
wait "$DEV" && rc=0 || rc=$?
check "with exit status 1" "1" "$rc"
check "and its node is gone" "" "$(ls "$TMPDIR")"
finish
