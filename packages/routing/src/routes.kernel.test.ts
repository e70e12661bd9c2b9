import { beforeEach, describe, expect, test } from "vitest";
import { loadProgram, NetlinkError } from "@dp/core";
import { asm } from "@dp/core/internal";
import { openRouting, type Route } from "@dp/routing";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

/** d0 (10.1.0.2/24, fd00:1::2/64) and its peer d1, both up, in one namespace. */
function withVeth(ns: TestNetns): void {
  ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec("ip", ["link", "set", "d0", "up"]);
  ns.exec("ip", ["link", "set", "d1", "up"]);
  ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
  ns.exec("ip", ["addr", "add", "fd00:1::2/64", "dev", "d0", "nodad"]);
}

function indexOf(ns: TestNetns, name: string): number {
  return (JSON.parse(ns.exec("ip", ["-j", "link", "show", "dev", name])) as { ifindex: number }[])[0]!.ifindex;
}

interface IpRoute {
  type: string;
  dst: string;
  table?: string;
  protocol: string;
  scope: string;
  gateway?: string;
  via?: { family: string; host: string };
  dev?: string;
  prefsrc?: string;
  metric?: number;
  flags: string[];
  metrics?: Record<string, number | string>[];
  nexthops?: { gateway?: string; dev?: string; weight: number; flags: string[] }[];
  nhid?: number;
  from?: string;
  pref?: string;
  expires?: number;
  flow?: { from?: string; to: string };
}

/** ip -json metric names, by dp's. */
const IP_METRICS: Record<string, string> = {
  congctl: "congestion",
  rtoMin: "rto_min",
  fastopenNoCookie: "fastopen_no_cookie",
};

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const PROTOCOLS: Record<string, number> = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, ra: 9, dhcp: 16 };
const SCOPES: Record<string, number> = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };

function num(v: string, names: Record<string, number>): number {
  const n = names[v] ?? Number(v);
  if (!Number.isInteger(n)) throw new Error(`unknown name ${v}`);
  return n;
}

/**
 * `ip -d -json route show ...` inside the namespace, converted to dp's
 * shape: names become numbers, host routes get their /32 or /128.
 */
