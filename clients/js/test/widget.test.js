// watchWidget against a real hub: a group's widget over its socket, the
// polling fallback behind a proxy that refuses WebSockets (and back to the
// socket once it lets them through), and the hub's error for a bad site.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';

import { AgentClient, watchWidget } from '../src/index.js';
import { Hub, Widget, token, withTimeout, site as newSite } from '../test-support/hub.js';

let hub;
const cleanup = [];
before(async () => {
  hub = await Hub.start({ grace: '10m' });
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await hub.close();
});

function agent(site, id, groups) {
  const c = new AgentClient({ url: hub.url, getToken: () => token({ site, agent: id, groups }), device: { kind: 'web' } });
  cleanup.push(() => c.close());
  return c;
}

function widget(options) {
  const w = new Widget(watchWidget, options);
  cleanup.push(() => w.close());
  return w;
}

test('a group\'s widget counts its members and the agents in no group', async () => {
  const site = newSite('group');
  const sales = widget({ url: hub.url, site, group: 'sales' });
  await sales.until((s) => s.status === 'offline' && s.group === 'sales' && s.site === site, 'the sales widget offline');
  const bob = agent(site, 'bob', ['support']);
  await bob.connect();
  const alice = agent(site, 'alice', ['sales']);
  await alice.connect();
  await sales.until((s) => s.status === 'online', 'the sales widget online');
  await alice.setStatus('busy');
  await sales.until((s) => s.status === 'busy' && s.reason === 'all_busy', 'the sales widget busy: bob is not in sales');
  assert.deepEqual(sales.seen.map((s) => s.status), ['offline', 'online', 'busy']);
});

// NoSocketsProxy forwards HTTP to the hub and refuses WebSocket upgrades
// until allowed: a proxy on the way that blocks WebSockets.
class NoSocketsProxy {
  static async start(target) {
    const p = new NoSocketsProxy(target);
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  constructor(target) {
    const { hostname, port } = new URL(target);
    this.allow = false;
    this.upgrades = 0;
    this.polls = 0;
    this.sockets = new Set();
    this.server = http.createServer((req, res) => {
      if (req.url.startsWith('/v1/sites/')) this.polls++;
      const up = http.request({ host: hostname, port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    this.server.on('connection', (c) => {
      this.sockets.add(c);
      c.on('close', () => this.sockets.delete(c));
    });
    this.server.on('upgrade', (req, socket, head) => {
      this.upgrades++;
      if (!this.allow) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const up = net.connect(Number(port), hostname, () => {
        let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
        for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
        up.write(raw + '\r\n');
        up.write(head);
        up.pipe(socket);
        socket.pipe(up);
      });
      for (const s of [up, socket]) s.on('error', () => { up.destroy(); socket.destroy(); });
      socket.on('close', () => up.destroy());
      up.on('close', () => socket.destroy());
    });
  }

  get url() {
    return 'http://127.0.0.1:' + this.server.address().port;
  }

  close() {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

test('sockets refused on the way: the widget polls, then goes back to its socket', async () => {
  const site = newSite('polling');
  const proxy = await NoSocketsProxy.start(hub.url);
  cleanup.push(() => proxy.close());
  // Polls every 300 ms here instead of every 15 s.
  const w = widget({ url: proxy.url, site, pollInterval: 300 });
  await w.until((s) => s.status === 'offline' && s.transport === 'polling', 'the widget polling');
  assert.ok(proxy.upgrades >= 3, `three sockets refused before polling, got ${proxy.upgrades}`);
  assert.deepEqual(w.seen.map((s) => s.transport), ['polling'], 'no socket ever delivered a status');

  const alice = agent(site, 'alice');
  await alice.connect();
  await w.until((s) => s.status === 'online' && s.transport === 'polling', 'a poll to show online');
  await alice.setStatus('busy');
  await w.until((s) => s.status === 'busy' && s.transport === 'polling', 'a poll to show busy');

  // With polls answered, the socket is tried again only now and then (a
  // minute); reconnectNow tries it at once.
  proxy.allow = true;
  w.handle.reconnectNow();
  await w.until((s) => s.status === 'busy' && s.transport === 'websocket', 'the widget back on its socket');
  const polls = proxy.polls;
  await alice.setStatus('online');
  await w.until((s) => s.status === 'online' && s.transport === 'websocket', 'the socket to deliver online');
  assert.ok(proxy.polls <= polls + 1, `polling stopped once the socket delivered (polls ${polls} then ${proxy.polls})`);
});

test('a bad site: onError gets the hub\'s error, and the widget shows nothing', async () => {
  const errors = [];
  let got;
  const p = new Promise((resolve) => {
    got = resolve;
  });
  const handle = watchWidget({ url: hub.url, site: 'not a site!', onError: (f) => { errors.push(f); got(); } }, () => {
    throw new Error('no status expected for a bad site');
  });
  cleanup.push(() => handle.close());
  await withTimeout(p, 'the error frame');
  handle.close();
  assert.equal(errors[0].type, 'error');
  assert.equal(errors[0].code, 'bad_request');
  assert.match(errors[0].message, /site/);
});

test('watchWidget refuses a missing site or a bad url at once', () => {
  assert.throws(() => watchWidget({ url: hub.url }, () => {}), TypeError);
  assert.throws(() => watchWidget({ url: 'hub.example', site: 'acme' }, () => {}), TypeError);
});
