// `dp demo`: a lab in namespaces (a node with labelled pods, an uplink
// to an outside namespace), the real agent, the connectivity test with
// its matrix of expected vs observed verdicts and drop reasons, a sample
// policy, short throughput and latency figures, and the teardown (also
// on Ctrl-C). With `keep`, the lab stays and `dp status` works against it
// until `dp demo --teardown`.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { PolicyRule } from "@dp/datapath";
import { stringify } from "yaml";
import { deployConnectivityPods, type ConnectivityDeployment } from "../connectivity/deployment.ts";
import { formatConnectivityReport } from "../connectivity/report.ts";
import { runConnectivityTest } from "../connectivity/run.ts";
import { createLab, destroyLabRecord, findOrphanLabs, type Lab, type LabRecord } from "../lab/lab.ts";
import { formatBps, measurePath, PERF_PORTS, type PerfFigures } from "./_perf.ts";

/** Where a kept demo lab is recorded (`dp demo --teardown` reads it). */
export const DEMO_STATE_FILE = "/var/run/dp/demo.json";
/** The socket a kept demo's agent serves (the `dp` command's default). */
export const DEMO_KEEP_SOCKET = "/var/run/dp/dp.sock";

/** Options for {@link runDemo}. */
export interface DemoOptions {
  /**
   * The host routing mode to ask the agent for.
   *
   * @default "bpf"
   */
  readonly hostRouting?: "bpf" | "legacy";
  /**
   * Leave the lab and its agent running (socket at the default path,
   * recorded in {@link DEMO_STATE_FILE}).
   *
   * @default false
   */
  readonly keep?: boolean;
  /**
   * Where progress, the matrix and the figures go.
   *
   * @default process.stdout
   */
  readonly out?: NodeJS.WritableStream;
  /** Aborting stops the demo and tears the lab down (exit code 130). */
  readonly signal?: AbortSignal;
  /** Run only the scenarios whose name matches. */
  readonly tests?: RegExp;
  /**
   * How long each throughput and latency measurement runs (0: none).
   *
   * @default 2
   */
  readonly perfSeconds?: number;
  /**
   * Handle SIGINT and SIGTERM while running: stop, tear down, return 130.
   *
   * @default true
   */
  readonly handleSignals?: boolean;
}

/** The label of the demo's pods (the sample policy selects by it, so it leaves other pods alone). */
export const DEMO_POD_LABEL = "k8s:app=dp-demo";

/** The sample policy the demo leaves applied (and measures with). */
export const DEMO_SAMPLE_POLICY: PolicyRule = {
  name: "demo-echo",
  description: "echo-same-node admits clients on HTTP 8080, iperf3 and sockperf; nothing else",
  endpointSelector: { matchLabels: { kind: "echo", app: "dp-demo" } },
  ingress: [
    {
      fromEndpoints: [{ matchLabels: { kind: "client" } }],
      toPorts: [
        {
          ports: [
            { port: 8080, protocol: "TCP" },
            { port: PERF_PORTS.iperf3, protocol: "TCP" },
            { port: PERF_PORTS.sockperf, protocol: "UDP" },
          ],
        },
      ],
    },
  ],
};

class Interrupted extends Error {
  override name = "Interrupted";
}

function perfLine(path: string, from: string, to: string, f: PerfFigures): string {
  const lat =
    typeof f.latencyUs === "string"
      ? f.latencyUs
      : `${f.latencyUs.toFixed(1)} µs avg${f.latencyP99Us === undefined ? "" : `, ${f.latencyP99Us.toFixed(1)} µs p99`}`;
  return `  ${path.padEnd(14)}${`${from} -> ${to}`.padEnd(32)}TCP ${formatBps(f.throughputBps).padEnd(14)}UDP latency ${lat}`;
}

