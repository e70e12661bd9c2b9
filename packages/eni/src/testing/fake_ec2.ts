import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { InstanceTypeLimits } from "../ec2_api.ts";
import { runAction } from "./_ec2_actions.ts";
import { Ec2Model } from "./_ec2_model.ts";
import { FakeEc2Fault } from "./_fault.ts";
import { FakeImds } from "./_imds.ts";
import { QueryParams } from "./_query.ts";
import { ec2ErrorXml, ec2ResponseXml } from "./_xml.ts";
import type { FakeEc2State, FakeInstanceInit, FakeSubnetInit } from "./fake_ec2_state.ts";

const MAX_BODY = 1 << 20;

/** Options for {@link startFakeEc2}. */
export interface FakeEc2Options {
  /**
   * The region.
   *
   * @default "us-east-1"
   */
  readonly region?: string;
  /**
   * The VPC's IPv4 CIDRs, the primary first.
   *
   * @default ["10.0.0.0/16"]
   */
  readonly vpcCidrs?: readonly string[];
  /**
   * Subnets to create.
   *
   * @default [{ cidr: "10.0.0.0/24" }]
   */
  readonly subnets?: readonly FakeSubnetInit[];
  /**
   * Instances to create; the first is the one the IMDS endpoint describes.
   *
   * @default [{ type: "m5.large" }] in the first subnet
   */
  readonly instances?: readonly FakeInstanceInit[];
  /**
   * Limits of instance types, added to (or replacing entries of) the
   * built-in table (t3, m5, c5 and r5 sizes).
   *
   * @default none
   */
  readonly instanceTypes?: readonly InstanceTypeLimits[];
}

/** Options for {@link FakeEc2.failNext}. */
export interface FailNextOptions {
  /**
   * The HTTP status.
   *
   * @default 503 for `RequestLimitExceeded`, `Unavailable` and `ServiceUnavailable`; 500 for `InternalError`; otherwise 400
   */
  readonly status?: number;
  /**
   * How many calls of the action fail.
   *
   * @default 1
   */
  readonly times?: number;
  /**
   * The error message.
   *
   * @default "Injected failure"
   */
  readonly message?: string;
  /**
   * Whether the action takes effect before the error is returned, as when
   * EC2 did the work but the response was lost.
   *
   * @default false
   */
  readonly applied?: boolean;
}

/** Options for {@link FakeEc2.throttle}: either `every` or `times`. */
export interface ThrottleOptions {
  /**
   * Refuse every n-th call from now on (n, 2n, …) with `RequestLimitExceeded`.
   *
   * @default not used
   */
  readonly every?: number;
  /**
   * Refuse the next n calls; 0 stops throttling.
   *
   * @default not used
   */
  readonly times?: number;
  /**
   * The actions throttling applies to.
   *
   * @default every action
   */
  readonly actions?: readonly string[];
}

/** A request the fake EC2 endpoint answered. */
export interface FakeEc2Call {
  /** The action, such as `"AssignPrivateIpAddresses"`. */
  readonly action: string;
  /** The request's parameters other than `Action` and `Version`. */
  readonly params: Readonly<Record<string, string>>;
  /** The HTTP status of the answer. */
  readonly status: number;
  /** EC2's error code when the call failed. */
  readonly errorCode: string | undefined;
}

/** Options for {@link FakeEc2.failNextMetadata}. */
export interface FailNextMetadataOptions {
  /**
   * How many requests of the path fail.
   *
   * @default 1
   */
  readonly times?: number;
}

/**
 * A running fake of the EC2 Query API and of IMDSv2, on loopback, with a
 * stateful model of one VPC. Close it (or `await using` it) to stop both
 * servers.
 */
