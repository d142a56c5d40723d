// The history page's coverage of working hours by day, over the last 30
// days, and its CSV download.
import { $, toDate } from './common.js';
import { tz, ymd, addDays, midnight, parseDate, dayHm, dayName, duration, percent } from './dates.js';
import { session, api, APIError, historyStart } from './historyapi.js';

let lastReport = null; // the 30-day report, for the table and the CSV range

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

export async function loadCoverage(my) {
  let got;
  try {
    got = await reportFirst();
  } catch (e) {
    if (my !== session.seq) return;
    lastReport = null;
    $('csv').disabled = true;
    coverageMessage(e.status === -1 ? e.message : 'No report: ' + e.message);
    $('coverage').tBodies[0].textContent = '';
    $('cov-7').textContent = $('cov-30').textContent = '—';
    return;
  }
  if (my !== session.seq) return;
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

export function renderCoverage() {
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

export async function downloadCSV() {
  const btn = $('csv');
  btn.disabled = true;
  $('csv-status').textContent = 'Preparing…';
  try {
    const first = lastReport ? lastReport.first : addDays(midnight(new Date()), -29);
    const res = await api(reportQuery(first), 'text/csv');
    const blob = await res.blob();
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename="?([^";]+)"?/.exec(cd);
    const name = m ? m[1] : 'availability-' + session.site + '-' + ymd(first) + '-' + ymd(new Date()) + '.csv';
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
