import type { DeletableMap } from "@dp/maps";
import type { DpIpcacheInfo, DpIpcacheKey } from "../_gen/datapath.ts";
import { addr16, formatAddr16, parsePrefix16 } from "../_addr.ts";

/** The largest node id: ids are 16 bits in the ipcache and in the IPsec mark. */
const MAX_NODE_ID = 0xffff;

/**
 * What the ipcache holds for a prefix besides its identity: the remote
 * node whose pods it holds.
 *
 * @example A remote node's pod CIDR
 * ```ts no-run
 * import type { IpcacheInfo } from "@dp/datapath";
 * const info: IpcacheInfo = { identity: 2, nodeId: 2, tunnelEndpoint: "192.168.0.2" };
 * ```
 */
export interface IpcacheInfo {
  /** The identity. */
  readonly identity: number;
  /**
   * The remote node whose pods the prefix holds (1-65535): with
   * encryption, traffic from local pods to it is encrypted with that
   * node's key ({@link Node.setNodeKey}). Absent for local and non-pod
   * prefixes.
   */
  readonly nodeId?: number;
  /** The remote node's address (the tunnel endpoint); absent when none was given. */
  readonly tunnelEndpoint?: string;
}

/**
 * One ipcache entry: a prefix and the security identity of the addresses
 * in it, with the remote node of a remote pod prefix.
 *
 * @example An endpoint's address
 * ```ts no-run
 * import type { IpcacheEntry } from "@dp/datapath";
 * const entry: IpcacheEntry = { prefix: "10.0.1.5/32", identity: 256 };
 * ```
 */
export interface IpcacheEntry extends IpcacheInfo {
  /** The prefix, canonical (`10.0.1.5/32`, `fd00::/64`). */
  readonly prefix: string;
}

/**
 * Options of {@link Ipcache.set}: the remote node of a prefix of its pods.
 *
 * @example Node 2's pods
 * ```ts no-run
 * import type { IpcacheSetOptions } from "@dp/datapath";
 * const options: IpcacheSetOptions = { nodeId: 2, tunnelEndpoint: "192.168.0.2" };
 * ```
 */
export interface IpcacheSetOptions {
  /**
   * The remote node whose pods the prefix holds, 1-65535.
   *
   * @default none (a local or non-pod prefix)
   */
  readonly nodeId?: number;
  /**
   * The remote node's address.
   *
   * @default none
   */
  readonly tunnelEndpoint?: string;
}

/**
 * The node's ipcache (`dp_ipcache`, an LPM trie): which security identity
 * an address has. The Node keeps it: endpoint addresses → their identity,
 * the node's own addresses → host (1), `0.0.0.0/0` and `::/0` → world (2),
 * the prefixes CIDR rules use → their CIDR identities. Prefixes of remote
 * nodes' pods are written by the caller, with the node's id (and address):
 * with encryption, the datapath encrypts what local pods send to them.
 * Prefixes are stored as bpf/datapath lays them out (IPv4 mapped into 16
 * bytes: prefix length `32 + 96 + n` for IPv4, `32 + n` for IPv6, the
 * first 32 bits being the cluster id and family).
 *
 * @example Reading the entries of a node
 * ```ts no-run
 * import type { Node } from "@dp/datapath";
 * declare const node: Node;
 * for (const { prefix, identity, nodeId } of node.ipcache.entries()) console.log(prefix, identity, nodeId ?? "local");
 * ```
 */
export class Ipcache {
  readonly #map: DeletableMap<DpIpcacheKey, DpIpcacheInfo>;

  /**
   * Wraps the map.
   *
   * @internal Reached through `Node.ipcache`.
   * @param map `dp_ipcache`.
   */
  constructor(map: DeletableMap<DpIpcacheKey, DpIpcacheInfo>) {
    this.#map = map;
  }

