"""The Python end of tests/unit/sandbox/test_python_wire.c: reads frames on
stdin with sdk/python/tine_wire.py and answers each on stdout, so the C test
checks the Python codec against sandbox/wire.c and sandbox/meta.c:

  INVOKE    -> its metadata decoded and encoded again by Python: an INVOKE
               with the same id, aux, flags and body
  RESULT    -> its RESULT metadata (made in C) read by Python: a LOG whose
               JSON metadata is {"status": N, "headers": [[name, value]...]}
  HOSTCALL  -> JSON metadata {"status": N, "headers": [[n, v]...]}: a RESULT
               whose metadata Python writes, with the same body
  ERROR     -> metadata that must be malformed: an ERROR whose JSON metadata
               is {"error": what Python said}
  LOG       -> JSON metadata {"op": op, "args": {...}}: one host call made
               by the SDK's own tine_wire.call (a HOSTCALL frame out, the
               HOSTREPLY the test writes back in), answered by a LOG whose
               JSON metadata is {"reply": {...}, "body": "..."} or
               {"thrown": the SDK's error message}
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["TINE_SOURCE_DIR"], "sdk", "python"))
import json  # noqa: E402

import tine  # noqa: E402
import tine_wire as w  # noqa: E402

r = w.Reader(0)
while True:
    f = r.next()
    if f is None:
        break
    ftype, flags, aux, fid, meta, body = f
    if ftype == w.INVOKE:
        out = w.frame(w.INVOKE, fid, w.encode_meta(w.decode_meta(meta)), body, aux, flags)
    elif ftype == w.RESULT:
        status, headers = w.parse_result_meta(meta)
        out = w.frame(w.LOG, fid, w.json_meta({"status": status, "headers": headers}))
    elif ftype == w.HOSTCALL:
        spec = json.loads(meta)
        out = w.frame(w.RESULT, fid, w.result_meta(spec["status"], [tuple(h) for h in spec["headers"]]), body)
    elif ftype == w.ERROR:
        try:
            w.decode_meta(meta)
            what = "accepted"
        except w.ProtocolError as e:
            what = str(e)
        out = w.frame(w.ERROR, fid, w.json_meta({"error": what}))
    elif ftype == w.LOG:
        spec = json.loads(meta)
        reply, rbody = w.call(r, 1, fid, spec["op"], spec["args"], body)
        try:
            reply, rbody = tine._reply(reply, rbody)
            answer = {"reply": reply, "body": rbody.decode("utf-8", "replace")}
        except tine._HostError as e:
            answer = {"thrown": str(e)}
        out = w.frame(w.LOG, fid, w.json_meta(answer))
    else:
        out = w.frame(w.ERROR, fid, w.json_meta({"error": "unexpected type %d" % ftype}))
    w.write_all(1, out)
