#!/usr/bin/env bash
# Container engine events: with `podman system service` on a temp socket,
# `podman create` + `podman rm` become CloudEvents container.create and
# container.remove (id, name, image) that reach the matching functions, the
# watcher reconnects when the engine restarts, and the infra-cleanup example's
# exec script runs on the removal with the container's name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
if ! command -v podman >/dev/null 2>&1; then
  skip_all "podman is not installed (apt-get install podman; scripts/deps.sh installs it)"
fi
if ! why=$(podman --root "$T/podroot" --runroot "$T/podrun" --storage-driver vfs info 2>&1 >/dev/null); then
  skip_all "podman cannot run here: $(echo "$why" | tail -1)"
fi
SOCK=$T/podman.sock
PODMAN=(podman --root "$T/podroot" --runroot "$T/podrun" --storage-driver vfs)
start_podman() {
  "${PODMAN[@]}" system service --time=0 "unix://$SOCK" >>"$T/podman.log" 2>&1 &
  PODMAN_PID=$!
  PIDS+=($PODMAN_PID)
  wait_for 30 curl -sf --unix-socket "$SOCK" http://d/_ping || { echo "podman service did not start"; exit 1; }
}
pm() { podman --url "unix://$SOCK" "$@"; }
start_podman
# An image without a registry: a root file system of one file.
mkdir -p "$T/rootfs/bin"
cp /bin/true "$T/rootfs/bin/true"
tar -C "$T/rootfs" -cf "$T/tiny.tar" .
pm import "$T/tiny.tar" localhost/tine-tiny >/dev/null

start_redis
start_node a --redis "$REDIS_URL" --docker-socket "$SOCK"
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: watch
functions:
  seen: { handler: h.lua#seen }
triggers:
  - { on: event, type: 'container.*', source: 'podman://*', function: seen }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.seen(event, ctx)
  tine.kv.incr(event.type .. ":" .. event.data.name)
  tine.kv.set("last:" .. event.type, tine.json.encode(event))
end
return M
LUA
tine deploy "$T/app" >/dev/null
wait_for 10 grep -q "following Podman container events" "$T/a.log" || true
check_contains "the watcher follows the engine" "following Podman container events on $SOCK" "$(cat "$T/a.log")"

pm create --name tine-it-one localhost/tine-tiny /bin/true >/dev/null
pm rm tine-it-one >/dev/null
wait_kv 20 watch "container.remove:tine-it-one" 1 || true
check "podman create fired container.create once" "1" "$(rkv watch "container.create:tine-it-one")"
check "podman rm fired container.remove once" "1" "$(rkv watch "container.remove:tine-it-one")"
last=$(rkv watch last:container.remove)
check "the source names the engine and host" "podman://$(hostname)" "$(json_get "$last" "j['source']")"
check "the data: the name" "tine-it-one" "$(json_get "$last" "j['data']['name']")"
check "the data: the image" "localhost/tine-tiny:latest" "$(json_get "$last" "j['data']['image']")"
check "the data: the container id" "64" "$(json_get "$last" "len(j['data']['id'])")"
check "the data: an exit code" "0" "$(json_get "$last" "j['data']['exit_code']")"
check "the subject is the container name" "tine-it-one" "$(json_get "$last" "j['subject']")"

# The engine restarts: the watcher reconnects and keeps delivering.
kill "$PODMAN_PID"
wait "$PODMAN_PID" 2>/dev/null || true
wait_for 10 grep -q "went away" "$T/a.log" || true
check_contains "the watcher noticed the engine left" "container engine on $SOCK went away" "$(cat "$T/a.log")"
start_podman
pm create --name tine-it-two localhost/tine-tiny /bin/true >/dev/null
wait_kv 40 watch "container.create:tine-it-two" 1 || true
check "after the engine restarted: events again" "1" "$(rkv watch "container.create:tine-it-two")"
check "events from before are not delivered twice" "1" "$(rkv watch "container.create:tine-it-one")"

# The example: its exec script runs when a container is removed. This needs
# the exec runtime (issue 4): while only its placeholder exists (which
# answers "the exec runtime is not available on this node yet") the
# example's checks are reported as PENDING; once a real runtime is built
# they are strict, and any failure (a dead letter, no log line) fails.
tine deploy "$SRC/functions-examples/infra-cleanup" >/dev/null
pm rm tine-it-two >/dev/null
wait_kv 20 watch "container.remove:tine-it-two" 1 || true
settled() { # nothing queued nor waiting for a retry, read in one atomic step
  [ "$(redis-cli -s "$T/redis.sock" EVAL "return redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])" 2 \
    tine:events tine:retry)" = 0 ]
}
wait_for 30 settled || true
dlq=$(admin GET /apps/infra-cleanup/dlq)
reason=$(json_get "${dlq#* }" "(j['dead_letters'][0]['reason'] if j['dead_letters'] else '')")
if [ "$reason" = "the exec runtime is not available on this node yet" ]; then
  echo "PENDING infra-cleanup: the cleanup script cannot run before the exec runtime exists (issue 4): $reason"
  check_contains "infra-cleanup: the failure paged through the alert function" \
    '"msg":"PAGE: cleanup' "$(grep -F '"app":"infra-cleanup","version":"1","function":"alert"' "$T/a.log" || true)"
else
  check "infra-cleanup: the cleanup script succeeded on container.remove (no dead letter)" "" "$reason"
  check_contains "infra-cleanup: the script logged the container's name" \
    '"msg":"cleaning up after container tine-it-two' \
    "$(grep -F '"app":"infra-cleanup","version":"1","function":"cleanup"' "$T/a.log" || true)"
fi
finish
