import { describe, expect, test } from "vitest";
import {
  createLocalIdentityAllocator,
  createPolicyEngine,
  type EndpointPolicyDiff,
  LabelSet,
  type PolicyEngine,
  type PolicyEntry,
  type PolicyRule,
} from "@dp/datapath";

const WEB = 300;
const CLIENT = 400;
const DB = 500;

async function setup(rules: PolicyRule[]): Promise<{ engine: PolicyEngine; net: number; host8: number; v6: number }> {
  const alloc = createLocalIdentityAllocator({ minIdentity: 300 });
  const engine = createPolicyEngine({ allocator: alloc });
  await alloc.allocate(["k8s:app=web"]); // 300
  for (let i = 301; i < 400; i++) await alloc.allocate([`k8s:filler=f${i}`]);
  await alloc.allocate(["k8s:app=client"]); // 400
  for (let i = 401; i < 500; i++) await alloc.allocate([`k8s:filler=f${i}`]);
  await alloc.allocate(["k8s:app=db", "k8s:env=prod"]); // 500
  const net = (await alloc.allocateCidr("10.0.0.0/8")).id;
  const host8 = (await alloc.allocateCidr("10.9.9.9/32")).id;
  const v6 = (await alloc.allocateCidr("fd00::/8")).id;
  engine.upsertEndpoint({ id: 1, identity: WEB });
  engine.upsertEndpoint({ id: 2, identity: DB });
  engine.setRules(rules);
  return { engine, net, host8, v6 };
}

function short(entries: readonly PolicyEntry[]): string[] {
  return entries.map(
    (e) => `${e.identity}${e.egress ? ">" : "<"}${e.protocol}/${e.port}/${e.prefixLength}${e.deny ? " deny" : ""}`,
  );
}

function verdict(
  engine: PolicyEngine,
  from: number,
  toEndpoint: number,
  protocol: "TCP" | "UDP" | "ICMP" | "SCTP",
  port: number,
): string {
  return engine.explain({ from: { identity: from }, to: { endpoint: toEndpoint }, protocol, port }).verdict;
}

