// Live hub statistics from the /v1/admin socket (see docs/protocol.md).
import { $, params, wsURL, parse, Backoff, devToken, claims, toDate, when, clock, setConn, seconds } from './common.js';

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
    s = new WebSocket(wsURL('/v1/admin'));
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
const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
const STATUSES = ['online', 'busy', 'offline'];

function text(id, value) {
  const el = $(id);
  if (el) el.textContent = String(value);
}

function cell(tr, value, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  if (value instanceof Node) td.append(value);
  else td.textContent = String(value);
  tr.append(td);
  return td;
}

function statusBadge(status) {
  const span = document.createElement('span');
  span.className = 'status';
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.dataset.status = STATUSES.includes(status) ? status : 'offline';
  span.append(dot, document.createTextNode(' ' + (status || '—')));
  return span;
}

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

// ---- who keeps the chat open: the admin agents API ----
//
// The agents whose effective status is online or busy are the ones that
// make a widget show online or busy: every one counts for the site-wide
// widget, a group's members for the group's widget, and an agent in no
// group for every group's (docs/protocol.md, widgets). The list comes from
// GET /v1/admin/sites/{site}/agents: at once when a stats frame shows the
// site's agents or widgets changed, and every few seconds besides (a device
// that comes and goes changes no count).

const KEEPERS_EVERY_MS = 5000;
const KEEPS = ['online', 'busy'];

let statsSite = ''; // the site the stats frames name
let statsGroups = []; // the groups that have widgets open, from the stats
let statsSig = ''; // what the last stats frame said of the site's agents and widgets
let keepersAt = 0; // when the last load of the agents started
let keepersLoading = false;
let keepersAgain = false; // a load was asked for while one ran
let keepersSig = ''; // what the table shows, to leave it (and focus) alone when nothing changed
let agentsList = null; // the last list of agents loaded
let loadError = '';
let actionError = '';
const inFlight = new Set(); // keys of the actions under way, their buttons disabled

const str = (v) => (typeof v === 'string' ? v : '');
const siteOf = () => {
  const c = claims(token);
  return c && typeof c.site === 'string' && c.site ? c.site : statsSite;
};
const sitePath = () => '/v1/admin/sites/' + encodeURIComponent(siteOf());

function keepersFromStats(site, ss) {
  statsSite = site;
  const widgets = obj(obj(ss.widgets).by_group);
  statsGroups = [...new Set([...Object.keys(widgets), ...Object.keys(obj(ss.widget_status))])].filter(Boolean);
  const sig = JSON.stringify([ss.agents, ss.widget_status, Object.keys(widgets).sort()]);
  if (sig !== statsSig) {
    statsSig = sig;
    loadKeepers();
  }
}

// api calls the admin API and returns the decoded answer, or throws an
// Error saying plainly what went wrong.
async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body ? { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' } : { Authorization: 'Bearer ' + token },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
  } catch (e) {
    throw new Error('could not reach the hub (' + e.message + ')');
  }
  let textBody = '';
  try {
    textBody = await res.text();
  } catch (e) {
    /* keep the status alone */
  }
  const v = parse(textBody);
  if (res.ok) return v || {};
  let msg = v && v.error && typeof v.error === 'object' ? str(v.error.message) || str(v.error.code) : '';
  if (!msg) msg = textBody.trim().slice(0, 300);
  const why = { 401: 'the admin token was refused', 403: 'the admin token may not do this', 404: 'not found' }[res.status];
  throw new Error((msg || why || 'the hub answered an error') + ' (HTTP ' + res.status + ')');
}

async function loadKeepers() {
  if (!token) return;
  if (keepersLoading) {
    keepersAgain = true;
    return;
  }
  keepersLoading = true;
  keepersAgain = false;
  keepersAt = Date.now();
  try {
    if (!siteOf()) throw new Error('the admin token names no site');
    const v = await api('GET', sitePath() + '/agents');
    agentsList = (Array.isArray(v.agents) ? v.agents : []).filter((a) => a && typeof a.id === 'string');
    loadError = '';
    renderKeepers();
  } catch (e) {
    loadError = 'Could not load the agents: ' + e.message + '.';
  } finally {
    keepersLoading = false;
    renderKeepersError();
    if (keepersAgain) loadKeepers();
  }
}

