// The lab of `dp demo` and of the connectivity test's kernel tests: a
// node namespace with an uplink veth to an "outside" namespace (the
// world), a private bpffs directory and state directory, and the real
// agent (`dp agent`) running as a child process for that node.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { createNetns, deleteNetns, NETNS_RUN_DIR, openNetns } from "@dp/core";
import { openRouting } from "@dp/routing";
import { ApiClient } from "../api/client.ts";
import { dpBinPath } from "./_agent_bin.ts";

/**
 * The addresses of every lab: the pod ranges the agent allocates from,
 * and the uplink between the node and the outside namespace.
 */
export const LAB_NET = {
  /** The IPv4 pod range (`ipv4-range`). */
  ipv4Range: "10.200.0.0/16",
  /** The IPv6 pod range (`ipv6-range`). */
  ipv6Range: "fd10::/112",
  /** The uplink's addresses, on each side. */
  uplink: {
    /** The node's IPv4 address on the uplink. */
    node4: "192.168.200.1",
    /** The outside namespace's IPv4 address on the uplink. */
    outside4: "192.168.200.2",
    /** The node's IPv6 address on the uplink. */
    node6: "fd20::1",
    /** The outside namespace's IPv6 address on the uplink. */
    outside6: "fd20::2",
  },
} as const;

/** Where labs keep their files (config, agent log, socket). */
export const LAB_RUN_DIR = "/run/dp-lab";

/** Options for {@link createLab}. */
export interface LabOptions {
  /**
   * The host routing mode the agent is asked for (it falls back to
   * legacy, with the reason in `lab.hostRouting`, when the kernel lacks
   * the helpers).
   *
   * @default "bpf"
   */
  readonly hostRouting?: "bpf" | "legacy";
  /**
   * Where the agent serves its API.
   *
   * @default a socket in the lab's private directory
   */
  readonly socketPath?: string;
  /**
   * The command that runs the `dp` CLI (the lab appends `agent --config
   * FILE`), for a `dp` other than this package's.
   *
   * @default [process.execPath, "<@dp/agent>/bin/dp.mjs"]
   */
  readonly dpCommand?: readonly string[];
  /** Aborting stops the creation and removes what was made. */
  readonly signal?: AbortSignal;
  /** Called with a line of progress for humans. */
  readonly onProgress?: (message: string) => void;
  /**
   * Turn on the agent's `debug` (trace events).
   *
   * @default false
   */
  readonly debug?: boolean;
}

/**
 * What a lab consists of, as JSON: enough for another process to tear it
 * down (`dp demo --teardown`).
 */
export interface LabRecord {
  /** The lab's name (prefix of every namespace it made). */
  readonly name: string;
  /** Namespaces to delete, pods first. */
  readonly namespaces: readonly string[];
  /** The lab's private directory. */
  readonly dir: string;
  /** The agent's bpffs root. */
  readonly bpfRoot: string;
  /** The agent's API socket. */
  readonly socketPath: string;
  /** The agent's process id (0: none). */
  readonly agentPid: number;
}

