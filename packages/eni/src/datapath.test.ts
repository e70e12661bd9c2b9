import { describe, expect, test } from "vitest";
import type { Link, Route, RouteSpec, Routing, Rule, RuleSpec } from "@dp/routing";
import {
  type EniDatapathState,
  ENI_ROUTE_PROTOCOL,
  listEniPodIps,
  masqueradePolicy,
  reconcileEniDatapath,
  shouldMasquerade,
} from "@dp/eni";
import { planEniDatapath } from "./_datapath_plan.ts";

const STATE: EniDatapathState = {
  enis: [
    { dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] },
    { dev: "eth2", deviceIndex: 2, subnetCidr: "192.168.1.0/24", vpcCidrs: ["192.168.0.0/16", "100.64.0.0/16"] },
  ],
  pods: [
    { ip: "192.168.0.20", eni: "eth1", hostDev: "lxc1" },
    { ip: "192.168.1.30", eni: "eth2", hostDev: "lxc2" },
  ],
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function prefix(p: string): string {
  return p.includes("/") ? p : `${p}/32`;
}

/**
 * An in-memory stand-in for a {@link Routing} handle: what reconciliation
 * reads and writes, with the kernel's identities (a rule is all its fields,
 * an IPv4 route its table, prefix and metric). It records every call.
 */
class FakeRouting {
  readonly calls: string[] = [];
  readonly rulesState: Rule[] = [
    { family: 4, priority: 0, action: "toTable", table: 255, invert: false, protocol: 2 },
    { family: 4, priority: 32766, action: "toTable", table: 254, invert: false, protocol: 2 },
  ];
  readonly routesState: Route[] = [];
  readonly linksState: Pick<Link, "index" | "name">[] = [
    { index: 1, name: "lo" },
    { index: 2, name: "eth1" },
    { index: 3, name: "eth2" },
    { index: 4, name: "lxc1" },
    { index: 5, name: "lxc2" },
  ];

  readonly links = { list: (): Link[] => this.linksState as Link[] };

  readonly rules = {
    list: (): Rule[] => [...this.rulesState].sort((a, b) => a.priority - b.priority),
    add: (spec: RuleSpec): void => {
      this.calls.push(`rule add ${spec.priority} ${spec.from ?? "all"} ${spec.to ?? ""} ${String(spec.table)}`);
      const rule: Mutable<Rule> = {
        family: 4,
        priority: spec.priority ?? 0,
        action: "toTable",
        table: spec.table === "main" ? 254 : (spec.table as number),
        invert: false,
        protocol: spec.protocol as number,
      };
      if (spec.from !== undefined) rule.from = prefix(spec.from);
      if (spec.to !== undefined) rule.to = prefix(spec.to);
      this.rulesState.push(rule);
    },
    delete: (spec: RuleSpec): boolean => {
      this.calls.push(`rule delete ${spec.priority} ${spec.from ?? "all"} ${spec.to ?? ""}`);
      const i = this.rulesState.findIndex(
        (r) =>
          r.priority === spec.priority &&
          r.from === spec.from &&
          r.to === spec.to &&
          (spec.table === undefined || r.table === spec.table) &&
          (spec.protocol === undefined || r.protocol === spec.protocol),
      );
      if (i < 0) return false;
      this.rulesState.splice(i, 1);
      return true;
    },
  };

  readonly routes = {
    list: (): Route[] => [...this.routesState],
    add: (spec: RouteSpec): void => this.#put("add", spec),
    replace: (spec: RouteSpec): void => this.#put("replace", spec),
    delete: (spec: RouteSpec): boolean => {
      this.calls.push(`route delete ${spec.dst} table ${String(spec.table)}`);
      const i = this.routesState.findIndex(
        (r) => r.table === spec.table && r.dst === spec.dst && r.metric === (spec.metric ?? 0),
      );
      if (i < 0) return false;
      this.routesState.splice(i, 1);
      return true;
    },
  };

