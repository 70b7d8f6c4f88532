// LiveStream follows GET /v1/stream over a WebSocket. It never shows an
// event twice and never skips one: every event with a seq above the last one
// taken is handed on exactly once, and each reconnect (after a drop, a 1008
// "slow consumer" close, or a pause that held too much) resumes with
// after=<last seq taken>&epoch=<epoch>.
//
// A socket that closes before it ever opened may have been refused (the
// gateway answers a bad filter with 400, which a WebSocket cannot read):
// check() then says why, and a reason stops the stream instead of
// reconnecting forever.

import { streamURL } from './api.js';

const RETRY_MIN = 500;
const RETRY_MAX = 15000;

export class LiveStream {
  // onEvents(events) gets each batch of new events in seq order; onNotice
  // (kind, text) gets gaps, resets and disconnects; onState(state, detail)
  // gets 'connecting' | 'live' | 'paused' | 'reconnecting'; onTaken(n)
  // counts new events as they arrive, shown or held, and how many of them
  // are live (stored after this socket connected, not replayed).
  // check() resolves to why the stream cannot be served (a string), or to
  // null when it may simply try again; a reason moves to state 'error'.
  // holdMax bounds the events held while paused: past it the socket is
  // closed and resume reconnects with after.
  constructor({ onEvents, onNotice, onState, onTaken = () => {}, check = async () => null, holdMax = 10000 }) {
    this.check = check;
    this.onEvents = onEvents;
    this.onTaken = onTaken;
    this.onNotice = onNotice;
    this.onState = onState;
    this.holdMax = holdMax;
    this.types = '>';
    this.lastSeq = null; // last seq taken (shown or held); null: start live
    this.epoch = '';
    this.paused = false;
    this.held = [];
    this.ws = null;
    this.timer = 0;
    this.retry = RETRY_MIN;
    this.gen = 0; // bumps on every socket we open, so stale callbacks are ignored
    this.started = false;
    this.liveAfter = Infinity; // seqs above this arrived live on this socket
    this.error = '';
  }

  // start follows types from after (null: live only).
  start(types, after = null, epoch = '') {
    this.started = true;
    this.error = '';
    this.types = types || '>';
    this.lastSeq = after;
    this.epoch = epoch;
    this.held = [];
    this.open();
  }

  get heldCount() {
    return this.held.length;
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.state();
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    if (held.length) this.onEvents(held);
    if (!this.ws) this.open();
    this.state();
  }

  // reconnect opens a new socket from the last seq taken (e.g. a new key).
  reconnect() {
    if (this.started && !(this.paused && !this.ws)) this.open();
  }

  // stop closes the stream for good (until the next start), in state
  // 'error' with reason.
  stop(reason) {
    this.close();
    this.started = false;
    this.error = reason;
    this.onState('error', reason);
  }

  close() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.gen++;
    if (this.ws) this.ws.close(1000, 'closed by the dashboard');
    this.ws = null;
  }

  state(detail) {
    let s;
    if (this.error) s = 'error';
    else if (this.paused) s = 'paused';
    else if (this.ws && this.ws.readyState === WebSocket.OPEN) s = 'live';
    else if (this.ws) s = 'connecting';
    else s = 'reconnecting';
    this.onState(s, detail);
  }

  open() {
    this.close();
    const gen = ++this.gen;
    const params = { types: this.types };
    if (this.lastSeq !== null) {
      params.after = this.lastSeq;
      if (this.epoch) params.epoch = this.epoch;
    }
    const ws = new WebSocket(streamURL(params));
    this.ws = ws;
    this.opened = false;
    this.liveAfter = Infinity;
    this.state();
    ws.onopen = () => {
      if (gen !== this.gen) return;
      this.opened = true;
      this.retry = RETRY_MIN;
      this.state();
    };
    ws.onmessage = (m) => {
      if (gen !== this.gen || typeof m.data !== 'string') return;
      this.take(m.data);
    };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.ws = null;
      this.closed(ev);
    };
  }

  take(text) {
    const fresh = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      let v;
      try {
        v = JSON.parse(line);
      } catch {
        // An event line starts with its seq: keep it, as raw text, so its
        // row is shown and the seq never passes a row not shown.
        const m = /^\s*\{"seq":(\d+),/.exec(line);
        if (!m) {
          this.onNotice('error', `unreadable stream line: ${line.slice(0, 80)}`);
          continue;
        }
        v = { seq: Number(m[1]), raw: line };
      }
      if (typeof v.seq === 'number') {
        if (this.lastSeq !== null && v.seq <= this.lastSeq) continue; // seen already
        this.lastSeq = v.seq;
        fresh.push(v);
      } else if (v.hello) {
        this.epoch = v.hello.epoch;
        this.liveAfter = v.hello.newest;
        if (this.lastSeq === null) this.lastSeq = v.hello.newest;
      } else if (v.reset) {
        this.epoch = v.reset.epoch;
        this.liveAfter = v.reset.newest;
        this.lastSeq = 0;
        this.onNotice('reset', `The log restarted (epoch ${v.reset.epoch}); following from seq ${v.reset.oldest}.`);
      } else if (v.gap) {
        this.onNotice('gap', `Events ${v.gap.from}–${v.gap.to} were overwritten before this page could read them.`);
      }
    }
    if (!fresh.length) return;
    this.onTaken(fresh.length, fresh.filter((e) => e.seq > this.liveAfter).length);
    if (!this.paused) {
      this.onEvents(fresh);
      return;
    }
    this.held.push(...fresh);
    if (this.held.length >= this.holdMax && this.ws) {
      // Stop taking more: the gateway's buffer holds the rest, and resume
      // asks for it with after.
      this.gen++;
      this.ws.close(1000, 'paused');
      this.ws = null;
    }
    this.state();
  }

  async closed(ev) {
    if (!this.opened) {
      // Refused before it opened: ask why before trying again.
      const gen = this.gen;
      this.state('checking');
      let reason = null;
      try {
        reason = await this.check(this.types);
      } catch {
        reason = null; // cannot tell: keep trying
      }
      if (gen !== this.gen || this.ws) return; // started anew meanwhile
      if (reason) {
        this.stop(reason);
        return;
      }
    }
    let delay = this.retry;
    this.retry = Math.min(this.retry * 2, RETRY_MAX);
    if (ev.code === 1008) {
      this.onNotice('slow', `The gateway cut this stream off as too slow (${ev.reason || 'no reason'}); resuming after seq ${this.lastSeq ?? 0}.`);
      delay = RETRY_MIN;
    } else if (ev.code === 1001) {
      this.onNotice('closed', 'The gateway is shutting down; reconnecting when it is back.');
    }
    this.state(`retry in ${Math.round(delay / 1000) || 1}s`);
    this.timer = setTimeout(() => this.open(), delay);
  }
}

// parsePatterns splits "a.*, b.>" into its patterns.
export function parsePatterns(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}
