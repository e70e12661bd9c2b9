// from_container (bpf/datapath/from_container.c) under BPF_PROG_TEST_RUN:
// the source check, control traffic, events and metrics, and delivery in
// both host routing modes, for IPv4 and IPv6.
import { beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, vethPair } from "@dp/core/testing";
import { eth, expectRewrite, icmpv6, ipv4, ipv6, packet, tcp, testRun, udp } from "@dp/hooks";
import { addr16, DIR, DROP, EP_FLAG, EVENT, ID, PROTO, TestDatapath, TRACE, VERDICT, CT } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

const A = { id: 1, identity: 1001, ifindex: 101, mac: "02:00:00:00:01:01", nodeMac: "02:00:00:00:01:fe" };
const B = { id: 2, identity: 1002, ifindex: 102, mac: "02:00:00:00:02:02", nodeMac: "02:00:00:00:02:fe" };
const FAMILIES = [
  { name: "IPv4", a: "10.0.1.1", b: "10.0.1.2", outside: "192.0.2.7", host: "10.0.0.1", l3: ipv4 },
  { name: "IPv6", a: "fd00::1:1", b: "fd00::1:2", outside: "2001:db8::7", host: "fd00::1", l3: ipv6 },
] as const;
type Family = (typeof FAMILIES)[number];

function l3(f: Family, src: string, dst: string, ttl = 64): ReturnType<typeof ipv4> | ReturnType<typeof ipv6> {
  return f.name === "IPv4" ? ipv4({ src, dst, ttl }) : ipv6({ src, dst, hopLimit: ttl });
}

function setup(f: Family, dp: TestDatapath): void {
  dp.addEndpoint({ ...A, ip: f.a });
  dp.addEndpoint({ ...B, ip: f.b });
  dp.setIpcache(f.name === "IPv4" ? "0.0.0.0/0" : "::/0", ID.world);
  dp.setIpcache(f.name === "IPv4" ? `${f.host}/32` : `${f.host}/128`, ID.host);
}

