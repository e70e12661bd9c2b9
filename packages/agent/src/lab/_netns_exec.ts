// Running traffic tools (node, ping, iperf3, sockperf) inside a named
// network namespace, the way `ip netns exec` does. Only traffic
// generators run this way; links, addresses and routes go through
// @dp/routing.
import { type ChildProcess, type SpawnOptions, execFile, spawn } from "node:child_process";

/** The result of a command run to completion in a namespace. */
export interface NetnsRunResult {
  /** The exit code (`null` when killed). */
  readonly code: number | null;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/**
 * Starts `cmd` inside the named network namespace.
 *
 * @param netns The namespace's name (under /run/netns).
 * @param cmd The program.
 * @param args Its arguments.
 * @param options Spawn options.
 * @returns The child process.
 */
export function spawnInNetns(
  netns: string,
  cmd: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  return spawn("ip", ["netns", "exec", netns, cmd, ...args], options);
}

/**
 * Runs `cmd` inside the named network namespace to completion.
 *
 * @param netns The namespace's name.
 * @param cmd The program.
 * @param args Its arguments.
 * @param timeoutMs Kill it after this long.
 * @param signal Kills it when aborted.
 * @returns Its exit code and output.
 */
export function runInNetns(
  netns: string,
  cmd: string,
  args: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<NetnsRunResult> {
  return new Promise((resolve) => {
    execFile(
      "ip",
      ["netns", "exec", netns, cmd, ...args],
      {
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        encoding: "utf8",
        maxBuffer: 16 << 20,
        ...(signal ? { signal } : {}),
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
