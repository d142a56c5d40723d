// The history page's dates and formats: local days (the browser's zone),
// the period shown, and how times, spans, durations and shares read.
import { $ } from './common.js';

export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;

export const pad = (n) => String(n).padStart(2, '0');
export const ymd = (d) => d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
export const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n);
export const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());

export function parseDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

// range is the period shown: [from, to) of local midnights, or the last
// hour up to the next whole minute.
export function range() {
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

export const hm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
export const dayHm = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
export const dayName = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
export const longDay = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

// span formats an interval for a text alternative.
export function span(from, to) {
  const endOfDay = +to === +addDays(midnight(from), 1);
  if (from.toDateString() === to.toDateString() || endOfDay) {
    return dayName.format(from) + ', ' + hm.format(from) + '–' + (endOfDay ? '24:00' : hm.format(to));
  }
  return dayHm.format(from) + ' – ' + dayHm.format(to);
}

export function duration(sec) {
  sec = Math.round(Number(sec) || 0);
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  if (h) return h + ' h ' + pad(m) + ' min';
  if (m) return m + ' min' + (s ? ' ' + s + ' s' : '');
  return s + ' s';
}

export const percent = (r) => (typeof r === 'number' && isFinite(r) ? (Math.floor(r * 1000) / 10).toFixed(1) + ' %' : '—');
