// Tokens: replaced before they expire without the device dropping, asked
// again after the hub refuses one (4001), and a refused token that comes
// back stops the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { AgentClient, PresenceError, watchWidget } from '../src/index.js';
import { Hub, Proxy, SlowProxy, Widget, token, next, record, site as newSite } from '../test-support/hub.js';

let hub;
const cleanup = [];
before(async () => {
  hub = await Hub.start({ grace: '1m' });
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await hub.close();
});

function client(getToken, device = { kind: 'desktop' }) {
  const c = new AgentClient({ url: hub.url, getToken, device });
  cleanup.push(() => c.close());
  return c;
}

test('short-lived tokens are replaced before they expire, and the device never drops', async () => {
  const site = newSite('refresh');
  const w = new Widget(watchWidget, { url: hub.url, site });
  cleanup.push(() => w.close());
  const asked = [];
  // 6-second tokens, replaced a quarter of their life (about 1.5 s) before
  // their exp; the hub closes a socket whose token expires (4001).
  const alice = client((info) => {
    asked.push(info.reason);
    return token({ site, agent: 'alice', ttl: 6 });
  });
  const events = record(alice, 'state', 'welcome', 'devices', 'error');
  const first = await alice.connect();
  await w.until((s) => s.status === 'online', 'the widget online');
  const onlineAt = w.seen.length - 1;

  // Two takeovers, each a new session of the same device on a new token.
  let welcomes = 1;
  await next(alice, 'welcome', () => ++welcomes === 3, 'two token refreshes');
  assert.deepEqual(asked, ['connect', 'expiring', 'expiring']);
  assert.deepEqual(events.filter((e) => e.event === 'state').map((e) => e.value.state), ['connecting', 'open'],
    'no close, no reconnect: the new session took over before the old token expired');
  assert.deepEqual(events.filter((e) => e.event === 'error'), []);
  const sessions = new Set(events.filter((e) => e.event === 'welcome').map((e) => e.value.session));
  assert.equal(sessions.size, 3, 'three sessions: the first and two takeovers');
  assert.ok(sessions.has(first.session));
  for (const e of events.filter((e) => e.event === 'welcome')) {
    assert.equal(e.value.device, first.device);
    assert.deepEqual(e.value.devices.map((d) => d.id), [first.device], 'one device all along');
  }
  // The device works on its newest session, past the first token's exp.
  assert.equal((await alice.setStatus('busy')).by_device, first.device);
  await w.until((s) => s.status === 'busy', 'the widget busy');
  assert.deepEqual(w.seen.slice(onlineAt).map((s) => s.status), ['online', 'busy'], 'the widget never saw the agent go');
});

test('a takeover whose welcome comes after the old socket\'s 4002 carries on', async () => {
  // The hub replaces the old session (4002) as it welcomes the new one; on
  // a slower path for the new socket, the 4002 arrives first.
  const slow = await SlowProxy.start(hub.url, { slowFrom: 2, delay: 300 });
  cleanup.push(() => slow.close());
  const site = newSite('takeover');
  const asked = [];
  const alice = new AgentClient({
    url: slow.url,
    getToken: (info) => {
      asked.push(info.reason);
      return token({ site, agent: 'alice', ttl: 5 });
    },
    device: { kind: 'desktop' },
  });
  cleanup.push(() => alice.close());
  const events = record(alice, 'state', 'welcome');
  const first = await alice.connect();
  const second = await next(alice, 'welcome', (w) => w.session !== first.session, 'the takeover\'s welcome');
  assert.equal(second.device, first.device);
  assert.deepEqual(asked, ['connect', 'expiring']);
  assert.deepEqual(events.filter((e) => e.event === 'state').map((e) => e.value.state), ['connecting', 'open'],
    'the old socket\'s 4002 did not stop the client');
  assert.ok(slow.count >= 2);
  assert.equal((await alice.setStatus('busy')).by_device, first.device);
});

test('every socket names its token\'s site in its URL, the takeover\'s too', async () => {
  // What a load balancer in front of the hubs sees, and hashes on
  // (docs/routing.md): here a TCP proxy that keeps each request's line.
  const proxy = await Proxy.start(hub.addr);
  cleanup.push(() => proxy.close());
  const site = newSite('route');
  const alice = new AgentClient({
    url: 'http://' + proxy.addr,
    getToken: () => token({ site, agent: 'alice', ttl: 5 }),
    device: { kind: 'desktop' },
  });
  cleanup.push(() => alice.close());
  const first = await alice.connect();
  assert.equal(first.agent.site, site);
  await next(alice, 'welcome', (w) => w.session !== first.session, 'the takeover\'s welcome');
  const line = `GET /v1/agent?site=${site} HTTP/1.1`;
  assert.deepEqual(proxy.requests, [line, line], 'the first socket and the takeover\'s');
});

test('after a 4001 the client asks getToken again, and connects with the new token', async () => {
  const site = newSite('rejected');
  const asked = [];
  const alice = client((info) => {
    asked.push(info.reason);
    // The first token expired a minute ago.
    return token({ site, agent: 'alice', ttl: asked.length === 1 ? -60 : 3600 });
  });
  const states = record(alice, 'state');
  const welcome = await alice.connect();
  assert.equal(welcome.agent.id, 'alice');
  assert.deepEqual(asked, ['connect', 'rejected']);
  const closed = states.map((s) => s.value).find((s) => s.state === 'closed');
  assert.equal(closed.code, 4001);
  assert.equal(closed.reconnect, true);
  assert.equal(closed.error.code, 'unauthorized');
  assert.match(closed.error.message, /expired/);
});

test('a token the hub refused, given again, stops the client (4001)', async () => {
  const site = newSite('refused');
  // Signed with another secret, and the same string every time (a token
  // minted anew each time would be another token, and tried).
  const bad = token({ site, agent: 'alice', secret: 'not-the-hub-secret' });
  let asked = 0;
  const alice = client(() => {
    asked++;
    return bad;
  });
  const states = record(alice, 'state');
  await assert.rejects(alice.connect(), (e) => {
    assert.ok(e instanceof PresenceError);
    assert.equal(e.code, 'unauthorized');
    assert.equal(e.closeCode, 4001);
    return true;
  });
  assert.equal(asked, 2, 'asked once more after the refusal');
  const last = states.at(-1).value;
  assert.equal(last.state, 'closed');
  assert.equal(last.code, 4001);
  assert.equal(last.reconnect, false);
  assert.match(last.reason, /^token refused/);
  assert.equal(alice.state, 'closed');
});

test('a getToken that throws is retried with backoff, and said as an error event', async () => {
  const site = newSite('throws');
  let asked = 0;
  const alice = client(() => {
    if (++asked === 1) throw new Error('the auth server is away');
    return token({ site, agent: 'alice' });
  });
  const errors = record(alice, 'error');
  const states = record(alice, 'state');
  await alice.connect();
  assert.equal(asked, 2);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].value.code, 'token');
  assert.match(errors[0].value.message, /auth server is away/);
  const closed = states.map((s) => s.value).find((s) => s.state === 'closed');
  assert.equal(closed.reconnect, true);
});
