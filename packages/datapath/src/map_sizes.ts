import { readFileText } from "@dp/core/internal";

/**
 * Map sizes of a node, with Cilium's option names where Cilium has them.
 * Unset sizes take the defaults (endpoints 65535, ipcache 512Ki, policy
 * 16Ki per endpoint, conntrack 1Mi TCP / 256Ki other), or, for the
 * conntrack tables, sizes derived from the machine's memory when
 * `bpf-map-dynamic-size-ratio` is set (see {@link resolveMapSizes}).
 *
 * @example Cilium's keys
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveMapSizes, type MapSizeOptions } from "@dp/datapath";
 * const options: MapSizeOptions = { "bpf-ct-global-tcp-max": 262144, "bpf-policy-map-max": 4096 };
 * assert.equal(resolveMapSizes(options).ctTcp, 262144);
 * ```
 */
export interface MapSizeOptions {
  /** Entries of the TCP conntrack table (`dp_ct_tcp`). */
  readonly "bpf-ct-global-tcp-max"?: number;
  /** Entries of the non-TCP conntrack table (`dp_ct_any`). */
  readonly "bpf-ct-global-any-max"?: number;
  /** Entries of each endpoint's policy map. */
  readonly "bpf-policy-map-max"?: number;
  /** Ratio (0, 1] of the total memory used to size the conntrack tables that are not set explicitly. */
  readonly "bpf-map-dynamic-size-ratio"?: number;
  /** Entries of the endpoint map (`dp_endpoints`, two per dual-stack endpoint). */
  readonly endpoints?: number;
  /** Entries of the ipcache (`dp_ipcache`). */
  readonly ipcache?: number;
}

/**
 * The resolved sizes, in entries, and where the conntrack sizes came from.
 *
 * @example Defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveMapSizes, type MapSizes } from "@dp/datapath";
 * const sizes: MapSizes = resolveMapSizes();
 * assert.deepEqual([sizes.endpoints, sizes.ipcache, sizes.policy], [65535, 524288, 16384]);
 * ```
 */
export interface MapSizes {
  /** `dp_endpoints`. */
  readonly endpoints: number;
  /** `dp_ipcache`. */
  readonly ipcache: number;
  /** Each policy map. */
  readonly policy: number;
  /** `dp_ct_tcp`. */
  readonly ctTcp: number;
  /** `dp_ct_any`. */
  readonly ctAny: number;
  /** `"default"`, `"option"` or `"dynamic"` for each conntrack table. */
  readonly source: {
    /** Where the TCP conntrack size came from: the default, an option, or `bpf-map-dynamic-size-ratio`. */
    readonly ctTcp: "default" | "option" | "dynamic";
    /** Where the non-TCP conntrack size came from. */
    readonly ctAny: "default" | "option" | "dynamic";
  };
}

/**
 * The node's default map sizes (bpf/datapath/README.md "Maps"), in entries.
 *
 * @example The conntrack defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAP_SIZES } from "@dp/datapath";
 * assert.deepEqual([DEFAULT_MAP_SIZES.ctTcp, DEFAULT_MAP_SIZES.ctAny], [1048576, 262144]);
 * ```
 */
export const DEFAULT_MAP_SIZES: {
  /** Endpoints per node (the seed's 64k). */
  readonly endpoints: 65535;
  /** ipcache prefixes (512k). */
  readonly ipcache: 524288;
  /** Policy entries per endpoint (`bpf-policy-map-max`, 16k). */
  readonly policy: 16384;
  /** TCP conntrack entries (`bpf-ct-global-tcp-max`, 1M). */
  readonly ctTcp: 1048576;
  /** Non-TCP conntrack entries (`bpf-ct-global-any-max`, 256k). */
  readonly ctAny: 262144;
} = {
  endpoints: 65535,
  ipcache: 524288,
  policy: 16384,
  ctTcp: 1048576,
  ctAny: 262144,
};

/** Cilium's bounds: dynamic sizing never goes below these minimums nor above 16Mi; explicit sizes stay within [1Ki, 16Mi]. */
const LIMIT = { tcpMin: 1 << 17, anyMin: 1 << 16, tableMin: 1 << 10, tableMax: 1 << 24 } as const;
/** Bytes per conntrack entry: `struct dp_tuple` (40) + `struct dp_ct_entry` (64). */
const CT_ENTRY_BYTES = 104;

