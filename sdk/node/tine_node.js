'use strict';
/* A Node sandbox of one app version (docs/sdk-node.md, docs/ARCHITECTURE.md
 * "Node functions").
 *
 * The version's Node host (sandbox/node_host.c) starts this script with
 * node, ahead of need, under the sandbox's isolation layers (its own root,
 * uid, rlimits, no_new_privs, the Node system call filter, namespaces):
 * nothing here runs outside them. Arguments: the bundle's directory as this
 * process sees it, and "isolated" or "not-isolated". Descriptors: 0 and 1
 * /dev/null, 2 the host's watch (copied to tined's log), 3 read from tined,
 * 4 written to tined.
 *
 * It loads the SDK, then waits on fd 3 for its spec (which function,
 * memory, timeout, env), loads the handler's module (import(): CommonJS or
 * ESM), answers READY and serves INVOKE frames one at a time: the protocol
 * of a Lua sandbox (sandbox/lua_host.c), from the same frames
 * (tine_wire.js). */

const path = require('path');
const Module = require('module');
const { pathToFileURL } = require('url');
const util = require('util');

const w = require('./tine_wire.js');
const tine = require('./tine.js');

const RD = 3, WR = 4;
const LOG_LINE_MAX = 16384; // bytes of one log line, "…" included
const LOG_SEND_MAX = 128 * 1024; // log bytes an invocation sends, each line counted LOG_LINE_COST more
const LOG_LINE_COST = 64;
const rt = tine._runtime;

/* One line of tined's log (its JSON shape) on stderr. */
function nodeLog(level, msg, fields) {
  const line = { ts: new Date().toISOString(), level, msg, ...(fields || {}) };
  try {
    require('fs').writeSync(2, JSON.stringify(line) + '\n');
  } catch (e) {
    // nowhere to say it
  }
}

/* 'Name: message' of a thrown value. */
function errorText(e) {
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  try {
    return `uncaught ${util.inspect(e, { depth: 2, breakLength: Infinity })}`;
  } catch (x) {
    return 'uncaught value';
  }
}

/* ' (at FILE:LINE)' of the first frame of e's stack in the bundle, or ''. */
function where(e, bundle) {
  const stack = e instanceof Error && typeof e.stack === 'string' ? e.stack : '';
  for (const l of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?$/.exec(l.trim());
    if (m && m[1].replace('file://', '').startsWith(bundle)) return ` (at ${m[1].replace('file://', '')}:${m[2]})`;
  }
  return '';
}

function traceText(e) {
  return e instanceof Error && typeof e.stack === 'string' ? e.stack : errorText(e);
}

class HandlerError extends Error {}

/* %XX and '+' of a query string decoded (as the Lua host does). */
function unescape(s) {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  const b = Buffer.from(s.replace(/\+/g, ' '), 'utf8');
  const out = [];
  const hex = (c) => (c >= 48 && c <= 57 ? c - 48 : (c | 0x20) >= 97 && (c | 0x20) <= 102 ? (c | 0x20) - 87 : -1);
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x25 && i + 2 < b.length && hex(b[i + 1]) >= 0 && hex(b[i + 2]) >= 0) {
      out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
      i += 2;
    } else {
      out.push(b[i]);
    }
  }
  return Buffer.from(out).toString('utf8');
}

/* The query object of a raw query string: decoded key -> value, the last
 * of repeated keys wins, a key without '=' maps to ''. */
function parseQuery(q) {
  const out = {};
  if (!q) return out;
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) out[unescape(part)] = '';
    else out[unescape(part.slice(0, eq))] = unescape(part.slice(eq + 1));
  }
  return out;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function dumps(v, who) {
  let s;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new HandlerError(`${who}: ${e.message}`);
  }
  if (s === undefined) throw new HandlerError(`${who}: not a JSON value`);
  return Buffer.from(s, 'utf8');
}

const JSON_CT = [['content-type', 'application/json']];

