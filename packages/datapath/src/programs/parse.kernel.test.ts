// Parsing (bpf/include/dp/parse.h, frag.h) as policy sees it, through
// from_container under BPF_PROG_TEST_RUN: IPv4 options and fragments, IPv6
// extension headers and fragments. A enforces egress and allows only TCP port 80, so
// the verdict shows which protocol and port the parser found.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { eth, ipv4, ipv6, packet, tcp, testRun } from "@dp/hooks";
import { addr16, DIR, DROP, EP_FLAG, EVENT, ID, PROTO, SCOPE, TestDatapath, VERDICT } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

const A = { id: 1, identity: 1001, ifindex: 101 };
const V4 = { src: "10.0.1.1", dst: "192.0.2.7" };
const V6 = { src: "fd00::1:1", dst: "2001:db8::7" };

function open(): TestDatapath {
  const dp = new TestDatapath();
  dp.addEndpoint({ ...A, ip: V4.src, flags: EP_FLAG.egressEnforced });
  dp.addEndpoint({ ...A, ip: V6.src, flags: EP_FLAG.egressEnforced });
  dp.setIpcache("0.0.0.0/0", ID.world);
  dp.setIpcache("::/0", ID.world);
  dp.policyEntry(A.id, { identity: ID.world, direction: "egress", protocol: PROTO.tcp, port: 80, cookie: 80 });
  return dp;
}

/** Runs a frame and returns the verdict with what the events say the parser saw. */
function run(
  dp: TestDatapath,
  bytes: Uint8Array,
): { verdict: string | undefined; seen: number[] | undefined; drop: number | undefined } {
  const verdict = testRun(dp.fromContainer, bytes, { ctx: { ingressIfindex: A.ifindex } }).verdict;
  const events = dp.events.drain();
  const v = events.find((e) => e.type === EVENT.policyVerdict);
  return {
    verdict,
    seen: v === undefined ? undefined : [v.protocol, v.sport, v.dport, v.verdict],
    drop: events.find((e) => e.type === EVENT.drop)?.reason,
  };
}

/** The bytes of a TCP segment (with a checksum valid for these addresses). */
function tcpSegment(src: string, dst: string, dport: number): Uint8Array {
  const whole = src.includes(":")
    ? packet(ipv6({ src, dst }), tcp({ sport: 5555, dport, flags: ["syn"] }))
    : packet(ipv4({ src, dst }), tcp({ sport: 5555, dport, flags: ["syn"] }));
  return whole.subarray(src.includes(":") ? 40 : 20);
}

/** An IPv6 extension header of 8 bytes: next header, length 0, then PadN. */
function ext(next: number): Uint8Array {
  return new Uint8Array([next, 0, 1, 4, 0, 0, 0, 0]);
}

/** An IPv6 fragment header. */
function fragment(next: number, offsetUnits: number, more: boolean, id: number): Uint8Array {
  const field = (offsetUnits << 3) | (more ? 1 : 0);
  return new Uint8Array([next, 0, field >> 8, field & 0xff, 0, 0, id >> 8, id & 0xff]);
}