export interface FakeEc2 extends AsyncDisposable {
  /** The EC2 endpoint, `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** The IMDS endpoint, `http://127.0.0.1:PORT`. */
  readonly imdsEndpoint: string;
  /** The region. */
  readonly region: string;
  /** The instance the IMDS endpoint describes (the first one). */
  readonly instanceId: string;
  /** The account's state, to inspect and seed. */
  readonly state: FakeEc2State;
  /** Every EC2 request answered so far, in order. */
  readonly calls: readonly FakeEc2Call[];
  /** Forgets the calls answered so far. */
  clearCalls(): void;
  /**
   * Makes the next calls of an action fail with an EC2 error.
   *
   * @param action The action, such as `"AttachNetworkInterface"`.
   * @param code EC2's error code, such as `"AttachmentLimitExceeded"`.
   * @param options The status, count, message and whether the action still takes effect.
   */
  failNext(action: string, code: string, options?: FailNextOptions): void;
  /**
   * Refuses calls with HTTP 503 `RequestLimitExceeded`, as EC2 does when
   * an account exceeds its request rate. Replaces earlier throttling.
   *
   * @param options `every` n-th call or the next `times` calls, optionally only of some actions.
   * @throws {RangeError} When neither or both of `every` and `times` are given, or they are not non-negative integers.
   */
  throttle(options: ThrottleOptions): void;
  /**
   * Makes the next GETs of a metadata path answer with an HTTP status.
   *
   * @param path The path under `/latest/meta-data/`, such as `"instance-id"`.
   * @param status The HTTP status, such as 500.
   * @param options How many times.
   */
  failNextMetadata(path: string, status: number, options?: FailNextMetadataOptions): void;
  /** Drops injected failures and throttling. */
  clearFaults(): void;
  /** Stops both servers and drops their connections; idempotent. */
  close(): Promise<void>;
}

interface PendingFailure {
  readonly action: string;
  readonly code: string;
  readonly status: number;
  readonly message: string;
  readonly applied: boolean;
  times: number;
}

interface Throttling {
  readonly every: number;
  times: number;
  readonly actions: readonly string[] | undefined;
  seen: number;
}

function defaultStatus(code: string): number {
  if (code === "RequestLimitExceeded" || code === "Unavailable" || code === "ServiceUnavailable") return 503;
  if (code === "InternalError" || code === "InternalFailure") return 500;
  return 400;
}

function checkCount(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new RangeError(`Invalid ${what} ${value}: expected a non-negative integer`);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new RangeError("Request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      const addr = server.address();
      if (addr === null || typeof addr === "string") {
        reject(new Error("Cannot start the fake EC2 endpoint: no TCP address"));
        return;
      }
      resolve(`http://127.0.0.1:${addr.port}`);
    });
  });
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

class FakeEc2Server implements FakeEc2 {
  readonly region: string;
  readonly state: FakeEc2State;
  endpoint = "";
  imdsEndpoint = "";
  readonly #model: Ec2Model;
  readonly #imds: FakeImds;
  readonly #calls: FakeEc2Call[] = [];
  readonly #failures: PendingFailure[] = [];
  #throttling: Throttling | undefined;
  readonly #ec2Server: Server;
  readonly #imdsServer: Server;
  #closing: Promise<void> | undefined;

  constructor(model: Ec2Model, instanceId: string) {
    this.#model = model;
    this.state = model;
    this.region = model.region;
    this.#imds = new FakeImds(model, instanceId);
    this.#ec2Server = createServer((req, res) => void this.#serveEc2(req, res));
    this.#imdsServer = createServer((req, res) => this.#serveImds(req, res));
  }

