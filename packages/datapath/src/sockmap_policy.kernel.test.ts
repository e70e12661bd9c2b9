// @dp/sockmap's policy re-check against a Node's maps, with real traffic:
// pods of a node exchange data through the sk_msg redirect (their
// processes run in the pods' namespaces and in one test cgroup), the
// node's policy changes at run time, and the counters show which messages
// were redirected and which the policy sent down the normal path, where
// the node's tc programs police them.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeEach, expect, test } from "vitest";
import { requireRoot, type TestNetns } from "@dp/core/testing";
import { findCgroup2Mount, mountCgroup2 } from "@dp/hooks";
import { accelerate, type Acceleration, type SockmapStats } from "@dp/sockmap";
import { NET, Topology } from "./_test_node.ts";
import { openNode } from "./node.ts";
import type { PolicyRule } from "./policy/rule.ts";

beforeEach((t) => requireRoot(t));

const KiB = 1024;
const PORT = 8080;

/** A uniquely named cgroup v2 directory (under a cgroup2 mount made for it when there is none). */
function testCgroup(): { readonly path: string; close(): Promise<void> } {
  let root = findCgroup2Mount();
  let mounted: string | undefined;
  if (root === undefined) {
    mounted = mkdtempSync("/tmp/dpt-smp-cgroup2-");
    mountCgroup2(mounted);
    root = mounted;
  }
  const path = `${root}/dpt-smp-${process.pid}-${randomBytes(4).toString("hex")}`;
  mkdirSync(path);
  return {
    path,
    async close(): Promise<void> {
      // The killed processes leave the cgroup asynchronously.
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(path);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 50) throw err;
          await sleep(100);
        }
      }
      if (mounted !== undefined) {
        spawn("umount", [mounted]).once("exit", () => rmdirSync(mounted));
      }
    },
  };
}

// A pod's process: listens (an echo server) or connects and exchanges
// random data with an echo server, answering one JSON line per command.
const SCRIPT = String.raw`
const net = require("node:net");
const crypto = require("node:crypto");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const conns = [];
const commands = {
  listen(port) {
    return new Promise((r) => {
      net.createServer((s) => { s.setNoDelay(true); s.on("data", (d) => s.write(d)); s.on("error", () => {}); })
        .listen(Number(port), "::", () => r({ listening: true }));
    });
  },
  open(host, port, ms) {
    return new Promise((r) => {
      const c = net.connect({ host, port: Number(port) });
      const t = setTimeout(() => { c.destroy(); r({ error: "timeout" }); }, Number(ms));
      c.once("error", (e) => { clearTimeout(t); r({ error: e.code }); });
      c.once("connect", () => {
        clearTimeout(t);
        c.setNoDelay(true);
        conns.push(c);
        r({ id: conns.length - 1, tuple: { localAddress: c.localAddress, localPort: c.localPort, remoteAddress: c.remoteAddress, remotePort: c.remotePort } });
      });
    });
  },
  // Sends the bytes in 16 KiB writes and waits for all of them to come back.
  echo(id, bytes, ms) {
    const c = conns[Number(id)];
    const n = Number(bytes);
    const data = crypto.randomBytes(n);
    return new Promise((r) => {
      const back = [];
      let got = 0;
      const done = (ok) => { clearTimeout(t); c.off("data", on); r({ ok, got }); };
      const on = (d) => { back.push(d); got += d.length; if (got >= n) done(Buffer.concat(back).equals(data)); };
      const t = setTimeout(() => done(false), Number(ms));
      c.on("data", on);
      for (let at = 0; at < n; at += 16384) c.write(data.subarray(at, Math.min(n, at + 16384)));
    });
  },
};
process.stdout.write(process.pid + "\n");
let buf = "";
process.stdin.on("data", (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const [cmd, ...args] = buf.slice(0, nl).trim().split(" ");
    buf = buf.slice(nl + 1);
    if (cmd === "go") continue;
    Promise.resolve(commands[cmd](...args)).then(out, (e) => out({ error: String(e) }));
  }
});
`;

/** A process in a pod's namespace, moved into the cgroup before it opens a socket. */
class PodProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiters: ((line: string) => void)[] = [];
  readonly #started: Promise<void>;
  #err = "";

  constructor(ns: TestNetns, cgroup: string) {
    this.#child = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", SCRIPT]);
    this.#child.stderr.on("data", (d: Buffer) => (this.#err += d.toString()));
    let out = "";
    let started: () => void = () => undefined;
    this.#started = new Promise((r) => (started = r));
    let pidSeen = false;
    this.#child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      let nl;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (!pidSeen) {
          pidSeen = true;
          writeFileSync(`${cgroup}/cgroup.procs`, line);
          this.#child.stdin.write("go\n");
          started();
        } else {
          this.#waiters.shift()?.(line);
        }
      }
    });
  }

  async run<T>(line: string): Promise<T> {
    await this.#started;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pod process timed out on "${line}": ${this.#err}`)), 30_000);
      this.#waiters.push((l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l) as T);
      });
      this.#child.stdin.write(`${line}\n`);
    });
  }

  kill(): Promise<unknown> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return Promise.resolve();
    const exited = new Promise((r) => this.#child.once("exit", r));
    this.#child.kill("SIGKILL");
    return exited;
  }
}

