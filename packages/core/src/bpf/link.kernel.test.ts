import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, test } from "vitest";
import {
  ATTACH_FLAGS,
  attachProgram,
  type AttachType,
  type BpfLink,
  type BpfProgram,
  createLink,
  createMap,
  detachProgram,
  linkById,
  loadProgram,
  mapById,
  openPinnedLink,
  openPinnedMap,
  openPinnedProgram,
  type ProgramType,
  programById,
  queryPrograms,
  SyscallError,
  XDP_FLAGS,
} from "@dp/core";
import { asm, forbiddenSys, openFds, setSys } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const { exit, movImm, program } = asm;
const TC_ACT_UNSPEC = -1;
const XDP_PASS = 2;

function load(type: ProgramType, name: string, ret: number, expectedAttachType?: AttachType): BpfProgram {
  return loadProgram({
    name,
    type,
    license: "GPL",
    instructions: program(movImm(0, ret), exit()),
    ...(expectedAttachType === undefined ? {} : { expectedAttachType }),
  });
}

function tc(name: string): BpfProgram {
  return load("schedCls", name, TC_ACT_UNSPEC);
}

function id(p: BpfProgram): number {
  return p.info().id;
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

interface BpftoolLink {
  readonly id: number;
  readonly type: string | number;
  readonly prog_id: number;
  readonly ifindex?: number;
  readonly attach_type?: string | number;
  readonly cgroup_id?: number;
}

function bpftoolLinks(): BpftoolLink[] {
  return JSON.parse(execFileSync("bpftool", ["-j", "link", "show"], { encoding: "utf8" })) as BpftoolLink[];
}

function bpftoolAtLeast(major: number, minor: number): boolean {
  const { version } = JSON.parse(execFileSync("bpftool", ["-j", "version"], { encoding: "utf8" })) as {
    version: string;
  };
  const [maj = 0, min = 0] = version.split(".").map(Number);
  return maj > major || (maj === major && min >= minor);
}

/** A veth end in a fresh namespace; the peer lives in a second one. */
function veth(): { ns: TestNetns; peer: TestNetns; ifindex: number; ifname: string; [Symbol.dispose](): void } {
  const ns = netns({ label: "link" });
  const peer = netns({ label: "peer" });
  const { a } = vethPair(ns, peer, { addressA: "10.99.0.1/24", addressB: "10.99.0.2/24" });
  return {
    ns,
    peer,
    ifindex: a.index,
    ifname: a.name,
    [Symbol.dispose]() {
      ns.close();
      peer.close();
    },
  };
}

describe("createLink() on tcx", () => {
  test("attaches, and info(), queryPrograms() and bpftool describe the link", () => {
    using v = veth();
    using prog = tc("tcx_info");
    v.ns.run(() => {
      using link = createLink(prog, { ifindex: v.ifindex }, "tcxIngress");
      expect(link.type).toBe("tcx");
      expect(link.info()).toEqual({
        type: "tcx",
        id: link.id,
        programId: id(prog),
        ifindex: v.ifindex,
        attachType: "tcxIngress",
      });
      const query = queryPrograms({ ifindex: v.ifindex }, "tcxIngress");
      expect(query.programs).toEqual([{ programId: id(prog), linkId: link.id, attachFlags: 0 }]);
      expect(query.revision).toBeGreaterThan(0n);
      expect(queryPrograms({ ifindex: v.ifindex }, "tcxEgress").programs).toEqual([]);

      const listed = bpftoolLinks().find((l) => l.id === link.id);
      expect(listed).toMatchObject({ prog_id: id(prog) });
      // bpftool lists tcx links under "tc" from version 7.3 on.
      if (bpftoolAtLeast(7, 3)) {
        const [net] = JSON.parse(v.ns.exec("bpftool", ["-j", "net", "show"])) as { tc: Record<string, unknown>[] }[];
        expect(net?.tc).toContainEqual(
          expect.objectContaining({ ifindex: v.ifindex, kind: "tcx/ingress", prog_id: id(prog), link_id: link.id }),
        );
      }
    });
  });

  test("orders programs with anchors: first, last, before and after a program, a link or their ids", () => {
    using v = veth();
    using a = tc("tcx_a");
    using b = tc("tcx_b");
    using c = tc("tcx_c");
    using d = tc("tcx_d");
    using e = tc("tcx_e");
    using f = tc("tcx_f");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      using la = createLink(a, target, "tcxEgress");
      using lb = createLink(b, target, "tcxEgress", { anchor: { before: la } });
      using lc = createLink(c, target, "tcxEgress", { anchor: { after: { programId: id(b) } } });
      using ld = createLink(d, target, "tcxEgress", { anchor: "first" });
      using le = createLink(e, target, "tcxEgress", { anchor: { after: { linkId: la.id } } });
      using lf = createLink(f, target, "tcxEgress", { anchor: { before: e } });
      const order = queryPrograms(target, "tcxEgress").programs.map((p) => p.linkId);
      expect(order).toEqual([ld.id, lb.id, lc.id, la.id, lf.id, le.id]);
    });
  });

  test("checks the expected revision", () => {
    using v = veth();
    using a = tc("tcx_rev_a");
    using b = tc("tcx_rev_b");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      using la = createLink(a, target, "tcxIngress");
      const { revision } = queryPrograms(target, "tcxIngress");
      using lb = createLink(b, target, "tcxIngress", { expectedRevision: revision });
      expect(lb.info().programId).toBe(id(b));
      const err = caught(() => createLink(a, target, "tcxIngress", { expectedRevision: revision, anchor: "first" }));
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({ op: "BPF_LINK_CREATE", code: "ESTALE" });
      expect((err as SyscallError).hint).toMatch(/changed since the expected revision/);
      expect(la.closed).toBe(false);
    });
  });

  test("update() swaps the program in place; expectedProgram guards it", () => {
    using v = veth();
    using a = tc("tcx_up_a");
    using b = tc("tcx_up_b");
    using c = tc("tcx_up_c");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      using first = createLink(a, target, "tcxIngress");
      using second = createLink(c, target, "tcxIngress");
      first.update(b);
      expect(first.info().programId).toBe(id(b));
      expect(queryPrograms(target, "tcxIngress").programs.map((p) => p.programId)).toEqual([id(b), id(c)]);
      first.update(a, { expectedProgram: b });
      const err = caught(() => first.update(c, { expectedProgram: b }));
      expect(err).toMatchObject({ op: "BPF_LINK_UPDATE", code: "EPERM" });
      expect((err as SyscallError).hint).toMatch(/different program than expected/);
      expect(first.info().programId).toBe(id(a));
      expect(second.info().programId).toBe(id(c));
    });
  });

  test("detach() removes the attachment, is idempotent, and leaves the handle usable", () => {
    using v = veth();
    using prog = tc("tcx_det");
    using other = tc("tcx_det_b");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      using link = createLink(prog, target, "tcxIngress");
      link.detach();
      link.detach();
      expect(queryPrograms(target, "tcxIngress").programs).toEqual([]);
      expect(link.info().ifindex).toBe(0);
      expect(caught(() => link.update(other))).toMatchObject({ code: "ENOLINK", hint: "the link was detached" });
      link.close();
      link.close();
      expect(link.closed).toBe(true);
      expect(() => link.info()).toThrow(/closed/);
    });
  });

  test("close() detaches an unpinned link; a pinned link stays until detached; openPinnedLink() reopens it", () => {
    using v = veth();
    using dir = bpffsDir();
    using prog = tc("tcx_pin");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      {
        using link = createLink(prog, target, "tcxEgress");
        expect(queryPrograms(target, "tcxEgress").programs).toEqual([
          { programId: id(prog), linkId: link.id, attachFlags: 0 },
        ]);
      }
      expect(queryPrograms(target, "tcxEgress").programs).toEqual([]);

      let linkId: number;
      {
        using link = createLink(prog, target, "tcxEgress");
        linkId = link.id;
        link.pin(dir.join("tcx"));
      }
      expect(queryPrograms(target, "tcxEgress").programs).toEqual([{ programId: id(prog), linkId, attachFlags: 0 }]);
      using again = openPinnedLink(dir.join("tcx"));
      expect(again.id).toBe(linkId);
      expect(again.info()).toMatchObject({ type: "tcx", ifindex: v.ifindex, attachType: "tcxEgress" });
      again.detach();
      expect(queryPrograms(target, "tcxEgress").programs).toEqual([]);
    });
    prog.pin(dir.join("prog"));
    expect(() => openPinnedLink(dir.join("prog"))).toThrow(TypeError);
    expect(() => openPinnedLink(dir.join("missing"))).toThrow(expect.objectContaining({ code: "ENOENT" }) as Error);
  });

  test("linkById(), programById() and mapById() open what the ids name", () => {
    using v = veth();
    using prog = tc("tcx_byid");
    using map = createMap({ name: "byid_map", type: "hash", keySize: 4, valueSize: 8, maxEntries: 3 });
    v.ns.run(() => {
      using link = createLink(prog, { ifindex: v.ifindex }, "tcxIngress");
      const [attached] = queryPrograms({ ifindex: v.ifindex }, "tcxIngress").programs;
      using byLink = linkById(attached?.linkId ?? 0);
      expect(byLink.id).toBe(link.id);
      expect(byLink.info().programId).toBe(id(prog));
      using byProg = programById(attached?.programId ?? 0);
      expect(byProg).toMatchObject({ name: "tcx_byid", type: "schedCls" });
      // Closing a handle opened by id does not detach what the original link holds.
      byLink.close();
      expect(queryPrograms({ ifindex: v.ifindex }, "tcxIngress").programs).toHaveLength(1);
    });
    using byMap = mapById(map.info().id);
    expect(byMap).toMatchObject({ name: "byid_map", type: "hash", keySize: 4, valueSize: 8, maxEntries: 3 });
    byMap.set(new Uint8Array(4), new Uint8Array(8).fill(7));
    expect(map.get(new Uint8Array(4))).toEqual(new Uint8Array(8).fill(7));
    for (const open of [linkById, programById, mapById]) {
      const err = caught(() => open(0x7fff_fff0));
      expect(err).toMatchObject({ code: "ENOENT", hint: "no object has this id (it was released)" });
    }
    expect(() => linkById(0)).toThrow(RangeError);
  });

  test("fails with typed, hinted errors", () => {
    using v = veth();
    using prog = tc("tcx_err");
    using xdp = load("xdp", "xdp_err", XDP_PASS);
    v.ns.run(() => {
      const err = caught(() => createLink(prog, { ifindex: 9999 }, "tcxIngress"));
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({ op: "BPF_LINK_CREATE", code: "ENODEV" });
      expect((err as Error).message).toMatch(
        /^Cannot link schedCls program "tcx_err" to ifindex 9999 as "tcxIngress": ENODEV/,
      );
      expect((err as Error).message).toMatch(/withNetns/);

      using link = createLink(prog, { ifindex: v.ifindex }, "tcxIngress");
      const twice = caught(() => createLink(prog, { ifindex: v.ifindex }, "tcxIngress"));
      expect(twice).toMatchObject({ code: "EEXIST" });
      expect((twice as SyscallError).hint).toMatch(/something is attached there/);
      expect(link.closed).toBe(false);
    });
    // Outside the namespace the interface index means nothing (or something else).
    expect(caught(() => createLink(prog, { ifindex: 9999 }, "tcxIngress"))).toMatchObject({ code: "ENODEV" });

    // Bad input is refused before any system call.
    const previous = setSys(forbiddenSys());
    try {
      expect(() => createLink(xdp, { ifindex: 1 }, "tcxIngress")).toThrow(
        /a xdp program cannot attach as "tcxIngress" \(it attaches as "xdp"\)/,
      );
      expect(() => createLink(prog, { ifindex: 1 }, "tcIngress" as never)).toThrow(TypeError);
      expect(() => createLink(prog, { ifindex: 0 }, "tcxIngress")).toThrow(RangeError);
      expect(() => createLink(prog, { ifindex: 1.5 }, "tcxIngress")).toThrow(RangeError);
      expect(() => createLink(prog, { path: "relative" }, "tcxIngress")).toThrow(TypeError);
      expect(() => createLink(prog, {} as never, "tcxIngress")).toThrow(TypeError);
      expect(() => createLink(xdp, { ifindex: 1 }, "xdp", { anchor: "first" })).toThrow(/take no anchor/);
      expect(() => createLink(prog, { ifindex: 1 }, "tcxIngress", { anchor: { before: { programId: -1 } } })).toThrow(
        RangeError,
      );
      expect(() => createLink(prog, { ifindex: 1 }, "tcxIngress", { expectedRevision: 1 as never })).toThrow(
        RangeError,
      );
      expect(() => attachProgram({ ifindex: 1 }, xdp, "skMsgVerdict")).toThrow(TypeError);
      expect(() => queryPrograms({ ifindex: 1 }, "nope" as never)).toThrow(TypeError);
    } finally {
      setSys(previous);
    }
  });
});

