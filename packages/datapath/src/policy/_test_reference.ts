// A straightforward rule-level evaluation of policy for tests: it reads the
// rules as given (no compilation, no entries) and says what Cilium's
// semantics give for one packet. The property tests compare the entries'
// lookup against it.
import { parseCidr } from "@dp/core";
import {
  type CidrRule,
  type EgressRule,
  type Identity,
  type IngressRule,
  type LabelSet,
  parseSelector,
  type PolicyEntity,
  type PolicyRule,
  type PortRule,
  RESERVED_IDENTITIES,
} from "@dp/datapath";

/** A packet seen by one endpoint in one direction. */
export interface Packet {
  readonly remote: number;
  readonly egress: boolean;
  readonly protocol: number;
  readonly port: number;
}

const parsed = new WeakMap<object, ReturnType<typeof parseSelector>>();

/** parseSelector() with a cache: the reference runs for many packets over the same rules. */
function selector(sel: PolicyRule["endpointSelector"]): ReturnType<typeof parseSelector> {
  let s = parsed.get(sel);
  if (s === undefined) parsed.set(sel, (s = parseSelector(sel)));
  return s;
}

const PROTO: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1, ICMPv6: 58, ANY: 0 };

function contains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  if (o.family !== i.family || o.prefixLength > i.prefixLength) return false;
  for (let bit = 0; bit < o.prefixLength; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((o.bytes[byte] as number) & mask) !== ((i.bytes[byte] as number) & mask)) return false;
  }
  return true;
}

function isCidrIdentity(id: number): boolean {
  return id >= 1 << 24;
}

function entityMatches(e: PolicyEntity, id: number): boolean {
  switch (e) {
    case "all":
      return true;
    case "world":
      return id === 2 || isCidrIdentity(id);
    case "cluster":
      return id !== 0 && id !== 2 && !isCidrIdentity(id);
    default:
      return id === RESERVED_IDENTITIES[e];
  }
}

function cidrMatches(c: CidrRule, r: Identity): boolean {
  if (parseCidr(c.cidr).prefixLength === 0 && r.id === 2) return true;
  if (r.cidr === undefined) return false;
  if (!contains(c.cidr, r.cidr)) return false;
  return !(c.except ?? []).some((e) => contains(e, r.cidr as string));
}

function peersMatch(
  section: IngressRule | EgressRule,
  egress: boolean,
  remote: number,
  identities: ReadonlyMap<number, Identity>,
): boolean {
  const s = section as Record<string, unknown>;
  const eps = (s[egress ? "toEndpoints" : "fromEndpoints"] ?? []) as PolicyRule["endpointSelector"][];
  const cidrs = (s[egress ? "toCIDR" : "fromCIDR"] ?? []) as string[];
  const sets = (s[egress ? "toCIDRSet" : "fromCIDRSet"] ?? []) as CidrRule[];
  const ents = (s[egress ? "toEntities" : "fromEntities"] ?? []) as PolicyEntity[];
  if (eps.length + cidrs.length + sets.length + ents.length === 0) return s["toPorts"] !== undefined;
  const r = identities.get(remote);
  if (eps.some((sel) => selector(sel).selectsAll)) return true;
  if (ents.includes("all")) return true;
  if (r === undefined) return false;
  if (eps.some((sel) => selector(sel).matches(r.labels))) return true;
  if (cidrs.some((c) => cidrMatches({ cidr: c }, r))) return true;
  if (sets.some((c) => cidrMatches(c, r))) return true;
  return ents.some((e) => entityMatches(e, remote));
}

function portsMatch(toPorts: readonly PortRule[] | undefined, protocol: number, port: number): boolean {
  if (toPorts === undefined || toPorts.length === 0) return true;
  return toPorts.some((pr) => {
    if (pr.ports === undefined || pr.ports.length === 0) return true;
    return pr.ports.some((pp) => {
      const proto = PROTO[pp.protocol ?? "ANY"] as number;
      const first = Number(pp.port ?? 0);
      const last = pp.endPort === undefined || pp.endPort === 0 ? first : pp.endPort;
      if (proto === 0) {
        if (first === 0) return true;
        return [6, 17, 132].includes(protocol) && port >= first && port <= last;
      }
      return proto === protocol && (first === 0 || (port >= first && port <= last));
    });
  });
}

/**
 * The verdict of an endpoint's policy for a packet, from the rules.
 *
 * @param rules The rule set.
 * @param labels The endpoint's labels.
 * @param identities The known identities.
 * @param p The packet.
 * @returns `"allow"` or `"deny"`.
 */
export function referenceVerdict(
  rules: readonly PolicyRule[],
  labels: LabelSet,
  identities: ReadonlyMap<number, Identity>,
  p: Packet,
): "allow" | "deny" {
  const selecting = rules.filter((r) => selector(r.endpointSelector).matches(labels));
  const allow = selecting.flatMap(
    (r) => (p.egress ? (r.egress ?? []) : (r.ingress ?? [])) as (IngressRule | EgressRule)[],
  );
  const deny = selecting.flatMap(
    (r) => (p.egress ? (r.egressDeny ?? []) : (r.ingressDeny ?? [])) as (IngressRule | EgressRule)[],
  );
  const matches = (s: IngressRule | EgressRule): boolean =>
    peersMatch(s, p.egress, p.remote, identities) && portsMatch(s.toPorts, p.protocol, p.port);
  if (deny.some(matches)) return "deny";
  if (allow.some(matches)) return "allow";
  return allow.length + deny.length > 0 ? "deny" : "allow";
}

/**
 * A seeded PRNG (mulberry32).
 *
 * @param seed The seed.
 * @returns A function giving floats in [0, 1).
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
