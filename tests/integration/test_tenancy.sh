#!/usr/bin/env bash
# Namespaces, API keys and the audit log (docs/tenancy.md): keys as Bearer
# and Basic, app-restricted keys, bad credentials each with its own error,
# secrets stored nowhere, revocation reaching another node within a second,
# private routes (auth: key), an audit entry for every change and refusal,
# and the CLI (login, contexts, keys, namespaces, audit -f).
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
A_URL=$URL A_TOKEN=$TOKEN
start_node b --redis "$REDIS_URL"
B_URL=$URL
URL=$A_URL TOKEN=$A_TOKEN

# key NAME ROLE NAMESPACE [APP]: makes a key with the admin token; prints ID:SECRET.
key() {
  local body="{\"name\":\"$1\",\"role\":\"$2\",\"namespace\":\"$3\"${4:+,\"app\":\"$4\"}}"
  pyget "$(curl -s -X POST "$URL/_tine/v1/keys" -H "Authorization: Bearer $TOKEN" --data "$body")" 'd["key"]'
}
# as KEY METHOD PATH [curl args]: an admin call with a key, "STATUS BODY".
as() { local k=$1; shift; local m=$1 p=$2; shift 2; http "$m" "/_tine/v1$p" -H "Authorization: Bearer $k" "$@"; }

# --- namespaces ---------------------------------------------------------------
check_contains "create a namespace" "201" "$(admin PUT /namespaces/team-a)"
check_contains "create it again: 409" "409" "$(admin PUT /namespaces/team-a)"
check_contains "a bad name: 400 naming it" "400 {\"error\":\"namespace: 'Team_B' is not a namespace name" \
  "$(admin PUT /namespaces/Team_B)"
admin PUT /namespaces/team-b >/dev/null
check_contains "default always listed" '"namespace":"default"' "$(admin GET /namespaces)"
check_contains "default cannot be deleted" "400 {\"error\":\"the default namespace cannot be deleted\"}" \
  "$(admin DELETE /namespaces/default)"
check_contains "unknown namespace: 404" "404 {\"error\":\"no namespace named 'nope'\"}" "$(admin DELETE /namespaces/nope)"

