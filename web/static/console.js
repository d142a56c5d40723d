// The agent console: one agent device on /v1/agent (see docs/protocol.md),
// through the JavaScript SDK's AgentClient (clients/js, served from
// /static/ beside this page's modules).
import { $, params, devToken, claims, toDate, when, setConn, seconds } from './common.js';
import { AgentClient } from './agent-client.js';

const KINDS = ['desktop', 'mobile', 'web'];
const STATUSES = ['online', 'busy', 'offline'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const kind = KINDS.includes(params.get('device')) ? params.get('device') : 'web';
let token = params.get('token') || '';
let fromDev = false; // the token came from /dev/token, so it can be fetched again

let client = null; // the session's AgentClient; a new one per sign-in
let signingOut = false;

// What the hub told this device.
let me = null; // {site, id, groups}
let deviceId = '';
let myStatus = '';
let devices = [];
let roster = new Map();
let saving = 0; // status changes sent and not answered yet
let statusNote = ''; // why the status last changed, when not by this device

// ---- device id, kept per site, agent and device kind ----

const deviceKey = (site, agent) => `presencehub.device.${site}.${agent}.${kind}`;

function loadDevice(site, agent) {
  try {
    const id = localStorage.getItem(deviceKey(site, agent));
    return id && UUID.test(id) ? id : '';
  } catch (e) {
    return ''; // storage disabled
  }
}

function saveDevice(site, agent, id) {
  try {
    localStorage.setItem(deviceKey(site, agent), id);
  } catch (e) {
    /* storage disabled: a reload is then a new device */
  }
}

// ---- the session ----

// getToken answers the client: the token the page has, or, for a dev
// sign-in, a new one when the hub refused it or it is about to expire.
async function getToken({ reason }) {
  if (fromDev && (reason !== 'connect' || !token)) token = await devToken(devQuery());
  return token;
}

// connect starts a session with a new client (a new sign-in: the token,
// and so the agent, may have changed).
function connect() {
  const old = client;
  client = null; // its last events are not this session's
  if (old) old.close();
  signingOut = false;
  const c = claims(token);
  const id = c && c.site && c.sub ? loadDevice(c.site, c.sub) : '';
  let cl;
  try {
    cl = new AgentClient({ url: location.origin, getToken, device: id ? { id, kind } : { kind } });
  } catch (e) {
    showNotice('Could not open a connection: ' + e.message, 'Retry');
    setConn('closed', 'Not connected');
    return;
  }
  client = cl;
  const mine = (fn) => (v) => {
    if (client !== cl) return;
    try {
      fn(v);
    } catch (e) {
      console.error('presencehub console: failed to handle', v, e);
    }
  };
  cl.on('state', mine(stateChanged));
  cl.on('welcome', mine(welcomed));
  cl.on('status', mine(statusFrame));
  cl.on('devices', mine((f) => {
    devices = Array.isArray(f.devices) ? f.devices : [];
    renderDevices();
  }));
  cl.on('roster', mine((f) => {
    roster = new Map();
    for (const a of Array.isArray(f.agents) ? f.agents : []) {
      if (a && typeof a.id === 'string') roster.set(a.id, a);
    }
    renderRoster();
    if (f.hours) renderHours(f.hours);
  }));
  cl.on('agent', mine((f) => {
    if (typeof f.id !== 'string') return;
    roster.set(f.id, { id: f.id, status: f.status, groups: f.groups });
    renderRoster();
  }));
  cl.on('hours', mine(renderHours));
  cl.on('error', mine((err) => {
    // Errors of a request are its promise's; these are the others. The
    // one before a close is said by the state that follows.
    if (cl.state === 'open' && !signingOut) showNotice('The hub said: ' + err.message);
  }));
  cl.subscribeRoster().catch(() => {}); // the roster comes after every welcome
  cl.connect().catch(() => {}); // a refusal is said by the state event
}

function stateChanged(ev) {
  if (signingOut) return; // logout() says how it ended
  if (ev.state === 'connecting') {
    setConn('connecting', 'Connecting…');
    setControls(false);
    return;
  }
  if (ev.state === 'open') return; // welcomed() draws the session
  setControls(false);
  openMenu(false);
  saving = 0;
  if (ev.reconnect) {
    setConn('closed', 'Disconnected, reconnecting in ' + seconds(ev.delay));
    if (ev.error && ev.error.message) showNotice(ev.error.message);
    return;
  }
  switch (ev.code) {
    case 4005:
      signedOut('An admin signed this device out.');
      return;
    case 4002:
      setConn('closed', 'Disconnected');
      showNotice('This device connected again elsewhere (another tab or window?), and that session took over.',
        'Use this tab');
      return;
    case 4001:
      setConn('closed', 'Disconnected');
      showNotice('The hub refused this session: ' + (ev.error ? ev.error.message : ev.reason || 'bad or expired token') + '.',
        fromDev ? 'Sign in again' : 'Retry');
      return;
    default:
      setConn('closed', 'Disconnected');
      if (ev.code !== 1000) showNotice('Disconnected: ' + (ev.error ? ev.error.message : ev.reason) + '.', 'Retry');
  }
}

// signedOut leaves the signed-out state alone on the page: the session's
// status, devices, team and Log out button go, and what it knew is dropped,
// so that signing in again starts from what the hub says.
function signedOut(message) {
  me = null;
  deviceId = myStatus = '';
  devices = [];
  roster = new Map();
  saving = 0;
  renderDevices();
  renderRoster();
  $('app').hidden = true;
  $('signin-panel').hidden = true;
  document.title = 'Agent console · presencehub';
  setConn('closed', 'Signed out');
  showNotice(message, 'Sign in again');
}

// reconnectNow connects at once, after a fresh dev token when needed.
async function reconnectNow(newToken) {
  hideNotice();
  if (newToken && fromDev) {
    try {
      token = await devToken(devQuery());
    } catch (e) {
      showNotice('Could not get a dev token: ' + e.message, 'Retry');
      return;
    }
  }
  connect();
}

// ---- frames ----

function welcomed(f) {
  me = f.agent && typeof f.agent === 'object' ? f.agent : me;
  if (typeof f.device === 'string' && f.device) {
    deviceId = f.device;
    if (me && me.site && me.id) saveDevice(me.site, me.id, deviceId);
  }
  if (STATUSES.includes(f.status)) myStatus = f.status;
  devices = Array.isArray(f.devices) ? f.devices : [];
  saving = 0;
  lastActivity = Date.now(); // the hub counts the hello as activity
  hideNotice();
  $('signin-panel').hidden = true;
  $('app').hidden = false;
  setConn('open', 'Connected');
  setControls(true);
  renderMe('');
  renderDevices();
  renderHours(f.hours);
  $('grace').textContent = Number(f.grace_ms) > 0 ?
    `If this device drops, your status holds for ${seconds(f.grace_ms)} (grace period).` : '';
}

function statusFrame(f) {
  if (!STATUSES.includes(f.status)) return;
  myStatus = f.status;
  if (f.by === 'idle') {
    // Back from idle, the first input should bring the agent online at
    // once, not up to activityEvery later; and a site whose idle delay
    // is shorter than the usual interval needs activity more often.
    lastActivity = 0;
    if (Number(f.idle_after_ms) > 0) activityEvery = Math.min(ACTIVITY_EVERY_MS, Number(f.idle_after_ms) / 2);
  }
  renderMe(reason(f));
}

// reason says in words why a status frame that this device did not ask for
// changed the status (docs/protocol.md, "by").
function reason(f) {
  switch (f.by) {
    case 'admin':
      return 'set by an admin' + (f.by_agent ? ' (' + f.by_agent + ')' : '');
    case 'idle': {
      const after = Number(f.idle_after_ms) > 0 ? ' after ' + duration(Number(f.idle_after_ms)) : '';
      return 'set to ' + f.status + after + ' without activity';
    }
    case 'activity':
      return f.status === 'online' ? 'back online: activity' : 'set to ' + f.status + ': activity';
    case 'hours':
      return 'set ' + f.status + ' at closing time';
    case 'device':
    case undefined:
    case '': {
      if (!f.by_device || f.by_device === deviceId) return '';
      const other = devices.find((d) => d && d.id === f.by_device);
      return 'set from ' + (other ? kindName(other.kind) : 'another device');
    }
    default:
      return 'changed elsewhere';
  }
}

// duration says a delay in words: "15 min", "2 h", "1 h 30 min", "45 s".
function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return Math.max(s, 1) + ' s';
  if (s < 3600) {
    const m = Math.floor(s / 60);
    return m + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
  }
  const h = Math.floor(s / 3600);
  const m = Math.round((s % 3600) / 60);
  return h + ' h' + (m ? ' ' + m + ' min' : '');
}

