// What the agent API's errors become as CNI errors.
import { AgentUnreachableError, ApiError } from "@dp/agent/client";
import { CNI_ERROR_CODES, CniError } from "./spec/cni_error.ts";

/** The request fields that come from the CNI environment, and their variables. */
const ENV_OF_FIELD: Readonly<Record<string, string>> = { netns: "CNI_NETNS", ifname: "CNI_IFNAME" };

/**
 * Maps what an operation threw to a CNI error: an unreachable agent is
 * code 100, an agent that is not ready 11 (try again later), a refused
 * `netns`/`ifname` 4 (the environment variable), refused `labels` 7 (the
 * network config), anything else the agent refused 101, and other errors
 * (a bug) 101 too with their message.
 *
 * @param err What was thrown.
 * @param what What was being done (`Cannot add container "c1"`).
 * @returns The CNI error.
 */
export function toCniError(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof AgentUnreachableError)
    return new CniError(CNI_ERROR_CODES.agentUnreachable, `${what}: ${err.message}`, {
      details: `socket: ${err.socketPath}`,
      cause: err,
    });
  if (err instanceof ApiError) {
    if (err.code === "unavailable")
      return new CniError(CNI_ERROR_CODES.tryAgainLater, `${what}: ${err.message}`, { cause: err });
    const variable = err.field === undefined ? undefined : ENV_OF_FIELD[err.field];
    if (variable !== undefined)
      return new CniError(CNI_ERROR_CODES.invalidEnvironment, `${what}: ${err.message}`, {
        field: variable,
        cause: err,
      });
    if (err.field === "labels")
      return new CniError(CNI_ERROR_CODES.invalidNetworkConfig, `${what}: ${err.message}`, {
        field: "labels",
        cause: err,
      });
    return new CniError(CNI_ERROR_CODES.agentError, `${what}: the agent refused: ${err.message}`, {
      details: `agent error ${err.code} (HTTP ${err.status})${err.field === undefined ? "" : `, field ${err.field}`}`,
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CniError(CNI_ERROR_CODES.agentError, `${what}: ${message}`, { cause: err });
}
