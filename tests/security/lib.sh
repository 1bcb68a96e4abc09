# Helpers of the security tests, on top of tests/integration/lib.sh: a
# victim app that must keep answering, the node's isolation report, skips
# that say why, and invocations whose error message is checked.
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

# load_doctor: fetches the node's isolation report into $DOCTOR.
load_doctor() { DOCTOR=$(admin GET /doctor | cut -d' ' -f2-); }

# jfield KEY: prints member KEY of the JSON object on stdin ("" when absent
# or not JSON; strings bare, other values as JSON).
jfield() {
  python3 -c '
import json, sys
try:
    v = json.load(sys.stdin).get(sys.argv[1])
except Exception:
    v = None
print("" if v is None else v if isinstance(v, str) else json.dumps(v))' "$1"
}

# layer_field NAME FIELD: a field of one layer of $DOCTOR.
layer_field() {
  python3 -c '
import json, sys
for l in json.loads(sys.argv[1])["layers"]:
    if l["name"] == sys.argv[2]:
        print(json.dumps(l[sys.argv[3]]) if not isinstance(l[sys.argv[3]], str) else l[sys.argv[3]])' \
    "$DOCTOR" "$1" "$2"
}

# layer_on NAME: true when the layer is active on the current node.
layer_on() { [ "$(layer_field "$1" active)" = true ]; }

# layer_why NAME: the layer's detail (why it is off).
layer_why() { layer_field "$1" detail; }

# need_layers NAME... : returns 0 when every layer is on, else prints a skip
# line for the assertion named by $CHECK and returns 1.
need_layers() {
  for l in "$@"; do
    if ! layer_on "$l"; then skip "$CHECK" "layer $l is off: $(layer_why "$l")"; return 1; fi
  done
}

# make_victim: deploys app "victim" (a Lua and an exec function).
make_victim() {
  mkdir -p "$T/victim"
  cat >"$T/victim/tine.yaml" <<'YAML'
app: victim
functions:
  hi: { handler: v.lua#hi, warm: 1 }
  sh: { runtime: exec, handler: v.sh }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /sh, function: sh }
YAML
  cat >"$T/victim/v.lua" <<'LUA'
local n = 0
return { hi = function() n = n + 1; return "victim ok " .. n end }
LUA
  printf '#!/bin/sh\necho "victim sh ok"\n' >"$T/victim/v.sh"
  tine deploy "$T/victim" >/dev/null
}

# victim_ok NAME: the other app still answers, from Lua and exec.
victim_ok() {
  local lua sh
  lua=$(curl -s -m 10 "$URL/victim/hi" || true)
  sh=$(curl -s -m 10 "$URL/victim/sh" || true)
  if [[ "$lua" == "victim ok "* && "$sh" == "victim sh ok" ]]; then ok "$1: victim app keeps serving"
  else fail "$1: victim app keeps serving" "lua [$lua] exec [$sh]"; fi
}

# inv APP FN [JSON]: invokes through the admin API; sets STATUS (the
# function's status) and ERR (its error, or its body when it answered).
inv() {
  local out body=${3:-}
  [ -n "$body" ] || body='{}'
  out=$(curl -s -m 60 -X POST -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/apps/$1/functions/$2/invoke" \
    --data-binary "$body")
  STATUS=$(jfield status <<<"$out")
  ERR=$(jfield error <<<"$out")
  [ -n "$ERR" ] || ERR=$(jfield body <<<"$out")
  [ -n "$STATUS" ] || ERR="no answer: $out"
}

# attack NAME APP FN JSON STATUS NEEDLE: the invocation must fail with this
# status and an error containing NEEDLE, and the victim must keep serving.
attack() {
  inv "$2" "$3" "$4"
  if [ "$STATUS" = "$5" ] && [[ "$ERR" == *"$6"* ]]; then ok "$1: refused ($5: ${ERR:0:120})"
  else fail "$1" "expected status $5 with [$6], got status [$STATUS] error [$ERR]"; fi
  victim_ok "$1"
}

# node_pids: every process below the current node's tined (zygote,
# sandboxes, exec runners, their programs), one pid a line. Other nodes on
# the machine (other tests running at the same time) are not in it.
node_pids() {
  ps -eo pid=,ppid= | awk -v root="$NODE_PID" '
    { parent[$1] = $2 }
    END {
      for (p in parent) {
        q = parent[p]; n = 0
        while (q != root && (q in parent) && n++ < 64) q = parent[q]
        if (q == root) print p
      }
    }'
}

# exec_uids: the uid of every process of the current node running as an
# exec program's own uid (>= 1000000000), one a line, repeated per process.
exec_uids() {
  local p
  p=$(node_pids | paste -sd, -)
  [ -z "$p" ] || ps -o uid= -p "$p" | awk '$1 >= 1000000000'
}

# watch_exec PID: while PID (a background invocation) runs, samples the
# node's exec programs: MOST is the most processes one uid had at once,
# UIDS every uid seen; runs `on_seen` once when a program was seen.
watch_exec() {
  MOST=0
  UIDS=" "
  local seen n fired=false
  while kill -0 "$1" 2>/dev/null; do
    seen=$(exec_uids)
    n=$(sort <<<"$seen" | uniq -c | sort -rn | awk 'NR == 1 { print $1 }')
    [ "${n:-0}" -gt "$MOST" ] && MOST=$n
    for u in $seen; do [[ "$UIDS" == *" $u "* ]] || UIDS="$UIDS$u "; done
    if [ "$MOST" -ge 1 ] && ! $fired && declare -F on_seen >/dev/null; then fired=true; on_seen; fi
    sleep 0.1
  done
}

# procs_of_uids "UID ...": every process on the machine running as one of
# those uids (whatever its parent: a child that escaped is found too).
procs_of_uids() { ps -eo uid=,stat=,args= | awk -v u="$1" 'index(" " u " ", " " $1 " ")'; }

# The script's last command (finish of lib.sh: skipped when every check was).
finish_security() { finish; }
