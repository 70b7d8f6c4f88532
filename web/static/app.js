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
let oldestLoaded = Infinity; // smallest seq in the list
let applied = '>'; // the filter the list shows
let applyGen = 0; // bumps on every apply, so stale loads are dropped

const chart = new RateChart($('rate-chart'), (rate) => {
  $('rate-now').textContent = num(rate);
});

const stream = new LiveStream({
  holdMax: Number(query.get('hold')) || 10000,
  check: filterProblem,
  onEvents(events) {
    const frag = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i--) frag.append(eventRow(events[i]));
    list.prepend(frag);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    noteOldest();
    empty.hidden = true;
    showHeld();
    showSearch();
  },
  onNotice(kind, text) {
    list.prepend(h('li', { class: `notice notice-${kind}`, role: 'note' }, text));
    empty.hidden = true;
  },
  onTaken(n, live) {
    // The chart counts arrivals when they arrive: replayed events (the
    // backlog a connection starts with) are received but not drawn.
    received += n;
    if (live) chart.add(live);
    $('stream-count').textContent = num(received);
  },
  onState(state, detail) {
    const el = $('stream-status');
    el.dataset.state = state;
    if (state === 'error') {
      el.textContent = 'stopped · invalid filter';
      showFilterError(detail);
    } else {
      el.textContent = detail && state === 'reconnecting' ? `${state} · ${detail}` : state;
    }
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
  return h('li', { class: 'event', dataset: { seq: e.seq, search: [`#${e.seq}`, e.type].join(' ').toLowerCase() } },
    h('details', {},
      h('summary', {},
        h('span', { class: 'seq' }, `#${e.seq}`),
        typeof e.type === 'string' ? h('span', { class: 'type' }, e.type) : null,
        h('span', { class: 'where' }, `(not shown in full: ${why})`)),
      h('div', { class: 'event-body' }, h('pre', { class: 'json' }, text))));
}

// noteOldest keeps oldestLoaded: the seq of the bottom row.
function noteOldest() {
  const rows = list.querySelectorAll('li.event');
  oldestLoaded = rows.length ? Number(rows[rows.length - 1].dataset.seq) : Infinity;
}

function fullRow(e) {
  const li = h('li', { class: 'event', dataset: { seq: e.seq, search: [`#${e.seq}`, e.type, e.subject, e.id, e.source].join(' ').toLowerCase() } },
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
  const q = searchText();
  if (q && !li.dataset.search.includes(q)) li.hidden = true;
  return li;
}

const typesQuery = (types) => `types=${encodeURIComponent(types)}`;

// problemText is what a refused request says, field messages first.
function problemText(err) {
  return err.errors.length ? err.errors.map((e) => e.message).join('; ') : err.message;
}

// filterProblem asks the replay API, which validates patterns as the stream
// does, whether types is a filter the gateway serves: the reason it is
// not, or null. A WebSocket cannot read the stream's own 400.
async function filterProblem(types) {
  try {
    await api('GET', `/v1/events?limit=1&${typesQuery(types)}`);
    return null;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 400 || err.status === 422)) return problemText(err);
    throw err;
  }
}

function showFilterError(text) {
  $('filter-err').textContent = text || '';
  if (text) $('filter').setAttribute('aria-invalid', 'true');
  else $('filter').removeAttribute('aria-invalid');
  if (text) {
    empty.hidden = false;
    empty.textContent = 'The stream is stopped: fix the filter and apply it again.';
  }
}

// matchingBefore returns the newest n buffered events matching types with
// floor < seq < before, oldest first, and whether older buffered events
// are left to look at. Replay only reads forward, so it reads windows
// backwards from before, each four times the last.
async function matchingBefore(types, before, n, floor = 0) {
  let hi = before;
  let found = [];
  let width = Math.max(n, 100);
  let oldest = 1;
  while (found.length < n && hi - 1 > floor) {
    const lo = Math.max(floor, hi - 1 - width);
    const chunk = [];
    for (let after = lo; ;) {
      const page = await api('GET', `/v1/events?after=${after}&limit=1000&${typesQuery(types)}`);
      oldest = page.oldest || page.newest + 1;
      for (const e of page.events) if (e.seq < hi) chunk.push(e);
      if (chunk.length > n) chunk.splice(0, chunk.length - n);
      if (page.next <= after || page.next >= hi - 1) break;
      after = page.next;
    }
    found = chunk.concat(found).slice(-n);
    hi = lo + 1;
    if (hi <= oldest) break;
    width *= 4;
  }
  return { events: found, more: hi > Math.max(floor + 1, oldest) };
}

