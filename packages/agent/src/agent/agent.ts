import { readdirSync, readFileSync, rmdirSync } from "node:fs";
import type { Server } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hasHelper, hasTcx, openNetns } from "@dp/core";
import {
  ConntrackGcScheduler,
  type ConntrackGcSchedulerOptions,
  type Endpoint,
  type MonitorEvent,
  type Node,
  openNode,
  type PolicyRule,
  PolicyValidationError,
  validatePolicyRules,
} from "@dp/datapath";
import { openRouting } from "@dp/routing";
import type { ConntrackQuery } from "../api/client.ts";
import { ApiError } from "../api/errors.ts";
import {
  type ApiBackend,
  type ApiServer,
  asApiError,
  assertNoAgent,
  type MonitorSubscriber,
  serveApi,
} from "../api/server.ts";
import type {
  AgentStatus,
  ApiEndpoint,
  ApiIdentity,
  ApiPolicy,
  ApiPolicyMapEntry,
  EndpointRequest,
  PolicyImportRequest,
  PolicyTraceRequest,
  PolicyTraceResponse,
} from "../api/types.ts";
import { toWire } from "../api/_wire.ts";
import type { AgentConfig } from "../config/agent_config.ts";
import { ConfigError, type ConfigWarning } from "../config/config_error.ts";
import { type ResolvedConfig, resolveConfig } from "../config/resolve_config.ts";
import { AgentStateFile } from "./_agent_state.ts";
import { Controller } from "./_controller.ts";
import type { EndpointIpam } from "./_endpoint_ipam.ts";
import { openEndpointIpam } from "./_open_ipam.ts";
import { type AgentKvstore, openAgentKvstore } from "./_kvstore.ts";
import { AgentMetrics, serveMetrics } from "./_metrics.ts";
import { createLogger, type Logger } from "./logger.ts";

/**
 * Options of {@link startAgent}.
 *
 * @example A JSON logger and the warnings of loadConfig
 * ```ts no-run
 * import { createLogger, loadConfig, type AgentOptions } from "@dp/agent";
 * const { config, warnings } = loadConfig({ file: "/etc/dp/config.yaml" });
 * const options: AgentOptions = { logger: createLogger({ format: "json" }), warnings };
 * ```
 */
export interface AgentOptions {
  /**
   * Where the agent logs.
   *
   * @default a logger on stderr in the config's `log-format`, with `debug` lines when `debug` is on
   */
  readonly logger?: Logger;
  /**
   * The config's warnings (unknown keys), shown in the status.
   *
   * @default []
   */
  readonly warnings?: readonly ConfigWarning[];
  /**
   * How many monitor lines may wait for a slow API client before lines are dropped (and counted in a `lost` line).
   *
   * @default 1024
   */
  readonly monitorQueue?: number;
}

/**
 * Options of {@link Agent.close}.
 *
 * @example Removing the datapath
 * ```ts no-run
 * import type { AgentCloseOptions } from "@dp/agent";
 * const options: AgentCloseOptions = { teardown: true };
 * ```
 */
export interface AgentCloseOptions {
  /**
   * `true`: remove the datapath (endpoints, attachments, pinned maps, the
   * agent's files); `false`: leave it running for the next agent.
   *
   * @default false
   */
  readonly teardown?: boolean;
}

/** Starts an agent's servers and background work (set in Agent's static block). */
let startInternal: (agent: Agent, monitorQueue: number | undefined) => Promise<void>;

const PROTOCOLS = ["TCP", "UDP", "SCTP", "ICMP", "ICMPv6"] as const;

function findVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "@dp/agent" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // Not here: look further up.
    }
    dir = dirname(dir);
  }
  return "unknown";
}

function probeKernel(): { redirectPeer: boolean; redirectNeigh: boolean; tcx: boolean } {
  return {
    redirectPeer: hasHelper("schedCls", "redirectPeer"),
    redirectNeigh: hasHelper("schedCls", "redirectNeigh"),
    tcx: hasTcx(),
  };
}

/** Checks that the node's namespace and devices exist, before anything changes. */
/**
 * The key ids of `ipsec-key-file` (oldest first), read and checked at
 * start: a file that cannot be read or parsed is a config error naming the
 * key, the path and the line (never a key byte).
 */
