// Availability history of a site: each agent's status over a day or a week,
// working hours shaded, and the coverage of working hours by day, from the
// admin API's timeline and availability report (docs/protocol.md#history).
import { $, params, parse, devToken, claims, toDate, clock } from './common.js';

const STATUSES = ['online', 'busy', 'offline'];
const REFRESH_MS = 30000; // a period that includes now is read again this often
const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;

let token = params.get('token') || '';
let fromDev = false;
let site = '';
let timer = 0;
let seq = 0; // drops answers to requests older than the latest
let lastReport = null; // the 30-day report, for the table and the CSV range
let notReady = false; // the hub answered 503: its history index is still loading

// ---- dates (local, the browser's zone) ----

const pad = (n) => String(n).padStart(2, '0');
const ymd = (d) => d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n);
const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());

function parseDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

// range is the period shown: [from, to) of local midnights, or the last
// hour up to the next whole minute.
function range() {
  if ($('period').value === 'hour') {
    const to = new Date(Math.ceil(Date.now() / 60000) * 60000);
    return { from: new Date(+to - 3600e3), to };
  }
  const day = parseDate($('date').value) || midnight(new Date());
  if ($('period').value === 'week') {
    const from = addDays(day, -((day.getDay() + 6) % 7)); // Monday
    return { from, to: addDays(from, 7) };
  }
  return { from: day, to: addDays(day, 1) };
}

const hm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayHm = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
const dayName = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const longDay = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

// span formats an interval for a text alternative.
function span(from, to) {
  const endOfDay = +to === +addDays(midnight(from), 1);
  if (from.toDateString() === to.toDateString() || endOfDay) {
    return dayName.format(from) + ', ' + hm.format(from) + '–' + (endOfDay ? '24:00' : hm.format(to));
  }
  return dayHm.format(from) + ' – ' + dayHm.format(to);
}

function duration(sec) {
  sec = Math.round(Number(sec) || 0);
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  if (h) return h + ' h ' + pad(m) + ' min';
  if (m) return m + ' min' + (s ? ' ' + s + ' s' : '');
  return s + ' s';
}

const percent = (r) => (typeof r === 'number' && isFinite(r) ? (Math.floor(r * 1000) / 10).toFixed(1) + ' %' : '—');

// ---- API ----

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, accept) {
  let res;
  try {
    res = await fetch('/v1/admin/sites/' + encodeURIComponent(site) + path, {
      headers: { Authorization: 'Bearer ' + token, Accept: accept || 'application/json' },
      cache: 'no-store',
    });
  } catch (e) {
    throw new APIError(0, 'Could not reach the hub: ' + e.message);
  }
  if (res.ok) return res;
  if (res.status === 503) notReady = true;
  const text = await res.text().catch(() => '');
  const body = parse(text);
  let msg = body && body.error && (body.error.message || body.error.code);
  if (typeof msg !== 'string' || !msg) msg = text.trim().slice(0, 300) || 'HTTP ' + res.status;
  if (res.status === 404 && /history is off/.test(msg)) msg = 'This hub keeps no history: ' + msg;
  throw new APIError(res.status, msg);
}

// historyStart reads when the history starts from the API's answer to a
// range that begins before it, or returns null.
function historyStart(err) {
  if (!(err instanceof APIError) || err.status !== 400) return null;
  const m = /starts at (\S+?)[,.;)]?(\s|$)/.exec(err.message);
  return m ? toDate(m[1]) : null;
}

// ---- timeline ----

