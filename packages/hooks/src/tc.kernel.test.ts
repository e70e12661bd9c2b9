import { execFileSync } from "node:child_process";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type BpfProgram,
  type Collection,
  hasTcx,
  loadCollection,
  loadProgram,
  queryPrograms,
  readCollectionSpec,
  SyscallError,
  unpin,
} from "@dp/core";
import { asm, forbiddenSys, setSys } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot, type SkipContext, type TestNetns } from "@dp/core/testing";
import { openLedger } from "./ledger.ts";
import { type NsPair, nsPair, pings as ping, waitUntil } from "./_test_net.ts";
import { attachTc, deleteTcFilter, findTcFilter, listTcFilters, TcLink } from "./tc.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../bpf/build/testdata/hooks_tc.o", import.meta.url).pathname;
/** tc_counters slots (bpf/testdata/hooks_tc.c). */
const SEEN = 0;
const ECHO_REQUESTS = 1;
const ECHO_REPLIES = 2;
const DROPPED = 3;

const MODES = ["tcx", "netlink"] as const;
type Mode = (typeof MODES)[number];

function requireMode(t: SkipContext, mode: Mode): void {
  if (mode === "tcx" && !hasTcx()) t.skip("the kernel has no tcx (Linux 6.6+)");
}

/** hooks_tc.o loaded once: tc_count, tc_drop and their own counters. */
function load(): Collection {
  return loadCollection(readCollectionSpec(OBJECT));
}

function counter(c: Collection, slot: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  const v = c.map("tc_counters").get(key);
  return v === undefined ? 0n : new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
}

function pings(from: TestNetns, address: string, count = 3): boolean {
  return ping(from, address, count);
}

function pair(): NsPair {
  return nsPair("tc");
}

interface TcShow {
  readonly kind: string;
  readonly pref: number;
  readonly protocol?: string;
  readonly options?: {
    readonly handle?: string;
    readonly bpf_name?: string;
    readonly "direct-action"?: boolean;
    readonly prog?: { readonly id: number; readonly name: string };
  };
}

/** `tc -json filter show dev X DIRECTION`, the filters only (not the per-priority headers). */
function tcShow(ns: TestNetns, dev: string, direction: "ingress" | "egress"): TcShow[] {
  return (JSON.parse(ns.exec("tc", ["-json", "filter", "show", "dev", dev, direction])) as TcShow[]).filter(
    (f) => f.options?.handle !== undefined,
  );
}

function qdiscs(ns: TestNetns, dev: string): string[] {
  return (JSON.parse(ns.exec("tc", ["-json", "qdisc", "show", "dev", dev])) as { kind: string }[]).map((q) => q.kind);
}

/** Attached program ids in run order, as the kernel lists them. */
function order(ns: TestNetns, mode: Mode, ifindex: number, direction: "ingress" | "egress"): number[] {
  if (mode === "tcx") {
    const attachType = direction === "ingress" ? "tcxIngress" : "tcxEgress";
    return ns.run(() => queryPrograms({ ifindex }, attachType)).programs.map((p) => p.programId);
  }
  return listTcFilters(ifindex, direction, ns.ns).map((f) => f.programId);
}

function id(program: BpfProgram): number {
  return program.info().id;
}

