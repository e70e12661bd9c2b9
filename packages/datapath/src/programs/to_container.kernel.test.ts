// to_container (bpf/datapath/to_container.c) under BPF_PROG_TEST_RUN: the
// destination check, source identities from the ipcache (host, CIDR,
// world) as policy sees them, control traffic and what it reports, IPv4
// and IPv6.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { eth, expectRewrite, icmpv6, ipv4, ipv6, type Layer, packet, tcp, testRun, udp } from "@dp/hooks";
import { addr16, CT, DIR, DROP, EP_FLAG, EVENT, ID, PROTO, TestDatapath, TRACE, VERDICT } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

// to_container checks skb->ifindex: the endpoints' host-side veths are
// real devices in a test namespace.
let ns: TestNetns | undefined;
const B = { id: 2, identity: 1002, ifindex: 0 };
const C = { id: 3, identity: 1003, ifindex: 0 };
beforeAll(() => {
  if (process.getuid?.() !== 0) return;
  ns = netns({ label: "dpto" });
  const pair = vethPair(ns, ns);
  B.ifindex = pair.a.index;
  C.ifindex = pair.b.index;
});
afterAll(() => ns?.close());

const CIDR_ID = (1 << 24) + 1;
const FAMILIES = [
  {
    name: "IPv4",
    b: "10.0.1.2",
    c: "10.0.1.3",
    host: "10.0.0.1",
    cidr: "192.0.2.0/24",
    inCidr: "192.0.2.5",
    world: "198.51.100.1",
    all: "0.0.0.0/0",
  },
  {
    name: "IPv6",
    b: "fd00::1:2",
    c: "fd00::1:3",
    host: "fd00::1",
    cidr: "2001:db8::/32",
    inCidr: "2001:db8::5",
    world: "2001:db9::1",
    all: "::/0",
  },
] as const;
type Family = (typeof FAMILIES)[number];

function ip(f: Family, src: string, dst: string): Layer {
  return f.name === "IPv4" ? ipv4({ src, dst }) : ipv6({ src, dst });
}

function open(f: Family, flags = 0): TestDatapath {
  const dp = new TestDatapath({ trace: true });
  dp.addEndpoint({ ...B, ip: f.b, flags });
  dp.addEndpoint({ ...C, ip: f.c });
  dp.setIpcache(f.all, ID.world);
  dp.setIpcache(`${f.host}/${f.name === "IPv4" ? 32 : 128}`, ID.host);
  dp.setIpcache(f.cidr, CIDR_ID);
  return dp;
}

function run(dp: TestDatapath, bytes: Uint8Array, ifindex = B.ifindex): ReturnType<typeof testRun> {
  return (ns as TestNetns).run(() => testRun(dp.toContainer, bytes, { ctx: { ifindex } }));
}

describe.each(FAMILIES)("to_container ($name)", (f) => {
  test("to_container delivers to the endpoint of its interface, unchanged, and traces it", () => {
    using dp = open(f);
    const frame = packet(eth(), ip(f, f.world, f.b), tcp({ sport: 1000, dport: 80, flags: ["syn"] }), "hello");
    const result = run(dp, frame);
    expect(result.verdict).toBe("TC_ACT_OK");
    expectRewrite(frame, result.packet, {});
    const events = dp.events.drain();
    expect(events.map((e) => [e.type, e.reason, e.verdict])).toEqual([
      [EVENT.policyVerdict, 0, VERDICT.defaultAllow],
      [EVENT.trace, TRACE.toEndpoint, VERDICT.defaultAllow],
    ]);
    expect(events[1]).toMatchObject({
      direction: DIR.ingress,
      endpoint_id: B.id,
      ifindex: B.ifindex,
      src_identity: ID.world,
      dst_identity: B.identity,
      saddr: addr16(f.world),
      daddr: addr16(f.b),
      sport: 1000,
      dport: 80,
      protocol: PROTO.tcp,
      ct: CT.new,
      len: frame.length,
    });
    expect(dp.metric(DROP.forwarded, DIR.ingress)).toEqual({ packets: 1n, bytes: BigInt(frame.length) });
  });

  test("to_container drops a packet whose destination is not the endpoint of its interface", () => {
    using dp = open(f);
    const toC = packet(eth(), ip(f, f.world, f.c), udp({ dport: 53 }));
    const toNobody = packet(eth(), ip(f, f.world, f.world), udp({ dport: 53 }));
    expect(run(dp, toC).verdict).toBe("TC_ACT_SHOT");
    expect(run(dp, toNobody).verdict).toBe("TC_ACT_SHOT");
    expect(run(dp, toC, C.ifindex).verdict).toBe("TC_ACT_OK");
    const drops = dp.events.drain().filter((e) => e.type === EVENT.drop);
    expect(drops.map((e) => [e.reason, e.ifindex, e.direction])).toEqual([
      [DROP.unknownDestination, B.ifindex, DIR.ingress],
      [DROP.unknownDestination, B.ifindex, DIR.ingress],
    ]);
    expect(dp.metric(DROP.unknownDestination, DIR.ingress).packets).toBe(2n);
  });

  test("to_container takes source identities from the ipcache: host, a CIDR identity, world, a local endpoint", () => {
    using dp = open(f, EP_FLAG.ingressEnforced);
    dp.policyEntry(B.id, { identity: ID.host, direction: "ingress", protocol: PROTO.tcp, port: 22, cookie: 1 });
    dp.policyEntry(B.id, { identity: CIDR_ID, direction: "ingress", protocol: PROTO.tcp, port: 80, cookie: 2 });
    dp.policyEntry(B.id, { identity: C.identity, direction: "ingress", protocol: PROTO.udp, port: 53, cookie: 3 });
    const probes = [
      { src: f.host, l4: tcp({ sport: 2000, dport: 22, flags: ["syn"] }), identity: ID.host, pass: true, cookie: 1 },
      { src: f.inCidr, l4: tcp({ sport: 2001, dport: 80, flags: ["syn"] }), identity: CIDR_ID, pass: true, cookie: 2 },
      { src: f.world, l4: tcp({ sport: 2002, dport: 80, flags: ["syn"] }), identity: ID.world, pass: false, cookie: 0 },
      { src: f.c, l4: udp({ sport: 2003, dport: 53 }), identity: C.identity, pass: true, cookie: 3 },
      { src: f.inCidr, l4: tcp({ sport: 2004, dport: 22, flags: ["syn"] }), identity: CIDR_ID, pass: false, cookie: 0 },
    ];
    for (const p of probes) {
      expect(run(dp, packet(eth(), ip(f, p.src, f.b), p.l4)).verdict, p.src).toBe(p.pass ? "TC_ACT_OK" : "TC_ACT_SHOT");
      const verdict = dp.events.drain().find((e) => e.type === EVENT.policyVerdict);
      expect(verdict).toMatchObject({
        src_identity: p.identity,
        rule_cookie: p.cookie,
        verdict: p.pass ? VERDICT.allow : VERDICT.defaultDeny,
      });
    }
  });

  test("to_container passes neighbour discovery and ARP without an endpoint", () => {
    using dp = open(f);
    const na = packet(
      eth(),
      ipv6({ src: "fe80::1", dst: "fe80::2", hopLimit: 255 }),
      icmpv6({ type: 136 }),
      new Uint8Array(20),
    );
    const arp = packet(eth({ type: 0x0806 }), new Uint8Array(28));
    expect(run(dp, na).verdict).toBe("TC_ACT_OK");
    expect(run(dp, arp).verdict).toBe("TC_ACT_OK");
    expect(dp.events.drain()).toEqual([]);
  });
});
