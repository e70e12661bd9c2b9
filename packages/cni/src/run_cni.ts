import { ApiClient } from "@dp/agent/client";
import { cniAdd } from "./_add.ts";
import { cniCheck } from "./_check.ts";
import { cniDel } from "./_del.ts";
import { toCniError } from "./_errors.ts";
import { resultForVersion } from "./_result.ts";
import { cniGc, cniStatus } from "./_status.ts";
import { CniError } from "./spec/cni_error.ts";
import { parseCniEnv } from "./spec/parse_env.ts";
import { parseNetConf } from "./spec/parse_netconf.ts";
import { CNI_VERSION, CNI_VERSIONS } from "./spec/versions.ts";

/**
 * The agent socket dp-cni talks to when the network config has no
 * `socketPath` (the agent's default `socket-path`).
 *
 * @example The default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SOCKET_PATH } from "@dp/cni";
 * assert.equal(DEFAULT_SOCKET_PATH, "/var/run/dp/dp.sock");
 * ```
 */
export const DEFAULT_SOCKET_PATH = "/var/run/dp/dp.sock";

/**
 * One invocation of the plugin, as a runtime makes it.
 *
 * @example An ADD
 * ```ts no-run
 * import type { RunCniOptions } from "@dp/cni";
 * const call: RunCniOptions = {
 *   env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/c1", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" },
 *   stdin: '{"cniVersion":"1.1.0","name":"dp","type":"dp-cni"}',
 * };
 * ```
 */
export interface RunCniOptions {
  /** The environment (`process.env`): `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The network config, as JSON. */
  readonly stdin: string;
  /**
   * How long one agent request may take, in milliseconds.
   *
   * @default 60000
   */
  readonly timeout?: number;
}

/**
 * What the plugin answers: the text for stdout (a result, the VERSION
 * answer, an error JSON, or nothing) and the exit status (0, or 1 on error).
 *
 * @example Printing it
 * ```ts no-run
 * import type { RunCniOutput } from "@dp/cni";
 * declare const out: RunCniOutput;
 * process.stdout.write(out.stdout);
 * process.exitCode = out.exitCode;
 * ```
 */
export interface RunCniOutput {
  /** What to write on stdout. */
  readonly stdout: string;
  /** The exit status: 0 on success, 1 on error. */
  readonly exitCode: number;
}

/** The cniVersion an error answer should carry: the config's when it has a supported one. */
function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    return typeof v === "string" && (CNI_VERSIONS as readonly string[]).includes(v) ? v : CNI_VERSION;
  } catch {
    return CNI_VERSION;
  }
}

function answer(value: unknown): RunCniOutput {
  return { stdout: value === undefined ? "" : `${JSON.stringify(value)}\n`, exitCode: 0 };
}

/**
 * Runs one CNI operation as the specification (1.0/1.1) defines it: the
 * command and container from the environment, the network config from
 * stdin. ADD asks the agent (over `socketPath`) to create the container's
 * endpoint and answers the result JSON; DEL removes it (idempotent);
 * CHECK compares it with `prevResult`; VERSION lists the supported
 * versions; STATUS says whether the agent can take containers; GC removes
 * endpoints of containers that are no longer valid. Never throws: failures
 * are answered as CNI error JSON with exit status 1.
 *
 * @param options The environment and stdin.
 * @returns What to write on stdout and the exit status.
 * @example VERSION
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCni } from "@dp/cni";
 * const out = await runCni({ env: { CNI_COMMAND: "VERSION" }, stdin: '{"cniVersion":"1.0.0"}' });
 * assert.equal(out.exitCode, 0);
 * assert.deepEqual(JSON.parse(out.stdout).supportedVersions, ["0.4.0", "1.0.0", "1.1.0"]);
 * ```
 * @example A malformed config names the field
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCni } from "@dp/cni";
 * const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/c1", CNI_IFNAME: "eth0" };
 * const out = await runCni({ env, stdin: '{"cniVersion":"1.1.0","name":"dp","type":"dp-cni","socketPath":5}' });
 * assert.equal(out.exitCode, 1);
 * assert.equal(JSON.parse(out.stdout).code, 7);
 * assert.match(JSON.parse(out.stdout).msg, /"socketPath" must be a non-empty string/);
 * ```
 */
export async function runCni(options: RunCniOptions): Promise<RunCniOutput> {
  try {
    const env = parseCniEnv(options.env);
    if (env.command === "VERSION") return answer({ cniVersion: CNI_VERSION, supportedVersions: CNI_VERSIONS });
    const netconf = parseNetConf(options.stdin);
    const client = new ApiClient({
      socketPath: netconf.socketPath ?? DEFAULT_SOCKET_PATH,
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    });
    switch (env.command) {
      case "ADD":
        return answer(resultForVersion(await cniAdd(netconf, env, client), netconf.cniVersion));
      case "DEL":
        await cniDel(netconf, env, client);
        return answer(undefined);
      case "CHECK":
        await cniCheck(netconf, env, client);
        return answer(undefined);
      case "STATUS":
        await cniStatus(client);
        return answer(undefined);
      case "GC":
        await cniGc(netconf, client);
        return answer(undefined);
    }
  } catch (err) {
    const e =
      err instanceof CniError ? err : toCniError(err, `Cannot run CNI ${options.env.CNI_COMMAND ?? ""}`.trimEnd());
    return { stdout: `${JSON.stringify(e.toJson(versionOf(options.stdin)))}\n`, exitCode: 1 };
  }
}
