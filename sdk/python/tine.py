"""The `tine` module seen by Python functions (`import tine`).

Every outside effect is a host call answered by tined: the function's
sandbox reaches nothing itself. The calls and their answers are the ones of
the Lua SDK (sdk/lua/tine.lua), over the same wire (tine_wire.py); see
docs/sdk-python.md. Standard library only.

The sandbox runtime (tine_zygote.py) plugs in the transport: `_hostcall`,
`_log_line` and the function's env. Outside a sandbox (a unit test of a
handler), host calls raise tine.Error and log lines go to stderr.
"""

import json as _json
import math as _math
import os as _os
import re as _re
import sys as _sys
import time as _time

version = "0.1.0"
now = _time.time  # wall-clock seconds since the epoch


class Error(Exception):
    """A host call failed: the message says which call and why
    ("tine.kv.set: app shop is over its KV quota: ...")."""


class _HostError(Exception):
    """Raised by the transport: the host's message, without the call's name."""


def _no_host(op, args, body):
    raise _HostError("host calls are only available while handling an invocation")


def _stderr_line(level, text):
    _sys.stderr.write("[%s] %s\n" % (level, text))


# The transport, replaced by the sandbox runtime:
#   _hostcall(op, args dict, body bytes) -> (reply meta dict, reply body bytes),
#   raising _HostError(message);
#   _log_line(level, text) sends one log line of the running invocation.
_hostcall = _no_host
_log_line = _stderr_line


def _reply(reply, body):
    """(reply, body) of a host reply, or _HostError with the host's message."""
    if reply is None:
        raise _HostError("malformed host reply")
    if "error" in reply:
        e = reply["error"]
        raise _HostError(e if isinstance(e, str) else "host call failed")
    return reply, body


def _call(name, op, args, body=b""):
    try:
        return _hostcall(op, args, body)
    except _HostError as e:
        raise Error("tine.%s: %s" % (name, e)) from None


def _check(ok, name, message, exc=TypeError):
    if not ok:
        raise exc("tine.%s: %s" % (name, message))


# ------------------------------------------------------------------ tine.log

class _Log:
    """tine.log("a", 1) logs a line at level info (the arguments as print
    shows them, joined by spaces); tine.log.error(...) at level error."""

    __slots__ = ()

    def __call__(self, *args):
        _log_line("info", " ".join(map(str, args)))

    def info(self, *args):
        _log_line("info", " ".join(map(str, args)))

    def error(self, *args):
        _log_line("error", " ".join(map(str, args)))


log = _Log()


# ------------------------------------------------------------------ tine.env

class _Env:
    """The function's env from the manifest, read-only: tine.env["API_URL"],
    tine.env.get("X"), iteration, len, `in`. (os.environ holds it too.)"""

    __slots__ = ("_data",)

    def __init__(self):
        object.__setattr__(self, "_data", {})

    def __getitem__(self, k):
        return self._data[k]

    def get(self, k, default=None):
        return self._data.get(k, default)

    def __contains__(self, k):
        return k in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def values(self):
        return self._data.values()

    def __setitem__(self, k, v):
        raise TypeError("tine.env is read-only (tried to set '%s')" % k)

    def __delitem__(self, k):
        raise TypeError("tine.env is read-only (tried to delete '%s')" % k)

    def __setattr__(self, k, v):
        raise TypeError("tine.env is read-only")

    def __repr__(self):
        return "tine.env(%r)" % (self._data,)


env = _Env()


def _set_env(values):
    """The runtime's: the function's env (a dict of str)."""
    object.__setattr__(env, "_data", dict(values))


# --------------------------------------------------------------- tine.secret

_SECRET_NAME = _re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


def secret(name):
    """The value (str) of one of the app's secrets (tine secrets set APP
    NAME), decrypted by the node; a log line holding it is redacted."""
    _check(isinstance(name, str) and _SECRET_NAME.match(name) is not None, "secret",
           "the name must be 1 to 128 of [A-Za-z0-9_], not starting with a digit")
    _, value = _call("secret", "secret", {"name": name})
    return value.decode("utf-8", "surrogateescape")


# ------------------------------------------------------------------- tine.kv

def _check_key(name, key):
    _check(isinstance(key, str) and key != "", name, "the key must be a non-empty string")


def _ttl_ms(name, ttl):
    if ttl is None:
        return None
    _check(isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0 and ttl == ttl, name,
           "ttl must be a positive number of seconds", ValueError)
    return max(1, int(_math.floor(ttl * 1000 + 0.5)))


def _value_bytes(name, value):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value).encode() if isinstance(value, float) else str(value).encode()
    raise TypeError("tine.%s: the value must be a str, bytes or a number (encode others with json.dumps), got %s"
                    % (name, type(value).__name__))