describe("attachProgram() on tcx", () => {
  test("attaches without a link, in order, replaces atomically and detaches by program or anchor", () => {
    using v = veth();
    using a = tc("mp_a");
    using b = tc("mp_b");
    using c = tc("mp_c");
    v.ns.run(() => {
      const target = { ifindex: v.ifindex };
      attachProgram(target, a, "tcxIngress");
      attachProgram(target, b, "tcxIngress", { anchor: { before: a } });
      const ids = (): number[] => queryPrograms(target, "tcxIngress").programs.map((p) => p.programId);
      expect(ids()).toEqual([id(b), id(a)]);
      expect(queryPrograms(target, "tcxIngress").programs[0]).toEqual({ programId: id(b), attachFlags: 0 });

      attachProgram(target, c, "tcxIngress", { replace: b });
      expect(ids()).toEqual([id(c), id(a)]);

      detachProgram(target, a, "tcxIngress");
      expect(ids()).toEqual([id(c)]);
      const again = caught(() => detachProgram(target, a, "tcxIngress"));
      expect(again).toMatchObject({ op: "BPF_PROG_DETACH", code: "ENOENT", hint: "the program is not attached there" });

      const missing = caught(() => attachProgram(target, a, "tcxIngress", { anchor: { after: b } }));
      expect(missing).toMatchObject({ op: "BPF_PROG_ATTACH", code: "ENOENT" });
      expect((missing as SyscallError).hint).toMatch(/not attached there/);

      detachProgram(target, undefined, "tcxIngress", { anchor: "last" });
      expect(ids()).toEqual([]);
    });
  });
});

