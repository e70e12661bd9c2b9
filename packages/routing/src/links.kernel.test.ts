import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { type Link, openRouting } from "@dp/routing";

beforeEach((t) => requireRoot(t));

/** One link as `ip -json -details -statistics link show` prints it (the fields compared). */
interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  master?: string;
  link?: string | null;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: {
      id?: number;
      port?: number;
      learning?: boolean;
      external?: boolean;
      local?: string;
      local6?: string;
      link?: string;
      ttl?: number;
      mode?: string;
      type?: string;
      pi?: boolean;
      vnet_hdr?: boolean;
      multi_queue?: boolean;
      persist?: boolean;
      numqueues?: number;
      numdisabled?: number;
      user?: string;
      group?: string;
    };
  };
  altnames?: string[];
  stats64?: {
    rx: { bytes: number; packets: number; errors: number; dropped: number };
    tx: { bytes: number; packets: number; errors: number; dropped: number };
  };
}

function ipLinks(ns: TestNetns): IpLink[] {
  return JSON.parse(ns.exec("ip", ["-json", "-details", "-statistics", "link", "show"])) as IpLink[];
}

function ipLink(ns: TestNetns, name: string): IpLink | undefined {
  return ipLinks(ns).find((l) => l.ifname === name);
}

/** What dp should report for a link, derived from ip's view of the namespace. */
function expected(ip: IpLink, all: readonly IpLink[]): Omit<Link, "stats" | "flags"> {
  const link = expectedBase(ip, all);
  const data = ip.linkinfo?.info_data ?? {};
  const extra: Record<string, unknown> = {};
  if (ip.altnames !== undefined) extra["altnames"] = ip.altnames;
  if (ip.linkinfo?.info_kind === "tun") {
    extra["kind"] = data.type === "tap" ? "tap" : "tun";
    extra["tun"] = {
      type: data.type,
      pi: data.pi,
      vnetHdr: data.vnet_hdr,
      persist: data.persist,
      multiQueue: data.multi_queue,
      ...(data.numqueues === undefined ? {} : { numQueues: data.numqueues }),
      ...(data.numdisabled === undefined ? {} : { numDisabledQueues: data.numdisabled }),
    };
  }
  if (ip.linkinfo?.info_kind === "macvtap") extra["macvlan"] = { mode: data.mode };
  return { ...link, ...extra };
}

function expectedBase(ip: IpLink, all: readonly IpLink[]): Omit<Link, "stats" | "flags"> {
  const indexOf = (name: string | undefined | null): number | undefined =>
    name === undefined || name === null ? undefined : all.find((l) => l.ifname === name)?.ifindex;
  const kind = ip.linkinfo?.info_kind;
  const data = ip.linkinfo?.info_data ?? {};
  return {
    index: ip.ifindex,
    name: ip.ifname,
    kind: kind === undefined ? (ip.flags.includes("LOOPBACK") ? "loopback" : undefined) : (kind as Link["kind"]),
    rawKind: kind,
    up: ip.flags.includes("UP"),
    operState: ip.operstate.toLowerCase() as Link["operState"],
    mtu: ip.mtu,
    mac: ip.address,
    master: indexOf(ip.master),
    linkIndex: ip.link_index ?? indexOf(ip.link),
    linkNetnsId: ip.link_netnsid,
    vxlan:
      kind === "vxlan"
        ? {
            vni: data.id ?? 0,
            port: data.port ?? 0,
            local: data.local ?? data.local6,
            learning: data.learning ?? false,
            external: data.external ?? false,
            dev: indexOf(data.link),
            ttl: data.ttl ?? 0,
          }
        : undefined,
    macvlan: kind === "macvlan" ? { mode: data.mode as "bridge" } : undefined,
  };
}

function withoutVolatile(link: Link): Omit<Link, "stats" | "flags"> {
  const { stats: _stats, flags: _flags, ...rest } = link;
  return rest;
}