async function loadTimeline(my) {
  const { from, to } = range();
  const group = $('group').value;
  const q = (f) => {
    const u = new URLSearchParams({ from: f.toISOString(), to: to.toISOString() });
    if (group) u.set('group', group);
    return '/timeline?' + u;
  };
  let start = null;
  let tl;
  try {
    if (from > new Date()) throw new APIError(-1, 'This period is still to come.');
    try {
      tl = await (await api(q(from))).json();
    } catch (e) {
      start = historyStart(e);
      if (!start) throw e;
      if (start >= to) throw new APIError(-1, 'No history for this period: the history starts ' + dayHm.format(start) + '.');
      try {
        tl = await (await api(q(start))).json();
      } catch (e2) {
        // With nothing in the stream yet, the history starts now, and
        // moves on with every request.
        if (historyStart(e2) || /before now/.test(e2.message)) {
          throw new APIError(-1, 'No history yet: it starts with the first change of an agent or a widget on this site.');
        }
        throw e2;
      }
    }
  } catch (e) {
    if (my !== seq) return;
    timelineMessage(e.status === -1 ? e.message : 'No timeline: ' + e.message);
    $('timeline').textContent = '';
    return;
  }
  if (my !== seq) return;
  renderTimeline(tl, from, to, group);
}

function timelineMessage(msg) {
  $('tl-message').hidden = !msg;
  $('tl-message').textContent = msg || '';
}

function renderTimeline(tl, from, to, group) {
  const box = $('timeline');
  box.textContent = '';
  const t0 = +from, width = +to - +from;
  const pos = (d) => Math.min(100, Math.max(0, ((+d - t0) / width) * 100));
  const agents = Array.isArray(tl.agents) ? tl.agents.filter((a) => a && typeof a.id === 'string') : [];
  const widgets = Array.isArray(tl.widgets) ? tl.widgets.filter((w) => w && typeof w.group === 'string') : [];
  groupsSeen(widgets.map((w) => w.group));
  const widget = widgets.find((w) => w.group === group);
  const shown = { from: toDate(tl.from), to: toDate(tl.to) };

  // Outside working hours: the widget's outside_hours stretches.
  const shades = [];
  for (const iv of (widget && Array.isArray(widget.intervals) ? widget.intervals : [])) {
    const f = toDate(iv.from), t = toDate(iv.to);
    if (f && t && iv.reason === 'outside_hours') shades.push({ f, t });
  }

  box.append(axis(from, to, pos));
  const label = group ? 'Widget of ' + group : 'Site widget';
  box.append(row('widget', group, label, widget ? widget.intervals : [], shades, pos, (iv) => {
    const s = STATUSES.includes(iv.status) ? iv.status : 'offline';
    return { status: s, reason: String(iv.reason || ''),
      text: label + ': ' + s + (iv.reason ? ' (' + String(iv.reason).replace(/_/g, ' ') + ')' : '') };
  }));
  for (const a of agents) {
    box.append(row('agent', a.id, a.id, a.intervals, shades, pos, (iv) => {
      const eff = STATUSES.includes(iv.effective) ? iv.effective : 'offline';
      const chose = STATUSES.includes(iv.status) ? iv.status : eff;
      return { status: eff, chosen: chose,
        text: a.id + ': ' + eff + (chose !== eff ? ' (chose ' + chose + ', no device connected)' : '') };
    }));
  }
  if (!agents.length) {
    const p = document.createElement('p');
    p.className = 'muted empty';
    p.textContent = 'No agent has a history in this period.';
    box.append(p);
  }
  const period = $('period').value;
  let text = period === 'hour' ? 'Last hour, ' + span(from, to) :
    longDay.format(from) + (period === 'week' ? ' to ' + longDay.format(addDays(to, -1)) : '');
  if (shown.from && +shown.from > t0) text += ' · history from ' + dayHm.format(shown.from);
  if (shown.to && +shown.to < +to) text += ' · up to ' + hm.format(shown.to);
  $('range').textContent = text;
  timelineMessage('');
}

