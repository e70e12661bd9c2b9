import type { ApiErrorBody } from "./types.ts";

/** The HTTP status of each {@link ApiErrorBody} code. */
const STATUS_OF_CODE = {
  "bad-request": 400,
  "not-found": 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
} as const satisfies Record<ApiErrorBody["code"], number>;

/**
 * The HTTP status each error code of the agent API travels with.
 *
 * @param code The error code.
 * @returns The status: 400, 404, 409, 503 or 500.
 * @example The status of a missing endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { statusOfApiErrorCode } from "@dp/agent";
 * assert.equal(statusOfApiErrorCode("not-found"), 404);
 * ```
 */
export function statusOfApiErrorCode(code: ApiErrorBody["code"]): number {
  return STATUS_OF_CODE[code];
}

/**
 * An error the agent answered with: the HTTP status, the stable code, the
 * message naming what failed and why, and the request field at fault when
 * it was the request. The server throws it from its handlers; the client
 * throws it for every error response.
 *
 * @example Reacting to an unknown endpoint
 * ```ts no-run
 * import { ApiClient, ApiError } from "@dp/agent";
 * const client = new ApiClient({ socketPath: "/var/run/dp/dp.sock" });
 * try {
 *   await client.endpoint(7);
 * } catch (err) {
 *   if (err instanceof ApiError && err.code === "not-found") console.log("no endpoint 7");
 * }
 * ```
 */
export class ApiError extends Error {
  /** Always `"ApiError"`. */
  override readonly name: string = "ApiError";
  /** The HTTP status (400, 404, 409, 503, 500). */
  readonly status: number;
  /** The stable code. */
  readonly code: ApiErrorBody["code"];
  /** The request field at fault, if any (`labels`, `rules[0].ingress[1]`). */
  readonly field: string | undefined;

  /**
   * Creates the error.
   *
   * @param code The stable code; the status follows from it unless given.
   * @param message What failed and why.
   * @param options The field at fault, the HTTP status (when it was not the code's), the cause.
   */
  constructor(
    code: ApiErrorBody["code"],
    message: string,
    options: { readonly field?: string | undefined; readonly status?: number; readonly cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? STATUS_OF_CODE[code];
    this.field = options.field;
  }

  /**
   * The error as the JSON body of a response.
   *
   * @returns The body.
   */
  toBody(): ApiErrorBody {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

/**
 * No agent answers on the socket: it does not exist, nothing listens on it
 * (`ECONNREFUSED`), or this user may not open it (`EACCES`: the socket is
 * root's, mode 0600). The message names the socket and what to do.
 *
 * @example Telling the user to start the agent
 * ```ts no-run
 * import { AgentUnreachableError, ApiClient } from "@dp/agent";
 * try {
 *   await new ApiClient({ socketPath: "/var/run/dp/dp.sock" }).status();
 * } catch (err) {
 *   if (err instanceof AgentUnreachableError) console.error(`dp: ${err.message}`);
 * }
 * ```
 */
export class AgentUnreachableError extends Error {
  /** Always `"AgentUnreachableError"`. */
  override readonly name: string = "AgentUnreachableError";
  /** The socket path that was tried. */
  readonly socketPath: string;
  /** The system error code (`ENOENT`, `ECONNREFUSED`, `EACCES`, ...). */
  readonly code: string;

  /**
   * Creates the error.
   *
   * @param socketPath The socket that was tried.
   * @param code The system error code.
   * @param options The cause.
   */
  constructor(socketPath: string, code: string, options?: ErrorOptions) {
    super(`Cannot reach the dp agent at ${JSON.stringify(socketPath)}: ${describeCode(code)}`, options);
    this.socketPath = socketPath;
    this.code = code;
  }
}

function describeCode(code: string): string {
  switch (code) {
    case "ENOENT":
      return "ENOENT (no such socket): start the agent with `dp agent`, or pass --socket PATH";
    case "ECONNREFUSED":
      return "ECONNREFUSED (nothing listens on the socket): start the agent with `dp agent`, or pass --socket PATH";
    case "EACCES":
    case "EPERM":
      return `${code} (permission denied): the socket is root's (mode 0600); run as root`;
    case "ENOTSOCK":
      return "ENOTSOCK (not a socket): pass the agent's socket with --socket PATH";
    default:
      return `${code}: start the agent with \`dp agent\`, or pass --socket PATH`;
  }
}