function labName(): string {
  return `dpdemo-${process.pid}-${randomBytes(2).toString("hex")}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A lab: namespaces, a node with an uplink to the outside, and the agent
 * serving it. `destroy()` removes everything, whatever state it is in.
 *
 * @example A lab and its agent
 * ```ts no-run
 * import { createLab } from "@dp/agent";
 *
 * const lab = await createLab({ hostRouting: "bpf" });
 * try {
 *   console.log((await lab.client.status()).hostRouting);
 * } finally {
 *   await lab.destroy();
 * }
 * ```
 */
export class Lab {
  /** The lab's name: `dpdemo-<pid>-<random>`, the prefix of its namespaces. */
  readonly name: string;
  /** The node's namespace (name under /run/netns). */
  readonly nodeNetns: string;
  /** The outside ("world") namespace. */
  readonly outsideNetns: string;
  /** The uplink's name in the node namespace. */
  readonly uplink = "uplink0";
  /** The lab's private directory (config, agent log, agent state). */
  readonly dir: string;
  /** The agent's bpffs root (its maps are under `<bpfRoot>/dp`). */
  readonly bpfRoot: string;
  /** The agent's API socket. */
  readonly socketPath: string;
  /** The agent's config file. */
  readonly configFile: string;
  /** The agent's log. */
  readonly logFile: string;
  /** A client of the lab's agent. */
  readonly client: ApiClient;
  /** The node's addresses (on the uplink): pod-to-host targets. */
  readonly host: {
    /** The node's IPv4 address. */
    readonly ipv4: string;
    /** The node's IPv6 address. */
    readonly ipv6: string;
  } = {
    ipv4: LAB_NET.uplink.node4,
    ipv6: LAB_NET.uplink.node6,
  };
  /** The outside's addresses: pod-to-world targets. */
  readonly world: {
    /** The outside's IPv4 address. */
    readonly ipv4: string;
    /** The outside's IPv6 address. */
    readonly ipv6: string;
  } = {
    ipv4: LAB_NET.uplink.outside4,
    ipv6: LAB_NET.uplink.outside6,
  };
  /** The host routing mode the agent runs (after fallback) and why. */
  hostRouting: {
    /** The mode the agent runs: `bpf` or `legacy`. */
    readonly mode: "bpf" | "legacy";
    /** Why, as the agent's status reports it (empty until the agent started). */
    readonly reason: string;
  } = { mode: "legacy", reason: "" };
  readonly #namespaces: string[] = [];
  readonly #cleanups: (() => void | Promise<void>)[] = [];
  #agent: ChildProcess | undefined;
  #agentPid = 0;
  #destroyed: Promise<void> | undefined;

  /** @internal Use {@link createLab}. */
  constructor(name: string, socketPath: string | undefined) {
    this.name = name;
    this.nodeNetns = `${name}-node`;
    this.outsideNetns = `${name}-out`;
    this.dir = join(LAB_RUN_DIR, name);
    this.bpfRoot = `/sys/fs/bpf/${name}`;
    this.socketPath = socketPath ?? join(this.dir, "dp.sock");
    this.configFile = join(this.dir, "agent.yaml");
    this.logFile = join(this.dir, "agent.log");
    this.client = new ApiClient({ socketPath: this.socketPath });
  }

  /**
   * Builds a lab; {@link createLab} is the same.
   *
   * @param options Host routing mode, socket path, abort signal, progress.
   * @returns The lab; `destroy()` it.
   * @throws {Error} When the agent does not start (with its log's tail);
   *   everything made so far is removed first.
   * @example A lab
   * ```ts no-run
   * import { Lab } from "@dp/agent";
   * const lab = await Lab.create({ hostRouting: "bpf" });
   * await lab.destroy();
   * ```
   */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const progress = options.onProgress ?? ((): void => {});
    const lab = new Lab(labName(), options.socketPath);
    try {
      progress(`creating namespaces ${lab.nodeNetns} and ${lab.outsideNetns} (uplink ${lab.uplink})`);
      lab.#build();
      await lab.#waitUplinkReady(signal);
      lab.#writeConfig(options.hostRouting ?? "bpf", options.debug === true);
      signal?.throwIfAborted();
      progress(`starting the agent: dp agent --config ${lab.configFile}`);
      await lab.#startAgent(options.dpCommand ?? [process.execPath, dpBinPath()], signal);
      const mode = lab.hostRouting.mode === "bpf" ? "BPF" : "Legacy";
      progress(`agent started (pid ${lab.agentPid}), host routing ${mode}: ${lab.hostRouting.reason}`);
      return lab;
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
  }

  /** The agent's process id (0 when it is not running). */
  get agentPid(): number {
    return this.#agentPid;
  }

  /** The namespaces of the lab, the ones added with {@link Lab.trackNetns} included. */
  get namespaces(): readonly string[] {
    return [...this.#namespaces];
  }

  /**
   * Creates a named namespace that belongs to the lab (removed by
   * `destroy()`), with `lo` up and no IPv6 duplicate address detection. Its name is the lab's name, `-` and
   * `suffix`.
   *
   * @param suffix The namespace's own part of the name.
   * @returns The namespace's name.
   * @throws {SyscallError} When it cannot be created.
   */
  createNetns(suffix: string): string {
    const name = `${this.name}-${suffix}`;
    this.trackNetns(name);
    using ns = createNetns(name);
    using rt = openRouting({ netns: ns });
    // No duplicate address detection: link-local addresses are usable at
    // once, so the first IPv6 neighbour resolution does not wait for DAD.
    rt.sysctl.set("net.ipv6.conf.all.accept_dad", 0);
    rt.sysctl.set("net.ipv6.conf.default.accept_dad", 0);
    rt.links.set("lo", { up: true });
    return name;
  }

  /**
   * Makes `destroy()` remove a namespace made by someone else.
   *
   * @param name The namespace's name.
   */
  trackNetns(name: string): void {
    if (!this.#namespaces.includes(name)) this.#namespaces.push(name);
  }

  /**
   * Runs `fn` first when the lab is destroyed (probe processes, servers).
   *
   * @param fn The cleanup.
   */
  onDestroy(fn: () => void | Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /**
   * The lab as JSON, for another process to tear it down.
   *
   * @returns The record.
   */
  record(): LabRecord {
    return {
      name: this.name,
      namespaces: [...this.#namespaces].reverse(),
      dir: this.dir,
      bpfRoot: this.bpfRoot,
      socketPath: this.socketPath,
      agentPid: this.#agentPid,
    };
  }

  /**
   * Lets the agent outlive this process: the lab forgets its child (a
   * kept lab is removed with {@link destroyLabRecord}).
   */
  release(): void {
    this.#agent?.unref();
    this.#agent = undefined;
  }

  #build(): void {
    const node = this.createNetns("node");
    const outside = this.createNetns("out");
    using nodeNs = openNetns(node);
    using outNs = openNetns(outside);
    {
      using rt = openRouting({ netns: nodeNs });
      rt.links.add({ kind: "veth", name: this.uplink, peer: { name: "eth0", netns: outNs } });
      rt.addresses.add(`${LAB_NET.uplink.node4}/24`, { dev: this.uplink });
      rt.addresses.add(`${LAB_NET.uplink.node6}/64`, { dev: this.uplink, flags: ["nodad"] });
      rt.links.set(this.uplink, { up: true });
    }
    using rt = openRouting({ netns: outNs });
    rt.addresses.add(`${LAB_NET.uplink.outside4}/24`, { dev: "eth0" });
    rt.addresses.add(`${LAB_NET.uplink.outside6}/64`, { dev: "eth0", flags: ["nodad"] });
    rt.links.set("eth0", { up: true });
    rt.routes.add({ dst: LAB_NET.ipv4Range, via: LAB_NET.uplink.node4 });
    rt.routes.add({ dst: LAB_NET.ipv6Range, via: LAB_NET.uplink.node6 });
  }

  // Bringing the uplink up is not the end of it: the kernel sets a link's
  // operational state (IFF_RUNNING) from its linkwatch worker, which
  // batches the events it does not deem urgent at most once a second, so
  // the uplink's ends can stay "down" with their carrier on for up to a
  // second after `up`. Until then IPv6 has not readied the link (addrconf
  // waits for IFF_RUNNING): the nodad address has no local route and the
  // namespace drops every IPv6 packet to it (Ip6InNoRoutes), the node's
  // neighbour solicitation included, while IPv4 already works. A pod's
  // first IPv6 packet to the outside then waits in the node's neighbour
  // queue for the solicitation's retransmission a second later: too late
  // for a 1 s ping, and no drop event, since no BPF program dropped
  // anything. A real uplink is up long before pods use it, so the lab
  // waits until both ends are operationally up with their IPv6 address
  // usable. (Asking for the link, RTM_GETLINK, also makes the kernel
  // process its pending event, so the wait is short.)
  async #waitUplinkReady(signal: AbortSignal | undefined): Promise<void> {
    const ends = [
      { netns: this.nodeNetns, dev: this.uplink, ipv6: LAB_NET.uplink.node6 },
      { netns: this.outsideNetns, dev: "eth0", ipv6: LAB_NET.uplink.outside6 },
    ];
    const deadline = Date.now() + 10_000;
    for (;;) {
      signal?.throwIfAborted();
      const waiting = ends.filter((end) => !linkReady(end.netns, end.dev, end.ipv6));
      if (waiting.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `Cannot create lab ${this.name}: the uplink is not up in ${waiting.map((e) => `${e.netns} (${e.dev})`).join(" and ")} after 10 s`,
        );
      await sleep(10);
    }
  }

  #writeConfig(hostRouting: "bpf" | "legacy", debug: boolean): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.bpfRoot, { recursive: true, mode: 0o700 });
    const config = {
      "cluster-name": "dp-demo",
      "state-dir": join(this.dir, "state"),
      "socket-path": this.socketPath,
      "bpf-root": this.bpfRoot,
      netns: this.nodeNetns,
      devices: [this.uplink],
      "ipv4-range": LAB_NET.ipv4Range,
      "ipv6-range": LAB_NET.ipv6Range,
      // BPF host routing is the default (when the kernel allows it, else legacy with the reason).
      ...(hostRouting === "legacy" ? { "enable-host-legacy-routing": true } : {}),
      "agent-teardown-on-stop": true,
      debug,
      "log-format": "text",
    };
    writeFileSync(this.configFile, `# The agent of lab ${this.name} (dp demo)\n${stringify(config)}`, { mode: 0o600 });
  }

  async #startAgent(dp: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const log = openSync(this.logFile, "a", 0o600);
    let child: ChildProcess;
    try {
      const [cmd = process.execPath, ...args] = dp;
      child = spawn(cmd, [...args, "agent", "--config", this.configFile], {
        stdio: ["ignore", log, log],
        // Its own process group: a Ctrl-C in the terminal reaches the lab, which stops the agent in order.
        detached: true,
        env: process.env,
      });
    } finally {
      closeSync(log);
    }
    this.#agent = child;
    this.#agentPid = child.pid ?? 0;
    let exited: string | undefined;
    child.on("exit", (code, sig) => {
      exited = sig === null ? `exit code ${code}` : `signal ${sig}`;
      if (this.#agent === child) this.#agentPid = 0;
    });
    child.on("error", (err) => (exited = err.message));
    const deadline = Date.now() + 60_000;
    for (;;) {
      signal?.throwIfAborted();
      if (exited !== undefined)
        throw new Error(`Cannot start the agent of lab ${this.name} (${exited}):\n${this.logTail()}`);
      try {
        await this.client.healthz();
        break;
      } catch {
        // Not up yet.
      }
      if (Date.now() > deadline)
        throw new Error(`Cannot start the agent of lab ${this.name}: no answer in 60 s\n${this.logTail()}`);
      await sleep(100);
    }
    const status = await this.client.status();
    this.hostRouting = status.hostRouting;
  }

  /**
   * The last lines of the agent's log.
   *
   * @param lines How many.
   * @returns The lines.
   */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /**
   * Stops the agent (with teardown: it removes the datapath), then
   * removes the namespaces, pins and directories. Safe to call at any
   * point and more than once.
   *
   * @returns Resolves when everything is gone.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#destroy();
    return this.#destroyed;
  }

  async #destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.#cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    const child = this.#agent;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const done = await Promise.race([
        exited.then(() => true),
        sleep(20_000, undefined, { ref: false }).then(() => false),
      ]);
      if (!done) {
        killGroup(child.pid ?? 0);
        await exited;
      }
    } else if (child === undefined && this.#agentPid !== 0) {
      await stopPid(this.#agentPid);
    }
    this.#agentPid = 0;
    try {
      removeLabFiles(this.record());
    } catch (err) {
      errors.push(err);
    }
    if (errors.length > 0) throw new AggregateError(errors, `Cannot remove everything of lab ${this.name}`);
  }
}

/** Whether `dev` in `netns` is operationally up with a local route for `ipv6` (IPv6 readied it). */
function linkReady(netns: string, dev: string, ipv6: string): boolean {
  using ns = openNetns(netns);
  using rt = openRouting({ netns: ns });
  if (rt.links.get(dev)?.operState !== "up") return false;
  return rt.routes.list({ table: "local", family: 6 }).some((r) => r.type === "local" && r.dst === `${ipv6}/128`);
}

function killGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

async function stopPid(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 200 && alive(pid); i++) await sleep(100);
  if (alive(pid)) {
    // The agent's process group (the dp wrapper and the agent it runs).
    killGroup(pid);
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  }
}

function removeLabFiles(record: LabRecord): void {
  for (const ns of record.namespaces) deleteNetns(ns);
  rmSync(record.bpfRoot, { recursive: true, force: true });
  rmSync(record.dir, { recursive: true, force: true });
  if (existsSync(record.socketPath)) rmSync(record.socketPath, { force: true });
}

/**
 * Tears down a lab another process left running (`dp demo --keep`): stops
 * its agent (which removes the datapath), then removes its namespaces,
 * pins and directories.
 *
 * @param record What {@link Lab.record} returned.
 * @returns Resolves when it is gone.
 * @throws {Error} When something cannot be removed.
 * @example Removing a kept lab
 * ```ts no-run
 * import { readFileSync } from "node:fs";
 * import { destroyLabRecord, type LabRecord } from "@dp/agent";
 * await destroyLabRecord(JSON.parse(readFileSync("/var/run/dp/demo.json", "utf8")) as LabRecord);
 * ```
 */
export async function destroyLabRecord(record: LabRecord): Promise<void> {
  if (record.agentPid > 0 && isAgentProcess(record.agentPid)) await stopPid(record.agentPid);
  // Anything else still running for the lab (an agent whose parent was killed, probes).
  for (const pid of processesOf(record.name)) await stopPid(pid);
  removeLabFiles(record);
}

