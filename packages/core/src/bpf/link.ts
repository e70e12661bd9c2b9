// bpf_link and attach primitives: BPF_LINK_CREATE / _UPDATE / _DETACH,
// BPF_PROG_ATTACH / _DETACH / _QUERY, and opening objects by id. The hook
// helpers of @dp/hooks build on these; nothing here knows about netlink.
import { attr, bpfError, bpfHint, bpfShared, Native, objInfo } from "./_bpf.ts";
import { E } from "../_errno.ts";
import {
  ATTR_GET_ID,
  ATTR_ITER_CREATE,
  ATTR_LINK_CREATE,
  ATTR_LINK_DETACH,
  ATTR_LINK_UPDATE,
  ATTR_PROG_ATTACH,
  ATTR_QUERY,
  BPF_ATTACH_TYPE,
  BPF_CMD,
  BPF_LINK_INFO,
  BPF_LINK_TYPE,
} from "../_gen/uapi.ts";
import { ClosedError, SyscallError } from "../errors.ts";
import { Fd, rawFd } from "./fd.ts";
import type { LinkType } from "../features/features.ts";
import { BpfMap, type FdOwner, mapFromFd } from "./map.ts";
import { openPinnedFd, pinFd } from "./pin.ts";
import { type AttachType, BpfProgram, programFromFd, type ProgramType } from "./program.ts";
import { sys } from "../_sys/sys.ts";

// BPF_F_* attach flags the options below set (uapi/linux/bpf.h).
const F_REPLACE = 1 << 2;
const F_BEFORE = 1 << 3;
const F_AFTER = 1 << 4;
const F_ID = 1 << 5;
const F_LINK = 1 << 13;
const F_QUERY_EFFECTIVE = 1;

const ERANGE = 34;
const ENOLINK = 67;
const ESTALE = 116;

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;

/**
 * `BPF_F_*` flags for {@link attachProgram} on cgroups (legacy, non-link
 * attachments). Ordering (`BPF_F_BEFORE`, `BPF_F_AFTER`, `BPF_F_ID`,
 * `BPF_F_LINK`) and `BPF_F_REPLACE` are set by {@link LinkAnchor} and
 * {@link AttachProgramOptions.replace} instead.
 *
 * @example Allowing several programs on one cgroup hook
 * ```ts no-run
 * import { ATTACH_FLAGS, type AttachProgramOptions } from "@dp/core";
 *
 * const options: AttachProgramOptions = { flags: ATTACH_FLAGS.allowMulti };
 * ```
 */
export const ATTACH_FLAGS: {
  /** `BPF_F_ALLOW_OVERRIDE`: a program attached to a descendant cgroup overrides this one. */
  readonly allowOverride: 1;
  /** `BPF_F_ALLOW_MULTI`: this and the descendants' programs all run, in order. */
  readonly allowMulti: 2;
} = { allowOverride: 1, allowMulti: 2 };

/**
 * `XDP_FLAGS_*` for XDP links ({@link CreateLinkOptions.flags}) and for
 * netlink's `IFLA_XDP_FLAGS`. Without a mode flag the kernel picks the
 * driver mode when the driver has one, else the generic (skb) mode.
 *
 * @example An XDP link in generic mode
 * ```ts no-run
 * import { type CreateLinkOptions, XDP_FLAGS } from "@dp/core";
 *
 * const options: CreateLinkOptions = { flags: XDP_FLAGS.skbMode };
 * ```
 */
export const XDP_FLAGS: {
  /** `XDP_FLAGS_UPDATE_IF_NOEXIST` (netlink only): fail when a program is attached already. */
  readonly updateIfNoExist: 1;
  /** `XDP_FLAGS_SKB_MODE`: generic XDP, after the skb is built; works on every device. */
  readonly skbMode: 2;
  /** `XDP_FLAGS_DRV_MODE`: native XDP in the driver. */
  readonly drvMode: 4;
  /** `XDP_FLAGS_HW_MODE`: offloaded to the NIC. */
  readonly hwMode: 8;
  /** `XDP_FLAGS_REPLACE` (netlink only): replace the program given by `IFLA_XDP_EXPECTED_FD`. */
  readonly replace: 16;
} = { updateIfNoExist: 1, skbMode: 2, drvMode: 4, hwMode: 8, replace: 16 };

/**
 * Where an attachment goes:
 *
 * - `{ ifindex }`: a network interface (tcx, XDP, netkit), resolved in the
 *   calling thread's network namespace: wrap the call in `withNetns()` for
 *   an interface in another one;
 * - `{ fd }`: an open object: a map (sockmap, sockhash), a cgroup directory
 *   or a network namespace;
 * - `{ path }`: a file opened read-only for the call: a cgroup v2 directory
 *   or a network namespace file such as `/run/netns/blue`.
 */
export type AttachTarget =
  | {
      /** The interface index. */
      readonly ifindex: number;
    }
  | {
      /** The target's descriptor, or an object that owns one (a map). */
      readonly fd: FdOwner;
    }
  | {
      /** An absolute path to a cgroup v2 directory or a network namespace file. */
      readonly path: string;
    };

/**
 * A program or link already attached to a hook, by handle or by kernel id,
 * that a new attachment is ordered against.
 */
export type LinkAnchorRef =
  | BpfProgram
  | BpfLink
  | {
      /** The kernel id of an attached program. */
      readonly programId: number;
    }
  | {
      /** The kernel id of a link. */
      readonly linkId: number;
    };

/**
 * Where a new program goes among those of a multi-program hook (tcx,
 * netkit, cgroups on Linux 6.16+): `"first"`, `"last"`, or right before or
 * after another attachment. Without an anchor a program is appended.
 *
 * @example Running a program before another one on tc ingress
 * ```ts no-run
 * import type { BpfProgram, CreateLinkOptions } from "@dp/core";
 *
 * declare const firewall: BpfProgram;
 * const options: CreateLinkOptions = { anchor: { before: firewall } };
 * ```
 */
export type LinkAnchor =
  | "first"
  | "last"
  | {
      /** Run right before this attachment. */
      readonly before: LinkAnchorRef;
    }
  | {
      /** Run right after this attachment. */
      readonly after: LinkAnchorRef;
    };

/** Options for {@link createLink}. */
export interface CreateLinkOptions {
  /**
   * Extra flags: {@link XDP_FLAGS} (a mode) for XDP links; for other link
   * types anything beyond what `anchor` sets.
   *
   * @default 0
   */
  readonly flags?: number;
  /**
   * Position among the programs of a multi-program hook (tcx, netkit, cgroup).
   *
   * @default appended ("last")
   */
  readonly anchor?: LinkAnchor;
  /**
   * Fail with ESTALE unless the hook's revision (from
   * {@link queryPrograms}) is still this one.
   *
   * @default no check
   */
  readonly expectedRevision?: bigint;
}

