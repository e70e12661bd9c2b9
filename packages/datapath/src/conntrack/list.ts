import { DpCtEntry, DpTuple } from "../_gen/datapath.ts";
import { rawMaps, scan, VALUE_SIZE, KEY_SIZE } from "./_maps.ts";
import { type ConntrackEntry, type ConntrackMapName, toConntrackEntry } from "./entry.ts";
import { type ConntrackFilter, compileConntrackFilter } from "./filter.ts";
import type { ConntrackMaps } from "./maps.ts";

/**
 * Lists the conntrack entries that match a filter, decoded, TCP entries
 * first. The maps are read with batch lookups; entries the datapath adds
 * or changes meanwhile may or may not be seen.
 *
 * @param maps The two conntrack maps (not closed).
 * @param filter Which entries; `{}` lists all.
 * @returns The matching entries.
 * @throws {TypeError} When a map has the wrong layout or a filter field the wrong type.
 * @throws {RangeError} When a filter port or protocol is out of range.
 * @throws {SyntaxError} When a filter address cannot be parsed.
 * @throws {SyscallError} When the kernel refuses a read.
 * @example Listing the UDP entries of a pod
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { listConntrack } from "@dp/datapath";
 *
 * const spec = { type: "hash", keySize: 40, valueSize: 64, maxEntries: 64 } as const;
 * using tcp = createMap(spec);
 * using any = createMap(spec);
 * const key = new Uint8Array(40);
 * key.set([0xff, 0xff, 10, 0, 0, 1], 10);
 * key.set([0xff, 0xff, 10, 0, 0, 2], 26);
 * key.set([0x13, 0x88, 0, 53, 17, 4, 2], 32); // 5000 → 53, UDP, IPv4, egress
 * any.set(key, new Uint8Array(64));
 * const [entry] = listConntrack({ tcp, any }, { address: "10.0.0.1", protocol: "UDP" });
 * assert.equal(entry?.dport, 53);
 * assert.equal(entry?.map, "any");
 * ```
 */
export function listConntrack(maps: ConntrackMaps, filter: ConntrackFilter = {}): ConntrackEntry[] {
  const raw = rawMaps(maps);
  const match = compileConntrackFilter(filter);
  const out: ConntrackEntry[] = [];
  for (const name of ["tcp", "any"] as const satisfies readonly ConntrackMapName[]) {
    for (const chunk of scan(raw[name])) {
      for (let i = 0; i < chunk.count; i++) {
        const key = DpTuple.decode(chunk.keyView, i * KEY_SIZE);
        if (!match(key)) continue;
        out.push(toConntrackEntry(name, key, DpCtEntry.decode(chunk.valueView, i * VALUE_SIZE)));
      }
    }
  }
  return out;
}