describe.each(FAMILIES)("from_container ($name)", (f) => {
  test("from_container drops a packet whose source is not the endpoint of the interface", () => {
    using dp = new TestDatapath();
    setup(f, dp);
    const spoofed = packet(eth(), l3(f, f.b, f.outside), udp({ dport: 53 }));
    const unknown = packet(eth(), l3(f, f.outside, f.b), udp({ dport: 53 }));
    // B's address on A's interface, and an address that is no endpoint's.
    expect(testRun(dp.fromContainer, spoofed, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    expect(testRun(dp.fromContainer, unknown, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    // The same packet on B's own interface passes.
    expect(testRun(dp.fromContainer, spoofed, { ctx: { ingressIfindex: B.ifindex } }).verdict).toBe("TC_ACT_OK");
    expect(dp.metric(DROP.invalidSource, DIR.egress)).toEqual({
      packets: 2n,
      bytes: BigInt(spoofed.length + unknown.length),
    });
    const drops = dp.events.drain().filter((e) => e.type === EVENT.drop);
    expect(drops.map((e) => [e.reason, e.ifindex])).toEqual([
      [DROP.invalidSource, A.ifindex],
      [DROP.invalidSource, A.ifindex],
    ]);
  });

  test("from_container reports a drop event with every field set", () => {
    using dp = new TestDatapath();
    setup(f, dp);
    // A enforces egress with no entry: default deny.
    dp.addEndpoint({ ...A, ip: f.a, flags: EP_FLAG.egressEnforced });
    const before = process.hrtime.bigint();
    const frame = packet(eth(), l3(f, f.a, f.b), tcp({ sport: 40000, dport: 8080, flags: ["syn"] }), "x");
    expect(testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    const after = process.hrtime.bigint();
    const events = dp.events.drain();
    expect(events.map((e) => e.type)).toEqual([EVENT.policyVerdict, EVENT.drop]);
    const [verdict, drop] = events;
    const expected = {
      reason: DROP.policyDefault,
      direction: DIR.egress,
      verdict: VERDICT.defaultDeny,
      family: f.name === "IPv4" ? 4 : 6,
      protocol: PROTO.tcp,
      endpoint_id: A.id,
      ifindex: A.ifindex,
      src_identity: A.identity,
      dst_identity: B.identity,
      len: frame.length,
      saddr: addr16(f.a),
      daddr: addr16(f.b),
      sport: 40000,
      dport: 8080,
      rule_cookie: 0,
      ct: CT.new,
      pad: new Uint8Array(7),
    };
    expect(drop).toEqual({ ...expected, type: EVENT.drop, timestamp: drop?.timestamp });
    expect(verdict).toEqual({ ...expected, type: EVENT.policyVerdict, timestamp: verdict?.timestamp });
    // bpf_ktime_get_ns() and process.hrtime.bigint() read the same clock (CLOCK_MONOTONIC).
    for (const e of events) {
      expect(e.timestamp >= before && e.timestamp <= after).toBe(true);
    }
    expect(dp.lostEvents()).toBe(0n);
  });

  test("from_container counts events it cannot fit into a full ring buffer", () => {
    // 4096 bytes hold 46 records of 80 bytes + 8-byte headers.
    using dp = new TestDatapath({ maxEntries: { dp_events: 4096 } });
    setup(f, dp);
    const frame = packet(eth(), l3(f, f.outside, f.b), udp({ dport: 53 }));
    // 60 single runs rather than repeat: 60, which a signal (a child exiting) can
    // interrupt after some repetitions, and a retried run would count them twice.
    for (let i = 0; i < 60; i++) testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } });
    expect(dp.metric(DROP.invalidSource, DIR.egress).packets).toBe(60n);
    expect(dp.events.drain()).toHaveLength(46);
    expect(dp.lostEvents()).toBe(14n);
  });

  test("from_container hands a packet to the stack in legacy mode, unchanged", () => {
    using dp = new TestDatapath({ hostRouting: "legacy", trace: true });
    setup(f, dp);
    for (const dst of [f.b, f.host, f.outside]) {
      const frame = packet(eth(), l3(f, f.a, dst), udp({ sport: 5000, dport: 53 }), "q");
      const result = testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } });
      expect(result.verdict).toBe("TC_ACT_OK");
      expectRewrite(frame, result.packet, {});
    }
    const traces = dp.events.drain().filter((e) => e.type === EVENT.trace);
    expect(traces.map((e) => [e.reason, e.ifindex, e.dst_identity])).toEqual([
      [TRACE.toStack, A.ifindex, B.identity],
      [TRACE.toStack, A.ifindex, ID.host],
      [TRACE.toStack, A.ifindex, ID.world],
    ]);
    expect(dp.metric(DROP.forwarded, DIR.egress).packets).toBe(3n);
  });

  test("from_container redirects to a local endpoint's peer with BPF host routing: MACs, TTL, checksums", () => {
    using dp = new TestDatapath({ hostRouting: "bpf", trace: true });
    setup(f, dp);
    const frames = [
      packet(
        eth({ src: A.mac, dst: A.nodeMac }),
        l3(f, f.a, f.b),
        tcp({ sport: 40001, dport: 80, flags: ["syn"] }),
        "hi",
      ),
      packet(eth({ src: A.mac, dst: A.nodeMac }), l3(f, f.a, f.b), udp({ sport: 40001, dport: 53 }), "hi"),
    ];
    for (const frame of frames) {
      const result = testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } });
      expect(result.verdict).toBe("TC_ACT_REDIRECT");
      const ttl = f.name === "IPv4" ? { ipv4: { ttl: 63 } } : { ipv6: { hopLimit: 63 } };
      // expectRewrite checks every checksum of the output (IPv4 header, TCP/UDP).
      expectRewrite(frame, result.packet, { eth: { dst: B.mac, src: B.nodeMac }, ...ttl });
    }
    const traces = dp.events.drain().filter((e) => e.type === EVENT.trace);
    expect(traces.map((e) => [e.reason, e.ifindex, e.endpoint_id, e.direction])).toEqual([
      [TRACE.toEndpoint, B.ifindex, B.id, DIR.ingress],
      [TRACE.toEndpoint, B.ifindex, B.id, DIR.ingress],
    ]);
    // Counted as A's egress and as B's ingress, as the two hooks of legacy mode count them.
    const bytes = BigInt(frames.reduce((n, fr) => n + fr.length, 0));
    expect(dp.metric(DROP.forwarded, DIR.egress)).toEqual({ packets: 2n, bytes });
    expect(dp.metric(DROP.forwarded, DIR.ingress)).toEqual({ packets: 2n, bytes });
  });

  test("from_container hands a packet whose TTL would expire to the stack with BPF host routing", () => {
    using dp = new TestDatapath({ hostRouting: "bpf" });
    setup(f, dp);
    const frame = packet(eth(), l3(f, f.a, f.b, 1), udp({ dport: 53 }));
    const result = testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } });
    expect(result.verdict).toBe("TC_ACT_OK");
    expectRewrite(frame, result.packet, {});
  });

  test("from_container runs the destination's ingress policy before redirecting with BPF host routing", () => {
    using dp = new TestDatapath({ hostRouting: "bpf" });
    setup(f, dp);
    dp.addEndpoint({ ...B, ip: f.b, flags: EP_FLAG.ingressEnforced });
    dp.policyEntry(B.id, { identity: A.identity, direction: "ingress", protocol: PROTO.tcp, port: 80 });
    const allowed = packet(eth(), l3(f, f.a, f.b), tcp({ sport: 40002, dport: 80, flags: ["syn"] }));
    const denied = packet(eth(), l3(f, f.a, f.b), tcp({ sport: 40002, dport: 81, flags: ["syn"] }));
    expect(testRun(dp.fromContainer, allowed, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_REDIRECT");
    expect(testRun(dp.fromContainer, denied, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    const drop = dp.events.drain().find((e) => e.type === EVENT.drop);
    expect(drop).toMatchObject({
      reason: DROP.policyDefault,
      direction: DIR.ingress,
      endpoint_id: B.id,
      src_identity: A.identity,
    });
    expect(dp.metric(DROP.policyDefault, DIR.ingress).packets).toBe(1n);
    expect(dp.metric(DROP.forwarded, DIR.egress).packets).toBe(2n);
    expect(dp.metric(DROP.forwarded, DIR.ingress).packets).toBe(1n);
  });

  test("from_container hands traffic to the host to the stack even with BPF host routing", () => {
    using dp = new TestDatapath({ hostRouting: "bpf", trace: true });
    setup(f, dp);
    const frame = packet(eth(), l3(f, f.a, f.host), tcp({ sport: 40003, dport: 22, flags: ["syn"] }));
    const result = testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } });
    expect(result.verdict).toBe("TC_ACT_OK");
    expectRewrite(frame, result.packet, {});
    expect(dp.events.drain().find((e) => e.type === EVENT.trace)).toMatchObject({
      reason: TRACE.toStack,
      dst_identity: ID.host,
    });
  });
});

