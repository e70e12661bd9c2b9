// What is attached to an interface or a cgroup, whoever attached it: tcx
// and cgroup hooks answer BPF_PROG_QUERY, netlink tc filters and XDP answer
// netlink dumps. Each program is named by asking the kernel for it by id.
import {
  type AttachType,
  Fd,
  hasTcx,
  linkById,
  type LinkInfo,
  type Netns,
  programById,
  queryPrograms,
  SyscallError,
  withNetns,
} from "@dp/core";
import { Native, sys } from "@dp/core/internal";
import { resolveInterface } from "./_iface.ts";
import { fdInode } from "./_proc.ts";
import { listTcFilters } from "./_tc_netlink.ts";
import type { Attachment } from "./link.ts";
import { xdpState } from "./_xdp_netlink.ts";

const ENOENT = 2;
const EINVAL = 22;
const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const CGROUP2_SUPER_MAGIC = 0x63677270;
const BPF_LINK_GET_NEXT_ID = 31;
const GET_ID_SIZE = 12;

/** The cgroup hooks a cgroup v2 directory is queried for, in `enum bpf_attach_type` order. */
const CGROUP_HOOKS: readonly AttachType[] = [
  "cgroupInetIngress",
  "cgroupInetEgress",
  "cgroupInetSockCreate",
  "cgroupSockOps",
  "cgroupDevice",
  "cgroupInet4Bind",
  "cgroupInet6Bind",
  "cgroupInet4Connect",
  "cgroupInet6Connect",
  "cgroupInet4PostBind",
  "cgroupInet6PostBind",
  "cgroupUdp4Sendmsg",
  "cgroupUdp6Sendmsg",
  "cgroupSysctl",
  "cgroupUdp4Recvmsg",
  "cgroupUdp6Recvmsg",
  "cgroupGetsockopt",
  "cgroupSetsockopt",
  "cgroupInet4Getpeername",
  "cgroupInet6Getpeername",
  "cgroupInet4Getsockname",
  "cgroupInet6Getsockname",
  "cgroupInetSockRelease",
  "cgroupUnixConnect",
  "cgroupUnixSendmsg",
  "cgroupUnixRecvmsg",
  "cgroupUnixGetpeername",
  "cgroupUnixGetsockname",
];

/**
 * What {@link listAttachments} looks at: an interface (by name or index, in
 * a network namespace) or a cgroup v2 directory.
 */
export type AttachmentTarget =
  | {
      /** The interface name or index. */
      readonly iface: string | number;
      /**
       * The interface's network namespace.
       *
       * @default the calling thread's
       */
      readonly netns?: Netns;
    }
  | {
      /** The absolute path of a cgroup v2 directory, such as `/sys/fs/cgroup/app`. */
      readonly cgroup: string;
    };

/** The program's name as the kernel knows it; `""` when it went away meanwhile. */
function programName(id: number): string {
  try {
    using program = programById(id);
    return program.name;
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return "";
    throw err;
  }
}

/** Every link id in the system (BPF_LINK_GET_NEXT_ID). */
function* linkIds(): Generator<number> {
  const a = new Native(GET_ID_SIZE);
  let id = 0;
  for (;;) {
    a.u8.fill(0);
    a.dv.setUint32(0, id, true);
    const ret = sys().bpf(BPF_LINK_GET_NEXT_ID, a.addr, GET_ID_SIZE);
    if (ret === -ENOENT) return;
    if (ret < 0)
      throw new SyscallError("Cannot list bpf links", { syscall: "bpf", op: "BPF_LINK_GET_NEXT_ID", errno: -ret });
    id = a.dv.getUint32(4, true);
    yield id;
  }
}

/**
 * The links of a type in the system, read once per listing: XDP and
 * cgroup hooks do not report which link holds a program, the links say
 * where they are attached.
 */
function linksOfType(type: "xdp" | "cgroup"): LinkInfo[] {
  const out: LinkInfo[] = [];
  for (const id of linkIds()) {
    try {
      using link = linkById(id);
      if (link.type !== type) continue;
      out.push(link.info());
    } catch (err) {
      // Gone meanwhile.
      if (err instanceof SyscallError && err.errno === ENOENT) continue;
      throw err;
    }
  }
  return out;
}

