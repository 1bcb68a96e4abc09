#!/usr/bin/env bash
# Secrets (docs/secrets.md): tine secrets set/list/rm; functions (Lua and
# Python) read them with tine.secret; the value is never in Redis in clear
# (every key scanned), in any answer of the node (list, versions, export,
# activations, audit), nor in a log line (redacted as [secret NAME]); a
# node with another key refuses to set and cannot read them; a bad key
# file stops tined with a message naming it.
. "$(dirname "$0")/lib.sh"
start_redis
VALUE='s3cr3t-Value-7f1c9a'
openssl rand -hex 32 >"$T/key.hex"
openssl rand -hex 32 >"$T/other.hex"
start_node a --redis "$REDIS_URL" --secrets-key "$T/key.hex"

mkdir -p "$T/app/py"
cat >"$T/app/tine.yaml" <<'YAML'
app: vault
functions:
  show: { handler: s.lua#show }
  leak: { handler: s.lua#leak }
  boom: { handler: s.lua#boom }
  missing: { handler: s.lua#missing }
  pyshow: { runtime: python, handler: py/s.py#show }
routes:
  - { method: GET, path: /show, function: show }
  - { method: GET, path: /leak, function: leak }
  - { method: GET, path: /boom, function: boom }
  - { method: GET, path: /missing, function: missing }
  - { method: GET, path: /py, function: pyshow }
YAML
cat >"$T/app/s.lua" <<'LUA'
local tine = require "tine"
return {
  show = function() return #tine.secret("DB_PASSWORD") .. " bytes" end,
  leak = function()
    local v = tine.secret("DB_PASSWORD")
    tine.log("the password is " .. v .. "!")
    tine.log.error("again: " .. v)
    return "logged"
  end,
  boom = function() error("failed with " .. tine.secret("DB_PASSWORD")) end,
  missing = function() return tine.secret("NOPE") end,
}
LUA
cat >"$T/app/py/s.py" <<'PY'
import tine
def show(event, ctx):
    v = tine.secret("DB_PASSWORD")
    tine.log("python sees " + v)
    return "%d bytes" % len(v)
PY

check "deploy" "deployed vault version 1" "$(run tine deploy "$T/app")"
check "set a secret from stdin" "set secret DB_PASSWORD of vault (19 bytes, stored encrypted)" \
  "$(echo "$VALUE" | run tine secrets set vault DB_PASSWORD)"
check "set another" "set secret API_TOKEN of vault (3 bytes, stored encrypted)" \
  "$(printf 'abc' | run tine secrets set vault API_TOKEN)"
check "list shows the names" "API_TOKEN
DB_PASSWORD" "$(run tine secrets list vault)"
check "a Lua function reads it" "200 19 bytes" "$(http GET /vault/show)"
check "a Python function reads it" "200 19 bytes" "$(http GET /vault/py)"
check "a function that logs it" "200 logged" "$(http GET /vault/leak)"
check_contains "a function raising with it: redacted in the error" "failed with [secret DB_PASSWORD]" \
  "$(tine invoke vault boom 2>&1 || true)"
check_contains "a missing secret: clear error" "app vault has no secret named NOPE (tine secrets set vault NOPE)" \
  "$(tine invoke vault missing 2>&1 || true)"
# Log lines reach Redis with the activation records, a moment later.
logs_have() { tine logs vault --limit 100 | grep -q -F "$1"; }
wait_for 10 logs_have "python sees" || true
logs=$(run tine logs vault --limit 100)
check_contains "the log line is redacted" "the password is [secret DB_PASSWORD]!" "$logs"
check_contains "the error line too" "again: [secret DB_PASSWORD]" "$logs"
check_contains "and the Python one" "python sees [secret DB_PASSWORD]" "$logs"
check "replacing a secret" "replaced secret API_TOKEN of vault (4 bytes, stored encrypted)" \
  "$(printf 'abcd' | run tine secrets set vault API_TOKEN)"

# Nowhere in clear: every Redis key, every answer, the node's log, the export.
dump_redis() {
  local k t
  redis-cli -s "$T/redis.sock" --scan | while IFS= read -r k; do
    t=$(redis-cli -s "$T/redis.sock" type "$k")
    case $t in
      string) redis-cli -s "$T/redis.sock" --raw get "$k" ;;
      hash) redis-cli -s "$T/redis.sock" --raw hgetall "$k" ;;
      list) redis-cli -s "$T/redis.sock" --raw lrange "$k" 0 -1 ;;
      set) redis-cli -s "$T/redis.sock" --raw smembers "$k" ;;
      zset) redis-cli -s "$T/redis.sock" --raw zrange "$k" 0 -1 ;;
      stream) redis-cli -s "$T/redis.sock" --raw xrange "$k" - + ;;
    esac
    echo "$k"
  done
}
dump_redis >"$T/redis.dump"
check_contains "the scan saw the secrets hash" "tine:secrets:vault" "$(cat "$T/redis.dump")"
check_contains "and the activation records" "tine:acts:vault" "$(cat "$T/redis.dump")"
check "the value is in no Redis key" "0" "$(grep -c -F "$VALUE" "$T/redis.dump" || true)"
run tine export vault -o "$T/vault.tine" >/dev/null
check "nor in the export" "0" "$( (gzip -dc "$T/vault.tine"; echo) | grep -c -F "$VALUE" || true)"
answers=""
for p in /apps/vault /apps/vault/versions /apps/vault/secrets "/apps/vault/activations?limit=100" /audit \
  "/apps/vault/logs?limit=100"; do
  answers+="$(admin GET "$p")"
