// The dashboard: live stream, send form and buffer panel. Webhooks live in
// webhooks.js. Everything goes through the public API (api.js).

import { api, ApiError, apiKey, forgetKey } from './api.js';
import { RateChart } from './chart.js';
import { $, clock, clearFieldErrors, h, jsonTree, num, showFieldErrors } from './dom.js';
import { LiveStream, parsePatterns } from './stream.js';
import { startWebhooks } from './webhooks.js';

const MAX_ROWS = 1000; // events kept on the page; the gateway keeps the rest
const query = new URLSearchParams(location.search);

// ---- live stream ----------------------------------------------------------

const list = $('events');
const empty = $('events-empty');
let received = 0;

const chart = new RateChart($('rate-chart'), (rate) => {
  $('rate-now').textContent = num(rate);
});

const stream = new LiveStream({
  holdMax: Number(query.get('hold')) || 10000,
  onEvents(events) {
    const frag = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i--) frag.append(eventRow(events[i]));
    list.prepend(frag);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    empty.hidden = true;
    showHeld();
  },
  onNotice(kind, text) {
    list.prepend(h('li', { class: `notice notice-${kind}`, role: 'note' }, text));
    empty.hidden = true;
  },
  onTaken(n) {
    received += n;
    chart.add(n);
    $('stream-count').textContent = num(received);
  },
  onState(state, detail) {
    const el = $('stream-status');
    el.dataset.state = state;
    el.textContent = detail && state === 'reconnecting' ? `${state} · ${detail}` : state;
    const paused = state === 'paused';
    const btn = $('pause');
    btn.setAttribute('aria-pressed', String(paused));
    btn.textContent = paused ? 'Resume' : 'Pause';
    btn.classList.toggle('primary', paused);
    showHeld();
  },
});

function showHeld() {
  const el = $('held');
  const n = stream.heldCount;
  el.hidden = !stream.paused;
  el.textContent = stream.ws || !stream.paused
    ? `${num(n)} held while paused`
    : `${num(n)} held; the rest waits in the gateway`;
}

// eventRow renders one event as a row. It never throws: an event that
// cannot be rendered in full (e.g. an unreadable stream line, kept as
// e.raw) still gets a row with its seq, so no row is ever skipped.
function eventRow(e) {
  if (e.raw === undefined) {
    try {
      return fullRow(e);
    } catch (err) {
      return fallbackRow(e, String(err));
    }
  }
  return fallbackRow(e, 'unreadable stream line');
}

// RAW_MAX is how much of an unrenderable event's text a fallback row shows.
const RAW_MAX = 2000;

function fallbackRow(e, why) {
  let raw = e.raw;
  if (raw === undefined) {
    try {
      raw = JSON.stringify(e);
    } catch {
      raw = '';
    }
  }
  const text = raw.length > RAW_MAX ? `${raw.slice(0, RAW_MAX)}… (${raw.length - RAW_MAX} more characters)` : raw;
  return h('li', { class: 'event', dataset: { seq: e.seq } },
    h('details', {},
      h('summary', {},
        h('span', { class: 'seq' }, `#${e.seq}`),
        typeof e.type === 'string' ? h('span', { class: 'type' }, e.type) : null,
        h('span', { class: 'where' }, `(not shown in full: ${why})`)),
      h('div', { class: 'event-body' }, h('pre', { class: 'json' }, text))));
}

function fullRow(e) {
  return h('li', { class: 'event', dataset: { seq: e.seq } },
    h('details', {},
      h('summary', {},
        h('span', { class: 'seq' }, `#${e.seq}`),
        h('time', { datetime: e.time, title: e.time }, clock(e.time)),
        h('span', { class: 'type' }, e.type),
        h('span', { class: 'where' }, e.source, e.subject ? h('span', { class: 'subject' }, ` · ${e.subject}`) : null)),
      h('div', { class: 'event-body' },
        h('div', { class: 'event-meta' },
          h('span', {}, 'id ', h('code', {}, e.id)),
          e.datacontenttype ? h('span', {}, 'content-type ', h('code', {}, e.datacontenttype)) : null),
        'data' in e ? jsonTree(e.data) : h('pre', { class: 'json' }, `data_base64: ${e.data_base64 ?? ''}`),
        e.extensions ? jsonTree({ extensions: e.extensions }) : null)));
}

