import { type BpfMap, createMap, formatIp, type IpFamily, MAP_FLAGS, parseCidr, parseIp } from "@dp/core";
import type { Codec } from "./codec.ts";
import type { Layout } from "./_typed.ts";
import { DeletableMap, type TypedMapOptions } from "./typed_map.ts";

/** An LPM trie key as an object: the prefix length and the address. */
export interface LpmPrefix {
  /** The number of leading address bits that must match: 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefixLen: number;
  /** The address: text (`"10.1.0.0"`) or 4/16 bytes in network order. */
  readonly addr: string | Uint8Array;
}

/** Options for {@link LpmTrieMap.create}. */
export interface LpmTrieMapOptions extends TypedMapOptions {
  /**
   * The address family of the keys: IPv4 (8-byte keys) or IPv6 (20-byte keys).
   *
   * @default 4
   */
  readonly family?: IpFamily;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : value === null ? "null" : typeof value;
}

/**
 * The key layout of an LPM trie over IP prefixes: `struct { __u32
 * prefixlen; __u8 addr[4 or 16]; }`, host-order prefix length and the
 * address in network order. Host bits beyond the prefix must be zero.
 */
function lpmKey(family: IpFamily): Layout<string, string | LpmPrefix> {
  const n = family === 4 ? 4 : 16;
  const max = n * 8;
  const name = `IPv${family} CIDR`;
  const fail = (path: string, value: unknown, why: string, cause?: unknown): RangeError =>
    new RangeError(
      `Invalid value for ${path} (${name}): ${describe(value)} ${why}`,
      cause === undefined ? undefined : { cause },
    );
  return {
    name,
    size: 4 + n,
    encode(value, view, offset, path) {
      let bytes: Uint8Array;
      let len: number;
      if (typeof value === "string") {
        let p;
        try {
          p = parseCidr(value);
        } catch (err) {
          throw fail(path, value, "is not a CIDR prefix", err);
        }
        if (p.family !== family) throw fail(path, value, `is an IPv${p.family} prefix`);
        bytes = p.bytes;
        len = p.prefixLength;
      } else if (typeof value === "object" && value !== null) {
        len = value.prefixLen;
        if (typeof len !== "number")
          throw new TypeError(`Invalid value for ${path}.prefixLen (u32): expected a number, got ${describe(len)}`);
        if (!Number.isInteger(len) || len < 0 || len > max) {
          throw new RangeError(`Invalid value for ${path}.prefixLen (u32): ${len} is outside 0..${max}`);
        }
        const addr = value.addr;
        if (typeof addr === "string") {
          let ip;
          try {
            ip = parseIp(addr);
          } catch (err) {
            throw new RangeError(`Invalid value for ${path}.addr (IPv${family}): ${describe(addr)} is not an address`, {
              cause: err,
            });
          }
          if (ip.family !== family)
            throw new RangeError(
              `Invalid value for ${path}.addr (IPv${family}): ${describe(addr)} is an IPv${ip.family} address`,
            );
          bytes = ip.bytes;
        } else if (addr instanceof Uint8Array) {
          if (addr.length !== n)
            throw new RangeError(
              `Invalid value for ${path}.addr (IPv${family}): expected ${n} bytes, got ${addr.length}`,
            );
          bytes = addr;
        } else {
          throw new TypeError(
            `Invalid value for ${path}.addr (IPv${family}): expected a string or a Uint8Array, got ${describe(addr)}`,
          );
        }
      } else {
        throw new TypeError(
          `Invalid value for ${path} (${name}): expected a CIDR string or { prefixLen, addr }, got ${describe(value)}`,
        );
      }
      for (let bit = len; bit < max; bit++) {
        if (((bytes[bit >> 3] as number) & (0x80 >> (bit & 7))) !== 0) {
          const text = typeof value === "string" ? value : `${formatIp(bytes)}/${len}`;
          throw new RangeError(
            `Invalid value for ${path} (${name}): ${JSON.stringify(text)} has host bits set beyond /${len}`,
          );
        }
      }
      view.setUint32(offset, len, true);
      for (let i = 0; i < n; i++) view.setUint8(offset + 4 + i, bytes[i] as number);
    },
    decode(view, offset) {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = view.getUint8(offset + 4 + i);
      return `${formatIp(bytes)}/${view.getUint32(offset, true)}`;
    },
  };
}

/**
 * Exposes the LPM key layout for unit tests.
 *
 * @internal
 * @param family 4 or 6.
 * @returns The layout.
 */
export function lpmKeyLayout(family: IpFamily): Layout<string, string | LpmPrefix> {
  return lpmKey(family);
}

/**
 * A longest-prefix-match trie (`BPF_MAP_TYPE_LPM_TRIE`) keyed by IP
 * prefixes. Keys are CIDR strings (`"10.0.0.0/8"`, `"fd00::/64"`) or
 * {@link LpmPrefix} objects; iteration returns CIDR strings. `get`, `has`,
 * `set` and `delete` address exact prefixes; {@link LpmTrieMap.lookup} finds
 * the longest prefix containing an address, as a program's lookup does.
 *
 * The key layout is `struct { __u32 prefixlen; __u8 addr[4]; }` (IPv4) or
 * `addr[16]` (IPv6), chosen by the map's key size.
 *
 * @typeParam V The value type.
 * @example Routing by longest prefix
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { LpmTrieMap, u32 } from "@dp/maps";
 *
 * using routes = LpmTrieMap.create(u32, { maxEntries: 16 });
 * routes.set("10.0.0.0/8", 1).set("10.1.0.0/16", 2);
 * assert.equal(routes.lookup("10.1.2.3"), 2);
 * assert.equal(routes.lookup("10.2.0.1"), 1);
 * assert.equal(routes.lookup("192.168.0.1"), undefined);
 * assert.equal(routes.get("10.0.0.0/8"), 1);
 * ```
 */
