#!/usr/bin/env bash
# Safe releases (docs/releases.md): a staged version is stored, not live;
# previews by path (/<app>@N, /<app>@TAG) and, when the manifest allows it,
# by the x-tine-version header; promote; a split sending a share of clients
# to another version, sticky per client, learned by every node; bad input
# refused with the live version untouched; every change audited.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
make_app "$T/v1" one
make_app "$T/v2" two
make_app "$T/v3" three
# v1 lets a header pin a request; v2 keeps a warm sandbox of `who`.
printf 'release: { pin: true }\n' >>"$T/v1/tine.yaml"
sed -i 's/who: { handler: who.lua#who, timeout: 2s }/who: { handler: who.lua#who, timeout: 2s, warm: 1 }/' "$T/v2/tine.yaml"

# --- staged deploys -------------------------------------------------------------
check "v1 deployed" "deployed demo version 1" "$(run tine deploy "$T/v1")"
check_contains "deploy --stage stores v2" "staged demo version 2 (not live" "$(run tine deploy --stage "$T/v2")"
check "a staged version is not live" "200 one 1" "$(http GET /demo/who)"
versions=$(run tine --json versions demo)
check "versions: live is still 1" "1 [1, 2]" "$(pyget "$versions" 'str(d["live"]) + " " + str([v["version"] for v in d["versions"]])')"

# --- previews ------------------------------------------------------------------
check "preview by path" "200 two 2" "$(http GET /demo@2/who)"
check "preview answers name their version" "2" "$(curl -s -D - -o /dev/null "$URL/demo@2/who" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-tine-version"{print $2}')"
check "the live version is previewed too" "200 one 1" "$(http GET /demo@1/who)"
check_contains "a version that does not exist" "404" "$(http GET /demo@9/who)"
check_contains "... says so" "app demo has no version 9" "$(http GET /demo@9/who)"
check_contains "a selector that is neither" "400" "$(http GET '/demo@B_AD/who')"
check_contains "no tag of that name" "app demo has no tag 'beta'" "$(http GET /demo@beta/who)"
check_contains "a preview of an app that does not exist" "no app named 'nope'" "$(http GET /nope@1/who)"
# The previewed version's warm pool works as for live: one idle sandbox of v2.
wait_for 10 sh -c "'$BIN/tine' --url '$URL' --token '$TOKEN' --json ps demo | grep -q '\"version\": *2'" || true
check_contains "a previewed version keeps its warm sandbox" '"version":2' "$(admin GET '/sandboxes?app=demo' | tr -d ' ')"

check "tag beta -> 2" "demo: tag beta -> version 2 (/demo@beta/)" "$(run tine tag demo beta 2)"
check "preview by tag" "200 two 2" "$(http GET /demo@beta/who)"
check "pinned by the header (release.pin)" "200 two 2" "$(http GET /demo/who -H 'x-tine-version: 2')"
check "pinned by a tag in the header" "200 two 2" "$(http GET /demo/who -H 'x-tine-version: beta')"
check_contains "a pin to a version that does not exist" "404" "$(http GET /demo/who -H 'x-tine-version: 42')"
tags=$(run tine versions demo)
check_contains "versions lists the tags" "tags: beta=2" "$tags"
check_contains "tagging a version that does not exist" "demo has no version 99" "$(tine tag demo rc 99 2>&1 || true)"
check_contains "a tag that reads as a number" "tag '7x'" "$(tine tag demo 7x 2 2>&1 || true)"
check_contains "a bad tag through the API" "400" "$(admin PUT /apps/demo/tags/Bad_Tag --data '{"version":2}')"
check_contains "tag without a version" "version is missing" "$(admin PUT /apps/demo/tags/rc --data '{}')"
check "tag --rm" "demo: tag beta removed" "$(run tine tag demo beta --rm)"
check_contains "the removed tag is gone" "404" "$(http GET /demo@beta/who)"
check_contains "removing it again" "demo has no tag 'beta'" "$(tine tag demo beta --rm 2>&1 || true)"

# --- promote ---------------------------------------------------------------------
check "promote 2" "demo: live version is now 2" "$(run tine promote demo 2)"
check "promoted: v2 is live" "200 two 2" "$(http GET /demo/who)"
check "v2 does not let a header pin" "200 two 2" "$(http GET /demo/who -H 'x-tine-version: 1')"
check_contains "promote a version that does not exist" "demo has no version 77" "$(tine promote demo 77 2>&1 || true)"
check "live untouched by it" "200 two 2" "$(http GET /demo/who)"
check "promote back to 1 (older)" "demo: live version is now 1" "$(run tine promote demo 1)"
check "promote 2 again" "demo: live version is now 2" "$(run tine promote demo 2)"

