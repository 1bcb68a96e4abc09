'use strict';
/* The `tine` module seen by Node functions (`require('tine')`, or the
 * global `tine` in an ES module).
 *
 * Every outside effect is a host call answered by tined: the function's
 * sandbox reaches nothing itself. The calls and their answers are those of
 * the Lua and Python SDKs (sdk/lua/tine.lua, sdk/python/tine.py), over the
 * same wire (tine_wire.js); see docs/sdk-node.md. Host calls are
 * synchronous: a call returns its answer (an async handler may `await` it
 * all the same). Node's own modules only.
 *
 * The sandbox runtime (tine_node.js) plugs in the transport: _hostcall,
 * _logLine and the function's env. Outside a sandbox (a unit test of a
 * handler), host calls throw tine.Error and log lines go to stderr; an exec
 * program that was given the host calls (TINE_HOSTCALL_FDS) gets them
 * through tine_node.js's transport too. */

const util = require('util');

const version = '0.1.0';

/* A host call failed: the message says which call and why
 * ("tine.kv.set: app shop is over its KV quota: ..."). */
class TineError extends Error {}
TineError.prototype.name = 'tine.Error';

/* Thrown by the transport: the host's message, without the call's name. */
class HostError extends Error {}

const transport = {
  hostcall(op, args, body) {
    throw new HostError('host calls are only available while handling an invocation');
  },
  logLine(level, text) {
    process.stderr.write(`[${level}] ${text}\n`);
  },
};

function call(name, op, args, body) {
  try {
    return transport.hostcall(op, args, body === undefined ? Buffer.alloc(0) : body);
  } catch (e) {
    if (e instanceof HostError) throw new TineError(`tine.${name}: ${e.message}`);
    throw e;
  }
}

function check(ok, name, message, Err) {
  if (!ok) throw new (Err || TypeError)(`tine.${name}: ${message}`);
}

// ------------------------------------------------------------------ tine.log

function line(args) {
  return util.format(...args);
}

/* tine.log('a', 1) logs a line at level info (the arguments as console.log
 * shows them); tine.log.error(...) at level error. */
function log(...args) {
  transport.logLine('info', line(args));
}
log.info = (...args) => transport.logLine('info', line(args));
log.error = (...args) => transport.logLine('error', line(args));

// ------------------------------------------------------------------ tine.env

/* The function's env from the manifest, read-only (process.env holds it
 * too). Replaced by the runtime. */
let env = Object.freeze({});

// ------------------------------------------------------------------- tine.kv

function checkKey(name, key) {
  check(typeof key === 'string' && key !== '', name, 'the key must be a non-empty string');
}

function ttlMs(name, ttl) {
  if (ttl === undefined || ttl === null) return undefined;
  check(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl), name, 'ttl must be a positive number of seconds',
    RangeError);
  return Math.max(1, Math.floor(ttl * 1000 + 0.5));
}

function valueBytes(name, value) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (typeof value === 'number' && Number.isFinite(value)) return Buffer.from(String(value));
  throw new TypeError(`tine.${name}: the value must be a string, a Buffer or a number (encode others with ` +
    `JSON.stringify), got ${value === null ? 'null' : typeof value}`);
}

const kv = {
  /* The stored value as a string, or null. */
  get(key) {
    checkKey('kv.get', key);
    const [meta, value] = call('kv.get', 'kv.get', { key });
    return meta.found ? value.toString('utf8') : null;
  },
  /* The stored value as a Buffer, or null. */
  getBuffer(key) {
    checkKey('kv.getBuffer', key);
    const [meta, value] = call('kv.getBuffer', 'kv.get', { key });
    return meta.found ? value : null;
  },
  /* Stores value (a string, Buffer or number, kept as its text), for `ttl`
   * seconds when given ({ttl: 60}, or a number). Returns true. */
  set(key, value, opts) {
    checkKey('kv.set', key);
    const body = valueBytes('kv.set', value);
    const ttl = typeof opts === 'number' ? opts : opts && opts.ttl;
    const args = { key };
    const ms = ttlMs('kv.set', ttl);
    if (ms !== undefined) args.ttl_ms = ms;
    call('kv.set', 'kv.set', args, body);
    return true;
  },
  /* Removes the key. Returns true when it existed. */
  del(key) {
    checkKey('kv.del', key);
    const [meta] = call('kv.del', 'kv.del', { key });
    return meta.deleted === true;
  },
  /* Adds `by` (an integer, default 1) to the key's number (a missing key
   * counts from 0). Returns the new value. */
  incr(key, by) {
    checkKey('kv.incr', key);
    if (by === undefined) by = 1;
    check(Number.isSafeInteger(by), 'kv.incr', 'by must be an integer');
    const [meta] = call('kv.incr', 'kv.incr', { key, by });
    return meta.value;
  },
  /* The app's keys starting with prefix, sorted. */
  keys(prefix) {
    if (prefix === undefined) prefix = '';
    check(typeof prefix === 'string', 'kv.keys', 'prefix must be a string');
    const [meta] = call('kv.keys', 'kv.keys', { prefix });
    return meta.keys || [];
  },
};
kv.delete = kv.del;

// ----------------------------------------------------------------- tine.http

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const METHOD = /^[A-Z]{1,16}$/;