  #put(op: "add" | "replace", spec: RouteSpec): void {
    this.calls.push(`route ${op} ${spec.dst} table ${String(spec.table)}`);
    const route: Mutable<Route> = {
      family: 4,
      dst: spec.dst === "default" ? "default" : prefix(spec.dst),
      table: spec.table as number,
      type: "unicast",
      protocol: spec.protocol as number,
      scope: spec.scope as number,
      metric: 0,
      onlink: false,
      dev: spec.dev as number,
    };
    if (spec.via !== undefined) route.via = spec.via;
    const i = this.routesState.findIndex((r) => r.table === route.table && r.dst === route.dst && r.metric === 0);
    if (i >= 0 && op === "add") throw new Error(`EEXIST ${route.dst}`);
    if (i >= 0) this.routesState[i] = route;
    else this.routesState.push(route);
  }

  /** This object as the handle type (it has what reconciliation uses). */
  get handle(): Routing {
    return this as unknown as Routing;
  }
}

describe("planEniDatapath()", () => {
  test("planEniDatapath() plans the rules and tables of datapath.rst, one table per ENI at deviceIndex + 10", () => {
    const plan = planEniDatapath(STATE, { enableEndpointRoutes: true });
    expect(plan.routes.map((r) => r.text)).toEqual([
      "route 192.168.0.1 dev eth1 scope link table 11",
      "route default via 192.168.0.1 dev eth1 table 11",
      "route 192.168.1.1 dev eth2 scope link table 12",
      "route default via 192.168.1.1 dev eth2 table 12",
      "route 192.168.0.20 dev lxc1 scope link",
      "route 192.168.1.30 dev lxc2 scope link",
    ]);
    expect(plan.rules.map((r) => r.text)).toEqual([
      "rule 20: from all to 192.168.0.20 lookup main",
      "rule 30: from 192.168.0.20 to 192.168.0.0/16 lookup 11",
      "rule 20: from all to 192.168.1.30 lookup main",
      "rule 30: from 192.168.1.30 to 192.168.0.0/16 lookup 12",
      "rule 30: from 192.168.1.30 to 100.64.0.0/16 lookup 12",
    ]);
    expect(plan.protocol).toBe(ENI_ROUTE_PROTOCOL);
  });

  test("planEniDatapath() takes a table, a router IP and priorities when given", () => {
    const plan = planEniDatapath(
      {
        enis: [
          {
            dev: "ens6",
            deviceIndex: 1,
            table: 1001,
            routerIp: "10.0.4.5",
            subnetCidr: "10.0.4.0/22",
            vpcCidrs: ["10.0.0.0/8"],
          },
        ],
        pods: [{ ip: "10.0.5.9", eni: "ens6" }],
      },
      { rulePriorities: { toPod: 110, fromPod: 111 }, enableEndpointRoutes: true },
    );
    expect([...plan.routes.map((r) => r.text), ...plan.rules.map((r) => r.text)]).toEqual([
      "route 10.0.4.5 dev ens6 scope link table 1001",
      "route default via 10.0.4.5 dev ens6 table 1001",
      "rule 110: from all to 10.0.5.9 lookup main",
      "rule 111: from 10.0.5.9 to 10.0.0.0/8 lookup 1001",
    ]);
  });

  test.each([
    [
      "an unknown ENI",
      { enis: STATE.enis, pods: [{ ip: "192.168.0.5", eni: "eth9" }] },
      {},
      RangeError,
      /pods\[0\]\.eni "eth9": no such ENI/,
    ],
    [
      "a pod IP outside its subnet",
      { enis: STATE.enis, pods: [{ ip: "192.168.1.5", eni: "eth1" }] },
      {},
      RangeError,
      /not in ENI "eth1"'s subnet 192\.168\.0\.0\/24/,
    ],
    [
      "a duplicate pod IP",
      {
        enis: STATE.enis,
        pods: [
          { ip: "192.168.0.5", eni: "eth1" },
          { ip: "192.168.0.5", eni: "eth1" },
        ],
      },
      {},
      RangeError,
      /another pod has the same IP/,
    ],
    [
      "a pod on the router IP",
      { enis: STATE.enis, pods: [{ ip: "192.168.0.1", eni: "eth1" }] },
      {},
      RangeError,
      /router IP/,
    ],
    [
      "two ENIs on one table",
      { enis: [STATE.enis[0]!, { ...STATE.enis[1]!, table: 11 }], pods: [] },
      {},
      RangeError,
      /ENI "eth1" uses the same table/,
    ],
    [
      "the main table",
      { enis: [{ ...STATE.enis[0]!, table: 254 }], pods: [] },
      {},
      RangeError,
      /main and local tables/,
    ],
    [
      "host bits in a VPC CIDR",
      { enis: [{ ...STATE.enis[0]!, vpcCidrs: ["192.168.0.1/16"] }], pods: [] },
      {},
      RangeError,
      /host bits are set \(the prefix is 192\.168\.0\.0\/16\)/,
    ],
    ["no VPC CIDR", { enis: [{ ...STATE.enis[0]!, vpcCidrs: [] }], pods: [] }, {}, RangeError, /at least one VPC CIDR/],
    ["an IPv6 pod", { enis: STATE.enis, pods: [{ ip: "fd00::1", eni: "eth1" }] }, {}, RangeError, /IPv4 only/],
    [
      "a bad address",
      { enis: STATE.enis, pods: [{ ip: "192.168.0.300", eni: "eth1" }] },
      {},
      SyntaxError,
      /pods\[0\]\.ip "192\.168\.0\.300": not an IP address/,
    ],
    [
      "an unknown field",
      { enis: [{ ...STATE.enis[0]!, mtu: 9001 }], pods: [] },
      {},
      TypeError,
      /enis\[0\]\.mtu: not an ENI field/,
    ],
    [
      "a missing deviceIndex",
      { enis: [{ dev: "eth1", subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] }], pods: [] },
      {},
      TypeError,
      /deviceIndex: expected a number/,
    ],
    [
      "toPod after fromPod",
      STATE,
      { rulePriorities: { toPod: 30, fromPod: 20 } },
      RangeError,
      /toPod \(30\) must come before fromPod \(20\)/,
    ],
    ["a kernel protocol", STATE, { protocol: 2 }, RangeError, /protocol 2: use an integer from 4 to 255/],
  ])("planEniDatapath() refuses %s", (_name, state, options, cls, message) => {
    expect(() => planEniDatapath(state as EniDatapathState, options)).toThrow(cls);
    expect(() => planEniDatapath(state as EniDatapathState, options)).toThrow(message);
  });
});