// ---- activity ----

// The hub sets an idle agent to the site's idle status (site settings,
// idle.after); input on this page tells it the agent is still there. The
// hub takes activity at any rate, but there is no need to say it more
// often than this.
const ACTIVITY_EVERY_MS = 30000;
let activityEvery = ACTIVITY_EVERY_MS; // shorter once an idle frame says the site's delay is short
let lastActivity = 0; // when this device last sent activity; 0: send the next at once

function activity() {
  const now = Date.now();
  // Only on a welcomed session: before the welcome the hub takes nothing
  // but the hello.
  if (!client || client.state !== 'open' || signingOut || now - lastActivity < activityEvery) return;
  if (client.activity()) lastActivity = now;
}

// ---- rendering ----

const kindName = (k) => (KINDS.includes(k) ? k : 'web');

function initials(id) {
  const words = String(id || '').split(/[-_.\s]+/).filter(Boolean);
  const s = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 1);
  return s.toUpperCase();
}

// renderMe draws the agent; note, when given, replaces the status note.
function renderMe(note) {
  if (note !== undefined) statusNote = note;
  const status = myStatus || 'offline';
  const name = me && me.id ? me.id : '';
  $('avatar').dataset.status = status;
  $('initials').textContent = initials(name);
  $('agent-name').textContent = name;
  $('agent-site').textContent = me && me.site ? '· ' + me.site + (me.groups && me.groups.length ? ' · ' + me.groups.join(', ') : '') : '';
  $('my-status').textContent = myStatus || '—';
  $('my-status').dataset.status = myStatus;
  $('status-note').textContent = saving ? 'saving…' : statusNote;
  for (const st of STATUSES) $('set-' + st).setAttribute('aria-checked', String(st === myStatus));
  document.title = (myStatus ? myStatus[0].toUpperCase() + myStatus.slice(1) + ' · ' : '') +
    (name ? name + ' · ' : '') + 'presencehub';
}

