// Test-only: the topology of the Node's real-traffic tests (a node
// namespace with an uplink veth to an "outside" namespace, pods in their
// own namespaces, a state directory on bpffs) and small TCP and ping
// probes run with `ip netns exec`. Oracles use `ip`, `tc` and `bpftool`.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { bpffsDir, type BpffsDir, netns, type TestNetns, vethPair } from "@dp/core/testing";

/** Addresses of the test topology. */
export const NET = {
  router: { ipv4: "10.200.0.1", ipv6: "fd10::1" },
  uplink: { node4: "192.168.200.1", out4: "192.168.200.2", node6: "fd20::1", out6: "fd20::2" },
  pods: [
    { ipv4: "10.200.1.1", ipv6: "fd10::1:1" },
    { ipv4: "10.200.1.2", ipv6: "fd10::1:2" },
    { ipv4: "10.200.1.3", ipv6: "fd10::1:3" },
  ],
} as const;

/** A node namespace, an outside namespace behind its uplink, pod namespaces and a state directory. */
export class Topology {
  /** The node's namespace. */
  readonly node: TestNetns;
  /** The outside namespace. */
  readonly outside: TestNetns;
  /** Pod namespaces. */
  readonly pods: TestNetns[];
  /** The uplink's name in the node namespace. */
  readonly uplink: string;
  /** The state directory. */
  readonly stateDir: string;
  readonly #dir: BpffsDir;
  readonly #procs = new Set<ChildProcess>();

  /**
   * Creates it.
   *
   * @param pods How many pod namespaces.
   */
  constructor(pods: number) {
    this.#dir = bpffsDir();
    this.stateDir = this.#dir.join("node");
    this.node = netns({ label: "dpnode" });
    this.outside = netns({ label: "dpout" });
    this.pods = Array.from({ length: pods }, () => netns({ label: "dppod" }));
    const up = vethPair(this.node, this.outside, {
      addressA: `${NET.uplink.node4}/24`,
      addressB: `${NET.uplink.out4}/24`,
    });
    this.uplink = up.a.name;
    this.node.exec("ip", ["addr", "add", `${NET.uplink.node6}/64`, "dev", up.a.name, "nodad"]);
    this.outside.exec("ip", ["addr", "add", `${NET.uplink.out6}/64`, "dev", up.b.name, "nodad"]);
    this.outside.exec("ip", ["route", "add", "10.200.0.0/16", "via", NET.uplink.node4]);
    this.outside.exec("ip", ["route", "add", "fd10::/64", "via", NET.uplink.node6]);
    for (const ns of [this.node, this.outside, ...this.pods]) ns.exec("ip", ["link", "set", "lo", "up"]);
  }

  /**
   * Starts a TCP server in a namespace: it accepts connections, counts
   * the bytes each sends and answers `ok <bytes>` when the client ends.
   *
   * @param ns The namespace.
   * @param port The port.
   * @returns Resolves when it listens.
   */
  async server(ns: TestNetns, port: number): Promise<void> {
    const code = `
      const s = require("node:net").createServer((c) => { let n = 0; c.on("data", (d) => (n += d.length)); c.on("end", () => c.end("ok " + n)); c.on("error", () => {}); });
      s.listen(${port}, "::", () => console.log("listening"));`;
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.#procs.add(p);
    const [line] = (await once(p.stdout, "data")) as [Buffer];
    if (!line.toString().includes("listening")) throw new Error(`server in ${ns.name} did not start`);
  }

  /**
   * Connects from a namespace and sends `bytes` bytes.
   *
   * @param ns The client's namespace.
   * @param host The server's address.
   * @param port The port.
   * @param bytes How much to send.
   * @param timeoutMs The connect timeout.
   * @returns `ok <bytes>` from the server, or `timeout` / `error <code>`.
   */
  tcp(ns: TestNetns, host: string, port: number, bytes = 100_000, timeoutMs = 3000): Promise<string> {
    return this.#client(
      ns,
      host,
      port,
      `const total = ${bytes}; let sent = 0; const chunk = Buffer.alloc(16384, 97);
      const pump = () => { while (sent < total) { const n = Math.min(chunk.length, total - sent); sent += n; if (!c.write(chunk.subarray(0, n))) return c.once("drain", pump); } c.end(); };
      c.on("connect", pump);`,
      timeoutMs,
    );
  }

  /**
   * Runs a client that streams for `seconds` (a write every 10 ms) and reports `ok <bytes>` or the error.
   *
   * @param ns The client's namespace.
   * @param host The server's address.
   * @param port The port.
   * @param seconds How long to stream.
   * @returns The client's outcome.
   */
  stream(ns: TestNetns, host: string, port: number, seconds: number): Promise<string> {
    return this.#client(
      ns,
      host,
      port,
      `const chunk = Buffer.alloc(4096, 98); const end = Date.now() + ${seconds * 1000};
      c.on("connect", () => { c.setTimeout(0); const t = setInterval(() => { if (Date.now() > end) { clearInterval(t); c.end(); } else c.write(chunk); }, 10); });`,
      2000,
    );
  }

  #client(ns: TestNetns, host: string, port: number, body: string, timeoutMs: number): Promise<string> {
    const code = `
      const c = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${port} });
      let out = ""; c.setTimeout(${timeoutMs}, () => { console.log("timeout"); process.exit(0); });
      c.on("data", (d) => (out += d)); c.on("end", () => { console.log(out); process.exit(0); });
      c.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
      ${body}`;
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.#procs.add(p);
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    return once(p, "exit").then(() => {
      this.#procs.delete(p);
      return out.trim();
    });
  }

  /**
   * Whether one ping gets an answer, trying `attempts` times (a first IPv6 neighbour resolution can be slow).
   *
   * @param ns From where.
   * @param dst To where.
   * @param attempts How many pings at most.
   * @returns Whether one was answered.
   */
  ping(ns: TestNetns, dst: string, attempts = 1): boolean {
    for (let i = 0; i < attempts; i++) {
      try {
        ns.exec("ping", ["-c", "1", "-W", "1", dst]);
        return true;
      } catch {
        // No answer.
      }
    }
    return false;
  }

  /**
   * Runs a command on the host (an oracle such as bpftool).
   *
   * @param cmd The program.
   * @param args Its arguments.
   * @returns Its output.
   */
  static run(cmd: string, args: string[]): string {
    return execFileSync(cmd, args, { encoding: "utf8" });
  }

  /** Kills the probes, deletes the namespaces and the state directory. */
  close(): void {
    for (const p of this.#procs) p.kill("SIGKILL");
    for (const ns of [...this.pods, this.outside, this.node]) ns.close();
    this.#dir.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