/* RESULT metadata and body of what the handler returned. */
function response(r) {
  if (r === undefined || r === null) return [w.resultMeta(204, []), Buffer.alloc(0)];
  if (typeof r === 'string') return [w.resultMeta(200, [['content-type', 'text/plain; charset=utf-8']]), Buffer.from(r)];
  if (r instanceof Uint8Array)
    return [w.resultMeta(200, [['content-type', 'application/octet-stream']]), Buffer.from(r)];
  if (Array.isArray(r)) return [w.resultMeta(200, JSON_CT), dumps(r, 'response')];
  if (typeof r !== 'object')
    throw new HandlerError(`handler returned a ${typeof r}; expected an object, array, string, Buffer or undefined`);
  if (!('status' in r)) return [w.resultMeta(200, JSON_CT), dumps(r, 'response')];
  const st = r.status;
  if (!Number.isInteger(st) || st < 100 || st > 599)
    throw new HandlerError(`bad status ${util.inspect(st)}: expected an integer from 100 to 599`);
  const headers = [];
  let hasCt = false;
  if (r.headers !== undefined && r.headers !== null) {
    if (typeof r.headers !== 'object' || Array.isArray(r.headers))
      throw new HandlerError(`bad response headers: expected an object, got ${typeof r.headers}`);
    let size = 0;
    for (const [name, value] of Object.entries(r.headers)) {
      if (!HEADER_NAME.test(name)) throw new HandlerError(`bad response header name ${JSON.stringify(name)}`);
      if (typeof value !== 'string' && typeof value !== 'number')
        throw new HandlerError(`bad response header '${name}': expected a string or number, got a ${typeof value}`);
      if (typeof value === 'number' && !Number.isFinite(value))
        throw new HandlerError(`bad response header '${name}': not a finite number`);
      const v = String(value);
      if (/[\r\n\0]/.test(v)) throw new HandlerError(`bad response header '${name}': value contains CR, LF or NUL`);
      const vb = Buffer.from(v, 'utf8');
      size += name.length + vb.length;
      if (size > 64 * 1024) throw new HandlerError('bad response headers: more than 65536 bytes');
      headers.push([name, vb]);
      if (name.toLowerCase() === 'content-type') hasCt = true;
    }
  }
  if (r.body !== undefined && r.body !== null) {
    let body;
    if (typeof r.body === 'string') body = Buffer.from(r.body, 'utf8');
    else if (r.body instanceof Uint8Array) body = Buffer.from(r.body);
    else throw new HandlerError(`bad response body: expected a string or Buffer, got a ${typeof r.body}`);
    return [w.resultMeta(st, headers), body];
  }
  if (r.json !== undefined && r.json !== null) {
    const body = dumps(r.json, 'response json');
    if (!hasCt) headers.push(['content-type', 'application/json']);
    return [w.resultMeta(st, headers), body];
  }
  return [w.resultMeta(st, headers), Buffer.alloc(0)];
}

// ------------------------------------------------------------- the channel

/* The frames of one sandbox (or of an exec program given the host calls):
 * log lines, host calls. */
class Channel {
  constructor(rd, wr) {
    this.reader = new w.Reader(rd);
    this.wr = wr;
    this.invocationId = 0n;
    this.logSent = 0;
    this.logHeld = 0;
    this.names = {};
  }

  write(data) {
    w.writeAll(this.wr, data);
  }

  /* One log line of the running invocation (tined's log when none runs),
   * bounded like the Lua host's. */
  logLine(level, text) {
    if (this.invocationId === 0n) {
      nodeLog(level, text.slice(0, LOG_LINE_MAX), this.names);
      return;
    }
    if (this.logSent >= LOG_SEND_MAX) {
      this.logHeld++;
      return;
    }
    let data = Buffer.from(text, 'utf8');
    if (data.length > LOG_LINE_MAX) {
      let keep = LOG_LINE_MAX - 3;
      while (keep > 0 && (data[keep] & 0xC0) === 0x80) keep--; // do not split a UTF-8 sequence
      data = Buffer.concat([data.subarray(0, keep), Buffer.from('…')]);
    }
    this.write(w.frame(w.LOG, this.invocationId, level === 'error' ? '{"level":"error"}' : '{"level":"info"}', data));
    this.logSent += data.length + LOG_LINE_COST;
  }

  endLog(id) {
    flushStreams();
    if (this.logHeld) this.write(w.frame(w.LOG, id, w.jsonMeta({ dropped: this.logHeld })));
    this.logSent = 0;
    this.logHeld = 0;
  }

