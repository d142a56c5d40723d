// Test support: real presencehub processes, tokens signed with their
// secret, the admin API, a TCP proxy that can cut a connection, and
// bounded waits for events. Nothing here stands in for the hub.
//
// The binary is $PRESENCEHUB_BIN (the Go test that runs these sets it),
// else it is built once per test file with `go build` from the repository.

import { spawn, execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// WAIT bounds every wait for an event: a deadline for failing, never a
// measurement.
export const WAIT = 30000;

export const SECRET = 'js-sdk-test-secret';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

let built = null;

// binary returns the presencehub binary's path, building it when the
// environment does not name one.
export function binary() {
  if (process.env.PRESENCEHUB_BIN) return Promise.resolve(process.env.PRESENCEHUB_BIN);
  if (!built) {
    built = (async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'presencehub-js-bin-'));
      const bin = path.join(dir, 'presencehub');
      await promisify(execFile)('go', ['build', '-o', bin, './cmd/presencehub'], { cwd: repo });
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
      return bin;
    })();
  }
  return built;
}

// withTimeout rejects with a message naming what was awaited once WAIT
// (or ms) passes.
export function withTimeout(promise, what, ms = WAIT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Hub is one `presencehub serve` process with embedded NATS, its own data
// directory and the test secret.
export class Hub {
  static async start(options = {}) {
    const h = new Hub(options);
    h.dataDir = options.dataDir || (await mkdtemp(path.join(tmpdir(), 'presencehub-js-data-')));
    h.ownsData = !options.dataDir;
    await h._run('127.0.0.1:0');
    return h;
  }

  constructor(options) {
    this.options = options;
    this.lines = [];
  }

  get url() {
    return 'http://' + this.addr;
  }

  async _run(addr) {
    const bin = await binary();
    const args = ['serve', '--addr', addr, '--data-dir', this.dataDir, '--jwt-secret', SECRET,
      '--grace', this.options.grace || '1m', '--log-level', 'info', ...(this.options.args || [])];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PRESENCE_')));
    const child = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let listening, loaded;
    const ready = new Promise((resolve, reject) => {
      let buf = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.lines.push(line);
          if (process.env.PRESENCEHUB_TEST_LOGS) process.stderr.write(`hub ${this.addr || addr}: ${line}\n`);
          const m = /\bmsg=listening addr=(\S+)/.exec(line);
          if (m && !listening) listening = m[1];
          if (/\bmsg="view loaded"/.test(line)) loaded = true;
          if (listening && loaded) resolve(listening);
        }
      });
      this.exited.then(({ code, signal }) => reject(new Error(`presencehub exited (${code ?? signal}) before it was ready:\n${this.log()}`)));
    });
    this.addr = await withTimeout(ready, 'the hub to listen and load its view');
  }

  // log is the hub's stderr so far (its last lines), for failure messages.
  log(last = 40) {
    return this.lines.slice(-last).join('\n');
  }

  // stop ends the process (SIGTERM: sockets close with 1001; SIGKILL: a
  // crash) and waits for it to exit.
  async stop(signal = 'SIGTERM') {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await withTimeout(this.exited, 'the hub to exit');
  }

  // restart starts the hub again on the same address and data directory.
  async restart(signal = 'SIGKILL') {
    await this.stop(signal);
    await this._run(this.addr);
  }

  async close() {
    await this.stop('SIGKILL');
    if (this.ownsData) await rm(this.dataDir, { recursive: true, force: true });
  }

  // admin calls the admin API of site with an admin token.
  async admin(method, site, rest, body) {
    const res = await fetch(`${this.url}/v1/admin/sites/${site}${rest}`, {
      method,
      headers: { Authorization: 'Bearer ' + token({ site, agent: 'ops', role: 'admin' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${rest}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  // ready answers GET /readyz's status code.
  async ready() {
    try {
      return (await fetch(this.url + '/readyz')).status;
    } catch (e) {
      return 0;
    }
  }
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

// token signs a presencehub token (HS256) with the test secret, or with
// secret; ttl in seconds, negative for one that expired.
export function token({ site, agent, groups, role = 'agent', ttl = 3600, secret = SECRET }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: agent, site, role, iat: now, exp: now + ttl };
  if (groups) claims.groups = groups;
  const head = b64url({ alg: 'HS256', typ: 'JWT' }) + '.' + b64url(claims);
  return head + '.' + createHmac('sha256', secret).update(head).digest('base64url');
}

// next resolves with the next value of client's event for which pred holds.
export function next(client, event, pred = () => true, what = event) {
  let off;
  const p = new Promise((resolve) => {
    off = client.on(event, (v) => {
      if (pred(v)) {
        off();
        resolve(v);
      }
    });
  });
  return withTimeout(p, what).finally(() => off());
}

// record keeps every value of the client's events, in order.
export function record(client, ...events) {
  const seen = [];
  for (const e of events) client.on(e, (v) => seen.push({ event: e, value: v }));
  return seen;
}

// Widget follows a widget with watchWidget and keeps every status it was
// given; until(pred) resolves once one matches.
export class Widget {
  constructor(watch, options) {
    this.seen = [];
    this.waiters = [];
    this.handle = watch(options, (s) => {
      this.seen.push(s);
      for (const w of [...this.waiters]) {
        if (w.pred(s)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(s);
        }
      }
    });
  }

  get last() {
    return this.seen[this.seen.length - 1];
  }

  until(pred, what) {
    if (this.last && pred(this.last)) return Promise.resolve(this.last);
    let w;
    const p = new Promise((resolve) => {
      w = { pred, resolve };
      this.waiters.push(w);
    });
    return withTimeout(p, what + '; the widget saw ' + JSON.stringify(this.seen.map((s) => s.status + '/' + s.transport)))
      .finally(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
      });
  }

  close() {
    this.handle.close();
  }
}

// Proxy forwards TCP connections to target until cut: then it drops every
// connection and refuses new ones, until restored (a hub cut off NATS). It
// keeps the first line of what each connection sent first: an HTTP
// request's line, the method and the URL a load balancer sees.
export class Proxy {
  static async start(target) {
    const p = new Proxy(target);
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  constructor(target) {
    const [host, port] = target.split(':');
    this.cut = false;
    this.conns = new Set();
    this.requests = [];
    this.server = net.createServer((c) => {
      if (this.cut) return c.destroy();
      c.once('data', (chunk) => this.requests.push(chunk.toString('latin1').split('\r\n')[0]));
      const up = net.connect(Number(port), host);
      for (const [a, b] of [[c, up], [up, c]]) {
        this.conns.add(a);
        a.on('error', () => {});
        a.on('close', () => {
          this.conns.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
  }

  get addr() {
    const a = this.server.address();
    return `${a.address}:${a.port}`;
  }

  cutOff() {
    this.cut = true;
    for (const c of this.conns) c.destroy();
  }

  restore() {
    this.cut = false;
  }

  close() {
    this.cutOff();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

// SlowProxy forwards TCP connections to target; from the connection
// numbered slowFrom on (the first is 1), what target sends takes delay ms
// more to arrive: a slow path for some connections, not others.
export class SlowProxy {
  static async start(target, { slowFrom, delay }) {
    const p = new SlowProxy(target, slowFrom, delay);
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  constructor(target, slowFrom, delay) {
    const { hostname, port } = new URL(target);
    this.count = 0;
    this.conns = new Set();
    this.server = net.createServer((c) => {
      const slow = ++this.count >= slowFrom;
      const up = net.connect(Number(port), hostname);
      for (const s of [c, up]) {
        this.conns.add(s);
        s.on('error', () => {});
        s.on('close', () => this.conns.delete(s));
      }
      c.pipe(up);
      c.on('close', () => up.destroy());
      // Timers of one delay fire in the order they were set: the bytes
      // keep their order.
      const later = slow ? (fn) => setTimeout(fn, delay) : (fn) => fn();
      up.on('data', (chunk) => later(() => c.write(chunk)));
      up.on('end', () => later(() => c.end()));
      up.on('close', () => later(() => c.destroy()));
    });
  }

  get url() {
    return 'http://' + this.server.address().address + ':' + this.server.address().port;
  }

  close() {
    for (const s of this.conns) s.destroy();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

// freePort returns a TCP port nothing listens on now.
export async function freePort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

let seq = 0;
// site returns a site id of its own for a test.
export const site = (name) => `${name}-${process.pid}-${++seq}`;
