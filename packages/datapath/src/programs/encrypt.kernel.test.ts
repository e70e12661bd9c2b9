// IPsec in the programs (bpf/include/dp/encrypt.h) under BPF_PROG_TEST_RUN:
// from_container puts Cilium's encrypt mark (node id, key id, 0xE00) on
// packets to a remote node's pods and hands them to the stack, drops them
// when the node has no key, and leaves everything else alone; decrypted
// packets (decrypt mark 0xD00) meet the same ingress policy as any other,
// with the identity of their inner source.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { eth, expectRewrite, ipv4, ipv6, type Layer, packet, tcp, testRun, udp } from "@dp/hooks";
import { decryptMark, encryptMark } from "@dp/ipsec";
import {
  addr16,
  DIR,
  DROP,
  EP_FLAG,
  EVENT,
  ID,
  PROTO,
  TestDatapath,
  type TestDatapathOptions,
  TRACE,
} from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

// to_container checks skb->ifindex: B's host-side veth is a real device in a test namespace.
let ns: TestNetns | undefined;
beforeAll(() => {
  if (process.getuid?.() !== 0) return;
  ns = netns({ label: "dpenc" });
  B.ifindex = vethPair(ns, ns).a.index;
});
afterAll(() => ns?.close());

const A = { id: 1, identity: 1001, ifindex: 101, mac: "02:00:00:00:01:01", nodeMac: "02:00:00:00:01:fe" };
const B = { id: 2, identity: 1002, ifindex: 0, mac: "02:00:00:00:02:02", nodeMac: "02:00:00:00:02:fe" };
/** Identities of pods on remote nodes. */
const REMOTE_WEB = 2001;
const REMOTE_DB = 2002;
const NODE2 = 0x0002;
const NODE3 = 0xbeef;
const UPLINK = 7;
const FAMILIES = [
  {
    name: "IPv4",
    a: "10.0.1.1",
    b: "10.0.1.2",
    host: "10.0.0.1",
    outside: "192.0.2.7",
    all: "0.0.0.0/0",
    node2Pods: "10.2.0.0/24",
    node2Pod: "10.2.0.5",
    node2Db: "10.2.0.9/32",
    node2DbIp: "10.2.0.9",
    node3Pod: "10.3.0.5",
    node3Pods: "10.3.0.0/24",
  },
  {
    name: "IPv6",
    a: "fd00::1:1",
    b: "fd00::1:2",
    host: "fd00::1",
    outside: "2001:db8::7",
    all: "::/0",
    node2Pods: "fd00:2::/64",
    node2Pod: "fd00:2::5",
    node2Db: "fd00:2::9/128",
    node2DbIp: "fd00:2::9",
    node3Pod: "fd00:3::5",
    node3Pods: "fd00:3::/64",
  },
] as const;
type Family = (typeof FAMILIES)[number];
const MODES = ["legacy", "bpf"] as const;

function ip(f: Family, src: string, dst: string): Layer {
  return f.name === "IPv4" ? ipv4({ src, dst }) : ipv6({ src, dst });
}

/** A and B local; node 2's pods (web, with db's /32 inside), node 3's pods; host and world. */
function open(f: Family, options: TestDatapathOptions): TestDatapath {
  const dp = new TestDatapath({ trace: true, ...options });
  dp.addEndpoint({ ...A, ip: f.a });
  dp.addEndpoint({ ...B, ip: f.b });
  dp.setIpcache(f.all, ID.world);
  dp.setIpcache(f.name === "IPv4" ? `${f.host}/32` : `${f.host}/128`, ID.host);
  dp.setIpcache(f.node2Pods, REMOTE_WEB, NODE2);
  dp.setIpcache(f.node2Db, REMOTE_DB, NODE2);
  dp.setIpcache(f.node3Pods, REMOTE_WEB, NODE3);
  return dp;
}

function setKey(dp: TestDatapath, nodeId: number, spi: number): void {
  dp.encrypt.set(nodeId, { spi, pad: new Uint8Array(3) });
}

/** skb->mark after the run (`struct __sk_buff` offset 8). */
function markOut(result: ReturnType<typeof testRun>): number {
  const ctx = result.ctx;
  if (ctx === undefined) throw new Error("the test run returned no context");
  return new DataView(ctx.buffer, ctx.byteOffset, ctx.byteLength).getUint32(8, true);
}

function fromA(dp: TestDatapath, frame: Uint8Array, mark = 0): ReturnType<typeof testRun> {
  return testRun(dp.fromContainer, frame, { ctx: { ingressIfindex: A.ifindex, mark } });
}

