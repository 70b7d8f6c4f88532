// Webhooks: list, register, enable/disable, delete; per webhook a queue
// panel from Little's law and, for the one selected, the delivery log kept
// live by the delivery tail (SSE), with polling when the tail is absent.
// The log filters by status and pages back; a row opens the delivery's
// drawer (drawer.js).

import { api, ApiError, apiFetch, readSSE } from './api.js';
import { $, ago, clearFieldErrors, h, num, showFieldErrors } from './dom.js';
import { openDelivery, setDrawerHooks } from './drawer.js';
import { parsePatterns } from './stream.js';

const cards = new Map(); // id -> card
let selected = ''; // id whose delivery log is open
let tail = null; // {id, abort, live}
let pollTimer = 0;
let tailMissing = false; // the gateway has no delivery tail: poll only

// Deliveries a page; ?dlvpage=N sets it (the tests page with small N).
const PAGE = Number(new URLSearchParams(location.search).get('dlvpage')) || 50;

export function startWebhooks({ epoch = () => '' } = {}) {
  setDrawerHooks({
    epoch,
    afterRetry(id) {
      const c = cards.get(id);
      if (c) loadLog(c);
      poll();
    },
  });
  $('wh-form').addEventListener('submit', register);
  $('wh-secret-copy').addEventListener('click', copySecret);
  $('wh-secret-done').addEventListener('click', () => {
    $('wh-secret').hidden = true;
    $('wh-secret-value').textContent = '';
    $('wh-url').focus();
  });
  poll();
  setInterval(refreshLog, 1000);
}

async function poll() {
  clearTimeout(pollTimer);
  let next = 2000;
  try {
    const { webhooks } = await api('GET', '/v1/webhooks');
    $('wh-unavailable').hidden = true;
    render(webhooks);
  } catch (err) {
    next = 10000;
    const el = $('wh-unavailable');
    el.hidden = false;
    el.textContent = err instanceof ApiError && err.status === 404
      ? 'This gateway does not serve the webhooks API (/v1/webhooks answered 404).'
      : `Could not load webhooks: ${err.message}`;
  }
  pollTimer = setTimeout(poll, next);
}

function render(webhooks) {
  const list = $('wh-list');
  const seen = new Set();
  let i = 0;
  for (const wh of webhooks) {
    seen.add(wh.id);
    let card = cards.get(wh.id);
    if (!card) {
      card = makeCard(wh);
      cards.set(wh.id, card);
    }
    update(card, wh);
    // Keep the API's order (oldest first), moving only what is out of
    // place so that focus stays where it is.
    if (list.children[i] !== card.el) list.insertBefore(card.el, list.children[i] || null);
    i++;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) drop(id, card);
  }
  $('wh-empty').hidden = webhooks.length > 0;
  $('wh-count').textContent = webhooks.length ? `${webhooks.length} registered` : '';
}

function drop(id, card) {
  card.el.remove();
  cards.delete(id);
  if (selected === id) select('');
}

function metric(sym, label, unit) {
  const value = h('span', { class: 'v' }, '–');
  return {
    value,
    el: h('div', { class: 'metric' },
      h('div', { class: 'sym' }, sym),
      h('div', { class: 'val' }, value, unit ? h('small', {}, ` ${unit}`) : null),
      h('div', { class: 'lbl' }, label)),
  };
}

