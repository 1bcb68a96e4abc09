#!/usr/bin/env bash
# A node whose state dir is full never says a version is deployed or live
# when it cannot serve it: a deploy through it is refused with the reason
# (the cluster keeps the live version); a version deployed through another
# node makes it answer 503 on GET /_tine/v1/ready with the reason, and
# `tine versions`, `tine apps` and GET /apps/APP say which version it serves.
# It keeps retrying and recovers by itself once there is space again.
#
# The full disk is a 1 MiB tmpfs on the node's bundles dir, in a mount
# namespace of the test's own (root); without root, a read-only directory.
if [ "$(id -u)" = 0 ] && [ -z "${TINE_TEST_MOUNT_NS:-}" ] && unshare -m --propagation private true 2>/dev/null; then
  TINE_TEST_MOUNT_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
start_redis
start_node b --redis "$REDIS_URL"
mkdir -p "$T/a/bundles"
if [ -n "${TINE_TEST_MOUNT_NS:-}" ]; then
  mount -t tmpfs -o size=1m tmpfs "$T/a/bundles" || skip_all "cannot mount a tmpfs here"
  at_exit umount -l "$T/a/bundles"
  fill() { dd if=/dev/zero of="$T/a/bundles/filler" bs=64k count=32 2>/dev/null || true; }
  unfill() { rm -f "$T/a/bundles/filler"; }
  WHY="No space left on device"
elif [ "$(id -u)" != 0 ]; then
  fill() { chmod 555 "$T/a/bundles/demo"; }
  unfill() { chmod 755 "$T/a/bundles/demo"; }
  WHY="Permission denied"
else
  skip_all "root without a mount namespace: cannot make the state dir full or read-only"
fi
start_node a --redis "$REDIS_URL"
make_app "$T/v1" one
make_app "$T/v2" two
check "deploy through a" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "a is ready" '200 {"ready":true}' "$(http GET /_tine/v1/ready)"

fill
out=$(tine deploy "$T/v2" 2>&1) && rc=0 || rc=$?
check "a deploy a cannot store fails" "1" "$rc"
check_contains "and says why" "demo: version 2 was not deployed: this node cannot store its files" "$out"
check_contains "naming the error" "$WHY); version 1 stays live" "$out"
check "the live version stays 1 in the cluster" "1" "$(run redis-cli -s "$T/redis.sock" GET tine:app:demo:live)"
check "a serves version 1" "200 one 1" "$(http GET /demo/who)"
check "b serves version 1" "one 1" "$(run curl -s "$URL_b/demo/who")"
check "a is still ready (it serves every live version)" '200 {"ready":true}' "$(http GET /_tine/v1/ready)"

# Deployed through b, which can store it: a cannot load it.
check "deploy through b" "deployed demo version 3" "$(tine --url "$URL_b" --token "$TOKEN_b" deploy "$T/v2")"
wait_for 10 bash -c "curl -s '$URL/_tine/v1/ready' | grep -q false" || true
ready=$(http GET /_tine/v1/ready)
check_contains "a is not ready: 503" "503 " "$ready"
check_contains "with the reason" \
  '"reasons":["app demo: live version 3 cannot be loaded on this node: cannot write '"$T"'/a/bundles/demo/3: '"$WHY"'"]' "$ready"
check "a keeps serving version 1" "200 one 1" "$(http GET /demo/who)"
check "b serves version 3" "two 3" "$(run curl -s "$URL_b/demo/who")"
check_contains "tine versions on a: which version it serves and why" \
  "serves version 1, not the live version 3: cannot write $T/a/bundles/demo/3: $WHY (it retries)" "$(run tine versions demo)"
check_contains "tine apps on a" "demo  3 (this node: 1)  2" "$(run tine apps)"
app=$(admin GET /apps/demo)
check_contains "GET /apps/demo on a: live" '"live":3' "$app"
check_contains "GET /apps/demo on a: served" '"serving":1' "$app"
check_contains "GET /apps/demo on b: served" '"serving":3' "$(curl -s -H "Authorization: Bearer $TOKEN_b" "$URL_b/_tine/v1/apps/demo")"

# Space again: a recovers without being told (retries with backoff).
unfill
wait_for 40 bash -c "curl -s '$URL/_tine/v1/ready' | grep -q true" || true
check "a is ready again" '200 {"ready":true}' "$(http GET /_tine/v1/ready)"
check "a serves version 3" "200 two 3" "$(http GET /demo/who)"
check_contains "its log says so" "app demo: this node serves its live version again" "$(cat "$T/a.log")"
finish