/** Options for {@link BpfLink.update}. */
export interface LinkUpdateOptions {
  /**
   * Replace only if the link still runs this program (`BPF_F_REPLACE`);
   * fails with EPERM otherwise.
   *
   * @default no check
   */
  readonly expectedProgram?: BpfProgram;
}

/** What the kernel reports about a link (`struct bpf_link_info`). */
export interface LinkInfo {
  /** The link type, or its number when this library does not know it. */
  readonly type: LinkType | number;
  /** The kernel-wide link id. */
  readonly id: number;
  /** The id of the program the link runs; 0 once a detached link dropped it. */
  readonly programId: number;
  /** The attach type, for link types that record one (tcx, netkit, cgroup, netns, sockmap, tracing). */
  readonly attachType?: AttachType | number;
  /** The interface (xdp, tcx, netkit links); 0 once detached. */
  readonly ifindex?: number;
  /** The cgroup's id, its inode number in cgroupfs (cgroup links); 0 once detached. */
  readonly cgroupId?: bigint;
  /** The map (sockmap and struct_ops links). */
  readonly mapId?: number;
  /** The network namespace's inode number (netns links). */
  readonly netnsInode?: number;
}

/** Options for {@link queryPrograms}. */
export interface QueryProgramsOptions {
  /**
   * Cgroups only: list the programs that run for this cgroup, including
   * those inherited from its ancestors (`BPF_F_QUERY_EFFECTIVE`).
   *
   * @default false
   */
  readonly effective?: boolean;
}

/** One program attached to a hook, as {@link queryPrograms} lists it. */
export interface AttachedProgram {
  /** The program's kernel id. */
  readonly programId: number;
  /** The id of the link that holds it; absent for `BPF_PROG_ATTACH` attachments and hooks that do not report links. */
  readonly linkId?: number;
  /** Its `BPF_F_*` attach flags (cgroups), 0 elsewhere. */
  readonly attachFlags: number;
}

/** The outcome of {@link queryPrograms}. */
export interface ProgramQuery {
  /** The attached programs in the order they run. */
  readonly programs: readonly AttachedProgram[];
  /** The hook's attach flags (legacy cgroup attachments: {@link ATTACH_FLAGS}). */
  readonly attachFlags: number;
  /** The hook's revision (tcx, netkit, cgroups on Linux 6.16+), changed by every attach and detach; 0n where there is none. */
  readonly revision: bigint;
}

/** Options for {@link attachProgram}. */
export interface AttachProgramOptions {
  /**
   * `BPF_F_*` flags such as {@link ATTACH_FLAGS}.allowMulti, besides those
   * that `anchor` and `replace` set.
   *
   * @default 0
   */
  readonly flags?: number;
  /**
   * Atomically replace this attached program (`BPF_F_REPLACE`; legacy
   * cgroup attachments need `ATTACH_FLAGS.allowMulti`).
   *
   * @default undefined
   */
  readonly replace?: BpfProgram;
  /**
   * Position among the programs of a multi-program hook.
   *
   * @default appended ("last")
   */
  readonly anchor?: LinkAnchor;
  /**
   * Fail with ESTALE unless the hook's revision is still this one.
   *
   * @default no check
   */
  readonly expectedRevision?: bigint;
}

/** Options for {@link detachProgram}. */
export interface DetachProgramOptions {
  /**
   * Without a program: on a multi-program hook, detach the `"first"` or
   * `"last"` program, or the one right before or after an attachment.
   *
   * @default undefined
   */
  readonly anchor?: LinkAnchor;
  /**
   * Fail with ESTALE unless the hook's revision is still this one.
   *
   * @default no check
   */
  readonly expectedRevision?: bigint;
}

const LINK_TYPE_NAMES: ReadonlyMap<number, LinkType> = new Map(
  (Object.entries(BPF_LINK_TYPE) as [LinkType, number][]).map(([k, v]) => [v, k]),
);
const ATTACH_TYPE_NAMES: ReadonlyMap<number, AttachType> = new Map(
  (Object.entries(BPF_ATTACH_TYPE) as [AttachType, number][]).reverse().map(([k, v]) => [v, k]),
);

/**
 * The attach types each networking program type accepts. Types not listed
 * (tracing, LSM, extensions, ...) are left to the kernel to check.
 */
const ATTACH_TYPES_OF: Partial<Record<ProgramType, readonly AttachType[]>> = {
  schedCls: ["tcxIngress", "tcxEgress", "netkitPrimary", "netkitPeer"],
  xdp: ["xdp"],
  cgroupSkb: ["cgroupInetIngress", "cgroupInetEgress"],
  cgroupSock: ["cgroupInetSockCreate", "cgroupInetSockRelease", "cgroupInet4PostBind", "cgroupInet6PostBind"],
  cgroupSockAddr: [
    "cgroupInet4Bind",
    "cgroupInet6Bind",
    "cgroupInet4Connect",
    "cgroupInet6Connect",
    "cgroupUdp4Sendmsg",
    "cgroupUdp6Sendmsg",
    "cgroupUdp4Recvmsg",
    "cgroupUdp6Recvmsg",
    "cgroupInet4Getpeername",
    "cgroupInet6Getpeername",
    "cgroupInet4Getsockname",
    "cgroupInet6Getsockname",
    "cgroupUnixConnect",
    "cgroupUnixSendmsg",
    "cgroupUnixRecvmsg",
    "cgroupUnixGetpeername",
    "cgroupUnixGetsockname",
  ],
  sockOps: ["cgroupSockOps"],
  cgroupDevice: ["cgroupDevice"],
  cgroupSysctl: ["cgroupSysctl"],
  cgroupSockopt: ["cgroupGetsockopt", "cgroupSetsockopt"],
  skMsg: ["skMsgVerdict"],
  skSkb: ["skSkbStreamParser", "skSkbStreamVerdict", "skSkbVerdict"],
  flowDissector: ["flowDissector"],
  skLookup: ["skLookup"],
  lircMode2: ["lircMode2"],
};

/** Program types whose attach type must equal the one they were loaded for. */
const EXPECTED_ENFORCED: ReadonlySet<ProgramType> = new Set(["cgroupSock", "cgroupSockAddr", "cgroupSockopt"]);

/** Attach types whose hooks keep an ordered program list (bpf_mprog). */
function isMultiProgram(attachType: AttachType): boolean {
  return attachType.startsWith("tcx") || attachType.startsWith("netkit") || attachType.startsWith("cgroup");
}

function checkAttachType(attachType: AttachType, what: string): void {
  if (typeof attachType !== "string" || !Object.hasOwn(BPF_ATTACH_TYPE, attachType)) {
    throw new TypeError(`${what}: ${JSON.stringify(attachType)} is not a known attach type`);
  }
}

