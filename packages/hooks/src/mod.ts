/**
 * Attaching BPF programs to the kernel's hooks: tc (tcx links or netlink
 * cls_bpf), XDP, cgroups and sockmaps; listing what is attached; a ledger
 * that lets a restarted process clean up after a crash; and a packet test
 * kit for `BPF_PROG_TEST_RUN`.
 *
 * @module \@dp/hooks
 */
export type { Attachment, FilterPlace, Link, LinkKind } from "./link.ts";
export { attachTc, TcLink } from "./tc.ts";
export type { TcDirection, TcOptions } from "./tc.ts";
export { eth, icmp, icmpv6, ipv4, ipv6, packet, tcp, udp, vxlan, VXLAN_PORT } from "./packet/build.ts";
export type {
  EthLayer,
  EthOptions,
  IcmpLayer,
  IcmpOptions,
  Ipv4Layer,
  Ipv4Options,
  Ipv6Layer,
  Ipv6Options,
  Layer,
  PacketPart,
  TcpLayer,
  TcpOptions,
  UdpLayer,
  UdpOptions,
  VlanOptions,
  VxlanLayer,
  VxlanOptions,
} from "./packet/build.ts";
export type {
  EthHeader,
  IcmpHeader,
  Ipv4Header,
  Ipv6Header,
  ParsedPacket,
  TcpFlag,
  TcpHeader,
  TcpHeaderOption,
  UdpHeader,
  VlanTag,
  VxlanHeader,
} from "./packet/headers.ts";
export { internetChecksum } from "./packet/checksum.ts";
export { PacketParseError, parsePacket } from "./packet/parse.ts";
export type { PacketLayerName, PacketParseErrorOptions, ParsePacketOptions } from "./packet/parse.ts";
export { testRun } from "./packet/test_run.ts";
export type {
  PacketTestRunOptions,
  PacketTestRunResult,
  SkbContext,
  TcVerdict,
  XdpContext,
  XdpVerdict,
} from "./packet/test_run.ts";
export { expectPacket, expectRewrite, PacketAssertionError } from "./packet/expect.ts";
export type {
  EthExpectation,
  ExpectPacketOptions,
  LayerExpectation,
  PacketDifference,
  PacketExpectation,
} from "./packet/expect.ts";
export { Ledger, netnsInode, openLedger, reconcile } from "./ledger.ts";
export type {
  AdoptedLink,
  LedgerEntry,
  LinkLedgerEntry,
  PinnableLink,
  ReconcileOptions,
  ReconcileResult,
  RecordOptions,
  TcLedgerEntry,
  TcPlace,
  XdpLedgerEntry,
  XdpPlace,
} from "./ledger.ts";
export { listAttachments } from "./attachments.ts";
export type { AttachmentTarget } from "./attachments.ts";
export { attachXdp, XdpLink } from "./xdp.ts";
export type { XdpMode, XdpOptions } from "./xdp.ts";
export { attachCgroup, CgroupLink, findCgroup2Mount, mountCgroup2 } from "./cgroup.ts";
export type { CgroupAttachType } from "./cgroup.ts";
export { attachSockmap, SockmapLink } from "./sockmap.ts";
export type { SockmapAttachType, SockmapOptions, SocketMap } from "./sockmap.ts";
