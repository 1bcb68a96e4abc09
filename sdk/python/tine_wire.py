"""The wire protocol between tined and a sandbox, in Python.

The same frames as sandbox/wire.h and the same binary metadata as
sandbox/meta.h (their C code is the format's owner; this is a second reader
and writer of it, tested against the C one by tests/unit/sandbox/
test_python_wire.c). Standard library only.

A frame is a 24-byte header (u32 len, u8 type, u8 flags, u16 reserved,
u32 meta_len, u32 aux, u64 id; host byte order) and `len` payload bytes:
`meta_len` bytes of metadata, then the raw body. INVOKE metadata is one
tagged value (an object); RESULT metadata is u32 status, u32 header count,
then per header u32 name length, name, u32 value length, value. Other
frames carry JSON metadata.
"""

import json
import os
import struct

READY, INVOKE, RESULT, ERROR, LOG, HOSTCALL, HOSTREPLY = 1, 2, 3, 4, 5, 6, 7
FRAME_EXITING = 0x01  # ERROR: the sandbox exits right after this frame

HEADER = struct.Struct("=IBBHIIQ")  # the 24-byte header, host order, no padding
MAX_FRAME = 6 * 1024 * 1024 + 65536  # SBX_WIRE_MAX_FRAME
MAX_DEPTH = 128  # SBX_META_MAX_DEPTH

_U32 = struct.Struct("=I")
_I64 = struct.Struct("=q")
_F64 = struct.Struct("=d")
_TWO_U32 = struct.Struct("=II")

assert HEADER.size == 24


class ProtocolError(ValueError):
    """A frame or its metadata is malformed."""


def frame(ftype, fid, meta=b"", body=b"", aux=0, flags=0):
    """The bytes of one frame. meta and body are bytes-like."""
    n = len(meta) + len(body)
    if n > 0xFFFFFFFF:
        raise ProtocolError("frame of %d bytes is too large" % n)
    return b"".join((HEADER.pack(n, ftype, flags, 0, len(meta), aux & 0xFFFFFFFF, fid), meta, body))


def write_all(fd, data):
    """Writes every byte of data to the blocking fd (short writes and EINTR
    retried). Raises OSError."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def json_meta(obj):
    """Compact JSON metadata for the frames whose metadata is JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")


class Reader:
    """A buffered reader of frames from one blocking fd: all the frames
    waiting in the pipe (pipelined INVOKEs) cost one read."""

    __slots__ = ("fd", "buf", "start")

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.start = 0

    def _fill(self, need):
        """Makes `need` bytes available from start; False at EOF before."""
        buf = self.buf
        while len(buf) - self.start < need:
            if self.start and self.start == len(buf):
                del buf[:]
                self.start = 0
            chunk = os.read(self.fd, max(65536, need - (len(buf) - self.start)))
            if not chunk:
                return False
            buf += chunk
        return True

    def _frame_at(self, rel):
        """The header at start + rel with its whole frame buffered, or None
        at a clean EOF before it. Raises ProtocolError."""
        if not self._fill(rel + 24):
            if len(self.buf) - self.start == rel:
                return None
            raise ProtocolError("end of stream inside a frame header")
        at = self.start + rel
        h = HEADER.unpack_from(self.buf, at)
        length, ftype, meta_len = h[0], h[1], h[4]
        if ftype < READY or ftype > HOSTREPLY or meta_len > length or length > MAX_FRAME:
            raise ProtocolError("bad frame header (type %d, len %d, meta_len %d)" % (ftype, length, meta_len))
        if not self._fill(rel + 24 + length):
            raise ProtocolError("end of stream inside a frame")
        return h

    def next(self):
        """The next frame as (type, flags, aux, id, meta, body) with meta and
        body as bytes, or None at a clean end of stream."""
        h = self._frame_at(0)
        if h is None:
            return None
        at = self.start + 24
        end = at + h[0]
        meta_end = at + h[4]
        buf = self.buf
        out = (h[1], h[2], h[5], h[6], bytes(buf[at:meta_end]), bytes(buf[meta_end:end]))
        self.start = end
        if end == len(buf):
            if len(buf) > 262144:
                self.buf = bytearray()  # one big frame must not pin its memory
            else:
                del buf[:]
            self.start = 0
        return out

    def take(self, want):
        """Takes the first frame of type `want` out of the stream, reading
        as needed; frames before it stay buffered for next(). Raises
        ProtocolError at the end of the stream."""
        rel = 0
        while True:
            h = self._frame_at(rel)
            if h is None:
                raise ProtocolError("end of stream while waiting for frame type %d" % want)
            whole = 24 + h[0]
            if h[1] != want:
                rel += whole
                continue
            at = self.start + rel
            meta_end = at + 24 + h[4]
            out = (h[1], h[2], h[5], h[6], bytes(self.buf[at + 24:meta_end]), bytes(self.buf[meta_end:at + whole]))
            del self.buf[at:at + whole]
            return out

    def buffered(self):
        """True when a whole frame is buffered already (next() will not block)."""
        have = len(self.buf) - self.start
        return have >= 24 and have >= 24 + _U32.unpack_from(self.buf, self.start)[0]


