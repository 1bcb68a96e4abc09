// The console in a real headless Chromium against a real node (run.sh sets
// URL, TOKEN, VIEWER, EXPIRING, ROOT_ID, ARTIFACTS). Prints "ok NAME" or
// "FAIL NAME: why" per check and the page weight figures; exits 1 on any
// failure.
import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';

const { URL: BASE, TOKEN, VIEWER, EXPIRING, ROOT_ID, ARTIFACTS } = process.env;
const CONSOLE = BASE + '/_tine/console/';
let failed = 0;
const ok = (name) => console.log('ok ' + name);
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };
const check = (name, cond, why) => (cond ? ok(name) : bad(name, why));
mkdirSync(ARTIFACTS, { recursive: true });

async function adminApi(method, path, body) {
  const res = await fetch(BASE + '/_tine/v1' + path, {
    method, headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
const errors = []; // console errors and page errors on the way
let expectHttpErrors = false; // a 401/404 the step asks for is logged by Chromium too
let page;

async function newPage(width = 1100, height = 760) {
  const p = await browser.newPage();
  await p.setViewport({ width, height });
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectHttpErrors && /Failed to load resource: the server responded with a status of (401|404)/.test(m.text())) return;
    // the app page asks for a rollout when a stored version is newer than the live one: 404 when it has had none
    if (/status of 404/.test(m.text()) && /\/_tine\/v1\/apps\/[^/]+\/rollout$/.test((m.location() || {}).url || '')) return;
    errors.push(m.text());
  });
  p.on('pageerror', (e) => errors.push('page error: ' + e.message));
  return p;
}

// Saves a screenshot and checks the page's markup for a screen reader:
// every button and field has a name, every chart a text alternative.
async function shot(name, fullPage = true) {
  await page.screenshot({ path: `${ARTIFACTS}/console-${name}.png`, fullPage });
  const problems = await page.evaluate(() => {
    const p = [];
    document.querySelectorAll('button').forEach((b) => { if (!b.textContent.trim() && !b.getAttribute('aria-label')) p.push('a button without a name'); });
    document.querySelectorAll('input, select').forEach((i) => { if (!(i.labels && i.labels.length) && !i.getAttribute('aria-label')) p.push('an unlabelled field ' + i.name); });
    document.querySelectorAll('svg[role=img]').forEach((s) => { if (!s.getAttribute('aria-label') && !s.getAttribute('aria-labelledby')) p.push('a chart without a text alternative'); });
    if (!document.querySelector('main h1')) p.push('no heading');
    return p;
  });
  check(`${name}: names for screen readers`, problems.length === 0, problems.join('; '));
}

async function login(p, key) {
  await p.goto(CONSOLE, { waitUntil: 'domcontentloaded' });
  await p.waitForSelector('#key');
  await p.type('#key', key);
  await Promise.all([p.click('form.login button[type=submit]')]);
}

const text = (sel) => page.$eval(sel, (n) => n.textContent);

// Shows the console's page `hash` and waits until that page has rendered
// (not the one before it).
async function go(hash) {
  await page.goto(CONSOLE + hash);
  await page.waitForFunction((h) => document.querySelector('main').dataset.route === h.slice(1) &&
    document.querySelector('.page[data-ready=all]'), { timeout: 30000 }, hash);
}