  static #key(prefix: string): DpIpcacheKey {
    const p = parsePrefix16(prefix);
    return {
      prefixlen: 32 + (p.family === 4 ? 96 + p.prefixLength : p.prefixLength),
      cluster_id: 0,
      pad: 0,
      family: p.family,
      addr: p.addr,
    };
  }

  static #value(prefix: string, identity: number, options: IpcacheSetOptions): DpIpcacheInfo {
    const what = `Cannot set ipcache entry ${JSON.stringify(prefix)}`;
    if (typeof options !== "object" || options === null) throw new TypeError(`${what}: options must be an object`);
    const { nodeId, tunnelEndpoint } = options;
    if (nodeId !== undefined) {
      if (typeof nodeId !== "number") throw new TypeError(`${what}: nodeId must be a number, got ${typeof nodeId}`);
      if (!Number.isInteger(nodeId) || nodeId < 1 || nodeId > MAX_NODE_ID)
        throw new RangeError(`${what}: nodeId ${nodeId} must be an integer from 1 to ${MAX_NODE_ID}`);
    }
    let endpoint: Uint8Array = new Uint8Array(16);
    if (tunnelEndpoint !== undefined) {
      if (typeof tunnelEndpoint !== "string")
        throw new TypeError(`${what}: tunnelEndpoint must be an address, got ${typeof tunnelEndpoint}`);
      try {
        endpoint = addr16(tunnelEndpoint).addr;
      } catch (err) {
        throw new SyntaxError(`${what}: tunnelEndpoint ${JSON.stringify(tunnelEndpoint)} is not an address`, {
          cause: err,
        });
      }
    }
    return { identity, flags: 0, encrypt_key: 0, node_id: nodeId ?? 0, tunnel_endpoint: endpoint };
  }

  static #info(v: DpIpcacheInfo): IpcacheInfo {
    const out: { identity: number; nodeId?: number; tunnelEndpoint?: string } = { identity: v.identity };
    if (v.node_id !== 0) out.nodeId = v.node_id;
    if (v.tunnel_endpoint.some((b) => b !== 0)) {
      const mapped = v.tunnel_endpoint.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
      out.tunnelEndpoint = formatAddr16(mapped ? 4 : 6, v.tunnel_endpoint);
    }
    return out;
  }

  /**
   * Maps a prefix to an identity (replacing what it had), and for a
   * prefix of a remote node's pods, to that node.
   *
   * @param prefix The prefix; a bare address is a host prefix.
   * @param identity The identity.
   * @param options The remote node (id and address) of a remote pod prefix.
   * @throws {SyntaxError} When the prefix is invalid or has host bits set, or the tunnel endpoint is no address.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When the node id is not an integer from 1 to 65535.
   * @throws {SyscallError} When the map is full (E2BIG / ENOSPC).
   */
  set(prefix: string, identity: number, options: IpcacheSetOptions = {}): void {
    const key = Ipcache.#key(prefix);
    this.#map.set(key, Ipcache.#value(prefix, identity, options));
  }

  /**
   * The identity the datapath finds for a prefix: a longest-prefix match,
   * so the prefix's own entry when it has one, else the entry of the
   * longest shorter prefix that contains it (for a bare address, what a
   * packet from or to it gets). Use {@link Ipcache.entries} for exact
   * prefixes.
   *
   * @param prefix The prefix, or an address.
   * @returns The identity, or undefined when no entry contains it.
   * @throws {SyntaxError} When the prefix is invalid.
   */
  get(prefix: string): number | undefined {
    return this.#map.get(Ipcache.#key(prefix))?.identity;
  }

  /**
   * What the datapath finds for a prefix (a longest-prefix match, as
   * {@link Ipcache.get}): the identity and the remote node.
   *
   * @param prefix The prefix, or an address.
   * @returns The identity and node, or undefined when no entry contains it.
   * @throws {SyntaxError} When the prefix is invalid.
   */
  info(prefix: string): IpcacheInfo | undefined {
    const v = this.#map.get(Ipcache.#key(prefix));
    return v === undefined ? undefined : Ipcache.#info(v);
  }

  /**
   * Removes a prefix.
   *
   * @param prefix The prefix.
   * @returns Whether it was there.
   * @throws {SyntaxError} When the prefix is invalid.
   */
  delete(prefix: string): boolean {
    return this.#map.delete(Ipcache.#key(prefix));
  }

  /**
   * Every entry.
   *
   * @returns The entries, in the map's order; `nodeId` and
   *   `tunnelEndpoint` only on entries that have them.
   */
  entries(): IpcacheEntry[] {
    const out: IpcacheEntry[] = [];
    for (const [k, v] of this.#map.entries()) {
      const len = k.prefixlen - 32 - (k.family === 4 ? 96 : 0);
      out.push({ prefix: `${formatAddr16(k.family, k.addr)}/${len}`, ...Ipcache.#info(v) });
    }
    return out;
  }
}