async function measure(
  lab: Lab,
  dep: ConnectivityDeployment,
  seconds: number,
  signal: AbortSignal,
  say: (m: string) => void,
): Promise<string[]> {
  const client = dep.pods.client;
  const echo = dep.pods["echo-same-node"];
  if (client === undefined || echo === undefined) return [];
  say(`measuring throughput (iperf3) and latency (sockperf ping-pong), ${seconds} s each`);
  const p2p = await measurePath(client.netns, echo.netns, echo.endpoint.ipv4, seconds, signal);
  const p2w = await measurePath(client.netns, lab.outsideNetns, lab.world.ipv4, seconds, signal);
  const mode = lab.hostRouting.mode === "bpf" ? "BPF" : "Legacy";
  return [
    `Performance, host routing ${mode} (${seconds} s each; latency is half the UDP round trip):`,
    perfLine("pod-to-pod", "client", `echo-same-node`, p2p),
    perfLine("pod-to-world", "client", `world ${lab.world.ipv4}`, p2w),
  ];
}

/**
 * Runs the demo: builds a lab (node, outside, the agent as a child
 * process), deploys labelled pods, runs the connectivity test and prints
 * its matrix (expected vs observed, drop reasons from the monitor),
 * applies a sample policy, prints throughput and latency figures, and
 * tears everything down unless `keep`. SIGINT/SIGTERM or the signal stop
 * it midway and tear down too.
 *
 * @param options Host routing, keep, output, signal, scenario filter.
 * @returns The exit code: 0 every scenario as expected, 1 one differs or
 *   something failed, 130 interrupted.
 * @example The demo in legacy host routing
 * ```ts no-run
 * import { runDemo } from "@dp/agent";
 * process.exitCode = await runDemo({ hostRouting: "legacy" });
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const started = Date.now();
  const say = (m: string): void => {
    out.write(`▸ [${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${m}\n`);
  };
  const controller = new AbortController();
  const signal = controller.signal;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signal.aborted) return;
    say(`${sig}: stopping, then tearing the lab down`);
    controller.abort(new Interrupted(`Interrupted by ${sig}`));
  };
  const onAbort = (): void => controller.abort(new Interrupted("Interrupted"));
  const handle = options.handleSignals !== false;
  if (handle) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  if (options.signal?.aborted === true) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const keep = options.keep === true;
  const mode = options.hostRouting ?? "bpf";
  let lab: Lab | undefined;
  let dep: ConnectivityDeployment | undefined;
  let code = 1;
  let finished = false;
  try {
    if (keep && existsSync(DEMO_STATE_FILE))
      throw new Error(`a kept demo lab exists (${DEMO_STATE_FILE}): remove it first with \`dp demo --teardown\``);
    out.write(`dp demo: host routing ${mode}${keep ? ", keep the lab" : ""}\n`);
    lab = await createLab({
      hostRouting: mode,
      signal,
      onProgress: say,
      ...(keep ? { socketPath: DEMO_KEEP_SOCKET } : {}),
    });
    say(`deploying pods client, client2 and echo-same-node (${DEMO_POD_LABEL}) through the agent's API`);
    dep = await deployConnectivityPods({
      client: lab.client,
      lab,
      extraLabels: [DEMO_POD_LABEL],
      onProgress: say,
      signal,
    });
    say("running the connectivity test");
    const report = await runConnectivityTest({
      client: lab.client,
      lab,
      deployment: dep,
      onProgress: say,
      signal,
      ...(options.tests === undefined ? {} : { tests: options.tests }),
    });
    out.write(`\n${formatConnectivityReport(report)}\n`);
    signal.throwIfAborted();
    say(`applying the sample policy "${DEMO_SAMPLE_POLICY.name}": ${DEMO_SAMPLE_POLICY.description}`);
    out.write(
      stringify([DEMO_SAMPLE_POLICY])
        .trimEnd()
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n") + "\n",
    );
    await lab.client.importPolicy({ rules: [DEMO_SAMPLE_POLICY] });
    const from = dep.pods.client2?.endpoint.id;
    const to = dep.pods["echo-same-node"]?.endpoint.id;
    if (from !== undefined && to !== undefined) {
      const trace = await lab.client.tracePolicy({
        from: { endpoint: from },
        to: { endpoint: to },
        protocol: "UDP",
        port: 8081,
      });
      say(
        `policy trace client2 -> echo-same-node UDP 8081: ${trace.verdict}${trace.ingress === undefined ? "" : ` (${trace.ingress.message})`}`,
      );
    }
    const seconds = options.perfSeconds ?? 2;
    if (seconds > 0) {
      const lines = await measure(lab, dep, seconds, signal, say);
      out.write(`\n${lines.join("\n")}\n\n`);
    }
    code = report.ok ? 0 : 1;
    finished = true;
    if (keep) {
      mkdirSync(dirname(DEMO_STATE_FILE), { recursive: true, mode: 0o700 });
      const record: LabRecord = lab.record();
      writeFileSync(DEMO_STATE_FILE, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      dep.stopProbes();
      lab.release();
      out.write(
        [
          `The lab stays (recorded in ${DEMO_STATE_FILE}); its agent (pid ${record.agentPid}) serves ${DEMO_KEEP_SOCKET}:`,
          "  dp status            dp endpoint list      dp policy get",
          "  dp monitor --type drop    dp bpf ct list   dp bpf metrics",
          `  ip netns exec ${dep.pods.client?.netns ?? ""} ping -c 2 ${dep.pods["echo-same-node"]?.endpoint.ipv4 ?? ""}   # dropped by ${DEMO_SAMPLE_POLICY.name ?? ""}: see dp monitor`,
          "  dp connectivity test   (its own pods; the sample policy selects only app=dp-demo)",
          "Remove it with: dp demo --teardown",
          "",
        ].join("\n"),
      );
    }
  } catch (err) {
    if (signal.aborted) code = 130;
    else {
      out.write(`dp: demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  } finally {
    try {
      if (lab !== undefined && !(keep && finished)) {
        say(`tearing down lab ${lab.name}: agent (with teardown), namespaces, pins`);
        await lab.destroy();
        say("torn down: no namespace, pin, socket or agent process left");
      }
    } catch (err) {
      out.write(`dp: teardown failed: ${err instanceof Error ? err.message : String(err)}\n`);
      code = code === 0 ? 1 : code;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      if (handle) {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    }
  }
  return code;
}

/** Options for {@link teardownDemo}. */
export interface TeardownDemoOptions {
  /**
   * Where messages go.
   *
   * @default process.stdout
   */
  readonly out?: NodeJS.WritableStream;
}

