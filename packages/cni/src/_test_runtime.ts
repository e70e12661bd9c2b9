// Test-only: drives CNI plugins the way a container runtime does (libcni):
// a CNI bin directory holding dp-cni (a wrapper that execs node on
// bin/dp-cni.mjs) next to Debian's plugins, each plugin exec'd inside the
// node's network namespace with the CNI environment and its config on
// stdin, a conflist run in order for ADD (each plugin getting the previous
// result as `prevResult`) and in reverse for DEL (with the cached result).
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Agent, createLogger, loadConfig, startAgent } from "@dp/agent";
import type { TestNetns } from "@dp/core/testing";

/** Debian's containernetworking-plugins. */
export const DEBIAN_CNI_BIN = "/usr/lib/cni";

/** The dp-cni entry point of this checkout. */
export const DP_CNI_ENTRY: string = fileURLToPath(new URL("../bin/dp-cni.mjs", import.meta.url));

/** Whether Debian's plugins are installed (`apt-get install containernetworking-plugins`). */
export const HAS_DEBIAN_PLUGINS: boolean =
  existsSync(`${DEBIAN_CNI_BIN}/bridge`) && existsSync(`${DEBIAN_CNI_BIN}/host-local`);

/**
 * Makes a CNI bin directory: `dp-cni` (a shell wrapper running this
 * checkout's sources with the node running the tests) and links to
 * Debian's plugins.
 *
 * @param dir The directory to create it in.
 * @returns Its path.
 */
