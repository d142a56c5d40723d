// AgentClient against a real hub: the welcome, status changes seen by a
// widget and by the agent's other devices, the roster, errors, background
// mode, bye and close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { AgentClient, PresenceError, watchWidget } from '../src/index.js';
import { Hub, Widget, token, next, record, site as newSite } from '../test-support/hub.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let hub;
const cleanup = [];

before(async () => {
  hub = await Hub.start({ grace: '10m' });
});

after(async () => {
  for (const c of cleanup.reverse()) await c();
  await hub.close();
});

function agent(site, id, kind = 'desktop', extra = {}) {
  const c = new AgentClient({
    url: hub.url,
    getToken: () => token({ site, agent: id, groups: extra.groups }),
    device: { kind, id: extra.deviceId },
  });
  cleanup.push(() => c.close());
  return c;
}

function widget(site, group) {
  const w = new Widget(watchWidget, { url: hub.url, site, group });
  cleanup.push(() => w.close());
  return w;
}

test('a status set on one device reaches the widget and the agent\'s other devices', async () => {
  const site = newSite('status');
  const w = widget(site);
  await w.until((s) => s.status === 'offline' && s.reason === 'no_agents' && s.transport === 'websocket', 'the widget offline');

  const desktop = agent(site, 'alice', 'desktop', { groups: ['sales'] });
  const states = record(desktop, 'state');
  const welcome = await desktop.connect();
  assert.equal(welcome.type, 'welcome');
  assert.match(welcome.device, UUID);
  assert.equal(desktop.deviceId, welcome.device);
  assert.deepEqual(welcome.agent, { site, id: 'alice', groups: ['sales'] });
  assert.equal(welcome.status, 'online', 'an agent seen for the first time starts online');
  assert.equal(welcome.grace_ms, 600000);
  assert.deepEqual(states.map((s) => s.value.state), ['connecting', 'open']);
  await w.until((s) => s.status === 'online', 'the widget online');

  const mobile = agent(site, 'alice', 'mobile', { groups: ['sales'] });
  const joined = next(desktop, 'devices', (f) => f.devices.length === 2, 'the desktop to see the mobile join');
  await mobile.connect();
  await joined;
  assert.equal(mobile.devices.length, 2);

  const onMobile = next(mobile, 'status', (f) => f.status === 'busy', 'the mobile to see busy');
  const frame = await desktop.setStatus('busy');
  assert.equal(frame.type, 'status');
  assert.equal(frame.status, 'busy');
  assert.equal(frame.by, 'device');
  assert.equal(frame.by_device, desktop.deviceId);
  assert.match(frame.ref, /^js/);
  const seen = await onMobile;
  assert.equal(seen.by_device, desktop.deviceId);
  assert.equal(seen.ref, frame.ref, 'every device gets the ref');
  await w.until((s) => s.status === 'busy' && s.reason === 'all_busy', 'the widget busy');

  // From the mobile now: its own request is answered by its own frame,
  // even though the desktop's ref counter started at the same number.
  const back = await mobile.setStatus('online');
  assert.equal(back.by_device, mobile.deviceId);
  await w.until((s) => s.status === 'online', 'the widget online again');
});

test('the roster after subscribeRoster, then agent frames', async () => {
  const site = newSite('roster');
  const alice = agent(site, 'alice');
  await alice.connect();
  const roster = await alice.subscribeRoster();
  assert.equal(roster.type, 'roster');
  assert.deepEqual(roster.agents.map((a) => [a.id, a.status]), [['alice', 'online']]);

  const bob = agent(site, 'bob', 'web', { groups: ['support'] });
  const bobSeen = next(alice, 'agent', (f) => f.id === 'bob' && f.status === 'online', 'alice to see bob online');
  await bob.connect();
  const f = await bobSeen;
  assert.deepEqual(f.groups, ['support']);
  const busy = next(alice, 'agent', (f) => f.id === 'bob' && f.status === 'busy', 'alice to see bob busy');
  await bob.setStatus('busy');
  await busy;
});

