import {
  AssignPrivateIpAddressesCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  DeleteNetworkInterfaceCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  DetachNetworkInterfaceCommand,
  EC2Client,
  type EC2ClientConfig,
  type Filter,
  type _InstanceType,
  ModifyNetworkInterfaceAttributeCommand,
  UnassignPrivateIpAddressesCommand,
} from "@aws-sdk/client-ec2";
import { ClosedError } from "@dp/core";
import { toInstance, toInstanceTypeLimits, toNetworkInterface, toSubnet, toVpc } from "./_ec2_convert.ts";
import { type Clock, RateLimiter, REAL_CLOCK } from "./_rate_limiter.ts";
import {
  type CreateNetworkInterfaceInput,
  type Ec2Api,
  type Ec2CallStats,
  Ec2Error,
  type Instance,
  type InstanceTypeLimits,
  type NetworkInterface,
  type Subnet,
  type Vpc,
} from "./ec2_api.ts";

/** EC2's throttling error codes: the call was refused for the account's request rate. */
const THROTTLING_CODES: ReadonlySet<string> = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
]);

/** Error codes of server-side or transient failures that a later retry can fix. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "ServiceUnavailable",
  "Unavailable",
  "InternalError",
  "InternalFailure",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

/** AWS credentials. */
export interface Ec2Credentials {
  /** The access key id. */
  readonly accessKeyId: string;
  /** The secret access key. */
  readonly secretAccessKey: string;
  /**
   * The session token of temporary credentials.
   *
   * @default none
   */
  readonly sessionToken?: string;
  /**
   * When temporary credentials expire; a credentials function is called
   * again shortly before.
   *
   * @default never
   */
  readonly expiration?: Date;
}

/** Retry policy of {@link createEc2Api}: exponential backoff with jitter. */
export interface Ec2RetryOptions {
  /**
   * Attempts per call, the first included; 1 disables retries.
   *
   * @default 8
   */
  readonly attempts?: number;
  /**
   * The backoff before the first retry, in milliseconds; it doubles with
   * each retry. Each wait is drawn between half of it and all of it.
   *
   * @default 100
   */
  readonly baseDelayMs?: number;
  /**
   * The longest backoff, in milliseconds.
   *
   * @default 10000
   */
  readonly maxDelayMs?: number;
}

/** Options for {@link createEc2Api}. */
export interface Ec2ApiOptions {
  /**
   * The region.
   *
   * @default the SDK's: `AWS_REGION`, then the shared config file
   */
  readonly region?: string;
  /**
   * The endpoint URL, such as a local test endpoint.
   *
   * @default the SDK's: `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, the config file, then the regional endpoint
   */
  readonly endpoint?: string;
  /**
   * Credentials, or a function that returns them (called when they are
   * needed; it may refresh them).
   *
   * @default the SDK's default chain: environment, shared files, SSO, web identity, container and instance metadata
   */
  readonly credentials?: Ec2Credentials | (() => Promise<Ec2Credentials>);
  /**
   * Calls per second after the burst (Cilium's `--limit-ipam-api-qps`).
   * Retries go through the limiter too.
   *
   * @default 4
   */
  readonly qps?: number;
  /**
   * Calls that may go at once (Cilium's `--limit-ipam-api-burst`).
   *
   * @default 20
   */
  readonly burst?: number;
  /**
   * Retries of throttled calls (`RequestLimitExceeded`, …) and of
   * server-side and transient failures (HTTP 5xx, connection resets).
   *
   * @default { attempts: 8, baseDelayMs: 100, maxDelayMs: 10000 }
   */
  readonly retry?: Ec2RetryOptions;
  /**
   * The page size of Describe calls that page (`MaxResults`, 5 to 1000).
   *
   * @default 1000
   */
  readonly pageSize?: number;
  /**
   * How long one HTTP request may take, in milliseconds.
   *
   * @default 30000
   */
  readonly requestTimeoutMs?: number;
  /**
   * The clock of the rate limiter and the backoff, in milliseconds; for
   * tests.
   *
   * @default `performance.now()` and `setTimeout`
   */
  readonly clock?: Ec2Clock;
  /**
   * A source of numbers in [0, 1) for the backoff's jitter; for tests.
   *
   * @default Math.random
   */
  readonly random?: () => number;
}

