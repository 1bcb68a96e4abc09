#!/usr/bin/env bash
# The Debian package end to end (docs/install.md), for CI as root: builds it
# (make deb), installs it with dpkg, starts tined from the installed files
# with its embedded Redis, deploys and serves an app with the installed tine,
# sets a secret with the key the package made, then purges the package and
# checks that nothing of it is left. Run as non-root (or where a tine package
# or /etc/tine exists already) it skips, saying why, and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP test-deb: needs root (dpkg -i, /etc/tine, /var/lib/tine); run it as root in CI"
  exit 0
fi
if dpkg -s tine >/dev/null 2>&1 || [ -e /etc/tine ] || [ -e /var/lib/tine ]; then
  echo "SKIP test-deb: a tine package, /etc/tine or /var/lib/tine is already here; not touching it"
  exit 0
fi
PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
check() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi; }
check_contains() { if [[ "$3" == *"$2"* ]]; then ok "$1"; else fail "$1" "expected to find [$2] in [$3]"; fi; }
T=$(mktemp -d /tmp/tine-deb.XXXXXX)
TPID=
cleanup() {
  [ -z "$TPID" ] || { kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; }
  dpkg --purge tine >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT

make deb >"$T/build.log" 2>&1 || { tail -n 40 "$T/build.log"; echo "FAIL make deb"; exit 1; }
deb=$(ls build-deb/tine_*.deb | head -n 1)
echo "package: $deb ($(stat -c %s "$deb") bytes)"
dpkg -i "$deb" >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; echo "FAIL dpkg -i"; exit 1; }
ok "dpkg -i $deb"
for f in /usr/bin/tined /usr/bin/tine /usr/bin/tine-zygote /usr/share/tine/sdk/lua/tine.lua \
  /usr/share/tine/sdk/python/tine.py /usr/share/man/man1/tine.1 /usr/share/man/man1/tined.1 \
  /lib/systemd/system/tined.service /etc/tine/tined.conf /etc/tine/secrets.key; do
  [ -e "$f" ] || [ -e "${f%.gz}" ] || [ -e "$f.gz" ] && ok "installed: $f" || fail "installed: $f" "missing"
done
check "the secrets key is made at install, 32 bytes, 0600" "32 600" \
  "$(stat -c '%s %a' /etc/tine/secrets.key)"
check_contains "the config is a conffile" "/etc/tine/tined.conf" "$(dpkg-query --control-show tine conffiles 2>/dev/null || cat /var/lib/dpkg/info/tine.conffiles)"

# tined from the installed files: systemd's when it runs, else by hand.
if [ -d /run/systemd/system ] && systemctl is-active --quiet tined; then
  URL=http://127.0.0.1:8080
  for _ in $(seq 100); do [ -s /var/lib/tine/admin.token ] && break; sleep 0.1; done
else
  rm -f /var/lib/tine/port
  /usr/bin/tined --config /etc/tine/tined.conf --listen 127.0.0.1:0 >"$T/tined.log" 2>&1 &
  TPID=$!
  for _ in $(seq 200); do [ -s /var/lib/tine/port ] && break; sleep 0.1; done
  [ -s /var/lib/tine/port ] || { cat "$T/tined.log"; echo "FAIL tined did not start"; exit 1; }
  URL="http://127.0.0.1:$(cat /var/lib/tine/port)"
fi
ok "tined started from the installed files"
for _ in $(seq 100); do curl -sf "$URL/_tine/v1/ready" >/dev/null && break; sleep 0.1; done
check_contains "with its embedded redis" "redis-server" "$(pgrep -a redis-server | grep /var/lib/tine || true)"
TOKEN=$(cat /var/lib/tine/admin.token)
t() { /usr/bin/tine --url "$URL" --token "$TOKEN" "$@"; }
check "the installed tine deploys" "deployed hello version 1" "$(t deploy functions-examples/hello 2>&1)"
check "an app is served" "hello, deb" "$(curl -s "$URL/hello/hi/deb")"
check "a secret with the package's key" "set secret K of hello (3 bytes, stored encrypted)" \
  "$(printf abc | t secrets set hello K 2>&1)"
if [ -n "$TPID" ]; then
  kill -TERM "$TPID"
  wait "$TPID" && rc=0 || rc=$?
  TPID=
  check "tined stops on SIGTERM" "0" "$rc"
fi

dpkg --purge tine >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; fail "dpkg --purge" "failed"; }
left=""
for f in /usr/bin/tined /usr/bin/tine /usr/share/tine /lib/systemd/system/tined.service /etc/tine /var/lib/tine; do
  [ -e "$f" ] && left+="$f "
done
check "purge leaves nothing" "" "$left"
check "and no redis-server of it runs" "" "$(pgrep -a redis-server | grep /var/lib/tine || true)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
