// The console's pages. Each renders into `view` and may return a cleanup.
import { api, follow, pool, ApiError, AuthError } from './api.js';
import { el, clear, errorBox, fmtMs, fmtTime, today } from './dom.js';
import { sparkline, lineChart, barChart, timeline, waterfall } from './charts.js';
import { wiring } from './wiring.js';

const HOUR = 3600000;
const enc = encodeURIComponent;

// A value shown when a key may not read it (403) or the node keeps no
// records (503): a dash with the reason as its title.
function unavailable(e) {
  if (e instanceof AuthError) throw e;
  return el('span', { class: 'muted', title: e.message }, '—');
}

function tabs(app, active) {
  const items = [['overview', 'App'], ['invocations', 'Invocations'], ['logs', 'Live logs'], ['charts', 'Charts'], ['events', 'Events']];
  return el('nav', { class: 'tabs', 'aria-label': 'App ' + app },
    items.map(([k, label]) => el('a', { href: `#/app/${enc(app)}/${k}`, 'aria-current': k === active ? 'page' : null }, label)));
}

function heading(app, active, title) {
  return [el('p', { class: 'crumbs' }, el('a', { href: '#/apps' }, 'Apps'), ' / ', app), el('h1', {}, title), tabs(app, active)];
}

// Counts per 5-minute bin over the last hour: [calls], [errors].
function hourBins(acts, now) {
  const calls = new Array(12).fill(0), errors = new Array(12).fill(0);
  for (const a of acts) {
    const i = 11 - Math.floor((now - a.start_ms) / 300000);
    if (i < 0 || i > 11) continue;
    calls[i]++;
    if (a.status >= 500 || a.outcome !== 'ok') errors[i]++;
  }
  return [calls, errors];
}

// ---------------------------------------------------------------- apps

async function appsPage(view) {
  view.append(el('h1', {}, 'Apps'));
  const { apps } = await api('GET', '/apps');
  if (!apps.length) {
    view.append(el('p', {}, 'No apps this key may see (deploy one with tine deploy).'));
    view.dataset.ready = 'all';
    return;
  }
  const tbody = el('tbody');
  const table = el('table', { class: 'apps', 'aria-label': 'Apps' },
    el('thead', {}, el('tr', {}, ['App', 'Namespace', 'Live', 'Invocations (1 h)', 'Errors (1 h)', 'Cost today'].map((h) => el('th', { scope: 'col' }, h)))),
    tbody);
  const rows = apps.map((a) => {
    const inv = el('td', { class: 'spark-cell' }, el('span', { class: 'muted' }, '…'));
    const err = el('td', { class: 'spark-cell' }, el('span', { class: 'muted' }, '…'));
    const cost = el('td', { class: 'num' }, el('span', { class: 'muted' }, '…'));
    tbody.append(el('tr', { 'data-app': a.app },
      el('th', { scope: 'row' }, el('a', { href: `#/app/${enc(a.app)}/overview` }, a.app)),
      el('td', {}, a.namespace), el('td', { class: 'num' }, 'v' + a.live), inv, err, cost));
    return { a, inv, err, cost };
  });
  view.append(el('div', { class: 'scroll' }, table));
  view.dataset.ready = 'list';
  performance.mark('tine:apps-list');
  // The figures come after the list is usable, a few apps at a time.
  const now = Date.now(), day = today();
  await pool(rows, 4, async ({ a, inv, err, cost }) => {
    try {
      const r = await api('GET', `/apps/${enc(a.app)}/activations?since=1h&limit=2000`);
      const [calls, errors] = hourBins(r.activations, now);
      clear(inv).append(sparkline(calls, `${a.app} invocations per 5 minutes`), ` ${calls.reduce((x, y) => x + y, 0)}`);
      clear(err).append(sparkline(errors, `${a.app} errors per 5 minutes`, 'bad'), ` ${errors.reduce((x, y) => x + y, 0)}`);
    } catch (e) {
      clear(inv).append(unavailable(e));
      clear(err).append(unavailable(e));
    }
    try {
      const u = await api('GET', `/usage?app=${enc(a.app)}&from=${day}&to=${day}`);
      clear(cost).append('$' + u.total.cost);
    } catch (e) {
      clear(cost).append(unavailable(e));
    }
  });
  view.dataset.ready = 'all';
  performance.mark('tine:apps-all');
}

