// Test fixture: a Node child process, inside a test network namespace and
// a test cgroup, that holds TCP connections over 127.0.0.1 or ::1 (to a
// dual-stack listener) and runs
// commands sent as lines on stdin (open connections, transfer random data
// both ways with SHA-256 digests, half-close, reset), answering one JSON
// line per command. The connections outlive any one acceleration, which
// is what restart and detach tests need.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from "node:fs";
import type { TestNetns } from "@dp/core/testing";
import { findCgroup2Mount, mountCgroup2 } from "@dp/hooks";

/** A uniquely named cgroup v2 directory, removed (with a cgroup2 mount made for it) on dispose. */
export function testCgroup(): { readonly path: string; [Symbol.dispose](): void } {
  let root = findCgroup2Mount();
  let mounted: string | undefined;
  if (root === undefined) {
    mounted = mkdtempSync("/tmp/dpt-sm-cgroup2-");
    mountCgroup2(mounted);
    root = mounted;
  }
  const path = `${root}/dpt-sm-${process.pid}-${randomBytes(4).toString("hex")}`;
  mkdirSync(path);
  return {
    path,
    [Symbol.dispose](): void {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(path);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 50) throw err;
          execFileSync("sleep", ["0.1"]);
        }
      }
      if (mounted !== undefined) {
        execFileSync("umount", [mounted]);
        rmdirSync(mounted);
      }
    },
  };
}

const SCRIPT = String.raw`
const net = require("node:net");
const crypto = require("node:crypto");
const fs = require("node:fs");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const lo = () => Number(fs.readFileSync("/sys/class/net/lo/statistics/tx_bytes", "utf8"));
const conns = [];
const accepted = new Map();
const waiting = new Map();
const server = net.createServer({ allowHalfOpen: true }, (s) => {
  const w = waiting.get(s.remotePort);
  if (w) { waiting.delete(s.remotePort); w(s); } else accepted.set(s.remotePort, s);
});
const serverFor = (port) => new Promise((r) => {
  const s = accepted.get(port);
  if (s) { accepted.delete(port); r(s); } else waiting.set(port, r);
});
const tuple = (s) => ({ localAddress: s.localAddress, localPort: s.localPort, remoteAddress: s.remoteAddress, remotePort: s.remotePort });
async function pump(sock, n) {
  const h = crypto.createHash("sha256");
  let left = n;
  while (left > 0) {
    const c = crypto.randomBytes(Math.min(left, 256 * 1024));
    h.update(c);
    left -= c.length;
    if (!sock.write(c)) await new Promise((r) => sock.once("drain", r));
    // Let the reading side run, as two processes would.
    else await new Promise((r) => setImmediate(r));
  }
  return h.digest("hex");
}
function sink(sock, n) {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash("sha256");
    let got = 0;
    if (n === 0) { resolve({ hash: h.digest("hex"), got }); return; }
    const on = (d) => {
      h.update(d);
      got += d.length;
      if (got >= n) { sock.off("data", on); resolve({ hash: h.digest("hex"), got }); }
    };
    sock.on("data", on);
    sock.once("error", reject);
  });
}
function untilEnd(sock) {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash("sha256");
    let got = 0;
    sock.on("data", (d) => { h.update(d); got += d.length; });
    sock.once("end", () => resolve({ hash: h.digest("hex"), got }));
    sock.once("error", reject);
  });
}
async function xfer(i, n) {
  const { client, peer } = conns[i];
  const [a, b, ra, rb] = await Promise.all([pump(client, n), pump(peer, n), sink(peer, n), sink(client, n)]);
  return { up: a === ra.hash && ra.got === n, down: b === rb.hash && rb.got === n };
}
const commands = {
  async open(count, host = "127.0.0.1") {
    const made = [];
    for (let k = 0; k < Number(count); k++) {
      const client = await new Promise((r, j) => { const c = net.connect({ port: server.address().port, host, allowHalfOpen: true }, () => r(c)); c.once("error", j); });
      client.setNoDelay(true);
      const peer = await serverFor(client.localPort);
      peer.setNoDelay(true);
      conns.push({ client, peer });
      made.push(conns.length - 1);
    }
    return { ids: made, tuples: made.map((i) => tuple(conns[i].client)) };
  },
  async xfer(which, bytes) {
    const ids = which === "all" ? conns.map((_, i) => i).filter((i) => !conns[i].closed) : [Number(which)];
    const before = lo();
    const results = await Promise.all(ids.map((i) => xfer(i, Number(bytes))));
    return { ok: results.every((r) => r.up && r.down), results, loBytes: lo() - before };
  },
  async hold(i, bytes) {
    // The client sends while the server does not read: unread bytes at the server.
    const { client, peer } = conns[Number(i)];
    peer.pause();
    const data = crypto.randomBytes(Number(bytes));
    conns[Number(i)].held = crypto.createHash("sha256").update(data).digest("hex");
    await new Promise((r) => client.write(data, r));
    await new Promise((r) => setTimeout(r, 100));
    return { held: true };
  },
  async drain(i, bytes) {
    const c = conns[Number(i)];
    const got = sink(c.peer, Number(bytes));
    c.peer.resume();
    const r = await got;
    return { ok: r.hash === c.held && r.got === Number(bytes) };
  },
  async halfclose(i, bytes) {
    // The client sends and shuts its side; the server reads to the end, then answers and closes.
    const { client, peer } = conns[Number(i)];
    const n = Number(bytes);
    const up = pump(client, n).then((h) => { client.end(); return h; });
    const got = await untilEnd(peer);
    const sent = await up;
    const down = pump(peer, n).then((h) => { peer.end(); return h; });
    const back = await untilEnd(client);
    conns[Number(i)].closed = true;
    return { ok: got.hash === sent && got.got === n && back.hash === (await down) && back.got === n };
  },
  async reset(i) {
    const { client, peer } = conns[Number(i)];
    const seen = new Promise((r) => { peer.once("error", (e) => r(e.code)); peer.once("close", () => r("close")); });
    client.resetAndDestroy();
    const code = await seen;
    conns[Number(i)].closed = true;
    return { code };
  },
  async exit() {
    for (const c of conns) { c.client.destroy(); c.peer.destroy(); }
    server.close();
    return { bye: true };
  },
};
process.stdout.write(process.pid + "\n");
process.stdin.once("data", () => {
  // Dual-stack: an IPv4 client's server-side socket is IPv6 with IPv4-mapped addresses.
  server.listen(0, "::", () => {
    out({ ready: true });
    let buf = "";
    process.stdin.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [cmd, ...args] = buf.slice(0, nl).trim().split(" ");
        buf = buf.slice(nl + 1);
        commands[cmd](...args).then(out, (e) => out({ error: String(e && e.stack || e) })).then(() => { if (cmd === "exit") process.exit(0); });
      }
    });
  });
});
`;

