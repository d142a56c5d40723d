// What the admin page (admin.js) and its "who keeps the chat open" panel
// (keepers.js) both draw with: text by element id, table cells, status
// badges, and obj, which reads a frame's object field or {}.
import { $ } from './common.js';

export const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
const STATUSES = ['online', 'busy', 'offline'];

export function text(id, value) {
  const el = $(id);
  if (el) el.textContent = String(value);
}

export function cell(tr, value, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  if (value instanceof Node) td.append(value);
  else td.textContent = String(value);
  tr.append(td);
  return td;
}

export function statusBadge(status) {
  const span = document.createElement('span');
  span.className = 'status';
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.dataset.status = STATUSES.includes(status) ? status : 'offline';
  span.append(dot, document.createTextNode(' ' + (status || '—')));
  return span;
}