setInterval(() => {
  if (Date.now() - keepersAt >= KEEPERS_EVERY_MS) loadKeepers();
}, 1000);

function renderKeepersError() {
  // What the panel shows is as old as its last load: say so when loading fails.
  $('keepers-panel').dataset.stale = String(!!loadError);
  const msg = [actionError, loadError].filter(Boolean);
  const box = $('keepers-error');
  box.hidden = !msg.length;
  box.textContent = '';
  if (!msg.length) return;
  const span = document.createElement('span');
  span.id = 'keepers-error-text';
  span.textContent = msg.join(' ');
  box.append(span);
  if (actionError) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = 'Dismiss';
    b.addEventListener('click', () => {
      actionError = '';
      renderKeepersError();
    });
    box.append(b);
  }
}

// keeps reports whether agent a keeps the widget of group (the site-wide
// widget for '') online or busy.
function keeps(a, group) {
  if (!KEEPS.includes(a.effective)) return false;
  const groups = Array.isArray(a.groups) ? a.groups : [];
  return group === '' || !groups.length || groups.includes(group);
}

function renderKeepers() {
  const agents = agentsList || [];
  const keepers = agents.filter((a) => KEEPS.includes(a.effective));
  const groups = new Set(statsGroups);
  for (const a of agents) for (const g of Array.isArray(a.groups) ? a.groups : []) if (typeof g === 'string') groups.add(g);
  const scopes = ['', ...[...groups].sort()];
  const sig = JSON.stringify([keepers, scopes]);
  text('keepers-updated', 'updated ' + clock(new Date()));
  if (sig === keepersSig) return;
  keepersSig = sig;

  // Where the focus was, to put it back on the same button after the
  // table is drawn again.
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : '';

  const ul = $('scopes');
  ul.textContent = '';
  for (const g of scopes) {
    // Online first: they are who makes the widget say online.
    const who = agents.filter((a) => keeps(a, g)).sort((a, b) => (a.effective === b.effective ? 0 : a.effective === 'online' ? -1 : 1));
    const status = who.some((a) => a.effective === 'online') ? 'online' : who.length ? 'busy' : 'offline';
    const li = document.createElement('li');
    li.dataset.scope = g;
    li.dataset.status = status;
    const name = document.createElement('span');
    name.className = 'rname';
    name.textContent = g === '' ? 'Site-wide widget' : g;
    li.append(name, statusBadge(status), document.createTextNode('·'));
    const names = document.createElement('span');
    names.className = 'who';
    names.textContent = who.length ? who.map((a) => a.id + (a.effective === 'busy' ? ' (busy)' : '')).join(', ') :
      'nobody, the widget shows offline';
    li.append(names);
    ul.append(li);
  }

  const tbody = $('keepers').tBodies[0];
  tbody.textContent = '';
  for (const a of keepers) tbody.append(keeperRow(a));
  if (!keepers.length) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    cell(tr, 'Nobody: no agent is online or busy, so every widget shows offline.').colSpan = 6;
    tbody.append(tr);
  }
  if (focused) {
    const b = document.querySelector(`#keepers-panel button[data-key="${CSS.escape(focused)}"]`);
    if (b) b.focus();
  }
}

