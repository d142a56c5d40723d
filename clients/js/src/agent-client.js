// AgentClient: one agent device on a presencehub hub, over GET /v1/agent
// (docs/protocol.md). No dependencies: it needs a WebSocket (the global one,
// or options.WebSocket), setTimeout and, to read a token's exp and site,
// atob.
// The API is documented in index.d.ts; the comments here say how it works.

/**
 * An error of a request or of a connection: `code` is the hub's error code
 * (bad_request, unauthorized, forbidden, rate_limited, unavailable, internal)
 * or one of the client's own (not_connected, disconnected, timeout, closed,
 * replaced, revoked, token).
 */
export class PresenceError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.name = 'PresenceError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

// What each close code means to the client (docs/protocol.md, close codes).
const CLOSE_TEXT = {
  1000: 'logged out',
  1001: 'the hub is shutting down',
  1006: 'connection lost',
  1008: 'closed by the hub: too slow, or no pong in time',
  1011: 'internal error on the hub',
  1013: 'the hub is still loading',
  4001: 'token refused',
  4002: 'replaced: this device connected again elsewhere, and the newer session won',
  4003: 'too many devices: sign out on another device first',
  4004: 'logout not stored',
  4005: 'revoked: an admin of the site signed this device out',
};

// Close codes after which the client stops, and the PresenceError code it
// rejects with. 4001 stops only when the token is refused again (see
// closed).
const FINAL = { 4002: 'replaced', 4003: 'forbidden', 4005: 'revoked' };

const OPEN = 1; // WebSocket.OPEN, the same in every implementation

// endpoint turns the hub's address (http, https, ws or wss, with or without
// the path) into the socket's URL.
function endpoint(url, path) {
  let u = String(url || '').trim().replace(/^http/i, 'ws').replace(/\/+$/, '');
  if (!/^wss?:\/\/[^/]/i.test(u)) throw new TypeError('presencehub: url must start with http://, https://, ws:// or wss://, got ' + JSON.stringify(url));
  return u.endsWith(path) ? u : u + path;
}

