import { describe, expect, test } from "vitest";
import { VerifierError, type VerifierErrorOptions } from "@dp/core";
import { failingInstruction, type SourceLineInfo, sourceForInstruction, withSource } from "./verifier_source.ts";

// Linux 6.18 rejecting bpf/testdata/verifier_fail.c's deref_unchecked, loaded with line_info.
const DEREF_LOG = [
  "0: R1=ctx() R10=fp0",
  "; int deref_unchecked(struct __sk_buff *skb) @ verifier_fail.c:28",
  "0: (b7) r1 = 0                        ; R1=0",
  "; __u32 key = 0; @ verifier_fail.c:30",
  "1: (63) *(u32 *)(r10 -4) = r1         ; R1=0 R10=fp0 fp-8=0000????",
  "2: (bf) r2 = r10                      ; R2=fp0 R10=fp0",
  "3: (07) r2 += -4                      ; R2=fp-4",
  "; __u64 *value = bpf_map_lookup_elem(&fail_values, &key); @ verifier_fail.c:31",
  "4: (18) r1 = 0xffff88813670d800       ; R1=map_ptr(map=fail_values,ks=4,vs=8)",
  "6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=fail_values,ks=4,vs=8)",
  "; return *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */ @ verifier_fail.c:33",
  "7: (79) r0 = *(u64 *)(r0 +0)",
  "R0 invalid mem access 'map_value_or_null'",
  "processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
];

// Its line_info, as the loader passes it.
const DEREF_LINES: SourceLineInfo[] = [
  {
    instruction: 0,
    fileName: "./bpf/testdata/verifier_fail.c",
    sourceLine: "int deref_unchecked(struct __sk_buff *skb)",
    line: 28,
    column: 0,
  },
  { instruction: 0, fileName: "./bpf/testdata/verifier_fail.c", sourceLine: "\t__u32 key = 0;", line: 30, column: 8 },
  {
    instruction: 4,
    fileName: "./bpf/testdata/verifier_fail.c",
    sourceLine: "\t__u64 *value = bpf_map_lookup_elem(&fail_values, &key);",
    line: 31,
    column: 17,
  },
  {
    instruction: 7,
    fileName: "./bpf/testdata/verifier_fail.c",
    sourceLine: "\treturn *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */",
    line: 33,
    column: 9,
  },
];

// A path that branches: the verifier walks 0-2, then comes back for 3 from 1.
const BRANCH_LOG = [
  "func#0 @0",
  "0: R1=ctx() R10=fp0",
  "0: (b7) r0 = 0                        ; R0_w=0",
  "1: (15) if r1 == 0x0 goto pc+1        ; R1=ctx()",
  "2: (95) exit",
  "from 1 to 3: R0_w=0 R1=ctx() R10=fp0",
  "3: R0_w=0 R1=ctx() R10=fp0",
  "3: (61) r0 = *(u32 *)(r3 +0)",
  "R3 !read_ok",
  "processed 4 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
];

// Log level 2 with precision tracking lines that quote earlier instructions after the last one.
const PRECISE_LOG = [
  "0: R1=ctx() R10=fp0",
  "0: (b7) r2 = 8                        ; R2_w=8",
  "1: (bf) r3 = r10                      ; R3_w=fp0 R10=fp0",
  "2: (0f) r3 += r2",
  "mark_precise: frame0: last_idx 2 first_idx 0 subseq_idx -1",
  "mark_precise: frame0: regs=r2 stack= before 1: (bf) r3 = r10",
  "mark_precise: frame0: regs=r2 stack= before 0: (b7) r2 = 8",
  "3: R2_w=P8 R3_w=fp8",
  "from 2 to 3: safe",
  "3: (72) *(u8 *)(r3 +0) = 0",
  "invalid write to stack R3 off=8 size=1",
  "verification time 25 usec",
  "stack depth 0",
  "processed 4 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
  "",
];

function verifierError(log: readonly string[], extra: Partial<VerifierErrorOptions> = {}): VerifierError {
  return new VerifierError('Cannot load schedCls program "deref_unchecked"', {
    syscall: "bpf",
    op: "BPF_PROG_LOAD",
    errno: 13,
    log,
    truncated: false,
    ...extra,
  });
}