describe("reconcileEniDatapath()", () => {
  test("reconcileEniDatapath() adds routes before rules, then changes nothing the second time", () => {
    const fake = new FakeRouting();
    const first = reconcileEniDatapath(fake.handle, STATE, { enableEndpointRoutes: true });
    expect(first.added).toHaveLength(11);
    expect(fake.calls.findIndex((c) => c.startsWith("rule"))).toBe(6);
    fake.calls.length = 0;
    expect(reconcileEniDatapath(fake.handle, STATE, { enableEndpointRoutes: true })).toEqual({
      added: [],
      removed: [],
      repaired: [],
      skipped: [],
    });
    expect(fake.calls).toEqual([]);
    expect(listEniPodIps(fake.handle)).toEqual(["192.168.0.20", "192.168.1.30"]);
  });

  test("reconcileEniDatapath() removes only entries with its protocol", () => {
    const fake = new FakeRouting();
    reconcileEniDatapath(fake.handle, STATE, { enableEndpointRoutes: true });
    fake.rulesState.push({
      family: 4,
      priority: 30,
      action: "toTable",
      table: 12,
      from: "192.168.9.9/32",
      to: "192.168.0.0/16",
      invert: false,
      protocol: 4,
    });
    fake.routesState.push({
      family: 4,
      dst: "10.0.0.0/8",
      table: 12,
      type: "unicast",
      protocol: 3,
      scope: 0,
      metric: 0,
      onlink: false,
      via: "192.168.1.1",
      dev: 3,
    });
    const changes = reconcileEniDatapath(
      fake.handle,
      { enis: [STATE.enis[0]!], pods: [STATE.pods[0]!] },
      { enableEndpointRoutes: true },
    );
    expect(changes.removed).toEqual([
      "rule 20: from all to 192.168.1.30 lookup main",
      "rule 30: from 192.168.1.30 to 192.168.0.0/16 lookup 12",
      "rule 30: from 192.168.1.30 to 100.64.0.0/16 lookup 12",
      "route default via 192.168.1.1 dev eth2 table 12",
      "route 192.168.1.1 dev eth2 scope link table 12",
      "route 192.168.1.30 dev lxc2 scope link",
    ]);
    expect(fake.rulesState.some((r) => r.protocol === 4)).toBe(true);
    expect(fake.routesState.some((r) => r.protocol === 3)).toBe(true);
  });

  test("reconcileEniDatapath() repairs a route and a rule that differ", () => {
    const fake = new FakeRouting();
    reconcileEniDatapath(fake.handle, STATE);
    const dflt = fake.routesState.findIndex((r) => r.table === 11 && r.dst === "default");
    fake.routesState[dflt] = { ...fake.routesState[dflt]!, via: "192.168.0.99" };
    const rule = fake.rulesState.findIndex((r) => r.priority === 30 && r.from === "192.168.0.20/32");
    fake.rulesState[rule] = { ...fake.rulesState[rule]!, table: 99 };
    expect(reconcileEniDatapath(fake.handle, STATE)).toEqual({
      added: [],
      removed: [],
      repaired: [
        "route default via 192.168.0.1 dev eth1 table 11 (was: default via 192.168.0.99 dev eth1 table 11)",
        "rule 30: from 192.168.0.20 to 192.168.0.0/16 lookup 11 (was: from 192.168.0.20 to 192.168.0.0/16 lookup 99)",
      ],
      skipped: [],
    });
    expect(reconcileEniDatapath(fake.handle, STATE).repaired).toEqual([]);
  });

  test("reconcileEniDatapath() validates everything before touching the handle", () => {
    const fake = new FakeRouting();
    expect(() =>
      reconcileEniDatapath(fake.handle, { enis: STATE.enis, pods: [{ ip: "10.0.0.1", eni: "eth1" }] }),
    ).toThrow(RangeError);
    expect(() => reconcileEniDatapath(fake.handle, STATE, { egressMasqueradeInterfaces: ["e+th"] })).toThrow(
      RangeError,
    );
    expect(fake.calls).toEqual([]);
  });
});

