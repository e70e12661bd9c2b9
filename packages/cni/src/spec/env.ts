/**
 * The CNI operations dp-cni implements (CNI 1.1).
 *
 * @example Every command
 * ```ts
 * import assert from "node:assert/strict";
 * import { CNI_COMMANDS } from "@dp/cni";
 * assert.deepEqual(CNI_COMMANDS, ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"]);
 * ```
 */
export const CNI_COMMANDS: readonly ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] = [
  "ADD",
  "DEL",
  "CHECK",
  "VERSION",
  "STATUS",
  "GC",
];

/**
 * A CNI operation.
 *
 * @example ADD
 * ```ts no-run
 * import type { CniCommand } from "@dp/cni";
 * const command: CniCommand = "ADD";
 * ```
 */
export type CniCommand = (typeof CNI_COMMANDS)[number];

/**
 * The CNI environment of one invocation, parsed: `CNI_COMMAND`,
 * `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS` (split into
 * pairs), `CNI_PATH` (split into directories), and the whole environment
 * as it came (`vars`), which a delegated plugin gets unchanged.
 *
 * @example An ADD
 * ```ts no-run
 * import type { CniEnv } from "@dp/cni";
 * const env: CniEnv = {
 *   command: "ADD",
 *   containerId: "c1",
 *   netns: "/run/netns/c1",
 *   ifname: "eth0",
 *   args: [["K8S_POD_NAME", "web-0"]],
 *   path: ["/opt/cni/bin"],
 *   vars: { CNI_COMMAND: "ADD" },
 * };
 * ```
 */
export interface CniEnv {
  /** `CNI_COMMAND`. */
  readonly command: CniCommand;
  /** `CNI_CONTAINERID` ("" when the command does not take one: VERSION, STATUS, GC). */
  readonly containerId: string;
  /** `CNI_NETNS`: the container's network namespace path (may be absent on DEL). */
  readonly netns: string | undefined;
  /** `CNI_IFNAME` ("" when the command does not take one). */
  readonly ifname: string;
  /** `CNI_ARGS` as `[key, value]` pairs (`K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default`). */
  readonly args: readonly (readonly [string, string])[];
  /** `CNI_PATH` split on `:`: where plugin binaries are looked up. */
  readonly path: readonly string[];
  /** The whole environment of the invocation, for delegated plugins. */
  readonly vars: Readonly<Record<string, string | undefined>>;
}