// The ifi_flags bits ip prints by name (RUNNING it folds into NO-CARRIER).
const IP_FLAG_NAMES: Readonly<Record<string, number>> = {
  UP: 0x1,
  BROADCAST: 0x2,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  LOWER_UP: 0x10000,
  DORMANT: 0x20000,
};

function flagNames(flags: number): string[] {
  return Object.entries(IP_FLAG_NAMES)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name)
    .sort();
}

/** Asserts that dp's view of every link in the namespace equals ip's, flags included. */
function expectSameAsIp(ns: TestNetns, links: readonly Link[]): void {
  const ip = ipLinks(ns);
  expect(links.map(withoutVolatile)).toEqual(ip.map((l) => expected(l, ip)));
  expect(links.map((l) => flagNames(l.flags))).toEqual(ip.map((l) => l.flags.filter((f) => f in IP_FLAG_NAMES).sort()));
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

describe("reading links", () => {
  test("list() reads links made by ip (veth, vxlan, external vxlan, bridge, macvlan, bridge port) as ip shows them", () => {
    using ns = netns();
    using other = netns();
    const ip = (args: string): string => ns.exec("ip", args.split(" "));
    ip(`link add va type veth peer name vb netns ${other.name}`);
    ip("link add p0 mtu 1400 address 02:00:00:00:00:10 type veth peer name p1");
    ip("link add vx0 type vxlan id 42 local 10.0.0.1 dev p0 ttl 64 dstport 4789 nolearning");
    ip("link add vx1 type vxlan external dstport 4790");
    ip("link add vx2 type vxlan id 7 local fd00::1 dstport 8472 learning");
    ip("link add mv0 link p0 type macvlan mode private");
    ip("link add mv1 link p0 type macvlan mode vepa");
    ip("link add br0 mtu 1400 type bridge");
    ip("link set p1 master br0");
    ip("link set p0 up");
    ip("link set p1 up");
    using rt = openRouting({ netns: ns.ns });
    const links = rt.links.list();
    expectSameAsIp(ns, links);
    const byName = new Map(links.map((l) => [l.name, l]));
    expect(byName.get("lo")?.kind).toBe("loopback");
    expect(byName.get("vx1")?.vxlan).toMatchObject({ external: true, port: 4790, learning: false });
    expect(byName.get("vx2")?.vxlan).toMatchObject({ local: "fd00::1", learning: true, vni: 7 });
    expect(byName.get("mv1")?.macvlan).toEqual({ mode: "vepa" });
    expect(byName.get("p1")?.master).toBe(byName.get("br0")?.index);
    expect(byName.get("p0")?.operState).toBe("up");
    expect(byName.get("va")?.linkNetnsId).toBeTypeOf("number");
  });

  test("get() finds a link by name and by index, and has() agrees", () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "br0", "type", "bridge"]);
    using rt = openRouting({ netns: ns.ns });
    const ip = ipLinks(ns);
    const br = rt.links.get("br0");
    expect(br === undefined ? undefined : withoutVolatile(br)).toEqual(
      expected(
        ip.find((l) => l.ifname === "br0")!,
        ip,
      ),
    );
    expect(rt.links.get(br!.index)?.name).toBe("br0");
    expect(rt.links.has("br0")).toBe(true);
    expect(rt.links.has(br!.index)).toBe(true);
  });

  test("get() returns undefined and has() false for a missing name or index", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    expect(rt.links.get("nope0")).toBeUndefined();
    expect(rt.links.get(4242)).toBeUndefined();
    expect(rt.links.has("nope0")).toBe(false);
  });

  test("stats count real traffic across a veth pair and match ip's counters", () => {
    using a = netns();
    using b = netns();
    const pair = vethPair(a, b, { nameA: "va", nameB: "vb", addressA: "10.9.0.1/24", addressB: "10.9.0.2/24" });
    using rtA = openRouting({ netns: a.ns });
    using rtB = openRouting({ netns: b.ns });
    const beforeA = rtA.links.get("va")!.stats!;
    const beforeB = rtB.links.get("vb")!.stats!;
    // 20 UDP datagrams from a to b (bash's /dev/udp), after one ARP exchange.
    a.exec("bash", ["-c", "for i in $(seq 20); do echo hello > /dev/udp/10.9.0.2/9; done"]);
    const dpA1 = rtA.links.get(pair.a.index)!.stats!;
    const dpB1 = rtB.links.get("vb")!.stats!;
    const ipA = ipLink(a, "va")!.stats64!;
    const ipB = ipLink(b, "vb")!.stats64!;
    const dpA2 = rtA.links.get("va")!.stats!;
    const dpB2 = rtB.links.get("vb")!.stats!;

    expect(dpA1.txPackets - beforeA.txPackets).toBeGreaterThanOrEqual(20n);
    expect(dpB1.rxPackets - beforeB.rxPackets).toBeGreaterThanOrEqual(20n);
    expect(dpA1.txBytes - beforeA.txBytes).toBeGreaterThanOrEqual(20n * 48n);
    // ip read between dp's two reads: its numbers lie between them
    // (background IPv6 traffic may add a packet or two meanwhile).
    const between = (lo: bigint, v: number, hi: bigint): void => {
      expect(BigInt(v)).toBeGreaterThanOrEqual(lo);
      expect(BigInt(v)).toBeLessThanOrEqual(hi);
    };
    between(dpA1.txPackets, ipA.tx.packets, dpA2.txPackets);
    between(dpA1.txBytes, ipA.tx.bytes, dpA2.txBytes);
    between(dpA1.rxPackets, ipA.rx.packets, dpA2.rxPackets);
    between(dpA1.rxBytes, ipA.rx.bytes, dpA2.rxBytes);
    between(dpB1.rxPackets, ipB.rx.packets, dpB2.rxPackets);
    between(dpB1.rxBytes, ipB.rx.bytes, dpB2.rxBytes);
    between(dpB1.txPackets, ipB.tx.packets, dpB2.txPackets);
    expect([dpA2.rxErrors, dpA2.txErrors, dpA2.txDropped]).toEqual([
      BigInt(ipA.rx.errors),
      BigInt(ipA.tx.errors),
      BigInt(ipA.tx.dropped),
    ]);
    expect(dpB2.rxDropped).toBe(BigInt(ipB.rx.dropped));
  });
});

