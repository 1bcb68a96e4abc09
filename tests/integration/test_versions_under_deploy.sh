#!/usr/bin/env bash
# A request is answered wholly by one version, even while deploys happen: the
# body (written into each version's file) must always agree with the version
# the node says served it, and with ctx.version inside the function.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
make_app "$T/v1" one
make_app "$T/v2" two
tine deploy "$T/v1" >/dev/null
(
  # --force: the same two bundles again and again, each a new version.
  for i in $(seq 1 8); do
    tine deploy --force "$T/v2" >/dev/null
    tine deploy --force "$T/v1" >/dev/null
  done
) &
deployer=$!
bad=0
total=0
while kill -0 "$deployer" 2>/dev/null || [ $total -lt 50 ]; do
  out=$(curl -s -D "$T/hdr" "$URL/demo/slow")
  hv=$(grep -i '^x-tine-version:' "$T/hdr" | tr -d '\r' | awk '{print $2}')
  word=${out%% *}
  ctxv=${out##* }
  expected=one; [ $((hv % 2)) -eq 0 ] && expected=two
  if [ "$ctxv" != "$hv" ] || [ "$word" != "$expected" ]; then
    bad=$((bad + 1)); echo "mixed answer: header v$hv body [$out]"
  fi
  total=$((total + 1))
  [ $total -lt 2000 ] || break
done
wait "$deployer"
check "every answer came from one version ($total requests)" 0 "$bad"
check "final version is 17" "200 one 17" "$(http GET /demo/who)"
finish