done
for id in $(pyget "$(admin GET "/apps/vault/activations?limit=100" | cut -d' ' -f2-)" \
  '" ".join(a["id"] for a in d["activations"])'); do
  answers+="$(admin GET "/activations/$id")"
done
check_contains "the answers include the audit of secret.set" '"action":"secret.set"' "$answers"
check_contains "and the redacted error" "failed with [secret DB_PASSWORD]" "$answers"
check "the value is in no answer of the node" "0" "$(grep -c -F "$VALUE" <<<"$answers" || true)"
check "nor in the node's log" "0" "$(grep -c -F "$VALUE" "$T/a.log" || true)"

# A node with another key: refuses to set, cannot read.
start_node b --redis "$REDIS_URL" --secrets-key "$T/other.hex"
out=$(echo other | tine secrets set vault DB_PASSWORD 2>&1) && rc=0 || rc=$?
check "setting with a wrong key fails" "1" "$rc"
check_contains "and says why" "not the key the cluster's secrets are sealed with" "$out"
check_contains "reading with a wrong key: clear error" \
  "secret DB_PASSWORD cannot be decrypted with this node's secrets key (tined --secrets-key): a wrong key file?" \
  "$(tine invoke vault show 2>&1 || true)"
check "the value on a is unchanged" "200 19 bytes" "$(URL=$URL_a http GET /vault/show)"

# A node without a key; a bad key file.
start_node c --redis "$REDIS_URL"
check_contains "no key: setting says how to get one" "start tined with --secrets-key FILE" \
  "$(echo x | tine secrets set vault X 2>&1 || true)"
printf 'short' >"$T/bad.key"
check "a bad key file stops tined" "2" "$(tined_status d --redis "$REDIS_URL" --secrets-key "$T/bad.key")"
check_contains "naming the file" "secrets key $T/bad.key: expected 32 bytes or 64 hex digits" "$(cat "$T/d.log")"

# rm, bad names, and deleting the app removes its secrets.
URL=$URL_a TOKEN=$TOKEN_a
check "rm" "removed secret API_TOKEN of vault" "$(run tine secrets rm vault API_TOKEN)"
check_contains "rm of a missing one" "vault has no secret named API_TOKEN" "$(tine secrets rm vault API_TOKEN 2>&1 || true)"
check_contains "a bad name" "secret name '9x': expected" "$(echo v | tine secrets set vault 9x 2>&1 || true)"
check_contains "an empty value" "no value on stdin for secret E" "$(printf '' | tine secrets set vault E 2>&1 || true)"
run tine delete vault --yes >/dev/null
check "delete removes the secrets" "0" "$(redis-cli -s "$T/redis.sock" exists tine:secrets:vault)"
finish
