import { errnoName, errnoText } from "./_errno.ts";

/** Options for {@link SyscallError}. */
export interface SyscallErrorOptions {
  /** The system call that failed, such as `"bpf"`, `"setns"` or `"netlink"`. */
  readonly syscall: string;
  /** The operation, such as `"BPF_MAP_CREATE"` or `"RTM_NEWLINK"`. */
  readonly op: string;
  /** The positive kernel error number. */
  readonly errno: number;
  /** A suggestion for fixing a known failure. */
  readonly hint?: string | undefined;
  /** The error that caused this one. */
  readonly cause?: unknown;
}

/**
 * A system call failed with an error number.
 *
 * `code` has the same shape as Node's system errors (`"EPERM"`), `errno` is
 * the positive kernel number and `hint` a suggestion for known failures
 * (missing privileges, a full map).
 *
 * @example Recognising a privilege failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { SyscallError } from "@dp/core";
 *
 * const err = new SyscallError('Cannot create map "flows"', {
 *   syscall: "bpf",
 *   op: "BPF_MAP_CREATE",
 *   errno: 1,
 * });
 * assert.equal(err.code, "EPERM");
 * assert.equal(err.message, 'Cannot create map "flows": EPERM (operation not permitted)');
 * ```
 */
export class SyscallError extends Error {
  /** Always `"SyscallError"` here; each subclass sets its own class name. */
  override readonly name: string = "SyscallError";
  /** The system call, such as `"bpf"`. */
  readonly syscall: string;
  /** The operation, such as `"BPF_MAP_CREATE"`. */
  readonly op: string;
  /** The symbolic error code, such as `"EPERM"`. */
  readonly code: string;
  /** The positive kernel error number. */
  readonly errno: number;
  /** A suggestion for fixing the failure, when one is known. */
  readonly hint: string | undefined;

