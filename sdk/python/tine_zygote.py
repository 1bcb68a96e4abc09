"""The Python zygote and sandbox of one app version (docs/sdk-python.md,
docs/ARCHITECTURE.md "Python functions").

tine-zygote (sandbox/python_host.c) starts this script with python3 -I -S -B
once per live app version that has Python functions, after it applied the
zygote's isolation layers (its own root, uid, rlimits, no_new_privs, system
call filter, namespaces): nothing here runs outside them. Arguments: the
version's spec as JSON. Descriptors: 0 and 1 /dev/null, 2 tined's log, 3 the
control socket to tined, 4 /proc/self/statm of this process (or none).
Arguments: the spec (JSON: app, version, modules), the bundle's directory
as this process sees it, and "isolated" or "not-isolated" (--isolation off:
the sandboxes set no limits of their own either).

The zygote imports the SDK and every handler module of the version once,
says READY on the control socket, then serves spawn requests there as
tine-zygote does: a frame asks for a sandbox, the zygote forks one with two
fresh pipes and answers with a 12-byte message {int32 status, int32 pid,
int32 0} carrying tined's ends of the pipes and a pidfd of the child.

A sandbox waits on its pipe for its spec (which function, memory, timeout,
env), applies its own limits, answers READY and serves INVOKE frames one at
a time with the handler its zygote imported: the protocol of a Lua sandbox
(sandbox/lua_host.c), from the same frames (tine_wire.py).
"""

import gc
import importlib
import json
import os
import resource
import signal
import socket
import struct
import sys
import time
import traceback

# Run with -I: neither this script's directory nor the environment is on the
# path; the SDK is found next to this file, the bundle's modules from main().
sys.path[0:0] = [os.path.dirname(os.path.abspath(__file__))]

import tine  # noqa: E402
import tine_wire as w  # noqa: E402

CONTROL_FD = 3
STATM_FD = 4
EPROTO = -1006  # TINE_EPROTO
LOG_LINE_MAX = 16384  # bytes of one log line, "…" included
LOG_SEND_MAX = 128 * 1024  # log bytes an invocation sends, each line counted LOG_LINE_COST more
LOG_LINE_COST = 64
IMPORT_LOG_MAX = 64 * 1024  # log bytes the imports may send
AS_SLACK = 32 * 1024 * 1024  # address space a sandbox may add beyond its memory: frames, allocator slack
SANDBOX_NOFILE = 32
KEEP_BUF = 64 * 1024


def node_log(level, msg, **fields):
    """One line of tined's log (its JSON shape) on stderr, written at once."""
    t = time.time()
    line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000),
            "level": level, "msg": msg}
    line.update(fields)
    try:
        os.write(2, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def error_text(e):
    """'Type: message' of an exception ('out of memory' for MemoryError, which
    says nothing itself, so the invoker tells it apart)."""
    if isinstance(e, MemoryError):
        return "MemoryError: out of memory"
    name = type(e).__qualname__
    mod = type(e).__module__
    if mod not in ("builtins", "__main__"):
        name = mod + "." + name
    msg = str(e)
    return "%s: %s" % (name, msg) if msg else name


def trace_text(e, skip=0):
    """The traceback of e as Python prints it, without the first `skip`
    frames (the runtime's own)."""
    tb = e.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(e), e, tb)).rstrip("\n")
    except Exception:  # a broken __str__ must not break the report
        return error_text(e)


def where(e):
    """' (at FILE:LINE)' of the innermost frame of e's traceback that is
    code of a file (not the import machinery), or '' (a SyntaxError names
    its place itself)."""
    if isinstance(e, SyntaxError):
        return ""
    try:
        for fr in reversed(traceback.extract_tb(e.__traceback__)):
            if not fr.filename.startswith("<"):
                return " (at %s:%d)" % (fr.filename, fr.lineno)
    except Exception:
        pass
    return ""


# ------------------------------------------------------------------ the zygote

