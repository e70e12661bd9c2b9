// The API server and client over a real unix socket, with an in-memory
// backend: routing, validation, error bodies, the monitor's bounded queue,
// the socket's permissions and stale-socket handling. The agent's backend
// over a real node is tested in agent/*.kernel.test.ts.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { EndpointError, type MonitorEvent, PolicyValidationError } from "@dp/datapath";
import { ApiClient, type ConntrackQuery } from "./client.ts";
import { AgentUnreachableError, ApiError } from "./errors.ts";
import { type ApiBackend, type ApiServer, type MonitorSubscriber, serveApi } from "./server.ts";
import type { AgentStatus, ApiEndpoint, EndpointRequest, MonitorLine } from "./types.ts";

function drop(endpointId: number, n: number): MonitorEvent {
  return {
    type: "drop",
    reason: "policy-default-deny",
    timestamp: BigInt(n),
    direction: "ingress",
    verdict: "default-deny",
    ct: "new",
    family: 4,
    protocol: 6,
    ifindex: 3,
    endpointId,
    srcIdentity: 256,
    dstIdentity: 257,
    saddr: "10.200.0.2",
    daddr: "10.200.0.3",
    sport: 40000,
    dport: 80,
    icmpType: undefined,
    length: 60,
    ruleCookie: 0,
  };
}

const EP: ApiEndpoint = {
  id: 7,
  identity: 256,
  labels: ["k8s:app=web"],
  netns: "/run/netns/web",
  ifname: "eth0",
  hostIfname: "dp7",
  hostIfindex: 12,
  ipv4: "10.200.0.7",
  ipv6: undefined,
  mac: "02:00:00:00:00:07",
  hostMac: "02:00:00:00:01:07",
  enforcement: { ingress: false, egress: false },
  policyMapFull: false,
  containerId: "c7",
};

class Backend implements ApiBackend {
  readonly subscribers = new Set<MonitorSubscriber>();
  readonly filters: ConntrackQuery[] = [];
  readonly requests: EndpointRequest[] = [];
  readonly deletedContainers: string[] = [];
  status(): AgentStatus {
    return { version: "test", pid: 1 } as unknown as AgentStatus;
  }
  endpoints(): ApiEndpoint[] {
    return [EP];
  }
  createEndpoint(req: EndpointRequest): Promise<ApiEndpoint> {
    this.requests.push(req);
    if (req.netns === "missing")
      return Promise.reject(new EndpointError("add", "10.200.0.9", "netns", "does not exist: missing"));
    return Promise.resolve({ ...EP, id: 8, containerId: req.containerId });
  }
  deleteEndpoint(id: number): Promise<void> {
    return id === 7
      ? Promise.resolve()
      : Promise.reject(new EndpointError("remove", String(id), "id", "is not an endpoint"));
  }
  deleteContainerEndpoints(containerId: string): Promise<void> {
    this.deletedContainers.push(containerId);
    return Promise.resolve();
  }
  identities(): Promise<{ id: number; labels: string[]; kind: string; endpoints: number }[]> {
    return Promise.resolve([{ id: 1, labels: ["reserved:host"], kind: "reserved", endpoints: 0 }]);
  }
  policy(): { revision: number; rules: [] } {
    return { revision: 3, rules: [] };
  }
  importPolicy(): Promise<never> {
    return Promise.reject(
      new PolicyValidationError([{ rule: "web", field: "ingress[0].toPorts", message: "must be an array" }]),
    );
  }
  deletePolicy(names: readonly string[]): Promise<{ revision: number; rules: [] }> {
    if (names.includes("nope"))
      return Promise.reject(new ApiError("not-found", 'Cannot delete policy: no rule "nope"'));
    return Promise.resolve({ revision: 4, rules: [] });
  }
  tracePolicy(): never {
    throw new Error("kernel exploded");
  }
  conntrack(filter: ConntrackQuery): [] {
    this.filters.push(filter);
    return [];
  }
  flushConntrack(filter: ConntrackQuery): { tcp: number; any: number } {
    this.filters.push(filter);
    return { tcp: 2, any: 1 };
  }
  policyMap(): [] {
    return [];
  }
  ipcache(): { prefix: string; identity: number }[] {
    return [{ prefix: "0.0.0.0/0", identity: 2 }];
  }
  metrics(): { reason: number; reasonName: "forwarded"; direction: "ingress"; packets: string; bytes: string }[] {
    return [{ reason: 0, reasonName: "forwarded", direction: "ingress", packets: "18446744073709551615", bytes: "1" }];
  }
  subscribeMonitor(s: MonitorSubscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }
  emit(e: MonitorEvent): void {
    for (const s of this.subscribers) s.event(e);
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

let dir: string;
let socketPath: string;

/** A request written by hand, so that what the client would refuse to send reaches the server. */
function fetchRaw(method: string, path: string, body?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let text = "";
    s.on("data", (d) => (text += d.toString()));
    s.on("end", () => {
      const [head = "", payload = ""] = text.split("\r\n\r\n");
      resolve({ status: Number(head.split(" ")[1]), body: JSON.parse(payload) });
    });
    s.on("error", reject);
    const b = body ?? "";
    s.write(`${method} ${path} HTTP/1.1\r\nhost: dp\r\nconnection: close\r\ncontent-length: ${b.length}\r\n\r\n${b}`);
  });
}
let backend: Backend;
let server: ApiServer | undefined;
let client: ApiClient;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "dp-api-"));
  socketPath = join(dir, "run", "dp.sock");
  backend = new Backend();
  server = await serveApi(backend, { socketPath, monitorQueue: 16 });
  client = new ApiClient({ socketPath });
});