function makeCard(wh) {
  const c = { id: wh.id, wh };
  c.url = h('code', { class: 'wh-url' });
  c.types = h('span', { class: 'chips' });
  c.desc = h('span', { class: 'desc' });
  c.statusText = h('span', { class: 'status-text' });
  c.toggle = h('button', { type: 'button', class: 'toggle', onclick: () => toggle(c) });
  c.logBtn = h('button', { type: 'button', 'aria-controls': `log-${wh.id}`, onclick: () => select(selected === c.id ? '' : c.id) }, 'Deliveries');
  c.del = h('button', { type: 'button', class: 'danger', onclick: () => remove(c) }, 'Delete');
  c.lambda = metric('λ', 'arrival rate', '/s');
  c.w = metric('W', 'mean time in system', 'ms');
  c.l = metric('L', 'in system now', '');
  c.lw = metric('λ·W', 'Little’s law predicts', '');
  c.barL = h('span', { class: 'bar bar-l' });
  c.barLW = h('span', { class: 'bar bar-lw' });
  c.verdict = h('span', { class: 'verdict' });
  c.counts = h('div', { class: 'counts' });
  c.logState = h('span', { class: 'log-state' });
  c.rows = h('tbody');
  c.logEmpty = h('p', { class: 'empty' }, 'No deliveries yet.');
  c.cursors = []; // before= of each page back; [] on the newest page
  c.statusSel = h('select', { class: 'status-filter', id: `status-${wh.id}`, onchange: () => firstPage(c) },
    h('option', { value: '' }, 'All'),
    ...['pending', 'retrying', 'succeeded', 'failed'].map((v) => h('option', { value: v }, v)));
  c.newestBtn = h('button', { type: 'button', class: 'small newest', onclick: () => firstPage(c) }, 'Newest');
  c.olderBtn = h('button', { type: 'button', class: 'small older', onclick: () => olderPage(c) }, 'Older');
  c.pageNote = h('span', { class: 'page-note muted' });
  c.log = h('div', { class: 'log', id: `log-${wh.id}`, hidden: true },
    h('div', { class: 'log-head' }, h('h3', {}, 'Delivery log'), c.logState,
      h('div', { class: 'log-tools' },
        h('label', { for: `status-${wh.id}`, class: 'inline-label' }, 'Status'), c.statusSel,
        c.newestBtn, c.olderBtn, c.pageNote)),
    h('div', { class: 'table-wrap' },
      h('table', {},
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col' }, 'Seq'),
          h('th', { scope: 'col', class: 'num' }, 'Attempts'),
          h('th', { scope: 'col' }, 'Code'),
          h('th', { scope: 'col' }, 'Last error'),
          h('th', { scope: 'col' }, 'Last attempt'),
          h('th', { scope: 'col', class: 'num' }, 'Took'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        c.rows)),
    c.logEmpty);
  c.el = h('li', { class: 'wh', dataset: { id: wh.id } },
    h('div', { class: 'wh-head' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      h('div', { class: 'wh-title' }, c.url, h('div', { class: 'wh-meta' }, c.statusText, c.types, c.desc)),
      h('div', { class: 'wh-actions' }, c.toggle, c.logBtn, c.del)),
    h('div', { class: 'queue', role: 'group', 'aria-label': 'Queue (Little’s law)' },
      c.lambda.el, c.w.el, c.l.el, c.lw.el,
      h('div', { class: 'compare' },
        h('div', { class: 'bars', 'aria-hidden': 'true' },
          h('div', {}, h('span', { class: 'bar-name' }, 'L'), h('span', { class: 'track' }, c.barL)),
          h('div', {}, h('span', { class: 'bar-name' }, 'λ·W'), h('span', { class: 'track' }, c.barLW))),
        c.verdict)),
    c.counts,
    c.log);
  return c;
}

function update(c, wh) {
  c.wh = wh;
  const s = wh.stats || {};
  c.el.dataset.status = wh.status;
  c.url.textContent = wh.url;
  c.url.title = wh.id;
  c.types.replaceChildren(...wh.types.map((t) => h('code', { class: 'chip' }, t)));
  c.desc.textContent = wh.description || '';
  c.statusText.textContent = wh.status === 'disabled' && wh.disabled_reason
    ? `disabled: ${wh.disabled_reason}`
    : wh.status.replace('_', ' ');
  c.toggle.textContent = wh.enabled ? 'Disable' : 'Enable';
  c.toggle.setAttribute('aria-label', `${wh.enabled ? 'Disable' : 'Enable'} ${wh.url}`);
  c.del.setAttribute('aria-label', c.del.dataset.armed ? `Confirm deleting ${wh.url}` : `Delete ${wh.url}`);
  c.logBtn.setAttribute('aria-expanded', String(selected === wh.id));

  const lam = s.arrival_rate ?? 0;
  const w = s.mean_time_in_system_ms ?? 0;
  const l = s.in_system ?? 0;
  const pred = (lam * w) / 1000;
  c.lambda.value.textContent = num(lam, lam > 0 && lam < 1 ? 2 : 1);
  c.w.value.textContent = num(w, w < 10 ? 1 : 0);
  c.l.value.textContent = num(l);
  c.lw.value.textContent = num(pred, pred > 0 && pred < 1 ? 2 : 1);
  const scale = Math.max(l, pred, 1);
  c.barL.style.width = `${(100 * l) / scale}%`;
  c.barLW.style.width = `${(100 * pred) / scale}%`;
  // Little's law: in a steady state L = λ·W. L well above λ·W means
  // deliveries pile up faster than they finish.
  let verdict;
  let text;
  if (wh.status !== 'active' && l > 0) {
    verdict = 'held';
    text = `${num(l)} held while ${wh.status.replace('_', ' ')}`;
  } else if (lam < 0.01 && l === 0) {
    verdict = 'idle';
    text = 'Idle';
  } else if (l > pred * 1.5 + 1) {
    verdict = 'behind';
    text = pred >= 0.1 ? `Falling behind: L is ${num(l / pred, 1)}× λ·W` : 'Falling behind: nothing finishing';
  } else if (s.retrying) {
    verdict = 'behind';
    text = `Retrying ${num(s.retrying)}: the endpoint is failing`;
  } else {
    verdict = 'ok';
    text = 'Keeping up';
  }
  c.verdict.dataset.verdict = verdict;
  c.verdict.textContent = text;
  c.counts.replaceChildren(
    h('span', { class: s.waiting ? 'warn' : '' }, h('strong', {}, num(s.waiting ?? 0)), ' waiting in the log'),
    h('span', {}, h('strong', {}, num(s.in_flight ?? 0)), ' in flight'),
    h('span', { class: s.retrying ? 'warn' : '' }, h('strong', {}, num(s.retrying ?? 0)), ' retrying'),
    h('span', {}, h('strong', {}, num(s.succeeded ?? 0)), ' succeeded'),
    h('span', { class: s.failed ? 'bad' : '' }, h('strong', {}, num(s.failed ?? 0)), ' failed'));
}

// ---- actions ---------------------------------------------------------------

async function register(ev) {
  ev.preventDefault();
  const form = $('wh-form');
  const formErr = $('wh-form-err');
  clearFieldErrors(form, formErr);
  const body = { url: $('wh-url').value.trim() };
  const types = parsePatterns($('wh-types').value);
  if (types.length) body.types = types;
  const desc = $('wh-desc').value.trim();
  if (desc) body.description = desc;
  const btn = form.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const wh = await api('POST', '/v1/webhooks', body);
    $('wh-secret-for').textContent = wh.url;
    $('wh-secret-value').textContent = wh.secret;
    $('wh-secret-copy').textContent = 'Copy';
    $('wh-secret').hidden = false;
    $('wh-url').value = '';
    $('wh-desc').value = '';
    const card = makeCard(wh);
    cards.set(wh.id, card);
    update(card, wh);
    $('wh-list').append(card.el);
    $('wh-empty').hidden = true;
    select(wh.id);
    $('wh-secret-copy').focus();
  } catch (err) {
    if (err instanceof ApiError && err.errors.length) showFieldErrors(form, err.errors, formErr)?.focus();
    else formErr.textContent = err.message;
  } finally {
    btn.disabled = false;
  }
}

async function copySecret() {
  const code = $('wh-secret-value');
  const btn = $('wh-secret-copy');
  try {
    await navigator.clipboard.writeText(code.textContent);
  } catch {
    // No clipboard API (plain http on another host): select and copy.
    const range = document.createRange();
    range.selectNodeContents(code);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand('copy');
  }
  btn.textContent = 'Copied';
}

async function toggle(c) {
  c.toggle.disabled = true;
  try {
    update(c, await api('PATCH', `/v1/webhooks/${c.id}`, { enabled: !c.wh.enabled }));
  } catch (err) {
    c.statusText.textContent = `could not change: ${err.message}`;
  } finally {
    c.toggle.disabled = false;
  }
}

async function remove(c) {
  if (!c.del.dataset.armed) {
    c.del.dataset.armed = 'true';
    c.del.textContent = 'Confirm delete';
    c.del.setAttribute('aria-label', `Confirm deleting ${c.wh.url}`);
    c.disarm = setTimeout(() => {
      delete c.del.dataset.armed;
      c.del.textContent = 'Delete';
      c.del.setAttribute('aria-label', `Delete ${c.wh.url}`);
    }, 4000);
    return;
  }
  clearTimeout(c.disarm);
  c.del.disabled = true;
  try {
    await api('DELETE', `/v1/webhooks/${c.id}`);
    drop(c.id, c);
    $('wh-empty').hidden = cards.size > 0;
    $('wh-url').focus();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) drop(c.id, c);
    else c.statusText.textContent = `could not delete: ${err.message}`;
  } finally {
    c.del.disabled = false;
  }
}