describe("PolicyEngine resolution", () => {
  test("an L3-only allow gives one any-protocol entry per selected identity", async () => {
    const { engine } = await setup([
      {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: "client" } }] }],
      },
    ]);
    expect(short(engine.endpointPolicy(1)?.ingress.entries ?? [])).toEqual([`${CLIENT}<0/0/40`]);
    expect(engine.endpointPolicy(1)?.ingress.enforced).toBe(true);
    expect(engine.endpointPolicy(1)?.egress.enforced).toBe(false);
    expect(engine.endpointPolicy(2)?.ingress.enforced).toBe(false);
    expect(verdict(engine, CLIENT, 1, "UDP", 9)).toBe("allowed");
    expect(verdict(engine, DB, 1, "UDP", 9)).toBe("denied");
    expect(verdict(engine, CLIENT, 2, "UDP", 9)).toBe("allowed"); // endpoint 2 is not selected
  });

  test("an L4-only rule applies to every identity through identity 0", async () => {
    const { engine } = await setup([
      { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: "TCP" }, { port: 53 }] }] }] },
    ]);
    expect(short(engine.endpointPolicy(1)?.ingress.entries ?? [])).toEqual([
      "0<6/53/64",
      "0<6/80/64",
      "0<17/53/64",
      "0<132/53/64",
    ]);
    expect(verdict(engine, 7, 2, "TCP", 80)).toBe("allowed");
    expect(verdict(engine, 7, 2, "TCP", 81)).toBe("denied");
  });

  test("an empty ingress section turns default deny on and allows nothing", async () => {
    const { engine } = await setup([{ endpointSelector: {}, ingress: [{}] }]);
    expect(engine.endpointPolicy(1)?.ingress).toEqual({ enforced: true, entries: [] });
    expect(verdict(engine, 1, 1, "TCP", 80)).toBe("denied");
  });

  test("entities resolve to reserved identities, world adds CIDR identities, cluster takes the rest, all is identity 0", async () => {
    const { engine, net, host8, v6 } = await setup([
      {
        name: "e",
        endpointSelector: { matchLabels: { app: "web" } },
        egress: [{ toEntities: ["host", "remote-node"] }, { toEntities: ["world"] }],
      },
      {
        name: "c",
        endpointSelector: { matchLabels: { app: "db" } },
        egress: [{ toEntities: ["cluster"] }],
        ingress: [{ fromEntities: ["all"] }],
      },
    ]);
    const web = engine.endpointPolicy(1)?.egress.entries.map((e) => e.identity);
    expect(web).toEqual([1, 2, 6, net, host8, v6]);
    const db = engine.endpointPolicy(2);
    expect(db?.egress.entries.map((e) => e.identity)).toEqual([
      1,
      3,
      4,
      5,
      6,
      7,
      8,
      ...Array.from({ length: 201 }, (_, i) => 300 + i),
    ]);
    expect(short(db?.ingress.entries ?? [])).toEqual(["0<0/0/40"]);
  });

  test("CIDR rules select CIDR identities inside the prefix except the excepted ones; /0 also selects world", async () => {
    const { engine, net, host8, v6 } = await setup([
      {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [{ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.9.0.0/16"] }] }],
      },
      {
        endpointSelector: { matchLabels: { app: "db" } },
        ingress: [{ fromCIDR: ["0.0.0.0/0"] }, { fromCIDR: ["fd00::/16"] }],
      },
    ]);
    expect(engine.endpointPolicy(1)?.ingress.entries.map((e) => e.identity)).toEqual([net]);
    expect(engine.endpointPolicy(2)?.ingress.entries.map((e) => e.identity)).toEqual([2, net, host8]);
    expect(engine.referencedCidrs()).toEqual(["0.0.0.0/0", "10.0.0.0/8", "10.9.0.0/16", "fd00::/16"]);
    void v6; // fd00::/8 is wider than fd00::/16, so not inside it
  });

  test("a port range is split into aligned blocks; ICMP types are ports", async () => {
    const { engine } = await setup([
      {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [
          {
            fromEntities: ["host"],
            toPorts: [
              {
                ports: [
                  { port: 8000, endPort: 8080, protocol: "TCP" },
                  { port: 8, protocol: "ICMP" },
                ],
              },
            ],
          },
        ],
      },
    ]);
    expect(short(engine.endpointPolicy(1)?.ingress.entries ?? [])).toEqual([
      "1<1/8/64",
      "1<6/8000/58",
      "1<6/8064/60",
      "1<6/8080/64",
    ]);
    expect(verdict(engine, 1, 1, "ICMP", 8)).toBe("allowed");
    expect(verdict(engine, 1, 1, "ICMP", 0)).toBe("denied");
    expect(verdict(engine, 1, 1, "TCP", 8081)).toBe("denied");
  });

  test("deny beats allow: an allow inside a deny of the same identity is dropped, a wider allow stays", async () => {
    const { engine } = await setup([
      {
        name: "allow",
        endpointSelector: {},
        ingress: [
          { fromEntities: ["host"], toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }] },
          { fromEntities: ["host"] },
        ],
      },
      {
        name: "deny",
        endpointSelector: {},
        ingressDeny: [{ fromEntities: ["host"], toPorts: [{ ports: [{ protocol: "TCP" }] }] }],
      },
    ]);
    expect(short(engine.endpointPolicy(1)?.ingress.entries ?? [])).toEqual(["1<0/0/40", "1<6/0/48 deny"]);
    const ex = engine.explain({ from: { identity: 1 }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
    expect(ex.verdict).toBe("denied");
    expect(ex.ingress?.reason).toBe("rule-deny");
    expect(ex.ingress?.rules.map((r) => `${String(r.rule)} ${r.field}`)).toEqual(["deny ingressDeny[0]"]);
    expect(verdict(engine, 1, 1, "UDP", 80)).toBe("allowed");
  });

  test("a deny for identity 0 applies to every identity, even with an identity's allow", async () => {
    const { engine } = await setup([
      {
        endpointSelector: {},
        ingress: [{ fromEntities: ["host"] }],
        ingressDeny: [{ toPorts: [{ ports: [{ port: 22, protocol: "TCP" }] }] }],
      },
    ]);
    expect(short(engine.endpointPolicy(1)?.ingress.entries ?? [])).toEqual(["0<6/22/64 deny", "1<0/0/40"]);
    expect(verdict(engine, 1, 1, "TCP", 22)).toBe("denied");
    expect(verdict(engine, 1, 1, "TCP", 23)).toBe("allowed");
  });

  test("a deny-only rule enforces the direction: what it does not deny is denied by default", async () => {
    const { engine } = await setup([{ endpointSelector: {}, egressDeny: [{ toEntities: ["world"] }] }]);
    expect(engine.endpointPolicy(1)?.egress.enforced).toBe(true);
    const ex = engine.explain({ from: { endpoint: 1 }, to: { endpoint: 2 }, protocol: "TCP", port: 80 });
    expect(ex.egress?.reason).toBe("default-deny");
    expect(ex.ingress?.reason).toBe("default-allow");
    expect(ex.verdict).toBe("denied");
  });

  test("reserved identities are selected by their reserved labels", async () => {
    const { engine } = await setup([
      { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { "reserved:host": "" } }] }] },
    ]);
    expect(engine.endpointPolicy(1)?.ingress.entries.map((e) => e.identity)).toEqual([1]);
  });
});

