// The console's frame: login, navigation and the router of #/... pages.
import { api, key, setKey, forget, AuthError } from './api.js';
import { el, clear, errorBox } from './dom.js';
import { pages } from './pages.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logoutBtn = document.getElementById('logout');
let current = null; // the page's cleanup (a live tail's abort)

function showLogin(reason) {
  forget();
  nav.hidden = true;
  logoutBtn.hidden = true;
  who.textContent = '';
  clear(main);
  const input = el('input', { id: 'key', type: 'password', name: 'key', autocomplete: 'off', required: true,
    'aria-describedby': reason ? 'login-reason' : null });
  const form = el('form', { class: 'login', 'aria-labelledby': 'login-title' },
    el('h1', { id: 'login-title' }, 'Log in'),
    reason ? el('p', { id: 'login-reason', class: 'error', role: 'alert' }, reason) : null,
    el('label', { for: 'key' }, 'API key or admin token'), input,
    el('button', { type: 'submit' }, 'Log in'),
    el('p', { class: 'hint' }, 'The key stays in this tab (sessionStorage) and is sent to this node only.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setKey(input.value.trim());
    await start(true);
  });
  main.append(form);
  input.focus();
}

let me = null;

// Checks the key (GET /whoami) and shows the page of the address.
async function start(fromLogin) {
  if (!key()) return showLogin(null);
  try {
    me = await api('GET', '/whoami');
  } catch (e) {
    if (e instanceof AuthError) return showLogin(e.message);
    clear(main).append(errorBox(e));
    return;
  }
  nav.hidden = false;
  logoutBtn.hidden = false;
  who.textContent = me.name ? `${me.name} (${me.role})` : me.role;
  document.getElementById('nav-nodes').hidden = !!(me.permissions && !me.permissions.includes('node.read'));
  if (fromLogin && !location.hash.startsWith('#/')) {
    location.hash = '#/apps'; // hashchange routes
    return;
  }
  route();
}

async function route() {
  if (!key()) return showLogin(null);
  if (current) { current(); current = null; }
  const hash = location.hash.replace(/^#/, '') || '/apps';
  const [pathPart, query] = hash.split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  let page = pages.apps, args = [];
  if (parts[0] === 'app' && parts[1]) {
    const sub = parts[2] || 'overview';
    page = pages[sub] || pages.notFound;
    args = [parts[1]];
  } else if (parts[0] === 'nodes') {
    page = pages.nodes;
  } else if (parts[0] === 'activation' && parts[1]) {
    page = pages.activation;
    args = [parts[1]];
  } else if (parts[0] === 'trace' && parts[1]) {
    page = pages.trace;
    args = [parts[1]];
  } else if (parts[0] !== 'apps') {
    page = pages.notFound;
  }
  clear(main);
  main.dataset.route = hash; // the page being shown (data-ready on it once loaded)
  const view = el('div', { class: 'page' });
  main.append(view);
  try {
    current = await page(view, ...args, params, me);
  } catch (e) {
    if (e instanceof AuthError) return showLogin(e.message);
    view.append(errorBox(e));
  }
  if (!view.dataset.ready) view.dataset.ready = 'all'; // rendered (the apps page says when itself)
  main.focus({ preventScroll: true });
}

// Any API call a page makes that finds the key refused shows the login.
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof AuthError) {
    ev.preventDefault();
    showLogin(ev.reason.message);
  }
});
window.addEventListener('hashchange', route);
logoutBtn.addEventListener('click', () => { forget(); location.hash = ''; showLogin(null); });
start(false);
