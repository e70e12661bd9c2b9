import { type BpfMap, createMap, type FdOwner } from "@dp/core";
import type { Codec } from "./codec.ts";
import { COOKIE, INDEX, isFdOwner } from "./_typed.ts";
import { DeletableMap, type TypedMapOptions } from "./typed_map.ts";

function socket(value: FdOwner, path: string): FdOwner {
  if (!isFdOwner(value))
    throw new TypeError(`Invalid value for ${path}: expected a socket descriptor (an Fd or an object with an fd)`);
  return value;
}

/**
 * A socket map (`BPF_MAP_TYPE_SOCKMAP`): sockets by index, for `sk_msg`
 * and `sk_skb` programs to redirect between. `set` stores a socket (TCP
 * established or listening, or bound UDP); `get` returns its socket cookie
 * (the map needs 8-byte values for that).
 *
 * `kind` brands the class so that attach code can insist on a sockmap.
 *
 * @example Storing a bound UDP socket
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openSocket, rawFd, sys } from "@dp/core/internal";
 * import { SockMap } from "@dp/maps";
 *
 * using socks = SockMap.create({ maxEntries: 4 });
 * using sock = openSocket(2, 2, 0, "udp socket"); // AF_INET, SOCK_DGRAM
 * const addr = new Uint8Array(16);
 * addr.set([2, 0, 0, 0, 127, 0, 0, 1]); // sin_family AF_INET, port 0, 127.0.0.1
 * assert.equal(sys().bind(rawFd(sock), addr, 16), 0);
 * socks.set(0, sock);
 * assert.equal(typeof socks.get(0), "bigint");
 * assert.equal(socks.kind, "sockmap");
 * ```
 */
export class SockMap extends DeletableMap<number, bigint, number, FdOwner> {
  /** The brand: always `"sockmap"`. */
  readonly kind = "sockmap" as const;

  /**
   * Wraps an existing socket map.
   *
   * @param map The map; `close()` closes it.
   * @throws {TypeError} When the map is not a sockmap.
   */
  constructor(map: BpfMap) {
    super(map, INDEX, COOKIE, { kind: { className: "SockMap", types: ["sockmap"] }, valueCheck: null, store: socket });
  }

  /**
   * Creates a socket map with 8-byte values (lookups return cookies).
   *
   * @param options Name, number of slots and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create(options: TypedMapOptions): SockMap {
    return new SockMap(createMap({ ...options, type: "sockmap", keySize: 4, valueSize: 8 }));
  }
}

/**
 * A socket hash (`BPF_MAP_TYPE_SOCKHASH`): sockets by a typed key, for
 * `sk_msg` and `sk_skb` programs. `set` stores a socket; `get` returns its
 * socket cookie (the map needs 8-byte values for that).
 *
 * `kind` brands the class so that attach code can insist on a sockhash.
 *
 * @typeParam K The key type.
 * @example Sockets keyed by port
 * ```ts no-run
 * import { SockHash, u32 } from "@dp/maps";
 *
 * using byPort = SockHash.create(u32, { maxEntries: 64 });
 * console.log(byPort.kind); // "sockhash"
 * ```
 */
export class SockHash<K> extends DeletableMap<K, bigint, K, FdOwner> {
  /** The brand: always `"sockhash"`. */
  readonly kind = "sockhash" as const;

  /**
   * Wraps an existing socket hash.
   *
   * @param map The map; `close()` closes it.
   * @param key The key codec.
   * @throws {TypeError} When the map is not a sockhash or the key codec size differs from its key size.
   */
  constructor(map: BpfMap, key: Codec<K>) {
    super(map, key, COOKIE, { kind: { className: "SockHash", types: ["sockhash"] }, valueCheck: null, store: socket });
  }

  /**
   * Creates a socket hash with 8-byte values (lookups return cookies).
   *
   * @typeParam K The key type.
   * @param key The key codec.
   * @param options Name, capacity and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<K>(key: Codec<K>, options: TypedMapOptions): SockHash<K> {
    return new SockHash(createMap({ ...options, type: "sockhash", keySize: key.size, valueSize: 8 }), key);
  }
}
