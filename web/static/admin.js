// Live hub statistics from the /v1/admin socket (see docs/protocol.md).
import { $, params, wsURL, parse, Backoff, devToken, claims, toDate, clock, setConn, seconds } from './common.js';
import { obj, text, cell, statusBadge } from './cells.js';
import { startKeepers, keepersFromStats, loadKeepers } from './keepers.js';

const POINTS = 120; // chart history, one point per stats frame
const STALE_MS = 10000; // stats come every second; this long without one is a dead socket

let token = params.get('token') || '';
let fromDev = false;
let ws = null;
let timer = 0;
let lastFrame = 0;
let lastError = '';
const backoff = new Backoff();
const hist = { agent: [], widget: [], admin: [], changes: [] };

// ---- socket ----

function connect() {
  clearTimeout(timer);
  timer = 0;
  drop();
  lastError = '';
  setConn('connecting', 'Connecting…');
  let s;
  try {
    s = new WebSocket(wsURL(socketPath()));
  } catch (e) {
    notice('Could not open a connection: ' + e.message, 'Retry');
    setConn('closed', 'Not connected');
    return;
  }
  ws = s;
  let first = 0;
  lastFrame = Date.now(); // the watchdog also covers a hello never answered
  s.onopen = () => s.send(JSON.stringify({ type: 'hello', token }));
  s.onmessage = (ev) => {
    if (ws !== s || typeof ev.data !== 'string') return;
    const f = parse(ev.data);
    if (!f) return;
    if (f.type === 'stats') {
      lastFrame = Date.now();
      if (!first) {
        first = lastFrame;
        setConn('open', 'Live');
        notice('');
      }
      try {
        render(f);
      } catch (e) {
        console.error('presencehub admin: failed to render stats', f, e);
      }
    } else if (f.type === 'error') {
      lastError = typeof f.message === 'string' && f.message ? f.message : String(f.code || 'error');
    }
    // Other frame types are ignored.
  };
  s.onclose = (ev) => {
    if (ws !== s) return;
    ws = null;
    closed(ev.code, ev.reason, first);
  };
}

// socketPath names the token's site in the socket's URL, for load balancers
// that hash on it (docs/routing.md); a token whose site cannot be read names
// none, and the hub answers it at the hello.
function socketPath() {
  const c = claims(token);
  const site = c && typeof c.site === 'string' ? c.site : '';
  return /^[A-Za-z0-9_-]{1,64}$/.test(site) ? '/v1/admin?site=' + site : '/v1/admin';
}

// drop forgets the current socket without reacting to its close.
function drop() {
  if (!ws) return;
  const old = ws;
  ws = null;
  old.onclose = old.onmessage = old.onopen = null;
  try {
    old.close();
  } catch (e) {
    /* already closed */
  }
}

function closed(code, reason, first) {
  if (code === 4001) {
    setConn('closed', 'Disconnected');
    notice('The hub refused the admin session: ' + (lastError || reason || 'bad or expired token') + '.',
      fromDev ? 'Get a new token' : 'Retry');
    return;
  }
  if (first && Date.now() - first >= 1000 && code !== 1008) backoff.reset();
  const delay = backoff.next();
  setConn('closed', 'Disconnected, reconnecting in ' + seconds(delay));
  if (lastError) notice(lastError);
  timer = setTimeout(connect, delay);
}

// The watchdog replaces a socket that stopped delivering stats.
setInterval(() => {
  if (ws && Date.now() - lastFrame > STALE_MS) {
    drop();
    closed(0, '', 0);
  }
}, 2000);

async function reconnectNow() {
  clearTimeout(timer);
  timer = 0;
  notice('');
  if (fromDev) {
    try {
      token = await devToken(devQuery());
    } catch (e) {
      notice('Could not get a dev token: ' + e.message, 'Retry');
      return;
    }
  }
  backoff.reset();
  connect();
}

// ---- rendering ----

const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
const rate = (v) => String(Math.round(num(v) * 100) / 100);

function render(f) {
  const site = typeof f.site === 'string' ? f.site : '';
  text('site', site ? '· ' + site : '');
  document.title = (site ? site + ' · ' : '') + 'Hub statistics · presencehub';

  const replicas = Array.isArray(f.replicas) ? f.replicas.filter((r) => r && typeof r === 'object') : [];
  const totals = obj(f.totals);
  const conns = obj(totals.connections);
  // Totals, or the replicas' sum if a hub sends no totals.
  const total = (k) => (k in conns ? num(conns[k]) : replicas.reduce((n, r) => n + num(obj(r.connections)[k]), 0));
  const changes = 'status_changes_per_sec' in totals ? num(totals.status_changes_per_sec) :
    replicas.reduce((n, r) => n + num(r.status_changes_per_sec), 0);
  text('conn-agent', total('agent'));
  text('conn-widget', total('widget'));
  text('conn-admin', total('admin'));
  text('changes-rate', rate(changes));

  const ss = obj(f.site_stats);
  const agents = obj(ss.agents);
  text('agents-online', num(agents.online));
  text('agents-busy', num(agents.busy));
  text('agents-offline', num(agents.offline));
  text('pending-grace', num(agents.pending_grace));

  renderWidgets(obj(obj(ss.widgets).by_group), obj(ss.widget_status));
  renderReplicas(replicas);

  push('agent', total('agent'));
  push('widget', total('widget'));
  push('admin', total('admin'));
  push('changes', changes);
  chart('chart-connections', ['agent', 'widget', 'admin']);
  chart('chart-changes', ['changes']);

  const at = toDate(f.at);
  text('updated', at ? clock(at) : clock(new Date()));

  keepersFromStats(site, ss);
}