  /**
   * Creates an error whose message is `what`, the code, its description and
   * the hint.
   *
   * @param what What was being done, such as `Cannot create map "flows"`.
   * @param options The failing call and its error number.
   */
  constructor(what: string, options: SyscallErrorOptions) {
    const code = errnoName(options.errno);
    const hint = options.hint;
    super(
      `${what}: ${code} (${errnoText(options.errno)})${hint ? `: ${hint}` : ""}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.syscall = options.syscall;
    this.op = options.op;
    this.code = code;
    this.errno = options.errno;
    this.hint = hint;
  }
}

/**
 * The source line of the instruction the verifier rejected, from the
 * program's BTF line info (or the `; text @ file:line` lines of the log).
 */
export interface VerifierSource {
  /** The index of the failing instruction in the loaded program. */
  readonly instruction: number;
  /** The source file as the line info names it, such as `"./bpf/testdata/verifier_fail.c"`. */
  readonly file: string;
  /** The 1-based line number. */
  readonly line: number;
  /** The 1-based column, or 0 when unknown. */
  readonly column: number;
  /** The text of the source line. */
  readonly text: string;
}

/** Options for {@link VerifierError}. */
export interface VerifierErrorOptions extends SyscallErrorOptions {
  /** The verifier log, one entry per line. */
  readonly log: readonly string[];
  /** Whether the log was cut short because the buffer was too small. */
  readonly truncated: boolean;
  /**
   * The source line of the failing instruction, added to the summary.
   *
   * @default undefined
   */
  readonly source?: VerifierSource | undefined;
}

/** Options for {@link VerifierError.formatLog}. */
export interface FormatLogOptions {
  /**
   * Keep only the first lines.
   *
   * @default all lines
   */
  readonly head?: number;
  /**
   * Keep only the last lines.
   *
   * @default all lines
   */
  readonly tail?: number;
}

const INSTRUCTION_LINE = /^\d+: \([0-9a-f]{2}\)/;
const TRAILER_LINE = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn|mark_precise|Func#|\s*$)/;

/**
 * The kernel's verifier rejected a program.
 *
 * The message is a summary: the failing instruction, the verifier's
 * reason and how many log lines were left out. The full log is in `log`
 * and {@link VerifierError.formatLog}.
 *
 * With a {@link VerifierSource}, the summary also names the source line
 * after the reason: `<instruction>: <reason> at <file>:<line>: <text>
 * (N lines omitted)`, the text without its leading and trailing spaces.
 *
 * @example Summarising a log
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerifierError } from "@dp/core";
 *
 * const err = new VerifierError('Cannot load program "bad"', {
 *   syscall: "bpf",
 *   op: "BPF_PROG_LOAD",
 *   errno: 13,
 *   log: ["func#0 @0", "0: R1=ctx() R10=fp0", "0: (95) exit", "R0 !read_ok",
 *     "processed 1 insns (limit 1000000) max_states_per_insn 0"],
 *   truncated: false,
 * });
 * assert.match(err.message, /0: \(95\) exit: R0 !read_ok \(3 lines omitted\)/);
 * ```
 * @example Naming the source line
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerifierError } from "@dp/core";
 *
 * const err = new VerifierError('Cannot load program "bad"', {
 *   syscall: "bpf",
 *   op: "BPF_PROG_LOAD",
 *   errno: 13,
 *   log: ["0: (95) exit", "R0 !read_ok"],
 *   truncated: false,
 *   source: { instruction: 0, file: "bad.c", line: 3, column: 2, text: "\treturn;" },
 * });
 * assert.equal(err.source?.line, 3);
 * assert.match(err.message, /0: \(95\) exit: R0 !read_ok at bad\.c:3: return;$/);
 * ```
 */
export class VerifierError extends SyscallError {
  /** Always `"VerifierError"`, the class name. */
  override readonly name: string = "VerifierError";
  /** The verifier log, one entry per line. */
  readonly log: readonly string[];
  /** Whether the log was cut short because the buffer was too small. */
  readonly truncated: boolean;
  /** The source line of the failing instruction, when it is known. */
  readonly source: VerifierSource | undefined;

  /**
   * Creates a verifier error whose message summarises `log` (and names
   * `source` when given).
   *
   * @param what What was being done, such as `Cannot load program "xdp_drop"`.
   * @param options The failing call, its error number, the log and the source line.
   */
  constructor(what: string, options: VerifierErrorOptions) {
    const summary = summarizeLog(options.log, options.truncated, options.source);
    super(what, { ...options, hint: summary });
    this.log = options.log;
    this.truncated = options.truncated;
    this.source = options.source;
  }

  /**
   * Returns the log as one string, optionally only its first or last lines.
   *
   * @param options Which lines to keep.
   * @returns The selected log lines joined by newlines.
   */
  formatLog(options: FormatLogOptions = {}): string {
    let lines = this.log;
    if (options.head !== undefined) lines = lines.slice(0, options.head);
    if (options.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - options.tail));
    return lines.join("\n");
  }
}

function summarizeLog(log: readonly string[], truncated: boolean, source: VerifierSource | undefined): string {
  const at = source === undefined ? "" : ` at ${source.file}:${source.line}: ${source.text.trim()}`;
  let end = log.length;
  while (end > 0 && TRAILER_LINE.test(log[end - 1] ?? "")) end--;
  if (end === 0) return (truncated ? "verifier log truncated" : "empty verifier log") + at;
  const cause = (log[end - 1] ?? "").trim();
  const parts = [cause];
  const before = (log[end - 2] ?? "").trim();
  if (end >= 2 && !INSTRUCTION_LINE.test(cause) && INSTRUCTION_LINE.test(before)) {
    parts.unshift(before);
  }
  const omitted = log.length - parts.length;
  let summary = parts.join(": ") + at;
  if (omitted > 0) summary += ` (${omitted} lines omitted)`;
  if (truncated) summary += " (log truncated)";
  return summary;
}

/** Options for {@link NotSupportedError}. */
export interface NotSupportedErrorOptions {
  /** The first kernel version that has the feature, such as `"6.6"`. */
  readonly minKernel?: string | undefined;
  /** The error that showed the feature is missing. */
  readonly cause?: unknown;
}

/**
 * The running kernel lacks a feature.
 *
 * @example Guarding an optional feature
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotSupported, NotSupportedError } from "@dp/core";
 *
 * const err = new NotSupportedError("tcx links", { minKernel: "6.6" });
 * assert.ok(isNotSupported(err));
 * assert.equal(err.message, "tcx links not supported (requires Linux 6.6)");
 * ```
 */
export class NotSupportedError extends Error {
  /** Always `"NotSupportedError"`, the class name. */
  override readonly name: string = "NotSupportedError";
  /** The missing feature. */
  readonly feature: string;
  /** The first kernel version that has it, when known. */
  readonly minKernel: string | undefined;

  /**
   * Creates an error for a missing feature.
   *
   * @param feature The feature, such as `"tcx links"`.
   * @param options The minimum kernel and the cause.
   */
  constructor(feature: string, options: NotSupportedErrorOptions = {}) {
    super(
      `${feature} not supported${options.minKernel ? ` (requires Linux ${options.minKernel})` : ""}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.feature = feature;
    this.minKernel = options.minKernel;
  }
}

/**
 * Tells whether `err` is a {@link NotSupportedError}.
 *
 * @param err Any thrown value.
 * @returns `true` when the kernel lacks the feature `err` names.
 *
 * @example Skipping what the kernel lacks
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotSupported } from "@dp/core";
 *
 * assert.equal(isNotSupported(new Error("other")), false);
 * ```
 */
export function isNotSupported(err: unknown): err is NotSupportedError {
  return err instanceof NotSupportedError;
}

/**
 * A handle was used after `close()`.
 *
 * @example Using a closed handle
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClosedError } from "@dp/core";
 *
 * const err = new ClosedError('map "flows"');
 * assert.equal(err.message, 'Cannot use map "flows": it is closed');
 * ```
 */
export class ClosedError extends Error {
  /** Always `"ClosedError"`, the class name. */
  override readonly name: string = "ClosedError";

  /**
   * Creates an error for a use of the closed `what`.
   *
   * @param what The closed object, such as `map "flows"`.
   */
  constructor(what: string) {
    super(`Cannot use ${what}: it is closed`);
  }
}
