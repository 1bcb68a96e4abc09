#!/usr/bin/env bash
# tine.kv quotas per app (issue 16 item 6): value size, key count and bytes,
# from the node's options (--kv-value-max, --kv-keys-max, --kv-bytes-max) or
# the app's manifest (limits), counted in Redis (tine:kvstat:{app}) by the
# write scripts. Over a limit the write is refused with a clear error and
# nothing is stored; deletes and expired keys free quota; another app is not
# affected; bad limits are refused at deploy with file:line:col.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --kv-value-max 2KiB --kv-keys-max 5 --kv-bytes-max 8KiB
rcli() { redis-cli -s "$T/redis.sock" "$@"; }
for bad in "--kv-bytes-max 2TiB|--kv-bytes-max 2TiB: expected a size from 1 byte to 1TiB such as 64MiB" \
           "--kv-value-max 7MiB|--kv-value-max 7MiB: expected a size from 1 byte to 6MiB such as 1MiB" \
           "--kv-keys-max 0|--kv-keys-max 0: expected a number from 1 to 1000000000" \
           "--log-rate fast|--log-rate fast: expected a size from 1 byte to 1GiB such as 256KiB"; do
  out=$("$BIN/tined" --state-dir "$T/bad-options" ${bad%%|*} 2>&1 && echo "started" || echo "exit $?")
  check "tined refuses ${bad%%|*}" "tined: ${bad#*|}
exit 2" "$out"
done

