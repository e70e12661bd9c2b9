import { attr, bpfError, bpfShared, cName, Native, objInfo, retryWithLog } from "../bpf/_bpf.ts";
import { E } from "../_errno.ts";
import { ATTR_BTF_LOAD, ATTR_GET_ID, BPF_BTF_INFO, BPF_CMD } from "../_gen/uapi.ts";
import {
  Btf,
  type BtfDatasec,
  type BtfEnumValue,
  type BtfKind,
  type BtfMember,
  type BtfType,
  buildBtf,
  encodeBtf,
  parseLazyBtf,
  replaceBtfTypes,
} from "./btf.ts";
import { ClosedError, NotSupportedError } from "../errors.ts";
import { probeError } from "../features/_probe_error.ts";
import { Fd, rawFd } from "../bpf/fd.ts";
import { readBytes } from "../_sys/fs.ts";
import { sys } from "../_sys/sys.ts";

/**
 * The BTF kinds and flags a kernel may lack, as {@link sanitizeBtf} needs
 * them: `true` when the kernel accepts it.
 */
export interface BtfFeatures {
  /** `BTF_KIND_FUNC` and `BTF_KIND_FUNC_PROTO` (Linux 5.0); without them func_info and line_info cannot be loaded either. */
  readonly func: boolean;
  /** `BTF_KIND_FUNC` with global linkage (Linux 5.6). */
  readonly funcGlobal: boolean;
  /** `BTF_KIND_VAR` and `BTF_KIND_DATASEC` (Linux 5.2). */
  readonly datasec: boolean;
  /** `BTF_KIND_FLOAT` (Linux 5.13). */
  readonly float: boolean;
  /** `BTF_KIND_DECL_TAG` (Linux 5.16). */
  readonly declTag: boolean;
  /** `BTF_KIND_TYPE_TAG` (Linux 5.17). */
  readonly typeTag: boolean;
  /** `BTF_KIND_ENUM64` and signed enums (Linux 6.0). */
  readonly enum64: boolean;
}

/** The name of one {@link BtfFeatures} field. */
export type BtfFeature = keyof BtfFeatures;

/** The size and variable offsets of one ELF data section, for {@link fixupDatasecs}. */
export interface DatasecLayout {
  /** The section size in bytes (`sh_size`). */
  readonly size: number;
  /**
   * Variable offsets in the section by name (the symbols' `st_value`).
   *
   * @default no change
   */
  readonly offsets?: ReadonlyMap<string, number>;
}