function ipRoutes(ns: TestNetns, family: 4 | 6, args: string[], table = 254): Route[] {
  const links = new Map(
    (JSON.parse(ns.exec("ip", ["-j", "link", "show"])) as { ifindex: number; ifname: string }[]).map((l) => [
      l.ifname,
      l.ifindex,
    ]),
  );
  const dev = (name: string): number => links.get(name) ?? Number.NaN;
  const out = ns.exec("ip", [`-${family}`, "-d", "-j", "route", "show", ...args]).trim();
  return (out === "" ? [] : (JSON.parse(out) as IpRoute[])).map((r) => {
    const route: Record<string, unknown> = {
      family,
      dst: r.dst === "default" || r.dst.includes("/") ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`,
      table: r.table === undefined ? table : num(r.table, TABLES),
      type: r.type,
      protocol: num(r.protocol, PROTOCOLS),
      scope: num(r.scope, SCOPES),
      metric: r.metric ?? 0,
      onlink: r.flags.includes("onlink"),
    };
    if (r.gateway !== undefined) route["via"] = r.gateway;
    if (r.via !== undefined) route["via"] = r.via.host;
    if (r.dev !== undefined) route["dev"] = dev(r.dev);
    if (r.prefsrc !== undefined) route["src"] = r.prefsrc;
    const ipMetrics = Object.assign({}, ...(r.metrics ?? [])) as Record<string, number | string>;
    if (Object.keys(ipMetrics).length > 0) {
      const metrics: Record<string, number | string> = {};
      for (const name of [
        "mtu",
        "window",
        "rtt",
        "rttvar",
        "ssthresh",
        "cwnd",
        "advmss",
        "reordering",
        "hoplimit",
        "initcwnd",
        "features",
        "rtoMin",
        "initrwnd",
        "quickack",
        "congctl",
        "fastopenNoCookie",
      ]) {
        const v = ipMetrics[IP_METRICS[name] ?? name];
        if (v !== undefined) metrics[name] = name === "features" && v === "ecn" ? 1 : v;
      }
      if (metrics["mtu"] !== undefined) route["mtu"] = metrics["mtu"];
      route["metrics"] = metrics;
    }
    if (r.nhid !== undefined) route["nhid"] = r.nhid;
    if (r.from !== undefined) route["from"] = r.from.includes("/") ? r.from : `${r.from}/128`;
    if (r.pref !== undefined) route["pref"] = r.pref;
    if (r.expires !== undefined) route["expires"] = r.expires;
    if (r.flow !== undefined) route["realms"] = { from: Number(r.flow.from ?? 0), to: Number(r.flow.to) };
    if (r.nexthops !== undefined) {
      route["nexthops"] = r.nexthops.map((nh) => ({
        ...(nh.gateway === undefined ? {} : { via: nh.gateway }),
        dev: nh.dev === undefined ? 0 : dev(nh.dev),
        weight: nh.weight,
        onlink: nh.flags.includes("onlink"),
      }));
    }
    return route as unknown as Route;
  });
}

function byDst(routes: readonly Route[]): Route[] {
  return [...routes].sort((a, b) => (a.dst === b.dst ? a.metric - b.metric : a.dst < b.dst ? -1 : 1));
}

/** Tries a TCP connection from inside `ns` and says how it ended: "refused" means the peer's kernel answered. */
function probe(ns: TestNetns, host: string, localAddress?: string): string {
  const script = `
    const s = require("node:net").connect({ host: ${JSON.stringify(host)}, port: 9, timeout: 2000${localAddress === undefined ? "" : `, localAddress: ${JSON.stringify(localAddress)}`} });
    s.on("connect", () => { console.log("connected"); s.destroy(); });
    s.on("timeout", () => { console.log("timeout"); s.destroy(); });
    s.on("error", (e) => console.log(e.code === "ECONNREFUSED" ? "refused" : e.code));`;
  return ns.exec(process.execPath, ["-e", script]).trim();
}

describe("Routes", () => {
  test("routes.add() IPv4 routes with via, dev, src, metric, mtu, onlink, protocol and scope show in ip route as dp lists them", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const d0 = indexOf(ns, "d0");
    rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.1" });
    rt.routes.add({ dst: "10.3.0.0/24", dev: "d0" });
    rt.routes.add({
      dst: "10.8.0.0/24",
      via: "10.9.9.9",
      src: "10.1.0.2",
      protocol: "static",
      metric: 7,
      dev: "d0",
      mtu: 1400,
      onlink: true,
    });
    rt.routes.add({ dst: "10.4.0.0/24", via: "10.1.0.1", dev: d0, metric: 50, protocol: 200, scope: "universe" });
    rt.routes.add({ dst: "10.5.0.0/24", dev: "d0", scope: "host" });
    rt.routes.add({ dst: "default", via: "10.1.0.1", metric: 100 });
    const listed = rt.routes.list({ family: 4 });
    expect(byDst(listed)).toEqual(byDst(ipRoutes(ns, 4, [])));
    expect(listed.find((r) => r.dst === "10.8.0.0/24")).toEqual({
      family: 4,
      dst: "10.8.0.0/24",
      table: 254,
      type: "unicast",
      protocol: 4,
      scope: 0,
      metric: 7,
      onlink: true,
      via: "10.9.9.9",
      dev: d0,
      src: "10.1.0.2",
      mtu: 1400,
      metrics: { mtu: 1400 },
    });
    // iproute2's scope rules: link for a direct route, universe with a gateway.
    expect(listed.find((r) => r.dst === "10.3.0.0/24")?.scope).toBe(253);
    expect(listed.find((r) => r.dst === "10.2.0.0/24")).toMatchObject({ scope: 0, protocol: 3, dev: d0 });
    expect(listed.find((r) => r.dst === "default")).toMatchObject({ via: "10.1.0.1", metric: 100 });
  });

  test("routes.add() local, blackhole, unreachable, prohibit and throw routes land where ip route puts them", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "10.10.0.1", type: "local", dev: "d0" });
    rt.routes.add({ dst: "10.5.0.0/24", type: "blackhole" });
    rt.routes.add({ dst: "10.11.0.0/16", type: "unreachable" });
    rt.routes.add({ dst: "10.12.0.0/16", type: "prohibit", metric: 5 });
    rt.routes.add({ dst: "10.13.0.0/16", type: "throw", table: 100 });
    expect(byDst(rt.routes.list({ family: 4 }))).toEqual(byDst(ipRoutes(ns, 4, [])));
    expect(byDst(rt.routes.list({ table: "local", family: 4 }))).toEqual(
      byDst(ipRoutes(ns, 4, ["table", "local"], 255)),
    );
    expect(rt.routes.list({ table: 100 })).toEqual(ipRoutes(ns, 4, ["table", "100"], 100));
    expect(rt.routes.get("10.10.0.1/32", { table: "local" })).toMatchObject({ type: "local", scope: 254, table: 255 });
    expect(rt.routes.list().map((r) => [r.dst, r.type])).toEqual(
      expect.arrayContaining([
        ["10.5.0.0/24", "blackhole"],
        ["10.11.0.0/16", "unreachable"],
        ["10.12.0.0/16", "prohibit"],
      ]),
    );
  });

  test("routes.add() IPv6 routes with via, dev, metric, mtu, types and multipath show in ip -6 route as dp lists them", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "fd00:2::/64", via: "fd00:1::1", dev: "d0" });
    rt.routes.add({ dst: "fd00:3::/64", via: "fd00:1::1", metric: 10, mtu: 1300, protocol: "static" });
    rt.routes.add({ dst: "fd00:4::/64", dev: "d0", src: "fd00:1::2" });
    rt.routes.add({ dst: "fd00:5::/64", type: "unreachable" });
    rt.routes.add({ dst: "fd00:6::/64", type: "blackhole", table: 100 });
    rt.routes.add({
      dst: "fd00:7::/64",
      nexthops: [
        { via: "fd00:1::1", dev: "d0" },
        { via: "fd00:1::3", dev: "d0", weight: 3 },
      ],
    });
    rt.routes.add({ dst: "::/0", via: "fe80::1", dev: "d0" });
    const listed = rt.routes.list({ family: 6 });
    expect(byDst(listed)).toEqual(byDst(ipRoutes(ns, 6, [])));
    expect(listed.find((r) => r.dst === "fd00:3::/64")).toMatchObject({
      metric: 10,
      mtu: 1300,
      protocol: 4,
      via: "fd00:1::1",
    });
    expect(listed.find((r) => r.dst === "fd00:7::/64")?.nexthops?.map((nh) => [nh.via, nh.weight])).toEqual([
      ["fd00:1::1", 1],
      ["fd00:1::3", 3],
    ]);
    expect(listed.find((r) => r.dst === "default")?.via).toBe("fe80::1");
    expect(rt.routes.list({ family: 6, table: 100 })).toEqual(ipRoutes(ns, 6, ["table", "100"], 100));
  });

  test("routes.add() an IPv4 route via an IPv6 gateway (RTA_VIA) reads back as ip shows it", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "10.12.0.0/24", via: "fd00:1::1", dev: "d0" });
    const [route] = rt.routes.list({ family: 4 }).filter((r) => r.dst === "10.12.0.0/24");
    expect(route?.via).toBe("fd00:1::1");
    expect(ipRoutes(ns, 4, ["10.12.0.0/24"])).toEqual([route]);
  });

  test("routes.add() IPv4 multipath routes with weights and onlink show in ip route", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const d0 = indexOf(ns, "d0");
    rt.routes.add({
      dst: "10.6.0.0/24",
      nexthops: [
        { via: "10.1.0.1", dev: "d0", weight: 1 },
        { via: "10.1.0.3", dev: "d0", weight: 2 },
        { via: "10.99.0.1", dev: "d0", weight: 256, onlink: true },
      ],
      table: 1000,
    });
    const [route] = rt.routes.list({ table: 1000 });
    expect(route).toEqual(ipRoutes(ns, 4, ["table", "1000"], 1000)[0]);
    expect(route?.nexthops).toEqual([
      { via: "10.1.0.1", dev: d0, weight: 1, onlink: false },
      { via: "10.1.0.3", dev: d0, weight: 2, onlink: false },
      { via: "10.99.0.1", dev: d0, weight: 256, onlink: true },
    ]);
    expect(route?.dev).toBeUndefined();
  });

  test("routes.list() filters by table (100 and 1000), family and dev, and a missing table has no routes", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["link", "add", "e0", "type", "veth", "peer", "name", "e1"]);
    ns.exec("ip", ["link", "set", "e0", "up"]);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "10.20.0.0/24", dev: "d0", table: 100 });
    rt.routes.add({ dst: "10.21.0.0/24", dev: "e0", table: 100 });
    rt.routes.add({ dst: "10.22.0.0/24", dev: "d0", table: 1000, metric: 3 });
    rt.routes.add({ dst: "fd00:22::/64", dev: "d0", table: 1000 });
    expect(rt.routes.list({ table: 100 })).toEqual(ipRoutes(ns, 4, ["table", "100"], 100));
    expect(rt.routes.list({ table: 100 }).map((r) => r.dst)).toEqual(["10.20.0.0/24", "10.21.0.0/24"]);
    expect(rt.routes.list({ table: 1000 }).map((r) => [r.family, r.dst, r.table])).toEqual([
      [4, "10.22.0.0/24", 1000],
      [6, "fd00:22::/64", 1000],
    ]);
    expect(rt.routes.list({ table: 1000, family: 4 })).toEqual(ipRoutes(ns, 4, ["table", "1000"], 1000));
    expect(rt.routes.list({ table: 100, dev: "e0" }).map((r) => r.dst)).toEqual(["10.21.0.0/24"]);
    expect(rt.routes.list().some((r) => r.table !== 254)).toBe(false);
    const all = rt.routes.list({ table: "all" });
    expect(new Set(all.map((r) => r.table))).toEqual(new Set([100, 254, 255, 1000]));
    expect(rt.routes.list({ table: 4242 })).toEqual([]);
    expect(rt.routes.list({ table: 4242, family: 4 })).toEqual([]);
    expect(rt.routes.list({ table: 4242, family: 6 })).toEqual([]);
    expect(() => rt.routes.list({ dev: "nope" })).toThrow(/^Cannot list routes in table 254 dev "nope": ENODEV/);
  });

  test("routes.replace() changes an existing route and creates a missing one; routes.add() refuses a duplicate with EEXIST", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.1" });
    try {
      rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.3" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NetlinkError);
      expect(err).toMatchObject({ code: "EEXIST", op: "RTM_NEWROUTE" });
      expect((err as Error).message).toBe('Cannot add route "10.2.0.0/24" via "10.1.0.3": EEXIST (file exists)');
    }
    rt.routes.replace({ dst: "10.2.0.0/24", via: "10.1.0.3", metric: 0 });
    rt.routes.replace({ dst: "10.3.0.0/24", type: "blackhole" });
    expect(ipRoutes(ns, 4, ["10.2.0.0/24"])).toMatchObject([{ via: "10.1.0.3" }]);
    expect(rt.routes.get("10.2.0.0/24")?.via).toBe("10.1.0.3");
    expect(rt.routes.get("10.3.0.0/24")?.type).toBe("blackhole");
    expect(JSON.parse(ns.exec("ip", ["-j", "route", "show", "10.2.0.0/24"]))).toHaveLength(1);
  });

  test("routes.delete() removes a route once, in any table and family, and returns false for a missing one", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.1" });
    rt.routes.add({ dst: "10.4.0.0/24", via: "10.1.0.1", table: 1000, metric: 9 });
    rt.routes.add({ dst: "fd00:2::/64", via: "fd00:1::1" });
    expect(rt.routes.delete({ dst: "10.2.0.0/24", via: "10.1.0.3" })).toBe(false);
    expect(rt.routes.delete({ dst: "10.2.0.0/24", via: "10.1.0.1" })).toBe(true);
    expect(rt.routes.delete({ dst: "10.2.0.0/24" })).toBe(false);
    expect(rt.routes.delete({ dst: "10.4.0.0/24", table: 1000, metric: 8 })).toBe(false);
    expect(rt.routes.delete({ dst: "10.4.0.0/24", table: 1000 })).toBe(true);
    expect(rt.routes.delete({ dst: "fd00:2::/64", dev: "d0" })).toBe(true);
    expect(rt.routes.delete({ dst: "fd00:2::/64" })).toBe(false);
    expect(rt.routes.delete({ dst: "10.9.0.0/24", dev: "nope" })).toBe(false);
    expect(rt.routes.delete({ dst: "10.9.0.0/24", table: 4242 })).toBe(false);
    expect(ipRoutes(ns, 4, ["table", "all", "10.2.0.0/24"])).toEqual([]);
    expect(ipRoutes(ns, 4, ["table", "all", "10.4.0.0/24"])).toEqual([]);
    expect(ipRoutes(ns, 6, ["fd00:2::/64"])).toEqual([]);
  });

  test("routes made by ip route add (multipath, tables, IPv6, types, metrics) are read back by dp and deleted by it", () => {
    using ns = netns();
    withVeth(ns);
    const ip = (...args: string[]): string => ns.exec("ip", args);
    ip("route", "add", "10.2.0.0/24", "via", "10.1.0.1", "proto", "static", "metric", "20");
    ip("route", "add", "10.3.0.0/24", "dev", "d0", "src", "10.1.0.2", "mtu", "1280");
    ip(
      "route",
      "add",
      "10.6.0.0/24",
      "nexthop",
      "via",
      "10.1.0.1",
      "weight",
      "2",
      "nexthop",
      "via",
      "10.1.0.3",
      "dev",
      "d0",
      "weight",
      "5",
    );
    ip("route", "add", "10.8.0.0/24", "via", "10.9.9.9", "dev", "d0", "onlink", "table", "100");
    ip("route", "add", "blackhole", "10.5.0.0/24", "table", "1000");
    ip("route", "add", "unreachable", "10.11.0.0/16", "metric", "4");
    ip("-6", "route", "add", "fd00:2::/64", "via", "fd00:1::1", "metric", "7", "mtu", "1400");
    ip(
      "-6",
      "route",
      "add",
      "fd00:7::/64",
      "nexthop",
      "via",
      "fd00:1::1",
      "dev",
      "d0",
      "nexthop",
      "via",
      "fd00:1::3",
      "dev",
      "d0",
      "weight",
      "2",
    );
    using rt = openRouting({ netns: ns.ns });
    expect(byDst(rt.routes.list({ family: 4 }))).toEqual(byDst(ipRoutes(ns, 4, [])));
    expect(byDst(rt.routes.list({ family: 6 }))).toEqual(byDst(ipRoutes(ns, 6, [])));
    expect(rt.routes.list({ table: 100 })).toEqual(ipRoutes(ns, 4, ["table", "100"], 100));
    expect(rt.routes.list({ table: 1000 })).toEqual(ipRoutes(ns, 4, ["table", "1000"], 1000));
    expect(rt.routes.get("10.6.0.0/24")?.nexthops?.map((nh) => nh.weight)).toEqual([2, 5]);
    expect(rt.routes.get("10.8.0.0/24", { table: 100 })).toMatchObject({ via: "10.9.9.9", onlink: true, table: 100 });
    expect(rt.routes.get("10.5.0.0/24", { table: 1000 })?.type).toBe("blackhole");
    // A listed route is a spec that matches itself.
    for (const r of [...rt.routes.list(), ...rt.routes.list({ table: 100 }), ...rt.routes.list({ table: 1000 })]) {
      if (r.protocol === 2) continue; // the kernel's own connected routes
      expect(rt.routes.delete(r)).toBe(true);
      expect(rt.routes.delete(r)).toBe(false);
    }
    expect(
      ipRoutes(ns, 4, ["table", "all", "proto", "boot"]).concat(ipRoutes(ns, 4, ["table", "all", "proto", "static"])),
    ).toEqual([]);
    expect(ns.exec("ip", ["-6", "route", "show", "proto", "boot"]).trim()).toBe("");
  });

  test("routes.add() reports a missing dev (ENODEV) and an unreachable gateway with the kernel's ext-ack, leaving nothing behind", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const before = rt.routes.list({ table: "all" });
    expect(() => rt.routes.add({ dst: "10.9.0.0/24", via: "10.1.0.1", dev: "nope" })).toThrow(
      expect.objectContaining({
        name: "NetlinkError",
        code: "ENODEV",
        message: 'Cannot add route "10.9.0.0/24" via "10.1.0.1" dev "nope": no link "nope": ENODEV (no such device)',
      }),
    );
    expect(() => rt.routes.add({ dst: "10.9.0.0/24", dev: 999 })).toThrow(expect.objectContaining({ code: "ENODEV" }));
    expect(() => rt.routes.add({ dst: "10.9.0.0/24", via: "10.99.0.1" })).toThrow(
      expect.objectContaining({
        code: "ENETUNREACH",
        extAck: "Nexthop has invalid gateway",
        message: expect.stringMatching(/^Cannot add route "10.9.0.0\/24" via "10.99.0.1": ENETUNREACH/),
      }),
    );
    expect(() => rt.routes.add({ dst: "fd00:9::/64", via: "fd00:99::1" })).toThrow(
      expect.objectContaining({ name: "NetlinkError" }),
    );
    expect(rt.routes.list({ table: "all" })).toEqual(before);
  });

  test("routes.addMany() adds routes over several datagrams, replaces with replace, and names the first refused route", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const prefix = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}.0/24`;
    const specs = Array.from({ length: 1000 }, (_, i) => ({ dst: prefix(i), via: "10.1.0.1", dev: "d0", table: 100 }));
    rt.routes.addMany(specs);
    expect(ns.exec("ip", ["route", "show", "table", "100"]).trim().split("\n")).toHaveLength(1000);
    expect(rt.routes.list({ table: 100 })).toHaveLength(1000);
    rt.routes.addMany(
      specs.map((s) => ({ ...s, via: "10.1.0.3" })),
      { replace: true },
    );
    expect(new Set(rt.routes.list({ table: 100 }).map((r) => r.via))).toEqual(new Set(["10.1.0.3"]));
    // A refusal in the second datagram names its route; the first datagram's routes stay.
    const mixed = Array.from({ length: 200 }, (_, i) => ({
      dst: `10.200.${i}.0/24`,
      type: "blackhole" as const,
      table: 200,
    }));
    mixed[150] = { dst: "10.201.0.0/24", via: "10.99.0.1" } as never;
    expect(() => rt.routes.addMany(mixed)).toThrow(
      /^Cannot add route "10.201.0.0\/24" via "10.99.0.1" \(specs\[150\] of 200\): ENETUNREACH \(network is unreachable\): Nexthop has invalid gateway$/,
    );
    expect(rt.routes.list({ table: 200 }).length).toBe(199);
    // A missing interface is found before any route is sent.
    expect(() =>
      rt.routes.addMany([
        { dst: "10.202.0.0/24", type: "blackhole", table: 300 },
        { dst: "10.203.0.0/24", dev: "nope", table: 300 },
      ]),
    ).toThrow(/^Cannot add route "10.203.0.0\/24" dev "nope" table 300: no link "nope": ENODEV/);
    expect(rt.routes.list({ table: 300 })).toEqual([]);
    // A duplicate: the error names exactly the refused route.
    expect(() => rt.routes.addMany(specs.slice(0, 10))).toThrow(
      expect.objectContaining({
        code: "EEXIST",
        message: expect.stringMatching(/^Cannot add route "[^"]+" .*\(specs\[0\] of 10\): EEXIST/),
      }),
    );
    // The socket stays usable: the datagram's other refusals are skipped by the next request.
    rt.routes.add({ dst: "10.99.0.0/24", type: "blackhole", table: 100 });
    expect(rt.routes.list({ table: 100 })).toHaveLength(1001);
  });

  test("a route added by routes.add() carries traffic to a /32 behind a peer namespace", () => {
    using a = netns({ label: "ra" });
    using b = netns({ label: "rb" });
    vethPair(a, b, { addressA: "10.50.0.1/24", addressB: "10.50.0.2/24", nameA: "va", nameB: "vb" });
    b.exec("ip", ["addr", "add", "10.60.0.1/32", "dev", "lo"]);
    b.exec("ip", ["-6", "addr", "add", "fd00:60::1/128", "dev", "lo"]);
    a.exec("ip", ["-6", "addr", "add", "fd00:50::1/64", "dev", "va", "nodad"]);
    b.exec("ip", ["-6", "addr", "add", "fd00:50::2/64", "dev", "vb", "nodad"]);
    b.exec("ip", ["-6", "route", "add", "fd00:50::/64", "dev", "vb"]);
    expect(probe(a, "10.60.0.1")).toBe("ENETUNREACH");
    using rt = openRouting({ netns: a.ns });
    rt.routes.add({ dst: "10.60.0.1/32", via: "10.50.0.2", dev: "va" });
    expect(probe(a, "10.60.0.1")).toBe("refused");
    rt.routes.add({ dst: "fd00:60::1/128", via: "fd00:50::2" });
    expect(probe(a, "fd00:60::1")).toBe("refused");
    expect(rt.routes.delete({ dst: "10.60.0.1/32" })).toBe(true);
    expect(probe(a, "10.60.0.1")).toBe("ENETUNREACH");
  });

  /** Routes with every attribute ip -json shows, in the words of ip route add (IPv4 and IPv6). */
  const IP_ROUTES = [
    "10.2.0.0/24 via 10.1.0.1 dev d0 mtu lock 1400 window 1000 rtt 100ms rttvar 50ms ssthresh 5 cwnd 10 advmss 1300 reordering 3 hoplimit 10 initcwnd 5 initrwnd 6 quickack 1 congctl bbr fastopen_no_cookie 1",
    "10.3.0.0/24 via 10.9.0.1 dev d0 onlink",
    "10.6.0.0/24 dev d0 realms 1/2",
    "10.16.0.0/24 dev d0 realm 7",
    "10.7.0.0/24 nhid 10",
    "fd00:2::/64 via fd00:1::1 dev d0 pref high expires 300",
    "fd00:3::/64 via fd00:1::1 dev d0 onlink pref low",
    "::ffff:10.0.0.0/120 dev d0",
  ];
  const NEXTHOPS = ["id 1 via 10.1.0.1 dev d0", "id 2 via 10.1.0.3 dev d0", "id 10 group 1/2,3"];

  function ipSetup(ns: TestNetns): void {
    withVeth(ns);
    for (const nh of NEXTHOPS) ns.exec("ip", ["nexthop", "add", ...nh.split(" ")]);
    for (const r of IP_ROUTES) ns.exec("ip", ["route", "add", ...r.split(" ")]);
  }

  /** The metrics lock is not in ip -json: compare it through ip route show. */
  function withoutLock(routes: readonly Route[]): Route[] {
    return routes.map((r) => {
      if (r.metrics?.lock === undefined) return r;
      const { lock: _, ...metrics } = r.metrics;
      return { ...r, metrics };
    });
  }

  /** Expiry counts down: compare it to the second. */
  function settled(routes: readonly Route[]): Route[] {
    return routes.map((r) => (r.expires === undefined ? r : { ...r, expires: r.expires - (r.expires % 10) }));
  }

  test("routes.list() reads metrics, realms, nhid, expiry, preference and onlink of routes ip made, as ip -json shows them", () => {
    using ns = netns();
    ipSetup(ns);
    using rt = openRouting({ netns: ns.ns });
    for (const family of [4, 6] as const) {
      expect(settled(withoutLock(byDst(rt.routes.list({ family }))))).toEqual(settled(byDst(ipRoutes(ns, family, []))));
    }
    const r = rt.routes.get("10.2.0.0/24");
    expect(r?.metrics).toEqual({
      mtu: 1400,
      window: 1000,
      rtt: 100,
      rttvar: 50,
      ssthresh: 5,
      cwnd: 10,
      advmss: 1300,
      reordering: 3,
      hoplimit: 10,
      initcwnd: 5,
      initrwnd: 6,
      quickack: 1,
      congctl: "bbr",
      fastopenNoCookie: 1,
      lock: ["mtu"],
    });
    expect(rt.routes.get("fd00:3::/64")).toMatchObject({ onlink: true, pref: "low" });
    expect(rt.routes.get("::ffff:10.0.0.0/120")?.dst).toBe("::ffff:10.0.0.0/120");
  });

  test("routes.add() makes what ip route add makes: ip -json and ip route show print the same in both namespaces", () => {
    using byIp = netns();
    ipSetup(byIp);
    using byDp = netns();
    withVeth(byDp);
    using rt = openRouting({ netns: byDp.ns });
    rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" });
    rt.nexthops.add({ id: 2, via: "10.1.0.3", dev: "d0" });
    rt.nexthops.add({ id: 10, group: [{ id: 1 }, { id: 2, weight: 3 }] });
    const metrics = {
      mtu: 1400,
      window: 1000,
      rtt: 100,
      rttvar: 50,
      ssthresh: 5,
      cwnd: 10,
      advmss: 1300,
      reordering: 3,
      hoplimit: 10,
      initcwnd: 5,
      initrwnd: 6,
      quickack: 1,
      congctl: "bbr",
      fastopenNoCookie: 1,
      lock: ["mtu"],
    } as const;
    rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.1", dev: "d0", metrics });
    rt.routes.add({ dst: "10.3.0.0/24", via: "10.9.0.1", dev: "d0", onlink: true });
    rt.routes.add({ dst: "10.6.0.0/24", dev: "d0", realms: { from: 1, to: 2 } });
    rt.routes.add({ dst: "10.16.0.0/24", dev: "d0", realms: { from: 0, to: 7 } });
    rt.routes.add({ dst: "10.7.0.0/24", nhid: 10 });
    rt.routes.add({ dst: "fd00:2::/64", via: "fd00:1::1", dev: "d0", pref: "high", expires: 300 });
    rt.routes.add({ dst: "fd00:3::/64", via: "fd00:1::1", dev: "d0", onlink: true, pref: "low" });
    rt.routes.add({ dst: "::ffff:10.0.0.0/120", dev: "d0" });
    for (const family of [4, 6] as const) {
      expect(settled(byDst(ipRoutes(byDp, family, [])))).toEqual(settled(byDst(ipRoutes(byIp, family, []))));
      const text = (ns: TestNetns): string =>
        ns.exec("ip", [`-${family}`, "route", "show"]).replace(/expires \d+sec/g, "expires");
      expect(text(byDp)).toBe(text(byIp));
    }
    expect(byDp.exec("ip", ["route", "show", "10.2.0.0/24"])).toContain("mtu lock 1400");
  });

  test("routes.add() sets ip and ip6 encapsulation as ip route add does, and both read it back", () => {
    using byIp = netns();
    withVeth(byIp);
    byIp.exec("ip", [
      "route",
      "add",
      "10.4.0.0/24",
      "dev",
      "d0",
      "encap",
      "ip",
      "id",
      "5",
      "dst",
      "10.1.0.9",
      "src",
      "10.1.0.2",
      "ttl",
      "3",
      "tos",
      "4",
    ]);
    byIp.exec("ip", [
      "route",
      "add",
      "10.5.0.0/24",
      "dev",
      "d0",
      "encap",
      "ip6",
      "id",
      "6",
      "dst",
      "fd00:1::9",
      "src",
      "fd00:1::2",
      "hoplimit",
      "3",
      "tc",
      "1",
    ]);
    using byDp = netns();
    withVeth(byDp);
    using rtIp = openRouting({ netns: byIp.ns });
    using rt = openRouting({ netns: byDp.ns });
    // ip -json repeats "dst" for the tunnel's destination: compare the text.
    for (const r of rtIp.routes.list({ family: 4 }).filter((r) => r.encap !== undefined)) rt.routes.add(r);
    expect(byDp.exec("ip", ["route", "show"])).toBe(byIp.exec("ip", ["route", "show"]));
    expect(rt.routes.get("10.4.0.0/24")?.encap).toEqual({
      type: "ip",
      id: 5n,
      dst: "10.1.0.9",
      src: "10.1.0.2",
      ttl: 3,
      tos: 4,
      flags: 0,
    });
    expect(rt.routes.get("10.5.0.0/24")?.encap).toEqual({
      type: "ip6",
      id: 6n,
      dst: "fd00:1::9",
      src: "fd00:1::2",
      hoplimit: 3,
      tc: 1,
      flags: 0,
    });
    expect(rt.routes.delete({ dst: "10.4.0.0/24", dev: "d0" })).toBe(true);
  });

  test("routes.add() attaches lwt BPF programs (encap bpf in/out/xmit) and lists them by name as ip route shows them", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const instructions = asm.program(asm.movImm(0, 0), asm.exit()); // BPF_OK
    using pin = loadProgram({ name: "dp_in", type: "lwtIn", license: "GPL", instructions });
    using pout = loadProgram({ name: "dp_out", type: "lwtOut", license: "GPL", instructions });
    using pxmit = loadProgram({ name: "dp_xmit", type: "lwtXmit", license: "GPL", instructions });
    rt.routes.add({
      dst: "10.9.0.0/24",
      dev: "d0",
      encap: {
        type: "bpf",
        in: { name: "lwt_in", program: pin },
        out: { name: "lwt_out", program: pout },
        xmit: { name: "lwt_xmit", program: pxmit },
        headroom: 14,
      },
    });
    // The kernel reports the programs' names, not the headroom.
    expect(rt.routes.get("10.9.0.0/24")?.encap).toEqual({
      type: "bpf",
      in: { name: "lwt_in" },
      out: { name: "lwt_out" },
      xmit: { name: "lwt_xmit" },
    });
    expect(ns.exec("ip", ["route", "show", "10.9.0.0/24"]).replace(/\s+/g, " ").trim()).toBe(
      "10.9.0.0/24 encap bpf in lwt_in out lwt_out xmit lwt_xmit dev d0 scope link",
    );
    // A listed route (names only) is passed back to delete: the encapsulation is left out.
    expect(rt.routes.delete(rt.routes.get("10.9.0.0/24")!)).toBe(true);
    expect(() =>
      rt.routes.add({ dst: "10.9.0.0/24", dev: "d0", encap: { type: "bpf", in: { name: "lwt_in" } } }),
    ).toThrow(/needs its loaded program/);
  });

  test("routes.list() reads a route through a nexthop group with nexthop_compat_mode 0 as nhid alone, as ip -json shows it", () => {
    using ns = netns();
    ipSetup(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.sysctl.set("net.ipv4.nexthop_compat_mode", 0);
    const route = rt.routes.get("10.7.0.0/24");
    expect(route).toEqual({
      family: 4,
      dst: "10.7.0.0/24",
      table: 254,
      type: "unicast",
      protocol: 3,
      scope: 0,
      metric: 0,
      onlink: false,
      nhid: 10,
    });
    expect(ipRoutes(ns, 4, ["10.7.0.0/24"])).toEqual([route]);
  });

  test("routes.list() tells IPv6 source-specific routes apart (from), as ip -json does, and delete() takes the one given", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["-6", "route", "add", "fd00:5::/64", "from", "fd00:6::/64", "via", "fd00:1::1", "dev", "d0"]);
    ns.exec("ip", ["-6", "route", "add", "fd00:5::/64", "via", "fd00:1::1", "dev", "d0"]);
    using rt = openRouting({ netns: ns.ns });
    const mine = rt.routes.list({ family: 6 }).filter((r) => r.dst === "fd00:5::/64");
    expect(mine.map((r) => r.from)).toEqual(["fd00:6::/64", undefined]);
    expect(byDst(rt.routes.list({ family: 6 }))).toEqual(byDst(ipRoutes(ns, 6, [])));
    expect(rt.routes.delete(mine[0]!)).toBe(true);
    expect(ipRoutes(ns, 6, ["fd00:5::/64"])).toEqual([mine[1]]);
    rt.routes.add({ dst: "fd00:5::/64", from: "fd00:7::/64", via: "fd00:1::1", dev: "d0" });
    expect(ns.exec("ip", ["-6", "route", "show", "fd00:5::/64"])).toContain(
      "fd00:5::/64 from fd00:7::/64 via fd00:1::1 dev d0",
    );
  });

  test("routes.add() sets realms and encapsulation per next hop of a multipath route, as ip route add does, and reads them back", () => {
    const args = [
      "10.6.0.0/24",
      "nexthop",
      "via",
      "10.1.0.1",
      "dev",
      "d0",
      "realms",
      "1/2",
      "nexthop",
      "via",
      "10.1.0.3",
      "dev",
      "d0",
      "weight",
      "2",
      "encap",
      "ip",
      "id",
      "5",
      "dst",
      "10.1.0.9",
      "ttl",
      "3",
    ];
    using byIp = netns();
    withVeth(byIp);
    byIp.exec("ip", ["route", "add", ...args]);
    using byDp = netns();
    withVeth(byDp);
    using rtIp = openRouting({ netns: byIp.ns });
    using rt = openRouting({ netns: byDp.ns });
    const listed = rtIp.routes.get("10.6.0.0/24")!;
    expect(listed.nexthops).toEqual([
      { via: "10.1.0.1", dev: indexOf(byIp, "d0"), weight: 1, onlink: false, realms: { from: 1, to: 2 } },
      {
        via: "10.1.0.3",
        dev: indexOf(byIp, "d0"),
        weight: 2,
        onlink: false,
        encap: { type: "ip", id: 5n, dst: "10.1.0.9", src: "0.0.0.0", ttl: 3, tos: 0, flags: 0 },
      },
    ]);
    rt.routes.add(listed);
    expect(byDp.exec("ip", ["route", "show", "10.6.0.0/24"])).toBe(byIp.exec("ip", ["route", "show", "10.6.0.0/24"]));
    expect(rt.routes.get("10.6.0.0/24")).toEqual(listed);
  });
});
