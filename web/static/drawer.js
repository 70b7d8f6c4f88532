// The delivery drawer: one delivery with the event it sent, the headers
// it was sent with, every attempt with its answer, and Retry. Everything
// from the gateway goes in as text (h, jsonTree), never as HTML.

import { api } from './api.js';
import { $, clock, h, jsonTree, num } from './dom.js';

const hooks = { epoch: () => '', afterRetry: () => {} };
let current = null; // {wh, id}
let loadGen = 0;

// setDrawerHooks gives the drawer the log's epoch (for the webhook-id
// header) and what to refresh after a retry.
export function setDrawerHooks(h) {
  Object.assign(hooks, h);
}

function dialog() {
  return $('drawer');
}

let wired = false;
function wire() {
  if (wired) return;
  wired = true;
  $('drawer-close').addEventListener('click', () => dialog().close());
  $('drawer-retry').addEventListener('click', retry);
  // A click on the backdrop (outside the panel) closes it too.
  dialog().addEventListener('click', (ev) => {
    if (ev.target === dialog()) dialog().close();
  });
  // The close event comes in a task of its own: when the drawer was
  // opened again before it ran (close, then at once another row), it is
  // stale and must not drop the new delivery's load.
  dialog().addEventListener('close', () => {
    if (dialog().open) return;
    current = null;
    loadGen++;
  });
}

// openDelivery opens the drawer on delivery id of webhook wh.
export function openDelivery(wh, id) {
  wire();
  current = { wh, id };
  $('drawer-h').textContent = 'Delivery';
  $('drawer-sub').textContent = id;
  $('drawer-err').textContent = '';
  $('drawer-body').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  dialog().dataset.id = id;
  delete dialog().dataset.ready;
  if (!dialog().open) dialog().showModal();
  load();
}

async function load() {
  if (!current) return;
  const { wh, id } = current;
  const gen = ++loadGen;
  try {
    const d = await api('GET', `/v1/webhooks/${wh.id}/deliveries/${id}`);
    if (gen !== loadGen) return;
    render(wh, d);
    dialog().dataset.ready = 'true';
    dialog().dataset.attempts = String(d.attempt_count);
  } catch (err) {
    if (gen !== loadGen) return;
    $('drawer-err').textContent = `Could not load the delivery: ${err.message}`;
  }
}