// ---------------------------------------------------------------- app page

// Whether the key holds permission p (GET /whoami); what it may not do is
// not offered.
const may = (me, p) => !me || !me.permissions || me.permissions.includes(p);

function confirmDialog(question, yes) {
  return new Promise((resolve) => {
    const dlg = el('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-q' },
      el('p', { id: 'confirm-q' }, question),
      el('div', { class: 'buttons' },
        el('button', { type: 'button', class: 'danger', onclick: () => { dlg.close(); resolve(true); } }, yes),
        el('button', { type: 'button', onclick: () => { dlg.close(); resolve(false); } }, 'Cancel')));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

async function deployers(app, me) {
  // Who deployed which version: the audit log, when the key may read it.
  if (!may(me, 'audit.read')) return null;
  const by = new Map();
  try {
    const r = await api('GET', '/audit?limit=1000');
    for (const e of r.entries || []) {
      if (e.action !== 'deploy' || e.target !== app || e.outcome !== 'ok') continue;
      try {
        const d = JSON.parse(e.detail || '{}');
        if (d.version) by.set(d.version, e.key_name || e.key || 'admin token');
      } catch (x) { /* not JSON */ }
    }
  } catch (e) {
    if (e instanceof AuthError) throw e;
    return null;
  }
  return by;
}

// A step of the app's release (rollback, promote, rollout control) behind
// a confirmation; then the page again with `done(answer)` in its status.
async function releaseAction(view, app, params, me, status, question, yes, method, path, body, done) {
  if (!(await confirmDialog(question, yes))) return;
  try {
    const r = await api(method, path, body);
    clear(view);
    await overviewPage(view, app, params, me);
    view.querySelector('.status').textContent = done(r);
  } catch (e) {
    if (e instanceof AuthError) throw e;
    status.replaceChildren(errorBox(e));
  }
}

const msText = (ms) => (ms === null || ms === undefined ? '—' : '≤' + ms + ' ms');

// The app's rollout (GET /apps/APP/rollout), under way or the last one:
// its steps with the current one, the per-version figures, the decision,
// and pause/resume/abort for a key that may.
function rolloutSection(view, app, params, me, ro, status) {
  const sec = el('section', { 'aria-labelledby': 'rollout-h', class: 'rollout', 'data-state': ro.state },
    el('h2', { id: 'rollout-h' }, `Rollout of v${ro.version} (replacing v${ro.from}): ${ro.state}`));
  const active = ro.state === 'running' || ro.state === 'paused';
  sec.append(el('ol', { class: 'steps', 'aria-label': 'Steps: percent of clients on the new version' },
    ro.steps.map((pc, i) => el('li', { class: active && i + 1 === ro.step ? 'current' : i + 1 < ro.step ? 'done' : null,
      'aria-current': active && i + 1 === ro.step ? 'step' : null }, `${pc}%`))));
  const bounds = [`every ${Math.round(ro.interval_ms / 1000)} s`, `errors ≤ ${(ro.max_error_permyriad / 100).toFixed(2)}%`];
  if (ro.max_p99_ms) bounds.push(`p99 ≤ ${ro.max_p99_ms} ms`);
  bounds.push(`judged from ${ro.min_requests} requests`);
  sec.append(el('p', { class: 'bounds' }, active ? `Step ${ro.step} of ${ro.steps.length}: ${ro.percent}% of clients on v${ro.version}; ` : '', bounds.join(', ')));
  sec.append(el('div', { class: 'scroll' }, el('table', { class: 'rollout-versions', 'aria-label': 'Rollout figures per version' },
    el('thead', {}, el('tr', {}, ['Version', 'Requests', 'Errors', 'p50', 'p99'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ro.versions.map((v) => el('tr', { 'data-version': v.version },
      el('th', { scope: 'row' }, `v${v.version}` + (v.version === ro.version ? ' (new)' : '')),
      el('td', { class: 'num' }, String(v.requests)), el('td', { class: 'num' }, String(v.errors)),
      el('td', { class: 'num' }, msText(v.p50_ms)), el('td', { class: 'num' }, msText(v.p99_ms))))))));
  sec.append(el('p', { class: 'decision' }, el('strong', {}, 'Decision: '), ro.decision || '—'));
  if (ro.reason && ro.reason !== ro.decision) sec.append(el('p', { class: 'reason' }, el('strong', {}, 'Reason: '), ro.reason));
  if (active && may(me, 'apps.rollback')) {
    const ctl = (verb, label, question) => el('button', { type: 'button', 'data-rollout': verb, class: verb === 'abort' ? 'danger' : null,
      onclick: () => releaseAction(view, app, params, me, status, question, label, 'POST', `/apps/${enc(app)}/rollout/${verb}`, undefined,
        (r) => `The rollout of ${app} is ${r.state}.`) }, label);
    sec.append(el('div', { class: 'buttons' },
      ro.state === 'running' ? ctl('pause', 'Pause', `Pause the rollout of ${app} v${ro.version}? The current step and its split stay until you resume.`)
        : ctl('resume', 'Resume', `Resume the rollout of ${app} v${ro.version}? The step runs again from now.`),
      ctl('abort', 'Abort', `Abort the rollout of ${app} v${ro.version}? Every client goes back to v${ro.from}.`)));
  }
  return sec;
}

async function overviewPage(view, app, params, me) {
  view.append(...heading(app, 'overview', app));
  const [routes, versions, who] = await Promise.all([
    api('GET', `/apps/${enc(app)}/routes`).catch((e) => e),
    api('GET', `/apps/${enc(app)}/versions`).catch((e) => e),
    deployers(app, me),
  ]);
  // A rollout splits the clients, and leaves its version stored when it
  // fails or is aborted: asked only then (an app without one answers 404).
  const ro = !(versions instanceof Error) && (versions.split || versions.versions.some((v) => v.version > versions.live))
    ? await api('GET', `/apps/${enc(app)}/rollout`).catch((e) => e) : null;
  const wsec = el('section', { 'aria-labelledby': 'wiring-h' }, el('h2', { id: 'wiring-h' }, 'Wiring'));
  if (routes instanceof Error) wsec.append(errorBox(routes));
  else wsec.append(wiring(routes));
  view.append(wsec);
  const status = el('p', { role: 'status', class: 'status' });
  if (ro instanceof AuthError) throw ro;
  // 404: the app has had no rollout; other errors are shown where it would be
  if (ro instanceof Error && ro.status !== 404) view.append(el('section', { 'aria-label': 'Rollout' }, errorBox(ro)));
  else if (ro && !(ro instanceof Error)) view.append(rolloutSection(view, app, params, me, ro, status));
  const vsec = el('section', { 'aria-labelledby': 'versions-h' }, el('h2', { id: 'versions-h' }, 'Versions'));
  view.append(vsec);
  if (versions instanceof Error) {
    if (versions instanceof AuthError) throw versions;
    vsec.append(errorBox(versions));
    return;
  }
  const split = versions.split;
  if (split) vsec.append(el('p', { class: 'split', role: 'note' }, el('strong', {}, 'Split: '),
    `${split.percent}% of clients on v${split.version}, ${100 - split.percent}% on v${versions.live}.`));
  const tagsOf = new Map();
  for (const [tag, v] of Object.entries(versions.tags || {})) {
    if (!tagsOf.has(v)) tagsOf.set(v, []);
    tagsOf.get(v).push(tag);
  }
  const tbody = el('tbody');
  const canChange = may(me, 'apps.rollback');
  for (const v of versions.versions.slice().reverse()) {
    // a newer stored version (staged, or left by a rollout) is promoted; an older one rolled back to
    const newer = v.version > versions.live;
    const btn = v.live ? el('span', { class: 'live' }, 'live') : !canChange ? '' : newer
      ? el('button', { type: 'button', 'data-version': v.version, 'data-action': 'promote', onclick: () => releaseAction(view, app, params, me, status,
        `Promote version ${v.version} of ${app}? It becomes live and serves every request at once.`, `Promote v${v.version}`,
        'POST', `/apps/${enc(app)}/promote`, { version: v.version }, (r) => `${app} is at version ${r.live}.`) }, 'Promote')
      : el('button', { type: 'button', 'data-version': v.version, 'data-action': 'rollback', onclick: () => releaseAction(view, app, params, me, status,
        `Make version ${v.version} of ${app} live? It serves every request at once.`, `Roll back to v${v.version}`,
        'POST', `/apps/${enc(app)}/rollback`, { version: v.version }, (r) => `${app} is at version ${r.live}.`) }, 'Roll back to this');
    const tags = (tagsOf.get(v.version) || []).sort().map((t) => el('span', { class: 'tag' }, t));
    if (split && split.version === v.version) tags.push(el('span', { class: 'tag split-tag' }, `split ${split.percent}%`));
    tbody.append(el('tr', { 'data-version': v.version, class: v.live ? 'is-live' : null },
      el('td', { class: 'num' }, 'v' + v.version), el('td', { class: 'tags' }, tags), el('td', {}, v.created),
      el('td', {}, el('code', { title: v.sha256 }, (v.sha256 || '').slice(0, 12))),
      el('td', {}, who ? (who.get(v.version) || '—') : el('span', { class: 'muted', title: 'the key may not read the audit log' }, '—')),
      el('td', {}, String(v.files)), el('td', {}, btn)));
  }
  vsec.append(status, el('div', { class: 'scroll' }, el('table', { class: 'versions', 'aria-label': 'Versions of ' + app },
    el('thead', {}, el('tr', {}, ['Version', 'Tags', 'Created', 'Digest', 'Deployed by', 'Files', ''].map((h) => el('th', { scope: 'col' }, h)))),
    tbody)));
}

// ---------------------------------------------------------------- invocations

async function logsOf(id, box) {
  try {
    const a = await api('GET', `/activations/${enc(id)}`);
    const lines = (a.logs || []).map((l) => el('li', { class: 'lvl-' + l.level }, `${fmtTime(l.t)} ${l.level}: ${l.msg}`));
    box.replaceChildren(lines.length ? el('ol', { class: 'loglines' }, lines) : el('p', { class: 'muted' }, 'No log lines.'));
    if (a.error) box.append(el('p', { class: 'error' }, a.error));
  } catch (e) {
    if (e instanceof AuthError) throw e;
    box.replaceChildren(errorBox(e));
  }
}

async function invocationsPage(view, app, params) {
  view.append(...heading(app, 'invocations', 'Invocations of ' + app));
  const f = (name, label, input) => el('label', {}, label, input);
  const sel = (name, opts) => el('select', { name }, opts.map(([v, t]) => el('option', { value: v, selected: params.get(name) === v }, t)));
  const form = el('form', { class: 'filters', 'aria-label': 'Filters' },
    f('function', 'Function', el('input', { name: 'function', value: params.get('function') || '', size: 12 })),
    f('version', 'Version', el('input', { name: 'version', value: params.get('version') || '', size: 4, inputmode: 'numeric' })),
    f('status', 'Status', sel('status', [['', 'any'], ['2xx', '2xx'], ['4xx', '4xx'], ['5xx', '5xx']])),
    f('cold', 'Start', sel('cold', [['', 'any'], ['1', 'cold'], ['0', 'warm']])),
    f('min_duration_ms', 'Min ms', el('input', { name: 'min_duration_ms', value: params.get('min_duration_ms') || '', size: 5, inputmode: 'numeric' })),
    f('since', 'Since', el('input', { name: 'since', value: params.get('since') || '', size: 5, placeholder: '1h' })),
    el('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    location.hash = `#/app/${enc(app)}/invocations?${q}`;
  });
  view.append(form);
  const list = el('ol', { class: 'acts', 'aria-label': 'Activations, newest first' });
  const more = el('button', { type: 'button', hidden: true }, 'More');
  const errs = el('div');
  view.append(el('p', { class: 'legend-line' }, el('span', { class: 'key seg-queued' }), ' queued ', el('span', { class: 'key seg-cold' }), ' cold start ',
    el('span', { class: 'key seg-run' }), ' run ', el('span', { class: 'key seg-billed' }), ' billed 100 ms units'), errs, list, more);
  const q = new URLSearchParams();
  for (const k of ['function', 'version', 'status', 'cold', 'min_duration_ms', 'since', 'until']) if (params.get(k)) q.set(k, params.get(k));
  q.set('limit', '50');
  const load = async (after) => {
    if (after) q.set('after', after);
    let r;
    try {
      r = await api('GET', `/apps/${enc(app)}/activations?${q}`);
    } catch (e) {
      if (e instanceof AuthError) throw e;
      errs.replaceChildren(errorBox(e));
      return;
    }
    const scale = Math.max(100, ...r.activations.map((a) => Math.max(a.billed_ms || 0, (a.queued_us + a.duration_us) / 1000)));
    for (const a of r.activations) {
      const logs = el('div', { class: 'actlogs', hidden: true });
      const toggle = el('button', { type: 'button', class: 'linkish', 'aria-expanded': 'false', onclick: async () => {
        const open = logs.hidden;
        logs.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
        if (open && !logs.childNodes.length) await logsOf(a.id, logs);
      } }, 'logs');
      list.append(el('li', { class: 'act', 'data-id': a.id },
        el('span', { class: 'when' }, fmtTime(a.start_ms)),
        el('span', { class: 'fn' }, `${a.function} v${a.version}`),
        el('span', { class: 'st ' + (a.status >= 500 || a.outcome !== 'ok' ? 'bad' : '') }, String(a.status)),
        el('span', { class: 'dur' }, fmtMs(a.duration_us)),
        timeline(a, scale),
        el('span', { class: 'cold' }, a.cold ? 'cold' : 'warm'),
        toggle, ' ', el('a', { href: `#/trace/${a.trace}` }, 'trace'), logs));
    }
    if (!r.activations.length && !after) list.append(el('li', { class: 'muted' }, 'No invocations match.'));
    more.hidden = !r.next;
    more.onclick = () => load(r.next);
  };
  await load(null);
  view.dataset.ready = 'all';
}

// ---------------------------------------------------------------- trace

async function tracePage(view, id) {
  view.append(el('h1', {}, 'Trace'), el('p', {}, el('code', {}, id)));
  const r = await api('GET', `/traces/${enc(id)}`);
  if (!r.activations.length) {
    view.append(el('p', {}, 'No calls of this trace are recorded (or none the key may read).'));
    return;
  }
  const detail = el('div', { class: 'actlogs', 'aria-live': 'polite' });
  view.append(waterfall(r.activations, (a) => {
    detail.replaceChildren(el('h2', {}, `${a.app}/${a.function} v${a.version}: ${a.id}`));
    const box = el('div');
    detail.append(box);
    logsOf(a.id, box);
  }), detail);
}

// ---------------------------------------------------------------- live logs

async function logsPage(view, app) {
  view.append(...heading(app, 'logs', 'Live logs of ' + app));
  const state = el('p', { role: 'status', class: 'status' }, 'Connecting…');
  const list = el('ol', { class: 'loglines tail', 'aria-live': 'polite', 'aria-label': 'Log lines, oldest first' });
  view.append(state, list);
  const ctl = new AbortController();
  follow(`/apps/${enc(app)}/logs?follow=1&limit=50`, (l) => {
    list.append(el('li', { class: 'lvl-' + l.level }, `${fmtTime(l.t)} ${l.function} v${l.version} ${l.level}: ${l.msg}`));
    while (list.childNodes.length > 500) list.firstChild.remove();
    list.lastChild.scrollIntoView({ block: 'nearest' });
  }, ctl.signal).then(() => { state.textContent = 'The stream ended.'; }, (e) => {
    if (e.name === 'AbortError') return;
    if (e instanceof AuthError) throw e;
    state.replaceChildren(errorBox(e));
  });
  state.textContent = 'Following: new lines appear as functions log them.';
  return () => ctl.abort();
}

// ---------------------------------------------------------------- charts

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

async function chartsPage(view, app) {
  view.append(...heading(app, 'charts', 'Charts of ' + app));
  const [acts, byDay, byFn] = await Promise.all([
    api('GET', `/apps/${enc(app)}/activations?since=1h&limit=5000`).catch((e) => e),
    api('GET', `/usage?app=${enc(app)}&by=day`).catch((e) => e),
    api('GET', `/usage?app=${enc(app)}&by=version`).catch((e) => e),
  ]);
  for (const x of [acts, byDay, byFn]) if (x instanceof AuthError) throw x;
  const sec = el('section', { class: 'charts', 'aria-label': 'Charts' });
  view.append(sec);
  if (acts instanceof Error) sec.append(errorBox(acts));
  else {
    const now = Date.now(), bin = 60000, nb = 60;
    const keyOf = (a) => `${a.function} v${a.version}`;
    const groups = new Map();
    for (const a of acts.activations) {
      if (!groups.has(keyOf(a))) groups.set(keyOf(a), []);
      groups.get(keyOf(a)).push(a);
    }
    const xs = Array.from({ length: nb }, (_, i) => now - (nb - 1 - i) * bin);
    const perBin = (list, pick) => {
      const bins = Array.from({ length: nb }, () => []);
      for (const a of list) {
        const i = nb - 1 - Math.floor((now - a.start_ms) / bin);
        if (i >= 0 && i < nb) bins[i].push(a);
      }
      return bins.map((b, i) => [xs[i], pick(b)]);
    };
    const series = (pick) => [...groups].map(([name, list]) => ({ name, points: perBin(list, pick) }));
    const durations = (b) => b.map((a) => a.duration_us / 1000).sort((x, y) => x - y);
    if (!groups.size) sec.append(el('p', {}, 'No invocations in the last hour.'));
    else sec.append(
      lineChart('Requests per minute, last hour', series((b) => b.length)),
      lineChart('Errors per minute, last hour', series((b) => b.filter((a) => a.status >= 500 || a.outcome !== 'ok').length)),
      lineChart('p50 latency, last hour', series((b) => pct(durations(b), 50)), 'ms'),
      lineChart('p99 latency, last hour', series((b) => pct(durations(b), 99)), 'ms'));
  }
  if (byDay instanceof Error) sec.append(errorBox(byDay));
  else sec.append(barChart('Cost per day (last 30 days)', byDay.rows.map((r) => ({ label: r.day, value: r.cost_pusd, text: `$${r.cost} · ${r.invocations} calls` }))));
  if (byFn instanceof Error) sec.append(errorBox(byFn));
  else sec.append(barChart('Usage per function and version (last 30 days)', byFn.rows.map((r) => ({ label: `${r.function} v${r.version}`, value: r.mb_ms, text: `${r.gb_s} GB-s · $${r.cost}` }))));
}

// ---------------------------------------------------------------- events

// The last events that fired each trigger (GET /apps/APP/triggers/recent):
// when, what (type and source), its id, the outcome, a link to the call.
function recentSection(r) {
  const sec = el('section', { class: 'recent', 'aria-labelledby': 'recent-h' }, el('h2', { id: 'recent-h' }, 'Recent events per trigger'));
  if (!r.triggers.length) {
    sec.append(el('p', {}, 'The live version has no triggers.'));
    return sec;
  }
  for (const t of r.triggers) {
    const id = `trig-${t.trigger}-${t.function}`;
    const box = el('div', { class: 'trigger', 'data-trigger': `${t.trigger}/${t.function}` },
      el('h3', { id }, `${t.trigger} ${t.on} → ${t.function}`),
      el('p', { class: 'muted' }, t.dead_letters ? `${t.dead_letters} dead letter${t.dead_letters === 1 ? '' : 's'}` : 'No dead letters.'));
    if (!t.events.length) box.append(el('p', {}, 'Nothing fired it lately.'));
    else box.append(el('div', { class: 'scroll' }, el('table', { class: 'recent-events', 'aria-labelledby': id },
      el('thead', {}, el('tr', {}, ['Time', 'Type', 'Source', 'Event id', 'Outcome', 'Call'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, t.events.map((e) => el('tr', { class: e.outcome === 'ok' ? null : 'bad' },
        el('td', {}, fmtTime(e.t)), el('td', {}, e.type), el('td', {}, e.source), el('td', {}, el('code', {}, e.id)),
        el('td', { title: e.reason || null }, e.outcome === 'ok' ? 'ok' : `${e.outcome} (attempt ${e.attempt})${e.reason ? ': ' + e.reason : ''}`),
        el('td', {}, e.invocation ? el('a', { href: `#/activation/${enc(e.invocation)}` }, 'activation') : '—')))))));
    sec.append(box);
  }
  return sec;
}

async function eventsPage(view, app, params, me) {
  view.append(...heading(app, 'events', 'Events of ' + app));
  const status = el('p', { role: 'status', class: 'status' });
  view.append(status);
  const [recent, dlq] = await Promise.all([
    may(me, 'events.read') ? api('GET', `/apps/${enc(app)}/triggers/recent`).catch((e) => e) : null,
    api('GET', `/apps/${enc(app)}/dlq`).catch((e) => e),
  ]);
  for (const x of [recent, dlq]) if (x instanceof AuthError) throw x;
  if (recent instanceof Error) view.append(el('section', { 'aria-label': 'Recent events per trigger' }, errorBox(recent)));
  else if (recent) view.append(recentSection(recent));
  const dsec = el('section', { 'aria-labelledby': 'dlq-h' }, el('h2', { id: 'dlq-h' }, 'Dead letters'));
  view.append(dsec);
  if (dlq instanceof Error) {
    dsec.append(errorBox(dlq));
    return;
  }
  const letters = dlq.dead_letters || [];
  const replay = async (ids) => {
    const what = ids ? `dead letter ${ids[0]}` : `all ${letters.length} dead letters`;
    if (!(await confirmDialog(`Send ${what} of ${app} to its function again?`, 'Replay'))) return;
    try {
      const out = await api('POST', `/apps/${enc(app)}/dlq/replay`, ids ? { ids } : {});
      clear(view);
      await eventsPage(view, app, params, me);
      view.querySelector('.status').textContent = `Replayed ${out.replayed}.`;
    } catch (e) {
      if (e instanceof AuthError) throw e;
      status.replaceChildren(errorBox(e));
    }
  };
  if (!letters.length) {
    dsec.append(el('p', {}, 'No dead letters.'));
    return;
  }
  const canReplay = may(me, 'events.replay');
  dsec.append(canReplay ? el('button', { type: 'button', onclick: () => replay(null) }, `Replay all ${letters.length}`) : '',
    el('div', { class: 'scroll' }, el('table', { class: 'dlq', 'aria-label': 'Dead letters, oldest first' },
      el('thead', {}, el('tr', {}, ['Failed at', 'Function', 'Type', 'Attempts', 'Reason', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, letters.map((d) => el('tr', {},
        el('td', {}, d.failed_at), el('td', {}, d.function), el('td', {}, (d.event && d.event.type) || d.trigger),
        el('td', { class: 'num' }, String(d.attempts)), el('td', {}, d.reason),
        el('td', {}, canReplay ? el('button', { type: 'button', onclick: () => replay([d.id]) }, 'Replay') : '')))))));
}

// ---------------------------------------------------------------- one activation

async function activationPage(view, id) {
  const a = await api('GET', `/activations/${enc(id)}`);
  view.append(el('p', { class: 'crumbs' }, el('a', { href: '#/apps' }, 'Apps'), ' / ',
    el('a', { href: `#/app/${enc(a.app)}/overview` }, a.app), ' / activation'),
  el('h1', {}, `${a.app}/${a.function} v${a.version}`));
  const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
  view.append(el('dl', { class: 'activation' },
    row('Id', el('code', {}, a.id)), row('Started', fmtTime(a.start_ms)), row('Trigger', a.trigger),
    row('Status', `${a.status} (${a.outcome})`), row('Duration', fmtMs(a.duration_us)), row('Start', a.cold ? 'cold' : 'warm'),
    row('Trace', el('a', { href: `#/trace/${enc(a.trace)}` }, a.trace))),
  timeline(a, Math.max(100, a.billed_ms || 0, (a.queued_us + a.duration_us) / 1000)));
  const box = el('div', { class: 'actlogs' });
  view.append(el('h2', {}, 'Logs'), box);
  await logsOf(a.id, box);
}

// ---------------------------------------------------------------- nodes

// Each node's sandboxes over the last minutes: its heartbeat carries a ring
// of samples (pool_history, one every 5 s), so the chart starts full; the
// page asks again every 5 s.
function nodeCharts(nodes) {
  const up = nodes.filter((n) => n.state !== 'gone');
  if (!up.length) return [el('p', {}, 'No node is up.')];
  return up.map((n) => {
    const h = n.pool_history;
    if (!h || !h.t || !h.t.length) return el('p', { class: 'muted' }, `${n.node}: its heartbeat carries no sandbox samples (an older tined).`);
    // the samples, then the heartbeat's figures of now (the table's)
    const now = n.pool && n.heartbeat_ms > h.t[h.t.length - 1] * 1000 ? n.heartbeat_ms : null;
    const pts = (k) => h.t.map((t, i) => [t * 1000, h[k][i]]).concat(now ? [[now, n.pool[k]]] : []);
    const span = Math.round(((now || h.t[h.t.length - 1] * 1000) - h.t[0] * 1000) / 1000);
    return lineChart(`Sandboxes of ${n.node}, last ${span >= 120 ? Math.round(span / 60) + ' min' : span + ' s'}`,
      [{ name: 'warm idle', points: pts('idle') }, { name: 'busy', points: pts('busy') }, { name: 'starting', points: pts('starting') }]);
  });
}

function nodesTable(nodes) {
  const num = (x) => el('td', { class: 'num' }, x === undefined ? '—' : String(x));
  return el('div', { class: 'scroll' }, el('table', { class: 'nodes', 'aria-label': 'Nodes' },
    el('thead', {}, el('tr', {}, ['Node', 'Address', 'State', 'Version', 'Warm idle', 'Busy', 'Starting', 'Calls'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, nodes.map((n) => {
      const p = n.pool || {};
      return el('tr', { 'data-node': n.node }, el('th', { scope: 'row' }, n.node), el('td', {}, n.address || ''),
        el('td', {}, n.state + (n.left ? ` (${n.left})` : '')), el('td', {}, n.version || ''),
        num(p.idle), num(p.busy), num(p.starting), num(n.calls));
    }))));
}

async function nodesPage(view) {
  view.append(el('h1', {}, 'Nodes'));
  const status = el('p', { role: 'status', class: 'status' });
  const table = el('div'), charts = el('section', { class: 'charts', 'aria-label': 'Sandboxes per node' });
  view.append(status, table, el('h2', {}, 'Warm and busy sandboxes'), charts);
  const load = async () => {
    try {
      const r = await api('GET', '/nodes');
      table.replaceChildren(nodesTable(r.nodes));
      charts.replaceChildren(...nodeCharts(r.nodes));
      status.textContent = `As node ${r.answered_by} sees the cluster at ${fmtTime(Date.now())}.`;
    } catch (e) {
      if (e instanceof AuthError) throw e;
      status.replaceChildren(errorBox(e));
    }
  };
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

async function notFound(view) {
  view.append(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/apps' }, 'Back to the apps')));
}

export const pages = {
  apps: appsPage, overview: overviewPage, invocations: invocationsPage, trace: tracePage,
  logs: logsPage, charts: chartsPage, events: eventsPage, nodes: nodesPage, activation: activationPage, notFound,
};
export { ApiError };