/** A running child: send it a command, get its JSON answer. */
export class TrafficChild {
  /** The child's namespace. */
  readonly ns: TestNetns;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string) => void)[] = [];
  #err = "";

  /**
   * Starts the child in `ns`, moved into `cgroup` before it opens any socket.
   *
   * @param ns The namespace.
   * @param cgroup The cgroup directory.
   */
  constructor(ns: TestNetns, cgroup: string) {
    this.ns = ns;
    this.#child = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", SCRIPT], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let pidSeen = false;
    this.#child.stderr.on("data", (d: Buffer) => (this.#err += d.toString()));
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
          continue;
        }
        const w = this.#waiters.shift();
        if (w !== undefined) w(line);
        else this.#lines.push(line);
      }
    });
  }

  #next(timeoutMs: number): Promise<unknown> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child timed out: ${this.#err}`)), timeoutMs);
      this.#waiters.push((l) => {
        clearTimeout(timer);
        const v = JSON.parse(l) as { error?: string };
        if (v.error !== undefined) reject(new Error(v.error));
        else resolve(v);
      });
    });
  }

  /** Waits until the child listens. */
  async ready(): Promise<void> {
    await this.#next(30_000);
  }

  /**
   * Sends a command and waits for its answer.
   *
   * @param line The command and its arguments.
   * @param timeoutMs How long to wait.
   * @returns The answer.
   */
  async run<T>(line: string, timeoutMs = 120_000): Promise<T> {
    this.#child.stdin.write(`${line}\n`);
    return (await this.#next(timeoutMs)) as T;
  }

  /** Ends the child and waits for it. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((r) => this.#child.once("exit", r));
    this.#child.stdin.write("exit\n");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** A connection tuple as the child reports it. */
export interface ChildTuple {
  /** Client address. */
  readonly localAddress: string;
  /** Client port. */
  readonly localPort: number;
  /** Server address. */
  readonly remoteAddress: string;
  /** Server port. */
  readonly remotePort: number;
}
