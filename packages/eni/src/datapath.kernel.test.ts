import { beforeEach, describe, expect, test } from "vitest";
import {
  type EniDatapathOptions,
  type EniDatapathState,
  ENI_ROUTE_PROTOCOL,
  listEniPodIps,
  reconcileEniDatapath,
} from "@dp/eni";
import { openRouting, type Routing } from "@dp/routing";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const PROTO = String(ENI_ROUTE_PROTOCOL);
const VPC_CIDRS = ["192.168.0.0/16", "100.64.0.0/16"];

/** The state of the topology below: two ENIs in two subnets, three pods. */
const STATE: EniDatapathState = {
  enis: [
    { dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: VPC_CIDRS },
    { dev: "eth2", deviceIndex: 2, subnetCidr: "192.168.1.0/24", vpcCidrs: VPC_CIDRS },
  ],
  pods: [
    { ip: "192.168.0.20", eni: "eth1", hostDev: "lxc1" },
    { ip: "192.168.0.21", eni: "eth1", hostDev: "lxc2" },
    { ip: "192.168.1.30", eni: "eth2", hostDev: "lxc3" },
  ],
};
const OPTIONS: EniDatapathOptions = { enableEndpointRoutes: true };

/** The addresses on the VPC side that pods ping: one per VPC CIDR. */
const VPC_TARGETS = ["192.168.200.1", "100.64.0.1"];

interface Topology extends Disposable {
  readonly node: TestNetns;
  readonly vpc: TestNetns;
  readonly pods: readonly TestNetns[];
  readonly rt: Routing;
}

function sysctls(ns: TestNetns, settings: readonly string[]): void {
  ns.exec("sysctl", ["-qw", ...settings]);
}

/**
 * A node namespace playing the instance: ENI-like veths eth1 and eth2
 * (with the ENIs' primary IPs, as on an instance) whose peers live in a
 * "vpc" namespace holding the subnets' router IPs, addresses to reach and
 * routes back to the pods; one namespace per pod of {@link STATE},
 * connected by lxcN/eth0 with the pod IP /32 and Cilium's default route
 * "via 169.254.1.1 dev eth0 onlink" (a permanent neighbour gives the
 * gateway lxcN's MAC). IPv6 is off so that the ENI counters count only
 * the test's packets.
 */
