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

  var api = w.PresenceWidget = {
    status: null, reason: null, nextChange: null, transport: null,
    site: site, group: group, reconnectNow: null
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

  // The status and its transport, from the SDK's watchWidget (its source,
  // clients/js/src/watch-widget.js, is put in place of the include line
  // below when the hub serves this file); presence:change only when the
  // status, reason or next change moved.
  var watch = watchWidget({
    url: base, site: site, group: group,
    onError: function (f) { if (w.console) console.warn('presencehub:', f.message); }
  }, function (s) {
    var moved = s.status !== api.status || s.reason !== api.reason || +s.nextChange !== +api.nextChange;
    api.transport = s.transport;
    if (!moved) return;
    api.status = s.status;
    api.reason = s.reason;
    api.nextChange = s.nextChange;
    render();
    d.dispatchEvent(new CustomEvent('presence:change', {
      detail: { status: s.status, reason: s.reason, nextChange: s.nextChange, site: site, group: group }
    }));
  });
  api.reconnectNow = watch.reconnectNow;

  setInterval(render, 60000); // keeps "Back at" right across midnight

  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);

// @include watch-widget.js
})();
