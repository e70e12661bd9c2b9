import { request as httpRequest, type IncomingMessage } from "node:http";
import type { ConntrackFilter, MonitorEventType, NodeCounter } from "@dp/datapath";
import { AgentUnreachableError, ApiError } from "./errors.ts";
import type {
  AgentStatus,
  ApiConntrackEntry,
  ApiConntrackFlush,
  ApiEndpoint,
  ApiErrorBody,
  ApiIdentity,
  ApiPolicy,
  ApiPolicyMapEntry,
  EndpointQuery,
  EndpointRequest,
  MonitorLine,
  PolicyImportRequest,
  PolicyTraceRequest,
  PolicyTraceResponse,
  Wire,
} from "./types.ts";

/**
 * Which conntrack entries `GET`/`DELETE /v1/ct` select: a
 * `ConntrackFilter` (sent as query parameters of the same names),
 * plus `endpoint`, an endpoint id whose addresses are either side.
 *
 * @example TCP entries of endpoint 12 to port 80
 * ```ts no-run
 * import type { ConntrackQuery } from "@dp/agent";
 * const q: ConntrackQuery = { endpoint: 12, protocol: "TCP", dport: 80 };
 * ```
 */
export interface ConntrackQuery extends ConntrackFilter {
  /**
   * Entries with this endpoint's address on either side.
   *
   * @default any
   */
  readonly endpoint?: number;
}

/**
 * Options of {@link ApiClient}.
 *
 * @example The default socket
 * ```ts no-run
 * import type { ApiClientOptions } from "@dp/agent";
 * const options: ApiClientOptions = { socketPath: "/var/run/dp/dp.sock", timeout: 5000 };
 * ```
 */
export interface ApiClientOptions {
  /** The agent's unix socket (`socket-path` of its config). */
  readonly socketPath: string;
  /**
   * How long a request (not a monitor stream) may take, in milliseconds.
   *
   * @default 60000
   */
  readonly timeout?: number;
}

/**
 * Options of {@link ApiClient.monitor}.
 *
 * @example Drops of endpoint 12 until aborted
 * ```ts no-run
 * import type { MonitorRequestOptions } from "@dp/agent";
 * const options: MonitorRequestOptions = { types: ["drop"], endpoint: 12, signal: AbortSignal.timeout(10_000) };
 * ```
 */
export interface MonitorRequestOptions {
  /**
   * Only these event types.
   *
   * @default all
   */
  readonly types?: readonly MonitorEventType[];
  /**
   * Only events about this endpoint.
   *
   * @default all
   */
  readonly endpoint?: number;
  /**
   * Ends the stream when aborted.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
}

interface Reply {
  readonly status: number;
  readonly text: string;
}

const UNREACHABLE = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "EPERM", "ENOTSOCK"]);

function queryString(params: Readonly<Record<string, string | number | undefined | readonly string[]>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (typeof v === "object") for (const item of v) q.append(k, item);
    else q.append(k, String(v));
  }
  const text = q.toString();
  return text === "" ? "" : `?${text}`;
}

function conntrackQueryString(filter: ConntrackQuery): string {
  return queryString({
    family: filter.family,
    protocol: filter.protocol,
    address: filter.address,
    saddr: filter.saddr,
    daddr: filter.daddr,
    port: filter.port,
    sport: filter.sport,
    dport: filter.dport,
    scope: filter.scope,
    endpoint: filter.endpoint,
  });
}

function errorOf(what: string, reply: Reply): ApiError {
  let body: Partial<ApiErrorBody> | undefined;
  try {
    body = JSON.parse(reply.text) as Partial<ApiErrorBody>;
  } catch {
    body = undefined;
  }
  if (body !== undefined && typeof body.code === "string" && typeof body.message === "string") {
    return new ApiError(body.code, body.message, { field: body.field, status: reply.status });
  }
  return new ApiError(
    reply.status >= 500 ? "internal" : "bad-request",
    `Cannot ${what}: the agent answered ${reply.status} ${JSON.stringify(reply.text.slice(0, 200))}`,
    { status: reply.status },
  );
}

function parseLine(line: string): MonitorLine {
  return JSON.parse(line) as MonitorLine;
}

/**
 * The agent API's client: one method per route, over HTTP/1.1 on the
 * agent's unix socket. Bigints arrive as decimal strings ({@link Wire}).
 * Error responses throw {@link ApiError}; a socket nobody answers on (or
 * this user may not open) throws {@link AgentUnreachableError}.
 *
 * @example Status and endpoints
 * ```ts no-run
 * import { ApiClient } from "@dp/agent";
 * const client = new ApiClient({ socketPath: "/var/run/dp/dp.sock" });
 * const status = await client.status();
 * console.log(status.hostRouting.mode, (await client.endpoints()).length);
 * ```
 */
export class ApiClient {
  /** The socket the client talks to. */
  readonly socketPath: string;
  readonly #timeout: number;

