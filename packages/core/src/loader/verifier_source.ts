// Maps a verifier rejection back to the source: the failing instruction from
// the log, then its line from the program's BTF line info (or from the
// `; text @ file:line` lines the kernel prints when it has line info).
import { errnoText } from "../_errno.ts";
import { VerifierError, type VerifierSource } from "../errors.ts";

/** One line_info record of a loaded program, by instruction index (a `BtfLineInfo` plus its instruction). */
export interface SourceLineInfo {
  /** The index of the first instruction the record describes, in the loaded program. */
  readonly instruction: number;
  /** The source file name, such as `"./bpf/testdata/verifier_fail.c"`. */
  readonly fileName: string;
  /** The text of the source line. */
  readonly sourceLine: string;
  /** The 1-based line number (0 when the compiler gave none). */
  readonly line: number;
  /** The 1-based column, or 0. */
  readonly column: number;
}

/** An instruction as the verifier prints it: `12: (61) r0 = *(u32 *)(r1 +0)`. */
const INSTRUCTION_LINE = /^(\d+): \([0-9a-f]{2}\)/;
/** A source line as the verifier prints it before the instructions (Linux 6.4+): `; return *p; @ prog.c:17`. */
const SOURCE_LINE = /^; (.*) @ (\S+):(\d+)$/;

/**
 * Finds the instruction the verifier rejected: the last instruction it
 * printed (`12: (61) r0 = …`). Register state lines (`12: R0=…`), branch
 * lines (`from 4 to 6: …`), source lines (`; …`) and the statistics at the
 * end are not instructions.
 *
 * @param log The verifier log, one entry per line.
 * @returns The instruction index, or `undefined` when the log shows none
 *   (the program was rejected before its instructions were walked).
 * @example The failing instruction of a short log
 * ```ts
 * import assert from "node:assert/strict";
 * import { failingInstruction } from "@dp/core/internal";
 *
 * const log = ["0: R1=ctx() R10=fp0", "0: (b7) r0 = 1", "1: (0f) r0 += r3", "R3 !read_ok", "processed 2 insns"];
 * assert.equal(failingInstruction(log), 1);
 * ```
 */
export function failingInstruction(log: readonly string[]): number | undefined {
  return lastInstructionLine(log)?.instruction;
}

/**
 * Finds the source line of an instruction: the last line_info record at
 * or before it (a record covers the instructions up to the next one).
 *
 * @param lineInfo The program's records, sorted by instruction.
 * @param instruction The instruction index.
 * @returns The source line, or `undefined` when no record covers the
 *   instruction or the covering record has no line number.
 * @example The record before an instruction
 * ```ts
 * import assert from "node:assert/strict";
 * import { sourceForInstruction } from "@dp/core/internal";
 *
 * const lineInfo = [
 *   { instruction: 0, fileName: "prog.c", sourceLine: "int prog(void *ctx)", line: 4, column: 0 },
 *   { instruction: 3, fileName: "prog.c", sourceLine: "\treturn *p;", line: 7, column: 9 },
 * ];
 * assert.deepEqual(sourceForInstruction(lineInfo, 5), { instruction: 5, file: "prog.c", line: 7, column: 9, text: "\treturn *p;" });
 * ```
 */
export function sourceForInstruction(
  lineInfo: readonly SourceLineInfo[],
  instruction: number,
): VerifierSource | undefined {
  let found: SourceLineInfo | undefined;
  for (const r of lineInfo) {
    if (r.instruction > instruction) break;
    found = r;
  }
  if (found === undefined || found.line === 0) return undefined;
  return { instruction, file: found.fileName, line: found.line, column: found.column, text: found.sourceLine };
}

/**
 * Adds the failing instruction's source line to a verifier error: from
 * `lineInfo` when given, else from the last `; text @ file:line` line the
 * kernel printed before the failing instruction (Linux 6.4+ prints those
 * when the program was loaded with line info; they name the file without
 * its directory and no column).
 *
 * @param err The error `loadProgram` threw.
 * @param lineInfo The line_info records the program was loaded with, sorted by instruction.
 * @returns A new error with the same message prefix, call, error number,
 *   log and `cause`, and `source` set; or `err` itself when no source
 *   line can be found.
 * @example Mapping a log to its source line
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerifierError } from "@dp/core";
 * import { withSource } from "@dp/core/internal";
 *
 * const err = new VerifierError('Cannot load program "bad"', {
 *   syscall: "bpf",
 *   op: "BPF_PROG_LOAD",
 *   errno: 13,
 *   log: ["0: (b7) r0 = 0", "1: (61) r0 = *(u32 *)(r1 +0)", "R1 !read_ok"],
 *   truncated: false,
 * });
 * const lineInfo = [{ instruction: 1, fileName: "bad.c", sourceLine: "\treturn *p;", line: 9, column: 2 }];
 * const mapped = withSource(err, lineInfo);
 * assert.equal(mapped.source?.line, 9);
 * assert.equal(
 *   mapped.message,
 *   'Cannot load program "bad": EACCES (permission denied): 1: (61) r0 = *(u32 *)(r1 +0): R1 !read_ok at bad.c:9: return *p; (1 lines omitted)',
 * );
 * ```
 */
export function withSource(err: VerifierError, lineInfo: readonly SourceLineInfo[] = []): VerifierError {
  const failing = lastInstructionLine(err.log);
  if (failing === undefined) return err;
  const source =
    sourceForInstruction(lineInfo, failing.instruction) ?? sourceFromLog(err.log, failing.index, failing.instruction);
  if (source === undefined) return err;
  return new VerifierError(whatOf(err), {
    syscall: err.syscall,
    op: err.op,
    errno: err.errno,
    log: err.log,
    truncated: err.truncated,
    source,
    cause: err.cause,
  });
}

function lastInstructionLine(log: readonly string[]): { index: number; instruction: number } | undefined {
  for (let i = log.length - 1; i >= 0; i--) {
    const m = INSTRUCTION_LINE.exec(log[i] ?? "");
    if (m !== null) return { index: i, instruction: Number(m[1]) };
  }
  return undefined;
}

/**
 * The source line the kernel printed for an instruction: it prints
 * `; text @ file:line` whenever the line changes, so the last one before
 * the instruction's line is the instruction's.
 */
function sourceFromLog(log: readonly string[], index: number, instruction: number): VerifierSource | undefined {
  for (let i = index - 1; i >= 0; i--) {
    const m = SOURCE_LINE.exec(log[i] ?? "");
    if (m !== null) return { instruction, file: m[2] as string, line: Number(m[3]), column: 0, text: m[1] as string };
  }
  return undefined;
}

/** The `what` a VerifierError was made with: its message without `: CODE (text): summary`. */
function whatOf(err: VerifierError): string {
  const suffix = `: ${err.code} (${errnoText(err.errno)})${err.hint ? `: ${err.hint}` : ""}`;
  return err.message.endsWith(suffix) ? err.message.slice(0, err.message.length - suffix.length) : err.message;
}
