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
 */
const path = require('path');
const w = require(path.join(process.env.TINE_SOURCE_DIR, 'sdk', 'node', 'tine_wire.js'));

const r = new w.Reader(0);
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
  } else {
    out = w.frame(w.ERROR, f.id, w.jsonMeta({ error: `unexpected type ${f.type}` }));
  }
  w.writeAll(1, out);
}