  hostcall(op, args, body) {
    if (this.invocationId === 0n)
      throw new rt.HostError('host calls are only available while handling an invocation');
    const meta = { op };
    for (const [k, v] of Object.entries(args)) if (v !== undefined && v !== null) meta[k] = v;
    let m;
    try {
      m = w.encodeMeta(meta); // binary metadata, as tined reads it (sandbox/meta.h)
    } catch (e) {
      throw new rt.HostError(`cannot send the arguments: ${e.message}`);
    }
    if (m.length + body.length > w.MAX_FRAME)
      throw new rt.HostError(`the request of ${m.length + body.length} bytes is over the limit of ${w.MAX_FRAME} bytes`);
    flushStreams(); // lines printed before the call come before its effects
    let f;
    try {
      this.write(w.frame(w.HOSTCALL, this.invocationId, m, body));
      f = this.reader.take(w.HOSTREPLY);
    } catch (e) {
      nodeLog('error', `node sandbox: cannot read the host reply: ${e.message}`);
      process.exit(1);
    }
    if (f.id !== this.invocationId) {
      nodeLog('error', 'node sandbox: a host reply for another invocation');
      process.exit(1);
    }
    let reply;
    try {
      reply = w.decodeMeta(f.meta);
    } catch (e) {
      reply = null;
    }
    if (reply === null || typeof reply !== 'object') throw new rt.HostError('malformed host reply');
    if ('error' in reply) throw new rt.HostError(typeof reply.error === 'string' ? reply.error : 'host call failed');
    return [reply, f.body];
  }
}

// ------------------------------------------------ console and std streams

const partial = { info: '', error: '' };
let channel = null;

function emitLines(level, s) {
  const text = partial[level] + s;
  const lines = text.split('\n');
  partial[level] = lines.pop();
  if (partial[level].length > LOG_LINE_MAX) {
    lines.push(partial[level]);
    partial[level] = '';
  }
  for (const l of lines) channel.logLine(level, l);
}

function flushStreams() {
  if (channel === null) return; // an exec program's: its output is its own
  for (const level of ['info', 'error'])
    if (partial[level]) {
      const l = partial[level];
      partial[level] = '';
      channel.logLine(level, l);
    }
}

/* console.* and process.stdout/stderr become log lines of the running
 * invocation (stdout and console.log/info/debug: info; stderr and
 * console.error/warn/trace: error). */
function captureOutput() {
  const info = (...a) => emitLines('info', util.format(...a) + '\n');
  const error = (...a) => emitLines('error', util.format(...a) + '\n');
  console.log = console.info = console.debug = info;
  console.error = console.warn = error;
  console.trace = (...a) => error(new Error(util.format(...a)).stack.replace(/^Error/, 'Trace'));
  console.dir = (o, opts) => info(util.inspect(o, opts));
  const writer = (level) => function write(chunk, encoding, cb) {
    emitLines(level, typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    if (typeof encoding === 'function') encoding();
    else if (typeof cb === 'function') cb();
    return true;
  };
  process.stdout.write = writer('info');
  process.stderr.write = writer('error');
}

/* The transport of tine.js: this channel. */
function plugTransport(ch) {
  channel = ch;
  rt.transport.hostcall = (op, args, body) => ch.hostcall(op, args, body);
  rt.transport.logLine = (level, text) => ch.logLine(level, text);
}

/* require('tine') from any module finds this SDK. */
function provideSdk() {
  const sdk = require.resolve('./tine.js');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === 'tine' ? sdk : resolve.call(this, request, ...rest);
  };
  globalThis.tine = tine;
}

// ----------------------------------------------------------------- a sandbox

/* The handler's module: require() for CommonJS (cheaper), import() for an
 * ES module (.mjs, or a .js that require() refuses as one). The namespace
 * of a CommonJS module as import() gives it: its exports, and them again
 * as `default`. */
async function loadModule(full) {
  if (!full.endsWith('.mjs')) {
    try {
      const exp = require(full);
      if (Object.prototype.toString.call(exp) === '[object Module]') return exp; // an ES module require() loaded
      return exp !== null && (typeof exp === 'object' || typeof exp === 'function')
        ? { ...exp, default: exp } : { default: exp };
    } catch (e) {
      const esm = e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE' ||
        (e instanceof SyntaxError && /\b(import|export)\b/.test(e.message)));
      if (!esm) throw e;
    }
  }
  return import(pathToFileURL(full).href);
}

/* What a blank does before it waits for its spec, so that a cold start
 * does not pay for it: the ES module loader's start (a first import()),
 * and one pass through a call's code (V8 compiles a function the first
 * time it runs): a request decoded, a handler called, its answers made. */
