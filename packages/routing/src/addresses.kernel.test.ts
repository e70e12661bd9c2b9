import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { type Address, openRouting } from "@dp/routing";

beforeEach((t) => requireRoot(t));

interface IpAddrInfo {
  family: "inet" | "inet6";
  local: string;
  address?: string;
  prefixlen: number;
  scope: string;
  broadcast?: string;
  label?: string;
  secondary?: boolean;
  nodad?: boolean;
  noprefixroute?: boolean;
  tentative?: boolean;
  dynamic?: boolean;
}

/** A veth pair d0/d1 inside the namespace, both up. */
function withVeth(ns: TestNetns): void {
  ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec("ip", ["link", "set", "d0", "up"]);
  ns.exec("ip", ["link", "set", "d1", "up"]);
}

function ipAddrs(ns: TestNetns, dev: string): IpAddrInfo[] {
  const out = JSON.parse(ns.exec("ip", ["-json", "addr", "show", "dev", dev])) as { addr_info: IpAddrInfo[] }[];
  return out[0]?.addr_info ?? [];
}

function find(ns: TestNetns, dev: string, local: string): IpAddrInfo | undefined {
  return ipAddrs(ns, dev).find((a) => a.local === local);
}

/** What ip's view of an address says, in dp's terms. */
function fromIp(a: IpAddrInfo): Pick<Address, "address" | "peer" | "scopeName"> {
  return {
    address: `${a.local}/${a.prefixlen}`,
    ...(a.address !== undefined && a.address !== a.local ? { peer: a.address } : {}),
    scopeName: a.scope as Address["scopeName"] & string,
  };
}