describe.each(FAMILIES)("IPsec in from_container ($name)", (f) => {
  test.each(MODES)(
    "%s host routing: a packet to a remote node's pod gets the node's encrypt mark and goes to the stack unchanged",
    (mode) => {
      using dp = open(f, { hostRouting: mode, encryption: "ipsec" });
      setKey(dp, NODE2, 3);
      setKey(dp, NODE3, 15);
      const toNode2 = packet(eth(), ip(f, f.a, f.node2Pod), tcp({ sport: 40000, dport: 80, flags: ["syn"] }), "x");
      const toNode3 = packet(eth(), ip(f, f.a, f.node3Pod), udp({ sport: 5000, dport: 53 }), "q");
      const r2 = fromA(dp, toNode2);
      const r3 = fromA(dp, toNode3);
      expect([r2.verdict, r3.verdict]).toEqual(["TC_ACT_OK", "TC_ACT_OK"]);
      // Exactly what @dp/ipsec's out policies match: node id << 16 | key << 12 | 0xE00.
      expect(markOut(r2)).toBe(encryptMark(3, NODE2).value);
      expect(markOut(r2)).toBe(0x00023e00);
      expect(markOut(r3)).toBe(encryptMark(15, NODE3).value);
      expect(markOut(r3)).toBe(0xbeeffe00);
      // No MAC rewrite or TTL decrement: the stack routes it (through xfrm).
      expectRewrite(toNode2, r2.packet, {});
      expectRewrite(toNode3, r3.packet, {});
      const traces = dp.events.drain().filter((e) => e.type === EVENT.trace);
      expect(traces.map((e) => [e.reason, e.ifindex, e.dst_identity])).toEqual([
        [TRACE.toStack, A.ifindex, REMOTE_WEB],
        [TRACE.toStack, A.ifindex, REMOTE_WEB],
      ]);
      expect(dp.metric(DROP.forwarded, DIR.egress).packets).toBe(2n);
    },
  );

  test.each(MODES)(
    "%s host routing: a packet to a remote node without a key is dropped as encrypt-key-missing, never sent in clear",
    (mode) => {
      using dp = open(f, { hostRouting: mode, encryption: "ipsec" });
      setKey(dp, NODE3, 4);
      const frame = packet(eth(), ip(f, f.a, f.node2DbIp), tcp({ sport: 40001, dport: 5432, flags: ["syn"] }));
      const result = fromA(dp, frame);
      expect(result.verdict).toBe("TC_ACT_SHOT");
      expect(markOut(result)).toBe(0);
      expect(dp.metric(DROP.encryptKeyMissing, DIR.egress)).toEqual({ packets: 1n, bytes: BigInt(frame.length) });
      const drops = dp.events.drain().filter((e) => e.type === EVENT.drop);
      expect(drops.map((e) => [e.reason, e.ifindex, e.src_identity, e.dst_identity, e.endpoint_id])).toEqual([
        [DROP.encryptKeyMissing, A.ifindex, A.identity, REMOTE_DB, A.id],
      ]);
      expect(drops[0]?.daddr).toEqual(addr16(f.node2DbIp));
      // A key of id 0 is no key: no out policy would match its mark.
      setKey(dp, NODE2, 0);
      expect(fromA(dp, frame).verdict).toBe("TC_ACT_SHOT");
      expect(dp.metric(DROP.encryptKeyMissing, DIR.egress).packets).toBe(2n);
      // Once the key is there the same connection's next packet goes out marked.
      setKey(dp, NODE2, 1);
      const ok = fromA(dp, frame);
      expect(ok.verdict).toBe("TC_ACT_OK");
      expect(markOut(ok)).toBe(encryptMark(1, NODE2).value);
    },
  );

  test("the egress policy runs first: a denied packet to a remote pod is a policy drop, not encrypted", () => {
    using dp = open(f, { hostRouting: "legacy", encryption: "ipsec" });
    setKey(dp, NODE2, 3);
    dp.addEndpoint({ ...A, ip: f.a, flags: EP_FLAG.egressEnforced });
    dp.policyEntry(A.id, { identity: REMOTE_WEB, direction: "egress", protocol: PROTO.tcp, port: 80 });
    const allowed = fromA(dp, packet(eth(), ip(f, f.a, f.node2Pod), tcp({ sport: 40002, dport: 80, flags: ["syn"] })));
    const denied = fromA(dp, packet(eth(), ip(f, f.a, f.node2Pod), tcp({ sport: 40003, dport: 81, flags: ["syn"] })));
    expect([allowed.verdict, denied.verdict]).toEqual(["TC_ACT_OK", "TC_ACT_SHOT"]);
    expect(markOut(allowed)).toBe(encryptMark(3, NODE2).value);
    expect(markOut(denied)).toBe(0);
    expect(dp.metric(DROP.policyDefault, DIR.egress).packets).toBe(1n);
    expect(dp.metric(DROP.encryptKeyMissing, DIR.egress).packets).toBe(0n);
  });

  test.each(MODES)("%s host routing: local, host and world traffic is not marked", (mode) => {
    using dp = open(f, { hostRouting: mode, encryption: "ipsec" });
    setKey(dp, NODE2, 3);
    // (With BPF host routing the world goes through the FIB of this test's namespace: left to from_container's tests.)
    for (const dst of mode === "legacy" ? [f.b, f.host, f.outside] : [f.b, f.host]) {
      const frame = packet(eth(), ip(f, f.a, dst), udp({ sport: 5000, dport: 53 }), "q");
      const result = fromA(dp, frame);
      expect(result.verdict).not.toBe("TC_ACT_SHOT");
      expect(markOut(result)).toBe(0);
    }
    expect(dp.metric(DROP.encryptKeyMissing, DIR.egress).packets).toBe(0n);
  });

  test.each(MODES)("%s host routing: with encryption disabled, node ids and keys change nothing", (mode) => {
    using plain = open(f, { hostRouting: mode });
    setKey(plain, NODE2, 3);
    const frame = packet(eth(), ip(f, f.a, f.node2Pod), udp({ sport: 5000, dport: 53 }), "q");
    const result = fromA(plain, frame);
    expect(markOut(result)).toBe(0);
    // Delivered as any destination outside the node: the stack (legacy) or the FIB (bpf).
    const world = fromA(plain, packet(eth(), ip(f, f.a, f.outside), udp({ sport: 5000, dport: 53 }), "q"));
    expect(result.verdict).toBe(world.verdict);
    if (mode === "legacy") {
      expect(result.verdict).toBe("TC_ACT_OK");
      expectRewrite(frame, result.packet, {});
    }
    // Without a key either: not dropped for it.
    plain.encrypt.delete(NODE2);
    expect(fromA(plain, frame).verdict).toBe(world.verdict);
    expect(plain.metric(DROP.encryptKeyMissing, DIR.egress).packets).toBe(0n);
  });
});

