import { type Ec2Api, Ec2Error, type Instance, type InstanceTypeLimits, type NetworkInterface } from "./ec2_api.ts";
import { LimitsTable, maxPods, refreshInstanceLimits } from "./limits.ts";
import { nextDeviceIndex, planResize, rankSubnets, routerIp } from "./_pool_plan.ts";
import { SerialQueue } from "./_pool_queue.ts";
import type { PoolContext, PoolEni, PoolKnobs, PoolSubnet } from "./_pool_state.ts";

// Deleting an ENI that is still detaching fails with
// InvalidNetworkInterface.InUse: retry with these delays (ms).
const DELETE_RETRY_DELAYS: readonly number[] = [250, 500, 1000, 2000, 4000, 8000];

/** Options for {@link openEniPool}. */
export interface OpenEniPoolOptions {
  /**
   * The instance: its id (the pool calls DescribeInstances) or its
   * description.
   */
  readonly instance: string | Instance;
  /**
   * The instance type's ENI limits, or a table to look the type up in.
   * When the table does not know the type, the pool asks
   * DescribeInstanceTypes and merges the answer into the table.
   *
   * @default a table that falls back to the shipped limits
   */
  readonly limits?: InstanceTypeLimits | LimitsTable;
  /**
   * Addresses to keep free beyond those in use (Cilium's `pre-allocate`).
   *
   * @default 8
   */
  readonly preAllocate?: number;
  /**
   * Addresses to hold at least, used or not (`min-allocate`; 0: no minimum).
   *
   * @default 0
   */
  readonly minAllocate?: number;
  /**
   * Addresses to hold at most (`max-allocate`; 0: only the instance limit).
   *
   * @default 0
   */
  readonly maxAllocate?: number;
  /**
   * Addresses to allocate beyond the pre-allocate watermark in one go,
   * and to keep before releasing surplus (`max-above-watermark`).
   *
   * @default 0
   */
  readonly maxAboveWatermark?: number;
  /**
   * The lowest device index whose ENI hands out addresses
   * (`first-interface-index`); 1 keeps pods off the primary ENI.
   *
   * @default 0
   */
  readonly firstInterfaceIndex?: number;
  /**
   * Device indexes the pool neither hands out addresses from nor attaches
   * new ENIs at.
   *
   * @default []
   */
  readonly excludeInterfaceIndexes?: readonly number[];
  /**
   * Tags that make a subnet preferred for new ENIs. Candidates are the
   * subnets of the instance's VPC and zone with free addresses: those
   * with all these tags first, then those with the most free addresses.
   *
   * @default {}
   */
  readonly subnetTags?: Readonly<Record<string, string>>;
  /**
   * Security groups of new ENIs.
   *
   * @default those of the primary ENI (device index 0)
   */
  readonly securityGroupIds?: readonly string[];
  /**
   * Addresses in use by pods (as the node's routes or endpoints show them
   * after a restart). The pool counts them as allocated and never
   * releases them. Addresses that are not secondary addresses of a usable
   * ENI are ignored.
   *
   * @default []
   */
  readonly inUse?: Iterable<string>;
  /**
   * Whether EC2 deletes the ENIs the pool attaches when the instance
   * terminates (one ModifyNetworkInterfaceAttribute per new ENI).
   *
   * @default true
   */
  readonly deleteOnTermination?: boolean;
  /**
   * Waits between attempts to delete an ENI that is still detaching, when
   * rolling back a failed ENI creation.
   *
   * @default a `setTimeout` timer
   */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** An address handed out by {@link EniPool.allocate}. */
export interface EniAllocation {
  /** The private IPv4 address. */
  readonly ip: string;
  /** The ENI id it is a secondary address of. */
  readonly eni: string;
  /** The ENI's device index (`ethN` on the node). */
  readonly deviceIndex: number;
  /** The ENI's MAC address. */
  readonly mac: string;
  /** The ENI's subnet. */
  readonly subnetId: string;
  /** The subnet's CIDR, when the pool knows the subnet. */
  readonly subnetCidr?: string;
  /** The subnet's VPC router (network address + 1), the gateway of the ENI's table. */
  readonly routerIp?: string;
  /** Who the address was allocated for. */
  readonly owner?: string;
}

/** One ENI in {@link EniPoolStatus}. */
export interface EniStatus {
  /** The ENI id. */
  readonly id: string;
  /** Its device index. */
  readonly deviceIndex: number;
  /** Its MAC address. */
  readonly mac: string;
  /** Its subnet. */
  readonly subnetId: string;
  /** The subnet's CIDR, when known. */
  readonly subnetCidr?: string;
  /** Its primary private address (never handed out). */
  readonly primaryIp: string;
  /** Whether the pool hands out its addresses (see `firstInterfaceIndex` and `excludeInterfaceIndexes`). */
  readonly usable: boolean;
  /** Secondary addresses. */
  readonly total: number;
  /** Secondary addresses allocated. */
  readonly used: number;
  /** Secondary addresses free (0 on unusable ENIs). */
  readonly free: number;
}

/** A snapshot of a pool, from {@link EniPool.status}. */
export interface EniPoolStatus {
  /** The instance. */
  readonly instanceId: string;
  /** Its type. */
  readonly instanceType: string;
  /** The limits the pool works with. */
  readonly limits: InstanceTypeLimits;
  /** `maxPods(limits)`. */
  readonly maxPods: number;
  /** Every ENI attached to the instance, by device index. */
  readonly enis: readonly EniStatus[];
  /** Secondary addresses on usable ENIs. */
  readonly total: number;
  /** Those allocated. */
  readonly used: number;
  /** Those free. */
  readonly free: number;
  /** The most secondary addresses the pool can hold (instance limit, usable ENIs and max-allocate). */
  readonly capacity: number;
}

/** Options for {@link EniPoolError}. */
export interface EniPoolErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
  /** The ENI the failed step was about. */
  readonly eniId?: string;
  /** When rolling back a new ENI failed too: that error (the ENI may be left behind). */
  readonly rollbackError?: unknown;
}