class _KV:
    """The app's own key space, kept by the node in Redis."""

    __slots__ = ()

    def get(self, key):
        """The stored value as str (bytes that are not UTF-8 kept as
        surrogates, so set() stores them back unchanged), or None."""
        _check_key("kv.get", key)
        meta, value = _call("kv.get", "kv.get", {"key": key})
        return value.decode("utf-8", "surrogateescape") if meta.get("found") else None

    def get_bytes(self, key):
        """The stored value as bytes, or None."""
        _check_key("kv.get_bytes", key)
        meta, value = _call("kv.get_bytes", "kv.get", {"key": key})
        return value if meta.get("found") else None

    def set(self, key, value, ttl=None):
        """Stores value (str, bytes or a number, kept as its text), for ttl
        seconds when given. Returns True."""
        _check_key("kv.set", key)
        body = _value_bytes("kv.set", value)
        args = {"key": key}
        ms = _ttl_ms("kv.set", ttl)
        if ms is not None:
            args["ttl_ms"] = ms
        _call("kv.set", "kv.set", args, body)
        return True

    def delete(self, key):
        """Removes the key. Returns True when it existed. (Lua's kv.del:
        `del` is a Python keyword.)"""
        _check_key("kv.delete", key)
        meta, _ = _call("kv.delete", "kv.del", {"key": key})
        return meta.get("deleted") is True

    def incr(self, key, by=1):
        """Adds `by` (an integer) to the key's number (a missing key counts
        from 0). Returns the new value."""
        _check_key("kv.incr", key)
        _check(isinstance(by, int) and not isinstance(by, bool), "kv.incr", "by must be an integer")
        meta, _ = _call("kv.incr", "kv.incr", {"key": key, "by": by})
        return meta.get("value")

    def keys(self, prefix=""):
        """The app's keys starting with prefix, sorted."""
        _check(isinstance(prefix, str), "kv.keys", "prefix must be a string")
        meta, _ = _call("kv.keys", "kv.keys", {"prefix": prefix})
        return meta.get("keys") or []


kv = _KV()


# ----------------------------------------------------------------- tine.http

_TOKEN = _re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_METHOD = _re.compile(r"^[A-Z]{1,16}$")


class _HTTP:
    __slots__ = ()

    def request(self, url, method="GET", headers=None, body=None, timeout=None):
        """An HTTP request made by the node under the app's allow_outbound.
        Returns {"status": 200, "headers": {name: value}, "body": bytes}."""
        _check(isinstance(url, str) and url != "", "http", "url must be a non-empty string")
        _check(isinstance(method, str) and _METHOD.match(method) is not None, "http",
               "method must be an upper-case word such as GET or POST", ValueError)
        args = {"url": url, "method": method}
        if headers is not None:
            _check(isinstance(headers, dict), "http", "headers must be a dict of name: value")
            for k, v in headers.items():
                _check(isinstance(k, str) and _TOKEN.match(k) is not None, "http", "bad header name %r" % (k,),
                       ValueError)
                _check(isinstance(v, (str, int, float)) and not isinstance(v, bool), "http",
                       "header %s must be a str or a number, got %s" % (k, type(v).__name__))
            args["headers"] = {k: v if isinstance(v, str) else str(v) for k, v in headers.items()}
        if body is None:
            data = b""
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
        else:
            raise TypeError("tine.http: body must be str or bytes, got %s" % type(body).__name__)
        if timeout is not None:
            _check(isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0, "http",
                   "timeout must be a positive number of seconds", ValueError)
            args["timeout_ms"] = int(_math.floor(timeout * 1000 + 0.5))
        meta, rbody = _call("http", "http", args, data)
        return {"status": meta.get("status"), "headers": meta.get("headers") or {}, "body": rbody}


http = _HTTP()


# ------------------------------------------------------- invoke, emit

def _encode(name, what, value):
    try:
        return _json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError("tine.%s: %s: %s" % (name, what, e)) from None


def _check_fn(name, fn):
    _check(isinstance(fn, str) and fn != "", name, "the function name must be a non-empty string")


def invoke(fn, payload=None):
    """Calls function `fn` of this app (the same version) with `payload`
    (anything JSON can carry) as its event, and waits for it. Returns
    (result, info): result is what the callee returned (a dict or list for
    JSON, a str for text, None for no body); info is {"status", "headers",
    "invocation_id"}. Raises tine.Error when the callee raised, timed out or
    could not run."""
    _check_fn("invoke", fn)
    meta, body = _call("invoke", "invoke", {"fn": fn}, _encode("invoke", "payload", payload))
    headers = meta.get("headers")
    if meta.get("json"):
        result = _json.loads(body)
        headers = headers or {"content-type": "application/json"}
    elif body == b"" and meta.get("status") == 204:
        result = None
    else:
        result = body.decode("utf-8", "surrogateescape")
    return result, {"status": meta.get("status"), "headers": headers or {}, "invocation_id": meta.get("invocation_id")}


def invoke_async(fn, payload=None):
    """Starts function `fn` of this app with `payload` and returns its
    invocation id at once."""
    _check_fn("invoke_async", fn)
    meta, _ = _call("invoke_async", "invoke", {"fn": fn, "async": True}, _encode("invoke_async", "payload", payload))
    return meta.get("invocation_id")


def emit(event_type, data=None):
    """Publishes a CloudEvent of `event_type` (source tine://APP/FUNCTION)
    with `data` (anything JSON can carry) into the node's event stream.
    Returns the event's id."""
    _check(isinstance(event_type, str) and event_type != "", "emit", "the event type must be a non-empty string")
    body = _encode("emit", "data", data) if data is not None else b""
    meta, _ = _call("emit", "emit", {"type": event_type}, body)
    return meta.get("id")


# ----------------------------------------------- inside an exec program

def _exec_transport(fds):
    """Host calls of a `runtime: exec` program: the wire on the two
    descriptors of TINE_HOSTCALL_FDS ("240,241"), relayed by its runner as its
    invocation's (every reply carries id 1)."""
    import tine_wire as w
    rd, wr = (int(x) for x in fds.split(","))
    reader = w.Reader(rd)

    def hostcall(op, args, body):
        try:
            reply, rbody = w.call(reader, wr, 1, op, args, body)
        except (ValueError, OSError) as e:
            raise _HostError("the host call channel failed: %s" % e) from None
        return _reply(reply, rbody)

    return hostcall


if _os.environ.get("TINE_HOSTCALL_FDS"):
    _hostcall = _exec_transport(_os.environ["TINE_HOSTCALL_FDS"])
    _set_env(_os.environ)