/** Time for {@link createEc2Api}'s rate limiter and backoff. */
export interface Ec2Clock {
  /** The current time in milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

/**
 * An {@link Ec2Api} over `@aws-sdk/client-ec2`; `close()` releases the
 * SDK client's connections.
 */
export interface Ec2ApiClient extends Ec2Api, Disposable {
  /** Whether {@link Ec2ApiClient.close} was called. */
  readonly closed: boolean;
  /** Releases the HTTP connections; later calls throw `ClosedError`. Idempotent. */
  close(): void;
}

function checkPositive(value: number, what: string, integer: boolean): void {
  if (!(value > 0) || (integer && !Number.isSafeInteger(value))) {
    throw new RangeError(`Invalid ${what} ${value}: expected a positive ${integer ? "integer" : "number"}`);
  }
}

/** EC2's error code of an SDK or transport error. */
function codeOf(e: unknown): string {
  if (typeof e !== "object" || e === null) return "Unknown";
  const x = e as { Code?: unknown; code?: unknown; name?: unknown };
  if (typeof x.Code === "string" && x.Code !== "") return x.Code;
  if (typeof x.code === "string" && x.code !== "") return x.code;
  if (typeof x.name === "string" && x.name !== "" && x.name !== "Error") return x.name;
  return "Unknown";
}

function statusOf(e: unknown): number | undefined {
  const status = (e as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class SdkEc2Api implements Ec2ApiClient {
  readonly #client: EC2Client;
  readonly #limiter: RateLimiter;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #attempts: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #pageSize: number;
  #calls = 0;
  #throttled = 0;
  readonly #byOperation = new Map<string, number>();
  #closed = false;

  constructor(options: Ec2ApiOptions) {
    const retry = options.retry ?? {};
    this.#attempts = retry.attempts ?? 8;
    this.#baseDelay = retry.baseDelayMs ?? 100;
    this.#maxDelay = retry.maxDelayMs ?? 10_000;
    this.#pageSize = options.pageSize ?? 1000;
    checkPositive(this.#attempts, "retry.attempts", true);
    checkPositive(this.#baseDelay, "retry.baseDelayMs", false);
    checkPositive(this.#maxDelay, "retry.maxDelayMs", false);
    if (!(Number.isSafeInteger(this.#pageSize) && this.#pageSize >= 5 && this.#pageSize <= 1000)) {
      throw new RangeError(`Invalid pageSize ${this.#pageSize}: expected an integer from 5 to 1000`);
    }
    this.#clock = options.clock ?? REAL_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#limiter = new RateLimiter(options.qps ?? 4, options.burst ?? 20, this.#clock);
    const timeout = options.requestTimeoutMs ?? 30_000;
    checkPositive(timeout, "requestTimeoutMs", false);
    const config: EC2ClientConfig = {
      // Retries are ours: each one goes through the rate limiter and counts.
      maxAttempts: 1,
      requestHandler: { requestTimeout: timeout, connectionTimeout: timeout },
    };
    if (options.region !== undefined) config.region = options.region;
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    this.#client = new EC2Client(config);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  stats(): Ec2CallStats {
    return { calls: this.#calls, throttled: this.#throttled, byOperation: Object.fromEntries(this.#byOperation) };
  }

  #backoff(retry: number): number {
    const ceiling = Math.min(this.#maxDelay, this.#baseDelay * 2 ** (retry - 1));
    return ceiling / 2 + (this.#random() * ceiling) / 2;
  }

  /** One EC2 operation: rate limited, retried with backoff, errors as Ec2Error. */
  async #call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw new ClosedError("EC2 client");
      await this.#limiter.take();
      if (this.#closed) throw new ClosedError("EC2 client");
      this.#calls++;
      this.#byOperation.set(operation, (this.#byOperation.get(operation) ?? 0) + 1);
      try {
        return await send();
      } catch (e) {
        const code = codeOf(e);
        const throttled = THROTTLING_CODES.has(code);
        const status = statusOf(e);
        if (throttled) this.#throttled++;
        const retryable = throttled || TRANSIENT_CODES.has(code) || (status !== undefined && status >= 500);
        if (!retryable || attempt >= this.#attempts) {
          const detail =
            retryable && attempt > 1 ? `${messageOf(e)} (gave up after ${attempt} attempts)` : messageOf(e);
          throw new Ec2Error(detail, { operation, code, retryable, cause: e });
        }
        await this.#clock.sleep(this.#backoff(attempt));
      }
    }
  }

  async describeInstance(instanceId: string): Promise<Instance> {
    const out = await this.#call("DescribeInstances", () =>
      this.#client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
    );
    const found = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
    if (found === undefined) {
      throw new Ec2Error(`The instance ID '${instanceId}' does not exist`, {
        operation: "DescribeInstances",
        code: "InvalidInstanceID.NotFound",
        retryable: false,
      });
    }
    return toInstance(found);
  }

  async describeNetworkInterfaces(filter: {
    readonly instanceId?: string;
    readonly ids?: readonly string[];
  }): Promise<NetworkInterface[]> {
    const filters: Filter[] = [];
    if (filter.instanceId !== undefined) filters.push({ Name: "attachment.instance-id", Values: [filter.instanceId] });
    if (filter.ids !== undefined) {
      if (filter.ids.length === 0) return [];
      filters.push({ Name: "network-interface-id", Values: [...filter.ids] });
    }
    const out: NetworkInterface[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call("DescribeNetworkInterfaces", () =>
        this.#client.send(
          new DescribeNetworkInterfacesCommand({
            Filters: filters,
            MaxResults: this.#pageSize,
            ...(token === undefined ? {} : { NextToken: token }),
          }),
        ),
      );
      for (const eni of page.NetworkInterfaces ?? []) out.push(toNetworkInterface(eni));
      token = page.NextToken || undefined;
    } while (token !== undefined);
    return out;
  }

  async describeSubnets(filter: { readonly vpcId?: string; readonly ids?: readonly string[] }): Promise<Subnet[]> {
    const filters: Filter[] = [];
    if (filter.vpcId !== undefined) filters.push({ Name: "vpc-id", Values: [filter.vpcId] });
    if (filter.ids !== undefined) {
      if (filter.ids.length === 0) return [];
      filters.push({ Name: "subnet-id", Values: [...filter.ids] });
    }
    const out: Subnet[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call("DescribeSubnets", () =>
        this.#client.send(
          new DescribeSubnetsCommand({
            Filters: filters,
            MaxResults: this.#pageSize,
            ...(token === undefined ? {} : { NextToken: token }),
          }),
        ),
      );
      for (const s of page.Subnets ?? []) out.push(toSubnet(s));
      token = page.NextToken || undefined;
    } while (token !== undefined);
    return out;
  }

  async describeVpc(vpcId: string): Promise<Vpc> {
    const out = await this.#call("DescribeVpcs", () => this.#client.send(new DescribeVpcsCommand({ VpcIds: [vpcId] })));
    const found = (out.Vpcs ?? []).find((v) => v.VpcId === vpcId);
    if (found === undefined) {
      throw new Ec2Error(`The vpc ID '${vpcId}' does not exist`, {
        operation: "DescribeVpcs",
        code: "InvalidVpcID.NotFound",
        retryable: false,
      });
    }
    return toVpc(found);
  }

  async describeInstanceTypes(types: readonly string[]): Promise<InstanceTypeLimits[]> {
    if (types.length === 0) return [];
    const out: InstanceTypeLimits[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call("DescribeInstanceTypes", () =>
        this.#client.send(
          new DescribeInstanceTypesCommand({
            InstanceTypes: types as _InstanceType[],
            ...(token === undefined ? {} : { NextToken: token }),
          }),
        ),
      );
      for (const t of page.InstanceTypes ?? []) out.push(toInstanceTypeLimits(t));
      token = page.NextToken || undefined;
    } while (token !== undefined);
    return out;
  }

  async assignPrivateIpAddresses(eniId: string, count: number): Promise<string[]> {
    if (!(Number.isSafeInteger(count) && count >= 1))
      throw new RangeError(`Invalid count ${count}: expected a positive integer`);
    const out = await this.#call("AssignPrivateIpAddresses", () =>
      this.#client.send(
        new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: count }),
      ),
    );
    return (out.AssignedPrivateIpAddresses ?? []).flatMap((a) =>
      a.PrivateIpAddress === undefined ? [] : [a.PrivateIpAddress],
    );
  }

  async unassignPrivateIpAddresses(eniId: string, ips: readonly string[]): Promise<void> {
    if (ips.length === 0) return;
    await this.#call("UnassignPrivateIpAddresses", () =>
      this.#client.send(
        new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eniId, PrivateIpAddresses: [...ips] }),
      ),
    );
  }

  async createNetworkInterface(input: CreateNetworkInterfaceInput): Promise<NetworkInterface> {
    const tags = Object.entries(input.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
    // One client token for every attempt: when a retried call had in fact
    // created the ENI, EC2 returns that ENI instead of making a second one.
    const clientToken = crypto.randomUUID();
    const out = await this.#call("CreateNetworkInterface", () =>
      this.#client.send(
        new CreateNetworkInterfaceCommand({
          SubnetId: input.subnetId,
          Groups: [...input.securityGroupIds],
          ...(input.description ? { Description: input.description } : {}),
          ...(tags.length > 0 ? { TagSpecifications: [{ ResourceType: "network-interface", Tags: tags }] } : {}),
          ...(input.secondaryIpCount ? { SecondaryPrivateIpAddressCount: input.secondaryIpCount } : {}),
          ClientToken: clientToken,
        }),
      ),
    );
    if (out.NetworkInterface === undefined) {
      throw new Ec2Error("The response holds no network interface", {
        operation: "CreateNetworkInterface",
        code: "InvalidResponse",
        retryable: false,
      });
    }
    return toNetworkInterface(out.NetworkInterface);
  }

  async attachNetworkInterface(eniId: string, instanceId: string, deviceIndex: number): Promise<string> {
    const out = await this.#call("AttachNetworkInterface", () =>
      this.#client.send(
        new AttachNetworkInterfaceCommand({
          NetworkInterfaceId: eniId,
          InstanceId: instanceId,
          DeviceIndex: deviceIndex,
        }),
      ),
    );
    if (out.AttachmentId === undefined) {
      throw new Ec2Error("The response holds no attachment id", {
        operation: "AttachNetworkInterface",
        code: "InvalidResponse",
        retryable: false,
      });
    }
    return out.AttachmentId;
  }

  async setDeleteOnTermination(eniId: string, attachmentId: string, deleteOnTermination: boolean): Promise<void> {
    await this.#call("ModifyNetworkInterfaceAttribute", () =>
      this.#client.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: eniId,
          Attachment: { AttachmentId: attachmentId, DeleteOnTermination: deleteOnTermination },
        }),
      ),
    );
  }

  async detachNetworkInterface(attachmentId: string, force: boolean): Promise<void> {
    await this.#call("DetachNetworkInterface", () =>
      this.#client.send(new DetachNetworkInterfaceCommand({ AttachmentId: attachmentId, Force: force })),
    );
  }

  async deleteNetworkInterface(eniId: string): Promise<void> {
    await this.#call("DeleteNetworkInterface", () =>
      this.#client.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eniId })),
    );
  }
}