class ControlLog:
    """sys.stdout and sys.stderr of the zygote while it imports: lines become
    LOG frames (id 0) on the control socket, bounded."""

    def __init__(self, level):
        self.level = level
        self.partial = ""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        text = self.partial + s
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            control_log(self.level, line)
        return len(s)

    def flush(self):
        if self.partial:
            control_log(self.level, self.partial)
            self.partial = ""

    def isatty(self):
        return False


class Discard:
    """sys.stdout and sys.stderr of the zygote once it imported: what code
    prints there outside an invocation goes nowhere."""

    def write(self, s):
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


_import_log_sent = 0


def control_log(level, text, meta=None):
    global _import_log_sent
    data = text.encode("utf-8", "surrogateescape")[:LOG_LINE_MAX]
    if _import_log_sent > IMPORT_LOG_MAX:
        return
    _import_log_sent += len(data) + LOG_LINE_COST
    try:
        w.write_all(CONTROL_FD, w.frame(w.LOG, 0, w.json_meta(meta or {"level": level}), data))
    except OSError:
        os._exit(1)


class Zygote:
    def __init__(self, spec):
        self.spec = spec
        self.modules = {}  # handler file -> module
        self.errors = {}  # handler file -> (message, trace)
        self.base_vsz = 0

    def import_all(self):
        sys.stdout, sys.stderr = ControlLog("info"), ControlLog("error")
        me = os.getpid()
        for f in self.spec["modules"]:
            control_log("info", "", {"importing": f})
            name = f[:-3].replace("/", ".")
            try:
                self.modules[f] = importlib.import_module(name)
            except BaseException as e:  # SystemExit and the rest: the module is broken, the zygote is not
                self.errors[f] = (error_text(e) + where(e), trace_text(e))
            if os.getpid() != me:
                os._exit(0)  # a process the module forked came back here: it is not the zygote
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout = sys.stderr = Discard()
        if os.getpid() == 1:
            # pid 1 of the version's own pid namespace: what the modules
            # forked while they were imported goes (its processes would
            # hold the process limit the sandboxes need).
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass

    def ready(self, t0):
        # Objects made so far stay in place: a collection in a sandbox then
        # does not touch (copy) the zygote's pages.
        gc.collect()
        gc.freeze()
        self.base_vsz = statm_vsz()
        meta = {"pid": os.getpid(), "init_us": (time.monotonic_ns() - t0) // 1000,
                "modules": len(self.modules), "failed": sorted(self.errors)}
        w.write_all(CONTROL_FD, w.frame(w.READY, 0, w.json_meta(meta)))

    def serve(self):
        ctl = socket.socket(fileno=CONTROL_FD)
        reader = w.Reader(CONTROL_FD)
        while True:
            try:
                f = reader.next()
            except (OSError, w.ProtocolError):
                f = None
            if f is None:
                os._exit(0)  # tined let the version go: the sandboxes go with this process
            ftype, _, _, _, meta, _ = f
            try:
                blank = ftype == w.INVOKE and json.loads(meta).get("blank") is True
            except (ValueError, AttributeError):
                blank = False
            if not blank:
                reply(ctl, EPROTO, 0, None)
                continue
            self.spawn(ctl)

    def spawn(self, ctl):
        try:
            down_r, down_w = os.pipe()  # tined -> sandbox
            up_r, up_w = os.pipe()  # sandbox -> tined
        except OSError as e:
            reply(ctl, -e.errno, 0, None)
            return
        try:
            pid = os.fork()
        except OSError as e:
            for fd in (down_r, down_w, up_r, up_w):
                os.close(fd)
            reply(ctl, -e.errno, 0, None)
            return
        if pid == 0:
            code = 1
            try:
                os.close(down_w)
                os.close(up_r)
                ctl.detach()
                os.close(CONTROL_FD)
                code = Sandbox(self, down_r, up_w).run()
            except BaseException as e:
                node_log("error", "python sandbox: " + error_text(e), trace=trace_text(e))
            os._exit(code)
        os.close(down_r)
        os.close(up_w)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as e:
            os.kill(pid, signal.SIGKILL)
            os.close(up_r)
            os.close(down_w)
            reply(ctl, -e.errno, 0, None)
            return
        reply(ctl, 0, pid, [up_r, down_w, pidfd])
        for fd in (up_r, down_w, pidfd):
            os.close(fd)


