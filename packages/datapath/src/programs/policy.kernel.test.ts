// Endpoint policy (bpf/include/dp/policy.h) under BPF_PROG_TEST_RUN: each
// rule kind as map entries in the shared contract's layout, in both
// directions (egress in from_container, ingress in to_container), IPv4 and
// IPv6.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { eth, icmp, icmpv6, ipv4, ipv6, type Layer, packet, tcp, testRun, udp } from "@dp/hooks";
import { DIR, DROP, EP_FLAG, EVENT, ID, PROTO, TestDatapath, type TestPolicyEntry, VERDICT } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

// to_container checks skb->ifindex, which a test run can only set to an
// existing device: B's "host-side veth" is a veth in a test namespace.
let ns: TestNetns | undefined;
let vethIndex = 0;
beforeAll(() => {
  if (process.getuid?.() !== 0) return;
  ns = netns({ label: "dppol" });
  vethIndex = vethPair(ns, ns).a.index;
});
afterAll(() => ns?.close());

const A = { id: 1, identity: 1001, ifindex: 101 };
const B = { id: 2, identity: 1002 };
const FAMILIES = [
  {
    name: "IPv4",
    a: "10.0.1.1",
    b: "10.0.1.2",
    outside: "192.0.2.7",
    world: "0.0.0.0/0",
    icmp: PROTO.icmp,
    echo: 8,
    other: 13,
  },
  {
    name: "IPv6",
    a: "fd00::1:1",
    b: "fd00::1:2",
    outside: "2001:db8::7",
    world: "::/0",
    icmp: PROTO.icmpv6,
    echo: 128,
    other: 139,
  },
] as const;
type Family = (typeof FAMILIES)[number];
type Direction = "egress" | "ingress";

/** A packet of a new connection: protocol and port (ICMP: type). */
interface Probe {
  readonly proto: "tcp" | "udp" | "icmp";
  readonly port: number;
  readonly remote?: "peer" | "outside";
}

let sport = 30000;

function frame(f: Family, dir: Direction, probe: Probe): Uint8Array {
  const remote = probe.remote === "outside" ? f.outside : dir === "egress" ? f.b : f.a;
  const local = dir === "egress" ? f.a : f.b;
  const [src, dst] = dir === "egress" ? [local, remote] : [remote, local];
  const ip = f.name === "IPv4" ? ipv4({ src, dst }) : ipv6({ src, dst });
  sport += 1;
  let l4: Layer;
  if (probe.proto === "tcp") l4 = tcp({ sport, dport: probe.port, flags: ["syn"] });
  else if (probe.proto === "udp") l4 = udp({ sport, dport: probe.port });
  else l4 = f.name === "IPv4" ? icmp({ type: probe.port, id: sport }) : icmpv6({ type: probe.port, id: sport });
  return packet(eth(), ip, l4, "data");
}

function setup(f: Family, dp: TestDatapath, dir: Direction, enforced: boolean): void {
  dp.addEndpoint({ ...A, ip: f.a, flags: enforced && dir === "egress" ? EP_FLAG.egressEnforced : 0 });
  dp.addEndpoint({
    ...B,
    ifindex: vethIndex,
    ip: f.b,
    flags: enforced && dir === "ingress" ? EP_FLAG.ingressEnforced : 0,
  });
  dp.setIpcache(f.world, ID.world);
}

function run(dp: TestDatapath, dir: Direction, bytes: Uint8Array): string | undefined {
  if (dir === "egress") return testRun(dp.fromContainer, bytes, { ctx: { ingressIfindex: A.ifindex } }).verdict;
  return (ns as TestNetns).run(() => testRun(dp.toContainer, bytes, { ctx: { ifindex: vethIndex } })).verdict;
}

/** The remote identity of a probe. */
function remoteIdentity(dir: Direction, probe: Probe): number {
  if (probe.remote === "outside") return ID.world;
  return dir === "egress" ? B.identity : A.identity;
}

interface Case {
  readonly name: string;
  /** Entries, with `identity: "peer"` for the peer endpoint's identity. */
  readonly entries: readonly (Omit<TestPolicyEntry, "identity" | "direction"> & { identity: number | "peer" })[];
  readonly enforced?: boolean;
  /** Probes and whether each passes; a denied one names its reason. */
  readonly probes: readonly (Probe & { readonly pass: boolean; readonly reason?: number; readonly match?: number })[];
}

