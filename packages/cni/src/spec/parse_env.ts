import { CNI_ERROR_CODES, CniError } from "./cni_error.ts";
import { CNI_COMMANDS, type CniCommand, type CniEnv } from "./env.ts";

function missing(name: string, command: string, problem = "is not set"): CniError {
  return new CniError(
    CNI_ERROR_CODES.invalidEnvironment,
    `Cannot run CNI${command === "" ? "" : ` ${command}`}: ${name} ${problem}`,
    {
      field: name,
    },
  );
}

/**
 * Parses the CNI environment of an invocation and checks what its command
 * needs: `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME` for ADD and
 * CHECK, `CNI_CONTAINERID` and `CNI_IFNAME` for DEL (whose `CNI_NETNS` may
 * be gone), nothing more for VERSION, STATUS and GC. `CNI_ARGS` is split
 * into `KEY=VALUE` pairs on `;`.
 *
 * @param vars The environment (`process.env`).
 * @returns The parsed environment.
 * @throws {CniError} Code 4 naming the variable when one is missing or malformed.
 * @example An ADD with pod arguments
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCniEnv } from "@dp/cni";
 * const env = parseCniEnv({
 *   CNI_COMMAND: "ADD",
 *   CNI_CONTAINERID: "c1",
 *   CNI_NETNS: "/run/netns/c1",
 *   CNI_IFNAME: "eth0",
 *   CNI_ARGS: "K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default",
 *   CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
 * });
 * assert.deepEqual(env.args, [["K8S_POD_NAME", "web-0"], ["K8S_POD_NAMESPACE", "default"]]);
 * assert.deepEqual(env.path, ["/opt/cni/bin", "/usr/lib/cni"]);
 * ```
 */
export function parseCniEnv(vars: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = vars.CNI_COMMAND;
  if (command === undefined || command === "") throw missing("CNI_COMMAND", "");
  if (!(CNI_COMMANDS as readonly string[]).includes(command))
    throw new CniError(
      CNI_ERROR_CODES.invalidEnvironment,
      `Cannot run CNI: CNI_COMMAND ${JSON.stringify(command)} is not one of ${CNI_COMMANDS.join(", ")}`,
      { field: "CNI_COMMAND" },
    );
  const cmd = command as CniCommand;
  const attach = cmd === "ADD" || cmd === "CHECK" || cmd === "DEL";
  const containerId = vars.CNI_CONTAINERID ?? "";
  const ifname = vars.CNI_IFNAME ?? "";
  const netns = vars.CNI_NETNS === undefined || vars.CNI_NETNS === "" ? undefined : vars.CNI_NETNS;
  if (attach) {
    if (containerId === "") throw missing("CNI_CONTAINERID", cmd);
    if (ifname === "") throw missing("CNI_IFNAME", cmd);
    if (cmd !== "DEL" && netns === undefined) throw missing("CNI_NETNS", cmd);
  }
  const args: [string, string][] = [];
  for (const pair of (vars.CNI_ARGS ?? "").split(";")) {
    if (pair === "") continue;
    const at = pair.indexOf("=");
    if (at <= 0)
      throw missing("CNI_ARGS", cmd, `has ${JSON.stringify(pair)}, expected KEY=VALUE pairs separated by ";"`);
    args.push([pair.slice(0, at), pair.slice(at + 1)]);
  }
  const path = (vars.CNI_PATH ?? "").split(":").filter((dir) => dir !== "");
  return { command: cmd, containerId, netns, ifname, args, path, vars };
}
