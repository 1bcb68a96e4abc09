// An app's wiring as a picture: its routes, events, schedules and log
// triggers on the left, its functions on the right, a line from each
// source to the function it calls. The same as a list for screen readers.
import { el, svg } from './dom.js';

function sourceLabel(t) {
  if (t.on === 'event') return `event ${t.type || '*'}`;
  if (t.on === 'schedule') return `schedule ${t.cron || t.spec || ''}`;
  if (t.on === 'log') return `log ${t.source || ''}${t.filter ? ' ~ ' + t.filter : ''}`;
  return t.on;
}

export function wiring(r) {
  const sources = [
    ...r.routes.map((x) => ({ kind: 'route', label: `${x.method} ${x.path}`, fn: x.function })),
    ...r.triggers.map((t) => ({ kind: t.on, label: sourceLabel(t), fn: t.function })),
  ];
  const fns = r.functions.map((f) => f.name);
  const rowH = 30, w = 640, boxW = 250, fx = w - 200;
  const h = Math.max(sources.length, fns.length, 1) * rowH + 10;
  const fy = new Map(fns.map((f, i) => [f, 10 + i * rowH]));
  const g = svg('svg', { class: 'wiring', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-labelledby': 'wiring-cap' });
  sources.forEach((s, i) => {
    const y = 10 + i * rowH;
    const ty = fy.has(s.fn) ? fy.get(s.fn) : y;
    g.append(svg('path', { class: 'wire wire-' + s.kind, d: `M${boxW} ${y + 11} C${boxW + 90} ${y + 11}, ${fx - 90} ${ty + 11}, ${fx} ${ty + 11}`, fill: 'none' }),
      svg('rect', { class: 'node src-' + s.kind, x: 2, y, width: boxW, height: 22, rx: 4 }),
      svg('text', { x: 10, y: y + 15, class: 'label' }, s.label.length > 38 ? s.label.slice(0, 37) + '…' : s.label, svg('title', {}, s.label)));
  });
  fns.forEach((f) => {
    const y = fy.get(f);
    g.append(svg('rect', { class: 'node fn', x: fx, y, width: 196, height: 22, rx: 11 }),
      svg('text', { x: fx + 12, y: y + 15, class: 'label', 'data-function': f }, f));
  });
  const list = el('ul', { class: 'sr-only' }, sources.map((s) => el('li', {}, `${s.label} calls ${s.fn}`)),
    fns.filter((f) => !sources.some((s) => s.fn === f)).map((f) => el('li', {}, `${f}: nothing calls it but tine.invoke`)));
  return el('figure', { class: 'wiringbox' },
    el('figcaption', { id: 'wiring-cap' }, `Version ${r.version}: ${sources.length} sources, ${fns.length} functions`), g, list);
}