describe("createLink() on XDP", () => {
  test("attaches in skb mode on a veth; ip link and bpftool net show agree", () => {
    using v = veth();
    using prog = load("xdp", "xdp_skb", XDP_PASS);
    using other = load("xdp", "xdp_other", XDP_PASS);
    v.ns.run(() => {
      using link = createLink(prog, { ifindex: v.ifindex }, "xdp", { flags: XDP_FLAGS.skbMode });
      expect(link.info()).toEqual({ type: "xdp", id: link.id, programId: id(prog), ifindex: v.ifindex });

      const [shown] = JSON.parse(v.ns.exec("ip", ["-json", "-details", "link", "show", "dev", v.ifname])) as {
        xdp?: { mode: number; prog: { id: number } };
      }[];
      expect(shown?.xdp).toMatchObject({ mode: 2, prog: { id: id(prog) } }); // XDP_ATTACHED_SKB

      const [net] = JSON.parse(v.ns.exec("bpftool", ["-j", "net", "show"])) as {
        xdp: { ifindex: number; mode: string; id: number }[];
      }[];
      expect(net?.xdp).toEqual([expect.objectContaining({ ifindex: v.ifindex, mode: "generic", id: id(prog) })]);

      const busy = caught(() => createLink(other, { ifindex: v.ifindex }, "xdp", { flags: XDP_FLAGS.skbMode }));
      expect(busy).toBeInstanceOf(SyscallError);
      expect((busy as SyscallError).hint).toMatch(/XDP program/);

      link.update(other);
      expect(link.info().programId).toBe(id(other));
      link.detach();
      const [after] = JSON.parse(v.ns.exec("ip", ["-json", "link", "show", "dev", v.ifname])) as { xdp?: unknown }[];
      expect(after?.xdp).toBeUndefined();
    });
  });

  test.each([
    { mode: "hw", flags: XDP_FLAGS.hwMode, code: "ENOTSUP", hint: /driver does not support this XDP mode/ },
    { mode: "drv", flags: XDP_FLAGS.drvMode, code: "ENOTSUP", hint: /driver does not support this XDP mode/ },
    { mode: "skb and drv", flags: XDP_FLAGS.skbMode | XDP_FLAGS.drvMode, code: "EINVAL", hint: /XDP flags or mode/ },
  ])("fails on loopback in $mode mode with $code and a hint", ({ flags, code, hint }) => {
    using ns = netns({ label: "xdplo" });
    using prog = load("xdp", "xdp_lo", XDP_PASS);
    ns.run(() => {
      const err = caught(() => createLink(prog, { ifindex: 1 }, "xdp", { flags }));
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({ op: "BPF_LINK_CREATE", code });
      expect((err as SyscallError).hint).toMatch(hint);
      expect((err as Error).message).toMatch(/^Cannot link xdp program "xdp_lo" to ifindex 1 as "xdp"/);
    });
  });

  test("hw mode on a veth fails with a hint about offload", () => {
    using v = veth();
    using prog = load("xdp", "xdp_hw", XDP_PASS);
    v.ns.run(() => {
      const err = caught(() => createLink(prog, { ifindex: v.ifindex }, "xdp", { flags: XDP_FLAGS.hwMode }));
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).hint).toMatch(/hw mode needs a NIC that offloads XDP/);
    });
  });
});