describe("failingInstruction()", () => {
  test.each([
    ["a log with source lines", DEREF_LOG, 7],
    ["a log that branches (from 1 to 3)", BRANCH_LOG, 3],
    ["a log with precision tracking and statistics after the error", PRECISE_LOG, 3],
    ["an instruction line with a trailing state", ["0: (b7) r0 = 0                        ; R0_w=0", "R0 is fine"], 0],
    ["a truncated log of one line", ["12: (61) r0 = *(u32 *)(r1 +0)"], 12],
  ])("failingInstruction() finds the last printed instruction in %s", (_what, log, instruction) => {
    expect(failingInstruction(log)).toBe(instruction);
  });

  test.each([
    ["an empty log", []],
    ["a rejection before the walk", ["back-edge from insn 3 to 1", "processed 0 insns (limit 1000000)"]],
    ["state and branch lines only", ["0: R1=ctx() R10=fp0", "from 4 to 6: R0=0", "; return 0; @ x.c:3"]],
  ])("failingInstruction() returns undefined for %s", (_what, log) => {
    expect(failingInstruction(log)).toBeUndefined();
  });
});

describe("sourceForInstruction()", () => {
  test("sourceForInstruction() takes the last record at or before the instruction", () => {
    expect(sourceForInstruction(DEREF_LINES, 7)).toEqual({
      instruction: 7,
      file: "./bpf/testdata/verifier_fail.c",
      line: 33,
      column: 9,
      text: "\treturn *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */",
    });
    expect(sourceForInstruction(DEREF_LINES, 6)).toMatchObject({ instruction: 6, line: 31, column: 17 });
    expect(sourceForInstruction(DEREF_LINES, 0)).toMatchObject({ instruction: 0, line: 30 });
    expect(sourceForInstruction(DEREF_LINES, 100)).toMatchObject({ instruction: 100, line: 33 });
  });

  test("sourceForInstruction() returns undefined before the first record, without records, and for a record without a line", () => {
    const later = DEREF_LINES.map((r) => ({ ...r, instruction: r.instruction + 2 }));
    expect(sourceForInstruction(later, 1)).toBeUndefined();
    expect(sourceForInstruction([], 0)).toBeUndefined();
    const noLine = [
      ...DEREF_LINES,
      { instruction: 8, fileName: "./bpf/testdata/verifier_fail.c", sourceLine: "", line: 0, column: 0 },
    ];
    expect(sourceForInstruction(noLine, 9)).toBeUndefined();
  });
});

