// Small DOM helpers. Text always goes in as text, never as HTML.

// h builds an element: h('li', {class: 'x', dataset: {seq: 1}}, child, …).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

// JSON_DEPTH is how many levels of nesting jsonTree shows; deeper values
// are shown as […] / {…}. JSON.stringify recurses, and data nested some
// thousands deep (the gateway takes 10,000) overflows the stack.
const JSON_DEPTH = 64;

// prettyJSON is JSON.stringify(value, null, 2) down to JSON_DEPTH levels;
// deeper arrays and objects are shown as […] and {…}. cut.deep is set when
// anything was cut.
function prettyJSON(value, depth, indent, cut) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const arr = Array.isArray(value);
  const keys = arr ? null : Object.keys(value);
  if ((arr ? value.length : keys.length) === 0) return arr ? '[]' : '{}';
  if (depth >= JSON_DEPTH) {
    cut.deep = true;
    return arr ? '[…]' : '{…}';
  }
  const inner = indent + '  ';
  const parts = arr
    ? value.map((v) => inner + prettyJSON(v, depth + 1, inner, cut))
    : keys.map((k) => `${inner}${JSON.stringify(k)}: ${prettyJSON(value[k], depth + 1, inner, cut)}`);
  return `${arr ? '[' : '{'}\n${parts.join(',\n')}\n${indent}${arr ? ']' : '}'}`;
}

// jsonTree renders a value as pretty-printed, highlighted JSON, at most
// JSON_DEPTH levels deep (a note says when more was cut). It never throws:
// what cannot be rendered is shown as a message.
export function jsonTree(value) {
  const pre = h('pre', { class: 'json' });
  const cut = { deep: false };
  let text;
  try {
    text = value === undefined ? 'undefined' : prettyJSON(value, 0, '', cut);
  } catch (err) {
    pre.append(`(this value cannot be shown: ${err})`);
    return pre;
  }
  if (cut.deep) text += `\n// nested deeper than ${JSON_DEPTH} levels: the deeper levels are shown as […] and {…}`;
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (let m; (m = re.exec(text));) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1]) {
      pre.append(h('span', { class: m[2] ? 'j-key' : 'j-str' }, m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3]) {
      pre.append(h('span', { class: 'j-lit' }, m[3]));
    } else {
      pre.append(h('span', { class: 'j-num' }, m[4]));
    }
    last = re.lastIndex;
  }
  pre.append(text.slice(last));
  return pre;
}

// clock formats a time as HH:MM:SS.mmm, local.
export function clock(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t ?? '');
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ago formats a past (or future) time relative to now.
export function ago(t) {
  if (!t) return '–';
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  const a = Math.abs(s);
  const v = a < 60 ? `${a}s` : a < 3600 ? `${Math.round(a / 60)}m` : a < 86400 ? `${Math.round(a / 3600)}h` : `${Math.round(a / 86400)}d`;
  return s >= 0 ? `${v} ago` : `in ${v}`;
}

// num formats a count or rate compactly.
export function num(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: v < 10 ? digits : 0 });
}

// showFieldErrors puts each problem error next to the field whose error
// element has the matching data-field (a JSON pointer, or its prefix);
// what matches no field goes to formErr. It returns the first field shown.
export function showFieldErrors(form, errors, formErr) {
  clearFieldErrors(form, formErr);
  const slots = [...form.querySelectorAll('.field-error[data-field]')];
  const rest = [];
  let first = null;
  for (const e of errors) {
    const slot = slots.find((s) => e.field === s.dataset.field || e.field.startsWith(`${s.dataset.field}/`));
    if (!slot) {
      rest.push(e.field ? `${e.field}: ${e.message}` : e.message);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${e.message}` : e.message;
    const input = form.querySelector(`[aria-describedby~="${slot.id}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    }
  }
  formErr.textContent = rest.join('. ');
  return first;
}

export function clearFieldErrors(form, formErr) {
  for (const s of form.querySelectorAll('.field-error')) s.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  formErr.textContent = '';
}
