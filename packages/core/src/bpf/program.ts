import { attr, bpfError, bpfShared, cName, cString, Native, objInfo, retryWithLog } from "./_bpf.ts";
import { ATTR_PROG_LOAD, ATTR_TEST, BPF_ATTACH_TYPE, BPF_CMD, BPF_PROG_INFO, BPF_PROG_TYPE } from "../_gen/uapi.ts";
import { ClosedError } from "../errors.ts";
import { E } from "../_errno.ts";
import { Fd, rawFd } from "./fd.ts";
import type { FdOwner } from "./map.ts";
import { openPinnedFd, pinFd } from "./pin.ts";
import { sys } from "../_sys/sys.ts";

/** How many times a program load the verifier gave up on (EAGAIN, a pending signal) is tried, as in libbpf. */
const PROG_LOAD_ATTEMPTS = 5;

/** How often a test run interrupted by a signal is started again. */
const TEST_RUN_EINTR_RETRIES = 32;

/**
 * A BPF program type, named as in the kernel's `enum bpf_prog_type` in
 * camelCase (`BPF_PROG_TYPE_SCHED_CLS` is `"schedCls"`).
 *
 * @useDeclaredType
 */
export type ProgramType = keyof typeof BPF_PROG_TYPE;

/**
 * An attach type, named as in the kernel's `enum bpf_attach_type` in
 * camelCase (`BPF_TCX_INGRESS` is `"tcxIngress"`).
 *
 * @useDeclaredType
 */
export type AttachType = keyof typeof BPF_ATTACH_TYPE;

/** BTF that describes a program's functions and source lines (optional). */
export interface ProgramBtf {
  /** The loaded BTF object. */
  readonly fd: Fd;
  /**
   * `struct bpf_func_info` records.
   *
   * @default none
   */
  readonly funcInfo?: Uint8Array;
  /**
   * Size of one func_info record.
   *
   * @default 8
   */
  readonly funcInfoRecordSize?: number;
  /**
   * `struct bpf_line_info` records.
   *
   * @default none
   */
  readonly lineInfo?: Uint8Array;
  /**
   * Size of one line_info record.
   *
   * @default 16
   */
  readonly lineInfoRecordSize?: number;
}

/**
 * What a program is: plain data. {@link loadProgram} turns it into a
 * kernel object.
 *
 * @example Returning XDP_PASS
 * ```ts no-run
 * import type { ProgramSpec } from "@dp/core";
 *
 * const spec: ProgramSpec = {
 *   name: "pass",
 *   type: "xdp",
 *   license: "GPL",
 *   // r0 = 2 (XDP_PASS); exit
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * };
 * ```
 */
export interface ProgramSpec {
  /**
   * The kernel-visible name: at most 15 characters of `[A-Za-z0-9_.]`.
   *
   * @default ""
   */
  readonly name?: string;
  /** The program type. */
  readonly type: ProgramType;
  /** The instructions: 8 bytes each, host byte order. */
  readonly instructions: Uint8Array;
  /** The license; GPL-only helpers need a GPL-compatible one. */
  readonly license: string;
  /**
   * The attach type the program is verified for (`expected_attach_type`).
   *
   * @default undefined
   */
  readonly expectedAttachType?: AttachType;
  /**
   * `kern_version`, only checked for old kprobe programs.
   *
   * @default 0
   */
  readonly kernelVersion?: number;
  /**
   * `BPF_F_*` program flags.
   *
   * @default 0
   */
  readonly flags?: number;
  /**
   * BTF for function and line information.
   *
   * @default undefined
   */
  readonly btf?: ProgramBtf;
  /**
   * `attach_btf_id` for tracing, LSM and extension programs.
   *
   * @default 0
   */
  readonly attachBtfId?: number;
  /**
   * `attach_prog_fd` / `attach_btf_obj_fd`: the program or BTF object `attachBtfId` refers to.
   *
   * @default undefined
   */
  readonly attachTarget?: FdOwner;
  /**
   * `fd_array`: descriptors instructions refer to by index. A kernel
   * function call (`BPF_PSEUDO_KFUNC_CALL`) with a non-zero `off` calls a
   * function of the module whose BTF object is at that index; index 0 is
   * never read for it (`off` 0 is vmlinux), so it may be `undefined`.
   * Only the entries instructions name are read (`fd_array_cnt` is not set).
   *
   * @default undefined
   */
  readonly fdArray?: readonly (FdOwner | undefined)[];
  /**
   * For `structOps` programs: the index of the member of the kernel struct
   * (`attachBtfId`) the program implements, sent as `expected_attach_type`.
   *
   * @default undefined
   */
  readonly structOpsMember?: number;
}