describe("PolicyEngine incremental changes", () => {
  test("addIdentity() touches only endpoints whose rules select the new identity", async () => {
    const { engine } = await setup([
      {
        name: "web",
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [
          { fromEndpoints: [{ matchLabels: { role: "lb" } }], toPorts: [{ ports: [{ port: 443, protocol: "TCP" }] }] },
        ],
      },
      {
        name: "db",
        endpointSelector: { matchLabels: { app: "db" } },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }] }],
      },
    ]);
    expect(engine.addIdentity({ id: 9000, labels: LabelSet.from(["k8s:nothing=here"]) })).toEqual([]);
    const diffs = engine.addIdentity({ id: 9001, labels: LabelSet.from(["k8s:role=lb"]) });
    expect(diffs.map((d) => d.endpointId)).toEqual([1]);
    expect(short(diffs[0]?.added ?? [])).toEqual(["9001<6/443/64"]);
    expect(diffs[0]?.removed).toEqual([]);
    // Relabelling moves it from one selector to the other.
    const moved = engine.addIdentity({ id: 9001, labels: LabelSet.from(["k8s:app=web"]) });
    expect(moved.map((d) => [d.endpointId, short(d.added), short(d.removed)])).toEqual([
      [1, [], ["9001<6/443/64"]],
      [2, ["9001<0/0/40"], []],
    ]);
    expect(engine.removeIdentity(9001).map((d) => [d.endpointId, short(d.removed)])).toEqual([[2, ["9001<0/0/40"]]]);
    expect(engine.removeIdentity(9001)).toEqual([]);
  });

  test("addRule() replaces by name and deleteRule() removes, with enforcement changes in the diff", async () => {
    const { engine } = await setup([]);
    const added = engine.addRule({
      name: "x",
      endpointSelector: { matchLabels: { app: "db" } },
      egress: [{ toEntities: ["host"] }],
    });
    expect(added).toEqual([
      {
        endpointId: 2,
        enforcementChanged: true,
        enforcement: { ingress: false, egress: true },
        added: [expect.objectContaining({ identity: 1, egress: true })],
        removed: [],
      },
    ]);
    const replaced = engine.addRule({
      name: "x",
      endpointSelector: { matchLabels: { app: "db" } },
      egress: [{ toEntities: ["host"], toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }] }],
    });
    expect(replaced.map((d) => [d.enforcementChanged, short(d.added), short(d.removed)])).toEqual([
      [false, ["1>6/80/64"], ["1>0/0/40"]],
    ]);
    expect(engine.rules()).toHaveLength(1);
    const deleted = engine.deleteRule("x");
    expect(deleted.map((d) => [d.enforcement, short(d.removed)])).toEqual([
      [{ ingress: false, egress: false }, ["1>6/80/64"]],
    ]);
    expect(() => engine.deleteRule("x")).toThrow('Cannot delete rule "x": no rule has that name');
  });

  test("a changed rule cookie is an update in added, not a removal", async () => {
    const { engine } = await setup([]);
    engine.addRule({ name: "a", endpointSelector: {}, ingress: [{ fromEntities: ["host"] }] });
    const d = engine.addRule({ name: "a", endpointSelector: {}, ingress: [{ fromEntities: ["host"] }] });
    expect(d.map((x) => [x.endpointId, short(x.added), x.removed.length])).toEqual([
      [1, ["1<0/0/40"], 0],
      [2, ["1<0/0/40"], 0],
    ]);
    expect(engine.ruleOfCookie(d[0]?.added[0]?.ruleCookie ?? 0)?.rule).toBe("a");
  });

  test("upsertEndpoint() with new labels re-selects rules; removeEndpoint() lists every entry it had", async () => {
    const { engine } = await setup([
      {
        name: "web",
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [{ fromEntities: ["host", "health"] }],
      },
    ]);
    expect(engine.upsertEndpoint({ id: 1, identity: WEB })).toEqual([]);
    const moved = engine.upsertEndpoint({ id: 2, identity: DB, labels: ["k8s:app=web"] });
    expect(moved.map((d) => [d.endpointId, d.enforcementChanged, short(d.added)])).toEqual([
      [2, true, ["1<0/0/40", "4<0/0/40"]],
    ]);
    const gone = engine.removeEndpoint(1);
    expect(gone.map((d) => [d.endpointId, d.enforcement, short(d.removed)])).toEqual([
      [1, { ingress: false, egress: false }, ["1<0/0/40", "4<0/0/40"]],
    ]);
    expect(engine.endpointPolicy(1)).toBeUndefined();
    expect(engine.removeEndpoint(1)).toEqual([]);
  });

  test("the engine follows its allocator until closed and tells subscribers", async () => {
    const alloc = createLocalIdentityAllocator();
    const engine = createPolicyEngine({ allocator: alloc });
    engine.upsertEndpoint({ id: 1, identity: 1, labels: ["reserved:host"] });
    engine.setRules([{ endpointSelector: {}, egress: [{ toEndpoints: [{ matchLabels: { app: "db" } }] }] }]);
    const seen: EndpointPolicyDiff[] = [];
    const sub = engine.subscribe((d) => seen.push(...d));
    const db = await alloc.allocate(["k8s:app=db"]);
    expect(engine.endpointPolicy(1)?.egress.entries.map((e) => e.identity)).toEqual([db.id]);
    await alloc.release(db.id);
    expect(engine.endpointPolicy(1)?.egress.entries).toEqual([]);
    expect(seen.map((d) => [short(d.added), short(d.removed)])).toEqual([
      [[`${db.id}>0/0/40`], []],
      [[], [`${db.id}>0/0/40`]],
    ]);
    sub.unsubscribe();
    engine.close();
    engine.close();
    await alloc.allocate(["k8s:app=db"]);
    expect(engine.endpointPolicy(1)?.egress.entries).toEqual([]);
    expect(seen).toHaveLength(2);
  });

  test("input errors are typed and change nothing", async () => {
    const { engine } = await setup([]);
    expect(() => engine.upsertEndpoint({ id: 70000, identity: WEB })).toThrow(RangeError);
    expect(() => engine.upsertEndpoint({ id: 3, identity: 12345 })).toThrow(
      "Cannot add endpoint 3: identity 12345 is unknown and no labels were given",
    );
    expect(() => engine.addIdentity({ id: 0, labels: LabelSet.EMPTY })).toThrow(RangeError);
    expect(() => engine.addIdentity({ id: 70000, labels: LabelSet.EMPTY })).toThrow(RangeError);
    expect(engine.endpointIds()).toEqual([1, 2]);
  });
});

