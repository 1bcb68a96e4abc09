// Charts drawn as SVG by hand: sparklines, line charts, bar charts, the
// timeline bar of one activation and the waterfall of a trace. Each has a
// text alternative (role="img" and an aria-label).
import { el, svg, fmtMs } from './dom.js';

const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280', '#2c7a7b', '#975a16', '#4a5568'];

export function sparkline(values, label, cls) {
  const w = 120, h = 24, max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  return svg('svg', { class: 'spark ' + (cls || ''), width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img',
    'aria-label': `${label}: ${values.join(', ')}` },
  svg('polyline', { points: pts.join(' '), fill: 'none', 'stroke-width': 1.5 }));
}

// series: [{name, points: [[x, y], ...]}] with x in ms; y >= 0.
export function lineChart(title, series, unit) {
  const w = 560, h = 200, pl = 48, pb = 22, pt = 8, pr = 8;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), ymax = Math.max(1e-9, ...ys);
  const X = (x) => pl + ((x - x0) / (x1 - x0)) * (w - pl - pr);
  const Y = (y) => h - pb - (y / ymax) * (h - pb - pt);
  const fmt = (y) => (unit === 'ms' ? fmtMs(y * 1000) : String(Math.round(y * 100) / 100));
  const g = svg('svg', { class: 'chart', viewBox: `0 0 ${w} ${h}`, role: 'img',
    'aria-label': `${title}: ` + series.map((s) => `${s.name} up to ${fmt(Math.max(0, ...s.points.map((p) => p[1])))}`).join('; ') },
  svg('line', { x1: pl, y1: h - pb, x2: w - pr, y2: h - pb, class: 'axis' }),
  svg('line', { x1: pl, y1: pt, x2: pl, y2: h - pb, class: 'axis' }),
  svg('text', { x: pl - 4, y: pt + 8, 'text-anchor': 'end', class: 'tick' }, fmt(ymax)),
  svg('text', { x: pl - 4, y: h - pb, 'text-anchor': 'end', class: 'tick' }, '0'),
  svg('text', { x: pl, y: h - 6, class: 'tick' }, new Date(x0).toISOString().slice(11, 16)),
  svg('text', { x: w - pr, y: h - 6, 'text-anchor': 'end', class: 'tick' }, new Date(x1).toISOString().slice(11, 16)));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    g.append(svg('polyline', { class: 'series', 'data-series': s.name, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2,
      points: s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ') }));
  });
  const legend = el('ul', { class: 'legend' }, series.map((s, i) =>
    el('li', {}, svg('svg', { width: 10, height: 10, 'aria-hidden': 'true' }, svg('rect', { width: 10, height: 10, fill: COLORS[i % COLORS.length] })), ' ', s.name)));
  return el('figure', { class: 'chartbox' }, el('figcaption', {}, title), g, legend);
}

// bars: [{label, value, text}]
export function barChart(title, bars) {
  const w = 560, bh = 18, gap = 6, pl = 110, h = Math.max(1, bars.length) * (bh + gap);
  const max = Math.max(1e-12, ...bars.map((b) => b.value));
  const g = svg('svg', { class: 'chart bars', viewBox: `0 0 ${w} ${h}`, role: 'img',
    'aria-label': `${title}: ` + bars.map((b) => `${b.label} ${b.text}`).join('; ') });
  bars.forEach((b, i) => {
    const y = i * (bh + gap);
    g.append(svg('text', { x: pl - 6, y: y + 13, 'text-anchor': 'end', class: 'tick' }, b.label),
      svg('rect', { class: 'bar', x: pl, y, height: bh, width: Math.max(1, (b.value / max) * (w - pl - 230)) }),
      svg('text', { x: pl + Math.max(1, (b.value / max) * (w - pl - 230)) + 4, y: y + 13, class: 'tick' }, b.text));
  });
  return el('figure', { class: 'chartbox' }, el('figcaption', {}, title), g);
}

// One activation's time: queued, cold start, run, and its billed 100 ms
// units, on a scale of scaleMs for the whole bar.
export function timeline(a, scaleMs) {
  const w = 240, h = 14;
  const q = a.queued_us / 1000, c = a.cold ? a.cold_start_us / 1000 : 0, r = a.duration_us / 1000;
  const billed = a.billed ? a.billed_ms : 0;
  const total = Math.max(scaleMs, q + r, billed, 1);
  const X = (ms) => (ms / total) * w;
  // the cold start is part of the wait for a sandbox
  const parts = [['queued', Math.max(0, q - c)], ['cold', c], ['run', r]];
  const g = svg('svg', { class: 'timeline', width: w, height: h + 6, viewBox: `0 0 ${w} ${h + 6}`, role: 'img',
    'aria-label': `queued ${q.toFixed(2)} ms, cold start ${c.toFixed(2)} ms, ran ${r.toFixed(2)} ms, billed ${billed} ms` });
  let x = 0;
  for (const [name, ms] of parts) {
    if (ms <= 0) continue;
    g.append(svg('rect', { class: 'seg-' + name, x: X(x), y: 0, width: Math.max(1, X(ms)), height: h }, svg('title', {}, `${name} ${ms.toFixed(2)} ms`)));
    x += ms;
  }
  for (let u = 0; u < billed; u += 100)
    g.append(svg('rect', { class: 'seg-billed', x: X(q + u) + 0.5, y: h + 2, width: Math.max(1, X(100) - 1), height: 3 }));
  return g;
}

// The calls of a trace as a waterfall: one row each, indented by depth.
export function waterfall(acts, onPick) {
  const byKey = new Map();
  acts.forEach((a) => { byKey.set(a.id, a); if (a.span) byKey.set(a.span, a); });
  const depth = (a) => { let d = 0, p = a.parent; const seen = new Set(); while (p && byKey.has(p) && !seen.has(p) && d < 30) { seen.add(p); d++; p = byKey.get(p).parent; } return d; };
  const t0 = Math.min(...acts.map((a) => a.start_ms));
  const end = Math.max(...acts.map((a) => a.start_ms + (a.queued_us + a.duration_us) / 1000), t0 + 1);
  const span = end - t0;
  const list = el('ol', { class: 'waterfall', 'aria-label': 'calls of the trace, oldest first' });
  for (const a of acts) {
    const d = depth(a);
    const left = ((a.start_ms - t0) / span) * 100;
    const width = Math.max(0.5, (((a.queued_us + a.duration_us) / 1000) / span) * 100);
    const bar = el('span', { class: 'wf-bar ' + (a.status >= 500 || a.outcome !== 'ok' ? 'bad' : 'good') });
    bar.style.marginLeft = left.toFixed(2) + '%';
    bar.style.width = width.toFixed(2) + '%';
    const label = el('button', { type: 'button', class: 'linkish', onclick: () => onPick && onPick(a) },
      `${a.app}/${a.function} v${a.version}`);
    const name = el('span', { class: 'wf-name' }, label, ` ${a.trigger} ${a.status}`);
    name.style.paddingLeft = d * 1.2 + 'em';
    list.append(el('li', { class: 'wf-row', 'data-depth': d }, name,
      el('span', { class: 'wf-track' }, bar), el('span', { class: 'wf-dur' }, `+${a.start_ms - t0} ms, ${fmtMs(a.duration_us)}`)));
  }
  return list;
}
