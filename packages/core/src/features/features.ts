import { attr, bpfError, bpfShared } from "../bpf/_bpf.ts";
import { E } from "../_errno.ts";
import { ATTR_LINK_CREATE, ATTR_MAP_CREATE, BPF_CMD, BPF_FUNC, BPF_LINK_TYPE, BPF_MAP_TYPE } from "../_gen/uapi.ts";
import { SyscallError, VerifierError } from "../errors.ts";
import { Fd, rawFd } from "../bpf/fd.ts";
import { call, exit, movImm, program } from "../internal/asm.ts";
import type { MapType } from "../bpf/map_spec.ts";
import { type BpfProgram, loadProgram, type ProgramType } from "../bpf/program.ts";
import { kernelRelease } from "../_sys/fs.ts";
import { kernelBtf } from "../btf/btf_load.ts";
import { probeError } from "./_probe_error.ts";

/** A kernel version. */
export interface KernelVersion {
  /** Major number, such as 6. */
  readonly major: number;
  /** Minor number, such as 18. */
  readonly minor: number;
  /** Patch level, such as 44. */
  readonly patch: number;
}

/**
 * Parses a version such as `"6.6"` or a release such as `"6.18.44-generic"`.
 *
 * @param text The version text.
 * @returns Its major, minor and patch numbers.
 * @throws {SyntaxError} When `text` does not start with `MAJOR.MINOR`.
 * @example Parsing a release string
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKernelVersion } from "@dp/core";
 *
 * assert.deepEqual(parseKernelVersion("6.18.44-fc"), { major: 6, minor: 18, patch: 44 });
 * ```
 */