describe("from_container control traffic", () => {
  test("from_container passes ARP and IPv6 neighbour discovery without an endpoint, and drops other L3", () => {
    using dp = new TestDatapath();
    const arp = packet(eth({ type: 0x0806 }), new Uint8Array(28));
    const ns = packet(
      eth(),
      ipv6({ src: "fe80::1", dst: "ff02::1:ff00:2", hopLimit: 255 }),
      icmpv6({ type: 135 }),
      new Uint8Array(20),
    );
    const other = packet(eth({ type: 0x88cc }), new Uint8Array(40));
    expect(testRun(dp.fromContainer, arp, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_OK");
    expect(testRun(dp.fromContainer, ns, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_OK");
    expect(testRun(dp.fromContainer, other, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    expect(dp.events.drain().map((e) => [e.type, e.reason, e.family])).toEqual([[EVENT.drop, DROP.unsupportedL3, 0]]);
  });

  test("from_container drops a malformed IPv4 header as an invalid packet", () => {
    using dp = new TestDatapath();
    const frame = packet(eth(), ipv4({ src: "10.0.1.1", dst: "10.0.1.2" }), udp({ dport: 53 }));
    frame[14] = 0x44; // version 4, header length 4 words (< 5)
    expect(testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    expect(dp.metric(DROP.invalidPacket, DIR.egress).packets).toBe(1n);
  });
});

describe.each(FAMILIES)("from_container with BPF host routing through the FIB ($name)", (f) => {
  test("from_container redirects by the FIB: bpf_redirect with the neighbour's MAC, bpf_redirect_neigh without one, the stack without a route", () => {
    // A's host-side veth (the FIB's input) and an uplink with a route and one resolved neighbour.
    using ns = netns({ label: "dpfib" });
    const { a: hostVeth, b: uplink } = vethPair(ns, ns);
    const v4 = f.name === "IPv4";
    ns.exec("sh", [
      "-c",
      v4 ? "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding" : "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    ]);
    ns.exec("ip", [
      "addr",
      "add",
      v4 ? "192.0.2.1/24" : "2001:db8::1/64",
      "dev",
      uplink.name,
      ...(v4 ? [] : ["nodad"]),
    ]);
    const neighbour = "02:00:00:00:99:07";
    ns.exec("ip", ["neigh", "replace", f.outside, "lladdr", neighbour, "nud", "permanent", "dev", uplink.name]);
    const uplinkMac = (JSON.parse(ns.exec("ip", ["-j", "link", "show", uplink.name])) as { address: string }[])[0]
      ?.address;

    using dp = new TestDatapath({ hostRouting: "bpf", trace: true });
    dp.addEndpoint({ ...A, ifindex: hostVeth.index, ip: f.a });
    dp.setIpcache(v4 ? "0.0.0.0/0" : "::/0", ID.world);
    const unresolved = v4 ? "192.0.2.8" : "2001:db8::8";
    const unrouted = v4 ? "203.0.113.9" : "2001:db8:ffff::9";
    const frame = (dst: string): Uint8Array =>
      packet(
        eth({ src: A.mac, dst: A.nodeMac }),
        l3(f, f.a, dst),
        tcp({ sport: 40100, dport: 443, flags: ["syn"] }),
        "x",
      );
    const run = (bytes: Uint8Array) =>
      ns.run(() => testRun(dp.fromContainer, bytes, { ctx: { ingressIfindex: hostVeth.index } }));
    const ttl = v4 ? { ipv4: { ttl: 63 } } : { ipv6: { hopLimit: 63 } };

    const resolved = run(frame(f.outside));
    expect(resolved.verdict).toBe("TC_ACT_REDIRECT");
    expectRewrite(frame(f.outside), resolved.packet, { eth: { dst: neighbour, src: uplinkMac }, ...ttl });
    const neigh = run(frame(unresolved));
    expect(neigh.verdict).toBe("TC_ACT_REDIRECT");
    // bpf_redirect_neigh fills the MACs when it transmits.
    expectRewrite(frame(unresolved), neigh.packet, ttl);
    const stack = run(frame(unrouted));
    expect(stack.verdict).toBe("TC_ACT_OK");
    expectRewrite(frame(unrouted), stack.packet, {});
    const traces = dp.events.drain().filter((e) => e.type === EVENT.trace);
    expect(traces.map((e) => [e.reason, e.ifindex, e.dst_identity])).toEqual([
      [TRACE.toNetdev, uplink.index, ID.world],
      [TRACE.toNetdev, uplink.index, ID.world],
      [TRACE.toStack, hostVeth.index, ID.world],
    ]);
  });
});
