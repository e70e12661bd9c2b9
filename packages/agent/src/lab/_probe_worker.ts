// A small Node.js process living in one network namespace: it serves
// HTTP on a TCP port and echoes UDP on the next port, and runs probes
// (an HTTP GET, a UDP round trip, a ping) on request. The parent talks to
// it over stdin/stdout with JSON lines; it exits when stdin closes, so it
// never outlives the process that started it.
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { spawnInNetns } from "./_netns_exec.ts";

/** A probe's protocol: HTTP over TCP, a UDP round trip or an ICMP echo. */
export type ProbeProtocol = "http" | "udp" | "icmp";

/** A probe request. */
export interface ProbeRequest {
  /** The protocol. */
  readonly protocol: ProbeProtocol;
  /** The destination address. */
  readonly host: string;
  /** The destination port (not for ICMP). */
  readonly port?: number;
  /** How long to wait for an answer. */
  readonly timeoutMs: number;
}

/** A probe's outcome. */
export interface ProbeResult {
  /** Whether the destination answered. */
  readonly ok: boolean;
  /** `HTTP 200`, `echo`, `1 reply`, `timeout`, `error ECONNREFUSED`, ... */
  readonly detail: string;
  /** How long it took. */
  readonly ms: number;
}

const SOURCE = String.raw`
"use strict";
const http = require("node:http");
const dgram = require("node:dgram");
const net = require("node:net");
const { execFile } = require("node:child_process");
const port = Number(process.argv[1]);
const send = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const server = http.createServer((req, res) => { req.resume(); res.end("ok\n"); });
server.on("error", (e) => { send({ fatal: "http: " + e.message }); process.exit(1); });
const udp = dgram.createSocket({ type: "udp6", ipv6Only: false });
udp.on("message", (m, r) => udp.send(m, r.port, r.address));
udp.on("error", (e) => { send({ fatal: "udp: " + e.message }); process.exit(1); });
let pending = 2;
const up = () => { if (--pending === 0) send({ ready: true }); };
server.listen(port, "::", up);
udp.bind(port + 1, "::", up);
function probe(r, done) {
  const t0 = Date.now();
  const fin = (ok, detail) => done({ ok, detail, ms: Date.now() - t0 });
  if (r.protocol === "http") {
    const req = http.get({ host: r.host, port: r.port, path: "/", timeout: r.timeoutMs, agent: false }, (res) => {
      res.resume(); res.on("end", () => fin(res.statusCode === 200, "HTTP " + res.statusCode));
      res.on("error", (e) => fin(false, "error " + (e.code || e.message)));
    });
    req.on("timeout", () => { req.destroy(); fin(false, "timeout"); });
    req.on("error", (e) => { if (!req.destroyed || e.code !== "ECONNRESET") fin(false, "error " + (e.code || e.message)); });
  } else if (r.protocol === "udp") {
    const s = dgram.createSocket(net.isIPv6(r.host) ? "udp6" : "udp4");
    const timer = setTimeout(() => { s.close(); fin(false, "timeout"); }, r.timeoutMs);
    s.on("message", () => { clearTimeout(timer); s.close(); fin(true, "echo"); });
    s.on("error", (e) => { clearTimeout(timer); s.close(); fin(false, "error " + (e.code || e.message)); });
    s.send("dp-probe", r.port, r.host);
  } else {
    const secs = String(Math.max(1, Math.ceil(r.timeoutMs / 1000)));
    execFile("ping", ["-n", "-q", "-c", "1", "-i", "0.2", "-w", secs, r.host], { timeout: r.timeoutMs + 1000 }, (err) =>
      fin(err === null, err === null ? "reply" : "no reply"));
  }
}
const once = (done) => { let called = false; return (v) => { if (!called) { called = true; done(v); } }; };
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  probe(m, once((res) => send({ id: m.id, ...res })));
}).on("close", () => process.exit(0));
`;

/**
 * The probe process of one namespace.
 */
export class ProbeWorker {
  /** The namespace's name. */
  readonly netns: string;
  /** The HTTP port it serves (UDP echo on `port + 1`). */
  readonly port: number;
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<number, (r: ProbeResult) => void>();
  #next = 1;
  #exited = false;

  /** @internal Use {@link ProbeWorker.start}. */
  constructor(netns: string, port: number, proc: ChildProcess) {
    this.netns = netns;
    this.port = port;
    this.#proc = proc;
  }

  /**
   * Starts a worker in a namespace and waits until its servers listen.
   *
   * @param netns The namespace's name.
   * @param port The HTTP port (UDP echo on the next one).
   * @returns The worker.
   * @throws {Error} When it cannot start.
   */
  static async start(netns: string, port: number): Promise<ProbeWorker> {
    const proc = spawnInNetns(netns, process.execPath, ["-e", SOURCE, String(port)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const worker = new ProbeWorker(netns, port, proc);
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    // A probe process killed under us (Ctrl-C reaches the whole process
    // group) makes the next write fail with EPIPE; its exit answers the
    // probes that wait.
    proc.stdin?.on("error", () => {});
    const ready = new Promise<void>((resolve, reject) => {
      proc.on("error", reject);
      proc.on("exit", (code) => {
        worker.#exited = true;
        for (const done of worker.#waiting.values()) done({ ok: false, detail: "probe process exited", ms: 0 });
        worker.#waiting.clear();
        reject(new Error(`Cannot start the probe process in namespace "${netns}": exit ${code} ${stderr.trim()}`));
      });
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const m = JSON.parse(line) as { ready?: true; fatal?: string; id?: number } & ProbeResult;
        if (m.ready === true) resolve();
        else if (m.fatal !== undefined) reject(new Error(`Cannot start the probe process in "${netns}": ${m.fatal}`));
        else if (m.id !== undefined) {
          const done = worker.#waiting.get(m.id);
          worker.#waiting.delete(m.id);
          done?.({ ok: m.ok, detail: m.detail, ms: m.ms });
        }
      });
    });
    try {
      await ready;
    } catch (err) {
      worker.close();
      throw err;
    }
    return worker;
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /**
   * Runs one probe from this namespace.
   *
   * @param request What to probe.
   * @returns Its outcome.
   */
  probe(request: ProbeRequest): Promise<ProbeResult> {
    if (this.#exited) return Promise.resolve({ ok: false, detail: "probe process exited", ms: 0 });
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#proc.stdin?.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  /** Stops it. */
  close(): void {
    if (!this.#exited) this.#proc.kill("SIGKILL");
    this.#proc.stdin?.destroy();
  }
}