/** The cgroup v2 mount, or one mounted for these tests. */
let cgroupRoot: string | undefined;
let mountedCgroup = false;

function cgroup2(): string {
  if (cgroupRoot !== undefined) return cgroupRoot;
  const line = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .find((l) => l.split(" ")[2] === "cgroup2");
  let root = line?.split(" ")[1];
  if (root === undefined) {
    root = mkdtempSync(join(tmpdir(), "dpt-cgroup2-"));
    execFileSync("mount", ["-t", "cgroup2", "none", root]);
    mountedCgroup = true;
  }
  cgroupRoot = root;
  return root;
}

afterAll(() => {
  if (mountedCgroup && cgroupRoot !== undefined) execFileSync("umount", [cgroupRoot]);
});

function tempCgroup(): { path: string; [Symbol.dispose](): void } {
  const path = join(cgroup2(), `dpt-link-${process.pid}-${Math.random().toString(16).slice(2, 8)}`);
  mkdirSync(path);
  return {
    path,
    [Symbol.dispose]() {
      rmdirSync(path);
    },
  };
}

describe("cgroup attachments", () => {
  test("createLink() on a cgroup directory: info() names the cgroup, queryPrograms() lists the link, bpftool agrees", () => {
    using cg = tempCgroup();
    using prog = load("cgroupSkb", "cg_egress", 1, "cgroupInetEgress");
    using link = createLink(prog, { path: cg.path }, "cgroupInetEgress");
    const info = link.info();
    expect(info).toEqual({
      type: "cgroup",
      id: link.id,
      programId: id(prog),
      cgroupId: BigInt(statSync(cg.path).ino),
      attachType: "cgroupInetEgress",
    });
    const query = queryPrograms({ path: cg.path }, "cgroupInetEgress");
    expect(query.programs.map((p) => p.programId)).toEqual([id(prog)]);
    expect(queryPrograms({ path: cg.path }, "cgroupInetIngress").programs).toEqual([]);
    const listed = bpftoolLinks().find((l) => l.id === link.id);
    expect(listed).toMatchObject({ prog_id: id(prog), cgroup_id: Number(info.cgroupId) });
    link.detach();
    expect(queryPrograms({ path: cg.path }, "cgroupInetEgress").programs).toEqual([]);
  });

  test("attachProgram() with allowMulti, effective queries from a child, and detachProgram()", () => {
    using cg = tempCgroup();
    using child = { path: join(cg.path, "child"), [Symbol.dispose]: () => rmdirSync(join(cg.path, "child")) };
    mkdirSync(child.path);
    using a = load("cgroupSkb", "cg_multi_a", 1);
    using b = load("cgroupSkb", "cg_multi_b", 1);
    const target = { path: cg.path };
    attachProgram(target, a, "cgroupInetIngress", { flags: ATTACH_FLAGS.allowMulti });
    attachProgram(target, b, "cgroupInetIngress", { flags: ATTACH_FLAGS.allowMulti });
    const query = queryPrograms(target, "cgroupInetIngress");
    expect(query.attachFlags).toBe(ATTACH_FLAGS.allowMulti);
    expect(query.programs).toEqual([
      { programId: id(a), attachFlags: ATTACH_FLAGS.allowMulti },
      { programId: id(b), attachFlags: ATTACH_FLAGS.allowMulti },
    ]);
    expect(queryPrograms({ path: child.path }, "cgroupInetIngress").programs).toEqual([]);
    const effective = queryPrograms({ path: child.path }, "cgroupInetIngress", { effective: true });
    expect(effective.programs.map((p) => p.programId)).toEqual([id(a), id(b)]);

    using c = load("cgroupSkb", "cg_multi_c", 1);
    const mixed = caught(() => attachProgram(target, c, "cgroupInetIngress"));
    expect(mixed).toMatchObject({ op: "BPF_PROG_ATTACH", code: "EPERM" });
    expect((mixed as SyscallError).hint).toMatch(/other flags/);

    detachProgram(target, a, "cgroupInetIngress");
    detachProgram(target, b, "cgroupInetIngress");
    expect(queryPrograms(target, "cgroupInetIngress").programs).toEqual([]);
    expect(caught(() => detachProgram(target, a, "cgroupInetIngress"))).toMatchObject({ code: "ENOENT" });
  });

  test("queryPrograms() grows its id buffer past the first guess", () => {
    using cg = tempCgroup();
    const progs = Array.from({ length: 20 }, (_, i) => load("cgroupSkb", `cg_many_${i}`, 1));
    try {
      for (const p of progs)
        attachProgram({ path: cg.path }, p, "cgroupInetEgress", { flags: ATTACH_FLAGS.allowMulti });
      const query = queryPrograms({ path: cg.path }, "cgroupInetEgress");
      expect(query.programs.map((p) => p.programId)).toEqual(progs.map(id));
      for (const p of progs) detachProgram({ path: cg.path }, p, "cgroupInetEgress");
    } finally {
      for (const p of progs) p.close();
    }
  });

  test("a missing cgroup directory is an open error naming the path", () => {
    using prog = load("cgroupSkb", "cg_missing", 1);
    const path = join(cgroup2(), "dpt-no-such-cgroup");
    const err = caught(() => createLink(prog, { path }, "cgroupInetEgress"));
    expect(err).toMatchObject({ syscall: "open", code: "ENOENT" });
    expect((err as Error).message).toContain(`"${path}"`);
  });
});