function keeperRow(a) {
  const tr = document.createElement('tr');
  tr.dataset.agent = a.id;
  tr.dataset.status = a.effective;

  const who = document.createElement('div');
  const name = document.createElement('span');
  name.className = 'rname';
  name.textContent = a.id;
  who.append(name);
  const by = obj(a.changed_by);
  const changed = toDate(a.changed_at);
  if (by.kind || changed) {
    const small = document.createElement('div');
    small.className = 'muted small';
    small.textContent = changedBy(by) + (changed ? ' · ' + when(changed) : '');
    if (changed) small.title = changed.toLocaleString();
    who.append(small);
  }
  cell(tr, who);
  cell(tr, statusBadge(a.effective));
  const groups = Array.isArray(a.groups) ? a.groups.filter((g) => typeof g === 'string') : [];
  cell(tr, groups.length ? 'site-wide, ' + groups.join(', ') : 'site-wide, every group (in no group)', groups.length ? '' : 'muted');

  const devs = document.createElement('ul');
  devs.className = 'devs';
  for (const d of Array.isArray(a.devices) ? a.devices : []) {
    if (!d || typeof d.id !== 'string') continue;
    const li = document.createElement('li');
    li.dataset.device = d.id;
    li.dataset.state = str(d.state);
    const kind = str(d.kind) || 'web';
    const k = document.createElement('span');
    k.className = 'kind';
    k.textContent = kind;
    k.title = 'device ' + d.id;
    const state = document.createElement('span');
    state.className = 'state';
    state.dataset.state = str(d.state);
    state.textContent = str(d.state) || '?';
    li.append(k, state);
    const since = toDate(d.since);
    const graceUntil = toDate(d.grace_until);
    const info = document.createElement('span');
    info.className = 'muted small';
    info.textContent = (since ? 'since ' + when(since) : '') + (graceUntil ? (since ? ', ' : '') + 'until ' + when(graceUntil) : '');
    li.append(info);
    const label = `End ${a.id}'s ${kind} device ${d.id.slice(0, 8)}`;
    li.append(actionButton('End device', label, 'end:' + a.id + ':' + d.id, () => endDevice(a.id, d.id, kind)));
    devs.append(li);
  }
  cell(tr, devs);

  const act = toDate(a.last_activity);
  const actCell = cell(tr, act ? when(act) : '—', act ? 'last-activity' : 'last-activity muted');
  actCell.title = act ? act.toLocaleString() : 'not known: the idle rule is off, or no activity was seen yet';

  cell(tr, actionButton('Set offline', `Set ${a.id} offline`, 'offline:' + a.id, () => setOffline(a.id)));
  return tr;
}

// changedBy says who set an agent's status (changed_by, kinds as an
// event's "by"); nobody has since the agent first connected when it is null.
function changedBy(by) {
  switch (by.kind) {
    case undefined:
    case '':
      return 'connected';
    case 'device':
      return 'set on a device';
    case 'admin':
      return 'set by admin ' + str(by.id);
    case 'idle':
      return 'set by the idle rule';
    case 'activity':
      return 'back on activity';
    case 'hours':
      return 'set at closing time';
    default:
      return 'set by ' + String(by.kind);
  }
}

function actionButton(label, aria, key, run) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary small';
  b.textContent = label;
  b.setAttribute('aria-label', aria);
  b.dataset.key = key;
  b.disabled = inFlight.has(key);
  b.addEventListener('click', () => act(key, run));
  return b;
}

// act runs an admin action once at a time per button, shows what went
// wrong, and reloads the list after it.
async function act(key, run) {
  if (inFlight.has(key)) return;
  const buttons = () => document.querySelectorAll(`#keepers button[data-key="${CSS.escape(key)}"]`);
  inFlight.add(key);
  for (const b of buttons()) b.disabled = true;
  actionError = '';
  renderKeepersError();
  try {
    await run();
  } catch (e) {
    actionError = e.message;
  } finally {
    inFlight.delete(key);
    for (const b of buttons()) b.disabled = false;
    renderKeepersError();
    loadKeepers();
  }
}

async function setOffline(agent) {
  try {
    await api('PUT', sitePath() + '/agents/' + encodeURIComponent(agent) + '/status', { status: 'offline' });
  } catch (e) {
    throw new Error(`Could not set ${agent} offline: ${e.message}.`);
  }
  text('keepers-done', `${agent} set offline.`);
}

async function endDevice(agent, device, kind) {
  try {
    await api('DELETE', sitePath() + '/agents/' + encodeURIComponent(agent) + '/devices/' + encodeURIComponent(device));
  } catch (e) {
    throw new Error(`Could not end ${agent}'s ${kind} device: ${e.message}.`);
  }
  text('keepers-done', `${agent}'s ${kind} device ended.`);
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
