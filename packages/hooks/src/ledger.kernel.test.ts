import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type BpfProgram, createLink, loadProgram, queryPrograms, SyscallError, unpin } from "@dp/core";
import { asm } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { type AdoptedLink, type LedgerEntry, netnsInode, openLedger, reconcile } from "./ledger.ts";
import { attachTc } from "./tc.ts";

beforeEach((t) => requireRoot(t));

const CHILD = new URL("./_test_ledger_child.ts", import.meta.url).pathname;
const TC_OBJECT = new URL("../../../bpf/build/testdata/hooks_tc.o", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;
const TC_ACT_UNSPEC = -1;

function tcProgram(name: string): BpfProgram {
  return loadProgram({
    name,
    type: "schedCls",
    license: "GPL",
    instructions: asm.program(asm.movImm(0, TC_ACT_UNSPEC), asm.exit()),
  });
}

function xdpProgram(name: string): BpfProgram {
  return loadProgram({ name, type: "xdp", license: "GPL", instructions: asm.program(asm.movImm(0, 2), asm.exit()) });
}

interface ShownFilter {
  readonly pref: number;
  readonly handle: number;
  readonly name: string;
  readonly programId: number;
}

/** `tc -json filter show`: the cls_bpf filters of a hook. */
function tcFilters(ns: TestNetns, dev: string, direction: "ingress" | "egress"): ShownFilter[] {
  const out = ns.exec("tc", ["-json", "filter", "show", "dev", dev, direction]).trim();
  const rows = (out === "" ? [] : JSON.parse(out)) as {
    pref: number;
    kind: string;
    options?: { handle: string; bpf_name?: string; prog?: { id: number } };
  }[];
  return rows
    .filter((r) => r.kind === "bpf" && r.options?.prog !== undefined)
    .map((r) => ({
      pref: r.pref,
      handle: Number(r.options?.handle),
      name: r.options?.bpf_name ?? "",
      programId: r.options?.prog?.id ?? 0,
    }));
}

/** `ip -json link show`: the generic XDP program id, if any. */
function xdpGenericId(ns: TestNetns, dev: string): number | undefined {
  const [link] = JSON.parse(ns.exec("ip", ["-json", "link", "show", "dev", dev])) as {
    xdp?: { mode: number; prog?: { id: number } };
  }[];
  return link?.xdp?.mode === 2 ? link.xdp.prog?.id : undefined;
}

function linkExists(id: number): boolean {
  try {
    execFileSync("bpftool", ["link", "show", "id", String(id)], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

interface Child {
  readonly process: ChildProcess;
  readonly ids: Readonly<Record<string, number>>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Starts the child that attaches with a ledger and waits until it reports its program ids. */
async function startChild(ns: TestNetns, dev: string, ledgerDir: string, withLink = false): Promise<Child> {
  const args = [
    "--conditions=@dp/source",
    "--import",
    "tsx",
    CHILD,
    ns.name,
    dev,
    ledgerDir,
    ...(withLink ? ["link"] : []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const ids = await new Promise<Record<string, number>>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined && stdout.includes("\n"))
        resolve((JSON.parse(line) as { attached: Record<string, number> }).attached);
    });
    child.on("exit", (code, signal) =>
      reject(new Error(`child exited (${code ?? signal}) before attaching:\n${stderr}`)),
    );
  });
  return { process: child, ids };
}

/** Kills the child without giving it a chance to clean up. */
async function crash(child: Child): Promise<void> {
  const exited = new Promise<void>((resolve) => child.process.once("exit", () => resolve()));
  child.process.kill("SIGKILL");
  await exited;
}

function vethIn(ns: TestNetns, name: string): void {
  ns.exec("ip", ["link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  ns.exec("ip", ["link", "set", name, "up"]);
  ns.exec("ip", ["link", "set", `${name}p`, "up"]);
}

function kinds(entries: readonly LedgerEntry[]): string[] {
  return entries.map((e) => (e.kind === "tc" ? `tc:${e.direction}` : e.kind)).sort();
}

describe("reconcile() after a crash", () => {
  test("reconcile() removes exactly the filters, XDP program and pinned link of a killed process", async () => {
    using ns = netns({ label: "ledger" });
    using dir = bpffsDir();
    vethIn(ns, "v0");
    // Someone else's filter, added with tc before the process ran...
    ns.exec("tc", ["qdisc", "add", "dev", "v0", "clsact"]);
    ns.exec("tc", [
      "filter",
      "add",
      "dev",
      "v0",
      "ingress",
      "pref",
      "100",
      "handle",
      "7",
      "bpf",
      "da",
      "obj",
      TC_OBJECT,
      "sec",
      "classifier",
    ]);
    // ...and a dp attachment made without the ledger.
    using other = tcProgram("parent_tc");
    using otherLink = attachTc("v0", other, { direction: "egress", mode: "netlink", netns: ns.ns });

    const child = await startChild(ns, "v0", dir.join("ledger"), true);
    await crash(child);

    // The netlink attachments outlive the process; the pinned link too.
    const ingressBefore = tcFilters(ns, "v0", "ingress");
    const egressBefore = tcFilters(ns, "v0", "egress");
    expect(ingressBefore.map((f) => f.programId)).toContain(child.ids.tc);
    expect(egressBefore.map((f) => f.programId)).toContain(child.ids.tc);
    expect(xdpGenericId(ns, "v0")).toBe(child.ids.xdp);
    expect(linkExists(child.ids.link as number)).toBe(true);

    using ledger = openLedger(dir.join("ledger"));
    expect(kinds(ledger.entries())).toEqual(["link", "tc:egress", "tc:ingress", "xdpNetlink"]);
    const result = reconcile(ledger);
    expect(result.adopted).toEqual([]);
    expect(result.forgotten).toEqual([]);
    expect(kinds(result.removed)).toEqual(["link", "tc:egress", "tc:ingress", "xdpNetlink"]);

    // Exactly the child's attachments are gone.
    expect(tcFilters(ns, "v0", "ingress")).toEqual(ingressBefore.filter((f) => f.programId !== child.ids.tc));
    expect(tcFilters(ns, "v0", "egress")).toEqual(egressBefore.filter((f) => f.programId !== child.ids.tc));
    expect(tcFilters(ns, "v0", "ingress")).toMatchObject([{ pref: 100, handle: 7, name: "hooks_tc.o:[classifier]" }]);
    expect(tcFilters(ns, "v0", "egress").map((f) => f.programId)).toEqual([otherLink.programId]);
    expect(xdpGenericId(ns, "v0")).toBeUndefined();
    expect(linkExists(child.ids.link as number)).toBe(false);
    expect(ns.run(() => queryPrograms({ ifindex: otherLink.ifindex }, "tcxIngress")).programs).toEqual([]);
    expect(ledger.entries()).toEqual([]);

    // Nothing left to do the second time.
    expect(reconcile(ledger)).toEqual({ adopted: [], removed: [], forgotten: [] });
  });

  test("reconcile() adopts what adopt() accepts, and the adopted links detach later", async () => {
    using ns = netns({ label: "ledger" });
    using dir = bpffsDir();
    vethIn(ns, "v0");
    const child = await startChild(ns, "v0", dir.join("ledger"), true);
    await crash(child);

    using ledger = openLedger(dir.join("ledger"));
    const seen: LedgerEntry[] = [];
    const result = reconcile(ledger, {
      adopt: (entry) => {
        seen.push(entry);
        return true;
      },
    });
    expect(kinds(seen)).toEqual(["link", "tc:egress", "tc:ingress", "xdpNetlink"]);
    expect(result.removed).toEqual([]);
    expect(result.forgotten).toEqual([]);
    const adopted = new Map(result.adopted.map((l) => [l.entry.kind === "tc" ? `tc:${l.entry.direction}` : l.kind, l]));
    expect([...adopted.keys()].sort()).toEqual(["tc:egress", "tc:ingress", "tcx", "xdpNetlink"]);
    expect(adopted.get("tc:ingress")?.programId).toBe(child.ids.tc);
    expect(adopted.get("xdpNetlink")?.programId).toBe(child.ids.xdp);
    expect(adopted.get("tcx")?.programId).toBe(child.ids.tcx);
    expect(result.adopted.every((l) => l.attached)).toBe(true);
    // Adopting touches nothing: everything is still attached and recorded.
    expect(tcFilters(ns, "v0", "ingress").map((f) => f.programId)).toEqual([child.ids.tc]);
    expect(xdpGenericId(ns, "v0")).toBe(child.ids.xdp);
    expect(ledger.entries()).toHaveLength(4);

    // An adopted filter can be updated in place: the entry follows the new program.
    using next = tcProgram("adopted_next");
    const ingress = adopted.get("tc:ingress") as AdoptedLink;
    const before = tcFilters(ns, "v0", "ingress");
    ingress.update(next);
    const nextId = next.info().id;
    expect(ingress.programId).toBe(nextId);
    expect(tcFilters(ns, "v0", "ingress")).toEqual(before.map((f) => ({ ...f, programId: nextId })));
    expect(ledger.entries().find((e) => e.kind === "tc" && e.direction === "ingress")).toMatchObject({
      programId: nextId,
    });

    for (const link of result.adopted) link.detach();
    for (const link of result.adopted) link.detach(); // idempotent
    expect(tcFilters(ns, "v0", "ingress")).toEqual([]);
    expect(tcFilters(ns, "v0", "egress")).toEqual([]);
    expect(xdpGenericId(ns, "v0")).toBeUndefined();
    expect(linkExists(child.ids.link as number)).toBe(false);
    expect(ledger.entries()).toEqual([]);
  });

  test("reconcile() forgets entries whose place now holds someone else's program, and leaves it alone", async () => {
    using ns = netns({ label: "ledger" });
    using dir = bpffsDir();
    vethIn(ns, "v0");
    const child = await startChild(ns, "v0", dir.join("ledger"));
    await crash(child);

    // Someone replaces the child's ingress filter in place and swaps its XDP program.
    const [ours] = tcFilters(ns, "v0", "ingress");
    if (ours === undefined) throw new Error("the child's ingress filter is missing");
    ns.exec("tc", [
      "filter",
      "replace",
      "dev",
      "v0",
      "ingress",
      "pref",
      String(ours.pref),
      "handle",
      String(ours.handle),
      "bpf",
      "da",
      "obj",
      TC_OBJECT,
      "sec",
      "classifier",
    ]);
    ns.exec("ip", ["link", "set", "dev", "v0", "xdpgeneric", "off"]);
    using theirs = xdpProgram("their_xdp");
    ns.exec("bpftool", ["net", "attach", "xdpgeneric", "id", String(theirs.info().id), "dev", "v0"]);
    const theirIngress = tcFilters(ns, "v0", "ingress");
    expect(theirIngress[0]?.programId).not.toBe(child.ids.tc);

    using ledger = openLedger(dir.join("ledger"));
    const result = reconcile(ledger, { adopt: () => true });
    expect(kinds(result.forgotten)).toEqual(["tc:ingress", "xdpNetlink"]);
    expect(result.adopted.map((l) => l.kind)).toEqual(["tc"]);
    expect(tcFilters(ns, "v0", "ingress")).toEqual(theirIngress);
    expect(xdpGenericId(ns, "v0")).toBe(theirs.info().id);
    for (const link of result.adopted) link.detach();
    expect(tcFilters(ns, "v0", "egress")).toEqual([]);
    ns.exec("ip", ["link", "set", "dev", "v0", "xdpgeneric", "off"]);
  });

  test("reconcile() forgets the entries of a namespace that is gone", async () => {
    using dir = bpffsDir();
    const ns = netns({ label: "ledger" });
    let inode: number;
    try {
      vethIn(ns, "v0");
      inode = netnsInode(ns.ns);
      const child = await startChild(ns, "v0", dir.join("ledger"));
      await crash(child);
    } finally {
      ns.close();
    }
    using ledger = openLedger(dir.join("ledger"));
    expect(ledger.entries().map((e) => (e.kind === "link" ? 0 : e.netnsInode))).toEqual([inode, inode, inode]);
    const result = reconcile(ledger, { adopt: () => true });
    expect(result.adopted).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(kinds(result.forgotten)).toEqual(["tc:egress", "tc:ingress", "xdpNetlink"]);
    expect(ledger.entries()).toEqual([]);
  });
});

describe("Ledger", () => {
  test("openLedger() creates the directory and finds the entries again after reopening", () => {
    using dir = bpffsDir();
    using ns = netns({ label: "ledger" });
    vethIn(ns, "v0");
    const path = dir.join("app/ledger");
    using prog = tcProgram("rec_tc");
    using xprog = xdpProgram("rec_xdp");
    const inode = netnsInode(ns.ns);
    const place = {
      netnsInode: inode,
      ifindex: 2,
      ifname: "v0",
      direction: "ingress",
      priority: 3,
      handle: 0xabc,
    } as const;
    let entries: LedgerEntry[];
    {
      using ledger = openLedger(path);
      const tc = ledger.recordTc(place, prog);
      const xdp = ledger.recordXdp({ netnsInode: inode, ifindex: 2, ifname: "v0", mode: "skb" }, xprog);
      expect(tc).toEqual({
        kind: "tc",
        path: `${path}/tc-${inode}-2-ingress-3-00000abc`,
        programId: prog.info().id,
        pending: false,
        ...place,
      });
      expect(xdp.path).toBe(`${path}/xdp-${inode}-2-skb`);
      entries = [tc, xdp];
    }
    expect(execFileSync("ls", [path], { encoding: "utf8" }).split("\n").filter(Boolean).sort()).toEqual(
      ["index", `tc-${inode}-2-ingress-3-00000abc`, `xdp-${inode}-2-skb`].sort(),
    );
    using again = openLedger(`${path}/`);
    expect(again.entries().sort((a, b) => a.path.localeCompare(b.path))).toEqual(entries);
    for (const e of entries) expect(again.forget(e)).toBe(true);
    for (const e of entries) expect(again.forget(e)).toBe(false);
    expect(again.entries()).toEqual([]);
  });

  test("recordTc() on a recorded place replaces the entry, and forgetting the old entry leaves the new one", () => {
    using dir = bpffsDir();
    using ledger = openLedger(dir.join("ledger"));
    using a = tcProgram("rec_a");
    using b = tcProgram("rec_b");
    const place = {
      netnsInode: netnsInode(),
      ifindex: 1,
      ifname: "lo",
      direction: "egress",
      priority: 1,
      handle: 1,
    } as const;
    const old = ledger.recordTc(place, a);
    const next = ledger.recordTc(place, b);
    expect(ledger.entries()).toEqual([next]);
    expect(ledger.forget(old)).toBe(false);
    expect(ledger.entries()).toEqual([next]);
    expect(ledger.forget(next)).toBe(true);
  });

  test("recordLink() pins a link so it outlives its handle, and refuses a taken name", () => {
    using dir = bpffsDir();
    using ns = netns({ label: "ledger" });
    using ledger = openLedger(dir.join("ledger"));
    using prog = xdpProgram("rec_link");
    let id: number;
    {
      using link = ns.run(() => createLink(prog, { ifindex: 1 }, "xdp", { flags: 2 }));
      id = link.id;
      const entry = ledger.recordLink("lo-xdp", link);
      expect(entry).toEqual({ kind: "link", name: "lo-xdp", path: `${dir.join("ledger")}/link-lo-xdp` });
      const err = (() => {
        try {
          ledger.recordLink("lo-xdp", link);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("EEXIST");
      expect((err as SyscallError).message).toMatch(
        /Cannot record link "lo-xdp" in ledger .*: EEXIST .*forget it first/,
      );
    }
    expect(linkExists(id)).toBe(true);
    expect(() => ledger.recordLink("bad.name", {} as never)).toThrow(RangeError);
    expect(() => ledger.recordLink("x", {} as never)).toThrow(TypeError);
    const [entry] = ledger.entries();
    if (entry === undefined) throw new Error("the link entry is missing");
    ledger.forget(entry);
    expect(linkExists(id)).toBe(false);
  });

  test("openLedger() refuses a directory that is not on bpffs", () => {
    const tmp = mkdtempSync(`${tmpdir()}/dp-ledger-`);
    try {
      expect(() => openLedger(`${tmp}/ledger`)).toThrow(/not on bpffs/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("openLedger() refuses a directory whose index is not a ledger's", () => {
    using dir = bpffsDir();
    using prog = tcProgram("not_index");
    prog.pin(dir.join("index"));
    expect(() => openLedger(dir.path)).toThrow(/is not a ledger index/);
    unpin(dir.join("index"));
  });

  test("netnsInode() is the inode stat reports for the namespace", () => {
    using ns = netns({ label: "ledger" });
    const stat = (path: string): number =>
      Number(execFileSync("stat", ["-L", "-c", "%i", path], { encoding: "utf8" }).trim());
    expect(netnsInode(ns.ns)).toBe(stat(`/run/netns/${ns.name}`));
    expect(netnsInode()).toBe(stat("/proc/thread-self/ns/net"));
    expect(ns.run(() => netnsInode())).toBe(stat(`/run/netns/${ns.name}`));
  });

  test("recordTc() refuses a malformed place", () => {
    using dir = bpffsDir();
    using ledger = openLedger(dir.join("ledger"));
    using prog = tcProgram("bad_place");
    const good = { netnsInode: 5, ifindex: 1, ifname: "lo", direction: "ingress", priority: 1, handle: 1 } as const;
    expect(() => ledger.recordTc({ ...good, priority: 0x10000 }, prog)).toThrow(RangeError);
    expect(() => ledger.recordTc({ ...good, direction: "up" as never }, prog)).toThrow(TypeError);
    expect(() => ledger.recordXdp({ ...good, mode: "auto" as never }, prog)).toThrow(TypeError);
    expect(ledger.entries()).toEqual([]);
  });
});

describe("openLedger() without privileges", () => {
  test("a bpffs directory it may not look into is EACCES with a hint, not 'not on bpffs'", () => {
    const dir = `/sys/fs/bpf/dp-unpriv-${process.pid}-${Date.now()}/ledger`;
    const out = execFileSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        process.execPath,
        "--conditions=@dp/source",
        "--import",
        "tsx",
        new URL("../testdata/unprivileged/open_ledger.ts", import.meta.url).pathname,
        dir,
      ],
      { encoding: "utf8", cwd: ROOT, timeout: 60_000 },
    );
    const result = JSON.parse(out.trim().split("\n").at(-1) as string) as Record<string, string>;
    expect(result).toMatchObject({ name: "SyscallError", code: "EACCES" });
    expect(result["message"]).toContain(`Cannot open ledger "${dir}"`);
    expect(result["hint"]).toMatch(/run as root/);
    expect(result["message"]).not.toMatch(/not on bpffs/);
  });
});
