// monitor() over the ring buffer from_container writes, under
// BPF_PROG_TEST_RUN: a policy drop, a deny, verdicts and (tracing on) a
// trace, decoded field by field, and the filters.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { eth, icmp, icmpv6, ipv4, ipv6, packet, tcp, testRun } from "@dp/hooks";
import { RingBuffer } from "@dp/maps";
import { formatMonitorEvent, monitor, type MonitorEvent, type MonitorOptions, type MonitorSource } from "@dp/datapath";
import { EP_FLAG, PROTO, TestDatapath } from "../programs/_datapath.ts";

beforeEach((t) => requireRoot(t));

const A = { id: 1, identity: 1001, ifindex: 101 };
const B = { id: 2, identity: 1002, ifindex: 102 };
const FAMILIES = [
  {
    name: "IPv4",
    family: 4,
    a: "10.0.1.1",
    b: "10.0.1.2",
    l3: (s: string, d: string) => ipv4({ src: s, dst: d }),
    echo: icmp,
    icmpProto: PROTO.icmp,
    request: 8,
  },
  {
    name: "IPv6",
    family: 6,
    a: "fd00::1:1",
    b: "fd00::1:2",
    l3: (s: string, d: string) => ipv6({ src: s, dst: d }),
    echo: icmpv6,
    icmpProto: PROTO.icmpv6,
    request: 128,
  },
] as const;
type Family = (typeof FAMILIES)[number];

/** A enforces egress: TCP 80 to B allowed (cookie 7), TCP 9090 denied (cookie 9), the rest default deny. */
function open(f: Family): TestDatapath {
  const dp = new TestDatapath({ trace: true });
  dp.addEndpoint({ ...A, ip: f.a, flags: EP_FLAG.egressEnforced });
  dp.addEndpoint({ ...B, ip: f.b });
  dp.policyEntry(A.id, { identity: B.identity, direction: "egress", protocol: PROTO.tcp, port: 80, cookie: 7 });
  dp.policyEntry(A.id, {
    identity: B.identity,
    direction: "egress",
    protocol: PROTO.tcp,
    port: 9090,
    deny: true,
    cookie: 9,
  });
  return dp;
}

/** Sends A's packets: an allowed SYN, a default-denied SYN, a denied SYN and a default-denied echo request. */
function send(f: Family, dp: TestDatapath): Uint8Array[] {
  const frames = [
    packet(eth(), f.l3(f.a, f.b), tcp({ sport: 40000, dport: 80, flags: ["syn"] }), "a"),
    packet(eth(), f.l3(f.a, f.b), tcp({ sport: 40001, dport: 8080, flags: ["syn"] }), "bb"),
    packet(eth(), f.l3(f.a, f.b), tcp({ sport: 40002, dport: 9090, flags: ["syn"] }), "ccc"),
    packet(eth(), f.l3(f.a, f.b), f.echo({ type: "echoRequest", id: 77, seq: 1 }), "dddd"),
  ];
  const verdicts = frames.map((fr) => testRun(dp.fromContainer, fr, { ctx: { ingressIfindex: A.ifindex } }).verdict);
  expect(verdicts).toEqual(["TC_ACT_OK", "TC_ACT_SHOT", "TC_ACT_SHOT", "TC_ACT_SHOT"]);
  return frames;
}

/** Reads `count` events (failing after 5 s), then checks that no more are there. */
async function read(
  source: MonitorSource,
  count: number,
  options: Omit<MonitorOptions, "signal"> = {},
): Promise<MonitorEvent[]> {
  const out: MonitorEvent[] = [];
  if (count > 0) {
    for await (const e of monitor(source, { ...options, signal: AbortSignal.timeout(5000) })) {
      out.push(e);
      if (out.length === count) break;
    }
  }
  expect(out).toHaveLength(count);
  const more: MonitorEvent[] = [];
  for await (const e of monitor(source, { ...options, signal: AbortSignal.timeout(20) })) more.push(e);
  expect(more).toEqual([]);
  return out;
}

