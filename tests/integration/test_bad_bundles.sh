#!/usr/bin/env bash
# Hostile or broken bundles are rejected with a precise message, nothing is
# stored, and the live version keeps serving.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --max-bundle-size 64KiB
make_app "$T/good" one
tine deploy "$T/good" >/dev/null
put() { curl -s -X PUT --data-binary @"$1" -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/apps/demo"; }

mkdir -p "$T/b1"; cp "$T/good/"* "$T/b1/"
(cd "$T/b1" && tar czf "$T/dotdot.tgz" --transform 's,^who.lua,../../etc/evil.lua,' tine.yaml who.lua)
check_contains "'..' entry rejected" "escapes" "$(put "$T/dotdot.tgz")"

(cd "$T/b1" && tar czf "$T/abs.tgz" -P tine.yaml "$T/b1/who.lua")
check_contains "absolute entry rejected" "bundle" "$(put "$T/abs.tgz")"

(cd "$T/b1" && ln -sf /etc/passwd link.lua && tar czf "$T/link.tgz" tine.yaml who.lua link.lua && rm link.lua)
check_contains "symlink rejected" "link" "$(put "$T/link.tgz")"

head -c 200000 /dev/urandom >"$T/b1/big.bin"
(cd "$T/b1" && tar czf "$T/big.tgz" tine.yaml who.lua big.bin && rm big.bin)
check_contains "oversize bundle: 413" "413" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/big.tgz" -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/apps/demo")"

echo "not a tarball" >"$T/junk.tgz"
check_contains "garbage rejected" "bundle" "$(put "$T/junk.tgz")"

(cd "$T/b1" && tar czf "$T/nomanifest.tgz" who.lua)
check_contains "missing manifest" "tine.yaml" "$(put "$T/nomanifest.tgz")"

(cd "$T/b1" && tar czf "$T/nohandler.tgz" tine.yaml)
check_contains "missing handler file" "who.lua" "$(put "$T/nohandler.tgz")"

printf '\x1bLJ\x02junk' >"$T/b1/who.lua"
(cd "$T/b1" && tar czf "$T/bytecode.tgz" tine.yaml who.lua)
check_contains "bytecode rejected" "precompiled" "$(put "$T/bytecode.tgz")"

cat >"$T/b1/tine.yaml" <<'YAML'
app: demo
functions:
  who: { handler: who.lua#who }
routes:
  - { method: GET, path: /who, function: who }
  - { method: get, path: /who, function: who }
YAML
cp "$T/good/who.lua" "$T/b1/who.lua"
out=$(tine deploy "$T/b1" 2>&1 || true)
check_contains "colliding routes rejected" "conflicts with routes[0]" "$out"
printf 'app: demo\nfunctions:\n  who: { handler: who.lua#who, colour: red }\n' >"$T/b1/tine.yaml"
(cd "$T/b1" && tar czf "$T/unknown.tgz" tine.yaml who.lua)
out=$(put "$T/unknown.tgz")
check_contains "unknown key rejected with position" "tine.yaml:3:" "$out"
check_contains "unknown key named" "colour" "$out"
printf 'app: demo\nfunctions: [\n' >"$T/b1/tine.yaml"
(cd "$T/b1" && tar czf "$T/yaml.tgz" tine.yaml who.lua)
check_contains "malformed YAML rejected" "tine.yaml:" "$(put "$T/yaml.tgz")"
printf '{"app": "demo", "functions": {"who": {"handler": "who.lua#who", "memory": "lots"}}}' >"$T/b1/tine.json"
rm "$T/b1/tine.yaml"
(cd "$T/b1" && tar czf "$T/json.tgz" tine.json who.lua)
check_contains "JSON manifest: wrong type rejected" "functions.who.memory" "$(put "$T/json.tgz")"

check "only the good version stored" "1" "$(admin GET /apps/demo/versions | grep -o '"version":[0-9]*' | wc -l | tr -d ' ')"
check "live version serves on" "200 one 1" "$(http GET /demo/who)"
finish