async function prepare() {
  try {
    await import('data:text/javascript,export default 0');
  } catch (e) {
    // a loader that cannot start here fails the handler's import, with why
  }
  const box = new Sandbox('/');
  box.handler = (req) => (req.query.a ? { ok: true, n: [1, 'two', null] } : 'text');
  box.ctxBase = { app: '', version: 0, function: '', timeout_ms: 1000, memory_mb: 128 };
  const meta = w.encodeMeta({ kind: 'http', method: 'GET', path: '/p', params: { id: '1' }, query: 'a=1&b=x%20y',
    headers: { host: 'h', accept: '*/*' }, ctx: { invocation_id: '00', timeout_ms: 1000 } });
  for (let i = 0; i < 2; i++) {
    const r = response(box.call(w.decodeMeta(meta), Buffer.from('body')));
    w.frame(w.RESULT, 1n, r[0], r[1], cpuUs(process.cpuUsage()));
  }
  response('text');
  response(undefined);
  w.jsonMeta({ pid: process.pid });
}

class Sandbox {
  constructor(bundle) {
    this.bundle = bundle;
    this.ch = new Channel(RD, WR);
    this.ctxBase = {};
    this.timeoutMs = 0;
    this.startNs = 0n;
  }

  failLoad(msg, trace) {
    const meta = { error: msg };
    if (trace) meta.trace = trace;
    this.ch.write(w.frame(w.ERROR, 0, w.jsonMeta(meta)));
    process.exit(1);
  }

