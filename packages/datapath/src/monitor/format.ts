import type { MonitorEvent } from "./event.ts";

/** `cilium monitor`'s wording of the drop reasons. */
const DROP_TEXT: Readonly<Record<string, string>> = {
  forwarded: "Forwarded",
  "policy-denied": "Policy denied by denylist",
  "policy-default-deny": "Policy denied",
  "invalid-source": "Invalid source ip",
  "ct-map-full": "CT: Map full",
  "unsupported-l3": "Unsupported L3 protocol",
  "invalid-packet": "Invalid packet",
  "fib-failed": "FIB lookup failed",
  "ct-create-failed": "CT: Can't create entry from packet",
  "unknown-destination": "Unknown destination",
  "rewrite-failed": "Error writing to packet",
};

const PROTOCOLS: Readonly<Record<number, string>> = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp" };
const WITH_PORTS = new Set([6, 17, 132]);
const ICMP_NAMES: Readonly<Record<number, string>> = {
  8: "EchoRequest",
  0: "EchoReply",
  128: "EchoRequest",
  129: "EchoReply",
};

function endpointText(addr: string, family: 4 | 6, port: number | undefined): string {
  if (port === undefined) return addr;
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** `10.0.0.1:40000 -> 10.0.0.2:80 tcp`, as cilium monitor summarises a packet. */
function summary(e: MonitorEvent): string {
  if (e.family === undefined || e.saddr === undefined || e.daddr === undefined)
    return `unparsed packet, ${e.length} bytes`;
  const ports = WITH_PORTS.has(e.protocol);
  const name = PROTOCOLS[e.protocol] ?? `proto ${e.protocol}`;
  const from = endpointText(e.saddr, e.family, ports ? e.sport : undefined);
  const to = endpointText(e.daddr, e.family, ports ? e.dport : undefined);
  let text = `${from} -> ${to} ${name}`;
  if (e.icmpType !== undefined) text += ` ${ICMP_NAMES[e.icmpType] ?? `type ${e.icmpType}`} id ${e.sport || e.dport}`;
  return text;
}

function identities(e: MonitorEvent): string {
  return `identity ${e.srcIdentity}->${e.dstIdentity}`;
}

/**
 * One line of text for an event, in the manner of `cilium monitor`:
 *
 * - drops: `xx drop (Policy denied) from endpoint 12, ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:80 tcp`
 *   (`to endpoint` for ingress);
 * - traces: `-> endpoint 14, ifindex 9, identity 256->300 state new: ...`, `-> stack, ...` or `-> network, ...`;
 * - policy verdicts: `Policy verdict log: local EP ID 12, remote ID 300, proto 6, egress, action allow, rule cookie 7: ...`.
 *
 * The events carry no TCP flags and no flow hash, so unlike cilium
 * monitor the lines show neither.
 *
 * @param event A decoded event.
 * @returns The line, without a trailing newline.
 * @example A drop line
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatMonitorEvent, type MonitorEvent } from "@dp/datapath";
 *
 * const drop: MonitorEvent = {
 *   type: "drop", reason: "policy-default-deny", direction: "ingress", verdict: "default-deny", ct: "new",
 *   family: 4, protocol: 6, ifindex: 3, endpointId: 12, srcIdentity: 256, dstIdentity: 300,
 *   saddr: "10.0.0.1", daddr: "10.0.0.2", sport: 40000, dport: 80, icmpType: undefined,
 *   length: 74, ruleCookie: 0, timestamp: 1n,
 * };
 * assert.equal(
 *   formatMonitorEvent(drop),
 *   "xx drop (Policy denied) to endpoint 12, ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:80 tcp",
 * );
 * ```
 */
export function formatMonitorEvent(event: MonitorEvent): string {
  switch (event.type) {
    case "drop": {
      const where =
        event.endpointId === 0 ? "" : ` ${event.direction === "ingress" ? "to" : "from"} endpoint ${event.endpointId},`;
      return `xx drop (${DROP_TEXT[event.reason] ?? event.reason})${where} ifindex ${event.ifindex}, ${identities(event)}: ${summary(event)}`;
    }
    case "trace": {
      const target =
        event.reason === "to-endpoint"
          ? `-> endpoint ${event.endpointId}`
          : event.reason === "to-stack"
            ? "-> stack"
            : event.reason === "to-netdev"
              ? "-> network"
              : `-> ${event.reason}`;
      return `${target}, ifindex ${event.ifindex}, ${identities(event)} state ${event.ct}: ${summary(event)}`;
    }
    case "policy-verdict": {
      const remote = event.direction === "ingress" ? event.srcIdentity : event.dstIdentity;
      return `Policy verdict log: local EP ID ${event.endpointId}, remote ID ${remote}, proto ${event.protocol}, ${event.direction}, action ${event.verdict}, rule cookie ${event.ruleCookie}: ${summary(event)}`;
    }
  }
}
