#!/usr/bin/env bash
# Every role against every admin endpoint: the endpoints and the permission
# each needs come from the table of docs/admin-api.md, what each role may do
# from the roles table of docs/tenancy.md (a unit test, test_auth.c, keeps
# both equal to gateway/auth.c's). A key whose role lacks the permission
# gets 403 naming it; one that has it never gets 401 or 403; no key gets
# 401; a key of another namespace, or restricted to another app, gets 403 on
# every endpoint of an app. An endpoint the docs list and the node does not
# serve (or serves without a permission) fails here.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
admin PUT /namespaces/ns1 >/dev/null
admin PUT /namespaces/ns2 >/dev/null
make_app "$T/demo" v1
sed -i '1a namespace: ns1' "$T/demo/tine.yaml"
run tine deploy "$T/demo" >/dev/null
run tine invoke demo who >/dev/null

keys=()
for role in cluster-admin admin deployer viewer invoker; do
  ns=',"namespace":"ns1"'
  [ "$role" = cluster-admin ] && ns=
  k=$(pyget "$(curl -s -X POST "$URL/_tine/v1/keys" -H "Authorization: Bearer $TOKEN" \
    --data "{\"name\":\"k-$role\",\"role\":\"$role\"$ns}")" 'd["key"]')
  keys+=("$role=$k")
done
stranger=$(pyget "$(curl -s -X POST "$URL/_tine/v1/keys" -H "Authorization: Bearer $TOKEN" \
  --data '{"name":"stranger","role":"admin","namespace":"ns2"}')" 'd["key"]')
elsewhere=$(pyget "$(curl -s -X POST "$URL/_tine/v1/keys" -H "Authorization: Bearer $TOKEN" \
  --data '{"name":"elsewhere","role":"admin","namespace":"ns1","app":"another"}')" 'd["key"]')

python3 - "$SRC" "$URL" "$stranger" "$elsewhere" "${keys[@]}" >"$T/roles.out" 2>&1 <<'PY' || true
import json, re, sys, urllib.request

src, url, stranger, elsewhere = sys.argv[1:5]
keys = dict(a.split("=", 1) for a in sys.argv[5:])

# The endpoints and their permissions, as docs/admin-api.md lists them.
endpoints = []
for line in open(src + "/docs/admin-api.md"):
    m = re.match(r"\| (GET|PUT|POST|DELETE) \| `/_tine/v1/([^`]*)` \| ([^|]*) \|", line)
    if m:
        path = re.split(r"[\[?]", m.group(2))[0]
        perm = m.group(3).strip().strip("`")
        endpoints.append((m.group(1), path, perm))
# What each role may do, as docs/tenancy.md's roles table says.
roles, grants = [], {}
section = open(src + "/docs/tenancy.md").read().split("### Roles")[1].split("\n## ")[0]
for line in section.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if cells[0] == "permission":
        roles = cells[1:6]
    elif cells[0].startswith("`"):
        grants[cells[0].strip("`")] = {r for r, v in zip(roles, cells[1:6]) if v == "yes"}

# Concrete requests that change nothing lasting: a body the handler refuses
# after the permission check, or a target that does not exist.
def concrete(method, path):
    body = None
    subst = {"{fn}": "who", "{id}": "0000000000000000", "{ns}": "no-such-ns"}
    app = "demo"
    if method == "DELETE" and path == "apps/{app}":
        app = "ghost"  # an app that does not exist: nothing is deleted
    for k, v in subst.items():
        path = path.replace(k, v)
    if path == "activations/0000000000000000":
        path = "activations/00"
    path = path.replace("{app}", app)
    if path == "usage":
        path = "usage?app=demo"
    if path.endswith("/logs"):
        path += "?limit=1"
    if path.endswith("/quota"):
        path = "namespaces/ns1/quota"  # the keys' own namespace: PUT's body is refused (0)
    elif method == "PUT" and path.startswith("namespaces/"):
        path = "namespaces/ns-x"
    bodies = {
        ("PUT", "apps/demo"): b"not a bundle", ("POST", "apps/demo"): b"not a bundle",
        ("POST", "apps/demo/versions/prune"): b"{}", ("POST", "apps/demo/rollback"): b'{"version": 999}',
        ("POST", "apps/demo/functions/who/invoke"): b"{}", ("PUT", "apps/demo/functions/who/scale"): b'{"warm": 0}',
        ("POST", "events"): b"{}", ("POST", "apps/demo/dlq/replay"): b'{"ids": ["1-1"]}',
        ("POST", "keys"): b'{"name": "x", "role": "no-such-role"}',
        ("PUT", "namespaces/ns1/quota"): b'{"concurrency": 0}',
    }
    return path, bodies.get((method, path))

def call(method, path, body, key):
    req = urllib.request.Request(url + "/_tine/v1/" + path, data=body, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

checked = failed = 0
def check(name, ok, detail):
    global checked, failed
    checked += 1
    if ok:
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, detail))

check("docs list the endpoints", len(endpoints) >= 25, "%d rows" % len(endpoints))
check("docs list the roles", roles == ["cluster-admin", "admin", "deployer", "viewer", "invoker"], roles)
for method, path, perm in endpoints:
    p, body = concrete(method, path)
    name = "%s %s" % (method, path)
    if perm == "—":
        st, text = call(method, p, body, None)
        check(name + " needs no key", st == 200, "%d %s" % (st, text))
        continue
    st, text = call(method, p, body, None)
    check(name + " without a key: 401", st == 401, "%d %s" % (st, text))
    for role in roles:
        st, text = call(method, p, body, keys[role])
        if perm == "any key" or role in grants.get(perm, set()):
            check("%s as %s: allowed" % (name, role), st not in (401, 403), "%d %s" % (st, text))
        else:
            check("%s as %s: 403 naming %s" % (name, role, perm),
                  st == 403 and ("lacks permission " + perm) in text, "%d %s" % (st, text))
    if "{app}" in path and p.startswith("apps/demo") or p.startswith("usage"):
        for who, key in (("a key of another namespace", stranger), ("a key of another app", elsewhere)):
            st, text = call(method, p, body, key)
            check("%s as %s: 403" % (name, who), st == 403 and ("lacks permission " + perm) in text,
                  "%d %s" % (st, text))
print("%d endpoint checks, %d failed" % (checked, failed))
sys.exit(1 if failed else 0)
PY
while IFS= read -r line; do
  case $line in
    "ok   "*) ok "${line#ok   }" ;;
    "FAIL "*) fail "${line#FAIL }" "" ;;
    *) echo "$line" ;;
  esac
done <"$T/roles.out"
check_contains "every row was checked" "endpoint checks, 0 failed" "$(tail -n 1 "$T/roles.out")"
finish