const http = {
  /* An HTTP request made by the node under the app's allow_outbound:
   * tine.http.request(url, {method, headers, body, timeout}). Returns
   * {status, headers, body (a string), buffer (the body's bytes)}. */
  request(url, opts) {
    opts = opts || {};
    check(typeof url === 'string' && url !== '', 'http', 'url must be a non-empty string');
    const method = opts.method === undefined ? 'GET' : opts.method;
    check(typeof method === 'string' && METHOD.test(method), 'http',
      'method must be an upper-case word such as GET or POST', RangeError);
    const args = { url, method };
    if (opts.headers !== undefined && opts.headers !== null) {
      check(typeof opts.headers === 'object', 'http', 'headers must be an object of name: value');
      const h = {};
      for (const [k, v] of Object.entries(opts.headers)) {
        check(TOKEN.test(k), 'http', `bad header name ${JSON.stringify(k)}`, RangeError);
        check(typeof v === 'string' || typeof v === 'number', 'http',
          `header ${k} must be a string or a number, got ${typeof v}`);
        h[k] = String(v);
      }
      args.headers = h;
    }
    let data = Buffer.alloc(0);
    if (opts.body !== undefined && opts.body !== null) {
      check(typeof opts.body === 'string' || opts.body instanceof Uint8Array, 'http',
        `body must be a string or a Buffer, got ${typeof opts.body}`);
      data = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : Buffer.from(opts.body);
    }
    if (opts.timeout !== undefined) {
      check(typeof opts.timeout === 'number' && opts.timeout > 0, 'http',
        'timeout must be a positive number of seconds', RangeError);
      args.timeout_ms = Math.floor(opts.timeout * 1000 + 0.5);
    }
    const [meta, body] = call('http', 'http', args, data);
    return { status: meta.status, headers: meta.headers || {}, body: body.toString('utf8'), buffer: body };
  },
};

// --------------------------------------------------------- invoke, emit

function encodeJson(name, what, value) {
  let s;
  try {
    s = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw new TypeError(`tine.${name}: ${what}: ${e.message}`);
  }
  return Buffer.from(s, 'utf8');
}

function checkFn(name, fn) {
  check(typeof fn === 'string' && fn !== '', name, 'the function name must be a non-empty string');
}

/* Calls function `fn` of this app (the same version) with `payload`
 * (anything JSON can carry) as its event, and waits for it. Returns
 * [result, info]: result is what the callee returned (parsed JSON, a
 * string for text, null for no body); info is {status, headers,
 * invocation_id}. Throws tine.Error when the callee threw, timed out or
 * could not run. */
function invoke(fn, payload) {
  checkFn('invoke', fn);
  const [meta, body] = call('invoke', 'invoke', { fn }, encodeJson('invoke', 'payload', payload));
  let headers = meta.headers;
  let result;
  if (meta.json) {
    result = JSON.parse(body.toString('utf8'));
    headers = headers || { 'content-type': 'application/json' };
  } else if (body.length === 0 && meta.status === 204) {
    result = null;
  } else {
    result = body.toString('utf8');
  }
  return [result, { status: meta.status, headers: headers || {}, invocation_id: meta.invocation_id }];
}

/* Starts function `fn` of this app with `payload` and returns its
 * invocation id at once. */
function invokeAsync(fn, payload) {
  checkFn('invoke_async', fn);
  const [meta] = call('invoke_async', 'invoke', { fn, async: true }, encodeJson('invoke_async', 'payload', payload));
  return meta.invocation_id;
}

/* Publishes a CloudEvent of `type` (source tine://APP/FUNCTION) with
 * `data` (anything JSON can carry) into the node's event stream. Returns
 * the event's id. */
function emit(type, data) {
  check(typeof type === 'string' && type !== '', 'emit', 'the event type must be a non-empty string');
  const body = data === undefined || data === null ? Buffer.alloc(0) : encodeJson('emit', 'data', data);
  const [meta] = call('emit', 'emit', { type }, body);
  return meta.id;
}

const tine = {
  version,
  now: () => Date.now() / 1000,
  Error: TineError,
  log,
  get env() { return env; },
  kv,
  http,
  invoke,
  invoke_async: invokeAsync,
  invokeAsync,
  emit,
};

/* The runtime's: the transport and the env. Not part of the SDK. */
Object.defineProperty(tine, '_runtime', {
  enumerable: false,
  value: {
    HostError,
    transport,
    setEnv(values) { env = Object.freeze({ ...values }); },
  },
});

module.exports = tine;

/* Inside a `runtime: exec` program: host calls over the wire on the two
 * descriptors of TINE_HOSTCALL_FDS ("240,241"), relayed by its runner as its
 * invocation's (every reply carries id 1); tine.env is the environment. */
if (process.env.TINE_HOSTCALL_FDS) {
  const [rd, wr] = process.env.TINE_HOSTCALL_FDS.split(',').map(Number);
  const { Channel } = require('./tine_node.js');
  const ch = new Channel(rd, wr);
  ch.invocationId = 1n;
  transport.hostcall = (op, args, body) => ch.hostcall(op, args, body);
  env = Object.freeze({ ...process.env });
}
