import { describe, expect, test } from "vitest";
import { decodeMonitorEvent } from "@dp/datapath";
import { addr, record } from "./_test_records.ts";

describe("decodeMonitorEvent()", () => {
  test("decodeMonitorEvent() decodes every field of a drop", () => {
    expect(decodeMonitorEvent(record({}))).toEqual({
      type: "drop",
      reason: "policy-default-deny",
      timestamp: 5n,
      direction: "egress",
      verdict: "default-deny",
      ct: "new",
      family: 4,
      protocol: 6,
      ifindex: 3,
      endpointId: 12,
      srcIdentity: 256,
      dstIdentity: 300,
      saddr: "10.0.0.1",
      daddr: "10.0.0.2",
      sport: 40000,
      dport: 80,
      icmpType: undefined,
      length: 74,
      ruleCookie: 0,
    });
  });

  test.each([
    [
      { type: 2, reason: 2 },
      { type: "trace", reason: "to-endpoint" },
    ],
    [
      { type: 3, reason: 0, verdict: 1, rule_cookie: 7 },
      { type: "policy-verdict", reason: "forwarded", verdict: "allow", ruleCookie: 7 },
    ],
    [
      { type: 1, reason: 200, verdict: 9, ct: 9 },
      { reason: "unknown-200", verdict: "unknown-9", ct: "unknown-9" },
    ],
    [
      { direction: 0, ct: 2 },
      { direction: "ingress", ct: "reply" },
    ],
    [
      { family: 6, saddr: addr("fd00::1"), daddr: addr("fd00::2") },
      { family: 6, saddr: "fd00::1", daddr: "fd00::2" },
    ],
    [{ family: 0 }, { family: undefined, saddr: undefined, daddr: undefined }],
    [{ protocol: 1, sport: 0, dport: 77 }, { icmpType: 8 }],
    [{ protocol: 1, sport: 77, dport: 0 }, { icmpType: 0 }],
    [{ protocol: 58, sport: 0, dport: 77 }, { icmpType: 128 }],
    [{ protocol: 58, sport: 77, dport: 0 }, { icmpType: 129 }],
    [{ protocol: 58, sport: 0, dport: 0 }, { icmpType: undefined }],
  ] as const)("decodeMonitorEvent() decodes %j", (fields, expected) => {
    expect(decodeMonitorEvent(record(fields))).toMatchObject(expected);
  });

  test("decodeMonitorEvent() skips unknown event types and rejects short records", () => {
    expect(decodeMonitorEvent(record({ type: 9 }))).toBeUndefined();
    expect(() => decodeMonitorEvent(new Uint8Array(79))).toThrow(RangeError);
    expect(() => decodeMonitorEvent("x" as unknown as Uint8Array)).toThrow(TypeError);
    // A record inside a larger buffer.
    const big = new Uint8Array(100);
    big.set(record({ endpoint_id: 42 }), 10);
    expect(decodeMonitorEvent(big.subarray(10, 90))?.endpointId).toBe(42);
  });
});
