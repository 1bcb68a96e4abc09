#!/usr/bin/env bash
# Redeploying the same files makes no new version (and an older version's
# files do not roll back silently); `tine versions prune` removes old
# versions but never the live one, and the stored files only they used,
# without losing a file of a deploy running at the same time; `tine delete`
# removes an app from every node with its versions, files, tine.kv keys,
# dead letters and activation records, and keeps its usage.
. "$(dirname "$0")/lib.sh"
start_redis
start_node b --redis "$REDIS_URL"
start_node a --redis "$REDIS_URL"
r() { redis-cli -s "$T/redis.sock" "$@"; }
blob_of() { sha256sum "$1" | cut -d' ' -f1; }

# ------------------------------------------------------- identical bundles
make_app "$T/v1" one
make_app "$T/v2" two
check "first deploy" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "the same files again: unchanged" \
  "unchanged: demo version 1 is live (tine deploy --force makes a new version)" "$(tine deploy "$T/v1")"
out=$(run tine --json deploy "$T/v1")
check "unchanged with --json (and the live version's digest)" '{"app":"demo","version":1,"live":1,"unchanged":true} 64' \
  "$(pyget "$out" 'json.dumps({k: v for k, v in d.items() if k != "digest"}, separators=(",", ":")) + " " + str(len(d["digest"]))')"
check "no version was added" "1" "$(run r GET tine:app:demo:seq)"
check "new files: a new version" "deployed demo version 2" "$(tine deploy "$T/v2")"
out=$(tine deploy "$T/v1" 2>&1) && rc=0 || rc=$?
check "an older version's files: refused" "1" "$rc"
check "saying so, and how to roll back" \
  "tine: demo: this bundle is version 1, and version 2 is live: nothing deployed (tine rollback demo 1 makes it live again; tine deploy --force stores it as a new version)" "$out"
check "no silent rollback" "200 two 2" "$(http GET /demo/who)"
check "--force makes a new version" "deployed demo version 3" "$(tine deploy --force "$T/v1")"
check "served" "200 one 3" "$(http GET /demo/who)"

# ------------------------------------------------------------------ prune
# Each version has its own who.lua and only$i.lua, and the same tine.yaml.
mkdir -p "$T/p"
for i in 1 2 3 4 5; do
  make_app "$T/p$i" "p$i" gone
  echo "return 'only in $i'" >"$T/p$i/only$i.lua"
  check "gone version $i" "deployed gone version $i" "$(tine deploy "$T/p$i")"
done
only1=$(blob_of "$T/p1/only1.lua")
only3=$(blob_of "$T/p3/only3.lua")
shared=$(blob_of "$T/p1/tine.yaml")
check "rollback to 2" "gone: live version is now 2" "$(tine rollback gone 2)"
check "prune --keep 2: never the live version" \
  "gone: pruned versions 1, 3; kept 2, 4, 5 (live 2); 4 stored files no longer used removed" \
  "$(run tine versions prune gone --keep 2)"
check "the pruned versions are gone" "0 1 0 1 1" \
  "$(for v in 1 2 3 4 5; do printf '%s ' "$(r EXISTS tine:app:gone:v:$v)"; done | sed 's/ $//')"
check "their own files are gone" "0 0" "$(r EXISTS "tine:blob:$only1") $(r EXISTS "tine:blob:$only3")"
check "a file kept versions use stays" "1" "$(r EXISTS "tine:blob:$shared")"
check "the live version still serves" "200 p2 2" "$(http GET /gone/who)"
check_contains "tine versions lists what is left" "* 2" "$(run tine versions gone)"
check "rollback to a pruned version: refused" "tine: gone has no version 1" "$(tine rollback gone 1 2>&1 || true)"
check "rollback without a number skips pruned versions" "tine: gone: version 2 is the oldest; nothing to roll back to" \
  "$(tine rollback gone 2>&1 || true)"
out=$(tine versions prune gone 2>&1) && rc=0 || rc=$?
check "prune needs --keep" "2" "$rc"

# A deploy under way marks its files before it stores them: the collector
# leaves them alone, though no version references them yet. Here the marks
# of a deploy of ca are made by hand, then those of a deploy that ended.
make_app "$T/ca" ca gone
make_app "$T/cb" cb gone
tine deploy "$T/ca" >/dev/null
tine deploy "$T/cb" >/dev/null
ca=$(blob_of "$T/ca/who.lua")
r SADD tine:deploying:under-way "$ca" >/dev/null
r SADD tine:deploying under-way >/dev/null
tine versions prune gone --keep 0 >/dev/null
check "a file a deploy under way marked is kept" "1" "$(r EXISTS "tine:blob:$ca")"
r DEL tine:deploying:under-way >/dev/null
tine deploy --force "$T/ca" >/dev/null
tine deploy --force "$T/cb" >/dev/null
tine versions prune gone --keep 0 >/dev/null
check "once the deploy ended, it is collected" "0" "$(r EXISTS "tine:blob:$ca")"
check "the ended deploy's id is dropped" "0" "$(r SISMEMBER tine:deploying under-way)"