describe("creating links", () => {
  test("add() creates a veth pair with MTU and MACs as ip shows them", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const va = rt.links.add({
      kind: "veth",
      name: "va",
      mtu: 1400,
      mac: "02:00:00:00:00:0a",
      peer: { name: "vb", mac: "02:00:00:00:00:0b" },
    });
    const ip = ipLinks(ns);
    expect(withoutVolatile(va)).toEqual(
      expected(
        ip.find((l) => l.ifname === "va")!,
        ip,
      ),
    );
    expect(ipLink(ns, "vb")).toMatchObject({
      mtu: 1400,
      address: "02:00:00:00:00:0b",
      linkinfo: { info_kind: "veth" },
      link: "va",
    });
    expect(va).toMatchObject({
      kind: "veth",
      mtu: 1400,
      mac: "02:00:00:00:00:0a",
      up: false,
      linkIndex: rt.links.get("vb")?.index,
    });
    expectSameAsIp(ns, rt.links.list());
  });

  test("add() creates a veth's peer directly in another namespace", () => {
    using ns = netns();
    using other = netns();
    using rt = openRouting({ netns: ns.ns });
    using rtOther = openRouting({ netns: other.ns });
    const va = rt.links.add({
      kind: "veth",
      name: "va",
      peer: { name: "vb", netns: other.ns, mac: "02:00:00:00:00:0b" },
    });
    expect(rt.links.has("vb")).toBe(false);
    expect(ipLink(ns, "vb")).toBeUndefined();
    const vb = ipLink(other, "vb")!;
    expect(vb).toMatchObject({ address: "02:00:00:00:00:0b", link_index: va.index, linkinfo: { info_kind: "veth" } });
    expect(va.linkIndex).toBe(vb.ifindex);
    expect(va.linkNetnsId).toBe(ipLink(ns, "va")!.link_netnsid);
    expect(rtOther.links.get("vb")?.linkIndex).toBe(va.index);
    expectSameAsIp(ns, rt.links.list());
    expectSameAsIp(other, rtOther.links.list());
  });

  test("add() creates a vxlan with VNI, port, local address, device and TTL, learning off", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const p0 = rt.links.add({ kind: "veth", name: "p0", peer: { name: "p1" } });
    const vx = rt.links.add({
      kind: "vxlan",
      name: "vx0",
      vni: 4242,
      port: 8472,
      local: "10.0.0.1",
      dev: "p0",
      ttl: 64,
    });
    expect(ipLink(ns, "vx0")?.linkinfo).toMatchObject({
      info_kind: "vxlan",
      info_data: { id: 4242, port: 8472, local: "10.0.0.1", link: "p0", ttl: 64, learning: false },
    });
    expect(vx.vxlan).toEqual({
      vni: 4242,
      port: 8472,
      local: "10.0.0.1",
      learning: false,
      external: false,
      dev: p0.index,
      ttl: 64,
    });
    const vx6 = rt.links.add({ kind: "vxlan", name: "vx6", vni: 1, local: "fd00::1", dev: p0.index, learning: true });
    expect(ipLink(ns, "vx6")?.linkinfo?.info_data).toMatchObject({
      id: 1,
      port: 4789,
      local6: "fd00::1",
      link: "p0",
      learning: true,
    });
    expect(vx6.vxlan).toMatchObject({ port: 4789, local: "fd00::1", learning: true });
    expectSameAsIp(ns, rt.links.list());
  });

  test("add() creates an external (collect_md) vxlan on the default port 4789", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const vx = rt.links.add({ kind: "vxlan", name: "vx0", external: true });
    expect(ipLink(ns, "vx0")?.linkinfo?.info_data).toMatchObject({
      external: true,
      id: 0,
      port: 4789,
      learning: false,
    });
    expect(vx.vxlan).toMatchObject({ external: true, vni: 0, port: 4789, learning: false });
    expectSameAsIp(ns, rt.links.list());
  });

  test("add() creates a bridge with an MTU", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const br = rt.links.add({ kind: "bridge", name: "br0", mtu: 9000 });
    expect(ipLink(ns, "br0")).toMatchObject({ mtu: 9000, linkinfo: { info_kind: "bridge" } });
    expect(br).toMatchObject({ kind: "bridge", mtu: 9000, up: false, operState: "down" });
    expectSameAsIp(ns, rt.links.list());
  });

  const modes = [undefined, "bridge", "private", "vepa", "passthru"] as const;
  for (const mode of modes) {
    test(`add() creates a macvlan in ${mode ?? "default (bridge)"} mode on a parent`, () => {
      using ns = netns();
      using rt = openRouting({ netns: ns.ns });
      const p0 = rt.links.add({ kind: "veth", name: "p0", peer: { name: "p1" } });
      const mv = rt.links.add({
        kind: "macvlan",
        name: "mv0",
        parent: mode === "private" ? p0.index : "p0",
        mac: "02:00:00:00:00:0c",
        ...(mode === undefined ? {} : { mode }),
      });
      expect(ipLink(ns, "mv0")).toMatchObject({
        link: "p0",
        linkinfo: { info_kind: "macvlan", info_data: { mode: mode ?? "bridge" } },
      });
      expect(mv).toMatchObject({ kind: "macvlan", linkIndex: p0.index, macvlan: { mode: mode ?? "bridge" } });
      // passthru takes over the parent's MAC, the other modes keep their own.
      if (mode !== "passthru") expect(mv.mac).toBe("02:00:00:00:00:0c");
      expectSameAsIp(ns, rt.links.list());
    });
  }
});