function checkProgram(program: BpfProgram, attachType: AttachType, what: string): void {
  if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: program must be a BpfProgram`);
  const allowed = ATTACH_TYPES_OF[program.type];
  if (allowed !== undefined && !allowed.includes(attachType)) {
    throw new TypeError(
      `${what}: a ${program.type} program cannot attach as "${attachType}" (it attaches as ${allowed.map((t) => `"${t}"`).join(", ")})`,
    );
  }
  const expected = program.expectedAttachType;
  if (EXPECTED_ENFORCED.has(program.type) && expected !== undefined && expected !== attachType) {
    throw new TypeError(`${what}: the program was loaded for "${expected}" and cannot attach as "${attachType}"`);
  }
}

/** Formats a bad option value for an error message. */
function show(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null)
    return String(value);
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function positiveInteger(value: unknown, name: string, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0 || value > 0xffff_ffff) {
    throw new RangeError(`${what}: ${name} must be a positive 32-bit integer, got ${show(value)}`);
  }
  return value;
}

/** The target, resolved to a raw descriptor or ifindex for the duration of one call. */
interface ResolvedTarget {
  readonly value: number;
  readonly isIfindex: boolean;
  readonly label: string;
  readonly opened: Fd | undefined;
}

function describeTarget(target: AttachTarget): string {
  if (typeof target !== "object" || target === null) return String(target);
  if ("ifindex" in target) return `ifindex ${String(target.ifindex)}`;
  if ("path" in target) return `"${target.path}"`;
  if ("fd" in target) {
    const owner = target.fd;
    if (owner instanceof BpfMap) return `map "${owner.name}"`;
    const path = (owner as { path?: unknown }).path;
    return typeof path === "string" ? `"${path}"` : "descriptor";
  }
  return "target";
}

function checkTarget(target: AttachTarget, what: string): void {
  if (typeof target !== "object" || target === null) {
    throw new TypeError(`${what}: target must be { ifindex }, { fd } or { path }`);
  }
  if ("ifindex" in target) {
    positiveInteger(target.ifindex, "target.ifindex", what);
    return;
  }
  if ("path" in target) {
    if (typeof target.path !== "string" || !target.path.startsWith("/")) {
      throw new TypeError(`${what}: target.path must be an absolute path, got ${JSON.stringify(target.path)}`);
    }
    return;
  }
  if ("fd" in target) {
    const owner = target.fd;
    if (owner instanceof Fd) return;
    if (typeof owner === "object" && owner !== null && (owner as { fd?: unknown }).fd instanceof Fd) return;
    throw new TypeError(`${what}: target.fd must be an Fd or an object that owns one`);
  }
  throw new TypeError(`${what}: target must be { ifindex }, { fd } or { path }`);
}

function resolveTarget(target: AttachTarget, what: string): ResolvedTarget {
  const label = describeTarget(target);
  if ("ifindex" in target) return { value: target.ifindex, isIfindex: true, label, opened: undefined };
  if ("fd" in target) {
    const fd = target.fd instanceof Fd ? target.fd : target.fd.fd;
    return { value: rawFd(fd), isIfindex: false, label, opened: undefined };
  }
  const ret = sys().open(target.path, O_RDONLY | O_CLOEXEC, 0);
  if (ret < 0) {
    throw new SyscallError(`${what}: cannot open "${target.path}"`, {
      syscall: "open",
      op: "open",
      errno: -ret,
      hint: -ret === E.ENOENT ? "no such cgroup directory or namespace file" : undefined,
    });
  }
  const opened = new Fd(ret, `"${target.path}"`);
  return { value: ret, isIfindex: false, label, opened };
}

/** The flags and relative descriptor or id an anchor stands for. */
interface EncodedAnchor {
  readonly flags: number;
  readonly relative: number;
}

function checkAnchor(anchor: LinkAnchor | undefined, attachType: AttachType, what: string): void {
  if (anchor === undefined) return;
  if (!isMultiProgram(attachType)) {
    throw new TypeError(`${what}: "${attachType}" hooks hold one program and take no anchor`);
  }
  if (anchor === "first" || anchor === "last") return;
  if (typeof anchor !== "object" || anchor === null) {
    throw new TypeError(`${what}: anchor must be "first", "last", { before } or { after }`);
  }
  const ref = "before" in anchor ? anchor.before : "after" in anchor ? anchor.after : undefined;
  if (ref instanceof BpfProgram || ref instanceof BpfLink) return;
  if (typeof ref === "object" && ref !== null) {
    if ("programId" in ref) {
      positiveInteger(ref.programId, "anchor program id", what);
      return;
    }
    if ("linkId" in ref) {
      positiveInteger(ref.linkId, "anchor link id", what);
      return;
    }
  }
  throw new TypeError(
    `${what}: anchor must be "first", "last", { before } or { after } of a program, a link, { programId } or { linkId }`,
  );
}

function encodeAnchor(anchor: LinkAnchor | undefined): EncodedAnchor {
  if (anchor === undefined) return { flags: 0, relative: 0 };
  if (anchor === "first") return { flags: F_BEFORE, relative: 0 };
  if (anchor === "last") return { flags: F_AFTER, relative: 0 };
  const [side, ref] = "before" in anchor ? [F_BEFORE, anchor.before] : [F_AFTER, anchor.after];
  if (ref instanceof BpfProgram) return { flags: side, relative: rawFd(ref.fd) };
  if (ref instanceof BpfLink) return { flags: side | F_LINK, relative: rawFd(ref.fd) };
  if ("programId" in ref) return { flags: side | F_ID, relative: ref.programId };
  return { flags: side | F_ID | F_LINK, relative: ref.linkId };
}

function checkFlags(flags: unknown, what: string): number {
  if (flags === undefined) return 0;
  if (typeof flags !== "number" || !Number.isInteger(flags) || flags < 0 || flags > 0xffff_ffff) {
    throw new RangeError(`${what}: flags must be a 32-bit unsigned integer, got ${show(flags)}`);
  }
  return flags;
}

function checkRevision(revision: unknown, what: string): bigint {
  if (revision === undefined) return 0n;
  if (typeof revision !== "bigint" || revision <= 0n || revision >= 1n << 64n) {
    throw new RangeError(`${what}: expectedRevision must be a positive u64 bigint, got ${show(revision)}`);
  }
  return revision;
}

interface HintContext {
  readonly attachType?: AttachType;
  readonly flags?: number;
  readonly target?: ResolvedTarget;
  readonly programType?: ProgramType;
}

/** Returns a hint for a failed attach, detach, query or link command. */
function linkHint(cmd: number, errno: number, ctx: HintContext): string | undefined {
  const xdp = ctx.attachType === "xdp";
  switch (errno) {
    case E.ENODEV:
      if (ctx.target?.isIfindex) {
        return `no interface has index ${ctx.target.value} in this thread's network namespace (run the call inside withNetns() for another namespace)`;
      }
      return "the target is gone";
    case E.EEXIST:
      if (cmd === BPF_CMD.OBJ_PIN) return bpfHint(cmd, errno);
      return xdp
        ? "something is attached there: an XDP program holds the interface (detach it, or replace it atomically)"
        : "something is attached there: the program is attached to this hook already";
    case E.EBUSY:
      if (xdp) return "another XDP program holds the interface (attached through netlink or in another mode)";
      return "the hook is held by another attachment that does not allow this one (an exclusive attachment or a link)";
    case E.EINVAL:
      if (cmd === BPF_CMD.LINK_UPDATE) return "the new program's type or attach type does not match the link";
      if (xdp && ((ctx.flags ?? 0) & XDP_FLAGS.hwMode) !== 0) {
        return "hw mode needs a NIC that offloads XDP and a program loaded for that device";
      }
      if (xdp) return "the kernel rejected the XDP flags or mode for this device";
      if (ctx.attachType !== undefined) {
        return `the kernel rejected attach type "${ctx.attachType}"${ctx.programType ? ` for a ${ctx.programType} program` : ""}, the target or the flags`;
      }
      return undefined;
    case E.ENOENT:
      if (cmd === BPF_CMD.PROG_DETACH) return "the program is not attached there";
      if (cmd === BPF_CMD.PROG_GET_FD_BY_ID || cmd === BPF_CMD.MAP_GET_FD_BY_ID || cmd === BPF_CMD.LINK_GET_FD_BY_ID) {
        return "no object has this id (it was released)";
      }
      if (cmd === BPF_CMD.PROG_ATTACH || cmd === BPF_CMD.LINK_CREATE) {
        return "the anchor or replaced program is not attached there";
      }
      return bpfHint(cmd, errno);
    case ESTALE:
      return "the hook's attachments changed since the expected revision was read";
    case ERANGE:
      return "the hook holds the most programs it can";
    case ENOLINK:
      return "the link was detached";
    case E.EPERM:
      if (cmd === BPF_CMD.LINK_UPDATE)
        return "the link runs a different program than expected, or needs CAP_BPF and CAP_NET_ADMIN";
      if ((cmd === BPF_CMD.PROG_ATTACH || cmd === BPF_CMD.LINK_CREATE) && ctx.attachType?.startsWith("cgroup")) {
        return "the hook's attachments use other flags (allowMulti, allowOverride), or an ancestor cgroup's attachment forbids overriding; else run as root";
      }
      return bpfHint(cmd, errno);
    case E.EOPNOTSUPP:
    case E.ENOTSUPP:
      if (xdp) return "the device's driver does not support this XDP mode";
      return "the kernel or the target does not support this attachment";
    case E.EBADF:
      return "a descriptor is closed or not of the kind the command needs";
    default:
      return bpfHint(cmd, errno);
  }
}

