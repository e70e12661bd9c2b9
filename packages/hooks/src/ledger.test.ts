import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { BpfMap, BpfProgram } from "@dp/core";
import { forbiddenSys, setSys } from "@dp/core/internal";
import { listAttachments } from "./attachments.ts";
import { Ledger, type LedgerEntry, openLedger, reconcile, type TcPlace } from "./ledger.ts";
import type { Link } from "./link.ts";

beforeEach(() => {
  setSys(forbiddenSys());
});
afterEach(() => {
  setSys(undefined);
});

/** A ledger whose index never reaches the kernel: only input checks run. */
function fakeLedger(): Ledger {
  return new Ledger("/sys/fs/bpf/app", Object.create(BpfMap.prototype) as BpfMap);
}

function fakeProgram(): BpfProgram {
  return Object.assign(Object.create(BpfProgram.prototype) as BpfProgram, { name: "p", type: "schedCls" });
}

const PLACE: TcPlace = {
  netnsInode: 4026531833,
  ifindex: 2,
  ifname: "eth0",
  direction: "ingress",
  priority: 1,
  handle: 1,
};

describe("bad input is refused before any system call", () => {
  test.each([
    ["a relative path", "sys/fs/bpf/app"],
    ["the root", "/"],
    ["a number", 7 as unknown as string],
  ])("openLedger() throws a TypeError for %s", (_, dir) => {
    expect(() => openLedger(dir)).toThrow(TypeError);
  });

  test.each([
    ["priority 0", { ...PLACE, priority: 0 }, RangeError],
    ["priority 65536", { ...PLACE, priority: 0x10000 }, RangeError],
    ["handle 0", { ...PLACE, handle: 0 }, RangeError],
    ["a fractional ifindex", { ...PLACE, ifindex: 1.5 }, RangeError],
    ["no namespace inode", { ...PLACE, netnsInode: 0 }, RangeError],
    ["an unknown direction", { ...PLACE, direction: "in" as "ingress" }, TypeError],
    ["a 16-byte interface name", { ...PLACE, ifname: "a".repeat(16) }, TypeError],
  ])("recordTc() throws for %s", (_, place, kind) => {
    expect(() => fakeLedger().recordTc(place, fakeProgram())).toThrow(kind);
  });

  test("recordXdp() throws a TypeError for the auto mode: the entry needs the mode the kernel chose", () => {
    const { direction: _d, priority: _p, handle: _h, ...common } = PLACE;
    expect(() => fakeLedger().recordXdp({ ...common, mode: "auto" as "skb" }, fakeProgram())).toThrow(
      /mode must be "skb", "drv" or "hw"/,
    );
  });

  test.each([
    ["an empty name", ""],
    ["a dot", "a.b"],
    ["a slash", "a/b"],
    ["60 characters", "x".repeat(60)],
  ])("recordLink() throws a RangeError for %s", (_, name) => {
    expect(() => fakeLedger().recordLink(name, { pin() {} } as never)).toThrow(RangeError);
  });

  test("recordLink() refuses a netlink attachment, which is not a bpf_link", () => {
    const tc = { kind: "tc", pin() {} } as unknown as Link & { pin(path: string): void };
    expect(() => fakeLedger().recordLink("tc", tc)).toThrow(/not a bpf_link/);
    expect(() => fakeLedger().recordLink("x", {} as never)).toThrow(/not a link that can be pinned/);
  });

  test("forget() refuses an entry of another ledger", () => {
    const entry: LedgerEntry = { kind: "link", name: "x", path: "/sys/fs/bpf/other/link-x" };
    expect(() => fakeLedger().forget(entry)).toThrow(/not an entry of ledger "\/sys\/fs\/bpf\/app"/);
  });

  test("reconcile() throws a TypeError when adopt is not a function", () => {
    expect(() => reconcile(fakeLedger(), { adopt: true as never })).toThrow(TypeError);
  });

  test.each([
    ["null", null],
    ["an empty object", {}],
    ["a relative cgroup path", { cgroup: "sys/fs/cgroup" }],
    ["an interface that is neither name nor index", { iface: true }],
  ])("listAttachments() throws a TypeError for %s", (_, target) => {
    expect(() => listAttachments(target as never)).toThrow(TypeError);
  });

  test("listAttachments() throws a RangeError for an invalid interface name", () => {
    expect(() => listAttachments({ iface: "a b" })).toThrow(RangeError);
    expect(() => listAttachments({ iface: 0 })).toThrow(RangeError);
  });
});