// apply shows the buffered events that match types (from seq from on, or
// the last 100), then follows the stream from there.
async function apply(types, from) {
  const gen = ++applyGen;
  stream.close();
  applied = types;
  list.replaceChildren();
  oldestLoaded = Infinity;
  empty.hidden = false;
  empty.textContent = `Loading events matching ${types}…`;
  $('older').disabled = true;
  $('older-note').textContent = '';
  $('history-msg').textContent = '';
  showFilterError('');
  let probe;
  try {
    probe = await api('GET', `/v1/events?limit=1&${typesQuery(types)}`);
  } catch (err) {
    if (gen !== applyGen) return;
    if (err instanceof ApiError && (err.status === 400 || err.status === 422)) {
      stream.stop(problemText(err));
      return;
    }
    // The gateway is unreachable: let the stream keep trying.
    stream.start(types, null);
    return;
  }
  if (gen !== applyGen) return;
  if (from !== null) {
    stream.start(types, Math.max(0, from - 1), probe.epoch);
  } else {
    let back = { events: [], more: false };
    try {
      back = await matchingBefore(types, probe.newest + 1, 100);
    } catch (err) {
      $('history-msg').textContent = `Could not load the buffered events: ${err.message}`;
    }
    if (gen !== applyGen) return;
    if (back.events.length) stream.onEvents(back.events);
    stream.start(types, probe.newest, probe.epoch);
  }
  $('older').disabled = false;
  if (!list.querySelector('li.event')) empty.textContent = `Waiting for events matching ${types}…`;
}

function readFrom() {
  const v = $('from-seq').value.trim();
  return /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : null;
}

$('filter-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const patterns = parsePatterns($('filter').value);
  $('filter').value = patterns.join(', ') || '>';
  apply(patterns.join(',') || '>', readFrom());
});

$('pause').addEventListener('click', () => {
  if (stream.paused) stream.resume();
  else stream.pause();
});

$('clear').addEventListener('click', () => {
  list.replaceChildren();
  noteOldest();
  empty.hidden = false;
  showSearch();
});

// ---- history: older, jump, search ------------------------------------------

function appendOlder(events) {
  // events are oldest first and older than every row: add at the bottom.
  const frag = document.createDocumentFragment();
  for (let i = events.length - 1; i >= 0; i--) frag.append(eventRow(events[i]));
  list.append(frag);
  noteOldest();
  if (events.length) empty.hidden = true;
  showSearch();
}

$('older').addEventListener('click', async () => {
  const btn = $('older');
  const note = $('older-note');
  const gen = applyGen;
  btn.disabled = true;
  note.textContent = 'Loading…';
  try {
    const back = await matchingBefore(applied, ceiling(), 100);
    if (gen !== applyGen) return;
    appendOlder(back.events);
    note.textContent = back.events.length
      ? `${num(back.events.length)} older loaded${back.more ? '' : '; that is the oldest buffered'}`
      : 'No older buffered events match.';
  } catch (err) {
    note.textContent = `Could not load older events: ${err.message}`;
  } finally {
    btn.disabled = false;
  }
});

const JUMP_MAX = 2000; // events loaded to reach a seq

