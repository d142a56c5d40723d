// Availability history of a site: each agent's status over a day or a week,
// working hours shaded, and the coverage of working hours by day, from the
// admin API's timeline and availability report (docs/protocol.md#history).
import { $, params, devToken, claims, clock } from './common.js';
import { tz, ymd, addDays, midnight, parseDate, range } from './dates.js';
import { session } from './historyapi.js';
import { loadTimeline } from './timeline.js';
import { loadCoverage, renderCoverage, downloadCSV } from './coverage.js';

const REFRESH_MS = 30000; // a period that includes now is read again this often

let fromDev = false;
let timer = 0;

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
  const my = ++session.seq;
  session.notReady = false;
  setConn('connecting', 'Loading…');
  await Promise.all([loadTimeline(my), loadCoverage(my)]);
  if (my !== session.seq) return;
  setConn('open', 'Loaded');
  $('updated').textContent = clock(new Date());
  const { from, to } = range();
  const now = new Date();
  if (session.notReady) {
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
  if (!session.token || fromDev) {
    fromDev = true;
    setConn('connecting', 'Getting a token…');
    const q = new URLSearchParams({ agent: 'admin', role: 'admin' });
    try {
      session.token = await devToken(q.toString());
    } catch (e) {
      setConn('closed', 'No token');
      notice('No admin token: open this page with ?token=<admin token>, or run the hub with --dev. ' +
        'The hub said: ' + e.message, true);
      return;
    }
  }
  const c = claims(session.token);
  session.site = (c && typeof c.site === 'string' && c.site) || params.get('site') || '';
  if (!session.site) {
    setConn('closed', 'No site');
    notice('The token names no site.', false);
    return;
  }
  $('site').textContent = '· ' + session.site;
  document.title = session.site + ' · Availability history · presencehub';
  // The link back keeps the token, as the admin page takes it.
  $('admin-link').href = '/admin' + (fromDev ? '' : '?token=' + encodeURIComponent(session.token));
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
for (const id of ['period', 'date', 'group']) $(id).addEventListener('change', () => session.site && load());
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
