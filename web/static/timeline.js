// The history page's timeline: each agent's status and the widget's over
// the period shown, working hours shaded.
import { $, toDate } from './common.js';
import { pad, addDays, range, hm, dayHm, dayName, longDay, span } from './dates.js';
import { session, api, APIError, historyStart } from './historyapi.js';

const STATUSES = ['online', 'busy', 'offline'];

export async function loadTimeline(my) {
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
    if (my !== session.seq) return;
    timelineMessage(e.status === -1 ? e.message : 'No timeline: ' + e.message);
    $('timeline').textContent = '';
    return;
  }
  if (my !== session.seq) return;
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