describe.each(FAMILIES)("IPsec: decrypted packets meet the ingress policy ($name)", (f) => {
  /** B admits remote web pods on TCP 80, nothing else. */
  function policed(mode: "legacy" | "bpf"): TestDatapath {
    const dp = open(f, { hostRouting: mode, encryption: "ipsec" });
    dp.addEndpoint({ ...B, ip: f.b, flags: EP_FLAG.ingressEnforced });
    dp.policyEntry(B.id, { identity: REMOTE_WEB, direction: "ingress", protocol: PROTO.tcp, port: 80 });
    return dp;
  }
  const DECRYPTED = decryptMark(NODE2).value;

  test("to_container (legacy): the inner source's identity decides, the decrypt mark does not", () => {
    using dp = policed("legacy");
    const run = (src: string, sport: number): ReturnType<typeof testRun> =>
      testRun(dp.toContainer, packet(eth(), ip(f, src, f.b), tcp({ sport, dport: 80, flags: ["syn"] })), {
        ctx: { ifindex: B.ifindex, mark: DECRYPTED },
      });
    expect(run(f.node2Pod, 41000).verdict).toBe("TC_ACT_OK");
    // node 2's db pod has another identity: denied, decrypted or not.
    expect(run(f.node2DbIp, 41001).verdict).toBe("TC_ACT_SHOT");
    const verdicts = dp.events.drain().filter((e) => e.type === EVENT.policyVerdict);
    expect(verdicts.map((e) => [e.src_identity, e.reason])).toEqual([
      [REMOTE_WEB, 0],
      [REMOTE_DB, DROP.policyDefault],
    ]);
  });

  test("from_netdev (BPF host routing): the inner source's identity decides, the decrypt mark does not", () => {
    using dp = policed("bpf");
    const run = (src: string, sport: number): ReturnType<typeof testRun> =>
      testRun(dp.fromNetdev, packet(eth(), ip(f, src, f.b), tcp({ sport, dport: 80, flags: ["syn"] })), {
        ctx: { ingressIfindex: UPLINK, mark: DECRYPTED },
      });
    expect(run(f.node2Pod, 42000).verdict).toBe("TC_ACT_REDIRECT");
    expect(run(f.node2DbIp, 42001).verdict).toBe("TC_ACT_SHOT");
    const verdicts = dp.events.drain().filter((e) => e.type === EVENT.policyVerdict);
    expect(verdicts.map((e) => [e.src_identity, e.reason])).toEqual([
      [REMOTE_WEB, 0],
      [REMOTE_DB, DROP.policyDefault],
    ]);
  });

  test("from_netdev passes ESP for the node itself to the stack untouched", () => {
    using dp = policed("bpf");
    const esp = packet(
      eth(),
      f.name === "IPv4"
        ? ipv4({ src: f.outside, dst: f.host, protocol: 50 })
        : ipv6({ src: f.outside, dst: f.host, nextHeader: 50 }),
      new Uint8Array(32),
    );
    const result = testRun(dp.fromNetdev, esp, { ctx: { ingressIfindex: UPLINK } });
    expect(result.verdict).toBe("TC_ACT_OK");
    expectRewrite(esp, result.packet, {});
    expect(markOut(result)).toBe(0);
  });
});