// axis draws the time scale: every 10 minutes in the last hour, every 3
// hours in a day, every day in a week.
function axis(from, to, pos) {
  const el = document.createElement('div');
  el.className = 'trow axis';
  el.setAttribute('aria-hidden', 'true');
  const name = document.createElement('span');
  name.className = 'tname';
  const lane = document.createElement('div');
  lane.className = 'lane';
  const week = +to - +from > 2 * 864e5;
  const ticks = [];
  if (+to - +from <= 3600e3) {
    for (let d = new Date(Math.ceil(+from / 600e3) * 600e3); d < to; d = new Date(+d + 600e3)) {
      ticks.push([d, pad(d.getHours()) + ':' + pad(d.getMinutes())]);
    }
  } else if (week) {
    for (let d = from; d < to; d = addDays(d, 1)) ticks.push([d, dayName.format(d)]);
  } else {
    for (let h = 0; h < 24; h += 3) {
      const d = new Date(from.getFullYear(), from.getMonth(), from.getDate(), h);
      ticks.push([d, pad(h) + ':00']);
    }
  }
  for (const [d, text] of ticks) {
    const t = document.createElement('span');
    t.className = 'tick';
    t.style.left = pos(d) + '%';
    t.textContent = text;
    lane.append(t);
  }
  el.append(name, lane);
  return el;
}

// row draws one agent's or widget's bars over the period, with the
// outside-hours shades on top.
function row(kind, id, label, intervals, shades, pos, describe) {
  const el = document.createElement('div');
  el.className = 'trow ' + kind;
  el.dataset[kind] = id;
  const name = document.createElement('span');
  name.className = 'tname';
  name.id = 'row-' + kind + '-' + (id || 'site').replace(/[^A-Za-z0-9_-]/g, '_');
  name.textContent = label;
  name.title = label;
  const lane = document.createElement('div');
  lane.className = 'lane';
  const list = document.createElement('ul');
  list.className = 'track';
  list.setAttribute('aria-labelledby', name.id);
  for (const iv of Array.isArray(intervals) ? intervals : []) {
    const f = toDate(iv && iv.from), t = toDate(iv && iv.to);
    if (!f || !t || t <= f) continue;
    const d = describe(iv);
    const li = document.createElement('li');
    li.className = 'bar';
    li.dataset.status = d.status;
    if (d.chosen) li.dataset.chosen = d.chosen;
    if (d.reason) li.dataset.reason = d.reason;
    li.dataset.from = iv.from;
    li.dataset.to = iv.to;
    const left = pos(f);
    li.style.left = left + '%';
    li.style.width = Math.max(0, pos(t) - left) + '%';
    const text = d.text + ', ' + span(f, t);
    li.title = text;
    li.setAttribute('aria-label', text);
    const sr = document.createElement('span');
    sr.className = 'sr-only';
    sr.textContent = text;
    li.append(sr);
    list.append(li);
  }
  lane.append(list);
  for (const s of shades) {
    const sh = document.createElement('div');
    sh.className = 'shade';
    sh.setAttribute('aria-hidden', 'true');
    sh.style.left = pos(s.f) + '%';
    sh.style.width = Math.max(0, pos(s.t) - pos(s.f)) + '%';
    sh.title = 'Outside working hours, ' + span(s.f, s.t);
    lane.append(sh);
  }
  el.append(name, lane);
  return el;
}

// groupsSeen adds the groups the API named to the widget selector.
function groupsSeen(groups) {
  const sel = $('group');
  const have = new Set(Array.from(sel.options, (o) => o.value));
  for (const g of groups.filter((g) => g && !have.has(g)).sort()) {
    const o = document.createElement('option');
    o.value = g;
    o.textContent = 'Group ' + g;
    sel.append(o);
  }
}

// ---- coverage ----

// reportQuery is the query of the last 30 days' report, from a first day.
function reportQuery(first) {
  const u = new URLSearchParams({ from: ymd(first), to: ymd(new Date()), tz });
  if ($('group').value) u.set('group', $('group').value);
  return '/reports/availability?' + u;
}

// reportFirst is the first day of the report: 30 days back, or the first
// whole day of the history when it starts later. It returns the day, or
// throws what the API said.
async function reportFirst() {
  const first = addDays(midnight(new Date()), -29);
  try {
    const res = await api(reportQuery(first));
    return { first, report: await res.json() };
  } catch (e) {
    const start = historyStart(e);
    if (!start) throw e;
    const day = +midnight(start) === +start ? start : addDays(midnight(start), 1);
    if (day > new Date()) {
      throw new APIError(-1, 'The history starts ' + dayHm.format(start) +
        '; coverage by day begins with its first whole day, ' + dayName.format(day) + '.');
    }
    const res = await api(reportQuery(day));
    return { first: day, report: await res.json() };
  }
}