$('filter-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const patterns = parsePatterns($('filter').value);
  $('filter').value = patterns.join(', ') || '>';
  list.replaceChildren();
  empty.hidden = false;
  empty.textContent = `Waiting for events matching ${patterns.join(', ') || '>'}…`;
  stream.start(patterns.join(',') || '>', null);
});

$('pause').addEventListener('click', () => {
  if (stream.paused) stream.resume();
  else stream.pause();
});

$('clear').addEventListener('click', () => {
  list.replaceChildren();
  empty.hidden = false;
});

// ---- buffer panel ----------------------------------------------------------

const samples = []; // [time ms, newest] over the last 10 s
let bufNewest = 0;
let bufEpoch = '';

async function pollBuffer() {
  try {
    const page = await api('GET', `/v1/events?after=${bufNewest}&limit=1`);
    const now = performance.now();
    if (page.epoch !== bufEpoch) samples.length = 0;
    bufEpoch = page.epoch;
    bufNewest = page.newest;
    samples.push([now, page.newest]);
    while (samples.length > 2 && now - samples[0][0] > 10000) samples.shift();
    const [t0, n0] = samples[0];
    const rate = now > t0 ? ((page.newest - n0) * 1000) / (now - t0) : 0;
    $('buf-size').textContent = num(page.newest ? page.newest - page.oldest + 1 : 0);
    $('buf-oldest').textContent = page.oldest ? num(page.oldest) : '–';
    $('buf-newest').textContent = page.newest ? num(page.newest) : '–';
    $('buf-rate').textContent = samples.length > 1 ? num(rate) : '–';
    $('buffer-epoch').textContent = `epoch ${page.epoch.slice(-6)}`;
    $('buffer-epoch').title = `log epoch ${page.epoch}`;
    $('buffer').dataset.ready = 'true';
    return page;
  } catch (err) {
    $('buf-size').textContent = '–';
    $('buffer-epoch').textContent = err instanceof ApiError ? `error ${err.status}` : 'unreachable';
    return null;
  } finally {
    setTimeout(pollBuffer, 1000);
  }
}

// ---- send form -----------------------------------------------------------

const sendForm = $('send-form');
sendForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const formErr = $('send-form-err');
  const result = $('send-result');
  clearFieldErrors(sendForm, formErr);
  result.textContent = '';
  let data;
  try {
    data = JSON.parse($('send-data').value);
  } catch (err) {
    showFieldErrors(sendForm, [{ field: '/data', message: `Not valid JSON: ${err.message}` }], formErr);
    $('send-data').focus();
    return;
  }
  const body = { type: $('send-type').value.trim(), data };
  for (const f of ['source', 'subject']) {
    const v = $(`send-${f}`).value.trim();
    if (v) body[f] = v;
  }
  const btn = sendForm.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const out = await api('POST', '/v1/events', body);
    result.textContent = `Stored as seq ${out.seq}`;
    result.dataset.seq = out.seq;
  } catch (err) {
    if (err instanceof ApiError && err.errors.length) {
      showFieldErrors(sendForm, err.errors, formErr)?.focus();
    } else {
      formErr.textContent = err.message;
    }
  } finally {
    btn.disabled = false;
  }
});

// ---- start -----------------------------------------------------------------

$('key-button').hidden = !apiKey();
$('key-button').addEventListener('click', () => forgetKey());
window.addEventListener('eventgate:key', () => stream.reconnect());

(async () => {
  // The first buffer read also asks for a key when one is needed, before
  // the WebSocket tries. The stream then starts with the last few events.
  const page = await pollBuffer();
  const after = page ? Math.max(0, page.newest - 20) : null;
  stream.start($('filter').value === '>' ? '>' : parsePatterns($('filter').value).join(','), after, page?.epoch ?? '');
  startWebhooks();
})();
