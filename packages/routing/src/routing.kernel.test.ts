import { beforeEach, describe, expect, test } from "vitest";
import { openRouting } from "@dp/routing";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

function ipLinkNames(ns: TestNetns): string[] {
  return (JSON.parse(ns.exec("ip", ["-json", "link", "show"])) as { ifname: string }[]).map((l) => l.ifname).sort();
}

function ipAddresses(ns: TestNetns): string[] {
  const links = JSON.parse(ns.exec("ip", ["-json", "addr", "show"])) as {
    ifname: string;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  return links.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort();
}

describe("input that would land elsewhere", () => {
  test("links.add() refuses a name with %d, which the kernel would expand, and leaves nothing behind", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const before = ipLinkNames(ns);
    expect(() => rt.links.add({ kind: "bridge", name: "br%d" })).toThrow(/cannot contain "%"/);
    expect(() => rt.links.add({ kind: "veth", name: "va", peer: { name: "vb%d" } })).toThrow(RangeError);
    expect(ipLinkNames(ns)).toEqual(before);
  });

  test("links.delete() refuses a name with a NUL instead of deleting the link named by its first part", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "v0", peer: { name: "v1" } });
    expect(() => rt.links.delete("v0\u0000x")).toThrow(/cannot contain NUL/);
    expect(() => rt.links.set("v0\u0000x", { up: true })).toThrow(RangeError);
    expect(ipLinkNames(ns)).toEqual(["lo", "v0", "v1"]);
  });

  test("addresses.add() and neighbors.add() refuse an index above 2³¹−1 instead of wrapping it onto another link", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const v0 = rt.links.add({ kind: "veth", name: "v0", peer: { name: "v1" } });
    const before = ipAddresses(ns);
    expect(() => rt.addresses.add("10.9.9.9/32", { dev: 2 ** 32 + v0.index })).toThrow(RangeError);
    expect(ipAddresses(ns)).toEqual(before);
    expect(() => rt.neighbors.add({ ip: "10.9.9.1", mac: "02:00:00:00:00:01", dev: 2 ** 32 + v0.index })).toThrow(
      RangeError,
    );
    expect(ns.exec("ip", ["-json", "neigh", "show"]).trim()).toBe("[]");
    expect(() => rt.addresses.list({ dev: 2 ** 32 + 1 })).toThrow(RangeError);
  });

  test("every list() says ENODEV for an index with no link, as for a name with none", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    for (const dev of [999, "nope0"]) {
      expect(() => rt.addresses.list({ dev })).toThrow(expect.objectContaining({ code: "ENODEV" }));
      expect(() => rt.neighbors.list({ dev })).toThrow(expect.objectContaining({ code: "ENODEV" }));
      expect(() => rt.routes.list({ dev })).toThrow(expect.objectContaining({ code: "ENODEV" }));
    }
    expect(rt.addresses.list({ dev: 1, family: 4 }).map((a) => a.address)).toEqual(["127.0.0.1/8"]);
  });

  test("a link is found by an alternative name longer than 15 bytes, as ip finds it", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const v0 = rt.links.add({ kind: "veth", name: "v0", peer: { name: "v1" } });
    const alt = "an-alternative-name-of-v0";
    ns.exec("ip", ["link", "property", "add", "dev", "v0", "altname", alt]);
    expect(rt.links.get(alt)?.index).toBe(v0.index);
    rt.addresses.add("10.9.9.9/32", { dev: alt });
    expect(ipAddresses(ns)).toContain("v0 10.9.9.9/32");
    expect(rt.links.get(`${alt}x`)).toBeUndefined();
  });

  test("IPv4-mapped addresses read in the dotted form ip -json shows, for addresses, routes, neighbours and rules", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "v0", peer: { name: "v1" } });
    rt.links.set("v0", { up: true });
    ns.exec("ip", ["addr", "add", "::ffff:10.0.0.9/128", "dev", "v0", "nodad"]);
    ns.exec("ip", ["route", "add", "::ffff:10.0.0.0/120", "dev", "v0"]);
    ns.exec("ip", ["neigh", "add", "::ffff:10.0.0.7", "lladdr", "02:00:00:00:00:01", "dev", "v0"]);
    ns.exec("ip", ["-6", "rule", "add", "from", "::ffff:10.0.0.0/104", "lookup", "100", "pref", "5"]);
    const ipAddr = (
      JSON.parse(ns.exec("ip", ["-j", "-6", "addr", "show", "dev", "v0"])) as { addr_info: { local: string }[] }[]
    )[0]!.addr_info.map((a) => a.local);
    expect(rt.addresses.list({ dev: "v0", family: 6 }).map((a) => a.address.split("/")[0])).toEqual(ipAddr);
    expect(ipAddr).toContain("::ffff:10.0.0.9");
    const ipRoute = (
      JSON.parse(ns.exec("ip", ["-j", "-6", "route", "show", "::ffff:10.0.0.0/120"])) as { dst: string }[]
    )[0]!.dst;
    expect(rt.routes.get("::ffff:10.0.0.0/120")?.dst).toBe(ipRoute);
    const ipNeigh = (
      JSON.parse(ns.exec("ip", ["-j", "-6", "neigh", "show", "dev", "v0", "nud", "all"])) as { dst: string }[]
    ).map((n) => n.dst);
    expect(rt.neighbors.list({ dev: "v0", family: 6 }).map((n) => n.ip)).toEqual(ipNeigh);
    const ipRule = (
      JSON.parse(ns.exec("ip", ["-j", "-6", "rule", "show", "pref", "5"])) as { src: string; srclen: number }[]
    )[0]!;
    expect(rt.rules.list({ family: 6 }).find((r) => r.priority === 5)?.from).toBe(`${ipRule.src}/${ipRule.srclen}`);
  });
});