# ---------------------------------------------------------------- metadata

def _text(b):
    # Strings are any bytes on the wire; a Python str keeps bytes that are not
    # UTF-8 as surrogates, so they go back unchanged.
    return b.decode("utf-8", "surrogateescape")


def _decode(buf, p, depth):
    if depth > MAX_DEPTH:
        raise ProtocolError("nesting deeper than %d levels" % MAX_DEPTH)
    try:
        tag = buf[p]
    except IndexError:
        raise ProtocolError("metadata ends where a value was expected (byte %d)" % p) from None
    p += 1
    if tag == 0x53:  # 'S'
        n = _U32.unpack_from(buf, p)[0]
        p += 4
        if p + n > len(buf):
            raise ProtocolError("a string of %d bytes runs past the metadata" % n)
        return _text(buf[p:p + n]), p + n
    if tag == 0x4F or tag == 0x41:  # 'O', 'A'
        n = _U32.unpack_from(buf, p)[0]
        p += 4
        if tag == 0x41:
            out = []
            for _ in range(n):
                v, p = _decode(buf, p, depth + 1)
                out.append(v)
            return out, p
        obj = {}
        for _ in range(n):
            kl = _U32.unpack_from(buf, p)[0]
            p += 4
            if p + kl > len(buf):
                raise ProtocolError("a key of %d bytes runs past the metadata" % kl)
            k = _text(buf[p:p + kl])
            v, p = _decode(buf, p + kl, depth + 1)
            obj[k] = v
        return obj, p
    if tag == 0x49:  # 'I'
        return _I64.unpack_from(buf, p)[0], p + 8
    if tag == 0x44:  # 'D'
        return _F64.unpack_from(buf, p)[0], p + 8
    if tag == 0x4E:  # 'N'
        return None, p
    if tag == 0x54:  # 'T'
        return True, p
    if tag == 0x46:  # 'F'
        return False, p
    raise ProtocolError("unknown tag %r at byte %d" % (chr(tag), p - 1))


def decode_meta(buf):
    """The Python value of binary metadata (bytes): objects as dicts,
    arrays as lists, strings as str (bytes that are not UTF-8 kept as
    surrogates). Raises ProtocolError when it is malformed."""
    try:
        v, p = _decode(buf, 0, 0)
    except struct.error:
        raise ProtocolError("metadata ends inside a length or a number") from None
    if p != len(buf):
        raise ProtocolError("%d bytes after the value" % (len(buf) - p))
    return v