function cases(f: Family): Case[] {
  return [
    {
      name: "an identity (any protocol) allows the peer and nothing else",
      entries: [{ identity: "peer", cookie: 11 }],
      probes: [
        { proto: "tcp", port: 80, pass: true, match: 0 },
        { proto: "udp", port: 53, pass: true, match: 0 },
        { proto: "tcp", port: 80, remote: "outside", pass: false, reason: DROP.policyDefault },
      ],
    },
    {
      name: "identity 0 allows any remote",
      entries: [{ identity: ID.any, cookie: 12 }],
      probes: [
        { proto: "tcp", port: 80, pass: true, match: 0 },
        { proto: "udp", port: 53, remote: "outside", pass: true, match: 0 },
      ],
    },
    {
      name: "a protocol with any port allows only that protocol",
      entries: [{ identity: "peer", protocol: PROTO.tcp, cookie: 13 }],
      probes: [
        { proto: "tcp", port: 1234, pass: true, match: 0 },
        { proto: "udp", port: 1234, pass: false, reason: DROP.policyDefault },
      ],
    },
    {
      name: "a port allows only that port",
      entries: [{ identity: "peer", protocol: PROTO.tcp, port: 80, cookie: 14 }],
      probes: [
        { proto: "tcp", port: 80, pass: true, match: 0 },
        { proto: "tcp", port: 81, pass: false, reason: DROP.policyDefault },
        { proto: "udp", port: 80, pass: false, reason: DROP.policyDefault },
      ],
    },
    {
      name: "a port range block (8000-8003, prefixlen 62) allows the ports it covers",
      entries: [{ identity: "peer", protocol: PROTO.udp, port: 8000, portBits: 14, cookie: 15 }],
      probes: [
        { proto: "udp", port: 8000, pass: true, match: 0 },
        { proto: "udp", port: 8003, pass: true, match: 0 },
        { proto: "udp", port: 8004, pass: false, reason: DROP.policyDefault },
        { proto: "udp", port: 7999, pass: false, reason: DROP.policyDefault },
      ],
    },
    {
      name: "a deny entry beats a less specific allow of the same identity",
      entries: [
        { identity: "peer", cookie: 16 },
        { identity: "peer", protocol: PROTO.tcp, port: 22, deny: true, cookie: 17 },
      ],
      probes: [
        { proto: "tcp", port: 22, pass: false, reason: DROP.policyDeny, match: 1 },
        { proto: "tcp", port: 80, pass: true, match: 0 },
      ],
    },
    {
      name: "a deny entry of identity 0 beats an allow of the identity",
      entries: [
        { identity: "peer", protocol: PROTO.tcp, port: 22, cookie: 18 },
        { identity: ID.any, protocol: PROTO.tcp, port: 22, deny: true, cookie: 19 },
      ],
      probes: [{ proto: "tcp", port: 22, pass: false, reason: DROP.policyDeny, match: 1 }],
    },
    {
      name: "an ICMP entry allows its type (dport = htons(type))",
      entries: [{ identity: "peer", protocol: f.icmp, port: f.echo, cookie: 20 }],
      probes: [
        { proto: "icmp", port: f.echo, pass: true, match: 0 },
        { proto: "icmp", port: f.other, pass: false, reason: DROP.policyDefault },
      ],
    },
    {
      name: "no rule selecting the endpoint allows everything (default allow)",
      enforced: false,
      entries: [],
      probes: [
        { proto: "tcp", port: 80, pass: true },
        { proto: "udp", port: 53, remote: "outside", pass: true },
      ],
    },
    {
      name: "an enforced endpoint without entries denies everything (default deny)",
      entries: [],
      probes: [
        { proto: "tcp", port: 80, pass: false, reason: DROP.policyDefault },
        { proto: "icmp", port: f.echo, pass: false, reason: DROP.policyDefault },
      ],
    },
  ];
}

describe.each(FAMILIES)("policy ($name)", (f) => {
  describe.each(["egress", "ingress"] as const)("%s", (dir) => {
    test.each(cases(f))("$name", (c) => {
      using dp = new TestDatapath();
      const enforced = c.enforced ?? true;
      setup(f, dp, dir, enforced);
      const local = dir === "egress" ? A : B;
      const peer = dir === "egress" ? B.identity : A.identity;
      const entries = c.entries.map((e) => ({
        ...e,
        identity: e.identity === "peer" ? peer : e.identity,
        direction: dir,
      }));
      for (const e of entries) dp.policyEntry(local.id, e);
      // An entry for the other direction never applies.
      if (entries.length > 0)
        dp.policyEntry(local.id, { identity: peer, direction: dir === "egress" ? "ingress" : "egress" });
      const counts = entries.map(() => 0n);
      for (const probe of c.probes) {
        const bytes = frame(f, dir, probe);
        expect(run(dp, dir, bytes), `${probe.proto} ${probe.port} ${probe.remote ?? "peer"}`).toBe(
          probe.pass ? "TC_ACT_OK" : "TC_ACT_SHOT",
        );
        const events = dp.events.drain();
        const verdict = events.find((e) => e.type === EVENT.policyVerdict);
        const matched = probe.match === undefined ? undefined : entries[probe.match];
        let expected: number = VERDICT.defaultDeny;
        if (matched !== undefined) expected = matched.deny === true ? VERDICT.deny : VERDICT.allow;
        else if (probe.pass) expected = VERDICT.defaultAllow;
        expect(verdict).toMatchObject({
          verdict: expected,
          direction: dir === "egress" ? DIR.egress : DIR.ingress,
          endpoint_id: local.id,
          rule_cookie: matched?.cookie ?? 0,
          [dir === "egress" ? "dst_identity" : "src_identity"]: remoteIdentity(dir, probe),
        });
        const drop = events.find((e) => e.type === EVENT.drop);
        expect(drop?.reason).toBe(probe.pass ? undefined : probe.reason);
        if (probe.match !== undefined) counts[probe.match] = (counts[probe.match] ?? 0n) + 1n;
      }
      // Each entry counted the packets it decided.
      entries.forEach((e, i) => expect(dp.policyCounters(local.id, e)?.packets, `entry ${i}`).toBe(counts[i]));
      const drops = c.probes.filter((p) => !p.pass);
      const direction = dir === "egress" ? DIR.egress : DIR.ingress;
      for (const reason of [DROP.policyDeny, DROP.policyDefault]) {
        expect(dp.metric(reason, direction).packets).toBe(BigInt(drops.filter((p) => p.reason === reason).length));
      }
      expect(dp.metric(DROP.forwarded, direction).packets).toBe(BigInt(c.probes.length - drops.length));
    });
  });
});