export function makeCniBin(dir: string): string {
  const bin = join(dir, "cni-bin");
  mkdirSync(bin, { recursive: true });
  const wrapper = join(bin, "dp-cni");
  writeFileSync(
    wrapper,
    `#!/bin/sh\nDP_FROM_SOURCE=1 exec ${JSON.stringify(process.execPath)} ${JSON.stringify(DP_CNI_ENTRY)} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  for (const name of ["bridge", "host-local", "loopback", "ptp"])
    if (existsSync(`${DEBIAN_CNI_BIN}/${name}`)) symlinkSync(`${DEBIAN_CNI_BIN}/${name}`, join(bin, name));
  return bin;
}

/** How one plugin exec ended. */
export interface PluginRun {
  /** The exit status. */
  readonly code: number;
  /** Its stdout, parsed when it is JSON. */
  readonly json: unknown;
  /** Its stdout. */
  readonly stdout: string;
  /** Its stderr. */
  readonly stderr: string;
}

/** One container as the runtime knows it. */
export interface Container {
  /** `CNI_CONTAINERID`. */
  readonly id: string;
  /** `CNI_NETNS`: a path. */
  readonly netns: string;
  /** `CNI_IFNAME`. */
  readonly ifname?: string;
  /** `CNI_ARGS`. */
  readonly args?: string;
}

/** A network config list (`.conflist`). */
export interface Conflist {
  /** Its spec version. */
  readonly cniVersion: string;
  /** The network's name. */
  readonly name: string;
  /** The plugins, in ADD order. */
  readonly plugins: readonly Record<string, unknown>[];
}

/** Execs CNI plugins as a runtime would, inside a node namespace. */
export class CniRuntime {
  /** The CNI bin directory (`CNI_PATH`). */
  readonly bin: string;
  /** The node namespace's name, the plugins run in it. */
  readonly nodeNs: string;
  readonly #cache = new Map<string, unknown>();

  /**
   * Creates it.
   *
   * @param bin The CNI bin directory.
   * @param nodeNs The node namespace's name.
   */
  constructor(bin: string, nodeNs: string) {
    this.bin = bin;
    this.nodeNs = nodeNs;
  }

  /**
   * Execs one plugin.
   *
   * @param type The plugin's name in the bin directory.
   * @param command `CNI_COMMAND`.
   * @param c The container.
   * @param config The config on stdin.
   * @returns How it ended.
   */
  exec(type: string, command: string, c: Container, config: unknown): Promise<PluginRun> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: c.id,
      CNI_NETNS: c.netns,
      CNI_IFNAME: c.ifname ?? "eth0",
      CNI_PATH: this.bin,
      ...(c.args === undefined ? {} : { CNI_ARGS: c.args }),
    };
    return new Promise((resolve, reject) => {
      const p = spawn("ip", ["netns", "exec", this.nodeNs, join(this.bin, type)], { env, stdio: "pipe" });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.on("error", reject);
      p.on("close", (code) => {
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code: code ?? -1, json, stdout, stderr });
      });
      p.stdin.end(JSON.stringify(config));
    });
  }

  /**
   * ADD through a conflist: each plugin in order with the previous result as `prevResult`; the last result is cached for DEL.
   *
   * @param list The conflist.
   * @param c The container.
   * @returns The result of each plugin, in order.
   * @throws {Error} With the plugin's stdout and stderr when one fails.
   */
  async add(list: Conflist, c: Container): Promise<unknown[]> {
    const results: unknown[] = [];
    let prev: unknown;
    for (const plugin of list.plugins) {
      const config = {
        cniVersion: list.cniVersion,
        name: list.name,
        ...plugin,
        ...(prev === undefined ? {} : { prevResult: prev }),
      };
      const run = await this.exec(String(plugin.type), "ADD", c, config);
      if (run.code !== 0)
        throw new Error(`ADD of ${String(plugin.type)} failed (${run.code}): ${run.stdout} ${run.stderr}`);
      prev = run.json;
      results.push(run.json);
    }
    this.#cache.set(`${list.name}/${c.id}`, prev);
    return results;
  }

  /**
   * DEL through a conflist: the plugins in reverse order, each with the cached result as `prevResult`.
   *
   * @param list The conflist.
   * @param c The container.
   * @returns Each plugin's run, in the order they ran.
   */
  async del(list: Conflist, c: Container): Promise<PluginRun[]> {
    const prev = this.#cache.get(`${list.name}/${c.id}`);
    const runs: PluginRun[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      const config = {
        cniVersion: list.cniVersion,
        name: list.name,
        ...plugin,
        ...(prev === undefined ? {} : { prevResult: prev }),
      };
      runs.push(await this.exec(String(plugin.type), "DEL", c, config));
    }
    return runs;
  }
}

/**
 * Starts an agent in this process over a node namespace, quiet, IPv4 only.
 *
 * @param nodeNs The node namespace's name.
 * @param bpfRoot The bpffs directory.
 * @param stateDir The agent's state directory (its socket lives there).
 * @param flags More config keys.
 * @returns The agent.
 */
export function startTestAgent(
  nodeNs: string,
  bpfRoot: string,
  stateDir: string,
  flags: Readonly<Record<string, string | boolean>> = {},
): Promise<Agent> {
  const { config } = loadConfig({
    flags: {
      netns: nodeNs,
      "bpf-root": bpfRoot,
      "state-dir": stateDir,
      "ipv4-range": "10.200.0.0/16",
      "enable-ipv6": false,
      "bpf-ct-global-tcp-max": "65536",
      "bpf-ct-global-any-max": "65536",
      "bpf-policy-map-max": "1024",
      ...flags,
    },
  });
  return startAgent(config, { logger: createLogger({ stream: { write: () => true } }) });
}

/**
 * Starts a TCP server in a namespace that answers `ok <bytes>` when a client ends.
 *
 * @param ns The namespace.
 * @param port The port.
 * @returns A function that stops it.
 */
export function tcpServer(ns: TestNetns, port: number): Promise<() => void> {
  const code = `require("node:net").createServer((c) => { let n = 0; c.on("data", (d) => (n += d.length)); c.on("end", () => c.end("ok " + n)); c.on("error", () => {}); }).listen(${port}, () => console.log("listening"));`;
  const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    p.once("error", reject);
    p.stdout.once("data", () => resolve(() => p.kill("SIGKILL")));
  });
}

/**
 * Connects from a namespace, sends 5000 bytes and returns the answer (async, so an agent in this process keeps answering).
 *
 * @param ns The client's namespace.
 * @param host The server.
 * @param port The port.
 * @returns `ok 5000`, `timeout` or `error <code>`.
 */
export function tcpProbe(ns: TestNetns, host: string, port: number): Promise<string> {
  const code = `const c = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${port} }); let out = "";
    c.setTimeout(1000, () => { console.log("timeout"); process.exit(0); });
    c.on("connect", () => c.end(Buffer.alloc(5000, 97))); c.on("data", (d) => (out += d));
    c.on("end", () => { console.log(out); process.exit(0); }); c.on("error", (e) => { console.log("error " + e.code); process.exit(0); });`;
  const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => p.on("close", () => resolve(out.trim())));
}
