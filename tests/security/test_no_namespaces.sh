#!/usr/bin/env bash
# A host that allows no namespaces (root without CAP_SYS_ADMIN, as in a
# default container): the missing layers are reported with their reason at
# startup and by the doctor, and the layers left (uid, seccomp, rlimits,
# the bundle as root dir) still stop the attacks they cover.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
  skip "a node without namespaces" "needs root to start tined without CAP_SYS_ADMIN"
  finish_security
  exit $?
fi
# Exec programs run as a uid of their own from working dirs under TMPDIR:
# the path must be traversable, as /tmp is.
chmod 755 "$T"
mkdir -p "$T/tmp"
start_redis
# The state dir is created by tined itself (0700), as on a real node.
TMPDIR="$T/tmp" setpriv --bounding-set -sys_admin "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/a" \
  --sdk-dir "$SRC/sdk/lua" --redis "$REDIS_URL" >"$T/a.log" 2>&1 &
NODE_PID=$!
PIDS+=($NODE_PID)
wait_for 20 test -s "$T/a/port" || { echo "tined did not start"; cat "$T/a.log"; exit 1; }
URL="http://127.0.0.1:$(cat "$T/a/port")"
TOKEN=$(cat "$T/a/admin.token")
load_doctor
for l in mount-namespace pid-namespace ipc-namespace uts-namespace net-namespace; do
  check "$l is off" "false" "$(layer_field "$l" active)"
  check_contains "$l says why" "Operation not permitted" "$(layer_why "$l")"
  check_contains "tined warned about $l" "warn: isolation layer $l is off: $(layer_why "$l")" "$(log_msgs "$T/a.log")"
done
for l in lua rlimits no-new-privs seccomp user; do
  check "$l is still on" "true" "$(layer_field "$l" active)"
done
check_contains "root-dir is off, saying what is left" "Lua sandboxes see only their bundle" "$(layer_why root-dir)"

make_victim
mkdir -p "$T/evil"
cat >"$T/evil/tine.yaml" <<'YAML'
app: evil
functions:
  lua:    { handler: e.lua#main }
  kill:   { runtime: exec, handler: kill.sh }
  bundle: { runtime: exec, handler: bundle.sh }
  bomb:   { runtime: exec, handler: bomb.sh, timeout: 2s }
  big:    { runtime: exec, handler: big.sh }
  slow:   { runtime: exec, handler: slow.sh, timeout: 1s }
  echo:   { runtime: exec, handler: echo.sh }
YAML
printf 'return { main = function() return io.open("/etc/passwd") end }\n' >"$T/evil/e.lua"
printf '#!/bin/bash\nkill -9 %s\n' "$NODE_PID" >"$T/evil/kill.sh"
printf '#!/bin/sh\ncat %s/bundles/victim/1/tine.yaml\n' "$T/a" >"$T/evil/bundle.sh"
printf '#!/bin/bash\nbomb() { bomb & bomb & wait; }; bomb\n' >"$T/evil/bomb.sh"
printf '#!/bin/sh\nhead -c 104857600 /dev/zero >big\n' >"$T/evil/big.sh"
printf '#!/bin/sh\nsleep 30\n' >"$T/evil/slow.sh"
printf '#!/bin/sh\necho "$(id -u) $(pwd)"\n' >"$T/evil/echo.sh"
tine deploy "$T/evil" >/dev/null
attack "Lua: read /etc/passwd" evil lua '{}' 500 "attempt to index global 'io'"
attack "exec: signal tined (another uid)" evil kill '{}' 500 "Operation not permitted"
attack "exec: read another app's bundle (another uid)" evil bundle '{}' 500 "Permission denied"
attack "exec: fill the disk with one file" evil big '{}' 500 "File size limit exceeded"
# The bomb's uids are taken from this node's processes while a first bomb
# runs, then looked for on the whole machine (without a pid namespace an
# orphan leaves the node's tree), so other tests' programs never count.
inv evil bomb '{}' &
bomb=$!
watch_exec $bomb
wait $bomb
attack "exec: fork bomb" evil bomb '{}' 504 "timed out after 2000 ms"
check_contains "the fork bomb met the process limit" "fork: retry: Resource temporarily unavailable" "$(cat "$T/a.log")"
check "the fork bomb was seen running" "yes" "$([ "$MOST" -ge 2 ] && echo yes)"
bomb_left() { procs_of_uids "$UIDS"; }
no_bomb_left() { [ -z "$(bomb_left)" ]; }
wait_for 10 no_bomb_left || true
check "nothing of the fork bomb is left (uids$UIDS)" "" "$(bomb_left)"
inv evil echo '{}'
uid=${ERR%% *}
if [ "${uid:-0}" -ge 1000000000 ] && [[ "$ERR" == *" $T/tmp/tine-"*"/exec-"* ]]; then
  ok "exec: a uid of its own, a working dir under the node's temp dir ($ERR)"
else fail "exec: uid and working dir" "got [$ERR]"; fi
# A runner killed on timeout leaves its working dir; the next one sweeps it.
inv evil slow '{}'
check "exec: timeout" "504" "$STATUS"
inv evil echo '{}'
check "exec: no working dir left behind" "" "$(run find "$T/tmp" -mindepth 2)"
if kill -0 "$NODE_PID"; then ok "tined is alive"; else fail "tined is alive" "it died"; fi
finish_security