write_app() { # write_app NAME [limits line]
  mkdir -p "$T/$1"
  cat >"$T/$1/tine.yaml" <<YAML
app: $1
${2:-}
functions:
  kv: { handler: kv.lua#kv }
routes:
  - { method: GET, path: /kv, function: kv }
YAML
  cat >"$T/$1/kv.lua" <<'LUA'
local tine = require "tine"
local function try(f, ...)
  local ok, r = pcall(f, ...)
  return tostring(r)
end
return { kv = function(req)
  local q = req.query
  if q.op == "set" then return try(tine.kv.set, q.key, string.rep("v", tonumber(q.n)), tonumber(q.ttl)) end
  if q.op == "del" then return try(tine.kv.del, q.key) end
  if q.op == "incr" then return try(tine.kv.incr, q.key, tonumber(q.by or "1")) end
  if q.op == "get" then return try(tine.kv.get, q.key) end
end }
LUA
}
kv() { # kv APP QUERY: prints the function's answer
  curl -s "$URL/$1/kv?$2"
}
# usage APP: "KEYS BYTES" as counted, then as they are in Redis.
usage() {
  local counted actual
  counted="$(rcli hget "tine:kvstat:$1" keys) $(rcli hget "tine:kvstat:$1" bytes)"
  actual=$(python3 - "$T/redis.sock" "$1" <<'PY'
import subprocess, sys
sock, app = sys.argv[1], sys.argv[2]
prefix = "tine:kv:%s:" % app
keys = subprocess.run(["redis-cli", "-s", sock, "--scan", "--pattern", prefix + "*"], capture_output=True, text=True).stdout.split()
total = 0
for k in keys:
    n = int(subprocess.run(["redis-cli", "-s", sock, "strlen", k], capture_output=True, text=True).stdout)
    total += len(k) - len(prefix) + n
print(len(keys), total)
PY
)
  echo "$counted = $actual"
}

write_app small
write_app other
write_app big "limits: { kv_value_max: 4Ki, kv_keys_max: 20, kv_bytes_max: 64Ki }"
for app in small other big; do check "deploy $app" "deployed $app version 1" "$(tine deploy "$T/$app")"; done

# --- value size: the node's 2 KiB
check "a value at the limit" "true" "$(kv small 'op=set&key=v&n=2048')"
check "a value over the limit" "tine.kv.set: the value of 2049 bytes is over the limit of 2048 bytes" \
  "$(kv small 'op=set&key=v&n=2049')"
check "the refused value was not stored" "2048" "$(kv small 'op=get&key=v' | wc -c | tr -d ' ')"
check "del" "true" "$(kv small 'op=del&key=v')"

# --- key count: the node's 5
for i in 1 2 3 4 5; do kv small "op=set&key=k$i&n=10" >/dev/null; done
check "counted: 5 keys" "5 60 = 5 60" "$(usage small)"
check "a sixth key" "tine.kv.set: app small is over its KV quota: 5 keys (tined --kv-keys-max)" \
  "$(kv small 'op=set&key=k6&n=10')"
check "a sixth key by incr" "tine.kv.incr: app small is over its KV quota: 5 keys (tined --kv-keys-max)" \
  "$(kv small 'op=incr&key=n')"
check "nothing stored by refused writes" "nil nil" "$(kv small 'op=get&key=k6') $(kv small 'op=get&key=n')"
check "an existing key may be rewritten" "true" "$(kv small 'op=set&key=k5&n=100')"
check "counted after a rewrite" "5 150 = 5 150" "$(usage small)"
check "another app is not affected" "true true" "$(kv other 'op=set&key=a&n=10') $(kv other 'op=set&key=b&n=10')"
check "deletes free quota: del" "true" "$(kv small 'op=del&key=k1')"
check "deletes free quota: then a new key" "true" "$(kv small 'op=set&key=k6&n=10')"
check "del of a missing key" "false" "$(kv small 'op=del&key=nothere')"
check "counted after deletes" "5 150 = 5 150" "$(usage small)"

# --- bytes: the node's 8 KiB (8192)
for k in k2 k3 k4 k5 k6; do kv small "op=del&key=$k" >/dev/null; done
check "counted: empty" "0 0 = 0 0" "$(usage small)"
for i in 1 2 3 4; do kv small "op=set&key=b$i&n=2000" >/dev/null; done
check "counted: 4 values" "4 8008 = 4 8008" "$(usage small)"
check "over the bytes" "tine.kv.set: app small is over its KV quota: 8 KiB (tined --kv-bytes-max); 8008 bytes are stored" \
  "$(kv small 'op=set&key=b5&n=200')"
check "a value may shrink over the quota" "true" "$(kv small 'op=set&key=b4&n=1000')"
check "and then fit" "true" "$(kv small 'op=set&key=b5&n=100')"
check "counted after the shrink" "5 7110 = 5 7110" "$(usage small)"

# --- expired keys give their quota back
for k in b1 b2 b3 b4 b5 c; do kv small "op=del&key=$k" >/dev/null; done
for i in 1 2 3 4 5; do kv small "op=set&key=t$i&n=10&ttl=0.3" >/dev/null; done
check "ttl keys count" "tine.kv.set: app small is over its KV quota: 5 keys (tined --kv-keys-max)" \
  "$(kv small 'op=set&key=after&n=10')"
sleep 0.6
check "once expired they are taken off" "true" "$(kv small 'op=set&key=after&n=10')"
check "counted after expiry" "1 15 = 1 15" "$(usage small)"
check "nothing left tracked" "0 0" "$(rcli zcard tine:kvexp:small) $(rcli hlen tine:kvttl:small)"
kv small 'op=set&key=keep&n=10&ttl=0.3' >/dev/null
kv small 'op=set&key=keep&n=20' >/dev/null # rewritten without a ttl: kept, counted, not tracked
kv small 'op=set&key=short&n=10&ttl=0.3' >/dev/null
kv small 'op=incr&key=short2' >/dev/null
sleep 0.6
check "a key rewritten without its ttl stays" "20" "$(kv small 'op=get&key=keep' | wc -c | tr -d ' ')"
kv small 'op=del&key=short2' >/dev/null # any write takes the expired ones off
check "counted: after, keep" "2 39 = 2 39" "$(usage small)"
check "nothing left tracked again" "0 0" "$(rcli zcard tine:kvexp:small) $(rcli hlen tine:kvttl:small)"
kv small 'op=del&key=keep' >/dev/null

# --- an incr that would pass the bytes is undone
kv small 'op=del&key=after' >/dev/null
for k in f1 f2 f3; do kv small "op=set&key=$k&n=2000" >/dev/null; done
kv small 'op=set&key=g&n=2000' >/dev/null
check "incr of a new key" "5" "$(kv small 'op=incr&key=n&by=5')"
check "counted: incr" "5 8009 = 5 8009" "$(usage small)"
# Fill to the last byte: 8192 - 8009 = 183 more.
for k in f1 f2 f3; do kv small "op=set&key=$k&n=2048" >/dev/null; done
check "filled to the last byte" "true" "$(kv small 'op=set&key=g&n=2039')"
check "counted: full" "5 8192 = 5 8192" "$(usage small)"
check "an incr that keeps the length" "9" "$(kv small 'op=incr&key=n&by=4')"
check "an incr that lengthens the value is refused" \
  "tine.kv.incr: app small is over its KV quota: 8 KiB (tined --kv-bytes-max); 8192 bytes are stored" \
  "$(kv small 'op=incr&key=n&by=1')"
check "and undone" "9" "$(kv small 'op=get&key=n')"
check "counted after the refused incr" "5 8192 = 5 8192" "$(usage small)"

# --- a key stored before the counts existed (an upgrade): deleting it
# cannot take the usage below zero
kv other 'op=del&key=a' >/dev/null
kv other 'op=del&key=b' >/dev/null
rcli set tine:kv:other:legacy 12345 >/dev/null
check "deleting an uncounted key" "true" "$(kv other 'op=del&key=legacy')"
check "the usage stays at zero" "0 0 = 0 0" "$(usage other)"

# --- the manifest's limits override the node's
check "a value over the node's limit, within the app's" "true" "$(kv big 'op=set&key=v&n=4096')"
check "over the app's value limit" "tine.kv.set: the value of 4097 bytes is over the limit of 4096 bytes" \
  "$(kv big 'op=set&key=v&n=4097')"
for i in $(seq 2 20); do kv big "op=set&key=k$i&n=10" >/dev/null; done
check "20 keys" "20" "$(rcli hget tine:kvstat:big keys)"
check "the 21st refused, naming the manifest" "tine.kv.set: app big is over its KV quota: 20 keys (limits.kv_keys_max)" \
  "$(kv big 'op=set&key=k21&n=10')"

# --- bad limits are refused at deploy with file:line:col
write_app bad "limits: { kv_bytes_max: 2Ti }"
out=$(tine deploy "$T/bad" 2>&1 || true)
check_contains "bad limits refused at deploy" "tine.yaml:2:25: limits.kv_bytes_max: '2Ti' is out of range 1..1Ti" "$out"
write_app bad "limits: { kv_keys: 5 }"
out=$(tine deploy "$T/bad" 2>&1 || true)
check_contains "an unknown limit refused" \
  "tine.yaml:2:11: limits.kv_keys: unknown key; expected one of kv_value_max, kv_keys_max, kv_bytes_max" "$out"
finish
