import { execFileSync } from "node:child_process";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type BpfProgram,
  loadProgram,
  NetlinkError,
  NotSupportedError,
  openPinnedLink,
  SyscallError,
  unpin,
} from "@dp/core";
import { asm } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { openLedger } from "./ledger.ts";
import { type NsPair, nsPair, pings as ping, waitUntil } from "./_test_net.ts";
import { detachXdpNetlink, xdpState } from "./_xdp_netlink.ts";
import { attachXdp } from "./xdp.ts";

beforeEach((t) => requireRoot(t));

const XDP_DROP = 1;
const XDP_PASS = 2;
const COUNT_OBJECT = new URL("../../../bpf/build/testdata/xdp_count.o", import.meta.url).pathname;

function xdpProgram(name: string, verdict: number): BpfProgram {
  return loadProgram({
    name,
    type: "xdp",
    license: "GPL",
    instructions: asm.program(asm.movImm(0, verdict), asm.exit()),
  });
}

interface IpXdp {
  readonly mode: number;
  readonly prog?: { readonly id: number; readonly name: string };
  readonly attached?: readonly { readonly mode: number; readonly prog: { readonly id: number } }[];
}

/** `ip -json link show`'s view of XDP on an interface (mode 1 = drv, 2 = skb, 3 = hw). */
function ipXdp(ns: TestNetns, dev: string): IpXdp | undefined {
  const [link] = JSON.parse(ns.exec("ip", ["-json", "link", "show", "dev", dev])) as { xdp?: IpXdp }[];
  return link?.xdp;
}

function pings(from: TestNetns, address: string): boolean {
  return ping(from, address, 1);
}

function pair(): NsPair {
  return nsPair("xdp");
}