# Apps: shop in team-a, with a public and a private route; web in team-b.
mkdir -p "$T/shop" "$T/web" "$T/stray"
cat >"$T/shop/tine.yaml" <<'YAML'
app: shop
namespace: team-a
functions:
  items: { handler: h.lua#items }
  secret: { handler: h.lua#secret, auth: key }
routes:
  - { method: GET, path: /items, function: items }
  - { method: POST, path: /items, function: items, auth: key }
  - { method: GET, path: /secret, function: secret }
YAML
cat >"$T/shop/h.lua" <<'LUA'
local M = {}
function M.items(req) return "items; authorization header seen: " .. tostring(req.headers["authorization"]) end
function M.secret(req) return "secret" end
return M
LUA
sed -e 's/^app: shop/app: web/' -e 's/namespace: team-a/namespace: team-b/' "$T/shop/tine.yaml" >"$T/web/tine.yaml"
cp "$T/shop/h.lua" "$T/web/"
sed -e 's/namespace: team-a/namespace: team-z/' "$T/shop/tine.yaml" >"$T/stray/tine.yaml"
cp "$T/shop/h.lua" "$T/stray/"
out=$(tine deploy "$T/stray" 2>&1 || true)
check_contains "deploy to an unknown namespace: clear error" \
  "tine.yaml: namespace: no namespace named 'team-z' on this cluster (a cluster admin creates it: tine namespaces create team-z)" "$out"
check "nothing registered by it" "0" "$(redis-cli -s "$T/redis.sock" sismember tine:apps shop)"
run tine deploy "$T/shop" >/dev/null
run tine deploy "$T/web" >/dev/null
check "deployed in team-a" "team-a" "$(redis-cli -s "$T/redis.sock" get tine:app:shop:ns)"
sed -i 's/namespace: team-z/namespace: team-b/' "$T/stray/tine.yaml"
out=$(tine deploy "$T/stray" 2>&1 || true)
check_contains "the same app in another namespace: 409" \
  "app shop exists in namespace team-a: app names are unique in the cluster and an app cannot move to another namespace" "$out"
check "its staged version is gone" "1" "$(redis-cli -s "$T/redis.sock" get tine:app:shop:live)"
check_contains "a namespace with apps cannot be deleted" \
  "409 {\"error\":\"namespace team-a still has 1 app (shop): delete them first\"}" "$(admin DELETE /namespaces/team-a)"

# --- keys ----------------------------------------------------------------------
DEP=$(key ci deployer team-a)
VIEW=$(key looker viewer team-a)
INV=$(key caller invoker team-a)
OTHER=$(key them deployer team-b)
SHOPONLY=$(key shopper deployer team-a shop)
ADM=$(key boss admin team-a)
check_contains "key format ID:SECRET" "ok" "$([[ $DEP =~ ^[0-9a-f]{16}:[0-9a-f]{64}$ ]] && echo ok || echo "bad: $DEP")"
DEP_ID=${DEP%%:*} DEP_SECRET=${DEP#*:}
check_contains "Bearer key works" '200 {"key":"'"$DEP_ID"'","name":"ci","role":"deployer","namespace":"team-a"' \
  "$(as "$DEP" GET /whoami)"
check_contains "Basic key works" '200 {"key":"'"$DEP_ID"'"' \
  "$(http GET /_tine/v1/whoami -u "$DEP_ID:$DEP_SECRET")"
check_contains "deployer sees its namespace's apps only" '"app":"shop","namespace":"team-a"' "$(as "$DEP" GET /apps)"
check "and not the other's" "" "$(as "$DEP" GET /apps | grep -o '"app":"web"' || true)"
check_contains "another namespace's app: 403 naming the permission" \
  "403 {\"error\":\"forbidden: key $DEP_ID (ci, role deployer, namespace team-a) lacks permission apps.read on app web of namespace team-b\"}" \
  "$(as "$DEP" GET /apps/web)"
check_contains "viewer cannot deploy: 403 naming apps.deploy" "lacks permission apps.deploy" \
  "$(as "$VIEW" PUT /apps/shop --data-binary x)"
check_contains "viewer reads routes" "200" "$(as "$VIEW" GET /apps/shop/routes)"
check_contains "invoker invokes" '200 {"invocation_id"' "$(as "$INV" POST /apps/shop/functions/items/invoke --data '{}')"
check_contains "invoker cannot read apps" "lacks permission apps.read" "$(as "$INV" GET /apps/shop)"
SHOP_ID=${SHOPONLY%%:*}
check_contains "an app-restricted key reaches its app" "200" "$(as "$SHOPONLY" GET /apps/shop/versions)"
mkdir -p "$T/other"
sed -e 's/^app: shop/app: other/' "$T/shop/tine.yaml" >"$T/other/tine.yaml"
cp "$T/shop/h.lua" "$T/other/"
out=$("$BIN/tine" --url "$URL" --token "$SHOPONLY" deploy "$T/other" 2>&1 || true)
check_contains "and cannot deploy another app" \
  "forbidden: key $SHOP_ID (shopper, role deployer, namespace team-a, app shop) lacks permission apps.deploy on app other: it is restricted to app shop" "$out"
check_contains "nor see it in lists" '"apps":[{"app":"shop"' "$(as "$SHOPONLY" GET /apps)"
check_contains "other namespace's key cannot delete shop" "403" "$(as "$OTHER" DELETE /apps/shop)"
check_contains "admin makes keys in its namespace" '201 {"id"' \
  "$(as "$ADM" POST /keys --data '{"name":"sub","role":"viewer"}')"
check_contains "admin's key defaults to its namespace" '"namespace":"team-a"' "$(as "$ADM" GET /keys)"
check_contains "admin cannot make keys elsewhere" "lacks permission keys.manage in namespace team-b" \
  "$(as "$ADM" POST /keys --data '{"name":"x","role":"viewer","namespace":"team-b"}')"
check_contains "nor cluster-admin keys" "only a cluster-admin makes cluster-admin keys" \
  "$(as "$ADM" POST /keys --data '{"name":"x","role":"cluster-admin"}')"
check "admin's list has no other namespace's key" "" "$(as "$ADM" GET /keys | grep -o '"namespace":"team-b"' || true)"
check_contains "admin cannot revoke another namespace's key" "404 {\"error\":\"no API key with id ${OTHER%%:*}\"}" \
  "$(as "$ADM" DELETE "/keys/${OTHER%%:*}")"

# Bad input: each a clear error.
check_contains "malformed key" "401 {\"error\":\"malformed API key 'abc:...': expected ID:SECRET (16 and 64 lower-case hex digits)\"}" \
  "$(http GET /_tine/v1/apps -H 'Authorization: Bearer abc:def')"
check_contains "wrong token" "401 {\"error\":\"wrong admin token, or a malformed API key" \
  "$(http GET /_tine/v1/apps -H 'Authorization: Bearer nope')"
check_contains "malformed Basic" "401 {\"error\":\"malformed Basic credentials" "$(http GET /_tine/v1/apps -u nobody:pw)"
check_contains "unknown key id" "401 {\"error\":\"unknown API key 0123456789abcdef\"}" \
  "$(http GET /_tine/v1/apps -H "Authorization: Bearer 0123456789abcdef:$DEP_SECRET")"
check_contains "wrong secret" "401 {\"error\":\"wrong secret for API key $DEP_ID\"}" \
  "$(http GET /_tine/v1/apps -H "Authorization: Bearer $DEP_ID:$(printf '0%.0s' $(seq 64))")"
check_contains "unknown role" "400 {\"error\":\"body: role: expected one of cluster-admin, admin, deployer, viewer, invoker, not 'root'\"}" \
  "$(admin POST /keys --data '{"name":"x","role":"root","namespace":"team-a"}')"
check_contains "unknown namespace" "404 {\"error\":\"namespace: no namespace named 'team-q'" \
  "$(admin POST /keys --data '{"name":"x","role":"viewer","namespace":"team-q"}')"
check_contains "bad key name" "400 {\"error\":\"name: 'a b' is not a key name" \
  "$(admin POST /keys --data '{"name":"a b","role":"viewer","namespace":"team-a"}')"
check_contains "app of another namespace" "400 {\"error\":\"body: app: app web is in namespace team-b, not team-a\"}" \
  "$(admin POST /keys --data '{"name":"x","role":"viewer","namespace":"team-a","app":"web"}')"
check_contains "revoking an unknown key" "404" "$(admin DELETE /keys/0123456789abcdef)"

# --- private routes --------------------------------------------------------------
check_contains "public route needs nothing" "200 items; authorization header seen: nil" "$(http GET /shop/items)"
check_contains "private route without a key: 401" "401 {\"error\":\"this route needs an API key (auth: key)" \
  "$(http POST /shop/items)"
check_contains "401 offers both schemes" "www-authenticate: Basic realm=\"tine\"" \
  "$(curl -si -X POST "$URL/shop/items" | tr -d '\r')"
check_contains "private route with an invoker key (Bearer)" "200 items; authorization header seen: nil" \
  "$(http POST /shop/items -H "Authorization: Bearer $INV")"
check_contains "and as Basic" "200 items" "$(http POST /shop/items -u "${INV%%:*}:${INV#*:}")"
check_contains "a private function's every route" "401" "$(http GET /shop/secret)"
check_contains "a viewer key may not invoke" "403 {\"error\":\"forbidden: key ${VIEW%%:*} (looker, role viewer, namespace team-a) lacks permission functions.invoke\"}" \
  "$(http GET /shop/secret -H "Authorization: Bearer $VIEW")"
check_contains "another namespace's key: 403" "(them, role deployer, namespace team-b) lacks permission functions.invoke on app shop of namespace team-a" \
  "$(http GET /shop/secret -H "Authorization: Bearer $OTHER")"
check_contains "the admin token may" "200 secret" "$(http GET /shop/secret -H "Authorization: Bearer $TOKEN")"
check_contains "a bad key on a private route" "401 {\"error\":\"malformed API key" \
  "$(http GET /shop/secret -H 'Authorization: Bearer x:y')"
check_contains "a key made on node a works at once on node b" "200 secret" \
  "$(curl -s -w '%{http_code} ' -o "$T/body" -H "Authorization: Bearer $(key fresh invoker team-a)" "$B_URL/shop/secret"; cat "$T/body")"

# A key neither node has heard of (written straight into Redis, nothing
# announced, the generation left alone) is read while its request waits.
SECRET=$(printf 'ab%.0s' $(seq 32))
redis-cli -s "$T/redis.sock" hset tine:keys 00000000000000aa \
  "{\"name\":\"manual\",\"role\":\"invoker\",\"namespace\":\"team-a\",\"sha256\":\"$(printf '%s' "$SECRET" | sha256sum | cut -c1-64)\",\"created\":1}" >/dev/null
check_contains "an unannounced key is read on demand (private route)" "200 secret" \
  "$(curl -s -w '%{http_code} ' -o "$T/body" -H "Authorization: Bearer 00000000000000aa:$SECRET" "$B_URL/shop/secret"; cat "$T/body")"
check_contains "and on the admin API" '"name":"manual"' \
  "$(curl -s -u "00000000000000aa:$SECRET" "$URL/_tine/v1/whoami")"

# --- revocation across nodes -----------------------------------------------------
REV=$(key doomed invoker team-a)
check_contains "node b takes the key" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REV" "$B_URL/shop/secret")"
start_ms=$(date +%s%3N)
run admin DELETE "/keys/${REV%%:*}" >/dev/null
refused=""
while [ $(($(date +%s%3N) - start_ms)) -lt 3000 ]; do
  code=$(curl -s -o "$T/rev" -w '%{http_code}' -H "Authorization: Bearer $REV" "$B_URL/shop/secret")
  if [ "$code" = 401 ]; then refused=$(($(date +%s%3N) - start_ms)); break; fi
  sleep 0.02
done
check_contains "node b refuses the revoked key" "was revoked at" "$(cat "$T/rev")"
check "within 1 s of the revocation on node a (took ${refused:-never} ms)" "yes" \
  "$([ -n "$refused" ] && [ "$refused" -lt 1000 ] && echo yes || echo no)"
check_contains "revoked key on the admin API too" "401" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REV" "$B_URL/_tine/v1/whoami")"
check_contains "revoking twice: 409" "409 {\"error\":\"API key ${REV%%:*} was revoked already" \
  "$(admin DELETE "/keys/${REV%%:*}")"

# --- expiry -----------------------------------------------------------------------
# A key with an end works until then on both nodes, and is refused after it
# with the time; keys it makes cannot outlive it.
SHORT=$(pyget "$(admin POST /keys --data '{"name":"brief","role":"admin","namespace":"team-a","expires_in":3}' | cut -d' ' -f2-)" 'd["key"]')
check_contains "an expiring key lists its end" "\"expires\":\"20" "$(admin GET /keys | grep -o "\"id\":\"${SHORT%%:*}\"[^}]*")"
check_contains "an expiring key works before its end (node b)" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SHORT" "$B_URL/shop/secret")"
check_contains "a key it makes cannot outlive it" "400 {\"error\":\"body: expires_in: key ${SHORT%%:*} expires at" \
  "$(as "$SHORT" POST /keys --data '{"name":"longer","role":"viewer","expires_in":3600}')"
CHILD=$(pyget "$(as "$SHORT" POST /keys --data '{"name":"child","role":"viewer"}' | cut -d' ' -f2-)" 'd["key"]')
check "a key it makes without an end gets its end" \
  "$(admin GET /keys | grep -o "\"id\":\"${SHORT%%:*}\"[^}]*" | grep -o '"expires":"[^"]*"')" \
  "$(admin GET /keys | grep -o "\"id\":\"${CHILD%%:*}\"[^}]*" | grep -o '"expires":"[^"]*"')"
check_contains "expires_in out of range" "400 {\"error\":\"body: expires_in: expected whole seconds from 1 to" \
  "$(admin POST /keys --data '{"name":"x","role":"viewer","namespace":"team-a","expires_in":0}')"
check_contains "expires_in not a number" "400 {\"error\":\"body: expires_in: expected whole seconds" \
  "$(admin POST /keys --data '{"name":"x","role":"viewer","namespace":"team-a","expires_in":"1d"}')"
sleep 3.2
check_contains "an expired key: 401 with the time (node b)" "(brief) expired at 20" \
  "$(curl -s -H "Authorization: Bearer $SHORT" "$B_URL/shop/secret")"
check_contains "and on the admin API of node a" "401 {\"error\":\"API key ${SHORT%%:*} (brief) expired at" \
  "$(as "$SHORT" GET /whoami)"
check_contains "its child expired with it" "(child) expired at" "$(as "$CHILD" GET /whoami)"

# The backstop: a revocation whose announcement never came (written straight
# into Redis, the generation bumped, nothing published) is caught by the
# generation check within a second and a bit.
QUIET=$(key quiet invoker team-a)
check_contains "node b takes the quiet key" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $QUIET" "$B_URL/shop/secret")"
redis-cli -s "$T/redis.sock" eval "local k = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1])) k.revoked = 1 \
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(k)) return redis.call('INCR', KEYS[2])" 2 tine:keys tine:keys:gen \
  "${QUIET%%:*}" >/dev/null
start_ms=$(date +%s%3N)
refused=""
while [ $(($(date +%s%3N) - start_ms)) -lt 5000 ]; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $QUIET" "$B_URL/shop/secret")
  if [ "$code" = 401 ]; then refused=$(($(date +%s%3N) - start_ms)); break; fi
  sleep 0.05
done
check "a revocation without its announcement is caught by the recheck (took ${refused:-never} ms)" "yes" \
  "$([ -n "$refused" ] && [ "$refused" -lt 2500 ] && echo yes || echo no)"

# A deploy body over 64 KiB is judged by its head: a key without apps.deploy
# never gets it read; one with it does.
mkdir -p "$T/big"
cp "$T/shop/tine.yaml" "$T/shop/h.lua" "$T/big/"
head -c 300000 /dev/urandom | base64 >"$T/big/blob.txt"
out=$("$BIN/tine" --url "$URL" --token "$VIEW" deploy "$T/big" 2>&1 || true)
check_contains "a big bundle from a viewer: 403 at its head" "lacks permission apps.deploy" "$out"
check_contains "from a deployer of its namespace: deployed" "deployed shop version" \
  "$("$BIN/tine" --url "$B_URL" --token "$(key big deployer team-a)" deploy "$T/big" 2>&1)"

# --- secrets stored nowhere --------------------------------------------------------
: >"$T/dump"
redis-cli -s "$T/redis.sock" --scan | while read -r k; do
  echo "$k" >>"$T/dump"
  redis-cli -s "$T/redis.sock" dump "$k" >>"$T/dump" 2>/dev/null || true
  case $(redis-cli -s "$T/redis.sock" type "$k") in
    hash) redis-cli -s "$T/redis.sock" hgetall "$k" >>"$T/dump" ;;
    string) redis-cli -s "$T/redis.sock" get "$k" >>"$T/dump" ;;
    stream) redis-cli -s "$T/redis.sock" xrange "$k" - + >>"$T/dump" ;;
    set) redis-cli -s "$T/redis.sock" smembers "$k" >>"$T/dump" ;;
    list) redis-cli -s "$T/redis.sock" lrange "$k" 0 -1 >>"$T/dump" ;;
  esac