/**
 * Removes a lab left by `dp demo --keep`: stops its agent (which removes
 * the datapath), deletes its namespaces, pins and files, and the record;
 * then the same for labs left by demos that were killed (SIGKILL, a
 * crash), found by their names.
 *
 * @param options Output.
 * @returns The exit code: 0 removed (or nothing to remove), 1 failed.
 * @example What dp demo --teardown runs
 * ```ts no-run
 * import { teardownDemo } from "@dp/agent";
 * process.exitCode = await teardownDemo();
 * ```
 */
export async function teardownDemo(options: TeardownDemoOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  try {
    if (existsSync(DEMO_STATE_FILE)) {
      const record = JSON.parse(readFileSync(DEMO_STATE_FILE, "utf8")) as LabRecord;
      out.write(`dp demo: tearing down the kept lab ${record.name} (agent pid ${record.agentPid})\n`);
      await destroyLabRecord(record);
      rmSync(DEMO_STATE_FILE, { force: true });
    } else out.write(`dp demo: no kept demo lab (${DEMO_STATE_FILE} does not exist)\n`);
    for (const orphan of findOrphanLabs()) {
      out.write(`dp demo: tearing down lab ${orphan.name}, left by a demo that was killed\n`);
      await destroyLabRecord(orphan);
    }
    out.write("dp demo: no demo namespace, pin, socket or agent process left\n");
    return 0;
  } catch (err) {
    out.write(`dp: cannot tear down the demo lab: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
