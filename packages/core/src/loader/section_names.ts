// libbpf's program section names (`SEC("...")`): which program type and
// expected attach type a section name stands for. The table follows
// section_defs in libbpf's src/libbpf.c (libbpf 1.x: strict names, no
// sloppy prefix matching), in the same order, since the first match wins.
import type { AttachType, ProgramType } from "../bpf/program.ts";

/** What a program section name says about its programs. */
export interface SectionProgramType {
  /** The program type. */
  readonly type: ProgramType;
  /**
   * The attach type to verify the program for (`expected_attach_type`),
   * when the name implies one.
   *
   * @default undefined
   */
  readonly expectedAttachType?: AttachType;
  /**
   * What to attach to: the part after the first `/` for names that take one,
   * such as `"do_unlinkat"` in `kprobe/do_unlinkat` or
   * `"syscalls/sys_enter_openat"` in `tracepoint/syscalls/sys_enter_openat`.
   *
   * @default undefined
   */
  readonly attachTo?: string;
  /**
   * `BPF_F_*` program load flags the name implies: `BPF_F_SLEEPABLE` (16)
   * for `.s` names and `syscall`, `BPF_F_XDP_HAS_FRAGS` (32) for
   * `xdp.frags`; else 0.
   */
  readonly flags: number;
  /** `false` when the name starts with `?` (libbpf: not loaded unless asked for), else `true`. */
  readonly autoload: boolean;
}

const SLEEPABLE = 1 << 4;
const XDP_FRAGS = 1 << 5;

/** One section_defs entry: the name, whether `/extras` may follow (libbpf's `+`), and what it means. */
type SectionDef = readonly [
  name: string,
  extras: boolean,
  type: ProgramType,
  attach: AttachType | undefined,
  flags: number,
];

