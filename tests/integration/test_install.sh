#!/usr/bin/env bash
# make install's files (docs/install.md): installed into a DESTDIR, tined
# runs from there without the source tree (its SDKs found next to it in
# ../share/tine), serves a Lua, Python and Node app deployed with the installed
# tine; the man pages, the schema, the systemd unit and the default config
# are in place.
. "$(dirname "$0")/lib.sh"
BUILD_DIR=$(dirname "$BIN")
D="$T/root"
DESTDIR="$D" cmake --install "$BUILD_DIR" --prefix /usr/local >"$T/install.log" 2>&1 ||
  { cat "$T/install.log"; fail "cmake --install" "failed"; finish; }
P="$D/usr/local"
for f in bin/tined bin/tine bin/tine-zygote share/tine/sdk/lua/tine.lua share/tine/sdk/python/tine.py \
  share/tine/sdk/python/tine_zygote.py share/tine/sdk/python/tine_wire.py share/tine/sdk/node/tine.js \
  share/tine/sdk/node/tine_wire.js share/tine/sdk/node/tine_node.js share/tine/sdk/bin/tine-call share/tine/console/index.html share/tine/schema/tine.schema.json \
  share/man/man1/tine.1 share/man/man1/tined.1; do
  check "installed: $f" "yes" "$([ -s "$P/$f" ] && echo yes || echo no)"
done
check_contains "tine.1 is made from --help" ".SS secrets" "$(cat "$P/share/man/man1/tine.1")"
check_contains "tined.1 lists the options" "--secrets-key" "$(cat "$P/share/man/man1/tined.1")"
if command -v man >/dev/null 2>&1; then
  check_contains "man renders tine.1" "tine - the command-line client of tine" "$(MANWIDTH=100 man -l "$P/share/man/man1/tine.1" 2>/dev/null | col -b)"
fi
check_contains "the unit starts the installed tined" "ExecStart=/usr/local/bin/tined --config /etc/tine/tined.conf" \
  "$(cat "$D/lib/systemd/system/tined.service")"
check_contains "with hardening" "ProtectSystem=strict" "$(cat "$D/lib/systemd/system/tined.service")"
check "the default config, 0640" "640" "$(stat -c %a "$D/etc/tine/tined.conf")"

# Run from there: no --sdk-dir, an embedded redis, far from the source tree.
mkdir -p "$T/node"
(cd / && exec "$P/bin/tined" --listen 127.0.0.1:0 --state-dir "$T/node" --docker-events off >"$T/node.log" 2>&1) &
TPID=$!
PIDS+=($TPID)
wait_for 20 test -s "$T/node/port" || { cat "$T/node.log"; fail "installed tined starts" "no port"; finish; }
URL="http://127.0.0.1:$(cat "$T/node/port")"
TOKEN=$(cat "$T/node/admin.token")
wait_for 10 curl -sf "$URL/_tine/v1/ready"
zyg=$(pgrep -P "$TPID" -f "tine-zygote --sdk-dir" | head -n 1)
check_contains "its zygote uses the installed SDK" "--sdk-dir $P/share/tine/sdk/lua" \
  "$(tr '\0' ' ' <"/proc/$zyg/cmdline" 2>/dev/null)"
check_contains "it serves the installed console" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$URL/_tine/console/")"
itine() { "$P/bin/tine" --url "$URL" --token "$TOKEN" "$@"; }
check "the installed tine deploys" "deployed hello version 1" "$(run itine deploy "$SRC/functions-examples/hello")"
check "it serves" "200 hello, ada" "$(http GET /hello/hi/ada | tr -d '\n')"
check "a Lua, Python and Node app, with the installed SDKs" "deployed polyglot version 1" \
  "$(run itine deploy "$SRC/functions-examples/polyglot")"
check_contains "Lua calls Python calls Node calls Lua" '"greeting":"hello, ada"' "$(http GET /polyglot/greet/ada)"
finish
