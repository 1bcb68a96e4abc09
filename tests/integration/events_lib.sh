# Helpers shared by the events integration tests (sourced after lib.sh).

# rkv APP KEY: the value of tine.kv key KEY of APP, read from Redis directly.
rkv() { run redis-cli -s "$T/redis.sock" GET "tine:kv:$1:$2"; }

# wait_kv SECONDS APP KEY VALUE: waits until the kv key holds VALUE.
wait_kv() {
  local deadline=$((SECONDS + $1))
  until [ "$(rkv "$2" "$3")" == "$4" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# post_event JSON [curl args]: POSTs a structured CloudEvent; prints "STATUS BODY".
post_event() {
  local body=$1; shift
  admin POST /events -H 'Content-Type: application/cloudevents+json' --data-binary "$body" "$@"
}

# json_get JSON EXPR: evaluates a Python expression over the parsed JSON `j`.
json_get() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($2)" "$1"; }