async function retry() {
  if (!current) return;
  const { wh, id } = current;
  const btn = $('drawer-retry');
  btn.disabled = true;
  btn.textContent = 'Retrying…';
  $('drawer-err').textContent = '';
  try {
    await api('POST', `/v1/webhooks/${wh.id}/deliveries/${id}/retry`);
    hooks.afterRetry(wh.id);
    // The attempt runs in the background: reload until it shows (or a
    // few seconds pass; the log's own refresh takes over then).
    const before = Number(dialog().dataset.attempts || 0);
    for (let i = 0; i < 20 && current?.id === id; i++) {
      await load();
      if (Number(dialog().dataset.attempts || 0) > before && dialog().dataset.status !== 'pending') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    hooks.afterRetry(wh.id);
  } catch (err) {
    $('drawer-err').textContent = `Retry refused: ${err.message}`;
  } finally {
    btn.disabled = false;
    btn.textContent = 'Retry';
  }
}

function badge(cls, text, title) {
  return h('span', { class: `badge ${cls}`, title }, text);
}

function render(wh, d) {
  dialog().dataset.status = d.status;
  const marks = [badge(`badge-${d.status}`, d.status)];
  if (d.origin === 'replay') marks.push(badge('badge-replay', 'replay', 'Made by POST …/replay: a re-send, not a duplicate'));
  if (d.attempts.some((a) => a.trigger === 'manual')) marks.push(badge('trigger trigger-manual', 'retried by hand', 'Retry was asked for (POST …/retry)'));
  $('drawer-h').replaceChildren(`Delivery of seq ${d.event_seq} `, ...marks);
  $('drawer-sub').textContent = `${d.id} → ${wh.url}`;

  const facts = h('dl', { class: 'facts' },
    fact('Event', d.event_id ? h('code', {}, d.event_id) : '– (overwritten before it was taken)'),
    fact('Attempts', num(d.attempt_count)),
    fact('Origin', d.origin === 'replay' ? 'replay (POST …/replay)' : 'live'),
    d.next_attempt_at ? fact('Next attempt', h('time', { datetime: d.next_attempt_at, title: d.next_attempt_at }, clock(d.next_attempt_at))) : null);

  const epoch = hooks.epoch();
  const msgID = epoch ? `msg_${epoch}_${d.event_seq}` : `msg_<epoch>_${d.event_seq}`;
  const headers = h('dl', { class: 'headers mono' },
    header('content-type', 'application/json'),
    header('user-agent', 'eventgate'),
    header('webhook-id', msgID, 'The same for every attempt and every endpoint: receivers de-duplicate on it.'),
    header('webhook-timestamp', 'the attempt’s start, in Unix seconds (see each attempt)'),
    header('webhook-signature', 'v1,<base64 HMAC-SHA256 of id.timestamp.body>, signed with the webhook’s secret; computed per attempt and not stored'),
    ...Object.keys(wh.headers || {}).map((k) => header(k, 'set on the webhook')));

  const attempts = d.attempts.length
    ? h('ol', { class: 'attempts' }, ...d.attempts.map((a, i) => attempt(a, i === 0 ? 1 : d.attempt_count - d.attempts.length + i + 1)))
    : h('p', { class: 'muted' }, 'No attempt yet.');
  const dropped = d.attempt_count > d.attempts.length
    ? h('p', { class: 'help' }, `${num(d.attempt_count - d.attempts.length)} older attempts are not kept; the first and the newest are.`)
    : null;

  $('drawer-body').replaceChildren(
    facts,
    section('Event sent', d.event ? jsonTree(d.event) : h('p', { class: 'muted' }, 'The event is no longer buffered, and this delivery holds no copy of it.')),
    section('Headers sent', headers),
    section(`Attempts (${num(d.attempt_count)})`, dropped, attempts));
  $('drawer-retry').disabled = !d.event_id;
}

function fact(name, value) {
  return h('div', {}, h('dt', {}, name), h('dd', {}, value));
}

function header(name, value, title) {
  return h('div', { title }, h('dt', {}, `${name}:`), h('dd', {}, value));
}

function section(title, ...body) {
  return h('section', { class: 'drawer-section' }, h('h3', {}, title), ...body);
}

// attempt renders one attempt; number counts all attempts (the kept ones
// are the first and the newest, so some may be skipped in the middle).
function attempt(a, number) {
  const ok = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
  const started = new Date(a.started_at);
  return h('li', { class: `attempt ${ok ? 'ok' : 'bad'}`, dataset: { trigger: a.trigger, status: a.status_code ?? '' } },
    h('div', { class: 'attempt-head' },
      h('strong', {}, `#${number}`),
      badge(`trigger trigger-${a.trigger}`, a.trigger, triggerText[a.trigger]),
      h('span', { class: `code ${ok ? 'code-ok' : 'code-bad'}` }, a.status_code === null ? 'no answer' : `HTTP ${a.status_code}`),
      h('span', { class: 'muted' }, `${num(a.duration_ms, 0)} ms`),
      h('time', { datetime: a.started_at, title: `${a.started_at} · webhook-timestamp ${Math.floor(started.getTime() / 1000)}` }, clock(a.started_at))),
    a.error ? h('p', { class: 'attempt-err' }, a.error) : null,
    a.response_body !== null
      ? h('div', { class: 'response' },
        h('div', { class: 'response-meta muted' }, 'Response body', a.response_content_type ? h('code', {}, a.response_content_type) : null,
          a.response_body.length >= 4096 ? h('span', {}, '(first 4 KiB)') : null),
        h('pre', { class: 'body mono' }, a.response_body === '' ? '(empty)' : a.response_body))
      : h('p', { class: 'muted response-none' }, a.status_code === null ? 'No answer came.' : 'Response body not kept.'));
}

const triggerText = {
  scheduled: 'The first attempt of an event taken live',
  retry: 'A retry on the schedule',
  manual: 'Asked for with Retry (POST …/retry)',
  replay: 'The first attempt of a replayed event',
};
