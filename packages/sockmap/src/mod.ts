/**
 * Socket-layer acceleration of TCP between local sockets: a sock_ops
 * program puts established local connections of a cgroup into a sockhash
 * and an sk_msg program moves each message straight into the peer
 * socket's receive queue, skipping the TCP/IP stack. Restart-safe (pinned
 * maps and links, adopted through a `@dp/hooks` ledger, and a TCP socket
 * iterator that re-inserts established connections), observable
 * (counters, sockets, per-connection status), never breaking a connection
 * (anything it cannot redirect takes the normal path).
 *
 * @module @dp/sockmap
 */
export { accelerate, Acceleration } from "./accelerate.ts";
export type {
  AccelerateOptions,
  ConnectionReason,
  ConnectionStatus,
  ResyncFailure,
  ResyncResult,
  SockmapPolicy,
  SockmapStats,
} from "./accelerate.ts";
export type { SocketTuple } from "./_key.ts";
export { SockmapError } from "./errors.ts";
export type { SockmapErrorCode } from "./errors.ts";
