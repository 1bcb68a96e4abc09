#!/usr/bin/env bash
# Exec functions (shell scripts) that try to escape their sandbox: each
# attempt must fail with a clear error for the caller while another app keeps
# answering, and leave nothing behind on the host.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp" # tined's temp dir for exec working dirs lands here
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
make_victim
mkdir -p "$T/evilx/x"
cat >"$T/evilx/tine.yaml" <<'YAML'
app: evilx
functions:
  passwd: { runtime: exec, handler: x/passwd.sh }
  write:  { runtime: exec, handler: x/write.sh }
  socket: { runtime: exec, handler: x/socket.sh }
  fill:   { runtime: exec, handler: x/fill.sh, memory: 32, timeout: 20s }
  big:    { runtime: exec, handler: x/big.sh, memory: 64, timeout: 20s }
  bomb:   { runtime: exec, handler: x/bomb.sh, timeout: 3s }
  bundle: { runtime: exec, handler: x/bundle.sh }
  kill:   { runtime: exec, handler: x/kill.sh }
  memory: { runtime: exec, handler: x/memory.sh, memory: 32, timeout: 30s }
  spin:   { runtime: exec, handler: x/spin.sh, timeout: 1s }
  caps:   { runtime: exec, handler: x/caps.sh }
YAML
# arg NAME: a string or number member of the event on stdin.
ARG='arg() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$EVENT"; }; EVENT=$(cat)'
w() { printf '#!/bin/bash\n%s\n%s\n' "$ARG" "$2" >"$T/evilx/x/$1.sh"; }
w passwd 'cat /etc/passwd'
w write 'set -e; echo pwned > "$(arg target)"; echo "wrote $(arg target)"'
w socket 'exec 3<>"/dev/tcp/127.0.0.1/$(arg port)"; printf "GET /_tine/v1/health HTTP/1.0\r\n\r\n" >&3; cat <&3'
w fill 'i=0; while head -c 8388608 /dev/zero >"f$i"; do i=$((i + 1)); done; echo "stopped after $i files" >&2; exit 1'
w big 'head -c 104857600 /dev/zero >big'
w bomb 'bomb() { bomb & bomb & wait; }; bomb'
w bundle 'cat "$(arg dir)/tine.yaml"'
w kill 'kill -9 $(arg pid)'
w memory 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}'
# Sleeps of lengths no other test run on this machine uses.
SPIN=$((3000000 + RANDOM * 2))
w spin "setsid sleep $SPIN & sleep $((SPIN + 1)) & while :; do :; done"
w caps 'for c in "mount -t tmpfs none /tmp" "unshare -U true" "unshare -n true" "hostname evil" "chroot / true" \
  "ip link set lo up"; do if $c 2>/dev/null; then echo "ESCAPED: $c"; else echo "refused: $c"; fi; done'
tine deploy "$T/evilx" >/dev/null
victim_ok "before the attacks"
root=0; [ "$(id -u)" = 0 ] && root=1

CHECK="read /etc/passwd"
if need_layers root-dir mount-namespace; then
  attack "$CHECK" evilx passwd '{}' 500 "cat: /etc/passwd: No such file or directory"
fi

CHECK="write a file"
for target in /app/pwned /usr/pwned "$T/a/bundles/evilx/1/pwned" "$T/pwned"; do
  inv evilx write "{\"target\":\"$target\"}"
  if [ "$STATUS" = 500 ] && [[ "$ERR" == *"exited with status 1"* ]] && [ ! -e "$target" ] &&
    [ ! -e "$T/a/bundles/evilx/1/pwned" ]; then ok "$CHECK $target: refused (${ERR:0:110})"
  else fail "$CHECK $target" "status [$STATUS] error [$ERR]"; fi
done
if layer_on root-dir; then
  inv evilx write '{"target":"/app/pwned"}'
  check_contains "$CHECK: the bundle is read-only" "Read-only file system" "$ERR"
fi
victim_ok "$CHECK"

CHECK="open a socket (network: false)"
if need_layers net-namespace; then
  attack "$CHECK" evilx socket "{\"port\":$(cat "$T/a/port")}" 500 "Network is unreachable"
fi

CHECK="fill the disk (one big file)"
attack "$CHECK" evilx big '{}' 500 "File size limit exceeded"
CHECK="fill the disk (many files)"
if need_layers root-dir mount-namespace; then
  # /tmp is a tmpfs of `memory` MiB; with a cgroup its files count against
  # the memory of the invocation, which runs out first.
  if layer_on cgroup; then attack "$CHECK" evilx fill '{}' 500 "function fill ran out of memory (memory: 32 MB)"
  else attack "$CHECK" evilx fill '{}' 500 "No space left on device"; fi
fi
check "no working dir left on the host" "" "$(run find "$T/tmp" -mindepth 2)"

