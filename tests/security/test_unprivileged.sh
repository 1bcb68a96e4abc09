#!/usr/bin/env bash
# tined started by an unprivileged user: the zygote puts sandboxes in a user
# namespace of their own (when the host allows it) and the attacks still
# fail. Run as root, the test starts tined as nobody (uid 65534); run as
# another user, every test of this suite already covers this case.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
  skip "tined as an unprivileged user" "the suite already runs as uid $(id -u)"
  finish_security
  exit $?
fi
chmod 755 "$T"
mkdir -p "$T/u" "$T/utmp"
chown 65534:65534 "$T/u" "$T/utmp"
# start_node, as nobody, with tined's private redis-server.
TMPDIR="$T/utmp" setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/u/state" --sdk-dir "$SRC/sdk/lua" >"$T/u.log" 2>&1 &
NODE_PID=$!
PIDS+=($NODE_PID)
wait_for 20 test -s "$T/u/state/port" || { echo "tined as nobody did not start"; cat "$T/u.log"; exit 1; }
URL="http://127.0.0.1:$(cat "$T/u/state/port")"
TOKEN=$(cat "$T/u/state/admin.token")
check "tined runs as nobody" "65534" "$(ps -o uid= -p "$NODE_PID" | tr -d ' ')"
load_doctor
make_victim
CHECK="sandboxes of an unprivileged tined"
if need_layers user; then
  check_contains "the user layer is a user namespace" "tined is not root" "$(layer_why user)"
  mkdir -p "$T/evil"
  cat >"$T/evil/tine.yaml" <<'YAML'
app: evil
functions:
  lua:    { handler: e.lua#main }
  passwd: { runtime: exec, handler: passwd.sh }
  kill:   { runtime: exec, handler: kill.sh }
  net:    { runtime: exec, handler: net.sh, network: true }
  bomb:   { runtime: exec, handler: bomb.sh, timeout: 2s }
  py:     { runtime: python, handler: e.py#main }
  js:     { runtime: node, handler: e.js#main }
YAML
  printf 'return { main = function() return io.open("/etc/passwd") end }\n' >"$T/evil/e.lua"
cat >"$T/evil/e.py" <<'PY'
import os, socket
def main(req, ctx):
    out = {"uid": os.getuid()}
    for name, f in (("passwd", lambda: open("/etc/passwd").read()),
                    ("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
                    ("fork", lambda: os.fork()), ("write", lambda: open("x", "w"))):
        try:
            out[name] = "ESCAPED %r" % (f(),)
        except Exception as e:
            out[name] = type(e).__name__
    return out
PY
cat >"$T/evil/e.js" <<'JS'
const fs = require('fs');
exports.main = async () => {
  const out = { uid: process.getuid() };
  const tries = [['passwd', () => fs.readFileSync('/etc/passwd', 'utf8')],
    ['spawn', () => { const r = require('child_process').spawnSync('/bin/true'); if (r.error) throw r.error; }],
    ['write', () => fs.writeFileSync('x', 'x')]];
  for (const [name, f] of tries) {
    try { out[name] = `ESCAPED ${f()}`; } catch (e) { out[name] = e.code; }
  }
  out.socket = await new Promise((resolve) => {
    const s = require('net').connect(1, '127.0.0.1');
    s.on('error', (e) => resolve(e.code));
    s.on('connect', () => resolve('ESCAPED'));
  });
  return out;
};
JS

  printf '#!/bin/sh\ncat /etc/passwd\n' >"$T/evil/passwd.sh"
  printf '#!/bin/bash\nkill -9 %s\n' "$NODE_PID" >"$T/evil/kill.sh"
  printf '#!/bin/sh\necho never\n' >"$T/evil/net.sh"
  printf '#!/bin/bash\nbomb() { bomb & bomb & wait; }; bomb\n' >"$T/evil/bomb.sh"
  tine deploy "$T/evil" >/dev/null
  attack "Lua: read /etc/passwd" evil lua '{}' 500 "attempt to index global 'io'"
  if layer_on root-dir; then attack "exec: read /etc/passwd" evil passwd '{}' 500 "No such file or directory"
  else skip "exec: read /etc/passwd" "$(layer_why root-dir)"; fi
  if layer_on pid-namespace; then attack "exec: signal tined" evil kill '{}' 500 "No such process"
  else skip "exec: signal tined" "$(layer_why pid-namespace)"; fi
  if layer_on net-namespace; then
    attack "exec: network: true needs root" evil net '{}' 500 "network: true is not available on this node"
  fi
  attack "exec: fork bomb" evil bomb '{}' 504 "timed out after 2000 ms"
  # Python: its zygote in a user namespace of its own, the same filter.
  inv evil py
  check "Python: the attempts of an unprivileged node's sandbox are refused" \
    '{"fork": "BlockingIOError", "passwd": "FileNotFoundError", "socket": "PermissionError", "uid": 0, "write": "PermissionError"}' \
    "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"
  victim_ok "after the Python probes"
  # Node: its host in a user namespace of its own, each node under the Node filter.
  inv evil js
  check "Node: the attempts of an unprivileged node's sandbox are refused" \
    '{"passwd": "ENOENT", "socket": "EPERM", "spawn": "EPERM", "uid": 0, "write": "EROFS"}' \
    "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"
  victim_ok "after the Node probes"
  check_contains "the fork bomb met the process limit" "fork: retry: Resource temporarily unavailable" "$(cat "$T/u.log")"
  if kill -0 "$NODE_PID"; then ok "tined is alive"; else fail "tined is alive" "it died"; fi
fi
finish_security
