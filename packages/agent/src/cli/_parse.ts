// Parsing of the dp command's arguments beyond what commander does: ids,
// conntrack filters, trace sides, `PORT/PROTO`, policy files. Pure, and
// every failure is a usage error (exit 2) naming the option.
import { parseAllDocuments } from "yaml";
import type { ConntrackProtocolName, MonitorEventType, PolicyRule } from "@dp/datapath";
import type { ConntrackQuery } from "../api/client.ts";
import type { PolicyTracePeer } from "../api/types.ts";
import { usageError } from "./_errors.ts";

/** An endpoint id: an integer from 1 to 65535. */
export function parseEndpointId(text: string, what = "endpoint id"): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 0xffff)
    throw usageError(`Invalid ${what} ${JSON.stringify(text)}: expected an integer from 1 to 65535`);
  return n;
}

/** An identity: a non-negative 32-bit integer. */
export function parseIdentity(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 0xffffffff)
    throw usageError(`Invalid identity ${JSON.stringify(text)}: expected a non-negative integer`);
  return n;
}

function parsePort(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 0xffff)
    throw usageError(`Invalid ${option} ${JSON.stringify(text)}: expected a port from 0 to 65535`);
  return n;
}

const PROTOCOLS: Readonly<Record<string, ConntrackProtocolName>> = {
  tcp: "TCP",
  udp: "UDP",
  sctp: "SCTP",
  icmp: "ICMP",
  icmpv6: "ICMPv6",
};

/** The conntrack filter options (`--saddr`, `--protocol`, ...) as commander collects them. */
export interface ConntrackOptions {
  readonly family?: string;
  readonly protocol?: string;
  readonly address?: string;
  readonly saddr?: string;
  readonly daddr?: string;
  readonly port?: string;
  readonly sport?: string;
  readonly dport?: string;
  readonly scope?: string;
  readonly endpoint?: string;
}

/** The filter of `dp bpf ct list|flush`. Addresses are checked by the datapath (SyntaxError → exit 2). */
export function parseConntrackFilter(o: ConntrackOptions): ConntrackQuery {
  const q: { -readonly [K in keyof ConntrackQuery]: ConntrackQuery[K] } = {};
  if (o.family !== undefined) {
    const f = o.family.replace(/^ipv/i, "");
    if (f !== "4" && f !== "6") throw usageError(`Invalid --family ${JSON.stringify(o.family)}: expected 4 or 6`);
    q.family = f === "4" ? 4 : 6;
  }
  if (o.protocol !== undefined) {
    const name = PROTOCOLS[o.protocol.toLowerCase()];
    if (name !== undefined) q.protocol = name;
    else if (/^\d+$/.test(o.protocol) && Number(o.protocol) <= 255) q.protocol = Number(o.protocol);
    else
      throw usageError(
        `Invalid --protocol ${JSON.stringify(o.protocol)}: expected TCP, UDP, SCTP, ICMP, ICMPv6 or a number from 0 to 255`,
      );
  }
  if (o.address !== undefined) q.address = o.address;
  if (o.saddr !== undefined) q.saddr = o.saddr;
  if (o.daddr !== undefined) q.daddr = o.daddr;
  if (o.port !== undefined) q.port = parsePort(o.port, "--port");
  if (o.sport !== undefined) q.sport = parsePort(o.sport, "--sport");
  if (o.dport !== undefined) q.dport = parsePort(o.dport, "--dport");
  if (o.scope !== undefined) {
    if (o.scope !== "ingress" && o.scope !== "egress")
      throw usageError(`Invalid --scope ${JSON.stringify(o.scope)}: expected ingress or egress`);
    q.scope = o.scope;
  }
  if (o.endpoint !== undefined) q.endpoint = parseEndpointId(o.endpoint, "--endpoint");
  return q;
}

/**
 * A side of `dp policy trace`: `ep:ID` / `endpoint:ID` / a bare number (an
 * endpoint), `identity:N`, or labels separated by commas (`k8s:app=web`).
 */
