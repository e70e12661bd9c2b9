import { DpTuple } from "../_gen/datapath.ts";
import { deleteKeys, KEY_SIZE, rawMaps, scan } from "./_maps.ts";
import { type ConntrackFilter, compileConntrackFilter } from "./filter.ts";
import type { ConntrackMaps } from "./maps.ts";

/** How many entries {@link flushConntrack} deleted from each map. */
export interface ConntrackFlushResult {
  /** From `dp_ct_tcp`. */
  readonly tcp: number;
  /** From `dp_ct_any`. */
  readonly any: number;
}

/**
 * Deletes the conntrack entries that match a filter (all of them without
 * one), with batch lookups and batch deletes. The connections' next
 * packets are treated as new and meet policy again.
 *
 * @param maps The two conntrack maps (not closed).
 * @param filter Which entries; `{}` deletes all.
 * @returns How many entries were deleted per map.
 * @throws {TypeError} When a map has the wrong layout or a filter field the wrong type.
 * @throws {RangeError} When a filter port or protocol is out of range.
 * @throws {SyntaxError} When a filter address cannot be parsed.
 * @throws {SyscallError} When the kernel refuses a read or a deletion.
 * @example Forgetting the connections of an address
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { flushConntrack } from "@dp/datapath";
 *
 * const spec = { type: "hash", keySize: 40, valueSize: 64, maxEntries: 64 } as const;
 * using tcp = createMap(spec);
 * using any = createMap(spec);
 * const key = new Uint8Array(40);
 * key.set([0xff, 0xff, 10, 0, 0, 1], 10);
 * key.set([0, 0, 0, 0, 6, 4, 2], 32); // TCP, IPv4, egress
 * tcp.set(key, new Uint8Array(64));
 * assert.deepEqual(flushConntrack({ tcp, any }, { address: "10.0.0.2" }), { tcp: 0, any: 0 });
 * assert.deepEqual(flushConntrack({ tcp, any }, { address: "10.0.0.1" }), { tcp: 1, any: 0 });
 * ```
 */
export function flushConntrack(maps: ConntrackMaps, filter: ConntrackFilter = {}): ConntrackFlushResult {
  const raw = rawMaps(maps);
  const match = compileConntrackFilter(filter);
  const all = Object.keys(filter).every((k) => filter[k as keyof ConntrackFilter] === undefined);
  function flush(name: "tcp" | "any"): number {
    const map = raw[name];
    let deleted = 0;
    for (const chunk of scan(map)) {
      const keys: Uint8Array[] = [];
      for (let i = 0; i < chunk.count; i++) {
        if (all || match(DpTuple.decode(chunk.keyView, i * KEY_SIZE)))
          keys.push(chunk.keys.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE));
      }
      deleted += deleteKeys(map, keys);
    }
    return deleted;
  }
  return { tcp: flush("tcp"), any: flush("any") };
}
