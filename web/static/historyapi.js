// The history page's session with the hub (its admin token, its site, the
// generation of its latest load) and the admin API calls it makes.
import { params, parse, toDate } from './common.js';

// session is shared by the page's parts: history.js sets it up and starts
// each load; the timeline and the coverage drop answers to older loads.
export const session = {
  token: params.get('token') || '',
  site: '',
  seq: 0, // drops answers to requests older than the latest
  notReady: false, // the hub answered 503: its history index is still loading
};

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, accept) {
  let res;
  try {
    res = await fetch('/v1/admin/sites/' + encodeURIComponent(session.site) + path, {
      headers: { Authorization: 'Bearer ' + session.token, Accept: accept || 'application/json' },
      cache: 'no-store',
    });
  } catch (e) {
    throw new APIError(0, 'Could not reach the hub: ' + e.message);
  }
  if (res.ok) return res;
  if (res.status === 503) session.notReady = true;
  const text = await res.text().catch(() => '');
  const body = parse(text);
  let msg = body && body.error && (body.error.message || body.error.code);
  if (typeof msg !== 'string' || !msg) msg = text.trim().slice(0, 300) || 'HTTP ' + res.status;
  if (res.status === 404 && /history is off/.test(msg)) msg = 'This hub keeps no history: ' + msg;
  throw new APIError(res.status, msg);
}

// historyStart reads when the history starts from the API's answer to a
// range that begins before it, or returns null.
export function historyStart(err) {
  if (!(err instanceof APIError) || err.status !== 400) return null;
  const m = /starts at (\S+?)[,.;)]?(\s|$)/.exec(err.message);
  return m ? toDate(m[1]) : null;
}
