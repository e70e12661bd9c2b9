// A `dp agent` for benchmarks: the real binary in a child process, on a
// network namespace the benchmark made, with its socket, state and bpffs
// root in private directories that stop() removes.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiClient } from "@dp/agent/client";

/** bin/dp.mjs of @dp/agent. */
export const DP_BIN: string = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "packages",
  "agent",
  "bin",
  "dp.mjs",
);

/** A running benchmark agent. */
export interface BenchAgent {
  /** Its private directory (config, state, socket). */
  readonly dir: string;
  /** Its API socket. */
  readonly socket: string;
  /** Its bpffs root; the node's maps are in `<bpfRoot>/dp`. */
  readonly bpfRoot: string;
  /** What it logged. */
  log(): string;
  /** SIGTERM (teardown on), SIGKILL after 10 s; removes the directories. */
  stop(): Promise<void>;
}

/**
 * Starts `dp agent` for the node namespace `netns` and waits until its API answers.
 *
 * @param tag A name unique to this run (directories are named after it).
 * @param netns The node's namespace (a name under /run/netns).
 * @param extra More config lines (`key: value`).
 * @returns The agent.
 */
export async function startBenchAgent(tag: string, netns: string, extra: readonly string[] = []): Promise<BenchAgent> {
  const bpfRoot = `/sys/fs/bpf/${tag}`;
  const dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  const socket = join(dir, "state", "dp.sock");
  const config = join(dir, "config.yaml");
  mkdirSync(bpfRoot, { recursive: true });
  writeFileSync(
    config,
    [
      `state-dir: ${join(dir, "state")}`,
      `bpf-root: ${bpfRoot}`,
      `netns: ${netns}`,
      "enable-ipv6: false",
      "bpf-ct-global-tcp-max: 131072",
      "bpf-ct-global-any-max: 65536",
      "agent-teardown-on-stop: true",
      ...extra,
      "",
    ].join("\n"),
  );
  const agent: ChildProcess = spawn(process.execPath, [DP_BIN, "agent", "--config", config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  agent.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (agent.exitCode === null) {
      const exited = new Promise((r) => agent.once("exit", r));
      agent.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (agent.exitCode === null) agent.kill("SIGKILL");
    }
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const client = new ApiClient({ socketPath: socket });
  try {
    for (let i = 0; ; i++) {
      if (agent.exitCode !== null) throw new Error(`dp agent exited with ${agent.exitCode}:\n${log}`);
      if (i >= 300) throw new Error(`dp agent did not answer within 30 s:\n${log}`);
      if (
        existsSync(socket) &&
        (await client.healthz().then(
          () => true,
          () => false,
        ))
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, socket, bpfRoot, log: () => log, stop };
}
