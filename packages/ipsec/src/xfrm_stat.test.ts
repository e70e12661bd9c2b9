import { describe, expect, test } from "vitest";
import { diffXfrmStat, explainXfrmStat, parseXfrmStat, XFRM_STAT_COUNTERS } from "./xfrm_stat.ts";

// As the kernel prints it (net/xfrm/xfrm_proc.c: "%-24s\t%lu\n"), 6.18.
const TEXT = `XfrmInError             \t0
XfrmInBufferError       \t1
XfrmInHdrError          \t2
XfrmInNoStates          \t3
XfrmInStateProtoError   \t4
XfrmInStateModeError    \t0
XfrmInStateSeqError     \t0
XfrmInStateExpired      \t0
XfrmInStateMismatch     \t0
XfrmInStateInvalid      \t0
XfrmInTmplMismatch      \t5
XfrmInNoPols            \t0
XfrmInPolBlock          \t0
XfrmInPolError          \t0
XfrmOutError            \t0
XfrmOutBundleGenError   \t0
XfrmOutBundleCheckError \t0
XfrmOutNoStates         \t18446744073709551615
XfrmOutStateProtoError  \t0
XfrmOutStateModeError   \t0
XfrmOutStateSeqError    \t7
XfrmOutStateExpired     \t0
XfrmOutPolBlock         \t0
XfrmOutPolDead          \t0
XfrmOutPolError         \t0
XfrmFwdHdrError         \t0
XfrmOutStateInvalid     \t0
XfrmAcquireError        \t0
XfrmOutStateDirError    \t0
XfrmInStateDirError     \t0
XfrmInIptfsError        \t0
XfrmOutNoQueueSpace     \t0
XfrmSomethingNew        \t9
`;

describe("parseXfrmStat", () => {
  test("every counter by camelCase name, as bigint, unknown ones kept", () => {
    const stat = parseXfrmStat(TEXT);
    expect(Object.keys(stat)).toHaveLength(33);
    expect(stat.xfrmInError).toBe(0n);
    expect(stat.xfrmInBufferError).toBe(1n);
    expect(stat.xfrmInNoStates).toBe(3n);
    expect(stat.xfrmInTmplMismatch).toBe(5n);
    expect(stat.xfrmOutNoStates).toBe(0xffffffffffffffffn);
    expect(stat.xfrmOutStateSeqError).toBe(7n);
    expect(stat.xfrmSomethingNew).toBe(9n);
  });

  test("an older kernel's shorter list", () => {
    expect(parseXfrmStat("XfrmInError 0\nXfrmFwdHdrError 2\n")).toEqual({ xfrmInError: 0n, xfrmFwdHdrError: 2n });
  });

  test("a malformed line is a SyntaxError naming it", () => {
    expect(() => parseXfrmStat("XfrmInError 0\nXfrmInNoStates x\n")).toThrow(/line 2 "XfrmInNoStates x"/);
    expect(() => parseXfrmStat("XfrmInError -1")).toThrow(SyntaxError);
    expect(() => parseXfrmStat(1 as unknown as string)).toThrow(TypeError);
  });
});

describe("XFRM_STAT_COUNTERS", () => {
  test("every counter of this kernel's list is known and explained in one line", () => {
    const names = TEXT.trim()
      .split("\n")
      .map((l) => l.split(/\s+/)[0]!)
      .filter((n) => n !== "XfrmSomethingNew");
    for (const n of names) {
      const c = XFRM_STAT_COUNTERS.find((x) => x.kernelName === n);
      expect(c, n).toBeDefined();
      expect(c?.name).toBe(n[0]!.toLowerCase() + n.slice(1));
      expect(c?.explanation).not.toMatch(/\n/);
      expect(c?.explanation.length).toBeGreaterThan(10);
    }
    expect(new Set(XFRM_STAT_COUNTERS.map((c) => c.name)).size).toBe(XFRM_STAT_COUNTERS.length);
  });

  test("explainXfrmStat takes either name", () => {
    expect(explainXfrmStat("XfrmOutStateSeqError")).toMatch(/sequence number overflow/i);
    expect(explainXfrmStat("xfrmOutStateSeqError")).toBe(explainXfrmStat("XfrmOutStateSeqError"));
    expect(explainXfrmStat("XfrmSomethingNew")).toBeUndefined();
  });
});

describe("diffXfrmStat", () => {
  test("the counters that grew, with explanations", () => {
    const before = parseXfrmStat("XfrmInNoStates 3\nXfrmOutPolBlock 1\nXfrmInError 0");
    const after = parseXfrmStat("XfrmInNoStates 10\nXfrmOutPolBlock 1\nXfrmInError 0\nXfrmNew 2");
    expect(diffXfrmStat(before, after)).toEqual([
      { name: "xfrmInNoStates", delta: 7n, explanation: explainXfrmStat("XfrmInNoStates") },
      { name: "xfrmNew", delta: 2n, explanation: "" },
    ]);
  });
});
