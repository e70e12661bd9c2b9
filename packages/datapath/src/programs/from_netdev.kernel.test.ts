// from_netdev (bpf/datapath/from_netdev.c) under BPF_PROG_TEST_RUN: with BPF
// host routing, packets from outside for a local pod get its ingress policy
// and go straight to its peer; everything else goes to the stack untouched.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { eth, expectRewrite, ipv4, ipv6, type Layer, packet, tcp, testRun, udp } from "@dp/hooks";
import {
  CT,
  DIR,
  DROP,
  EP_FLAG,
  EVENT,
  ID,
  PROTO,
  TestDatapath,
  type TestDatapathOptions,
  TRACE,
  VERDICT,
} from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

const UPLINK = 7;
const A = { id: 1, identity: 1001, ifindex: 101, mac: "02:00:00:00:01:01", nodeMac: "02:00:00:00:01:fe" };
const FAMILIES = [
  { name: "IPv4", a: "10.0.1.1", outside: "192.0.2.7", node: "10.0.0.1", all: "0.0.0.0/0" },
  { name: "IPv6", a: "fd00::1:1", outside: "2001:db8::7", node: "fd00::1", all: "::/0" },
] as const;
type Family = (typeof FAMILIES)[number];

function ip(f: Family, src: string, dst: string): Layer {
  return f.name === "IPv4" ? ipv4({ src, dst }) : ipv6({ src, dst });
}

function open(f: Family, options: TestDatapathOptions): TestDatapath {
  const dp = new TestDatapath({ trace: true, ...options });
  dp.addEndpoint({ ...A, ip: f.a, flags: EP_FLAG.ingressEnforced | EP_FLAG.egressEnforced });
  dp.setIpcache(f.all, ID.world);
  dp.policyEntry(A.id, { identity: ID.world, direction: "ingress", protocol: PROTO.tcp, port: 443, cookie: 5 });
  dp.policyEntry(A.id, { identity: ID.world, direction: "egress", protocol: PROTO.udp, port: 53 });
  return dp;
}

function run(dp: TestDatapath, bytes: Uint8Array): ReturnType<typeof testRun> {
  return testRun(dp.fromNetdev, bytes, { ctx: { ingressIfindex: UPLINK } });
}

describe.each(FAMILIES)("from_netdev ($name)", (f) => {
  test("from_netdev redirects an allowed packet from outside to the pod's peer, after its ingress policy", () => {
    using dp = open(f, { hostRouting: "bpf" });
    const allowed = packet(eth(), ip(f, f.outside, f.a), tcp({ sport: 50000, dport: 443, flags: ["syn"] }), "x");
    const result = run(dp, allowed);
    expect(result.verdict).toBe("TC_ACT_REDIRECT");
    const ttl = f.name === "IPv4" ? { ipv4: { ttl: 63 } } : { ipv6: { hopLimit: 63 } };
    expectRewrite(allowed, result.packet, { eth: { dst: A.mac, src: A.nodeMac }, ...ttl });
    const events = dp.events.drain();
    expect(events.map((e) => [e.type, e.reason, e.verdict, e.ifindex, e.src_identity, e.rule_cookie])).toEqual([
      [EVENT.policyVerdict, 0, VERDICT.allow, UPLINK, ID.world, 5],
      [EVENT.trace, TRACE.toEndpoint, VERDICT.allow, A.ifindex, ID.world, 5],
    ]);
    const denied = packet(eth(), ip(f, f.outside, f.a), tcp({ sport: 50000, dport: 22, flags: ["syn"] }));
    expect(run(dp, denied).verdict).toBe("TC_ACT_SHOT");
    expect(dp.events.drain().find((e) => e.type === EVENT.drop)).toMatchObject({
      reason: DROP.policyDefault,
      direction: DIR.ingress,
      ifindex: UPLINK,
    });
  });

  test("from_netdev lets the reply of a pod's own connection in without policy", () => {
    using dp = open(f, { hostRouting: "bpf" });
    const query = packet(eth(), ip(f, f.a, f.outside), udp({ sport: 40000, dport: 53 }), "q");
    // Conntrack records the query before delivery; the FIB lookup then fails (A's
    // interface does not exist in this test), which drops it as DP_DROP_FIB_FAIL.
    expect(testRun(dp.fromContainer, query, { ctx: { ingressIfindex: A.ifindex } }).verdict).toBe("TC_ACT_SHOT");
    expect(dp.events.drain().find((e) => e.type === EVENT.drop)).toMatchObject({
      reason: DROP.fibFail,
      direction: DIR.egress,
    });
    const answer = packet(eth(), ip(f, f.outside, f.a), udp({ sport: 53, dport: 40000 }), "a");
    expect(run(dp, answer).verdict).toBe("TC_ACT_REDIRECT");
    expect(dp.events.drain().map((e) => [e.type, e.ct])).toEqual([[EVENT.trace, CT.reply]]);
  });

  test("from_netdev leaves traffic for the node, and everything in legacy mode, to the stack", () => {
    using bpf = open(f, { hostRouting: "bpf" });
    const toNode = packet(eth(), ip(f, f.outside, f.node), tcp({ sport: 50000, dport: 22, flags: ["syn"] }));
    const toPod = packet(eth(), ip(f, f.outside, f.a), tcp({ sport: 50000, dport: 22, flags: ["syn"] }));
    const arp = packet(eth({ type: 0x0806 }), new Uint8Array(28));
    for (const frame of [toNode, arp]) {
      const result = run(bpf, frame);
      expect(result.verdict).toBe("TC_ACT_OK");
      expect(result.packet).toEqual(frame);
    }
    using legacy = open(f, { hostRouting: "legacy" });
    expect(run(legacy, toPod).verdict).toBe("TC_ACT_OK");
    expect([...bpf.events.drain(), ...legacy.events.drain()]).toEqual([]);
  });
});