function renderDevices() {
  const ul = $('devices');
  ul.textContent = '';
  const others = [];
  for (const d of devices) {
    if (!d || typeof d.id !== 'string') continue;
    const li = document.createElement('li');
    const mine = d.id === deviceId;
    li.dataset.device = d.id;
    li.dataset.kind = kindName(d.kind);
    if (mine) li.classList.add('this-device');
    else others.push(kindName(d.kind));
    const k = document.createElement('span');
    k.className = 'kind';
    k.textContent = kindName(d.kind);
    li.append(k);
    const since = toDate(d.since);
    if (since) li.append(small('since ' + when(since)));
    if (mine) li.append(small('this device', 'tag'));
    ul.append(li);
  }
  if (!ul.children.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No live devices';
    ul.append(li);
  }
  const kinds = [...new Set(others)];
  const also = $('also-on');
  also.textContent = kinds.length ? 'Also on ' + kinds.join(', ') : '';
  also.hidden = !kinds.length;
}

function small(text, cls = 'muted') {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function renderRoster() {
  const ul = $('roster');
  ul.textContent = '';
  const ids = [...roster.keys()].sort();
  for (const id of ids) {
    const a = roster.get(id);
    const status = STATUSES.includes(a.status) ? a.status : 'offline';
    const li = document.createElement('li');
    li.dataset.agent = id;
    li.dataset.status = status;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.dataset.status = status;
    const name = document.createElement('span');
    name.className = 'rname';
    name.textContent = id;
    li.append(dot, name);
    if (me && id === me.id) li.append(small('you', 'tag'));
    if (Array.isArray(a.groups) && a.groups.length) li.append(small(a.groups.join(', ')));
    li.append(small(status, 'rstatus'));
    ul.append(li);
  }
  if (!ids.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No agents yet';
    ul.append(li);
  }
}

function renderHours(h) {
  if (!h || typeof h !== 'object') return;
  const el = $('hours');
  const next = toDate(h.next_change);
  el.dataset.open = String(!!h.open);
  if (h.open) {
    el.textContent = 'Open';
    el.title = next ? 'Closes at ' + when(next) : 'No working hours set: always open';
  } else {
    el.textContent = next ? 'Closed — opens ' + (when(next).includes(' ') ? '' : 'at ') + when(next) : 'Closed';
    el.title = '';
  }
}

// ---- controls ----

function setControls(on) {
  for (const st of STATUSES) $('set-' + st).disabled = !on;
}

function openMenu(open) {
  $('status-menu').hidden = !open;
  $('avatar').setAttribute('aria-expanded', String(open));
}

function setStatus(status) {
  const cl = client;
  if (!cl || cl.state !== 'open' || signingOut) {
    showNotice('Not connected: your status was not changed.');
    return;
  }
  saving++;
  renderMe('');
  const done = (err) => {
    if (client !== cl) return;
    saving = Math.max(0, saving - 1);
    renderMe();
    // A change cut off by a disconnect is said by the connection's state.
    if (err && !['disconnected', 'closed', 'not_connected'].includes(err.code)) {
      showNotice('Could not change your status: ' + err.message);
    }
  };
  cl.setStatus(status).then(() => done(null), done);
}

function logout() {
  openMenu(false);
  const cl = client;
  if (!cl) return;
  signingOut = true;
  setControls(false);
  setConn('closed', 'Signing out…');
  // The SDK says bye (connecting first when it is not connected, so the
  // status clears now rather than after the grace period), and says it
  // again when the hub could not store it (4004); not for ever.
  cl.bye({ timeout: 10000 }).then(
    () => client === cl && signedOut('You are signed out on this device.'),
    () => client === cl && signedOut('Signed out here, but the hub could not be told: your status clears when the grace period runs out.'));
}

function showNotice(text, button) {
  $('notice').hidden = false;
  $('notice-text').textContent = text;
  $('reconnect').hidden = !button;
  if (button) $('reconnect').textContent = button;
}

function hideNotice() {
  $('notice').hidden = true;
}

// ---- sign in ----

function devQuery() {
  const q = new URLSearchParams();
  q.set('agent', params.get('agent') || 'alice');
  const groups = (params.get('groups') || '').split(',').map((g) => g.trim()).filter(Boolean);
  if (groups.length) q.set('groups', groups.join(','));
  if (params.get('site')) q.set('site', params.get('site'));
  return q.toString();
}

async function signInDev() {
  fromDev = true;
  setConn('connecting', 'Signing in…');
  try {
    token = await devToken(devQuery());
  } catch (e) {
    setConn('closed', 'Not connected');
    showSignin('Sign-in failed: ' + e.message);
    return;
  }
  $('signin-panel').hidden = true;
  connect();
}

function showSignin(message) {
  $('app').hidden = true;
  $('signin-panel').hidden = false;
  $('agent').value = params.get('agent') || 'alice';
  $('groups').value = params.get('groups') || '';
  $('device-kind').value = kind;
  if (message) showNotice(message);
}

function wire() {
  $('avatar').addEventListener('click', (e) => {
    e.stopPropagation();
    openMenu($('status-menu').hidden);
  });
  for (const st of STATUSES) {
    $('set-' + st).addEventListener('click', (e) => {
      e.stopPropagation();
      openMenu(false);
      setStatus(st);
      $('avatar').focus();
    });
  }
  document.addEventListener('click', (e) => {
    if (!$('status-menu').hidden && !$('status-menu').contains(e.target)) openMenu(false);
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('status-menu').hidden) {
      openMenu(false);
      $('avatar').focus();
    }
  });
  $('logout').addEventListener('click', logout);
  $('reconnect').addEventListener('click', () => reconnectNow(true));
  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const agent = $('agent').value.trim();
    const groups = $('groups').value.split(',').map((g) => g.trim()).filter(Boolean).join(',');
    const device = $('device-kind').value;
    // Put the choice in the URL so that a reload signs in again (and is a
    // reconnect of the same device).
    const q = new URLSearchParams(location.search);
    q.delete('token');
    q.set('dev', '');
    q.set('agent', agent || 'alice');
    if (groups) q.set('groups', groups);
    else q.delete('groups');
    q.set('device', device);
    if (device !== kind) {
      location.search = q.toString(); // the device kind is fixed per page load
      return;
    }
    history.replaceState(null, '', '?' + q.toString());
    for (const [k, v] of q) params.set(k, v);
    if (!groups) params.delete('groups');
    hideNotice();
    signInDev();
  });
  // Input and focus are activity (see activity()); capture, so that a
  // handler that stops propagation does not hide it.
  for (const type of ['keydown', 'pointerdown']) document.addEventListener(type, activity, { capture: true, passive: true });
  window.addEventListener('focus', activity);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') activity();
  });
  // Back online, or back from the bfcache, the SDK reconnects at once.
}

wire();
if (token) connect();
else if (params.has('dev')) signInDev();
else showSignin();
