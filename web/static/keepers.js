// Who keeps the chat open: the admin page's panel of the agents that keep
// the widgets online or busy, from the admin agents API, with Set offline
// and End device. admin.js starts it with the page's token (startKeepers)
// and hands it what each stats frame says of the site (keepersFromStats).
//
// The agents whose effective status is online or busy are the ones that
// make a widget show online or busy: every one counts for the site-wide
// widget, a group's members for the group's widget, and an agent in no
// group for every group's (docs/protocol.md, widgets). The list comes from
// GET /v1/admin/sites/{site}/agents: at once when a stats frame shows the
// site's agents or widgets changed, and every few seconds besides (a device
// that comes and goes changes no count).
import { $, parse, claims, toDate, when, clock } from './common.js';
import { obj, text, cell, statusBadge } from './cells.js';

const KEEPERS_EVERY_MS = 5000;
const KEEPS = ['online', 'busy'];

let token = () => ''; // the page's admin token, as startKeepers gives it
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
  const c = claims(token());
  return c && typeof c.site === 'string' && c.site ? c.site : statsSite;
};
const sitePath = () => '/v1/admin/sites/' + encodeURIComponent(siteOf());

export function keepersFromStats(site, ss) {
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
      headers: body ? { Authorization: 'Bearer ' + token(), 'Content-Type': 'application/json' } : { Authorization: 'Bearer ' + token() },
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

export async function loadKeepers() {
  if (!token()) return;
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

// startKeepers starts the panel with getToken, which returns the page's
// admin token (it changes when a dev token is fetched again), and reloads
// the list every few seconds. The page calls loadKeepers once it has a token.
export function startKeepers(getToken) {
  token = getToken;
  setInterval(() => {
    if (Date.now() - keepersAt >= KEEPERS_EVERY_MS) loadKeepers();
  }, 1000);
}

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