async function loadCoverage(my) {
  let got;
  try {
    got = await reportFirst();
  } catch (e) {
    if (my !== seq) return;
    lastReport = null;
    $('csv').disabled = true;
    coverageMessage(e.status === -1 ? e.message : 'No report: ' + e.message);
    $('coverage').tBodies[0].textContent = '';
    $('cov-7').textContent = $('cov-30').textContent = '—';
    return;
  }
  if (my !== seq) return;
  lastReport = got;
  $('csv').disabled = false;
  renderCoverage();
}

function coverageMessage(msg) {
  $('cov-message').hidden = !msg;
  $('cov-message').textContent = msg || '';
}

// widgetDays returns the report's days, newest first, with the selected
// widget's figures (null where the report has none).
function widgetDays(report) {
  const group = $('group').value;
  const days = Array.isArray(report.days) ? report.days.filter((d) => d && typeof d.date === 'string') : [];
  return days.map((d) => ({
    date: d.date,
    w: (Array.isArray(d.widgets) ? d.widgets : []).find((w) => w && w.group === group) || null,
  })).reverse();
}

function total(days) {
  let inside = 0, online = 0;
  for (const d of days) {
    if (!d.w) continue;
    inside += Number(d.w.inside_hours_seconds) || 0;
    online += Number(d.w.online_seconds) || 0;
  }
  return inside > 0 ? online / inside : null;
}

function renderCoverage() {
  const group = $('group').value;
  $('cov-widget').textContent = group ? 'group ' + group + "'s" : "site's";
  const tbody = $('coverage').tBodies[0];
  tbody.textContent = '';
  if (!lastReport) return;
  const days = widgetDays(lastReport.report);
  const today = ymd(new Date());
  const last7 = days.filter((d) => d.date > ymd(addDays(midnight(new Date()), -7)));
  $('cov-7').textContent = percent(total(last7));
  $('cov-30').textContent = percent(total(days));
  const n = Number($('cov-range').value) || 7;
  const shownDays = n === 7 ? last7 : days;
  for (const d of shownDays) {
    const tr = document.createElement('tr');
    tr.dataset.date = d.date;
    const day = parseDate(d.date);
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = (day ? dayName.format(day) : d.date) + (d.date === today ? ' (today, so far)' : '');
    tr.append(th);
    const w = d.w;
    cell(tr, w ? duration(w.inside_hours_seconds) : '—', 'num');
    cell(tr, w ? duration(w.online_seconds) : '—', 'num');
    const cov = w && typeof w.coverage === 'number' ? w.coverage : null;
    const c = cell(tr, '', 'cov');
    c.dataset.coverage = cov === null ? '' : String(cov);
    if (cov === null) {
      c.textContent = w ? 'no working hours' : '—';
      c.classList.add('muted');
    } else {
      const meter = document.createElement('span');
      meter.className = 'meter';
      meter.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.style.width = Math.max(0, Math.min(100, cov * 100)) + '%';
      meter.append(fill);
      c.append(meter, document.createTextNode(' ' + percent(cov)));
    }
    const gap = cell(tr, w && w.longest_gap_seconds > 0 ? duration(w.longest_gap_seconds) : '—', 'num');
    const at = w && toDate(w.longest_gap_from);
    if (at) gap.title = 'from ' + dayHm.format(at);
    tbody.append(tr);
  }
  if (!shownDays.length) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    cell(tr, 'No days in the history yet').colSpan = 5;
    tbody.append(tr);
  }
  coverageMessage(lastReport.first > addDays(midnight(new Date()), -29) ?
    'The history starts ' + dayName.format(lastReport.first) + ': earlier days are not in it.' : '');
}