function listInterface(iface: string | number, netns: Netns | undefined): Attachment[] {
  const dev = resolveInterface(iface, netns, `list the attachments of interface ${JSON.stringify(iface)}`);
  const inNetns = <T>(fn: () => T): T => (netns === undefined ? fn() : withNetns(netns, fn));
  const out: Attachment[] = [];
  const xdp = xdpState(dev.index, netns);
  let links: LinkInfo[] | undefined;
  for (const mode of ["drv", "hw", "skb"] as const) {
    const programId = xdp[mode];
    if (programId === undefined) continue;
    links ??= linksOfType("xdp");
    // Matched by interface index and program: an XDP link does not say which namespace it is in.
    const linkId = links.find((l) => l.ifindex === dev.index && l.programId === programId)?.id;
    const base = { hook: "xdp", programId, programName: programName(programId), xdpMode: mode };
    out.push(linkId === undefined ? { ...base, kind: "xdpNetlink" } : { ...base, kind: "xdp", linkId });
  }
  const tcx = hasTcx();
  for (const direction of ["ingress", "egress"] as const) {
    const hook = direction === "ingress" ? "tcIngress" : "tcEgress";
    if (tcx) {
      const query = inNetns(() =>
        queryPrograms({ ifindex: dev.index }, direction === "ingress" ? "tcxIngress" : "tcxEgress"),
      );
      for (const p of query.programs) {
        const base = { hook, kind: "tcx" as const, programId: p.programId, programName: programName(p.programId) };
        out.push(p.linkId === undefined ? base : { ...base, linkId: p.linkId });
      }
    }
    for (const f of listTcFilters(dev.index, direction, netns)) {
      if (f.kind !== "bpf" || f.programId === 0) continue;
      out.push({
        hook,
        kind: "tc",
        programId: f.programId,
        programName: programName(f.programId),
        filter: { priority: f.priority, handle: f.handle, name: f.name },
      });
    }
  }
  return out;
}

function listCgroup(path: string): Attachment[] {
  const what = `Cannot list the attachments of cgroup "${path}"`;
  const s = sys();
  const magic = s.statfsType(path);
  if (magic < 0) throw new SyscallError(what, { syscall: "statfs", op: "statfs", errno: -magic });
  if (magic !== CGROUP2_SUPER_MAGIC) throw new TypeError(`${what}: not a cgroup v2 directory`);
  const raw = s.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (raw < 0) throw new SyscallError(what, { syscall: "open", op: "open", errno: -raw });
  using fd = new Fd(raw, `cgroup "${path}"`);
  const cgroupId = BigInt(fdInode(fd));
  let links: LinkInfo[] | undefined;
  const out: Attachment[] = [];
  for (const hook of CGROUP_HOOKS) {
    let programs;
    try {
      programs = queryPrograms({ fd }, hook).programs;
    } catch (err) {
      // A hook this kernel does not have.
      if (err instanceof SyscallError && err.errno === EINVAL) continue;
      throw err;
    }
    for (const p of programs) {
      const base = { hook, kind: "cgroup" as const, programId: p.programId, programName: programName(p.programId) };
      let linkId = p.linkId;
      if (linkId === undefined) {
        links ??= linksOfType("cgroup");
        linkId = links.find((l) => l.cgroupId === cgroupId && l.attachType === hook && l.programId === p.programId)?.id;
      }
      out.push(linkId === undefined ? base : { ...base, linkId });
    }
  }
  return out;
}

/**
 * Lists the BPF programs attached to an interface or a cgroup, ours and
 * everyone else's (`tc`, `ip link set xdp`, other libraries), each named
 * as `bpftool prog show` names it.
 *
 * An interface reports, in the order packets meet them: XDP (netlink
 * `IFLA_XDP`; `kind: "xdp"` with the link id when a bpf_link holds it),
 * then for ingress and egress the tcx programs (`BPF_PROG_QUERY`, Linux
 * 6.6+) followed by the cls_bpf filters of the clsact qdisc (netlink
 * dump, with priority, handle and filter name). Filters of other kinds
 * (u32, flower) run no BPF program and are left out. A cgroup reports the
 * programs attached directly to it (not the inherited ones), hook by
 * hook.
 *
 * @param target `{ iface, netns? }` or `{ cgroup }`.
 * @returns The attachments; empty when nothing is attached.
 * @throws {TypeError} When the target is malformed or the cgroup path is not on cgroup v2.
 * @throws {RangeError} When the interface name or index is invalid.
 * @throws {SyscallError} ENODEV naming the interface when there is none; ENOENT when the cgroup does not exist.
 * @capability CAP_NET_ADMIN
 * @capability CAP_SYS_ADMIN
 * @example A netlink tc filter, named after its program
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { attachTc, listAttachments } from "@dp/hooks";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using prog = loadProgram({
 *   name: "pass_all", type: "schedCls", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]), // TC_ACT_UNSPEC
 * });
 * using link = attachTc("lo", prog, { direction: "ingress", mode: "netlink", netns: ns.ns });
 * const [attached] = listAttachments({ iface: "lo", netns: ns.ns });
 * assert.equal(attached?.kind, "tc");
 * assert.equal(attached?.programName, "pass_all");
 * ```
 */
export function listAttachments(target: AttachmentTarget): Attachment[] {
  if (typeof target !== "object" || target === null) {
    throw new TypeError("Cannot list attachments: the target must be { iface, netns? } or { cgroup }");
  }
  if ("cgroup" in target) {
    if (typeof target.cgroup !== "string" || !target.cgroup.startsWith("/")) {
      throw new TypeError(
        `Cannot list attachments: cgroup must be an absolute path, got ${JSON.stringify(target.cgroup)}`,
      );
    }
    return listCgroup(target.cgroup);
  }
  if ("iface" in target) return listInterface(target.iface, target.netns);
  throw new TypeError("Cannot list attachments: the target must be { iface, netns? } or { cgroup }");
}
