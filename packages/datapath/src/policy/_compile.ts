// Checking and compiling policy rules: peers (who), L4 (which ports) and
// sections, with every problem collected for PolicyValidationError.
import { cidrLabel, parsePrefix, prefixContains, type Prefix } from "../identity/_prefix.ts";
import { classifyIdentity, type Identity } from "../identity/identity.ts";
import { RESERVED_IDENTITIES } from "../identity/reserved.ts";
import { compileRequirements } from "../labels/_selector_compile.ts";
import { Selector } from "../labels/selector.ts";
import { PREFIX_ANY_PORT, PREFIX_ANY_PROTOCOL } from "./_lpm.ts";
import { IP_PROTOCOLS, splitPortRange } from "./entry.ts";
import type { PolicyEntity, PolicyProtocolName, PolicyRule } from "./rule.ts";

/** A compiled peer: who a section's traffic comes from or goes to. */
export interface Peer {
  /** Canonical text; equal peers share one cache entry. */
  readonly key: string;
  /** `true` for the peer of every identity (entries for identity 0). */
  readonly any: boolean;
  /** Whether an identity is this peer. */
  matches(identity: Identity): boolean;
}

/** One (protocol, port block) an entry is made for. */
export interface L4 {
  readonly protocol: number;
  readonly port: number;
  readonly prefixLength: number;
}

/** One allow or deny section of a rule. */
export interface Section {
  readonly egress: boolean;
  readonly deny: boolean;
  /** Such as `ingress[0]` or `egressDeny[2]`. */
  readonly field: string;
  /** Peers; empty for a section that matches nothing. */
  readonly peers: readonly Peer[];
  readonly l4: readonly L4[];
}

/** A checked rule. */
export interface CompiledRule {
  readonly rule: PolicyRule;
  readonly ref: string | number;
  readonly endpointSelector: Selector;
  readonly sections: readonly Section[];
  readonly enforcesIngress: boolean;
  readonly enforcesEgress: boolean;
  /** Every CIDR (canonical) the rule names, excepts included. */
  readonly cidrs: readonly string[];
}

const ANY_PEER: Peer = Object.freeze({ key: "any", any: true, matches: () => true });

const ENTITIES: readonly PolicyEntity[] = [
  "host",
  "world",
  "cluster",
  "all",
  "remote-node",
  "health",
  "init",
  "unmanaged",
  "kube-apiserver",
  "ingress",
];

function isWorld(id: number): boolean {
  return id === RESERVED_IDENTITIES.world || classifyIdentity(id) === "cidr";
}

function entityPeer(name: PolicyEntity): Peer {
  const key = `entity:${name}`;
  switch (name) {
    case "all":
      return ANY_PEER;
    case "world":
      return { key, any: false, matches: (i) => isWorld(i.id) };
    case "cluster":
      return { key, any: false, matches: (i) => i.id !== 0 && !isWorld(i.id) };
    default: {
      const id = RESERVED_IDENTITIES[name];
      return { key, any: false, matches: (i) => i.id === id };
    }
  }
}

function selectorPeer(sel: Selector): Peer {
  if (sel.selectsAll) return ANY_PEER;
  return { key: `sel:${sel.key}`, any: false, matches: (i) => sel.matches(i.labels) };
}

function cidrPeer(prefix: Prefix, except: readonly Prefix[]): Peer {
  const label = cidrLabel(prefix).slice("cidr:".length);
  const excepts = except.map((e) => cidrLabel(e).slice("cidr:".length)).sort();
  const world = prefix.prefixLength === 0;
  return {
    key: `cidr:${prefix.text}${excepts.length > 0 ? ` except ${excepts.join(",")}` : ""}`,
    any: false,
    matches: (i) => {
      if (world && i.id === RESERVED_IDENTITIES.world) return true;
      if (i.labels.get(label, "cidr") === undefined) return false;
      for (const e of excepts) if (i.labels.get(e, "cidr") !== undefined) return false;
      return true;
    },
  };
}

const PROTOCOLS: Readonly<Record<PolicyProtocolName, number>> = {
  TCP: IP_PROTOCOLS.TCP,
  UDP: IP_PROTOCOLS.UDP,
  SCTP: IP_PROTOCOLS.SCTP,
  ICMP: IP_PROTOCOLS.ICMP,
  ICMPv6: IP_PROTOCOLS.ICMPv6,
  ANY: IP_PROTOCOLS.ANY,
};
const ANY_WITH_PORT = [IP_PROTOCOLS.TCP, IP_PROTOCOLS.UDP, IP_PROTOCOLS.SCTP];