describe("masqueradePolicy()", () => {
  test("masqueradePolicy() masquerades every pod IP out of the selected interfaces, except to the VPC CIDRs", () => {
    expect(masqueradePolicy(STATE, { egressMasqueradeInterfaces: ["eth+", "eth+", "ens5"] })).toEqual({
      interfaces: ["eth+", "ens5"],
      sources: ["192.168.0.20/32", "192.168.1.30/32"],
      excludeDestinations: ["192.168.0.0/16", "100.64.0.0/16"],
    });
  });

  test("masqueradePolicy() masquerades nothing without egress interfaces", () => {
    const policy = masqueradePolicy(STATE);
    expect(policy.interfaces).toEqual([]);
    expect(shouldMasquerade(policy, { src: "192.168.0.20", dst: "8.8.8.8", oif: "eth0" })).toBe(false);
  });

  test.each([
    ["+", "anything", true],
    ["eth+", "eth0", true],
    ["eth+", "eth", true],
    ["eth+", "ens5", false],
    ["eth0", "eth0", true],
    ["eth0", "eth01", false],
  ])("shouldMasquerade() with selector %s and oif %s is %s", (selector, oif, expected) => {
    const policy = { interfaces: [selector], sources: ["192.168.0.20/32"], excludeDestinations: ["192.168.0.0/16"] };
    expect(shouldMasquerade(policy, { src: "192.168.0.20", dst: "1.1.1.1", oif })).toBe(expected);
  });

  test.each([
    ["192.168.0.20", "1.1.1.1", true],
    ["192.168.0.20", "192.168.255.255", false],
    ["192.168.0.20", "100.64.3.4", false],
    ["192.168.0.21", "1.1.1.1", false],
    ["192.168.1.30", "100.65.0.1", true],
  ])("shouldMasquerade() from %s to %s out of eth0 is %s", (src, dst, expected) => {
    const policy = masqueradePolicy(STATE, { egressMasqueradeInterfaces: ["eth+"] });
    expect(shouldMasquerade(policy, { src, dst, oif: "eth0" })).toBe(expected);
  });

  test("masqueradePolicy() refuses a selector with a wildcard in the middle", () => {
    expect(() => masqueradePolicy(STATE, { egressMasqueradeInterfaces: ["e+th"] })).toThrow(
      /Invalid masquerade options.egressMasqueradeInterfaces\[0\] "e\+th"/,
    );
    expect(() => masqueradePolicy(STATE, { egressMasqueradeInterfaces: "eth+" as unknown as string[] })).toThrow(
      TypeError,
    );
  });
});
