import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { dirname } from "node:path";
import {
  EndpointError,
  EVENT_TYPES,
  type MonitorEvent,
  type MonitorEventType,
  type NodeCounter,
  PolicyValidationError,
} from "@dp/datapath";
import type { Logger } from "../agent/logger.ts";
import type { ConntrackQuery } from "./client.ts";
import { ApiError } from "./errors.ts";
import type {
  AgentStatus,
  ApiConntrackEntry,
  ApiConntrackFlush,
  ApiEndpoint,
  ApiIdentity,
  ApiPolicy,
  ApiPolicyMapEntry,
  EndpointQuery,
  EndpointRequest,
  MonitorLine,
  PolicyImportRequest,
  PolicyTracePeer,
  PolicyTraceRequest,
  PolicyTraceResponse,
  Wire,
} from "./types.ts";
import { toWire } from "./_wire.ts";

/**
 * Where a monitor stream's events go: the backend calls `event` for each
 * datapath event and `lost` when the ring buffer dropped some.
 *
 * @internal
 */
export interface MonitorSubscriber {
  /** An event. */
  event(event: MonitorEvent): void;
  /** Events the ring buffer had no room for. */
  lost(count: number): void;
}

/**
 * What the API server serves: one method per route. Errors are thrown as
 * {@link ApiError}, or as the datapath's errors (EndpointError,
 * PolicyValidationError, TypeError/RangeError/SyntaxError for bad input),
 * which the server maps to `bad-request`.
 *
 * @internal
 */
export interface ApiBackend {
  /** `GET /v1/status`. */
  status(): AgentStatus | Promise<AgentStatus>;
  /** `GET /v1/endpoint`. */
  endpoints(): ApiEndpoint[];
  /** `PUT /v1/endpoint`. */
  createEndpoint(req: EndpointRequest): Promise<ApiEndpoint>;
  /** `DELETE /v1/endpoint/:id`. */
  deleteEndpoint(id: number): Promise<void>;
  /** `DELETE /v1/endpoint?containerId=`: removes the container's endpoint, if it has one. */
  deleteContainerEndpoints(containerId: string): Promise<void>;
  /** `GET /v1/identity`. */
  identities(): Promise<ApiIdentity[]>;
  /** `GET /v1/policy`. */
  policy(): ApiPolicy;
  /** `PUT /v1/policy`. */
  importPolicy(req: PolicyImportRequest): Promise<ApiPolicy>;
  /** `DELETE /v1/policy`. */
  deletePolicy(names: readonly string[]): Promise<ApiPolicy>;
  /** `POST /v1/policy/trace`. */
  tracePolicy(req: PolicyTraceRequest): PolicyTraceResponse;
  /** `GET /v1/ct`. */
  conntrack(filter: ConntrackQuery): ApiConntrackEntry[];
  /** `DELETE /v1/ct`. */
  flushConntrack(filter: ConntrackQuery): ApiConntrackFlush;
  /** `GET /v1/bpf/policy/:id`. */
  policyMap(id: number): ApiPolicyMapEntry[];
  /** `GET /v1/bpf/ipcache`. */
  ipcache(): { readonly prefix: string; readonly identity: number }[];
  /** `GET /v1/bpf/metrics`. */
  metrics(): Wire<NodeCounter>[];
  /** `GET /v1/monitor`: registers a subscriber; returns the function that removes it. */
  subscribeMonitor(subscriber: MonitorSubscriber): () => void;
}

/**
 * Options of {@link serveApi}.
 *
 * @internal
 */
export interface ApiServerOptions {
  /** The unix socket to listen on. */
  readonly socketPath: string;
  /** Where request failures are logged. */
  readonly logger?: Logger;
  /**
   * How many monitor lines may wait for a slow client before lines are dropped (and counted in a `lost` line).
   *
   * @default 1024
   */
  readonly monitorQueue?: number;
}

const MAX_BODY = 4 << 20;
const EVENT_TYPE_NAMES: readonly string[] = Object.values(EVENT_TYPES);
const CT_SCOPES: readonly string[] = ["egress", "ingress"];

function badRequest(message: string, field?: string): ApiError {
  return new ApiError("bad-request", message, { field });
}

/**
 * Maps what a handler threw to the error the client gets.
 *
 * @internal
 * @param err What was thrown.
 * @returns The API error.
 */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EndpointError)
    return err.field === "id"
      ? new ApiError("not-found", err.message, { cause: err })
      : new ApiError("bad-request", err.message, { field: err.field, cause: err });
  if (err instanceof PolicyValidationError)
    return new ApiError("bad-request", err.message, { field: err.field, cause: err });
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError)
    return new ApiError("bad-request", err.message, { cause: err });
  return new ApiError("internal", err instanceof Error ? err.message : String(err), { cause: err });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalString(body: Record<string, unknown>, key: string, what: string): void {
  const v = body[key];
  if (v !== undefined && (typeof v !== "string" || v === ""))
    throw badRequest(`Cannot ${what}: ${key} must be a non-empty string, got ${JSON.stringify(v)}`, key);
}