const RULE_FIELDS = new Set([
  "name",
  "description",
  "endpointSelector",
  "ingress",
  "egress",
  "ingressDeny",
  "egressDeny",
]);
const SECTION_FIELDS = {
  ingress: { endpoints: "fromEndpoints", cidr: "fromCIDR", cidrSet: "fromCIDRSet", entities: "fromEntities" },
  egress: { endpoints: "toEndpoints", cidr: "toCIDR", cidrSet: "toCIDRSet", entities: "toEntities" },
} as const;

type Report = (field: string, message: string) => void;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asArray(v: unknown, field: string, report: Report): unknown[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    report(field, "must be an array");
    return undefined;
  }
  return v as unknown[];
}

function parsePrefixAt(v: unknown, field: string, report: Report): Prefix | undefined {
  if (typeof v !== "string") {
    report(field, `must be a CIDR string, got ${typeof v}`);
    return undefined;
  }
  try {
    return parsePrefix(v);
  } catch (err) {
    report(field, err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

function parsePort(v: unknown, field: string, report: Report): number | undefined {
  if (v === undefined) return 0;
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && /^[0-9]{1,5}$/.test(v)) n = Number(v);
  else {
    report(field, `must be a port number or a numeric string, got ${JSON.stringify(v)}`);
    return undefined;
  }
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    report(field, `must be 0-65535, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return n;
}

function compileL4(toPorts: unknown, base: string, report: Report): L4[] | undefined {
  const list = asArray(toPorts, base, report);
  const all: L4[] = [{ protocol: 0, port: 0, prefixLength: PREFIX_ANY_PROTOCOL }];
  if (list === undefined || list.length === 0) return toPorts === undefined || list !== undefined ? all : undefined;
  const out = new Map<string, L4>();
  let ok = true;
  list.forEach((item, i) => {
    const f = `${base}[${i}]`;
    if (!isObject(item)) {
      report(f, "must be an object with ports");
      ok = false;
      return;
    }
    for (const k of Object.keys(item)) {
      if (k !== "ports") {
        report(`${f}.${k}`, k === "rules" ? "L7 rules are not supported" : "unknown field (expected ports)");
        ok = false;
      }
    }
    const ports = asArray(item["ports"], `${f}.ports`, report);
    if (item["ports"] !== undefined && ports === undefined) ok = false;
    if (ports === undefined || ports.length === 0) {
      for (const l of all) out.set("all", l);
      return;
    }
    ports.forEach((pp, j) => {
      const pf = `${f}.ports[${j}]`;
      if (!isObject(pp)) {
        report(pf, "must be an object with port, endPort and protocol");
        ok = false;
        return;
      }
      for (const k of Object.keys(pp)) {
        if (k !== "port" && k !== "endPort" && k !== "protocol") {
          report(`${pf}.${k}`, "unknown field (expected port, endPort or protocol)");
          ok = false;
        }
      }
      const protoName = pp["protocol"] ?? "ANY";
      const protocol = PROTOCOLS[protoName as PolicyProtocolName];
      if (typeof protoName !== "string" || !Object.hasOwn(PROTOCOLS, protoName) || protocol === undefined) {
        report(
          `${pf}.protocol`,
          `must be one of ${Object.keys(PROTOCOLS).join(", ")}, got ${JSON.stringify(protoName)}`,
        );
        ok = false;
        return;
      }
      const port = parsePort(pp["port"], `${pf}.port`, report);
      if (port === undefined) {
        ok = false;
        return;
      }
      const icmp = protocol === IP_PROTOCOLS.ICMP || protocol === IP_PROTOCOLS.ICMPv6;
      const max = icmp ? 255 : 65535;
      if (port > max) {
        report(`${pf}.port`, `an ICMP type must be 0-255, got ${port}`);
        ok = false;
        return;
      }
      let last = port;
      const endPort = pp["endPort"];
      if (endPort !== undefined) {
        if (typeof endPort !== "number" || !Number.isInteger(endPort) || endPort < 0 || endPort > max) {
          report(`${pf}.endPort`, `must be an integer 0-${max}, got ${JSON.stringify(endPort)}`);
          ok = false;
          return;
        }
        if (port === 0 && endPort !== 0) {
          report(`${pf}.endPort`, "needs a port (port 0 already means every port)");
          ok = false;
          return;
        }
        if (endPort !== 0 && endPort < port) {
          report(`${pf}.endPort`, `must be at least port ${port}, got ${endPort}`);
          ok = false;
          return;
        }
        if (endPort !== 0) last = endPort;
      }
      const protocols = protocol === IP_PROTOCOLS.ANY ? (port === 0 ? [0] : ANY_WITH_PORT) : [protocol];
      for (const proto of protocols) {
        if (proto === 0) {
          out.set("0", { protocol: 0, port: 0, prefixLength: PREFIX_ANY_PROTOCOL });
        } else if (port === 0) {
          out.set(`${proto}/0/48`, { protocol: proto, port: 0, prefixLength: PREFIX_ANY_PORT });
        } else {
          for (const b of splitPortRange(port, last)) {
            out.set(`${proto}/${b.port}/${48 + b.bits}`, {
              protocol: proto,
              port: b.port,
              prefixLength: PREFIX_ANY_PORT + b.bits,
            });
          }
        }
      }
    });
  });
  return ok ? [...out.values()] : undefined;
}

function compileSection(
  raw: unknown,
  egress: boolean,
  deny: boolean,
  field: string,
  report: Report,
  cidrs: Set<string>,
): Section | undefined {
  const names = SECTION_FIELDS[egress ? "egress" : "ingress"];
  if (!isObject(raw)) {
    report(field, "must be an object");
    return undefined;
  }
  let ok = true;
  const fail: Report = (f, m) => {
    ok = false;
    report(f, m);
  };
  const known = new Set<string>([names.endpoints, names.cidr, names.cidrSet, names.entities, "toPorts"]);
  for (const k of Object.keys(raw)) {
    if (!known.has(k)) fail(`${field}.${k}`, `unknown field (expected ${[...known].join(", ")})`);
  }
  const peers: Peer[] = [];
  const eps = asArray(raw[names.endpoints], `${field}.${names.endpoints}`, fail);
  eps?.forEach((s, i) => {
    const problems: { field: string; message: string }[] = [];
    const reqs = compileRequirements(s, `${field}.${names.endpoints}[${i}]`, problems);
    for (const p of problems) fail(p.field, p.message);
    if (reqs !== undefined) peers.push(selectorPeer(new Selector(reqs)));
  });
  const plain = asArray(raw[names.cidr], `${field}.${names.cidr}`, fail);
  plain?.forEach((c, i) => {
    const p = parsePrefixAt(c, `${field}.${names.cidr}[${i}]`, fail);
    if (p === undefined) return;
    cidrs.add(p.text);
    peers.push(cidrPeer(p, []));
  });
  const sets = asArray(raw[names.cidrSet], `${field}.${names.cidrSet}`, fail);
  sets?.forEach((c, i) => {
    const f = `${field}.${names.cidrSet}[${i}]`;
    if (!isObject(c)) {
      fail(f, "must be an object with cidr and except");
      return;
    }
    for (const k of Object.keys(c))
      if (k !== "cidr" && k !== "except") fail(`${f}.${k}`, "unknown field (expected cidr, except)");
    const p = parsePrefixAt(c["cidr"], `${f}.cidr`, fail);
    const except: Prefix[] = [];
    asArray(c["except"], `${f}.except`, fail)?.forEach((e, j) => {
      const ep = parsePrefixAt(e, `${f}.except[${j}]`, fail);
      if (ep === undefined || p === undefined) return;
      if (!prefixContains(p, ep)) {
        fail(`${f}.except[${j}]`, `${JSON.stringify(ep.text)} is not inside ${JSON.stringify(p.text)}`);
        return;
      }
      except.push(ep);
    });
    if (p === undefined) return;
    cidrs.add(p.text);
    for (const e of except) cidrs.add(e.text);
    peers.push(cidrPeer(p, except));
  });
  const ents = asArray(raw[names.entities], `${field}.${names.entities}`, fail);
  ents?.forEach((e, i) => {
    if (typeof e !== "string" || !ENTITIES.includes(e as PolicyEntity)) {
      fail(`${field}.${names.entities}[${i}]`, `must be one of ${ENTITIES.join(", ")}, got ${JSON.stringify(e)}`);
      return;
    }
    peers.push(entityPeer(e as PolicyEntity));
  });
  const l4 = compileL4(raw["toPorts"], `${field}.toPorts`, fail);
  if (!ok || l4 === undefined) return undefined;
  const hasPeers = (eps?.length ?? 0) + (plain?.length ?? 0) + (sets?.length ?? 0) + (ents?.length ?? 0) > 0;
  let finalPeers: Peer[];
  if (!hasPeers) finalPeers = raw["toPorts"] === undefined ? [] : [ANY_PEER];
  else if (peers.some((p) => p.any)) finalPeers = [ANY_PEER];
  else finalPeers = [...new Map(peers.map((p) => [p.key, p])).values()];
  return { egress, deny, field, peers: finalPeers, l4 };
}

const SECTION_KINDS = [
  ["ingress", false, false],
  ["ingressDeny", false, true],
  ["egress", true, false],
  ["egressDeny", true, true],
] as const;

/**
 * Checks and compiles one rule, reporting problems.
 *
 * @param rule The rule as given.
 * @param ref Its name or index.
 * @param report Where problems go.
 * @returns The compiled rule, or `undefined` when it has problems.
 */
export function compileRule(rule: unknown, ref: string | number, report: Report): CompiledRule | undefined {
  if (!isObject(rule)) {
    report("(rule)", "must be an object with endpointSelector and ingress/egress sections");
    return undefined;
  }
  let ok = true;
  const fail: Report = (f, m) => {
    ok = false;
    report(f, m);
  };
  for (const k of Object.keys(rule))
    if (!RULE_FIELDS.has(k)) fail(k, `unknown field (expected ${[...RULE_FIELDS].join(", ")})`);
  if (rule["name"] !== undefined && (typeof rule["name"] !== "string" || rule["name"] === ""))
    fail("name", "must be a non-empty string");
  if (rule["description"] !== undefined && typeof rule["description"] !== "string")
    fail("description", "must be a string");
  let endpointSelector: Selector | undefined;
  if (rule["endpointSelector"] === undefined) fail("endpointSelector", "is required (use {} to select every endpoint)");
  else {
    const problems: { field: string; message: string }[] = [];
    const reqs = compileRequirements(rule["endpointSelector"], "endpointSelector", problems);
    for (const p of problems) fail(p.field, p.message);
    if (reqs !== undefined) endpointSelector = new Selector(reqs);
  }
  const sections: Section[] = [];
  const cidrs = new Set<string>();
  let enforcesIngress = false;
  let enforcesEgress = false;
  for (const [name, egress, deny] of SECTION_KINDS) {
    const list = asArray(rule[name], name, fail);
    if (list === undefined || list.length === 0) continue;
    if (egress) enforcesEgress = true;
    else enforcesIngress = true;
    list.forEach((raw, i) => {
      const s = compileSection(raw, egress, deny, `${name}[${i}]`, fail, cidrs);
      if (s !== undefined) sections.push(s);
    });
  }
  if (!ok || endpointSelector === undefined) return undefined;
  return {
    rule: rule as unknown as PolicyRule,
    ref,
    endpointSelector,
    sections,
    enforcesIngress,
    enforcesEgress,
    cidrs: [...cidrs].sort(),
  };
}

/** One problem: the rule, the field path and what is wrong (the shape of `PolicyProblem`). */
export interface Problem {
  readonly rule: string | number;
  readonly field: string;
  readonly message: string;
}

/**
 * Checks and compiles a whole rule set, collecting every problem.
 *
 * @param rules The rules.
 * @param existingNames Names that count as taken (rules kept beside the new ones).
 * @param firstIndex The index the first rule gets when it has no name.
 * @returns The compiled rules (complete only when there are no problems) and the problems.
 */
export function compileRules(
  rules: readonly unknown[],
  existingNames: ReadonlySet<string> = new Set(),
  firstIndex = 0,
): { rules: CompiledRule[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const out: CompiledRule[] = [];
  const names = new Set(existingNames);
  rules.forEach((rule, i) => {
    const name = isObject(rule) && typeof rule["name"] === "string" && rule["name"] !== "" ? rule["name"] : undefined;
    const ref = name ?? firstIndex + i;
    if (name !== undefined) {
      if (names.has(name))
        problems.push({ rule: ref, field: "name", message: `another rule is already named ${JSON.stringify(name)}` });
      names.add(name);
    }
    const compiled = compileRule(rule, ref, (field, message) => problems.push({ rule: ref, field, message }));
    if (compiled !== undefined) out.push(compiled);
  });
  return { rules: out, problems };
}
