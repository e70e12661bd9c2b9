/**
 * The agent API's client alone, without the agent: what a program that
 * only talks to a running agent needs (the `dp-cni` plugin of `@dp/cni`),
 * so that it starts fast and loads nothing of the datapath.
 *
 * @example Listing the endpoint of a CNI container
 * ```ts no-run
 * import { ApiClient } from "@dp/agent/client";
 * const client = new ApiClient({ socketPath: "/var/run/dp/dp.sock" });
 * console.log(await client.endpoints({ containerId: "4f1c0a" }));
 * ```
 *
 * @module @dp/agent/client
 */
export { ApiClient } from "./client.ts";
export type { ApiClientOptions, ConntrackQuery, MonitorRequestOptions } from "./client.ts";
export { AgentUnreachableError, ApiError, statusOfApiErrorCode } from "./errors.ts";
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
} from "./types.ts";
