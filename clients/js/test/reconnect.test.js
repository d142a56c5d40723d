// A hub killed and started again inside the grace: the client comes back
// as the same device, the widget never shows the agent offline, and the
// client re-asserts nothing (the stored status wins).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { AgentClient, watchWidget } from '../src/index.js';
import { Hub, Widget, token, next, record, site as newSite } from '../test-support/hub.js';

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('a hub restart inside the grace: same device, widget never offline, no status re-asserted', async () => {
  const hub = await Hub.start({ grace: '2m' });
  cleanup.push(() => hub.close());
  const site = newSite('restart');
  const w = new Widget(watchWidget, { url: hub.url, site });
  cleanup.push(() => w.close());
  const tokens = [];
  const alice = new AgentClient({
    url: hub.url,
    getToken: (info) => {
      tokens.push(info.reason);
      return token({ site, agent: 'alice' });
    },
    device: { kind: 'desktop' },
  });
  cleanup.push(() => alice.close());
  const first = await alice.connect();
  await alice.setStatus('busy');
  await w.until((s) => s.status === 'busy' && s.transport === 'websocket', 'the widget busy');
  const busyAt = w.seen.length - 1;
  const before = await hub.admin('GET', site, '/agents/alice');
  assert.equal(before.changed_by.kind, 'device');

  const events = record(alice, 'state', 'welcome');
  const welcomed = next(alice, 'welcome', () => true, 'the welcome after the restart');
  await hub.restart('SIGKILL');
  const again = await welcomed;

  assert.equal(again.device, first.device, 'the same device');
  assert.notEqual(again.session, first.session, 'a new session');
  assert.equal(again.status, 'busy', 'the stored status');
  assert.equal(again.devices.length, 1);
  assert.equal(again.devices[0].since, first.devices[0].since, 'a reconnect inside the grace continues the device\'s run');
  const states = events.filter((e) => e.event === 'state').map((e) => e.value);
  assert.equal(states[0].state, 'closed');
  assert.equal(states[0].code, 1006, 'a killed hub: the connection is lost');
  assert.equal(states[0].reconnect, true);
  assert.equal(states.at(-1).state, 'open');
  assert.deepEqual(tokens, ['connect'], 'the token was still good: getToken not asked again');

  // Nothing was written for the agent on reconnect.
  const after = await hub.admin('GET', site, '/agents/alice');
  assert.equal(after.status, 'busy');
  assert.equal(after.changed_at, before.changed_at);
  assert.deepEqual(after.changed_by, before.changed_by);

  // Only a widget that reconnected sees a change made after the restart;
  // until then, and through the restart, it never said offline.
  await alice.setStatus('online');
  await w.until((s) => s.status === 'online' && s.transport === 'websocket', 'the widget online after the restart');
  assert.deepEqual(w.seen.slice(busyAt).filter((s) => s.status === 'offline'), [], 'the widget never showed the agent offline');
});

test('a hub shutting down (1001) and back: the client reconnects by itself', async () => {
  const hub = await Hub.start({ grace: '2m' });
  cleanup.push(() => hub.close());
  const site = newSite('drain');
  const alice = new AgentClient({ url: hub.url, getToken: () => token({ site, agent: 'alice' }), device: { kind: 'web' } });
  cleanup.push(() => alice.close());
  const first = await alice.connect();
  const closed = next(alice, 'state', (s) => s.state === 'closed', 'the close');
  const welcomed = next(alice, 'welcome', () => true, 'the welcome after the restart');
  await hub.restart('SIGTERM');
  const c = await closed;
  assert.equal(c.code, 1001);
  assert.equal(c.reconnect, true);
  assert.ok(c.delay >= 0 && c.delay <= 500, `the first retry within the first backoff step (500 ms), got ${c.delay}`);
  assert.equal((await welcomed).device, first.device);
});

test('connect() while the hub is away keeps trying and resolves once it is back; close() ends the attempts', async () => {
  const hub = await Hub.start({ grace: '2m' });
  cleanup.push(() => hub.close());
  await hub.stop();
  const site = newSite('away');
  const alice = new AgentClient({ url: hub.url, getToken: () => token({ site, agent: 'alice' }), device: { kind: 'web' } });
  cleanup.push(() => alice.close());
  const failed = next(alice, 'state', (s) => s.state === 'closed' && s.reconnect, 'a failed attempt');
  const connected = alice.connect();
  const f = await failed;
  assert.equal(f.code, 1006);
  await hub.restart(); // the process is gone: this starts it again on the same address
  const welcome = await connected;
  assert.equal(welcome.agent.id, 'alice');

  // Away again; close() while waiting to retry rejects a pending connect().
  const bob = new AgentClient({ url: hub.url, getToken: () => token({ site, agent: 'bob' }), device: { kind: 'web' } });
  cleanup.push(() => bob.close());
  await hub.stop();
  const retrying = next(bob, 'state', (s) => s.state === 'closed' && s.reconnect, 'a failed attempt');
  const pending = bob.connect();
  await retrying;
  bob.close();
  await assert.rejects(pending, (e) => e.code === 'closed');
  assert.equal(bob.state, 'closed');
});
