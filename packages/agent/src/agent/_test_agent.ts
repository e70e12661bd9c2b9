// Test-only: a testbed for the agent's kernel tests: a node namespace,
// pod namespaces, a private bpffs directory and a private state directory
// (socket, agent files), a config pointing at them, and small TCP probes
// run in the pods with `ip netns exec`.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bpffsDir, type BpffsDir, netns, type TestNetns } from "@dp/core/testing";
import type { AgentConfig } from "../config/agent_config.ts";
import { loadConfig } from "../config/load_config.ts";

/** The namespaces and directories of one test. */
export class AgentTestbed {
  /** The node's namespace. */
  readonly node: TestNetns;
  /** Pod namespaces. */
  readonly pods: TestNetns[];
  /** The bpffs directory (`bpf-root`). */
  readonly bpf: BpffsDir;
  /** The state directory (`state-dir`). */
  readonly stateDir: string;
  readonly #tmp: string;
  readonly #procs = new Set<ChildProcess>();

  /**
   * Creates the namespaces and directories.
   *
   * @param pods How many pod namespaces.
   */
  constructor(pods: number) {
    this.#tmp = mkdtempSync(join(tmpdir(), "dpt-agent-"));
    this.stateDir = join(this.#tmp, "run");
    this.bpf = bpffsDir();
    this.node = netns({ label: "dpanode" });
    this.pods = Array.from({ length: pods }, () => netns({ label: "dpapod" }));
  }

  /** The API socket. */
  get socketPath(): string {
    return join(this.stateDir, "dp.sock");
  }

  /**
   * A config for an agent of this testbed.
   *
   * @param flags Extra keys.
   * @returns The config.
   */
  config(flags: Readonly<Record<string, string | boolean>> = {}): AgentConfig {
    return loadConfig({
      flags: {
        netns: this.node.name,
        "bpf-root": this.bpf.path,
        "state-dir": this.stateDir,
        "ipv4-range": "10.200.0.0/16",
        "ipv6-range": "fd10::/112",
        "bpf-ct-global-tcp-max": "131072",
        "bpf-ct-global-any-max": "65536",
        "bpf-policy-map-max": "1024",
        ...flags,
      },
    }).config;
  }

  /**
   * Starts a TCP server in a namespace: it counts the bytes each client sends and answers `ok <bytes>` when the client ends.
   *
   * @param ns The namespace.
   * @param port The port.
   * @returns Resolves when it listens.
   */
  async server(ns: TestNetns, port: number): Promise<void> {
    const code = `
      const s = require("node:net").createServer((c) => { let n = 0; c.on("data", (d) => (n += d.length)); c.on("end", () => c.end("ok " + n)); c.on("error", () => {}); });
      s.listen(${port}, "::", () => console.log("listening"));`;
    const p = this.#spawn(ns, code);
    const [line] = (await once(p.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
    if (!line.toString().includes("listening")) throw new Error(`server in ${ns.name} did not start`);
  }

  /**
   * Connects from a namespace and sends `bytes` bytes.
   *
   * @param ns The client's namespace.
   * @param host The server's address.
   * @param port The port.
   * @param bytes How much to send.
   * @param timeoutMs The idle timeout.
   * @returns `ok <bytes>` from the server, or `timeout` / `error <code>`.
   */
  tcp(ns: TestNetns, host: string, port: number, bytes = 10_000, timeoutMs = 2000): Promise<string> {
    return this.#client(ns, host, port, `c.on("connect", () => c.end(Buffer.alloc(${bytes}, 97)));`, timeoutMs);
  }

  /**
   * Streams from a namespace for `seconds` (4 KiB every 10 ms) over one connection.
   *
   * @param ns The client's namespace.
   * @param host The server's address.
   * @param port The port.
   * @param seconds How long.
   * @param onConnect Called once the connection is up.
   * @returns `ok <bytes>` when the whole transfer arrived, else the error.
   */
  stream(ns: TestNetns, host: string, port: number, seconds: number, onConnect?: () => void): Promise<string> {
    return this.#client(
      ns,
      host,
      port,
      `const chunk = Buffer.alloc(4096, 98); const end = Date.now() + ${seconds * 1000};
      c.on("connect", () => { console.log("connected"); c.setTimeout(0); const t = setInterval(() => { if (Date.now() > end) { clearInterval(t); c.end(); } else c.write(chunk); }, 10); });`,
      3000,
      onConnect,
    );
  }

  /**
   * Sends UDP datagrams from a namespace (drops to count, no answer expected).
   *
   * @param ns The sender's namespace.
   * @param host The destination.
   * @param port The destination port.
   * @param count How many.
   * @returns Resolves when sent.
   */
  async udp(ns: TestNetns, host: string, port: number, count: number): Promise<void> {
    const p = this.#spawn(
      ns,
      `const s = require("node:dgram").createSocket(${JSON.stringify(host.includes(":") ? "udp6" : "udp4")});
      let i = 0; const b = Buffer.alloc(32, 99);
      const next = () => { if (i++ >= ${count}) return s.close(); s.send(b, ${port}, ${JSON.stringify(host)}, () => (i % 64 === 0 ? setImmediate(next) : next())); };
      next();`,
    );
    await once(p, "exit");
    this.#procs.delete(p);
  }

  #spawn(ns: TestNetns, code: string): ChildProcess {
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.#procs.add(p);
    return p;
  }

  #client(
    ns: TestNetns,
    host: string,
    port: number,
    body: string,
    timeoutMs: number,
    onConnect?: () => void,
  ): Promise<string> {
    const code = `
      const c = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${port} });
      let out = ""; c.setTimeout(${timeoutMs}, () => { console.log("timeout"); process.exit(0); });
      c.on("data", (d) => (out += d)); c.on("end", () => { console.log(out); process.exit(0); });
      c.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
      ${body}`;
    const p = this.#spawn(ns, code);
    let out = "";
    p.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (onConnect !== undefined && out.includes("connected")) {
        const f = onConnect;
        onConnect = undefined;
        f();
      }
    });
    return once(p, "exit").then(() => {
      this.#procs.delete(p);
      return out.replace("connected\n", "").trim();
    });
  }

  /** Kills the probes, deletes the namespaces and the directories. */
  close(): void {
    for (const p of this.#procs) p.kill("SIGKILL");
    for (const ns of [...this.pods, this.node]) ns.close();
    this.bpf.close();
    rmSync(this.#tmp, { recursive: true, force: true });
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