describe("changing links", () => {
  test("set() brings a link up and down, and changes its MTU and MAC", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    rt.links.set("va", { up: true, mtu: 1280, mac: "02:00:00:00:00:aa" });
    rt.links.set("vb", { up: true });
    expect(ipLink(ns, "va")).toMatchObject({ mtu: 1280, address: "02:00:00:00:00:aa", operstate: "UP" });
    expect(ipLink(ns, "va")?.flags).toContain("UP");
    expect(rt.links.get("va")).toMatchObject({ up: true, operState: "up", mtu: 1280, mac: "02:00:00:00:00:aa" });
    expectSameAsIp(ns, rt.links.list());
    rt.links.set("vb", { up: false });
    expect(ipLink(ns, "vb")?.flags).not.toContain("UP");
    expect(ipLink(ns, "va")?.operstate).toBe("LOWERLAYERDOWN");
    expect(rt.links.get("va")?.operState).toBe("lowerlayerdown");
    expectSameAsIp(ns, rt.links.list());
  });

  test("set() renames a link", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const va = rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    rt.links.set(va.index, { name: "renamed0" });
    expect(ipLink(ns, "va")).toBeUndefined();
    expect(ipLink(ns, "renamed0")?.ifindex).toBe(va.index);
    expect(rt.links.get("renamed0")?.index).toBe(va.index);
  });

  test("set() enslaves a link to a bridge and releases it", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const br = rt.links.add({ kind: "bridge", name: "br0" });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    rt.links.set("va", { master: "br0" });
    expect(ipLink(ns, "va")?.master).toBe("br0");
    expect(rt.links.get("va")?.master).toBe(br.index);
    expectSameAsIp(ns, rt.links.list());
    rt.links.set("va", { master: null });
    expect(ipLink(ns, "va")?.master).toBeUndefined();
    expect(rt.links.get("va")?.master).toBeUndefined();
    rt.links.set("va", { master: br.index });
    expect(ipLink(ns, "va")?.master).toBe("br0");
  });

  test("set() moves a link into another namespace, renaming it on the way", () => {
    using ns = netns();
    using other = netns();
    using rt = openRouting({ netns: ns.ns });
    using rtOther = openRouting({ netns: other.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    rt.links.set("vb", { netns: other.ns });
    expect(rt.links.has("vb")).toBe(false);
    expect(ipLink(other, "vb")?.linkinfo?.info_kind).toBe("veth");
    expect(rtOther.links.get("vb")?.linkIndex).toBe(rt.links.get("va")?.index);
    rt.links.set("va", { netns: other.ns, name: "vc", up: true });
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo"]);
    expect(ipLink(other, "vc")?.flags).toContain("UP");
    expectSameAsIp(other, rtOther.links.list());
  });
});