async function retry(c, d, btn) {
  btn.disabled = true;
  btn.textContent = 'Retrying…';
  try {
    await api('POST', `/v1/webhooks/${c.id}/deliveries/${d.id}/retry`);
  } catch (err) {
    btn.title = err.message;
  }
  loadLog(c);
  poll(); // the card's counts move at once (a retrying one may be done)
}

function firstPage(c) {
  c.cursors = [];
  loadLog(c);
}

function olderPage(c) {
  const last = c.rows.lastElementChild;
  if (!last) return;
  c.cursors.push(last.dataset.id);
  loadLog(c);
}

// ---- delivery log ----------------------------------------------------------

function select(id) {
  if (tail) {
    tail.abort.abort();
    tail = null;
  }
  selected = id;
  for (const c of cards.values()) {
    const open = c.id === id;
    c.log.hidden = !open;
    c.logBtn.setAttribute('aria-expanded', String(open));
    c.el.classList.toggle('selected', open);
  }
  const c = cards.get(id);
  if (!c) return;
  loadLog(c);
  startTail(c);
}

async function startTail(c) {
  const t = { id: c.id, abort: new AbortController(), live: false, lastLoad: 0 };
  tail = t;
  c.logState.textContent = 'connecting…';
  try {
    if (tailMissing) throw new Error('no delivery tail');
    const res = await apiFetch(`/v1/webhooks/${c.id}/deliveries/stream`, {
      headers: { Accept: 'text/event-stream' },
      signal: t.abort.signal,
    });
    if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      await res.body?.cancel();
      // A 404 for a webhook that the list still shows means this gateway
      // has no tail: stop asking, poll.
      if (res.status === 404 && cards.has(c.id)) tailMissing = true;
      throw new Error(`HTTP ${res.status}`);
    }
    t.live = true;
    c.logState.textContent = 'live';
    c.logState.dataset.live = 'true';
    await readSSE(res, () => {
      t.dirty = true; // an attempt finished: reload on the next tick
    });
  } catch {
    // Tail absent, ended or aborted: fall back to polling.
  }
  if (tail !== t) return;
  t.live = false;
  c.logState.textContent = 'polling';
  delete c.logState.dataset.live;
  if (tailMissing) return;
  setTimeout(() => {
    if (tail === t) startTail(c);
  }, 10000);
}