async function readIpsecKeyIds(config: AgentConfig): Promise<number[]> {
  if (!config["enable-ipsec"]) return [];
  const path = config["ipsec-key-file"];
  const problem = (why: string): ConfigError =>
    new ConfigError([
      {
        key: "ipsec-key-file",
        value: path,
        expected: "a readable IPsec key file",
        message: `ipsec-key-file: ${JSON.stringify(path)} ${why}`,
      },
    ]);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw problem(`cannot be read: ${(err as Error).message}`);
  }
  // Loaded only with IPsec on: the rest of the agent does not need it.
  const { KeyFileError, parseKeyFile } = await import("@dp/ipsec");
  try {
    return parseKeyFile(text).keys.map((k) => k.id);
  } catch (err) {
    if (err instanceof KeyFileError) throw problem(`is not a key file: ${err.message}`);
    throw err;
  }
}

function checkDevices(config: AgentConfig): void {
  let netns;
  try {
    netns = config.netns === "" ? undefined : openNetns(config.netns);
  } catch (err) {
    throw new ConfigError(
      [
        {
          key: "netns",
          value: config.netns,
          expected: "a network namespace name under /run/netns or a path",
          message: `netns: ${JSON.stringify(config.netns)} cannot be opened (expected a network namespace name under /run/netns or a path): ${(err as Error).message}`,
        },
      ],
      { cause: err },
    );
  }
  try {
    const rt = openRouting(netns === undefined ? {} : { netns });
    try {
      const missing = config.devices.filter((d) => rt.links.get(d) === undefined);
      if (missing.length > 0)
        throw new ConfigError(
          missing.map((d) => ({
            key: "devices",
            value: d,
            expected: "a network device of the node",
            message: `devices: ${JSON.stringify(d)} does not exist (expected a network device of the node)`,
          })),
        );
    } finally {
      rt.close();
    }
  } finally {
    netns?.close();
  }
}

/** The uplink's first global IPv4 and IPv6 addresses (the node IPs in the kvstore's node registry). */
function uplinkAddresses(config: AgentConfig): { ipv4?: string; ipv6?: string } {
  const uplink = config.devices[0];
  if (uplink === undefined) return {};
  const netns = config.netns === "" ? undefined : openNetns(config.netns);
  try {
    const rt = openRouting(netns === undefined ? {} : { netns });
    try {
      const out: { ipv4?: string; ipv6?: string } = {};
      for (const a of rt.addresses.list({ dev: uplink })) {
        if (a.scope !== 0) continue;
        const ip = a.address.replace(/\/\d+$/, "");
        if (a.family === 4) out.ipv4 ??= ip;
        else out.ipv6 ??= ip;
      }
      return out;
    } finally {
      rt.close();
    }
  } finally {
    netns?.close();
  }
}

function gcOptions(
  resolved: ResolvedConfig,
): Pick<ConntrackGcSchedulerOptions, "interval" | "minInterval" | "maxInterval"> | false {
  const gc = resolved.nodeOptions.ctGc;
  return gc === undefined ? {} : gc;
}

/** Removes a directory tree bottom-up where it is empty (the node leaves its empty state directories; the agent made them). */
function removeEmptyDirs(dir: string): void {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyDirs(join(dir, e.name));
    rmdirSync(dir);
  } catch {
    // Not empty (something else is pinned there) or already gone.
  }
}

/**
 * A running agent: the `Node` of `@dp/datapath` opened from the
 * config, the API on a unix socket, the metrics server, the conntrack
 * collector and the monitor reader. Made by {@link startAgent}.
 *
 * @example Stopping with teardown
 * ```ts no-run
 * import { loadConfig, startAgent } from "@dp/agent";
 * const { config } = loadConfig({ file: "/etc/dp/config.yaml" });
 * const agent = await startAgent(config);
 * process.once("SIGTERM", () => void agent.close({ teardown: config["agent-teardown-on-stop"] }));
 * ```
 */
