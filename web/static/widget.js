/*! presencehub widget. Embed with:
 * <script src="https://HUB/widget.js" data-site="S" data-group="G" async></script>
 * Shows whether the site's agents are online, busy or offline, and exposes
 * window.PresenceWidget plus a "presence:change" event on document. */
(function () {
  'use strict';
  var w = window, d = document;
  if (w.PresenceWidget && w.PresenceWidget.reconnectNow) return; // included twice

  // Our own <script>: currentScript, or the last one loading .../widget.js.
  var me = d.currentScript, all = d.getElementsByTagName('script'), i;
  for (i = all.length - 1; !me && i >= 0; i--) {
    if (/\/widget\.js$/.test((all[i].src || '').split(/[?#]/)[0])) me = all[i];
  }
  var site = me && me.getAttribute('data-site');
  if (!site) {
    if (w.console) console.warn('presencehub: widget script needs data-site');
    return;
  }
  var group = me.getAttribute('data-group') || null;
  // The hub is wherever the script came from (the page may be elsewhere).
  var base = me.src.split(/[?#]/)[0].replace(/\/[^\/]*$/, '');
  var enc = encodeURIComponent;
  var wsURL = base.replace(/^http/, 'ws') + '/v1/widget?site=' + enc(site) + (group ? '&group=' + enc(group) : '');
  var pollURL = base + '/v1/sites/' + enc(site) + '/status' + (group ? '?group=' + enc(group) : '');

  var api = w.PresenceWidget = {
    status: null, reason: null, nextChange: null, transport: null,
    site: site, group: group, reconnectNow: reconnectNow
  };

  // ---- UI, all inside a shadow root ----
  var TEXT = {
    online: 'Chat with us',
    busy: "We're busy, we'll reply as soon as we can",
    offline: "We're offline"
  };
  var CSS = ':host{all:initial}' +
    '.phw{position:fixed;right:16px;bottom:16px;z-index:2147483000;display:flex;align-items:center;' +
    'box-sizing:border-box;max-width:calc(100vw - 32px);padding:10px 16px;border-radius:22px;' +
    'background:#fff;color:#1f2328;box-shadow:0 2px 12px rgba(0,0,0,.2);' +
    'font:14px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}' +
    '.phw[hidden],.phw-back:empty{display:none}' +
    '.phw-dot{flex:none;width:10px;height:10px;margin-right:10px;border-radius:50%;background:#8c959f}' +
    '[data-status=online] .phw-dot{background:#1a7f37}' +
    '[data-status=busy] .phw-dot{background:#d29922}' +
    '.phw-back{display:block;font-size:12px;color:#57606a}';
  var root, textEl, backEl;

  function el(tag, cls, parent) {
    var e = d.createElement(tag);
    e.className = cls;
    parent.appendChild(e);
    return e;
  }

  function mount() {
    if (root) return;
    var host = d.createElement('presencehub-widget'); // a custom tag: page CSS for div cannot reach it
    host.id = 'presencehub-widget';
    var sr = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    el('style', '', sr).textContent = CSS;
    root = el('div', 'phw', sr);
    root.hidden = true; // until the first status arrives
    root.setAttribute('role', 'status');
    root.setAttribute('aria-live', 'polite');
    el('span', 'phw-dot', root).setAttribute('aria-hidden', 'true');
    var body = el('span', 'phw-body', root);
    textEl = el('span', 'phw-text', body);
    backEl = el('span', 'phw-back', body);
    d.body.appendChild(host);
    render();
  }

  // "Back at 09:00", or "Back Mon 09:00" on another day, in the visitor's
  // own time zone (24-hour clock, to match the English texts).
  var fmt = new Intl.DateTimeFormat('en-GB', {
    weekday: 'short', day: 'numeric', month: 'short',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23'
  });
  function midnight(t) { return new Date(t.getFullYear(), t.getMonth(), t.getDate()); }
  function backAt(t) {
    var p = {};
    fmt.formatToParts(t).forEach(function (x) { p[x.type] = x.value; });
    var hm = ('0' + (p.hour % 24)).slice(-2) + ':' + p.minute;
    var days = Math.round((midnight(t) - midnight(new Date())) / 864e5);
    return 'Back ' + (days < 1 ? 'at ' : days < 7 ? p.weekday + ' ' : p.day + ' ' + p.month + ' ') + hm;
  }

  function render() {
    if (!root || !api.status) return;
    root.hidden = false;
    root.setAttribute('data-status', api.status);
    textEl.textContent = TEXT[api.status];
    // next_change is the opening time only while closed by working hours;
    // with no agents during open hours it is the closing time.
    backEl.textContent = api.status === 'offline' && api.reason === 'outside_hours' && api.nextChange ?
      backAt(api.nextChange) : '';
  }

  // apply takes one widget_status object from either transport; it reports
  // whether the object was one.
  function apply(f, transport) {
    if (!f || f.type !== 'widget_status' || !TEXT[f.status]) return false;
    var next = f.next_change ? new Date(f.next_change) : null;
    if (next && isNaN(next)) next = null;
    var reason = f.reason || null;
    api.transport = transport;
    if (f.status === api.status && reason === api.reason && +next === +api.nextChange) return true;
    api.status = f.status;
    api.reason = reason;
    api.nextChange = next;
    render();
    d.dispatchEvent(new CustomEvent('presence:change', {
      detail: { status: f.status, reason: reason, nextChange: next, site: site, group: group }
    }));
    return true;
  }

  // ---- transports ----
  var ws = null, wsTimer, attempt = 0, fails = 0;
  var polling = false, pollTimer, pollFails = 0, inflight = false;
  // answered: the last poll got an HTTP answer (any status), so the hub is
  // up and it is the socket that fails (a proxy that blocks WebSockets).
  var answered = false;

  // Exponential backoff with full jitter: random(0, min(30 s, 500 ms * 2^n)).
  function backoff() { return Math.random() * Math.min(30000, 500 * Math.pow(2, attempt++)); }
  function jitter(ms) { return ms * (0.75 + Math.random() / 2); }

  function connect() {
    clearTimeout(wsTimer);
    if (!w.WebSocket) return;
    if (ws) { // replaced: forget the old one quietly
      ws.onclose = ws.onmessage = null;
      try { ws.close(); } catch (e) { /* already closed */ }
      ws = null;
    }
    var s, opened = 0, got = false;
    function closed(code) {
      if (ws !== s) return;
      ws = null;
      fails = opened ? 0 : fails + 1;
      // A connection that stayed open and delivered a status resets the
      // backoff; one refused for a bad site/group or token never hammers.
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
      ws = s = new WebSocket(wsURL);
    } catch (e) {
      ws = s = {};
      return closed(0);
    }
    s.onopen = function () { opened = Date.now(); };
    s.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && f.type === 'error' && w.console) console.warn('presencehub:', f.message);
      if (apply(f, 'websocket')) {
        got = true;
        fails = 0;
        if (polling) { polling = false; clearTimeout(pollTimer); }
      }
    };
    s.onclose = function (ev) { closed(ev.code); };
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    poll();
  }

  function poll() {
    clearTimeout(pollTimer);
    if (inflight || !polling) return;
    inflight = true;
    fetch(pollURL, { cache: 'no-store', credentials: 'omit' })
      .then(function (r) { answered = true; if (!r.ok) throw r.status; return r.json(); },
        function (e) { answered = false; throw e; }) // no answer at all: the hub is away
      .then(function (f) { pollFails = 0; if (polling) apply(f, 'polling'); },
        function () { pollFails++; })
      .then(function () {
        inflight = false;
        if (polling) pollTimer = setTimeout(poll, jitter(15000 * Math.min(4, Math.pow(2, pollFails))));
      });
  }

  function reconnectNow() {
    attempt = 0;
    if (polling) poll();
    connect();
  }

  w.addEventListener('online', function () { if (!ws) reconnectNow(); });
  w.addEventListener('pageshow', function (e) { if (e.persisted) reconnectNow(); });
  setInterval(render, 60000); // keeps "Back at" right across midnight

  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);
  if (w.WebSocket) connect(); else startPolling();
})();