function stringArray(v: unknown, field: string, what: string): readonly string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw badRequest(`Cannot ${what}: ${field} must be an array of strings, got ${JSON.stringify(v)}`, field);
  return v as string[];
}

function parseEndpointRequest(body: unknown): EndpointRequest {
  const what = "create endpoint";
  if (!isObject(body)) throw badRequest(`Cannot ${what}: the body must be a JSON object`);
  if (typeof body.netns !== "string" || body.netns === "")
    throw badRequest(
      `Cannot ${what}: netns must be a namespace name or path, got ${JSON.stringify(body.netns)}`,
      "netns",
    );
  stringArray(body.labels, "labels", what);
  for (const key of ["ifname", "ipv4", "ipv6", "containerId"]) optionalString(body, key, what);
  if (body.existing !== undefined && typeof body.existing !== "boolean")
    throw badRequest(`Cannot ${what}: existing must be a boolean, got ${JSON.stringify(body.existing)}`, "existing");
  if (body.existing === true && body.ipv4 === undefined)
    throw badRequest(
      `Cannot ${what}: existing needs the addresses the other plugin gave the interface (ipv4, and ipv6 if any)`,
      "ipv4",
    );
  for (const key of Object.keys(body))
    if (!["netns", "labels", "ifname", "ipv4", "ipv6", "containerId", "existing"].includes(key))
      throw badRequest(`Cannot ${what}: unknown field ${JSON.stringify(key)}`, key);
  return body as unknown as EndpointRequest;
}

function parseEndpointQuery(q: URLSearchParams, what: string): EndpointQuery {
  for (const key of q.keys())
    if (key !== "containerId") throw badRequest(`Cannot ${what}: unknown parameter ${JSON.stringify(key)}`, key);
  const all = q.getAll("containerId");
  if (all.length > 1) throw badRequest(`Cannot ${what}: containerId given ${all.length} times`, "containerId");
  const containerId = all[0];
  if (containerId === undefined) return {};
  if (containerId === "") throw badRequest(`Cannot ${what}: containerId must be a non-empty string`, "containerId");
  return { containerId };
}

function parseImportRequest(body: unknown): PolicyImportRequest {
  const what = "import policy";
  if (!isObject(body)) throw badRequest(`Cannot ${what}: the body must be a JSON object`);
  if (!Array.isArray(body.rules))
    throw badRequest(`Cannot ${what}: rules must be an array of rules, got ${JSON.stringify(body.rules)}`, "rules");
  body.rules.forEach((r: unknown, i) => {
    if (!isObject(r)) throw badRequest(`Cannot ${what}: rules[${i}] must be an object`, `rules[${i}]`);
  });
  if (body.replace !== undefined && typeof body.replace !== "boolean")
    throw badRequest(`Cannot ${what}: replace must be a boolean, got ${JSON.stringify(body.replace)}`, "replace");
  return body as unknown as PolicyImportRequest;
}

function parsePeer(v: unknown, field: string): PolicyTracePeer {
  const what = "trace policy";
  if (!isObject(v))
    throw badRequest(`Cannot ${what}: ${field} must be { endpoint }, { identity } or { labels }`, field);
  const keys = Object.keys(v);
  const key = keys[0];
  if (keys.length !== 1 || key === undefined || !["endpoint", "identity", "labels"].includes(key))
    throw badRequest(
      `Cannot ${what}: ${field} must have exactly one of endpoint, identity or labels, got ${JSON.stringify(v)}`,
      field,
    );
  if (key === "labels") return { labels: stringArray(v.labels, `${field}.labels`, what) };
  const n = v[key];
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0)
    throw badRequest(
      `Cannot ${what}: ${field}.${key} must be a non-negative integer, got ${JSON.stringify(n)}`,
      `${field}.${key}`,
    );
  return key === "endpoint" ? { endpoint: n } : { identity: n };
}

