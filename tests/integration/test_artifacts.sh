#!/usr/bin/env bash
# Artifacts (docs/artifacts.md): tine pack makes the same bytes from the
# same files (other times, modes, creation order); tine deploy FILE works
# like a directory; the digest tine versions shows is the artifact's
# sha256, the same on two clusters; deploying it again is a no-op unless
# --force; tine export gives back the packed bytes; a corrupt or truncated
# artifact is an error naming the file and deploys nothing.
. "$(dirname "$0")/lib.sh"
start_redis
REDIS_A=$REDIS_URL
start_node a --redis "$REDIS_A"

make_app "$T/app" one
# The same files written in another order, with other modes and times.
mkdir -p "$T/same"
cp "$T/app/who.lua" "$T/same/who.lua"
chmod 0600 "$T/same/who.lua"
touch -d '2001-02-03 04:05:06' "$T/same/who.lua"
cp "$T/app/tine.yaml" "$T/same/tine.yaml"
chmod 0755 "$T/same/tine.yaml"

out=$(run tine pack "$T/app" -o "$T/a.tine")
want=$(sha256sum "$T/a.tine" | cut -d' ' -f1)
check "pack names the file and the digest" "packed demo into $T/a.tine ($(stat -c %s "$T/a.tine") bytes, digest $want)" "$out"
run tine pack "$T/same" -o "$T/b.tine" >/dev/null
sleep 1.1
run tine pack "$T/app" -o "$T/c.tine" >/dev/null
check "two packs of the same files are byte-equal" "same same" \
  "$(cmp -s "$T/a.tine" "$T/b.tine" && echo same) $(cmp -s "$T/a.tine" "$T/c.tine" && echo same)"

check "deploy an artifact" "deployed demo version 1" "$(run tine deploy "$T/a.tine")"
check "it serves" "200 one 1" "$(http GET /demo/who)"
vers=$(run tine versions demo)
check_contains "tine versions shows the artifact's digest" "* 1        " "$vers"
check_contains "the digest is sha256 of the file" "$want" "$vers"
check "deploying the live digest again is a no-op" \
  "unchanged: demo version 1 is live (tine deploy --force makes a new version)" "$(run tine deploy "$T/b.tine")"
check "deploying the directory is the same no-op" \
  "unchanged: demo version 1 is live (tine deploy --force makes a new version)" "$(run tine deploy "$T/app")"
check "--force makes a new version" "deployed demo version 2" "$(run tine deploy "$T/a.tine" --force)"

# Export round trip: the bytes of the pack.
out=$(run tine export demo 1 -o "$T/e.tine")
check "export says what it wrote" "exported demo version 1 into $T/e.tine ($(stat -c %s "$T/a.tine") bytes, digest $want)" "$out"
check "the export is byte-equal to the pack" "same" "$(cmp -s "$T/a.tine" "$T/e.tine" && echo same)"
run tine export demo -o "$T/live.tine" >/dev/null
check "export of the live version" "same" "$(cmp -s "$T/a.tine" "$T/live.tine" && echo same)"
check_contains "export of a missing version" "demo has no version 9" "$(tine export demo 9 -o "$T/x.tine" 2>&1)"
check "nothing written for it" "absent" "$(test -e "$T/x.tine" || echo absent)"

# A tar.gz made by another tool has the same digest once deployed.
make_app "$T/v3" three
(cd "$T/v3" && tar --owner=7 --group=7 --mode=0700 -czf "$T/other.tgz" who.lua tine.yaml)
run tine pack "$T/v3" -o "$T/v3.tine" >/dev/null
v3=$(sha256sum "$T/v3.tine" | cut -d' ' -f1)
check "another tool's tar.gz is not byte-equal" "differ" "$(cmp -s "$T/other.tgz" "$T/v3.tine" || echo differ)"
check "deploy it" "deployed demo version 3" "$(run tine deploy "$T/other.tgz")"
check_contains "its digest is the canonical pack's" "$v3" "$(run tine versions demo)"

# A second cluster: the same digest.
start_redis_b() {
  redis-server --port 0 --unixsocket "$T/redis-b.sock" --save "" --appendonly no --daemonize no \
    --logfile "$T/redis-b.log" &
  PIDS+=($!)
  wait_for 10 redis-cli -s "$T/redis-b.sock" ping || { echo "redis b did not start"; exit 1; }
}
start_redis_b
start_node b --redis "unix://$T/redis-b.sock"
check "deploy the export on cluster b" "deployed demo version 1" "$(run tine deploy "$T/e.tine")"
check "same digest on cluster b" "$want" "$(pyget "$(run tine --json versions demo)" 'd["versions"][0]["digest"]')"
check "it serves on b" "200 one 1" "$(http GET /demo/who)"

# Corrupt and truncated artifacts: errors naming the file, nothing sent.
head -c 100 "$T/v3.tine" >"$T/trunc.tine"
out=$(tine deploy "$T/trunc.tine" 2>&1) && rc=0 || rc=$?
check "a truncated artifact fails" "1" "$rc"
check_contains "and names the file" "tine: $T/trunc.tine: not a valid tine artifact:" "$out"
cp "$T/v3.tine" "$T/bad.tine"
printf 'XXXXXXXX' | dd of="$T/bad.tine" bs=1 seek=40 conv=notrunc 2>/dev/null
out=$(tine deploy "$T/bad.tine" 2>&1) && rc=0 || rc=$?
check "a corrupted artifact fails" "1" "$rc"
check_contains "and names the file" "tine: $T/bad.tine: not a valid tine artifact:" "$out"
printf 'not an artifact' >"$T/text.tine"
check_contains "a file that is no archive" "$T/text.tine: not a valid tine artifact: bundle: not a tar.gz archive" \
  "$(tine deploy "$T/text.tine" 2>&1 || true)"
check "nothing was deployed on b" "1" "$(pyget "$(run tine --json versions demo)" 'len(d["versions"])')"
# And sent straight to the node, the truncated one is refused there too.
check_contains "the node refuses it too" "400" \
  "$(admin PUT /apps/demo --data-binary @"$T/trunc.tine" -H 'Content-Type: application/gzip')"
check "still one version" "1" "$(pyget "$(run tine --json versions demo)" 'len(d["versions"])')"
finish
