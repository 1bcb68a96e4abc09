#!/usr/bin/env bash
# The OpenWhisk-compatible API (/api/v1) driven by the unmodified `openwhisk`
# npm client (test_openwhisk.js, its version pinned by package-lock.json):
# a real redis-server and tined, keys of two namespaces, then the client's
# calls. After it, checks of the tine side: every change is a version of the
# namespace's app, and `tine rollback` undoes one.
source "$(dirname "$0")/../integration/lib.sh"

command -v node >/dev/null && command -v npm >/dev/null ||
  skip_all "node and npm are needed to run the openwhisk npm client (apt-get install nodejs npm)"
mkdir -p "$T/npm"
cp "$SRC/tests/openwhisk/package.json" "$SRC/tests/openwhisk/package-lock.json" "$T/npm/"
if ! (cd "$T/npm" && npm ci --no-audit --no-fund --loglevel=error >"$T/npm.log" 2>&1); then
  cat "$T/npm.log"
  skip_all "npm could not fetch the openwhisk client (registry unreachable?): see the npm output above"
fi

# The zips the client sends: a Python action importing a module of its own,
# and two with paths that must not be written.
python3 - "$T" <<'PY'
import sys, zipfile
t = sys.argv[1]
with zipfile.ZipFile(t + "/good.zip", "w") as z:
    z.writestr("__main__.py", "import helper\ndef main(p):\n    return {'helped': helper.mark(p['x'])}\n")
    z.writestr("helper.py", "def mark(s):\n    return s + '!'\n")
with zipfile.ZipFile(t + "/evil.zip", "w") as z:
    z.writestr("__main__.py", "def main(p):\n    return {}\n")
    z.writestr("../../escape.py", "x = 1\n")
with zipfile.ZipFile(t + "/abs.zip", "w") as z:
    zi = zipfile.ZipInfo("/etc/owned.py")
    z.writestr(zi, "x = 1\n")
    z.writestr("__main__.py", "def main(p):\n    return {}\n")
PY

start_redis
start_node n1 --redis "$REDIS_URL"
tine namespaces create team-a >/dev/null
tine namespaces create team-b >/dev/null
KEY=$(tine keys create ow-ci --namespace team-a --role deployer 2>/dev/null)
VIEWER=$(tine keys create ow-view --namespace team-a --role viewer 2>/dev/null)
OTHER=$(tine keys create ow-other --namespace team-b --role deployer 2>/dev/null)

if OW_URL=$URL OW_NS=team-a OW_KEY=$KEY OW_VIEWER_KEY=$VIEWER OW_OTHER_KEY=$OTHER OW_ZIP_GOOD=$T/good.zip \
  OW_ZIP_EVIL=$T/evil.zip OW_ZIP_ABS=$T/abs.zip NODE_PATH=$T/npm/node_modules \
  node "$SRC/tests/openwhisk/test_openwhisk.js" >"$T/client.out" 2>&1; then
  rc=0
else
  rc=$?
fi
cat "$T/client.out"
PASSED=$((PASSED + $(grep -c '^ok ' "$T/client.out" || true)))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$T/client.out" || true)))
[ "$rc" -eq 0 ] || grep -q '^FAIL ' "$T/client.out" || fail "npm client" "exited with status $rc"

# Changes are in the audit log, as the admin API's are: who, what, outcome.
audit=$(run admin GET "/audit?namespace=team-a&limit=10000")
entry() { # entry ACTION TARGET OUTCOME STATUS: how many entries match
  python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(sum(1 for e in d["entries"]
    if e["action"]==sys.argv[2] and e["target"]==sys.argv[3] and e["outcome"]==sys.argv[4] and e["status"]==int(sys.argv[5])))' \
    "$audit" "$@"
}
check "the audit log has hello's creation and update" 2 "$(entry openwhisk.actions.put ow-team-a:hello ok 200)"
check "... both by the key" 2 "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(sum(1 for e in d["entries"] if e["action"]=="openwhisk.actions.put" and e["target"]=="ow-team-a:hello" and e["key"]==sys.argv[2][:16]))' "$audit" "$KEY")"
check "... the viewer's refused creation" 1 "$(entry openwhisk.actions.put ow-team-a:x refused 403)"
check "... the rule's disabling and enabling" 2 "$(entry openwhisk.rules.status ow-team-a:paint-rule ok 200)"
check "... and the deletion of third" 1 "$(entry openwhisk.actions.delete ow-team-a:third ok 200)"

