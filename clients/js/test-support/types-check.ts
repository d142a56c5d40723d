// Compiled, not run: the declarations in src/index.d.ts hold for the way
// docs/clients.md uses the SDK. npm run typecheck (needs TypeScript).
import { AgentClient, PresenceError, watchWidget } from '@presencehub/client';
import type { StatusFrame, WelcomeFrame, WidgetStatus, StateEvent } from '@presencehub/client';

const client = new AgentClient({
  url: 'https://hub.example',
  getToken: async ({ reason }) => (reason === 'rejected' ? 'new' : 'old'),
  device: { id: localStorageLike.get('device') ?? undefined, kind: 'desktop' },
});
client.on('welcome', (w: WelcomeFrame) => {
  localStorageLike.set('device', w.device);
  const s: 'online' | 'busy' | 'offline' = w.status;
  void s;
});
client.on('state', (s: StateEvent) => {
  if (s.state === 'closed' && !s.reconnect) console.log(s.code, s.reason, s.error?.code);
});
client.on('status', (f) => console.log(f.by, f.by_device, f.ref));
client.on('error', (e) => console.log(e.code === 'unavailable', e.message));
const off = client.on('devices', (f) => f.devices.map((d) => d.state));
off();

async function main(): Promise<void> {
  const welcome = await client.connect();
  console.log(welcome.grace_ms, welcome.hours.next_change);
  try {
    const f: StatusFrame = await client.setStatus('busy');
    console.log(f.at);
  } catch (e) {
    if (e instanceof PresenceError && e.code === 'unavailable') console.log('may still apply');
  }
  client.activity();
  await client.background();
  await client.foreground();
  const roster = await client.subscribeRoster();
  console.log(roster.agents[0]?.status);
  await client.bye({ timeout: 10000 });
  client.close();
  // @ts-expect-error: not a status
  await client.setStatus('away');
}
void main;

const w = watchWidget({ url: 'https://hub.example', site: 'acme', group: 'sales' }, (s: WidgetStatus) => {
  console.log(s.status, s.reason, s.nextChange?.toISOString(), s.transport);
});
w.reconnectNow();
w.close();

declare const localStorageLike: { get(k: string): string | null; set(k: string, v: string): void };
