/**
 * The reference agent built on the `@dp/*` packages, and the `dp`
 * command: config in the shape of Cilium's, the agent and its API,
 * status, monitor, metrics, the connectivity test and `dp demo`.
 *
 * @example Loading a config and checking its decisions
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, resolveConfig } from "@dp/agent";
 *
 * const { config, warnings } = loadConfig({ text: 'enable-ipv6: "false"\nbpf-ct-global-tcp-max: "65536"\nfoo: 1\n' });
 * assert.equal(config["bpf-ct-global-tcp-max"], 65536);
 * assert.equal(warnings[0]?.message, 'unknown key "foo"');
 * const resolved = resolveConfig(config, { redirectPeer: false, redirectNeigh: true, tcx: true });
 * assert.equal(resolved.hostRouting.mode, "legacy");
 * ```
 *
 * @module @dp/agent
 */
export type {
  AgentStatus,
  ApiConntrackEntry,
  ApiConntrackFlush,
  ApiEndpoint,
  ApiErrorBody,
  ApiIdentity,
  ApiPolicy,
  ApiPolicyMapEntry,
  ControllerStatus,
  EndpointQuery,
  EndpointRequest,
  ApiKvstoreStatus,
  FeatureStatus,
  MonitorLine,
  PolicyImportRequest,
  PolicyTracePeer,
  PolicyTraceRequest,
  PolicyTraceResponse,
  Wire,
} from "./api/types.ts";

// The agent, its logger, the API client and errors.
export { Agent, startAgent } from "./agent/agent.ts";
export type { AgentCloseOptions, AgentOptions } from "./agent/agent.ts";
export { createLogger } from "./agent/logger.ts";
export type { LogFields, Logger, LoggerOptions, LogLevel } from "./agent/logger.ts";
export { ApiClient } from "./api/client.ts";
export type { ApiClientOptions, ConntrackQuery, MonitorRequestOptions } from "./api/client.ts";
export { AgentUnreachableError, ApiError, statusOfApiErrorCode } from "./api/errors.ts";
// Config: loading, checking, deciding against the kernel, the key table.
export type { AgentConfig } from "./config/agent_config.ts";
export { ConfigError, type ConfigProblem, type ConfigWarning } from "./config/config_error.ts";
export { CONFIG_KEYS, type ConfigKey, type ConfigKeyInfo } from "./config/config_keys.ts";
export { renderConfigDocs } from "./config/config_docs.ts";
export { loadConfig, type LoadConfigOptions, type LoadedConfig } from "./config/load_config.ts";
export {
  resolveConfig,
  type KernelFeatures,
  type ResolvedConfig,
  type ResolvedFeature,
} from "./config/resolve_config.ts";

// The `dp` command.
export { runCli } from "./cli/run_cli.ts";
export type { CliIo } from "./cli/program.ts";
// The lab, the connectivity test and the demo.
export { createLab, destroyLabRecord, findOrphanLabs, Lab, LAB_NET, LAB_RUN_DIR } from "./lab/lab.ts";
export type { LabOptions, LabRecord } from "./lab/lab.ts";
export { BUILTIN_SCENARIOS } from "./connectivity/builtin_scenarios.ts";
export { CONNECTIVITY_HTTP_PORT, CONNECTIVITY_PODS } from "./connectivity/scenario.ts";
export { connectivityScenarios, registerScenario } from "./connectivity/registry.ts";
export type {
  ConnectivityActionSpec,
  ConnectivityPod,
  ConnectivityScenario,
  ScenarioContext,
} from "./connectivity/scenario.ts";
export { ConnectivityDeployment, deployConnectivityPods } from "./connectivity/deployment.ts";
export type { DeployedPod, DeployOptions } from "./connectivity/deployment.ts";
export { runConnectivityTest } from "./connectivity/run.ts";
export type { ConnectivityTestOptions } from "./connectivity/run.ts";
export { formatConnectivityReport } from "./connectivity/report.ts";
export type {
  ConnectivityActionResult,
  ConnectivityReport,
  ConnectivityScenarioResult,
} from "./connectivity/report.ts";
export {
  DEMO_KEEP_SOCKET,
  DEMO_POD_LABEL,
  DEMO_SAMPLE_POLICY,
  DEMO_STATE_FILE,
  runDemo,
  teardownDemo,
} from "./demo/demo.ts";
export type { DemoOptions, TeardownDemoOptions } from "./demo/demo.ts";