function checkSize(name: string, value: number | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Invalid map size "${name}": expected an integer in ${min}-${max}, got ${String(value)}`);
  }
  return value;
}

/** Total memory in bytes, from /proc/meminfo. */
function totalMemory(): number {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(readFileText("/proc/meminfo"));
  if (m === null) throw new RangeError("Cannot size maps dynamically: /proc/meminfo has no MemTotal");
  return Number(m[1]) * 1024;
}

/**
 * Resolves a node's map sizes. Explicit sizes win; conntrack tables not
 * set explicitly are sized from memory when `bpf-map-dynamic-size-ratio`
 * is given, with Cilium's formula (pkg/maps/mapsize): the memory for maps
 * is `total × ratio`, shared among the tables in proportion to their
 * default sizes (`entries = default × memory / Σ(default × entry size)`),
 * then clamped to Cilium's minimums (128Ki TCP, 64Ki other) and maximum
 * (16Mi). dp has no NAT or neighbour tables yet, so the sum has only the
 * two conntrack tables (104 bytes an entry) and the share is theirs alone.
 *
 * @param options The sizes and ratio.
 * @param memoryBytes The total memory; default MemTotal of /proc/meminfo.
 * @returns The sizes.
 * @throws {RangeError} When a size or the ratio is out of range.
 * @example Sizing conntrack from 8 GiB at Cilium's default ratio
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveMapSizes } from "@dp/datapath";
 * const sizes = resolveMapSizes({ "bpf-map-dynamic-size-ratio": 0.0025 }, 8 * 2 ** 30);
 * assert.deepEqual([sizes.ctTcp, sizes.ctAny], [165191, 65536]); // 21 MB: the non-TCP table gets its minimum
 * ```
 */
export function resolveMapSizes(options: MapSizeOptions = {}, memoryBytes?: number): MapSizes {
  const ctTcp = checkSize("bpf-ct-global-tcp-max", options["bpf-ct-global-tcp-max"], LIMIT.tableMin, LIMIT.tableMax);
  const ctAny = checkSize("bpf-ct-global-any-max", options["bpf-ct-global-any-max"], LIMIT.tableMin, LIMIT.tableMax);
  const policy =
    checkSize("bpf-policy-map-max", options["bpf-policy-map-max"], 16, 1 << 16) ?? DEFAULT_MAP_SIZES.policy;
  const endpoints = checkSize("endpoints", options.endpoints, 2, 1 << 16) ?? DEFAULT_MAP_SIZES.endpoints;
  const ipcache = checkSize("ipcache", options.ipcache, 16, LIMIT.tableMax) ?? DEFAULT_MAP_SIZES.ipcache;
  const ratio = options["bpf-map-dynamic-size-ratio"];
  if (ratio !== undefined && (typeof ratio !== "number" || !(ratio > 0 && ratio <= 1))) {
    throw new RangeError(
      `Invalid map size "bpf-map-dynamic-size-ratio": expected a number in (0, 1], got ${String(ratio)}`,
    );
  }
  let dynamic: ((def: number, min: number) => number) | undefined;
  if (ratio !== undefined) {
    const available = Math.floor((memoryBytes ?? totalMemory()) * ratio);
    const totalDefault = (DEFAULT_MAP_SIZES.ctTcp + DEFAULT_MAP_SIZES.ctAny) * CT_ENTRY_BYTES;
    dynamic = (def, min) => Math.min(LIMIT.tableMax, Math.max(min, Math.floor((def * available) / totalDefault)));
  }
  const pick = (explicit: number | undefined, def: number, min: number): [number, "default" | "option" | "dynamic"] =>
    explicit !== undefined
      ? [explicit, "option"]
      : dynamic !== undefined
        ? [dynamic(def, min), "dynamic"]
        : [def, "default"];
  const [tcp, tcpSource] = pick(ctTcp, DEFAULT_MAP_SIZES.ctTcp, LIMIT.tcpMin);
  const [any, anySource] = pick(ctAny, DEFAULT_MAP_SIZES.ctAny, LIMIT.anyMin);
  return { endpoints, ipcache, policy, ctTcp: tcp, ctAny: any, source: { ctTcp: tcpSource, ctAny: anySource } };
}
