import { beforeEach, describe, expect, test } from "vitest";
import {
  attachProgram,
  type BpfProgram,
  createLink,
  detachProgram,
  loadProgram,
  SyscallError,
  XDP_FLAGS,
} from "@dp/core";
import { asm } from "@dp/core/internal";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { listAttachments } from "./attachments.ts";
import { testCgroup } from "./_test_cgroup.ts";
import type { Attachment } from "./link.ts";

beforeEach((t) => requireRoot(t));

const TC_OBJECT = new URL("../../../bpf/build/testdata/hooks_tc.o", import.meta.url).pathname;
const XDP_OBJECT = new URL("../../../bpf/build/testdata/xdp_count.o", import.meta.url).pathname;

function program(name: string, type: "schedCls" | "xdp" | "sockOps" | "cgroupSkb", r0: number): BpfProgram {
  return loadProgram({ name, type, license: "GPL", instructions: asm.program(asm.movImm(0, r0), asm.exit()) });
}

function vethIn(ns: TestNetns, name: string): number {
  ns.exec("ip", ["link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  const [link] = JSON.parse(ns.exec("ip", ["-json", "link", "show", "dev", name])) as { ifindex: number }[];
  return link?.ifindex ?? 0;
}

/** `bpftool net show -j` for one device: the program ids it lists on tc and XDP. */
function bpftoolIds(ns: TestNetns, dev: string): number[] {
  const [net] = JSON.parse(ns.exec("bpftool", ["net", "show", "dev", dev, "-j"])) as {
    xdp: { id: number }[];
    tc: { id: number }[];
  }[];
  return [...(net?.xdp ?? []), ...(net?.tc ?? [])].map((p) => p.id).sort((a, b) => a - b);
}

function sorted(list: readonly Attachment[]): number[] {
  return list.map((a) => a.programId).sort((a, b) => a - b);
}

describe("listAttachments() on an interface", () => {
  test("listAttachments() lists filters added by tc and XDP set by ip, with program names", () => {
    using ns = netns({ label: "attach" });
    vethIn(ns, "v0");
    ns.exec("tc", ["qdisc", "add", "dev", "v0", "clsact"]);
    ns.exec("tc", [
      "filter",
      "add",
      "dev",
      "v0",
      "ingress",
      "pref",
      "5",
      "handle",
      "3",
      "bpf",
      "da",
      "obj",
      TC_OBJECT,
      "sec",
      "tc",
    ]);
    ns.exec("tc", ["filter", "add", "dev", "v0", "egress", "bpf", "da", "obj", TC_OBJECT, "sec", "classifier"]);
    ns.exec("ip", ["link", "set", "dev", "v0", "xdpgeneric", "obj", XDP_OBJECT, "sec", "xdp"]);

    const list = listAttachments({ iface: "v0", netns: ns.ns });
    expect(list).toMatchObject([
      { hook: "xdp", kind: "xdpNetlink", programName: "count_packets", xdpMode: "skb" },
      {
        hook: "tcIngress",
        kind: "tc",
        programName: "tc_count",
        filter: { priority: 5, handle: 3, name: "hooks_tc.o:[tc]" },
      },
      { hook: "tcEgress", kind: "tc", programName: "tc_drop", filter: { name: "hooks_tc.o:[classifier]" } },
    ]);
    expect(list).toHaveLength(3);
    expect(list.every((a) => a.linkId === undefined)).toBe(true);
    expect(sorted(list)).toEqual(bpftoolIds(ns, "v0"));
  });

  test("listAttachments() lists tcx and XDP links with their link ids, in the order packets meet them", () => {
    using ns = netns({ label: "attach" });
    const ifindex = vethIn(ns, "v0");
    using first = program("tcx_first", "schedCls", -1);
    using second = program("tcx_second", "schedCls", -1);
    using xdp = program("xdp_link", "xdp", 2);
    using l1 = ns.run(() => createLink(second, { ifindex }, "tcxIngress"));
    using l2 = ns.run(() => createLink(first, { ifindex }, "tcxIngress", { anchor: "first" }));
    using l3 = ns.run(() => createLink(xdp, { ifindex }, "xdp", { flags: XDP_FLAGS.skbMode }));
    ns.exec("tc", ["qdisc", "add", "dev", "v0", "clsact"]);
    ns.exec("tc", ["filter", "add", "dev", "v0", "ingress", "bpf", "da", "obj", TC_OBJECT, "sec", "tc"]);

    const list = listAttachments({ iface: ifindex, netns: ns.ns });
    expect(list).toEqual([
      { hook: "xdp", kind: "xdp", programId: xdp.info().id, programName: "xdp_link", linkId: l3.id, xdpMode: "skb" },
      { hook: "tcIngress", kind: "tcx", programId: first.info().id, programName: "tcx_first", linkId: l2.id },
      { hook: "tcIngress", kind: "tcx", programId: second.info().id, programName: "tcx_second", linkId: l1.id },
      expect.objectContaining({ hook: "tcIngress", kind: "tc", programName: "tc_count" }),
    ]);
  });

  test("listAttachments() is empty for an interface with nothing attached", () => {
    using ns = netns({ label: "attach" });
    expect(listAttachments({ iface: "lo", netns: ns.ns })).toEqual([]);
  });

  test("listAttachments() names a missing interface and its namespace", () => {
    using ns = netns({ label: "attach" });
    let err: unknown;
    try {
      listAttachments({ iface: "nosuch0", netns: ns.ns });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe("ENODEV");
    expect((err as SyscallError).message).toContain('"nosuch0"');
    expect((err as SyscallError).message).toContain(ns.name);
  });
});

describe("listAttachments() on a cgroup", () => {
  test("listAttachments() lists link and legacy attachments of a cgroup, hook by hook", () => {
    using cgroup = testCgroup();
    using sockops = program("cg_sockops", "sockOps", 1);
    using skb = program("cg_skb", "cgroupSkb", 1);
    {
      using link = createLink(sockops, { path: cgroup.path }, "cgroupSockOps");
      attachProgram({ path: cgroup.path }, skb, "cgroupInetEgress");
      try {
        expect(listAttachments({ cgroup: cgroup.path })).toEqual([
          { hook: "cgroupInetEgress", kind: "cgroup", programId: skb.info().id, programName: "cg_skb" },
          {
            hook: "cgroupSockOps",
            kind: "cgroup",
            programId: sockops.info().id,
            programName: "cg_sockops",
            linkId: link.id,
          },
        ]);
      } finally {
        detachProgram({ path: cgroup.path }, skb, "cgroupInetEgress");
      }
    }
    expect(listAttachments({ cgroup: cgroup.path })).toEqual([]);
  });

  test("listAttachments() refuses a directory that is not a cgroup", () => {
    expect(() => listAttachments({ cgroup: "/tmp" })).toThrow(/not a cgroup v2 directory/);
    expect(() => listAttachments({ cgroup: "/nonexistent-dp-cgroup" })).toThrow(/ENOENT/);
  });
});