# The tine side: the namespace is app ow-team-a, one version per change;
# refused changes made none; a rollback brings the previous code back.
versions=$(run tine versions ow-team-a)
run_failed "tine versions" || true
n=$(grep -cE '^[ *] +[0-9]+ ' <<<"$versions" || true)
# Every successful change: slow, 3 creates + 1 update, zipped, bb, app-error,
# raises, on-event, trigger, rule, disable, enable, inc, dbl, add10, chain,
# page, delete.
# And the nodejs action, created and deleted: two more.
check "each change is one version of app ow-team-a" 22 "$n"
ow() { curl -s -u "$KEY" "$URL/api/v1/namespaces/_/$1"; }
code=$(ow actions/hello | python3 -c 'import json,sys; print(json.load(sys.stdin)["exec"]["code"])')
check_contains "before the rollback hello is the updated code" "bonjour" "$code"
live=$(grep -E '^\* +[0-9]+ ' <<<"$versions" | awk '{print $2}')
# Version 2 has slow and hello, as first created.
run tine rollback ow-team-a 2 >/dev/null
run_failed "tine rollback" || true
code=$(ow actions/hello | python3 -c 'import json,sys; print(json.load(sys.stdin)["exec"]["code"])')
check_contains "tine rollback brings the first code back" "\"hello \"" "$code"
n_after=$(ow actions | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "after the rollback to version 2 the namespace has its two actions" 2 "$n_after"
res=$(curl -s -u "$KEY" -X POST "$URL/api/v1/namespaces/_/actions/hello?blocking=true&result=true" -d '{"name":"again"}')
check "the rolled-back action runs" '{"greeting":"hello again"}' "$res"
run tine rollback ow-team-a "$live" >/dev/null
run_failed "tine rollback forward" || true
n_back=$(ow actions | python3 -c 'import json,sys; print(" ".join(sorted(a["name"] for a in json.load(sys.stdin))))')
check "rolling forward brings every action back" "add10 app-error bb chain dbl hello inc on-event page py raises slow zipped" "$n_back"

# A zip over the 64 KiB tine reads before routing (intake.c) is read for
# /api/v1 too, up to the bundle limit (it answered "no app named 'api'").
python3 - "$T" <<'PY'
import base64, json, os, sys, zipfile
t = sys.argv[1]
with zipfile.ZipFile(t + "/big.zip", "w", compression=zipfile.ZIP_STORED) as z:
    z.writestr("__main__.py", "def main(p):\n    return {'size': len(open(__file__.rsplit('/', 1)[0] + '/data.bin', 'rb').read())}\n")
    z.writestr("data.bin", os.urandom(300000))
code = base64.b64encode(open(t + "/big.zip", "rb").read()).decode()
open(t + "/big.json", "w").write(json.dumps({"exec": {"kind": "python:3", "code": code}}))
PY
out=$(http PUT /api/v1/namespaces/team-a/actions/big -u "$KEY" --data-binary @"$T/big.json")
check_contains "a 400 KB zipped action is accepted" '200 {"namespace":"team-a","name":"big"' "$out"
out=$(http POST "/api/v1/namespaces/team-a/actions/big?blocking=true&result=true" -u "$KEY" -d '{}')
check "... and runs with its data" '200 {"size":300000}' "$out"
out=$(http PUT /api/v1/namespaces/team-a/actions/big2 --data-binary @"$T/big.json")
check_contains "... and refused (401) without credentials" '401 {"error":"The supplied authentication is invalid' "$out"

# The admin token is a cluster admin: "_" is namespace default; a namespace
# that does not exist is refused before anything is stored.
put='{"exec":{"kind":"lua","code":"function main(p) return {} end"}}'
out=$(http PUT /api/v1/namespaces/nosuch/actions/x -H "Authorization: Bearer $TOKEN" -d "$put")
check_contains "an action in a namespace that does not exist is 404" '404 {"error":' "$out"
check_contains "... naming the namespace" "nosuch" "$out"
known=$(run tine apps)
[[ "$known" != *ow-nosuch* ]] && ok "no app ow-nosuch" || fail "no app ow-nosuch" "$known"
out=$(http PUT /api/v1/namespaces/_/actions/x -H "Authorization: Bearer $TOKEN" -d "$put")
check_contains "the admin token's _ is namespace default" '"namespace":"default"' "$out"

finish
