import { DpEvent } from "../_gen/datapath.ts";
import { addressText } from "../conntrack/_addr.ts";
import {
  CT_RESULTS,
  type CtResultName,
  DROP_REASONS,
  type DropReasonName,
  nameOf,
  POLICY_VERDICTS,
  type PolicyVerdictName,
  TRACE_POINTS,
  type TracePointName,
  type UnknownName,
} from "./reasons.ts";

/** What every monitor event carries about the packet and the decision. */
export interface MonitorEventBase {
  /** When: nanoseconds of `CLOCK_MONOTONIC` (`process.hrtime.bigint()`'s clock). */
  readonly timestamp: bigint;
  /** From the endpoint's side: `egress` is what it sends, `ingress` what it receives. */
  readonly direction: "ingress" | "egress";
  /** The policy verdict (`none` when policy did not run, e.g. for replies). */
  readonly verdict: PolicyVerdictName | UnknownName;
  /** The conntrack result of the packet. */
  readonly ct: CtResultName | UnknownName;
  /** 4 or 6; `undefined` when the packet's IP header was not parsed. */
  readonly family: 4 | 6 | undefined;
  /** The L4 protocol number (after IPv6 extension headers). */
  readonly protocol: number;
  /** Drops and verdicts: the interface the packet was on; traces: where it went. */
  readonly ifindex: number;
  /** The endpoint whose policy or interface the event is about; 0 if none. */
  readonly endpointId: number;
  /** The source's security identity. */
  readonly srcIdentity: number;
  /** The destination's security identity. */
  readonly dstIdentity: number;
  /** The source address; `undefined` when not parsed. */
  readonly saddr: string | undefined;
  /** The destination address; `undefined` when not parsed. */
  readonly daddr: string | undefined;
  /** The source port; for an ICMP echo reply the identifier. */
  readonly sport: number;
  /** The destination port; for an ICMP echo request the identifier. */
  readonly dport: number;
  /**
   * The ICMP or ICMPv6 type where the event tells it: echo request (8,
   * 128) or reply (0, 129), known from which port holds the identifier;
   * `undefined` otherwise (the event does not carry the type).
   */
  readonly icmpType: number | undefined;
  /** The packet's length in bytes. */
  readonly length: number;
  /** Policy verdicts: the rule cookie of the matching entry; 0 if none. */
  readonly ruleCookie: number;
}

/** A dropped packet. */
export interface DropEvent extends MonitorEventBase {
  /** A drop. */
  readonly type: "drop";
  /** Why. */
  readonly reason: DropReasonName | UnknownName;
}

/** A forwarded packet (only when the datapath has tracing on). */
export interface TraceEvent extends MonitorEventBase {
  /** A trace. */
  readonly type: "trace";
  /** Where the packet went. */
  readonly reason: TracePointName | UnknownName;
}

/** The policy decision for a new connection, at each policy stage it met. */
export interface PolicyVerdictEvent extends MonitorEventBase {
  /** A policy verdict. */
  readonly type: "policy-verdict";
  /** The drop reason for a denied connection, `forwarded` for an allowed one. */
  readonly reason: DropReasonName | UnknownName;
}

/** A decoded event of the datapath's `dp_events` ring buffer. */
export type MonitorEvent = DropEvent | TraceEvent | PolicyVerdictEvent;

const ICMP_ECHO: Readonly<Record<number, readonly [request: number, reply: number]>> = { 1: [8, 0], 58: [128, 129] };

/**
 * Builds the event from a decoded `struct dp_event`; `undefined` for a type this version does not know.
 *
 * @internal
 */
export function toMonitorEvent(e: DpEvent): MonitorEvent | undefined {
  const family = e.family === 4 ? 4 : e.family === 6 ? 6 : undefined;
  const echo = ICMP_ECHO[e.protocol];
  let icmpType: number | undefined;
  if (echo !== undefined) {
    if (e.sport === 0 && e.dport !== 0) icmpType = echo[0];
    else if (e.sport !== 0 && e.dport === 0) icmpType = echo[1];
  }
  const base: MonitorEventBase = {
    timestamp: e.timestamp,
    direction: e.direction === 1 ? "egress" : "ingress",
    verdict: nameOf(POLICY_VERDICTS, e.verdict),
    ct: nameOf(CT_RESULTS, e.ct),
    family,
    protocol: e.protocol,
    ifindex: e.ifindex,
    endpointId: e.endpoint_id,
    srcIdentity: e.src_identity,
    dstIdentity: e.dst_identity,
    saddr: family === undefined ? undefined : addressText(e.saddr, family),
    daddr: family === undefined ? undefined : addressText(e.daddr, family),
    sport: e.sport,
    dport: e.dport,
    icmpType,
    length: e.len,
    ruleCookie: e.rule_cookie,
  };
  switch (e.type) {
    case 1:
      return { type: "drop", reason: nameOf(DROP_REASONS, e.reason), ...base };
    case 2:
      return { type: "trace", reason: nameOf(TRACE_POINTS, e.reason), ...base };
    case 3:
      return { type: "policy-verdict", reason: nameOf(DROP_REASONS, e.reason), ...base };
    default:
      return undefined;
  }
}

/**
 * Decodes one record of the datapath's `dp_events` ring buffer, a
 * `struct dp_event` (80 bytes, host byte order, ports in network order).
 *
 * @param record The record's bytes (longer records are read up to the layout's size).
 * @returns The event, or `undefined` for an event type this version does not know.
 * @throws {TypeError} When the record is not a `Uint8Array`.
 * @throws {RangeError} When the record is shorter than `struct dp_event`.
 * @example A policy drop
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMonitorEvent } from "@dp/datapath";
 *
 * const record = new Uint8Array(80);
 * const view = new DataView(record.buffer);
 * record.set([1, 2, 1, 4, 4, 6], 8);    // drop, policy default deny, egress, default-deny verdict, IPv4, TCP
 * view.setUint16(14, 12, true);          // endpoint 12
 * view.setUint32(20, 256, true);         // source identity
 * view.setUint32(24, 300, true);         // destination identity
 * record.set([0xff, 0xff, 10, 0, 0, 1], 42);
 * record.set([0xff, 0xff, 10, 0, 0, 2], 58);
 * view.setUint16(64, 40000);             // ports in network order
 * view.setUint16(66, 80);
 * const event = decodeMonitorEvent(record);
 * assert.equal(event?.type, "drop");
 * assert.equal(event?.reason, "policy-default-deny");
 * assert.equal(`${event?.saddr}:${event?.sport} -> ${event?.daddr}:${event?.dport}`, "10.0.0.1:40000 -> 10.0.0.2:80");
 * ```
 */
export function decodeMonitorEvent(record: Uint8Array): MonitorEvent | undefined {
  if (!(record instanceof Uint8Array))
    throw new TypeError(`Invalid monitor record: expected a Uint8Array, got ${typeof record}`);
  if (record.length < DpEvent.size)
    throw new RangeError(`Invalid monitor record: ${record.length} bytes, struct dp_event needs ${DpEvent.size}`);
  return toMonitorEvent(DpEvent.decode(new DataView(record.buffer, record.byteOffset, record.byteLength), 0));
}
