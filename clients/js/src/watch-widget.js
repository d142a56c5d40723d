// watchWidget follows the widget status of a site or a group: over the
// socket GET /v1/widget, or by polling GET /v1/sites/{site}/status where
// sockets fail, with widget.js's rules (docs/protocol.md). The hub's
// widget.js inlines this file: it keeps no import and one export.
export function watchWidget(options, onStatus) {
  const g = globalThis, o = options || {};
  const WS = o.WebSocket || g.WebSocket;
  const get = o.fetch || (g.fetch && g.fetch.bind(g));
  const site = o.site, group = o.group || null, enc = encodeURIComponent;
  const base = String(o.url || '').trim().replace(/\/+$/, '');
  if (!site || !/^(http|ws)s?:\/\/./i.test(base)) throw new TypeError('presencehub: watchWidget needs a site, and a url starting with http(s):// or ws(s)://');
  const wsURL = base.replace(/^http/i, 'ws') + '/v1/widget?site=' + enc(site) + (group ? '&group=' + enc(group) : '');
  const pollURL = base.replace(/^ws/i, 'http') + '/v1/sites/' + enc(site) + '/status' + (group ? '?group=' + enc(group) : '');
  const every = o.pollInterval > 0 ? o.pollInterval : 15000;
  let last = {}, stopped = false;

  // apply takes one widget_status object from either transport; it reports
  // whether the object was one. onStatus hears of changes only (of the
  // status, reason, next change or transport).
  function apply(f, transport) {
    if (!f || f.type !== 'widget_status' || !/^(online|busy|offline)$/.test(f.status)) return false;
    let next = f.next_change ? new Date(f.next_change) : null;
    if (next && isNaN(next)) next = null;
    const reason = f.reason || null;
    if (f.status === last.status && reason === last.reason && +next === +last.nextChange && transport === last.transport) return true;
    last = { status: f.status, reason, nextChange: next, site, group, transport };
    if (!stopped) onStatus(last);
    return true;
  }

  // ---- transports ----
  let ws = null, wsTimer, attempt = 0, fails = 0;
  let polling = false, pollTimer, pollFails = 0, inflight = false;
  // answered: the last poll got an HTTP answer (any status), so the hub is
  // up and it is the socket that fails (a proxy that blocks WebSockets).
  let answered = false;

  // Exponential backoff with full jitter: random(0, min(30 s, 500 ms * 2^n)).
  const backoff = () => Math.random() * Math.min(30000, 500 * 2 ** attempt++);
  const jitter = (ms) => ms * (0.75 + Math.random() / 2);

  function drop() {
    if (!ws) return;
    ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
    try { ws.close(); } catch (e) { /* closed already */ }
    ws = null;
  }

  function connect() {
    clearTimeout(wsTimer);
    if (stopped || !WS) return;
    drop();
    let s, opened = 0, got = false;
    function closed(code) {
      if (ws !== s) return;
      ws = null;
      fails = opened ? 0 : fails + 1;
      // A connection that stayed open and delivered a status resets the
      // backoff; one refused for a bad site or group never hammers.
      if (got && Date.now() - opened >= 1000 && code !== 1008) attempt = 0;
      if (code === 1008 || code === 4001) attempt = Math.max(attempt, 3);
      if (polling || fails >= 3) {
        startPolling();
        // With polls answered the socket is blocked on the way: try it again
        // only now and then. Without, the hub itself is away (a restart):
        // keep backing off, capped at 30 s, to be back on the socket soon
        // after it returns.
        wsTimer = setTimeout(connect, answered ? jitter(60000) : backoff());
      } else {
        wsTimer = setTimeout(connect, backoff());
      }
    }
    try {
      ws = s = new WS(wsURL);
    } catch (e) {
      ws = s = {};
      return closed(0);
    }
    s.onopen = () => { opened = Date.now(); };
    s.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && f.type === 'error' && o.onError) o.onError(f);
      if (apply(f, 'websocket')) {
        got = true;
        fails = 0;
        if (polling) { polling = false; clearTimeout(pollTimer); }
      }
    };
    s.onclose = (ev) => closed(ev.code);
    // A failed connection fires error then close, but some implementations
    // (Node's before 22) never fire the close.
    s.onerror = () => closed(1006);
  }

  function startPolling() {
    if (polling || !get) return;
    polling = true;
    poll();
  }

  function poll() {
    clearTimeout(pollTimer);
    if (inflight || !polling || stopped) return;
    inflight = true;
    get(pollURL, { cache: 'no-store', credentials: 'omit' })
      .then((r) => { answered = true; if (!r.ok) throw r.status; return r.json(); },
        (e) => { answered = false; throw e; }) // no answer at all: the hub is away
      .then((f) => { pollFails = 0; if (polling) apply(f, 'polling'); },
        () => { pollFails++; })
      .then(() => {
        inflight = false;
        if (polling && !stopped) pollTimer = setTimeout(poll, jitter(every * Math.min(4, 2 ** pollFails)));
      });
  }

  function reconnectNow() {
    if (stopped) return;
    attempt = 0;
    if (polling) poll();
    connect();
  }

  // Back online, or back from the bfcache: no need to wait for the backoff.
  const online = () => { if (!ws) reconnectNow(); };
  const pageshow = (e) => { if (e.persisted) reconnectNow(); };
  const listen = (on) => g[on] && (g[on]('online', online), g[on]('pageshow', pageshow));
  listen('addEventListener');

  if (WS) connect(); else startPolling();
  return {
    close() {
      stopped = true;
      polling = false;
      clearTimeout(wsTimer);
      clearTimeout(pollTimer);
      drop();
      listen('removeEventListener');
    },
    reconnectNow,
  };
}
