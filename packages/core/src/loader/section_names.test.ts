import { describe, expect, test } from "vitest";
import type { AttachType, ProgramType } from "@dp/core";
import { programTypeForSection } from "@dp/core/internal";

const SLEEPABLE = 16;
const XDP_FRAGS = 32;

type Row = [
  name: string,
  type: ProgramType,
  attach: AttachType | undefined,
  attachTo?: string | undefined,
  flags?: number,
];

// From libbpf's section_defs (src/libbpf.c, libbpf 1.x).
const ROWS: Row[] = [
  ["xdp", "xdp", "xdp"],
  ["xdp.frags", "xdp", "xdp", undefined, XDP_FRAGS],
  ["xdp/devmap", "xdp", "xdpDevmap"],
  ["xdp/cpumap", "xdp", "xdpCpumap"],
  ["xdp.frags/devmap", "xdp", "xdpDevmap", undefined, XDP_FRAGS],
  ["xdp.frags/cpumap", "xdp", "xdpCpumap", undefined, XDP_FRAGS],
  ["tc", "schedCls", undefined],
  ["classifier", "schedCls", undefined],
  ["tc/ingress", "schedCls", "tcxIngress"],
  ["tc/egress", "schedCls", "tcxEgress"],
  ["tcx/ingress", "schedCls", "tcxIngress"],
  ["tcx/egress", "schedCls", "tcxEgress"],
  ["netkit/primary", "schedCls", "netkitPrimary"],
  ["netkit/peer", "schedCls", "netkitPeer"],
  ["action", "schedAct", undefined],
  ["sockops", "sockOps", "cgroupSockOps"],
  ["sk_msg", "skMsg", "skMsgVerdict"],
  ["sk_skb", "skSkb", undefined],
  ["sk_skb/stream_parser", "skSkb", "skSkbStreamParser"],
  ["sk_skb/stream_verdict", "skSkb", "skSkbStreamVerdict"],
  ["sk_skb/verdict", "skSkb", "skSkbVerdict"],
  ["sk_reuseport", "skReuseport", "skReuseportSelect"],
  ["sk_reuseport/migrate", "skReuseport", "skReuseportSelectOrMigrate"],
  ["sk_lookup", "skLookup", "skLookup"],
  ["flow_dissector", "flowDissector", "flowDissector"],
  ["lirc_mode2", "lircMode2", "lircMode2"],
  ["socket", "socketFilter", undefined],
  ["cgroup_skb/ingress", "cgroupSkb", "cgroupInetIngress"],
  ["cgroup_skb/egress", "cgroupSkb", "cgroupInetEgress"],
  ["cgroup/skb", "cgroupSkb", undefined],
  ["cgroup/sock", "cgroupSock", "cgroupInetSockCreate"],
  ["cgroup/sock_create", "cgroupSock", "cgroupInetSockCreate"],
  ["cgroup/sock_release", "cgroupSock", "cgroupInetSockRelease"],
  ["cgroup/post_bind4", "cgroupSock", "cgroupInet4PostBind"],
  ["cgroup/post_bind6", "cgroupSock", "cgroupInet6PostBind"],
  ["cgroup/bind4", "cgroupSockAddr", "cgroupInet4Bind"],
  ["cgroup/bind6", "cgroupSockAddr", "cgroupInet6Bind"],
  ["cgroup/connect4", "cgroupSockAddr", "cgroupInet4Connect"],
  ["cgroup/connect6", "cgroupSockAddr", "cgroupInet6Connect"],
  ["cgroup/connect_unix", "cgroupSockAddr", "cgroupUnixConnect"],
  ["cgroup/sendmsg4", "cgroupSockAddr", "cgroupUdp4Sendmsg"],
  ["cgroup/sendmsg6", "cgroupSockAddr", "cgroupUdp6Sendmsg"],
  ["cgroup/sendmsg_unix", "cgroupSockAddr", "cgroupUnixSendmsg"],
  ["cgroup/recvmsg4", "cgroupSockAddr", "cgroupUdp4Recvmsg"],
  ["cgroup/recvmsg6", "cgroupSockAddr", "cgroupUdp6Recvmsg"],
  ["cgroup/recvmsg_unix", "cgroupSockAddr", "cgroupUnixRecvmsg"],
  ["cgroup/getpeername4", "cgroupSockAddr", "cgroupInet4Getpeername"],
  ["cgroup/getpeername6", "cgroupSockAddr", "cgroupInet6Getpeername"],
  ["cgroup/getpeername_unix", "cgroupSockAddr", "cgroupUnixGetpeername"],
  ["cgroup/getsockname4", "cgroupSockAddr", "cgroupInet4Getsockname"],
  ["cgroup/getsockname6", "cgroupSockAddr", "cgroupInet6Getsockname"],
  ["cgroup/getsockname_unix", "cgroupSockAddr", "cgroupUnixGetsockname"],
  ["cgroup/sysctl", "cgroupSysctl", "cgroupSysctl"],
  ["cgroup/getsockopt", "cgroupSockopt", "cgroupGetsockopt"],
  ["cgroup/setsockopt", "cgroupSockopt", "cgroupSetsockopt"],
  ["cgroup/dev", "cgroupDevice", "cgroupDevice"],
  ["lwt_in", "lwtIn", undefined],
  ["lwt_out", "lwtOut", undefined],
  ["lwt_xmit", "lwtXmit", undefined],
  ["lwt_seg6local", "lwtSeg6local", undefined],
  ["perf_event", "perfEvent", undefined],
  ["syscall", "syscall", undefined, undefined, SLEEPABLE],
  ["netfilter", "netfilter", "netfilter"],
  ["kprobe", "kprobe", undefined],
  ["kprobe/do_unlinkat", "kprobe", undefined, "do_unlinkat"],
  ["kretprobe/do_unlinkat", "kprobe", undefined, "do_unlinkat"],
  ["kprobe/__x64_sys_write+0x10", "kprobe", undefined, "__x64_sys_write+0x10"],
  ["uprobe//usr/lib/libc.so.6:malloc", "kprobe", undefined, "/usr/lib/libc.so.6:malloc"],
  ["uprobe.s/bin/bash:readline", "kprobe", undefined, "bin/bash:readline", SLEEPABLE],
  ["uretprobe", "kprobe", undefined],
  ["ksyscall/openat", "kprobe", undefined, "openat"],
  ["kretsyscall/openat", "kprobe", undefined, "openat"],
  ["usdt/libc.so.6:libc:setjmp", "kprobe", undefined, "libc.so.6:libc:setjmp"],
  ["kprobe.multi/tcp_*", "kprobe", "traceKprobeMulti", "tcp_*"],
  ["kretprobe.multi/tcp_*", "kprobe", "traceKprobeMulti", "tcp_*"],
  ["kprobe.session/vfs_*", "kprobe", "traceKprobeSession", "vfs_*"],
  ["uprobe.multi/bin/ls:*", "kprobe", "traceUprobeMulti", "bin/ls:*"],
  ["uprobe.multi.s/bin/ls:*", "kprobe", "traceUprobeMulti", "bin/ls:*", SLEEPABLE],
  ["uprobe.session/bin/ls:main", "kprobe", "traceUprobeSession", "bin/ls:main"],
  ["tracepoint/syscalls/sys_enter_openat", "tracepoint", undefined, "syscalls/sys_enter_openat"],
  ["tp/sched/sched_switch", "tracepoint", undefined, "sched/sched_switch"],
  ["tracepoint", "tracepoint", undefined],
  ["raw_tracepoint/sched_switch", "rawTracepoint", undefined, "sched_switch"],
  ["raw_tp/sys_enter", "rawTracepoint", undefined, "sys_enter"],
  ["raw_tp.w/bpf_test_finish", "rawTracepointWritable", undefined, "bpf_test_finish"],
  ["raw_tracepoint.w/bpf_test_finish", "rawTracepointWritable", undefined, "bpf_test_finish"],
  ["tp_btf/sched_switch", "tracing", "traceRawTp", "sched_switch"],
  ["fentry/tcp_connect", "tracing", "traceFentry", "tcp_connect"],
  ["fexit/tcp_connect", "tracing", "traceFexit", "tcp_connect"],
  ["fmod_ret/security_file_open", "tracing", "modifyReturn", "security_file_open"],
  ["fentry.s/do_sys_openat2", "tracing", "traceFentry", "do_sys_openat2", SLEEPABLE],
  ["freplace/handler", "ext", undefined, "handler"],
  ["lsm/file_open", "lsm", "lsmMac", "file_open"],
  ["lsm.s/bprm_committed_creds", "lsm", "lsmMac", "bprm_committed_creds", SLEEPABLE],
  ["lsm_cgroup/socket_bind", "lsm", "lsmCgroup", "socket_bind"],
  ["iter/task", "tracing", "traceIter", "task"],
  ["iter.s/task_file", "tracing", "traceIter", "task_file", SLEEPABLE],
  ["struct_ops/tcp_init", "structOps", undefined, "tcp_init"],
  ["struct_ops.s/test_1", "structOps", undefined, "test_1", SLEEPABLE],
];

