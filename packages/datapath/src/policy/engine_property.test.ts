import { describe, expect, test } from "vitest";
import {
  type CidrRule,
  createLocalIdentityAllocator,
  createPolicyEngine,
  type EgressRule,
  type EndpointPolicy,
  type EndpointPolicyDiff,
  type EndpointSelector,
  type Identity,
  type IngressRule,
  LabelSet,
  lookupPolicy,
  type PolicyEngine,
  type PolicyEntity,
  type PolicyEntry,
  type PolicyRule,
  type PortProtocol,
  type PortRule,
} from "@dp/datapath";
import { type Packet, prng, referenceVerdict } from "./_test_reference.ts";

type Rand = () => number;

function pick<T>(r: Rand, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)] as T;
}

function some<T>(r: Rand, list: readonly T[], max: number): T[] {
  const n = Math.floor(r() * (max + 1));
  return Array.from({ length: n }, () => pick(r, list));
}

const KEYS = ["app", "tier", "env"];
const VALUES = ["a", "b", "c"];
const SOURCES = ["k8s", "container"];
const CIDRS = [
  "10.0.0.0/8",
  "10.1.0.0/16",
  "10.1.2.0/24",
  "10.2.0.0/16",
  "192.168.1.0/24",
  "0.0.0.0/0",
  "fd00::/8",
  "fd00:1::/32",
  "fd00:1:2::/48",
  "::/0",
];
const ENTITIES: PolicyEntity[] = ["host", "world", "cluster", "all", "remote-node", "health", "init", "unmanaged"];
const PORTS: PortProtocol[] = [
  { port: 80, protocol: "TCP" },
  { port: "53", protocol: "UDP" },
  { port: 53, protocol: "ANY" },
  { protocol: "ANY" },
  { protocol: "TCP" },
  { port: 0, protocol: "UDP" },
  { port: 8000, endPort: 8010, protocol: "TCP" },
  { port: 8005, endPort: 8100, protocol: "TCP" },
  { port: 1, endPort: 65535, protocol: "SCTP" },
  { port: 8, protocol: "ICMP" },
  { protocol: "ICMPv6" },
  { port: 128, endPort: 129, protocol: "ICMPv6" },
  { port: 22 },
];

function randomLabels(r: Rand): string[] {
  const labels = new Map<string, string>();
  for (const k of some(r, KEYS, 3)) labels.set(`${pick(r, SOURCES)}:${k}`, pick(r, VALUES));
  if (labels.size === 0) labels.set("k8s:app", pick(r, VALUES));
  return [...labels].map(([k, v]) => `${k}=${v}`);
}

function randomSelector(r: Rand): EndpointSelector {
  const x = r();
  if (x < 0.12) return {};
  const key = (): string => (r() < 0.5 ? pick(r, KEYS) : `${pick(r, SOURCES)}:${pick(r, KEYS)}`);
  if (x < 0.55) return { matchLabels: { [key()]: pick(r, VALUES) } };
  const op = pick(r, ["In", "NotIn", "Exists", "DoesNotExist"] as const);
  const values = op === "In" || op === "NotIn" ? some(r, VALUES, 2).concat(pick(r, VALUES)) : undefined;
  const expr = values === undefined ? { key: key(), operator: op } : { key: key(), operator: op, values };
  return r() < 0.3
    ? { matchLabels: { [key()]: pick(r, VALUES) }, matchExpressions: [expr] }
    : { matchExpressions: [expr] };
}

function randomCidrSet(r: Rand): CidrRule {
  const cidr = pick(r, CIDRS);
  const inside = CIDRS.filter((c) => c !== cidr && c.includes(":") === cidr.includes(":") && contained(cidr, c));
  return inside.length > 0 && r() < 0.6 ? { cidr, except: [pick(r, inside)] } : { cidr };
}

function contained(outer: string, inner: string): boolean {
  // Only for the fixed list above: textual checks suffice there.
  const table: Record<string, string[]> = {
    "10.0.0.0/8": ["10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16"],
    "10.1.0.0/16": ["10.1.2.0/24"],
    "0.0.0.0/0": ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16", "192.168.1.0/24"],
    "fd00::/8": ["fd00:1::/32", "fd00:1:2::/48"],
    "fd00:1::/32": ["fd00:1:2::/48"],
    "::/0": ["fd00::/8", "fd00:1::/32", "fd00:1:2::/48"],
  };
  return (table[outer] ?? []).includes(inner);
}

