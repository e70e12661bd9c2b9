// Built packets against a real kernel: frames from packet() go out on a
// veth through a raw packet socket, and the peer namespace's stack is the
// judge. It answers an echo request, a SYN to a closed port (RST) or a
// datagram to a closed port (ICMP unreachable) only when every checksum is
// right; with one checksum forced wrong it stays silent and counts a
// checksum error. Its answers are parsed back, checksums included.
import { beforeEach, describe, expect, test } from "vitest";
import { loadCollection, readCollectionSpec } from "@dp/core";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import {
  eth,
  expectPacket,
  expectRewrite,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  type Layer,
  packet,
  type ParsedPacket,
  parsePacket,
  tcp,
  testRun,
  udp,
  vxlan,
} from "@dp/hooks";
import { macOf, PacketSocket, snmpCounters } from "./_test_wire.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../../bpf/build/testdata/hooks_packet.o", import.meta.url).pathname;

interface Wire {
  readonly a: TestNetns;
  readonly b: TestNetns;
  readonly socket: PacketSocket;
  /** Ethernet header from a to b. */
  readonly toB: Layer;
  [Symbol.dispose](): void;
}

/**
 * Namespaces a (10.0.0.1, fd00::1) and b (10.0.0.2, fd00::2) joined by a
 * veth, with static neighbours, no ICMP rate limit, and a VXLAN device
 * (VNI 42, 192.168.1.2) in b; a packet socket on a's end.
 */
