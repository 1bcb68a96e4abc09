// Drives tine's /api/v1 with the unmodified `openwhisk` npm client
// (test_openwhisk.sh starts tined and passes what it made in the
// environment). Prints "ok NAME" / "FAIL NAME: detail" lines; exits 1 when
// a check failed.
'use strict'
const openwhisk = require('openwhisk')
const http = require('http')
const fs = require('fs')

const URL = process.env.OW_URL
const NS = process.env.OW_NS
const KEY = process.env.OW_KEY
let failed = 0
const ok = (name) => console.log(`ok   ${name}`)
const fail = (name, detail) => { failed++; console.log(`FAIL ${name}: ${detail}`) }
const check = (name, cond, detail) => cond ? ok(name) : fail(name, detail)
const show = (v) => JSON.stringify(v)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const client = (key, opts) => openwhisk(Object.assign({ apihost: URL, api_key: key }, opts || {}))
const ow = client(KEY)

// The error a call fails with (its statusCode and body), or null.
async function failure (p) {
  try { await p; return null } catch (e) { return e }
}

// Polls fn until it resolves to something pred accepts (billing writes
// records in batches: an activation shows within a few hundred ms).
async function eventually (fn, pred, ms) {
  const until = Date.now() + (ms || 10000)
  let last
  for (;;) {
    try { last = await fn() } catch (e) { last = e }
    if (pred(last)) return last
    if (Date.now() > until) return last
    await sleep(100)
  }
}

// GET or POST over plain HTTP, no client: {status, headers, body}.
function plain (method, path, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(URL + path, { method, headers: headers || {} }, (res) => {
      let data = ''
      res.on('data', (c) => { data += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }))
    })
    req.on('error', reject)
    if (body) req.write(body)
    req.end()
  })
}

const HELLO = 'function main(params)\n  return { greeting = "hello " .. (params.name or "nobody") }\nend\n'
const HELLO2 = 'function main(params)\n  return { greeting = "bonjour " .. (params.name or "nobody"), v = 2 }\nend\n'
const PY_LOGS = [
  'import os',
  'def main(params):',
  '    print("processing", params.get("n"))',
  '    return {"n": params.get("n", 0) * 2, "action": os.environ.get("__OW_ACTION_NAME"),',
  '            "activation": os.environ.get("__OW_ACTIVATION_ID"), "ns": os.environ.get("__OW_NAMESPACE")}',
  ''
].join('\n')