function randomToPorts(r: Rand): PortRule[] | undefined {
  if (r() < 0.35) return undefined;
  return Array.from({ length: 1 + Math.floor(r() * 2) }, () => ({ ports: some(r, PORTS, 3) }));
}

function randomSection(r: Rand, egress: boolean, deny: boolean): IngressRule | EgressRule {
  const s: Record<string, unknown> = {};
  const pre = egress ? "to" : "from";
  const kinds = r();
  if (kinds < 0.2) {
    // L4-only or empty section
  } else {
    if (r() < 0.6) s[`${pre}Endpoints`] = Array.from({ length: 1 + Math.floor(r() * 2) }, () => randomSelector(r));
    if (r() < 0.25) s[`${pre}CIDR`] = some(r, CIDRS, 2);
    if (r() < 0.25) s[`${pre}CIDRSet`] = Array.from({ length: 1 + Math.floor(r() * 2) }, () => randomCidrSet(r));
    if (r() < 0.3) s[`${pre}Entities`] = some(r, ENTITIES, 2);
  }
  const toPorts = randomToPorts(r);
  if (toPorts !== undefined || (deny && r() < 0.5)) s["toPorts"] = toPorts ?? [{ ports: [pick(r, PORTS)] }];
  return s;
}

function randomRule(r: Rand, name: string): PolicyRule {
  const rule: Record<string, unknown> = { name, endpointSelector: randomSelector(r) };
  for (const [field, egress, deny, p] of [
    ["ingress", false, false, 0.6],
    ["egress", true, false, 0.5],
    ["ingressDeny", false, true, 0.2],
    ["egressDeny", true, true, 0.2],
  ] as const) {
    if (r() < p) rule[field] = Array.from({ length: 1 + Math.floor(r() * 2) }, () => randomSection(r, egress, deny));
  }
  return rule as unknown as PolicyRule;
}

const PACKET_PORTS = [0, 1, 8, 22, 53, 80, 81, 128, 129, 130, 8000, 8004, 8005, 8010, 8011, 8100, 8101, 65535];
const PROTOCOLS = [6, 17, 132, 1, 58, 47];

interface World {
  identities: Map<number, Identity>;
  endpoints: Map<number, LabelSet>;
}

function entryVerdict(policy: EndpointPolicy, p: Packet): "allow" | "deny" {
  const dir = p.egress ? policy.egress : policy.ingress;
  const r = lookupPolicy(dir.entries, { identity: p.remote, egress: p.egress, protocol: p.protocol, port: p.port });
  if (r.verdict !== "none") return r.verdict;
  return dir.enforced ? "deny" : "allow";
}

/** The LPM invariant of the contract: no allow entry inside a deny entry of the same identity and direction. */
function checkNoShadowedDeny(entries: readonly PolicyEntry[]): void {
  for (const d of entries) {
    if (!d.deny) continue;
    for (const a of entries) {
      if (a.deny || a.identity !== d.identity || a.egress !== d.egress) continue;
      const inside =
        d.prefixLength === 40 ||
        (a.protocol === d.protocol &&
          a.prefixLength >= d.prefixLength &&
          a.port >>> (64 - d.prefixLength) === d.port >>> (64 - d.prefixLength));
      expect(inside, `allow ${JSON.stringify(a)} inside deny ${JSON.stringify(d)}`).toBe(false);
    }
  }
}

