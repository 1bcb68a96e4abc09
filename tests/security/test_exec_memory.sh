#!/usr/bin/env bash
# `memory` bounds an exec invocation's whole process tree (a cgroup per
# invocation where the node can make one): 20 children touching 64 MB each
# under `memory: 64` are stopped with a clear error and the node keeps
# serving; files in the tmpfs /tmp count too. System V shared memory made by
# one invocation lives in an IPC namespace of its own: gone after the call,
# never seen by another app's program.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
make_victim
mkdir -p "$T/hog" "$T/other"
cat >"$T/hog/tine.yaml" <<'YAML'
app: hog
functions:
  fork20: { runtime: exec, handler: fork20.py, memory: 64, timeout: 60s }
  tmpfs:  { runtime: exec, handler: tmpfs.sh, memory: 64, timeout: 60s }
  small:  { runtime: exec, handler: small.py, memory: 64, timeout: 60s }
  shm:    { runtime: exec, handler: shm.sh, timeout: 30s }
  look:   { runtime: exec, handler: look.sh, timeout: 30s }
YAML
# 21 processes (within the task limit), 20 x 64 MB touched at once.
cat >"$T/hog/fork20.py" <<'PY'
#!/usr/bin/python3
import os, sys, time
kids = []
for i in range(20):
    pid = os.fork()
    if pid == 0:
        block = b"\x01" * (64 << 20)  # every page written
        time.sleep(3)
        os._exit(0 if len(block) else 1)
    kids.append(pid)
held = sum(1 for p in kids if os.waitpid(p, 0)[1] == 0)
print(f"{held} children held 64 MB each")
PY
# 48 MB of files (16 MB at most each) in /tmp, then 40 MB of memory.
cat >"$T/hog/tmpfs.sh" <<'SH'
#!/bin/sh
for i in 1 2 3; do head -c 16000000 /dev/zero >"f$i" || exit 1; done
python3 -c 'b = b"x" * (40 << 20); print(len(b))'
SH
printf '#!/usr/bin/python3\nb = b"x" * (16 << 20)\nprint("fine", len(b))\n' >"$T/hog/small.py"
printf '#!/bin/sh\nipcmk -M 33554432 -p 0666 && ipcs -m\n' >"$T/hog/shm.sh"
printf '#!/bin/sh\necho "segments: $(ipcs -m | grep -c "^0x")"\n' >"$T/hog/look.sh"
cat >"$T/other/tine.yaml" <<'YAML'
app: other
functions:
  look: { runtime: exec, handler: look.sh, timeout: 30s }
YAML
cp "$T/hog/look.sh" "$T/other/"
tine deploy "$T/hog" >/dev/null
tine deploy "$T/other" >/dev/null

CHECK="memory of the whole process tree"
if [ "$(id -u)" = 0 ] && [ -z "$(layer_field cgroup detail)" ]; then
  fail "$CHECK: the node reports a cgroup layer" "no cgroup layer in the doctor's report"
fi
if [ -n "$(layer_field cgroup detail)" ] && ! layer_on cgroup; then
  skip "$CHECK" "layer cgroup is off: $(layer_why cgroup)"
else
  inv hog small '{}'
  check "$CHECK: a program within its memory runs" "fine 16777216" "$(tr -d '\n' <<<"$ERR")"
  inv hog fork20 '{}'
  check_contains "$CHECK: 20 children x 64 MB under memory: 64 are stopped" \
    "500 function fork20 ran out of memory (memory: 64 MB)" "$STATUS $ERR"
  victim_ok "$CHECK"
  inv hog tmpfs '{}'
  check_contains "$CHECK: files in /tmp count" "500 function tmpfs ran out of memory (memory: 64 MB)" "$STATUS $ERR"
  node_cg=$(layer_why cgroup | sed -n 's/^cgroup v[12] below \([^:]*\): .*/\1/p')
  if [ -d "$node_cg" ]; then
    check "$CHECK: no invocation's cgroup is left" "" "$(find "$node_cg" -mindepth 1 -type d | head -3)"
  else
    fail "$CHECK: the node's cgroup" "not found from the doctor's [$(layer_why cgroup)]"
  fi
fi
if kill -0 "$NODE_PID"; then ok "tined is alive"; else fail "tined is alive" "it died"; fi

CHECK="System V shared memory"
if need_layers ipc-namespace; then
  inv hog shm '{}'
  check_contains "$CHECK: made by a program" "0x" "$ERR"
  inv hog look '{}'
  check "$CHECK: gone after the call" "segments: 0" "$ERR"
  inv other look '{}'
  check "$CHECK: not seen by another app's program" "segments: 0" "$ERR"
  zygote=$(pgrep -P "$NODE_PID" -x tine-zygote || true)
  if [ "$(id -u)" = 0 ] && [ -n "$zygote" ] && command -v nsenter >/dev/null; then
    check "$CHECK: nothing left in the sandboxes' shared IPC namespace" "0" \
      "$(nsenter -t "$zygote" -i ipcs -m | grep -c '^0x' || true)"
  else
    skip "$CHECK: the sandboxes' IPC namespace" "needs root and nsenter"
  fi
fi
victim_ok "after every attack"

CHECK="the node's cgroups"
if layer_on cgroup; then
  node_cg=$(layer_why cgroup | sed -n 's/^cgroup v[12] below \([^:]*\): .*/\1/p')
  check "$CHECK: the doctor names it" "yes" "$([ -d "$node_cg" ] && echo yes)"
  kill -9 "$NODE_PID"
  wait "$NODE_PID" 2>/dev/null || true
  check "$CHECK: a node killed with SIGKILL leaves its cgroup behind" "yes" "$([ -d "$node_cg" ] && echo yes)"
  start_node b --redis "$REDIS_URL"
  check "$CHECK: the next node removes it" "gone" "$([ -d "$node_cg" ] && echo there || echo gone)"
  load_doctor
  node_cg=$(layer_why cgroup | sed -n 's/^cgroup v[12] below \([^:]*\): .*/\1/p')
  kill "$NODE_PID"
  wait "$NODE_PID" 2>/dev/null || true
  check "$CHECK: a node that stops removes its own" "gone" "$([ -d "$node_cg" ] && echo there || echo gone)"
fi
finish_security
