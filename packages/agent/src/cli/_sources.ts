// Where the dp command gets its data: the agent's API, or for the commands
// that read maps, the node's pins when no agent answers.
import { openPinnedNode, type PinnedNode } from "@dp/datapath";
import { ApiClient } from "../api/client.ts";
import { AgentUnreachableError } from "../api/errors.ts";
import type { Wire } from "../api/types.ts";
import { CliError, EXIT } from "./_errors.ts";

/** Where the agent and the pins are. */
export interface Places {
  /** The agent's socket. */
  readonly socketPath: string;
  /** The node's state directory on bpffs (`<bpf-root>/dp`). */
  readonly stateDir: string;
}

/** A value with the bigints as decimal strings, as the API sends it. */
export function toWire<T>(value: T): Wire<T> {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as Wire<T>;
}

/** Whether an unreachable agent means "none runs" (then the pins are read) rather than "not allowed". */
function noAgent(err: unknown): err is AgentUnreachableError {
  return err instanceof AgentUnreachableError && (err.code === "ENOENT" || err.code === "ECONNREFUSED");
}

/** Opens the pins, or explains that there is neither an agent nor a pinned datapath. */
export function openPins(places: Places, agentError?: AgentUnreachableError): PinnedNode {
  try {
    return openPinnedNode(places.stateDir);
  } catch (err) {
    if (err instanceof TypeError && /no datapath is pinned/.test(err.message)) {
      throw new CliError(
        agentError === undefined
          ? err.message
          : `${agentError.message.replace(/: start the agent.*$/, "")}, and no datapath is pinned in ${JSON.stringify(places.stateDir)}`,
        agentError === undefined ? EXIT.failed : EXIT.unreachable,
        "start the agent with `dp agent`, or pass --socket PATH (agent) or --bpf-root DIR (pins)",
        { cause: err },
      );
    }
    throw err;
  }
}

/** The result of {@link fromAgentOrPins} and where it came from. */
export interface Sourced<T> {
  /** The value. */
  readonly value: T;
  /** `agent` or `pins`. */
  readonly source: "agent" | "pins";
  /** Why the pins were read: the agent's error. */
  readonly agentError?: AgentUnreachableError;
}

/**
 * Asks the agent; when none answers (no socket, nothing listening), reads
 * the pins instead.
 */
export async function fromAgentOrPins<T>(
  places: Places,
  agent: (client: ApiClient) => Promise<T>,
  pins: (pinned: PinnedNode) => T,
): Promise<Sourced<T>> {
  try {
    return { value: await agent(new ApiClient({ socketPath: places.socketPath })), source: "agent" };
  } catch (err) {
    if (!noAgent(err)) throw err;
    using pinned = openPins(places, err);
    return { value: pins(pinned), source: "pins", agentError: err };
  }
}