export function parseTraceSide(text: string, option: string): PolicyTracePeer {
  const ep = /^(?:ep:|endpoint:)?(\d+)$/.exec(text);
  if (ep !== null) return { endpoint: parseEndpointId(ep[1] ?? "", option) };
  const id = /^identity:(.*)$/.exec(text);
  if (id !== null) return { identity: parseIdentity(id[1] ?? "") };
  const labels = text
    .split(",")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (labels.length === 0)
    throw usageError(
      `Invalid ${option} ${JSON.stringify(text)}: expected an endpoint id, identity:N or labels (k8s:app=web,...)`,
    );
  return { labels };
}

/** `--dport 80/TCP` (protocol optional: TCP). */
export function parseDport(text: string): { port: number; protocol: string } {
  const m = /^(\d+)(?:\/([A-Za-z0-9]+))?$/.exec(text);
  if (m === null) throw usageError(`Invalid --dport ${JSON.stringify(text)}: expected PORT or PORT/PROTO (80/TCP)`);
  const protocol = m[2] === undefined ? "TCP" : (PROTOCOLS[m[2].toLowerCase()] ?? m[2].toUpperCase());
  if (!["TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "ANY"].includes(protocol))
    throw usageError(`Invalid --dport ${JSON.stringify(text)}: the protocol must be TCP, UDP, SCTP, ICMP or ICMPv6`);
  return { port: parsePort(m[1] ?? "", "--dport"), protocol };
}

const MONITOR_TYPES: readonly MonitorEventType[] = ["drop", "trace", "policy-verdict"];

/** `dp monitor --type`: each value checked. */
export function parseMonitorTypes(values: readonly string[]): MonitorEventType[] {
  for (const v of values)
    if (!(MONITOR_TYPES as readonly string[]).includes(v))
      throw usageError(`Invalid --type ${JSON.stringify(v)}: expected ${MONITOR_TYPES.join(", ")}`);
  return [...new Set(values)] as MonitorEventType[];
}

function rulesOf(doc: unknown, file: string): PolicyRule[] {
  if (Array.isArray(doc)) return doc as PolicyRule[];
  if (typeof doc === "object" && doc !== null) {
    const o = doc as { rules?: unknown; spec?: unknown; metadata?: { name?: unknown } };
    if (Array.isArray(o.rules)) return o.rules as PolicyRule[];
    // A CiliumNetworkPolicy-shaped document: metadata.name + spec.
    if (typeof o.spec === "object" && o.spec !== null && typeof o.metadata?.name === "string")
      return [{ name: o.metadata.name, ...o.spec } as PolicyRule];
    return [doc as PolicyRule];
  }
  throw usageError(
    `Invalid policy file ${JSON.stringify(file)}: expected rules (a list, { rules: [...] } or one rule)`,
  );
}

/**
 * The rules of a policy file: JSON or YAML (several documents allowed),
 * each document a list of rules, `{ rules: [...] }`, one rule, or a
 * CiliumNetworkPolicy-shaped `{ metadata: { name }, spec }`.
 */
export function parsePolicyFile(text: string, file: string): PolicyRule[] {
  try {
    if (/^\s*[[{]/.test(text)) return rulesOf(JSON.parse(text) as unknown, file);
    const docs = parseAllDocuments(text);
    const out: PolicyRule[] = [];
    for (const d of docs) {
      const [first] = d.errors;
      if (first !== undefined) throw first;
      const value: unknown = d.toJS();
      if (value !== null && value !== undefined) out.push(...rulesOf(value, file));
    }
    return out;
  } catch (err) {
    if (err instanceof Error && err.name === "CliError") throw err;
    throw usageError(
      `Invalid policy file ${JSON.stringify(file)}: ${err instanceof Error ? err.message : String(err)}`,
      "the file must be JSON or YAML",
    );
  }
}
