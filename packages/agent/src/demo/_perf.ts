// Short throughput and latency figures between two namespaces: iperf3
// (TCP, a few seconds) and sockperf ping-pong (UDP). The servers run in
// the destination's namespace, the clients in the source's.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { runInNetns, spawnInNetns } from "../lab/_netns_exec.ts";

/** The demo's perf ports (the sample policy admits them). */
export const PERF_PORTS = { iperf3: 5201, sockperf: 11111 } as const;

/** One measured path. */
export interface PerfFigures {
  /** TCP throughput in bits per second (iperf3), or the error. */
  readonly throughputBps: number | string;
  /** Average one-way latency in microseconds (sockperf ping-pong: half the round trip), or the error. */
  readonly latencyUs: number | string;
  /** The 99th percentile of the same, in microseconds. */
  readonly latencyP99Us: number | undefined;
}

async function startServer(
  netns: string,
  cmd: string,
  args: string[],
  ready: RegExp,
  waitMs: number,
): Promise<ChildProcess> {
  const p = spawnInNetns(netns, cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const started = new Promise<void>((resolve, reject) => {
    const check = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) resolve();
    };
    p.stdout?.on("data", check);
    p.stderr?.on("data", check);
    p.on("exit", (code) => reject(new Error(`${cmd} server exited (${code}): ${out.trim()}`)));
    p.on("error", reject);
  });
  try {
    await Promise.race([
      started,
      // Its output may be buffered in the pipe: after a while, go ahead.
      sleep(waitMs, undefined, { ref: false }),
    ]);
  } catch (err) {
    p.kill("SIGKILL");
    throw err;
  }
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = once(p, "exit");
  p.kill("SIGKILL");
  await exited;
}

/**
 * Measures TCP throughput and UDP latency from one namespace to an
 * address served by another.
 *
 * @param from The client's namespace.
 * @param to The server's namespace.
 * @param address The server's address.
 * @param seconds How long each measurement runs.
 * @param signal Stops the measurement.
 * @returns The figures (errors as text).
 */
export async function measurePath(
  from: string,
  to: string,
  address: string,
  seconds: number,
  signal?: AbortSignal,
): Promise<PerfFigures> {
  let throughputBps: number | string;
  try {
    const server = await startServer(
      to,
      "iperf3",
      ["-s", "-1", "--forceflush", "-p", String(PERF_PORTS.iperf3)],
      /listening/i,
      3000,
    );
    try {
      const r = await runInNetns(
        from,
        "iperf3",
        ["-c", address, "-p", String(PERF_PORTS.iperf3), "-t", String(seconds), "-J", "--connect-timeout", "2000"],
        (seconds + 10) * 1000,
        signal,
      );
      const json = JSON.parse(r.stdout || "{}") as {
        end?: { sum_received?: { bits_per_second?: number } };
        error?: string;
      };
      throughputBps =
        json.end?.sum_received?.bits_per_second ?? `iperf3: ${json.error ?? (r.stderr.trim() || "no result")}`;
    } finally {
      await stop(server);
    }
  } catch (err) {
    throughputBps = err instanceof Error ? err.message : String(err);
  }
  signal?.throwIfAborted();
  let latencyUs: number | string;
  let latencyP99Us: number | undefined;
  try {
    const server = await startServer(
      to,
      "sockperf",
      ["sr", "-i", address, "-p", String(PERF_PORTS.sockperf)],
      /listen on|Warmup/,
      // sockperf buffers its output in a pipe; a UDP server is ready as soon as it runs.
      500,
    );
    try {
      const r = await runInNetns(
        from,
        "sockperf",
        ["pp", "-i", address, "-p", String(PERF_PORTS.sockperf), "-t", String(seconds)],
        (seconds + 10) * 1000,
        signal,
      );
      const avg = /avg-latency=([\d.]+)/.exec(r.stdout);
      const p99 = /percentile 99\.000 =\s*([\d.]+)/.exec(r.stdout);
      latencyUs =
        avg?.[1] === undefined
          ? `sockperf: ${(r.stderr || r.stdout).trim().split("\n").pop() ?? "no result"}`
          : Number(avg[1]);
      latencyP99Us = p99?.[1] === undefined ? undefined : Number(p99[1]);
    } finally {
      await stop(server);
    }
  } catch (err) {
    latencyUs = err instanceof Error ? err.message : String(err);
  }
  return { throughputBps, latencyUs, latencyP99Us };
}

/**
 * Renders a throughput.
 *
 * @param bps Bits per second, or an error.
 * @returns `12.3 Gbit/s`, `850 Mbit/s`, or the error.
 */
export function formatBps(bps: number | string): string {
  if (typeof bps === "string") return bps;
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(1)} Gbit/s`;
  return `${(bps / 1e6).toFixed(0)} Mbit/s`;
}
