import { beforeEach, describe, expect, test } from "vitest";
import { type NexthopObject, openRouting } from "@dp/routing";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

/** lo up, d0 (10.1.0.2/24, fd00:1::2/64) and its peer d1, both up. */
function withVeth(ns: TestNetns): void {
  ns.exec("ip", ["link", "set", "lo", "up"]);
  ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec("ip", ["link", "set", "d0", "up"]);
  ns.exec("ip", ["link", "set", "d1", "up"]);
  ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
  ns.exec("ip", ["addr", "add", "fd00:1::2/64", "dev", "d0", "nodad"]);
}

interface IpNexthop {
  id: number;
  gateway?: string;
  dev?: string;
  blackhole?: null;
  fdb?: null;
  scope?: string;
  protocol?: string;
  flags: string[];
  group?: { id: number; weight?: number }[];
  type?: string;
  resilient_args?: { buckets: number; idle_timer: number; unbalanced_timer: number; unbalanced_time: number };
}

const SCOPES: Record<string, number> = { global: 0, link: 253, host: 254 };
const PROTOCOLS: Record<string, number> = { unspec: 0, boot: 3, static: 4 };

/** `ip -json nexthop show` in the namespace, in dp's shape. */
function ipNexthops(ns: TestNetns): NexthopObject[] {
  const links = new Map(
    (JSON.parse(ns.exec("ip", ["-j", "link", "show"])) as { ifindex: number; ifname: string }[]).map((l) => [
      l.ifname,
      l.ifindex,
    ]),
  );
  const out = ns.exec("ip", ["-j", "nexthop", "show"]).trim();
  return (out === "" ? [] : (JSON.parse(out) as IpNexthop[])).map((n) => {
    const nh: Record<string, unknown> = {
      id: n.id,
      family: n.group !== undefined ? undefined : n.gateway?.includes(":") === true ? 6 : 4,
      onlink: n.flags.includes("onlink"),
      blackhole: n.blackhole !== undefined,
      fdb: n.fdb !== undefined,
      dead: n.flags.includes("dead") || n.flags.includes("linkdown"),
      protocol: n.protocol === undefined ? 0 : (PROTOCOLS[n.protocol] ?? Number(n.protocol)),
      scope: n.scope === undefined ? 0 : (SCOPES[n.scope] ?? Number(n.scope)),
    };
    if (n.gateway !== undefined) nh["via"] = n.gateway;
    if (n.dev !== undefined) nh["dev"] = links.get(n.dev);
    if (n.group !== undefined) {
      nh["group"] = n.group.map((g) => ({ id: g.id, weight: g.weight ?? 1 }));
      nh["groupType"] = n.type ?? "mpath";
    }
    if (n.resilient_args !== undefined) {
      const r = n.resilient_args;
      nh["resilient"] = {
        buckets: r.buckets,
        idleTimer: r.idle_timer,
        unbalancedTimer: r.unbalanced_timer,
        unbalancedTime: r.unbalanced_time,
      };
    }
    return nh as unknown as NexthopObject;
  });
}

const IP_NEXTHOPS = [
  "id 1 via 10.1.0.1 dev d0",
  "id 2 via 10.9.0.1 dev d0 onlink proto static",
  "id 3 via fd00:1::1 dev d0",
  "id 4 blackhole",
  "id 5 via 10.1.0.1 fdb",
  "id 7 dev d0",
  "id 10 group 1/2,3",
  "id 11 group 3",
  "id 12 group 1 type resilient buckets 8 idle_timer 10 unbalanced_timer 20",
];