done
check_contains "the dump holds the key records" "$DEP_ID" "$(cat "$T/dump")"
check_contains "with the secret's SHA-256" "$(printf '%s' "$DEP_SECRET" | sha256sum | cut -c1-64)" "$(cat "$T/dump")"
leaks=""
for k in "$DEP" "$VIEW" "$INV" "$OTHER" "$SHOPONLY" "$ADM" "$REV"; do
  s=${k#*:}
  grep -q "$s" "$T/dump" && leaks+=" redis:${k%%:*}"
  grep -rqa "$s" "$T/a" "$T/b" "$T/a.log" "$T/b.log" && leaks+=" disk:${k%%:*}"
done
check "no secret in Redis, the state dirs or the logs" "" "$leaks"

# --- audit ------------------------------------------------------------------------
tine rollback shop >/dev/null 2>&1 || true # nothing to roll back to: a failed change
run tine deploy --force "$T/shop" >/dev/null
run tine rollback shop >/dev/null
run tine scale shop items --warm 1 >/dev/null
run tine evict shop >/dev/null
run tine versions prune shop --keep 1 >/dev/null
admin POST /apps/shop/dlq/replay --data '{"ids":["1-1"]}' >/dev/null
as "$VIEW" DELETE /apps/shop >/dev/null
run tine delete web --yes >/dev/null
run admin DELETE /namespaces/team-b >/dev/null
audit=$(admin GET '/audit?limit=1000')
for action in namespace.create deploy key.create rollback scale evict prune events.replay delete key.revoke namespace.delete; do
  check_contains "audit: $action" "\"action\":\"$action\"" "$audit"
done
check_contains "audit: who, what, outcome" "\"key\":\"admin-token\",\"key_name\":\"admin token\",\"namespace\":\"team-a\",\"action\":\"rollback\",\"target\":\"shop\",\"outcome\":\"ok\",\"status\":200" "$audit"
check_contains "audit: a refusal, by the key" "\"key\":\"${VIEW%%:*}\",\"key_name\":\"looker\",\"namespace\":\"team-a\",\"action\":\"delete\",\"target\":\"shop\",\"outcome\":\"refused\",\"status\":403" "$audit"
check_contains "audit: a refused deploy to another namespace" "\"action\":\"deploy\",\"target\":\"shop\",\"outcome\":\"failed\",\"status\":409" "$audit"
check_contains "audit: a revoked key's attempt" "\"key\":\"${REV%%:*}\",\"key_name\":\"doomed\"" \
  "$(as "$REV" POST /apps/shop/rollback >/dev/null; sleep 0.2; admin GET '/audit?limit=5')"
check "audit: no secret in it" "" "$(grep -o "${DEP_SECRET}" <<<"$audit" || true)"
check_contains "audit of one namespace" '"namespace":"team-a"' "$(admin GET '/audit?namespace=team-a')"
check "audit of one namespace has no other's" "" "$(admin GET '/audit?namespace=team-a' | grep -o '"namespace":"team-b"' || true)"
check_contains "a namespace admin reads its own audit" "200" "$(as "$ADM" GET /audit)"
check_contains "and not another's" "lacks permission audit.read in namespace team-b" "$(as "$ADM" GET '/audit?namespace=team-b')"
check_contains "deleting team-b revoked its key" "was revoked at" "$(as "$OTHER" GET /whoami)"
check_contains "bad after" "400 {\"error\":\"query: after: 'x' is not an audit entry id" "$(admin GET '/audit?after=x')"

# --- CLI -----------------------------------------------------------------------------
export XDG_CONFIG_HOME=$T/config
out=$(echo "$ADM" | "$BIN/tine" login "$URL" --name work 2>&1)
check_contains "tine login" "as ${ADM%%:*} (boss, role admin, namespace team-a); context work is current" "$out"
check "credentials file is private" "600" "$(stat -c %a "$T/config/tine/credentials")"
out=$("$BIN/tine" apps 2>&1)
check_contains "commands use the context" "shop" "$out"
ROBOT=$("$BIN/tine" keys create robot --role invoker 2>"$T/keys.err")
check_contains "keys create prints ID:SECRET alone" "ok" "$([[ $ROBOT =~ ^[0-9a-f]{16}:[0-9a-f]{64}$ ]] && echo ok || echo "$ROBOT")"
check_contains "and says it is shown once" "this is the only time the key is shown" "$(cat "$T/keys.err")"
out=$("$BIN/tine" keys list)
check_contains "keys list" "robot" "$out"
check "keys list shows no secret" "" "$(grep -o "${ROBOT#*:}" <<<"$out" || true)"
check_contains "keys revoke" "revoked key" "$("$BIN/tine" keys revoke "${ADM%%:*}:x" 2>&1 || true)"
out=$("$BIN/tine" apps 2>&1 || true)
check_contains "a revoked context key: 401 with a hint" "(the key of context work: tine login again" "$out"
unset XDG_CONFIG_HOME
check_contains "tine namespaces create" "created namespace team-c" "$(tine namespaces create team-c)"
check_contains "tine namespaces list" "team-c" "$(tine namespaces list)"
check_contains "tine namespaces delete" "deleted namespace team-c (0 keys revoked)" "$(tine namespaces delete team-c)"
check_contains "tine keys create: unknown role" "tine: body: role: expected one of" \
  "$(tine keys create x --role root --namespace team-a 2>&1 || true)"
check_contains "tine keys create --expires: a bad duration" "--expires: expected a duration such as" \
  "$(tine keys create x --role viewer --namespace team-a --expires 3w 2>&1 || true)"
tine keys create timed --role viewer --namespace team-a --expires 2h >/dev/null 2>&1
check_contains "tine keys create --expires 2h: listed with its end" "timed" \
  "$(tine keys list --namespace team-a | grep -E 'timed .* 20[0-9-]+T[0-9:.]+Z *$')"
check_contains "tine audit" "namespace.delete team-c ok (200) by admin-token" "$(tine audit --namespace team-c)"
tine audit -f --namespace team-a >"$T/follow" 2>&1 &
FOLLOW=$!
PIDS+=($FOLLOW)
sleep 0.5
run tine scale shop items --warm 0 >/dev/null
wait_for 5 grep -q "scale shop ok" "$T/follow" || true
check_contains "tine audit -f prints new entries" "scale shop ok (200) by admin-token (admin token)" "$(cat "$T/follow")"
finish