try {
  page = await newPage();

  // --- a wrong key, then an expired one: the login with the reason
  expectHttpErrors = true;
  await login(page, 'not-a-key');
  await page.waitForSelector('#login-reason', { timeout: 5000 });
  const reason = await text('#login-reason');
  check('wrong key: the login says why', /key|token|auth/i.test(reason) && !/undefined/.test(reason), reason);
  await shot('login');
  await login(page, EXPIRING);
  await page.waitForSelector('#login-reason', { timeout: 5000 });
  const expired = await text('#login-reason');
  check('expired key: the login says it expired', /expired/i.test(expired), expired);
  expectHttpErrors = false;

  // --- the admin token: the app list, its weight and speed (a fresh page, key in sessionStorage)
  await page.close();
  page = await newPage();
  await page.evaluateOnNewDocument((k) => sessionStorage.setItem('tine.key', k), TOKEN);
  await page.goto(CONSOLE + '#/apps', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.page[data-ready=list], .page[data-ready=all]', { timeout: 10000 });
  await page.waitForSelector('.page[data-ready=all]', { timeout: 60000 });
  const perf = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const mark = (n) => (performance.getEntriesByName(n)[0] || {}).startTime;
    const listAt = mark('tine:apps-list');
    const sum = (list) => list.reduce((s, e) => s + (e.transferSize || 0), 0);
    return {
      interactiveMs: listAt, allMs: mark('tine:apps-all'),
      bytesToList: nav.transferSize + sum(res.filter((e) => e.responseEnd <= listAt)),
      bytesAll: nav.transferSize + sum(res), requests: res.length + 1,
      staticBytes: nav.transferSize + sum(res.filter((e) => e.name.includes('/_tine/console/'))),
    };
  });
  console.log(`page weight: app list interactive after ${perf.interactiveMs.toFixed(0)} ms, ${perf.bytesToList} bytes transferred by then ` +
    `(${perf.staticBytes} of them the console's files); all figures of 100 apps after ${perf.allMs.toFixed(0)} ms, ${perf.bytesAll} bytes in ${perf.requests} requests`);
  check('app list interactive under 500 ms with 100 apps', perf.interactiveMs < 500, `${perf.interactiveMs} ms`);
  check('app list first load under 300 KB', perf.bytesAll < 300 * 1024, `${perf.bytesAll} bytes`);
  const first = await page.evaluate(() => document.querySelector('a[href], button:not([hidden]), input, select, [tabindex]:not([tabindex="-1"])').className);
  check('the skip link comes first in the tab order', first === 'skip', first);
  const rows = await page.$$eval('table.apps tbody tr', (r) => r.length);
  check('102 apps listed', rows === 102, `${rows} rows`);
  const shopRow = await page.$eval('tr[data-app=shop]', (r) => ({
    text: r.textContent, sparks: r.querySelectorAll('svg.spark polyline').length,
  }));
  check('shop: live version 2, sparklines, cost', /v2/.test(shopRow.text) && shopRow.sparks === 2 && /\$0\.\d+/.test(shopRow.text), JSON.stringify(shopRow));
  await shot('apps', false);

  // --- narrow window: nothing wider than the window
  await page.setViewport({ width: 360, height: 740 });
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check('works in a narrow window', widths[0] <= widths[1], `page ${widths[0]} px in a ${widths[1]} px window`);
  await shot('apps-narrow', false);
  await page.setViewport({ width: 1100, height: 760 });

  // --- app page: the wiring and the versions; rollback through the UI
  await go('#/app/shop/overview');
  await page.waitForSelector('svg.wiring');
  const wiring = await page.$$eval('svg.wiring text', (t) => t.map((x) => x.textContent));
  for (const want of ['GET /shop/hi', 'POST /shop/root', 'event order.paid', 'event note.*', 'schedule 0 3 * * *', 'paid', 'root'])
    check(`wiring shows ${want}`, wiring.some((t) => t.startsWith(want)), wiring.join(' | '));
  const wires = await page.$$eval('svg.wiring path.wire', (p) => p.length);
  check('a wire per route and trigger', wires === 7, `${wires} wires`);
  await shot('app');
  await page.click('button[data-version="1"]');
  await page.waitForSelector('dialog.confirm[open]');
  await shot('rollback-confirm');
  const [confirmBtn] = await page.$$('dialog.confirm button.danger');
  await confirmBtn.click();
  await page.waitForFunction(() => /is at version 1/.test((document.querySelector('.status') || {}).textContent || ''), { timeout: 5000 });
  const live = (await adminApi('GET', '/apps/shop')).live;
  check('rollback through the UI: the API says version 1 is live', live === 1, `live ${live}`);
  const liveRow = await page.$eval('tr.is-live', (r) => r.dataset.version);
  check('the page marks version 1 live', liveRow === '1', liveRow);
  const tagCell = await page.$eval('table.versions tr[data-version="2"] td.tags', (t) => t.textContent);
  check('a tag beside its version', tagCell === 'stable', tagCell);

  // --- promote the staged version 3 through the UI
  const rollbackOf3 = await page.$$('table.versions button[data-version="3"][data-action=rollback]');
  check('a newer stored version is offered a promote, not a rollback', rollbackOf3.length === 0, `${rollbackOf3.length}`);
  await page.click('table.versions button[data-version="3"][data-action=promote]');
  await page.waitForSelector('dialog.confirm[open]');
  const promoteQ = await text('dialog.confirm p');
  check('the promote asks first', /Promote version 3 of shop/.test(promoteQ), promoteQ);
  await (await page.$('dialog.confirm button.danger')).click();
  await page.waitForFunction(() => /is at version 3/.test((document.querySelector('.status') || {}).textContent || ''), { timeout: 5000 });
  const promoted = (await adminApi('GET', '/apps/shop')).live;
  check('promote through the UI: the API says version 3 is live', promoted === 3, `live ${promoted}`);

  // --- a rollout: steps, figures, decision, split; pause and abort through the UI
  await go('#/app/roll/overview');
  await page.waitForSelector('section.rollout');
  const ro = await page.evaluate(() => {
    const s = document.querySelector('section.rollout');
    return {
      title: s.querySelector('h2').textContent, steps: [...s.querySelectorAll('ol.steps li')].map((l) => l.textContent),
      current: (s.querySelector('ol.steps li[aria-current=step]') || {}).textContent,
      rows: [...s.querySelectorAll('table.rollout-versions tbody tr')].map((r) => [...r.children].map((c) => c.textContent)),
      decision: s.querySelector('.decision').textContent, split: (document.querySelector('p.split') || {}).textContent,
      splitTag: (document.querySelector('table.versions tr[data-version="2"] .split-tag') || {}).textContent,
    };
  });
  check('the rollout: its version and state', ro.title === 'Rollout of v2 (replacing v1): running', ro.title);
  check('its steps, the current one marked', ro.steps.join(' ') === '50% 100%' && ro.current === '50%', JSON.stringify(ro));
  const api0 = await adminApi('GET', '/apps/roll/rollout');
  const apiRows = api0.versions.map((v) => [`v${v.version}` + (v.version === 2 ? ' (new)' : ''), String(v.requests), String(v.errors)]);
  check('per-version requests and errors as the API says', JSON.stringify(ro.rows.map((r) => r.slice(0, 3))) === JSON.stringify(apiRows) &&
    ro.rows.every((r) => r.length === 5), `${JSON.stringify(ro.rows)} vs ${JSON.stringify(apiRows)}`);
  check('the decision', ro.decision === 'Decision: ' + api0.decision && api0.decision.length > 0, ro.decision);
  check('the split shown', /50% of clients on v2, 50% on v1/.test(ro.split || '') && ro.splitTag === 'split 50%', JSON.stringify(ro));
  await page.click('section.rollout button[data-rollout=pause]');
  await page.waitForSelector('dialog.confirm[open]');
  await (await page.$('dialog.confirm button.danger')).click();
  await page.waitForFunction(() => /is paused/.test((document.querySelector('.status') || {}).textContent || ''), { timeout: 5000 });
  const paused = (await adminApi('GET', '/apps/roll/rollout')).state;
  check('pause through the UI: the API says paused', paused === 'paused', paused);
  check('a paused rollout offers resume', (await page.$$('section.rollout button[data-rollout=resume]')).length === 1, 'no resume button');
  await shot('rollout');
  await page.click('section.rollout button[data-rollout=abort]');
  await page.waitForSelector('dialog.confirm[open]');
  await (await page.$('dialog.confirm button.danger')).click();
  await page.waitForFunction(() => /is aborted/.test((document.querySelector('.status') || {}).textContent || ''), { timeout: 5000 });
  const aborted = await adminApi('GET', '/apps/roll/rollout');
  check('abort through the UI: the API says aborted', aborted.state === 'aborted', aborted.state);
  const after = await page.evaluate(() => ({ reason: (document.querySelector('section.rollout .reason') || {}).textContent,
    buttons: document.querySelectorAll('section.rollout button').length, split: !!document.querySelector('p.split') }));
  const shown = await page.$eval('section.rollout', (x) => x.textContent);
  check('an aborted rollout: its reason, no buttons, no split', shown.includes(aborted.reason) && after.buttons === 0 && !after.split, JSON.stringify([after, aborted.reason]));

  // --- an API error is shown inline
  expectHttpErrors = true;
  await go('#/app/nosuch/overview');
  await page.waitForSelector('.error[role=alert]');
  check('an API error shows inline', /no app named 'nosuch'/.test(await text('.error[role=alert]')), await text('.error[role=alert]'));
  expectHttpErrors = false;

  // --- invocations: timeline bars, logs, escaping
  await go('#/app/shop/invocations');
  await page.waitForSelector('li.act svg.timeline rect.seg-run');
  const acts = await page.$$eval('li.act', (l) => l.length);
  check('invocations listed', acts >= 6, `${acts}`);
  const cold = await page.$$eval('li.act svg.timeline rect.seg-cold', (r) => r.length);
  check('a cold start drawn in a timeline', cold >= 1, `${cold}`);
  const billed = await page.$$eval('li.act svg.timeline rect.seg-billed', (r) => r.length);
  check('billed units drawn', billed >= acts, `${billed} units for ${acts} calls`);
  await page.select('select[name=status]', '5xx');
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => document.querySelector('main').dataset.route.includes('status=5xx') && document.querySelector('.page[data-ready]'));
  const fails = await page.$$eval('li.act .fn', (l) => l.map((x) => x.textContent));
  check('the status filter', fails.some((f) => f.startsWith('fail')) && fails.every((f) => /^(fail|broken) /.test(f)), fails.join(','));
  await go('#/app/shop/invocations?function=hi');
  await page.waitForSelector('li.act');
  await page.click('li.act button.linkish');
  await page.waitForSelector('li.act .actlogs ol.loglines li');
  const logLine = await text('li.act .actlogs ol.loglines li');
  const injected = await page.evaluate(() => ({ xss: window.__xss, img: document.querySelectorAll('.actlogs img, .actlogs script').length }));
  check('a log line with HTML renders as text', logLine.includes('<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'), logLine);
  check('nothing of it runs or becomes an element', injected.xss === undefined && injected.img === 0, JSON.stringify(injected));
  await shot('invocations');

  // --- the call tree of POST /shop/root
  const rootRec = await adminApi('GET', '/activations/' + ROOT_ID);
  await go('#/trace/' + rootRec.trace);
  await page.waitForSelector('ol.waterfall li.wf-row');
  const rowsWf = await page.$$eval('ol.waterfall li.wf-row', (r) => r.map((x) => [x.dataset.depth, x.textContent]));
  check('the waterfall: root, its invoke and its event', rowsWf.length === 3 && rowsWf[0][0] === '0' &&
    rowsWf.filter((r) => r[0] === '1').length === 2, JSON.stringify(rowsWf));
  await shot('trace');

  // --- live log tail: a line within 2 s of its invocation
  await go('#/app/shop/logs');
  await page.waitForFunction(() => /Following/.test(document.querySelector('.status').textContent));
  await new Promise((r) => setTimeout(r, 300)); // the stream subscribes
  const nonce = 'live-' + Date.now();
  const t0 = Date.now();
  await fetch(`${BASE}/shop/hi?n=${nonce}`);
  await page.waitForFunction((n) => [...document.querySelectorAll('ol.tail li')].some((l) => l.textContent.includes(n)), { timeout: 5000 }, nonce);
  const lag = Date.now() - t0;
  console.log(`live log: the line appeared ${lag} ms after the request was sent`);
  check('a live log line within 2 s of its invocation', lag < 2000, `${lag} ms`);
  await shot('logs');

  // --- charts from real data
  await go('#/app/shop/charts');
  await page.waitForSelector('svg.chart polyline.series');
  const series = await page.$$eval('figure.chartbox', (figs) => figs.map((f) => ({
    title: f.querySelector('figcaption').textContent,
    ys: [...f.querySelectorAll('polyline.series')].flatMap((p) => p.getAttribute('points').split(' ').map((xy) => +xy.split(',')[1])),
    bars: f.querySelectorAll('rect.bar').length,
  })));
  const req = series.find((s) => s.title.startsWith('Requests per minute'));
  check('the requests chart has points above zero', req && req.ys.length > 0 && Math.min(...req.ys) < Math.max(...req.ys), JSON.stringify(req));
  const costs = series.find((s) => s.title.startsWith('Cost per day'));
  check('the cost per day chart has a bar', costs && costs.bars >= 1, JSON.stringify(costs));
  await shot('charts');

  // --- nodes: warm and busy sandboxes, the chart from the heartbeat's samples
  await go('#/nodes');
  await page.waitForSelector('table.nodes tbody tr');
  const nodesApi = await adminApi('GET', '/nodes');
  const n0 = nodesApi.nodes[0];
  const nodeRow = await page.$eval(`table.nodes tr[data-node="${n0.node}"]`, (r) => [...r.children].map((c) => c.textContent));
  check('a node with its warm idle, busy and starting sandboxes', nodeRow[2] === 'ready' && +nodeRow[4] >= 1 && /^\d+$/.test(nodeRow[5]) && /^\d+$/.test(nodeRow[6]), JSON.stringify(nodeRow));
  const nodeChart = await page.$$eval('figure.chartbox', (figs) => figs.map((f) => ({
    title: f.querySelector('figcaption').textContent,
    series: [...f.querySelectorAll('polyline.series')].map((p) => [p.dataset.series, p.getAttribute('points').split(' ').length]),
  })));
  const samples = n0.pool_history.t.length;
  const nc = nodeChart.find((c) => c.title.startsWith(`Sandboxes of ${n0.node}, last`));
  check('the sandboxes chart opens with the samples the heartbeat keeps', nc && samples >= 2 && nc.series.length === 3 &&
    nc.series[0][0] === 'warm idle' && nc.series.every(([, n]) => n === samples || n === samples + 1), `${samples} samples; ${JSON.stringify(nodeChart)}`);
  check('the warm idle series rose above zero', Math.max(...n0.pool_history.idle) >= 1, JSON.stringify(n0.pool_history.idle));
  await shot('nodes');

  // --- events: a dead letter replayed
  await go('#/app/shop/events');
  await page.waitForSelector('section.recent');
  const recent = await page.evaluate(() => [...document.querySelectorAll('section.recent .trigger')].map((t) => ({
    trigger: t.dataset.trigger, title: t.querySelector('h3').textContent, dead: t.querySelector('p').textContent,
    rows: [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].map((c) => c.textContent)),
    links: [...t.querySelectorAll('tbody a')].map((a) => a.getAttribute('href')),
  })));
  const byTrig = Object.fromEntries(recent.map((r) => [r.trigger, r]));
  check('a list per trigger', recent.map((r) => r.trigger).join(' ') === 'event/paid event/broken schedule/tick' &&
    recent[0].title === 'event order.paid, note.* → paid', recent.map((r) => r.trigger + ': ' + r.title).join(' | '));
  const paidRows = (byTrig['event/paid'] || { rows: [] }).rows;
  check('the paid trigger: the emitted order.paid and the HTML note, ok, each with its call', paidRows.length === 2 &&
    paidRows.some((r) => r[1] === 'order.paid' && r[4] === 'ok') && byTrig['event/paid'].links.every((h) => /^#\/activation\/[0-9a-f]{32}$/.test(h)), JSON.stringify(byTrig['event/paid']));
  const noteRow = paidRows.find((r) => r[3] === 'n-1') || [];
  const noteInjected = await page.evaluate(() => ({ xss: window.__xss, img: document.querySelectorAll('section.recent img').length }));
  check('an event type holding HTML renders as text', noteRow[1] === 'note.<img src=x onerror="window.__xss=3">' && noteInjected.xss === undefined && noteInjected.img === 0,
    JSON.stringify([noteRow, noteInjected]));
  const broken = byTrig['event/broken'] || { rows: [] };
  check('the failing trigger: dead on its attempt, and its dead letter counted', broken.rows.length === 1 && broken.rows[0][1] === 'order.broken' &&
    broken.rows[0][3] === 'b-1' && /^dead \(attempt 1\): .*<i>broken<\/i>/.test(broken.rows[0][4]) && broken.dead === '1 dead letter', JSON.stringify(broken));
  check('a trigger nothing fired says so', /Nothing fired it lately/.test(((await page.$('[data-trigger="schedule/tick"]')) ? await text('[data-trigger="schedule/tick"]') : '')), 'no text');
  await page.waitForSelector('table.dlq tbody tr');
  const reasonText = await page.$eval('table.dlq tbody tr', (r) => r.textContent);
  check('a dead letter, its reason as text', reasonText.includes('<i>broken</i>'), reasonText);
  await shot('events');
  await page.click('table.dlq tbody tr button');
  await page.waitForSelector('dialog.confirm[open]');
  const [replayBtn] = await page.$$('dialog.confirm button.danger');
  await replayBtn.click();
  await page.waitForFunction(() => /Replayed 1/.test(document.querySelector('.status').textContent), { timeout: 5000 });
  ok('replayed through the UI');
  await page.click('[data-trigger="event/paid"] tbody tr a');
  await page.waitForFunction(() => document.querySelector('main').dataset.route.startsWith('/activation/') && document.querySelector('.page[data-ready=all]'));
  const actTitle = await text('main h1');
  check('the link opens its activation', actTitle.startsWith('shop/paid v') && (await page.$$('dl.activation dd')).length === 7, actTitle);
  await shot('activation');

  // --- a key scoped to one app sees only it, and no rollback
  await page.close();
  page = await newPage();
  await login(page, VIEWER);
  await page.waitForSelector('.page[data-ready]', { timeout: 10000 });
  const seen = await page.$$eval('table.apps tbody tr', (r) => r.map((x) => x.dataset.app));
  check('a key of one app sees only that app', seen.length === 1 && seen[0] === 'app00', seen.join(','));
  check('its role is shown', /viewer/.test(await text('#who')), await text('#who'));
  await go('#/app/app00/overview');
  await page.waitForSelector('table.versions');
  const rollbacks = await page.$$('table.versions button');
  check('a viewer is offered no rollback', rollbacks.length === 0, `${rollbacks.length} buttons`);

  check('no console errors', errors.length === 0, errors.join(' | '));
} catch (e) {
  bad('the browser test ran to its end', e.stack || e.message);
  try { await shot('failure'); } catch (x) { /* no page */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
