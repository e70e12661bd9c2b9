// Runs the connectivity test against an agent: deploys its pods (or uses
// given ones), and for each scenario imports its rules, runs its actions
// at the same time, reads the drop reasons of the dropped flows from the
// monitor stream, deletes its rules.
import { setTimeout as sleep } from "node:timers/promises";
import type { ApiClient } from "../api/client.ts";
import type { MonitorLine } from "../api/types.ts";
import type { ProbeWorker } from "../lab/_probe_worker.ts";
import type { Lab } from "../lab/lab.ts";
import { type ConnectivityDeployment, deployConnectivityPods } from "./deployment.ts";
import type { ConnectivityActionResult, ConnectivityReport, ConnectivityScenarioResult } from "./report.ts";
import {
  CONNECTIVITY_HTTP_PORT,
  type ConnectivityActionSpec,
  type ConnectivityScenario,
  type ScenarioContext,
} from "./scenario.ts";
import { connectivityScenarios } from "./registry.ts";

/** Options for {@link runConnectivityTest}. */
export interface ConnectivityTestOptions {
  /** The agent. */
  readonly client: ApiClient;
  /** The demo lab: its outside namespace is the world target, its node the host. */
  readonly lab?: Lab;
  /** Run only the scenarios whose name matches. */
  readonly tests?: RegExp;
  /** Without a lab: an external address as the world target. */
  readonly externalTarget?: string;
  /** Pods deployed before (kept afterwards); by default the test deploys and removes its own. */
  readonly deployment?: ConnectivityDeployment;
  /** Progress for humans. */
  readonly onProgress?: (message: string) => void;
  /** Aborting stops the test (its rules and pods are removed). */
  readonly signal?: AbortSignal;
}

/** How long a probe waits for an answer. */
const PROBE_TIMEOUT_MS = { http: 1500, udp: 1200, icmp: 1000 } as const;
/** How long after the probes the monitor stream may still bring their drops. */
const MONITOR_GRACE_MS = 300;

interface SeenDrop {
  readonly at: number;
  readonly saddr: string | undefined;
  readonly daddr: string | undefined;
  readonly protocol: number;
  readonly dport: number;
  readonly reason: string;
}

class DropCollector {
  readonly drops: SeenDrop[] = [];
  lost = 0;
  readonly #stop = new AbortController();
  #reading: Promise<void> | undefined;

  start(client: ApiClient): Promise<void> {
    const lines = client.monitor({ types: ["drop"], signal: this.#stop.signal });
    let connected: () => void = () => {};
    const ready = new Promise<void>((resolve) => (connected = resolve));
    this.#reading = (async () => {
      const it = lines[Symbol.asyncIterator]();
      // The request is sent on the first next(); give it a moment to be registered.
      const first = it.next();
      setTimeout(connected, 250);
      try {
        for (let r = await first; r.done !== true; r = await it.next()) this.#add(r.value);
      } catch {
        // The agent went away: the reasons stay as far as they were seen.
      } finally {
        connected();
      }
    })();
    return ready;
  }

  #add(line: MonitorLine): void {
    if (line.kind === "lost") {
      this.lost += line.count;
      return;
    }
    const e = line.event;
    if (e.type !== "drop") return;
    this.drops.push({
      at: Date.now(),
      saddr: e.saddr,
      daddr: e.daddr,
      protocol: e.protocol,
      dport: e.dport,
      reason: e.reason,
    });
  }

  reasons(src: string, dst: string, protocol: number, port: number | undefined, since: number): string[] {
    const out = new Set<string>();
    for (const d of this.drops) {
      if (d.at < since || d.saddr !== src || d.daddr !== dst || d.protocol !== protocol) continue;
      if (port !== undefined && d.dport !== port) continue;
      out.add(d.reason);
    }
    return [...out];
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#reading;
  }
}

const IPPROTO = { http: 6, udp: 17 } as const;

interface Resolved {
  readonly worker: ProbeWorker | undefined;
  readonly src: string | undefined;
  readonly dst: string | undefined;
  readonly skip: string | undefined;
}

function resolve(dep: ConnectivityDeployment, a: ConnectivityActionSpec): Resolved {
  const family = a.family ?? "ipv4";
  let worker: ProbeWorker | undefined;
  let src: string | undefined;
  if (a.from === "world") {
    worker = dep.worldWorker;
    src = dep.world?.[family];
    if (worker === undefined) return { worker, src, dst: undefined, skip: "no world namespace to run from" };
  } else {
    const pod = dep.pods[a.from];
    worker = pod?.worker;
    src = family === "ipv4" ? pod?.endpoint.ipv4 : pod?.endpoint.ipv6;
  }
  let dst: string | undefined;
  if (a.to === "world") dst = dep.world?.[family];
  else if (a.to === "host") dst = dep.host?.[family];
  else dst = family === "ipv4" ? dep.pods[a.to]?.endpoint.ipv4 : dep.pods[a.to]?.endpoint.ipv6;
  if (src === undefined || worker === undefined)
    return { worker, src, dst, skip: `${a.from} has no ${family} address` };
  if (dst === undefined) return { worker, src, dst, skip: `no ${family} ${a.to} target` };
  return { worker, src, dst, skip: undefined };
}

function targetText(dst: string, a: ConnectivityActionSpec): string {
  if (a.protocol === "icmp") return dst;
  const port = a.protocol === "http" ? CONNECTIVITY_HTTP_PORT : CONNECTIVITY_HTTP_PORT + 1;
  return dst.includes(":") ? `[${dst}]:${port}` : `${dst}:${port}`;
}