/** Options for {@link loadProgram}. */
export interface LoadProgramOptions {
  /**
   * Verifier log level used when the first attempt fails: 1 for the
   * instructions on the failing path, 2 for every state.
   *
   * @default 1
   */
  readonly logLevel?: 1 | 2;
  /**
   * Initial log buffer size in bytes; grown on ENOSPC.
   *
   * @default 65536
   */
  readonly logSize?: number;
  /**
   * Largest log buffer to try.
   *
   * @default 268435455
   */
  readonly maxLogSize?: number;
}

/** Room for the context a test run writes back: more than any program type's context (`struct __sk_buff` is 192 bytes). */
const CTX_OUT_DEFAULT = 512;

/** Options for {@link BpfProgram.testRun}. */
export interface TestRunOptions {
  /**
   * The packet (or other input data).
   *
   * @default none
   */
  readonly data?: Uint8Array;
  /**
   * Bytes reserved for the output packet.
   *
   * @default data length + 4096
   */
  readonly dataOutSize?: number;
  /**
   * The context (`struct __sk_buff`, `struct xdp_md`, ...).
   *
   * @default none
   */
  readonly ctx?: Uint8Array;
  /**
   * Bytes reserved for the output context (the kernel refuses a run with
   * ENOSPC when its context does not fit).
   *
   * @default the larger of the ctx length and 512
   */
  readonly ctxOutSize?: number;
  /**
   * How many times to run; `duration` is the mean.
   *
   * @default 1
   */
  readonly repeat?: number;
  /**
   * `BPF_F_TEST_*` flags.
   *
   * @default 0
   */
  readonly flags?: number;
  /**
   * CPU to run on (with `BPF_F_TEST_RUN_ON_CPU`).
   *
   * @default 0
   */
  readonly cpu?: number;
  /**
   * Called before a run is started again because a pending signal
   * interrupted it (EINTR: a child process exiting is enough). The
   * interrupted run may have executed the program some of the `repeat`
   * times, so undo what those executions did (reset the counters a test
   * asserts on) here.
   *
   * @default nothing
   */
  readonly reset?: () => void;
}

/** The outcome of {@link BpfProgram.testRun}. */
export interface TestRunResult {
  /** The program's return value (the verdict). */
  readonly retval: number;
  /** The output data (the packet as the program left it). */
  readonly data: Uint8Array;
  /** The output context, when a context was given. */
  readonly ctx: Uint8Array | undefined;
  /** Mean run time in nanoseconds. */
  readonly duration: number;
}

/** What the kernel reports about a program (`struct bpf_prog_info`). */
export interface ProgramInfo {
  /** The program type, or its number when unknown to this library. */
  readonly type: ProgramType | number;
  /** The kernel-wide program id. */
  readonly id: number;
  /** The kernel-visible name. */
  readonly name: string;
  /** The program tag (a hash of its instructions) as 16 hex digits, as bpftool prints it. */
  readonly tag: string;
  /** Ids of the maps the program uses. */
  readonly mapIds: readonly number[];
  /** The id of the program's BTF, 0 when it has none. */
  readonly btfId: number;
  /** Size of the translated (post-verifier) instructions in bytes. */
  readonly xlatedSize: number;
  /** Size of the JIT-compiled code in bytes. */
  readonly jitedSize: number;
  /** Instructions the verifier processed. */
  readonly verifiedInstructions: number;
  /** Accumulated run time in ns (when BPF stats are enabled). */
  readonly runTimeNs: bigint;
  /** Run count (when BPF stats are enabled). */
  readonly runCount: bigint;
}

const NAME = /^[A-Za-z0-9_.]{0,15}$/;
const TYPE_NAMES: ReadonlyMap<number, ProgramType> = new Map(
  (Object.entries(BPF_PROG_TYPE) as [ProgramType, number][]).reverse().map(([k, v]) => [v, k]),
);

