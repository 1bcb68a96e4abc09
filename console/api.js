// The admin API with the key of this browser tab (sessionStorage).
const KEY = 'tine.key';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The key was refused (wrong, revoked, expired): the login shows why.
export class AuthError extends ApiError {}

export const key = () => sessionStorage.getItem(KEY);
export const setKey = (k) => sessionStorage.setItem(KEY, k);
export const forget = () => sessionStorage.removeItem(KEY);

async function failure(res) {
  let msg = res.status + ' ' + res.statusText;
  try {
    const j = await res.json();
    if (j && j.error) msg = j.error;
  } catch (e) { /* not JSON */ }
  return res.status === 401 ? new AuthError(401, msg) : new ApiError(res.status, msg);
}

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + (key() || '') }, extra || {});
}

// api('GET', '/apps') -> the answer's JSON; throws ApiError / AuthError.
export async function api(method, path, body) {
  // credentials 'omit': a 401's Basic challenge must not open the browser's own login box
  const init = { method, credentials: 'omit', headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch('/_tine/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, 'the node did not answer: ' + e.message);
  }
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// Follows an NDJSON stream (GET path): onLine(object) for each line until
// the signal aborts. EventSource cannot send the key in a header, so this
// reads the chunked NDJSON answer of the logs endpoint with fetch.
export async function follow(path, onLine, signal) {
  const res = await fetch('/_tine/v1' + path, { credentials: 'omit', headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(JSON.parse(line));
    }
  }
}

// Runs fn over items with at most n at once.
export async function pool(items, n, fn) {
  let i = 0;
  const next = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, next));
}