/**
 * An ENI pool operation failed: an EC2 call (the `cause`, usually an
 * {@link Ec2Error}) or a missing piece of information. When a new ENI could
 * not be attached or configured, the pool deleted it again before throwing;
 * `rollbackError` says when that failed too.
 *
 * @example The cause is the EC2 error
 * ```ts
 * import assert from "node:assert/strict";
 * import { Ec2Error, EniPoolError } from "@dp/eni";
 *
 * const cause = new Ec2Error("", { operation: "AttachNetworkInterface", code: "AttachmentLimitExceeded", retryable: false });
 * const err = new EniPoolError(`Cannot attach ENI "eni-1": ${cause.message}`, { cause, eniId: "eni-1" });
 * assert.equal(err.name, "EniPoolError");
 * assert.equal((err.cause as Ec2Error).code, "AttachmentLimitExceeded");
 * ```
 */
export class EniPoolError extends Error {
  /** The class name, `"EniPoolError"`. */
  override readonly name: string = "EniPoolError";
  /** The ENI the failed step was about. */
  readonly eniId: string | undefined;
  /** The rollback's own failure, if any. */
  readonly rollbackError: unknown;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options The cause and the ENI.
   */
  constructor(message: string, options: EniPoolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.eniId = options.eniId;
    this.rollbackError = options.rollbackError;
  }
}

/** Why a pool is exhausted: the instance's ENI limits or the `maxAllocate` option. */
export type PoolExhaustedReason = "instanceLimit" | "maxAllocate";

/** Options for {@link PoolExhaustedError}. */
export interface PoolExhaustedErrorOptions {
  /** The instance. */
  readonly instanceId: string;
  /** Its limits. */
  readonly limits: InstanceTypeLimits;
  /** Which limit was hit. */
  readonly reason: PoolExhaustedReason;
  /** The address count the pool holds. */
  readonly total: number;
}

/**
 * {@link EniPool.allocate} found no free address and cannot get one: every
 * ENI the instance can take is attached and full, or the pool holds
 * `maxAllocate` addresses.
 *
 * @example The message names the limits
 * ```ts
 * import assert from "node:assert/strict";
 * import { instanceLimits, PoolExhaustedError } from "@dp/eni";
 *
 * const err = new PoolExhaustedError({ instanceId: "i-1", limits: instanceLimits("m5.large")!, reason: "instanceLimit", total: 27 });
 * assert.equal(err.message, 'Cannot allocate an IP: instance "i-1" (m5.large) is at its limit of 3 ENIs × 9 secondary IPv4 addresses');
 * ```
 */
export class PoolExhaustedError extends EniPoolError {
  /** The class name, `"PoolExhaustedError"`. */
  override readonly name: string = "PoolExhaustedError";
  /** The instance. */
  readonly instanceId: string;
  /** Its limits. */
  readonly limits: InstanceTypeLimits;
  /** Which limit was hit. */
  readonly reason: PoolExhaustedReason;

