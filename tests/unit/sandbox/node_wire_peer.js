'use strict';
/* The Node end of tests/unit/sandbox/test_wire_codecs.c, as
 * python_wire_peer.py is the Python one: reads frames on stdin with
 * sdk/node/tine_wire.js and answers each on stdout, so the C test checks
 * the Node codec against sandbox/wire.c and sandbox/meta.c:
 *
 *   INVOKE    -> its metadata decoded and encoded again by Node: an INVOKE
 *                with the same id, aux, flags and body
 *   RESULT    -> its RESULT metadata (made in C) read by Node: a LOG whose
 *                JSON metadata is {"status": N, "headers": [[name, value]...]}
 *   HOSTCALL  -> JSON metadata {"status": N, "headers": [[n, v]...]}: a RESULT
 *                whose metadata Node writes, with the same body
 *   ERROR     -> metadata that must be malformed: an ERROR whose JSON
 *                metadata is {"error": what Node said}
 *   LOG       -> JSON metadata {"op": op, "args": {...}}: one host call made
 *                by the Node sandbox's own Channel (a HOSTCALL frame out, the
 *                HOSTREPLY the test writes back in), answered by a LOG whose
 *                JSON metadata is {"reply": {...}, "body": "..."} or
 *                {"thrown": the SDK's error message}
 */
const path = require('path');
const w = require(path.join(process.env.TINE_SOURCE_DIR, 'sdk', 'node', 'tine_wire.js'));

const { Channel } = require(path.join(process.env.TINE_SOURCE_DIR, 'sdk', 'node', 'tine_node.js'));

const r = new w.Reader(0);
const ch = new Channel(0, 1); // reads only the replies the test sends after each HOSTCALL
for (;;) {
  const f = r.next();
  if (f === null) break;
  let out;
  if (f.type === w.INVOKE) {
    out = w.frame(w.INVOKE, f.id, w.encodeMeta(w.decodeMeta(f.meta, { exact: true })), f.body, f.aux, f.flags);
  } else if (f.type === w.RESULT) {
    const [status, headers] = w.parseResultMeta(f.meta);
    out = w.frame(w.LOG, f.id, w.jsonMeta({ status, headers }));
  } else if (f.type === w.HOSTCALL) {
    const spec = JSON.parse(f.meta.toString('utf8'));
    out = w.frame(w.RESULT, f.id, w.resultMeta(spec.status, spec.headers), f.body);
  } else if (f.type === w.ERROR) {
    let what;
    try {
      w.decodeMeta(f.meta, { exact: true });
      what = 'accepted';
    } catch (e) {
      if (!(e instanceof w.ProtocolError)) throw e;
      what = e.message;
    }
    out = w.frame(w.ERROR, f.id, w.jsonMeta({ error: what }));
  } else if (f.type === w.LOG) {
    const spec = JSON.parse(f.meta.toString('utf8'));
    let answer;
    ch.invocationId = f.id;
    try {
      const [reply, body] = ch.hostcall(spec.op, spec.args, f.body);
      answer = { reply, body: body.toString('utf8') };
    } catch (e) {
      answer = { thrown: e.message };
    }
    ch.invocationId = 0n;
    out = w.frame(w.LOG, f.id, w.jsonMeta(answer));
  } else {
    out = w.frame(w.ERROR, f.id, w.jsonMeta({ error: `unexpected type ${f.type}` }));
  }
  w.writeAll(1, out);
}