export class LpmTrieMap<V> extends DeletableMap<string, V, string | LpmPrefix, V> {
  /** The address family of the keys. */
  readonly family: IpFamily;
  #key: Layout<string, string | LpmPrefix>;
  #keyBytes: Uint8Array;
  #keyView: DataView;
  #next: Uint8Array;
  #first: Uint8Array;
  #lookupKey: Uint8Array;
  #value: Codec<V>;
  #valueBytes: Uint8Array;
  #valueView: DataView;

  /**
   * Wraps an existing LPM trie whose keys are `{ u32 prefixlen; u8 addr[4|16] }`.
   *
   * @param map The map; `close()` closes it.
   * @param value The value codec.
   * @throws {TypeError} When the map is not an LPM trie, its keys are neither 8 nor 20 bytes, or the value codec size differs.
   */
  constructor(map: BpfMap, value: Codec<V>) {
    const family: IpFamily = map.keySize === 20 ? 6 : 4;
    const key = lpmKey(family);
    super(map, key, value, { kind: { className: "LpmTrieMap", types: ["lpmTrie"] } });
    this.family = family;
    this.#key = key;
    this.#keyBytes = new Uint8Array(map.keySize);
    this.#keyView = new DataView(this.#keyBytes.buffer);
    this.#next = new Uint8Array(map.keySize);
    this.#first = new Uint8Array(map.keySize);
    this.#lookupKey = new Uint8Array(map.keySize);
    new DataView(this.#lookupKey.buffer).setUint32(0, family === 4 ? 32 : 128, true);
    this.#value = value;
    this.#valueBytes = new Uint8Array(map.valueBytes);
    this.#valueView = new DataView(this.#valueBytes.buffer);
  }

  /**
   * Creates an LPM trie for IPv4 or IPv6 prefixes (`BPF_F_NO_PREALLOC` is
   * added, as the kernel requires).
   *
   * @typeParam V The value type.
   * @param value The value codec.
   * @param options Family, name, capacity and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<V>(value: Codec<V>, options: LpmTrieMapOptions): LpmTrieMap<V> {
    const { family = 4, ...rest } = options;
    const map = createMap({
      ...rest,
      type: "lpmTrie",
      keySize: family === 4 ? 8 : 20,
      valueSize: value.size,
      flags: (options.flags ?? 0) | MAP_FLAGS.noPrealloc,
    });
    return new LpmTrieMap(map, value);
  }

  /**
   * Looks up an exact prefix. (The kernel's own lookup finds the longest
   * stored prefix containing the key; this checks that the match is the
   * key itself, which costs two more system calls. Use
   * {@link LpmTrieMap.lookup} for longest-prefix matching.)
   *
   * @param key A CIDR string or an {@link LpmPrefix}.
   * @returns The prefix's value, or `undefined` when that exact prefix is not stored.
   * @throws {RangeError} When the key is not a prefix of the trie's family, or has host bits set.
   * @throws {TypeError} When the key has the wrong shape.
   */
  override get(key: string | LpmPrefix): V | undefined {
    this.#key.encode(key, this.#keyView, 0, "key");
    if (this.map.get(this.#keyBytes, this.#valueBytes) === undefined || !this.#stored()) return undefined;
    return this.#value.decode(this.#valueView, 0);
  }

  /**
   * Tells whether an exact prefix is stored.
   *
   * @param key A CIDR string or an {@link LpmPrefix}.
   * @returns `true` when that exact prefix is stored.
   * @throws {RangeError} When the key is not a prefix of the trie's family, or has host bits set.
   * @throws {TypeError} When the key has the wrong shape.
   */
  override has(key: string | LpmPrefix): boolean {
    this.#key.encode(key, this.#keyView, 0, "key");
    return this.map.has(this.#keyBytes) && this.#stored();
  }

  /**
   * Whether the encoded key is stored exactly. For a key it does not hold,
   * the trie's next-key operation returns the first key; for a stored key,
   * the key after it in post-order (never the first) or nothing.
   */
  #stored(): boolean {
    if (this.map.nextKey(this.#keyBytes, this.#next) === undefined) return true;
    if (this.map.nextKey(undefined, this.#first) === undefined) return false;
    for (let i = 0; i < this.#next.length; i++) if (this.#next[i] !== this.#first[i]) return true;
    return false;
  }

  /**
   * Finds the value of the longest prefix that contains an address.
   *
   * @param ip The address: text or 4/16 bytes in network order.
   * @returns The value, or `undefined` when no prefix contains it.
   * @throws {RangeError} When `ip` is not an address of the trie's family.
   */
  lookup(ip: string | Uint8Array): V | undefined {
    const n = this.family === 4 ? 4 : 16;
    let bytes: Uint8Array;
    if (ip instanceof Uint8Array) {
      if (ip.length !== n)
        throw new RangeError(
          `Invalid address for LPM lookup (IPv${this.family}): expected ${n} bytes, got ${ip.length}`,
        );
      bytes = ip;
    } else {
      let parsed;
      try {
        parsed = parseIp(ip);
      } catch (err) {
        throw new RangeError(`Invalid address for LPM lookup (IPv${this.family}): ${describe(ip)} is not an address`, {
          cause: err,
        });
      }
      if (parsed.family !== this.family) {
        throw new RangeError(
          `Invalid address for LPM lookup (IPv${this.family}): ${describe(ip)} is an IPv${parsed.family} address`,
        );
      }
      bytes = parsed.bytes;
    }
    this.#lookupKey.set(bytes, 4);
    if (this.map.get(this.#lookupKey, this.#valueBytes) === undefined) return undefined;
    return this.#value.decode(this.#valueView, 0);
  }
}
