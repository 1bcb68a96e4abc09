# shellcheck shell=bash
# Installs what the benchmarks need and finds it: Debian packages (nginx,
# wrk, curl, python3, and node + npm when node is missing), the nginx Lua
# module unpacked under bench/.cache, workerd from npm, and bench's two C
# tools. Sets NGINX, NGINX_NDK, NGINX_LUA, NGINX_LUA_PATH, NGINX_LUAJIT_DIR,
# WORKERD, HTTP_TIMER and CGI_SERVER.

APT_PACKAGES=(nginx wrk curl python3 build-essential)

# The Lua module for nginx, with what it needs at run time. On Debian 12 it
# depends on OpenResty's LuaJIT (libluajit2-5.1-2), which conflicts with the
# libluajit-5.1-dev tine is built with: installing it with apt would remove
# tine's own build dependency. So these are downloaded with apt and unpacked
# under bench/.cache instead; nginx gets their LuaJIT through LD_LIBRARY_PATH.
NGINX_LUA_DEBS=(libnginx-mod-http-ndk libnginx-mod-http-lua lua-resty-core lua-resty-lrucache libluajit2-5.1-2)

install_all() {
  mkdir -p "$CACHE"
  install_apt_packages
  install_nginx_lua
  install_workerd
  build_tools
  say "tools ready: $(nginx_version), workerd $WORKERD_VERSION, $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
}

# apt_get ARGS...: apt-get that waits for another apt to finish and never
# removes a package (so it cannot take away what tine builds with).
apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
}

install_apt_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # A fresh Debian has no node; where one is on PATH (nvm, NodeSource) it is used.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing packages; run:"
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  say "installing ${missing[*]}"
  apt_get update -qq >/dev/null
  apt_get install -y -qq --no-remove "${missing[@]}" >"$CACHE/apt.log" 2>&1 ||
    die 2 "apt-get install ${missing[*]} failed: $(tail -n 3 "$CACHE/apt.log")"
}

nginx_version() { "$NGINX" -v 2>&1 | sed 's/^nginx version: //'; }

# Downloads and unpacks NGINX_LUA_DEBS once per nginx version.
install_nginx_lua() {
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$NGINX" ] || die 2 "nginx is not installed (apt-get install nginx)"
  local dir=$CACHE/nginx-lua stamp
  stamp="$(nginx_version) ${NGINX_LUA_DEBS[*]}"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    say "unpacking the nginx Lua module into $dir"
    rm -rf "$dir"
    mkdir -p "$dir/debs" "$dir/root"
    # apt-get download needs the package lists; a fresh machine may lack them.
    if ! (cd "$dir/debs" && apt_get download "${NGINX_LUA_DEBS[@]}") >"$dir/download.log" 2>&1; then
      [ "$(id -u)" -eq 0 ] && apt_get update -qq >/dev/null 2>&1
      (cd "$dir/debs" && apt_get download "${NGINX_LUA_DEBS[@]}") >"$dir/download.log" 2>&1 ||
        die 2 "apt-get download ${NGINX_LUA_DEBS[*]} failed: $(tail -n 2 "$dir/download.log")"
    fi
    local deb
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
    echo "$stamp" >"$dir/.stamp"
  fi
  NGINX_NDK=$(find "$dir/root" -name ndk_http_module.so | head -n 1)
  NGINX_LUA=$(find "$dir/root" -name ngx_http_lua_module.so | head -n 1)
  NGINX_LUA_PATH=$(dirname "$(find "$dir/root" -path '*/resty/core.lua' | head -n 1)")
  NGINX_LUA_PATH=$(dirname "$NGINX_LUA_PATH")
  NGINX_LUAJIT_DIR=$(dirname "$(find "$dir/root" -name 'libluajit-5.1.so.2' | head -n 1)")
  if [ -z "$NGINX_NDK" ] || [ -z "$NGINX_LUA" ] || [ ! -f "$NGINX_LUA_PATH/resty/core.lua" ]; then
    die 2 "the unpacked nginx Lua module in $dir is incomplete; remove $dir and run again"
  fi
  NGINX_LUA_VERSION=$(ls "$dir"/debs/libnginx-mod-http-lua_*.deb | sed 's/.*_[0-9]*%3a\([^_]*\)_.*/\1/')
}

# Installs the pinned workerd from npm under bench/.cache and finds its binary
# (the npm package's own bin/workerd is a node wrapper: not timed here).
install_workerd() {
  local have
  have=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$CACHE/node_modules/workerd/package.json" 2>/dev/null || true)
  if [ "$have" != "$WORKERD_VERSION" ]; then
    say "npm install workerd@$WORKERD_VERSION into $CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error "workerd@$WORKERD_VERSION" \
      >"$CACHE/npm.log" 2>&1 || die 2 "npm install workerd@$WORKERD_VERSION failed: $(tail -n 3 "$CACHE/npm.log")"
  fi
  WORKERD=$(ls "$CACHE"/node_modules/@cloudflare/workerd-linux-*/bin/workerd 2>/dev/null | head -n 1)
  if [ -z "$WORKERD" ] || ! "$WORKERD" --version >/dev/null 2>&1; then
    die 2 "no runnable workerd binary under $CACHE/node_modules/@cloudflare (npm install workerd@$WORKERD_VERSION)"
  fi
}

# Compiles http-timer and cgi-server into bench/.cache/bin when their source
# is newer: kept out of the CMake build, which `make test` runs.
build_tools() {
  mkdir -p "$CACHE/bin"
  local name src
  for name in http_timer cgi_server; do
    src=$BENCH/$name.c
    if [ ! -x "$CACHE/bin/${name/_/-}" ] || [ "$src" -nt "$CACHE/bin/${name/_/-}" ]; then
      cc -std=c11 -O2 -Wall -Wextra -Werror -o "$CACHE/bin/${name/_/-}" "$src" ||
        die 2 "compiling $src failed"
    fi
  done
  HTTP_TIMER=$CACHE/bin/http-timer
  CGI_SERVER=$CACHE/bin/cgi-server
}
