// RateChart draws events per second over the last minute on a canvas: one
// bar a second, the current (partial) second on the right.

const SECONDS = 60;

export class RateChart {
  constructor(canvas, onRate) {
    this.canvas = canvas;
    this.onRate = onRate;
    this.buckets = new Array(SECONDS).fill(0);
    this.now = Math.floor(Date.now() / 1000);
    new ResizeObserver(() => this.draw()).observe(canvas);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
    setInterval(() => this.tick(), 1000);
  }

  // add counts n events received now. The canvas's data-counted keeps the
  // total drawn since the page opened.
  add(n) {
    this.advance();
    this.buckets[SECONDS - 1] += n;
    this.canvas.dataset.counted = String(Number(this.canvas.dataset.counted || 0) + n);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  advance() {
    const now = Math.floor(Date.now() / 1000);
    const steps = Math.min(now - this.now, SECONDS);
    for (let i = 0; i < steps; i++) {
      this.buckets.shift();
      this.buckets.push(0);
    }
    this.now = now;
  }

  tick() {
    this.advance();
    // The rate is the last full second's count.
    this.onRate(this.buckets[SECONDS - 2]);
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const css = getComputedStyle(c);
    const bar = css.getPropertyValue('--chart-bar').trim() || '#4f46e5';
    const grid = css.getPropertyValue('--chart-grid').trim() || '#ddd';
    const text = css.getPropertyValue('--chart-text').trim() || '#666';
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const max = niceMax(Math.max(...this.buckets));
    const top = 6;
    const bottom = h - 2;
    const left = 0;
    const right = w - 34;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.strokeStyle = grid;
    ctx.fillStyle = text;
    ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(bottom - (bottom - top) * f) + 0.5;
      ctx.beginPath();
      ctx.setLineDash(f === 0 ? [] : [3, 3]);
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillText(fmt(max * f), right + 6, Math.min(Math.max(y, top + 4), bottom - 5));
    }
    ctx.setLineDash([]);
    const slot = (right - left) / SECONDS;
    const gap = slot > 6 ? 2 : 1;
    ctx.fillStyle = bar;
    this.buckets.forEach((n, i) => {
      if (!n) return;
      const bh = Math.max(2, ((bottom - top) * n) / max);
      ctx.globalAlpha = i === SECONDS - 1 ? 0.45 : 1;
      ctx.fillRect(left + i * slot + gap / 2, bottom - bh, slot - gap, bh);
    });
    ctx.globalAlpha = 1;
  }
}

function niceMax(v) {
  if (v <= 10) return 10;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : String(Math.round(v));
}
