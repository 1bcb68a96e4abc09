#!/usr/bin/env bash
# Python functions that try to escape their sandbox: files of the node and
# of other apps, writes, sockets, subprocesses, ctypes calling the C library
# directly, signals, fork bombs, the zygote's control socket. Python has no
# language layer: each attempt must be stopped by the process layers (the
# version's own root, uid, rlimits, the Python system call filter,
# namespaces) while another app keeps answering. A layer the host does not
# allow is skipped with its reason.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
make_victim
mkdir -p "$T/evil"
cat >"$T/evil/tine.yaml" <<'YAML'
app: evil
defaults: { runtime: python, memory: 64 }
functions:
  probe:   { handler: e.py#probe }
  forks:   { handler: e.py#forks }
  ids:     { handler: e.py#ids, warm: 1 }
  normal:  { handler: e.py#normal }
  spin:    { handler: e.py#spin, timeout: 1s }
YAML
cat >"$T/evil/e.py" <<'PY'
import ctypes
import os
import signal
import socket
import subprocess
import sys

def _try(out, name, f):
    try:
        out[name] = "ESCAPED %r" % (f(),)
    except BaseException as e:
        out[name] = type(e).__name__

def probe(req, ctx):
    target = req or {}
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    _try(out, "read /etc/passwd", lambda: open("/etc/passwd").read())
    _try(out, "read /etc/shadow", lambda: open("/etc/shadow").read())
    _try(out, "list /", lambda: sorted(os.listdir("/")) if "proc" in os.listdir("/") or "home" in os.listdir("/") or "root" in os.listdir("/") else (_ for _ in ()).throw(PermissionError("not the host's root")))
    _try(out, "read the other bundle", lambda: open(target["bundle"]).read())
    _try(out, "read the other bundle (..)", lambda: open("/app/../../" + target["bundle"]).read())
    _try(out, "read the state dir", lambda: os.listdir(target["state"]))
    _try(out, "write a file", lambda: open("/app/pwned", "w").write("x"))
    _try(out, "write /tmp", lambda: open("/tmp/pwned", "w").write("x"))
    _try(out, "mkdir", lambda: os.mkdir("/app/d"))
    _try(out, "tcp socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    _try(out, "unix socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    _try(out, "udp socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    _try(out, "subprocess", lambda: subprocess.run(["/bin/sh", "-c", "id"], capture_output=True).stdout)
    _try(out, "os.system", lambda: os.system("id") == 0 or (_ for _ in ()).throw(OSError("failed")))
    _try(out, "fork", lambda: os.fork())
    _try(out, "execv", lambda: os.execv("/bin/sh", ["sh", "-c", "id"]))
    _try(out, "kill tined", lambda: os.kill(target["tined"], signal.SIGKILL))
    _try(out, "kill pid 1", lambda: os.kill(1, signal.SIGKILL))
    _try(out, "setuid 0", lambda: os.setuid(0))
    _try(out, "chroot", lambda: os.chroot("/"))
    _try(out, "control socket", lambda: socket.socket(fileno=3).send(b"x" * 24))
    _try(out, "/proc", lambda: open("/proc/1/environ").read())
    # ctypes: the C library called directly still meets the filter.
    def c_call(fn, *args):
        r = fn(*args)
        if r < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return r
    _try(out, "ctypes socket", lambda: c_call(libc.socket, 2, 1, 0))
    _try(out, "ctypes fork", lambda: c_call(libc.fork))
    _try(out, "ctypes execve", lambda: c_call(libc.execve, b"/bin/sh", None, None))
    _try(out, "ctypes ptrace", lambda: c_call(libc.ptrace, 16, target["tined"], None, None))
    _try(out, "ctypes mount", lambda: c_call(libc.mount, b"none", b"/app", b"tmpfs", 0, None))
    _try(out, "ctypes unshare", lambda: c_call(libc.unshare, 0x10000000))
    _try(out, "ctypes setns", lambda: c_call(libc.setns, 0, 0))
    _try(out, "ctypes open for writing", lambda: c_call(libc.open, b"/app/x", os.O_WRONLY | os.O_CREAT, 0o644))
    _try(out, "ctypes execveat", lambda: c_call(libc.syscall, 322, 1000, b"", None, None, 0x1000))
    _try(out, "ctypes prctl", lambda: c_call(libc.prctl, 22, 0, 0, 0, 0))
    return out

def forks(req, ctx):
    n = 0
    try:
        while True:
            os.fork()
            n += 1
    except OSError as e:
        return {"forked": n, "error": type(e).__name__}

def ids(req, ctx):
    return {"uid": os.getuid(), "pid": os.getpid(), "env": sorted(os.environ)}

def normal(req, ctx):
    # What ordinary handlers do must all pass the filter.
    import json, re, hashlib, datetime, random, tempfile, threading, asyncio, decimal, collections
    big = [bytearray(65536) for _ in range(200)]  # 13 MiB, then freed
    del big
    async def co():
        await asyncio.sleep(0)
        return 1
    return {"json": json.loads("[1]"), "re": bool(re.match("a", "a")), "sha": hashlib.sha256(b"x").hexdigest()[:8],
            "year": datetime.datetime.now().year > 2000, "rnd": 1 <= random.randint(1, 6) <= 6,
            "urandom": len(os.urandom(8)), "asyncio": asyncio.run(co()),
            "dec": str(decimal.Decimal("1.1") + decimal.Decimal("2.2")), "cwd": os.getcwd()}

def spin(req, ctx):
    while True:
        pass
PY
tine deploy "$T/evil" >/dev/null
victim_ok "before the attacks"

inv evil normal
check "ordinary work passes every layer" \
  '{"asyncio": 1, "cwd": "/app", "dec": "3.3", "json": [1], "re": true, "rnd": true, "sha": "2d711642", "urandom": 8, "year": true}' \
  "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"

bundle="$T/a/bundles/victim/1/v.lua"
inv evil probe "{\"bundle\":\"$bundle\",\"state\":\"$T/a\",\"tined\":$NODE_PID}"
probe=$ERR
# expect NAME EXPECTED [LAYER...]: the attempt NAME ended with the
# exception EXPECTED (one of "A|B"), or is skipped when a layer is off.
expect() {
  local name=$1 want=$2 got
  shift 2
  CHECK="$name"
  need_layers "$@" || return 0
  got=$(jfield "$name" <<<"$probe")
  if [[ "|$want|" == *"|$got|"* ]]; then ok "$name: refused ($got)"
  else fail "$name" "expected [$want], got [$got]"; fi
}
expect "read /etc/passwd" FileNotFoundError root-dir mount-namespace
expect "read /etc/shadow" FileNotFoundError root-dir mount-namespace
expect "list /" PermissionError root-dir mount-namespace
expect "read the other bundle" FileNotFoundError root-dir mount-namespace
expect "read the other bundle (..)" FileNotFoundError root-dir mount-namespace
expect "read the state dir" FileNotFoundError root-dir mount-namespace
expect "write a file" PermissionError seccomp
expect "write /tmp" PermissionError seccomp
expect "mkdir" PermissionError seccomp
expect "tcp socket" PermissionError seccomp
expect "unix socket" PermissionError seccomp
expect "udp socket" PermissionError seccomp
expect "subprocess" "PermissionError|BlockingIOError" seccomp rlimits
expect "os.system" "OSError|PermissionError" seccomp rlimits
expect "fork" BlockingIOError rlimits
expect "execv" PermissionError seccomp
expect "kill tined" "PermissionError|ProcessLookupError" seccomp
expect "kill pid 1" PermissionError seccomp
expect "setuid 0" PermissionError seccomp
expect "chroot" PermissionError seccomp
expect "control socket" OSError
expect "/proc" FileNotFoundError root-dir mount-namespace
expect "ctypes socket" PermissionError seccomp
expect "ctypes fork" "BlockingIOError|PermissionError" rlimits
expect "ctypes execve" PermissionError seccomp
expect "ctypes ptrace" PermissionError seccomp
expect "ctypes mount" PermissionError seccomp
expect "ctypes unshare" PermissionError seccomp
expect "ctypes setns" PermissionError seccomp
expect "ctypes open for writing" PermissionError seccomp
expect "ctypes execveat" "PermissionError|OSError" seccomp
expect "ctypes prctl" PermissionError seccomp
[[ "$probe" == *ESCAPED* ]] && fail "no attempt escaped" "$probe" || ok "no attempt escaped"
victim_ok "after the probes"

CHECK="a fork bomb stops at the first fork"
if need_layers rlimits; then
  inv evil forks
  check "$CHECK" '{"error": "BlockingIOError", "forked": 0}' \
    "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$ERR")"
fi
victim_ok "after the fork bomb"

# Spinning forever: 504 after the timeout, and the node serves meanwhile.
inv evil spin '{}' >/dev/null &
spin=$!
sleep 0.3
victim_ok "while a Python function spins"
wait $spin
attack "spin forever" evil spin '{}' 504 "timed out after 1000 ms"

# The process itself, seen from the host: a uid of the version's own (not
# the Lua sandboxes', not root), nothing of tined's environment.
inv evil ids
ids=$ERR
check "no variable of tined's environment" '["LC_ALL", "PATH"]' \
  "$(python3 -c 'import json,sys; print(json.dumps([k for k in json.loads(sys.argv[1])["env"]]))' "$ids")"
CHECK="Python sandboxes run as the version's own uid"
if need_layers user && [ "$(id -u)" = 0 ]; then
  pid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["function"] == "ids":
        print(p["sandboxes"][0]["pid"])')
  uid=$(ps -o uid= -p "$pid" | xargs)
  [ "${uid:-0}" -ge $((1000000000 + 65536)) ] && ok "$CHECK ($uid)" || fail "$CHECK" "uid [$uid] of pid [$pid]"
  zpid=$(pgrep -f 'tine_zygote.py.*"app":"evil"' | head -1)
  check "the zygote too" "$uid" "$(ps -o uid= -p "$zpid" | xargs)"
elif [ "$(id -u)" != 0 ]; then
  skip "$CHECK" "the tests do not run as root"
fi
check_contains "tine doctor names the Python filter" "Python: an allowlist" "$(layer_field seccomp detail)"
victim_ok "after every attack"
finish_security