/** Options for {@link loadBtf}. */
export interface LoadBtfOptions {
  /**
   * Rewrite the kinds the kernel lacks ({@link sanitizeBtf}) before
   * loading. Only applies when a {@link Btf} is given; bytes load as they are.
   *
   * @default true
   */
  readonly sanitize?: boolean;
  /**
   * What the kernel supports, for sanitizing.
   *
   * @default kernelBtfFeatures()
   */
  readonly features?: BtfFeatures;
  /**
   * Log level used when the first attempt fails.
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

/** What the kernel reports about a loaded BTF object (`struct bpf_btf_info`). */
export interface BtfInfo {
  /** The kernel-wide BTF id, as `bpftool btf show` lists it. */
  readonly id: number;
  /** The size of the BTF in bytes. */
  readonly size: number;
}

const ALL_FEATURES: readonly BtfFeature[] = ["func", "funcGlobal", "datasec", "float", "declTag", "typeTag", "enum64"];
const MIN_KERNEL: Readonly<Record<BtfFeature, string>> = {
  func: "5.0",
  funcGlobal: "5.6",
  datasec: "5.2",
  float: "5.13",
  declTag: "5.16",
  typeTag: "5.17",
  enum64: "6.0",
};
const IDENTIFIER_CHAR = /[^A-Za-z0-9_]/g;

/**
 * Rewrites the BTF kinds a kernel lacks into ones it accepts, the way
 * libbpf does, keeping every type id (so map and program references stay
 * valid) and the string table (so .BTF.ext offsets stay valid):
 *
 * - no `datasec`: VAR becomes a 1-byte INT, DATASEC a STRUCT of its variables (name with `.` as `_`);
 * - no `declTag`: DECL_TAG becomes a 1-byte INT;
 * - no `func`: FUNC_PROTO becomes an ENUM of its parameters, FUNC a TYPEDEF
 *   (func_info and line_info must then be left out of program loads);
 * - no `funcGlobal`: FUNC linkage becomes static;
 * - no `float`: FLOAT becomes an anonymous empty STRUCT of the same size;
 * - no `typeTag`: TYPE_TAG becomes CONST;
 * - no `enum64`: signed ENUMs lose the signed flag and ENUM64 becomes a
 *   UNION of 1-byte `enum64_placeholder` INT members (a new type at the end).
 *
 * @param btf The BTF to rewrite (split BTF: only its own types).
 * @param features What the kernel supports; see {@link kernelBtfFeatures}.
 * @returns `btf` itself when nothing needed rewriting, else a new BTF.
 * @throws {RangeError} When a rewritten value does not fit (a datasec offset beyond 2^29 bytes).
 * @example A kernel without FLOAT
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf, sanitizeBtf } from "@dp/core/internal";
 *
 * const btf = buildBtf([{ kind: "float", id: 1, name: "double", size: 8 }]);
 * const all = { func: true, funcGlobal: true, datasec: true, float: true, declTag: true, typeTag: true, enum64: true };
 * assert.equal(sanitizeBtf(btf, all), btf);
 * const old = sanitizeBtf(btf, { ...all, float: false });
 * assert.deepEqual(old.typeById(1), { kind: "struct", id: 1, name: "", size: 8, kindFlag: false, members: [] });
 * ```
 */
export function sanitizeBtf(btf: Btf, features: BtfFeatures): Btf {
  for (const f of ALL_FEATURES) {
    if (typeof features[f] !== "boolean") throw new TypeError(`Invalid BTF features: ${f} must be a boolean`);
  }
  const types: BtfType[] = [...btf.types];
  let changed = false;
  let placeholder = 0;
  for (let i = 0; i < types.length; i++) {
    const t = types[i] as BtfType;
    const r = rewrite(btf, t, features, () => {
      if (placeholder === 0) {
        placeholder = btf.firstTypeId + types.length;
        types.push({
          kind: "int",
          id: placeholder,
          name: "enum64_placeholder",
          size: 1,
          signed: false,
          char: false,
          bool: false,
          bitOffset: 0,
          bits: 8,
        });
      }
      return placeholder;
    });
    if (r !== t) {
      types[i] = r;
      changed = true;
    }
  }
  return changed ? replaceBtfTypes(btf, types) : btf;
}

function byteInt(t: BtfType): BtfType {
  // One byte is the safe size: four would fail validation when the
  // original variable is smaller.
  return {
    kind: "int",
    id: t.id,
    name: t.name,
    size: 1,
    signed: false,
    char: false,
    bool: false,
    bitOffset: 0,
    bits: 8,
  };
}

function rewrite(btf: Btf, t: BtfType, f: BtfFeatures, enum64Placeholder: () => number): BtfType {
  switch (t.kind) {
    case "var":
      return f.datasec ? t : byteInt(t);
    case "declTag":
      return f.declTag ? t : byteInt(t);
    case "datasec":
      return f.datasec ? t : datasecAsStruct(btf, t);
    case "funcProto": {
      if (f.func) return t;
      const values: BtfEnumValue[] = t.params.map((p, i) => ({
        name: p.name === "" ? `arg${i}` : p.name,
        value: p.typeId,
      }));
      return { kind: "enum", id: t.id, name: t.name, size: 4, signed: false, values };
    }
    case "func":
      if (!f.func) return { kind: "typedef", id: t.id, name: t.name, typeId: t.typeId };
      if (!f.funcGlobal && t.linkage !== "static") return { ...t, linkage: "static" };
      return t;
    case "float":
      return f.float ? t : { kind: "struct", id: t.id, name: "", size: t.size, kindFlag: false, members: [] };
    case "typeTag":
      return f.typeTag ? t : { kind: "const", id: t.id, name: "", typeId: t.typeId };
    case "enum":
      // Same bits, read as unsigned.
      return f.enum64 || !t.signed
        ? t
        : { ...t, signed: false, values: t.values.map((v) => ({ name: v.name, value: v.value >>> 0 })) };
    case "enum64": {
      if (f.enum64) return t;
      const typeId = enum64Placeholder();
      const members: BtfMember[] = t.values.map((v) => ({ name: v.name, typeId, bitOffset: 0, bitSize: 0 }));
      return { kind: "union", id: t.id, name: t.name, size: t.size, kindFlag: false, members };
    }
    default:
      return t;
  }
}

function datasecAsStruct(btf: Btf, t: BtfDatasec): BtfType {
  const members: BtfMember[] = t.vars.map((v) => {
    if (v.offset > 0x1fff_ffff)
      throw new RangeError(`Cannot rewrite BTF datasec ${JSON.stringify(t.name)}: offset ${v.offset} is too large`);
    return { name: btf.typeById(v.typeId)?.name ?? "", typeId: v.typeId, bitOffset: v.offset * 8, bitSize: 0 };
  });
  return {
    kind: "struct",
    id: t.id,
    name: t.name.replace(IDENTIFIER_CHAR, "_"),
    size: t.size,
    kindFlag: false,
    members,
  };
}

/**
 * Completes the DATASECs of an object's BTF the way libbpf does before
 * loading: clang leaves a section's size at 0 (the kernel rejects that) and
 * the linker decides variable offsets. Sections with a layout get its size
 * (when theirs is 0) and the given variable offsets, and their variables
 * are sorted by offset; other sections stay as they are.
 *
 * @param btf The object's BTF.
 * @param layouts ELF section sizes and symbol offsets, by section name.
 * @returns `btf` itself when nothing changed, else a new BTF with the same ids.
 * @throws {RangeError} When a size or offset is not a u32.
 * @example Sizing `.maps`
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf, fixupDatasecs } from "@dp/core/internal";
 *
 * const btf = buildBtf([
 *   { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
 *   { kind: "var", id: 2, name: "counter", typeId: 1, linkage: "global" },
 *   { kind: "datasec", id: 3, name: ".bss", size: 0, vars: [{ typeId: 2, offset: 0, size: 4 }] },
 * ]);
 * const fixed = fixupDatasecs(btf, new Map([[".bss", { size: 8, offsets: new Map([["counter", 4]]) }]]));
 * assert.deepEqual(fixed.typeById(3), { kind: "datasec", id: 3, name: ".bss", size: 8, vars: [{ typeId: 2, offset: 4, size: 4 }] });
 * ```
 */
export function fixupDatasecs(btf: Btf, layouts: ReadonlyMap<string, DatasecLayout>): Btf {
  let changed = false;
  const types = btf.types.map((t): BtfType => {
    if (t.kind !== "datasec") return t;
    const layout = layouts.get(t.name);
    if (layout === undefined) return t;
    const size = t.size === 0 ? checkU32(t.name, "size", layout.size) : t.size;
    const vars = t.vars.map((v) => {
      const name = btf.typeById(v.typeId)?.name;
      const offset = name === undefined ? undefined : layout.offsets?.get(name);
      return offset === undefined ? v : { ...v, offset: checkU32(t.name, `offset of ${JSON.stringify(name)}`, offset) };
    });
    vars.sort((a, b) => a.offset - b.offset);
    const same = size === t.size && vars.every((v, i) => v === t.vars[i]);
    if (same) return t;
    changed = true;
    return { ...t, size, vars };
  });
  return changed ? replaceBtfTypes(btf, types) : btf;
}

function checkU32(section: string, what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new RangeError(`Invalid layout of section ${JSON.stringify(section)}: ${what} ${v} is not a u32`);
  }
  return v;
}