CHECK="fork bomb"
inv evilx bomb '{}' >"$T/bomb.out" &
bomb=$!
# Sampled for as long as the call runs (on a loaded machine the program
# starts late: no fixed sleep), counting only this node's programs; the
# victim is checked while the bomb is seen running.
on_seen() { victim_ok "during the fork bomb"; }
watch_exec $bomb
unset -f on_seen
[ "$MOST" -ge 1 ] || victim_ok "after the fork bomb (never seen running)"
if [ $root = 1 ] && layer_on user; then
  if [ "$MOST" -le 32 ] && [ "$MOST" -ge 2 ]; then ok "$CHECK: $MOST processes at most (limit 32)"
  else fail "$CHECK: process limit" "a uid had $MOST processes at most"; fi
else
  skip "$CHECK: process count" "needs root and the user layer to count the program's processes"
fi
wait $bomb
attack "$CHECK" evilx bomb '{}' 504 "timed out after 3000 ms"
bomb_left() { procs_of_uids "$UIDS"; }
no_bomb_left() { [ -z "$(bomb_left)" ]; }
wait_for 10 no_bomb_left || true
check "$CHECK: nothing left running (uids$UIDS)" "" "$(bomb_left)"

CHECK="read another app's bundle"
if layer_on root-dir || [ $root = 1 ]; then
  inv evilx bundle "{\"dir\":\"$T/a/bundles/victim/1\"}"
  if [ "$STATUS" = 500 ] && [[ "$ERR" == *"No such file or directory"* || "$ERR" == *"Permission denied"* ]]; then
    ok "$CHECK: refused (${ERR:0:110})"
  else fail "$CHECK" "status [$STATUS] error [$ERR]"; fi
  victim_ok "$CHECK"
else
  skip "$CHECK" "layer root-dir is off ($(layer_why root-dir)) and tined is not root"
fi

CHECK="signal tined or another sandbox"
if layer_on pid-namespace || [ $root = 1 ]; then
  curl -s "$URL/victim/hi" >/dev/null
  vpid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["app"] == "victim" and p["function"] == "hi":
        print(p["sandboxes"][0]["pid"])')
  before=$(curl -s "$URL/victim/hi")
  for target in "$NODE_PID" "$vpid" -1; do
    inv evilx kill "{\"pid\":\"$target\"}"
    if [ "$STATUS" = 500 ] && [[ "$ERR" == *"No such process"* || "$ERR" == *"Operation not permitted"* ]]; then
      ok "$CHECK: kill -9 $target refused (${ERR:0:100})"
    elif [ "$target" = -1 ] && [ "$STATUS" = 200 ]; then
      ok "$CHECK: kill -9 -1 reached only the program's own processes"
    else fail "$CHECK: kill -9 $target" "status [$STATUS] error [$ERR]"; fi
  done
  if kill -0 "$NODE_PID" 2>/dev/null; then ok "$CHECK: tined is alive"; else fail "$CHECK" "tined died"; fi
  after=$(curl -s "$URL/victim/hi")
  if [ "${after#victim ok }" -gt "${before#victim ok }" ] 2>/dev/null; then
    ok "$CHECK: the victim's warm sandbox survived ($before, then $after)"
  else fail "$CHECK: the victim's warm sandbox" "before [$before] after [$after]"; fi
  victim_ok "$CHECK"
else
  skip "$CHECK" "without a pid namespace ($(layer_why pid-namespace)) a program runs as tined's uid"
fi

# A timeout of its own, far above what the attack needs: on a loaded machine
# building 200 MB in a shell variable can take longer than the default 3 s,
# and a 504 would hide how the memory limit answered.
CHECK="exhaust memory"
inv evilx memory '{}'
if layer_on cgroup; then
  check_contains "$CHECK: stopped by the invocation's cgroup" "500 function memory ran out of memory (memory: 32 MB)" \
    "$STATUS $ERR"
elif [ "$STATUS" = 500 ] && [[ "$ERR" == *"exited with status"* || "$ERR" == *"killed by signal"* ]]; then
  ok "$CHECK: refused (${ERR:0:120})"
else fail "$CHECK" "status [$STATUS] error [$ERR]"; fi
victim_ok "$CHECK"

CHECK="spin forever with children"
attack "$CHECK" evilx spin '{}' 504 "timed out after 1000 ms"
if layer_on pid-namespace; then
  sleep 0.5
  check "$CHECK: the whole process tree was killed (even a setsid child)" "" \
    "$(pgrep -f "sleep ($SPIN|$((SPIN + 1)))\$" || true)"
else
  skip "$CHECK: setsid child" "layer pid-namespace is off: $(layer_why pid-namespace)"
fi

CHECK="privileged operations"
inv evilx caps '{}'
refused=$(grep -c '^refused' <<<"$ERR" || true)
check "$CHECK: mount, unshare, hostname, chroot, ip all refused" "6 0" "$refused $(grep -c ESCAPED <<<"$ERR" || true)"
victim_ok "after every attack"
finish_security
