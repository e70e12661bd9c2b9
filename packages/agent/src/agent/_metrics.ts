// The agent's Prometheus metrics, with Cilium's names where they
// correspond (`cilium_drop_count_total` → `dp_drop_count_total`). Values
// come from the node's maps at scrape time.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { classifyIdentity, type NodeStatus } from "@dp/datapath";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What one scrape reads. */
export interface MetricsSnapshot {
  /** The node's status (counters, map fill levels, endpoints). */
  readonly status: NodeStatus;
  /** The policy rules loaded. */
  readonly rules: number;
  /** The identities the allocator knows. */
  readonly identities: readonly number[];
}

/** The registry and the collectors that read a snapshot. */
export class AgentMetrics {
  /** The registry (only the agent's metrics). */
  readonly registry: Registry;
  /** How long policy changes took to reach the maps. */
  readonly regeneration: Histogram;
  readonly #read: () => Promise<MetricsSnapshot>;
  #snap: MetricsSnapshot | undefined;

  /**
   * Creates the collectors.
   *
   * @param read Takes a snapshot of the node (called once per scrape).
   */
  constructor(read: () => Promise<MetricsSnapshot>) {
    this.#read = read;
    const registry = new Registry();
    this.registry = registry;
    const snap = (): MetricsSnapshot | undefined => this.#snap;
    function counters(reasonOf: "drop" | "forward", what: "packets" | "bytes") {
      return function collect(this: Counter): void {
        this.reset();
        const s = snap();
        if (s === undefined) return;
        for (const c of s.status.counters.metrics) {
          if ((c.reason === 0) !== (reasonOf === "forward")) continue;
          const labels: Record<string, string> =
            reasonOf === "forward" ? { direction: c.direction } : { reason: c.reasonName, direction: c.direction };
          this.inc(labels, Number(c[what]));
        }
      };
    }
    new Counter({
      name: "dp_drop_count_total",
      help: "Packets dropped by the datapath, by reason and policy direction",
      labelNames: ["reason", "direction"],
      registers: [registry],
      collect: counters("drop", "packets"),
    });
    new Counter({
      name: "dp_drop_bytes_total",
      help: "Bytes dropped by the datapath, by reason and policy direction",
      labelNames: ["reason", "direction"],
      registers: [registry],
      collect: counters("drop", "bytes"),
    });
    new Counter({
      name: "dp_forward_count_total",
      help: "Packets forwarded by the datapath, by policy direction",
      labelNames: ["direction"],
      registers: [registry],
      collect: counters("forward", "packets"),
    });
    new Counter({
      name: "dp_forward_bytes_total",
      help: "Bytes forwarded by the datapath, by policy direction",
      labelNames: ["direction"],
      registers: [registry],
      collect: counters("forward", "bytes"),
    });
    new Gauge({
      name: "dp_bpf_map_pressure",
      help: "Fill ratio of each BPF map (entries / max entries)",
      labelNames: ["map_name"],
      registers: [registry],
      collect(this: Gauge): void {
        this.reset();
        for (const m of snap()?.status.maps ?? [])
          this.set({ map_name: m.name }, m.maxEntries === 0 ? 0 : m.entries / m.maxEntries);
      },
    });
    new Gauge({
      name: "dp_endpoint",
      help: "Endpoints managed by the agent",
      registers: [registry],
      collect(this: Gauge): void {
        this.set(snap()?.status.endpoints.length ?? 0);
      },
    });
    new Gauge({
      name: "dp_identity",
      help: "Identities known to the agent, by type (reserved, cluster, cidr)",
      labelNames: ["type"],
      registers: [registry],
      collect(this: Gauge): void {
        this.reset();
        const counts = new Map<string, number>([
          ["reserved", 0],
          ["cluster", 0],
          ["cidr", 0],
        ]);
        for (const id of snap()?.identities ?? []) {
          const kind = classifyIdentity(id);
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
        }
        for (const [type, n] of counts) this.set({ type }, n);
      },
    });
    new Gauge({
      name: "dp_policy",
      help: "Policy rules loaded",
      registers: [registry],
      collect(this: Gauge): void {
        this.set(snap()?.rules ?? 0);
      },
    });
    new Counter({
      name: "dp_lost_events_total",
      help: "Monitor events the ring buffer had no room for",
      registers: [registry],
      collect(this: Counter): void {
        this.reset();
        this.inc(Number(snap()?.status.counters.lostEvents ?? 0n));
      },
    });
    new Counter({
      name: "dp_policy_map_full_total",
      help: "Policy entries a full policy map refused",
      registers: [registry],
      collect(this: Counter): void {
        this.reset();
        this.inc(snap()?.status.counters.policyMapFull ?? 0);
      },
    });
    this.regeneration = new Histogram({
      name: "dp_policy_regeneration_time_stats_seconds",
      help: "Time taken to apply a policy or endpoint change to the maps",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  }

  /**
   * Reads the node and renders the metrics in the Prometheus text format.
   *
   * @returns The content type and the text.
   */
  async render(): Promise<{ contentType: string; text: string }> {
    this.#snap = await this.#read();
    try {
      return { contentType: this.registry.contentType, text: await this.registry.metrics() };
    } finally {
      this.#snap = undefined;
    }
  }
}

/**
 * Parses `prometheus-serve-addr`: `":9962"` (every address), `"127.0.0.1:9962"`, `"[::1]:9962"`.
 *
 * @param addr The address.
 * @returns The host (undefined: every address) and port.
 * @throws {TypeError} When it is not `[host]:port`.
 */
export function parseServeAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65535)
    throw new TypeError(`Invalid prometheus-serve-addr ${JSON.stringify(addr)}: expected [host]:port such as ":9962"`);
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port };
}

/**
 * Serves `GET /metrics` on an address.
 *
 * @param metrics The metrics.
 * @param addr The address (`":9962"`).
 * @param onError Called when a scrape fails.
 * @returns The server and the address it listens on.
 */
export async function serveMetrics(
  metrics: AgentMetrics,
  addr: string,
  onError: (err: unknown) => void,
): Promise<{ server: Server; address: { host: string; port: number } }> {
  const { host, port } = parseServeAddr(addr);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://dp").pathname;
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: the metrics are at /metrics\n");
      return;
    }
    metrics.render().then(
      ({ contentType, text }) => res.writeHead(200, { "content-type": contentType }).end(text),
      (err: unknown) => {
        onError(err);
        res.writeHead(500, { "content-type": "text/plain" }).end(`Cannot read metrics: ${String(err)}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return { server, address: { host: a.address, port: a.port } };
}