$('jump-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('history-msg');
  const v = $('jump-seq').value.trim();
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    msg.textContent = 'Enter a seq, e.g. 42.';
    $('jump-seq').setAttribute('aria-invalid', 'true');
    return;
  }
  $('jump-seq').removeAttribute('aria-invalid');
  const seq = Number(v);
  const gen = applyGen;
  msg.textContent = `Looking for seq ${seq}…`;
  try {
    const top = ceiling();
    if (!rowFor(seq) && seq < top) {
      // Load every match from seq up to the oldest row, so the list stays
      // whole.
      const events = [];
      for (let after = seq - 1; ;) {
        const page = await api('GET', `/v1/events?after=${after}&limit=1000&${typesQuery(applied)}`);
        for (const e of page.events) if (e.seq < top) events.push(e);
        if (events.length > JUMP_MAX) {
          msg.textContent = `Seq ${seq} is more than ${num(JUMP_MAX)} matching events back: apply the filter with From seq ${seq} instead.`;
          return;
        }
        if (page.next <= after || page.next >= top - 1) break;
        after = page.next;
      }
      if (gen !== applyGen) return;
      appendOlder(events);
    }
    const row = rowFor(seq);
    if (row) {
      reveal(row);
      msg.textContent = `Seq ${seq}.`;
      return;
    }
    msg.textContent = await whyMissing(seq);
  } catch (err) {
    msg.textContent = `Could not jump to seq ${seq}: ${err.message}`;
  }
});

// ceiling is the seq below which older events go: the bottom row's, or,
// with no rows, past the last one the stream took.
function ceiling() {
  return Number.isFinite(oldestLoaded) ? oldestLoaded : (stream.lastSeq ?? bufNewest) + 1;
}

function rowFor(seq) {
  return list.querySelector(`li.event[data-seq="${seq}"]`);
}

function reveal(row) {
  if (row.hidden) {
    $('search').value = '';
    showSearch();
  }
  row.querySelector('details').open = true;
  for (const old of list.querySelectorAll('li.event.flash')) old.classList.remove('flash');
  row.classList.add('flash');
  row.scrollIntoView({ block: 'nearest' });
  row.querySelector('summary').focus({ preventScroll: true });
}

async function whyMissing(seq) {
  try {
    const e = await api('GET', `/v1/events/${seq}`);
    return `Seq ${seq} (${e.type}) does not match the filter ${applied}.`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return `Seq ${seq} is not buffered (overwritten, or not stored yet).`;
    throw err;
  }
}

function searchText() {
  return $('search').value.trim().toLowerCase();
}

function showSearch() {
  const q = searchText();
  const rows = list.querySelectorAll('li.event');
  let shown = 0;
  for (const li of rows) {
    li.hidden = Boolean(q) && !li.dataset.search.includes(q);
    if (!li.hidden) shown++;
  }
  $('search-result').textContent = q ? `${num(shown)} of ${num(rows.length)} loaded events match “${q}”.` : '';
}

$('search').addEventListener('input', showSearch);

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
  const raw = $('send-data').value;
  const body = { type: $('send-type').value.trim() };
  for (const f of ['source', 'subject']) {
    const v = $(`send-${f}`).value.trim();
    if (v) body[f] = v;
  }
  try {
    body.data = JSON.parse(raw);
  } catch (err) {
    // Bad JSON, caught here. The other fields may be wrong too: ask the
    // server without storing anything, with the data sent as text in a
    // batch whose second item is empty on purpose. A batch with an invalid
    // item is refused whole (422), and the errors of item 0 are the
    // server's word on this event's other fields.
    const errors = [{ field: '/data', message: `Not valid JSON: ${err.message}` }];
    try {
      await api('POST', '/v1/events', [{ ...body, data: raw }, {}]);
    } catch (perr) {
      if (perr instanceof ApiError) {
        for (const e of perr.errors) {
          if (e.field.startsWith('/0/') && e.field !== '/0/data') errors.push({ field: e.field.slice(2), message: e.message });
        }
      }
    }
    showFieldErrors(sendForm, errors, formErr);
    sendForm.querySelector('[aria-invalid="true"]')?.focus();
    return;
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
  await pollBuffer();
  apply(parsePatterns($('filter').value).join(',') || '>', readFrom());
  startWebhooks({ epoch: () => bufEpoch });
})();