function linkError(what: string, cmd: number, errno: number, ctx: HintContext = {}): SyscallError {
  const err = bpfError(what, cmd, errno);
  const hint = linkHint(cmd, errno, ctx);
  if (hint === err.hint) return err;
  return new SyscallError(what, { syscall: "bpf", op: err.op, errno, hint });
}

function decodeLinkInfo(info: Native): LinkInfo {
  const dv = info.dv;
  const rawType = dv.getUint32(BPF_LINK_INFO.type, true);
  const type = LINK_TYPE_NAMES.get(rawType) ?? rawType;
  const base = {
    type,
    id: dv.getUint32(BPF_LINK_INFO.id, true),
    programId: dv.getUint32(BPF_LINK_INFO.prog_id, true),
  };
  const attach = (offset: number): AttachType | number => {
    const n = dv.getUint32(offset, true);
    return ATTACH_TYPE_NAMES.get(n) ?? n;
  };
  switch (type) {
    case "xdp":
      return { ...base, ifindex: dv.getUint32(BPF_LINK_INFO["xdp.ifindex"], true) };
    case "tcx":
      return {
        ...base,
        ifindex: dv.getUint32(BPF_LINK_INFO["tcx.ifindex"], true),
        attachType: attach(BPF_LINK_INFO["tcx.attach_type"]),
      };
    case "netkit":
      return {
        ...base,
        ifindex: dv.getUint32(BPF_LINK_INFO["netkit.ifindex"], true),
        attachType: attach(BPF_LINK_INFO["netkit.attach_type"]),
      };
    case "cgroup":
      return {
        ...base,
        cgroupId: dv.getBigUint64(BPF_LINK_INFO["cgroup.cgroup_id"], true),
        attachType: attach(BPF_LINK_INFO["cgroup.attach_type"]),
      };
    case "netns":
      return {
        ...base,
        netnsInode: dv.getUint32(BPF_LINK_INFO["netns.netns_ino"], true),
        attachType: attach(BPF_LINK_INFO["netns.attach_type"]),
      };
    case "sockmap":
      return {
        ...base,
        mapId: dv.getUint32(BPF_LINK_INFO["sockmap.map_id"], true),
        attachType: attach(BPF_LINK_INFO["sockmap.attach_type"]),
      };
    case "structOps":
      return { ...base, mapId: dv.getUint32(BPF_LINK_INFO["struct_ops.map_id"], true) };
    case "tracing":
      return { ...base, attachType: attach(BPF_LINK_INFO["tracing.attach_type"]) };
    default:
      return base;
  }
}

/**
 * A bpf_link: an attachment the kernel ties to a descriptor.
 *
 * The attachment lasts while the link is open, or pinned, or detached
 * explicitly: `close()` drops this process's reference, which detaches the
 * program unless a pin (or another descriptor) keeps the link alive.
 * `detach()` removes the attachment at once, even when the link is pinned;
 * the handle stays open (and `info()` works) until `close()`.
 *
 * @example Attaching an XDP program to a namespace's loopback in generic mode
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createLink, loadProgram, XDP_FLAGS } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]), // XDP_PASS
 * });
 * using link = ns.run(() => createLink(prog, { ifindex: 1 }, "xdp", { flags: XDP_FLAGS.skbMode }));
 * assert.equal(link.info().ifindex, 1);
 * link.detach();
 * assert.equal(link.info().ifindex, 0);
 * ```
 */
export class BpfLink {
  /** The kernel-wide link id. */
  readonly id: number;
  /** The link type, or its number when this library does not know it. */
  readonly type: LinkType | number;
  #fd: Fd;

  /**
   * Wraps a link descriptor.
   *
   * @internal Links are made by {@link createLink}, {@link openPinnedLink} and {@link linkById}.
   * @param fd The link's descriptor, now owned by the link.
   * @param id The link's id.
   * @param type The link's type.
   */
  constructor(fd: Fd, id: number, type: LinkType | number) {
    this.#fd = fd;
    this.id = id;
    this.type = type;
  }