describe("attachProgram() on a sockmap", () => {
  test("attaches an sk_msg verdict program, lists it and detaches it", () => {
    using sockmap = createMap({ name: "t_sockmap", type: "sockmap", keySize: 4, valueSize: 4, maxEntries: 4 });
    using verdict = load("skMsg", "msg_verdict", 1);
    attachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
    expect(queryPrograms({ fd: sockmap }, "skMsgVerdict").programs).toEqual([
      { programId: id(verdict), attachFlags: 0 },
    ]);
    detachProgram({ fd: sockmap }, verdict, "skMsgVerdict");
    expect(queryPrograms({ fd: sockmap }, "skMsgVerdict").programs).toEqual([]);
    const err = caught(() => detachProgram({ fd: sockmap }, verdict, "skMsgVerdict"));
    expect(err).toMatchObject({ op: "BPF_PROG_DETACH", code: "ENOENT" });
    expect((err as Error).message).toMatch(
      /^Cannot detach skMsg program "msg_verdict" from map "t_sockmap" as "skMsgVerdict"/,
    );
  });

  test("createLink() holds an sk_skb verdict program on a sockhash", () => {
    using sockhash = createMap({ name: "t_sockhash", type: "sockhash", keySize: 4, valueSize: 4, maxEntries: 4 });
    using verdict = load("skSkb", "skb_verdict", 1);
    let link: BpfLink;
    try {
      link = createLink(verdict, { fd: sockhash }, "skSkbVerdict");
    } catch (err) {
      // Links on sockmaps arrived in Linux 6.10.
      if (err instanceof SyscallError && err.code === "EINVAL") return;
      throw err;
    }
    using held = link;
    expect(held.info()).toMatchObject({ type: "sockmap", mapId: sockhash.info().id, attachType: "skSkbVerdict" });
    expect(queryPrograms({ fd: sockhash }, "skSkbVerdict").programs.map((p) => p.programId)).toEqual([id(verdict)]);
  });
});

