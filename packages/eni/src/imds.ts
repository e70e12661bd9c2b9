const DEFAULT_ENDPOINT = "http://169.254.169.254";
const META_DATA = "/latest/meta-data/";

/** Options for {@link readInstanceMetadata}. */
export interface ReadInstanceMetadataOptions {
  /**
   * The IMDS endpoint.
   *
   * @default `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else "http://169.254.169.254"
   */
  readonly endpoint?: string;
  /**
   * Cancels the reads.
   *
   * @default none
   */
  readonly signal?: AbortSignal;
  /**
   * The lifetime of the IMDSv2 session token, in seconds (1 to 21600).
   *
   * @default 60
   */
  readonly tokenTtlSeconds?: number;
  /**
   * How long the whole read may take, in milliseconds.
   *
   * @default 5000
   */
  readonly timeoutMs?: number;
}

/** One attached ENI as instance metadata describes it. */
export interface InterfaceMetadata {
  /** Its MAC address, lower case. */
  readonly mac: string;
  /** Its device number: 0 is the primary ENI. */
  readonly deviceNumber: number;
  /** The ENI id (`eni-…`). */
  readonly interfaceId: string;
  /** Its subnet. */
  readonly subnetId: string;
  /** The subnet's IPv4 CIDR. */
  readonly subnetCidr: string;
  /** The VPC. */
  readonly vpcId: string;
  /** The VPC's IPv4 CIDRs, the primary first. */
  readonly vpcCidrs: readonly string[];
  /** Its private IPv4 addresses, the primary first. */
  readonly ips: readonly string[];
  /** Its security groups. */
  readonly securityGroupIds: readonly string[];
}

/** What {@link readInstanceMetadata} returns. */
export interface InstanceMetadata {
  /** The instance id (`i-…`). */
  readonly instanceId: string;
  /** The instance type, such as `"m5.large"`. */
  readonly instanceType: string;
  /** The availability zone, such as `"us-east-1a"`. */
  readonly availabilityZone: string;
  /** The region, such as `"us-east-1"`. */
  readonly region: string;
  /** The MAC address of the primary ENI, lower case. */
  readonly mac: string;
  /** The attached ENIs, by device number. */
  readonly interfaces: readonly InterfaceMetadata[];
}

/** Options for {@link MetadataError}. */
export interface MetadataErrorOptions {
  /** The metadata path, such as `"instance-id"` or `"api/token"`. */
  readonly path: string;
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;
  /** The error that caused this one. */
  readonly cause?: unknown;
}

/**
 * Reading instance metadata (IMDS) failed: a request was refused, timed
 * out or could not be sent, or a value was malformed.
 *
 * @example The message shape
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetadataError } from "@dp/eni";
 *
 * const err = new MetadataError("HTTP 404", { path: "instance-id", status: 404 });
 * assert.equal(err.message, 'Cannot read instance metadata "instance-id": HTTP 404');
 * assert.equal(err.status, 404);
 * ```
 */
export class MetadataError extends Error {
  /** Always `"MetadataError"`, the class name. */
  override readonly name: string = "MetadataError";
  /** The metadata path. */
  readonly path: string;
  /** The HTTP status, or `undefined` when no answer came. */
  readonly status: number | undefined;