/**
 * A loaded BPF program.
 *
 * `close()` releases this process's reference; the kernel unloads the
 * program when no link, attachment, prog array or pin still holds it.
 *
 * @example Running a program on a packet
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 *
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * const result = prog.testRun({ data: new Uint8Array(64) });
 * assert.equal(result.retval, 1); // XDP_DROP
 * ```
 */
export class BpfProgram {
  /** The kernel-visible name. */
  readonly name: string;
  /** The program type. */
  readonly type: ProgramType;
  /** The attach type it was verified for, if any. */
  readonly expectedAttachType: AttachType | undefined;
  #fd: Fd;

  /**
   * Wraps a program descriptor.
   *
   * @internal Programs are made by {@link loadProgram} and {@link openPinnedProgram}.
   * @param fd The program's descriptor, now owned by the program.
   * @param name The program's name.
   * @param type The program's type.
   * @param expectedAttachType The attach type it was verified for.
   */
  constructor(fd: Fd, name: string, type: ProgramType, expectedAttachType?: AttachType) {
    this.#fd = fd;
    this.name = name;
    this.type = type;
    this.expectedAttachType = expectedAttachType;
  }

  /** The program's descriptor, owned by the program. */
  get fd(): Fd {
    if (this.#fd.closed) throw new ClosedError(this.#what());
    return this.#fd;
  }

  /** Whether {@link BpfProgram.close} was called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /**
   * Runs the program once or `repeat` times on the given input
   * (BPF_PROG_TEST_RUN) without attaching it anywhere.
   *
   * @param options The input packet and context.
   * @returns The verdict, output packet and context, and the mean duration.
   * @throws {SyscallError} EINVAL when the input does not suit the program type, ENOTSUPP when the type cannot be test-run.
   */
  testRun(options: TestRunOptions = {}): TestRunResult {
    const data = options.data;
    const dataOut = new Uint8Array(options.dataOutSize ?? (data?.length ?? 0) + 4096);
    const ctx = options.ctx;
    const ctxOut =
      ctx === undefined && options.ctxOutSize === undefined
        ? undefined
        : new Uint8Array(options.ctxOutSize ?? Math.max(ctx?.length ?? 0, CTX_OUT_DEFAULT));
    // The kernel stops a run when a signal is pending (EINTR, checked between
    // repetitions and, on older kernels, even for one). The run is started
    // again, after options.reset, as cilium/ebpf does.
    let ret = -E.EINTR;
    let a = attr(ATTR_TEST.SIZE);
    for (let attempt = 0; ret === -E.EINTR && attempt < TEST_RUN_EINTR_RETRIES; attempt++) {
      if (attempt > 0) options.reset?.();
      a = this.#testRunAttr(options, data, dataOut, ctx, ctxOut);
      ret = bpfShared(BPF_CMD.PROG_TEST_RUN, ATTR_TEST.SIZE);
    }
    if (ret < 0) throw bpfError(`Cannot test-run ${this.#what()}`, BPF_CMD.PROG_TEST_RUN, -ret);
    const dv = a.dv;
    const outLen = dv.getUint32(ATTR_TEST.data_size_out, true);
    const ctxLen = dv.getUint32(ATTR_TEST.ctx_size_out, true);
    return {
      retval: dv.getUint32(ATTR_TEST.retval, true),
      data: dataOut.slice(0, outLen),
      ctx: ctxOut?.slice(0, ctxLen),
      duration: dv.getUint32(ATTR_TEST.duration, true),
    };
  }

  /** Fills the shared attribute buffer for one BPF_PROG_TEST_RUN. */
  #testRunAttr(
    options: TestRunOptions,
    data: Uint8Array | undefined,
    dataOut: Uint8Array,
    ctx: Uint8Array | undefined,
    ctxOut: Uint8Array | undefined,
  ): ReturnType<typeof attr> {
    const s = sys();
    const a = attr(ATTR_TEST.SIZE);
    const dv = a.dv;
    dv.setUint32(ATTR_TEST.prog_fd, rawFd(this.fd), true);
    if (data !== undefined && data.length > 0) {
      dv.setUint32(ATTR_TEST.data_size_in, data.length, true);
      a.setPtr(ATTR_TEST.data_in, s.addressOf(data));
    }
    if (dataOut.length > 0) {
      dv.setUint32(ATTR_TEST.data_size_out, dataOut.length, true);
      a.setPtr(ATTR_TEST.data_out, s.addressOf(dataOut));
    }
    if (ctx !== undefined && ctx.length > 0) {
      dv.setUint32(ATTR_TEST.ctx_size_in, ctx.length, true);
      a.setPtr(ATTR_TEST.ctx_in, s.addressOf(ctx));
    }
    if (ctxOut !== undefined && ctxOut.length > 0) {
      dv.setUint32(ATTR_TEST.ctx_size_out, ctxOut.length, true);
      a.setPtr(ATTR_TEST.ctx_out, s.addressOf(ctxOut));
    }
    dv.setUint32(ATTR_TEST.repeat, options.repeat ?? 1, true);
    dv.setUint32(ATTR_TEST.flags, options.flags ?? 0, true);
    dv.setUint32(ATTR_TEST.cpu, options.cpu ?? 0, true);
    return a;
  }

