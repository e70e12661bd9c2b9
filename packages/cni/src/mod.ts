/**
 * `dp-cni`, the CNI plugin that puts the containers of real runtimes
 * (podman, containerd, CRI-O, Kubernetes) on the dp datapath: the runtime
 * execs it with the container's network namespace, and it asks the running
 * agent over its API socket to create or delete the endpoint (veth,
 * addresses, routes, identity from the container's labels, programs).
 *
 * @example Running an operation in-process
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCni } from "@dp/cni";
 * const out = await runCni({ env: { CNI_COMMAND: "VERSION" }, stdin: '{"cniVersion":"1.1.0"}' });
 * assert.equal(JSON.parse(out.stdout).cniVersion, "1.1.0");
 * ```
 *
 * @module @dp/cni
 */
export { DEFAULT_SOCKET_PATH, runCni, type RunCniOptions, type RunCniOutput } from "./run_cni.ts";
export { cniLabels, networkLabel } from "./labels.ts";
export { chainedAdd, chainedDel, isChained } from "./chained.ts";
export { delegateIpam } from "./ipam_delegate.ts";
export {
  CNI_COMMANDS,
  CNI_ERROR_CODES,
  CNI_VERSION,
  CNI_VERSIONS,
  CniError,
  parseCniEnv,
  parseNetConf,
  type CniAttachment,
  type CniCommand,
  type CniDns,
  type CniEnv,
  type CniErrorCode,
  type CniErrorJson,
  type CniInterface,
  type CniIpConfig,
  type CniLabels,
  type CniResult,
  type CniRoute,
  type IpamConf,
  type IpamResult,
  type NetConf,
} from "./spec.ts";
