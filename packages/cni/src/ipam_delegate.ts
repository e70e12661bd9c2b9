// Delegated IPAM: the network config's `ipam.type` names a standard IPAM
// plugin (`host-local`, `static`, `dhcp`, ...), which dp-cni execs as the CNI
// specification says a plugin execs a delegate: found in CNI_PATH, the same
// environment (CNI_COMMAND set to the delegated command), the whole network
// config on stdin, the result or the error JSON on stdout.
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { CNI_ERROR_CODES, CniError, type CniEnv, type IpamResult, type NetConf } from "./spec.ts";

const TYPE = /^[A-Za-z0-9_.-]+$/;

/**
 * Finds an executable named `type` in the directories of `CNI_PATH`.
 *
 * @param type The plugin's binary name.
 * @param path The directories, in order.
 * @returns Its path, or undefined.
 */
function findPlugin(type: string, path: readonly string[]): string | undefined {
  for (const dir of path) {
    if (dir === "") continue;
    const file = `${dir.replace(/\/+$/, "")}/${type}`;
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not there, or not executable: the next directory.
    }
  }
  return undefined;
}

/** What the delegate printed, and how it ended. */
interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, env: Record<string, string | undefined>, stdin: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    // A delegate that exits without reading stdin: its exit status tells.
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.end(stdin);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks the shape of an IPAM plugin's ADD result: `ips` with CIDR addresses, optional routes and dns. */
function parseIpamResult(type: string, text: string): IpamResult {
  const what = `Cannot use the result of IPAM plugin ${JSON.stringify(type)}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: it is not JSON`, {
      details: text.slice(0, 200),
      cause,
    });
  }
  if (!isObject(value)) throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: it is not an object`);
  const ips = value.ips;
  if (!Array.isArray(ips) || ips.length === 0)
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: it has no "ips"`, { details: text.slice(0, 200) });
  for (const [i, ip] of ips.entries()) {
    if (!isObject(ip) || typeof ip.address !== "string" || !ip.address.includes("/"))
      throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: ips[${i}].address is not a CIDR`, {
        details: JSON.stringify(ip),
      });
  }
  if (value.routes !== undefined && !Array.isArray(value.routes))
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: "routes" is not a list`);
  if (value.dns !== undefined && !isObject(value.dns))
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${what}: "dns" is not an object`);
  return value as unknown as IpamResult;
}

function errorCode(stdout: string): number | undefined {
  try {
    const e: unknown = JSON.parse(stdout);
    return isObject(e) && typeof e.code === "number" ? e.code : undefined;
  } catch {
    return undefined;
  }
}

function supportedVersions(stdout: string): string[] {
  try {
    const v: unknown = JSON.parse(stdout);
    if (isObject(v) && Array.isArray(v.supportedVersions))
      return v.supportedVersions.filter((x): x is string => typeof x === "string");
  } catch {
    // No answer to VERSION: no fallback.
  }
  return [];
}

/** The versions whose IPAM result dp-cni reads, newest first. */
const IPAM_VERSIONS = ["1.1.0", "1.0.0", "0.4.0"] as const;

/** The newest version of {@link IPAM_VERSIONS} the delegate supports that is older than `version`. */
function olderVersion(version: string, supported: readonly string[]): string | undefined {
  const from = IPAM_VERSIONS.indexOf(version as (typeof IPAM_VERSIONS)[number]);
  if (from < 0) return undefined;
  return IPAM_VERSIONS.slice(from + 1).find((v) => supported.includes(v));
}

/**
 * Runs the IPAM plugin the network config names (`ipam.type`, such as
 * `host-local`) as the CNI specification delegates: the binary is looked
 * up in `CNI_PATH`, runs with the invocation's environment (`CNI_COMMAND`
 * set to `command`) and the network config on stdin. For ADD its result
 * (addresses, routes, DNS) is returned; DEL and CHECK return nothing.
 * A delegate that refuses the config's `cniVersion` as incompatible
 * (code 1; Debian 12's plugins speak up to 1.0.0) is asked for its
 * versions and run again with the newest older one it speaks (1.0.0 or
 * 0.4.0, whose IPAM results have the same shape).
 * A delegate's error JSON becomes a {@link CniError} with the delegate's
 * code and message.
 *
 * @param command `ADD` to allocate, `DEL` to release (idempotent in the plugins that follow the spec), `CHECK` to verify.
 * @param netconf The network config as dp-cni received it (`ipam` set).
 * @param env The invocation's environment.
 * @returns The delegate's result for ADD, else `undefined`.
 * @throws {CniError} Code 7 (`invalid network config`, field `ipam.type`) when `ipam` is missing or names no plugin in `CNI_PATH`; the delegate's own code when it fails; 6 when its result cannot be read; 5 when it cannot be run.
 * @example Allocating an address with host-local
 * ```ts no-run
 * import { delegateIpam } from "@dp/cni";
 * import type { CniEnv, NetConf } from "@dp/cni";
 *
 * const netconf: NetConf = {
 *   cniVersion: "1.0.0",
 *   name: "dp",
 *   type: "dp-cni",
 *   ipam: { type: "host-local", ranges: [[{ subnet: "10.22.0.0/24" }]], dataDir: "/run/dp-ipam" },
 * };
 * const env: CniEnv = {
 *   command: "ADD",
 *   containerId: "c1",
 *   netns: "/run/netns/c1",
 *   ifname: "eth0",
 *   args: [],
 *   path: ["/usr/lib/cni"],
 *   vars: process.env,
 * };
 * const result = await delegateIpam("ADD", netconf, env);
 * console.log(result?.ips[0]?.address); // "10.22.0.2/24"
 * await delegateIpam("DEL", netconf, { ...env, command: "DEL" });
 * ```
 */
export async function delegateIpam(
  command: "ADD" | "DEL" | "CHECK",
  netconf: NetConf,
  env: CniEnv,
): Promise<IpamResult | undefined> {
  const type = netconf.ipam?.type;
  if (typeof type !== "string" || !TYPE.test(type))
    throw new CniError(
      CNI_ERROR_CODES.invalidNetworkConfig,
      `Cannot delegate IPAM: "ipam.type" must be a plugin name, got ${JSON.stringify(type)}`,
      { field: "ipam.type" },
    );
  const file = findPlugin(type, env.path);
  if (file === undefined)
    throw new CniError(
      CNI_ERROR_CODES.invalidNetworkConfig,
      `Cannot delegate IPAM: no plugin ${JSON.stringify(type)} in CNI_PATH (${env.path.join(":") || "empty"})`,
      { field: "ipam.type" },
    );
  const exec = async (cmd: string, stdin: unknown): Promise<Outcome> => {
    try {
      return await run(file, { ...env.vars, CNI_COMMAND: cmd }, JSON.stringify(stdin));
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new CniError(CNI_ERROR_CODES.ioFailure, `Cannot run IPAM plugin ${file}: ${msg}`, { cause });
    }
  };
  let outcome = await exec(command, netconf);
  if (outcome.code !== 0 && errorCode(outcome.stdout) === CNI_ERROR_CODES.incompatibleVersion) {
    // An older delegate (Debian 12's host-local speaks up to 1.0.0): the
    // newest version both speak that is not newer than the config's; the
    // IPAM result has the same shape in 0.4.0, 1.0.0 and 1.1.0.
    const older = olderVersion(netconf.cniVersion, supportedVersions((await exec("VERSION", netconf)).stdout));
    if (older !== undefined) outcome = await exec(command, { ...netconf, cniVersion: older });
  }
  if (outcome.code !== 0) {
    let code: number = CNI_ERROR_CODES.ioFailure;
    let msg = outcome.signal === null ? `exited with status ${outcome.code}` : `killed by ${outcome.signal}`;
    let details: string | undefined = outcome.stderr.trim() === "" ? undefined : outcome.stderr.trim().slice(0, 500);
    try {
      const e: unknown = JSON.parse(outcome.stdout);
      if (isObject(e) && typeof e.code === "number" && typeof e.msg === "string") {
        code = e.code;
        msg = e.msg;
        if (typeof e.details === "string" && e.details !== "") details = e.details;
      }
    } catch {
      // Not the error JSON: the exit status and stderr say what happened.
    }
    throw new CniError(code, `Cannot ${command} through IPAM plugin ${JSON.stringify(type)}: ${msg}`, {
      details,
    });
  }
  if (command !== "ADD") return undefined;
  return parseIpamResult(type, outcome.stdout);
}