export function parseKernelVersion(text: string): KernelVersion {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) throw new SyntaxError(`Invalid kernel version ${JSON.stringify(text)}: expected MAJOR.MINOR[.PATCH]`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/**
 * Compares two kernel versions.
 *
 * @param a A version.
 * @param b Another version.
 * @returns A negative number when `a` is older, 0 when equal, positive when newer.
 */
export function compareKernelVersions(a: KernelVersion, b: KernelVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/**
 * The running kernel's version, from `uname -r`.
 *
 * @returns The version.
 * @example Checking for a minimum kernel
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareKernelVersions, kernelVersion, parseKernelVersion } from "@dp/core";
 *
 * assert.ok(compareKernelVersions(kernelVersion(), parseKernelVersion("3.0")) > 0);
 * ```
 */
export function kernelVersion(): KernelVersion {
  return parseKernelVersion(kernelRelease());
}

const cache = new Map<string, boolean>();

function probe(key: string, feature: string, run: () => boolean): boolean {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let answer: boolean;
  try {
    answer = run();
  } catch (err) {
    throw probeError(`Cannot detect support for ${feature}`, err);
  }
  cache.set(key, answer);
  return answer;
}

const PROBE_MAP: Partial<
  Record<MapType, { key: number; value: number; max: number; flags?: number; inner?: boolean }>
> = {
  queue: { key: 0, value: 4, max: 1 },
  stack: { key: 0, value: 4, max: 1 },
  bloomFilter: { key: 0, value: 4, max: 1 },
  ringbuf: { key: 0, value: 0, max: 4096 },
  userRingbuf: { key: 0, value: 0, max: 4096 },
  lpmTrie: { key: 8, value: 4, max: 1, flags: 1 },
  arrayOfMaps: { key: 4, value: 4, max: 1, inner: true },
  hashOfMaps: { key: 4, value: 4, max: 1, inner: true },
  stackTrace: { key: 4, value: 8, max: 1 },
  cgroupStorage: { key: 8, value: 4, max: 0 },
  percpuCgroupStorage: { key: 8, value: 4, max: 0 },
  arena: { key: 0, value: 0, max: 1, flags: 1024 },
};
const NEEDS_BTF: ReadonlySet<MapType> = new Set([
  "skStorage",
  "inodeStorage",
  "taskStorage",
  "cgrpStorage",
  "structOps",
]);

function createRaw(type: number, key: number, value: number, max: number, flags: number, innerFd: number): number {
  const a = attr(ATTR_MAP_CREATE.SIZE);
  a.dv.setUint32(ATTR_MAP_CREATE.map_type, type, true);
  a.dv.setUint32(ATTR_MAP_CREATE.key_size, key, true);
  a.dv.setUint32(ATTR_MAP_CREATE.value_size, value, true);
  a.dv.setUint32(ATTR_MAP_CREATE.max_entries, max, true);
  a.dv.setUint32(ATTR_MAP_CREATE.map_flags, flags, true);
  a.dv.setUint32(ATTR_MAP_CREATE.inner_map_fd, innerFd, true);
  return bpfShared(BPF_CMD.MAP_CREATE, ATTR_MAP_CREATE.SIZE);
}

function unsupported(errno: number): boolean {
  return errno === E.EINVAL || errno === E.E2BIG || errno === E.ENOTSUPP || errno === E.EOPNOTSUPP;
}

/**
 * Tells whether the kernel can create maps of a type, by creating a tiny one.
 *
 * @param type The map type.
 * @returns `true` or `false` when the answer is conclusive (cached).
 * @throws {TypeError} When `type` is unknown.
 * @throws {Error} "Cannot detect support for …" when the probe is inconclusive (EPERM, or a type that needs BTF to probe).
 * @example Probing for LRU hash maps
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasMapType } from "@dp/core";
 *
 * assert.equal(hasMapType("lruHash"), true);
 * ```
 */
export function hasMapType(type: MapType): boolean {
  if (!Object.hasOwn(BPF_MAP_TYPE, type)) throw new TypeError(`Invalid map type ${JSON.stringify(type)}`);
  return probe(`map:${type}`, `${type} maps`, () => {
    if (NEEDS_BTF.has(type)) throw new Error(`probing ${type} maps needs BTF for the value type`);
    const p = PROBE_MAP[type] ?? { key: 4, value: 4, max: 1 };
    let inner: Fd | undefined;
    try {
      if (p.inner) {
        const ret = createRaw(BPF_MAP_TYPE.array, 4, 4, 1, 0, 0);
        if (ret < 0) throw bpfError("Cannot create inner map", BPF_CMD.MAP_CREATE, -ret);
        inner = new Fd(ret, "probe inner map");
      }
      const ret = createRaw(BPF_MAP_TYPE[type], p.key, p.value, p.max, p.flags ?? 0, inner ? rawFd(inner) : 0);
      if (ret >= 0) {
        new Fd(ret, "probe map").close();
        return true;
      }
      if (unsupported(-ret)) return false;
      throw bpfError(`Cannot create ${type} map`, BPF_CMD.MAP_CREATE, -ret);
    } finally {
      inner?.close();
    }
  });
}

const NEEDS_ATTACH_BTF: ReadonlySet<ProgramType> = new Set(["tracing", "ext", "lsm", "structOps"]);
const PROBE_ATTACH: Partial<Record<ProgramType, "cgroupInet4Connect" | "skLookup" | "netfilter" | "cgroupGetsockopt">> =
  {
    cgroupSockAddr: "cgroupInet4Connect",
    skLookup: "skLookup",
    netfilter: "netfilter",
    cgroupSockopt: "cgroupGetsockopt",
  };

function tryLoad(type: ProgramType, instructions: Uint8Array): BpfProgram | SyscallError {
  const expected = PROBE_ATTACH[type];
  try {
    return loadProgram({
      type,
      license: "GPL",
      instructions,
      ...(expected === undefined ? {} : { expectedAttachType: expected }),
    });
  } catch (err) {
    if (err instanceof SyscallError) return err;
    throw err;
  }
}

/**
 * Tells whether the kernel can load programs of a type, by loading `r0 = 0; exit`.
 *
 * @param type The program type.
 * @returns `true` or `false` when the answer is conclusive (cached).
 * @throws {TypeError} When `type` is unknown.
 * @throws {Error} "Cannot detect support for …" when the probe is inconclusive.
 * @example Probing for XDP
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasProgramType } from "@dp/core";
 *
 * assert.equal(hasProgramType("xdp"), true);
 * ```
 */
export function hasProgramType(type: ProgramType): boolean {
  return probe(`prog:${type}`, `${type} programs`, () => {
    if (NEEDS_ATTACH_BTF.has(type)) throw new Error(`probing ${type} programs needs an attach target`);
    const result = tryLoad(type, program(movImm(0, 0), exit()));
    if (!(result instanceof SyscallError)) {
      result.close();
      return true;
    }
    if (unsupported(result.errno)) return false;
    throw result;
  });
}

/**
 * A BPF helper function, named as in `enum bpf_func_id` in camelCase
 * (`BPF_FUNC_redirect_peer` is `"redirectPeer"`).
 *
 * @useDeclaredType
 */
export type HelperName = keyof typeof BPF_FUNC;

/**
 * Tells whether programs of a type may call a helper, by loading a program
 * that calls it and reading the verifier's answer.
 *
 * @param type The program type.
 * @param helper The helper.
 * @returns `true` or `false` when the answer is conclusive (cached); `false` when the program type itself is missing.
 * @throws {TypeError} When `helper` is unknown.
 * @throws {Error} "Cannot detect support for …" when the probe is inconclusive.
 * @example Probing for bpf_redirect_peer in tc programs
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasHelper } from "@dp/core";
 *
 * assert.equal(hasHelper("schedCls", "redirectPeer"), true);
 * assert.equal(hasHelper("socketFilter", "redirectPeer"), false);
 * ```
 */
export function hasHelper(type: ProgramType, helper: HelperName): boolean {
  if (!Object.hasOwn(BPF_FUNC, helper)) throw new TypeError(`Invalid helper ${JSON.stringify(helper)}`);
  if (!hasProgramType(type)) return false;
  return probe(`helper:${type}:${helper}`, `helper ${helper} in ${type} programs`, () => {
    const result = tryLoad(type, program(call(BPF_FUNC[helper]), movImm(0, 0), exit()));
    if (!(result instanceof SyscallError)) {
      result.close();
      return true;
    }
    if (result instanceof VerifierError) {
      const text = result.log.join("\n");
      if (/invalid func|unknown func|program of this type cannot use helper/.test(text)) return false;
      // Any other complaint (argument types, ...) means the helper exists.
      return true;
    }
    throw result;
  });
}

/** libbpf's `arch_specific_syscall_pfx` values: syscall wrappers are named `__<prefix>_sys_<name>`. */
const SYSCALL_PREFIXES = ["x64", "arm64", "ia32", "s390x", "s390", "arm", "mips", "riscv", "powerpc", "powerpc64"];

/**
 * Tells whether system calls go through architecture wrappers taking a
 * `struct pt_regs` (`__x64_sys_bpf` and friends, Linux 4.17 on x86-64),
 * which libbpf's `BPF_KSYSCALL` must know (the `LINUX_HAS_SYSCALL_WRAPPER`
 * extern). libbpf probes for a kprobe on `__<arch>_sys_bpf`; this looks for
 * that function in the kernel's BTF, which lists every kernel function.
 *
 * @returns `true` when a wrapper exists, `false` when not.
 * @throws {NotSupportedError} When the kernel has no BTF (`CONFIG_DEBUG_INFO_BTF`).
 */
export function hasSyscallWrapper(): boolean {
  const btf = kernelBtf();
  return SYSCALL_PREFIXES.some((prefix) => btf.typesByName(`__${prefix}_sys_bpf`, "func").length > 0);
}

/**
 * Tells whether the kernel has tcx (`BPF_LINK_TYPE_TCX`, Linux 6.6): it
 * tries to attach a tc program through a link to a device that does not
 * exist and reads the error (ENODEV: supported; EINVAL: not).
 *
 * @returns `true` or `false` when the answer is conclusive (cached).
 * @throws {Error} "Cannot detect support for tcx" when the probe is inconclusive.
 * @example Choosing between tcx and clsact
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasTcx } from "@dp/core";
 *
 * assert.equal(typeof hasTcx(), "boolean");
 * ```
 */
export function hasTcx(): boolean {
  return probe("link:tcx", "tcx", () => {
    const prog = tryLoad("schedCls", program(movImm(0, 0), exit()));
    if (prog instanceof SyscallError) throw prog;
    try {
      const a = attr(ATTR_LINK_CREATE.SIZE);
      a.dv.setUint32(ATTR_LINK_CREATE.prog_fd, rawFd(prog.fd), true);
      a.dv.setUint32(ATTR_LINK_CREATE.target_ifindex, 0x7fff_ffff, true);
      a.dv.setUint32(ATTR_LINK_CREATE.attach_type, 46, true);
      const ret = bpfShared(BPF_CMD.LINK_CREATE, ATTR_LINK_CREATE.SIZE);
      if (ret >= 0) {
        new Fd(ret, "probe link").close();
        return true;
      }
      if (-ret === E.ENODEV) return true;
      if (-ret === E.EINVAL) return false;
      throw bpfError("Cannot create tcx link", BPF_CMD.LINK_CREATE, -ret);
    } finally {
      prog.close();
    }
  });
}

/**
 * A BPF link type, named as in `enum bpf_link_type` in camelCase
 * (`BPF_LINK_TYPE_XDP` is `"xdp"`).
 *
 * @useDeclaredType
 */
export type LinkType = keyof typeof BPF_LINK_TYPE;

/**
 * Tells whether the kernel has a link type, by looking its
 * `BPF_LINK_TYPE_*` name up in the kernel's own BTF
 * (`/sys/kernel/btf/vmlinux`): a kernel has exactly the link types its
 * `enum bpf_link_type` lists.
 *
 * @param type The link type.
 * @returns `true` or `false` (cached).
 * @throws {TypeError} When `type` is unknown.
 * @throws {Error} "Cannot detect support for …" when the kernel has no BTF.
 * @example Probing for XDP links
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { hasLinkType } from "@dp/core";
 *
 * assert.equal(hasLinkType("xdp"), true);
 * ```
 */
export function hasLinkType(type: LinkType): boolean {
  if (!Object.hasOwn(BPF_LINK_TYPE, type)) throw new TypeError(`Invalid link type ${JSON.stringify(type)}`);
  return probe(`linktype:${type}`, `${type} links`, () => {
    const name = `BPF_LINK_TYPE_${type.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const linkTypes = kernelBtf().typesByName("bpf_link_type", "enum")[0];
    if (linkTypes === undefined || linkTypes.kind !== "enum")
      throw new Error("the kernel's BTF has no enum bpf_link_type");
    return linkTypes.values.some((v) => v.name === name);
  });
}