def reply(ctl, status, pid, fds):
    msg = struct.pack("=iii", status, pid, 0)
    try:
        if fds:
            socket.send_fds(ctl, [msg], fds)
        else:
            ctl.sendall(msg)
    except OSError:
        os._exit(1)


def statm_vsz():
    """Virtual size of the zygote in bytes, from the statm file opened for it
    before its root changed (0 when there is none)."""
    try:
        return int(os.pread(STATM_FD, 64, 0).split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ----------------------------------------------------------------- a sandbox

def unescape(s):
    """%XX and '+' of a query string decoded (as the Lua host does)."""
    if "%" not in s and "+" not in s:
        return s
    out = bytearray()
    b = s.encode("utf-8", "surrogateescape")
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c == 0x2B:
            out.append(0x20)
        elif c == 0x25 and i + 2 < n and _hex(b[i + 1]) >= 0 and _hex(b[i + 2]) >= 0:
            out.append(_hex(b[i + 1]) * 16 + _hex(b[i + 2]))
            i += 2
        else:
            out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    return c - 87 if 97 <= c <= 102 else -1


def parse_query(q):
    """The query table of a raw query string: decoded key -> value, the last
    of repeated keys wins, a key without '=' maps to ''."""
    out = {}
    if not q:
        return out
    for part in q.split("&"):
        if not part:
            continue
        k, eq, v = part.partition("=")
        out[unescape(k)] = unescape(v) if eq else ""
    return out


_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def header_name_ok(name):
    try:
        b = name.encode("ascii")
    except UnicodeEncodeError:
        return False
    return len(b) > 0 and all(c in _TOKEN_CHARS for c in b)


class HandlerError(Exception):
    """What the handler returned cannot be a response."""


def dumps(v, who):
    try:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise HandlerError("%s: %s" % (who, e)) from None
    except RecursionError:
        raise HandlerError("%s: nesting too deep" % who) from None


class LogWriter:
    """sys.stdout (level info) and sys.stderr (level error) of a sandbox:
    each line a log line of the running invocation."""

    def __init__(self, box, level):
        self.box = box
        self.level = level
        self.partial = ""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if "\n" not in s:
            self.partial += s
            if len(self.partial) > LOG_LINE_MAX:
                self.flush()
            return len(s)
        lines = (self.partial + s).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.box.log_line(self.level, line)
        return len(s)

    def flush(self):
        if self.partial:
            line, self.partial = self.partial, ""
            self.box.log_line(self.level, line)

    def isatty(self):
        return False

    def fileno(self):
        raise OSError("the sandbox's output is its log: it has no file descriptor")


class Sandbox:
    def __init__(self, zygote, rd, wr):
        self.zygote = zygote
        self.reader = w.Reader(rd)
        self.wr = wr
        self.invocation_id = 0
        self.start_ns = 0
        self.timeout_ms = 0
        self.log_sent = 0
        self.log_held = 0
        self.ctx_base = {}

    def write(self, data):
        w.write_all(self.wr, data)

    def fail_load(self, msg, trace=None):
        meta = {"error": msg}
        if trace:
            meta["trace"] = trace
        self.write(w.frame(w.ERROR, 0, w.json_meta(meta)))
        return 1

    def run(self):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        f = self.reader.next()
        if f is None:
            return 0  # tined let the blank go
        t0 = time.monotonic_ns()
        ftype, _, _, _, meta, _ = f
        try:
            spec = json.loads(meta)
            assert ftype == w.INVOKE and isinstance(spec, dict)
        except (ValueError, AssertionError):
            return self.fail_load("bad sandbox spec from tined")
        self.spec = spec
        err = self.limit(spec) if self.zygote.spec.get("isolated") else ""
        if err:
            return self.fail_load("cannot isolate the sandbox: " + err)
        handler_file = spec.get("handler_file", "")
        export = spec.get("handler_export", "")
        if handler_file in self.zygote.errors:
            msg, trace = self.zygote.errors[handler_file]
            return self.fail_load(msg, trace)
        module = self.zygote.modules.get(handler_file)
        if module is None:
            return self.fail_load("module '%s' was not imported by the version's zygote" % handler_file)
        handler = getattr(module, export, None)
        if not callable(handler):
            return self.fail_load("module '%s' has no function '%s'" % (handler_file, export))
        self.handler = handler
        try:
            env = json.loads(spec.get("env_json") or "{}")
        except ValueError:
            return self.fail_load("bad env: expected a JSON object")
        if not isinstance(env, dict):
            return self.fail_load("bad env: expected a JSON object")
        env = {k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}
        tine._set_env(env)
        os.environ.update(env)
        self.ctx_base = {"app": spec.get("app", ""), "version": spec.get("version", 0),
                         "function": spec.get("function", ""), "timeout_ms": spec.get("timeout_ms", 0),
                         "memory_mb": spec.get("memory_mb", 0)}
        tine._hostcall = self.hostcall
        tine._log_line = self.log_line
        sys.stdout = LogWriter(self, "info")
        sys.stderr = LogWriter(self, "error")
        self.write(w.frame(w.READY, 0, w.json_meta({"pid": os.getpid(),
                                                     "init_us": (time.monotonic_ns() - t0) // 1000})))
        return self.loop()

    def limit(self, spec):
        """The per-fork limits: address space = the zygote's + memory + slack,
        no processes or threads, few descriptors. '' or what failed."""
        try:
            mem = int(spec.get("memory_mb") or 128) * 1024 * 1024
            base = self.zygote.base_vsz
            if base:
                setlimit(resource.RLIMIT_AS, base + mem + AS_SLACK)
            setlimit(resource.RLIMIT_NPROC, 0)
            setlimit(resource.RLIMIT_NOFILE, SANDBOX_NOFILE)
        except (OSError, ValueError) as e:
            return "setrlimit: %s" % e
        return ""

    def loop(self):
        reader = self.reader
        while True:
            try:
                f = reader.next()
            except w.ProtocolError as e:
                node_log("error", "python sandbox: %s" % e)
                return 1
            except MemoryError:
                return 1
            if f is None:
                return 0  # tined let this sandbox go
            ftype, _, _, fid, meta, body = f
            if ftype != w.INVOKE:
                return 1
            self.start_ns = time.monotonic_ns()
            self.invoke(fid, meta, body)

    # -------------------------------------------------------- one invocation

    def remaining_ms(self):
        """Milliseconds left before the invocation's timeout."""
        left = self.timeout_ms - (time.monotonic_ns() - self.start_ns) // 1000000
        return left if left > 0 else 0

    def invoke(self, fid, meta, body):
        cpu0 = time.process_time_ns()
        self.invocation_id = fid
        try:
            try:
                m = w.decode_meta(meta)
                if not isinstance(m, dict):
                    raise w.ProtocolError("not an object")
            except w.ProtocolError as e:
                self.answer_error(fid, "bad invocation metadata: %s (sandbox/meta.h)" % e, None, cpu0)
                return
            try:
                out = self.call(m, body)
            except HandlerError as e:
                self.answer_error(fid, str(e), None, cpu0)
                return
            except BaseException as e:
                self.answer_error(fid, error_text(e), trace_text(e, 2), cpu0)
                return
            self.end_log(fid)
            rmeta, rbody = out
            aux = (time.process_time_ns() - cpu0) // 1000
            self.write(w.frame(w.RESULT, fid, rmeta, rbody, min(aux, 0xFFFFFFFF)))
        finally:
            self.invocation_id = 0

    def answer_error(self, fid, msg, trace, cpu0):
        self.end_log(fid)
        meta = {"error": msg}
        if trace:
            meta["trace"] = trace
        aux = (time.process_time_ns() - cpu0) // 1000
        self.write(w.frame(w.ERROR, fid, w.json_meta(meta), b"", min(aux, 0xFFFFFFFF)))

    def call(self, m, body):
        ctx = dict(self.ctx_base)
        self.timeout_ms = ctx["timeout_ms"]
        c = m.get("ctx")
        if isinstance(c, dict):
            for k, v in c.items():
                if v is not None:
                    ctx[k] = v
            t = c.get("timeout_ms")
            if isinstance(t, int) and 0 <= t <= 0xFFFFFFFF:
                self.timeout_ms = t
        ctx["remaining_ms"] = self.remaining_ms
        kind = m.get("kind", "http")
        if kind == "http":
            q = m.get("query")
            q = q if isinstance(q, str) else ""
            params, headers = m.get("params"), m.get("headers")
            method, path = m.get("method"), m.get("path")
            req = {"method": method if isinstance(method, str) else "GET",
                   "path": path if isinstance(path, str) else "/",
                   "params": params if isinstance(params, dict) else {},
                   "headers": headers if isinstance(headers, dict) else {},
                   "query_string": q, "query": parse_query(q), "body": body}
        elif kind == "event":
            if "event" in m:
                req = m["event"]
            elif m.get("event_in_body") is True:
                try:
                    req = json.loads(body)
                except ValueError as e:
                    raise HandlerError("bad event: %s" % e) from None
            else:
                req = None
        else:
            raise HandlerError("bad invocation kind %r: expected \"http\" or \"event\"" % (kind,))
        return self.response(self.handler(req, ctx))

    def response(self, r):
        """RESULT metadata and body of what the handler returned."""
        if r is None:
            return w.result_meta(204, ()), b""
        if isinstance(r, str):
            return w.result_meta(200, (("content-type", "text/plain; charset=utf-8"),)), \
                r.encode("utf-8", "surrogateescape")
        if isinstance(r, (bytes, bytearray, memoryview)):
            return w.result_meta(200, (("content-type", "application/octet-stream"),)), bytes(r)
        if isinstance(r, (list, tuple)):
            return w.result_meta(200, (("content-type", "application/json"),)), dumps(r, "response")
        if not isinstance(r, dict):
            raise HandlerError("handler returned a %s; expected a dict, list, str, bytes or None" % type(r).__name__)
        if "status" not in r:
            return w.result_meta(200, (("content-type", "application/json"),)), dumps(r, "response")
        st = r["status"]
        if not isinstance(st, int) or isinstance(st, bool) or not 100 <= st <= 599:
            raise HandlerError("bad status %r: expected an integer from 100 to 599" % (st,))
        headers = []
        has_ct = False
        h = r.get("headers")
        if h is not None:
            if not isinstance(h, dict):
                raise HandlerError("bad response headers: expected a dict, got a %s" % type(h).__name__)
            size = 0
            for name, value in h.items():
                if not isinstance(name, str) or not header_name_ok(name):
                    raise HandlerError("bad response header name %r" % (name,))
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise HandlerError("bad response header '%s': expected a str or number, got a %s"
                                       % (name, type(value).__name__))
                if isinstance(value, float):
                    if value != value or value in (float("inf"), float("-inf")):
                        raise HandlerError("bad response header '%s': not a finite number" % name)
                    value = repr(value) if value != int(value) else str(int(value))
                value = str(value)
                if "\r" in value or "\n" in value or "\0" in value:
                    raise HandlerError("bad response header '%s': value contains CR, LF or NUL" % name)
                try:
                    vb = value.encode("utf-8")
                except UnicodeEncodeError:
                    raise HandlerError("bad response header '%s': value is not valid UTF-8" % name) from None
                size += len(name) + len(vb)
                if size > 64 * 1024:
                    raise HandlerError("bad response headers: more than 65536 bytes")
                headers.append((name, vb))
                if name.lower() == "content-type":
                    has_ct = True
        body = r.get("body")
        if body is not None:
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogateescape")
            elif isinstance(body, (bytes, bytearray, memoryview)):
                body = bytes(body)
            else:
                raise HandlerError("bad response body: expected a str or bytes, got a %s" % type(body).__name__)
            return w.result_meta(st, headers), body
        if r.get("json") is not None:
            body = dumps(r["json"], "response json")
            if not has_ct:
                headers.append(("content-type", "application/json"))
            return w.result_meta(st, headers), body
        return w.result_meta(st, headers), b""

    # ------------------------------------------------------------ logs

    def log_line(self, level, text):
        """One log line of the running invocation (stderr of the node when
        none runs), bounded like the Lua host's."""
        if self.invocation_id == 0:
            node_log(level, text[:LOG_LINE_MAX], app=self.ctx_base.get("app", ""),
                     function=self.ctx_base.get("function", ""))
            return
        if self.log_sent >= LOG_SEND_MAX:
            self.log_held += 1
            return
        data = text.encode("utf-8", "surrogateescape")
        if len(data) > LOG_LINE_MAX:
            keep = LOG_LINE_MAX - 3
            while keep > 0 and (data[keep] & 0xC0) == 0x80:
                keep -= 1  # do not split a UTF-8 sequence
            data = data[:keep] + "…".encode()
        self.write(w.frame(w.LOG, self.invocation_id, b'{"level":"error"}' if level == "error"
                           else b'{"level":"info"}', data))
        self.log_sent += len(data) + LOG_LINE_COST

    def end_log(self, fid):
        for s in (sys.stdout, sys.stderr):
            if isinstance(s, LogWriter):
                s.flush()
        if self.log_held:
            self.write(w.frame(w.LOG, fid, w.json_meta({"dropped": self.log_held})))
        self.log_sent = 0
        self.log_held = 0

    # ------------------------------------------------------------ host calls

    def hostcall(self, op, args, body):
        if self.invocation_id == 0:
            raise tine._HostError("host calls are only available while handling an invocation")
        for s in (sys.stdout, sys.stderr):  # lines printed before the call come before its effects
            if isinstance(s, LogWriter):
                s.flush()
        try:
            reply, rbody = w.call(self.reader, self.wr, self.invocation_id, op, args, body)
        except ValueError as e:
            if not isinstance(e, w.ProtocolError):
                raise tine._HostError(str(e)) from None
            node_log("error", "python sandbox: cannot read the host reply: %s" % e)
            os._exit(1)
        except OSError as e:
            node_log("error", "python sandbox: cannot read the host reply: %s" % e)
            os._exit(1)
        return tine._reply(reply, rbody)


def setlimit(res, value):
    """Both limits of `res` to value, or to its hard limit when that is lower."""
    soft, hard = resource.getrlimit(res)
    if hard != resource.RLIM_INFINITY and hard < value:
        value = hard
    resource.setrlimit(res, (value, value))


def main():
    t0 = time.monotonic_ns()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sandboxes are reaped by the kernel
    spec = json.loads(sys.argv[1])
    bundle = sys.argv[2]
    spec["isolated"] = sys.argv[3] == "isolated"
    # After the standard library: a module of the bundle never shadows one
    # the runtime uses.
    sys.path += [bundle, os.path.join(bundle, "vendor")]
    os.chdir(bundle)
    z = Zygote(spec)
    z.import_all()
    z.ready(t0)
    z.serve()


if __name__ == "__main__":
    main()