async function runAction(
  dep: ConnectivityDeployment,
  drops: DropCollector,
  a: ConnectivityActionSpec,
): Promise<() => ConnectivityActionResult> {
  const family = a.family ?? "ipv4";
  const base = { name: a.name, from: a.from, to: a.to, protocol: a.protocol, family, expected: a.expect };
  const r = resolve(dep, a);
  if (r.skip !== undefined || r.worker === undefined || r.dst === undefined || r.src === undefined) {
    const result: ConnectivityActionResult = {
      ...base,
      target: r.dst ?? "-",
      observed: "skip",
      detail: r.skip ?? "no target",
      dropReasons: [],
      ok: true,
      ms: 0,
    };
    return () => result;
  }
  const { src, dst } = r;
  const port =
    a.protocol === "http" ? CONNECTIVITY_HTTP_PORT : a.protocol === "udp" ? CONNECTIVITY_HTTP_PORT + 1 : undefined;
  const since = Date.now();
  const probe = await r.worker.probe({
    protocol: a.protocol,
    host: dst,
    ...(port === undefined ? {} : { port }),
    timeoutMs: PROBE_TIMEOUT_MS[a.protocol],
  });
  const observed = probe.ok ? "allow" : "drop";
  // Read after the grace period, when the monitor lines have arrived.
  return () => {
    const protocol = a.protocol === "icmp" ? (family === "ipv4" ? 1 : 58) : IPPROTO[a.protocol];
    const reasons = observed === "drop" ? drops.reasons(src, dst, protocol, port, since) : [];
    return {
      ...base,
      target: targetText(dst, a),
      observed,
      detail: probe.detail,
      dropReasons: reasons,
      ok: observed === a.expect,
      ms: probe.ms,
    };
  };
}

function ruleNames(scenario: ConnectivityScenario, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `connectivity-${scenario.name}${count > 1 ? `-${i + 1}` : ""}`);
}

async function runScenario(
  client: ApiClient,
  dep: ConnectivityDeployment,
  drops: DropCollector,
  scenario: ConnectivityScenario,
): Promise<ConnectivityScenarioResult> {
  const ctx: ScenarioContext = { world: dep.world, host: dep.host };
  const rules = scenario.rules(ctx);
  const names = ruleNames(scenario, rules.length);
  try {
    if (rules.length > 0)
      await client.importPolicy({
        rules: rules.map((r, i) => ({ ...r, name: names[i] ?? scenario.name, description: scenario.description })),
      });
    const pending = await Promise.all(scenario.actions.map((a) => runAction(dep, drops, a)));
    await sleep(MONITOR_GRACE_MS);
    const actions = pending.map((read) => read());
    return {
      name: scenario.name,
      description: scenario.description,
      rules: names,
      actions,
      ok: actions.every((a) => a.ok),
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      name: scenario.name,
      description: scenario.description,
      rules: names,
      actions: [],
      error: message,
      ok: false,
    };
  } finally {
    if (names.length > 0) await client.deletePolicy(names).catch(() => {});
  }
}

/**
 * Runs the connectivity test against an agent: deploys the test's pods
 * (client, client2, echo-same-node) through the API, then for each
 * scenario imports its rules (named `connectivity-*`), runs its actions
 * (HTTP, UDP and ping probes from the pods or the world) at the same
 * time, compares each verdict with the expected one, takes the drop
 * reasons of dropped flows from the monitor stream, and deletes the
 * rules. The pods are removed at the end unless they were given.
 *
 * @param options The agent, lab, filter, progress.
 * @returns The report ({@link formatConnectivityReport} renders it).
 * @throws {AgentUnreachableError} When no agent answers.
 * @throws {ApiError} When the agent refuses the pods.
 * @example Against the agent of a lab
 * ```ts no-run
 * import { createLab, formatConnectivityReport, runConnectivityTest } from "@dp/agent";
 *
 * const lab = await createLab();
 * try {
 *   const report = await runConnectivityTest({ client: lab.client, lab, tests: /ingress/ });
 *   process.stdout.write(formatConnectivityReport(report));
 * } finally {
 *   await lab.destroy();
 * }
 * ```
 */
export async function runConnectivityTest(options: ConnectivityTestOptions): Promise<ConnectivityReport> {
  const { client, signal } = options;
  const progress = options.onProgress ?? ((): void => {});
  const started = Date.now();
  const status = await client.status();
  const scenarios = connectivityScenarios(options.tests);
  const dep =
    options.deployment ??
    (await deployConnectivityPods({
      client,
      ...(options.lab === undefined ? {} : { lab: options.lab }),
      ...(options.externalTarget === undefined ? {} : { externalTarget: options.externalTarget }),
      onProgress: progress,
      ...(signal === undefined ? {} : { signal }),
    }));
  const drops = new DropCollector();
  const results: ConnectivityScenarioResult[] = [];
  try {
    await drops.start(client);
    for (const [i, scenario] of scenarios.entries()) {
      signal?.throwIfAborted();
      const r = await runScenario(client, dep, drops, scenario);
      results.push(r);
      const bad = r.actions.filter((a) => !a.ok).length;
      progress(
        `[${i + 1}/${scenarios.length}] ${scenario.name}: ${
          r.error !== undefined
            ? `error: ${r.error}`
            : r.ok
              ? `${r.actions.length} actions as expected`
              : `${bad} of ${r.actions.length} actions differ`
        }`,
      );
    }
  } finally {
    await drops.stop();
    if (options.deployment === undefined) await dep.remove();
  }
  const passed = results.filter((r) => r.ok).length;
  return {
    hostRouting: status.hostRouting,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    scenarios: results,
    passed,
    failed: results.length - passed,
    lostEvents: drops.lost,
    ok: passed === results.length,
  };
}