interface Tuple {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}
interface Opened {
  readonly id?: number;
  readonly tuple?: Tuple;
  readonly error?: string;
}
interface Echoed {
  readonly ok: boolean;
  readonly got: number;
}

function peerOf(t: Tuple): Tuple {
  return {
    localAddress: t.remoteAddress,
    localPort: t.remotePort,
    remoteAddress: t.localAddress,
    remotePort: t.localPort,
  };
}

/** What one step changed in the counters. */
function delta(acc: Acceleration, before: SockmapStats): { redirected: bigint; fallbackBytes: bigint; policy: bigint } {
  const s = acc.stats();
  return {
    redirected: s.redirectedBytes - before.redirectedBytes,
    fallbackBytes: s.fallbackBytes - before.fallbackBytes,
    policy: s.fallback.policy - before.fallback.policy,
  };
}

function webIngress(from: readonly string[]): PolicyRule {
  return {
    name: "web-in",
    endpointSelector: { matchLabels: { app: "web" } },
    ingress: [
      {
        fromEndpoints: from.map((app) => ({ matchLabels: { app } })),
        toPorts: [{ ports: [{ port: String(PORT), protocol: "TCP" }] }],
      },
    ],
  };
}

function clientEgress(port: number): PolicyRule {
  return {
    name: "client-out",
    endpointSelector: { matchLabels: { app: "client" } },
    egress: [
      {
        toEndpoints: [{ matchLabels: { app: "web" } }],
        toPorts: [{ ports: [{ port: String(port), protocol: "TCP" }] }],
      },
    ],
  };
}
const CLIENT_OUT = clientEgress(PORT);