export class Agent {
  /** The config the agent runs with. */
  readonly config: AgentConfig;
  /** The config decided against the kernel. */
  readonly resolved: ResolvedConfig;
  /** The node (use the API for changes, so the agent's records stay right). */
  readonly node: Node;
  /** The API socket. */
  readonly socketPath: string;
  /** When the agent started. */
  readonly startedAt: Date;
  readonly #log: Logger;
  readonly #warnings: readonly ConfigWarning[];
  readonly #state: AgentStateFile;
  readonly #ipam: EndpointIpam;
  readonly #ipsecKeyIds: readonly number[];
  readonly #kvstore: AgentKvstore | undefined;
  readonly #metrics: AgentMetrics;
  readonly #subscribers = new Set<MonitorSubscriber>();
  readonly #controllers: Controller[] = [];
  readonly #stop = new AbortController();
  readonly #version = findVersion();
  #api: ApiServer | undefined;
  #metricsServer: { server: Server; address: { host: string; port: number } } | undefined;
  #gc: ConntrackGcScheduler | undefined;
  #monitorDone: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  /**
   * Assembles an agent.
   *
   * @internal Use {@link startAgent}.
   * @param parts What startAgent opened.
   */
  constructor(parts: {
    config: AgentConfig;
    resolved: ResolvedConfig;
    node: Node;
    logger: Logger;
    warnings: readonly ConfigWarning[];
    ipam: EndpointIpam;
    ipsecKeyIds?: readonly number[];
    kvstore?: AgentKvstore | undefined;
  }) {
    this.config = parts.config;
    this.resolved = parts.resolved;
    this.node = parts.node;
    this.socketPath = parts.resolved.socketPath;
    this.startedAt = new Date();
    this.#log = parts.logger;
    this.#warnings = parts.warnings;
    this.#state = new AgentStateFile(join(parts.config["state-dir"], "agent.json"));
    this.#ipam = parts.ipam;
    this.#ipsecKeyIds = parts.ipsecKeyIds ?? [];
    this.#kvstore = parts.kvstore;
    const live = new Set(this.node.endpoints().map((ep) => String(ep.id)));
    for (const id of Object.keys(this.#state.data.containerIds))
      if (!live.has(id)) delete this.#state.data.containerIds[id];
    if (this.#state.data.revision === 0 && this.node.engine.rules().length > 0) this.#state.data.revision = 1;
    this.#metrics = new AgentMetrics(async () => ({
      status: this.node.status(),
      rules: this.node.engine.rules().length,
      identities: (await this.node.allocator.list()).map((i) => i.id),
    }));
  }

  /** The address the metrics server listens on, when `prometheus-serve-addr` is set. */
  get metricsAddress():
    | {
        /** The address the server is bound to. */
        readonly host: string;
        /** The port it listens on. */
        readonly port: number;
      }
    | undefined {
    return this.#metricsServer?.address;
  }