function parseTraceRequest(body: unknown): PolicyTraceRequest {
  const what = "trace policy";
  if (!isObject(body)) throw badRequest(`Cannot ${what}: the body must be a JSON object`);
  const from = parsePeer(body.from, "from");
  const to = parsePeer(body.to, "to");
  if (body.protocol !== undefined && typeof body.protocol !== "string")
    throw badRequest(
      `Cannot ${what}: protocol must be a string such as "TCP", got ${JSON.stringify(body.protocol)}`,
      "protocol",
    );
  const port = body.port;
  if (port !== undefined && (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535))
    throw badRequest(`Cannot ${what}: port must be an integer from 0 to 65535, got ${JSON.stringify(port)}`, "port");
  return {
    from,
    to,
    ...(body.protocol === undefined ? {} : { protocol: body.protocol }),
    ...(port === undefined ? {} : { port }),
  };
}

function intParam(text: string, field: string, what: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw badRequest(
      `Cannot ${what}: ${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      field,
    );
  return n;
}

function parseConntrackQuery(q: URLSearchParams, what: string): ConntrackQuery {
  const out: Record<string, unknown> = {};
  const known = ["family", "protocol", "address", "saddr", "daddr", "port", "sport", "dport", "scope", "endpoint"];
  for (const key of q.keys())
    if (!known.includes(key)) throw badRequest(`Cannot ${what}: unknown filter ${JSON.stringify(key)}`, key);
  const one = (key: string): string | undefined => {
    const all = q.getAll(key);
    if (all.length > 1) throw badRequest(`Cannot ${what}: filter ${key} given ${all.length} times`, key);
    return all[0];
  };
  const family = one("family");
  if (family !== undefined) {
    if (family !== "4" && family !== "6")
      throw badRequest(`Cannot ${what}: family must be 4 or 6, got ${JSON.stringify(family)}`, "family");
    out.family = Number(family);
  }
  const protocol = one("protocol");
  if (protocol !== undefined) {
    const names = ["TCP", "UDP", "SCTP", "ICMP", "ICMPv6"];
    const name = names.find((n) => n.toLowerCase() === protocol.toLowerCase());
    if (name !== undefined) out.protocol = name;
    else out.protocol = intParam(protocol, "protocol", what, 0, 255);
  }
  for (const key of ["address", "saddr", "daddr"]) {
    const v = one(key);
    if (v !== undefined) out[key] = v;
  }
  for (const key of ["port", "sport", "dport"]) {
    const v = one(key);
    if (v !== undefined) out[key] = intParam(v, key, what, 0, 65535);
  }
  const scope = one("scope");
  if (scope !== undefined) {
    if (!CT_SCOPES.includes(scope))
      throw badRequest(
        `Cannot ${what}: scope must be ${CT_SCOPES.join(" or ")}, got ${JSON.stringify(scope)}`,
        "scope",
      );
    out.scope = scope;
  }
  const endpoint = one("endpoint");
  if (endpoint !== undefined) out.endpoint = intParam(endpoint, "endpoint", what, 1, 65535);
  return out;
}

/** The route of a path (`GET endpoint/:id`) and the id in it. */
function routeKey(method: string, parts: readonly string[]): { key: string; id: string } {
  const [v1, resource, sub, extra, ...more] = parts;
  if (v1 !== "v1" || resource === undefined || more.length > 0) return { key: "", id: "" };
  if (sub === undefined) return { key: `${method} ${resource}`, id: "" };
  if (extra === undefined) {
    if (resource === "endpoint" || resource === "identity") return { key: `${method} ${resource}/:id`, id: sub };
    return { key: `${method} ${resource}/${sub}`, id: "" };
  }
  if (resource === "bpf" && sub === "policy") return { key: `${method} bpf/policy/:id`, id: extra };
  return { key: "", id: "" };
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(badRequest(`Cannot read request: the body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (text.trim() === "") {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(badRequest(`Cannot read request: the body is not JSON: ${(err as Error).message}`));
      }
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (status === 204) {
    res.writeHead(204).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

/** One client of `GET /v1/monitor`: its filter and bounded queue. */
class MonitorStream {
  readonly #res: ServerResponse;
  readonly #types: ReadonlySet<string> | undefined;
  readonly #endpoint: number | undefined;
  readonly #limit: number;
  readonly #queue: string[] = [];
  #dropped = 0;
  #ringLost = 0;
  #closed = false;

  constructor(
    res: ServerResponse,
    types: ReadonlySet<string> | undefined,
    endpoint: number | undefined,
    limit: number,
  ) {
    this.#res = res;
    this.#types = types;
    this.#endpoint = endpoint;
    this.#limit = limit;
    res.on("drain", () => this.#flush());
  }

  event(e: MonitorEvent): void {
    if (this.#types !== undefined && !this.#types.has(e.type)) return;
    if (this.#endpoint !== undefined && e.endpointId !== this.#endpoint) return;
    this.#push(JSON.stringify({ kind: "event", event: toWire(e) } satisfies MonitorLine));
  }

  lost(count: number): void {
    this.#ringLost += count;
    this.#flush();
  }

  #push(line: string): void {
    if (this.#closed) return;
    if (this.#queue.length > 0 || this.#dropped > 0 || this.#res.writableNeedDrain) {
      if (this.#queue.length < this.#limit) this.#queue.push(line);
      else this.#dropped++;
      return;
    }
    this.#res.write(`${line}\n`);
  }

  #flush(): void {
    if (this.#closed) return;
    while (this.#queue.length > 0 && !this.#res.writableNeedDrain) this.#res.write(`${this.#queue.shift()}\n`);
    if (this.#res.writableNeedDrain) return;
    if (this.#dropped > 0) {
      this.#res.write(
        `${JSON.stringify({ kind: "lost", count: this.#dropped, why: "slow-reader" } satisfies MonitorLine)}\n`,
      );
      this.#dropped = 0;
    }
    if (this.#ringLost > 0 && !this.#res.writableNeedDrain) {
      this.#res.write(
        `${JSON.stringify({ kind: "lost", count: this.#ringLost, why: "ring-buffer" } satisfies MonitorLine)}\n`,
      );
      this.#ringLost = 0;
    }
  }

  close(): void {
    this.#closed = true;
  }
}

/**
 * The agent API's HTTP server on a unix socket. Made by {@link serveApi}.
 *
 * @internal
 */
export class ApiServer {
  /** The socket it listens on. */
  readonly socketPath: string;
  readonly #server: Server;
  readonly #streams: Set<ServerResponse>;
  #closed = false;

  /**
   * Wraps a listening server.
   *
   * @param server The server.
   * @param socketPath Its socket.
   * @param streams The monitor streams in progress.
   */
  constructor(server: Server, socketPath: string, streams: Set<ServerResponse>) {
    this.#server = server;
    this.socketPath = socketPath;
    this.#streams = streams;
  }

  /**
   * Stops listening, ends the monitor streams, closes connections and removes the socket file.
   *
   * @returns Resolves when the server is closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const res of this.#streams) res.end();
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => this.#server.closeAllConnections(), 1000);
    await closed;
    clearTimeout(timer);
    try {
      unlinkSync(this.socketPath);
    } catch {
      // Already gone.
    }
  }
}

function probeSocket(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") resolve(false);
      else reject(err);
    });
  });
}

/**
 * Checks that no agent answers on a socket path (a stale socket file of a
 * killed agent is fine: {@link serveApi} replaces it).
 *
 * @internal
 * @param path The socket path.
 * @returns Whether a stale socket file is there.
 * @throws {Error} When another agent answers on it, or the path is not a socket.
 */
export async function assertNoAgent(path: string): Promise<boolean> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  if (!isSocket)
    throw new Error(`Cannot serve the API on ${JSON.stringify(path)}: the path exists and is not a socket`);
  if (await probeSocket(path))
    throw new Error(
      `Cannot serve the API on ${JSON.stringify(path)}: another agent is running (it answers on the socket); stop it first`,
    );
  return true;
}

/**
 * Prepares the socket path: its directory (made 0700 when missing), and a
 * stale socket of a killed agent removed; a live one is an error.
 *
 * @param path The socket path.
 * @returns Resolves when the path is free.
 * @throws {Error} When another agent answers on it, or the path is not a socket.
 */
async function prepareSocket(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (await assertNoAgent(path)) unlinkSync(path);
}

/**
 * Serves the agent API on a unix socket (mode 0600, its directory 0700
 * when created): routes to the backend, validates request bodies and
 * query parameters, answers errors as `ApiErrorBody`, and streams the
 * monitor as NDJSON with a bounded queue per client.
 *
 * @internal
 * @param backend What answers the routes.
 * @param options The socket path, logger and monitor queue size.
 * @returns The server, listening.
 * @throws {Error} When another agent answers on the socket, or the path is not a socket.
 */
export async function serveApi(backend: ApiBackend, options: ApiServerOptions): Promise<ApiServer> {
  const path = options.socketPath;
  const limit = options.monitorQueue ?? 1024;
  const log = options.logger;
  const streams = new Set<ServerResponse>();
  await prepareSocket(path);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://dp");
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const method = req.method ?? "GET";
    const { key, id: idText } = routeKey(method, parts);
    switch (key) {
      case "GET healthz":
        return send(res, 200, { ok: true });
      case "GET status":
        return send(res, 200, await backend.status());
      case "GET endpoint": {
        const { containerId } = parseEndpointQuery(url.searchParams, "list endpoints");
        const all = backend.endpoints();
        return send(res, 200, containerId === undefined ? all : all.filter((e) => e.containerId === containerId));
      }
      case "DELETE endpoint": {
        const { containerId } = parseEndpointQuery(url.searchParams, "delete endpoints");
        if (containerId === undefined)
          throw badRequest("Cannot delete endpoints: give containerId (or delete one by id)", "containerId");
        await backend.deleteContainerEndpoints(containerId);
        return send(res, 204, undefined);
      }
      case "GET endpoint/:id": {
        const id = intParam(idText, "id", `get endpoint ${idText}`, 1, 65535);
        const ep = backend.endpoints().find((e) => e.id === id);
        if (ep === undefined) throw new ApiError("not-found", `Cannot get endpoint ${id}: no such endpoint`);
        return send(res, 200, ep);
      }
      case "PUT endpoint":
        return send(res, 201, await backend.createEndpoint(parseEndpointRequest(await readBody(req))));
      case "DELETE endpoint/:id": {
        const id = intParam(idText, "id", `delete endpoint ${idText}`, 1, 65535);
        await backend.deleteEndpoint(id);
        return send(res, 204, undefined);
      }
      case "GET identity":
        return send(res, 200, await backend.identities());
      case "GET identity/:id": {
        const id = intParam(idText, "id", `get identity ${idText}`, 0, 0xffffffff);
        const identity = (await backend.identities()).find((i) => i.id === id);
        if (identity === undefined)
          throw new ApiError("not-found", `Cannot get identity ${id}: no such identity in use`);
        return send(res, 200, identity);
      }
      case "GET policy":
        return send(res, 200, backend.policy());
      case "PUT policy":
        return send(res, 200, await backend.importPolicy(parseImportRequest(await readBody(req))));
      case "DELETE policy": {
        for (const k of url.searchParams.keys())
          if (k !== "name") throw badRequest(`Cannot delete policy: unknown parameter ${JSON.stringify(k)}`, k);
        return send(res, 200, await backend.deletePolicy(url.searchParams.getAll("name")));
      }
      case "POST policy/trace":
        return send(res, 200, backend.tracePolicy(parseTraceRequest(await readBody(req))));
      case "GET ct":
        return send(res, 200, backend.conntrack(parseConntrackQuery(url.searchParams, "list conntrack entries")));
      case "DELETE ct":
        return send(res, 200, backend.flushConntrack(parseConntrackQuery(url.searchParams, "flush conntrack entries")));
      case "GET bpf/policy/:id": {
        const id = intParam(idText, "id", `get policy map of endpoint ${idText}`, 1, 65535);
        return send(res, 200, backend.policyMap(id));
      }
      case "GET bpf/ipcache":
        return send(res, 200, backend.ipcache());
      case "GET bpf/metrics":
        return send(res, 200, backend.metrics());
      case "GET monitor":
        return monitor(url, res);
      default:
        throw new ApiError("not-found", `Cannot ${method} ${url.pathname}: no such route`);
    }
  }

  function monitor(url: URL, res: ServerResponse): void {
    const what = "monitor";
    for (const k of url.searchParams.keys())
      if (k !== "type" && k !== "endpoint")
        throw badRequest(`Cannot ${what}: unknown parameter ${JSON.stringify(k)}`, k);
    const types = url.searchParams.getAll("type");
    for (const t of types)
      if (!EVENT_TYPE_NAMES.includes(t))
        throw badRequest(
          `Cannot ${what}: type ${JSON.stringify(t)} is not one of ${EVENT_TYPE_NAMES.join(", ")}`,
          "type",
        );
    const ep = url.searchParams.get("endpoint");
    const endpoint = ep === null ? undefined : intParam(ep, "endpoint", what, 0, 65535);
    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    res.flushHeaders();
    const stream = new MonitorStream(
      res,
      types.length === 0 ? undefined : new Set<MonitorEventType>(types as MonitorEventType[]),
      endpoint,
      limit,
    );
    streams.add(res);
    const unsubscribe = backend.subscribeMonitor(stream);
    res.on("close", () => {
      stream.close();
      unsubscribe();
      streams.delete(res);
    });
  }

  const server = createServer((req, res) => {
    log?.debug("API request", { method: req.method, url: req.url });
    route(req, res).catch((err: unknown) => {
      const e = asApiError(err);
      if (e.code === "internal")
        log?.error("API request failed", { method: req.method, url: req.url, error: e.message });
      else log?.debug("API request refused", { method: req.method, url: req.url, error: e.message });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, e.status, e.toBody());
    });
  });
  server.keepAliveTimeout = 5000;
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return new ApiServer(server, path, streams);
}
