# A Redis Sentinel set for the shell tests: a master, its replica and three
# sentinels (quorum 2), real redis-server processes on free loopback ports,
# each in a dir of its own under the dir given. Source it (bash); the
# integration tests do so after tests/integration/lib.sh, whose cleanup
# kills what is listed in PIDS (ha_start adds every process there when PIDS
# is set). tests/unit/redis/redis_server.h does the same for the C tests.
#
#   ha_start DIR NAME   starts the set; sets HA_URL (redis-sentinel://.../NAME),
#                       HA_PORTS (the two servers), HA_SENTINELS (three ports)
#   ha_master           the port the sentinels name now
#   ha_replica          the port of the other server
#   ha_kill PORT        SIGKILL the server on PORT (as a crash would)
#   ha_rejoin PORT      start the server on PORT again, as a replica of the master
#   ha_wait_master NOT_PORT SECONDS   waits until every sentinel names a master
#                       other than NOT_PORT and it takes writes; prints its port
#   ha_settled SECONDS  waits until every sentinel names one master, knows the
#                       others and the replica (a failover needs both)
#   ha_stop             stops everything ha_start started
#
# Timings: down-after-milliseconds 1000, failover-timeout 3000 (a failover
# takes 1.5 to 3 s). HA_DOWN_AFTER_MS and HA_FAILOVER_TIMEOUT_MS change them.

HA_DIR=
HA_NAME=
HA_URL=
HA_PORTS=()
HA_SENTINELS=()
declare -A HA_PID=()

ha_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ha__wait SECONDS COMMAND...: until COMMAND succeeds (1 when it never did).
ha__wait() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# ha__track PID: listed in lib.sh's PIDS (killed by its cleanup) when there
# is such an array.
ha__track() { if declare -p PIDS >/dev/null 2>&1; then PIDS+=("$1"); fi; }

# ha__server PORT [ARGS...]: a redis-server on PORT in $HA_DIR/PORT.
ha__server() {
  local port=$1; shift
  mkdir -p "$HA_DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$HA_DIR/$port" --save "" --appendonly no \
    --daemonize no --logfile "$HA_DIR/$port/redis.log" "$@" </dev/null >>"$HA_DIR/$port/out.log" 2>&1 &
  HA_PID[$port]=$!
  ha__track $!
  ha__wait 10 redis-cli -p "$port" ping || { echo "redis-server on $port did not start" >&2; return 1; }
}

# ha__sentinel PORT MASTER_PORT: a sentinel with its own config file.
ha__sentinel() {
  local port=$1 mport=$2
  mkdir -p "$HA_DIR/s$port"
  cat >"$HA_DIR/s$port/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
dir $HA_DIR/s$port
logfile $HA_DIR/s$port/sentinel.log
sentinel monitor $HA_NAME 127.0.0.1 $mport 2
sentinel down-after-milliseconds $HA_NAME ${HA_DOWN_AFTER_MS:-1000}
sentinel failover-timeout $HA_NAME ${HA_FAILOVER_TIMEOUT_MS:-3000}
EOF
  redis-server "$HA_DIR/s$port/sentinel.conf" --sentinel </dev/null >>"$HA_DIR/s$port/out.log" 2>&1 &
  HA_PID[s$port]=$!
  ha__track $!
  ha__wait 10 redis-cli -p "$port" ping || { echo "sentinel on $port did not start" >&2; return 1; }
}

# The value of FIELD in SENTINEL MASTER's answer on the sentinel at PORT.
ha__field() {
  redis-cli -p "$1" sentinel master "$HA_NAME" 2>/dev/null | awk -v f="$2" 'p { print; exit } $0 == f { p = 1 }'
}

ha__named() { redis-cli -p "$1" sentinel get-master-addr-by-name "$HA_NAME" 2>/dev/null | sed -n 2p; }

ha__synced() { redis-cli -p "$1" role 2>/dev/null | sed -n 4p | grep -qx connected; }

# ha__online REPLICA_PORT: the master counts the replica online (ROLE lists
# it; diskless sync puts a replica online only at its first acknowledgement,
# after the replica says it is connected).
ha__online() {
  ha__synced "$1" || return 1
  local m
  m=$(redis-cli -p "$1" role 2>/dev/null | sed -n 3p)
  redis-cli -p "$m" role 2>/dev/null | grep -qx "$1"
}

ha_master() { ha__named "${HA_SENTINELS[0]}"; }

ha_replica() {
  local m
  m=$(ha_master)
  if [ "$m" = "${HA_PORTS[0]}" ]; then echo "${HA_PORTS[1]}"; else echo "${HA_PORTS[0]}"; fi
}

ha__settled_now() {
  local m s
  m=$(ha__named "${HA_SENTINELS[0]}")
  [ -n "$m" ] || return 1
  for s in "${HA_SENTINELS[@]}"; do
    [ "$(ha__named "$s")" = "$m" ] || return 1
    [ "$(ha__field "$s" num-other-sentinels)" = 2 ] || return 1
    [ "$(ha__field "$s" num-slaves)" -ge 1 ] 2>/dev/null || return 1
    [ "$(ha__field "$s" flags)" = master ] || return 1
  done
}

ha_settled() { ha__wait "$1" ha__settled_now; }

ha_start() {
  HA_DIR=$1
  HA_NAME=$2
  mkdir -p "$HA_DIR"
  HA_PORTS=("$(ha_free_port)" "$(ha_free_port)")
  HA_SENTINELS=("$(ha_free_port)" "$(ha_free_port)" "$(ha_free_port)")
  ha__server "${HA_PORTS[0]}" || return 1
  ha__server "${HA_PORTS[1]}" --replicaof 127.0.0.1 "${HA_PORTS[0]}" || return 1
  local s
  for s in "${HA_SENTINELS[@]}"; do ha__sentinel "$s" "${HA_PORTS[0]}" || return 1; done
  HA_URL="redis-sentinel://127.0.0.1:${HA_SENTINELS[0]},127.0.0.1:${HA_SENTINELS[1]},127.0.0.1:${HA_SENTINELS[2]}/$HA_NAME"
  ha__wait 20 ha__online "${HA_PORTS[1]}" || { echo "the replica did not sync" >&2; return 1; }
  ha_settled 30 || { echo "the sentinels did not settle" >&2; return 1; }
}

ha_kill() {
  local pid=${HA_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "HA_PID[$1]"
}

ha_rejoin() {
  local port=$1 m
  m=$(ha_master)
  ha__server "$port" --replicaof 127.0.0.1 "$m" || return 1
  ha__wait 20 ha__online "$port"
}

ha__moved_now() {
  local not=$1 m s
  m=$(ha__named "${HA_SENTINELS[0]}")
  [ -n "$m" ] && [ "$m" != "$not" ] || return 1
  for s in "${HA_SENTINELS[@]}"; do [ "$(ha__named "$s")" = "$m" ] || return 1; done
  redis-cli -p "$m" role 2>/dev/null | head -1 | grep -qx master
}

ha_wait_master() {
  ha__wait "$2" ha__moved_now "$1" || return 1
  ha_master
}

ha_stop() {
  local k
  for k in "${!HA_PID[@]}"; do kill -9 "${HA_PID[$k]}" 2>/dev/null || true; done
  for k in "${!HA_PID[@]}"; do wait "${HA_PID[$k]}" 2>/dev/null || true; done
  HA_PID=()
}