  /** The link's descriptor, owned by the link. */
  get fd(): Fd {
    if (this.#fd.closed) throw new ClosedError(this.#what());
    return this.#fd;
  }

  /** Whether {@link BpfLink.close} was called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /**
   * Asks the kernel about the link (BPF_OBJ_GET_INFO_BY_FD).
   *
   * @returns The link's type, program, attach type and target.
   * @throws {ClosedError} After `close()`.
   */
  info(): LinkInfo {
    return decodeLinkInfo(objInfo(rawFd(this.fd), BPF_LINK_INFO.SIZE, this.#what()));
  }

  /**
   * Replaces the link's program atomically (BPF_LINK_UPDATE): the new
   * program keeps the old one's place.
   *
   * @param program The new program, of the same type (and attach type).
   * @param options Replace only if the link still runs a given program.
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} EPERM when `expectedProgram` is not the current one; ENOLINK after `detach()`; EINVAL for a program of another type.
   */
  update(program: BpfProgram, options: LinkUpdateOptions = {}): void {
    const what = `Cannot update ${this.#what()} to program "${program?.name ?? ""}"`;
    if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: program must be a BpfProgram`);
    const expected = options.expectedProgram;
    if (expected !== undefined && !(expected instanceof BpfProgram)) {
      throw new TypeError(`${what}: expectedProgram must be a BpfProgram`);
    }
    const a = attr(ATTR_LINK_UPDATE.SIZE);
    a.dv.setUint32(ATTR_LINK_UPDATE.link_fd, rawFd(this.fd), true);
    a.dv.setUint32(ATTR_LINK_UPDATE.new_prog_fd, rawFd(program.fd), true);
    if (expected !== undefined) {
      a.dv.setUint32(ATTR_LINK_UPDATE.flags, F_REPLACE, true);
      a.dv.setUint32(ATTR_LINK_UPDATE.old_prog_fd, rawFd(expected.fd), true);
    }
    const ret = bpfShared(BPF_CMD.LINK_UPDATE, ATTR_LINK_UPDATE.SIZE);
    if (ret < 0) throw linkError(what, BPF_CMD.LINK_UPDATE, -ret, { programType: program.type });
  }

  /**
   * Removes the attachment now (BPF_LINK_DETACH), even when the link is
   * pinned. The handle stays open until `close()`. Calling it again does
   * nothing.
   *
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} EOPNOTSUPP for link types that cannot be detached.
   */
  detach(): void {
    const a = attr(ATTR_LINK_DETACH.SIZE);
    a.dv.setUint32(ATTR_LINK_DETACH.link_fd, rawFd(this.fd), true);
    const ret = bpfShared(BPF_CMD.LINK_DETACH, ATTR_LINK_DETACH.SIZE);
    if (ret < 0 && -ret !== ENOLINK) throw linkError(`Cannot detach ${this.#what()}`, BPF_CMD.LINK_DETACH, -ret);
  }

  /**
   * Pins the link on bpffs: the attachment then outlives this process
   * until the pin is removed (`unpin(path)`) or the link is detached.
   *
   * @param path An absolute path on bpffs; missing parent directories are created.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    pinFd(this.fd, path, this.#what());
  }

  /**
   * Closes this process's reference to the link. Unless the link is pinned
   * (or another descriptor holds it), the kernel detaches the program.
   * Calling it again does nothing.
   */
  close(): void {
    this.#fd.close();
  }

  /** Closes the link (for `using`): detaches unless pinned. */
  [Symbol.dispose](): void {
    this.close();
  }

  #what(): string {
    return `link ${this.id}`;
  }
}

function wrapLink(fd: Fd): BpfLink {
  try {
    const info = decodeLinkInfo(objInfo(rawFd(fd), BPF_LINK_INFO.SIZE, "link"));
    return new BpfLink(fd, info.id, info.type);
  } catch (err) {
    fd.close();
    throw err;
  }
}

/**
 * Attaches a program through a bpf_link (BPF_LINK_CREATE): tcx, XDP,
 * netkit, cgroup, sockmap (Linux 6.10+) and netns hooks.
 *
 * The link holds the attachment: it ends when the link is closed (unless
 * pinned) or detached, so a crashed process leaves nothing behind. An
 * `{ ifindex }` target is resolved in the calling thread's network
 * namespace: use `withNetns(ns, () => createLink(...))` for another one.
 *
 * @param program The program to attach.
 * @param target The interface, cgroup, map or namespace.
 * @param attachType The hook, such as `"tcxIngress"`, `"xdp"` or `"cgroupInetEgress"`.
 * @param options Flags, position and expected revision.
 * @returns The link, owned by the caller.
 * @throws {TypeError} Before any system call, for an unknown attach type, a program type that cannot attach there, a malformed target, or an anchor on a single-program hook.
 * @throws {RangeError} For an ifindex, id, flags or revision out of range.
 * @throws {SyscallError} ENODEV for a missing interface, EEXIST/EBUSY when something holds the hook, ESTALE for a stale revision, EINVAL when the kernel rejects the combination; each with a hint.
 * @capability CAP_BPF
 * @capability CAP_NET_ADMIN
 * @kernel 5.7 BPF_LINK_CREATE (cgroups 5.7, XDP 5.9, tcx 6.6, sockmap 6.10)
 * @example Two tc programs in a chosen order
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createLink, loadProgram, queryPrograms } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]); // TC_ACT_UNSPEC
 * using ns = netns();
 * using a = loadProgram({ type: "schedCls", license: "GPL", instructions });
 * using b = loadProgram({ type: "schedCls", license: "GPL", instructions });
 * ns.run(() => {
 *   using first = createLink(a, { ifindex: 1 }, "tcxIngress");
 *   using second = createLink(b, { ifindex: 1 }, "tcxIngress", { anchor: { before: first } });
 *   const ids = queryPrograms({ ifindex: 1 }, "tcxIngress").programs.map((p) => p.linkId);
 *   assert.deepEqual(ids, [second.id, first.id]);
 * });
 * ```
 */
export function createLink(
  program: BpfProgram,
  target: AttachTarget,
  attachType: AttachType,
  options: CreateLinkOptions = {},
): BpfLink {
  const what = `Cannot link ${program instanceof BpfProgram ? `${program.type} program "${program.name}"` : "program"} to ${describeTarget(target)} as "${String(attachType)}"`;
  checkAttachType(attachType, what);
  checkProgram(program, attachType, what);
  checkTarget(target, what);
  const extra = checkFlags(options.flags, what);
  checkAnchor(options.anchor, attachType, what);
  const revision = checkRevision(options.expectedRevision, what);
  if (revision !== 0n && !isMultiProgram(attachType)) {
    throw new TypeError(`${what}: "${attachType}" hooks have no revision to expect`);
  }
  const progFd = rawFd(program.fd);
  const anchor = encodeAnchor(options.anchor);
  const resolved = resolveTarget(target, what);
  let ret: number;
  try {
    const a = attr(ATTR_LINK_CREATE.SIZE);
    a.dv.setUint32(ATTR_LINK_CREATE.prog_fd, progFd, true);
    a.dv.setUint32(ATTR_LINK_CREATE.target_fd, resolved.value, true);
    a.dv.setUint32(ATTR_LINK_CREATE.attach_type, BPF_ATTACH_TYPE[attachType], true);
    a.dv.setUint32(ATTR_LINK_CREATE.flags, (extra | anchor.flags) >>> 0, true);
    if (anchor.relative !== 0) a.dv.setUint32(ATTR_LINK_CREATE["tcx.relative_fd"], anchor.relative, true);
    if (revision !== 0n) a.dv.setBigUint64(ATTR_LINK_CREATE["tcx.expected_revision"], revision, true);
    ret = bpfShared(BPF_CMD.LINK_CREATE, ATTR_LINK_CREATE.SIZE);
  } finally {
    resolved.opened?.close();
  }
  if (ret < 0) {
    throw linkError(what, BPF_CMD.LINK_CREATE, -ret, {
      attachType,
      flags: extra,
      target: resolved,
      programType: program.type,
    });
  }
  return wrapLink(new Fd(ret, `${attachType} link of program "${program.name}"`));
}

/**
 * Opens a link pinned on bpffs (BPF_OBJ_GET).
 *
 * @param path The pinned path.
 * @returns A new handle to the link; closing it leaves the pinned attachment in place.
 * @throws {SyscallError} ENOENT when nothing is pinned there.
 * @throws {TypeError} When the pinned object is not a link.
 * @example Reopening a pinned link
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createLink, loadProgram, openPinnedLink, unpin, XDP_FLAGS } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * const path = `/sys/fs/bpf/dp-doc-link-${process.pid}`;
 * using ns = netns();
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * {
 *   using link = ns.run(() => createLink(prog, { ifindex: 1 }, "xdp", { flags: XDP_FLAGS.skbMode }));
 *   link.pin(path);
 * }
 * using again = openPinnedLink(path);
 * assert.equal(again.info().ifindex, 1); // still attached
 * again.detach();
 * unpin(path);
 * ```
 */
export function openPinnedLink(path: string): BpfLink {
  return wrapLink(openPinnedFd(path, "link"));
}

function fdById(cmd: number, id: number, kind: string): Fd {
  const what = `Cannot open ${kind} ${String(id)}`;
  positiveInteger(id, "id", what);
  const a = attr(ATTR_GET_ID.SIZE);
  a.dv.setUint32(ATTR_GET_ID.start_id, id, true);
  const ret = bpfShared(cmd, ATTR_GET_ID.SIZE);
  if (ret < 0) throw linkError(what, cmd, -ret);
  return new Fd(ret, `${kind} ${id}`);
}

/**
 * Opens a link by its kernel id (BPF_LINK_GET_FD_BY_ID), such as one
 * {@link queryPrograms} or `bpftool link` lists.
 *
 * @param id The link id.
 * @returns A new handle to the link. Closing it does not detach a link that something else holds.
 * @throws {RangeError} When `id` is not a positive integer.
 * @throws {SyscallError} ENOENT when no link has this id.
 * @capability CAP_SYS_ADMIN
 * @example Looking a link up again
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createLink, linkById, loadProgram, XDP_FLAGS } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * using link = ns.run(() => createLink(prog, { ifindex: 1 }, "xdp", { flags: XDP_FLAGS.skbMode }));
 * using same = linkById(link.id);
 * assert.equal(same.type, "xdp");
 * ```
 */
export function linkById(id: number): BpfLink {
  return wrapLink(fdById(BPF_CMD.LINK_GET_FD_BY_ID, id, "link"));
}

/**
 * Opens a program by its kernel id (BPF_PROG_GET_FD_BY_ID).
 *
 * @param id The program id.
 * @returns A new handle to the program; its `expectedAttachType` is unknown (undefined).
 * @throws {RangeError} When `id` is not a positive integer.
 * @throws {SyscallError} ENOENT when no program has this id.
 * @throws {TypeError} When the program's type is unknown to this library.
 * @capability CAP_SYS_ADMIN
 * @example Opening a program by id
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram, programById } from "@dp/core";
 *
 * using prog = loadProgram({
 *   name: "byid", type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * using same = programById(prog.info().id);
 * assert.equal(same.name, "byid");
 * ```
 */
export function programById(id: number): BpfProgram {
  return programFromFd(fdById(BPF_CMD.PROG_GET_FD_BY_ID, id, "program"), `program ${id}`);
}

/**
 * Opens a map by its kernel id (BPF_MAP_GET_FD_BY_ID), such as one of
 * the ids in `program.info().mapIds`.
 *
 * @param id The map id.
 * @returns A new handle to the map, its spec read back from the kernel.
 * @throws {RangeError} When `id` is not a positive integer.
 * @throws {SyscallError} ENOENT when no map has this id.
 * @throws {TypeError} When the map's type is unknown to this library.
 * @capability CAP_SYS_ADMIN
 * @example Opening a map by id
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap, mapById } from "@dp/core";
 *
 * using map = createMap({ name: "byid", type: "array", keySize: 4, valueSize: 4, maxEntries: 2 });
 * using same = mapById(map.info().id);
 * assert.equal(same.maxEntries, 2);
 * ```
 */
export function mapById(id: number): BpfMap {
  return mapFromFd(fdById(BPF_CMD.MAP_GET_FD_BY_ID, id, "map"), `map ${id}`);
}

const QUERY_ATTEMPTS = 5;
const QUERY_INITIAL = 16;

/**
 * Lists the programs attached to a hook (BPF_PROG_QUERY), in the order
 * they run, with the links that hold them (tcx, netkit) and the hook's
 * revision. Works for tcx, netkit, cgroup, sockmap and netns hooks; XDP
 * and netlink tc attachments are listed through netlink instead.
 *
 * @param target The interface, cgroup, map or namespace.
 * @param attachType The hook.
 * @param options Cgroups: include inherited programs.
 * @returns The programs and the hook's flags and revision; no programs when nothing is attached.
 * @throws {TypeError} For an unknown attach type or a malformed target.
 * @throws {SyscallError} ENODEV for a missing interface, EINVAL when the hook cannot be queried.
 * @capability CAP_NET_ADMIN
 * @example An empty hook
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { queryPrograms } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * const query = ns.run(() => queryPrograms({ ifindex: 1 }, "tcxEgress"));
 * assert.deepEqual(query.programs, []);
 * ```
 */
export function queryPrograms(
  target: AttachTarget,
  attachType: AttachType,
  options: QueryProgramsOptions = {},
): ProgramQuery {
  const what = `Cannot query "${String(attachType)}" programs of ${describeTarget(target)}`;
  checkAttachType(attachType, what);
  checkTarget(target, what);
  const effective = options.effective === true;
  const resolved = resolveTarget(target, what);
  try {
    let capacity = QUERY_INITIAL;
    for (let attempt = 0; ; attempt++) {
      const ids = new Native(capacity * 4);
      const flags = new Native(capacity * 4);
      const links = new Native(capacity * 4);
      const a = attr(ATTR_QUERY.SIZE);
      const dv = a.dv;
      dv.setUint32(ATTR_QUERY.target_fd, resolved.value, true);
      dv.setUint32(ATTR_QUERY.attach_type, BPF_ATTACH_TYPE[attachType], true);
      dv.setUint32(ATTR_QUERY.query_flags, effective ? F_QUERY_EFFECTIVE : 0, true);
      a.setPtr(ATTR_QUERY.prog_ids, ids.addr);
      dv.setUint32(ATTR_QUERY.count, capacity, true);
      // The kernel refuses per-program flags with an effective query.
      if (!effective) a.setPtr(ATTR_QUERY.prog_attach_flags, flags.addr);
      a.setPtr(ATTR_QUERY.link_ids, links.addr);
      const ret = bpfShared(BPF_CMD.PROG_QUERY, ATTR_QUERY.SIZE);
      const count = dv.getUint32(ATTR_QUERY.count, true);
      if (ret === -E.ENOSPC && count > capacity && attempt < QUERY_ATTEMPTS) {
        capacity = count;
        continue;
      }
      if (ret < 0) throw linkError(what, BPF_CMD.PROG_QUERY, -ret, { attachType, target: resolved });
      const n = Math.min(count, capacity);
      const programs: AttachedProgram[] = [];
      for (let i = 0; i < n; i++) {
        const programId = ids.dv.getUint32(i * 4, true);
        const linkId = links.dv.getUint32(i * 4, true);
        const attachFlags = flags.dv.getUint32(i * 4, true);
        programs.push(linkId === 0 ? { programId, attachFlags } : { programId, linkId, attachFlags });
      }
      return {
        programs,
        attachFlags: dv.getUint32(ATTR_QUERY.attach_flags, true),
        revision: dv.getBigUint64(ATTR_QUERY.revision, true),
      };
    }
  } finally {
    resolved.opened?.close();
  }
}

function progAttachAttr(
  resolved: ResolvedTarget,
  progFd: number,
  attachType: AttachType,
  flags: number,
  replaceFd: number,
  anchor: EncodedAnchor,
  revision: bigint,
): void {
  const a = attr(ATTR_PROG_ATTACH.SIZE);
  const dv = a.dv;
  dv.setUint32(ATTR_PROG_ATTACH.target_fd, resolved.value, true);
  dv.setUint32(ATTR_PROG_ATTACH.attach_bpf_fd, progFd, true);
  dv.setUint32(ATTR_PROG_ATTACH.attach_type, BPF_ATTACH_TYPE[attachType], true);
  dv.setUint32(ATTR_PROG_ATTACH.attach_flags, (flags | anchor.flags) >>> 0, true);
  dv.setUint32(ATTR_PROG_ATTACH.replace_bpf_fd, replaceFd, true);
  dv.setUint32(ATTR_PROG_ATTACH.relative_fd, anchor.relative, true);
  if (revision !== 0n) dv.setBigUint64(ATTR_PROG_ATTACH.expected_revision, revision, true);
}

/**
 * Attaches a program without a link (BPF_PROG_ATTACH): sockmap and
 * sockhash programs (sk_msg, sk_skb), legacy cgroup attachments, tcx.
 *
 * Unlike a {@link BpfLink}, such an attachment is not tied to this
 * process: it stays until {@link detachProgram} (or until the target goes
 * away: the map is freed, the interface or cgroup removed).
 *
 * @param target The map, cgroup, interface or namespace.
 * @param program The program to attach.
 * @param attachType The hook, such as `"skMsgVerdict"`.
 * @param options Flags, the program to replace, position and expected revision.
 * @throws {TypeError} Before any system call, for an unknown attach type, a program type that cannot attach there, a malformed target, or an anchor on a single-program hook.
 * @throws {RangeError} For an ifindex, id, flags or revision out of range.
 * @throws {SyscallError} EEXIST when the program is attached there already, EBUSY when an exclusive attachment holds the hook, ENOENT when the program to replace is not attached; each with a hint.
 * @capability CAP_BPF
 * @capability CAP_NET_ADMIN
 * @example Attaching an sk_msg verdict program to a sockmap
 * ```ts kernel
 * import { attachProgram, createMap, detachProgram, loadProgram } from "@dp/core";
 *
 * using sockmap = createMap({ type: "sockmap", keySize: 4, valueSize: 4, maxEntries: 4 });
 * using verdict = loadProgram({
 *   type: "skMsg", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]), // SK_PASS
 * });
 * attachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
 * detachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
 * ```
 */
export function attachProgram(
  target: AttachTarget,
  program: BpfProgram,
  attachType: AttachType,
  options: AttachProgramOptions = {},
): void {
  const what = `Cannot attach ${program instanceof BpfProgram ? `${program.type} program "${program.name}"` : "program"} to ${describeTarget(target)} as "${String(attachType)}"`;
  checkAttachType(attachType, what);
  checkProgram(program, attachType, what);
  checkTarget(target, what);
  const flags = checkFlags(options.flags, what);
  checkAnchor(options.anchor, attachType, what);
  const revision = checkRevision(options.expectedRevision, what);
  const replace = options.replace;
  if (replace !== undefined && !(replace instanceof BpfProgram)) {
    throw new TypeError(`${what}: replace must be a BpfProgram`);
  }
  const progFd = rawFd(program.fd);
  const replaceFd = replace === undefined ? 0 : rawFd(replace.fd);
  const anchor = encodeAnchor(options.anchor);
  const resolved = resolveTarget(target, what);
  let ret: number;
  try {
    progAttachAttr(
      resolved,
      progFd,
      attachType,
      flags | (replace === undefined ? 0 : F_REPLACE),
      replaceFd,
      anchor,
      revision,
    );
    ret = bpfShared(BPF_CMD.PROG_ATTACH, ATTR_PROG_ATTACH.SIZE);
  } finally {
    resolved.opened?.close();
  }
  if (ret < 0)
    throw linkError(what, BPF_CMD.PROG_ATTACH, -ret, { attachType, target: resolved, programType: program.type });
}

/**
 * Detaches a program attached with {@link attachProgram} (BPF_PROG_DETACH).
 *
 * Pass the program to remove exactly that attachment (sockmaps need it).
 * Without one: a legacy single-program cgroup hook loses its program, and
 * a multi-program hook loses the one `options.anchor` names.
 *
 * @param target The map, cgroup, interface or namespace.
 * @param program The attached program, or `undefined`.
 * @param attachType The hook.
 * @param options Which program to detach when none is given, and the expected revision.
 * @throws {TypeError} For an unknown attach type, a malformed target or anchor.
 * @throws {SyscallError} ENOENT when the program is not attached there (detaching twice), with a hint.
 * @capability CAP_NET_ADMIN
 * @example Detaching twice fails the second time
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { attachProgram, createMap, detachProgram, loadProgram, SyscallError } from "@dp/core";
 *
 * using sockmap = createMap({ type: "sockmap", keySize: 4, valueSize: 4, maxEntries: 4 });
 * using verdict = loadProgram({
 *   type: "skMsg", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * attachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
 * detachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
 * assert.throws(() => detachProgram({ fd: sockmap }, verdict, "skMsgVerdict"), SyscallError);
 * ```
 */
export function detachProgram(
  target: AttachTarget,
  program: BpfProgram | undefined,
  attachType: AttachType,
  options: DetachProgramOptions = {},
): void {
  const what = `Cannot detach ${program instanceof BpfProgram ? `${program.type} program "${program.name}"` : `"${String(attachType)}" program`} from ${describeTarget(target)}${program instanceof BpfProgram ? ` as "${String(attachType)}"` : ""}`;
  checkAttachType(attachType, what);
  if (program !== undefined && !(program instanceof BpfProgram)) {
    throw new TypeError(`${what}: program must be a BpfProgram or undefined`);
  }
  checkTarget(target, what);
  checkAnchor(options.anchor, attachType, what);
  const revision = checkRevision(options.expectedRevision, what);
  const progFd = program === undefined ? 0 : rawFd(program.fd);
  const anchor = encodeAnchor(options.anchor);
  const resolved = resolveTarget(target, what);
  let ret: number;
  try {
    progAttachAttr(resolved, progFd, attachType, 0, 0, anchor, revision);
    ret = bpfShared(BPF_CMD.PROG_DETACH, ATTR_PROG_ATTACH.SIZE);
  } finally {
    resolved.opened?.close();
  }
  if (ret < 0) {
    throw linkError(what, BPF_CMD.PROG_DETACH, -ret, {
      attachType,
      target: resolved,
      ...(program === undefined ? {} : { programType: program.type }),
    });
  }
}

/**
 * Creates the link of a BPF iterator program (`SEC("iter/...")`, a tracing
 * program loaded for `"traceIter"`): BPF_LINK_CREATE with
 * BPF_TRACE_ITER and no target parameters. Read it with
 * {@link readIterator}; closing the link (unless pinned) ends it.
 *
 * @internal For `@dp/*` packages, through `@dp/core/internal`.
 * @param program A loaded iterator program.
 * @returns The iterator link, owned by the caller.
 * @throws {TypeError} When `program` is not an iterator program.
 * @throws {SyscallError} When the kernel refuses.
 * @kernel 5.8 bpf_iter
 */
export function createIterLink(program: BpfProgram): BpfLink {
  const what = `Cannot create the iterator link of ${program instanceof BpfProgram ? `program "${program.name}"` : "program"}`;
  if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: program must be a BpfProgram`);
  if (
    program.type !== "tracing" ||
    (program.expectedAttachType !== undefined && program.expectedAttachType !== "traceIter")
  ) {
    throw new TypeError(
      `${what}: it is a ${program.type} program${program.expectedAttachType === undefined ? "" : ` for "${program.expectedAttachType}"`}, not an iterator (SEC("iter/..."))`,
    );
  }
  const a = attr(ATTR_LINK_CREATE.SIZE);
  a.dv.setUint32(ATTR_LINK_CREATE.prog_fd, rawFd(program.fd), true);
  a.dv.setUint32(ATTR_LINK_CREATE.attach_type, BPF_ATTACH_TYPE.traceIter, true);
  const ret = bpfShared(BPF_CMD.LINK_CREATE, ATTR_LINK_CREATE.SIZE);
  if (ret < 0) throw linkError(what, BPF_CMD.LINK_CREATE, -ret, { programType: program.type });
  return wrapLink(new Fd(ret, `iterator link of program "${program.name}"`));
}

/** Options for {@link readIterator}. */
export interface ReadIteratorOptions {
  /**
   * Fail with E2BIG once the output exceeds this many bytes.
   *
   * @default 64 MiB
   */
  readonly maxBytes?: number;
}

const ITER_CHUNK = 64 * 1024;

/**
 * Runs an iterator once: opens a new iterator instance on the link
 * (BPF_ITER_CREATE) and reads it to the end with read(2). The program runs
 * for every object during the read, in the network namespace (for socket
 * iterators) of the calling thread; what it wrote with `bpf_seq_write()` /
 * `BPF_SEQ_PRINTF()` is returned.
 *
 * @internal For `@dp/*` packages, through `@dp/core/internal`.
 * @param link A link from {@link createIterLink}.
 * @param options A bound on the output.
 * @returns The bytes the program wrote.
 * @throws {ClosedError} When the link is closed.
 * @throws {SyscallError} When the kernel refuses to create or read the iterator; E2BIG past `maxBytes`.
 */
export function readIterator(link: BpfLink, options: ReadIteratorOptions = {}): Uint8Array {
  const what = `Cannot read iterator link ${link instanceof BpfLink ? link.id : "?"}`;
  if (!(link instanceof BpfLink)) throw new TypeError(`${what}: link must be a BpfLink`);
  const max = options.maxBytes ?? 64 * 1024 * 1024;
  positiveInteger(max, "maxBytes", what);
  const a = attr(ATTR_ITER_CREATE.SIZE);
  a.dv.setUint32(ATTR_ITER_CREATE.link_fd, rawFd(link.fd), true);
  const ret = bpfShared(BPF_CMD.ITER_CREATE, ATTR_ITER_CREATE.SIZE);
  if (ret < 0) throw linkError(what, BPF_CMD.ITER_CREATE, -ret);
  const fd = new Fd(ret, `iterator of link ${link.id}`);
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(ITER_CHUNK);
      const n = sys().read(rawFd(fd), buf, buf.length);
      if (n === -E.EINTR || n === -E.EAGAIN) continue;
      if (n < 0) throw new SyscallError(what, { syscall: "read", op: "read", errno: -n });
      if (n === 0) break;
      total += n;
      if (total > max)
        throw new SyscallError(`${what}: more than ${max} bytes`, {
          syscall: "read",
          op: "read",
          errno: E.E2BIG,
          hint: "raise maxBytes",
        });
      chunks.push(buf.subarray(0, n));
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } finally {
    fd.close();
  }
}

/**
 * Registers a `structOps` map created with `MAP_FLAGS.link` (and its value
 * written) through a bpf_link: the struct's operations are in use until
 * the link is closed.
 *
 * @internal For the object loader (`.struct_ops.link` maps).
 * @param map The struct_ops map.
 * @returns The link; closing it unregisters the operations.
 * @throws {SyscallError} When the kernel refuses the registration (`EEXIST` for a name already registered).
 */
export function linkStructOps(map: BpfMap): BpfLink {
  const a = attr(ATTR_LINK_CREATE.SIZE);
  a.dv.setUint32(ATTR_LINK_CREATE.map_fd, rawFd(map.fd), true);
  a.dv.setUint32(ATTR_LINK_CREATE.attach_type, BPF_ATTACH_TYPE.structOps, true);
  const ret = bpfShared(BPF_CMD.LINK_CREATE, ATTR_LINK_CREATE.SIZE);
  if (ret < 0) throw bpfError(`Cannot register struct_ops map "${map.name}"`, BPF_CMD.LINK_CREATE, -ret);
  return wrapLink(new Fd(ret, `struct_ops link of map "${map.name}"`));
}
