// What the client does on each close code the hub gives: 4002 replaced and
// 4005 revoked stop it and say why, 4003 refuses it, a bad hello is not
// retried, and a hub cut off NATS answers "unavailable" to a status change
// and 4004 to a bye, which the client says again until it is stored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { AgentClient, PresenceError, watchWidget } from '../src/index.js';
import { Hub, Proxy, Widget, WAIT, freePort, token, next, record, withTimeout, site as newSite } from '../test-support/hub.js';

let hub;
const cleanup = [];
before(async () => {
  hub = await Hub.start({ grace: '10m' });
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await hub.close();
});

function client(site, id, device = { kind: 'desktop' }, h = hub) {
  const c = new AgentClient({ url: h.url, getToken: () => token({ site, agent: id }), device });
  cleanup.push(() => c.close());
  return c;
}

test('4002: the same device connecting elsewhere stops the older client, which says why', async () => {
  const site = newSite('replaced');
  const first = client(site, 'alice');
  await first.connect();
  const stopped = next(first, 'state', (s) => s.state === 'closed', 'the first client to close');
  const firstStates = record(first, 'state');
  const second = client(site, 'alice', { kind: 'desktop', id: first.deviceId });
  const w = await second.connect();
  assert.equal(w.device, first.deviceId);
  const s = await stopped;
  assert.equal(s.code, 4002);
  assert.equal(s.reconnect, false);
  assert.match(s.reason, /^replaced/);
  assert.equal(s.error.code, 'replaced');
  // The newer session keeps working, and the older client tried nothing.
  await second.setStatus('busy');
  assert.deepEqual(firstStates.map((e) => e.value.state), ['closed']);
  assert.equal(first.state, 'closed');
  await assert.rejects(first.setStatus('online'), (e) => e.code === 'not_connected');

  // connect() again takes the device back ("use this tab").
  const back = next(second, 'state', (s) => s.state === 'closed', 'the second client to close');
  await first.connect();
  assert.equal((await back).code, 4002);
});

test('4005: a device an admin revokes stops, says why, and its agent is offline at once', async () => {
  const site = newSite('revoked');
  const w = new Widget(watchWidget, { url: hub.url, site });
  cleanup.push(() => w.close());
  const alice = client(site, 'alice');
  await alice.connect();
  await w.until((s) => s.status === 'online', 'the widget online');
  const stopped = next(alice, 'state', (s) => s.state === 'closed', 'the client to close');
  await hub.admin('DELETE', site, `/agents/alice/devices/${alice.deviceId}`);
  const s = await stopped;
  assert.equal(s.code, 4005);
  assert.equal(s.reconnect, false);
  assert.match(s.reason, /^revoked/);
  assert.equal(s.error.code, 'revoked');
  await w.until((s) => s.status === 'offline', 'the widget offline, with no grace');
});

test('4003: one device too many is refused, and not retried', async () => {
  const small = await Hub.start({ grace: '10m', args: ['--max-devices', '1'] });
  cleanup.push(() => small.close());
  const site = newSite('toomany');
  await client(site, 'alice', { kind: 'desktop' }, small).connect();
  const phone = client(site, 'alice', { kind: 'mobile' }, small);
  const states = record(phone, 'state');
  await assert.rejects(phone.connect(), (e) => e instanceof PresenceError && e.code === 'forbidden' && e.closeCode === 4003);
  assert.deepEqual(states.map((e) => [e.value.state, e.value.code, e.value.reconnect]), [['connecting', undefined, undefined], ['closed', 4003, false]]);
});

test('4001 for a bad hello (a device id that is not a UUID) is not retried', async () => {
  const site = newSite('badhello');
  let asked = 0;
  const c = new AgentClient({ url: hub.url, getToken: () => (asked++, token({ site, agent: 'alice' })), device: { kind: 'desktop', id: 'not-a-uuid' } });
  cleanup.push(() => c.close());
  await assert.rejects(c.connect(), (e) => e.code === 'bad_request' && /UUID/.test(e.message) && e.closeCode === 4001);
  assert.equal(asked, 1);
  assert.equal(c.state, 'closed');
});

test('a hub cut off NATS: setStatus rejects "unavailable", bye gets 4004 and is said again until stored', async () => {
  // Hub a runs NATS; hub b reaches it through a proxy the test can cut.
  const natsPort = await freePort();
  const a = await Hub.start({ grace: '10m', args: ['--nats-listen', `127.0.0.1:${natsPort}`] });
  cleanup.push(() => a.close());
  const proxy = await Proxy.start(`127.0.0.1:${natsPort}`);
  cleanup.push(() => proxy.close());
  const b = await Hub.start({
    grace: '10m',
    args: ['--nats-url', `nats://${proxy.addr}`, '--nats-write-retry', '300ms', '--write-timeout', '1s'],
  });
  cleanup.push(() => b.close());

  const site = newSite('outage');
  const w = new Widget(watchWidget, { url: a.url, site });
  cleanup.push(() => w.close());
  const alice = client(site, 'alice', { kind: 'desktop' }, b);
  await alice.connect();
  await w.until((s) => s.status === 'online', 'the widget on hub a online');

  proxy.cutOff();
  // Hub b says it is not ready once it sees NATS gone: nothing else tells.
  await withTimeout((async () => {
    while ((await b.ready()) !== 503) await new Promise((r) => setTimeout(r, 50));
  })(), 'hub b to see NATS gone');

  await assert.rejects(alice.setStatus('busy'), (e) => e instanceof PresenceError && e.code === 'unavailable' && /may still apply/.test(e.message));

  const states = record(alice, 'state');
  const notStored = next(alice, 'state', (s) => s.state === 'closed' && s.code === 4004, 'the bye not stored (4004)');
  const bye = alice.bye({ timeout: WAIT });
  const s = await notStored;
  assert.equal(s.reconnect, true, 'the client says bye again');
  proxy.restore();
  await bye;
  const last = states.at(-1).value;
  assert.deepEqual([last.state, last.code, last.reconnect], ['closed', 1000, false]);
  assert.ok(states.some((e) => e.value.state === 'connecting'), 'it connected again to say bye');
  await w.until((s) => s.status === 'offline', 'the widget on hub a offline: the logout is stored');
});