// refreshLog runs every second: it reloads the open log when the tail said
// something happened, every 2 s when polling, and every 10 s anyway.
function refreshLog() {
  if (!tail || document.hidden) return;
  const c = cards.get(tail.id);
  if (!c || c.loading) return;
  const age = Date.now() - (tail.lastLoad || 0);
  if (tail.dirty || (!tail.live && age >= 2000) || age >= 10000) loadLog(c);
}

async function loadLog(c) {
  if (tail && tail.id === c.id) {
    tail.dirty = false;
    tail.lastLoad = Date.now();
  }
  c.loading = true;
  try {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (c.statusSel.value) q.set('status', c.statusSel.value);
    const before = c.cursors.at(-1);
    if (before) q.set('before', before);
    const { deliveries } = await api('GET', `/v1/webhooks/${c.id}/deliveries?${q}`);
    c.rows.replaceChildren(...deliveries.map((d) => deliveryRow(c, d)));
    c.logEmpty.hidden = deliveries.length > 0;
    c.logEmpty.textContent = c.statusSel.value ? `No ${c.statusSel.value} deliveries${before ? ' on this page' : ''}.` : before ? 'No older deliveries.' : 'No deliveries yet.';
    c.olderBtn.disabled = deliveries.length < PAGE;
    c.newestBtn.disabled = !before;
    c.pageNote.textContent = before ? `page ${c.cursors.length + 1}` : '';
  } catch (err) {
    c.logEmpty.hidden = false;
    c.logEmpty.textContent = `Could not load the delivery log: ${err.message}`;
  } finally {
    c.loading = false;
  }
}

function deliveryRow(c, d) {
  const canRetry = d.status === 'failed' || d.status === 'retrying';
  const btn = canRetry
    ? h('button', { type: 'button', class: 'small', 'aria-label': `Retry delivery of seq ${d.event_seq}` }, 'Retry')
    : null;
  btn?.addEventListener('click', () => retry(c, d, btn));
  const next = d.status === 'retrying' && d.next_attempt_at ? ` · next ${ago(d.next_attempt_at)}` : '';
  const open = h('button', { type: 'button', class: 'link mono', 'aria-label': `Open the delivery of seq ${d.event_seq}` }, `#${d.event_seq}`);
  const tr = h('tr', { class: 'dlv', dataset: { id: d.id, seq: d.event_seq, status: d.status, origin: d.origin || 'live' } },
    h('td', {}, h('span', { class: `badge badge-${d.status}` }, d.status),
      d.origin === 'replay' ? h('span', { class: 'badge badge-replay', title: 'made by a replay' }, 'replay') : null),
    h('td', {}, open),
    h('td', { class: 'num' }, num(d.attempts)),
    h('td', { class: 'mono' }, d.last_status_code ?? '–'),
    h('td', { class: 'err', title: d.last_error || '' }, (d.last_error || '') + next),
    h('td', { title: d.last_attempt_at || '' }, ago(d.last_attempt_at)),
    h('td', { class: 'num' }, d.duration_ms === null || d.duration_ms === undefined ? '–' : `${num(d.duration_ms, 0)} ms`),
    h('td', {}, btn));
  // The whole row opens the drawer; its buttons keep their own clicks.
  tr.addEventListener('click', (ev) => {
    if (ev.target.closest('button') && ev.target !== open) return;
    openDelivery(c.wh, d.id);
  });
  return tr;
}
