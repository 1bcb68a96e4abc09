// DOM helpers: every text goes in as a text node (names and log lines are
// never parsed as HTML).
const SVG_NS = 'http://www.w3.org/2000/svg';

function build(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// el('a', {href: '#/x', class: 'y'}, 'text', child...)
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// An error shown where the content would be.
export function errorBox(err) {
  return el('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

export function fmtMs(us) {
  const ms = us / 1000;
  if (us < 1000) return Math.round(us) + ' µs';
  return ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : ms >= 10 ? ms.toFixed(0) + ' ms' : ms.toFixed(2) + ' ms';
}

export function fmtTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function today() {
  return new Date().toISOString().slice(0, 10);
}