  async start() {
    const f = this.ch.reader.next();
    if (f === null) process.exit(0); // tined let the blank go
    const t0 = process.hrtime.bigint();
    let spec;
    try {
      spec = JSON.parse(f.meta.toString('utf8'));
    } catch (e) {
      spec = null;
    }
    if (f.type !== w.INVOKE || spec === null || typeof spec !== 'object') this.failLoad('bad sandbox spec from tined');
    const file = String(spec.handler_file || ''), exp = String(spec.handler_export || '');
    this.ch.names = { app: String(spec.app || ''), function: String(spec.function || '') };
    let env;
    try {
      env = JSON.parse(spec.env_json || '{}');
    } catch (e) {
      env = null;
    }
    if (env === null || typeof env !== 'object' || Array.isArray(env)) this.failLoad('bad env: expected a JSON object');
    const envs = {};
    for (const [k, v] of Object.entries(env)) envs[k] = typeof v === 'string' ? v : JSON.stringify(v);
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, envs);
    rt.setEnv(envs);
    let mod;
    const full = path.join(this.bundle, file);
    try {
      mod = await loadModule(full);
    } catch (e) {
      flushStreams();
      this.failLoad(`${errorText(e)}${where(e, this.bundle)}`, traceText(e));
    }
    flushStreams();
    let handler = mod[exp];
    if (typeof handler !== 'function' && mod.default && typeof mod.default === 'object') handler = mod.default[exp];
    if (typeof handler !== 'function') {
      const names = new Set(Object.keys(mod).filter((k) => typeof mod[k] === 'function'));
      if (mod.default !== null && typeof mod.default === 'object')
        for (const k of Object.keys(mod.default)) if (typeof mod.default[k] === 'function') names.add(k);
      this.failLoad(`module '${file}' exports no function '${exp}'` +
        (names.size ? ` (it exports: ${[...names].sort().join(', ')})` : ' (it exports nothing: use exports.' + exp +
          ' = ... or export function ' + exp + ')'));
    }
    this.handler = handler;
    this.ctxBase = {
      app: spec.app || '', version: spec.version || 0, function: spec.function || '',
      timeout_ms: spec.timeout_ms || 0, memory_mb: spec.memory_mb || 0,
    };
    const initUs = Number((process.hrtime.bigint() - t0) / 1000n);
    this.ch.write(w.frame(w.READY, 0, w.jsonMeta({ pid: process.pid, init_us: initUs })));
    await this.loop();
  }

  async loop() {
    for (;;) {
      let f;
      try {
        f = this.ch.reader.next();
      } catch (e) {
        nodeLog('error', `node sandbox: ${e.message}`);
        process.exit(1);
      }
      if (f === null) process.exit(0); // tined let this sandbox go
      if (f.type !== w.INVOKE) process.exit(1);
      this.startNs = process.hrtime.bigint();
      await this.invoke(f);
    }
  }

  remainingMs() {
    const left = this.timeoutMs - Number((process.hrtime.bigint() - this.startNs) / 1000000n);
    return left > 0 ? left : 0;
  }

  async invoke(f) {
    const cpu0 = process.cpuUsage();
    const id = f.id;
    this.ch.invocationId = id;
    try {
      let m;
      try {
        m = w.decodeMeta(f.meta);
        if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new w.ProtocolError('not an object');
      } catch (e) {
        this.answerError(id, `bad invocation metadata: ${e.message} (sandbox/meta.h)`, null, cpu0);
        return;
      }
      let out;
      try {
        out = this.call(m, f.body);
        if (out !== null && typeof out === 'object' && typeof out.then === 'function') out = await out;
        out = response(out);
      } catch (e) {
        if (e instanceof HandlerError) this.answerError(id, e.message, null, cpu0);
        else this.answerError(id, errorText(e) + where(e, this.bundle), traceText(e), cpu0);
        return;
      }
      this.ch.endLog(id);
      this.ch.write(w.frame(w.RESULT, id, out[0], out[1], cpuUs(cpu0)));
    } finally {
      this.ch.invocationId = 0n;
    }
  }

  answerError(id, msg, trace, cpu0) {
    this.ch.endLog(id);
    const meta = { error: msg };
    if (trace) meta.trace = trace;
    this.ch.write(w.frame(w.ERROR, id, w.jsonMeta(meta), null, cpuUs(cpu0)));
  }

  /* Calls the handler with the request (or event) and ctx; returns what it
   * returned (a promise for an async handler). */
  call(m, body) {
    const ctx = { ...this.ctxBase };
    this.timeoutMs = ctx.timeout_ms;
    const c = m.ctx;
    if (c !== null && typeof c === 'object') {
      for (const [k, v] of Object.entries(c)) if (v !== null && v !== undefined) ctx[k] = v;
      if (Number.isInteger(c.timeout_ms) && c.timeout_ms >= 0) this.timeoutMs = c.timeout_ms;
    }
    ctx.remaining_ms = () => this.remainingMs();
    const kind = m.kind === undefined ? 'http' : m.kind;
    let req;
    if (kind === 'http') {
      const q = typeof m.query === 'string' ? m.query : '';
      const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {});
      req = {
        method: typeof m.method === 'string' ? m.method : 'GET',
        path: typeof m.path === 'string' ? m.path : '/',
        params: obj(m.params), headers: obj(m.headers), query_string: q, query: parseQuery(q),
        body: body.toString('utf8'), rawBody: body,
      };
    } else if (kind === 'event') {
      if ('event' in m) {
        req = m.event;
      } else if (m.event_in_body === true) {
        try {
          req = JSON.parse(body.toString('utf8'));
        } catch (e) {
          throw new HandlerError(`bad event: ${e.message}`);
        }
      } else {
        req = null;
      }
    } else {
      throw new HandlerError(`bad invocation kind ${JSON.stringify(kind)}: expected "http" or "event"`);
    }
    return this.handler(req, ctx);
  }
}

function cpuUs(cpu0) {
  const d = process.cpuUsage(cpu0);
  return Math.min(d.user + d.system, 0xFFFFFFFF);
}

function main() {
  process.on('uncaughtException', (e) => {
    nodeLog('error', `node sandbox: uncaught outside the handler: ${errorText(e)}`, { trace: traceText(e) });
  });
  process.on('unhandledRejection', (e) => {
    nodeLog('error', `node sandbox: unhandled rejection: ${errorText(e)}`, { trace: traceText(e) });
  });
  provideSdk();
  const bundle = path.resolve(process.argv[2] || '.');
  process.chdir(bundle);
  /* The channel is plugged and the output captured before the spec comes:
   * process.stdout and process.stderr are made when first touched, which
   * costs milliseconds a cold start would pay. */
  const box = new Sandbox(bundle);
  plugTransport(box.ch);
  captureOutput();
  prepare().then(() => box.start()).catch((e) => {
    nodeLog('error', `node sandbox: ${errorText(e)}`, { trace: traceText(e) });
    process.exit(1);
  });
}

module.exports = { Channel, plugTransport, captureOutput, provideSdk };

if (require.main === module) main();
