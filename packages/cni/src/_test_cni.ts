// Test-only: a testbed that drives dp-cni as container runtimes do. A node
// namespace, a private bpffs directory and state directory, the agent as a
// child process (`dp agent`, so it can be stopped and restarted), container
// namespaces under /run/netns, and `cni()`: exec bin/dp-cni.cjs with the
// CNI environment and the network config on stdin (asynchronously, so
// nothing here waits on a child synchronously while the agent works).
// The package's bin runs the sources (through dp-cni.mjs) under
// DP_FROM_SOURCE=1 (set for every test).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiClient } from "@dp/agent/client";
import { bpffsDir, type BpffsDir, netns, type TestNetns } from "@dp/core/testing";

/** The plugin as runtimes exec it. */
export const DP_CNI_BIN: string = fileURLToPath(new URL("../bin/dp-cni.cjs", import.meta.url));
/** The `dp` command of @dp/agent. */
export const DP_BIN: string = join(
  dirname(createRequire(import.meta.url).resolve("@dp/agent/package.json")),
  "bin/dp.mjs",
);
/** Where Debian's containernetworking-plugins are. */
export const STANDARD_PLUGINS = "/usr/lib/cni";

/** What one exec of a plugin answered. */
export interface PluginRun {
  /** The exit status. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
  /** Standard output parsed as JSON (undefined when empty). */
  readonly json: Record<string, unknown> | undefined;
  /** How long the exec took, in milliseconds. */
  readonly ms: number;
}

/** The CNI invocation's variables (the rest of the environment is this process's). */
export interface CniCall {
  readonly command: string;
  readonly containerId?: string | undefined;
  readonly netns?: string | undefined;
  readonly ifname?: string | undefined;
  readonly args?: string | undefined;
  readonly path?: string | undefined;
}

/**
 * Execs a CNI plugin binary as a runtime does.
 *
 * @param bin The plugin.
 * @param call The CNI variables.
 * @param config The network config (JSON-encoded when not a string).
 * @returns Its answer.
 */
export function execPlugin(bin: string, call: CniCall, config: unknown): Promise<PluginRun> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname ?? (call.containerId === undefined ? undefined : "eth0"),
    CNI_ARGS: call.args,
    CNI_PATH: call.path ?? STANDARD_PLUGINS,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const stdin = typeof config === "string" ? config : JSON.stringify(config);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile(bin, [], { env, encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      const ms = performance.now() - t0;
      if (err !== null && typeof err.code !== "number") {
        reject(new Error(`Cannot exec ${bin}: ${err.message}`, { cause: err }));
        return;
      }
      const code = err === null ? 0 : (err.code as number);
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() === "" ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, ms });
    });
    child.stdin?.end(stdin);
  });
}

/** The namespaces, directories and agent of one test. */
export class CniTestbed {
  /** The node's namespace. */
  readonly node: TestNetns;
  /** The bpffs directory of the agent. */
  readonly bpf: BpffsDir;
  /** The agent's state directory. */
  readonly stateDir: string;
  /** The agent's log (standard error of every agent process so far). */
  log = "";
  readonly #tmp: string;
  readonly #containers = new Map<string, TestNetns>();
  #agent: ChildProcess | undefined;

  constructor() {
    this.#tmp = mkdtempSync(join(tmpdir(), "dpt-cni-"));
    this.stateDir = join(this.#tmp, "run");
    this.bpf = bpffsDir();
    this.node = netns({ label: "dpcnode" });
  }

  /** The agent's API socket. */
  get socketPath(): string {
    return join(this.stateDir, "dp.sock");
  }

  /** A private directory of this test. */
  get tmp(): string {
    return this.#tmp;
  }

  /** An API client of the agent. */
  client(): ApiClient {
    return new ApiClient({ socketPath: this.socketPath });
  }

  /**
   * A dp-cni network config for this testbed's agent.
   *
   * @param extra More keys.
   * @returns The config.
   */
  netconf(extra: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
    return { cniVersion: "1.1.0", name: "dpnet", type: "dp-cni", socketPath: this.socketPath, ...extra };
  }

  /**
   * Starts the agent (`dp agent`) and waits until its API answers.
   *
   * @param flags More config keys.
   * @returns Resolves when it answers.
   */
  async startAgent(flags: Readonly<Record<string, string>> = {}): Promise<void> {
    const keys: Record<string, string> = {
      netns: this.node.name,
      "bpf-root": this.bpf.path,
      "state-dir": this.stateDir,
      "ipv4-range": "10.201.0.0/16",
      "enable-ipv6": "false",
      "bpf-ct-global-tcp-max": "131072",
      "bpf-ct-global-any-max": "65536",
      "bpf-policy-map-max": "1024",
      // SIGTERM removes the datapath; a restart test kills the agent instead, as a crash would.
      "agent-teardown-on-stop": "true",
      ...flags,
    };
    const args = [DP_BIN, "agent", ...Object.entries(keys).flatMap(([k, v]) => [`--${k}`, v])];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    this.#agent = child;
    const client = this.client();
    const end = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`dp agent exited with ${child.exitCode}:\n${this.log}`);
      try {
        await client.healthz();
        return;
      } catch {
        if (Date.now() > end) throw new Error(`dp agent did not answer in 30 s:\n${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * Stops the agent: SIGTERM tears the datapath down; SIGKILL leaves it for the next agent to adopt.
   *
   * @param signal The signal.
   * @returns Resolves when it exited.
   */
  async stopAgent(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.#agent;
    this.#agent = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  /**
   * A container's network namespace, as a runtime makes it before ADD.
   *
   * @param containerId The container id.
   * @returns Its path (CNI_NETNS).
   */
  container(containerId: string): string {
    const ns = netns({ label: "dpcpod" });
    this.#containers.set(containerId, ns);
    return `/run/netns/${ns.name}`;
  }

  /**
   * The namespace of a container made by {@link container}.
   *
   * @param containerId The container id.
   * @returns The namespace.
   */
  ns(containerId: string): TestNetns {
    const ns = this.#containers.get(containerId);
    if (ns === undefined) throw new Error(`no container ${containerId}`);
    return ns;
  }

  /**
   * Execs dp-cni.
   *
   * @param call The CNI variables.
   * @param config The network config (default: {@link netconf}).
   * @returns Its answer.
   */
  cni(call: CniCall, config: unknown = this.netconf()): Promise<PluginRun> {
    return execPlugin(DP_CNI_BIN, call, config);
  }

  /**
   * ADD of a new container, with its namespace made first.
   *
   * @param containerId The container id.
   * @param config The network config.
   * @param args CNI_ARGS.
   * @returns The answer.
   */
  add(containerId: string, config: unknown = this.netconf(), args?: string): Promise<PluginRun> {
    const netns = this.container(containerId);
    return this.cni({ command: "ADD", containerId, netns, ...(args === undefined ? {} : { args }) }, config);
  }

  /** Stops the agent (SIGTERM: it tears the datapath down), deletes the namespaces and directories. */
  async close(): Promise<void> {
    await this.stopAgent("SIGTERM");
    for (const ns of this.#containers.values()) ns.close();
    this.node.close();
    this.bpf.close();
    rmSync(this.#tmp, { recursive: true, force: true });
  }
}
