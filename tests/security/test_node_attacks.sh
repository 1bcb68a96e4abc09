#!/usr/bin/env bash
# Node functions that try to escape their sandbox: files of the node and of
# other apps, writes, sockets, child_process, process.binding and native
# addons, signals to tined or to the version's Node host, fork bombs, the
# pipes' neighbours. Node has no language layer: each attempt must be
# stopped by the process layers (the version's own root, uid, rlimits, the
# Node system call filter, namespaces) while another app keeps answering. A
# layer the host does not allow is skipped with its reason.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
make_victim
mkdir -p "$T/evil"
cat >"$T/evil/tine.yaml" <<'YAML'
app: evil
defaults: { runtime: node, memory: 64 }
functions:
  probe:   { handler: e.js#probe }
  forks:   { handler: e.js#forks }
  ids:     { handler: e.js#ids, warm: 1 }
  normal:  { handler: e.js#normal }
  spin:    { handler: e.js#spin, timeout: 1s }
YAML
cat >"$T/evil/e.js" <<'JS'
const fs = require('fs');
const net = require('net');
const dgram = require('dgram');
const cp = require('child_process');

function attempt(out, name, f) {
  try {
    const v = f();
    out[name] = `ESCAPED ${String(v).slice(0, 80)}`;
  } catch (e) {
    out[name] = e.code || e.name;
  }
}

// An attempt whose failure comes as an 'error' event.
function later(out, name, f) {
  return new Promise((resolve) => {
    let done = false;
    const end = (v) => { if (!done) { done = true; out[name] = v; resolve(); } };
    try {
      const em = f();
      em.on('error', (e) => end(e.code || e.name));
      em.on('listening', () => end('ESCAPED listening'));
      em.on('connect', () => end('ESCAPED connected'));
      setTimeout(() => end('ESCAPED no error'), 500);
    } catch (e) {
      end(e.code || e.name);
    }
  });
}

exports.probe = async (target) => {
  target = target || {};
  const out = {};
  attempt(out, 'read /etc/passwd', () => fs.readFileSync('/etc/passwd', 'utf8'));
  attempt(out, 'read /etc/shadow', () => fs.readFileSync('/etc/shadow', 'utf8'));
  attempt(out, 'list /', () => {
    const l = fs.readdirSync('/');
    if (l.includes('proc') || l.includes('home') || l.includes('root')) return l.join(',');
    throw Object.assign(new Error('not the host root'), { code: 'NOTHOST' });
  });
  attempt(out, 'read the other bundle', () => fs.readFileSync(target.bundle, 'utf8'));
  attempt(out, 'read the other bundle (..)', () => fs.readFileSync('/app/../../' + target.bundle, 'utf8'));
  attempt(out, 'read the state dir', () => fs.readdirSync(target.state));
  attempt(out, 'write a file', () => fs.writeFileSync('/app/pwned', 'x'));
  attempt(out, 'write /tmp', () => fs.writeFileSync('/tmp/pwned', 'x'));
  attempt(out, 'mkdir', () => fs.mkdirSync('/app/d'));
  attempt(out, 'chmod', () => fs.chmodSync('/app/e.js', 0o777));
  attempt(out, 'symlink', () => fs.symlinkSync('/', '/app/l'));
  attempt(out, '/proc', () => fs.readFileSync('/proc/1/environ'));
  await later(out, 'tcp listen', () => net.createServer().listen(0, '127.0.0.1'));
  await later(out, 'tcp connect', () => net.connect(target.port, '127.0.0.1'));
  await later(out, 'udp socket', () => dgram.createSocket('udp4').bind(0));
  await later(out, 'unix socket', () => net.createServer().listen('/app/s'));
  attempt(out, 'execSync', () => cp.execSync('id').toString());
  attempt(out, 'spawnSync', () => { const r = cp.spawnSync('/bin/sh', ['-c', 'id']); if (r.error) throw r.error; return r.stdout; });
  await later(out, 'spawn', () => cp.spawn('/bin/sh', ['-c', 'id']));
  await later(out, 'fork', () => cp.fork('/app/e.js'));
  attempt(out, 'process.binding spawn_sync', () => {
    const r = process.binding('spawn_sync').spawn({ file: '/bin/sh', args: ['sh', '-c', 'id'], envPairs: [],
      stdio: [{ type: 'pipe', readable: true }, { type: 'pipe', writable: true }, { type: 'pipe', writable: true }] });
    if (r.error) throw Object.assign(new Error('spawn'), { code: `errno ${r.error}` });
    return r.status;
  });
  attempt(out, 'process.dlopen', () => process.dlopen({ exports: {} }, '/usr/lib/x86_64-linux-gnu/libc.so.6'));
  attempt(out, 'kill tined', () => process.kill(target.tined, 'SIGKILL'));
  attempt(out, 'kill pid 1 (the Node host)', () => process.kill(1, 'SIGKILL'));
  attempt(out, 'kill the process group', () => process.kill(0, 'SIGKILL'));
  attempt(out, 'kill every process of the uid', () => process.kill(-1, 'SIGKILL'));
  attempt(out, 'setuid 0', () => process.setuid(0));
  return out;
};

exports.forks = () => {
  let n = 0, error = null;
  for (let i = 0; i < 50; i++) {
    const r = cp.spawnSync('/bin/true');
    if (r.error) { error = r.error.code; break; }
    n++;
  }
  return { forked: n, error };
};

exports.ids = () => ({ uid: process.getuid(), pid: process.pid, env: Object.keys(process.env).sort() });

exports.normal = async () => {
  // What ordinary handlers do must all pass the filter.
  const crypto = require('crypto');
  const zlib = require('zlib');
  const { Worker } = require('worker_threads');
  const big = [];
  for (let i = 0; i < 100; i++) big.push(Buffer.alloc(65536, 1));
  big.length = 0;
  await new Promise((r) => setTimeout(r, 5));
  const worker = await new Promise((resolve, reject) => {
    const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    w.on('message', resolve);
    w.on('error', reject);
  });
  const gz = zlib.gunzipSync(zlib.gzipSync('zip')).toString();
  const hashed = await new Promise((r) => crypto.pbkdf2('x', 'salt', 10, 8, 'sha256', (e, k) => r(k.toString('hex'))));
  return { sha: crypto.createHash('sha256').update('x').digest('hex').slice(0, 8), rnd: crypto.randomBytes(8).length,
    json: JSON.parse('[1]'), year: new Date().getFullYear() > 2000, cwd: process.cwd(), worker, gz, hashed,
    read: fs.readFileSync('/app/e.js', 'utf8').length > 0, intl: new Intl.NumberFormat('en').format(1234.5) };
};

exports.spin = () => { for (;;); };
JS
tine deploy "$T/evil" >/dev/null
victim_ok "before the attacks"

inv evil normal
check "ordinary work passes every layer (threads, crypto, zlib, timers, a worker)" \
  '{"cwd": "/app", "gz": "zip", "hashed": "b31b6680fed3e12c", "intl": "1,234.5", "json": [1], "read": true, "rnd": 8, "sha": "2d711642", "worker": 42, "year": true}' \
  "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"

bundle="$T/a/bundles/victim/1/v.lua"
port=${URL##*:}
inv evil probe "{\"bundle\":\"$bundle\",\"state\":\"$T/a\",\"tined\":$NODE_PID,\"port\":$port}"
probe=$ERR
# expect NAME EXPECTED [LAYER...]: the attempt NAME ended with the error
# code EXPECTED (one of "A|B"), or is skipped when a layer is off.
expect() {
  local name=$1 want=$2 got
  shift 2
  CHECK="$name"
  need_layers "$@" || return 0
  got=$(jfield "$name" <<<"$probe")
  if [[ "|$want|" == *"|$got|"* ]]; then ok "$name: refused ($got)"
  else fail "$name" "expected [$want], got [$got]"; fi
}
expect "read /etc/passwd" ENOENT root-dir mount-namespace
expect "read /etc/shadow" ENOENT root-dir mount-namespace
expect "list /" NOTHOST root-dir mount-namespace
expect "read the other bundle" ENOENT root-dir mount-namespace
expect "read the other bundle (..)" ENOENT root-dir mount-namespace
expect "read the state dir" ENOENT root-dir mount-namespace
expect "write a file" "EROFS|EACCES|EPERM" root-dir mount-namespace
expect "write /tmp" "ENOENT|EROFS" root-dir mount-namespace
expect "mkdir" "EROFS|EACCES|EPERM" root-dir mount-namespace
expect "chmod" EPERM seccomp
expect "symlink" EPERM seccomp
expect "/proc" ENOENT root-dir mount-namespace
expect "tcp listen" EPERM seccomp
expect "tcp connect" EPERM seccomp
expect "udp socket" EPERM seccomp
expect "unix socket" EPERM seccomp
expect "execSync" EPERM seccomp
expect "spawnSync" EPERM seccomp
expect "spawn" EPERM seccomp
expect "fork" EPERM seccomp
expect "process.binding spawn_sync" "errno -1" seccomp
expect "process.dlopen" ERR_DLOPEN_DISABLED
expect "kill tined" "EPERM|ESRCH" seccomp
expect "kill pid 1 (the Node host)" EPERM seccomp
expect "kill the process group" EPERM seccomp
expect "kill every process of the uid" EPERM seccomp
expect "setuid 0" EPERM
[[ "$probe" == *ESCAPED* ]] && fail "no attempt escaped" "$probe" || ok "no attempt escaped"
victim_ok "after the probes"

CHECK="a fork bomb stops at the first fork"
if need_layers seccomp; then
  inv evil forks
  check "$CHECK" '{"error": "EPERM", "forked": 0}' \
    "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"
fi
victim_ok "after the fork bomb"

inv evil spin '{}' >/dev/null &
spin=$!
sleep 0.3
victim_ok "while a Node function spins"
wait $spin
attack "spin forever" evil spin '{}' 504 "timed out after 1000 ms"

inv evil ids
ids=$ERR
check "no variable of tined's environment (process.env is the function's env)" '[]' \
  "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["env"]))' "$ids")"
CHECK="Node sandboxes run as the version's own uid"
if need_layers user && [ "$(id -u)" = 0 ]; then
  pid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["function"] == "ids":
        print(p["sandboxes"][0]["pid"])')
  uid=$(ps -o uid= -p "$pid" | xargs)
  [ "${uid:-0}" -ge $((1000000000 + 65536)) ] && ok "$CHECK ($uid)" || fail "$CHECK" "uid [$uid] of pid [$pid]"
elif [ "$(id -u)" != 0 ]; then
  skip "$CHECK" "the tests do not run as root"
fi
check_contains "tine doctor names the Node filter" "Node: " "$(layer_field seccomp detail)"
victim_ok "after every attack"
finish_security