  /**
   * Asks the kernel about the program (BPF_OBJ_GET_INFO_BY_FD).
   *
   * @returns The kernel's view, including the id, tag and map ids.
   */
  info(): ProgramInfo {
    const raw = rawFd(this.fd);
    const first = objInfo(raw, BPF_PROG_INFO.SIZE, this.#what());
    const nrMaps = first.dv.getUint32(BPF_PROG_INFO.nr_map_ids, true);
    let mapIds: number[] = [];
    if (nrMaps > 0) {
      const ids = new Native(nrMaps * 4);
      objInfo(raw, BPF_PROG_INFO.SIZE, this.#what(), (info) => {
        info.dv.setUint32(BPF_PROG_INFO.nr_map_ids, nrMaps, true);
        info.setPtr(BPF_PROG_INFO.map_ids, ids.addr);
      });
      mapIds = Array.from({ length: nrMaps }, (_, i) => ids.dv.getUint32(i * 4, true));
    }
    const dv = first.dv;
    const type = dv.getUint32(BPF_PROG_INFO.type, true);
    const tag = Array.from(first.u8.subarray(BPF_PROG_INFO.tag, BPF_PROG_INFO.tag + 8), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
    return {
      type: TYPE_NAMES.get(type) ?? type,
      id: dv.getUint32(BPF_PROG_INFO.id, true),
      name: cName(first.u8.subarray(BPF_PROG_INFO.name, BPF_PROG_INFO.name + 16)),
      tag,
      mapIds,
      btfId: dv.getUint32(BPF_PROG_INFO.btf_id, true),
      xlatedSize: dv.getUint32(BPF_PROG_INFO.xlated_prog_len, true),
      jitedSize: dv.getUint32(BPF_PROG_INFO.jited_prog_len, true),
      verifiedInstructions: dv.getUint32(BPF_PROG_INFO.verified_insns, true),
      runTimeNs: dv.getBigUint64(BPF_PROG_INFO.run_time_ns, true),
      runCount: dv.getBigUint64(BPF_PROG_INFO.run_cnt, true),
    };
  }

  /**
   * Pins the program on bpffs so it outlives this process.
   *
   * @param path An absolute path on bpffs; missing parent directories are created.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    pinFd(this.fd, path, this.#what());
  }

  /** Closes this process's reference to the program. Calling it again does nothing. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the program (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #what(): string {
    return `program "${this.name}"`;
  }
}

function validateProgramSpec(spec: ProgramSpec): void {
  if (typeof spec !== "object" || spec === null) throw new TypeError("Invalid program spec: spec must be an object");
  if (typeof spec.type !== "string" || !Object.hasOwn(BPF_PROG_TYPE, spec.type)) {
    throw new TypeError(`Invalid program spec: spec.type ${JSON.stringify(spec.type)} is not a known program type`);
  }
  if (spec.name !== undefined && (typeof spec.name !== "string" || !NAME.test(spec.name))) {
    throw new RangeError(
      `Invalid program spec: spec.name ${JSON.stringify(spec.name)} must be at most 15 characters of [A-Za-z0-9_.]`,
    );
  }
  if (!(spec.instructions instanceof Uint8Array)) {
    throw new TypeError("Invalid program spec: spec.instructions must be a Uint8Array");
  }
  if (spec.instructions.length === 0 || spec.instructions.length % 8 !== 0) {
    throw new RangeError(
      `Invalid program spec: spec.instructions must be a non-empty multiple of 8 bytes, got ${spec.instructions.length}`,
    );
  }
  if (typeof spec.license !== "string" || spec.license.length === 0) {
    throw new TypeError("Invalid program spec: spec.license must be a non-empty string");
  }
  if (spec.expectedAttachType !== undefined && !Object.hasOwn(BPF_ATTACH_TYPE, spec.expectedAttachType)) {
    throw new TypeError(
      `Invalid program spec: spec.expectedAttachType ${JSON.stringify(spec.expectedAttachType)} is not a known attach type`,
    );
  }
}

/**
 * Loads a program into the kernel (BPF_PROG_LOAD).
 *
 * The first attempt runs without a verifier log; when it fails the load is
 * retried with a log, growing the buffer on ENOSPC (to the size the kernel
 * asks for where it says), so a rejection carries the verifier's reasons.
 *
 * @param spec What to load.
 * @param options Verifier log settings.
 * @returns The loaded program, owned by the caller.
 * @throws {TypeError} When the spec has a wrong field type or unknown program type.
 * @throws {RangeError} When the instructions are empty or not whole instructions.
 * @throws {VerifierError} When the verifier rejects the program; `message` summarises the log.
 * @throws {SyscallError} When the kernel refuses without a log (EPERM without CAP_BPF).
 * @capability CAP_BPF
 * @example A rejected program
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram, VerifierError } from "@dp/core";
 *
 * // "exit" without setting r0.
 * const instructions = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0]);
 * assert.throws(() => loadProgram({ type: "xdp", license: "GPL", instructions }), (err) => {
 *   assert.ok(err instanceof VerifierError);
 *   assert.match(err.message, /R0 !read_ok/);
 *   return true;
 * });
 * ```
 */
export function loadProgram(spec: ProgramSpec, options: LoadProgramOptions = {}): BpfProgram {
  validateProgramSpec(spec);
  const name = spec.name ?? "";
  const s = sys();
  const insns = new Native(spec.instructions.length);
  insns.u8.set(spec.instructions);
  const license = cString(spec.license);
  const funcInfo = spec.btf?.funcInfo;
  const lineInfo = spec.btf?.lineInfo;
  const funcInfoMem = funcInfo === undefined ? undefined : new Native(funcInfo.length);
  funcInfoMem?.u8.set(funcInfo as Uint8Array);
  const lineInfoMem = lineInfo === undefined ? undefined : new Native(lineInfo.length);
  lineInfoMem?.u8.set(lineInfo as Uint8Array);
  let fdArrayMem: Native | undefined;
  if (spec.fdArray !== undefined && spec.fdArray.length > 0) {
    fdArrayMem = new Native(spec.fdArray.length * 4);
    spec.fdArray.forEach((o, i) => {
      if (o !== undefined) fdArrayMem?.dv.setInt32(i * 4, rawFd(o instanceof Fd ? o : o.fd), true);
    });
  }
  const load = (log: Native | undefined, logSize: number, logLevel: number): { ret: number; trueSize: number } => {
    const a = new Native(ATTR_PROG_LOAD.SIZE);
    const dv = a.dv;
    dv.setUint32(ATTR_PROG_LOAD.prog_type, BPF_PROG_TYPE[spec.type], true);
    dv.setUint32(ATTR_PROG_LOAD.insn_cnt, spec.instructions.length / 8, true);
    a.setPtr(ATTR_PROG_LOAD.insns, insns.addr);
    a.setPtr(ATTR_PROG_LOAD.license, license.addr);
    if (log !== undefined) {
      dv.setUint32(ATTR_PROG_LOAD.log_level, logLevel, true);
      dv.setUint32(ATTR_PROG_LOAD.log_size, logSize, true);
      a.setPtr(ATTR_PROG_LOAD.log_buf, log.addr);
    }
    dv.setUint32(ATTR_PROG_LOAD.kern_version, spec.kernelVersion ?? 0, true);
    dv.setUint32(ATTR_PROG_LOAD.prog_flags, spec.flags ?? 0, true);
    a.u8.set(new TextEncoder().encode(name), ATTR_PROG_LOAD.prog_name);
    if (spec.expectedAttachType !== undefined) {
      dv.setUint32(ATTR_PROG_LOAD.expected_attach_type, BPF_ATTACH_TYPE[spec.expectedAttachType], true);
    }
    if (spec.structOpsMember !== undefined) {
      dv.setUint32(ATTR_PROG_LOAD.expected_attach_type, spec.structOpsMember, true);
    }
    if (spec.btf !== undefined) {
      dv.setUint32(ATTR_PROG_LOAD.prog_btf_fd, rawFd(spec.btf.fd), true);
      if (funcInfoMem !== undefined && funcInfo !== undefined) {
        const rec = spec.btf.funcInfoRecordSize ?? 8;
        dv.setUint32(ATTR_PROG_LOAD.func_info_rec_size, rec, true);
        a.setPtr(ATTR_PROG_LOAD.func_info, funcInfoMem.addr);
        dv.setUint32(ATTR_PROG_LOAD.func_info_cnt, funcInfo.length / rec, true);
      }
      if (lineInfoMem !== undefined && lineInfo !== undefined) {
        const rec = spec.btf.lineInfoRecordSize ?? 16;
        dv.setUint32(ATTR_PROG_LOAD.line_info_rec_size, rec, true);
        a.setPtr(ATTR_PROG_LOAD.line_info, lineInfoMem.addr);
        dv.setUint32(ATTR_PROG_LOAD.line_info_cnt, lineInfo.length / rec, true);
      }
    }
    if (fdArrayMem !== undefined) a.setPtr(ATTR_PROG_LOAD.fd_array, fdArrayMem.addr);
    if (spec.attachBtfId !== undefined) dv.setUint32(ATTR_PROG_LOAD.attach_btf_id, spec.attachBtfId, true);
    if (spec.attachTarget !== undefined) {
      const target = spec.attachTarget instanceof Fd ? spec.attachTarget : spec.attachTarget.fd;
      dv.setUint32(ATTR_PROG_LOAD.attach_prog_fd, rawFd(target), true);
    }
    // The verifier gives up with EAGAIN when a signal is pending (a child
    // process exiting is enough); libbpf loads again, up to 5 times.
    let ret = s.bpf(BPF_CMD.PROG_LOAD, a.addr, ATTR_PROG_LOAD.SIZE);
    for (let attempt = 1; ret === -E.EAGAIN && attempt < PROG_LOAD_ATTEMPTS; attempt++) {
      ret = s.bpf(BPF_CMD.PROG_LOAD, a.addr, ATTR_PROG_LOAD.SIZE);
    }
    return { ret, trueSize: dv.getUint32(ATTR_PROG_LOAD.log_true_size, true) };
  };

  const { ret } = load(undefined, 0, 0);
  if (ret >= 0) return new BpfProgram(new Fd(ret, `program "${name}"`), name, spec.type, spec.expectedAttachType);

  const what = `Cannot load ${spec.type} program "${name}"`;
  const fd = retryWithLog(what, BPF_CMD.PROG_LOAD, -ret, options, load);
  return new BpfProgram(new Fd(fd, `program "${name}"`), name, spec.type, spec.expectedAttachType);
}

/**
 * Opens a program pinned on bpffs (BPF_OBJ_GET).
 *
 * @param path The pinned path.
 * @returns A new handle to the pinned program.
 * @throws {SyscallError} ENOENT when nothing is pinned there.
 * @throws {TypeError} When the pinned object is not a program.
 */
export function openPinnedProgram(path: string): BpfProgram {
  return programFromFd(openPinnedFd(path, "program"), `pinned program "${path}"`);
}

/**
 * Wraps a program descriptor opened some other way (a pin, an id), its
 * name and type read back from the kernel.
 *
 * @param fd The descriptor, owned by the result (closed on failure).
 * @param what How to name the program in errors, such as `program 42`.
 * @returns The program handle.
 * @throws {TypeError} When the program's type is unknown to this library.
 */
export function programFromFd(fd: Fd, what: string): BpfProgram {
  try {
    const info = objInfo(rawFd(fd), BPF_PROG_INFO.SIZE, what);
    const type = info.dv.getUint32(BPF_PROG_INFO.type, true);
    const name = cName(info.u8.subarray(BPF_PROG_INFO.name, BPF_PROG_INFO.name + 16));
    const typeName = TYPE_NAMES.get(type);
    if (typeName === undefined) throw new TypeError(`Cannot open ${what}: unknown program type ${type}`);
    return new BpfProgram(fd, name, typeName);
  } catch (err) {
    fd.close();
    throw err;
  }
}
