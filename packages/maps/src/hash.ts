import { type BpfMap, createMap } from "@dp/core";
import type { Codec } from "./codec.ts";
import { DeletableMap, type TypedMapOptions } from "./typed_map.ts";

/**
 * A hash map (`BPF_MAP_TYPE_HASH`) with typed keys and values.
 *
 * @typeParam K The key type.
 * @typeParam V The value type.
 * @example A policy table keyed by a struct
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { be16, HashMap, struct, u32, u64, u8 } from "@dp/maps";
 *
 * const Key = struct({ identity: u32, dport: be16, proto: u8, pad: u8 });
 * using policy = HashMap.create(Key, u64, { maxEntries: 64 });
 * policy.set({ identity: 7, dport: 443, proto: 6, pad: 0 }, 1n);
 * assert.equal(policy.get({ identity: 7, dport: 443, proto: 6, pad: 0 }), 1n);
 * assert.equal(policy.get({ identity: 8, dport: 443, proto: 6, pad: 0 }), undefined);
 * ```
 */
export class HashMap<K, V> extends DeletableMap<K, V> {
  /**
   * Wraps an existing hash map, such as one of a loaded collection.
   *
   * @param map The map; `close()` closes it.
   * @param key The key codec.
   * @param value The value codec.
   * @throws {TypeError} When the map is not a hash map or the codec sizes differ from its key and value sizes.
   */
  constructor(map: BpfMap, key: Codec<K>, value: Codec<V>) {
    super(map, key, value, { kind: { className: "HashMap", types: ["hash"] } });
  }

  /**
   * Creates a hash map sized for the codecs.
   *
   * @typeParam K The key type.
   * @typeParam V The value type.
   * @param key The key codec.
   * @param value The value codec.
   * @param options Name, capacity and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<K, V>(key: Codec<K>, value: Codec<V>, options: TypedMapOptions): HashMap<K, V> {
    const map = createMap({ ...options, type: "hash", keySize: key.size, valueSize: value.size });
    return new HashMap(map, key, value);
  }
}

/**
 * An LRU hash map (`BPF_MAP_TYPE_LRU_HASH`): when full, an update evicts
 * the least recently used entry instead of failing.
 *
 * @typeParam K The key type.
 * @typeParam V The value type.
 * @example Evicting the oldest entry
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { LruHashMap, u32 } from "@dp/maps";
 *
 * using recent = LruHashMap.create(u32, u32, { maxEntries: 64 });
 * for (let i = 0; i < 1000; i++) recent.set(i, i);
 * assert.equal(recent.get(999), 999);
 * ```
 */
export class LruHashMap<K, V> extends DeletableMap<K, V> {
  /**
   * Wraps an existing LRU hash map.
   *
   * @param map The map; `close()` closes it.
   * @param key The key codec.
   * @param value The value codec.
   * @throws {TypeError} When the map is not an LRU hash map or the codec sizes differ from its key and value sizes.
   */
  constructor(map: BpfMap, key: Codec<K>, value: Codec<V>) {
    super(map, key, value, { kind: { className: "LruHashMap", types: ["lruHash"] } });
  }

  /**
   * Creates an LRU hash map sized for the codecs.
   *
   * @typeParam K The key type.
   * @typeParam V The value type.
   * @param key The key codec.
   * @param value The value codec.
   * @param options Name, capacity and flags (`MAP_FLAGS.noCommonLru` for per-CPU LRU lists).
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<K, V>(key: Codec<K>, value: Codec<V>, options: TypedMapOptions): LruHashMap<K, V> {
    const map = createMap({ ...options, type: "lruHash", keySize: key.size, valueSize: value.size });
    return new LruHashMap(map, key, value);
  }
}