/**
 * Creates an {@link Ec2Api} over the AWS SDK's `EC2Client`, with Cilium's
 * protection against EC2's request limits: every call, each retry
 * included, waits for a token-bucket rate limiter (4 calls per second
 * after a burst of 20, by default), and throttled (`RequestLimitExceeded`,
 * `Throttling`, …), server-side (HTTP 5xx, `InternalError`,
 * `ServiceUnavailable`) and transient transport failures are retried with
 * exponential backoff and jitter. The SDK's own retries are off
 * (`maxAttempts: 1`), so {@link Ec2Api.stats} counts every request.
 *
 * Region, endpoint and credentials come from the options, else from the
 * SDK's standard sources (`AWS_REGION`, `AWS_ENDPOINT_URL_EC2`,
 * `AWS_ACCESS_KEY_ID`, shared config files, instance metadata, …).
 * `createNetworkInterface` sends one client token across its retries, so
 * a retry never creates a second ENI.
 *
 * @param options Region, endpoint, credentials, rate limit and retry policy.
 * @returns The API; close it (or `using` it) to release its connections.
 * @throws {RangeError} When a rate, retry or page option is out of range.
 * @example Assigning addresses through a local EC2 endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * using ec2 = createEc2Api({
 *   endpoint: fake.endpoint,
 *   region: fake.region,
 *   credentials: { accessKeyId: "test", secretAccessKey: "test" },
 * });
 * const [eni] = await ec2.describeNetworkInterfaces({ instanceId: fake.instanceId });
 * assert.deepEqual(await ec2.assignPrivateIpAddresses(eni!.id, 2), ["10.0.0.5", "10.0.0.6"]);
 * assert.deepEqual(ec2.stats().byOperation, { DescribeNetworkInterfaces: 1, AssignPrivateIpAddresses: 1 });
 * ```
 * @example Throttling absorbed by backoff
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * using ec2 = createEc2Api({
 *   endpoint: fake.endpoint,
 *   region: fake.region,
 *   credentials: { accessKeyId: "test", secretAccessKey: "test" },
 *   retry: { baseDelayMs: 1 },
 * });
 * fake.throttle({ times: 2 });
 * const vpc = await ec2.describeVpc(fake.state.vpc().id);
 * assert.deepEqual(vpc.cidrs, ["10.0.0.0/16"]);
 * assert.equal(ec2.stats().calls, 3);
 * assert.equal(ec2.stats().throttled, 2);
 * ```
 */
export function createEc2Api(options: Ec2ApiOptions = {}): Ec2ApiClient {
  return new SdkEc2Api(options);
}