describe("deleting links", () => {
  test("delete() removes a veth pair by name, then reports it missing", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    expect(rt.links.delete("va")).toBe(true);
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo"]);
    expect(rt.links.delete("va")).toBe(false);
  });

  test("delete() removes a link by index and returns false for a missing index", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    ns.exec("ip", ["link", "add", "br0", "type", "bridge"]);
    const index = ipLink(ns, "br0")!.ifindex;
    expect(rt.links.delete(index)).toBe(true);
    expect(ipLink(ns, "br0")).toBeUndefined();
    expect(rt.links.delete(index)).toBe(false);
  });

  test("delete() of lo is refused with the kernel's error", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const err = catchError(() => rt.links.delete("lo"));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).message).toMatch(/^Cannot delete link "lo": ENOTSUP \(operation not supported\)$/);
  });
});

describe("failures leave nothing behind", () => {
  test("add() of a veth whose peer name is taken in the peer namespace creates neither end", () => {
    using ns = netns();
    using other = netns();
    other.exec("ip", ["link", "add", "vb", "type", "bridge"]);
    using rt = openRouting({ netns: ns.ns });
    const err = catchError(() => rt.links.add({ kind: "veth", name: "va", peer: { name: "vb", netns: other.ns } }));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe("EEXIST");
    expect((err as NetlinkError).message).toMatch(/^Cannot add veth "va": EEXIST/);
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo"]);
    expect(ipLinks(other).map((l) => [l.ifname, l.linkinfo?.info_kind])).toEqual([
      ["lo", undefined],
      ["vb", "bridge"],
    ]);
  });

  test("add() of a veth whose peer name is taken in the same namespace creates neither end", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "bridge", name: "vb" });
    const err = catchError(() => rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } }));
    expect((err as NetlinkError).code).toBe("EEXIST");
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo", "vb"]);
  });

  test("add() of a duplicate name is an EEXIST NetlinkError naming the link", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "bridge", name: "br0" });
    const err = catchError(() => rt.links.add({ kind: "bridge", name: "br0" }));
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toMatchObject({ code: "EEXIST", errno: 17, op: "RTM_NEWLINK" });
    expect((err as Error).message).toMatch(/^Cannot add bridge "br0": EEXIST \(/);
  });

  test("add() of a second vxlan with the same VNI and port carries the kernel's ext-ack text", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "vxlan", name: "vx0", vni: 42 });
    const err = catchError(() => rt.links.add({ kind: "vxlan", name: "vx1", vni: 42 })) as NetlinkError;
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.code).toBe("EEXIST");
    expect(err.extAck).toBe("A VXLAN device with the specified VNI already exists");
    expect(err.message).toBe(
      `Cannot add vxlan "vx1": EEXIST (${err.message.split("(")[1]!.split(")")[0]}): ${err.extAck}`,
    );
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo", "vx0"]);
  });

  test("add() of a macvlan on a missing parent is an ENODEV NetlinkError naming the parent", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const byName = catchError(() => rt.links.add({ kind: "macvlan", name: "mv0", parent: "p9" }));
    expect(byName).toBeInstanceOf(NetlinkError);
    expect(byName).toMatchObject({ code: "ENODEV" });
    expect((byName as Error).message).toMatch(/^Cannot add macvlan "mv0": no parent link "p9": ENODEV/);
    const byIndex = catchError(() => rt.links.add({ kind: "macvlan", name: "mv0", parent: 99 }));
    expect((byIndex as Error).message).toMatch(/^Cannot add macvlan "mv0": no parent link with index 99: ENODEV/);
    const vx = catchError(() => rt.links.add({ kind: "vxlan", name: "vx0", vni: 1, dev: "eth7" }));
    expect((vx as Error).message).toMatch(/^Cannot add vxlan "vx0": no device "eth7": ENODEV/);
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo"]);
  });

  test("set() of a missing master or link is an ENODEV NetlinkError naming it", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    const master = catchError(() => rt.links.set("va", { master: "br9" }));
    expect(master).toBeInstanceOf(NetlinkError);
    expect((master as Error).message).toMatch(/^Cannot set link "va": no master link "br9": ENODEV/);
    const link = catchError(() => rt.links.set("vz", { up: true }));
    expect(link).toMatchObject({ code: "ENODEV" });
    expect((link as Error).message).toMatch(/^Cannot set link "vz": ENODEV/);
    expect(ipLink(ns, "va")?.master).toBeUndefined();
  });

  test("set() of an MTU under the device minimum carries the kernel's ext-ack text and changes nothing", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    const err = catchError(() => rt.links.set("va", { mtu: 10, name: "vz" })) as NetlinkError;
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.code).toBe("EINVAL");
    expect(err.extAck).toMatch(/mtu less than device minimum/);
    expect(err.message).toMatch(/^Cannot set link "va": EINVAL .*: mtu less than device minimum/);
    expect(ipLink(ns, "va")?.mtu).toBe(1500);
  });

  test("set() of a bridge as its own master carries the kernel's ext-ack text", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "bridge", name: "br0" });
    const err = catchError(() => rt.links.set("br0", { master: "br0" })) as NetlinkError;
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.extAck).toBe("Can not enslave a bridge to a bridge");
  });

  test("bad input throws the built-in error classes and creates nothing", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.links.add({ kind: "veth", name: "va", mac: "02:00:00:00:00", peer: { name: "vb" } })).toThrow(
      SyntaxError,
    );
    expect(() => rt.links.add({ kind: "bridge", name: "a-very-long-name0" })).toThrow(RangeError);
    expect(() => rt.links.set("lo", { mac: "nope" })).toThrow(/Invalid changes.mac "nope"/);
    expect(ipLinks(ns).map((l) => l.ifname)).toEqual(["lo"]);
  });

  test("links.add() creates ifb and macvtap links that ip -d -json shows as dp lists them", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "d0", peer: { name: "d1" } });
    const ifb = rt.links.add({ kind: "ifb", name: "i0", mtu: 9000 });
    const mt = rt.links.add({ kind: "macvtap", name: "mt0", parent: "d0", mode: "private" });
    expect([ifb.kind, ifb.mtu, mt.kind, mt.macvlan?.mode]).toEqual(["ifb", 9000, "macvtap", "private"]);
    expect(ipLink(ns, "i0")?.linkinfo?.info_kind).toBe("ifb");
    expect(ipLink(ns, "mt0")?.linkinfo).toMatchObject({ info_kind: "macvtap", info_data: { mode: "private" } });
    expectSameAsIp(ns, rt.links.list());
  });

  test("links.list() reads tun and tap devices with their flags, and altnames of any length, as ip -d -json shows them", () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.exec("ip", ["tuntap", "add", "dev", "t0", "mode", "tun"]);
    ns.exec("ip", ["tuntap", "add", "dev", "t1", "mode", "tap", "multi_queue", "vnet_hdr"]);
    ns.exec("ip", ["link", "property", "add", "dev", "d0", "altname", "a-very-long-alternative-name-for-d0"]);
    ns.exec("ip", ["link", "property", "add", "dev", "d0", "altname", "d0alt"]);
    using rt = openRouting({ netns: ns.ns });
    const links = rt.links.list();
    expectSameAsIp(ns, links);
    expect(links.find((l) => l.name === "t1")).toMatchObject({
      kind: "tap",
      rawKind: "tun",
      tun: { type: "tap", vnetHdr: true, multiQueue: true },
    });
    expect(rt.links.get("a-very-long-alternative-name-for-d0")?.altnames).toEqual([
      "a-very-long-alternative-name-for-d0",
      "d0alt",
    ]);
  });

  test("links.set() is not atomic, as documented: a new MAC and MTU stay when a later part (the master) is refused, as with ip link set", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
    rt.links.add({ kind: "veth", name: "vc", peer: { name: "vd" } });
    // The MAC goes in before the MTU, which this veth refuses.
    expect(() => rt.links.set("va", { mac: "02:00:00:00:00:aa", mtu: 70000 })).toThrow(
      expect.objectContaining({ name: "NetlinkError" }),
    );
    expect(ipLink(ns, "va")?.address).toBe("02:00:00:00:00:aa");
    // MAC, MTU and name go in before the master, which is not a bridge.
    expect(() => rt.links.set("va", { mac: "02:00:00:00:00:bb", mtu: 1400, name: "ve", master: "vc" })).toThrow(
      expect.objectContaining({ name: "NetlinkError" }),
    );
    expect(ipLink(ns, "ve")).toMatchObject({ address: "02:00:00:00:00:bb", mtu: 1400 });
    expect(ipLink(ns, "ve")?.master).toBeUndefined();
    // ip link set behaves the same.
    expect(() => ns.exec("ip", ["link", "set", "vb", "address", "02:00:00:00:00:cc", "mtu", "70000"])).toThrow();
    expect(ipLink(ns, "vb")?.address).toBe("02:00:00:00:00:cc");
  });
});
