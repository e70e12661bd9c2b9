// The byte layouts shared with bpf/sockmap/sockmap.c: the sockhash key
// (struct dp_sm_key), the LPM keys of the local-address tries and the
// iterator's records (struct dp_sm_resync_rec).
import { formatIp, parseCidr, parseIp } from "@dp/core";

/** sizeof(struct dp_sm_key): family, local port, remote port, local ip[4], remote ip[4]. */
export const KEY_SIZE = 44;
/** sizeof(struct dp_sm_resync_rec). */
export const RESYNC_REC_SIZE: number = KEY_SIZE + 8;
/** sizeof(struct dp_sm_lpm4). */
export const LPM4_SIZE = 8;
/** sizeof(struct dp_sm_lpm6). */
export const LPM6_SIZE = 20;

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * One end-to-end TCP connection as seen from one of its sockets: its own
 * address and port, and the peer's.
 */
export interface SocketTuple {
  /** The socket's own address, IPv4 or IPv6 text (an IPv4-mapped IPv6 address is shown as IPv4). */
  readonly localAddress: string;
  /** The socket's own port. */
  readonly localPort: number;
  /** The peer's address. */
  readonly remoteAddress: string;
  /** The peer's port. */
  readonly remotePort: number;
}

function mappedV4(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  return bytes[10] === 0xff && bytes[11] === 0xff ? bytes.subarray(12) : undefined;
}

function checkPort(port: unknown, name: string, what: string): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`${what}: ${name} must be a port number (0-65535), got ${String(port)}`);
  }
  return port;
}

/** Encodes a tuple as the sockhash key, normalizing IPv4-mapped addresses as the programs do. */
export function encodeKey(tuple: SocketTuple, what: string): Uint8Array {
  if (typeof tuple !== "object" || tuple === null) throw new TypeError(`${what}: the tuple must be an object`);
  let local = parseIp(tuple.localAddress).bytes;
  let remote = parseIp(tuple.remoteAddress).bytes;
  const l4 = mappedV4(local);
  const r4 = mappedV4(remote);
  if (l4 !== undefined && r4 !== undefined) {
    local = l4;
    remote = r4;
  }
  if (local.length !== remote.length) throw new TypeError(`${what}: the two addresses are not of the same family`);
  const key = new Uint8Array(KEY_SIZE);
  const dv = new DataView(key.buffer);
  dv.setUint32(0, local.length === 4 ? AF_INET : AF_INET6, true);
  dv.setUint32(4, checkPort(tuple.localPort, "localPort", what), true);
  dv.setUint32(8, checkPort(tuple.remotePort, "remotePort", what), true);
  key.set(local, 12);
  key.set(remote, 28);
  return key;
}

/** Decodes a sockhash key. */
export function decodeKey(key: Uint8Array): SocketTuple {
  const dv = new DataView(key.buffer, key.byteOffset, KEY_SIZE);
  const len = dv.getUint32(0, true) === AF_INET ? 4 : 16;
  return {
    localAddress: formatIp(key.slice(12, 12 + len)),
    localPort: dv.getUint32(4, true),
    remoteAddress: formatIp(key.slice(28, 28 + len)),
    remotePort: dv.getUint32(8, true),
  };
}

/** The key of the peer socket: the same connection seen from the other end. */
export function reverseKey(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(KEY_SIZE);
  out.set(key.subarray(0, 4), 0);
  out.set(key.subarray(8, 12), 4);
  out.set(key.subarray(4, 8), 8);
  out.set(key.subarray(28, 44), 12);
  out.set(key.subarray(12, 28), 28);
  return out;
}

/** A local prefix as the LPM key of its family's trie. */
export function encodePrefix(text: string, what: string): { readonly family: 4 | 6; readonly key: Uint8Array } {
  let prefix;
  try {
    prefix = parseCidr(text);
  } catch (err) {
    throw new TypeError(`${what}: ${JSON.stringify(text)} is not an address or CIDR prefix`, { cause: err });
  }
  const key = new Uint8Array(prefix.family === 4 ? LPM4_SIZE : LPM6_SIZE);
  new DataView(key.buffer).setUint32(0, prefix.prefixLength, true);
  key.set(prefix.bytes, 4);
  return { family: prefix.family, key };
}