describe("Nexthops", () => {
  test("nexthops.list() reads every object ip nexthop add made, as ip -json shows them", () => {
    using ns = netns();
    withVeth(ns);
    for (const nh of IP_NEXTHOPS) ns.exec("ip", ["nexthop", "add", ...nh.split(" ")]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.nexthops.list()).toEqual(ipNexthops(ns));
    expect(rt.nexthops.list({ groups: true }).map((n) => n.id)).toEqual([10, 11, 12]);
    expect(rt.nexthops.list({ family: 6 }).map((n) => n.id)).toEqual([3]);
    expect(rt.nexthops.list({ dev: "d0" }).map((n) => n.id)).toEqual([1, 2, 3, 7]);
    expect(rt.nexthops.get(12)).toEqual(ipNexthops(ns).find((n) => n.id === 12));
  });

  test("nexthops.add() makes what ip nexthop add makes: a listed object re-added elsewhere shows the same in ip -json", () => {
    using byIp = netns();
    withVeth(byIp);
    for (const nh of IP_NEXTHOPS) byIp.exec("ip", ["nexthop", "add", ...nh.split(" ")]);
    using byDp = netns();
    withVeth(byDp);
    using rtIp = openRouting({ netns: byIp.ns });
    using rt = openRouting({ netns: byDp.ns });
    for (const nh of rtIp.nexthops.list()) {
      // The unbalanced time is the kernel's to count.
      const resilient = nh.resilient === undefined ? {} : { resilient: { ...nh.resilient, unbalancedTime: undefined } };
      rt.nexthops.add({ ...nh, ...resilient } as never);
    }
    expect(ipNexthops(byDp)).toEqual(ipNexthops(byIp));
    expect(byDp.exec("ip", ["nexthop", "show"])).toBe(byIp.exec("ip", ["nexthop", "show"]));
  });

  test("nexthops.replace() moves every route using a next hop, and delete() takes the routes along, as the kernel does", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" });
    rt.routes.add({ dst: "10.7.0.0/24", nhid: 1 });
    rt.routes.add({ dst: "10.8.0.0/24", nhid: 1 });
    rt.nexthops.replace({ id: 1, via: "10.1.0.3", dev: "d0" });
    expect(
      rt.routes
        .list({ family: 4 })
        .filter((r) => r.nhid === 1)
        .map((r) => [r.dst, r.via]),
    ).toEqual([
      ["10.7.0.0/24", "10.1.0.3"],
      ["10.8.0.0/24", "10.1.0.3"],
    ]);
    expect(() => rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" })).toThrow(
      expect.objectContaining({ code: "EEXIST" }),
    );
    expect(rt.nexthops.delete(1)).toBe(true);
    expect(rt.nexthops.delete(1)).toBe(false);
    expect(rt.routes.list({ family: 4 }).filter((r) => r.nhid !== undefined)).toEqual([]);
    expect(ns.exec("ip", ["-j", "nexthop", "show"]).trim()).toBe("[]");
  });

  test("nexthops.add() names a missing dev with ENODEV and relays the kernel's reasons", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "nope0" })).toThrow(
      /Cannot add nexthop 1: no link "nope0"/,
    );
    expect(() => rt.nexthops.add({ id: 2, group: [{ id: 99 }] })).toThrow(
      expect.objectContaining({ name: "NetlinkError" }),
    );
    expect(() => rt.nexthops.list({ dev: 999 })).toThrow(expect.objectContaining({ code: "ENODEV" }));
  });

  test("a route listed with its nexthop's gateway (nexthop_compat_mode 1) can be passed back: routes.add() sends the nhid alone", () => {
    using a = netns();
    withVeth(a);
    using b = netns();
    withVeth(b);
    using rtA = openRouting({ netns: a.ns });
    using rtB = openRouting({ netns: b.ns });
    for (const rt of [rtA, rtB]) {
      rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" });
      rt.nexthops.add({ id: 2, via: "10.1.0.3", dev: "d0" });
      rt.nexthops.add({ id: 10, group: [{ id: 1 }, { id: 2 }] });
    }
    rtA.routes.add({ dst: "10.7.0.0/24", nhid: 1 });
    rtA.routes.add({ dst: "10.8.0.0/24", nhid: 10 });
    const listed = rtA.routes.list({ family: 4 }).filter((r) => r.nhid !== undefined);
    expect(listed.map((r) => [r.nhid, r.via, r.nexthops?.length])).toEqual([
      [1, "10.1.0.1", undefined],
      [10, undefined, 2],
    ]);
    for (const r of listed) rtB.routes.add(r);
    expect(b.exec("ip", ["route", "show"])).toBe(a.exec("ip", ["route", "show"]));
    for (const r of listed) expect(rtB.routes.delete(r)).toBe(true);
  });
});