test("pods' messages are redirected only while the node's policy allows the pair; a denying change sends the next ones down the normal path", async () => {
  using topo = new Topology(3);
  const cg = testCgroup();
  const procs: PodProcess[] = [];
  const node = await openNode({
    stateDir: topo.stateDir,
    netns: topo.node.ns,
    router: NET.router,
    uplink: topo.uplink,
  });
  try {
    const [pWeb, pClient, pOther] = topo.pods as [TestNetns, TestNetns, TestNetns];
    await node.addEndpoint({ netns: pWeb.name, ...NET.pods[0], labels: ["k8s:app=web"] });
    await node.addEndpoint({ netns: pClient.name, ...NET.pods[1], labels: ["k8s:app=client"] });
    await node.addEndpoint({ netns: pOther.name, ...NET.pods[2], labels: ["k8s:app=other"] });
    await node.setRules([webIngress(["client", "other"]), CLIENT_OUT]);
    const web = new PodProcess(pWeb, cg.path);
    const client = new PodProcess(pClient, cg.path);
    const other = new PodProcess(pOther, cg.path);
    procs.push(web, client, other);
    await web.run("listen 8080");
    const webIp = NET.pods[0].ipv4;
    // Established before the acceleration: resync() inserts it, telling the accepted side
    // (a listener on its port) from the connected one, which the policy check needs.
    const early = await client.run<Opened>(`open ${webIp} ${PORT} 3000`);

    using acc = accelerate({
      cgroup: cg.path,
      local: ["10.200.1.0/24", "fd10::1:0/112"],
      policy: node.sockmapPolicy(),
    });
    const c = await client.run<Opened>(`open ${webIp} ${PORT} 3000`);
    const o = await other.run<Opened>(`open ${webIp} ${PORT} 3000`);
    const o6 = await other.run<Opened>(`open ${NET.pods[0].ipv6} ${PORT} 3000`);
    if (c.tuple === undefined || o.tuple === undefined || o6.tuple === undefined)
      throw new Error(`connect failed: ${c.error} ${o.error} ${o6.error}`);
    const echo = (p: PodProcess, id: number | undefined, bytes: number, ms = 10_000): Promise<Echoed> =>
      p.run<Echoed>(`echo ${id} ${bytes} ${ms}`);
    const N = 256 * KiB;

    if (early.tuple === undefined) throw new Error(`connect failed: ${early.error}`);
    expect(acc.status(early.tuple)).toEqual({ accelerated: false, reason: "notSeen" });
    expect(pClient.run(() => acc.resync()).inserted).toEqual([early.tuple]);
    expect(pWeb.run(() => acc.resync()).inserted).toEqual([peerOf(early.tuple)]);
    let before = acc.stats();
    expect(await echo(client, early.id, N)).toEqual({ ok: true, got: N });
    const resynced = delta(acc, before);
    expect(resynced.policy).toBe(0n);
    expect(Number(resynced.redirected)).toBeGreaterThan(0.9 * 2 * N);

    // Both pairs allowed: each message goes straight to the peer socket.
    before = acc.stats();
    expect(await echo(client, c.id, N)).toEqual({ ok: true, got: N });
    expect(await echo(other, o.id, N)).toEqual({ ok: true, got: N });
    expect(await echo(other, o6.id, N)).toEqual({ ok: true, got: N });
    const allowed = delta(acc, before);
    expect(allowed.policy).toBe(0n);
    expect(allowed.redirected + allowed.fallbackBytes).toBe(BigInt(6 * N));
    expect(Number(allowed.redirected)).toBeGreaterThan(0.9 * 6 * N);
    for (const t of [c.tuple, peerOf(c.tuple), o.tuple, peerOf(o.tuple), o6.tuple, peerOf(o6.tuple)])
      expect(acc.status(t)).toEqual({ accelerated: true, reason: "accelerated" });
    console.log(
      `sockmap policy: allowed pairs ${JSON.stringify(allowed, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
    );

    // web no longer admits other: other's messages (both ways) fall back at once. The
    // datapath applies rule changes to new connections, so on the normal path this
    // established one still flows (its conntrack entry).
    await node.setRules([webIngress(["client"]), CLIENT_OUT]);
    before = acc.stats();
    expect(await echo(other, o.id, N)).toEqual({ ok: true, got: N });
    expect(await echo(other, o6.id, N)).toEqual({ ok: true, got: N });
    const denied = delta(acc, before);
    expect(denied.redirected).toBe(0n);
    expect(denied.fallbackBytes).toBe(BigInt(4 * N));
    expect(denied.policy).toBeGreaterThanOrEqual(4n);
    for (const t of [o.tuple, peerOf(o.tuple), o6.tuple, peerOf(o6.tuple)])
      expect(acc.status(t)).toEqual({ accelerated: false, reason: "policy" });
    console.log(
      `sockmap policy: denied pair ${JSON.stringify(acc.stats(), (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
    );

    // The allowed pair in the same run keeps being redirected.
    before = acc.stats();
    expect(await echo(client, c.id, N)).toEqual({ ok: true, got: N });
    const still = delta(acc, before);
    expect(still.policy).toBe(0n);
    expect(Number(still.redirected)).toBeGreaterThan(0.9 * 2 * N);
    expect(acc.status(c.tuple)).toEqual({ accelerated: true, reason: "accelerated" });

    // Allowed again: other's next messages are redirected again.
    await node.setRules([webIngress(["client", "other"]), CLIENT_OUT]);
    before = acc.stats();
    expect(await echo(other, o.id, N)).toEqual({ ok: true, got: N });
    const again = delta(acc, before);
    expect(again.policy).toBe(0n);
    expect(Number(again.redirected)).toBeGreaterThan(0.5 * 2 * N);
    expect(acc.status(o.tuple)).toEqual({ accelerated: true, reason: "accelerated" });

    // Denied again, and the pair's conntrack entries flushed: the tc programs now police
    // the fallen-back messages as a new connection and drop them.
    await node.setRules([webIngress(["client"]), CLIENT_OUT]);
    const dropsBefore = policyDrops(node.status().counters.metrics);
    expect(node.flushConntrack({ saddr: NET.pods[2].ipv4, daddr: webIp }).tcp).toBeGreaterThan(0);
    before = acc.stats();
    expect(await echo(other, o.id, 16 * KiB, 1500)).toEqual({ ok: false, got: 0 });
    const dropped = delta(acc, before);
    expect(dropped.redirected).toBe(0n);
    expect(dropped.policy).toBeGreaterThanOrEqual(1n);
    expect(policyDrops(node.status().counters.metrics)).toBeGreaterThan(dropsBefore);
    // A new connection of the denied pair never gets through the tc programs.
    expect(await other.run<Opened>(`open ${webIp} ${PORT} 1000`)).toEqual({ error: "timeout" });
    // The allowed pair still goes straight through.
    before = acc.stats();
    expect(await echo(client, c.id, N)).toEqual({ ok: true, got: N });
    expect(Number(delta(acc, before).redirected)).toBeGreaterThan(0.9 * 2 * N);
    // The client's own egress policy counts too: allowed to web on another port only.
    await node.setRules([webIngress(["client"]), clientEgress(PORT + 1)]);
    before = acc.stats();
    expect(await echo(client, c.id, N)).toEqual({ ok: true, got: N });
    const egress = delta(acc, before);
    expect(egress.redirected).toBe(0n);
    expect(egress.policy).toBeGreaterThanOrEqual(2n);
    expect(acc.status(c.tuple)).toEqual({ accelerated: false, reason: "policy" });
    console.log(
      `sockmap policy: final ${JSON.stringify(acc.stats(), (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
    );
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await node.destroy();
    await cg.close();
  }
}, 120_000);

function policyDrops(metrics: readonly { reasonName: string; packets: bigint }[]): bigint {
  return metrics
    .filter((m) => m.reasonName === "policy-default-deny" || m.reasonName === "policy-deny")
    .reduce((n, m) => n + m.packets, 0n);
}
