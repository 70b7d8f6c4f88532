// The dashboard's only way to the gateway: the public /v1 API. It adds the
// API key (sessionStorage only) and asks for one when the API answers 401.

const KEY = 'eventgate.apiKey';

export function apiKey() {
  return sessionStorage.getItem(KEY) || '';
}

// ApiError is a non-2xx answer; problem is the RFC 9457 document when the
// gateway sent one.
export class ApiError extends Error {
  constructor(status, problem) {
    const p = typeof problem === 'object' && problem ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
    this.errors = Array.isArray(p.errors) ? p.errors : [];
  }
}

let pendingKey = null; // one prompt shared by every caller that got a 401

// requestKey opens the key dialog and resolves once the user gave a key.
export function requestKey(rejected) {
  if (pendingKey) return pendingKey;
  const dialog = document.getElementById('key-dialog');
  const form = document.getElementById('key-form');
  const input = document.getElementById('key-input');
  const err = document.getElementById('key-err');
  err.textContent = rejected ? 'That key was not accepted. Try another.' : '';
  input.setAttribute('aria-invalid', rejected ? 'true' : 'false');
  input.value = '';
  pendingKey = new Promise((resolve) => {
    const submit = (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      if (!key) {
        err.textContent = 'Enter a key.';
        input.focus();
        return;
      }
      form.removeEventListener('submit', submit);
      dialog.removeEventListener('cancel', keepOpen);
      sessionStorage.setItem(KEY, key);
      dialog.close();
      pendingKey = null;
      document.getElementById('key-button').hidden = false;
      resolve(key);
    };
    const keepOpen = (ev) => ev.preventDefault(); // nothing works without a key
    form.addEventListener('submit', submit);
    dialog.addEventListener('cancel', keepOpen);
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return pendingKey;
}

// forgetKey drops the stored key and asks for a new one, which the next
// call then checks.
export async function forgetKey() {
  sessionStorage.removeItem(KEY);
  await requestKey(false);
  await apiFetch('/v1/events?limit=1', { headers: { Accept: 'application/json' } }).then((res) => res.body?.cancel());
  window.dispatchEvent(new CustomEvent('eventgate:key'));
}

// apiFetch is fetch with the key; on 401 it asks for a key and tries again.
// Once a new key has been accepted, it fires 'eventgate:key' on window.
export async function apiFetch(path, init = {}) {
  let asked = false;
  for (;;) {
    const key = apiKey();
    const headers = new Headers(init.headers || {});
    if (key) headers.set('Authorization', `Bearer ${key}`);
    const res = await fetch(path, { ...init, headers });
    if (res.status !== 401) {
      if (asked) window.dispatchEvent(new CustomEvent('eventgate:key'));
      return res;
    }
    await res.body?.cancel();
    await requestKey(Boolean(key));
    asked = true;
  }
}

// api sends body (a value, JSON-encoded) and returns the decoded answer,
// null for 204. Non-2xx answers throw ApiError.
export async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await apiFetch(path, init);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// streamURL is the WebSocket URL of /v1/stream with the key as access_token
// (browsers cannot set headers on a WebSocket).
export function streamURL(params) {
  const u = new URL('/v1/stream', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  const key = apiKey();
  if (key) u.searchParams.set('access_token', key);
  return u.toString();
}

// sseLines reads a text/event-stream body and calls onData with each
// message's data. fetch, not EventSource, so that the key travels in the
// Authorization header. It returns when the stream ends or signal aborts.
export async function readSSE(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const msg = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = msg.split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) onData(data);
    }
  }
}