  /**
   * Creates the error.
   *
   * @param options The instance, its limits and which one was hit.
   */
  constructor(options: PoolExhaustedErrorOptions) {
    const { instanceId, limits } = options;
    super(
      options.reason === "maxAllocate"
        ? `Cannot allocate an IP: instance "${instanceId}" (${limits.type}) is at its max-allocate limit of ${options.total} addresses`
        : `Cannot allocate an IP: instance "${instanceId}" (${limits.type}) is at its limit of ${limits.maxEnis} ENIs × ${limits.ipv4PerEni - 1} secondary IPv4 addresses`,
    );
    this.instanceId = instanceId;
    this.limits = limits;
    this.reason = options.reason;
  }
}

/** Options for {@link NoSubnetError}. */
export interface NoSubnetErrorOptions {
  /** The instance. */
  readonly instanceId: string;
  /** Its VPC. */
  readonly vpcId: string;
  /** Its availability zone. */
  readonly availabilityZone: string;
}

/**
 * The pool needs a new ENI but no subnet of the instance's VPC and zone
 * has a free address.
 *
 * @example The message names the VPC and zone
 * ```ts
 * import assert from "node:assert/strict";
 * import { NoSubnetError } from "@dp/eni";
 *
 * const err = new NoSubnetError({ instanceId: "i-1", vpcId: "vpc-1", availabilityZone: "us-east-1a" });
 * assert.match(err.message, /no subnet of VPC "vpc-1" in zone "us-east-1a" has a free address/);
 * ```
 */
export class NoSubnetError extends EniPoolError {
  /** The class name, `"NoSubnetError"`. */
  override readonly name: string = "NoSubnetError";
  /** The VPC searched. */
  readonly vpcId: string;
  /** The zone searched. */
  readonly availabilityZone: string;

  /**
   * Creates the error.
   *
   * @param options Where the pool looked.
   */
  constructor(options: NoSubnetErrorOptions) {
    super(
      `Cannot create an ENI for instance "${options.instanceId}": no subnet of VPC "${options.vpcId}" in zone "${options.availabilityZone}" has a free address`,
    );
    this.vpcId = options.vpcId;
    this.availabilityZone = options.availabilityZone;
  }
}