  /**
   * Starts the background work and the servers.
   *
   * @param monitorQueue The monitor queue size per client.
   */
  async #start(monitorQueue: number | undefined): Promise<void> {
    this.#state.save();
    const gc = gcOptions(this.resolved);
    if (gc !== false) {
      const ctl = new Controller("ct-gc");
      this.#controllers.push(ctl);
      this.#gc = new ConntrackGcScheduler(this.node.conntrackMaps, {
        ...gc,
        signal: this.#stop.signal,
        onResult: (r, next) => {
          ctl.succeeded();
          this.#log.debug("Conntrack GC pass", {
            tcpRemoved: r.tcp.removed,
            anyRemoved: r.any.removed,
            nextIntervalMs: next,
          });
        },
        onError: (err) => {
          ctl.failed(err);
          this.#log.warn("Conntrack GC failed", { error: err });
        },
      }).start();
    }
    this.#startMonitor();
    const addr = this.config["prometheus-serve-addr"];
    if (addr !== "") {
      this.#metricsServer = await serveMetrics(this.#metrics, addr, (err) =>
        this.#log.warn("Metrics scrape failed", { error: err }),
      );
      this.#log.info("Serving metrics", {
        address: `${this.#metricsServer.address.host}:${this.#metricsServer.address.port}`,
      });
    }
    this.#api = await serveApi(this.#backend(), {
      socketPath: this.socketPath,
      logger: this.#log,
      ...(monitorQueue === undefined ? {} : { monitorQueue }),
    });
    this.#log.info("Serving the API", { socket: this.socketPath });
  }

  /** Reads the ring buffer for every monitor client (the ring has one reader), and polls the lost-event counter. */
  #startMonitor(): void {
    const ctl = new Controller("monitor");
    this.#controllers.push(ctl);
    const signal = this.#stop.signal;
    const dispatch = (e: MonitorEvent): void => {
      for (const s of this.#subscribers) s.event(e);
    };
    const reader = (async (): Promise<void> => {
      try {
        for await (const e of this.node.monitor({ signal })) {
          dispatch(e);
        }
      } catch (err) {
        if (!signal.aborted) {
          ctl.failed(err);
          this.#log.error("Monitor reader stopped", { error: err });
        }
      }
    })();
    let lastLost = this.#lostEvents();
    const timer = setInterval(() => {
      try {
        const lost = this.#lostEvents();
        if (lost > lastLost) for (const s of this.#subscribers) s.lost(Number(lost - lastLost));
        lastLost = lost;
        ctl.succeeded();
      } catch (err) {
        ctl.failed(err);
      }
    }, 1000);
    timer.unref();
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    this.#monitorDone = reader;
  }

  #lostEvents(): bigint {
    return this.node.counters().lostEvents;
  }

  #endpointView(ep: Endpoint): ApiEndpoint {
    const view = { ...toWire(ep), containerId: this.#state.data.containerIds[String(ep.id)] };
    if (ep.existing === true) return view;
    const router = {
      ipv4: this.resolved.ipv4.router,
      ipv6: ep.ipv6 === undefined ? undefined : this.resolved.ipv6?.router,
    };
    return { ...view, router };
  }

  #timed<T>(fn: () => Promise<T>): Promise<T> {
    const end = this.#metrics.regeneration.startTimer();
    return fn().finally(() => end());
  }

  async #createEndpoint(req: EndpointRequest): Promise<ApiEndpoint> {
    const v6 = this.resolved.ipv6 !== undefined;
    if (req.ipv6 !== undefined && !v6)
      throw new ApiError(
        "bad-request",
        `Cannot create endpoint: ipv6 given but IPv6 is disabled (enable-ipv6: false)`,
        {
          field: "ipv6",
        },
      );
    const existing = req.existing === true;
    if (existing && req.ipv4 === undefined)
      throw new ApiError(
        "bad-request",
        "Cannot create endpoint: existing needs the addresses the other plugin gave the interface (ipv4, and ipv6 if any)",
        { field: "ipv4" },
      );
    const allocated: string[] = [];
    const owner = req.containerId ?? req.netns;
    const ipv4 = req.ipv4 ?? (await this.#ipam.allocate(4, owner));
    if (req.ipv4 === undefined) allocated.push(ipv4);
    let ipv6 = req.ipv6;
    let ep: Endpoint;
    try {
      // With ipam eni, endpoints have no IPv6 address (Cilium's ENI mode is IPv4 only).
      if (ipv6 === undefined && v6 && !existing && this.#ipam.ipv6) {
        ipv6 = await this.#ipam.allocate(6, owner);
        allocated.push(ipv6);
      }
      ep = await this.#timed(() =>
        this.node.addEndpoint({
          netns: req.netns,
          ipv4,
          ...(ipv6 === undefined ? {} : { ipv6 }),
          ...(req.ifname === undefined ? {} : { ifname: req.ifname }),
          ...(existing ? { existing } : {}),
          labels: req.labels,
        }),
      );
    } catch (err) {
      for (const ip of allocated) this.#ipam.release(ip);
      throw err;
    }
    this.#ipam.claim(ep.ipv4);
    if (ep.ipv6 !== undefined) this.#ipam.claim(ep.ipv6);
    this.#syncIpam();
    if (req.containerId !== undefined) {
      this.#state.data.containerIds[String(ep.id)] = req.containerId;
      this.#state.save();
    }
    this.#log.info("Endpoint created", {
      endpoint: ep.id,
      identity: ep.identity,
      ipv4: ep.ipv4,
      ipv6: ep.ipv6,
      netns: ep.netns,
    });
    return this.#endpointView(ep);
  }

  /** Brings the IPAM's per-endpoint routing (eni: FIB rules) in line with the endpoints; a failure is logged, the next change retries. */
  #syncIpam(): void {
    try {
      this.#ipam.sync(this.node.endpoints());
    } catch (err) {
      this.#log.warn("Cannot reconcile the IPAM's endpoint routing", { ipam: this.#ipam.mode, error: err });
    }
  }

  async #deleteEndpoint(id: number): Promise<void> {
    const ep = this.node.endpoints().find((e) => e.id === id);
    if (ep === undefined) throw new ApiError("not-found", `Cannot delete endpoint ${id}: no such endpoint`);
    await this.#timed(() => this.node.removeEndpoint(id));
    this.#ipam.release(ep.ipv4);
    if (ep.ipv6 !== undefined) this.#ipam.release(ep.ipv6);
    this.#syncIpam();
    if (delete this.#state.data.containerIds[String(id)]) this.#state.save();
    this.#log.info("Endpoint deleted", { endpoint: id });
  }

  /** Removes the endpoints created for a container id; none is fine (CNI DEL is idempotent). */
  async #deleteContainerEndpoints(containerId: string): Promise<void> {
    const ids = Object.entries(this.#state.data.containerIds)
      .filter(([, owner]) => owner === containerId)
      .map(([id]) => Number(id));
    for (const id of ids) {
      try {
        await this.#deleteEndpoint(id);
      } catch (err) {
        // Removed meanwhile by a concurrent request: gone is what was asked.
        if (asApiError(err).code !== "not-found") throw err;
        if (delete this.#state.data.containerIds[String(id)]) this.#state.save();
      }
    }
  }

  #policy(): ApiPolicy {
    return { revision: this.#state.data.revision, rules: this.node.engine.rules() };
  }

  async #setRules(rules: readonly PolicyRule[], what: string): Promise<ApiPolicy> {
    await this.#timed(() => this.node.setRules(rules));
    this.#state.data.revision++;
    this.#state.save();
    this.#log.info(what, { rules: rules.length, revision: this.#state.data.revision });
    return this.#policy();
  }

  async #importPolicy(req: PolicyImportRequest): Promise<ApiPolicy> {
    try {
      validatePolicyRules(req.rules);
    } catch (err) {
      if (!(err instanceof PolicyValidationError)) throw err;
      const index = typeof err.rule === "number" ? err.rule : req.rules.findIndex((r) => r.name === err.rule);
      throw new ApiError("bad-request", err.message, { field: `rules[${index}].${err.field}`, cause: err });
    }
    let rules: PolicyRule[];
    if (req.replace === true) rules = [...req.rules];
    else {
      const incoming = new Map(req.rules.filter((r) => r.name !== undefined).map((r) => [r.name, r]));
      const current = this.node.engine.rules();
      const replaced = new Set<string>();
      rules = current.map((r) => {
        const next = r.name === undefined ? undefined : incoming.get(r.name);
        if (next === undefined || r.name === undefined) return r;
        replaced.add(r.name);
        return next;
      });
      for (const r of req.rules) if (r.name === undefined || !replaced.has(r.name)) rules.push(r);
    }
    return this.#setRules(rules, "Policy imported");
  }

  async #deletePolicy(names: readonly string[]): Promise<ApiPolicy> {
    const current = this.node.engine.rules();
    if (names.length === 0) return this.#setRules([], "Policy deleted");
    const known = new Set(current.map((r) => r.name));
    const missing = names.filter((n) => !known.has(n));
    if (missing.length > 0)
      throw new ApiError(
        "not-found",
        `Cannot delete policy: no rule named ${missing.map((n) => JSON.stringify(n)).join(", ")}`,
        { field: "name" },
      );
    const drop = new Set(names);
    return this.#setRules(
      current.filter((r) => r.name === undefined || !drop.has(r.name)),
      "Policy deleted",
    );
  }

  #tracePolicy(req: PolicyTraceRequest): PolicyTraceResponse {
    for (const [side, peer] of [
      ["from", req.from],
      ["to", req.to],
    ] as const) {
      if ("endpoint" in peer && !this.node.endpoints().some((e) => e.id === peer.endpoint))
        throw new ApiError("not-found", `Cannot trace policy: ${side}: no endpoint ${peer.endpoint}`, {
          field: `${side}.endpoint`,
        });
    }
    const text = req.protocol ?? "TCP";
    const protocol = PROTOCOLS.find((p) => p.toLowerCase() === text.toLowerCase());
    if (protocol === undefined)
      throw new ApiError(
        "bad-request",
        `Cannot trace policy: protocol ${JSON.stringify(text)} is not one of ${PROTOCOLS.join(", ")} (a trace needs one protocol)`,
        { field: "protocol" },
      );
    return toWire(
      this.node.engine.explain({
        from: req.from,
        to: req.to,
        protocol,
        ...(req.port === undefined ? {} : { port: req.port }),
      }),
    );
  }

  /** The filters for one conntrack request: one per address of the endpoint, when one is named. */
  #conntrackFilters(query: ConntrackQuery, what: string): ConntrackQuery[] {
    const { endpoint, ...filter } = query;
    if (endpoint === undefined) return [filter];
    if (filter.address !== undefined)
      throw new ApiError("bad-request", `Cannot ${what}: give endpoint or address, not both`, { field: "endpoint" });
    const ep = this.node.endpoints().find((e) => e.id === endpoint);
    if (ep === undefined)
      throw new ApiError("not-found", `Cannot ${what}: no endpoint ${endpoint}`, { field: "endpoint" });
    return [ep.ipv4, ep.ipv6]
      .filter((ip) => ip !== undefined)
      .filter((ip) => filter.family === undefined || (filter.family === 4) === !ip.includes(":"))
      .map((address) => ({ ...filter, address }));
  }

  #policyMap(id: number): ApiPolicyMapEntry[] {
    if (!this.node.endpoints().some((e) => e.id === id))
      throw new ApiError("not-found", `Cannot get policy map of endpoint ${id}: no such endpoint`);
    const entries = this.node.policyMapEntries(id) ?? [];
    const out: ApiPolicyMapEntry[] = entries.map((e) => ({
      direction: e.egress ? "egress" : "ingress",
      identity: e.identity,
      protocol: e.protocol,
      port: e.port,
      prefixLength: e.prefixLength,
      deny: e.deny,
      proxyPort: e.proxyPort,
      ruleCookie: e.ruleCookie,
      packets: e.packets.toString(),
      bytes: e.bytes.toString(),
    }));
    return out.sort(
      (a, b) =>
        a.direction.localeCompare(b.direction) ||
        a.identity - b.identity ||
        a.protocol - b.protocol ||
        a.port - b.port ||
        a.prefixLength - b.prefixLength,
    );
  }

  async #identities(): Promise<ApiIdentity[]> {
    const counts = new Map<number, number>();
    for (const ep of this.node.endpoints()) counts.set(ep.identity, (counts.get(ep.identity) ?? 0) + 1);
    const inUse = new Set(this.node.identities().map((i) => i.id));
    const all = await this.node.allocator.list();
    return all
      .filter((i) => i.id < 256 || inUse.has(i.id))
      .map((i) => ({
        id: i.id,
        labels: i.labels.toStrings(),
        kind: i.id >= 1 << 24 ? "cidr" : i.id >= 256 ? "cluster" : "reserved",
        endpoints: counts.get(i.id) ?? 0,
      }));
  }

  /**
   * The agent's status, as `GET /v1/status` answers and `dp status` shows it.
   *
   * @returns The status.
   */
  status(): AgentStatus {
    const s = this.node.status();
    return {
      version: this.#version,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      cluster: { name: this.config["cluster-name"], id: this.config["cluster-id"] },
      node: {
        netns: this.config.netns === "" ? `/proc/${process.pid}/ns/net` : this.config.netns,
        stateDir: this.node.stateDir,
        devices: this.config.devices,
      },
      // The config's reason (Cilium's fallback rules) when the node runs the mode it decided.
      hostRouting: s.hostRouting.mode === this.resolved.hostRouting.mode ? this.resolved.hostRouting : s.hostRouting,
      attachMode: this.node.attachMode,
      masquerading: this.resolved.masquerading,
      kvstore: this.#kvstore?.status() ?? { state: "disabled", message: this.resolved.kvstore.message },
      unsupported: this.resolved.unsupported,
      unknownKeys: this.#warnings.map((w) => w.key),
      adopted: { maps: s.adopted.maps.length, endpoints: s.adopted.endpoints, attachments: s.adopted.attachments },
      maps: s.maps,
      endpoints: { total: s.endpoints.length, policyMapFull: s.endpoints.filter((e) => e.policyMapFull).length },
      identities: s.identities.length,
      policy: { rules: this.node.engine.rules().length, revision: this.#state.data.revision },
      controllers: this.#controllers.map((c) => c.status()),
      counters: toWire(s.counters),
      encryption: toWire({
        mode: s.encryption.mode,
        keyIds: [...this.#ipsecKeyIds],
        nodeKeys: s.encryption.keys,
        xfrmErrors: s.encryption.xfrmStat ?? {},
      }),
    };
  }

  #backend(): ApiBackend {
    return {
      status: () => this.status(),
      endpoints: () =>
        this.node
          .endpoints()
          .sort((a, b) => a.id - b.id)
          .map((e) => this.#endpointView(e)),
      createEndpoint: (req) => this.#createEndpoint(req),
      deleteEndpoint: (id) => this.#deleteEndpoint(id),
      deleteContainerEndpoints: (containerId) => this.#deleteContainerEndpoints(containerId),
      identities: () => this.#identities(),
      policy: () => this.#policy(),
      importPolicy: (req) => this.#importPolicy(req),
      deletePolicy: (names) => this.#deletePolicy(names),
      tracePolicy: (req) => this.#tracePolicy(req),
      conntrack: (q) =>
        this.#conntrackFilters(q, "list conntrack entries").flatMap((f) => toWire(this.node.listConntrack(f))),
      flushConntrack: (q) => {
        let tcp = 0;
        let any = 0;
        for (const f of this.#conntrackFilters(q, "flush conntrack entries")) {
          const r = this.node.flushConntrack(f);
          tcp += r.tcp;
          any += r.any;
        }
        return { tcp, any };
      },
      policyMap: (id) => this.#policyMap(id),
      ipcache: () => this.node.ipcache.entries(),
      metrics: () => toWire(this.node.counters().metrics),
      subscribeMonitor: (s) => {
        this.#subscribers.add(s);
        return () => this.#subscribers.delete(s);
      },
    };
  }

  /**
   * Stops the agent: the API and metrics servers, the monitor reader and
   * the conntrack collector; then either removes the datapath
   * (`teardown`: every endpoint, attachment and pinned map, the agent's
   * files) or leaves it running and closes the handles, so the next
   * agent on the same state adopts it without dropping connections.
   * Calling it again returns the first call's promise.
   *
   * @param options Whether to tear the datapath down.
   * @returns Resolves when stopped.
   */
  close(options: AgentCloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.teardown === true);
    return this.#closing;
  }

  async #close(teardown: boolean): Promise<void> {
    this.#log.info("Agent stopping", { teardown });
    const errors: unknown[] = [];
    const step = async (fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => this.#api?.close());
    const metrics = this.#metricsServer?.server;
    if (metrics !== undefined)
      await step(
        () =>
          new Promise<void>((resolve) => {
            metrics.close(() => resolve());
            metrics.closeAllConnections();
          }),
      );
    this.#stop.abort();
    this.#gc?.stop();
    await step(() => this.#monitorDone);
    await step(() => this.#ipam.close(teardown));
    if (teardown) {
      await step(() => this.node.destroy());
      await step(() => this.#state.remove());
      removeEmptyDirs(this.node.stateDir);
    } else {
      await step(() => this.node.close());
    }
    // After the node: a kvstore allocator must outlive the node using it. Revokes the lease: the node leaves.
    await step(() => this.#kvstore?.close());
    this.#log.info("Agent stopped", { teardown });
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "Cannot stop the agent cleanly");
  }

  /** Same as `close({ teardown: false })`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  static {
    startInternal = async (agent, monitorQueue) => agent.#start(monitorQueue);
  }
}

/**
 * Starts the agent: decides the config against the kernel (Cilium's
 * fallbacks, a {@link ConfigError} for contradictions), checks the node's
 * namespace and devices and that no other agent answers on the socket —
 * all before changing anything — then, with `kvstore: etcd`, connects to
 * etcd (waiting up to 10 s; unlike Cilium, which retries forever, the
 * agent then fails and names the endpoints), registers the node under a
 * lease and, with `identity-allocation-mode: kvstore`, allocates
 * identities in etcd; then opens the `Node` on
 * `<bpf-root>/dp` (adopting what a previous agent left there, connections
 * included), opens the IPAM (`ipam: eni`: the ENI pool through EC2, with
 * the addresses the adopted endpoints and the kernel's ENI rules hold), starts the conntrack collector and the monitor reader, the
 * metrics server when `prometheus-serve-addr` is set, and the API on
 * `socket-path` (its directory made 0700, the socket 0600; a stale socket
 * of a killed agent is replaced).
 *
 * @param config The config from `loadConfig`.
 * @param options The logger and the config's warnings.
 * @returns The running agent.
 * @throws {ConfigError} When keys contradict each other, or the namespace or a device does not exist.
 * @throws {Error} When another agent answers on the socket.
 * @throws {MetadataError} With `ipam: eni`, when the instance metadata cannot be read (from `@dp/eni`).
 * @throws {EniPoolError} With `ipam: eni`, when the ENI pool cannot be opened or filled through EC2 (from `@dp/eni`).
 * @throws {EtcdConfigError} With `kvstore: etcd`, when `etcd-config` or the `etcd-config-path` file is invalid (from `@dp/kvstore`).
 * @throws {KvstoreError} With `kvstore: etcd`, when etcd does not answer within 10 s (the message names the endpoints) or registering the node fails (from `@dp/kvstore`).
 * @throws {SyscallError} When the kernel refuses a map, program or attachment.
 * @capability CAP_BPF
 * @capability CAP_NET_ADMIN
 * @capability CAP_SYS_ADMIN
 * @example Running until SIGTERM
 * ```ts no-run
 * import { loadConfig, startAgent } from "@dp/agent";
 * const { config, warnings } = loadConfig({ file: "/etc/dp/config.yaml" });
 * const agent = await startAgent(config, { warnings });
 * process.once("SIGTERM", () => void agent.close({ teardown: config["agent-teardown-on-stop"] }));
 * ```
 */
export async function startAgent(config: AgentConfig, options: AgentOptions = {}): Promise<Agent> {
  const logger = options.logger ?? createLogger({ format: config["log-format"], debug: config.debug });
  const warnings = options.warnings ?? [];
  for (const w of warnings) logger.warn("Config warning", { key: w.key, warning: w.message });
  const resolved = resolveConfig(config, probeKernel());
  for (const u of resolved.unsupported) logger.warn("Not supported yet", { key: u.key, message: u.message });
  checkDevices(config);
  const ipsecKeyIds = await readIpsecKeyIds(config);
  await assertNoAgent(resolved.socketPath);
  logger.info("Opening the node", {
    stateDir: resolved.nodeOptions.stateDir,
    netns: config.netns === "" ? "(the agent's)" : config.netns,
    hostRouting: resolved.hostRouting.mode,
    reason: resolved.hostRouting.reason,
  });
  const kvstore = await openAgentKvstore(config, logger, config.kvstore === "etcd" ? uplinkAddresses(config) : {});
  let node: Node;
  try {
    node = await openNode({
      ...resolved.nodeOptions,
      ctGc: false,
      ...(kvstore?.allocator === undefined ? {} : { allocator: kvstore.allocator }),
    });
  } catch (err) {
    await kvstore?.close().catch(() => undefined);
    throw err;
  }
  let ipam: EndpointIpam;
  try {
    ipam = await openEndpointIpam(config, resolved, node.endpoints());
  } catch (err) {
    node.close();
    await kvstore?.close().catch(() => undefined);
    throw err;
  }
  logger.info("IPAM ready", { mode: ipam.mode });
  const agent = new Agent({ config, resolved, node, logger, warnings, ipam, ipsecKeyIds, kvstore });
  try {
    await startInternal(agent, options.monitorQueue);
  } catch (err) {
    await agent.close({ teardown: false }).catch(() => undefined);
    throw err;
  }
  const st = node.status();
  logger.info("Agent started", {
    pid: process.pid,
    hostRouting: st.hostRouting.mode,
    attachMode: node.attachMode,
    endpoints: st.endpoints.length,
    adoptedEndpoints: st.adopted.endpoints,
    rules: node.engine.rules().length,
  });
  return agent;
}
