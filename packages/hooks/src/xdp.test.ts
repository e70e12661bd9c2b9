import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type AttachType, BpfProgram, ClosedError, NetlinkWriter, type ProgramType } from "@dp/core";
import { forbiddenSys, IFLA_XDP, setSys } from "@dp/core/internal";
import { detachXdpNetlink, parseXdpState } from "./_xdp_netlink.ts";
import { attachXdp, XdpLink, type XdpOptions } from "./xdp.ts";

beforeEach(() => {
  setSys(forbiddenSys());
});
afterEach(() => {
  setSys(undefined);
});

/** A program handle that never reaches the kernel: only its name and types are read. */
function fakeProgram(type: ProgramType, expectedAttachType?: AttachType): BpfProgram {
  return Object.assign(Object.create(BpfProgram.prototype) as BpfProgram, { name: "p", type, expectedAttachType });
}

function fakeLink(kind: "xdp" | "xdpNetlink", ifname = "eth0", ifindex = 2): XdpLink {
  return new XdpLink({
    kind,
    ifindex,
    ifname,
    mode: "skb",
    programId: 7,
    netns: undefined,
    link: undefined,
    ledger: undefined,
    entry: undefined,
  });
}

describe("attachXdp() refuses bad input before any system call", () => {
  const xdp = fakeProgram("xdp");

  test.each([
    ["a tc program", fakeProgram("schedCls"), /its type is schedCls, expected xdp/],
    ["an sk_msg program", fakeProgram("skMsg"), /its type is skMsg, expected xdp/],
    ["a devmap program", fakeProgram("xdp", "xdpDevmap"), /loaded for xdpDevmap/],
    ["something else", {} as BpfProgram, /expected a BpfProgram/],
  ])("attachXdp() throws a TypeError for %s", (_, program, message) => {
    expect(() => attachXdp("eth0", program)).toThrow(TypeError);
    expect(() => attachXdp("eth0", program)).toThrow(message);
  });

  test.each([
    ["", RangeError],
    ["a/b", RangeError],
    ["has space", RangeError],
    ["x".repeat(16), RangeError],
    [0, RangeError],
    [-1, RangeError],
    [1.5, RangeError],
    [null, TypeError],
  ] as const)("attachXdp() rejects the interface %j", (iface, type) => {
    expect(() => attachXdp(iface as string, xdp)).toThrow(type);
  });

  test.each([
    ["mode", { mode: "native" }, /Invalid XDP mode "native"/],
    ["via", { via: "tc" }, /Invalid XDP via "tc"/],
    ["replace (a number)", { replace: 1 }, /expected a boolean or an XdpLink/],
    ["replace (another kind of link)", { replace: { kind: "tc" } }, /\(a tc link\)/],
    ["netns", { netns: {} }, /expected a Netns/],
    ["ledger", { ledger: {} }, /expected a Ledger/],
    [
      "replace with a conflicting via",
      { replace: fakeLink("xdp"), via: "netlink" },
      /Cannot replace a bpf_link XDP attachment via netlink/,
    ],
    ["replace with a conflicting mode", { replace: fakeLink("xdpNetlink"), mode: "drv" }, /it runs in skb mode/],
  ])("attachXdp() throws a TypeError for a bad %s", (_, options, message) => {
    expect(() => attachXdp("eth0", xdp, options as XdpOptions)).toThrow(TypeError);
    expect(() => attachXdp("eth0", xdp, options as XdpOptions)).toThrow(message);
  });

  test("attachXdp() with replace names the interface the old link is on", () => {
    expect(() => attachXdp("eth1", xdp, { replace: fakeLink("xdpNetlink") })).toThrow(RangeError);
    expect(() => attachXdp(3, xdp, { replace: fakeLink("xdpNetlink") })).toThrow(/on "eth0" with one on 3/);
  });

  test("attachXdp() refuses to replace through a released handle", () => {
    const old = fakeLink("xdpNetlink");
    old.close();
    expect(() => attachXdp("eth0", xdp, { replace: old })).toThrow(ClosedError);
  });
});

describe("XdpLink", () => {
  test("pin() is a TypeError for a netlink attachment", () => {
    expect(() => fakeLink("xdpNetlink").pin("/sys/fs/bpf/x")).toThrow(
      /made through netlink and persists without a pin/,
    );
  });

  test("update() checks the program type first and refuses after close()", () => {
    const link = fakeLink("xdpNetlink");
    expect(() => link.update(fakeProgram("schedCls"))).toThrow(TypeError);
    link.close();
    expect(link.closed).toBe(true);
    expect(link.attached).toBe(false);
    expect(() => link.update(fakeProgram("xdp"))).toThrow(ClosedError);
    link.detach(); // a released handle detaches nothing, without a system call
  });

  test("detachXdpNetlink() rejects an unknown mode", () => {
    expect(() => detachXdpNetlink({ ifindex: 2, mode: "native" as "skb" })).toThrow(/Invalid XDP mode "native"/);
  });
});

describe("parseXdpState()", () => {
  function nested(fill: (w: NetlinkWriter) => void): Uint8Array {
    const w = new NetlinkWriter();
    fill(w);
    return w.bytes();
  }

  test("parseXdpState() reads the per-mode program ids", () => {
    const data = nested((w) =>
      w.attrU8(IFLA_XDP.ATTACHED, 4).attrU32(IFLA_XDP.SKB_PROG_ID, 7).attrU32(IFLA_XDP.HW_PROG_ID, 9),
    );
    expect(parseXdpState(data)).toEqual({ skb: 7, hw: 9 });
  });

  test("parseXdpState() reads the single program of kernels without per-mode ids", () => {
    expect(parseXdpState(nested((w) => w.attrU8(IFLA_XDP.ATTACHED, 1).attrU32(IFLA_XDP.PROG_ID, 5)))).toEqual({
      drv: 5,
    });
    expect(parseXdpState(nested((w) => w.attrU8(IFLA_XDP.ATTACHED, 0)))).toEqual({});
  });
});