interface Waiter {
  readonly owner: string | undefined;
  readonly resolve: (allocation: EniAllocation) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The secondary IPv4 addresses of one instance's ENIs, handed out to pods
 * the way Cilium's ENI IPAM does it. Made by {@link openEniPool}, which
 * rebuilds the state from EC2; nothing is kept across restarts.
 *
 * {@link EniPool.allocate} hands out a free address without calling EC2;
 * when none is free it reconciles first. {@link EniPool.resync} reconciles
 * with the watermarks: it assigns addresses to ENIs with room (one
 * AssignPrivateIpAddresses per ENI, as many as needed), creates, attaches
 * and configures new ENIs when those are full (CreateNetworkInterface
 * assigns the addresses, so a new ENI costs 3 calls), and releases surplus
 * free addresses (one UnassignPrivateIpAddresses per ENI). Reconciliations
 * run one at a time; callers waiting for addresses are counted together,
 * so parallel allocations cost no more calls than one large one.
 *
 * @example Allocate and release
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api, openEniPool } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * using ec2 = createEc2Api({ endpoint: fake.endpoint, region: fake.region, credentials: { accessKeyId: "test", secretAccessKey: "test" } });
 * const pool = await openEniPool(ec2, { instance: fake.instanceId });
 * const a = await pool.allocate("pod-a");
 * assert.equal(a.deviceIndex, 0);
 * assert.equal(pool.status().free, 8); // pre-allocate: 8 more stay free
 * assert.equal(pool.release(a.ip), true);
 * ```
 */
export class EniPool {
  readonly #ctx: PoolContext;
  readonly #queue = new SerialQueue();
  readonly #waiters: Waiter[] = [];
  readonly #releasing = new Set<string>();
  #pumpQueued = false;
  // EC2 refused an attachment for the instance's ENI limit: the limits
  // overstate it, so attach no more ENIs until the pool is opened again.
  #attachLimitReached = false;

  /**
   * Wraps the state built by {@link openEniPool}.
   *
   * @internal Made by {@link openEniPool}.
   * @param ctx The pool's state.
   */
  constructor(ctx: PoolContext) {
    this.#ctx = ctx;
  }

  /**
   * Hands out a free secondary address. When none is free it reconciles
   * first, asking for the addresses every waiting caller needs plus
   * pre-allocate (and max-above-watermark) in as few calls as it can.
   *
   * @param owner Who the address is for (kept with the allocation).
   * @returns The address, its ENI and the ENI's subnet and router.
   * @throws {PoolExhaustedError} When the instance's ENIs are all attached and full, or max-allocate is reached.
   * @throws {NoSubnetError} When a new ENI is needed and no subnet has a free address.
   * @throws {EniPoolError} When an EC2 call failed (the cause); a half-made ENI was deleted again.
   */
  allocate(owner?: string): Promise<EniAllocation> {
    if (owner !== undefined && typeof owner !== "string") {
      return Promise.reject(new TypeError(`Invalid owner: expected a string, got ${typeof owner}`));
    }
    if (this.#waiters.length === 0) {
      const allocation = this.#take(owner);
      if (allocation !== undefined) return Promise.resolve(allocation);
    }
    return new Promise<EniAllocation>((resolve, reject) => {
      this.#waiters.push({ owner, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Gives an allocated address back to the pool; it becomes free at once.
   * No EC2 call: surplus addresses go back to EC2 on {@link EniPool.resync}.
   *
   * @param ip The address.
   * @returns `true` when the address was allocated.
   */
  release(ip: string): boolean {
    return this.#ctx.used.delete(ip);
  }

  /**
   * The allocation of an address.
   *
   * @param ip The address.
   * @returns Its allocation, or `undefined` when it is not allocated.
   */
  get(ip: string): EniAllocation | undefined {
    if (!this.#ctx.used.has(ip)) return undefined;
    for (const eni of this.#ctx.enis.values()) {
      if (eni.usable && eni.secondary.includes(ip)) return this.#allocation(ip, eni, this.#ctx.used.get(ip));
    }
    return undefined;
  }

  /**
   * Runs one reconciliation, after those already under way: grows the pool
   * to `max(used + preAllocate, minAllocate)` (plus max-above-watermark,
   * within max-allocate and the instance limit) or releases free addresses
   * above that target plus max-above-watermark. Addresses in use and
   * primary addresses are never released.
   *
   * @returns When the pool is reconciled.
   * @throws {NoSubnetError} When a new ENI is needed and no subnet has a free address.
   * @throws {EniPoolError} When an EC2 call failed (the cause); a half-made ENI was deleted again.
   */
  resync(): Promise<void> {
    return this.#queue.run(() => this.#reconcile(0));
  }

  /**
   * A snapshot of the pool: every ENI with its address counts, the totals,
   * the limits and max pods.
   *
   * @returns The snapshot.
   */
  status(): EniPoolStatus {
    const { instance, limits, enis, used } = this.#ctx;
    const list: EniStatus[] = [];
    let total = 0;
    let inUse = 0;
    for (const eni of [...enis.values()].sort((a, b) => a.deviceIndex - b.deviceIndex)) {
      const n = eni.usable ? eni.secondary.filter((ip) => used.has(ip)).length : 0;
      const cidr = this.#ctx.subnets.get(eni.subnetId)?.subnet.cidr;
      list.push({
        id: eni.id,
        deviceIndex: eni.deviceIndex,
        mac: eni.mac,
        subnetId: eni.subnetId,
        ...(cidr === undefined ? {} : { subnetCidr: cidr }),
        primaryIp: eni.primaryIp,
        usable: eni.usable,
        total: eni.secondary.length,
        used: n,
        free: eni.usable ? eni.secondary.length - n : 0,
      });
      if (eni.usable) {
        total += eni.secondary.length;
        inUse += n;
      }
    }
    return {
      instanceId: instance.id,
      instanceType: instance.type,
      limits,
      maxPods: maxPods(limits),
      enis: list,
      total,
      used: inUse,
      free: total - inUse,
      capacity: this.#cap(),
    };
  }

  // --- handing out ------------------------------------------------------------

  #usableEnis(): PoolEni[] {
    return [...this.#ctx.enis.values()].filter((e) => e.usable).sort((a, b) => a.deviceIndex - b.deviceIndex);
  }

  #take(owner: string | undefined): EniAllocation | undefined {
    const { used } = this.#ctx;
    for (const eni of this.#usableEnis()) {
      for (const ip of eni.secondary) {
        if (used.has(ip) || this.#releasing.has(ip)) continue;
        used.set(ip, owner);
        return this.#allocation(ip, eni, owner);
      }
    }
    return undefined;
  }

  #allocation(ip: string, eni: PoolEni, owner: string | undefined): EniAllocation {
    const cidr = this.#ctx.subnets.get(eni.subnetId)?.subnet.cidr;
    const router = cidr === undefined ? undefined : routerIp(cidr);
    return {
      ip,
      eni: eni.id,
      deviceIndex: eni.deviceIndex,
      mac: eni.mac,
      subnetId: eni.subnetId,
      ...(cidr === undefined ? {} : { subnetCidr: cidr }),
      ...(router === undefined ? {} : { routerIp: router }),
      ...(owner === undefined ? {} : { owner }),
    };
  }

  #handOut(): void {
    while (this.#waiters.length > 0) {
      const allocation = this.#take(this.#waiters[0]!.owner);
      if (allocation === undefined) return;
      this.#waiters.shift()!.resolve(allocation);
    }
  }

  #rejectAll(err: unknown): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
  }

  #pump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    void this.#queue.run(async () => {
      this.#pumpQueued = false;
      await this.#serve();
    });
  }

  // Serves the waiting callers: hands out free addresses, reconciles for
  // the rest (all of them at once), and gives up when a reconciliation
  // adds nothing.
  async #serve(): Promise<void> {
    try {
      for (;;) {
        this.#handOut();
        if (this.#waiters.length === 0) return;
        const before = this.#total();
        await this.#reconcile(this.#waiters.length);
        if (this.#total() <= before) {
          this.#handOut();
          if (this.#waiters.length > 0) this.#rejectAll(this.#exhausted());
          return;
        }
      }
    } catch (err) {
      this.#handOut();
      this.#rejectAll(err);
    }
  }

  #exhausted(): PoolExhaustedError {
    const { instance, limits, knobs } = this.#ctx;
    const total = this.#total();
    const reason = knobs.maxAllocate > 0 && total >= knobs.maxAllocate ? "maxAllocate" : "instanceLimit";
    return new PoolExhaustedError({ instanceId: instance.id, limits, reason, total });
  }

  // --- reconciling ------------------------------------------------------------

  #perEni(): number {
    return this.#ctx.limits.ipv4PerEni - 1;
  }

  #total(): number {
    let n = 0;
    for (const eni of this.#ctx.enis.values()) if (eni.usable) n += eni.secondary.length;
    return n;
  }

  #slots(): number {
    if (this.#attachLimitReached) return 0;
    return Math.max(0, this.#ctx.limits.maxEnis - this.#ctx.enis.size);
  }

  #room(eni: PoolEni): number {
    return eni.full ? 0 : Math.max(0, this.#perEni() - eni.secondary.length);
  }

  #cap(): number {
    let capacity = this.#slots() * this.#perEni();
    for (const eni of this.#ctx.enis.values()) if (eni.usable) capacity += eni.secondary.length + this.#room(eni);
    const max = this.#ctx.knobs.maxAllocate;
    return max > 0 ? Math.min(max, capacity) : capacity;
  }

  async #reconcile(waiting: number): Promise<void> {
    const { knobs, used } = this.#ctx;
    const delta = planResize({
      demand: used.size + waiting,
      total: this.#total(),
      cap: this.#cap(),
      preAllocate: knobs.preAllocate,
      minAllocate: knobs.minAllocate,
      maxAboveWatermark: knobs.maxAboveWatermark,
    });
    if (delta > 0) await this.#grow(delta);
    else if (delta < 0) await this.#shrink(-delta);
  }

  async #grow(want: number): Promise<void> {
    const { api, instance } = this.#ctx;
    let remaining = want;
    let skipped: unknown;
    // Fill the ENIs with the most room first: fewest calls.
    const candidates = this.#usableEnis()
      .filter((e) => this.#room(e) > 0)
      .sort((a, b) => this.#room(b) - this.#room(a) || a.deviceIndex - b.deviceIndex);
    for (const eni of candidates) {
      if (remaining <= 0) break;
      const subnet = this.#ctx.subnets.get(eni.subnetId);
      const count = Math.min(this.#room(eni), remaining, subnet?.available ?? Infinity);
      if (count <= 0) continue;
      let ips: string[];
      try {
        ips = await api.assignPrivateIpAddresses(eni.id, count);
      } catch (err) {
        if (isEc2Error(err, "InsufficientFreeAddressesInSubnet")) {
          if (subnet !== undefined) subnet.available = 0;
          skipped = err;
          continue;
        }
        if (isEc2Error(err, "PrivateIpAddressLimitExceeded")) {
          eni.full = true;
          skipped = err;
          continue;
        }
        throw new EniPoolError(
          `Cannot assign ${count} addresses to ENI "${eni.id}" of instance "${instance.id}": ${messageOf(err)}`,
          {
            cause: err,
            eniId: eni.id,
          },
        );
      }
      eni.secondary.push(...ips);
      if (subnet !== undefined) subnet.available = Math.max(0, subnet.available - ips.length);
      remaining -= ips.length;
    }
    while (remaining > 0 && this.#slots() > 0) {
      const eni = await this.#createEni(Math.min(this.#perEni(), remaining));
      remaining -= eni.secondary.length;
      // A subnet with a single free address gives an ENI without secondaries.
      if (eni.secondary.length === 0) break;
    }
    if (remaining === want && skipped !== undefined) {
      throw new EniPoolError(
        `Cannot assign addresses to the ENIs of instance "${instance.id}": ${messageOf(skipped)}`,
        { cause: skipped },
      );
    }
  }

  async #shrink(count: number): Promise<void> {
    const { api, instance, used } = this.#ctx;
    // Release from the highest device index, newest addresses first.
    const byEni = new Map<PoolEni, string[]>();
    let left = count;
    for (const eni of this.#usableEnis().reverse()) {
      for (let i = eni.secondary.length - 1; i >= 0 && left > 0; i--) {
        const ip = eni.secondary[i]!;
        if (used.has(ip)) continue;
        const list = byEni.get(eni) ?? [];
        list.push(ip);
        byEni.set(eni, list);
        left--;
      }
    }
    // Hide them all from allocate() before the first call.
    for (const ips of byEni.values()) for (const ip of ips) this.#releasing.add(ip);
    try {
      for (const [eni, ips] of byEni) {
        try {
          await api.unassignPrivateIpAddresses(eni.id, ips);
        } catch (err) {
          throw new EniPoolError(
            `Cannot release ${ips.length} addresses of ENI "${eni.id}" of instance "${instance.id}": ${messageOf(err)}`,
            {
              cause: err,
              eniId: eni.id,
            },
          );
        }
        const gone = new Set(ips);
        eni.secondary = eni.secondary.filter((ip) => !gone.has(ip));
        const subnet = this.#ctx.subnets.get(eni.subnetId);
        if (subnet !== undefined) subnet.available += ips.length;
      }
    } finally {
      for (const ips of byEni.values()) for (const ip of ips) this.#releasing.delete(ip);
    }
  }

  async #refreshSubnets(): Promise<void> {
    const { api, instance, subnets } = this.#ctx;
    for (const subnet of await api.describeSubnets({ vpcId: instance.vpcId })) {
      subnets.set(subnet.id, { subnet, available: subnet.availableIps });
    }
  }

  // CreateNetworkInterface (with the secondary addresses) in the best
  // subnet, AttachNetworkInterface at the next free device index, and
  // delete-on-termination; a failure after the creation deletes the ENI.
  async #createEni(count: number): Promise<PoolEni> {
    const { api, instance, knobs, enis } = this.#ctx;
    let refreshed = false;
    let created: NetworkInterface | undefined;
    let subnet: PoolSubnet | undefined;
    while (created === undefined) {
      subnet = rankSubnets(this.#ctx.subnets.values(), {
        vpcId: instance.vpcId,
        availabilityZone: instance.availabilityZone,
        tags: knobs.subnetTags,
      })[0];
      if (subnet === undefined) {
        // What the pool knows may be stale: look once more.
        if (refreshed)
          throw new NoSubnetError({
            instanceId: instance.id,
            vpcId: instance.vpcId,
            availabilityZone: instance.availabilityZone,
          });
        refreshed = true;
        await this.#refreshSubnets();
        continue;
      }
      const secondary = Math.min(count, subnet.available - 1);
      try {
        created = await api.createNetworkInterface({
          subnetId: subnet.subnet.id,
          securityGroupIds: knobs.securityGroupIds,
          description: knobs.description,
          ...(secondary > 0 ? { secondaryIpCount: secondary } : {}),
        });
      } catch (err) {
        if (isEc2Error(err, "InsufficientFreeAddressesInSubnet")) {
          subnet.available = 0;
          continue;
        }
        throw new EniPoolError(
          `Cannot create an ENI in subnet "${subnet.subnet.id}" for instance "${instance.id}": ${messageOf(err)}`,
          { cause: err },
        );
      }
    }
    subnet!.available = Math.max(0, subnet!.available - created.ips.length);
    const taken = new Set([...enis.values()].map((e) => e.deviceIndex));
    const deviceIndex = nextDeviceIndex(taken, knobs.firstInterfaceIndex, knobs.excludeInterfaceIndexes);
    let attachmentId: string;
    try {
      attachmentId = await api.attachNetworkInterface(created.id, instance.id, deviceIndex);
    } catch (err) {
      if (isEc2Error(err, "AttachmentLimitExceeded")) this.#attachLimitReached = true;
      throw await this.#rollback(
        created,
        undefined,
        `Cannot attach ENI "${created.id}" to instance "${instance.id}" at device index ${deviceIndex}`,
        err,
      );
    }
    if (knobs.deleteOnTermination) {
      try {
        await api.setDeleteOnTermination(created.id, attachmentId, true);
      } catch (err) {
        throw await this.#rollback(
          created,
          attachmentId,
          `Cannot set delete-on-termination on ENI "${created.id}"`,
          err,
        );
      }
    }
    const eni: PoolEni = {
      id: created.id,
      deviceIndex,
      subnetId: created.subnetId,
      mac: created.mac,
      primaryIp: created.primaryIp,
      description: created.description,
      usable: true,
      secondary: created.ips.filter((ip) => ip !== created.primaryIp),
      full: false,
    };
    enis.set(eni.id, eni);
    return eni;
  }

  // Detaches (when attached) and deletes a half-made ENI; returns the error
  // to throw.
  async #rollback(
    created: NetworkInterface,
    attachmentId: string | undefined,
    what: string,
    err: unknown,
  ): Promise<EniPoolError> {
    const { api } = this.#ctx;
    let rollbackError: unknown;
    try {
      if (attachmentId !== undefined) await api.detachNetworkInterface(attachmentId, false);
      await this.#deleteEni(created.id);
      const subnet = this.#ctx.subnets.get(created.subnetId);
      if (subnet !== undefined) subnet.available += created.ips.length;
    } catch (e) {
      rollbackError = e;
    }
    if (rollbackError === undefined) {
      return new EniPoolError(`${what}: ${messageOf(err)} (the ENI was deleted)`, { cause: err, eniId: created.id });
    }
    return new EniPoolError(`${what}: ${messageOf(err)} (the ENI could not be deleted: ${messageOf(rollbackError)})`, {
      cause: err,
      eniId: created.id,
      rollbackError,
    });
  }

  // DeleteNetworkInterface, retried while EC2 says the ENI is in use: it
  // may still be detaching, or a failed attach may have attached it after
  // all (then it is detached first).
  async #deleteEni(eniId: string): Promise<void> {
    const { api, knobs } = this.#ctx;
    for (let attempt = 0; ; attempt++) {
      try {
        await api.deleteNetworkInterface(eniId);
        return;
      } catch (err) {
        if (!isEc2Error(err, "InvalidNetworkInterface.InUse") || attempt >= DELETE_RETRY_DELAYS.length) throw err;
      }
      const [eni] = await api.describeNetworkInterfaces({ ids: [eniId] });
      if (eni === undefined) return;
      const att = eni.attachment;
      if (att !== undefined && (att.status === "attached" || att.status === "attaching")) {
        await api.detachNetworkInterface(att.id, false);
      }
      await knobs.sleep(DELETE_RETRY_DELAYS[attempt]!);
    }
  }
}

function isEc2Error(err: unknown, code: string): boolean {
  return err instanceof Ec2Error && err.code === code;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function count(what: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`Invalid ${what} ${String(value)}: expected an integer >= 0`);
  return value;
}

async function resolveLimits(
  api: Ec2Api,
  instance: Instance,
  given: InstanceTypeLimits | LimitsTable | undefined,
): Promise<InstanceTypeLimits> {
  if (given !== undefined && !(given instanceof LimitsTable)) {
    maxPods(given); // checks the counts
    return given;
  }
  const table = given ?? new LimitsTable();
  let limits = table.get(instance.type);
  if (limits === undefined) {
    await refreshInstanceLimits(api, [instance.type], { table });
    limits = table.get(instance.type);
  }
  if (limits === undefined) {
    throw new EniPoolError(
      `Cannot open the ENI pool of instance "${instance.id}": EC2 knows no limits for instance type "${instance.type}"`,
    );
  }
  return limits;
}

/**
 * Opens the ENI address pool of an instance: reads the instance (unless
 * given), its type's limits (from the table; DescribeInstanceTypes only
 * for unknown types), its attached ENIs and the subnets of its VPC from
 * EC2 — the state is rebuilt every time, nothing is kept across restarts.
 * Addresses listed in `inUse` count as allocated and are never released.
 * An ENI this pool created that lost its delete-on-termination flag (a
 * crash between attach and modify) gets it set again.
 *
 * The pool calls EC2 only when addresses are needed or surplus: call
 * {@link EniPool.resync} to fill it to the watermarks, on start and
 * periodically (Cilium's operator resyncs every minute).
 *
 * @param api The EC2 API (rate limiting and retries are its business).
 * @param options The instance, its limits and Cilium's knobs.
 * @returns The pool.
 * @throws {TypeError} When `instance` is neither an id nor an instance.
 * @throws {RangeError} When a count option is not an integer >= 0.
 * @throws {EniPoolError} When the instance type's limits are unknown, or the primary ENI is missing and no `securityGroupIds` are given.
 * @throws {Ec2Error} When a Describe call (or the delete-on-termination repair) fails.
 *
 * @example A restart keeps the addresses in use
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api, openEniPool } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2();
 * using ec2 = createEc2Api({ endpoint: fake.endpoint, region: fake.region, credentials: { accessKeyId: "test", secretAccessKey: "test" } });
 * const first = await openEniPool(ec2, { instance: fake.instanceId, preAllocate: 0 });
 * const a = await first.allocate();
 * // The agent restarts: the pool is rebuilt from EC2 and the pods' addresses.
 * const second = await openEniPool(ec2, { instance: fake.instanceId, preAllocate: 0, inUse: [a.ip] });
 * await second.resync();
 * assert.equal(second.get(a.ip)?.eni, a.eni);
 * assert.equal(second.status().used, 1);
 * ```
 */