describe("withSource()", () => {
  test("withSource() names the file, line and text of the failing instruction from line_info", () => {
    const err = verifierError(DEREF_LOG, { cause: "why" });
    const mapped = withSource(err, DEREF_LINES);
    expect(mapped).toBeInstanceOf(VerifierError);
    expect(mapped.message).toBe(
      'Cannot load schedCls program "deref_unchecked": EACCES (permission denied): 7: (79) r0 = *(u64 *)(r0 +0): ' +
        "R0 invalid mem access 'map_value_or_null' at ./bpf/testdata/verifier_fail.c:33: " +
        "return *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */ (12 lines omitted)",
    );
    expect(mapped.source).toEqual(sourceForInstruction(DEREF_LINES, 7));
    expect(mapped).toMatchObject({
      name: "VerifierError",
      syscall: "bpf",
      op: "BPF_PROG_LOAD",
      errno: 13,
      code: "EACCES",
      truncated: false,
    });
    expect(mapped.log).toBe(err.log);
    expect(mapped.cause).toBe("why");
    expect(mapped.formatLog()).toBe(err.formatLog());
  });

  test("withSource() falls back to the log's '; text @ file:line' lines without line_info", () => {
    const mapped = withSource(verifierError(DEREF_LOG));
    expect(mapped.source).toEqual({
      instruction: 7,
      file: "verifier_fail.c",
      line: 33,
      column: 0,
      text: "return *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */",
    });
    expect(mapped.message).toMatch(/ at verifier_fail\.c:33: return \*value \+ 1; .* \(12 lines omitted\)$/);
  });

  test("withSource() keeps the log's source line for an instruction after a branch", () => {
    const log = [
      "; if (!p) @ prog.c:5",
      "1: (15) if r1 == 0x0 goto pc+1        ; R1=ctx()",
      "; return 1; @ prog.c:6",
      "2: (95) exit",
      "from 1 to 3: R1=0 R10=fp0",
      "; return *(int *)p; @ prog.c:7",
      "3: (61) r0 = *(u32 *)(r1 +0)",
      "R1 invalid mem access 'scalar'",
    ];
    expect(withSource(verifierError(log)).source).toMatchObject({
      instruction: 3,
      file: "prog.c",
      line: 7,
      text: "return *(int *)p;",
    });
  });

  test("withSource() keeps the truncation note after the source line", () => {
    const mapped = withSource(verifierError(["3: (61) r0 = *(u32 *)(r1 +0)"], { truncated: true }), [
      { instruction: 0, fileName: "p.c", sourceLine: "  return *p;  ", line: 2, column: 3 },
    ]);
    expect(mapped.message).toBe(
      'Cannot load schedCls program "deref_unchecked": EACCES (permission denied): 3: (61) r0 = *(u32 *)(r1 +0) at p.c:2: return *p; (log truncated)',
    );
  });

  test.each([
    ["the log shows no instruction", ["back-edge from insn 3 to 1"], DEREF_LINES],
    ["no record covers the instruction and the log has no source lines", BRANCH_LOG, []],
    ["the log has no source lines and no line_info is given", BRANCH_LOG, undefined],
  ])("withSource() returns the error itself when %s", (_what, log, lines) => {
    const err = verifierError(log);
    expect(withSource(err, lines)).toBe(err);
  });

  test("withSource() prefers line_info to the log, and the log to a record without a line", () => {
    const other = [{ instruction: 7, fileName: "other.c", sourceLine: "x;", line: 99, column: 1 }];
    expect(withSource(verifierError(DEREF_LOG), other).source).toMatchObject({ file: "other.c", line: 99 });
    const noLine = [{ instruction: 7, fileName: "other.c", sourceLine: "", line: 0, column: 0 }];
    expect(withSource(verifierError(DEREF_LOG), noLine).source).toMatchObject({ file: "verifier_fail.c", line: 33 });
  });

  test("withSource() keeps a custom message prefix that contains the error code", () => {
    const err = new VerifierError("Cannot load: EACCES (permission denied) twice", {
      syscall: "bpf",
      op: "BPF_PROG_LOAD",
      errno: 13,
      log: DEREF_LOG,
      truncated: false,
    });
    expect(withSource(err, DEREF_LINES).message).toMatch(
      /^Cannot load: EACCES \(permission denied\) twice: EACCES \(permission denied\): 7: \(79\)/,
    );
  });
});

describe("VerifierError", () => {
  test("VerifierError without a source keeps its summary and has source undefined", () => {
    const err = verifierError(DEREF_LOG);
    expect(err.source).toBeUndefined();
    expect(err.message).toBe(
      'Cannot load schedCls program "deref_unchecked": EACCES (permission denied): 7: (79) r0 = *(u64 *)(r0 +0): ' +
        "R0 invalid mem access 'map_value_or_null' (12 lines omitted)",
    );
  });

  test("VerifierError names the source line after the cause and before the count of omitted lines", () => {
    const source = { instruction: 0, file: "x.c", line: 4, column: 2, text: "\treturn;\n" };
    const err = verifierError(["0: (95) exit", "R0 !read_ok", "processed 1 insns"], { source });
    expect(err.source).toBe(source);
    expect(err.message).toMatch(/: 0: \(95\) exit: R0 !read_ok at x\.c:4: return; \(1 lines omitted\)$/);
    expect(verifierError([], { source }).message).toMatch(/: empty verifier log at x\.c:4: return;$/);
  });
});