function wire(): Wire {
  const a = netns({ label: "wirea" });
  const b = netns({ label: "wireb" });
  try {
    const { a: va, b: vb } = vethPair(a, b, { addressA: "10.0.0.1/24", addressB: "10.0.0.2/24" });
    a.exec("ip", ["addr", "add", "fd00::1/64", "dev", va.name, "nodad"]);
    b.exec("ip", ["addr", "add", "fd00::2/64", "dev", vb.name, "nodad"]);
    b.exec("ip", ["addr", "add", "10.0.0.9/32", "dev", vb.name]);
    const macA = macOf(a, va.name);
    const macB = macOf(b, vb.name);
    b.exec("ip", ["neigh", "replace", "10.0.0.1", "lladdr", macA, "dev", vb.name, "nud", "permanent"]);
    b.exec("ip", ["neigh", "replace", "fd00::1", "lladdr", macA, "dev", vb.name, "nud", "permanent"]);
    b.exec("sysctl", ["-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]);
    b.exec("ip", [
      "link",
      "add",
      "vx0",
      "type",
      "vxlan",
      "id",
      "42",
      "dstport",
      "4789",
      "local",
      "10.0.0.2",
      "dev",
      vb.name,
    ]);
    b.exec("ip", ["link", "set", "vx0", "address", "02:00:00:00:02:02", "up"]);
    b.exec("ip", ["addr", "add", "192.168.1.2/24", "dev", "vx0"]);
    b.exec("ip", ["neigh", "add", "192.168.1.1", "lladdr", "02:00:00:00:01:01", "dev", "vx0"]);
    const socket = new PacketSocket(a, va.name);
    return {
      a,
      b,
      socket,
      toB: eth({ src: macA, dst: macB }),
      [Symbol.dispose]() {
        socket.close();
        b.close();
        a.close();
      },
    };
  } catch (err) {
    b.close();
    a.close();
    throw err;
  }
}

/** A request that the peer answers only when its checksums are right. */
interface Exchange {
  readonly name: string;
  /** The frame, with `broken` forcing one checksum wrong. */
  readonly build: (w: Wire, broken: boolean) => Uint8Array;
  /** Whether a frame is the answer. */
  readonly isAnswer: (p: ParsedPacket) => boolean;
  /** The peer's counter of checksum errors for the broken request. */
  readonly counter: string;
}

const ECHO_PAYLOAD = "echo from @dp/hooks";

const EXCHANGES: readonly Exchange[] = [
  {
    name: "an ICMP echo request",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2", id: 1 }),
        icmp({ id: 0x4242, seq: 1, ...(broken ? { forceChecksum: 1 } : {}) }),
        ECHO_PAYLOAD,
      ),
    isAnswer: (p) => p.icmp?.type === 0 && p.icmp.id === 0x4242,
    counter: "Icmp.InCsumErrors",
  },
  {
    name: "an IPv4 header",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2", ...(broken ? { forceChecksum: 1 } : {}) }),
        icmp({ id: 0x4343 }),
      ),
    isAnswer: (p) => p.icmp?.type === 0 && p.icmp.id === 0x4343,
    counter: "Ip.InHdrErrors",
  },
  {
    name: "an ICMPv6 echo request",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv6({ src: "fd00::1", dst: "fd00::2" }),
        icmpv6({ id: 0x4444, seq: 2, ...(broken ? { forceChecksum: 1 } : {}) }),
        ECHO_PAYLOAD,
      ),
    isAnswer: (p) => p.icmpv6?.type === 129 && p.icmpv6.id === 0x4444,
    counter: "Icmp6InCsumErrors",
  },
  {
    name: "a TCP SYN over IPv4",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2", df: true }),
        tcp({
          sport: 40001,
          dport: 9,
          seq: 1000,
          flags: ["syn"],
          options: [{ kind: "mss", value: 1460 }, { kind: "sackPermitted" }],
          ...(broken ? { forceChecksum: 1 } : {}),
        }),
      ),
    isAnswer: (p) => p.tcp?.dport === 40001 && p.tcp.flags.includes("rst") && p.tcp.ack === 1001,
    counter: "Tcp.InCsumErrors",
  },
  {
    name: "a TCP SYN over IPv6",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv6({ src: "fd00::1", dst: "fd00::2" }),
        tcp({ sport: 40002, dport: 9, seq: 5, flags: ["syn"], ...(broken ? { forceChecksum: 1 } : {}) }),
      ),
    isAnswer: (p) => p.tcp?.dport === 40002 && p.tcp.flags.includes("rst") && p.tcp.ack === 6,
    counter: "Tcp.InCsumErrors",
  },
  {
    name: "a UDP datagram over IPv4",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }),
        udp({ sport: 40003, dport: 9, ...(broken ? { forceChecksum: 1 } : {}) }),
        "x",
      ),
    isAnswer: (p) => p.icmp?.type === 3 && p.icmp.code === 3 && p.payload.length >= 28 && p.payload[21] === 0x43,
    counter: "Udp.InCsumErrors",
  },
  {
    name: "a UDP datagram over IPv6",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv6({ src: "fd00::1", dst: "fd00::2" }),
        udp({ sport: 40004, dport: 9, ...(broken ? { forceChecksum: 1 } : {}) }),
        "x",
      ),
    isAnswer: (p) => p.icmpv6?.type === 1 && p.icmpv6.code === 4 && p.payload[41] === 0x44,
    counter: "Udp6InCsumErrors",
  },
  {
    name: "a VXLAN packet (outer UDP checksum)",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }),
        udp({ sport: 50000, ...(broken ? { forceChecksum: 1 } : {}) }),
        vxlan({ vni: 42 }),
        eth({ src: "02:00:00:00:01:01", dst: "02:00:00:00:02:02" }),
        ipv4({ src: "192.168.1.1", dst: "192.168.1.2" }),
        icmp({ id: 0x4545, seq: 3 }),
        ECHO_PAYLOAD,
      ),
    isAnswer: (p) => p.inner?.icmp?.type === 0 && p.inner.icmp.id === 0x4545,
    counter: "Udp.InCsumErrors",
  },
  {
    name: "a VXLAN packet (inner ICMP checksum)",
    build: (w, broken) =>
      packet(
        w.toB,
        ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }),
        udp({ sport: 50001 }),
        vxlan({ vni: 42 }),
        eth({ src: "02:00:00:00:01:01", dst: "02:00:00:00:02:02" }),
        ipv4({ src: "192.168.1.1", dst: "192.168.1.2" }),
        icmp({ id: 0x4646, seq: 4, ...(broken ? { forceChecksum: 1 } : {}) }),
      ),
    isAnswer: (p) => p.inner?.icmp?.type === 0 && p.inner.icmp.id === 0x4646,
    counter: "Icmp.InCsumErrors",
  },
];