  /**
   * Creates an error for a failed read.
   *
   * @param detail What went wrong.
   * @param options The path, status and cause.
   */
  constructor(detail: string, options: MetadataErrorOptions) {
    super(
      `Cannot read instance metadata "${options.path}": ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.path = options.path;
    this.status = options.status;
  }
}

function envEndpoint(): string | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
    ?.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  return v === undefined || v === "" ? undefined : v;
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** One IMDSv2 session: a token and GETs under `meta-data/`. */
class ImdsSession {
  readonly #base: string;
  readonly #signal: AbortSignal;
  #token = "";

  constructor(base: string, signal: AbortSignal) {
    this.#base = base;
    this.#signal = signal;
  }

  async #fetch(path: string, init: RequestInit): Promise<string> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, { ...init, signal: this.#signal });
    } catch (e) {
      const why = this.#signal.aborted
        ? this.#signal.reason instanceof Error
          ? this.#signal.reason.message
          : "aborted"
        : e instanceof Error
          ? e.message
          : String(e);
      throw new MetadataError(why, {
        path: path.replace(/^\/latest\/(meta-data\/)?/, ""),
        status: undefined,
        cause: this.#signal.aborted ? this.#signal.reason : e,
      });
    }
    const body = await res.text();
    if (!res.ok) {
      const hint = res.status === 401 ? ": the session token was refused" : res.status === 404 ? ": no such path" : "";
      throw new MetadataError(`HTTP ${res.status}${hint}`, {
        path: path.replace(/^\/latest\/(meta-data\/)?/, ""),
        status: res.status,
      });
    }
    return body;
  }

  async open(ttl: number): Promise<void> {
    this.#token = (
      await this.#fetch("/latest/api/token", {
        method: "PUT",
        headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) },
      })
    ).trim();
  }

  get(path: string): Promise<string> {
    return this.#fetch(`${META_DATA}${path}`, { headers: { "x-aws-ec2-metadata-token": this.#token } }).then((t) =>
      t.trim(),
    );
  }
}

async function readInterface(session: ImdsSession, mac: string): Promise<InterfaceMetadata> {
  const base = `network/interfaces/macs/${mac}/`;
  const [device, interfaceId, subnetId, subnetCidr, vpcId, vpcCidrs, ips, groups] = await Promise.all([
    session.get(`${base}device-number`),
    session.get(`${base}interface-id`),
    session.get(`${base}subnet-id`),
    session.get(`${base}subnet-ipv4-cidr-block`),
    session.get(`${base}vpc-id`),
    session.get(`${base}vpc-ipv4-cidr-blocks`),
    session.get(`${base}local-ipv4s`),
    session.get(`${base}security-group-ids`),
  ]);
  if (!/^\d+$/.test(device)) {
    throw new MetadataError(`expected a device number, got ${JSON.stringify(device)}`, {
      path: `${base}device-number`,
      status: 200,
    });
  }
  return {
    mac: mac.toLowerCase(),
    deviceNumber: Number(device),
    interfaceId,
    subnetId,
    subnetCidr,
    vpcId,
    vpcCidrs: lines(vpcCidrs),
    ips: lines(ips),
    securityGroupIds: lines(groups),
  };
}

/**
 * Reads the instance's identity and attached ENIs from the EC2 instance
 * metadata service, with an IMDSv2 session token (`PUT /latest/api/token`,
 * then GETs with `X-aws-ec2-metadata-token`).
 *
 * Metadata lags behind EC2 by a few seconds after an ENI is attached or an
 * address assigned; use `Ec2Api` for the authoritative state and IMDS for
 * what this instance is.
 *
 * @param options The endpoint, token lifetime, timeout and an abort signal.
 * @returns The instance id, type, zone, region, primary MAC and the ENIs by device number.
 * @throws {MetadataError} When a request fails (its `status` says how; 401 means the token was refused), times out, is aborted or a value is malformed.
 * @throws {RangeError} When `tokenTtlSeconds` or `timeoutMs` is out of range.
 * @example Reading the metadata of a local IMDS
 * ```ts
 * import assert from "node:assert/strict";
 * import { readInstanceMetadata } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * const md = await readInstanceMetadata({ endpoint: fake.imdsEndpoint });
 * assert.equal(md.instanceId, fake.instanceId);
 * assert.equal(md.region, "us-east-1");
 * assert.equal(md.interfaces[0]?.deviceNumber, 0);
 * assert.deepEqual(md.interfaces[0]?.vpcCidrs, ["10.0.0.0/16"]);
 * ```
 */
export async function readInstanceMetadata(options: ReadInstanceMetadataOptions = {}): Promise<InstanceMetadata> {
  const ttl = options.tokenTtlSeconds ?? 60;
  if (!(Number.isSafeInteger(ttl) && ttl >= 1 && ttl <= 21600)) {
    throw new RangeError(`Invalid tokenTtlSeconds ${ttl}: expected an integer from 1 to 21600`);
  }
  const timeout = options.timeoutMs ?? 5000;
  if (!(timeout > 0)) throw new RangeError(`Invalid timeoutMs ${timeout}: expected a positive number`);
  const endpoint = (options.endpoint ?? envEndpoint() ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  const timer = AbortSignal.timeout(timeout);
  const signal = options.signal === undefined ? timer : AbortSignal.any([options.signal, timer]);
  const session = new ImdsSession(endpoint, signal);
  await session.open(ttl);
  const [instanceId, instanceType, availabilityZone, region, mac, macList] = await Promise.all([
    session.get("instance-id"),
    session.get("instance-type"),
    session.get("placement/availability-zone"),
    session.get("placement/region"),
    session.get("mac"),
    session.get("network/interfaces/macs/"),
  ]);
  const macs = lines(macList).map((l) => l.replace(/\/$/, ""));
  const interfaces = await Promise.all(macs.map((m) => readInterface(session, m)));
  interfaces.sort((a, b) => a.deviceNumber - b.deviceNumber);
  return { instanceId, instanceType, availabilityZone, region, mac: mac.toLowerCase(), interfaces };
}
