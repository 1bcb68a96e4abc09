#!/usr/bin/env bash
# `tine doctor` and GET /_tine/v1/doctor report every isolation layer with
# what it does or why it is off; tined warns at startup about each layer that
# is off; --isolation off keeps only the Lua layer (and says so).
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
names=$(python3 -c 'import json,sys; print(" ".join(l["name"] for l in json.loads(sys.argv[1])["layers"]))' "$DOCTOR")
check "every layer is reported" \
  "lua rlimits no-new-privs seccomp user mount-namespace pid-namespace ipc-namespace uts-namespace net-namespace root-dir cgroup exec-network" \
  "$names"
check "isolation is on by default" "on" "$(jfield isolation <<<"$DOCTOR")"
table=$(tine doctor)
check "tine doctor: first line" "isolation: on" "$(head -1 <<<"$table")"
check "tine doctor: header" "LAYER STATE DETAIL" "$(sed -n 3p <<<"$table" | tr -s ' ')"
check "tine doctor: one row per layer" "13" "$(tail -n +4 <<<"$table" | awk 'NF == 0 { exit } { n++ } END { print n }')"
check "tine doctor: then TLS, off on this node" "tls: off (plain HTTP; see tined --tls-cert)" "$(tail -n 1 <<<"$table")"
for l in cgroup exec-network; do
  check_contains "tine doctor: the $l row says what it does or why it is off" "$(layer_why "$l" | cut -c1-40)" \
    "$(grep "^$l " <<<"$table")"
done
check_contains "the ipc-namespace layer says exec invocations get their own" "each exec invocation gets one of its own" \
  "$(layer_why ipc-namespace)"
check_contains "tine doctor: the seccomp row" "seccomp" "$(grep '^seccomp ' <<<"$table")"
# The layers of each runtime: those its sandboxes get, on or off as the node has them.
runtime_layers() {
  python3 -c '
import json, sys
for r in json.loads(sys.argv[1])["runtimes"]:
    if r["runtime"] == sys.argv[2]:
        names = [l["name"] for l in json.loads(sys.argv[1])["layers"]]
        print(" ".join(sorted(r["on"] + r["off"], key=names.index)))
        on = {l["name"] for l in json.loads(sys.argv[1])["layers"] if l["active"]}
        assert set(r["on"]) <= on and not set(r["off"]) & on, "on/off as the node has them"' "$DOCTOR" "$1"
}
process="rlimits no-new-privs seccomp user mount-namespace pid-namespace ipc-namespace uts-namespace net-namespace root-dir"
check "lua's layers" "lua $process" "$(runtime_layers lua)"
check "python's layers" "$process" "$(runtime_layers python)"
check "node's layers" "$process" "$(runtime_layers node)"
check "exec's layers" "$process cgroup exec-network" "$(runtime_layers exec)"
check "tine doctor: a row per runtime" "lua python node exec" \
  "$(awk '$1 == "RUNTIME" { on = 1; next } on && NF == 0 { exit } on { printf "%s%s", n++ ? " " : "", $1 }' <<<"$table")"
check_contains "tine doctor: node's row names its layers" "rlimits, no-new-privs, seccomp" "$(grep '^node ' <<<"$table")"
check "tine --json doctor is the server's answer" "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$DOCTOR")" \
  "$(tine --json doctor | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')"
check_contains "the doctor needs the admin token" "401" "$(http GET /_tine/v1/doctor)"
off=$(python3 -c 'import json,sys; print(sum(not l["active"] for l in json.loads(sys.argv[1])["layers"]))' "$DOCTOR")
check "one startup warning per layer that is off" "$off" "$(log_msgs "$T/a.log" | grep -c '^warn: isolation layer' || true)"
for l in $(python3 -c 'import json,sys; print(" ".join(l["name"] for l in json.loads(sys.argv[1])["layers"] if not l["active"]))' "$DOCTOR"); do
  check_contains "warning for $l says why" "warn: isolation layer $l is off: $(layer_why "$l")" "$(log_msgs "$T/a.log")"
done
if [ "$(id -u)" = 0 ]; then
  for l in rlimits no-new-privs seccomp user mount-namespace pid-namespace ipc-namespace uts-namespace net-namespace root-dir \
    cgroup exec-network; do
    if layer_on "$l"; then ok "as root, $l is on"; else skip "as root, $l is on" "$(layer_why "$l")"; fi
  done
fi

# Flags are checked.
out=$("$BIN/tined" --isolation maybe 2>&1 || true)
check "--isolation takes on or off" "tined: --isolation maybe: expected on or off" "$out"
out=$("$BIN/tined" --sandbox-uid 0 2>&1 || true)
check "--sandbox-uid refuses root" "tined: --sandbox-uid 0: expected a uid from 1 to 4294967294" "$out"

# --isolation off: the Lua layer only, every other layer off with the reason.
start_node b --redis "$REDIS_URL" --isolation off
load_doctor
check "isolation off" "off" "$(jfield isolation <<<"$DOCTOR")"
check "--isolation off keeps the Lua layer" "true" "$(layer_field lua active)"
check "--isolation off: 12 layers off, each saying why" "12" \
  "$(python3 -c 'import json,sys; print(sum(not l["active"] and l["detail"] == "--isolation off" for l in json.loads(sys.argv[1])["layers"]))' "$DOCTOR")"
check "--isolation off: 12 startup warnings" "12" \
  "$(log_msgs "$T/b.log" | grep -c '^warn: isolation layer .* is off: --isolation off$' || true)"
check_contains "tine doctor shows OFF" "OFF" "$(tine doctor | grep '^seccomp ')"
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: plain
functions:
  io: { handler: f.lua#io }
  sh: { runtime: exec, handler: f.sh }
YAML
printf 'return { io = function() return io.open("/etc/passwd") end }\n' >"$T/app/f.lua"
printf '#!/bin/sh\necho "$TINE_APP $(id -u)"\n' >"$T/app/f.sh"
tine deploy "$T/app" >/dev/null
inv plain io '{}'
check_contains "--isolation off: the Lua layer still refuses io" "attempt to index global 'io'" "$ERR"
inv plain sh '{}'
check "--isolation off: exec runs, as tined's uid" "plain $(id -u)" "$(tr -d '\n' <<<"$ERR")"

if [ "$(id -u)" = 0 ]; then
  start_node c --redis "$REDIS_URL" --sandbox-uid 4242
  load_doctor
  if layer_on user; then
    tine deploy "$T/app" >/dev/null
    inv plain io '{}'
    pid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
print(json.load(sys.stdin)["pools"][0]["sandboxes"][0]["pid"])')
    check "--sandbox-uid sets the uid of Lua sandboxes" "4242 4242" "$(ps -o uid=,gid= -p "$pid" | xargs)"
  else
    skip "--sandbox-uid" "$(layer_why user)"
  fi
fi
check_json_log "$T/a.log"
check_json_log "$T/b.log"
finish_security
