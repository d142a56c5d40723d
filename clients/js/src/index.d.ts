// Type declarations of @presencehub/client, the JavaScript SDK of
// presencehub. The wire protocol is docs/protocol.md in the repository.

/** A status an agent chooses. */
export type Status = 'online' | 'busy' | 'offline';

/** The kind of an agent's device. */
export type DeviceKind = 'desktop' | 'mobile' | 'web';

/** Whether the working hours are open, and when that next changes. */
export interface Hours {
  open: boolean;
  /** RFC 3339; null without working hours. */
  next_change: string | null;
}

/** One of the agent's devices with a live session. */
export interface DeviceInfo {
  id: string;
  kind: DeviceKind;
  /** When the device's current run of sessions began (a reconnect inside the grace keeps it). */
  since: string;
  /** `background`: a mobile app in background mode. */
  state: 'live' | 'background';
}

/** The first frame of every session. */
export interface WelcomeFrame {
  type: 'welcome';
  session: string;
  /** The device id: keep it (AgentClient does, across reconnects) and store it for the next run of the app. */
  device: string;
  agent: { site: string; id: string; groups: string[] };
  /** The agent's stored status, which the device adopts: connecting never changes it. */
  status: Status;
  devices: DeviceInfo[];
  /** How long a device that drops keeps the agent's status. */
  grace_ms: number;
  hours: Hours;
}

/** The agent's status changed (sent to every device of the agent). */
export interface StatusFrame {
  type: 'status';
  status: Status;
  /** Why: `device`, `admin`, `idle`, `activity` or `hours`; show an unknown one as a change made elsewhere. */
  by: 'device' | 'admin' | 'idle' | 'activity' | 'hours' | (string & {});
  /** With `by: "device"`: which device chose it. */
  by_device?: string;
  /** With `by: "admin"`: the admin's id. */
  by_agent?: string;
  /** The ref of the set_status that made the change, echoed to every device. */
  ref?: string;
  /** With `by: "idle"`: the site's idle delay. */
  idle_after_ms?: number;
  at: string;
}

export interface DevicesFrame {
  type: 'devices';
  devices: DeviceInfo[];
}

export interface RosterAgent {
  id: string;
  /** The agent's effective status: offline without a device. */
  status: Status;
  groups: string[];
}

export interface RosterFrame {
  type: 'roster';
  agents: RosterAgent[];
  hours: Hours;
}

export interface AgentFrame extends RosterAgent {
  type: 'agent';
}

export interface HoursFrame extends Hours {
  type: 'hours';
}

/** An error frame of the hub. */
export interface ErrorFrame {
  type: 'error';
  code: 'bad_request' | 'unauthorized' | 'forbidden' | 'rate_limited' | 'unavailable' | 'internal' | (string & {});
  message: string;
  ref?: string;
}

/**
 * The hub's error codes, and the client's own:
 * - `not_connected`: the client is not connected (or is logging out); nothing was sent.
 * - `disconnected`: the socket closed before the hub answered; the change may still apply.
 * - `timeout`: no answer in time (`requestTimeout`; for bye, its timeout).
 * - `closed`: close() was called, or bye() started, before the answer.
 * - `replaced` (4002), `revoked` (4005): why the client stopped.
 * - `token`: getToken threw or gave no token.
 */
export type ErrorCode =
  | ErrorFrame['code']
  | 'not_connected'
  | 'disconnected'
  | 'timeout'
  | 'closed'
  | 'replaced'
  | 'revoked'
  | 'token';

/** The error of a request, or of a connection that ended. */
export class PresenceError extends Error {
  name: 'PresenceError';
  code: ErrorCode;
  /** The request's ref, for errors of a request. */
  ref?: string;
  /** The close code, when the error ended a connection. */
  closeCode?: number;
  /** The hub's error frame, when the hub sent one. */
  frame?: ErrorFrame;
  constructor(code: ErrorCode, message: string, extra?: { ref?: string; closeCode?: number; frame?: ErrorFrame; cause?: unknown });
}

/**
 * The connection's state:
 * - `connecting`: an attempt starts (`attempt` counts the backoff steps so far).
 * - `open`: the hub welcomed the device (a token refresh, which takes the device over on a new socket, is no new `open`).
 * - `closed`: the socket closed. `reconnect` says whether the client tries again, after `delay` ms.
 *   Without reconnect the client stopped: 1000 after bye() or close(); 4001 when the token the
 *   hub refused came back from getToken, or the hello itself is bad; 4002 replaced, 4003 too
 *   many devices, 4005 revoked. `error` is what the hub said (its error frame) or what failed.
 */
export type StateEvent =
  | { state: 'connecting'; attempt: number }
  | { state: 'open'; welcome: WelcomeFrame }
  | { state: 'closed'; code: number; reason: string; reconnect: boolean; delay?: number; error?: PresenceError };

export interface AgentClientEvents {
  state: StateEvent;
  /** Every welcome: after each reconnect, and after each token refresh. Take its `status` and `devices` as the truth. */
  welcome: WelcomeFrame;
  status: StatusFrame;
  devices: DevicesFrame;
  /** After subscribeRoster(), and again after every welcome. */
  roster: RosterFrame;
  agent: AgentFrame;
  hours: HoursFrame;
  /** The hub's error frames that answer no request, and getToken's failures. */
  error: PresenceError;
}

/** What getToken is asked for. */
export interface TokenRequest {
  /**
   * `connect`: the first connection; `expiring`: the token's exp is near (a quarter of its life
   * before it, between 1 s and 60 s); `rejected`: the hub refused the last one (4001).
   * Returning a token the hub refused stops the client.
   */
  reason: 'connect' | 'expiring' | 'rejected';
}