# --- split -------------------------------------------------------------------------
check_contains "v3 staged" "staged demo version 3" "$(run tine deploy --stage "$T/v3")"
start_node b --redis "$REDIS_URL"
URL=$URL_a
TOKEN=$TOKEN_a
check "split 3=30" "demo: version 3 gets 30% of clients, the live version the rest" "$(run tine split demo 3=30)"
counts=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL" /demo/who 1000 --header x-tine-client)
n3=$(pyget "$counts" 'd.get("3", 0)')
n2=$(pyget "$counts" 'd.get("2", 0)')
echo "split over 1000 clients: $counts"
# Binomial(1000, 0.3): sd 14.5; 5 sd either side.
check "split: every answer from 2 or 3, body agreeing" "1000" "$((n2 + n3))"
check "split: 30% within 5 sd (228..372), got $n3" "yes" "$([ "$n3" -ge 228 ] && [ "$n3" -le 372 ] && echo yes || echo no)"
counts_b=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL_b" /demo/who 1000 --header x-tine-client)
check "node b learned the split and puts every client on the same side" "$counts" "$counts_b"
for id in alice bob carol; do
  c=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL" /demo/who 30 --header x-tine-client --same "$id")
  check "sticky: client $id stays on one version" "1" "$(pyget "$c" 'len(d)')"
done
c=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL" /demo/who 30)
check "sticky by address without the header" "1" "$(pyget "$c" 'len(d)')"
check_contains "versions shows the split" "split: version 3 gets 30% of clients" "$(run tine versions demo)"

# Bad input: the split and the live version stay as they were.
check_contains "split to a version that does not exist" "demo has no version 99" "$(tine split demo 99=10 2>&1 || true)"
check_contains "percent over 100" "percent '101' is not a number from 0 to 100" "$(tine split demo 3=101 2>&1 || true)"
check_contains "percent below 0" "percent '-5' is not a number from 0 to 100" "$(tine split demo 3=-5 2>&1 || true)"
check_contains "missing version" "the version is missing in '=10'" "$(tine split demo =10 2>&1 || true)"
check_contains "missing percent" "expected VERSION=PERCENT" "$(tine split demo 3 2>&1 || true)"
check_contains "split to the live version" "is the live version" "$(tine split demo 2=10 2>&1 || true)"
check_contains "API: percent outside 0..100" "400" "$(admin PUT /apps/demo/split --data '{"version":3,"percent":150}')"
check_contains "API: no version" "version is missing" "$(admin PUT /apps/demo/split --data '{"percent":10}')"
check_contains "split of an app that does not exist" "404" "$(admin PUT /apps/nope/split --data '{"version":1,"percent":10}')"
after=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL" /demo/who 1000 --header x-tine-client)
check "after bad input the split is unchanged" "$counts" "$after"
check "and the live version too" "2" "$(pyget "$(run tine --json versions demo)" 'd["live"]')"

check "split --clear" "demo: no split, the live version serves every client" "$(run tine split demo --clear)"
c=$(run python3 "$SRC/tests/integration/split_clients.py" "$URL_b" /demo/who 200 --header x-tine-client)
check "no split: every client on the live version (node b)" '{"2": 200}' "$c"
check_contains "usage: split without arguments" "give VERSION=PERCENT, or --clear" "$(tine split demo 2>&1 || true)"

# Promoting the split's version ends the split.
run tine split demo 3=50 >/dev/null
check "promote 3" "demo: live version is now 3" "$(run tine promote demo 3)"
check "promoting the split's version ended it" "null" "$(pyget "$(run tine --json versions demo)" 'json.dumps(d["split"])')"

# --- prune keeps what a tag, the split or a rollout names ----------------------
# Versions now: 1, 2, 3 (live). v4 and v5 staged; v4
# tagged, v2 the split's; prune --keep 0 removes only what nothing names.
make_app "$T/v4" four
make_app "$T/v5" five
run tine deploy --stage "$T/v4" >/dev/null
run tine deploy --stage "$T/v5" >/dev/null
run tine tag demo keepme 4 >/dev/null
run tine split demo 2=10 >/dev/null
pruned=$(run tine --json versions prune demo --keep 0)
check "prune --keep 0: kept the live, tagged and split versions" "[1, 5] [2, 3, 4]" \
  "$(pyget "$pruned" 'str(sorted(d["pruned"])) + " " + str(sorted(d["kept"]))')"
check "the tagged version still answers after prune" "200 four 4" "$(http GET /demo@keepme/who)"
check "the split's version still answers after prune" "200 two 2" "$(http GET /demo@2/who)"
run tine split demo --clear >/dev/null
run tine tag demo keepme --rm >/dev/null

# --- a first version only staged is previewed -----------------------------------
make_app "$T/s1" staged1 fresh
check_contains "a new app's first version staged" "staged fresh version 1 (not live" "$(run tine deploy --stage "$T/s1")"
check_contains "the staged-only app is not live" "404" "$(http GET /fresh/who)"
check "... yet its version 1 is previewed" "200 staged1 1" "$(http GET /fresh@1/who)"
check_contains "... a version it does not have: 404" "404" "$(http GET /fresh@7/who)"
check "promote it: live" "fresh: live version is now 1" "$(run tine promote fresh 1)"
check "... served at its root" "200 staged1 1" "$(http GET /fresh/who)"

audit=$(admin GET '/audit?limit=1000')
for action in promote tag tag.remove split split.clear; do
  check_contains "audit: $action" "\"action\":\"$action\"" "$audit"
done
finish
