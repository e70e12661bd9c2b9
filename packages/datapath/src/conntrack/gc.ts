import type { BpfMap } from "@dp/core";
import { DpCtEntry } from "../_gen/datapath.ts";
import { deleteKeys, KEY_SIZE, rawMaps, scan, VALUE_SIZE } from "./_maps.ts";
import type { ConntrackMaps } from "./maps.ts";

/** Options for {@link gcConntrack}. */
export interface ConntrackGcOptions {
  /**
   * The time to compare expiries with: nanoseconds of `CLOCK_MONOTONIC`,
   * the clock of `bpf_ktime_get_ns()`.
   *
   * @default process.hrtime.bigint()
   */
  readonly now?: bigint;
}

/** What one garbage collection pass did to one map. */
export interface ConntrackGcMapResult {
  /** Expired entries deleted. */
  readonly removed: number;
  /** Entries that had not expired. */
  readonly kept: number;
  /** The map's capacity. */
  readonly maxEntries: number;
}

/** What one garbage collection pass did. */
export interface ConntrackGcResult {
  /** `dp_ct_tcp`. */
  readonly tcp: ConntrackGcMapResult;
  /** `dp_ct_any`. */
  readonly any: ConntrackGcMapResult;
  /**
   * The largest share of a map's capacity that was deleted
   * (`removed / maxEntries`), the figure Cilium adapts its interval to;
   * see {@link nextConntrackGcInterval}.
   */
  readonly deleteRatio: number;
  /** The time expiries were compared with. */
  readonly now: bigint;
}

const LITTLE: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const EXPIRES: number = DpCtEntry.offsetOf("expires");

function collect(map: BpfMap, now: bigint): ConntrackGcMapResult {
  // Compare the u64 as two u32 halves: no bigint per entry.
  const nowHi = Number(now >> 32n);
  const nowLo = Number(now & 0xffff_ffffn);
  const hiAt = EXPIRES + (LITTLE ? 4 : 0);
  const loAt = EXPIRES + (LITTLE ? 0 : 4);
  let removed = 0;
  let kept = 0;
  for (const chunk of scan(map)) {
    const v = chunk.valueView;
    const expired: Uint8Array[] = [];
    for (let i = 0; i < chunk.count; i++) {
      const off = i * VALUE_SIZE;
      const hi = v.getUint32(off + hiAt, LITTLE);
      if (hi < nowHi || (hi === nowHi && v.getUint32(off + loAt, LITTLE) <= nowLo)) {
        expired.push(chunk.keys.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE));
      } else {
        kept++;
      }
    }
    removed += deleteKeys(map, expired);
  }
  return { removed, kept, maxEntries: map.maxEntries };
}

/**
 * Removes the expired entries of the conntrack maps: reads each map with
 * `BPF_MAP_LOOKUP_BATCH` in chunks and deletes the entries whose
 * `expires` is at or before `now` with `BPF_MAP_DELETE_BATCH` (a key walk
 * and single deletes where the kernel lacks batch operations for hashes).
 *
 * The datapath refreshes `expires` on every packet, so an entry read as
 * expired can get a packet before it is deleted; that connection's next
 * packet is then treated as new and meets policy again, as after Cilium's
 * garbage collection.
 *
 * @param maps The two conntrack maps (not closed).
 * @param options The time to compare with.
 * @returns Entries removed and kept per map, and the delete ratio.
 * @throws {TypeError} When a map is not a hash of `struct dp_tuple` → `struct dp_ct_entry`, or `now` is not a bigint.
 * @throws {SyscallError} When the kernel refuses a read or a deletion.
 * @example Removing an expired entry
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { gcConntrack } from "@dp/datapath";
 *
 * const spec = { type: "hash", keySize: 40, valueSize: 64, maxEntries: 64 } as const;
 * using tcp = createMap(spec);
 * using any = createMap(spec);
 * const key = new Uint8Array(40);
 * key[37] = 4; // IPv4
 * const value = new Uint8Array(64); // expires 0: long ago
 * tcp.set(key, value);
 * const result = gcConntrack({ tcp, any });
 * assert.equal(result.tcp.removed, 1);
 * assert.equal(tcp.get(key), undefined);
 * ```
 */
export function gcConntrack(maps: ConntrackMaps, options: ConntrackGcOptions = {}): ConntrackGcResult {
  const { tcp, any } = rawMaps(maps);
  const now = options.now ?? process.hrtime.bigint();
  if (typeof now !== "bigint")
    throw new TypeError(`Invalid conntrack GC time: expected a bigint of nanoseconds, got ${typeof now}`);
  const t = collect(tcp, now);
  const a = collect(any, now);
  const deleteRatio = Math.max(
    t.maxEntries > 0 ? t.removed / t.maxEntries : 0,
    a.maxEntries > 0 ? a.removed / a.maxEntries : 0,
  );
  return { tcp: t, any: a, deleteRatio, now };
}