describe("programTypeForSection()", () => {
  test.each(ROWS)("programTypeForSection() maps %s like libbpf", (name, type, attach, attachTo, flags) => {
    expect(programTypeForSection(name)).toStrictEqual({
      type,
      ...(attach === undefined ? {} : { expectedAttachType: attach }),
      ...(attachTo === undefined ? {} : { attachTo }),
      flags: flags ?? 0,
      autoload: true,
    });
  });

  test("programTypeForSection() clears autoload for names that start with ?", () => {
    expect(programTypeForSection("?tcx/egress")).toStrictEqual({
      type: "schedCls",
      expectedAttachType: "tcxEgress",
      flags: 0,
      autoload: false,
    });
    expect(programTypeForSection("?kprobe/do_exit")).toMatchObject({ attachTo: "do_exit", autoload: false });
    expect(programTypeForSection("?")).toBeUndefined();
  });

  test.each([
    // Not program sections.
    "",
    ".text",
    ".maps",
    ".rodata",
    ".data.counters",
    ".bss",
    "license",
    ".BTF",
    ".relxdp",
    // Exact names take nothing after them (libbpf 1.x dropped sloppy prefixes).
    "xdp/foo",
    "xdp_prog",
    "xdpx",
    "tc/classifier",
    "classifier/ingress",
    "socket1",
    "sockops/x",
    "cgroup/connect",
    "cgroup/connect44",
    "sk_skb/parser",
    "tcx/both",
    // Names that take a target need a "/" before it.
    "kprobex",
    "kprobe_do_exit",
    "tracepoints/x",
    "raw_tpx",
    // Case matters.
    "XDP",
  ])("programTypeForSection() does not recognise %j", (name) => {
    expect(programTypeForSection(name)).toBeUndefined();
  });

  test("programTypeForSection() keeps an empty target after the slash", () => {
    expect(programTypeForSection("kprobe/")).toStrictEqual({ type: "kprobe", attachTo: "", flags: 0, autoload: true });
  });
});
