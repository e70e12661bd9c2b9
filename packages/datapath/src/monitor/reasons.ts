/**
 * The monitor's event types by number (`enum dp_event_type` in
 * `bpf/include/dp/events.h`).
 *
 * @example The name of type 1
 * ```ts
 * import assert from "node:assert/strict";
 * import { EVENT_TYPES } from "@dp/datapath";
 *
 * assert.equal(EVENT_TYPES[1], "drop");
 * ```
 */
export const EVENT_TYPES = {
  /** Event type 1: `drop`. */
  1: "drop",
  /** Event type 2: `trace`. */
  2: "trace",
  /** Event type 3: `policy-verdict`. */
  3: "policy-verdict",
} as const;

/** A monitor event type, see {@link EVENT_TYPES}. */
export type MonitorEventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/**
 * Why the datapath dropped a packet, by the stable number the programs
 * report (`enum dp_drop_reason` in `bpf/include/dp/events.h`; numbers are
 * only ever added). 0 is not a drop: the metrics count forwarded packets
 * under it, and an allowed policy verdict carries it.
 *
 * | number | name | C |
 * |---|---|---|
 * | 0 | `forwarded` | `DP_FORWARDED` |
 * | 1 | `policy-denied` | `DP_DROP_POLICY_DENY` (a deny entry matched) |
 * | 2 | `policy-default-deny` | `DP_DROP_POLICY_DEFAULT` (enforced, no entry matched) |
 * | 3 | `invalid-source` | `DP_DROP_INVALID_SOURCE` |
 * | 4 | `ct-map-full` | `DP_DROP_CT_MAP_FULL` |
 * | 5 | `unsupported-l3` | `DP_DROP_UNSUPPORTED_L3` |
 * | 6 | `invalid-packet` | `DP_DROP_INVALID_PACKET` |
 * | 7 | `fib-failed` | `DP_DROP_FIB_FAIL` |
 * | 8 | `ct-create-failed` | `DP_DROP_CT_CREATE_FAILED` |
 * | 9 | `unknown-destination` | `DP_DROP_UNKNOWN_DESTINATION` |
 * | 10 | `rewrite-failed` | `DP_DROP_REWRITE_FAILED` |
 * | 11 | `encrypt-key-missing` | `DP_DROP_ENCRYPT_KEY_MISSING` (IPsec: the destination's node has no key) |
 *
 * @example The name of reason 2
 * ```ts
 * import assert from "node:assert/strict";
 * import { DROP_REASONS } from "@dp/datapath";
 *
 * assert.equal(DROP_REASONS[2], "policy-default-deny");
 * ```
 */
export const DROP_REASONS = {
  /** Drop reason 0: `forwarded`. */
  0: "forwarded",
  /** Drop reason 1: `policy-denied`. */
  1: "policy-denied",
  /** Drop reason 2: `policy-default-deny`. */
  2: "policy-default-deny",
  /** Drop reason 3: `invalid-source`. */
  3: "invalid-source",
  /** Drop reason 4: `ct-map-full`. */
  4: "ct-map-full",
  /** Drop reason 5: `unsupported-l3`. */
  5: "unsupported-l3",
  /** Drop reason 6: `invalid-packet`. */
  6: "invalid-packet",
  /** Drop reason 7: `fib-failed`. */
  7: "fib-failed",
  /** Drop reason 8: `ct-create-failed`. */
  8: "ct-create-failed",
  /** Drop reason 9: `unknown-destination`. */
  9: "unknown-destination",
  /** Drop reason 10: `rewrite-failed`. */
  10: "rewrite-failed",
  /** Drop reason 11: `encrypt-key-missing`. */
  11: "encrypt-key-missing",
} as const;

/** A drop reason name, see {@link DROP_REASONS}. */
export type DropReasonName = (typeof DROP_REASONS)[keyof typeof DROP_REASONS];

/**
 * Where a traced packet went (`enum dp_trace_point`), by number.
 *
 * @example The name of trace point 2
 * ```ts
 * import assert from "node:assert/strict";
 * import { TRACE_POINTS } from "@dp/datapath";
 *
 * assert.equal(TRACE_POINTS[2], "to-endpoint");
 * ```
 */
export const TRACE_POINTS = {
  /** Trace point 1: `to-stack`. */
  1: "to-stack",
  /** Trace point 2: `to-endpoint`. */
  2: "to-endpoint",
  /** Trace point 3: `to-netdev`. */
  3: "to-netdev",
} as const;

/** A trace point name, see {@link TRACE_POINTS}. */
export type TracePointName = (typeof TRACE_POINTS)[keyof typeof TRACE_POINTS];

/**
 * The policy verdicts (`enum dp_verdict`), by number.
 *
 * @example The name of verdict 4
 * ```ts
 * import assert from "node:assert/strict";
 * import { POLICY_VERDICTS } from "@dp/datapath";
 *
 * assert.equal(POLICY_VERDICTS[4], "default-deny");
 * ```
 */
export const POLICY_VERDICTS = {
  /** Policy verdict 0: `none`. */
  0: "none",
  /** Policy verdict 1: `allow`. */
  1: "allow",
  /** Policy verdict 2: `deny`. */
  2: "deny",
  /** Policy verdict 3: `default-allow`. */
  3: "default-allow",
  /** Policy verdict 4: `default-deny`. */
  4: "default-deny",
} as const;

/** A policy verdict name, see {@link POLICY_VERDICTS}. */
export type PolicyVerdictName = (typeof POLICY_VERDICTS)[keyof typeof POLICY_VERDICTS];

/**
 * The conntrack results of a packet (`enum dp_ct_result`), by number.
 *
 * @example The name of result 2
 * ```ts
 * import assert from "node:assert/strict";
 * import { CT_RESULTS } from "@dp/datapath";
 *
 * assert.equal(CT_RESULTS[2], "reply");
 * ```
 */
export const CT_RESULTS = {
  /** Conntrack result 0: `new`. */
  0: "new",
  /** Conntrack result 1: `established`. */
  1: "established",
  /** Conntrack result 2: `reply`. */
  2: "reply",
  /** Conntrack result 3: `related`. */
  3: "related",
  /** Conntrack result 4: `reopened`. */
  4: "reopened",
} as const;

/** A conntrack result name, see {@link CT_RESULTS}. */
export type CtResultName = (typeof CT_RESULTS)[keyof typeof CT_RESULTS];

/** The name of a number a newer datapath reports that this table does not know. */
export type UnknownName = `unknown-${number}`;

/**
 * The name of a number in one of the tables, or `unknown-<n>`.
 *
 * @internal
 */
export function nameOf<N extends string>(table: Readonly<Record<number, N>>, value: number): N | UnknownName {
  return table[value] ?? `unknown-${value}`;
}