describe("attachXdp()", () => {
  test.each(["link", "netlink"] as const)(
    "attachXdp() via %s in skb mode: drop blocks ping, update to pass lets it through, ip shows the program",
    (via) => {
      using net = pair();
      const dev = net.veth.b.name;
      using drop = xdpProgram("xdp_drop", XDP_DROP);
      using pass = xdpProgram("xdp_pass", XDP_PASS);
      expect(pings(net.a, "10.0.0.2")).toBe(true);

      using link = attachXdp(dev, drop, { mode: "skb", via, netns: net.b.ns });
      expect(link.kind).toBe(via === "link" ? "xdp" : "xdpNetlink");
      expect(link.mode).toBe("skb");
      expect(link.ifindex).toBe(net.veth.b.index);
      expect(link.programId).toBe(drop.info().id);
      expect(ipXdp(net.b, dev)).toMatchObject({ mode: 2, prog: { id: drop.info().id, name: "xdp_drop" } });
      const [shown] = JSON.parse(net.b.exec("bpftool", ["-j", "net", "show", "dev", dev])) as { xdp: unknown[] }[];
      expect(shown?.xdp).toEqual([expect.objectContaining({ devname: dev, mode: "generic", id: drop.info().id })]);
      expect(pings(net.a, "10.0.0.2")).toBe(false);

      link.update(pass);
      expect(link.programId).toBe(pass.info().id);
      expect(ipXdp(net.b, dev)).toMatchObject({ mode: 2, prog: { id: pass.info().id } });
      expect(pings(net.a, "10.0.0.2")).toBe(true);

      link.detach();
      expect(link.attached).toBe(false);
      expect(ipXdp(net.b, dev)).toBeUndefined();
      link.detach(); // idempotent
    },
  );

  test("attachXdp() via auto makes a link; mode auto runs natively on veth", () => {
    using net = pair();
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    using link = attachXdp(net.veth.b.index, pass, { netns: net.b.ns });
    expect(link.kind).toBe("xdp");
    expect(link.mode).toBe("drv");
    expect(link.ifname).toBe(net.veth.b.name);
    expect(ipXdp(net.b, net.veth.b.name)).toMatchObject({ mode: 1, prog: { id: pass.info().id } });
    const links = JSON.parse(
      execFileSync("bpftool", ["-j", "link", "show", "id", String(link.linkId)], { encoding: "utf8" }),
    ) as {
      type: string;
      prog_id: number;
    };
    expect(links).toMatchObject({ type: "xdp", prog_id: pass.info().id });
    expect(pings(net.a, "10.0.0.2")).toBe(true);
  });

  test.each(["link", "netlink"] as const)(
    "attachXdp() with replace: link swaps the %s attachment's program and takes it over",
    (via) => {
      using net = pair();
      const dev = net.veth.b.name;
      using drop = xdpProgram("xdp_drop", XDP_DROP);
      using pass = xdpProgram("xdp_pass", XDP_PASS);
      using first = attachXdp(dev, drop, { mode: "skb", via, netns: net.b.ns });
      expect(pings(net.a, "10.0.0.2")).toBe(false);
      const linkId = first.linkId;
      using second = attachXdp(dev, pass, { replace: first, netns: net.b.ns });
      expect(second.kind).toBe(first.kind);
      expect(second.linkId).toBe(linkId);
      expect(first.attached).toBe(false);
      expect(second.attached).toBe(true);
      expect(ipXdp(net.b, dev)).toMatchObject({ mode: 2, prog: { id: pass.info().id } });
      expect(pings(net.a, "10.0.0.2")).toBe(true);
      first.detach(); // inert: the attachment belongs to `second`
      expect(ipXdp(net.b, dev)?.prog?.id).toBe(pass.info().id);
      second.detach();
      expect(ipXdp(net.b, dev)).toBeUndefined();
    },
  );

  test("attachXdp() refuses to replace a program `ip` attached unless replace: true, then removes only its own", () => {
    using net = pair();
    const dev = net.veth.b.name;
    net.b.exec("ip", ["link", "set", "dev", dev, "xdpgeneric", "obj", COUNT_OBJECT, "sec", "xdp"]);
    const theirs = ipXdp(net.b, dev)?.prog?.id ?? 0;
    expect(theirs).toBeGreaterThan(0);
    using drop = xdpProgram("xdp_drop", XDP_DROP);

    const viaLink = (): unknown => attachXdp(dev, drop, { mode: "skb", netns: net.b.ns });
    expect(viaLink).toThrow(SyscallError);
    expect(viaLink).toThrow(new RegExp(`program ${theirs} in skb mode is attached.*EBUSY`));
    const viaNetlink = (): unknown => attachXdp(dev, drop, { mode: "skb", via: "netlink", netns: net.b.ns });
    expect(viaNetlink).toThrow(NetlinkError);
    expect(viaNetlink).toThrow(/EBUSY.*XDP program already attached/);
    expect(ipXdp(net.b, dev)?.prog?.id).toBe(theirs);

    using link = attachXdp(dev, drop, { replace: true, netns: net.b.ns });
    expect(link.kind).toBe("xdpNetlink");
    expect(link.mode).toBe("skb");
    expect(ipXdp(net.b, dev)?.prog?.id).toBe(drop.info().id);
    expect(pings(net.a, "10.0.0.2")).toBe(false);
    link.detach();
    expect(ipXdp(net.b, dev)).toBeUndefined();
  });

  test("attachXdp() cannot replace a program held by a bpf_link, even with replace: true", () => {
    using net = pair();
    const dev = net.veth.b.name;
    using drop = xdpProgram("xdp_drop", XDP_DROP);
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    using held = attachXdp(dev, drop, { mode: "skb", via: "link", netns: net.b.ns });
    expect(() => attachXdp(dev, pass, { mode: "skb", via: "link", netns: net.b.ns })).toThrow(/EBUSY/);
    expect(() => attachXdp(dev, pass, { replace: true, netns: net.b.ns })).toThrow(
      /bpf_link.*EBUSY.*Can't replace active BPF XDP link/,
    );
    expect(ipXdp(net.b, dev)?.prog?.id).toBe(held.programId);
  });

  test("attachXdp() in drv mode fails when skb mode is taken (EEXIST, naming the program)", () => {
    using net = pair();
    const dev = net.veth.b.name;
    using drop = xdpProgram("xdp_drop", XDP_DROP);
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    using held = attachXdp(dev, drop, { mode: "skb", via: "netlink", netns: net.b.ns });
    expect(() => attachXdp(dev, pass, { mode: "drv", via: "netlink", netns: net.b.ns })).toThrow(
      new RegExp(
        `program ${held.programId} in skb mode is attached.*EEXIST.*Native and generic XDP can't be active at the same time`,
      ),
    );
  });

  test.each(["link", "netlink"] as const)(
    "attachXdp() in drv mode on a device without native XDP fails with EOPNOTSUPP via %s",
    (via) => {
      using ns = netns({ label: "xdplo" });
      using pass = xdpProgram("xdp_pass", XDP_PASS);
      let err: unknown;
      try {
        attachXdp("lo", pass, { mode: "drv", via, netns: ns.ns }).detach();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(via === "netlink" ? NetlinkError : SyscallError);
      expect((err as SyscallError).errno).toBe(95); // EOPNOTSUPP
      expect((err as Error).message).toMatch(/Cannot attach XDP program "xdp_pass" to "lo" in drv mode/);
      expect((err as Error).message).toMatch(
        via === "netlink"
          ? /Underlying driver does not support XDP in native mode/
          : /has no native XDP: use mode "skb"/,
      );
    },
  );

  test.each(["link", "netlink"] as const)("attachXdp() in hw mode is not supported on veth (via %s)", (via) => {
    using net = pair();
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    expect(() => attachXdp(net.veth.b.name, pass, { mode: "hw", via, netns: net.b.ns })).toThrow(NotSupportedError);
    expect(() => attachXdp(net.veth.b.name, pass, { mode: "hw", via, netns: net.b.ns })).toThrow(
      /XDP offload \(hw mode\) on "vb/,
    );
    expect(ipXdp(net.b, net.veth.b.name)).toBeUndefined();
  });

  test("attachXdp() names an unknown interface and its namespace", () => {
    using ns = netns({ label: "xdpno" });
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    expect(() => attachXdp("nope0", pass, { netns: ns.ns })).toThrow(
      new RegExp(`no interface "nope0" in network namespace "${ns.name}": ENODEV`),
    );
    expect(() => attachXdp(4242, pass, { netns: ns.ns })).toThrow(/no interface 4242.*ENODEV/);
  });

  test("[Symbol.dispose] detaches; a pinned link survives it until unpinned", () => {
    using net = pair();
    const dev = net.veth.b.name;
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    {
      using link = attachXdp(dev, pass, { mode: "skb", netns: net.b.ns });
      expect(link.attached).toBe(true);
    }
    expect(ipXdp(net.b, dev)).toBeUndefined();

    using dir = bpffsDir();
    const path = dir.join("xdp_link");
    {
      using link = attachXdp(dev, pass, { mode: "skb", netns: net.b.ns });
      link.pin(path);
      expect(link.pinned).toBe(path);
    }
    expect(ipXdp(net.b, dev)?.prog?.id).toBe(pass.info().id);
    {
      using again = openPinnedLink(path);
      again.detach();
    }
    unpin(path);
    // The kernel releases a link whose last reference was the pin from a work queue.
    waitUntil(() => ipXdp(net.b, dev) === undefined);
    expect(ipXdp(net.b, dev)).toBeUndefined();
  });

  test("a netlink attachment stays after close() and is recorded in the ledger until detach()", () => {
    using net = pair();
    const dev = net.veth.b.name;
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    using dir = bpffsDir();
    const ledger = openLedger(dir.join("ledger"));
    try {
      const link = attachXdp(dev, pass, { mode: "skb", via: "netlink", netns: net.b.ns, ledger });
      expect(link.ledgerEntry).toMatchObject({
        kind: "xdpNetlink",
        ifindex: net.veth.b.index,
        ifname: dev,
        mode: "skb",
      });
      expect(() => link.pin(dir.join("nope"))).toThrow(TypeError);
      link.close();
      expect(link.attached).toBe(false);
      expect(ipXdp(net.b, dev)?.prog?.id).toBe(pass.info().id);
      expect(detachXdpNetlink({ ifindex: net.veth.b.index, mode: "skb", netns: net.b.ns }, pass)).toBe(true);
      expect(ipXdp(net.b, dev)).toBeUndefined();

      using again = attachXdp(dev, pass, { mode: "skb", via: "netlink", netns: net.b.ns, ledger });
      expect(ledger.entries()).toEqual([
        expect.objectContaining({ kind: "xdpNetlink", ifindex: net.veth.b.index, programId: pass.info().id }),
      ]);
      using drop = xdpProgram("xdp_drop", XDP_DROP);
      again.update(drop);
      expect(ledger.entries()).toEqual([expect.objectContaining({ kind: "xdpNetlink", programId: drop.info().id })]);
      again.detach();
      expect(again.ledgerEntry).toBeUndefined();
      expect(ledger.entries()).toEqual([]);
    } finally {
      ledger.close();
    }
  });

  test("xdpState() reads the programs by mode; detachXdpNetlink() removes only the expected program", () => {
    using net = pair();
    const dev = net.veth.b.name;
    const ifindex = net.veth.b.index;
    using drop = xdpProgram("xdp_drop", XDP_DROP);
    using pass = xdpProgram("xdp_pass", XDP_PASS);
    expect(xdpState(ifindex, net.b.ns)).toEqual({});
    const link = attachXdp(dev, drop, { mode: "skb", via: "netlink", netns: net.b.ns });
    link.close();
    expect(xdpState(ifindex, net.b.ns)).toEqual({ skb: drop.info().id });
    expect(detachXdpNetlink({ ifindex, mode: "skb", netns: net.b.ns }, pass)).toBe(false);
    expect(detachXdpNetlink({ ifindex, mode: "skb", netns: net.b.ns }, pass.info().id)).toBe(false);
    expect(detachXdpNetlink({ ifindex, mode: "skb", netns: net.b.ns }, drop.info().id)).toBe(true);
    expect(detachXdpNetlink({ ifindex, mode: "skb", netns: net.b.ns })).toBe(false);
    expect(xdpState(ifindex, net.b.ns)).toEqual({});
  });
});