function checkAgainstReference(
  engine: PolicyEngine,
  rules: readonly PolicyRule[],
  world: World,
  r: Rand,
  packets: number,
): number {
  let checked = 0;
  const remotes = [...world.identities.keys(), 9999, 0];
  for (const [id, labels] of world.endpoints) {
    const policy = engine.endpointPolicy(id);
    expect(policy).toBeDefined();
    if (policy === undefined) continue;
    checkNoShadowedDeny([...policy.ingress.entries, ...policy.egress.entries]);
    for (let i = 0; i < packets; i++) {
      const p: Packet = {
        remote: pick(r, remotes),
        egress: r() < 0.5,
        protocol: pick(r, PROTOCOLS),
        port: pick(r, PACKET_PORTS),
      };
      const want = referenceVerdict(rules, labels, world.identities, p);
      const got = entryVerdict(policy, p);
      if (got !== want) {
        throw new Error(
          `endpoint ${id} (${labels.key}) packet ${JSON.stringify(p)}: entries say ${got}, rules say ${want}\n` +
            `rules: ${JSON.stringify(rules, null, 1)}\nremote: ${world.identities.get(p.remote)?.labels.key}\n` +
            `entries: ${JSON.stringify(p.egress ? policy.egress : policy.ingress)}`,
        );
      }
      checked++;
    }
  }
  return checked;
}

async function randomWorld(r: Rand): Promise<{ world: World; identities: Identity[] }> {
  const alloc = createLocalIdentityAllocator();
  const identities: Identity[] = [...(await alloc.list())];
  for (let i = 0; i < 14; i++) identities.push(await alloc.allocate(randomLabels(r)));
  for (const c of CIDRS) if (r() < 0.7) identities.push(await alloc.allocateCidr(c));
  for (const c of ["10.1.2.3/32", "192.168.1.7/32", "8.8.8.8/32", "fd00:1:2::5/128"])
    identities.push(await alloc.allocateCidr(c));
  const endpoints = new Map<number, LabelSet>();
  for (let i = 1; i <= 4; i++) endpoints.set(i, LabelSet.from(randomLabels(r)));
  return { world: { identities: new Map(identities.map((i) => [i.id, i])), endpoints }, identities };
}

describe("PolicyEngine against a rule-level reference", () => {
  test("lookupPolicy() over the resolved entries gives the rules' verdict (randomized, seeded)", async () => {
    let checked = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = prng(seed);
      const { world } = await randomWorld(r);
      const engine = createPolicyEngine();
      for (const identity of world.identities.values()) engine.addIdentity(identity);
      for (const [id, labels] of world.endpoints) engine.upsertEndpoint({ id, identity: 300 + id, labels });
      const rules = Array.from({ length: 1 + Math.floor(r() * 6) }, (_, i) => randomRule(r, `r${i}`));
      engine.setRules(rules);
      checked += checkAgainstReference(engine, rules, world, r, 150);
    }
    expect(checked).toBe(150 * 4 * 150);
  }, 120_000);
});

/** Applies diffs to a copy of the maps, as a datapath writer would. */
class Shadow {
  readonly maps = new Map<number, Map<string, PolicyEntry>>();
  readonly flags = new Map<number, { ingress: boolean; egress: boolean }>();

  apply(diffs: readonly EndpointPolicyDiff[]): void {
    for (const d of diffs) {
      let m = this.maps.get(d.endpointId);
      if (m === undefined) this.maps.set(d.endpointId, (m = new Map()));
      const keys = new Set<string>();
      for (const e of d.added) {
        const k = key(e);
        expect(keys.has(k), "a key twice in one diff").toBe(false);
        keys.add(k);
        m.set(k, e);
      }
      for (const e of d.removed) {
        const k = key(e);
        expect(keys.has(k), "a key both added and removed").toBe(false);
        expect(m.has(k), `removing a key that is not there: ${k}`).toBe(true);
        m.delete(k);
      }
      this.flags.set(d.endpointId, d.enforcement);
    }
  }

  policy(id: number): { ingress: boolean; egress: boolean; entries: PolicyEntry[] } {
    const f = this.flags.get(id) ?? { ingress: false, egress: false };
    const entries = [...(this.maps.get(id)?.values() ?? [])].sort((a, b) => key(a).localeCompare(key(b)));
    return { ...f, entries };
  }
}

function key(e: PolicyEntry): string {
  return `${e.egress ? 1 : 0}/${e.identity}/${e.protocol}/${e.port}/${e.prefixLength}`;
}