describe.each(MODES)("attachTc() in %s mode", (mode) => {
  beforeEach((t) => requireMode(t, mode));

  test("attachTc() counts ping requests on ingress and replies on egress, never the other way round", () => {
    using p = pair();
    using inbound = load();
    using outbound = load();
    using ingress = attachTc(p.veth.b.name, inbound.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode });
    using egress = attachTc(p.veth.b.index, outbound.program("tc_count"), { direction: "egress", netns: p.b.ns, mode });
    expect(ingress.kind).toBe(mode === "tcx" ? "tcx" : "tc");
    expect(egress.ifname).toBe(p.veth.b.name);
    expect(pings(p.a, "10.0.0.2", 3)).toBe(true);
    expect(counter(inbound, ECHO_REQUESTS)).toBeGreaterThanOrEqual(3n);
    expect(counter(inbound, SEEN)).toBeGreaterThanOrEqual(counter(inbound, ECHO_REQUESTS));
    expect(counter(inbound, ECHO_REPLIES)).toBe(0n);
    expect(counter(outbound, ECHO_REPLIES)).toBeGreaterThanOrEqual(3n);
    expect(counter(outbound, ECHO_REQUESTS)).toBe(0n);
  });

  test("attachTc() with a drop program blocks ping until it is detached", () => {
    using p = pair();
    using c = load();
    expect(pings(p.a, "10.0.0.2", 1)).toBe(true);
    const link = attachTc(p.veth.b.name, c.program("tc_drop"), { direction: "ingress", netns: p.b.ns, mode });
    expect(pings(p.a, "10.0.0.2", 2)).toBe(false);
    expect(counter(c, DROPPED)).toBeGreaterThanOrEqual(2n);
    link.detach();
    expect(link.attached).toBe(false);
    expect(pings(p.a, "10.0.0.2", 1)).toBe(true);
  });

  test("attachTc() with before runs the new program first: a counter before a drop sees the requests", () => {
    using p = pair();
    using dropper = load();
    using counting = load();
    const drop = dropper.program("tc_drop");
    const count = counting.program("tc_count");
    using first = attachTc(p.veth.b.name, drop, { direction: "ingress", netns: p.b.ns, mode });
    using second = attachTc(p.veth.b.name, count, { direction: "ingress", netns: p.b.ns, mode, before: drop });
    expect(order(p.b, mode, p.veth.b.index, "ingress")).toEqual([id(count), id(drop)]);
    expect(pings(p.a, "10.0.0.2", 2)).toBe(false);
    expect(counter(counting, ECHO_REQUESTS)).toBeGreaterThanOrEqual(2n);
    if (mode === "netlink") expect(second.priority).toBeLessThan(first.priority!);
  });

  test("attachTc() with after runs the new program last: a counter after a drop sees nothing", () => {
    using p = pair();
    using dropper = load();
    using counting = load();
    const drop = dropper.program("tc_drop");
    const count = counting.program("tc_count");
    // A second link to order against, so that "after" lands between two attachments.
    using tail = load();
    using first = attachTc(p.veth.b.name, drop, {
      direction: "ingress",
      netns: p.b.ns,
      mode,
      ...(mode === "netlink" ? { priority: 10 } : {}),
    });
    using last = attachTc(p.veth.b.name, tail.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode });
    using middle = attachTc(p.veth.b.name, count, { direction: "ingress", netns: p.b.ns, mode, after: first });
    expect(order(p.b, mode, p.veth.b.index, "ingress")).toEqual([id(drop), id(count), id(tail.program("tc_count"))]);
    expect(pings(p.a, "10.0.0.2", 2)).toBe(false);
    expect(counter(counting, ECHO_REQUESTS)).toBe(0n);
    expect(counter(dropper, DROPPED)).toBeGreaterThanOrEqual(2n);
    if (mode === "netlink") {
      expect(first.priority).toBe(10);
      expect(middle.priority).toBeGreaterThan(10);
      expect(middle.priority).toBeLessThan(last.priority!);
    }
    expect(last.attached).toBe(true);
  });

  test("attachTc() with replace swaps the program in place and update() swaps it back", () => {
    using p = pair();
    using c = load();
    const count = c.program("tc_count");
    const drop = c.program("tc_drop");
    const old = attachTc(p.veth.b.name, count, { direction: "ingress", netns: p.b.ns, mode });
    const place = { priority: old.priority, handle: old.handle, linkId: old.linkId };
    using next = attachTc(p.veth.b.name, drop, { direction: "ingress", netns: p.b.ns, replace: old });
    expect(old.attached).toBe(false);
    old.detach(); // owns nothing any more: a no-op
    expect(next.kind).toBe(old.kind);
    expect({ priority: next.priority, handle: next.handle, linkId: next.linkId }).toEqual(place);
    expect(next.programId).toBe(id(drop));
    expect(order(p.b, mode, p.veth.b.index, "ingress")).toEqual([id(drop)]);
    expect(pings(p.a, "10.0.0.2", 2)).toBe(false);
    next.update(count);
    expect(next.programId).toBe(id(count));
    expect(order(p.b, mode, p.veth.b.index, "ingress")).toEqual([id(count)]);
    expect(pings(p.a, "10.0.0.2", 1)).toBe(true);
  });

  test("TcLink.detach() leaves the other attachments alone and is idempotent", () => {
    using p = pair();
    using c = load();
    using other = load();
    const mine = attachTc(p.veth.b.name, c.program("tc_count"), { direction: "egress", netns: p.b.ns, mode });
    using theirs = attachTc(p.veth.b.name, other.program("tc_count"), { direction: "egress", netns: p.b.ns, mode });
    mine.detach();
    mine.detach();
    expect(mine.attached).toBe(false);
    expect(theirs.attached).toBe(true);
    expect(order(p.b, mode, p.veth.b.index, "egress")).toEqual([id(other.program("tc_count"))]);
  });

  test("attachTc() of a program already on the hook fails with EEXIST", () => {
    using p = pair();
    using c = load();
    using once = attachTc(p.veth.b.name, c.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode });
    let err: unknown;
    try {
      attachTc(p.veth.b.name, c.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe("EEXIST");
    expect((err as SyscallError).message).toContain(`"${p.veth.b.name}" ingress`);
    expect(once.attached).toBe(true);
    expect(order(p.b, mode, p.veth.b.index, "ingress")).toEqual([id(c.program("tc_count"))]);
  });

  test("bpftool lists what attachTc() attached (`net show` for filters, `link show` for tcx links)", () => {
    using p = pair();
    using c = load();
    using link = attachTc(p.veth.b.name, c.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode });
    if (mode === "tcx") {
      // bpftool 7.1 (Debian 12) predates tcx in `net show`; its link listing has it.
      const shown = JSON.parse(
        execFileSync("bpftool", ["-j", "link", "show", "id", String(link.linkId)], { encoding: "utf8" }),
      ) as {
        id: number;
        prog_id: number;
      };
      expect(shown).toMatchObject({ id: link.linkId, prog_id: link.programId });
      return;
    }
    const [net] = JSON.parse(p.b.exec("bpftool", ["-j", "net", "show", "dev", p.veth.b.name])) as {
      tc: { devname: string; kind: string; id: number; name: string }[];
    }[];
    expect(net!.tc).toContainEqual(
      expect.objectContaining({ devname: p.veth.b.name, id: link.programId, kind: "clsact/ingress", name: "tc_count" }),
    );
  });

  test("attachTc() names an unknown interface", () => {
    using ns = netns();
    using c = load();
    expect(() => attachTc("nosuch0", c.program("tc_count"), { direction: "ingress", netns: ns.ns, mode })).toThrow(
      /no interface "nosuch0" in network namespace "dpt-/,
    );
    expect(() => attachTc(4242, c.program("tc_count"), { direction: "ingress", netns: ns.ns, mode })).toThrow(
      /no interface with index 4242/,
    );
  });
});