describe.each(FAMILIES)("monitor() ($name)", (f) => {
  test("monitor() decodes every field of the verdicts, drops and trace from_container reports", async () => {
    using dp = open(f);
    const before = process.hrtime.bigint();
    const frames = send(f, dp);
    const after = process.hrtime.bigint();
    const events = await read(dp.events, 8);
    for (const e of events)
      expect(e.timestamp >= before && e.timestamp <= after, `timestamp ${e.timestamp}`).toBe(true);
    const common = {
      direction: "egress",
      ct: "new",
      family: f.family,
      endpointId: A.id,
      srcIdentity: A.identity,
      dstIdentity: B.identity,
      saddr: f.a,
      daddr: f.b,
      icmpType: undefined,
      protocol: PROTO.tcp,
    };
    const tcpEvent = (i: number, sport: number, dport: number) => ({
      ...common,
      sport,
      dport,
      length: frames[i]?.length,
    });
    expect(events.map(({ timestamp: _t, ...rest }) => rest)).toEqual([
      {
        ...tcpEvent(0, 40000, 80),
        type: "policy-verdict",
        reason: "forwarded",
        verdict: "allow",
        ruleCookie: 7,
        ifindex: A.ifindex,
      },
      {
        ...tcpEvent(0, 40000, 80),
        type: "trace",
        reason: "to-stack",
        verdict: "allow",
        ruleCookie: 7,
        ifindex: A.ifindex,
      },
      {
        ...tcpEvent(1, 40001, 8080),
        type: "policy-verdict",
        reason: "policy-default-deny",
        verdict: "default-deny",
        ruleCookie: 0,
        ifindex: A.ifindex,
      },
      {
        ...tcpEvent(1, 40001, 8080),
        type: "drop",
        reason: "policy-default-deny",
        verdict: "default-deny",
        ruleCookie: 0,
        ifindex: A.ifindex,
      },
      {
        ...tcpEvent(2, 40002, 9090),
        type: "policy-verdict",
        reason: "policy-denied",
        verdict: "deny",
        ruleCookie: 9,
        ifindex: A.ifindex,
      },
      {
        ...tcpEvent(2, 40002, 9090),
        type: "drop",
        reason: "policy-denied",
        verdict: "deny",
        ruleCookie: 9,
        ifindex: A.ifindex,
      },
      {
        ...common,
        protocol: f.icmpProto,
        sport: 0,
        dport: 77,
        icmpType: f.request,
        length: frames[3]?.length,
        type: "policy-verdict",
        reason: "policy-default-deny",
        verdict: "default-deny",
        ruleCookie: 0,
        ifindex: A.ifindex,
      },
      {
        ...common,
        protocol: f.icmpProto,
        sport: 0,
        dport: 77,
        icmpType: f.request,
        length: frames[3]?.length,
        type: "drop",
        reason: "policy-default-deny",
        verdict: "default-deny",
        ruleCookie: 0,
        ifindex: A.ifindex,
      },
    ]);
    const [a, b] = f.family === 4 ? [f.a, f.b] : [`[${f.a}]`, `[${f.b}]`];
    expect(formatMonitorEvent(events[3] as MonitorEvent)).toBe(
      `xx drop (Policy denied) from endpoint 1, ifindex 101, identity 1001->1002: ${a}:40001 -> ${b}:8080 tcp`,
    );
    expect(formatMonitorEvent(events[7] as MonitorEvent)).toBe(
      `xx drop (Policy denied) from endpoint 1, ifindex 101, identity 1001->1002: ${f.a} -> ${f.b} ${f.family === 4 ? "icmp" : "icmpv6"} EchoRequest id 77`,
    );
  });

  test("monitor() filters by event type and endpoint", async () => {
    using dp = open(f);
    send(f, dp);
    expect((await read(dp.events, 3, { types: ["drop"] })).map((e) => e.reason)).toEqual([
      "policy-default-deny",
      "policy-denied",
      "policy-default-deny",
    ]);
    // Again: the allowed connection is established now, so it meets no policy (no verdict), only the trace.
    send(f, dp);
    expect(
      (await read(dp.events, 4, { types: ["trace", "policy-verdict"], endpoint: A.id })).map((e) => [
        e.type,
        e.ct,
        e.dport,
      ]),
    ).toEqual([
      ["trace", "established", 80],
      ["policy-verdict", "new", 8080],
      ["policy-verdict", "new", 9090],
      ["policy-verdict", "new", 77],
    ]);
    send(f, dp);
    // The events are about A's egress: none is about B.
    await read(dp.events, 0, { endpoint: B.id });
  });

  test("monitor() decodes raw records of an untyped ring buffer reader", async () => {
    using dp = open(f);
    const ring = new RingBuffer(dp.events.map);
    try {
      send(f, dp);
      const events = await read(ring, 8);
      expect(events.map((e) => [e.type, e.reason, e.dport])).toEqual([
        ["policy-verdict", "forwarded", 80],
        ["trace", "to-stack", 80],
        ["policy-verdict", "policy-default-deny", 8080],
        ["drop", "policy-default-deny", 8080],
        ["policy-verdict", "policy-denied", 9090],
        ["drop", "policy-denied", 9090],
        ["policy-verdict", "policy-default-deny", 77],
        ["drop", "policy-default-deny", 77],
      ]);
    } finally {
      ring.close();
    }
  });
});
