// Conntrack (bpf/include/dp/conntrack.h) under BPF_PROG_TEST_RUN: replies
// and related ICMP errors bypass policy, TCP state transitions, lifetimes,
// UDP and ICMP echo, and a full table, IPv4 and IPv6. Pods A and B each
// allow only their own outgoing connections (A → B) in policy; B's
// replies pass through conntrack alone.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { eth, icmp, icmpv6, ipv4, ipv6, type Layer, packet, tcp, type TcpFlag, testRun, udp } from "@dp/hooks";
import {
  CT,
  CT_FLAG,
  CT_STATE,
  DIR,
  DROP,
  EP_FLAG,
  EVENT,
  ID,
  PROTO,
  SCOPE,
  TestDatapath,
  type TestDatapathOptions,
  VERDICT,
} from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

// to_container checks skb->ifindex, which a test run can only set to an
// existing device: the endpoints' host-side veths are a veth pair in a
// test namespace.
let ns: TestNetns | undefined;
const A = { id: 1, identity: 1001, ifindex: 0 };
const B = { id: 2, identity: 1002, ifindex: 0 };
beforeAll(() => {
  if (process.getuid?.() !== 0) return;
  ns = netns({ label: "dpct" });
  const pair = vethPair(ns, ns);
  A.ifindex = pair.a.index;
  B.ifindex = pair.b.index;
});
afterAll(() => ns?.close());

const FAMILIES = [
  {
    name: "IPv4",
    a: "10.0.1.1",
    b: "10.0.1.2",
    world: "0.0.0.0/0",
    icmpProto: PROTO.icmp,
    echo: 8,
    unreach: 3,
    l3: "ipv4",
  },
  {
    name: "IPv6",
    a: "fd00::1:1",
    b: "fd00::1:2",
    world: "::/0",
    icmpProto: PROTO.icmpv6,
    echo: 128,
    unreach: 1,
    l3: "ipv6",
  },
] as const;
type Family = (typeof FAMILIES)[number];
type Pod = "A" | "B";

function ip(f: Family, src: string, dst: string): Layer {
  return f.l3 === "ipv4" ? ipv4({ src, dst }) : ipv6({ src, dst });
}

function tcpFrame(f: Family, from: Pod, sport: number, dport: number, flags: TcpFlag[]): Uint8Array {
  const [src, dst] = from === "A" ? [f.a, f.b] : [f.b, f.a];
  return packet(eth(), ip(f, src, dst), tcp({ sport, dport, flags }), "payload");
}

/** Pods A and B, enforcing both directions; A may open TCP 80, UDP 53 and echo to B, B accepts them. */
function open(f: Family, options: TestDatapathOptions = {}): TestDatapath {
  const dp = new TestDatapath(options);
  const flags = EP_FLAG.ingressEnforced | EP_FLAG.egressEnforced;
  dp.addEndpoint({ ...A, ip: f.a, flags });
  dp.addEndpoint({ ...B, ip: f.b, flags });
  dp.setIpcache(f.world, ID.world);
  for (const [protocol, port] of [
    [PROTO.tcp, 80],
    [PROTO.udp, 53],
    [f.icmpProto, f.echo],
  ] as const) {
    dp.policyEntry(A.id, { identity: B.identity, direction: "egress", protocol, port });
    dp.policyEntry(B.id, { identity: A.identity, direction: "ingress", protocol, port });
  }
  return dp;
}

/** Sends a packet from a pod through its from_container and, when that passes, through the other pod's to_container (legacy routing). */
function send(dp: TestDatapath, from: Pod, bytes: Uint8Array): [string | undefined, string | undefined] {
  const src = from === "A" ? A : B;
  const dst = from === "A" ? B : A;
  const egress = testRun(dp.fromContainer, bytes, { ctx: { ingressIfindex: src.ifindex } }).verdict;
  if (egress !== "TC_ACT_OK") return [egress, undefined];
  const ingress = (ns as TestNetns).run(() =>
    testRun(dp.toContainer, bytes, { ctx: { ifindex: dst.ifindex } }),
  ).verdict;
  return [egress, ingress];
}

const PASS = ["TC_ACT_OK", "TC_ACT_OK"];
const SEC = 1_000_000_000n;

// The programs read CLOCK_MONOTONIC as of the last tick (bpf_ktime_get_coarse_ns):
// up to one tick (4 ms at HZ=250, 10 ms at HZ=100) behind the precise clock.
const TICK = 10_000_000n;

