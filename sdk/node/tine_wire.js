'use strict';
/* The wire protocol between tined and a sandbox, in JavaScript.
 *
 * The same frames as sandbox/wire.h and the same binary metadata as
 * sandbox/meta.h (their C code is the format's owner; this is a third
 * reader and writer of it beside sdk/python/tine_wire.py, tested against
 * the C one by tests/unit/sandbox/test_node_wire.c). Node's own modules
 * only.
 *
 * A frame is a 24-byte header (u32 len, u8 type, u8 flags, u16 reserved,
 * u32 meta_len, u32 aux, u64 id; host byte order) and `len` payload bytes:
 * `meta_len` bytes of metadata, then the raw body. INVOKE metadata is one
 * tagged value (an object); RESULT metadata is u32 status, u32 header
 * count, then per header u32 name length, name, u32 value length, value.
 * Other frames carry JSON metadata. */

const fs = require('fs');
const os = require('os');
const { isUtf8 } = require('buffer');

if (os.endianness() !== 'LE')
  throw new Error('tine_wire.js: only little-endian hosts are supported');

const READY = 1, INVOKE = 2, RESULT = 3, ERROR = 4, LOG = 5, HOSTCALL = 6, HOSTREPLY = 7;
const FRAME_EXITING = 0x01; // ERROR: the sandbox exits right after this frame
const HEADER = 24;
const MAX_FRAME = 6 * 1024 * 1024 + 65536; // SBX_WIRE_MAX_FRAME
const MAX_DEPTH = 128; // SBX_META_MAX_DEPTH
const EMPTY = Buffer.alloc(0);

class ProtocolError extends Error {}
ProtocolError.prototype.name = 'ProtocolError';

/* A double whose value is an integer, kept apart from an integer by
 * decodeMeta(buf, {exact: true}) so that it is encoded back as a double. */
class Double {
  constructor(v) { this.value = v; }
}

function bytes(v) {
  if (v === undefined || v === null) return EMPTY;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return Buffer.from(String(v), 'utf8');
}

/* The bytes of one frame; meta and body are Buffers or strings. */
function frame(type, id, meta, body, aux, flags) {
  const m = bytes(meta), b = bytes(body);
  const n = m.length + b.length;
  if (n > 0xFFFFFFFF) throw new ProtocolError(`frame of ${n} bytes is too large`);
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32LE(n, 0);
  h.writeUInt8(type, 4);
  h.writeUInt8(flags || 0, 5);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(m.length, 8);
  h.writeUInt32LE((aux || 0) >>> 0, 12);
  h.writeBigUInt64LE(BigInt(id || 0), 16);
  return Buffer.concat([h, m, b], HEADER + n);
}

/* Writes every byte of data to the blocking fd (short writes retried). */
function writeAll(fd, data) {
  let off = 0;
  while (off < data.length) {
    try {
      off += fs.writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
    }
  }
}

/* Compact JSON metadata for the frames whose metadata is JSON. */
function jsonMeta(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8');
}

/* A buffered reader of frames from one blocking fd: all the frames waiting
 * in the pipe (pipelined INVOKEs) cost one read. */
class Reader {
  constructor(fd) {
    this.fd = fd;
    this.buf = Buffer.allocUnsafe(65536);
    this.start = 0;
    this.end = 0;
  }

