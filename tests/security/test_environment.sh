#!/usr/bin/env bash
# Nothing of tined's environment reaches a sandbox: tined is started with the
# admin token, the Redis URL and a private variable in its environment; the
# zygote, a Lua sandbox (read from /proc, as Lua has no os.getenv) and an exec
# program (its `env`) must see none of them.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"
start_redis
SECRET=s3cret-admin-token-$$
TINE_ADMIN_TOKEN=$SECRET TINE_TOKEN=$SECRET TINE_REDIS_URL=$REDIS_URL SOMETHING_PRIVATE=x-private-$$ \
  start_node a --redis "$REDIS_URL"
TOKEN=$SECRET
check "the node took its token from TINE_ADMIN_TOKEN" "200" "$(admin GET /apps | cut -d' ' -f1)"
mkdir -p "$T/envy"
cat >"$T/envy/tine.yaml" <<'YAML'
app: envy
env: { FROM_MANIFEST: yes-this-one }
functions:
  lua: { handler: e.lua#main, warm: 1 }
  sh:  { runtime: exec, handler: env.sh }
  net: { runtime: exec, handler: env.sh, network: true }
YAML
printf 'return { main = function() return "lua ok" end }\n' >"$T/envy/e.lua"
printf '#!/bin/sh\nenv\n' >"$T/envy/env.sh"
tine deploy "$T/envy" >/dev/null

# leaks NAME TEXT: TEXT (an environment, one variable a line) must hold none
# of tined's variables.
leaks() {
  local found=""
  for v in TINE_ADMIN_TOKEN TINE_TOKEN TINE_REDIS_URL SOMETHING_PRIVATE "$SECRET" "x-private-$$" "$T/redis.sock" \
    TINE_BIN_DIR TINE_SOURCE_DIR; do
    [[ "$2" == *"$v"* ]] && found="$found $v"
  done
  if [ -z "$found" ] && [ -n "$2" ]; then ok "$1: none of tined's variables"
  else fail "$1" "found [${found# }] in [$(tr '\n' ' ' <<<"$2" | cut -c1-300)]"; fi
}

zygote=$(pgrep -P "$NODE_PID" -x tine-zygote || true)
if [ -n "$zygote" ] && [ -r "/proc/$zygote/environ" ]; then
  zenv=$(tr '\0' '\n' <"/proc/$zygote/environ")
  leaks "the zygote" "$zenv"
  check_contains "the zygote binds every symbol at start" "LD_BIND_NOW=1" "$zenv"
else
  fail "the zygote's environment" "no zygote process below tined $NODE_PID"
fi

check "a Lua sandbox answers" "lua ok" "$(curl -s -m 10 -X POST -H "Authorization: Bearer $TOKEN" \
  "$URL/_tine/v1/apps/envy/functions/lua/invoke" -d '{}' | jfield body)"
pid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["app"] == "envy" and p["function"] == "lua":
        print(p["sandboxes"][0]["pid"])')
if [ -n "$pid" ] && [ -r "/proc/$pid/environ" ]; then
  leaks "a Lua sandbox (/proc/$pid/environ)" "$(tr '\0' '\n' <"/proc/$pid/environ")"
else
  fail "a Lua sandbox's environment" "no readable sandbox process [$pid]"
fi

inv envy sh '{}'
check "an exec program runs" "200" "$STATUS"
leaks "an exec program" "$ERR"
check_contains "an exec program gets the manifest's env" "FROM_MANIFEST=yes-this-one" "$ERR"
inv envy net '{}'
if [ "$STATUS" = 200 ]; then
  leaks "an exec program with network: true" "$ERR"
else
  check_contains "network: true refused here" "network: true is not available on this node" "$ERR"
fi
finish_security