describe("attachTc() in netlink mode", () => {
  test("attachTc() adds a named direct-action filter that `tc filter show` prints, with an explicit priority and handle", () => {
    using p = pair();
    using c = load();
    using link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "egress",
      netns: p.b.ns,
      mode: "netlink",
      priority: 7,
      handle: 9,
      name: "dp-test",
    });
    expect(link.kind).toBe("tc");
    expect([link.priority, link.handle, link.filterName]).toEqual([7, 9, "dp-test"]);
    expect(tcShow(p.b, p.veth.b.name, "egress")).toEqual([
      expect.objectContaining({
        kind: "bpf",
        pref: 7,
        protocol: "all",
        options: expect.objectContaining({
          handle: "0x9",
          bpf_name: "dp-test",
          "direct-action": true,
          prog: expect.objectContaining({ id: link.programId, name: "tc_count" }),
        }),
      }),
    ]);
  });

  test("attachTc() names the filter after the program and appends it after other filters", () => {
    using p = pair();
    using c = load();
    using other = load();
    p.b.exec("tc", ["qdisc", "add", "dev", p.veth.b.name, "clsact"]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "20",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    using link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    expect([link.priority, link.handle, link.filterName]).toEqual([20 + 256, 1, "tc_count"]);
    using between = attachTc(p.veth.b.name, other.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
      before: link,
    });
    expect(between.priority).toBe(148);
  });

  test("listTcFilters() lists filters added by `tc filter add ... bpf`, with program ids bpftool agrees on", () => {
    using p = pair();
    p.b.exec("tc", ["qdisc", "add", "dev", p.veth.b.name, "clsact"]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "3",
      "handle",
      "5",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "4",
      "handle",
      "1",
      "bpf",
      "obj",
      OBJECT,
      "sec",
      "classifier",
    ]);
    const filters = listTcFilters(p.veth.b.index, "ingress", p.b.ns);
    const shown = tcShow(p.b, p.veth.b.name, "ingress");
    expect(filters).toEqual([
      expect.objectContaining({
        priority: 3,
        handle: 5,
        kind: "bpf",
        name: "hooks_tc.o:[tc]",
        directAction: true,
        protocol: 3,
      }),
      expect.objectContaining({
        priority: 4,
        handle: 1,
        kind: "bpf",
        name: "hooks_tc.o:[classifier]",
        directAction: false,
      }),
    ]);
    expect(filters.map((f) => f.programId)).toEqual(shown.map((f) => f.options?.prog?.id));
    const tags = JSON.parse(
      execFileSync("bpftool", ["-j", "prog", "show", "id", String(filters[0]!.programId)], { encoding: "utf8" }),
    ) as {
      tag: string;
      name: string;
    };
    expect(filters[0]!.programTag).toBe(tags.tag);
    expect(tags.name).toBe("tc_count");
    expect(listTcFilters(p.veth.b.index, "egress", p.b.ns)).toEqual([]);
    expect(findTcFilter({ ifindex: p.veth.b.index, direction: "ingress", priority: 4, handle: 1 }, p.b.ns)?.name).toBe(
      "hooks_tc.o:[classifier]",
    );
    expect(
      findTcFilter({ ifindex: p.veth.b.index, direction: "ingress", priority: 4, handle: 2 }, p.b.ns),
    ).toBeUndefined();
  });

  test("listTcFilters() of an interface without clsact is empty", () => {
    using p = pair();
    expect(listTcFilters(p.veth.b.index, "ingress", p.b.ns)).toEqual([]);
  });

  test("deleteTcFilter() deletes one filter, and only while it runs the expected program", () => {
    using p = pair();
    p.b.exec("tc", ["qdisc", "add", "dev", p.veth.b.name, "clsact"]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "egress",
      "prio",
      "3",
      "handle",
      "5",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "egress",
      "prio",
      "4",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    const [first, second] = listTcFilters(p.veth.b.index, "egress", p.b.ns);
    expect(deleteTcFilter(first!, { netns: p.b.ns, programId: second!.programId })).toBe(false);
    expect(deleteTcFilter(first!, { netns: p.b.ns, programId: first!.programId })).toBe(true);
    expect(deleteTcFilter(first!, { netns: p.b.ns })).toBe(false);
    expect(listTcFilters(p.veth.b.index, "egress", p.b.ns).map((f) => f.priority)).toEqual([4]);
    expect(qdiscs(p.b, p.veth.b.name)).toContain("clsact");
  });

  test("TcLink.detach() removes the clsact qdisc it created once no filter is left", () => {
    using p = pair();
    using c = load();
    using c2 = load();
    expect(qdiscs(p.b, p.veth.b.name)).not.toContain("clsact");
    const one = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    const two = attachTc(p.veth.b.name, c2.program("tc_count"), {
      direction: "egress",
      netns: p.b.ns,
      mode: "netlink",
    });
    expect(qdiscs(p.b, p.veth.b.name)).toContain("clsact");
    one.detach();
    expect(qdiscs(p.b, p.veth.b.name)).toContain("clsact");
    two.detach();
    expect(qdiscs(p.b, p.veth.b.name)).not.toContain("clsact");
  });

  test("TcLink.detach() keeps the clsact qdisc it created while someone else's filter uses it", () => {
    using p = pair();
    using c = load();
    const link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "egress",
      "prio",
      "1",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    link.detach();
    expect(qdiscs(p.b, p.veth.b.name)).toContain("clsact");
    expect(tcShow(p.b, p.veth.b.name, "egress")).toHaveLength(1);
    expect(tcShow(p.b, p.veth.b.name, "ingress")).toHaveLength(0);
  });

  test("TcLink.detach() leaves a clsact qdisc it did not create, and someone else's filters", () => {
    using p = pair();
    using c = load();
    p.b.exec("tc", ["qdisc", "add", "dev", p.veth.b.name, "clsact"]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "1",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    const link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    expect(link.priority).toBe(257);
    link.detach();
    expect(tcShow(p.b, p.veth.b.name, "ingress").map((f) => [f.pref, f.options?.bpf_name])).toEqual([
      [1, "hooks_tc.o:[tc]"],
    ]);
    p.b.exec("tc", ["filter", "del", "dev", p.veth.b.name, "ingress"]);
    const again = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    again.detach();
    expect(qdiscs(p.b, p.veth.b.name)).toContain("clsact");
  });

  test("TcLink.detach() leaves a filter someone replaced with another program", () => {
    using p = pair();
    using c = load();
    const link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
      priority: 5,
      handle: 1,
    });
    p.b.exec("tc", [
      "filter",
      "replace",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "5",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "classifier",
    ]);
    link.detach();
    expect(link.attached).toBe(false);
    expect(tcShow(p.b, p.veth.b.name, "ingress").map((f) => f.options?.prog?.name)).toEqual(["tc_drop"]);
  });

  test("TcLink.detach() after someone deleted the filter does nothing", () => {
    using p = pair();
    using c = load();
    const link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    p.b.exec("tc", ["qdisc", "del", "dev", p.veth.b.name, "clsact"]);
    link.detach();
    expect(link.attached).toBe(false);
  });

  test("attachTc() before a program in a neighbouring priority fails with a RangeError naming the priority", () => {
    using p = pair();
    using a = load();
    using b = load();
    using c = load();
    using first = attachTc(p.veth.b.name, a.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
      priority: 4,
    });
    using second = attachTc(p.veth.b.name, b.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
      priority: 5,
    });
    expect(() =>
      attachTc(p.veth.b.name, c.program("tc_count"), {
        direction: "ingress",
        netns: p.b.ns,
        mode: "netlink",
        before: second,
      }),
    ).toThrow(/no priority is free right before priority 5 \(4 is next to it\)/);
    expect(first.attached && second.attached).toBe(true);
  });

  test("attachTc() before a program that is not attached fails with ENOENT", () => {
    using p = pair();
    using c = load();
    expect(() =>
      attachTc(p.veth.b.name, c.program("tc_count"), {
        direction: "ingress",
        netns: p.b.ns,
        mode: "netlink",
        before: c.program("tc_drop"),
      }),
    ).toThrow(/ENOENT .*program "tc_drop" \(id \d+\) is not attached to ".*" ingress/);
    expect(qdiscs(p.b, p.veth.b.name)).not.toContain("clsact");
  });

  test("attachTc() at a taken place fails with EEXIST", () => {
    using p = pair();
    using a = load();
    using b = load();
    p.b.exec("tc", ["qdisc", "add", "dev", p.veth.b.name, "clsact"]);
    p.b.exec("tc", [
      "filter",
      "add",
      "dev",
      p.veth.b.name,
      "ingress",
      "prio",
      "3",
      "handle",
      "1",
      "bpf",
      "da",
      "obj",
      OBJECT,
      "sec",
      "tc",
    ]);
    expect(() =>
      attachTc(p.veth.b.name, a.program("tc_count"), {
        direction: "ingress",
        netns: p.b.ns,
        mode: "netlink",
        priority: 3,
        handle: 1,
      }),
    ).toThrow(/priority 3 handle 1 is taken/);
    using shared = attachTc(p.veth.b.name, b.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
      priority: 3,
    });
    expect([shared.priority, shared.handle]).toEqual([3, 2]);
  });

  test("TcLink.close() leaves the filter attached; the ledger records it until detach", () => {
    using p = pair();
    using c = load();
    using dir = bpffsDir();
    using ledger = openLedger(dir.join("ledger"));
    const link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "egress",
      netns: p.b.ns,
      mode: "netlink",
      ledger,
    });
    expect(ledger.entries()).toEqual([
      expect.objectContaining({
        kind: "tc",
        ifindex: p.veth.b.index,
        direction: "egress",
        priority: link.priority,
        handle: link.handle,
        programId: link.programId,
      }),
    ]);
    link.close();
    expect(link.attached).toBe(false);
    expect(tcShow(p.b, p.veth.b.name, "egress")).toHaveLength(1);
    const [entry] = ledger.entries();
    if (entry?.kind !== "tc") throw new Error("expected a tc entry");
    expect(deleteTcFilter(entry, { netns: p.b.ns, programId: link.programId })).toBe(true);
    ledger.forget(entry);

    const again = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "egress",
      netns: p.b.ns,
      mode: "netlink",
      ledger,
    });
    again.update(c.program("tc_drop"));
    expect(ledger.entries()).toEqual([expect.objectContaining({ programId: again.programId })]);
    again.detach();
    expect(ledger.entries()).toEqual([]);
  });

  test("TcLink.pin() refuses a netlink filter", () => {
    using p = pair();
    using c = load();
    using link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "egress",
      netns: p.b.ns,
      mode: "netlink",
    });
    expect(() => link.pin("/sys/fs/bpf/x")).toThrow(/netlink filters are not links/);
  });
});