function topology(): Topology {
  const made: TestNetns[] = [];
  let rt: Routing | undefined;
  try {
    const mk = (label: string): TestNetns => {
      const ns = netns({ label });
      made.push(ns);
      sysctls(ns, ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
      return ns;
    };
    const node = mk("node");
    const vpc = mk("vpc");
    vethPair(node, vpc, { nameA: "eth1", nameB: "vpc1", addressA: "192.168.0.10/24", addressB: "192.168.0.1/24" });
    vethPair(node, vpc, { nameA: "eth2", nameB: "vpc2", addressA: "192.168.1.10/24", addressB: "192.168.1.1/24" });
    for (const target of VPC_TARGETS) vpc.exec("ip", ["addr", "add", `${target}/32`, "dev", "lo"]);
    rt = openRouting({ netns: node.ns });
    rt.sysctl.setIpForward(true);
    const pods = STATE.pods.map((pod, i) => {
      const ns = mk(`pod${i + 1}`);
      const hostDev = pod.hostDev as string;
      vethPair(node, ns, { nameA: hostDev, nameB: "eth0" });
      const mac = rt?.links.get(hostDev)?.mac as string;
      ns.exec("ip", ["addr", "add", `${pod.ip}/32`, "dev", "eth0"]);
      ns.exec("ip", ["route", "add", "default", "via", "169.254.1.1", "dev", "eth0", "onlink"]);
      ns.exec("ip", ["neigh", "add", "169.254.1.1", "dev", "eth0", "lladdr", mac, "nud", "permanent"]);
      const primary = pod.eni === "eth1" ? "192.168.0.10" : "192.168.1.10";
      vpc.exec("ip", ["route", "add", pod.ip, "via", primary, "dev", pod.eni === "eth1" ? "vpc1" : "vpc2"]);
      return ns;
    });
    const handle = rt;
    return {
      node,
      vpc,
      pods,
      rt: handle,
      [Symbol.dispose](): void {
        handle.close();
        for (const ns of made.reverse()) ns.close();
      },
    };
  } catch (err) {
    rt?.close();
    for (const ns of made.reverse()) ns.close();
    throw err;
  }
}

/** A rule as `ip -json rule` prints it: a prefix is an address plus `dstlen`, a host is a bare address. */
interface IpRule {
  priority: number;
  src: string;
  dst?: string;
  dstlen?: number;
  table: string;
  protocol?: string;
}

/** `ip -json rule` in the namespace: the datapath's rules (protocol 219), sorted by priority, source and destination. */
function ipRules(ns: TestNetns, all = false): IpRule[] {
  const rules = JSON.parse(ns.exec("ip", ["-4", "-json", "rule"])) as IpRule[];
  const key = (r: IpRule): string => `${String(r.priority).padStart(6, "0")} ${r.src} ${r.dst ?? ""}`;
  return rules.filter((r) => all || r.protocol === PROTO).sort((a, b) => key(a).localeCompare(key(b)));
}

/** `ip -json route show table N` in the namespace, as ip prints it. */
function ipRoutes(ns: TestNetns, table: string): unknown[] {
  const out = ns.exec("ip", ["-4", "-json", "route", "show", "table", table]).trim();
  return out === "" ? [] : (JSON.parse(out) as unknown[]);
}

function toPodRule(ip: string): IpRule {
  return { priority: 20, src: "all", dst: ip, table: "main", protocol: PROTO };
}

function fromPodRules(ip: string, table: number): IpRule[] {
  return VPC_CIDRS.map((cidr) => {
    const [dst, len] = cidr.split("/") as [string, string];
    return { priority: 30, src: ip, dst, dstlen: Number(len), table: String(table), protocol: PROTO };
  });
}

function sortRules(rules: IpRule[]): IpRule[] {
  const key = (r: IpRule): string => `${String(r.priority).padStart(6, "0")} ${r.src} ${r.dst ?? ""}`;
  return rules.sort((a, b) => key(a).localeCompare(key(b)));
}

function eniTable(router: string, dev: string): unknown[] {
  return [
    { dst: "default", gateway: router, dev, protocol: PROTO, flags: [] },
    { dst: router, dev, protocol: PROTO, scope: "link", flags: [] },
  ];
}

function endpointRoute(ip: string, dev: string): unknown {
  return { dst: ip, dev, protocol: PROTO, scope: "link", flags: [] };
}

/** The main table's routes of the datapath. */
function mainRoutes(ns: TestNetns): unknown[] {
  return ipRoutes(ns, "main").filter((r) => (r as { protocol?: string }).protocol === PROTO);
}

function txPackets(rt: Routing, dev: string): bigint {
  return rt.links.get(dev)?.stats?.txPackets ?? -1n;
}

describe("reconcileEniDatapath()", () => {
  test("reconcileEniDatapath() creates exactly the rules and ENI tables of datapath.rst for two ENIs and three pods", () => {
    using topo = topology();
    const changes = reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    expect(changes.removed).toEqual([]);
    expect(changes.repaired).toEqual([]);
    expect(changes.skipped).toEqual([]);
    expect(changes.added).toEqual([
      "route 192.168.0.1 dev eth1 scope link table 11",
      "route default via 192.168.0.1 dev eth1 table 11",
      "route 192.168.1.1 dev eth2 scope link table 12",
      "route default via 192.168.1.1 dev eth2 table 12",
      "route 192.168.0.20 dev lxc1 scope link",
      "route 192.168.0.21 dev lxc2 scope link",
      "route 192.168.1.30 dev lxc3 scope link",
      "rule 20: from all to 192.168.0.20 lookup main",
      "rule 30: from 192.168.0.20 to 192.168.0.0/16 lookup 11",
      "rule 30: from 192.168.0.20 to 100.64.0.0/16 lookup 11",
      "rule 20: from all to 192.168.0.21 lookup main",
      "rule 30: from 192.168.0.21 to 192.168.0.0/16 lookup 11",
      "rule 30: from 192.168.0.21 to 100.64.0.0/16 lookup 11",
      "rule 20: from all to 192.168.1.30 lookup main",
      "rule 30: from 192.168.1.30 to 192.168.0.0/16 lookup 12",
      "rule 30: from 192.168.1.30 to 100.64.0.0/16 lookup 12",
    ]);
    expect(ipRules(topo.node)).toEqual(
      sortRules([
        toPodRule("192.168.0.20"),
        toPodRule("192.168.0.21"),
        toPodRule("192.168.1.30"),
        ...fromPodRules("192.168.0.20", 11),
        ...fromPodRules("192.168.0.21", 11),
        ...fromPodRules("192.168.1.30", 12),
      ]),
    );
    expect(ipRoutes(topo.node, "11")).toEqual(eniTable("192.168.0.1", "eth1"));
    expect(ipRoutes(topo.node, "12")).toEqual(eniTable("192.168.1.1", "eth2"));
    expect(mainRoutes(topo.node)).toEqual([
      endpointRoute("192.168.0.20", "lxc1"),
      endpointRoute("192.168.0.21", "lxc2"),
      endpointRoute("192.168.1.30", "lxc3"),
    ]);
    // The kernel's own rules are still there.
    expect(
      ipRules(topo.node, true)
        .filter((r) => r.protocol !== PROTO)
        .map((r) => r.priority),
    ).toEqual([0, 32766, 32767]);
  });

  test("reconcileEniDatapath() sends each pod's VPC traffic out of its own ENI, and replies come back through main", () => {
    using topo = topology();
    reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    const [pod1, pod2, pod3] = topo.pods as [TestNetns, TestNetns, TestNetns];
    const cases: [TestNetns, string, string][] = [
      [pod1, "eth1", "eth2"],
      [pod2, "eth1", "eth2"],
      [pod3, "eth2", "eth1"],
    ];
    for (const [pod, out, other] of cases) {
      for (const target of VPC_TARGETS) {
        const before = [txPackets(topo.rt, out), txPackets(topo.rt, other)];
        pod.exec("ping", ["-c", "2", "-i", "0.2", "-W", "2", target]);
        const after = [txPackets(topo.rt, out), txPackets(topo.rt, other)];
        expect((after[0] as bigint) - (before[0] as bigint), `${target} leaves through ${out}`).toBeGreaterThanOrEqual(
          2n,
        );
        expect(after[1], `nothing leaves through ${other}`).toBe(before[1]);
      }
    }
    // Pod to pod stays on the node (rule 20 comes first): nothing goes out of an ENI.
    const before = [txPackets(topo.rt, "eth1"), txPackets(topo.rt, "eth2")];
    pod1.exec("ping", ["-c", "2", "-i", "0.2", "-W", "2", "192.168.1.30"]);
    expect([txPackets(topo.rt, "eth1"), txPackets(topo.rt, "eth2")]).toEqual(before);
  });

  test("reconcileEniDatapath() changes nothing the second time", () => {
    using topo = topology();
    reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    const rules = ipRules(topo.node);
    const tables = [ipRoutes(topo.node, "11"), ipRoutes(topo.node, "12"), mainRoutes(topo.node)];
    expect(reconcileEniDatapath(topo.rt, STATE, OPTIONS)).toEqual({
      added: [],
      removed: [],
      repaired: [],
      skipped: [],
    });
    expect(ipRules(topo.node)).toEqual(rules);
    expect([ipRoutes(topo.node, "11"), ipRoutes(topo.node, "12"), mainRoutes(topo.node)]).toEqual(tables);
  });

  test("reconcileEniDatapath() removes exactly a gone pod's and a gone ENI's entries and leaves foreign ones", () => {
    using topo = topology();
    reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    // Foreign entries: a rule at priority 100, a rule identical to one of ours but from
    // another protocol, a route in an ENI table and one in main.
    topo.node.exec("ip", ["rule", "add", "from", "192.168.0.20", "lookup", "100", "priority", "100"]);
    topo.node.exec("ip", ["rule", "add", "to", "192.168.1.30", "lookup", "main", "priority", "20"]);
    topo.node.exec("ip", ["route", "add", "10.9.0.0/16", "via", "192.168.1.1", "dev", "eth2", "table", "12"]);
    topo.node.exec("ip", ["route", "add", "10.8.0.0/16", "dev", "eth1"]);
    const foreignRules = ipRules(topo.node, true).filter((r) => r.protocol !== PROTO);
    const foreignMain = ipRoutes(topo.node, "main").filter((r) => (r as { protocol?: string }).protocol !== PROTO);

    // Pod 2 is gone; then ENI eth2 goes, with its pod.
    const withoutPod2: EniDatapathState = { enis: STATE.enis, pods: STATE.pods.filter((p) => p.ip !== "192.168.0.21") };
    expect(reconcileEniDatapath(topo.rt, withoutPod2, OPTIONS)).toEqual({
      added: [],
      removed: [
        "rule 20: from all to 192.168.0.21 lookup main",
        "rule 30: from 192.168.0.21 to 192.168.0.0/16 lookup 11",
        "rule 30: from 192.168.0.21 to 100.64.0.0/16 lookup 11",
        "route 192.168.0.21 dev lxc2 scope link",
      ],
      repaired: [],
      skipped: [],
    });
    const onlyEth1: EniDatapathState = { enis: [STATE.enis[0]!], pods: [STATE.pods[0]!] };
    expect(reconcileEniDatapath(topo.rt, onlyEth1, OPTIONS)).toEqual({
      added: [],
      removed: [
        "rule 20: from all to 192.168.1.30 lookup main",
        "rule 30: from 192.168.1.30 to 192.168.0.0/16 lookup 12",
        "rule 30: from 192.168.1.30 to 100.64.0.0/16 lookup 12",
        "route default via 192.168.1.1 dev eth2 table 12",
        "route 192.168.1.1 dev eth2 scope link table 12",
        "route 192.168.1.30 dev lxc3 scope link",
      ],
      repaired: [],
      skipped: [],
    });
    expect(ipRules(topo.node)).toEqual(sortRules([toPodRule("192.168.0.20"), ...fromPodRules("192.168.0.20", 11)]));
    expect(ipRules(topo.node, true).filter((r) => r.protocol !== PROTO)).toEqual(foreignRules);
    expect(ipRoutes(topo.node, "11")).toEqual(eniTable("192.168.0.1", "eth1"));
    expect(ipRoutes(topo.node, "12")).toEqual([{ dst: "10.9.0.0/16", gateway: "192.168.1.1", dev: "eth2", flags: [] }]);
    expect(mainRoutes(topo.node)).toEqual([endpointRoute("192.168.0.20", "lxc1")]);
    expect(ipRoutes(topo.node, "main").filter((r) => (r as { protocol?: string }).protocol !== PROTO)).toEqual(
      foreignMain,
    );

    // Nothing left of the datapath once the state is empty, foreign entries included.
    reconcileEniDatapath(topo.rt, { enis: [], pods: [] }, OPTIONS);
    expect(ipRules(topo.node)).toEqual([]);
    expect(ipRoutes(topo.node, "11")).toEqual([]);
    expect(mainRoutes(topo.node)).toEqual([]);
    expect(ipRules(topo.node, true).filter((r) => r.protocol !== PROTO)).toEqual(foreignRules);
  });

  test("reconcileEniDatapath() repairs a deleted default route, a changed gateway, a wrong rule table and a foreign route in its slot", () => {
    using topo = topology();
    reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    const rules = ipRules(topo.node);
    topo.node.exec("ip", ["route", "del", "default", "table", "11"]);
    topo.node.exec("ip", [
      "route",
      "replace",
      "default",
      "via",
      "192.168.1.99",
      "dev",
      "eth2",
      "table",
      "12",
      "proto",
      PROTO,
    ]);
    topo.node.exec("ip", ["rule", "del", "from", "192.168.0.21", "to", "100.64.0.0/16", "priority", "30"]);
    topo.node.exec("ip", [
      "rule",
      "add",
      "from",
      "192.168.0.21",
      "to",
      "100.64.0.0/16",
      "lookup",
      "99",
      "priority",
      "30",
      "protocol",
      PROTO,
    ]);
    topo.node.exec("ip", ["route", "replace", "192.168.1.30", "dev", "lxc1"]);
    const changes = reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    expect(changes).toEqual({
      added: ["route default via 192.168.0.1 dev eth1 table 11"],
      removed: [],
      repaired: [
        "route default via 192.168.1.1 dev eth2 table 12 (was: default via 192.168.1.99 dev eth2 table 12)",
        "route 192.168.1.30 dev lxc3 scope link (was: 192.168.1.30 dev lxc1 proto 3 scope link)",
        "rule 30: from 192.168.0.21 to 100.64.0.0/16 lookup 11 (was: from 192.168.0.21 to 100.64.0.0/16 lookup 99)",
      ],
      skipped: [],
    });
    expect(ipRules(topo.node)).toEqual(rules);
    expect(ipRoutes(topo.node, "11")).toEqual(eniTable("192.168.0.1", "eth1"));
    expect(ipRoutes(topo.node, "12")).toEqual(eniTable("192.168.1.1", "eth2"));
    expect(mainRoutes(topo.node)).toContainEqual(endpointRoute("192.168.1.30", "lxc3"));
    // Traffic flows again through eth1.
    const before = txPackets(topo.rt, "eth1");
    topo.pods[0]?.exec("ping", ["-c", "1", "-W", "2", "192.168.200.1"]);
    expect(txPackets(topo.rt, "eth1")).toBeGreaterThan(before);
  });

  test("reconcileEniDatapath() skips the routes of a missing interface and applies the rest", () => {
    using node = netns({ label: "node" });
    node.exec("ip", ["link", "add", "eth1", "type", "veth", "peer", "name", "vpc1"]);
    node.exec("ip", ["link", "set", "eth1", "up"]);
    using rt = openRouting({ netns: node.ns });
    const state: EniDatapathState = {
      enis: [{ dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] }],
      pods: [{ ip: "192.168.0.20", eni: "eth1", hostDev: "lxc1" }],
    };
    const changes = reconcileEniDatapath(rt, state, OPTIONS);
    expect(changes.skipped).toEqual(['route 192.168.0.20 dev lxc1 scope link: no link "lxc1"']);
    expect(changes.added).toHaveLength(4);
    node.exec("ip", ["link", "add", "lxc1", "type", "veth", "peer", "name", "eth0"]);
    node.exec("ip", ["link", "set", "lxc1", "up"]);
    expect(reconcileEniDatapath(rt, state, OPTIONS)).toEqual({
      added: ["route 192.168.0.20 dev lxc1 scope link"],
      removed: [],
      repaired: [],
      skipped: [],
    });
  });

  test("reconcileEniDatapath() installs no endpoint routes by default", () => {
    using topo = topology();
    const changes = reconcileEniDatapath(topo.rt, STATE);
    expect(changes.added.filter((c) => c.includes("lxc"))).toEqual([]);
    expect(mainRoutes(topo.node)).toEqual([]);
  });
});

