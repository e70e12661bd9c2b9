import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { beforeEach, describe, expect, onTestFinished, test } from "vitest";
import { createMap, MapCompatibilityError } from "@dp/core";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { listAttachments, openLedger } from "@dp/hooks";
import { accelerate, SockmapError } from "./mod.ts";
import { type ChildTuple, testCgroup, TrafficChild } from "./_test_child.ts";

beforeEach((t) => requireRoot(t));

const MiB = 1024 * 1024;
/** The large transfer, each direction: 1 GiB by default (DP_SOCKMAP_BIG_MIB to change). */
const BIG = Number(process.env.DP_SOCKMAP_BIG_MIB ?? "1024") * MiB;
const LOCAL = ["127.0.0.0/8", "::1"];
const RESTART_CHILD = new URL("./_test_restart_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;

interface Xfer {
  readonly ok: boolean;
  readonly loBytes: number;
}
interface Opened {
  readonly ids: number[];
  readonly tuples: ChildTuple[];
}

async function withChild<T>(label: string, fn: (child: TrafficChild, cgroup: string) => Promise<T>): Promise<T> {
  using ns = netns({ label });
  using cg = testCgroup();
  const child = new TrafficChild(ns, cg.path);
  try {
    await child.ready();
    return await fn(child, cg.path);
  } finally {
    await child.close();
  }
}

function peerOf(t: ChildTuple): ChildTuple {
  return {
    localAddress: t.remoteAddress,
    localPort: t.remotePort,
    remoteAddress: t.localAddress,
    remotePort: t.localPort,
  };
}

describe("accelerate()", () => {
  test(`two local endpoints exchange ${BIG / MiB} MiB each way through the redirect, byte-exact, off the stack`, async () => {
    await withChild("sm-big", async (child, cgroup) => {
      using acc = accelerate({ cgroup, local: LOCAL });
      const { tuples } = await child.run<Opened>("open 1");
      const t = tuples[0] as ChildTuple;
      expect(acc.status(t)).toEqual({ accelerated: true, reason: "accelerated" });
      expect(acc.status(peerOf(t))).toEqual({ accelerated: true, reason: "accelerated" });
      expect(acc.sockets()).toHaveLength(2);
      const started = Date.now();
      const r = await child.run<Xfer>(`xfer 0 ${BIG}`, 600_000);
      const seconds = (Date.now() - started) / 1000;
      expect(r.ok).toBe(true);
      const s = acc.stats();
      expect(s.inserted).toBe(2n);
      // Every byte went one way or the other; nearly all through the redirect (the
      // rest when the reader fell behind by more than its receive buffer).
      expect(s.redirectedBytes + s.fallbackBytes).toBe(BigInt(2 * BIG));
      expect(Number(s.redirectedBytes)).toBeGreaterThan(0.9 * 2 * BIG);
      // Only the fallback bytes crossed lo (plus headers and ACKs).
      expect(r.loBytes).toBeLessThan(Number(s.fallbackBytes) * 1.2 + 256 * 1024);
      console.log(
        `sockmap: stats ${JSON.stringify(s, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}, lo tx ${r.loBytes} bytes`,
      );
      console.log(`sockmap: ${(2 * BIG) / MiB} MiB byte-exact through the redirect in ${seconds.toFixed(1)} s`);
    });
  }, 900_000);

  test("switching between the redirect and the normal path keeps every byte in order", async () => {
    await withChild("sm-switch", async (child, cgroup) => {
      // A backlog bound of 0 (the receive buffer) makes messages fall back often.
      using acc = accelerate({ cgroup, local: LOCAL, maxBacklog: 0 });
      await child.run<Opened>("open 4");
      const r = await child.run<Xfer>(`xfer all ${64 * MiB}`);
      expect(r.ok).toBe(true);
      const s = acc.stats();
      expect(s.fallback.backlog).toBeGreaterThan(0n);
      expect(s.redirectedBytes).toBeGreaterThan(0n);
      expect(s.redirectedBytes + s.fallbackBytes).toBe(BigInt(8 * 64 * MiB));
    });
  }, 300_000);

  test("many concurrent connections are each accelerated and byte-exact", async () => {
    await withChild("sm-many", async (child, cgroup) => {
      using acc = accelerate({ cgroup, local: LOCAL });
      const { tuples } = await child.run<Opened>("open 32");
      expect(acc.sockets()).toHaveLength(64);
      for (const t of tuples) expect(acc.status(t).reason).toBe("accelerated");
      const r = await child.run<Xfer>(`xfer all ${4 * MiB}`);
      expect(r.ok).toBe(true);
      const s = acc.stats();
      expect(s.inserted).toBe(64n);
      expect(s.redirectedBytes + s.fallbackBytes).toBe(BigInt(64 * 4 * MiB));
      expect(Number(s.redirectedBytes)).toBeGreaterThan(0.5 * 64 * 4 * MiB);
    });
  }, 300_000);

  test("IPv6 connections, and IPv4 ones to a dual-stack listener (IPv4-mapped on one side), are accelerated", async () => {
    await withChild("sm-v6", async (child, cgroup) => {
      using acc = accelerate({ cgroup, local: LOCAL });
      const v6 = (await child.run<Opened>("open 1 ::1")).tuples[0] as ChildTuple;
      const v4 = (await child.run<Opened>("open 1 127.0.0.1")).tuples[0] as ChildTuple;
      expect(v6.localAddress).toBe("::1");
      expect(acc.status(v6)).toEqual({ accelerated: true, reason: "accelerated" });
      expect(acc.status(peerOf(v6))).toEqual({ accelerated: true, reason: "accelerated" });
      expect(acc.status(v4)).toEqual({ accelerated: true, reason: "accelerated" });
      expect(
        acc.status({ ...peerOf(v4), localAddress: "::ffff:127.0.0.1", remoteAddress: "::ffff:127.0.0.1" }),
      ).toEqual({ accelerated: true, reason: "accelerated" });
      const r = await child.run<Xfer>(`xfer all ${8 * MiB}`);
      expect(r.ok).toBe(true);
      expect(Number(acc.stats().redirectedBytes)).toBeGreaterThan(2 * 2 * 8 * MiB * 0.9);
    });
  }, 60_000);

  test("resync() skips a socket with unread bytes (busy) and takes it once they are read", async () => {
    await withChild("sm-busy", async (child, cgroup) => {
      const { tuples } = await child.run<Opened>("open 1");
      const t = tuples[0] as ChildTuple;
      // More than Node reads ahead into its own buffer: the rest stays unread in the kernel.
      await child.run(`hold 0 ${MiB}`);
      using acc = accelerate({ cgroup, local: LOCAL, resync: false });
      const first = child.ns.run(() => acc.resync());
      expect(first.busy).toContainEqual(peerOf(t));
      expect(acc.status(peerOf(t))).toEqual({ accelerated: false, reason: "busy" });
      expect((await child.run<{ ok: boolean }>(`drain 0 ${MiB}`)).ok).toBe(true);
      const second = child.ns.run(() => acc.resync());
      expect(second.inserted).toContainEqual(peerOf(t));
      expect(second.busy).toEqual([]);
      expect(acc.status(t)).toEqual({ accelerated: true, reason: "accelerated" });
      expect((await child.run<Xfer>(`xfer 0 ${4 * MiB}`)).ok).toBe(true);
      expect(acc.stats().resyncBusy).toBeGreaterThanOrEqual(1n);
    });
  }, 60_000);

  test("half-close delivers everything both ways; RST ends the connection and its sockets leave the map", async () => {
    await withChild("sm-close", async (child, cgroup) => {
      using acc = accelerate({ cgroup, local: LOCAL });
      const { tuples } = await child.run<Opened>("open 2");
      expect(acc.sockets()).toHaveLength(4);
      expect(await child.run<{ ok: boolean }>(`halfclose 0 ${8 * MiB}`)).toEqual({ ok: true });
      expect(await child.run<{ code: string }>("reset 1")).toEqual({ code: "ECONNRESET" });
      // Closed sockets leave the sockhash by themselves.
      for (let i = 0; i < 50 && acc.sockets().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(acc.sockets()).toEqual([]);
      expect(acc.status(tuples[1] as ChildTuple)).toEqual({ accelerated: false, reason: "closed" });
      expect(acc.stats().redirectedBytes).toBeGreaterThan(0n);
    });
  }, 120_000);

  test("connections to addresses that are not local are left alone", async () => {
    await withChild("sm-nonlocal", async (child, cgroup) => {
      // 127.0.0.1 is not in the list: the connection is "not local".
      using acc = accelerate({ cgroup, local: ["10.99.0.0/16"] });
      const { tuples } = await child.run<Opened>("open 1");
      const r = await child.run<Xfer>(`xfer 0 ${4 * MiB}`);
      expect(r.ok).toBe(true);
      expect(r.loBytes).toBeGreaterThan(8 * MiB);
      const s = acc.stats();
      expect(s.notLocal).toBe(2n);
      expect(s.inserted).toBe(0n);
      expect(s.redirected).toBe(0n);
      expect(acc.sockets()).toEqual([]);
      expect(acc.status(tuples[0] as ChildTuple)).toEqual({ accelerated: false, reason: "notLocal" });
    });
  }, 60_000);

  test("close() in the middle of a transfer keeps it byte-exact and the connection working", async () => {
    await withChild("sm-detach", async (child, cgroup) => {
      const acc = accelerate({ cgroup, local: LOCAL });
      await child.run<Opened>("open 1");
      const running = child.run<Xfer>(`xfer 0 ${256 * MiB}`);
      for (let i = 0; i < 500 && acc.stats().redirectedBytes < BigInt(32 * MiB); i++)
        await new Promise((r) => setTimeout(r, 5));
      expect(acc.stats().redirectedBytes).toBeGreaterThanOrEqual(BigInt(32 * MiB));
      acc.close();
      expect((await running).ok).toBe(true);
      // The connection keeps working on the normal path.
      const after = await child.run<Xfer>(`xfer 0 ${4 * MiB}`);
      expect(after.ok).toBe(true);
      expect(after.loBytes).toBeGreaterThan(8 * MiB);
      expect(() => acc.stats()).toThrow(SockmapError);
    });
  }, 300_000);

  test("a process restarted after a crash adopts the pinned acceleration: existing connections stay accelerated", async () => {
    await withChild("sm-restart", async (child, cgroup) => {
      using dir = bpffsDir();
      const pin = dir.join("sockmap");
      // The first process accelerates, then crashes (SIGKILL).
      const first = spawn(
        process.execPath,
        ["--conditions=@dp/source", "--import", "tsx", RESTART_CHILD, cgroup, pin],
        { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      onTestFinished(() => void first.kill("SIGKILL"));
      let stderr = "";
      first.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const line = await new Promise<string>((resolve, reject) => {
        first.stdout.once("data", (d: Buffer) => resolve(d.toString()));
        first.once("exit", (code) => reject(new Error(`restart child exited (${code}): ${stderr}`)));
      });
      expect(JSON.parse(line)).toEqual({ adopted: false });
      const { tuples } = await child.run<Opened>("open 1");
      expect((await child.run<Xfer>(`xfer 0 ${MiB}`)).ok).toBe(true);
      const exited = new Promise((r) => first.once("exit", r));
      first.kill("SIGKILL");
      await exited;
      // In between, the pinned programs keep redirecting.
      const between = await child.run<Xfer>(`xfer 0 ${8 * MiB}`);
      expect(between.ok).toBe(true);
      expect(between.loBytes).toBeLessThan(4 * MiB);
      const second = accelerate({ cgroup, local: LOCAL, pin });
      expect(second.adopted).toBe(true);
      expect(second.sockets()).toHaveLength(2);
      expect(second.status(tuples[0] as ChildTuple)).toEqual({ accelerated: true, reason: "accelerated" });
      const before = second.stats().redirectedBytes;
      expect(before).toBeGreaterThanOrEqual((BigInt(2 * 9 * MiB) * 9n) / 10n);
      expect((await child.run<Xfer>(`xfer 0 ${8 * MiB}`)).ok).toBe(true);
      expect(second.stats().redirectedBytes).toBeGreaterThan(before);
      // New connections are accelerated by the adopted sock_ops link.
      const { tuples: more } = await child.run<Opened>("open 1");
      expect(second.status(more[0] as ChildTuple).reason).toBe("accelerated");
      // release() hands over to the next process; close() ends it and removes the pins.
      second.release();
      const third = accelerate({ cgroup, local: LOCAL, pin });
      expect(third.adopted).toBe(true);
      expect(third.sockets()).toHaveLength(4);
      third.close();
      expect(existsSync(`${pin}/socks`)).toBe(false);
      expect(existsSync(`${pin}/ledger/link-sockops-${third.cgroupId}`)).toBe(false);
      const after = await child.run<Xfer>(`xfer all ${4 * MiB}`);
      expect(after.ok).toBe(true);
      expect(after.loBytes).toBeGreaterThan(16 * MiB);
    });
  }, 120_000);

  test("close() of a pinned acceleration removes its pins and ledger entry and detaches sock_ops", () => {
    using cg = testCgroup();
    using dir = bpffsDir();
    const pin = dir.join("sockmap");
    const acc = accelerate({ cgroup: cg.path, local: LOCAL, pin });
    expect(existsSync(`${pin}/socks`)).toBe(true);
    using ledger = openLedger(`${pin}/ledger`);
    expect(ledger.entries().map((e) => e.path)).toEqual([`${pin}/ledger/link-sockops-${acc.cgroupId}`]);
    expect(listAttachments({ cgroup: cg.path }).map((a) => a.hook)).toContain("cgroupSockOps");
    acc.close();
    acc.close();
    expect(existsSync(`${pin}/socks`)).toBe(false);
    expect(ledger.entries()).toEqual([]);
    expect(listAttachments({ cgroup: cg.path })).toEqual([]);
  });

  test("resync() inserts connections established before the programs were attached", async () => {
    await withChild("sm-resync", async (child, cgroup) => {
      using ns2 = netns({ label: "sm-resync-other" });
      const { tuples } = await child.run<Opened>("open 2");
      expect((await child.run<Xfer>(`xfer all ${MiB}`)).ok).toBe(true);
      using acc = accelerate({ cgroup, local: LOCAL, resync: false });
      const t = tuples[0] as ChildTuple;
      expect(acc.status(t)).toEqual({ accelerated: false, reason: "notSeen" });
      // The iterator runs in the calling thread's namespace: none there in another one.
      expect(ns2.run(() => acc.resync()).inserted).toEqual([]);
      const r = child.ns.run(() => acc.resync());
      expect(r.inserted).toHaveLength(4);
      expect(r.busy).toEqual([]);
      expect(acc.status(t)).toEqual({ accelerated: true, reason: "accelerated" });
      const again = child.ns.run(() => acc.resync());
      expect(again).toMatchObject({ inserted: [], present: 4 });
      const x = await child.run<Xfer>(`xfer all ${4 * MiB}`);
      expect(x.ok).toBe(true);
      const s = acc.stats();
      expect(s.resynced).toBe(4n);
      expect(s.redirectedBytes).toBeGreaterThan(BigInt(8 * MiB));
    });
  }, 120_000);

  test("a full sockhash sends further connections down the normal path, intact, and says so", async () => {
    await withChild("sm-full", async (child, cgroup) => {
      using acc = accelerate({ cgroup, local: LOCAL, maxSockets: 2 });
      const { tuples } = await child.run<Opened>("open 2");
      expect(acc.sockets()).toHaveLength(2);
      expect(acc.status(tuples[0] as ChildTuple).reason).toBe("accelerated");
      expect(acc.status(tuples[1] as ChildTuple)).toEqual({ accelerated: false, reason: "mapFull", errno: 7 });
      expect((await child.run<Xfer>(`xfer all ${4 * MiB}`)).ok).toBe(true);
      expect(acc.stats().insertFailed).toBe(2n);
    });
  }, 60_000);
});

describe("accelerate() refuses bad input with typed errors", () => {
  test("a path that is not a cgroup v2 directory", () => {
    let err: unknown;
    try {
      accelerate({ cgroup: "/tmp", local: LOCAL });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SockmapError);
    expect((err as SockmapError).code).toBe("notCgroup2");
    expect(() => accelerate({ cgroup: "/nonexistent-dp-cgroup", local: LOCAL })).toThrow(/cannot open cgroup/);
  });

  test("policy maps that are not maps, or not the datapath's, and malformed prefixes", () => {
    using cg = testCgroup();
    expect(() => accelerate({ cgroup: cg.path, local: LOCAL, policy: {} as never })).toThrow(
      /policy\.endpoints must be an open BpfMap/,
    );
    using wrong = createMap({ name: "dpt_sm_wrong", type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
    expect(() =>
      accelerate({ cgroup: cg.path, local: LOCAL, policy: { endpoints: wrong, ipcache: wrong, policy: wrong } }),
    ).toThrow(MapCompatibilityError);
    expect(() => accelerate({ cgroup: cg.path, local: ["10.0.0.0/33"] })).toThrow(TypeError);
    expect(() => accelerate({ cgroup: cg.path, local: LOCAL, maxSockets: 1 })).toThrow(RangeError);
  });
});
