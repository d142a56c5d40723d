// The agent console: one agent device on /v1/agent (see docs/protocol.md).
import { $, params, wsURL, parse, Backoff, devToken, claims, toDate, when, setConn, seconds } from './common.js';

const KINDS = ['desktop', 'mobile', 'web'];
const STATUSES = ['online', 'busy', 'offline'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const kind = KINDS.includes(params.get('device')) ? params.get('device') : 'web';
let token = params.get('token') || '';
let fromDev = false; // the token came from /dev/token, so it can be fetched again

let ws = null;
let timer = 0; // a reconnect is scheduled while non-zero
let byeTimer = 0;
const backoff = new Backoff();
let byeSent = false; // logging out: no reconnect after the close
let byeOnWelcome = false; // log out clicked while disconnected
let lastError = '';

// What the hub told this device.
let me = null; // {site, id, groups}
let deviceId = '';
let myStatus = '';
let devices = [];
let roster = new Map();
let refSeq = 0;
const pending = new Map(); // set_status ref -> status

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

// ---- socket ----

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

function stopTimer() {
  clearTimeout(timer);
  timer = 0;
}

function connect() {
  stopTimer();
  if (ws) {
    const old = ws;
    ws = null;
    old.onclose = old.onmessage = old.onopen = null;
    old.close();
  }
  byeSent = false;
  lastError = '';
  setConn('connecting', 'Connecting…');
  setControls(false);
  const c = claims(token);
  const id = c && c.site && c.sub ? loadDevice(c.site, c.sub) : '';
  let s;
  try {
    s = new WebSocket(wsURL('/v1/agent'));
  } catch (e) {
    showNotice('Could not open a connection: ' + e.message, 'Retry');
    setConn('closed', 'Not connected');
    return;
  }
  ws = s;
  let welcomed = 0;
  s.onopen = () => {
    const device = id ? { id, kind } : { kind };
    s.send(JSON.stringify({ type: 'hello', token, device }));
  };
  s.onmessage = (ev) => {
    if (ws !== s || typeof ev.data !== 'string') return;
    const f = parse(ev.data);
    if (!f) return;
    if (f.type === 'welcome') welcomed = Date.now();
    try {
      handle(f);
    } catch (e) {
      console.error('presencehub console: failed to handle frame', f, e);
    }
  };
  s.onclose = (ev) => {
    if (ws !== s) return;
    ws = null;
    closed(ev, welcomed);
  };
}

function closed(ev, welcomed) {
  setControls(false);
  openMenu(false);
  clearTimeout(byeTimer);
  if (byeSent || byeOnWelcome) {
    const unsent = byeOnWelcome;
    byeSent = byeOnWelcome = false;
    signedOut(unsent ?
      'Signed out here, but the hub could not be told: your status clears when the grace period runs out.' :
      'You are signed out on this device.');
    return;
  }
  if (ev.code === 4001) {
    setConn('closed', 'Disconnected');
    showNotice('The hub refused this session: ' + (lastError || ev.reason || 'bad or expired token') + '.',
      fromDev ? 'Sign in again' : 'Retry');
    return;
  }
  if (ev.code === 4005) {
    signedOut('An admin signed this device out.');
    return;
  }
  if (ev.code === 4002) {
    setConn('closed', 'Disconnected');
    showNotice('This device connected again elsewhere (another tab or window?), and that session took over.',
      'Use this tab');
    return;
  }
  // A session that stayed up and got its welcome starts the backoff over.
  if (welcomed && Date.now() - welcomed >= 1000 && ev.code !== 1008) backoff.reset();
  const delay = backoff.next();
  setConn('closed', 'Disconnected, reconnecting in ' + seconds(delay));
  if (lastError) showNotice(lastError);
  timer = setTimeout(connect, delay);
}

// signedOut leaves the signed-out state alone on the page: the session's
// status, devices, team and Log out button go, and what it knew is dropped,
// so that signing in again starts from what the hub says.
function signedOut(message) {
  me = null;
  deviceId = myStatus = '';
  devices = [];
  roster = new Map();
  pending.clear();
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
  stopTimer();
  hideNotice();
  if (newToken && fromDev) {
    try {
      token = await devToken(devQuery());
    } catch (e) {
      showNotice('Could not get a dev token: ' + e.message, 'Retry');
      return;
    }
  }
  backoff.reset();
  connect();
}

// ---- frames ----

function handle(f) {
  switch (f.type) {
    case 'welcome':
      me = f.agent && typeof f.agent === 'object' ? f.agent : me;
      if (typeof f.device === 'string' && f.device) {
        deviceId = f.device;
        if (me && me.site && me.id) saveDevice(me.site, me.id, deviceId);
      }
      if (STATUSES.includes(f.status)) myStatus = f.status;
      devices = Array.isArray(f.devices) ? f.devices : [];
      pending.clear();
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
      if (byeOnWelcome) {
        logout();
        return;
      }
      send({ type: 'subscribe_roster' });
      break;
    case 'status': {
      if (!STATUSES.includes(f.status)) return;
      myStatus = f.status;
      let note = '';
      if (f.ref && pending.has(f.ref)) {
        pending.delete(f.ref);
      } else {
        note = reason(f);
      }
      if (f.by === 'idle') {
        // Back from idle, the first input should bring the agent online at
        // once, not up to activityEvery later; and a site whose idle delay
        // is shorter than the usual interval needs activity more often.
        lastActivity = 0;
        if (Number(f.idle_after_ms) > 0) activityEvery = Math.min(ACTIVITY_EVERY_MS, Number(f.idle_after_ms) / 2);
      }
      renderMe(note);
      break;
    }
    case 'devices':
      devices = Array.isArray(f.devices) ? f.devices : [];
      renderDevices();
      break;
    case 'roster':
      roster = new Map();
      for (const a of Array.isArray(f.agents) ? f.agents : []) {
        if (a && typeof a.id === 'string') roster.set(a.id, a);
      }
      renderRoster();
      if (f.hours) renderHours(f.hours);
      break;
    case 'agent':
      if (typeof f.id !== 'string') return;
      roster.set(f.id, { id: f.id, status: f.status, groups: f.groups });
      renderRoster();
      break;
    case 'hours':
      renderHours(f);
      break;
    case 'error':
      lastError = typeof f.message === 'string' && f.message ? f.message : String(f.code || 'error');
      if (f.ref && pending.has(f.ref)) {
        pending.delete(f.ref);
        renderMe('');
        showNotice('Could not change your status: ' + lastError);
        lastError = '';
      } else if ($('conn').dataset.state === 'open') {
        showNotice('The hub said: ' + lastError);
        lastError = '';
      }
      break;
    default:
      // Unknown frame types are ignored, as the protocol asks.
      break;
  }
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
  if ($('conn').dataset.state !== 'open' || now - lastActivity < activityEvery) return;
  if (send({ type: 'activity' })) lastActivity = now;
}

// ---- rendering ----

const kindName = (k) => (KINDS.includes(k) ? k : 'web');

function initials(id) {
  const words = String(id || '').split(/[-_.\s]+/).filter(Boolean);
  const s = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 1);
  return s.toUpperCase();
}