test('setStatus rejects with the hub\'s error code, and when not connected', async () => {
  const site = newSite('errors');
  const alice = agent(site, 'alice');
  await assert.rejects(alice.setStatus('busy'), (e) => e instanceof PresenceError && e.code === 'not_connected');
  await alice.connect();
  await assert.rejects(alice.setStatus('away'), (e) => {
    assert.ok(e instanceof PresenceError);
    assert.equal(e.code, 'bad_request');
    assert.match(e.message, /away/);
    assert.match(e.ref, /^js/);
    return true;
  });
  // The socket stays open: the next change goes through.
  assert.equal((await alice.setStatus('offline')).status, 'offline');
  assert.equal(alice.state, 'open');
});

test('background and foreground on a mobile device', async () => {
  const site = newSite('background');
  const desktop = agent(site, 'alice', 'desktop');
  const mobile = agent(site, 'alice', 'mobile');
  await desktop.connect();
  await mobile.connect();

  // Off for the site: the hub says so, with the request's ref.
  await assert.rejects(mobile.background(), (e) => e.code === 'bad_request' && /background/.test(e.message));

  await hub.admin('PUT', site, '/settings', { background: { max: '1h' } });
  const shown = next(desktop, 'devices', (f) => f.devices.some((d) => d.id === mobile.deviceId && d.state === 'background'),
    'the desktop to see the mobile in background');
  const devices = await mobile.background();
  assert.equal(devices.find((d) => d.id === mobile.deviceId).state, 'background');
  await shown;
  // Already in background: answered at once, as the hub sends nothing.
  await mobile.background();

  await mobile.foreground();
  assert.equal(mobile.devices.find((d) => d.id === mobile.deviceId).state, 'live');
  await mobile.foreground();

  await assert.rejects(desktop.background(), (e) => e.code === 'bad_request' && /mobile/.test(e.message));
});

test('bye ends the device at once; close keeps its grace', async () => {
  const site = newSite('bye');
  const w = widget(site);
  const desktop = agent(site, 'alice', 'desktop');
  const mobile = agent(site, 'alice', 'mobile');
  await desktop.connect();
  await mobile.connect();
  await w.until((s) => s.status === 'online', 'the widget online');

  // close: the device leaves the list at once, its lease keeps the agent
  // online for the grace (10 minutes here).
  const left = next(desktop, 'devices', (f) => f.devices.length === 1, 'the mobile to leave the list');
  mobile.close();
  assert.equal(mobile.state, 'closed');
  await left;
  const a = await hub.admin('GET', site, '/agents/alice');
  assert.equal(a.effective, 'online');
  assert.equal(a.devices.find((d) => d.id === mobile.deviceId).state, 'grace');

  // bye from the closed mobile: it connects just to say it, so its grace
  // ends now; the app hears no welcome of that session.
  const mobileEvents = record(mobile, 'welcome', 'state');
  await mobile.bye();
  assert.deepEqual(mobileEvents.filter((e) => e.event === 'welcome'), []);
  assert.deepEqual(mobileEvents.at(-1).value, { state: 'closed', code: 1000, reason: 'bye', reconnect: false });
  const after = await hub.admin('GET', site, '/agents/alice');
  assert.deepEqual(after.devices.map((d) => d.id), [desktop.deviceId]);

  // bye from the last device: offline at once, no grace.
  const states = record(desktop, 'state');
  await desktop.bye();
  assert.equal(desktop.state, 'closed');
  assert.deepEqual(states.map((s) => [s.value.state, s.value.code, s.value.reconnect]), [['closed', 1000, false]]);
  await w.until((s) => s.status === 'offline', 'the widget offline at once');
  await assert.rejects(desktop.setStatus('online'), (e) => e.code === 'not_connected');
});

test('an hours frame when the site\'s working hours change its open state', async () => {
  const site = newSite('hours');
  const alice = agent(site, 'alice');
  const welcome = await alice.connect();
  assert.deepEqual(welcome.hours, { open: true, next_change: null }, 'no schedule: always open');
  // Closed all week but for one hour the day after tomorrow (UTC): closed
  // now, whatever the day, with an opening to come.
  const day = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'][(new Date().getUTCDay() + 2) % 7];
  const closed = next(alice, 'hours', (h) => h.open === false, 'the hours frame');
  await hub.admin('PUT', site, '/hours', { timezone: 'UTC', weekly: { [day]: [{ from: '09:00', to: '10:00' }] } });
  const h = await closed;
  assert.equal(h.type, 'hours');
  const opens = new Date(h.next_change);
  assert.equal(opens.getUTCHours(), 9);
  assert.ok(opens > new Date());
});
