// Raw access to the conntrack maps: the layout check, batch reads in
// chunks (a next-key walk where the kernel has no batch operations for
// hashes) and batch deletes that skip keys already gone.
import { BpfMap, type MapBatchOptions, type MapBatchResult, NotSupportedError, SyscallError } from "@dp/core";
import { bytes, HashMap } from "@dp/maps";
import { DpCtEntry, DpTuple } from "../_gen/datapath.ts";
import type { ConntrackMapRef, ConntrackMaps } from "./maps.ts";
import type { ConntrackMapName } from "./entry.ts";

/** Key bytes (`struct dp_tuple`). */
export const KEY_SIZE: number = DpTuple.size;
/** Value bytes (`struct dp_ct_entry`). */
export const VALUE_SIZE: number = DpCtEntry.size;
/** Entries per batch system call. */
export const CHUNK = 16384;
const ENOSPC = 28;

/** The raw map of a reference, checked against the conntrack layout. */
export function rawMap(ref: ConntrackMapRef, name: ConntrackMapName): BpfMap {
  const map: unknown = ref instanceof BpfMap ? ref : (ref as { map?: unknown } | undefined)?.map;
  if (!(map instanceof BpfMap)) {
    throw new TypeError(`Invalid conntrack map "${name}": expected a BpfMap or a typed map over one`);
  }
  if (map.type !== "hash") {
    throw new TypeError(`Invalid conntrack map "${name}": expected a hash map, got ${String(map.type)}`);
  }
  if (map.keySize !== KEY_SIZE || map.valueSize !== VALUE_SIZE) {
    throw new TypeError(
      `Invalid conntrack map "${name}": expected ${KEY_SIZE}-byte keys (struct dp_tuple) and ${VALUE_SIZE}-byte values (struct dp_ct_entry), got ${map.keySize} and ${map.valueSize}`,
    );
  }
  return map;
}

/** Both raw maps, checked. */
export function rawMaps(maps: ConntrackMaps): { readonly tcp: BpfMap; readonly any: BpfMap } {
  if (typeof maps !== "object" || maps === null)
    throw new TypeError(`Invalid conntrack maps: expected { tcp, any }, got ${String(maps)}`);
  return { tcp: rawMap(maps.tcp, "tcp"), any: rawMap(maps.any, "any") };
}

/** One chunk of entries: `count` keys and values back to back. */
export interface Chunk {
  readonly keys: Uint8Array;
  readonly values: Uint8Array;
  readonly keyView: DataView;
  readonly valueView: DataView;
  readonly count: number;
}

/**
 * Reads every entry in chunks. The buffers are reused: a chunk is valid
 * until the next one is requested. Deleting entries of a chunk already
 * read is safe (a hash's batch cursor is a bucket, which deletes do not
 * move).
 */
export function* scan(map: BpfMap, chunkSize: number = CHUNK): Generator<Chunk, void, undefined> {
  let size = Math.max(1, Math.min(chunkSize, map.maxEntries));
  let keys = new Uint8Array(size * KEY_SIZE);
  let values = new Uint8Array(size * VALUE_SIZE);
  let cursor: MapBatchOptions = {};
  for (;;) {
    let result: MapBatchResult;
    try {
      result = map.lookupBatch(keys, values, cursor);
    } catch (err) {
      if (err instanceof NotSupportedError) {
        yield* walk(map, size);
        return;
      }
      // A hash bucket holds more entries than the chunk: grow it.
      if (err instanceof SyscallError && err.errno === ENOSPC && size < map.maxEntries) {
        size = Math.min(size * 4, map.maxEntries);
        keys = new Uint8Array(size * KEY_SIZE);
        values = new Uint8Array(size * VALUE_SIZE);
        continue;
      }
      throw err;
    }
    if (result.count > 0) {
      yield {
        keys,
        values,
        keyView: new DataView(keys.buffer),
        valueView: new DataView(values.buffer),
        count: result.count,
      };
    }
    if (result.cursor === undefined) return;
    cursor = { cursor: result.cursor };
  }
}

/** The same as {@link scan} with BPF_MAP_GET_NEXT_KEY and one lookup per key. */
function* walk(map: BpfMap, size: number): Generator<Chunk, void, undefined> {
  const keys = new Uint8Array(size * KEY_SIZE);
  const values = new Uint8Array(size * VALUE_SIZE);
  const keyView = new DataView(keys.buffer);
  const valueView = new DataView(values.buffer);
  let cur = map.nextKey(undefined);
  const seen = new Set<string>();
  while (cur !== undefined) {
    let n = 0;
    while (cur !== undefined && n < size) {
      // The next key first: deleting the current one restarts the walk.
      const next = map.nextKey(cur);
      const id = Array.from(cur).join(",");
      const value = seen.has(id) ? undefined : map.get(cur);
      seen.add(id);
      if (value !== undefined) {
        keys.set(cur, n * KEY_SIZE);
        values.set(value, n * VALUE_SIZE);
        n++;
      }
      cur = next;
    }
    if (n > 0) yield { keys, values, keyView, valueView, count: n };
  }
}

const deleters = new WeakMap<BpfMap, HashMap<Uint8Array, Uint8Array>>();

/**
 * Deletes keys (each `KEY_SIZE` bytes, views into a chunk) with
 * BPF_MAP_DELETE_BATCH where the kernel has it; keys already gone are
 * skipped. Returns how many were deleted.
 */
export function deleteKeys(map: BpfMap, keys: readonly Uint8Array[]): number {
  if (keys.length === 0) return 0;
  let deleter = deleters.get(map);
  if (deleter === undefined) {
    // A byte-level view of the same map; never closed (the caller owns the map).
    deleter = new HashMap(map, bytes(KEY_SIZE), bytes(VALUE_SIZE));
    deleters.set(map, deleter);
  }
  return deleter.deleteMany(keys);
}