// tokenClaims reads a JWT's exp (milliseconds since the epoch, 0 when
// absent) and site ('' when absent) without checking anything: the hub
// does. Both are empty when the token cannot be read.
function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const c = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    return {
      exp: typeof c.exp === 'number' && c.exp > 0 ? c.exp * 1000 : 0,
      site: typeof c.site === 'string' ? c.site : '',
    };
  } catch (e) {
    return { exp: 0, site: '' };
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

// siteURL is the socket's URL for a hello with token: with ?site= and the
// token's site, so that a load balancer in front of the hubs can hash on it
// (docs/routing.md). A token whose site cannot be read (not a JWT, no atob)
// or is no valid id names none: the hub takes the socket, and refuses such
// a token at the hello as before.
function siteURL(url, token) {
  const site = tokenClaims(token).site;
  return ID.test(site) ? url + '?site=' + site : url;
}

// refreshMargin is how long before its exp a token is replaced: a quarter
// of its life when it was got, between 1 s and 60 s.
const refreshMargin = (exp, got) => Math.min(60000, Math.max(1000, (exp - got) / 4));

// quiet marks a promise's rejection as handled, so that a caller who does
// not wait for it (the state event says the same) gets no unhandled
// rejection; a caller who awaits it still gets the error.
const quiet = (p) => {
  p.catch(() => {});
  return p;
};

const randomId = () => Math.random().toString(36).slice(2, 8);

export class AgentClient {
  constructor(options) {
    const o = options || {};
    this._WS = o.WebSocket || globalThis.WebSocket;
    if (typeof this._WS !== 'function') {
      throw new TypeError('presencehub: no WebSocket here; pass one as options.WebSocket (Node 20: the ws package, or run node with --experimental-websocket)');
    }
    if (typeof o.getToken !== 'function') throw new TypeError('presencehub: options.getToken must be a function');
    this._url = endpoint(o.url, '/v1/agent');
    this._getToken = o.getToken;
    const device = o.device || {};
    this._kind = device.kind || 'web';
    this._deviceId = device.id || '';
    this._requestTimeout = o.requestTimeout > 0 ? o.requestTimeout : 30000;
    this._connectTimeout = o.connectTimeout > 0 ? o.connectTimeout : 30000;
    this._backoffBase = o.backoff && o.backoff.base > 0 ? o.backoff.base : 500;
    this._backoffCap = o.backoff && o.backoff.cap > 0 ? o.backoff.cap : 30000;
    this._attempt = 0; // backoff exponent
    this._handlers = new Map();
    this._state = 'closed';
    this._running = false; // connect() was called and the client has not stopped since
    this._ws = null; // the socket in use
    this._next = null; // the socket taking over before the token expires
    this._handover = null; // a promise settled when the takeover is over
    this._endHandover = null;
    this._gen = 0; // counts attempts, so that a late getToken answer is dropped
    this._retryTimer = 0;
    this._refreshTimer = 0;
    this._refreshDue = false;
    this._token = '';
    this._tokenExp = 0;
    this._tokenGot = 0;
    this._tokenStale = false; // the hub refused the token: ask getToken for another
    this._refused = ''; // the token the hub refused last
    this._welcome = null;
    this._welcomedAt = 0; // when the socket in use got its welcome
    this._devices = [];
    this._refBase = 'js' + randomId() + '-';
    this._seq = 0;
    this._pending = new Map(); // ref -> request
    this._waiters = []; // connect() promises
    this._rosterWaiters = [];
    this._roster = false;
    this._bye = null;
    this._lastError = null; // the hub's last error frame not tied to a request
    this._meta = new WeakMap(); // socket -> {welcomed, error, timer}
    this._onOnline = () => this.reconnectNow();
    this._onPageShow = (e) => e.persisted && this.reconnectNow();
  }

  /** The device id: the option's until the first welcome, the welcome's after. */
  get deviceId() {
    return this._deviceId;
  }

  /** The latest welcome frame, or null before the first. */
  get welcome() {
    return this._welcome;
  }

  /** The agent's live devices as the hub last said (welcome or devices frame). */
  get devices() {
    return this._devices;
  }

  /** connecting, open or closed. */
  get state() {
    return this._state;
  }

  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const set = this._handlers.get(event);
    if (set) set.delete(fn);
  }

  _emit(event, value) {
    const set = this._handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (e) {
        // A handler's exception must not leave the client half way
        // through a frame; it is reported as uncaught, after.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  _setState(state, detail) {
    this._state = state;
    this._emit('state', Object.assign({ state }, detail));
  }

  connect() {
    if (this._running && this._state === 'open' && !this._bye) return Promise.resolve(this._welcome);
    const p = quiet(new Promise((resolve, reject) => this._waiters.push({ resolve, reject })));
    if (!this._running) this._start();
    return p;
  }

  _start() {
    this._running = true;
    this._attempt = 0;
    this._lastError = null;
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('pageshow', this._onPageShow);
    }
    this._open();
  }

  reconnectNow() {
    if (!this._running || !this._retryTimer) return;
    this._attempt = 0;
    this._open();
  }

  // _tokenNow returns the token for a hello: the one held while it is not
  // refused or about to expire, otherwise a new one from getToken.
  async _tokenNow() {
    const soon = this._tokenExp && Date.now() >= this._tokenExp - refreshMargin(this._tokenExp, this._tokenGot);
    if (this._token && !this._tokenStale && !soon) return this._token;
    const reason = this._tokenStale ? 'rejected' : this._token ? 'expiring' : 'connect';
    return this._askToken(reason);
  }

  async _askToken(reason) {
    let token;
    try {
      token = await this._getToken({ reason });
    } catch (e) {
      throw new PresenceError('token', 'getToken failed: ' + (e && e.message ? e.message : String(e)), { cause: e });
    }
    if (typeof token !== 'string' || !token) throw new PresenceError('token', 'getToken returned no token');
    return token;
  }

  _keepToken(token) {
    if (token !== this._token) {
      this._token = token;
      this._tokenExp = tokenClaims(token).exp;
      this._tokenGot = Date.now();
    }
    this._tokenStale = false;
  }

  // _open makes one connection attempt.
  async _open() {
    clearTimeout(this._retryTimer);
    this._retryTimer = 0;
    const gen = ++this._gen;
    this._setState('connecting', { attempt: this._attempt });
    let token;
    try {
      token = await this._tokenNow();
    } catch (e) {
      if (gen !== this._gen || !this._running) return;
      this._emit('error', e);
      this._retry(0, e.message, e);
      return;
    }
    if (gen !== this._gen || !this._running) return;
    if (this._tokenStale && token === this._refused) {
      // The hub refused this very token: asking the hub again would only be
      // refused again.
      const err = this._lastError;
      this._stop(4001, 'token refused: ' + (err ? err.message : 'getToken gave the token the hub refused'),
        new PresenceError(err ? err.code : 'unauthorized', err ? err.message : 'token refused', { closeCode: 4001 }));
      return;
    }
    this._keepToken(token);
    this._socket(token, false);
  }

  // _socket opens a socket and says hello; takeover tells whether it is to
  // replace the socket in use before the token expires.
  _socket(token, takeover) {
    let s;
    try {
      s = new this._WS(siteURL(this._url, token));
    } catch (e) {
      if (takeover) return this._takeoverFailed(null, 0);
      this._emit('error', new PresenceError('disconnected', 'could not open a socket: ' + e.message, { cause: e }));
      return this._retry(1006, 'could not open a socket: ' + e.message);
    }
    if (takeover) this._next = s;
    else this._ws = s;
    const m = { welcomed: false, error: null, timer: 0, takeover };
    this._meta.set(s, m);
    m.timer = setTimeout(() => {
      if (m.welcomed) return;
      this._abandon(s);
      this._closed(s, 1006, 'no welcome within ' + Math.round(this._connectTimeout / 1000) + ' s');
    }, this._connectTimeout);
    s.onopen = () => {
      const device = this._deviceId ? { id: this._deviceId, kind: this._kind } : { kind: this._kind };
      s.send(JSON.stringify({ type: 'hello', token, device }));
    };
    s.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (f && typeof f === 'object' && typeof f.type === 'string') this._frame(s, f);
    };
    // A failed connection fires error, then close; some implementations
    // (Node's before 22, on an answer other than 101) never fire the close.
    s.onerror = () => {
      if (s !== this._ws && s !== this._next) return;
      this._abandon(s);
      this._closed(s, 1006, 'connection failed');
    };
    s.onclose = (ev) => {
      clearTimeout(m.timer);
      this._closed(s, ev.code, ev.reason || '');
    };
  }

  // _abandon forgets a socket: no more of its events, and it is closed.
  _abandon(s) {
    if (!s) return;
    const m = this._meta.get(s);
    if (m) clearTimeout(m.timer);
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    try {
      s.close(1000);
    } catch (e) {
      /* closed already */
    }
  }

  _send(msg) {
    if (this._ws && this._ws.readyState === OPEN && this._state === 'open') {
      this._ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  _frame(s, f) {
    if (f.type === 'welcome') return this._welcomed(s, f);
    if (s !== this._ws) {
      // A socket taking over reads nothing but its welcome; an error
      // before it is why it will close.
      if (s === this._next && f.type === 'error') this._meta.get(s).error = f;
      return;
    }
    switch (f.type) {
      case 'status': {
        const req = f.ref ? this._pending.get(f.ref) : null;
        if (req && req.type === 'set_status' && (!f.by_device || f.by_device === this._deviceId)) {
          // The device's operations run in order: a request still waiting
          // that was sent before this one was carried out before it, and
          // its own frame was skipped by a replica that ran behind.
          for (const [ref, r] of this._pending) {
            if (r.type === 'set_status' && r.seq <= req.seq) this._settle(ref, null, f);
          }
        }
        this._emit('status', f);
        break;
      }
      case 'devices':
        this._devices = Array.isArray(f.devices) ? f.devices : [];
        this._checkStates();
        this._emit('devices', f);
        break;
      case 'roster':
        for (const w of this._rosterWaiters.splice(0)) w.resolve(f);
        this._emit('roster', f);
        break;
      case 'agent':
        this._emit('agent', f);
        break;
      case 'hours':
        this._emit('hours', f);
        break;
      case 'error': {
        const err = new PresenceError(String(f.code || 'error'), String(f.message || f.code || 'error'), { ref: f.ref, frame: f });
        if (f.ref && this._pending.has(f.ref)) {
          this._settle(f.ref, err);
        } else {
          this._meta.get(s).error = f;
          this._lastError = err;
          this._emit('error', err);
        }
        break;
      }
      default:
        // Unknown frames are ignored, as the protocol asks.
        break;
    }
  }

  _welcomed(s, f) {
    if (s !== this._ws && s !== this._next) return;
    const m = this._meta.get(s);
    m.welcomed = true;
    clearTimeout(m.timer);
    if (s === this._next) {
      // The takeover is done: the hub has moved the device to the new
      // session, and the old one goes (the hub would close it with 4002).
      const old = this._ws;
      this._ws = s;
      this._next = null;
      this._abandon(old);
    }
    if (m.takeover) this._finishHandover();
    this._welcome = f;
    this._welcomedAt = Date.now();
    if (typeof f.device === 'string' && f.device) this._deviceId = f.device;
    this._devices = Array.isArray(f.devices) ? f.devices : [];
    this._refused = '';
    this._lastError = null;
    this._scheduleRefresh();
    if (this._bye) {
      // Connected only to say bye: the app hears nothing of this session.
      this._state = 'open';
      this._sendBye();
      return;
    }
    const wasOpen = this._state === 'open';
    if (!wasOpen) this._setState('open', { welcome: f });
    else this._state = 'open';
    this._emit('welcome', f);
    for (const w of this._waiters.splice(0)) w.resolve(f);
    if (this._roster) this._send({ type: 'subscribe_roster' });
  }

  // _closed handles the end of a socket.
  _closed(s, code, reason) {
    if (s === this._next) return this._takeoverFailed(s, code);
    if (s !== this._ws) return;
    if (this._next && code !== 4005) {
      // The socket taking over carries on: the hub closed this one because
      // the new session replaced it (its 4002 may come before the new
      // socket's welcome), or this one failed meanwhile. Not after a
      // revocation, which the new session would undo.
      this._ws = this._next;
      this._next = null;
      return;
    }
    const m = this._meta.get(s);
    const welcomedAt = m.welcomed ? this._welcomedAt : 0;
    const error = m.error;
    this._ws = null;
    if (this._next) {
      this._abandon(this._next);
      this._next = null;
    }
    this._finishHandover();
    clearTimeout(this._refreshTimer);
    this._failPending('disconnected', 'the connection closed before the hub answered; the change may still apply');
    if (!this._running) return;
    const text = reason || CLOSE_TEXT[code] || 'closed';
    if (this._bye) {
      if (code === 1000 || code === 4005) return this._byeDone(code, text); // stored, or no lease left to remove
      if (FINAL[code]) {
        // Replaced, or refused as one device too many: this device cannot
        // say bye.
        return this._stop(code, CLOSE_TEXT[code], new PresenceError(FINAL[code], 'the logout did not happen: ' + CLOSE_TEXT[code], { closeCode: code }));
      }
    } else if (FINAL[code]) {
      const msg = error && error.message ? error.message : CLOSE_TEXT[code];
      return this._stop(code, CLOSE_TEXT[code], new PresenceError(FINAL[code], msg, { closeCode: code }));
    }
    if (code === 4001) {
      if (error && error.code === 'bad_request') {
        // The hello itself is wrong (a device id that is not a UUID, an
        // unknown kind): a new token would not help.
        return this._stop(code, 'hello refused: ' + error.message, new PresenceError('bad_request', error.message, { closeCode: code }));
      }
      this._tokenStale = true;
      this._refused = this._token;
    }
    // A session that stayed up starts the backoff over, unless the hub
    // closed it for being slow.
    if (welcomedAt && Date.now() - welcomedAt >= 1000 && code !== 1008) this._attempt = 0;
    this._retry(code, text, error ? new PresenceError(String(error.code), String(error.message), { frame: error, closeCode: code }) : undefined);
  }

  _retry(code, reason, error) {
    if (!this._running) return;
    const delay = Math.random() * Math.min(this._backoffCap, this._backoffBase * 2 ** this._attempt++);
    this._setState('closed', { code, reason, reconnect: true, delay: Math.round(delay), error });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._open(), delay);
  }

  // _stop ends the client's attempts: the close was final.
  _stop(code, reason, err) {
    const wasRunning = this._running;
    this._halt();
    if (wasRunning || this._state !== 'closed') this._setState('closed', { code, reason, reconnect: false, error: err });
    this._rejectWaiters(err);
    if (this._bye) {
      const b = this._bye;
      this._bye = null;
      clearTimeout(b.timer);
      b.reject(err);
    }
  }

  _rejectWaiters(err) {
    for (const w of this._waiters.splice(0)) w.reject(err);
    for (const w of this._rosterWaiters.splice(0)) w.reject(err);
  }

  // _halt stops every timer and socket.
  _halt() {
    this._running = false;
    this._gen++;
    clearTimeout(this._retryTimer);
    clearTimeout(this._refreshTimer);
    this._retryTimer = this._refreshTimer = 0;
    this._refreshDue = false;
    const s = this._ws;
    this._ws = null;
    this._abandon(s);
    if (this._next) {
      this._abandon(this._next);
      this._next = null;
      this._finishHandover();
    }
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('pageshow', this._onPageShow);
    }
  }

  close() {
    const err = new PresenceError('closed', 'the client was closed');
    this._failPending('closed', 'the client was closed');
    this._stop(1000, 'closed by the client', err);
  }

  // ---- requests ----

  _request(type, msg) {
    const ref = this._refBase + ++this._seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this._settle(ref, new PresenceError('timeout', 'no answer from the hub in time; the change may still apply', { ref })),
        this._requestTimeout);
      this._pending.set(ref, { type, resolve, reject, timer, seq: this._seq, want: msg.want });
      this._send(Object.assign({ type, ref }, msg.send));
    });
  }

  _settle(ref, err, value) {
    const req = this._pending.get(ref);
    if (!req) return;
    this._pending.delete(ref);
    clearTimeout(req.timer);
    if (err) req.reject(err);
    else req.resolve(value);
    if (this._pending.size === 0 && this._refreshDue) this._refresh();
  }

  _failPending(code, message) {
    for (const ref of [...this._pending.keys()]) this._settle(ref, new PresenceError(code, message, { ref }));
  }

  // _ready waits for a takeover under way, then says whether requests can
  // be sent.
  async _ready() {
    if (this._handover) await this._handover;
    if (this._state !== 'open' || !this._ws || this._bye) {
      throw new PresenceError('not_connected', 'not connected: nothing was sent');
    }
  }

  async setStatus(status) {
    await this._ready();
    return this._request('set_status', { send: { status } });
  }

  async background() {
    return this._deviceState('background');
  }

  async foreground() {
    return this._deviceState('foreground');
  }

  // _deviceState asks for background or foreground mode; the answer is the
  // devices frame that shows this device in that state (the hub sends no
  // frame when the device is in it already).
  async _deviceState(type) {
    await this._ready();
    const want = type === 'background' ? 'background' : 'live';
    const p = this._request(type, { want });
    if (this._myState() === want) this._checkStates();
    return p;
  }

  _myState() {
    const me = this._devices.find((d) => d && d.id === this._deviceId);
    return me ? me.state || 'live' : '';
  }

  _checkStates() {
    const state = this._myState();
    for (const [ref, r] of this._pending) {
      if (r.want && r.want === state) this._settle(ref, null, this._devices);
    }
  }

  activity() {
    return !this._bye && this._send({ type: 'activity' });
  }

  subscribeRoster() {
    if (this._bye) return Promise.reject(new PresenceError('closed', 'logging out'));
    this._roster = true;
    const p = quiet(new Promise((resolve, reject) => this._rosterWaiters.push({ resolve, reject })));
    this._send({ type: 'subscribe_roster' });
    return p;
  }

  // ---- bye ----

  bye(options) {
    if (this._bye) return this._bye.promise;
    if (!this._deviceId && !this._running) {
      // Never welcomed and no device id given: no lease to remove.
      this.close();
      return Promise.resolve();
    }
    const grace = this._welcome && this._welcome.grace_ms > 0 ? this._welcome.grace_ms : 120000;
    const timeout = options && options.timeout > 0 ? options.timeout : grace;
    const b = {};
    b.promise = new Promise((resolve, reject) => {
      b.resolve = resolve;
      b.reject = reject;
    });
    this._bye = b;
    b.timer = setTimeout(() => {
      this._stop(this._ws ? 1000 : 1006, 'logout not confirmed in time',
        new PresenceError('timeout', 'the hub did not confirm the logout in time; the device keeps the agent available until its grace runs out'));
    }, timeout);
    this._failPending('closed', 'logging out');
    for (const w of this._waiters.splice(0)) w.reject(new PresenceError('closed', 'logging out'));
    if (this._state === 'open' && this._ws) {
      this._sendBye();
    } else if (!this._running) {
      this._start(); // connect just to say bye: the status clears now, not after the grace
    } else if (this._retryTimer) {
      this.reconnectNow();
    }
    return b.promise;
  }

  _sendBye() {
    if (this._next) {
      this._abandon(this._next);
      this._next = null;
      this._finishHandover();
    }
    clearTimeout(this._refreshTimer);
    this._ws.send(JSON.stringify({ type: 'bye' }));
  }

  _byeDone(code, reason) {
    const b = this._bye;
    this._bye = null;
    clearTimeout(b.timer);
    this._halt();
    this._setState('closed', { code, reason, reconnect: false });
    this._rejectWaiters(new PresenceError('closed', 'logged out'));
    b.resolve();
  }

  // ---- token refresh ----

  // _scheduleRefresh arms the timer that replaces the token before its
  // exp: getToken is asked, and a new socket with the new token takes the
  // device over; the old one is closed once the new one is welcomed.
  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    this._refreshDue = false;
    if (!this._tokenExp) return;
    const at = this._tokenExp - refreshMargin(this._tokenExp, this._tokenGot);
    // setTimeout takes at most 2^31-1 ms; a later refresh is re-armed.
    const wait = Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1);
    this._refreshTimer = setTimeout(() => {
      if (Date.now() < at) return this._scheduleRefresh();
      this._refreshDue = true;
      if (this._pending.size === 0) this._refresh();
    }, wait);
  }

  async _refresh() {
    this._refreshDue = false;
    if (this._state !== 'open' || !this._ws || this._next || this._bye || this._handover) return;
    let done;
    this._handover = new Promise((resolve) => {
      done = resolve;
    });
    this._endHandover = done;
    let token;
    try {
      token = await this._askToken('expiring');
    } catch (e) {
      this._finishHandover();
      this._emit('error', e);
      return this._refreshLater();
    }
    if (this._state !== 'open' || !this._ws || this._bye || !this._running) return this._finishHandover();
    if (token === this._token) {
      // Not a new token: the hub will close the socket at its exp (4001),
      // and getToken is asked again then.
      return this._finishHandover();
    }
    this._keepToken(token);
    this._socket(token, true);
  }

  _finishHandover() {
    const done = this._endHandover;
    this._handover = this._endHandover = null;
    if (done) done();
  }

  _takeoverFailed(s, code) {
    const error = s && this._meta.get(s).error;
    if (s) this._abandon(s);
    this._next = null;
    this._finishHandover();
    if (error) this._emit('error', new PresenceError(String(error.code), 'token refresh: ' + error.message, { frame: error, closeCode: code }));
    if (code === 4001) {
      // The new token was refused: the next attempt asks getToken again.
      this._tokenStale = true;
    }
    this._refreshLater();
  }

  // _refreshLater tries the takeover again in a while, if the token has
  // not expired by then; if it has, the hub closes with 4001 first.
  _refreshLater() {
    clearTimeout(this._refreshTimer);
    if (!this._running || this._state !== 'open') return;
    const left = this._tokenExp - Date.now();
    if (this._tokenExp && left <= 0) return;
    this._refreshTimer = setTimeout(() => {
      this._refreshDue = true;
      if (this._pending.size === 0) this._refresh();
    }, Math.max(500, Math.min(5000, left / 2)));
  }
}