function flatten(p: EndpointPolicy | undefined): { ingress: boolean; egress: boolean; entries: PolicyEntry[] } {
  if (p === undefined) return { ingress: false, egress: false, entries: [] };
  const entries = [...p.ingress.entries, ...p.egress.entries].sort((a, b) => key(a).localeCompare(key(b)));
  return { ingress: p.ingress.enforced, egress: p.egress.enforced, entries };
}

/** Entries with the cookie replaced by the rule section it names, to compare engines whose cookies differ. */
function named(engine: PolicyEngine, p: EndpointPolicy | undefined): unknown {
  const f = flatten(p);
  return {
    ...f,
    entries: f.entries.map((e) => {
      const ref = engine.ruleOfCookie(e.ruleCookie);
      return { ...e, ruleCookie: `${String(ref?.rule)} ${ref?.field}` };
    }),
  };
}

describe("PolicyEngine incremental updates", () => {
  test("every change leaves the same state as a full recompute, and the diffs rebuild it (randomized, seeded)", async () => {
    let ops = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const r = prng(1000 + seed);
      const { identities } = await randomWorld(r);
      const engine = createPolicyEngine();
      const shadow = new Shadow();
      engine.subscribe((d) => shadow.apply(d));
      const live = new Map<number, Identity>();
      for (const i of identities) if (r() < 0.6 || i.id < 256) live.set(i.id, i);
      for (const i of live.values()) engine.addIdentity(i);
      let rules: PolicyRule[] = [];
      let ruleSeq = 0;
      const endpoints = new Map<number, LabelSet>();
      for (let step = 0; step < 40; step++) {
        const x = r();
        if (x < 0.2) {
          // Reserved identities always exist; the others come and go.
          const i = pick(
            r,
            identities.filter((x) => x.id >= 256),
          );
          if (live.has(i.id)) {
            engine.removeIdentity(i.id);
            live.delete(i.id);
          } else {
            engine.addIdentity(i);
            live.set(i.id, i);
          }
        } else if (x < 0.45) {
          const name = rules.length > 0 && r() < 0.4 ? (pick(r, rules).name as string) : `n${ruleSeq++}`;
          const rule = randomRule(r, name);
          engine.addRule(rule);
          rules = [...rules.filter((q) => q.name !== name), rule];
        } else if (x < 0.55 && rules.length > 0) {
          const name = pick(r, rules).name as string;
          engine.deleteRule(name);
          rules = rules.filter((q) => q.name !== name);
        } else if (x < 0.6) {
          rules = Array.from({ length: Math.floor(r() * 4) }, () => randomRule(r, `n${ruleSeq++}`));
          engine.setRules(rules);
        } else if (x < 0.85) {
          const id = 1 + Math.floor(r() * 5);
          const labels =
            r() < 0.3 && endpoints.has(id) ? (endpoints.get(id) as LabelSet) : LabelSet.from(randomLabels(r));
          engine.upsertEndpoint({ id, identity: 300 + id, labels });
          endpoints.set(id, labels);
        } else {
          const id = 1 + Math.floor(r() * 5);
          engine.removeEndpoint(id);
          endpoints.delete(id);
        }
        ops++;
        const full = engine.resolveAll();
        expect(engine.endpointIds()).toEqual([...full.keys()]);
        for (const [id, p] of full) {
          expect(flatten(engine.endpointPolicy(id))).toEqual(flatten(p));
          expect(shadow.policy(id)).toEqual(flatten(p));
        }
        for (const [id, m] of shadow.maps) if (!full.has(id)) expect(m.size).toBe(0);
      }
      // A fresh engine given the final state resolves the same entries, naming the same rule sections.
      const fresh = createPolicyEngine();
      for (const i of live.values()) fresh.addIdentity(i);
      fresh.setRules(rules);
      for (const [id, labels] of endpoints) fresh.upsertEndpoint({ id, identity: 300 + id, labels });
      for (const id of endpoints.keys()) {
        expect(named(engine, engine.endpointPolicy(id))).toEqual(named(fresh, fresh.endpointPolicy(id)));
      }
      // And it still agrees with the reference.
      checkAgainstReference(engine, rules, { identities: live, endpoints }, r, 50);
    }
    expect(ops).toBe(60 * 40);
  }, 120_000);
});
