import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { type Neighbor, openRouting } from "@dp/routing";

beforeEach((t) => requireRoot(t));

interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state: string[];
  router?: null;
}

/** A veth pair d0/d1 inside the namespace, both up. */
function withVeth(ns: TestNetns): void {
  ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec("ip", ["link", "set", "d0", "up"]);
  ns.exec("ip", ["link", "set", "d1", "up"]);
}

function ipNeigh(ns: TestNetns, ...args: string[]): IpNeigh[] {
  return JSON.parse(ns.exec("ip", ["-json", "neigh", "show", ...args])) as IpNeigh[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("neighbours", () => {
  test("add() makes a permanent IPv4 entry that ip neigh show lists", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0" });
    expect(ipNeigh(ns, "dev", "d0")).toEqual([{ dst: "10.1.0.1", lladdr: "02:00:00:00:00:01", state: ["PERMANENT"] }]);
    expect(rt.neighbors.list({ dev: "d0", family: 4 })).toMatchObject([
      { family: 4, ip: "10.1.0.1", mac: "02:00:00:00:00:01", state: "permanent", flags: [] },
    ]);
  });

  test("add() makes IPv6, stale and noarp entries with the states ip shows", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.neighbors.add({ ip: "fd00::1", mac: "02:00:00:00:00:03", dev: "d0" });
    rt.neighbors.add({ ip: "10.1.0.3", mac: "02:00:00:00:00:04", dev: "d0", state: "stale" });
    rt.neighbors.add({ ip: "10.1.0.4", mac: "02:00:00:00:00:05", dev: "d0", state: "noarp" });
    const theirs = new Map(ipNeigh(ns, "nud", "all", "dev", "d0").map((n) => [n.dst, n]));
    expect(theirs.get("fd00::1")).toMatchObject({ lladdr: "02:00:00:00:00:03", state: ["PERMANENT"] });
    expect(theirs.get("10.1.0.3")).toMatchObject({ lladdr: "02:00:00:00:00:04", state: ["STALE"] });
    expect(theirs.get("10.1.0.4")).toMatchObject({ lladdr: "02:00:00:00:00:05", state: ["NOARP"] });
    const mine = new Map(rt.neighbors.list({ dev: "d0" }).map((n) => [n.ip, n]));
    expect(mine.get("fd00::1")).toMatchObject({ family: 6, state: "permanent" });
    expect(mine.get("10.1.0.3")?.state).toBe("stale");
    expect(mine.get("10.1.0.4")?.state).toBe("noarp");
  });

  test("replace() creates an entry, then changes its MAC and state", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.neighbors.replace({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0", state: "stale" });
    expect(ipNeigh(ns, "dev", "d0")).toMatchObject([
      { dst: "10.1.0.1", lladdr: "02:00:00:00:00:01", state: ["STALE"] },
    ]);
    rt.neighbors.replace({ ip: "10.1.0.1", mac: "02:00:00:00:00:02", dev: "d0" });
    expect(ipNeigh(ns, "dev", "d0")).toMatchObject([
      { dst: "10.1.0.1", lladdr: "02:00:00:00:00:02", state: ["PERMANENT"] },
    ]);
    expect(rt.neighbors.get({ ip: "10.1.0.1", dev: "d0" })).toMatchObject({
      mac: "02:00:00:00:00:02",
      state: "permanent",
    });
  });

  test("list() and get() read back entries ip neigh add made, router flag included", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["neigh", "add", "10.1.0.1", "lladdr", "02:00:00:00:00:01", "dev", "d0", "nud", "permanent"]);
    ns.exec("ip", ["neigh", "add", "10.1.0.2", "lladdr", "02:00:00:00:00:02", "dev", "d1", "nud", "reachable"]);
    ns.exec("ip", ["-6", "neigh", "add", "fd00::1", "lladdr", "02:00:00:00:00:03", "dev", "d0", "router"]);
    using rt = openRouting({ netns: ns.ns });
    const pick = (n: Neighbor): string => JSON.stringify([n.ip, n.mac, n.state.toUpperCase()]);
    const theirs = ipNeigh(ns).map((n) => JSON.stringify([n.dst, n.lladdr, n.state[0]]));
    const mine = rt.neighbors.list().filter((n) => n.state !== "noarp");
    expect(new Set(mine.map(pick))).toEqual(new Set(theirs));
    expect(rt.neighbors.get({ ip: "fd00::1", dev: "d0" })).toMatchObject({
      family: 6,
      flags: ["router"],
      state: "permanent",
    });
    expect(rt.neighbors.get({ ip: "10.1.0.2", dev: "d1" })?.mac).toBe("02:00:00:00:00:02");
    expect(rt.neighbors.get({ ip: "10.1.0.2", dev: "d0" })).toBeUndefined();
    expect(rt.neighbors.list({ dev: "d1" }).map((n) => n.ip)).not.toContain("10.1.0.1");
  });

  test("list() includes the noarp multicast entries ip neigh show nud all shows", async () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    // The kernel adds multicast entries (MLD, IGMP) shortly after the link comes up: compare once they settle.
    let theirs = new Set<string>();
    let mine = new Set<string>();
    for (let i = 0; i < 40; i++) {
      theirs = new Set(ipNeigh(ns, "nud", "all", "dev", "d0").map((n) => `${n.dst} ${n.lladdr} ${n.state.join()}`));
      mine = new Set(rt.neighbors.list({ dev: "d0" }).map((n) => `${n.ip} ${n.mac} ${n.state.toUpperCase()}`));
      const again = new Set(
        ipNeigh(ns, "nud", "all", "dev", "d0").map((n) => `${n.dst} ${n.lladdr} ${n.state.join()}`),
      );
      if (mine.size === theirs.size && [...mine].every((m) => theirs.has(m)) && again.size === theirs.size) break;
      await sleep(50);
    }
    expect(mine).toEqual(theirs);
  });

  test("list() shows the peer learned from real traffic with its MAC", async () => {
    using a = netns({ label: "na" });
    using b = netns({ label: "nb" });
    const pair = vethPair(a, b, { addressA: "10.9.0.1/24", addressB: "10.9.0.2/24" });
    const peerMac = (JSON.parse(b.exec("ip", ["-json", "link", "show", pair.b.name])) as { address: string }[])[0]!
      .address;
    using rt = openRouting({ netns: a.ns });
    // One UDP datagram makes the kernel resolve 10.9.0.2 with ARP.
    a.exec("bash", ["-c", "echo hello > /dev/udp/10.9.0.2/9"]);
    let found: Neighbor | undefined;
    for (let i = 0; i < 50 && (found === undefined || found.state === "incomplete"); i++) {
      found = rt.neighbors.list({ dev: pair.a.name, family: 4 }).find((n) => n.ip === "10.9.0.2");
      if (found === undefined || found.state === "incomplete") await sleep(50);
    }
    expect(found).toMatchObject({ ip: "10.9.0.2", mac: peerMac, index: pair.a.index });
    expect(["reachable", "stale", "delay", "probe"]).toContain(found?.state);
    const [theirs] = ipNeigh(a, "dev", pair.a.name);
    expect(theirs?.lladdr).toBe(peerMac);
  });

  test("delete() removes an entry ip then no longer shows, and returns false the second time", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["neigh", "add", "10.1.0.1", "lladdr", "02:00:00:00:00:01", "dev", "d0"]);
    ns.exec("ip", ["-6", "neigh", "add", "fd00::1", "lladdr", "02:00:00:00:00:03", "dev", "d0"]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.neighbors.delete({ ip: "10.1.0.1", dev: "d0" })).toBe(true);
    expect(rt.neighbors.delete({ ip: "fd00::1", dev: "d0" })).toBe(true);
    expect(ipNeigh(ns, "dev", "d0")).toEqual([]);
    expect(rt.neighbors.delete({ ip: "10.1.0.1", dev: "d0" })).toBe(false);
  });

  test("add() of an existing entry is a NetlinkError EEXIST naming it", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0" });
    expect(() => rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:02", dev: "d0" })).toThrow(
      /^Cannot add neighbour "10.1.0.1" on "d0": EEXIST/,
    );
    expect(ipNeigh(ns, "dev", "d0")).toMatchObject([{ lladdr: "02:00:00:00:00:01" }]);
  });

  test("a missing link is a NetlinkError ENODEV naming it", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    let err: unknown;
    try {
      rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "nope0" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe("ENODEV");
    expect((err as NetlinkError).message).toContain('"nope0"');
    expect(() => rt.neighbors.delete({ ip: "10.1.0.1", dev: "nope0" })).toThrow(NetlinkError);
    expect(() => rt.neighbors.get({ ip: "10.1.0.1", dev: 999 })).toThrow(/ENODEV/);
  });

  test("add() of a malformed MAC is a SyntaxError and adds nothing", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:zz", dev: "d0" })).toThrow(SyntaxError);
    expect(() => rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01:02", dev: "d0" })).toThrow(SyntaxError);
    expect(ipNeigh(ns, "dev", "d0")).toEqual([]);
  });
});