afterEach(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("serveApi()", () => {
  test("the socket is 0600 in a directory made 0700", () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "run")).mode & 0o777).toBe(0o700);
  });

  test("routes answer JSON; bigints travel as strings", async () => {
    await expect(client.healthz()).resolves.toEqual({ ok: true });
    await expect(client.endpoints()).resolves.toEqual([JSON.parse(JSON.stringify(EP))]);
    expect((await client.endpoint(7)).containerId).toBe("c7");
    expect((await client.metrics())[0]?.packets).toBe("18446744073709551615");
    await expect(client.identity(1)).resolves.toMatchObject({ labels: ["reserved:host"] });
    await expect(client.ipcache()).resolves.toEqual([{ prefix: "0.0.0.0/0", identity: 2 }]);
    await expect(client.deleteEndpoint(7)).resolves.toBeUndefined();
    await expect(
      client.createEndpoint({ netns: "web", labels: ["k8s:a=b"], containerId: "c8" }),
    ).resolves.toMatchObject({
      id: 8,
      containerId: "c8",
    });
  });

  test("errors arrive as ApiError with the code, status and field", async () => {
    const cases: [Promise<unknown>, string, number, string | undefined, RegExp][] = [
      [client.endpoint(9), "not-found", 404, undefined, /Cannot get endpoint 9: no such endpoint/],
      [client.endpoint(0), "bad-request", 400, "id", /id must be an integer from 1 to 65535/],
      [client.deleteEndpoint(9), "not-found", 404, undefined, /Cannot remove endpoint "9": id is not an endpoint/],
      [
        client.createEndpoint({ netns: "web" } as EndpointRequest),
        "bad-request",
        400,
        "labels",
        /labels must be an array/,
      ],
      [client.createEndpoint({ netns: "missing", labels: [] }), "bad-request", 400, "netns", /netns does not exist/],
      [client.importPolicy({ rules: [{ name: "web" } as never] }), "bad-request", 400, "ingress[0].toPorts", /must be/],
      [client.importPolicy({ rules: "x" } as never), "bad-request", 400, "rules", /rules must be an array/],
      [client.deletePolicy(["nope"]), "not-found", 404, undefined, /no rule "nope"/],
      [
        client.tracePolicy({ from: { identity: 1 }, to: { endpoint: 7 } }),
        "internal",
        500,
        undefined,
        /kernel exploded/,
      ],
      [client.tracePolicy({ from: { x: 1 } as never, to: { endpoint: 7 } }), "bad-request", 400, "from", /exactly one/],
      [client.conntrack({ dport: 70000 }), "bad-request", 400, "dport", /dport must be an integer from 0 to 65535/],
      [client.monitor({ types: ["nope" as "drop"] }).next(), "bad-request", 400, "type", /type "nope" is not one of/],
    ];
    for (const [p, code, status, field, message] of cases) {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ code, status, field });
      expect((err as Error).message).toMatch(message);
    }
  });

  test("an unknown route and a body that is not JSON are answered with error bodies", async () => {
    const raw = fetchRaw;
    expect(await raw("GET", "/v2/status")).toEqual({
      status: 404,
      body: { code: "not-found", message: "Cannot GET /v2/status: no such route" },
    });
    const bad = await raw("PUT", "/v1/endpoint", "{nope");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: "bad-request", message: expect.stringMatching(/body is not JSON/) });
  });

  test("endpoints are selected and deleted by container id; existing travels in the request", async () => {
    await expect(client.endpoints({ containerId: "c7" })).resolves.toEqual([JSON.parse(JSON.stringify(EP))]);
    await expect(client.endpoints({ containerId: "c9" })).resolves.toEqual([]);
    await expect(client.deleteContainerEndpoints("c9")).resolves.toBeUndefined();
    await expect(client.deleteContainerEndpoints("a b/&c")).resolves.toBeUndefined();
    expect(backend.deletedContainers).toEqual(["c9", "a b/&c"]);
    await client.createEndpoint({ netns: "web", labels: [], ipv4: "10.1.0.2", existing: true });
    expect(backend.requests.at(-1)).toEqual({ netns: "web", labels: [], ipv4: "10.1.0.2", existing: true });
    const cases: [Promise<unknown>, string][] = [
      [client.deleteContainerEndpoints(""), "containerId"],
      [client.createEndpoint({ netns: "web", labels: [], existing: "yes" as unknown as boolean }), "existing"],
      [client.createEndpoint({ netns: "web", labels: [], existing: true }), "ipv4"],
    ];
    for (const [p, field] of cases) await expect(p).rejects.toMatchObject({ code: "bad-request", field });
    const raw = await fetchRaw("DELETE", "/v1/endpoint");
    expect(raw).toMatchObject({ status: 400, body: { field: "containerId" } });
    expect(await fetchRaw("GET", "/v1/endpoint?containerId=a&containerId=b")).toMatchObject({ status: 400 });
    expect(await fetchRaw("GET", "/v1/endpoint?owner=a")).toMatchObject({ status: 400, body: { field: "owner" } });
  });

  test("conntrack filters travel as query parameters", async () => {
    await client.conntrack({
      family: 4,
      protocol: "TCP",
      saddr: "10.0.0.0/8",
      dport: 80,
      endpoint: 7,
      scope: "ingress",
    });
    await client.flushConntrack({ protocol: "udp" as "UDP", daddr: "fd00::1" });
    expect(backend.filters).toEqual([
      { family: 4, protocol: "TCP", saddr: "10.0.0.0/8", dport: 80, endpoint: 7, scope: "ingress" },
      { protocol: "UDP", daddr: "fd00::1" },
    ]);
  });

  test("monitor() streams events filtered by type and endpoint, and ends when the server closes", async () => {
    const lines: MonitorLine[] = [];
    const reading = (async () => {
      for await (const line of client.monitor({ types: ["drop"], endpoint: 7 })) lines.push(line);
    })();
    await until(() => backend.subscribers.size === 1);
    backend.emit(drop(7, 1));
    backend.emit(drop(8, 2));
    backend.emit({ ...drop(7, 3), type: "trace" } as MonitorEvent);
    backend.emit(drop(7, 4));
    await until(() => lines.length === 2);
    await server?.close();
    server = undefined;
    await reading;
    expect(lines.map((l) => (l.kind === "event" ? l.event.timestamp : l.kind))).toEqual(["1", "4"]);
    expect(backend.subscribers.size).toBe(0);
  });

  test("monitor() ends without error when its signal aborts", async () => {
    const controller = new AbortController();
    const seen: MonitorLine[] = [];
    const reading = (async () => {
      for await (const line of client.monitor({ signal: controller.signal })) {
        seen.push(line);
        controller.abort();
      }
    })();
    await until(() => backend.subscribers.size === 1);
    backend.emit(drop(7, 1));
    await reading;
    expect(seen).toHaveLength(1);
    await until(() => backend.subscribers.size === 0);
  });

  test("a monitor client that does not read gets lost lines instead of blocking the server", async () => {
    // A raw connection that asks for the stream and then stops reading.
    const slow = connect(socketPath);
    slow.write("GET /v1/monitor HTTP/1.1\r\nhost: dp\r\n\r\n");
    await until(() => backend.subscribers.size === 1);
    slow.pause();
    const total = 20_000;
    for (let i = 0; i < total; i++) backend.emit(drop(7, i));
    // The server still answers while the reader is stuck.
    const t0 = Date.now();
    await expect(client.healthz()).resolves.toEqual({ ok: true });
    expect(Date.now() - t0).toBeLessThan(2000);
    // Now read everything: events plus the counts of lost lines add up to what was sent.
    let text = "";
    slow.on("data", (d: Buffer) => (text += d.toString()));
    slow.resume();
    await until(() => text.includes('"kind":"lost"'));
    await new Promise((r) => setTimeout(r, 100));
    slow.destroy();
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    // Chunked transfer encoding: keep only the JSON lines.
    const lines = body
      .split(/\r?\n/)
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as MonitorLine);
    const events = lines.filter((l) => l.kind === "event").length;
    const lost = lines.reduce((n, l) => n + (l.kind === "lost" ? l.count : 0), 0);
    expect(lines.some((l) => l.kind === "lost" && l.why === "slow-reader")).toBe(true);
    expect(lost).toBeGreaterThan(0);
    expect(events + lost).toBe(total);
  });

  test("ring-buffer losses reach the client as lost lines", async () => {
    const lines: MonitorLine[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const line of client.monitor({ signal: controller.signal })) {
        lines.push(line);
        controller.abort();
      }
    })();
    await until(() => backend.subscribers.size === 1);
    for (const s of backend.subscribers) s.lost(5);
    await reading;
    expect(lines).toEqual([{ kind: "lost", count: 5, why: "ring-buffer" }]);
  });

  test("a live socket is refused and a stale one is replaced", async () => {
    await expect(serveApi(backend, { socketPath })).rejects.toThrow(/another agent is running/);
    await server?.close();
    // A stale socket: a process that listened on it was killed.
    const child = spawn(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(socketPath)}, () => console.log("up"))`,
    ]);
    await once(child.stdout, "data");
    child.kill("SIGKILL");
    await once(child, "exit");
    expect(statSync(socketPath).isSocket()).toBe(true);
    await expect(client.healthz()).rejects.toBeInstanceOf(AgentUnreachableError);
    server = await serveApi(backend, { socketPath });
    await expect(client.healthz()).resolves.toEqual({ ok: true });
  });
});

describe("ApiClient", () => {
  test("a missing socket is AgentUnreachableError naming the socket and what to do", async () => {
    const c = new ApiClient({ socketPath: join(dir, "none.sock") });
    const err = await c.status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentUnreachableError);
    expect(err).toMatchObject({ code: "ENOENT", name: "AgentUnreachableError" });
    expect((err as Error).message).toMatch(/Cannot reach the dp agent at ".*none\.sock": ENOENT .*dp agent.*--socket/);
    await expect(c.monitor().next()).rejects.toBeInstanceOf(AgentUnreachableError);
  });

  test("the constructor rejects an empty socket path", () => {
    expect(() => new ApiClient({ socketPath: "" })).toThrow(TypeError);
  });
});