  /* Makes `need` bytes available from start; false at EOF before. */
  fill(need) {
    while (this.end - this.start < need) {
      if (this.start === this.end) {
        this.start = this.end = 0;
      }
      if (this.buf.length - this.start < need) { // room for the whole frame
        const nb = Buffer.allocUnsafe(Math.max(need, 65536));
        this.buf.copy(nb, 0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
        this.buf = nb;
      } else if (this.buf.length - this.end < need - (this.end - this.start)) {
        this.buf.copy(this.buf, 0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      let n;
      try {
        n = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
      } catch (e) {
        if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
        if (e.code === 'EOF') return false;
        throw e;
      }
      if (n === 0) return false;
      this.end += n;
    }
    return true;
  }

  /* The header at start + rel with its whole frame buffered, or null at a
   * clean EOF before it. Throws ProtocolError. */
  frameAt(rel) {
    if (!this.fill(rel + HEADER)) {
      if (this.end - this.start === rel) return null;
      throw new ProtocolError('end of stream inside a frame header');
    }
    const at = this.start + rel, b = this.buf;
    const h = {
      len: b.readUInt32LE(at), type: b[at + 4], flags: b[at + 5], metaLen: b.readUInt32LE(at + 8),
      aux: b.readUInt32LE(at + 12), id: b.readBigUInt64LE(at + 16),
    };
    if (h.type < READY || h.type > HOSTREPLY || h.metaLen > h.len || h.len > MAX_FRAME)
      throw new ProtocolError(`bad frame header (type ${h.type}, len ${h.len}, meta_len ${h.metaLen})`);
    if (!this.fill(rel + HEADER + h.len)) throw new ProtocolError('end of stream inside a frame');
    return h;
  }

  /* The next frame as {type, flags, aux, id (a BigInt), meta, body} (meta
   * and body Buffers of their own), or null at a clean end of stream. */
  next() {
    const h = this.frameAt(0);
    if (h === null) return null;
    const at = this.start + HEADER;
    h.meta = Buffer.from(this.buf.subarray(at, at + h.metaLen));
    h.body = Buffer.from(this.buf.subarray(at + h.metaLen, at + h.len));
    this.start = at + h.len;
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > 262144) this.buf = Buffer.allocUnsafe(65536); // one big frame must not pin its memory
    }
    return h;
  }

  /* Takes the first frame of type `want` out of the stream, reading as
   * needed; frames before it stay buffered for next(). Throws
   * ProtocolError at the end of the stream. */
  take(want) {
    let rel = 0;
    for (;;) {
      const h = this.frameAt(rel);
      if (h === null) throw new ProtocolError(`end of stream while waiting for frame type ${want}`);
      const whole = HEADER + h.len;
      if (h.type !== want) {
        rel += whole;
        continue;
      }
      const at = this.start + rel;
      h.meta = Buffer.from(this.buf.subarray(at + HEADER, at + HEADER + h.metaLen));
      h.body = Buffer.from(this.buf.subarray(at + HEADER + h.metaLen, at + whole));
      this.buf.copy(this.buf, at, at + whole, this.end);
      this.end -= whole;
      return h;
    }
  }
}

// ---------------------------------------------------------------- metadata

function text(b) {
  // Strings are any bytes on the wire: those that are not UTF-8 stay a
  // Buffer, so they go back unchanged.
  return isUtf8(b) ? b.toString('utf8') : Buffer.from(b);
}

function u32(buf, p, what) {
  if (p + 4 > buf.length) throw new ProtocolError(`metadata ends inside ${what}`);
  return buf.readUInt32LE(p);
}

function decode(buf, p, depth, exact) {
  if (depth > MAX_DEPTH) throw new ProtocolError(`nesting deeper than ${MAX_DEPTH} levels`);
  if (p >= buf.length) throw new ProtocolError(`metadata ends where a value was expected (byte ${p})`);
  const tag = buf[p++];
  switch (tag) {
  case 0x53: { // 'S'
    const n = u32(buf, p, 'a length');
    p += 4;
    if (p + n > buf.length) throw new ProtocolError(`a string of ${n} bytes runs past the metadata`);
    return [text(buf.subarray(p, p + n)), p + n];
  }
  case 0x41: { // 'A'
    const n = u32(buf, p, 'a length');
    p += 4;
    const out = [];
    for (let i = 0; i < n; i++) {
      const [v, q] = decode(buf, p, depth + 1, exact);
      out.push(v);
      p = q;
    }
    return [out, p];
  }
  case 0x4F: { // 'O'
    const n = u32(buf, p, 'a length');
    p += 4;
    const out = exact ? new Map() : {};
    for (let i = 0; i < n; i++) {
      const kl = u32(buf, p, 'a length');
      p += 4;
      if (p + kl > buf.length) throw new ProtocolError(`a key of ${kl} bytes runs past the metadata`);
      const kb = buf.subarray(p, p + kl);
      const k = exact && !isUtf8(kb) ? Buffer.from(kb) : kb.toString('utf8');
      const [v, q] = decode(buf, p + kl, depth + 1, exact);
      if (exact) out.set(k, v); else out[k] = v;
      p = q;
    }
    return [out, p];
  }
  case 0x49: { // 'I'
    if (p + 8 > buf.length) throw new ProtocolError('metadata ends inside a number');
    const v = buf.readBigInt64LE(p);
    const small = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
    return [small ? Number(v) : v, p + 8];
  }
  case 0x44: { // 'D'
    if (p + 8 > buf.length) throw new ProtocolError('metadata ends inside a number');
    const v = buf.readDoubleLE(p);
    return [exact && Number.isInteger(v) ? new Double(v) : v, p + 8];
  }
  case 0x4E: return [null, p]; // 'N'
  case 0x54: return [true, p]; // 'T'
  case 0x46: return [false, p]; // 'F'
  default:
    throw new ProtocolError(`unknown tag '${String.fromCharCode(tag)}' at byte ${p - 1}`);
  }
}

/* The value of binary metadata (a Buffer): objects as plain objects (Maps
 * with exact, whose keys that are not UTF-8 stay Buffers), arrays, strings (a Buffer for bytes that are not UTF-8),
 * integers as numbers (BigInt beyond 2^53), doubles as numbers (Double
 * for integral ones with exact). Throws ProtocolError when malformed. */
function decodeMeta(buf, opts) {
  const [v, p] = decode(buf, 0, 0, !!(opts && opts.exact));
  if (p !== buf.length) throw new ProtocolError(`${buf.length - p} bytes after the value`);
  return v;
}

class Writer {
  constructor() {
    this.parts = [];
  }
  tag(t) { this.parts.push(Buffer.from([t])); }
  u32(n) {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(n, 0);
    this.parts.push(b);
  }
  raw(b) { this.parts.push(b); }
}

function encode(v, w, depth) {
  if (depth > MAX_DEPTH) throw new ProtocolError(`nesting deeper than ${MAX_DEPTH} levels`);
  if (typeof v === 'string' || Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = bytes(v);
    w.tag(0x53);
    w.u32(b.length);
    w.raw(b);
  } else if (v === null || v === undefined) {
    w.tag(0x4E);
  } else if (v === true) {
    w.tag(0x54);
  } else if (v === false) {
    w.tag(0x46);
  } else if (typeof v === 'bigint') {
    const b = Buffer.allocUnsafe(9);
    b[0] = 0x49;
    b.writeBigInt64LE(v, 1);
    w.raw(b);
  } else if (typeof v === 'number' || v instanceof Double) {
    const x = v instanceof Double ? v.value : v;
    const b = Buffer.allocUnsafe(9);
    if (typeof v === 'number' && Number.isSafeInteger(x) && !Object.is(x, -0)) {
      b[0] = 0x49;
      b.writeBigInt64LE(BigInt(x), 1);
    } else {
      b[0] = 0x44;
      b.writeDoubleLE(x, 1);
    }
    w.raw(b);
  } else if (Array.isArray(v)) {
    w.tag(0x41);
    w.u32(v.length);
    for (const x of v) encode(x, w, depth + 1);
  } else if (v instanceof Map || typeof v === 'object') {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    w.tag(0x4F);
    w.u32(entries.length);
    for (const [k, x] of entries) {
      const kb = Buffer.isBuffer(k) ? k : Buffer.from(String(k), 'utf8');
      w.u32(kb.length);
      w.raw(kb);
      encode(x, w, depth + 1);
    }
  } else {
    throw new ProtocolError(`cannot encode a ${typeof v}`);
  }
}

/* The binary metadata of a value (object, Map, array, string, Buffer,
 * number, BigInt, Double, boolean, null). Throws ProtocolError for others. */
function encodeMeta(v) {
  const w = new Writer();
  encode(v, w, 0);
  return Buffer.concat(w.parts);
}

/* RESULT metadata: the status and the header pairs [[name, value]], names
 * lower-cased here (as the C writer does); names and values are strings or
 * Buffers. */
function resultMeta(status, headers) {
  const parts = [];
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32LE(status >>> 0, 0);
  h.writeUInt32LE(headers.length, 4);
  parts.push(h);
  for (const [name, value] of headers) {
    const nb = Buffer.from(typeof name === 'string' ? name.toLowerCase() : bytes(name).toString('latin1').toLowerCase(),
      'latin1');
    const vb = bytes(value);
    const l = Buffer.allocUnsafe(4);
    l.writeUInt32LE(nb.length, 0);
    const m = Buffer.allocUnsafe(4);
    m.writeUInt32LE(vb.length, 0);
    parts.push(l, nb, m, vb);
  }
  return Buffer.concat(parts);
}

/* [status, [[name, value]]] of RESULT metadata (strings, or Buffers for
 * bytes that are not UTF-8). Throws ProtocolError when malformed. */
function parseResultMeta(buf) {
  const status = u32(buf, 0, 'the status');
  const n = u32(buf, 4, 'the header count');
  let p = 8;
  const headers = [];
  for (let i = 0; i < n; i++) {
    const nl = u32(buf, p, 'a length');
    if (p + 4 + nl > buf.length) throw new ProtocolError('a header runs past the metadata');
    const name = buf.subarray(p + 4, p + 4 + nl);
    p += 4 + nl;
    const vl = u32(buf, p, 'a length');
    if (p + 4 + vl > buf.length) throw new ProtocolError('a header runs past the metadata');
    const value = buf.subarray(p + 4, p + 4 + vl);
    p += 4 + vl;
    headers.push([text(name), text(value)]);
  }
  if (p !== buf.length) throw new ProtocolError(`${buf.length - p} bytes after the headers`);
  return [status, headers];
}

module.exports = {
  READY, INVOKE, RESULT, ERROR, LOG, HOSTCALL, HOSTREPLY, FRAME_EXITING, MAX_FRAME, MAX_DEPTH,
  ProtocolError, Double, Reader, frame, writeAll, jsonMeta, decodeMeta, encodeMeta, resultMeta, parseResultMeta,
};