def _encode(v, out, depth):
    if depth > MAX_DEPTH:
        raise ProtocolError("nesting deeper than %d levels" % MAX_DEPTH)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogateescape")
        out += b"S"
        out += _U32.pack(len(b))
        out += b
    elif isinstance(v, (bytes, bytearray)):
        out += b"S"
        out += _U32.pack(len(v))
        out += v
    elif v is None:
        out += b"N"
    elif v is True:
        out += b"T"
    elif v is False:
        out += b"F"
    elif isinstance(v, int):
        out += b"I"
        out += _I64.pack(v)
    elif isinstance(v, float):
        out += b"D"
        out += _F64.pack(v)
    elif isinstance(v, dict):
        out += b"O"
        out += _U32.pack(len(v))
        for k, x in v.items():
            kb = k.encode("utf-8", "surrogateescape")
            out += _U32.pack(len(kb))
            out += kb
            _encode(x, out, depth + 1)
    elif isinstance(v, (list, tuple)):
        out += b"A"
        out += _U32.pack(len(v))
        for x in v:
            _encode(x, out, depth + 1)
    else:
        raise ProtocolError("cannot encode a %s" % type(v).__name__)


def encode_meta(v):
    """The binary metadata of a value (dict, list, str, bytes, int, float,
    bool, None). Raises ProtocolError for other types."""
    out = bytearray()
    _encode(v, out, 0)
    return bytes(out)


def result_meta(status, headers):
    """RESULT metadata: the status and the header pairs [(name, value)],
    names lower-cased here (as the C writer does); names and values are
    str or bytes."""
    parts = [_TWO_U32.pack(status, len(headers))]
    for name, value in headers:
        nb = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        vb = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        nb = nb.lower()
        parts.append(_U32.pack(len(nb)))
        parts.append(nb)
        parts.append(_U32.pack(len(vb)))
        parts.append(vb)
    return b"".join(parts)


def parse_result_meta(buf):
    """(status, [(name, value)]) of RESULT metadata, names and values as
    str. Raises ProtocolError when it is malformed."""
    try:
        status, n = _TWO_U32.unpack_from(buf, 0)
        p = 8
        headers = []
        for _ in range(n):
            nl = _U32.unpack_from(buf, p)[0]
            name = buf[p + 4:p + 4 + nl]
            p += 4 + nl
            vl = _U32.unpack_from(buf, p)[0]
            value = buf[p + 4:p + 4 + vl]
            p += 4 + vl
            if p > len(buf):
                raise ProtocolError("a header runs past the metadata")
            headers.append((_text(name), _text(value)))
    except struct.error:
        raise ProtocolError("RESULT metadata ends inside a length") from None
    if p != len(buf):
        raise ProtocolError("%d bytes after the headers" % (len(buf) - p))
    return status, headers


def call(reader, wr, fid, op, args, body):
    """One host call over the wire: a HOSTCALL frame of invocation `fid`
    whose metadata is the binary object {"op": op, **args} (None members
    left out; body bytes), then the HOSTREPLY taken out of `reader`'s
    stream. Returns (reply, reply body): reply is the reply's binary object
    as a dict, or None when it is not one. Raises ValueError when the
    request is over the frame limit or its arguments cannot be encoded,
    OSError or ProtocolError when the wire fails, and ProtocolError for a
    reply of another invocation."""
    meta = {"op": op}
    for k, v in args.items():
        if v is not None:
            meta[k] = v
    try:
        m = encode_meta(meta)
    except (ProtocolError, TypeError, AttributeError, OverflowError, struct.error) as e:
        raise ValueError("cannot send the arguments: %s" % e) from None
    if len(m) + len(body) > MAX_FRAME:
        raise ValueError("the request of %d bytes is over the limit of %d bytes" % (len(m) + len(body), MAX_FRAME))
    write_all(wr, frame(HOSTCALL, fid, m, body))
    _, _, _, rid, rmeta, rbody = reader.take(HOSTREPLY)
    if rid != fid:
        raise ProtocolError("a host reply for another invocation")
    try:
        reply = decode_meta(rmeta)
    except ProtocolError:
        reply = None
    return (reply if isinstance(reply, dict) else None), rbody
