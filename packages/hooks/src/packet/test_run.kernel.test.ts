// testRun() and expectRewrite() on programs from bpf/testdata/hooks_packet.c:
// IPv4 destination rewrites in XDP and tc, one that forgets the checksums,
// and verdicts taken from the context.
import { beforeEach, describe, expect, test } from "vitest";
import { type Collection, loadCollection, readCollectionSpec, SyscallError } from "@dp/core";
import { netns, requireRoot, vethPair } from "@dp/core/testing";
import { eth, expectRewrite, icmp, ipv4, ipv6, packet, PacketAssertionError, tcp, testRun, udp } from "@dp/hooks";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../../bpf/build/testdata/hooks_packet.o", import.meta.url).pathname;

function load(): Collection {
  return loadCollection(readCollectionSpec(OBJECT));
}

const IPV4_PACKETS = {
  tcp: packet(
    eth(),
    ipv4({ dst: "10.0.0.2", id: 3 }),
    tcp({ sport: 1234, dport: 80, seq: 7, flags: ["syn"], options: [{ kind: "mss", value: 1460 }] }),
    "hello",
  ),
  udp: packet(eth(), ipv4({ dst: "10.0.0.2" }), udp({ sport: 1234, dport: 53 }), "query"),
  udpNoChecksum: packet(eth(), ipv4({ dst: "10.0.0.2" }), udp({ sport: 1234, dport: 53, forceChecksum: 0 }), "query"),
  icmp: packet(
    eth(),
    ipv4({ dst: "192.168.77.1", options: new Uint8Array([1, 1, 1, 0]) }),
    icmp({ id: 1, seq: 1 }),
    "ping",
  ),
};

describe("testRun() with expectRewrite()", () => {
  test.each(Object.entries(IPV4_PACKETS))(
    "xdp_rewrite_dst rewrites the destination of %s and keeps checksums valid",
    (_, before) => {
      using coll = load();
      const result = testRun(coll.program("xdp_rewrite_dst"), before);
      expect(result.verdict).toBe("XDP_PASS");
      expect(result.retval).toBe(2);
      expectRewrite(before, result.packet, { ipv4: { dst: "10.0.0.9" } });
      expect(result.parsed.ipv4?.dst).toBe("10.0.0.9");
    },
  );

  test.each(Object.entries(IPV4_PACKETS))(
    "tc_rewrite_dst rewrites the destination of %s with the kernel's checksum helpers",
    (_, before) => {
      using coll = load();
      const result = testRun(coll.program("tc_rewrite_dst"), before);
      expect(result.verdict).toBe("TC_ACT_OK");
      expectRewrite(before, result.packet, { ipv4: { dst: "10.0.0.9" } });
    },
  );

  test("xdp_rewrite_dst leaves IPv6 and VLAN-tagged frames alone", () => {
    using coll = load();
    for (const before of [packet(eth(), ipv6(), udp({ dport: 1 })), packet(eth({ vlan: 5 }), ipv4(), icmp())]) {
      expectRewrite(before, testRun(coll.program("xdp_rewrite_dst"), before).packet, {});
    }
  });

  test("expectRewrite() catches a rewrite that forgets the checksums", () => {
    using coll = load();
    const before = IPV4_PACKETS.tcp;
    const result = testRun(coll.program("xdp_rewrite_dst_nocsum"), before);
    expect(result.parsed.ipv4?.dst).toBe("10.0.0.9");
    let error: unknown;
    try {
      expectRewrite(before, result.packet, { ipv4: { dst: "10.0.0.9" } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PacketAssertionError);
    expect((error as PacketAssertionError).differences.map((d) => d.path)).toEqual([
      "ipv4.checksumValid",
      "tcp.checksumValid",
    ]);
  });

  test("expectRewrite() catches a field the program was not expected to change", () => {
    using coll = load();
    const result = testRun(coll.program("xdp_rewrite_dst"), IPV4_PACKETS.udp);
    expect(() => expectRewrite(IPV4_PACKETS.udp, result.packet, {})).toThrow(
      /ipv4\.dst: expected it unchanged \("10\.0\.0\.2"\), got "10\.0\.0\.9"/,
    );
    expect(() => expectRewrite(IPV4_PACKETS.udp, result.packet, { ipv4: { dst: "10.0.0.8" } })).toThrow(
      /ipv4\.dst: expected "10\.0\.0\.8", got "10\.0\.0\.9"/,
    );
  });
});

describe("testRun() verdicts and contexts", () => {
  test.each([
    [0, "TC_ACT_OK"],
    [2, "TC_ACT_SHOT"],
    [7, "TC_ACT_REDIRECT"],
    [0xffffffff, "TC_ACT_UNSPEC"],
  ] as const)("testRun() passes skb->mark %i and names the verdict %s", (mark, verdict) => {
    using coll = load();
    const result = testRun(coll.program("tc_verdict_from_mark"), IPV4_PACKETS.udp, { ctx: { mark } });
    expect(result.verdict).toBe(verdict);
    expect(result.retval).toBe(mark);
    // The program set skb->priority to 7 in the context it hands back.
    const ctx = result.ctx as Uint8Array;
    expect(new DataView(ctx.buffer, ctx.byteOffset).getUint32(32, true)).toBe(7);
    expect(new DataView(ctx.buffer, ctx.byteOffset).getUint32(8, true)).toBe(mark);
  });

  test("testRun() passes the XDP ingress interface, looked up in the calling thread's namespace", () => {
    using coll = load();
    using ns = netns({ label: "xdpctx" });
    const { a } = vethPair(ns, ns);
    const prog = coll.program("xdp_drop_lo");
    const frame = IPV4_PACKETS.icmp;
    expect(testRun(prog, frame).verdict).toBe("XDP_DROP");
    expect(testRun(prog, frame, { ctx: { ingressIfindex: 1 } }).verdict).toBe("XDP_DROP");
    expect(ns.run(() => testRun(prog, frame, { ctx: { ingressIfindex: a.index, rxQueueIndex: 0 } })).verdict).toBe(
      "XDP_PASS",
    );
  });

  test("testRun() surfaces the kernel's refusal of a context as a SyscallError", () => {
    using coll = load();
    using ns = netns({ label: "xdpctx" });
    const { a } = vethPair(ns, ns);
    const run = (): unknown =>
      ns.run(() =>
        testRun(coll.program("xdp_drop_lo"), IPV4_PACKETS.icmp, { ctx: { ingressIfindex: a.index, rxQueueIndex: 64 } }),
      );
    expect(run).toThrow(SyscallError);
    expect(run).toThrow(/EINVAL/);
  });

  test("testRun() repeats the program and reports the mean duration", () => {
    using coll = load();
    const result = testRun(coll.program("xdp_rewrite_dst"), IPV4_PACKETS.tcp, { repeat: 1000 });
    expect(result.verdict).toBe("XDP_PASS");
    expect(Number.isInteger(result.duration)).toBe(true);
    expect(result.duration).toBeGreaterThanOrEqual(0);
  });
});