# A version a deploy under way staged (not live yet, "pending") is not
# pruned; one a dead node left pending is, after an hour.
tine deploy --force "$T/ca" >/dev/null
tine deploy --force "$T/cb" >/dev/null
v=$(r GET tine:app:gone:seq)
r HSET "tine:app:gone:v:$((v - 1))" pending "$(date +%s%3N)" >/dev/null
tine versions prune gone --keep 0 >/dev/null
check "a version a deploy under way staged is kept" "1" "$(r EXISTS "tine:app:gone:v:$((v - 1))")"
r HSET "tine:app:gone:v:$((v - 1))" pending "$(( $(date +%s%3N) - 3601000 ))" >/dev/null
check_contains "one left pending by a dead node is pruned" "gone: pruned version $((v - 1));" \
  "$(run tine versions prune gone --keep 0)"

# Deploys through one node while another prunes: no version may lose a
# file. The two bundles take turns (--force), so each deploy stores files
# that versions being pruned hold too.
(
  for i in $(seq 1 15); do
    for d in ca cb; do tine deploy --force "$T/$d" >/dev/null || echo "deploy $d $i failed" >>"$T/conc.err"; done
  done
) &
DEPLOYER=$!
while kill -0 "$DEPLOYER" 2>/dev/null; do
  tine --url "$URL_b" --token "$TOKEN_b" versions prune gone --keep 0 >/dev/null || echo "prune failed" >>"$T/conc.err"
done
wait "$DEPLOYER"
check "deploys and prunes at once: none failed" "" "$(cat "$T/conc.err" 2>/dev/null)"
missing=0
for key in $(r KEYS 'tine:app:*:v:*'); do
  for sha in $(r HGET "$key" files | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin).values()))'); do
    [ "$(r EXISTS "tine:blob:$sha")" = 1 ] || { missing=$((missing + 1)); echo "missing $sha of $key"; }
  done
done
check "every version still has all its files" "0" "$missing"
check "the newest version serves" "200 cb 41" "$(http GET /gone/who)"

# ------------------------------------------------------------------ delete
mkdir -p "$T/kv"
cat >"$T/kv/tine.yaml" <<'YAML'
app: gone
functions:
  put: { handler: kv.lua#put }
routes:
  - { method: GET, path: /put/:k, function: put }
YAML
cat >"$T/kv/kv.lua" <<'LUA'
local tine = require "tine"
return { put = function(req) tine.log("put " .. req.params.k) tine.kv.set(req.params.k, "v") return "ok" end }
LUA
tine deploy "$T/kv" >/dev/null
for k in x y z; do http GET "/gone/put/$k" >/dev/null; done
r XADD tine:dlq:gone '*' event '{}' function put reason test >/dev/null
wait_for 10 bash -c "[ \"\$(redis-cli -s '$T/redis.sock' LLEN tine:acts:gone)\" -gt 0 ]" || true
check "kv keys before" "3" "$(r KEYS 'tine:kv:gone:*' | wc -l | tr -d ' ')"
out=$(tine delete gone 2>&1) && rc=0 || rc=$?
check "delete without --yes: a usage error" "2" "$rc"
check_contains "saying what it would delete" "this deletes gone for good" "$out"
check "and deletes nothing" "200 ok" "$(http GET /gone/put/w)"
# Records are written in batches: wait until every call's is stored (the
# count holds for a second).
acts=-1
until [ "$acts" = "$(r LLEN tine:acts:gone)" ]; do acts=$(r LLEN tine:acts:gone); sleep 1; done
versions=$(r KEYS 'tine:app:gone:v:*' | wc -l | tr -d ' ')
seq=$(r GET tine:app:gone:seq)
check "tine delete --yes" "deleted gone: $versions versions, 4 tine.kv keys, 1 dead letter, $acts activation records (its usage is kept for billing: tine usage gone)" \
  "$(run tine delete gone --yes)"
check "no longer served here" "404" "$(http GET /gone/who | cut -d' ' -f1)"
wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL_b/gone/put/q')\" = 404 ]" || true
check "nor on the other node" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL_b/gone/put/q")"
check "its keys are gone" "" "$(for p in 'tine:app:gone:v:*' 'tine:kv:gone:*' tine:kvstat:gone tine:acts:gone tine:dlq:gone tine:app:gone:live; do r --scan --pattern "$p"; done)"
check "no deploy marks are left" "0" "$(r SCARD tine:deploying)"
check "not listed" "" "$(run tine apps | grep '^gone ' || true)"
check "its files are gone" "0" "$(r EXISTS "tine:blob:$(blob_of "$T/kv/kv.lua")")"
check "demo's are not" "1" "$(r EXISTS "tine:blob:$(blob_of "$T/v1/who.lua")")"
check_contains "its usage is kept" "total" "$(run tine usage gone)"
check "tine delete of an unknown app" "tine: no app named 'gone'" "$(tine delete gone --yes 2>&1 || true)"
check "deployed again, it gets new numbers" "deployed gone version $((seq + 1))" "$(tine deploy "$T/kv")"
check "demo was not touched" "200 one 3" "$(http GET /demo/who)"
finish