describe("createLink() on a network namespace", () => {
  test("links an sk_lookup program to a namespace file; info() names the namespace", () => {
    using ns = netns({ label: "lookup" });
    using prog = load("skLookup", "lookup_pass", 1, "skLookup");
    using link = createLink(prog, { path: ns.ns.path }, "skLookup");
    expect(link.info()).toEqual({
      type: "netns",
      id: link.id,
      programId: id(prog),
      netnsInode: statSync(ns.ns.path).ino,
      attachType: "skLookup",
    });
    expect(queryPrograms({ fd: ns.ns }, "skLookup").programs.map((p) => p.programId)).toEqual([id(prog)]);
    link.detach();
    expect(queryPrograms({ fd: ns.ns }, "skLookup").programs).toEqual([]);
  });
});

describe("openPinned*() of the wrong kind", () => {
  test("a pinned program is not a map or a link, a pinned map is not a program", () => {
    using dir = bpffsDir();
    using prog = loadProgram({
      name: "kind",
      type: "xdp",
      license: "GPL",
      instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
    });
    using map = createMap({ name: "kind", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    prog.pin(dir.join("prog"));
    map.pin(dir.join("map"));
    const before = openFds().length;
    expect(() => openPinnedMap(dir.join("prog"))).toThrow(
      new TypeError(`Cannot open pinned map "${dir.join("prog")}": the pinned object is a program`),
    );
    expect(() => openPinnedLink(dir.join("map"))).toThrow(/the pinned object is a map/);
    expect(() => openPinnedProgram(dir.join("map"))).toThrow(/pinned program .*: the pinned object is a map/);
    expect(openFds().length).toBe(before);
    using again = openPinnedProgram(dir.join("prog"));
    expect(again.info().id).toBe(prog.info().id);
  });
});
