import { BpfMap, createMap, type MapSpec } from "@dp/core";
import type { Codec } from "./codec.ts";
import { ID, INDEX } from "./_typed.ts";
import { DeletableMap, type TypedMapOptions } from "./typed_map.ts";

/** What a map of maps stores: a raw map or a typed one (anything with a `map`). */
export type InnerMap =
  | BpfMap
  | {
      /** The raw map to store. */
      readonly map: BpfMap;
    };

function inner(value: InnerMap, path: string): BpfMap {
  if (value instanceof BpfMap) return value;
  if (typeof value === "object" && value !== null && value.map instanceof BpfMap) return value.map;
  throw new TypeError(`Invalid value for ${path}: expected a BpfMap or a typed map`);
}

/**
 * An array of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`): `set` stores a map (of
 * the inner type the outer map was created with) at an index; `get`
 * returns the stored map's id.
 *
 * @example Swapping an inner map
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { ArrayMap, ArrayOfMaps, u32 } from "@dp/maps";
 *
 * const inner = { type: "array", keySize: 4, valueSize: 4, maxEntries: 2 } as const;
 * using slots = ArrayOfMaps.create(inner, { maxEntries: 2 });
 * using a = ArrayMap.create(u32, { maxEntries: 2 });
 * slots.set(0, a);
 * assert.equal(slots.get(0), a.map.info().id);
 * ```
 */
export class ArrayOfMaps extends DeletableMap<number, number, number, InnerMap> {
  /**
   * Wraps an existing array of maps.
   *
   * @param map The map; `close()` closes it.
   * @throws {TypeError} When the map is not an array of maps.
   */
  constructor(map: BpfMap) {
    super(map, INDEX, ID, { kind: { className: "ArrayOfMaps", types: ["arrayOfMaps"] }, store: inner });
  }

  /**
   * Creates an array of maps.
   *
   * @param innerMap What the stored maps look like (type, sizes; array inner maps may differ in length with `MAP_FLAGS.innerMap`).
   * @param options Name, number of slots and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create(innerMap: MapSpec, options: TypedMapOptions): ArrayOfMaps {
    return new ArrayOfMaps(createMap({ ...options, type: "arrayOfMaps", keySize: 4, valueSize: 4, innerMap }));
  }
}

/**
 * A hash of maps (`BPF_MAP_TYPE_HASH_OF_MAPS`): `set` stores a map under a
 * typed key; `get` returns the stored map's id.
 *
 * @typeParam K The key type.
 * @example A map per tenant
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { HashMap, HashOfMaps, u32 } from "@dp/maps";
 *
 * const inner = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 } as const;
 * using tenants = HashOfMaps.create(u32, inner, { maxEntries: 16 });
 * using t7 = HashMap.create(u32, u32, { maxEntries: 8 });
 * tenants.set(7, t7);
 * assert.deepEqual([...tenants.keys()], [7]);
 * ```
 */
export class HashOfMaps<K> extends DeletableMap<K, number, K, InnerMap> {
  /**
   * Wraps an existing hash of maps.
   *
   * @param map The map; `close()` closes it.
   * @param key The key codec.
   * @throws {TypeError} When the map is not a hash of maps or the key codec size differs from its key size.
   */
  constructor(map: BpfMap, key: Codec<K>) {
    super(map, key, ID, { kind: { className: "HashOfMaps", types: ["hashOfMaps"] }, store: inner });
  }

  /**
   * Creates a hash of maps.
   *
   * @typeParam K The key type.
   * @param key The key codec.
   * @param innerMap What the stored maps look like.
   * @param options Name, capacity and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<K>(key: Codec<K>, innerMap: MapSpec, options: TypedMapOptions): HashOfMaps<K> {
    return new HashOfMaps(
      createMap({ ...options, type: "hashOfMaps", keySize: key.size, valueSize: 4, innerMap }),
      key,
    );
  }
}
