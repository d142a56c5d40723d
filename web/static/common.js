// Helpers shared by the agent console and the admin page (ES module).

export const params = new URLSearchParams(location.search);

export const $ = (id) => document.getElementById(id);

// wsURL is the WebSocket URL of path on the host that served the page.
export function wsURL(path) {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

// parse decodes a JSON object, or returns null for anything else.
export function parse(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch (e) {
    return null;
  }
}

// Backoff is exponential backoff with full jitter:
// delay = random(0, min(cap, base * 2^attempt)).
export class Backoff {
  constructor(base = 500, cap = 30000) {
    this.base = base;
    this.cap = cap;
    this.attempt = 0;
  }
  next() {
    return Math.random() * Math.min(this.cap, this.base * 2 ** this.attempt++);
  }
  reset() {
    this.attempt = 0;
  }
}

// devToken fetches a token from GET /dev/token (only served in dev mode);
// it throws an Error carrying the server's message when that fails.
export async function devToken(query) {
  let res;
  try {
    res = await fetch('/dev/token?' + query, { cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    throw new Error('Could not reach the hub: ' + e.message);
  }
  let text = '';
  try {
    text = await res.text();
  } catch (e) {
    /* keep the status alone */
  }
  const body = parse(text);
  if (res.ok && body && typeof body.token === 'string' && body.token) return body.token;
  let msg = body && ((body.error && (body.error.message || body.error)) || body.message);
  if (typeof msg !== 'string' || !msg) {
    msg = text.trim().slice(0, 300) || 'HTTP ' + res.status;
    if (res.status === 404) msg += ' (dev tokens are only served when the hub runs with --dev)';
  }
  throw new Error(msg);
}

// claims decodes a JWT's payload without checking it (the hub does), to know
// the site and agent before the welcome arrives.
export function claims(token) {
  const part = String(token || '').split('.')[1];
  if (!part) return null;
  try {
    const bin = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch (e) {
    return null;
  }
}

// toDate reads a wire time (RFC 3339), or returns null.
export function toDate(s) {
  if (!s) return null;
  const d = new Date(s);
  return isNaN(d) ? null : d;
}

const fmt = new Intl.DateTimeFormat('en-GB', {
  weekday: 'short', day: 'numeric', month: 'short',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

function parts(d) {
  const p = {};
  for (const x of fmt.formatToParts(d)) p[x.type] = x.value;
  p.hour = ('0' + (Number(p.hour) % 24)).slice(-2);
  return p;
}

const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());

// when formats a time in the viewer's time zone: "09:00" today, "Mon 09:00"
// within a week either way, "24 Dec 09:00" beyond.
export function when(d) {
  const p = parts(d);
  const hm = p.hour + ':' + p.minute;
  const days = Math.round((midnight(d) - midnight(new Date())) / 864e5);
  if (days === 0) return hm;
  if (Math.abs(days) < 7) return p.weekday + ' ' + hm;
  return p.day + ' ' + p.month + ' ' + hm;
}

// clock formats a time as HH:MM:SS in the viewer's time zone.
export function clock(d) {
  const p = parts(d);
  return p.hour + ':' + p.minute + ':' + p.second;
}

// setConn updates the connection indicator (#conn).
export function setConn(state, text) {
  const el = $('conn');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

// seconds formats a delay for "reconnecting in 3 s".
export const seconds = (ms) => Math.max(1, Math.round(ms / 1000)) + ' s';