describe("listEniPodIps()", () => {
  test("listEniPodIps() reads the pod IPs back from the kernel through a new handle", () => {
    using topo = topology();
    reconcileEniDatapath(topo.rt, STATE, OPTIONS);
    // A foreign priority-20 rule is not a pod of the datapath.
    topo.node.exec("ip", ["rule", "add", "to", "192.168.0.99", "lookup", "main", "priority", "20"]);
    using fresh = openRouting({ netns: topo.node.ns });
    expect(listEniPodIps(fresh)).toEqual(["192.168.0.20", "192.168.0.21", "192.168.1.30"]);
    expect(listEniPodIps(fresh, { rulePriorities: { toPod: 21, fromPod: 30 } })).toEqual([]);
  });

  test("listEniPodIps() follows custom priorities and protocol", () => {
    using topo = topology();
    const options: EniDatapathOptions = { rulePriorities: { toPod: 120, fromPod: 130 }, protocol: 200 };
    reconcileEniDatapath(topo.rt, STATE, options);
    expect(
      ipRules(topo.node, true)
        .filter((r) => r.protocol === "200")
        .map((r) => r.priority),
    ).toEqual([120, 120, 120, 130, 130, 130, 130, 130, 130]);
    expect(listEniPodIps(topo.rt, options)).toEqual(["192.168.0.20", "192.168.0.21", "192.168.1.30"]);
    expect(listEniPodIps(topo.rt)).toEqual([]);
  });
});