/**
 * A BTF object loaded into the kernel (BPF_BTF_LOAD). Maps
 * (`MapSpec.btf`) and programs (`ProgramSpec.btf`) refer to its types.
 *
 * `close()` releases this process's reference; the kernel frees the BTF
 * when no map or program that uses it is left.
 *
 * @example Loading one type
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { buildBtf, loadBtf } from "@dp/core/internal";
 *
 * using handle = loadBtf(buildBtf([
 *   { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
 * ]));
 * assert.ok(handle.info().id > 0);
 * ```
 */
export class BtfHandle {
  #fd: Fd;

  /**
   * Wraps a BTF descriptor.
   *
   * @internal BTF handles are made by {@link loadBtf}.
   * @param fd The descriptor, now owned by the handle.
   */
  constructor(fd: Fd) {
    this.#fd = fd;
  }

  /** The BTF object's descriptor, owned by the handle. */
  get fd(): Fd {
    if (this.#fd.closed) throw new ClosedError("BTF");
    return this.#fd;
  }

  /** Whether {@link BtfHandle.close} was called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /**
   * Asks the kernel about the BTF object (BPF_OBJ_GET_INFO_BY_FD).
   *
   * @returns Its kernel-wide id and size.
   * @throws {ClosedError} After `close()`.
   */
  info(): BtfInfo {
    const info = objInfo(rawFd(this.fd), BPF_BTF_INFO.SIZE, "BTF");
    return {
      id: info.dv.getUint32(BPF_BTF_INFO.id, true),
      size: info.dv.getUint32(BPF_BTF_INFO.btf_size, true),
    };
  }

  /** Closes this process's reference to the BTF object. Calling it again does nothing. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** One BPF_BTF_LOAD attempt; returns the raw result and `btf_log_true_size`. */
function btfLoad(
  data: Native,
  size: number,
  log: Native | undefined,
  logSize: number,
  logLevel: number,
): { ret: number; trueSize: number } {
  const a = new Native(ATTR_BTF_LOAD.SIZE);
  const dv = a.dv;
  a.setPtr(ATTR_BTF_LOAD.btf, data.addr);
  dv.setUint32(ATTR_BTF_LOAD.btf_size, size, true);
  if (log !== undefined) {
    a.setPtr(ATTR_BTF_LOAD.btf_log_buf, log.addr);
    dv.setUint32(ATTR_BTF_LOAD.btf_log_size, logSize, true);
    dv.setUint32(ATTR_BTF_LOAD.btf_log_level, logLevel, true);
  }
  const ret = sys().bpf(BPF_CMD.BTF_LOAD, a.addr, ATTR_BTF_LOAD.SIZE);
  return { ret, trueSize: dv.getUint32(ATTR_BTF_LOAD.btf_log_true_size, true) };
}

/**
 * Loads BTF into the kernel (BPF_BTF_LOAD).
 *
 * A {@link Btf} is first rewritten for the running kernel
 * ({@link sanitizeBtf} with {@link kernelBtfFeatures}, unless
 * `sanitize: false`) and encoded; bytes load as they are. The first attempt
 * runs without a log; when it fails the load is retried with a log,
 * growing the buffer on ENOSPC, so a rejection carries the kernel's reasons.
 *
 * @param btf Parsed BTF, or encoded BTF bytes.
 * @param options Sanitizing and log settings.
 * @returns The loaded BTF, owned by the caller.
 * @throws {TypeError} When `btf` is neither a `Btf` nor bytes.
 * @throws {VerifierError} When the kernel rejects the BTF; `log` is the kernel's BTF log and `message` names the offending type.
 * @throws {SyscallError} When the kernel refuses without a log (EPERM without CAP_BPF).
 * @capability CAP_BPF
 * @example A rejected BTF
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { VerifierError } from "@dp/core";
 * import { buildBtf, loadBtf } from "@dp/core/internal";
 *
 * // A 4-byte INT with 40 value bits.
 * const btf = buildBtf([{ kind: "int", id: 1, name: "wide", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 40 }]);
 * assert.throws(() => loadBtf(btf).close(), (err) => {
 *   assert.ok(err instanceof VerifierError);
 *   assert.match(err.message, /^Cannot load BTF: EINVAL \(invalid argument\): \[1\] INT wide/);
 *   return true;
 * });
 * ```
 */
export function loadBtf(btf: Btf | Uint8Array, options: LoadBtfOptions = {}): BtfHandle {
  let bytes: Uint8Array;
  if (btf instanceof Btf) {
    const prepared = options.sanitize === false ? btf : sanitizeBtf(btf, options.features ?? kernelBtfFeatures());
    bytes = encodeBtf(prepared);
  } else if (btf instanceof Uint8Array) {
    bytes = btf;
  } else {
    throw new TypeError("Invalid BTF: expected a Btf or a Uint8Array");
  }
  const data = new Native(bytes.length);
  data.u8.set(bytes);
  const { ret } = btfLoad(data, bytes.length, undefined, 0, 0);
  if (ret >= 0) return new BtfHandle(new Fd(ret, "BTF"));

  const fd = retryWithLog("Cannot load BTF", BPF_CMD.BTF_LOAD, -ret, options, (log, size, level) =>
    btfLoad(data, bytes.length, log, size, level),
  );
  return new BtfHandle(new Fd(fd, "BTF"));
}

const INT: BtfType = {
  kind: "int",
  id: 1,
  name: "int",
  size: 4,
  signed: true,
  char: false,
  bool: false,
  bitOffset: 0,
  bits: 32,
};

function probeTypes(feature: BtfFeature): BtfType[] {
  switch (feature) {
    case "func":
    case "funcGlobal":
      return [
        INT,
        { kind: "funcProto", id: 2, name: "", returnTypeId: 1, params: [{ name: "a", typeId: 1 }] },
        { kind: "func", id: 3, name: "f", typeId: 2, linkage: feature === "func" ? "static" : "global" },
      ];
    case "datasec":
      return [
        INT,
        { kind: "var", id: 2, name: "v", typeId: 1, linkage: "static" },
        { kind: "datasec", id: 3, name: ".data", size: 4, vars: [{ typeId: 2, offset: 0, size: 4 }] },
      ];
    case "float":
      return [{ kind: "float", id: 1, name: "float", size: 4 }];
    case "declTag":
      return [
        INT,
        { kind: "var", id: 2, name: "v", typeId: 1, linkage: "global" },
        { kind: "declTag", id: 3, name: "tag", typeId: 2, componentIndex: -1, attribute: false },
      ];
    case "typeTag":
      return [
        INT,
        { kind: "typeTag", id: 2, name: "tag", typeId: 1, attribute: false },
        { kind: "ptr", id: 3, name: "", typeId: 2 },
      ];
    case "enum64":
      return [{ kind: "enum64", id: 1, name: "e", size: 8, signed: false, values: [{ name: "A", value: 1n << 40n }] }];
  }
}

const featureCache = new Map<BtfFeature, boolean>();

/**
 * Tells whether the kernel accepts a BTF kind or flag, by loading a tiny
 * BTF blob that uses it (as libbpf does).
 *
 * @param feature The feature.
 * @returns `true` or `false` when the answer is conclusive (cached).
 * @throws {TypeError} When `feature` is unknown.
 * @throws {Error} "Cannot detect support for …" when the probe is inconclusive (EPERM).
 * @capability CAP_BPF
 * @example Probing for ENUM64
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasBtfFeature } from "@dp/core/internal";
 *
 * assert.equal(typeof hasBtfFeature("enum64"), "boolean");
 * ```
 */
export function hasBtfFeature(feature: BtfFeature): boolean {
  if (!ALL_FEATURES.includes(feature)) throw new TypeError(`Invalid BTF feature ${JSON.stringify(feature)}`);
  const hit = featureCache.get(feature);
  if (hit !== undefined) return hit;
  let answer: boolean;
  try {
    const bytes = encodeBtf(buildBtf(probeTypes(feature)));
    const data = new Native(bytes.length);
    data.u8.set(bytes);
    const { ret } = btfLoad(data, bytes.length, undefined, 0, 0);
    if (ret >= 0) {
      new Fd(ret, "probe BTF").close();
      answer = true;
    } else if (-ret === E.EINVAL || -ret === E.E2BIG) {
      answer = false;
    } else {
      throw bpfError(`Cannot load ${feature} probe BTF`, BPF_CMD.BTF_LOAD, -ret);
    }
  } catch (err) {
    throw probeError(`Cannot detect support for BTF ${feature} (Linux ${MIN_KERNEL[feature]})`, err);
  }
  featureCache.set(feature, answer);
  return answer;
}

/**
 * Probes every {@link BtfFeatures} field on the running kernel (each answer is cached).
 *
 * @returns What the kernel accepts.
 * @throws {Error} "Cannot detect support for …" when a probe is inconclusive (EPERM).
 * @capability CAP_BPF
 * @example Everything on a recent kernel
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { compareKernelVersions, kernelVersion, parseKernelVersion } from "@dp/core";
 * import { kernelBtfFeatures } from "@dp/core/internal";
 *
 * if (compareKernelVersions(kernelVersion(), parseKernelVersion("6.0")) >= 0) {
 *   assert.ok(Object.values(kernelBtfFeatures()).every(Boolean));
 * }
 * ```
 */
export function kernelBtfFeatures(): BtfFeatures {
  return {
    func: hasBtfFeature("func"),
    funcGlobal: hasBtfFeature("funcGlobal"),
    datasec: hasBtfFeature("datasec"),
    float: hasBtfFeature("float"),
    declTag: hasBtfFeature("declTag"),
    typeTag: hasBtfFeature("typeTag"),
    enum64: hasBtfFeature("enum64"),
  };
}

const VMLINUX = "/sys/kernel/btf/vmlinux";
let vmlinux: Btf | undefined;

/**
 * The running kernel's own BTF, read from `/sys/kernel/btf/vmlinux` on
 * first use and cached for the process (the target of CO-RE relocations,
 * the base of kernel module BTF). Types are decoded on demand, as in
 * cilium/ebpf: the first call indexes where each type record starts, the
 * first name lookup indexes names, and only the types looked up are
 * decoded, so a fresh process pays milliseconds, not the time to decode
 * every kernel type. (Reading {@link Btf.types} decodes them all.)
 *
 * @returns The kernel's BTF.
 * @throws {NotSupportedError} When the kernel has no BTF (`CONFIG_DEBUG_INFO_BTF` is off).
 * @throws {BtfSyntaxError} When the file cannot be parsed.
 * @example Finding a kernel struct
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotSupported } from "@dp/core";
 * import { kernelBtf } from "@dp/core/internal";
 *
 * try {
 *   const skb = kernelBtf().typesByName("sk_buff", "struct")[0];
 *   assert.equal(skb?.kind, "struct");
 * } catch (err) {
 *   if (!isNotSupported(err)) throw err;
 * }
 * ```
 */
export function kernelBtf(): Btf {
  if (vmlinux === undefined) {
    const bytes = readBytes(VMLINUX);
    if (bytes === undefined) throw new NotSupportedError(`kernel BTF (${VMLINUX})`);
    vmlinux = parseLazyBtf(bytes);
  }
  return vmlinux;
}

const moduleBtfs = new Map<string, Btf>();
const MODULE_NAME_LEN = 64;

/** Where {@link findKernelBtfType} found a type. */
export interface KernelBtfType {
  /** The type id (in the module's split BTF when `module` is set). */
  readonly id: number;
  /** The kernel module whose BTF holds the type, or `undefined` for vmlinux. */
  readonly module: string | undefined;
  /** The module's BTF object, for `attach_btf_obj_fd`; the caller closes it. `undefined` for vmlinux. */
  readonly handle: BtfHandle | undefined;
  /** The BTF that holds the type: vmlinux's, or the module's split over it. */
  readonly btf: Btf;
}

/**
 * Finds a named type in the kernel's BTF the way libbpf finds attach
 * targets: in vmlinux first, then in the BTF of each loaded kernel module
 * (the kernel's BTF objects marked as kernel BTF, read from
 * `/sys/kernel/btf/<module>` as split BTF over vmlinux and cached for the
 * process).
 *
 * @param name The type's name, such as `"bpf_iter_tcp"`.
 * @param kind The type's kind, such as `"func"`.
 * @returns Where the type is, or `undefined` when no kernel BTF has it.
 * @throws {NotSupportedError} When the kernel has no BTF.
 * @throws {SyscallError} When the kernel's BTF objects cannot be listed or opened.
 */
export function findKernelBtfType(name: string, kind: BtfKind): KernelBtfType | undefined {
  const vmlinuxBtf = kernelBtf();
  const inVmlinux = vmlinuxBtf.typesByName(name, kind)[0];
  if (inVmlinux !== undefined) return { id: inVmlinux.id, module: undefined, handle: undefined, btf: vmlinuxBtf };
  let id = 0;
  // Bounded: BTF ids only grow, and the kernel ends the list with ENOENT.
  for (;;) {
    const a = attr(ATTR_GET_ID.SIZE);
    a.dv.setUint32(ATTR_GET_ID.start_id, id, true);
    const ret = bpfShared(BPF_CMD.BTF_GET_NEXT_ID, ATTR_GET_ID.SIZE);
    if (ret < 0) {
      if (-ret === E.ENOENT) return undefined;
      throw bpfError("Cannot list the kernel's BTF objects", BPF_CMD.BTF_GET_NEXT_ID, -ret);
    }
    id = a.dv.getUint32(ATTR_GET_ID.next_id, true);
    const b = attr(ATTR_GET_ID.SIZE);
    b.dv.setUint32(ATTR_GET_ID.btf_id, id, true);
    const raw = bpfShared(BPF_CMD.BTF_GET_FD_BY_ID, ATTR_GET_ID.SIZE);
    if (raw < 0) {
      if (-raw === E.ENOENT) continue; // Unloaded since listed.
      throw bpfError(`Cannot open BTF object ${id}`, BPF_CMD.BTF_GET_FD_BY_ID, -raw);
    }
    const handle = new BtfHandle(new Fd(raw, `BTF ${id}`));
    try {
      const nameBuf = new Native(MODULE_NAME_LEN);
      const info = objInfo(raw, BPF_BTF_INFO.SIZE, `BTF ${id}`, (i) => {
        i.setPtr(BPF_BTF_INFO.name, nameBuf.addr);
        i.dv.setUint32(BPF_BTF_INFO.name_len, MODULE_NAME_LEN, true);
      });
      const module = cName(nameBuf.u8);
      if (info.dv.getUint32(BPF_BTF_INFO.kernel_btf, true) !== 0 && module !== "vmlinux" && module !== "") {
        const btf = moduleBtf(module);
        const t = btf?.typesByName(name, kind).find((x) => x.id >= btf.firstTypeId);
        if (t !== undefined && btf !== undefined) return { id: t.id, module, handle, btf };
      }
    } catch (err) {
      handle.close();
      throw err;
    }
    handle.close();
  }
}

/** A module's split BTF over vmlinux, decoded on demand and cached; `undefined` when its file is gone. */
function moduleBtf(module: string): Btf | undefined {
  let btf = moduleBtfs.get(module);
  if (btf === undefined) {
    const bytes = readBytes(`/sys/kernel/btf/${module}`);
    if (bytes === undefined) return undefined;
    btf = parseLazyBtf(bytes, { base: kernelBtf() });
    moduleBtfs.set(module, btf);
  }
  return btf;
}