/** Asserts an absolute expiry is `seconds` after some time between `before` (less a tick) and now. */
function expectExpiry(expires: bigint | undefined, before: bigint, seconds: number): void {
  const after = process.hrtime.bigint();
  expect(expires).toBeDefined();
  const e = expires as bigint;
  expect(
    e >= before - TICK + BigInt(seconds) * SEC && e <= after + BigInt(seconds) * SEC,
    `expires ${e} vs now ${after} + ${seconds} s`,
  ).toBe(true);
}

describe.each(FAMILIES)("conntrack ($name)", (f) => {
  const tuple = (sport: number, dport: number, nexthdr: number = PROTO.tcp) => ({
    saddr: f.a,
    daddr: f.b,
    sport,
    dport,
    nexthdr,
  });

  test("a reply passes without policy: the SYN creates the entries, the SYN-ACK is a reply", () => {
    using dp = open(f);
    expect(send(dp, "A", tcpFrame(f, "A", 40000, 80, ["syn"]))).toEqual(PASS);
    expect(dp.ctEntry(tuple(40000, 80), SCOPE.egress)).toMatchObject({
      src_identity: A.identity,
      state: CT_STATE.synSent,
    });
    expect(dp.ctEntry(tuple(40000, 80), SCOPE.ingress)).toMatchObject({
      src_identity: A.identity,
      state: CT_STATE.synSent,
    });
    expect(dp.events.drain().map((e) => [e.type, e.verdict, e.ct])).toEqual([
      [EVENT.policyVerdict, VERDICT.allow, CT.new],
      [EVENT.policyVerdict, VERDICT.allow, CT.new],
    ]);
    // B's egress and A's ingress allow nothing: only conntrack lets the reply through.
    expect(send(dp, "B", tcpFrame(f, "B", 80, 40000, ["syn", "ack"]))).toEqual(PASS);
    expect(dp.events.drain()).toEqual([]);
    expect(dp.ctEntries("tcp")).toHaveLength(2);
    // The same packet as a new connection from B is denied.
    expect(send(dp, "B", tcpFrame(f, "B", 81, 40000, ["syn", "ack"]))).toEqual(["TC_ACT_SHOT", undefined]);
    expect(dp.events.drain().find((e) => e.type === EVENT.drop)).toMatchObject({
      reason: DROP.policyDefault,
      ct: CT.new,
    });
  });

  test("TCP moves SYN_SENT → ESTABLISHED → closing on FIN, with counters and lifetimes", () => {
    using dp = open(f);
    const scopes = [SCOPE.egress, SCOPE.ingress];
    let before = process.hrtime.bigint();
    send(dp, "A", tcpFrame(f, "A", 40001, 80, ["syn"]));
    for (const scope of scopes) {
      const e = dp.ctEntry(tuple(40001, 80), scope);
      expect(e).toMatchObject({
        state: CT_STATE.synSent,
        flags: 0,
        tx_packets: 1n,
        rx_packets: 0n,
        tx_flags_seen: 0x02,
      });
      expectExpiry(e?.expires, before, 60);
      expect(e?.created).toBeGreaterThanOrEqual(before - TICK);
    }
    before = process.hrtime.bigint();
    expect(send(dp, "B", tcpFrame(f, "B", 80, 40001, ["syn", "ack"]))).toEqual(PASS);
    for (const scope of scopes) {
      const e = dp.ctEntry(tuple(40001, 80), scope);
      expect(e).toMatchObject({ state: CT_STATE.synSent, rx_packets: 1n, rx_flags_seen: 0x12 });
      expectExpiry(e?.expires, before, 60);
    }
    before = process.hrtime.bigint();
    expect(send(dp, "A", tcpFrame(f, "A", 40001, 80, ["ack"]))).toEqual(PASS);
    const frame = tcpFrame(f, "A", 40001, 80, ["ack", "psh"]);
    expect(send(dp, "A", frame)).toEqual(PASS);
    for (const scope of scopes) {
      const e = dp.ctEntry(tuple(40001, 80), scope);
      expect(e).toMatchObject({ state: CT_STATE.established, flags: CT_FLAG.seenNonSyn, tx_packets: 3n });
      expectExpiry(e?.expires, before, 21600);
    }
    before = process.hrtime.bigint();
    expect(send(dp, "A", tcpFrame(f, "A", 40001, 80, ["fin", "ack"]))).toEqual(PASS);
    for (const scope of scopes) {
      const e = dp.ctEntry(tuple(40001, 80), scope);
      expect(e).toMatchObject({ state: CT_STATE.closing, flags: CT_FLAG.seenNonSyn | CT_FLAG.txClosing });
      expectExpiry(e?.expires, before, 10);
    }
    expect(send(dp, "B", tcpFrame(f, "B", 80, 40001, ["fin", "ack"]))).toEqual(PASS);
    const e = dp.ctEntry(tuple(40001, 80), SCOPE.egress);
    expect(e).toMatchObject({
      flags: CT_FLAG.seenNonSyn | CT_FLAG.txClosing | CT_FLAG.rxClosing,
      tx_packets: 4n,
      rx_packets: 2n,
    });
    expect(e?.tx_bytes).toBe(BigInt(frame.length) * 4n);
    // Only the two SYNs of the new connection went through policy.
    expect(dp.events.drain().filter((ev) => ev.type === EVENT.policyVerdict)).toHaveLength(2);
  });

  test("TCP RST closes both directions, and a new SYN reopens the entry through policy", () => {
    using dp = open(f);
    send(dp, "A", tcpFrame(f, "A", 40002, 80, ["syn"]));
    send(dp, "A", tcpFrame(f, "A", 40002, 80, ["ack"]));
    const before = process.hrtime.bigint();
    expect(send(dp, "B", tcpFrame(f, "B", 80, 40002, ["rst"]))).toEqual(PASS);
    const e = dp.ctEntry(tuple(40002, 80), SCOPE.egress);
    expect(e).toMatchObject({
      state: CT_STATE.closing,
      flags: CT_FLAG.seenNonSyn | CT_FLAG.txClosing | CT_FLAG.rxClosing | CT_FLAG.rst,
    });
    expectExpiry(e?.expires, before, 10);
    dp.events.drain();
    expect(send(dp, "A", tcpFrame(f, "A", 40002, 80, ["syn"]))).toEqual(PASS);
    expect(dp.events.drain().map((ev) => [ev.type, ev.ct])).toEqual([
      [EVENT.policyVerdict, CT.reopened],
      [EVENT.policyVerdict, CT.reopened],
    ]);
    expect(dp.ctEntry(tuple(40002, 80), SCOPE.egress)).toMatchObject({
      state: CT_STATE.synSent,
      flags: 0,
      tx_packets: 1n,
    });
  });

  test("lifetimes come from the dp_ct_timeout_* settings", () => {
    using dp = open(f, { timeouts: { syn: 5, tcp: 100, close: 3, any: 7 } });
    const before = process.hrtime.bigint();
    send(dp, "A", tcpFrame(f, "A", 40003, 80, ["syn"]));
    expectExpiry(dp.ctEntry(tuple(40003, 80), SCOPE.egress)?.expires, before, 5);
    send(dp, "A", tcpFrame(f, "A", 40003, 80, ["ack"]));
    expectExpiry(dp.ctEntry(tuple(40003, 80), SCOPE.egress)?.expires, before, 100);
    send(dp, "A", tcpFrame(f, "A", 40003, 80, ["fin"]));
    expectExpiry(dp.ctEntry(tuple(40003, 80), SCOPE.egress)?.expires, before, 3);
    send(dp, "A", packet(eth(), ip(f, f.a, f.b), udp({ sport: 40003, dport: 53 })));
    expectExpiry(dp.ctEntry(tuple(40003, 53, PROTO.udp), SCOPE.egress)?.expires, before, 7);
  });

  test("UDP and ICMP echo are tracked in dp_ct_any and their replies pass", () => {
    using dp = open(f);
    const before = process.hrtime.bigint();
    expect(send(dp, "A", packet(eth(), ip(f, f.a, f.b), udp({ sport: 40004, dport: 53 }), "q"))).toEqual(PASS);
    const entry = dp.ctEntry(tuple(40004, 53, PROTO.udp), SCOPE.egress);
    expect(entry).toMatchObject({ state: CT_STATE.established, tx_packets: 1n });
    expectExpiry(entry?.expires, before, 60);
    expect(send(dp, "B", packet(eth(), ip(f, f.b, f.a), udp({ sport: 53, dport: 40004 }), "a"))).toEqual(PASS);
    expect(dp.ctEntry(tuple(40004, 53, PROTO.udp), SCOPE.egress)).toMatchObject({ rx_packets: 1n });

    const echo = (type: "echoRequest" | "echoReply"): Layer =>
      f.l3 === "ipv4" ? icmp({ type, id: 77, seq: 1 }) : icmpv6({ type, id: 77, seq: 1 });
    expect(send(dp, "A", packet(eth(), ip(f, f.a, f.b), echo("echoRequest"), "ping"))).toEqual(PASS);
    // An echo request's tuple has sport 0 and dport = id.
    expect(dp.ctEntry(tuple(0, 77, f.icmpProto), SCOPE.egress)).toMatchObject({
      state: CT_STATE.established,
      tx_packets: 1n,
    });
    expect(send(dp, "B", packet(eth(), ip(f, f.b, f.a), echo("echoReply"), "ping"))).toEqual(PASS);
    expect(dp.ctEntry(tuple(0, 77, f.icmpProto), SCOPE.ingress)).toMatchObject({ rx_packets: 1n });
    expect(dp.ctEntries("any")).toHaveLength(4);
    expect(dp.ctEntries("tcp")).toHaveLength(0);
  });

  test("an ICMP error carrying a tracked tuple passes as related; one carrying another tuple is denied", () => {
    using dp = open(f);
    send(dp, "A", tcpFrame(f, "A", 40005, 80, ["syn"]));
    dp.events.drain();
    const error = (dport: number): Uint8Array => {
      const inner = packet(ip(f, f.a, f.b), tcp({ sport: 40005, dport, flags: ["syn"] }));
      const head = f.l3 === "ipv4" ? icmp({ type: f.unreach, code: 3 }) : icmpv6({ type: f.unreach, code: 4 });
      return packet(eth(), ip(f, f.b, f.a), head, inner);
    };
    // No policy allows ICMP errors from B (B's egress, A's ingress): only conntrack does.
    expect(send(dp, "B", error(80))).toEqual(PASS);
    expect(dp.events.drain()).toEqual([]);
    expect(send(dp, "B", error(81))).toEqual(["TC_ACT_SHOT", undefined]);
    expect(dp.events.drain().find((e) => e.type === EVENT.drop)).toMatchObject({
      reason: DROP.policyDefault,
      protocol: f.icmpProto,
    });
  });

  test("an ICMP error about a reply (sent back to the responder) is related too", () => {
    using dp = open(f);
    send(dp, "A", tcpFrame(f, "A", 40008, 80, ["syn"]));
    send(dp, "B", tcpFrame(f, "B", 80, 40008, ["syn", "ack"]));
    dp.events.drain();
    // A's side cannot take B's SYN-ACK: the error goes from A to B and carries B → A.
    const inner = packet(ip(f, f.b, f.a), tcp({ sport: 80, dport: 40008, flags: ["syn", "ack"] }));
    const head = f.l3 === "ipv4" ? icmp({ type: f.unreach, code: 3 }) : icmpv6({ type: f.unreach, code: 4 });
    expect(send(dp, "A", packet(eth(), ip(f, f.a, f.b), head, inner))).toEqual(PASS);
    expect(dp.events.drain()).toEqual([]);
  });

  test("a full conntrack table drops new connections with a reason, a counter and an event", () => {
    using dp = open(f, { maxEntries: { dp_ct_tcp: 2 } });
    // The first SYN takes both entries (egress scope at A, ingress scope at B).
    expect(send(dp, "A", tcpFrame(f, "A", 40006, 80, ["syn"]))).toEqual(PASS);
    dp.events.drain();
    const syn = tcpFrame(f, "A", 40007, 80, ["syn"]);
    expect(send(dp, "A", syn)).toEqual(["TC_ACT_SHOT", undefined]);
    const drop = dp.events.drain().find((e) => e.type === EVENT.drop);
    expect(drop).toMatchObject({
      reason: DROP.ctMapFull,
      direction: DIR.egress,
      endpoint_id: A.id,
      verdict: VERDICT.allow,
      sport: 40007,
      dport: 80,
    });
    expect(dp.metric(DROP.ctMapFull, DIR.egress)).toEqual({ packets: 1n, bytes: BigInt(syn.length) });
    expect(dp.ctEntries("tcp")).toHaveLength(2);
    // Tracked connections go on.
    expect(send(dp, "B", tcpFrame(f, "B", 80, 40006, ["syn", "ack"]))).toEqual(PASS);
    expect(send(dp, "A", tcpFrame(f, "A", 40006, 80, ["ack"]))).toEqual(PASS);
  });
});
