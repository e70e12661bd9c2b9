import { rawMaps, scan } from "./_maps.ts";
import type { ConntrackMaps } from "./maps.ts";

/** The fill level of one conntrack map. */
export interface ConntrackMapCount {
  /** Entries in the map. */
  readonly entries: number;
  /** Its capacity. */
  readonly maxEntries: number;
}

/** The fill levels of the conntrack maps. */
export interface ConntrackCount {
  /** `dp_ct_tcp`. */
  readonly tcp: ConntrackMapCount;
  /** `dp_ct_any`. */
  readonly any: ConntrackMapCount;
}

/**
 * Counts the entries of the conntrack maps against their capacity (a full
 * map makes the datapath drop new connections with `ct-map-full`). The
 * maps are read with batch lookups, without decoding the entries.
 *
 * @param maps The two conntrack maps (not closed).
 * @returns Entries and capacity per map.
 * @throws {TypeError} When a map has the wrong layout.
 * @throws {SyscallError} When the kernel refuses a read.
 * @example An empty table
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { countConntrack } from "@dp/datapath";
 *
 * using tcp = createMap({ type: "hash", keySize: 40, valueSize: 64, maxEntries: 64 });
 * using any = createMap({ type: "hash", keySize: 40, valueSize: 64, maxEntries: 16 });
 * assert.deepEqual(countConntrack({ tcp, any }), { tcp: { entries: 0, maxEntries: 64 }, any: { entries: 0, maxEntries: 16 } });
 * ```
 */
export function countConntrack(maps: ConntrackMaps): ConntrackCount {
  const raw = rawMaps(maps);
  function count(name: "tcp" | "any"): ConntrackMapCount {
    let entries = 0;
    for (const chunk of scan(raw[name])) entries += chunk.count;
    return { entries, maxEntries: raw[name].maxEntries };
  }
  return { tcp: count("tcp"), any: count("any") };
}
