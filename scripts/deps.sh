#!/usr/bin/env bash
# Installs the Debian packages tine needs to build, test and run. As root it
# installs what is missing; otherwise it prints the exact sudo line and fails.
# Extra packages for one target may be given as arguments (`make fuzz`: clang).
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config git curl ca-certificates python3 nodejs
  libh2o-dev libuv1-dev libssl-dev
  libluajit-5.1-dev luajit
  libhiredis-dev redis-server openssl
  libjansson-dev libyaml-dev libcurl4-openssl-dev libarchive-dev
  libseccomp-dev libcmocka-dev
  podman prometheus wrk bc nghttp2-client wget python3-pip haproxy
  chromium nodejs npm # tests/console (a headless browser), tests/openwhisk (the openwhisk npm client)
  "$@"
)
missing=()
for p in "${PACKAGES[@]}"; do
  # A nodejs from elsewhere (NodeSource) brings its own npm and conflicts
  # with Debian's: a working npm is enough (tests/console, tests/openwhisk).
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "tine: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "tine: missing packages; run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