describe("parsing", () => {
  test("IPv4 options are skipped to find the TCP ports", () => {
    using dp = open();
    const options = new Uint8Array([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(run(dp, packet(eth(), ipv4({ ...V4, options }), tcp({ sport: 5555, dport: 80, flags: ["syn"] })))).toEqual({
      verdict: "TC_ACT_OK",
      seen: [PROTO.tcp, 5555, 80, VERDICT.allow],
      drop: undefined,
    });
    expect(
      run(dp, packet(eth(), ipv4({ ...V4, options }), tcp({ sport: 5555, dport: 81, flags: ["syn"] }))),
    ).toMatchObject({
      verdict: "TC_ACT_SHOT",
      seen: [PROTO.tcp, 5555, 81, VERDICT.defaultDeny],
    });
  });

  test("IPv4 later fragments take the ports of their first fragment; without one they have none", () => {
    using dp = open();
    const first = packet(eth(), ipv4({ ...V4, mf: true, id: 7 }), tcp({ sport: 5555, dport: 80, flags: ["syn"] }));
    expect(run(dp, first)).toMatchObject({ verdict: "TC_ACT_OK", seen: [PROTO.tcp, 5555, 80, VERDICT.allow] });
    expect(
      dp.frag.get({
        saddr: addr16(V4.src),
        daddr: addr16(V4.dst),
        id: 7,
        nexthdr: PROTO.tcp,
        family: 4,
        pad: new Uint8Array(2),
      }),
    ).toMatchObject({ sport: 5555, dport: 80 });
    // Same datagram: the first fragment's connection, so conntrack passes it without a verdict.
    const later = packet(eth(), ipv4({ ...V4, id: 7, fragmentOffset: 3, protocol: PROTO.tcp }), new Uint8Array(24));
    expect(run(dp, later)).toEqual({ verdict: "TC_ACT_OK", seen: undefined, drop: undefined });
    expect(
      dp.ctEntry({ saddr: V4.src, daddr: V4.dst, sport: 5555, dport: 80, nexthdr: PROTO.tcp }, SCOPE.egress)
        ?.tx_packets,
    ).toBe(2n);
    const orphan = packet(eth(), ipv4({ ...V4, id: 8, fragmentOffset: 3, protocol: PROTO.tcp }), new Uint8Array(24));
    expect(run(dp, orphan)).toEqual({
      verdict: "TC_ACT_SHOT",
      seen: [PROTO.tcp, 0, 0, VERDICT.defaultDeny],
      drop: DROP.policyDefault,
    });
  });

  test("IPv6 extension headers (hop-by-hop, destination options, fragment) are walked to TCP", () => {
    using dp = open();
    const chain = (dport: number, id: number): Uint8Array =>
      packet(
        eth(),
        ipv6({ ...V6, nextHeader: 0 }),
        ext(60),
        ext(44),
        fragment(PROTO.tcp, 0, true, id),
        tcpSegment(V6.src, V6.dst, dport),
      );
    const later = (id: number): Uint8Array =>
      packet(eth(), ipv6({ ...V6, nextHeader: 44 }), fragment(PROTO.tcp, 2, false, id), new Uint8Array(24));
    expect(run(dp, chain(80, 1))).toEqual({
      verdict: "TC_ACT_OK",
      seen: [PROTO.tcp, 5555, 80, VERDICT.allow],
      drop: undefined,
    });
    expect(run(dp, chain(81, 2))).toMatchObject({
      verdict: "TC_ACT_SHOT",
      seen: [PROTO.tcp, 5555, 81, VERDICT.defaultDeny],
    });
    // Later fragments: of the allowed datagram (conntrack), of the denied one (policy), of none.
    expect(run(dp, later(1))).toEqual({ verdict: "TC_ACT_OK", seen: undefined, drop: undefined });
    expect(run(dp, later(2))).toMatchObject({
      verdict: "TC_ACT_SHOT",
      seen: [PROTO.tcp, 5555, 81, VERDICT.defaultDeny],
    });
    expect(run(dp, later(3))).toMatchObject({ verdict: "TC_ACT_SHOT", seen: [PROTO.tcp, 0, 0, VERDICT.defaultDeny] });
  });

  test("more than four IPv6 extension headers make an invalid packet", () => {
    using dp = open();
    const four = packet(
      eth(),
      ipv6({ ...V6, nextHeader: 0 }),
      ext(60),
      ext(60),
      ext(60),
      ext(PROTO.tcp),
      tcpSegment(V6.src, V6.dst, 80),
    );
    const five = packet(
      eth(),
      ipv6({ ...V6, nextHeader: 0 }),
      ext(60),
      ext(60),
      ext(60),
      ext(60),
      ext(PROTO.tcp),
      tcpSegment(V6.src, V6.dst, 80),
    );
    expect(run(dp, four)).toMatchObject({ verdict: "TC_ACT_OK", seen: [PROTO.tcp, 5555, 80, VERDICT.allow] });
    expect(run(dp, five)).toEqual({ verdict: "TC_ACT_SHOT", seen: undefined, drop: DROP.invalidPacket });
    expect(dp.metric(DROP.invalidPacket, DIR.egress).packets).toBe(1n);
  });
});