describe("addresses", () => {
  test("add() makes an IPv4 address that ip addr show lists with its prefix length and global scope", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.addresses.add("10.1.0.2/24", { dev: "d0" });
    const a = find(ns, "d0", "10.1.0.2");
    expect(a).toMatchObject({ family: "inet", prefixlen: 24, scope: "global", label: "d0" });
    expect(a?.dynamic).toBeUndefined();
    const [mine] = rt.addresses.list({ dev: "d0", family: 4 });
    expect(mine).toMatchObject({ address: "10.1.0.2/24", family: 4, label: "d0", scope: 0, scopeName: "global" });
    expect(mine?.flags).toContain("permanent");
    expect(mine?.validLifetime).toBe(Infinity);
  });

  test("add() with a peer makes a point-to-point address that ip shows as local and address", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.addresses.add("10.1.0.2/32", { dev: "d0", peer: "10.1.0.1" });
    expect(find(ns, "d0", "10.1.0.2")).toMatchObject({ local: "10.1.0.2", address: "10.1.0.1", prefixlen: 32 });
    expect(rt.addresses.list({ dev: "d0", family: 4 })).toMatchObject([{ address: "10.1.0.2/32", peer: "10.1.0.1" }]);
    // ip's route for the peer is there too.
    expect(ns.exec("ip", ["-json", "route", "show", "10.1.0.1"])).toContain('"dst":"10.1.0.1"');
  });

  test("add() with nodad makes an IPv6 address that is not tentative", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.addresses.add("fd00::2/64", { dev: "d0", flags: ["nodad"] });
    const a = find(ns, "d0", "fd00::2");
    expect(a).toMatchObject({ family: "inet6", prefixlen: 64, scope: "global", nodad: true });
    expect(a?.tentative).toBeUndefined();
    const mine = rt.addresses.list({ dev: "d0", family: 6 }).find((x) => x.address === "fd00::2/64");
    expect(mine?.flags).toContain("nodad");
    expect(mine?.flags).not.toContain("tentative");
    expect(mine?.peer).toBeUndefined();
  });

  test("add() sets scope, label, broadcast and noprefixroute as ip shows them", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    rt.addresses.add("10.1.0.2/24", {
      dev: "d0",
      scope: "link",
      label: "d0:x",
      broadcast: "10.1.0.255",
      flags: ["noprefixroute"],
    });
    expect(find(ns, "d0", "10.1.0.2")).toMatchObject({
      scope: "link",
      label: "d0:x",
      broadcast: "10.1.0.255",
      noprefixroute: true,
    });
    // noprefixroute: no subnet route was added.
    expect(ns.exec("ip", ["-json", "route", "show", "10.1.0.0/24"]).trim()).toBe("[]");
    expect(rt.addresses.list({ dev: "d0", family: 4 })).toMatchObject([
      { address: "10.1.0.2/24", scope: 253, scopeName: "link", label: "d0:x", broadcast: "10.1.0.255" },
    ]);
    expect(rt.addresses.list({ dev: "d0", family: 4 })[0]?.flags).toEqual(["permanent", "noprefixroute"]);
  });

  test("add() takes the link by index", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    const index = (JSON.parse(ns.exec("ip", ["-json", "link", "show", "d1"])) as { ifindex: number }[])[0]!.ifindex;
    rt.addresses.add("10.2.0.1/24", { dev: index });
    expect(find(ns, "d1", "10.2.0.1")?.prefixlen).toBe(24);
    expect(rt.addresses.list({ dev: "d1", family: 4 }).map((a) => a.index)).toEqual([index]);
  });

  test("list() reads back what ip addr add made: primaries, secondaries, peers, IPv6 and scopes", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
    ns.exec("ip", ["addr", "add", "10.1.0.3/24", "dev", "d0"]);
    ns.exec("ip", ["addr", "add", "10.2.0.2", "peer", "10.2.0.1/32", "dev", "d0"]);
    ns.exec("ip", ["addr", "add", "169.254.9.9/16", "dev", "d0", "scope", "link", "label", "d0:ll"]);
    ns.exec("ip", ["-6", "addr", "add", "fd00::2/64", "dev", "d0", "nodad", "noprefixroute"]);
    ns.exec("ip", ["-6", "addr", "add", "fd01::2/64", "dev", "d1", "nodad"]);
    using rt = openRouting({ netns: ns.ns });
    for (const dev of ["d0", "d1"]) {
      const mine = rt.addresses.list({ dev });
      const theirs = ipAddrs(ns, dev);
      const pick = (a: Address): Pick<Address, "address" | "peer" | "scopeName"> => ({
        address: a.address,
        ...(a.peer !== undefined ? { peer: a.peer } : {}),
        scopeName: a.scopeName as Address["scopeName"] & string,
      });
      expect(new Set(mine.map((a) => JSON.stringify(pick(a))))).toEqual(
        new Set(theirs.map((a) => JSON.stringify(fromIp(a)))),
      );
    }
    const byAddr = new Map(rt.addresses.list().map((a) => [a.address, a]));
    expect(byAddr.get("10.1.0.3/24")?.flags).toEqual(["secondary", "permanent"]);
    expect(byAddr.get("169.254.9.9/16")?.label).toBe("d0:ll");
    expect(byAddr.get("fd00::2/64")?.flags).toEqual(["nodad", "permanent", "noprefixroute"]);
    expect(byAddr.get("127.0.0.1/8")?.scopeName).toBe("host");
    expect(byAddr.get("::1/128")?.family).toBe(6);
  });

  test("list() filters by family and link", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
    ns.exec("ip", ["-6", "addr", "add", "fd00::2/64", "dev", "d1", "nodad"]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.addresses.list({ family: 4 }).every((a) => a.family === 4)).toBe(true);
    expect(rt.addresses.list({ family: 6 }).some((a) => a.address === "fd00::2/64")).toBe(true);
    expect(rt.addresses.list({ dev: "d1", family: 4 })).toEqual([]);
    expect(rt.addresses.list({ dev: "d0", family: 4 }).map((a) => a.address)).toEqual(["10.1.0.2/24"]);
    // IPv4 comes first.
    const families = rt.addresses.list().map((a) => a.family);
    expect(families).toEqual([...families].sort());
  });

  test("delete() removes addresses ip then no longer shows, and returns false the second time", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
    ns.exec("ip", ["addr", "add", "10.2.0.2/32", "peer", "10.2.0.1", "dev", "d0"]);
    ns.exec("ip", ["-6", "addr", "add", "fd00::2/64", "dev", "d0", "nodad"]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.addresses.delete("10.1.0.2/24", { dev: "d0" })).toBe(true);
    expect(rt.addresses.delete("10.2.0.2/32", { dev: "d0", peer: "10.2.0.1" })).toBe(true);
    expect(rt.addresses.delete("fd00::2/64", { dev: "d0" })).toBe(true);
    expect(ipAddrs(ns, "d0").filter((a) => ["10.1.0.2", "10.2.0.2", "fd00::2"].includes(a.local))).toEqual([]);
    expect(rt.addresses.delete("10.1.0.2/24", { dev: "d0" })).toBe(false);
    expect(rt.addresses.delete("fd00::2/64", { dev: "d0" })).toBe(false);
  });

  test("delete() of an IPv4 address without a prefix length matches any, as ip addr del does", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.addresses.delete("10.1.0.2/16", { dev: "d0" })).toBe(false);
    expect(rt.addresses.delete("10.1.0.2", { dev: "d0" })).toBe(true);
    expect(find(ns, "d0", "10.1.0.2")).toBeUndefined();
  });

  test("add() of an address the link has is a NetlinkError EEXIST with the kernel's text", () => {
    using ns = netns();
    withVeth(ns);
    ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
    ns.exec("ip", ["-6", "addr", "add", "fd00::2/64", "dev", "d0", "nodad"]);
    using rt = openRouting({ netns: ns.ns });
    let err: unknown;
    try {
      rt.addresses.add("10.1.0.2/24", { dev: "d0" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe("EEXIST");
    expect((err as NetlinkError).message).toMatch(
      /^Cannot add address "10.1.0.2\/24" to "d0": EEXIST \(file exists\): ipv4: Address already assigned/,
    );
    expect(() => rt.addresses.add("fd00::2/64", { dev: "d0", flags: ["nodad"] })).toThrow(
      /EEXIST.*address already assigned/i,
    );
  });

  test("add() on a missing link is a NetlinkError ENODEV naming it, and nothing is added", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    let err: unknown;
    try {
      rt.addresses.add("10.1.0.2/24", { dev: "nope0" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe("ENODEV");
    expect((err as NetlinkError).message).toContain('"nope0"');
    expect(() => rt.addresses.delete("10.1.0.2/24", { dev: "nope0" })).toThrow(/ENODEV/);
    expect(() => rt.addresses.list({ dev: "nope0" })).toThrow(/ENODEV/);
    expect(rt.addresses.list({ family: 4 }).map((a) => a.address)).toEqual(["127.0.0.1/8"]);
  });

  test("add() of a malformed CIDR is a SyntaxError and changes nothing", () => {
    using ns = netns();
    withVeth(ns);
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.addresses.add("10.1.0/24", { dev: "d0" })).toThrow(SyntaxError);
    expect(() => rt.addresses.add("10.1.0.2/24", { dev: "d0", peer: "zz" })).toThrow(SyntaxError);
    expect(ipAddrs(ns, "d0").filter((a) => a.family === "inet")).toEqual([]);
  });
});
