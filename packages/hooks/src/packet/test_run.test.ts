// testRun() without a kernel: a stand-in program records what it would
// have passed to BPF_PROG_TEST_RUN and returns a canned result.
import { describe, expect, test } from "vitest";
import type { BpfProgram, ProgramType, TestRunOptions, TestRunResult } from "@dp/core";
import { eth, icmp, ipv4, packet, PacketParseError, testRun } from "@dp/hooks";

interface Stub {
  readonly program: BpfProgram;
  readonly calls: TestRunOptions[];
}

function stub(type: ProgramType, result: Partial<TestRunResult> = {}): Stub {
  const calls: TestRunOptions[] = [];
  const program = {
    name: "stub",
    type,
    testRun(options: TestRunOptions): TestRunResult {
      calls.push(options);
      return { retval: 0, data: options.data ?? new Uint8Array(0), ctx: undefined, duration: 42, ...result };
    },
  } as unknown as BpfProgram;
  return { program, calls };
}

const frame = packet(eth(), ipv4(), icmp());

describe("testRun() verdicts", () => {
  test.each([
    [0, "XDP_ABORTED"],
    [1, "XDP_DROP"],
    [2, "XDP_PASS"],
    [3, "XDP_TX"],
    [4, "XDP_REDIRECT"],
    [5, undefined],
  ] as const)("testRun() names XDP return value %i %s", (retval, verdict) => {
    const r = testRun(stub("xdp", { retval }).program, frame);
    expect(r.verdict).toBe(verdict);
    expect(r.retval).toBe(retval);
  });

  test.each([
    [0xffffffff, "TC_ACT_UNSPEC"],
    [0, "TC_ACT_OK"],
    [1, "TC_ACT_RECLASSIFY"],
    [2, "TC_ACT_SHOT"],
    [3, "TC_ACT_PIPE"],
    [4, "TC_ACT_STOLEN"],
    [5, "TC_ACT_QUEUED"],
    [6, "TC_ACT_REPEAT"],
    [7, "TC_ACT_REDIRECT"],
    [8, "TC_ACT_TRAP"],
    [9, undefined],
  ] as const)("testRun() names tc return value %i %s", (retval, verdict) => {
    expect(testRun(stub("schedCls", { retval }).program, frame).verdict).toBe(verdict);
    expect(testRun(stub("schedAct", { retval }).program, frame).verdict).toBe(verdict);
  });

  test("testRun() names no verdict for other program types", () => {
    expect(testRun(stub("cgroupSkb", { retval: 1 }).program, frame).verdict).toBeUndefined();
  });
});

describe("testRun() inputs and outputs", () => {
  test("testRun() passes the packet, repeat and output size and returns the output", () => {
    const out = packet(eth(), ipv4({ dst: "10.0.0.9" }), icmp());
    const s = stub("xdp", { retval: 2, data: out, duration: 17 });
    const r = testRun(s.program, frame, { repeat: 100, dataOutSize: 256 });
    expect(s.calls).toEqual([{ data: frame, repeat: 100, dataOutSize: 256 }]);
    expect(r).toMatchObject({ verdict: "XDP_PASS", retval: 2, packet: out, duration: 17, ctx: undefined });
    expect(r.parsed.ipv4?.dst).toBe("10.0.0.9");
  });

  test("testRun() encodes an XDP context as struct xdp_md", () => {
    const s = stub("xdp");
    testRun(s.program, frame, { ctx: { ingressIfindex: 7, rxQueueIndex: 1 } });
    const ctx = s.calls[0]?.ctx as Uint8Array;
    const dv = new DataView(ctx.buffer);
    expect(ctx.length).toBe(24);
    expect([0, 4, 8, 12, 16, 20].map((o) => dv.getUint32(o, true))).toEqual([0, frame.length, 0, 7, 1, 0]);
  });

  test("testRun() encodes an skb context as struct __sk_buff", () => {
    const s = stub("schedCls");
    testRun(s.program, frame, {
      ctx: {
        mark: 0xdead,
        priority: 3,
        ingressIfindex: 4,
        ifindex: 1,
        cb: [1, 2, 3, 4, 5],
        tstamp: 99n,
        wireLen: 100,
        gsoSegs: 2,
        gsoSize: 1400,
      },
    });
    const ctx = s.calls[0]?.ctx as Uint8Array;
    const dv = new DataView(ctx.buffer);
    expect(ctx.length).toBe(192);
    expect(dv.getUint32(8, true)).toBe(0xdead);
    expect(dv.getUint32(32, true)).toBe(3);
    expect(dv.getUint32(36, true)).toBe(4);
    expect(dv.getUint32(40, true)).toBe(1);
    expect([0, 1, 2, 3, 4].map((i) => dv.getUint32(48 + i * 4, true))).toEqual([1, 2, 3, 4, 5]);
    expect(dv.getBigUint64(152, true)).toBe(99n);
    expect(dv.getUint32(160, true)).toBe(100);
    expect(dv.getUint32(164, true)).toBe(2);
    expect(dv.getUint32(176, true)).toBe(1400);
  });

  test("testRun() passes a context given as bytes through for any program type", () => {
    const s = stub("flowDissector");
    const ctx = new Uint8Array([1, 2, 3]);
    testRun(s.program, frame, { ctx });
    expect(s.calls[0]?.ctx).toBe(ctx);
  });

  test("testRun() parses the output only when asked, and throws PacketParseError then", () => {
    const r = testRun(stub("xdp", { data: new Uint8Array(10) }).program, frame);
    expect(r.packet.length).toBe(10);
    expect(() => r.parsed).toThrow(PacketParseError);
  });
});

describe("testRun() refuses bad input before any system call", () => {
  test.each([
    [
      "an skb field for XDP",
      "xdp",
      { ctx: { mark: 1 } },
      TypeError,
      /"mark" is not a context field of xdp programs: expected "ingressIfindex", "rxQueueIndex"/,
    ],
    [
      "an XDP field for tc",
      "schedCls",
      { ctx: { rxQueueIndex: 1 } },
      TypeError,
      /"rxQueueIndex" is not a context field of schedCls programs/,
    ],
    [
      "a context object for a type without one",
      "flowDissector",
      { ctx: {} },
      TypeError,
      /flowDissector programs take the context as bytes/,
    ],
    ["six cb words", "schedCls", { ctx: { cb: [0, 0, 0, 0, 0, 0] } }, RangeError, /ctx\.cb: expected at most 5 words/],
    [
      "a negative mark",
      "schedCls",
      { ctx: { mark: -1 } },
      RangeError,
      /ctx\.mark: expected an integer from 0 to 4294967295, got -1/,
    ],
    ["a number as tstamp", "schedCls", { ctx: { tstamp: 1 } }, RangeError, /ctx\.tstamp: expected a bigint/],
    ["repeat 0", "xdp", { repeat: 0 }, RangeError, /repeat: expected an integer from 1/],
  ] as const)("testRun() throws for %s", (_, type, options, error, message) => {
    const s = stub(type);
    expect(() => testRun(s.program, frame, options as never)).toThrow(error);
    expect(() => testRun(s.program, frame, options as never)).toThrow(message);
    expect(s.calls).toEqual([]);
  });

  test("testRun() throws a RangeError for a packet shorter than an Ethernet header", () => {
    const s = stub("schedCls");
    expect(() => testRun(s.program, new Uint8Array(13))).toThrow(
      /schedCls programs need at least an Ethernet header \(14 bytes\), got 13/,
    );
    expect(() => testRun(s.program, [1, 2] as never)).toThrow(TypeError);
    expect(s.calls).toEqual([]);
  });
});