describe("PolicyEngine.explain()", () => {
  test("explain() reports both directions with the rules, by name or index, from the map entries", async () => {
    const { engine } = await setup([
      {
        name: "web-in",
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [
          { fromEndpoints: [{ matchLabels: { app: "db" } }], toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }] },
        ],
      },
      { endpointSelector: { matchLabels: { app: "db" } }, egress: [{ toEntities: ["cluster"] }] },
    ]);
    const ex = engine.explain({ from: { endpoint: 2 }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
    expect(ex.verdict).toBe("allowed");
    expect(ex.egress?.message).toBe(`Egress of endpoint 2 to identity ${WEB}: allowed by rule #1 egress[0]`);
    expect(ex.ingress?.message).toBe(`Ingress of endpoint 1 from identity ${DB}: allowed by rule "web-in" ingress[0]`);
    expect(ex.ingress?.entry).toEqual(engine.endpointPolicy(1)?.ingress.entries[0]);
    const byLabels = engine.explain({
      from: { labels: ["k8s:env=prod", "k8s:app=db"] },
      to: { endpoint: 1 },
      protocol: 6,
      port: 81,
    });
    expect(byLabels.egress).toBeUndefined();
    expect(byLabels.ingress?.message).toBe(
      `Ingress of endpoint 1 from identity ${DB}: denied by default (rules select the endpoint, none allows this)`,
    );
  });

  test("explain() rejects unknown endpoints, labels and protocols", async () => {
    const { engine } = await setup([]);
    expect(() => engine.explain({ from: { endpoint: 9 }, to: { endpoint: 1 }, protocol: "TCP" })).toThrow(
      "Cannot explain: source endpoint 9 is unknown",
    );
    expect(() => engine.explain({ from: { labels: ["k8s:x=y"] }, to: { endpoint: 1 }, protocol: "TCP" })).toThrow(
      RangeError,
    );
    expect(() => engine.explain({ from: { identity: 1 }, to: { endpoint: 1 }, protocol: "ANY" as "TCP" })).toThrow(
      TypeError,
    );
    expect(() => engine.explain({ from: { identity: 1 }, to: { endpoint: 1 }, protocol: "TCP", port: 70000 })).toThrow(
      RangeError,
    );
  });
});