export interface AgentClientOptions {
  /**
   * The hub: `https://hub.example` (or http, ws, wss); `/v1/agent` is added unless there. Each
   * socket's URL also names the site of the token it says hello with (`?site=`, read from the
   * JWT without checking it), for load balancers that hash on it.
   */
  url: string;
  /** A JWT for the hub (docs/protocol.md, tokens); asked on the first connection, before the token's exp, and after the hub refuses one. */
  getToken: (request: TokenRequest) => string | Promise<string>;
  /** The device: give the id the previous run of the app was welcomed with, so that it continues the same device. */
  device?: { id?: string; kind?: DeviceKind };
  /** A WebSocket implementation (React Native, Node 20 without --experimental-websocket, tests); default the global one. */
  WebSocket?: unknown;
  /** How long setStatus, background and foreground wait for the answer: default 30000 ms. */
  requestTimeout?: number;
  /** How long an attempt may take to be welcomed: default 30000 ms. */
  connectTimeout?: number;
  /** Reconnect backoff, full jitter: random(0, min(cap, base * 2^attempt)); default base 500 ms, cap 30000 ms. */
  backoff?: { base?: number; cap?: number };
}

/**
 * One agent device. It reconnects by itself (keeping the device id, so that the grace covers
 * the gap, and re-asserting nothing: the stored status wins), replaces its token before it
 * expires, and stops on 4002 (replaced), 4003 (too many devices) and 4005 (revoked).
 */
export class AgentClient {
  constructor(options: AgentClientOptions);
  /** The device id: the option's until the first welcome, then the welcome's. */
  readonly deviceId: string;
  /** The latest welcome, or null. */
  readonly welcome: WelcomeFrame | null;
  /** The agent's live devices, from the latest welcome or devices frame. */
  readonly devices: DeviceInfo[];
  readonly state: 'connecting' | 'open' | 'closed';

  /** Adds a handler; returns a function that removes it. */
  on<E extends keyof AgentClientEvents>(event: E, fn: (value: AgentClientEvents[E]) => void): () => void;
  off<E extends keyof AgentClientEvents>(event: E, fn: (value: AgentClientEvents[E]) => void): void;

  /**
   * Connects (or, after the client stopped, connects again: after 4002, this takes the device
   * back). Resolves with the welcome; while the hub cannot be reached it keeps trying. Rejects
   * when the client stops first: 4001 (`unauthorized`, `bad_request`), 4002, 4003 (`forbidden`),
   * 4005, close() or bye() (`closed`).
   */
  connect(): Promise<WelcomeFrame>;
  /**
   * Sets the agent's status on every device. Resolves with the hub's status frame for it
   * (matched by ref and this device); rejects with the hub's code (`unavailable`: NATS did not
   * confirm, the change may still apply; `rate_limited`; `bad_request`) or the client's
   * (`not_connected`, `disconnected`, `timeout`).
   */
  setStatus(status: Status): Promise<StatusFrame>;
  /** Says the person used this device (the idle rule). Sent only when open: returns whether it was. */
  activity(): boolean;
  /**
   * A mobile app going to the background (send it before the OS suspends the app): with the
   * site's background setting, the device's lease lasts background.max. Resolves with the devices
   * once they show this device in background; rejects `bad_request` without the setting or on
   * another kind of device.
   */
  background(): Promise<DeviceInfo[]>;
  /** Ends background mode (so does every reconnect). */
  foreground(): Promise<DeviceInfo[]>;
  /** Asks for the roster now and after every welcome; resolves with the next roster frame. */
  subscribeRoster(): Promise<RosterFrame>;
  /**
   * Logs the device out: its lease goes at once, without grace. Resolves once the hub stored it
   * (close 1000); on 4004 (not stored) or a lost connection it connects again and says bye again,
   * until `timeout` (default the grace), then rejects `timeout`. Not connected, it connects just
   * to say bye. The client is stopped after it.
   */
  bye(options?: { timeout?: number }): Promise<void>;
  /** Closes the socket without bye: the device keeps the agent's status for the grace. Stops the client. */
  close(): void;
  /** While waiting to reconnect, tries at once (the client does on the browser's `online` event). */
  reconnectNow(): void;
}

/** A widget's status. */
export interface WidgetStatus {
  status: Status;
  reason: 'outside_hours' | 'agents_online' | 'all_busy' | 'no_agents' | (string & {}) | null;
  /** When the working hours next open (while closed) or close (while open); null without. */
  nextChange: Date | null;
  site: string;
  group: string | null;
  /** How this status came: the socket, or polling while sockets fail. */
  transport: 'websocket' | 'polling';
}

export interface WatchWidgetOptions {
  /** The hub: `https://hub.example` (or http, ws, wss). */
  url: string;
  site: string;
  /** A group's widget: its members and the agents in no group. */
  group?: string;
  /** Default the global WebSocket; without one, watchWidget polls. */
  WebSocket?: unknown;
  /** Default the global fetch. */
  fetch?: (url: string, init?: object) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;
  /** How often to poll while sockets fail: default 15000 ms (jittered, and longer after failed polls). */
  pollInterval?: number;
  /** The hub's error frames (a bad site or group). */
  onError?: (frame: ErrorFrame) => void;
}

/**
 * Follows the widget status of a site or a group, as widget.js does: over the socket, reconnecting
 * with jittered backoff; after three sockets in a row fail to open, by polling
 * /v1/sites/{site}/status, trying the socket again now and then, and back on it once it delivers.
 * onStatus is called when the status, reason, next change or transport changes.
 */
export function watchWidget(
  options: WatchWidgetOptions,
  onStatus: (status: WidgetStatus) => void,
): { close(): void; reconnectNow(): void };