function renderMe(note) {
  const status = myStatus || 'offline';
  const name = me && me.id ? me.id : '';
  $('avatar').dataset.status = status;
  $('initials').textContent = initials(name);
  $('agent-name').textContent = name;
  $('agent-site').textContent = me && me.site ? '· ' + me.site + (me.groups && me.groups.length ? ' · ' + me.groups.join(', ') : '') : '';
  $('my-status').textContent = myStatus || '—';
  $('my-status').dataset.status = myStatus;
  $('status-note').textContent = pending.size ? 'saving…' : note;
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
  const ref = 'c' + ++refSeq;
  if (!send({ type: 'set_status', status, ref })) {
    showNotice('Not connected: your status was not changed.');
    return;
  }
  pending.set(ref, status);
  renderMe('');
}

function logout() {
  openMenu(false);
  byeOnWelcome = false;
  if (send({ type: 'bye' })) {
    byeSent = true;
    setConn('closed', 'Signing out…');
    // The hub closes with 1000 after bye; do not wait for it forever.
    const s = ws;
    byeTimer = setTimeout(() => {
      if (ws === s && s) s.close(1000);
    }, 3000);
    return;
  }
  // Not connected: connect just to say bye, so the status clears now
  // rather than after the grace period.
  byeOnWelcome = true;
  if (!ws) connect();
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
  // Back online, or back from the bfcache: no need to wait for the backoff.
  window.addEventListener('online', () => {
    if (!ws && timer) reconnectNow(false);
  });
  window.addEventListener('pageshow', (e) => {
    if (e.persisted && !ws) reconnectNow(false);
  });
}

wire();
if (token) connect();
else if (params.has('dev')) signInDev();
else showSignin();