async function main () {
  // Started first, checked last: a blocking invoke of an action running past
  // OpenWhisk's 60 s blocking wait answers 202 with the activation id.
  await ow.actions.create({ name: 'slow', kind: 'python:3', limits: { timeout: 90000 },
    action: 'import time\ndef main(p):\n    time.sleep(63)\n    return {"slept": True}\n' })
  const slowStart = Date.now()
  const slowP = ow.actions.invoke({ name: 'slow', blocking: true }).then((r) => [r, Date.now() - slowStart])

  // namespaces
  const nss = await ow.namespaces.list()
  check('namespaces.list names the key\'s namespace', show(nss) === show([NS]), show(nss))

  // create, get, update, list
  const created = await ow.actions.create({ name: 'hello', action: HELLO, kind: 'lua', params: { name: 'default' } })
  check('actions.create answers the action', created.name === 'hello' && created.exec.kind === 'lua' &&
        created.namespace === NS, show(created))
  const dup = await failure(ow.actions.create({ name: 'hello', action: HELLO, kind: 'lua' }))
  check('create of an existing action without overwrite is 409', dup && dup.statusCode === 409 &&
        dup.error && typeof dup.error.error === 'string' && 'code' in dup.error, show(dup && dup.error))
  let got = await ow.actions.get({ name: 'hello' })
  check('actions.get returns the code', got.exec.code === HELLO && got.parameters[0].key === 'name', show(got))
  const updated = await ow.actions.update({ name: 'hello', action: HELLO2, kind: 'lua' })
  check('actions.update bumps the version', updated.version === '0.0.2', show(updated))
  got = await ow.actions.get({ name: 'hello' })
  check('actions.get returns the updated code', got.exec.code === HELLO2, show(got.exec))
  await ow.actions.create({ name: 'py', action: PY_LOGS, kind: 'python:3' })
  await ow.actions.create({ name: 'third', action: HELLO, kind: 'lua' })
  let list = await ow.actions.list()
  const names = list.map((a) => a.name).sort()
  check('actions.list lists them', show(names) === show(['hello', 'py', 'slow', 'third']), show(names))
  list = await ow.actions.list({ limit: 1, skip: 1 })
  check('actions.list honours limit and skip', list.length === 1, show(list))

  // invoke: blocking, blocking with result, non-blocking
  const act = await ow.actions.invoke({ name: 'hello', blocking: true, params: { name: 'tine' } })
  check('blocking invoke answers the activation', act.activationId && act.activationId.length === 32 &&
        act.response.success === true && act.response.result.greeting === 'bonjour tine' &&
        typeof act.start === 'number' && typeof act.end === 'number' && typeof act.duration === 'number', show(act))
  const ann = {}
  for (const kv of act.annotations) ann[kv.key] = kv.value
  check('the activation carries waitTime, kind and limits', typeof ann.waitTime === 'number' && ann.kind === 'lua' &&
        ann.limits && ann.limits.timeout === 60000 && ann.limits.memory === 256, show(act.annotations))
  const res = await ow.actions.invoke({ name: 'hello', blocking: true, result: true })
  check('blocking invoke with result answers the result (defaults merged)',
        res.greeting === 'bonjour default' && res.v === 2 && Object.keys(res).length === 2, show(res))
  const nb = await ow.actions.invoke({ name: 'py', params: { n: 21 } })
  check('non-blocking invoke answers an activation id', typeof nb.activationId === 'string' &&
        nb.activationId.length === 32 && nb.response === undefined, show(nb))
  const fetched = await eventually(() => ow.activations.get({ name: nb.activationId }),
    (a) => a && a.logs && a.logs.length > 0)
  check('activations.get returns the result and logs', fetched && fetched.response && fetched.response.result &&
        fetched.response.result.n === 42 && fetched.name === 'py', show(fetched))
  check('__OW_ variables reach the action', fetched && fetched.response && fetched.response.result &&
        fetched.response.result.action === `/${NS}/py` && fetched.response.result.ns === NS &&
        fetched.response.result.activation === nb.activationId, show(fetched && fetched.response))
  const logs = await ow.activations.logs({ name: nb.activationId })
  check('activations.logs returns the action\'s output', logs.logs && logs.logs.length >= 1 &&
        /^\d{4}-\d\d-\d\dT.* stdout: processing 21/.test(logs.logs[0]), show(logs))
  const result = await ow.activations.result({ name: nb.activationId })
  check('activations.result returns the response', result.success === true && result.result.n === 42,
    show(result))
  const acts = await eventually(() => ow.activations.list({ name: 'hello', limit: 10 }),
    (l) => Array.isArray(l) && l.length >= 2)
  check('activations.list filters by name', Array.isArray(acts) && acts.length === 2 &&
        acts.every((a) => a.name === 'hello'), show(acts))
  const one = await ow.activations.list({ limit: 1, skip: 1 })
  check('activations.list honours limit and skip', Array.isArray(one) && one.length === 1, show(one))
  const future = await ow.activations.list({ since: Date.now() + 60000 })
  check('activations.list honours since', Array.isArray(future) && future.length === 0, show(future))

  // a zip action (python: __main__.py importing a module of the zip)
  const zip = fs.readFileSync(process.env.OW_ZIP_GOOD)
  await ow.actions.create({ name: 'zipped', action: zip, kind: 'python:3' })
  const zres = await ow.actions.invoke({ name: 'zipped', blocking: true, result: true, params: { x: 'y' } })
  check('a zip action runs with its modules', zres.helped === 'y!', show(zres))

  // blackbox: an exec program gets the parameters as its argument
  await ow.actions.create({ name: 'bb', kind: 'blackbox', action: '#!/bin/sh\necho "working on $1"\necho "{\\"args\\": $1}"\n' })
  const bbAct = await ow.actions.invoke({ name: 'bb', blocking: true, params: { a: 1 } })
  check('a blackbox action answers its last line', bbAct.response.result.args.a === 1, show(bbAct))
  const bbLogs = await eventually(() => ow.activations.logs({ name: bbAct.activationId }),
    (l) => l && l.logs && l.logs.length > 0)
  check('... and logs the lines before it', bbLogs.logs && /working on \{"a":1\}/.test(bbLogs.logs[0]), show(bbLogs))
  const image = await failure(ow.actions.create({ name: 'img', action: { exec: { kind: 'blackbox', image: 'alpine:3' } } }))
  check('a docker image is 400', image && image.statusCode === 400 && /docker images/.test(image.error.error),
    show(image && image.error))

  // an action that fails: application error, developer error
  await ow.actions.create({ name: 'app-error', action: 'function main(p) return { error = "no luck" } end', kind: 'lua' })
  const ae = await failure(ow.actions.invoke({ name: 'app-error', blocking: true }))
  check('an application error is 502 with the activation', ae && ae.statusCode === 502 &&
        ae.error.response.status === 'application error' && ae.error.response.result.error === 'no luck',
  show(ae && ae.error))
  await ow.actions.create({ name: 'raises', action: 'function main(p) error("boom") end', kind: 'lua' })
  const de = await failure(ow.actions.invoke({ name: 'raises', blocking: true }))
  check('an action that raises is an action developer error', de && de.statusCode === 502 &&
        de.error.response.status === 'action developer error' && de.error.response.success === false,
  show(de && de.error))

  // trigger + rule
  await ow.actions.create({ name: 'on-event', action: 'function main(p) return { got = p.color, from = p.src } end', kind: 'lua' })
  await ow.triggers.create({ name: 'paint', trigger: { parameters: [{ key: 'src', value: 'trigger' }] } })
  await ow.rules.create({ name: 'paint-rule', action: 'on-event', trigger: 'paint' })
  const fired = await ow.triggers.invoke({ name: 'paint', params: { color: 'blue' } })
  check('firing a trigger answers its activation id', fired && typeof fired.activationId === 'string', show(fired))
  const ruled = await eventually(() => ow.activations.list({ name: 'on-event', docs: true }),
    (l) => Array.isArray(l) && l.length === 1 && l[0].response && l[0].response.result)
  check('the rule ran the action with the trigger\'s payload', Array.isArray(ruled) && ruled.length === 1 &&
        ruled[0].response.result.got === 'blue' && ruled[0].response.result.from === 'trigger', show(ruled))
  const tact = await ow.activations.get({ name: fired.activationId })
  check('the trigger\'s activation names the rule\'s action', tact.logs.length === 1 &&
        JSON.parse(tact.logs[0]).action === 'on-event', show(tact))
  await ow.rules.disable({ name: 'paint-rule' })
  const rule = await ow.rules.get({ name: 'paint-rule' })
  check('rules.disable makes the rule inactive', rule.status === 'inactive', show(rule))
  const quiet = await failure(ow.triggers.invoke({ name: 'paint', params: { color: 'red' } }))
  check('firing a trigger whose rule is disabled runs nothing', quiet === null, show(quiet))
  await sleep(400)
  const still = await ow.activations.list({ name: 'on-event' })
  check('... and the action ran once only', still.length === 1, show(still))
  await ow.rules.enable({ name: 'paint-rule' })
  check('rules.enable makes it active again', (await ow.rules.get({ name: 'paint-rule' })).status === 'active', '')

  // a sequence of three actions
  await ow.actions.create({ name: 'inc', action: 'function main(p) return { n = (p.n or 0) + 1 } end', kind: 'lua' })
  await ow.actions.create({ name: 'dbl', action: 'def main(p):\n    return {"n": p["n"] * 2}\n', kind: 'python:3' })
  await ow.actions.create({ name: 'add10', action: 'function main(p) return { n = p.n + 10 } end', kind: 'lua' })
  await ow.actions.create({ name: 'chain', sequence: [`/${NS}/inc`, `/${NS}/dbl`, `/${NS}/add10`] })
  const seq = await ow.actions.invoke({ name: 'chain', blocking: true, params: { n: 4 } })
  check('a sequence of three actions passes results along', seq.response.result.n === 20 &&
        seq.logs.length === 3, show(seq))
  const nested = await failure(ow.actions.create({ name: 'nested', sequence: [`/${NS}/chain`, `/${NS}/inc`] }))
  check('a sequence of a sequence is 400', nested && nested.statusCode === 400 && /sequence itself/.test(nested.error.error),
    show(nested && nested.error))
  const stranger = await failure(ow.actions.create({ name: 'stranger', sequence: ['/other/inc'] }))
  check('a component of another namespace is 400', stranger && stranger.statusCode === 400, show(stranger && stranger.error))

  // a web action over plain HTTP
  await ow.actions.create({
    name: 'page',
    action: 'function main(p)\n  return { statusCode = 201, headers = { ["x-made-by"] = "tine" }, body = "<p>" .. p.__ow_method .. " " .. p.__ow_path .. " " .. (p.who or "") .. "</p>" }\nend\n',
    kind: 'lua',
    annotations: { 'web-export': true }
  })
  const page = await plain('GET', `/api/v1/web/${NS}/default/page.http/a/b?who=you`)
  check('a web action answers statusCode, headers and body', page.status === 201 &&
        page.headers['x-made-by'] === 'tine' && page.body === '<p>get /a/b you</p>', show(page))
  const wj = await plain('POST', `/api/v1/web/${NS}/default/page.json`, '{"who":"json"}', { 'content-type': 'application/json' })
  check('a web action\'s .json answers its result', wj.status === 200 && JSON.parse(wj.body).statusCode === 201 &&
        JSON.parse(wj.body).body === '<p>post  json</p>', show(wj))
  const nw = await plain('GET', `/api/v1/web/${NS}/default/hello.json`)
  check('an action without web-export is not served on /web', nw.status === 404 &&
        typeof JSON.parse(nw.body).error === 'string', show(nw))

  // bad input
  const badKind = await failure(ow.actions.create({ name: 'bad', action: 'x', kind: 'cobol:85' }))
  check('an unknown kind is 400', badKind && badKind.statusCode === 400 && /kind 'cobol:85'/.test(badKind.error.error),
    show(badKind && badKind.error))
  // nodejs: on tine's Node runtime, with the action's defaults merged.
  const node = await failure(ow.actions.create({ name: 'js', action: 'function main(p) { return { hi: p.who, from: p.from } }',
    kind: 'nodejs:20', params: { from: 'defaults' } }))
  check('a nodejs action is created', node === null, show(node && node.error))
  if (node === null) {
    const js = await ow.actions.invoke({ name: 'js', blocking: true, result: true, params: { who: 'node' } })
    check('a nodejs action runs on tine\'s Node runtime', js.hi === 'node' && js.from === 'defaults', show(js))
    await ow.actions.delete({ name: 'js' })
  }
  const badZip = await failure(ow.actions.create({ name: 'evil', action: fs.readFileSync(process.env.OW_ZIP_EVIL), kind: 'python:3' }))
  check('a zip with a ../ path is 400 naming the entry', badZip && badZip.statusCode === 400 &&
        /\.\./.test(badZip.error.error), show(badZip && badZip.error))
  const absZip = await failure(ow.actions.create({ name: 'evil', action: fs.readFileSync(process.env.OW_ZIP_ABS), kind: 'python:3' }))
  check('a zip with an absolute path is 400', absZip && absZip.statusCode === 400 &&
        /absolute/.test(absZip.error.error), show(absZip && absZip.error))
  const badLua = await failure(ow.actions.create({ name: 'evil', action: 'function main( return end', kind: 'lua' }))
  check('code that does not compile is 400', badLua && badLua.statusCode === 400, show(badLua && badLua.error))
  const evil = await failure(ow.actions.get({ name: 'evil' }))
  check('nothing of the refused actions was created', evil && evil.statusCode === 404, show(evil && evil.error))
  const missing = await failure(ow.actions.invoke({ name: 'nope', blocking: true }))
  check('invoking a missing action is 404', missing && missing.statusCode === 404 &&
        typeof missing.error.error === 'string' && typeof missing.error.code === 'string', show(missing && missing.error))
  const malformed = await plain('PUT', `/api/v1/namespaces/_/actions/m`, '{"exec": ', {
    authorization: 'Basic ' + Buffer.from(KEY).toString('base64'), 'content-type': 'application/json'
  })
  check('a malformed body is 400', malformed.status === 400 && /malformed/.test(JSON.parse(malformed.body).error),
    show(malformed))

  // auth
  const wrong = await failure(client(KEY.slice(0, -4) + '0000').actions.list())
  check('a wrong secret is 401', wrong && wrong.statusCode === 401 && typeof wrong.error.error === 'string',
    show(wrong && wrong.error))
  const none = await plain('GET', '/api/v1/namespaces/_/actions')
  check('no credentials is 401', none.status === 401 && /authentication/.test(JSON.parse(none.body).error), show(none))
  const viewer = client(process.env.OW_VIEWER_KEY)
  check('a viewer key lists actions', (await viewer.actions.list()).length > 0, '')
  const ro = await failure(viewer.actions.create({ name: 'x', action: HELLO, kind: 'lua' }))
  check('a viewer key may not create actions (403)', ro && ro.statusCode === 403 &&
        /apps.deploy/.test(ro.error.error), show(ro && ro.error))
  const other = await failure(client(process.env.OW_OTHER_KEY).actions.list({ namespace: NS }))
  check('a key of another namespace is refused (403)', other && other.statusCode === 403, show(other && other.error))

  // delete
  const deleted = await ow.actions.delete({ name: 'third' })
  check('actions.delete answers the action', deleted.name === 'third', show(deleted))
  const gone = await failure(ow.actions.get({ name: 'third' }))
  check('a deleted action is 404', gone && gone.statusCode === 404, show(gone && gone.error))
  const inUse = await failure(ow.actions.delete({ name: 'on-event' }))
  check('an action a rule names is not deleted (409)', inUse && inUse.statusCode === 409, show(inUse && inUse.error))

  const [slow, waited] = await slowP
  check('a blocking invoke still running after 60 s answers 202 with its activation id',
    slow && typeof slow.activationId === 'string' && slow.response === undefined && waited >= 59000 && waited < 63000,
    show(slow) + ` after ${waited} ms`)
  const slowAct = await eventually(() => ow.activations.get({ name: slow.activationId }),
    (a) => a && a.response && a.response.result && a.response.result.slept, 15000)
  check('... and runs on to its result', slowAct && slowAct.response && slowAct.response.success === true &&
        slowAct.duration >= 60000, show(slowAct))

  process.exit(failed ? 1 : 0)
}

main().catch((e) => { console.log(`FAIL unexpected: ${e.stack || e} ${show(e.error)}`); process.exit(1) })