const SECTION_DEFS: readonly SectionDef[] = [
  ["socket", false, "socketFilter", undefined, 0],
  ["sk_reuseport/migrate", false, "skReuseport", "skReuseportSelectOrMigrate", 0],
  ["sk_reuseport", false, "skReuseport", "skReuseportSelect", 0],
  ["kprobe", true, "kprobe", undefined, 0],
  ["uprobe", true, "kprobe", undefined, 0],
  ["uprobe.s", true, "kprobe", undefined, SLEEPABLE],
  ["kretprobe", true, "kprobe", undefined, 0],
  ["uretprobe", true, "kprobe", undefined, 0],
  ["uretprobe.s", true, "kprobe", undefined, SLEEPABLE],
  ["kprobe.multi", true, "kprobe", "traceKprobeMulti", 0],
  ["kretprobe.multi", true, "kprobe", "traceKprobeMulti", 0],
  ["kprobe.session", true, "kprobe", "traceKprobeSession", 0],
  ["uprobe.multi", true, "kprobe", "traceUprobeMulti", 0],
  ["uretprobe.multi", true, "kprobe", "traceUprobeMulti", 0],
  ["uprobe.session", true, "kprobe", "traceUprobeSession", 0],
  ["uprobe.multi.s", true, "kprobe", "traceUprobeMulti", SLEEPABLE],
  ["uretprobe.multi.s", true, "kprobe", "traceUprobeMulti", SLEEPABLE],
  ["uprobe.session.s", true, "kprobe", "traceUprobeSession", SLEEPABLE],
  ["ksyscall", true, "kprobe", undefined, 0],
  ["kretsyscall", true, "kprobe", undefined, 0],
  ["usdt", true, "kprobe", undefined, 0],
  ["usdt.s", true, "kprobe", undefined, SLEEPABLE],
  // libbpf: tc/ingress and tc/egress are aliases of tcx/ingress and tcx/egress.
  ["tc/ingress", false, "schedCls", "tcxIngress", 0],
  ["tc/egress", false, "schedCls", "tcxEgress", 0],
  ["tcx/ingress", false, "schedCls", "tcxIngress", 0],
  ["tcx/egress", false, "schedCls", "tcxEgress", 0],
  ["netkit/primary", false, "schedCls", "netkitPrimary", 0],
  ["netkit/peer", false, "schedCls", "netkitPeer", 0],
  ["tc", false, "schedCls", undefined, 0],
  ["classifier", false, "schedCls", undefined, 0],
  ["action", false, "schedAct", undefined, 0],
  ["tracepoint", true, "tracepoint", undefined, 0],
  ["tp", true, "tracepoint", undefined, 0],
  ["raw_tracepoint", true, "rawTracepoint", undefined, 0],
  ["raw_tp", true, "rawTracepoint", undefined, 0],
  ["raw_tracepoint.w", true, "rawTracepointWritable", undefined, 0],
  ["raw_tp.w", true, "rawTracepointWritable", undefined, 0],
  ["tp_btf", true, "tracing", "traceRawTp", 0],
  ["fentry", true, "tracing", "traceFentry", 0],
  ["fmod_ret", true, "tracing", "modifyReturn", 0],
  ["fexit", true, "tracing", "traceFexit", 0],
  ["fentry.s", true, "tracing", "traceFentry", SLEEPABLE],
  ["fmod_ret.s", true, "tracing", "modifyReturn", SLEEPABLE],
  ["fexit.s", true, "tracing", "traceFexit", SLEEPABLE],
  ["freplace", true, "ext", undefined, 0],
  ["lsm", true, "lsm", "lsmMac", 0],
  ["lsm.s", true, "lsm", "lsmMac", SLEEPABLE],
  ["lsm_cgroup", true, "lsm", "lsmCgroup", 0],
  ["iter", true, "tracing", "traceIter", 0],
  ["iter.s", true, "tracing", "traceIter", SLEEPABLE],
  ["syscall", false, "syscall", undefined, SLEEPABLE],
  ["xdp.frags/devmap", false, "xdp", "xdpDevmap", XDP_FRAGS],
  ["xdp/devmap", false, "xdp", "xdpDevmap", 0],
  ["xdp.frags/cpumap", false, "xdp", "xdpCpumap", XDP_FRAGS],
  ["xdp/cpumap", false, "xdp", "xdpCpumap", 0],
  ["xdp.frags", false, "xdp", "xdp", XDP_FRAGS],
  ["xdp", false, "xdp", "xdp", 0],
  ["perf_event", false, "perfEvent", undefined, 0],
  ["lwt_in", false, "lwtIn", undefined, 0],
  ["lwt_out", false, "lwtOut", undefined, 0],
  ["lwt_xmit", false, "lwtXmit", undefined, 0],
  ["lwt_seg6local", false, "lwtSeg6local", undefined, 0],
  ["sockops", false, "sockOps", "cgroupSockOps", 0],
  ["sk_skb/stream_parser", false, "skSkb", "skSkbStreamParser", 0],
  ["sk_skb/stream_verdict", false, "skSkb", "skSkbStreamVerdict", 0],
  ["sk_skb/verdict", false, "skSkb", "skSkbVerdict", 0], // libbpf 1.4
  ["sk_skb", false, "skSkb", undefined, 0],
  ["sk_msg", false, "skMsg", "skMsgVerdict", 0],
  ["lirc_mode2", false, "lircMode2", "lircMode2", 0],
  ["flow_dissector", false, "flowDissector", "flowDissector", 0],
  ["cgroup_skb/ingress", false, "cgroupSkb", "cgroupInetIngress", 0],
  ["cgroup_skb/egress", false, "cgroupSkb", "cgroupInetEgress", 0],
  ["cgroup/skb", false, "cgroupSkb", undefined, 0],
  ["cgroup/sock_create", false, "cgroupSock", "cgroupInetSockCreate", 0],
  ["cgroup/sock_release", false, "cgroupSock", "cgroupInetSockRelease", 0],
  ["cgroup/sock", false, "cgroupSock", "cgroupInetSockCreate", 0],
  ["cgroup/post_bind4", false, "cgroupSock", "cgroupInet4PostBind", 0],
  ["cgroup/post_bind6", false, "cgroupSock", "cgroupInet6PostBind", 0],
  ["cgroup/bind4", false, "cgroupSockAddr", "cgroupInet4Bind", 0],
  ["cgroup/bind6", false, "cgroupSockAddr", "cgroupInet6Bind", 0],
  ["cgroup/connect4", false, "cgroupSockAddr", "cgroupInet4Connect", 0],
  ["cgroup/connect6", false, "cgroupSockAddr", "cgroupInet6Connect", 0],
  ["cgroup/connect_unix", false, "cgroupSockAddr", "cgroupUnixConnect", 0],
  ["cgroup/sendmsg4", false, "cgroupSockAddr", "cgroupUdp4Sendmsg", 0],
  ["cgroup/sendmsg6", false, "cgroupSockAddr", "cgroupUdp6Sendmsg", 0],
  ["cgroup/sendmsg_unix", false, "cgroupSockAddr", "cgroupUnixSendmsg", 0],
  ["cgroup/recvmsg4", false, "cgroupSockAddr", "cgroupUdp4Recvmsg", 0],
  ["cgroup/recvmsg6", false, "cgroupSockAddr", "cgroupUdp6Recvmsg", 0],
  ["cgroup/recvmsg_unix", false, "cgroupSockAddr", "cgroupUnixRecvmsg", 0],
  ["cgroup/getpeername4", false, "cgroupSockAddr", "cgroupInet4Getpeername", 0],
  ["cgroup/getpeername6", false, "cgroupSockAddr", "cgroupInet6Getpeername", 0],
  ["cgroup/getpeername_unix", false, "cgroupSockAddr", "cgroupUnixGetpeername", 0],
  ["cgroup/getsockname4", false, "cgroupSockAddr", "cgroupInet4Getsockname", 0],
  ["cgroup/getsockname6", false, "cgroupSockAddr", "cgroupInet6Getsockname", 0],
  ["cgroup/getsockname_unix", false, "cgroupSockAddr", "cgroupUnixGetsockname", 0],
  ["cgroup/sysctl", false, "cgroupSysctl", "cgroupSysctl", 0],
  ["cgroup/getsockopt", false, "cgroupSockopt", "cgroupGetsockopt", 0],
  ["cgroup/setsockopt", false, "cgroupSockopt", "cgroupSetsockopt", 0],
  ["cgroup/dev", false, "cgroupDevice", "cgroupDevice", 0],
  ["struct_ops", true, "structOps", undefined, 0],
  ["struct_ops.s", true, "structOps", undefined, SLEEPABLE],
  ["sk_lookup", false, "skLookup", "skLookup", 0],
  ["netfilter", false, "netfilter", "netfilter", 0],
];