function renderWidgets(byGroup, statusByGroup) {
  const tbody = $('widgets').tBodies[0];
  tbody.textContent = '';
  const groups = [...new Set([...Object.keys(byGroup), ...Object.keys(statusByGroup)])];
  groups.sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const g of groups) {
    const tr = document.createElement('tr');
    tr.dataset.group = g;
    const name = cell(tr, g === '' ? 'site-wide' : g);
    if (g === '') name.className = 'muted';
    cell(tr, num(byGroup[g]), 'num');
    cell(tr, statusBadge(typeof statusByGroup[g] === 'string' ? statusByGroup[g] : ''));
    tbody.append(tr);
  }
  if (!groups.length) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    cell(tr, 'No widgets open').colSpan = 3;
    tbody.append(tr);
  }
}

function renderReplicas(replicas) {
  const tbody = $('replicas').tBodies[0];
  tbody.textContent = '';
  // A replica is named by its id (--replica-id, by default host:port), which
  // is unique; the host name alone is not when replicas share a host.
  const rows = replicas.slice().sort((a, b) => String(a.hub).localeCompare(String(b.hub)));
  for (const r of rows) {
    const hub = String(r.hub || '');
    const tr = document.createElement('tr');
    tr.dataset.hub = hub;
    const name = document.createElement('span');
    name.className = 'rname';
    name.textContent = hub || '?';
    name.title = (r.name ? 'on host ' + r.name : '') +
      (toDate(r.started) ? (r.name ? ', ' : '') + 'started ' + toDate(r.started).toLocaleString() : '');
    cell(tr, name);
    const nats = document.createElement('span');
    nats.className = 'badge';
    nats.dataset.ok = String(r.nats === 'connected');
    nats.textContent = String(r.nats || 'unknown');
    cell(tr, nats);
    cell(tr, r.view_loaded ? 'loaded' : 'loading', r.view_loaded ? '' : 'warn');
    const c = obj(r.connections);
    const ct = cell(tr, `${num(c.agent)} / ${num(c.widget)} / ${num(c.admin)}`, 'num');
    ct.title = 'agent / widget / admin';
    cell(tr, rate(r.status_changes_per_sec), 'num');
    cell(tr, num(r.frames_out), 'num');
    cell(tr, num(r.slow_closed), num(r.slow_closed) ? 'num warn' : 'num');
    cell(tr, num(r.pending_grace), 'num');
    tbody.append(tr);
  }
  if (!rows.length) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    cell(tr, 'No replicas reported').colSpan = 8;
    tbody.append(tr);
  }
}

// ---- charts: inline SVG polylines, newest point on the right ----

function push(series, value) {
  const h = hist[series];
  h.push(value);
  if (h.length > POINTS) h.splice(0, h.length - POINTS);
}

function chart(id, series) {
  const svg = $(id);
  if (!svg) return;
  const [, , w, h] = svg.getAttribute('viewBox').split(/\s+/).map(Number);
  const max = Math.max(1, ...[].concat(...series.map((s) => hist[s])));
  const step = w / (POINTS - 1);
  for (const s of series) {
    const line = svg.querySelector(`polyline[data-series="${s}"]`);
    const pts = hist[s];
    const x0 = w - (pts.length - 1) * step;
    line.setAttribute('points', pts.map((v, i) =>
      `${(x0 + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(' '));
  }
  text(id + '-max', 'max ' + (Number.isInteger(max) ? max : rate(max)));
}

// ---- start ----

function notice(msg, button) {
  $('notice').hidden = !msg;
  $('notice-text').textContent = msg;
  $('reconnect').hidden = !button;
  if (button) $('reconnect').textContent = button;
}

function devQuery() {
  const q = new URLSearchParams({ agent: 'admin', role: 'admin' });
  if (params.get('site')) q.set('site', params.get('site'));
  return q.toString();
}

// Who keeps the chat open (keepers.js) reads the token as it is now.
startKeepers(() => token);

$('reconnect').addEventListener('click', reconnectNow);
window.addEventListener('online', () => {
  if (!ws && timer) reconnectNow();
});

(async () => {
  if (!token) {
    fromDev = true;
    setConn('connecting', 'Getting a token…');
    try {
      token = await devToken(devQuery());
    } catch (e) {
      setConn('closed', 'Not connected');
      notice('No admin token: open this page with ?token=<admin token>, or run the hub with --dev. ' +
        'The hub said: ' + e.message, 'Retry');
      return;
    }
  }
  connect();
  loadKeepers();
})();