describe("attachTc() in tcx mode", () => {
  beforeEach((t) => requireMode(t, "tcx"));

  test("attachTc() in auto mode uses tcx when the kernel has it", () => {
    using p = pair();
    using c = load();
    using link = attachTc(p.veth.b.name, c.program("tc_count"), { direction: "ingress", netns: p.b.ns });
    expect(link.kind).toBe("tcx");
    expect(link.linkId).toBeGreaterThan(0);
    expect(link.priority).toBeUndefined();
  });

  test("a pinned tcx TcLink survives dispose until unpinned", () => {
    using p = pair();
    using c = load();
    using dir = bpffsDir();
    const path = dir.join("link");
    {
      using link = attachTc(p.veth.b.name, c.program("tc_count"), { direction: "ingress", netns: p.b.ns, mode: "tcx" });
      link.pin(path);
    }
    expect(order(p.b, "tcx", p.veth.b.index, "ingress")).toEqual([id(c.program("tc_count"))]);
    unpin(path);
    // The kernel releases a link whose last reference was the pin from a work queue: wait for it.
    waitUntil(() => order(p.b, "tcx", p.veth.b.index, "ingress").length === 0);
    expect(order(p.b, "tcx", p.veth.b.index, "ingress")).toEqual([]);
  });

  test("attachTc() refuses to replace a netlink filter in tcx mode", () => {
    using p = pair();
    using c = load();
    using link = attachTc(p.veth.b.name, c.program("tc_count"), {
      direction: "ingress",
      netns: p.b.ns,
      mode: "netlink",
    });
    expect(() =>
      attachTc(p.veth.b.name, c.program("tc_drop"), {
        direction: "ingress",
        netns: p.b.ns,
        mode: "tcx",
        replace: link,
      }),
    ).toThrow(/replace is a netlink attachment, but mode is "tcx"/);
  });
});

describe("attachTc() bad input", () => {
  test("attachTc() refuses an XDP program with a TypeError before any system call", () => {
    using xdp = loadProgram({
      name: "x",
      type: "xdp",
      license: "GPL",
      instructions: asm.program(asm.movImm(0, 2), asm.exit()),
    });
    setSys(forbiddenSys());
    try {
      expect(() => attachTc("lo", xdp, { direction: "ingress" })).toThrow(TypeError);
      expect(() => attachTc("lo", xdp, { direction: "ingress" })).toThrow(/a xdp program cannot attach to tc/);
    } finally {
      setSys(undefined);
    }
  });

  test("TcLink is what attachTc() returns", () => {
    using ns = netns();
    using c = load();
    using link = attachTc("lo", c.program("tc_count"), { direction: "egress", netns: ns.ns, mode: "netlink" });
    expect(link).toBeInstanceOf(TcLink);
  });
});