  async start(): Promise<void> {
    this.endpoint = await listen(this.#ec2Server);
    try {
      this.imdsEndpoint = await listen(this.#imdsServer);
    } catch (e) {
      await stop(this.#ec2Server);
      throw e;
    }
  }

  get instanceId(): string {
    return this.#imds.instanceId;
  }

  get calls(): readonly FakeEc2Call[] {
    return [...this.#calls];
  }

  clearCalls(): void {
    this.#calls.length = 0;
  }

  failNext(action: string, code: string, options: FailNextOptions = {}): void {
    checkCount(options.times, "times");
    this.#failures.push({
      action,
      code,
      status: options.status ?? defaultStatus(code),
      message: options.message ?? "Injected failure",
      applied: options.applied ?? false,
      times: options.times ?? 1,
    });
  }

  throttle(options: ThrottleOptions): void {
    checkCount(options.every, "every");
    checkCount(options.times, "times");
    if ((options.every === undefined) === (options.times === undefined)) {
      throw new RangeError("Invalid throttling: give either `every` or `times`");
    }
    if (options.every === 0) throw new RangeError("Invalid throttling: `every` must be at least 1");
    this.#throttling = { every: options.every ?? 0, times: options.times ?? 0, actions: options.actions, seen: 0 };
  }

  failNextMetadata(path: string, status: number, options: FailNextMetadataOptions = {}): void {
    checkCount(options.times, "times");
    this.#imds.failNext(path, status, options.times ?? 1);
  }

  clearFaults(): void {
    this.#failures.length = 0;
    this.#throttling = undefined;
    this.#imds.clearFaults();
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([stop(this.#ec2Server), stop(this.#imdsServer)]).then(() => undefined);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #throttled(action: string): boolean {
    const t = this.#throttling;
    if (t === undefined || (t.actions !== undefined && !t.actions.includes(action))) return false;
    if (t.every > 0) return ++t.seen % t.every === 0;
    if (t.times > 0) {
      t.times--;
      return true;
    }
    return false;
  }

  #takeFailure(action: string): PendingFailure | undefined {
    const f = this.#failures.find((x) => x.action === action && x.times > 0);
    if (f !== undefined) f.times--;
    return f;
  }

  /** Answers one parsed request: the status and the XML body. */
  #answer(
    action: string,
    params: QueryParams,
    requestId: string,
  ): { status: number; body: string; code: string | undefined } {
    try {
      if (this.#throttled(action)) throw new FakeEc2Fault("RequestLimitExceeded", "Request limit exceeded.", 503);
      if (params.get("DryRun") === "true") {
        throw new FakeEc2Fault("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412);
      }
      const failure = this.#takeFailure(action);
      if (failure !== undefined && failure.applied) runAction(this.#model, action, params);
      if (failure !== undefined) throw new FakeEc2Fault(failure.code, failure.message, failure.status);
      const fields = runAction(this.#model, action, params);
      return { status: 200, body: ec2ResponseXml(action, requestId, fields), code: undefined };
    } catch (e) {
      if (!(e instanceof FakeEc2Fault)) throw e;
      return { status: e.status, body: ec2ErrorXml(e.code, e.message, requestId), code: e.code };
    }
  }

  async #serveEc2(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": requestId });
      res.end(body);
    };
    try {
      const url = new URL(req.url ?? "/", "http://ec2");
      const body = req.method === "POST" ? await readBody(req) : url.search.slice(1);
      const params = new QueryParams(body);
      const action = params.get("Action") ?? "";
      const { Action: _action, Version: _version, ...rest } = params.toRecord();
      let answer: { status: number; body: string; code: string | undefined };
      if (!(req.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 ")) {
        answer = {
          status: 401,
          body: ec2ErrorXml("AuthFailure", "AWS was not able to validate the provided access credentials", requestId),
          code: "AuthFailure",
        };
      } else {
        answer = this.#answer(action, params, requestId);
      }
      this.#calls.push({ action, params: rest, status: answer.status, errorCode: answer.code });
      reply(answer.status, answer.body);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      reply(500, ec2ErrorXml("InternalError", `The fake failed: ${message}`, requestId));
    }
  }

  #serveImds(req: IncomingMessage, res: ServerResponse): void {
    const answer = this.#imds.handle(req.method ?? "GET", req.url ?? "/", (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    });
    res.writeHead(answer.status, { "content-type": "text/plain", ...answer.headers });
    res.end(req.method === "HEAD" ? undefined : answer.body);
  }
}

/**
 * Starts a stateful fake of the EC2 Query API and of IMDSv2 on loopback
 * (port 0), for tests that drive the real `@aws-sdk/client-ec2`.
 *
 * It speaks EC2's wire format: form-encoded `Action=…&Version=2016-11-15`
 * requests signed with SigV4 (any credentials; the signature is not
 * checked, its presence is), XML responses, and EC2's error documents
 * and codes (`PrivateIpAddressLimitExceeded`,
 * `InsufficientFreeAddressesInSubnet`, `AttachmentLimitExceeded`, HTTP 503
 * `RequestLimitExceeded` when throttled, …). It serves
 * DescribeInstances, DescribeNetworkInterfaces, DescribeSubnets,
 * DescribeVpcs, DescribeInstanceTypes, AssignPrivateIpAddresses,
 * UnassignPrivateIpAddresses, CreateNetworkInterface (idempotent per
 * `ClientToken`), AttachNetworkInterface, ModifyNetworkInterfaceAttribute,
 * DetachNetworkInterface and DeleteNetworkInterface.
 *
 * The IMDS endpoint hands out session tokens on `PUT /latest/api/token`
 * and answers `GET /latest/meta-data/…` only with a valid
 * `X-aws-ec2-metadata-token` (401 otherwise), describing the first
 * instance as it is at the time of the request.
 *
 * @param options The VPC, subnets, instances and instance types.
 * @returns The running fake; close it when done.
 * @throws {SyntaxError} When a CIDR is malformed.
 * @throws {RangeError} When the seed data is inconsistent (see {@link FakeEc2State}).
 * @example Describing the instance's ENI with the AWS SDK
 * ```ts
 * import assert from "node:assert/strict";
 * import { DescribeNetworkInterfacesCommand, EC2Client } from "@aws-sdk/client-ec2";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * const client = new EC2Client({
 *   endpoint: fake.endpoint,
 *   region: fake.region,
 *   credentials: { accessKeyId: "test", secretAccessKey: "test" },
 * });
 * try {
 *   const out = await client.send(new DescribeNetworkInterfacesCommand({
 *     Filters: [{ Name: "attachment.instance-id", Values: [fake.instanceId] }],
 *   }));
 *   assert.equal(out.NetworkInterfaces?.[0]?.Attachment?.DeviceIndex, 0);
 *   assert.equal(out.NetworkInterfaces?.[0]?.PrivateIpAddress, "10.0.0.4");
 * } finally {
 *   client.destroy();
 * }
 * ```
 * @example Injecting an error
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api, Ec2Error } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * using ec2 = createEc2Api({ endpoint: fake.endpoint, region: fake.region, credentials: { accessKeyId: "test", secretAccessKey: "test" } });
 * const [eni] = await ec2.describeNetworkInterfaces({ instanceId: fake.instanceId });
 * fake.failNext("AssignPrivateIpAddresses", "UnauthorizedOperation");
 * await assert.rejects(ec2.assignPrivateIpAddresses(eni!.id, 1), (e) => e instanceof Ec2Error && e.code === "UnauthorizedOperation");
 * assert.deepEqual(fake.calls.map((c) => c.errorCode), [undefined, "UnauthorizedOperation"]);
 * ```
 */
export async function startFakeEc2(options: FakeEc2Options = {}): Promise<FakeEc2> {
  const model = new Ec2Model(options.region ?? "us-east-1", options.vpcCidrs ?? ["10.0.0.0/16"]);
  for (const t of options.instanceTypes ?? []) model.setInstanceType(t);
  for (const s of options.subnets ?? [{ cidr: "10.0.0.0/24" }]) model.addSubnet(s);
  const instances = (options.instances ?? [{}]).map((i) => model.addInstance(i));
  const first = instances[0];
  if (first === undefined) throw new RangeError("Invalid fake EC2: it needs at least one instance for IMDS");
  const fake = new FakeEc2Server(model, first.id);
  await fake.start();
  return fake;
}