function processesOf(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(name)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/**
 * Labs left behind by a demo that was killed (its process is gone, so
 * it could not tear down): their directories under {@link LAB_RUN_DIR},
 * namespaces and pins. A lab kept with `dp demo --keep` is one of them
 * too.
 *
 * @returns A record for each, for {@link destroyLabRecord}.
 * @example Removing the leftovers
 * ```ts no-run
 * import { destroyLabRecord, findOrphanLabs } from "@dp/agent";
 * for (const lab of findOrphanLabs()) await destroyLabRecord(lab);
 * ```
 */
export function findOrphanLabs(): LabRecord[] {
  const names = new Set<string>();
  const add = (list: string[]): void => {
    for (const n of list) {
      const m = /^(dpdemo-(\d+)-[0-9a-f]+)(-.*)?$/.exec(n);
      if (m?.[1] !== undefined && !alive(Number(m[2]))) names.add(m[1]);
    }
  };
  const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);
  add(list(LAB_RUN_DIR));
  add(list(NETNS_RUN_DIR));
  add(list("/sys/fs/bpf"));
  return [...names].map((name) => {
    const namespaces = list(NETNS_RUN_DIR).filter((n) => n.startsWith(`${name}-`));
    // Pods first, the node and the outside last.
    namespaces.sort(
      (a, b) => Number(a.endsWith("-node") || a.endsWith("-out")) - Number(b.endsWith("-node") || b.endsWith("-out")),
    );
    return {
      name,
      namespaces,
      dir: join(LAB_RUN_DIR, name),
      bpfRoot: `/sys/fs/bpf/${name}`,
      socketPath: join(LAB_RUN_DIR, name, "dp.sock"),
      agentPid: 0,
    };
  });
}

function isAgentProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("agent");
  } catch {
    return false;
  }
}

/**
 * Builds a lab: a node namespace with an uplink veth to an outside
 * namespace (routes to the pod ranges via the node), a private bpffs
 * root and directory, an agent config for them, and the agent running as
 * a child process (`dp agent --config ...`), answering on its socket.
 *
 * @param options Host routing mode, socket path, abort signal, progress.
 * @returns The lab; `destroy()` it.
 * @throws {Error} When the agent does not start (with its log's tail);
 *   everything made so far is removed first.
 * @example A lab in legacy host routing
 * ```ts no-run
 * import { createLab } from "@dp/agent";
 *
 * const lab = await createLab({ hostRouting: "legacy", onProgress: (m) => console.log(m) });
 * await lab.destroy();
 * ```
 */
export function createLab(options: LabOptions = {}): Promise<Lab> {
  return Lab.create(options);
}