/**
 * Tells what a libbpf-style program section name (`SEC("...")`) stands for:
 * the program type, the expected attach type, the attach target and load
 * flags.
 *
 * The names and their meaning follow libbpf 1.x's `section_defs` table
 * (src/libbpf.c), first match wins:
 * - most names match exactly: `xdp`, `tc`, `tcx/ingress`, `sockops`,
 *   `cgroup/connect4`;
 * - names that take a target match exactly or followed by `/target`:
 *   `kprobe/do_unlinkat`, `tracepoint/syscalls/sys_enter_openat`,
 *   `raw_tp/sched_switch`, `fentry/tcp_connect`; the target is in `attachTo`;
 * - a leading `?` (libbpf: do not load unless asked for) sets `autoload` to
 *   `false` and is otherwise ignored.
 *
 * As in libbpf, `tc/ingress` and `tc/egress` are aliases of `tcx/ingress`
 * and `tcx/egress`, `xdp` expects the `xdp` attach type, and plain `tc` and
 * `classifier` have no expected attach type. Old sloppy prefixes
 * (`classifier/foo`, `xdp_prog`) are not recognised, as in libbpf 1.x.
 *
 * @param sectionName The ELF section name.
 * @returns What the name stands for, or `undefined` when it is not a
 * program section name (such as `.text`, `.maps` or `license`).
 *
 * @example Program types from section names
 * ```ts
 * import assert from "node:assert/strict";
 * import { programTypeForSection } from "@dp/core/internal";
 *
 * assert.deepEqual(programTypeForSection("tcx/ingress"), {
 *   type: "schedCls", expectedAttachType: "tcxIngress", flags: 0, autoload: true,
 * });
 * assert.deepEqual(programTypeForSection("kprobe/do_unlinkat"), {
 *   type: "kprobe", attachTo: "do_unlinkat", flags: 0, autoload: true,
 * });
 * assert.equal(programTypeForSection(".maps"), undefined);
 * ```
 */
export function programTypeForSection(sectionName: string): SectionProgramType | undefined {
  const autoload = !sectionName.startsWith("?");
  const name = autoload ? sectionName : sectionName.slice(1);
  for (const [def, extras, type, attach, flags] of SECTION_DEFS) {
    let attachTo: string | undefined;
    if (name !== def) {
      if (!extras || !name.startsWith(def) || name[def.length] !== "/") continue;
      attachTo = name.slice(def.length + 1);
    }
    return {
      type,
      ...(attach === undefined ? {} : { expectedAttachType: attach }),
      ...(attachTo === undefined ? {} : { attachTo }),
      flags,
      autoload,
    };
  }
  return undefined;
}