  /**
   * Creates a client. Nothing is connected until the first request.
   *
   * @param options The socket path and timeout.
   * @throws {TypeError} When the socket path is not a non-empty string.
   */
  constructor(options: ApiClientOptions) {
    if (typeof options?.socketPath !== "string" || options.socketPath === "")
      throw new TypeError("Cannot create API client: socketPath must be a non-empty string");
    this.socketPath = options.socketPath;
    this.#timeout = options.timeout ?? 60_000;
  }

  #unreachable(err: Error): Error {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && UNREACHABLE.has(code))
      return new AgentUnreachableError(this.socketPath, code, { cause: err });
    return err;
  }

  #send(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(
        {
          socketPath: this.socketPath,
          // A connection per request: nothing pooled outlives an agent restart.
          agent: false,
          method,
          path,
          headers: {
            accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
          },
          timeout: this.#timeout,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () =>
        req.destroy(
          new ApiError("unavailable", `Cannot ${method} ${path}: the agent did not answer in ${this.#timeout} ms`),
        ),
      );
      req.on("error", (err) => reject(this.#unreachable(err)));
      req.end(payload);
    });
  }

  async #json<T>(what: string, method: string, path: string, body?: unknown): Promise<T> {
    const reply = await this.#send(method, path, body);
    if (reply.status >= 400) throw errorOf(what, reply);
    if (reply.status === 204 || reply.text === "") return undefined as T;
    return JSON.parse(reply.text) as T;
  }

  /**
   * `GET /v1/healthz`: whether the agent answers.
   *
   * @returns `{ ok: true }`.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  healthz(): Promise<{
    /** Whether the agent is healthy (`true` whenever it answers). */
    readonly ok: boolean;
  }> {
    return this.#json("check health", "GET", "/v1/healthz");
  }

  /**
   * `GET /v1/status`: what `dp status` shows.
   *
   * @returns The agent's status.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   * @throws {ApiError} When the agent fails.
   */
  status(): Promise<AgentStatus> {
    return this.#json("get status", "GET", "/v1/status");
  }

  /**
   * `GET /v1/endpoint`: every endpoint, or those the query selects (the
   * one created for a CNI container id).
   *
   * @param query Which endpoints (all when empty).
   * @returns The endpoints, by id.
   * @throws {ApiError} `bad-request` naming the parameter when the query is invalid.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  endpoints(query: EndpointQuery = {}): Promise<ApiEndpoint[]> {
    return this.#json("list endpoints", "GET", `/v1/endpoint${queryString({ containerId: query.containerId })}`);
  }

  /**
   * `GET /v1/endpoint/:id`: one endpoint.
   *
   * @param id The endpoint id.
   * @returns The endpoint.
   * @throws {ApiError} `not-found` when there is no such endpoint.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  endpoint(id: number): Promise<ApiEndpoint> {
    return this.#json(`get endpoint ${id}`, "GET", `/v1/endpoint/${encodeURIComponent(String(id))}`);
  }

  /**
   * `PUT /v1/endpoint`: adds an endpoint (the agent allocates missing addresses).
   *
   * @param req The pod's namespace, labels and optional addresses.
   * @returns The endpoint.
   * @throws {ApiError} `bad-request` naming the field (labels, netns, ipv4...) when the request is wrong.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  createEndpoint(req: EndpointRequest): Promise<ApiEndpoint> {
    return this.#json("create endpoint", "PUT", "/v1/endpoint", req);
  }

  /**
   * `DELETE /v1/endpoint/:id`: removes an endpoint.
   *
   * @param id The endpoint id.
   * @returns Resolves when it is gone.
   * @throws {ApiError} `not-found` when there is no such endpoint.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  async deleteEndpoint(id: number): Promise<void> {
    await this.#json<undefined>(`delete endpoint ${id}`, "DELETE", `/v1/endpoint/${encodeURIComponent(String(id))}`);
  }

  /**
   * `DELETE /v1/endpoint?containerId=ID`: removes the endpoint created for
   * a container id. Idempotent: it succeeds when there is none (never
   * created, already deleted, or lost), as a CNI DEL must.
   *
   * @param containerId The owner reference given when it was created.
   * @returns Resolves when the container has no endpoint.
   * @throws {ApiError} `bad-request` when the container id is empty.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  async deleteContainerEndpoints(containerId: string): Promise<void> {
    await this.#json<undefined>(
      `delete the endpoint of container ${JSON.stringify(containerId)}`,
      "DELETE",
      `/v1/endpoint${queryString({ containerId })}`,
    );
  }

  /**
   * `GET /v1/identity`: the identities in use, reserved ones included.
   *
   * @returns The identities, by number.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  identities(): Promise<ApiIdentity[]> {
    return this.#json("list identities", "GET", "/v1/identity");
  }

  /**
   * `GET /v1/identity/:id`: one identity.
   *
   * @param id The numeric identity.
   * @returns The identity.
   * @throws {ApiError} `not-found` when it is not in use.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  identity(id: number): Promise<ApiIdentity> {
    return this.#json(`get identity ${id}`, "GET", `/v1/identity/${encodeURIComponent(String(id))}`);
  }

  /**
   * `GET /v1/policy`: the rules and the revision.
   *
   * @returns The policy.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  policy(): Promise<ApiPolicy> {
    return this.#json("get policy", "GET", "/v1/policy");
  }

  /**
   * `PUT /v1/policy`: adds rules (replacing those of the same name), or with `replace` sets the whole rule set.
   *
   * @param req The rules.
   * @returns The policy after the change.
   * @throws {ApiError} `bad-request` naming the rule and field when a rule is invalid (nothing changed).
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  importPolicy(req: PolicyImportRequest): Promise<ApiPolicy> {
    return this.#json("import policy", "PUT", "/v1/policy", req);
  }

  /**
   * `DELETE /v1/policy`: removes rules by name, or every rule when no name is given.
   *
   * @param names The rule names.
   * @returns The policy after the change.
   * @throws {ApiError} `not-found` when a named rule does not exist (nothing changed).
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  deletePolicy(names: readonly string[] = []): Promise<ApiPolicy> {
    return this.#json("delete policy", "DELETE", `/v1/policy${queryString({ name: names })}`);
  }

  /**
   * `POST /v1/policy/trace`: whether traffic from one side to the other is allowed, and by which rule.
   *
   * @param req The two sides, protocol and port.
   * @returns The engine's explanation.
   * @throws {ApiError} `bad-request` when a side is malformed, `not-found` for an unknown endpoint.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  tracePolicy(req: PolicyTraceRequest): Promise<PolicyTraceResponse> {
    return this.#json("trace policy", "POST", "/v1/policy/trace", req);
  }

  /**
   * `GET /v1/ct`: conntrack entries.
   *
   * @param filter Which entries (all when empty).
   * @returns The entries.
   * @throws {ApiError} `bad-request` naming the filter field when it is invalid.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  conntrack(filter: ConntrackQuery = {}): Promise<ApiConntrackEntry[]> {
    return this.#json("list conntrack entries", "GET", `/v1/ct${conntrackQueryString(filter)}`);
  }

  /**
   * `DELETE /v1/ct`: deletes conntrack entries.
   *
   * @param filter Which entries (all when empty).
   * @returns What was deleted.
   * @throws {ApiError} `bad-request` naming the filter field when it is invalid.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  flushConntrack(filter: ConntrackQuery = {}): Promise<ApiConntrackFlush> {
    return this.#json("flush conntrack entries", "DELETE", `/v1/ct${conntrackQueryString(filter)}`);
  }

  /**
   * `GET /v1/bpf/policy/:id`: an endpoint's policy map, decoded.
   *
   * @param id The endpoint id.
   * @returns The entries.
   * @throws {ApiError} `not-found` when there is no such endpoint.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  policyMap(id: number): Promise<ApiPolicyMapEntry[]> {
    return this.#json(`get policy map of endpoint ${id}`, "GET", `/v1/bpf/policy/${encodeURIComponent(String(id))}`);
  }

  /**
   * `GET /v1/bpf/ipcache`: the ipcache's prefixes and their identities.
   *
   * @returns The entries.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  ipcache(): Promise<
    {
      /** The prefix, canonical (`10.0.1.5/32`, `fd00::/64`). */
      readonly prefix: string;
      /** The security identity of the addresses in it. */
      readonly identity: number;
    }[]
  > {
    return this.#json("list ipcache", "GET", "/v1/bpf/ipcache");
  }

  /**
   * `GET /v1/bpf/metrics`: the datapath's drop and forward counters.
   *
   * @returns The counters.
   * @throws {AgentUnreachableError} When no agent answers on the socket.
   */
  metrics(): Promise<Wire<NodeCounter>[]> {
    return this.#json("get metrics", "GET", "/v1/bpf/metrics");
  }

  /**
   * `GET /v1/monitor`: the datapath's events as they happen, one
   * {@link MonitorLine} each; `lost` lines say how many events this reader
   * missed (it was slow, or the ring buffer was full). The stream ends
   * when the signal aborts or the agent stops (call again to reconnect).
   *
   * @param options Event types, endpoint, stop signal.
   * @returns The lines.
   * @throws {AgentUnreachableError} When no agent answers on the socket (at the start, or when the connection breaks).
   * @throws {ApiError} `bad-request` when a type is unknown.
   * @example Printing drops for ten seconds
   * ```ts no-run
   * import { ApiClient } from "@dp/agent";
   * const client = new ApiClient({ socketPath: "/var/run/dp/dp.sock" });
   * for await (const line of client.monitor({ types: ["drop"], signal: AbortSignal.timeout(10_000) })) {
   *   if (line.kind === "event") console.log(line.event.type, line.event.endpointId);
   * }
   * ```
   */
  async *monitor(options: MonitorRequestOptions = {}): AsyncGenerator<MonitorLine, void, undefined> {
    const signal = options.signal;
    if (signal?.aborted === true) return;
    const path = `/v1/monitor${queryString({ type: options.types, endpoint: options.endpoint })}`;
    let res: IncomingMessage;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      try {
        res = await new Promise<IncomingMessage>((resolve, reject) => {
          const req = httpRequest(
            {
              socketPath: this.socketPath,
              agent: false,
              method: "GET",
              path,
              signal: controller.signal,
              headers: { accept: "application/x-ndjson" },
            },
            resolve,
          );
          req.on("error", reject);
          req.end();
        });
      } catch (err) {
        if (controller.signal.aborted) return;
        throw err instanceof Error ? this.#unreachable(err) : err;
      }
      if ((res.statusCode ?? 0) >= 400) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        throw errorOf("monitor", { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
      }
      let rest = "";
      try {
        for await (const chunk of res) {
          rest += (chunk as Buffer).toString("utf8");
          let nl = rest.indexOf("\n");
          while (nl >= 0) {
            const line = rest.slice(0, nl).trim();
            rest = rest.slice(nl + 1);
            if (line !== "") yield parseLine(line);
            nl = rest.indexOf("\n");
          }
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        const code = (err as { code?: unknown } | null)?.code;
        if (code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE") return;
        throw err;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }
}
