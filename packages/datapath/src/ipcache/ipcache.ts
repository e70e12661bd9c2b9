import type { DeletableMap } from "@dp/maps";
import type { DpIpcacheInfo, DpIpcacheKey } from "../_gen/datapath.ts";
import { formatAddr16, parsePrefix16 } from "../_addr.ts";

/**
 * One ipcache entry: a prefix and the security identity of the addresses in it.
 *
 * @example An endpoint's address
 * ```ts no-run
 * import type { IpcacheEntry } from "@dp/datapath";
 * const entry: IpcacheEntry = { prefix: "10.0.1.5/32", identity: 256 };
 * ```
 */
export interface IpcacheEntry {
  /** The prefix, canonical (`10.0.1.5/32`, `fd00::/64`). */
  readonly prefix: string;
  /** The identity. */
  readonly identity: number;
}

/**
 * The node's ipcache (`dp_ipcache`, an LPM trie): which security identity
 * an address has. The Node keeps it: endpoint addresses → their identity,
 * the node's own addresses → host (1), `0.0.0.0/0` and `::/0` → world (2),
 * the prefixes CIDR rules use → their CIDR identities. Prefixes are stored
 * as bpf/datapath lays them out (IPv4 mapped into 16 bytes: prefix length
 * `32 + 96 + n` for IPv4, `32 + n` for IPv6, the first 32 bits being the
 * cluster id and family).
 *
 * @example Reading the entries of a node
 * ```ts no-run
 * import type { Node } from "@dp/datapath";
 * declare const node: Node;
 * for (const { prefix, identity } of node.ipcache.entries()) console.log(prefix, identity);
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

  /**
   * Maps a prefix to an identity (replacing what it had).
   *
   * @param prefix The prefix; a bare address is a host prefix.
   * @param identity The identity.
   * @throws {SyntaxError} When the prefix is invalid or has host bits set.
   * @throws {SyscallError} When the map is full (E2BIG / ENOSPC).
   */
  set(prefix: string, identity: number): void {
    this.#map.set(Ipcache.#key(prefix), {
      identity,
      flags: 0,
      encrypt_key: 0,
      pad: 0,
      tunnel_endpoint: new Uint8Array(16),
    });
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
   * @returns The entries, in the map's order.
   */
  entries(): IpcacheEntry[] {
    const out: IpcacheEntry[] = [];
    for (const [k, v] of this.#map.entries()) {
      const len = k.prefixlen - 32 - (k.family === 4 ? 96 : 0);
      out.push({ prefix: `${formatAddr16(k.family, k.addr)}/${len}`, identity: v.identity });
    }
    return out;
  }
}