function cell(tr, value, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = String(value);
  tr.append(td);
  return td;
}

// ---- CSV: fetched with the token, saved from a Blob ----

async function downloadCSV() {
  const btn = $('csv');
  btn.disabled = true;
  $('csv-status').textContent = 'Preparing…';
  try {
    const first = lastReport ? lastReport.first : addDays(midnight(new Date()), -29);
    const res = await api(reportQuery(first), 'text/csv');
    const blob = await res.blob();
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename="?([^";]+)"?/.exec(cd);
    const name = m ? m[1] : 'availability-' + site + '-' + ymd(first) + '-' + ymd(new Date()) + '.csv';
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    $('csv-status').textContent = 'Downloaded ' + name;
  } catch (e) {
    $('csv-status').textContent = 'Could not download the CSV: ' + e.message;
  } finally {
    btn.disabled = !lastReport;
  }
}

// ---- start ----

function notice(msg, button) {
  $('notice').hidden = !msg;
  $('notice-text').textContent = msg;
  $('retry').hidden = !button;
}

function setConn(state, text) {
  $('conn').dataset.state = state;
  $('conn').textContent = text;
}

async function load() {
  clearTimeout(timer);
  const live = $('period').value === 'hour';
  for (const id of ['date', 'prev', 'next', 'today']) $(id).disabled = live;
  const my = ++seq;
  notReady = false;
  setConn('connecting', 'Loading…');
  await Promise.all([loadTimeline(my), loadCoverage(my)]);
  if (my !== seq) return;
  setConn('open', 'Loaded');
  $('updated').textContent = clock(new Date());
  const { from, to } = range();
  const now = new Date();
  if (notReady) {
    setConn('connecting', 'History loading, retrying…');
    timer = setTimeout(load, 3000);
  } else if (from <= now && now <= to) timer = setTimeout(load, $('period').value === 'hour' ? REFRESH_MS / 2 : REFRESH_MS);
}

function step(n) {
  const day = parseDate($('date').value) || midnight(new Date());
  $('date').value = ymd(addDays(day, $('period').value === 'week' ? 7 * n : n));
  load();
}

async function start() {
  notice('');
  if (!token || fromDev) {
    fromDev = true;
    setConn('connecting', 'Getting a token…');
    const q = new URLSearchParams({ agent: 'admin', role: 'admin' });
    try {
      token = await devToken(q.toString());
    } catch (e) {
      setConn('closed', 'No token');
      notice('No admin token: open this page with ?token=<admin token>, or run the hub with --dev. ' +
        'The hub said: ' + e.message, true);
      return;
    }
  }
  const c = claims(token);
  site = (c && typeof c.site === 'string' && c.site) || params.get('site') || '';
  if (!site) {
    setConn('closed', 'No site');
    notice('The token names no site.', false);
    return;
  }
  $('site').textContent = '· ' + site;
  document.title = site + ' · Availability history · presencehub';
  // The link back keeps the token, as the admin page takes it.
  $('admin-link').href = '/admin' + (fromDev ? '' : '?token=' + encodeURIComponent(token));
  load();
}

$('tz-name').textContent = tz;
$('date').value = params.get('date') && parseDate(params.get('date')) ? params.get('date') : ymd(new Date());
if (['week', 'hour'].includes(params.get('period'))) $('period').value = params.get('period');
if (params.get('group')) {
  const o = document.createElement('option');
  o.value = params.get('group');
  o.textContent = 'Group ' + o.value;
  $('group').append(o);
  $('group').value = params.get('group');
}
$('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  load();
});
for (const id of ['period', 'date', 'group']) $(id).addEventListener('change', () => site && load());
$('prev').addEventListener('click', () => step(-1));
$('next').addEventListener('click', () => step(1));
$('today').addEventListener('click', () => {
  $('date').value = ymd(new Date());
  load();
});
$('cov-range').addEventListener('change', renderCoverage);
$('csv').addEventListener('click', downloadCSV);
$('retry').addEventListener('click', start);
start();