export async function openEniPool(api: Ec2Api, options: OpenEniPoolOptions): Promise<EniPool> {
  const knobsIn = {
    preAllocate: count("preAllocate", options.preAllocate, 8),
    minAllocate: count("minAllocate", options.minAllocate, 0),
    maxAllocate: count("maxAllocate", options.maxAllocate, 0),
    maxAboveWatermark: count("maxAboveWatermark", options.maxAboveWatermark, 0),
    firstInterfaceIndex: count("firstInterfaceIndex", options.firstInterfaceIndex, 0),
  };
  const excluded = new Set<number>();
  for (const i of options.excludeInterfaceIndexes ?? []) excluded.add(count("excludeInterfaceIndexes entry", i, 0));
  const given = options.instance;
  let instance: Instance;
  if (typeof given === "string") instance = await api.describeInstance(given);
  else if (typeof given === "object" && given !== null && typeof given.id === "string") instance = given;
  else throw new TypeError(`Invalid instance: expected an instance id or an Instance, got ${typeof given}`);

  const limits = await resolveLimits(api, instance, options.limits);
  const [interfaces, subnetList] = await Promise.all([
    api.describeNetworkInterfaces({ instanceId: instance.id }),
    api.describeSubnets({ vpcId: instance.vpcId }),
  ]);

  const description = `dp-eni (${instance.id})`;
  const deleteOnTermination = options.deleteOnTermination ?? true;
  const enis = new Map<string, PoolEni>();
  let primary: NetworkInterface | undefined;
  const repair: { eniId: string; attachmentId: string }[] = [];
  for (const ni of interfaces) {
    const att = ni.attachment;
    if (att === undefined || att.instanceId !== instance.id || att.status === "detached") continue;
    if (att.deviceIndex === 0) primary = ni;
    enis.set(ni.id, {
      id: ni.id,
      deviceIndex: att.deviceIndex,
      subnetId: ni.subnetId,
      mac: ni.mac,
      primaryIp: ni.primaryIp,
      description: ni.description,
      usable:
        att.status !== "detaching" && att.deviceIndex >= knobsIn.firstInterfaceIndex && !excluded.has(att.deviceIndex),
      secondary: ni.ips.filter((ip) => ip !== ni.primaryIp),
      full: false,
    });
    if (
      deleteOnTermination &&
      ni.description === description &&
      !att.deleteOnTermination &&
      att.status !== "detaching"
    ) {
      repair.push({ eniId: ni.id, attachmentId: att.id });
    }
  }
  const securityGroupIds = options.securityGroupIds ?? primary?.securityGroupIds;
  if (securityGroupIds === undefined) {
    throw new EniPoolError(
      `Cannot open the ENI pool of instance "${instance.id}": no primary ENI to take security groups from; pass securityGroupIds`,
    );
  }
  for (const { eniId, attachmentId } of repair) await api.setDeleteOnTermination(eniId, attachmentId, true);

  const subnets = new Map<string, PoolSubnet>();
  for (const subnet of subnetList) subnets.set(subnet.id, { subnet, available: subnet.availableIps });

  const used = new Map<string, string | undefined>();
  const usableIps = new Set<string>();
  for (const eni of enis.values()) if (eni.usable) for (const ip of eni.secondary) usableIps.add(ip);
  for (const ip of options.inUse ?? []) if (usableIps.has(ip)) used.set(ip, undefined);

  const knobs: PoolKnobs = {
    ...knobsIn,
    excludeInterfaceIndexes: excluded,
    subnetTags: { ...options.subnetTags },
    securityGroupIds: [...securityGroupIds],
    deleteOnTermination,
    description,
    sleep: options.sleep ?? sleepMs,
  };
  return new EniPool({ api, instance, limits, knobs, enis, subnets, used });
}
