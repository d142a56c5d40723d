// @presencehub/client: agent devices and widget status for presencehub
// (docs/protocol.md). Types and documentation: index.d.ts.
export { AgentClient, PresenceError } from './agent-client.js';
export { watchWidget } from './watch-widget.js';