function answer(
  w: Wire,
  frame: Uint8Array,
  isAnswer: (p: ParsedPacket) => boolean,
  timeoutMs?: number,
): ParsedPacket | undefined {
  w.socket.drain();
  w.socket.send(frame);
  const reply = w.socket.receive((f) => {
    try {
      return isAnswer(parsePacket(f));
    } catch {
      return false;
    }
  }, timeoutMs);
  return reply === undefined ? undefined : parsePacket(reply);
}

/** Checksums the kernel computed in software: its ICMP and IPv4 headers always; TCP RSTs over IPv4. */
function softwareChecksumsValid(p: ParsedPacket): void {
  for (const h of [p.ipv4, p.icmp, p.icmpv6, p.ipv6 === undefined ? p.tcp : undefined])
    if (h) expect(h.checksumValid).toBe(true);
  if (p.inner) softwareChecksumsValid(p.inner);
}

describe("packet() on the wire", () => {
  test.each(EXCHANGES)("the peer kernel answers $name built by packet()", (x) => {
    using w = wire();
    const reply = answer(w, x.build(w, false), x.isAnswer);
    expect(reply, "no answer from the peer").toBeDefined();
    softwareChecksumsValid(reply as ParsedPacket);
  });

  test.each(EXCHANGES)("the peer kernel drops $name with a wrong checksum and counts it", (x) => {
    using w = wire();
    const before = snmpCounters(w.b).get(x.counter) ?? 0;
    expect(answer(w, x.build(w, true), x.isAnswer, 300)).toBeUndefined();
    expect(snmpCounters(w.b).get(x.counter)).toBe(before + 1);
  });

  test("the echo reply parses into the request's id, sequence number and payload", () => {
    using w = wire();
    const reply = answer(
      w,
      packet(w.toB, ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }), icmp({ id: 7, seq: 9 }), ECHO_PAYLOAD),
      (p) => p.icmp?.type === 0,
    );
    expectPacket(reply as ParsedPacket, {
      ipv4: { src: "10.0.0.2", dst: "10.0.0.1", protocol: 1 },
      icmp: { type: 0, code: 0, id: 7, seq: 9 },
      payload: ECHO_PAYLOAD,
    });
  });

  test("the VXLAN reply parses into an inner echo reply inside VNI 42", () => {
    using w = wire();
    const x = EXCHANGES.find((e) => e.name.includes("outer UDP")) as Exchange;
    const reply = answer(w, x.build(w, false), x.isAnswer) as ParsedPacket;
    expectPacket(
      reply,
      {
        ipv4: { src: "10.0.0.2", dst: "10.0.0.1" },
        udp: { dport: 4789 },
        vxlan: { vni: 42, flags: 8 },
        inner: {
          eth: { src: "02:00:00:00:02:02", dst: "02:00:00:00:01:01" },
          ipv4: { src: "192.168.1.2", dst: "192.168.1.1" },
          payload: ECHO_PAYLOAD,
        },
      },
      { checksums: "ignore" },
    );
    softwareChecksumsValid(reply);
  });
});

describe("testRun() output on the wire", () => {
  test.each([
    ["an echo request", () => icmp({ id: 0x5151 }), (p: ParsedPacket) => p.icmp?.type === 0 && p.icmp.id === 0x5151],
    [
      "a SYN",
      () => tcp({ sport: 40010, dport: 9, seq: 1, flags: ["syn"] }),
      (p: ParsedPacket) => p.tcp?.dport === 40010 && p.tcp.flags.includes("rst"),
    ],
    ["a UDP datagram", () => udp({ sport: 40011, dport: 9 }), (p: ParsedPacket) => p.icmp?.type === 3],
  ] as const)("the peer kernel answers %s whose destination xdp_rewrite_dst changed to 10.0.0.9", (_, l4, isAnswer) => {
    using w = wire();
    using coll = loadCollection(readCollectionSpec(OBJECT));
    const before = packet(w.toB, ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }), l4(), "payload");
    const result = testRun(coll.program("xdp_rewrite_dst"), before);
    expect(result.verdict).toBe("XDP_PASS");
    expectRewrite(before, result.packet, { ipv4: { dst: "10.0.0.9" } });
    const reply = answer(w, result.packet, isAnswer);
    expect(reply, "no answer from the peer").toBeDefined();
    expect(reply?.ipv4?.src).toBe("10.0.0.9");
  });
});
