#!/usr/bin/env bash
# Own hosts (docs/releases.md): an app whose manifest says host: is served
# at the root of that host name (the Host header, any port), previews by tag
# as TAG.HOST and by /<app>@N; a second app claiming the host is refused
# (stored, not live); tine routes shows the host; a delete frees it.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
make_app "$T/v1" one
printf 'host: shop.example.test\n' >>"$T/v1/tine.yaml"
check "an app with its own host deploys" "deployed demo version 1" "$(run tine deploy "$T/v1")"
check "served at the root of its host" "200 one 1" "$(http GET /who -H 'Host: shop.example.test')"
check "whatever the port and case" "200 one 1" "$(http GET /who -H 'Host: Shop.Example.TEST:8080')"
check "and under /<app>/ as before" "200 one 1" "$(http GET /demo/who)"
check_contains "another host is not the app's" "404" "$(http GET /who -H 'Host: other.example.test')"
routes=$(run tine routes demo)
check_contains "tine routes shows the host" "GET shop.example.test/who" "$routes"

make_app "$T/v2" two
printf 'host: shop.example.test\n' >>"$T/v2/tine.yaml"
check_contains "v2 staged" "staged demo version 2" "$(run tine deploy --stage "$T/v2")"
check "tag beta" "demo: tag beta -> version 2 (/demo@beta/)" "$(run tine tag demo beta 2)"
check "a tag as TAG.HOST" "200 two 2" "$(http GET /who -H 'Host: beta.shop.example.test')"
check_contains "a label that is no tag" "app demo has no tag 'www'" "$(http GET /who -H 'Host: www.shop.example.test')"
check "the @ path on a host's app" "200 two 2" "$(http GET /demo@2/who)"

# A second app claiming the host: refused, the first keeps it.
make_app "$T/other" other other
printf 'host: shop.example.test\n' >>"$T/other/tine.yaml"
check_contains "a second app claiming the host is refused" "names a host app demo serves already" "$(tine deploy "$T/other" 2>&1 || true)"
check "the host still serves the first" "200 one 1" "$(http GET /who -H 'Host: shop.example.test')"
check_contains "the refused app is not live" "no app named 'other'" "$(http GET /other/who)"

# Moving the app to another host frees the first.
make_app "$T/v3" three
printf 'host: store.example.test\n' >>"$T/v3/tine.yaml"
check "v3 moves to another host" "deployed demo version 3" "$(run tine deploy "$T/v3")"
check "served on the new host" "200 three 3" "$(http GET /who -H 'Host: store.example.test')"
check_contains "not on the old one" "404" "$(http GET /who -H 'Host: shop.example.test')"
# The refused version of other was stored: promoting it claims the host now.
check "the old host is free for another app" "other: live version is now 1" "$(run tine promote other 1)"
check "which serves it" "200 other 1" "$(http GET /who -H 'Host: shop.example.test')"
run tine delete other --yes >/dev/null
make_app "$T/third" third third
printf 'host: shop.example.test\n' >>"$T/third/tine.yaml"
check "a delete frees its host" "deployed third version 1" "$(run tine deploy "$T/third")"
finish
