import { describe, expect, test, vi } from "vitest";
import {
  Ec2Error,
  type EniPool,
  EniPoolError,
  LimitsTable,
  NoSubnetError,
  openEniPool,
  type OpenEniPoolOptions,
  PoolExhaustedError,
} from "@dp/eni";
import { INSTANCE_ID, MemoryEc2, type MemoryEc2Options } from "./_test_memory_ec2.ts";

function noSleep(): Promise<void> {
  return Promise.resolve();
}

function open(ec2: MemoryEc2, options: Partial<OpenEniPoolOptions> = {}): Promise<EniPool> {
  return openEniPool(ec2, { instance: INSTANCE_ID, sleep: noSleep, ...options });
}

/** The calls made after `from` (an index into the log). */
function callsSince(ec2: MemoryEc2, from: number): string[] {
  return ec2.log.slice(from);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("openEniPool()", () => {
  test("openEniPool() reads the instance, its ENIs and its VPC's subnets and nothing else", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2);
    expect(ec2.log.sort()).toEqual(["DescribeInstances", "DescribeNetworkInterfaces", "DescribeSubnets"]);
    const status = pool.status();
    expect(status).toMatchObject({
      instanceId: INSTANCE_ID,
      instanceType: "m5.large",
      maxPods: 29,
      total: 0,
      used: 0,
      free: 0,
      capacity: 27,
    });
    expect(status.limits).toEqual({ type: "m5.large", maxEnis: 3, ipv4PerEni: 10, ipv6PerEni: 10 });
    expect(status.enis).toEqual([
      expect.objectContaining({
        deviceIndex: 0,
        subnetId: "subnet-a",
        subnetCidr: "10.0.1.0/24",
        primaryIp: "10.0.1.4",
        usable: true,
        total: 0,
      }),
    ]);
  });

  test("openEniPool() makes no DescribeInstances call when given the instance", async () => {
    const ec2 = new MemoryEc2();
    await open(ec2, { instance: ec2.instance });
    expect(ec2.log).not.toContain("DescribeInstances");
  });

  test("openEniPool() asks DescribeInstanceTypes for a type the table does not know, and merges it", async () => {
    const ec2 = new MemoryEc2({
      instanceType: "z9.large",
      instanceTypes: [{ type: "z9.large", maxEnis: 2, ipv4PerEni: 5, ipv6PerEni: 5 }],
    });
    const table = new LimitsTable();
    const pool = await open(ec2, { limits: table });
    expect(ec2.log).toContain("DescribeInstanceTypes");
    expect(pool.status().capacity).toBe(8);
    expect(table.get("z9.large")?.maxEnis).toBe(2);
  });

  test("openEniPool() uses given limits over the table", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { limits: { type: "m5.large", maxEnis: 2, ipv4PerEni: 4, ipv6PerEni: 4 } });
    expect(pool.status().capacity).toBe(6);
    expect(pool.status().maxPods).toBe(8);
  });

  test("openEniPool() throws EniPoolError when no limits are known for the type", async () => {
    const ec2 = new MemoryEc2({
      instanceType: "z9.large",
      instanceTypes: [{ type: "z9.large", maxEnis: 2, ipv4PerEni: 5, ipv6PerEni: 5 }],
    });
    await expect(
      open(ec2, { limits: new LimitsTable([], { shipped: false }), instance: { ...ec2.instance, type: "q1.tiny" } }),
    ).rejects.toThrow(
      /Cannot open the ENI pool of instance "i-0123456789abcdef0": EC2 knows no limits for instance type "q1.tiny"/,
    );
  });

  test("openEniPool() throws RangeError and TypeError on bad options", async () => {
    const ec2 = new MemoryEc2();
    await expect(open(ec2, { preAllocate: -1 })).rejects.toThrow(RangeError);
    await expect(open(ec2, { maxAllocate: 1.5 })).rejects.toThrow(/Invalid maxAllocate 1.5/);
    await expect(open(ec2, { excludeInterfaceIndexes: [-1] })).rejects.toThrow(RangeError);
    await expect(open(ec2, { instance: 42 as unknown as string })).rejects.toThrow(TypeError);
  });

  test("openEniPool() sets delete-on-termination again on its own ENI that lost it", async () => {
    const ec2 = new MemoryEc2();
    const eniId = ec2.seedEni(1, { secondary: 2 });
    const eni = ec2.enis.get(eniId)!;
    eni.description = `dp-eni (${INSTANCE_ID})`;
    eni.attachment!.deleteOnTermination = false;
    const other = ec2.seedEni(2);
    ec2.enis.get(other)!.attachment!.deleteOnTermination = false;
    await open(ec2);
    expect(eni.attachment!.deleteOnTermination).toBe(true);
    expect(ec2.enis.get(other)!.attachment!.deleteOnTermination).toBe(false);
    expect(ec2.log.filter((op) => op === "ModifyNetworkInterfaceAttribute")).toHaveLength(1);
  });
});

describe("EniPool watermarks", () => {
  test("resync() fills the pool to pre-allocate with one call", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2);
    const start = ec2.log.length;
    await pool.resync();
    expect(callsSince(ec2, start)).toEqual(["AssignPrivateIpAddresses"]);
    expect(pool.status()).toMatchObject({ total: 8, used: 0, free: 8 });
    await pool.resync();
    expect(callsSince(ec2, start)).toHaveLength(1);
  });

  test("allocate() from an empty pool takes one address and keeps pre-allocate free", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 4 });
    const start = ec2.log.length;
    const a = await pool.allocate("pod-a");
    expect(callsSince(ec2, start)).toEqual(["AssignPrivateIpAddresses"]);
    expect(pool.status()).toMatchObject({ total: 5, used: 1, free: 4 });
    expect(a).toEqual({
      ip: "10.0.1.5",
      eni: ec2.attached()[0]!.id,
      deviceIndex: 0,
      mac: ec2.attached()[0]!.mac,
      subnetId: "subnet-a",
      subnetCidr: "10.0.1.0/24",
      routerIp: "10.0.1.1",
      owner: "pod-a",
    });
    // The next four come from the free addresses, without EC2.
    for (let i = 0; i < 4; i++) await pool.allocate();
    expect(callsSince(ec2, start)).toHaveLength(1);
  });

  test("resync() tops the free addresses up to pre-allocate after allocations", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 3 });
    await pool.resync();
    await pool.allocate();
    await pool.allocate();
    expect(pool.status().free).toBe(1);
    await pool.resync();
    expect(pool.status()).toMatchObject({ used: 2, free: 3, total: 5 });
  });

  test("resync() holds min-allocate addresses even with nothing in use", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 0, minAllocate: 20 });
    await pool.resync();
    const status = pool.status();
    expect(status.total).toBe(20);
    expect(status.enis.map((e) => e.total)).toEqual([9, 9, 2]);
    // min-allocate is not a surplus: another resync releases nothing.
    const start = ec2.log.length;
    await pool.resync();
    expect(callsSince(ec2, start)).toEqual([]);
  });

  test("max-allocate caps the pool and allocate() past it throws PoolExhaustedError", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 8, maxAllocate: 5 });
    await pool.resync();
    expect(pool.status()).toMatchObject({ total: 5, capacity: 5 });
    for (let i = 0; i < 5; i++) await pool.allocate();
    const err = await rejection(pool.allocate());
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect(err).toMatchObject({ reason: "maxAllocate", instanceId: INSTANCE_ID });
    expect((err as Error).message).toMatch(/at its max-allocate limit of 5 addresses/);
  });

  test("max-above-watermark allocates beyond the watermark and delays releases", async () => {
    const ec2 = new MemoryEc2({ instanceType: "m5.4xlarge" });
    const pool = await open(ec2, { preAllocate: 2, maxAboveWatermark: 3 });
    await pool.resync();
    expect(pool.status().total).toBe(5); // 2 + 3 above the watermark
    const ips = [];
    for (let i = 0; i < 4; i++) ips.push((await pool.allocate()).ip);
    await pool.resync(); // wants 4 + 2 = 6: grows to 6 + 3
    expect(pool.status()).toMatchObject({ used: 4, total: 9 });
    pool.release(ips[0]!);
    await pool.resync(); // 3 used: target 5, keeps up to 8
    expect(pool.status().total).toBe(8);
    for (const ip of ips.slice(1)) pool.release(ip);
    const start = ec2.log.length;
    await pool.resync(); // nothing used: target 2, keeps 5
    expect(callsSince(ec2, start)).toEqual(["UnassignPrivateIpAddresses"]);
    expect(pool.status()).toMatchObject({ used: 0, total: 5 });
  });

  test("resync() releases surplus down to pre-allocate, one call per ENI, never used or primary addresses", async () => {
    const ec2 = new MemoryEc2();
    const [eni0, eni1] = [ec2.attached()[0]!.id, ec2.seedEni(1)];
    const ips0 = ec2.seedSecondary(eni0, 6);
    const ips1 = ec2.seedSecondary(eni1, 6);
    const inUse = [ips0[0]!, ips1[5]!];
    const pool = await open(ec2, { preAllocate: 1, inUse });
    expect(pool.status()).toMatchObject({ total: 12, used: 2 });
    const start = ec2.log.length;
    await pool.resync();
    expect(callsSince(ec2, start)).toEqual(["UnassignPrivateIpAddresses", "UnassignPrivateIpAddresses"]);
    expect(pool.status()).toMatchObject({ total: 3, used: 2, free: 1 });
    for (const ip of [...inUse, ...ec2.attached().map((e) => e.ips[0]!)]) expect(ec2.unassigned).not.toContain(ip);
    expect(ec2.unassigned).toHaveLength(9);
    expect(ec2.enis.get(eni0)!.ips).toContain(ips0[0]);
    expect(ec2.enis.get(eni1)!.ips).toContain(ips1[5]);
    expect(ec2.secondaryCount()).toBe(3);
  });
});

describe("EniPool.allocate()", () => {
  test("allocate() never hands out an address that a release under way gives back to EC2", async () => {
    let gate: Promise<void> = Promise.resolve();
    let open_ = (): void => {};
    const ec2 = new MemoryEc2({ latency: () => gate });
    const eni1 = ec2.seedEni(1);
    ec2.seedSecondary(ec2.attached()[0]!.id, 3);
    ec2.seedSecondary(eni1, 3);
    const pool = await open(ec2, { preAllocate: 0 });
    gate = new Promise((resolve) => (open_ = resolve));
    const resync = pool.resync();
    await vi.waitFor(() => expect(ec2.log.at(-1)).toBe("UnassignPrivateIpAddresses"));
    const allocation = pool.allocate();
    gate = Promise.resolve();
    open_();
    await resync;
    const a = await allocation;
    // It waited for the release and got an address assigned afterwards.
    expect(ec2.attached().flatMap((e) => e.ips)).toContain(a.ip);
    expect(pool.status()).toMatchObject({ used: 1, total: 1 });
  });

  test("allocate() hands out distinct addresses up to the instance limit, then throws PoolExhaustedError", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 0 });
    const ips = new Set<string>();
    for (let i = 0; i < 27; i++) ips.add((await pool.allocate(`pod-${i}`)).ip);
    expect(ips.size).toBe(27);
    expect(ec2.attached()).toHaveLength(3);
    expect(pool.status()).toMatchObject({ total: 27, used: 27, free: 0, capacity: 27 });
    const start = ec2.log.length;
    const err = await rejection(pool.allocate());
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect(err).toBeInstanceOf(EniPoolError);
    expect((err as Error).name).toBe("PoolExhaustedError");
    expect((err as Error).message).toBe(
      `Cannot allocate an IP: instance "${INSTANCE_ID}" (m5.large) is at its limit of 3 ENIs × 9 secondary IPv4 addresses`,
    );
    expect(err).toMatchObject({ reason: "instanceLimit", limits: { maxEnis: 3, ipv4PerEni: 10 } });
    expect(callsSince(ec2, start)).toEqual([]);
  });

  test("allocate() creates, attaches and configures a new ENI when the others are full", async () => {
    const ec2 = new MemoryEc2({ primarySecurityGroupIds: ["sg-1", "sg-2"] });
    const eni0 = ec2.attached()[0]!;
    const full = ec2.seedSecondary(eni0.id, 9);
    const pool = await open(ec2, { preAllocate: 2, inUse: full });
    const start = ec2.log.length;
    const a = await pool.allocate();
    expect(callsSince(ec2, start)).toEqual([
      "CreateNetworkInterface",
      "AttachNetworkInterface",
      "ModifyNetworkInterfaceAttribute",
    ]);
    const eni1 = ec2.attached()[1]!;
    expect(a).toMatchObject({ eni: eni1.id, deviceIndex: 1, mac: eni1.mac });
    expect(eni1.ips).toHaveLength(4); // primary + 1 + pre-allocate 2
    expect(eni1.attachment).toMatchObject({ deviceIndex: 1, deleteOnTermination: true });
    expect(eni1.securityGroupIds).toEqual(["sg-1", "sg-2"]);
    expect(eni1.description).toBe(`dp-eni (${INSTANCE_ID})`);
    expect(a.ip).not.toBe(eni1.ips[0]); // never the primary
  });

  test("allocate() uses configured security groups for new ENIs", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1, securityGroupIds: ["sg-pods"] });
    await pool.allocate();
    expect(ec2.attached()[1]!.securityGroupIds).toEqual(["sg-pods"]);
  });

  test("allocate() skips ModifyNetworkInterfaceAttribute when delete-on-termination is off", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1, deleteOnTermination: false });
    const start = ec2.log.length;
    await pool.allocate();
    expect(callsSince(ec2, start)).toEqual(["CreateNetworkInterface", "AttachNetworkInterface"]);
    expect(ec2.attached()[1]!.attachment!.deleteOnTermination).toBe(false);
  });

  test("allocate() does not hand out addresses below first-interface-index or on excluded ENIs", async () => {
    const ec2 = new MemoryEc2({ instanceType: "m5.xlarge" });
    ec2.seedSecondary(ec2.attached()[0]!.id, 3);
    const excluded = ec2.seedEni(1, { secondary: 3 });
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1, excludeInterfaceIndexes: [1, 2] });
    const a = await pool.allocate();
    expect(a.deviceIndex).toBe(3);
    expect(ec2.enis.get(excluded)!.ips).toHaveLength(4);
    const status = pool.status();
    expect(status.enis.map((e) => [e.deviceIndex, e.usable, e.free])).toEqual([
      [0, false, 0],
      [1, false, 0],
      [3, true, 0],
    ]);
    // m5.xlarge: 4 ENIs, 2 of them unusable, 1 slot left.
    expect(status.capacity).toBe(28);
  });

  test("release() makes an address free again without EC2 calls", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { preAllocate: 0 });
    const a = await pool.allocate("pod-a");
    expect(pool.get(a.ip)?.owner).toBe("pod-a");
    const start = ec2.log.length;
    expect(pool.release(a.ip)).toBe(true);
    expect(pool.release(a.ip)).toBe(false);
    expect(pool.release("192.0.2.1")).toBe(false);
    expect(pool.get(a.ip)).toBeUndefined();
    expect(pool.status()).toMatchObject({ used: 0, free: 1 });
    const b = await pool.allocate("pod-b");
    expect(b.ip).toBe(a.ip);
    expect(b.owner).toBe("pod-b");
    expect(callsSince(ec2, start)).toEqual([]);
  });

  test("allocate() rejects a non-string owner", async () => {
    const pool = await open(new MemoryEc2());
    await expect(pool.allocate(7 as unknown as string)).rejects.toThrow(TypeError);
  });
});

describe("EniPool ENI rollback", () => {
  async function fullPool(
    options: MemoryEc2Options = {},
    poolOptions: Partial<OpenEniPoolOptions> = {},
  ): Promise<[MemoryEc2, EniPool]> {
    const ec2 = new MemoryEc2(options);
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1, ...poolOptions });
    return [ec2, pool];
  }

  test("allocate() deletes the new ENI when attaching fails, and surfaces the error", async () => {
    const [ec2, pool] = await fullPool();
    const free = ec2.subnets.get("subnet-a")!.hosts.length;
    ec2.fail("AttachNetworkInterface", "IncorrectInstanceState");
    const start = ec2.log.length;
    const err = await rejection(pool.allocate());
    expect(err).toBeInstanceOf(EniPoolError);
    expect((err as Error).message).toMatch(
      /^Cannot attach ENI "eni-\w+" to instance "i-0123456789abcdef0" at device index 1: EC2 AttachNetworkInterface failed: IncorrectInstanceState: .* \(the ENI was deleted\)$/,
    );
    expect((err as Error).cause).toBeInstanceOf(Ec2Error);
    expect(((err as Error).cause as Ec2Error).code).toBe("IncorrectInstanceState");
    expect((err as EniPoolError).rollbackError).toBeUndefined();
    expect(callsSince(ec2, start)).toEqual([
      "CreateNetworkInterface",
      "AttachNetworkInterface",
      "DeleteNetworkInterface",
    ]);
    expect(ec2.enis.size).toBe(1);
    expect(ec2.subnets.get("subnet-a")!.hosts.length).toBe(free);
    // The pool is usable again afterwards.
    const a = await pool.allocate();
    expect(a.deviceIndex).toBe(1);
  });

  test("allocate() attaches no more ENIs once EC2 refused one for the instance's limit", async () => {
    const [ec2, pool] = await fullPool();
    ec2.fail("AttachNetworkInterface", "AttachmentLimitExceeded");
    await expect(pool.allocate()).rejects.toThrow(/AttachmentLimitExceeded/);
    const start = ec2.log.length;
    await expect(pool.allocate()).rejects.toThrow(PoolExhaustedError);
    expect(callsSince(ec2, start)).toEqual([]);
    expect(pool.status().capacity).toBe(0);
  });

  test("allocate() detaches and deletes the new ENI when setting delete-on-termination fails", async () => {
    const [ec2, pool] = await fullPool();
    ec2.fail("ModifyNetworkInterfaceAttribute", "UnauthorizedOperation");
    const start = ec2.log.length;
    const err = await rejection(pool.allocate());
    expect((err as Error).message).toMatch(
      /^Cannot set delete-on-termination on ENI "eni-\w+": .*UnauthorizedOperation.* \(the ENI was deleted\)$/,
    );
    expect(callsSince(ec2, start)).toEqual([
      "CreateNetworkInterface",
      "AttachNetworkInterface",
      "ModifyNetworkInterfaceAttribute",
      "DetachNetworkInterface",
      "DeleteNetworkInterface",
    ]);
    expect(ec2.enis.size).toBe(1);
    expect(pool.status().enis).toHaveLength(1);
  });

  test("allocate() retries deleting an ENI that is still in use, after a pause", async () => {
    const sleep = vi.fn(noSleep);
    const [ec2, pool] = await fullPool({}, { sleep });
    ec2.fail("AttachNetworkInterface", "InternalError");
    ec2.fail("DeleteNetworkInterface", "InvalidNetworkInterface.InUse");
    await expect(pool.allocate()).rejects.toThrow(/the ENI was deleted/);
    expect(sleep).toHaveBeenCalledTimes(1);
    expect(ec2.log.filter((op) => op === "DeleteNetworkInterface")).toHaveLength(2);
    expect(ec2.enis.size).toBe(1);
  });

  test("allocate() detaches an ENI that a failed attach attached after all", async () => {
    const [ec2, pool] = await fullPool();
    // EC2 attaches the ENI, but the answer is lost.
    const attach = ec2.attachNetworkInterface.bind(ec2);
    vi.spyOn(ec2, "attachNetworkInterface").mockImplementationOnce(async (...args) => {
      await attach(...args);
      throw new Ec2Error("timed out", { operation: "AttachNetworkInterface", code: "RequestTimeout", retryable: true });
    });
    await expect(pool.allocate()).rejects.toThrow(/RequestTimeout.*the ENI was deleted/);
    expect(ec2.log.slice(-4)).toEqual([
      "DeleteNetworkInterface",
      "DescribeNetworkInterfaces",
      "DetachNetworkInterface",
      "DeleteNetworkInterface",
    ]);
    expect(ec2.enis.size).toBe(1);
  });

  test("allocate() waits on a real timer before retrying a delete by default", async () => {
    const ec2 = new MemoryEc2();
    const pool = await openEniPool(ec2, { instance: INSTANCE_ID, preAllocate: 0, firstInterfaceIndex: 1 });
    ec2.fail("AttachNetworkInterface", "InternalError");
    ec2.fail("DeleteNetworkInterface", "InvalidNetworkInterface.InUse");
    const started = performance.now();
    await expect(pool.allocate()).rejects.toThrow(/the ENI was deleted/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(ec2.enis.size).toBe(1);
  });

  test("allocate() reports a rollback that failed too", async () => {
    const [ec2, pool] = await fullPool();
    ec2.fail("AttachNetworkInterface", "InternalError");
    ec2.fail("DeleteNetworkInterface", "UnauthorizedOperation");
    const err = (await rejection(pool.allocate())) as EniPoolError;
    expect(err.message).toMatch(/InternalError.*\(the ENI could not be deleted: .*UnauthorizedOperation/);
    expect(err.rollbackError).toBeInstanceOf(Ec2Error);
    expect(err.eniId).toMatch(/^eni-/);
    expect(ec2.enis.has(err.eniId!)).toBe(true);
  });

  test("allocate() rejects every waiting caller with the error of their reconciliation", async () => {
    const [ec2, pool] = await fullPool();
    ec2.fail("CreateNetworkInterface", "UnauthorizedOperation");
    const results = await Promise.allSettled([pool.allocate(), pool.allocate(), pool.allocate()]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(ec2.log.filter((op) => op === "CreateNetworkInterface")).toHaveLength(1);
  });
});

describe("EniPool restart recovery", () => {
  test("a new pool over the same EC2 state keeps the addresses in use and never releases them", async () => {
    const ec2 = new MemoryEc2();
    const first = await open(ec2, { preAllocate: 8 });
    const pods = [];
    for (let i = 0; i < 12; i++) pods.push(await first.allocate(`pod-${i}`));
    await first.resync();
    expect(first.status()).toMatchObject({ used: 12, total: 20 });

    // Restart: nothing but EC2 and the addresses the node still routes.
    const inUse = pods.map((p) => p.ip);
    const second = await open(ec2, { preAllocate: 0, inUse });
    expect(second.status()).toMatchObject({ used: 12, total: 20, free: 8 });
    for (const p of pods) expect(second.get(p.ip)).toMatchObject({ eni: p.eni, deviceIndex: p.deviceIndex });
    await second.resync();
    expect(second.status()).toMatchObject({ used: 12, total: 12, free: 0 });
    const held = new Set(ec2.attached().flatMap((e) => e.ips));
    for (const ip of inUse) expect(held.has(ip)).toBe(true);
    // New allocations never hand out an address in use.
    const next = await second.allocate();
    expect(inUse).not.toContain(next.ip);
  });

  test("openEniPool() ignores in-use addresses that no usable ENI holds", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2, { inUse: ["192.0.2.9", ec2.attached()[0]!.ips[0]!] });
    expect(pool.status().used).toBe(0);
  });
});

describe("EniPool concurrency", () => {
  test("50 parallel allocate() calls get 50 distinct addresses with no extra ENIs or calls", async () => {
    const ec2 = new MemoryEc2({ instanceType: "m5.4xlarge" });
    const pool = await open(ec2);
    const start = ec2.log.length;
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.allocate(`pod-${i}`)));
    expect(new Set(all.map((a) => a.ip)).size).toBe(50);
    // 50 + 8 = 58 addresses: the primary ENI's 29 and one new ENI's 29.
    expect(ec2.attached()).toHaveLength(2);
    expect(callsSince(ec2, start).sort()).toEqual([
      "AssignPrivateIpAddresses",
      "AttachNetworkInterface",
      "CreateNetworkInterface",
      "ModifyNetworkInterfaceAttribute",
    ]);
    expect(pool.status()).toMatchObject({ used: 50, free: 8 });
    // Callers are served in order.
    expect(all.map((a) => a.owner)).toEqual(all.map((_, i) => `pod-${i}`));
  });

  test("allocate() calls during a reconciliation wait for it and are counted in the next one", async () => {
    let gate: Promise<void> = Promise.resolve();
    let open_ = (): void => {};
    const ec2 = new MemoryEc2({ instanceType: "m5.4xlarge", latency: () => gate });
    const pool = await open(ec2, { preAllocate: 0 });
    gate = new Promise((resolve) => (open_ = resolve));
    const first = Promise.all(Array.from({ length: 5 }, () => pool.allocate()));
    await vi.waitFor(() => expect(ec2.log.at(-1)).toBe("AssignPrivateIpAddresses"));
    // These arrive while EC2 is busy with the first five.
    const second = Promise.all(Array.from({ length: 40 }, () => pool.allocate()));
    gate = Promise.resolve();
    open_();
    const all = [...(await first), ...(await second)];
    expect(new Set(all.map((a) => a.ip)).size).toBe(45);
    expect(ec2.log.slice(3)).toEqual([
      "AssignPrivateIpAddresses", // 5
      "AssignPrivateIpAddresses", // the primary ENI's other 24
      "CreateNetworkInterface", // 16
      "AttachNetworkInterface",
      "ModifyNetworkInterfaceAttribute",
    ]);
    expect(ec2.secondaryCount()).toBe(45);
  });

  test("resync() waits for the reconciliation under way", async () => {
    const ec2 = new MemoryEc2({ instanceType: "m5.4xlarge" });
    const pool = await open(ec2, { preAllocate: 0 });
    const allocations = Promise.all(Array.from({ length: 5 }, () => pool.allocate()));
    await pool.resync();
    expect(pool.status()).toMatchObject({ used: 5, total: 5 });
    expect(new Set((await allocations).map((a) => a.ip)).size).toBe(5);
  });

  test("parallel allocate() calls past the limit: the first ones succeed, the rest throw PoolExhaustedError", async () => {
    const ec2 = new MemoryEc2();
    const pool = await open(ec2);
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => pool.allocate()));
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(27);
    expect(failed).toHaveLength(3);
    for (const f of failed) expect(f.reason).toBeInstanceOf(PoolExhaustedError);
    expect(results.slice(0, 27).every((r) => r.status === "fulfilled")).toBe(true);
  });

  test("500 parallel allocations cost the minimum of EC2 calls", async () => {
    const ec2 = new MemoryEc2({ instanceType: "m5.24xlarge", subnets: [{ id: "subnet-a", cidr: "10.0.0.0/20" }] });
    const pool = await open(ec2);
    const all = await Promise.all(Array.from({ length: 500 }, () => pool.allocate()));
    expect(new Set(all.map((a) => a.ip)).size).toBe(500);
    // 508 addresses: 49 on the primary ENI (1 assign), then 10 new ENIs
    // (create with the addresses + attach + modify).
    const stats = ec2.stats();
    expect(stats.byOperation).toEqual({
      DescribeInstances: 1,
      DescribeNetworkInterfaces: 1,
      DescribeSubnets: 1,
      AssignPrivateIpAddresses: 1,
      CreateNetworkInterface: 10,
      AttachNetworkInterface: 10,
      ModifyNetworkInterfaceAttribute: 10,
    });
    expect(stats.calls).toBe(34);
  });
});

describe("EniPool subnet selection", () => {
  const subnets = [
    { id: "subnet-a", cidr: "10.0.1.0/24" },
    { id: "subnet-tagged-small", cidr: "10.0.2.0/24", tags: { "kubernetes.io/role/cni": "1" }, availableIps: 20 },
    { id: "subnet-big", cidr: "10.0.16.0/20" },
    { id: "subnet-other-zone", cidr: "10.0.32.0/20", availabilityZone: "us-east-1b" },
    { id: "subnet-other-vpc", cidr: "10.1.0.0/16", vpcId: "vpc-2" },
  ];

  test("new ENIs go to a subnet with the wanted tags first", async () => {
    const ec2 = new MemoryEc2({ subnets });
    const pool = await open(ec2, {
      preAllocate: 0,
      firstInterfaceIndex: 1,
      subnetTags: { "kubernetes.io/role/cni": "1" },
    });
    const a = await pool.allocate();
    expect(a.subnetId).toBe("subnet-tagged-small");
    expect(a.subnetCidr).toBe("10.0.2.0/24");
    expect(a.routerIp).toBe("10.0.2.1");
  });

  test("new ENIs go to the subnet of the instance's VPC and zone with the most free addresses", async () => {
    const ec2 = new MemoryEc2({ subnets });
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1 });
    expect((await pool.allocate()).subnetId).toBe("subnet-big");
  });

  test("subnets without a free address are skipped, tagged or not", async () => {
    const ec2 = new MemoryEc2({
      subnets: subnets.map((s) => (s.id === "subnet-tagged-small" ? { ...s, availableIps: 0 } : s)),
    });
    const pool = await open(ec2, {
      preAllocate: 0,
      firstInterfaceIndex: 1,
      subnetTags: { "kubernetes.io/role/cni": "1" },
    });
    expect((await pool.allocate()).subnetId).toBe("subnet-big");
  });

  test("a subnet that turns out full moves the ENI to the next one", async () => {
    const ec2 = new MemoryEc2({ subnets });
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1 });
    ec2.fail("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet");
    expect((await pool.allocate()).subnetId).toBe("subnet-a");
  });

  test("allocate() throws NoSubnetError when no subnet has a free address, after describing them again", async () => {
    const ec2 = new MemoryEc2({
      subnets: [
        { id: "subnet-a", cidr: "10.0.1.0/24" },
        { id: "subnet-b", cidr: "10.0.2.0/24", availabilityZone: "us-east-1b" },
      ],
    });
    const pool = await open(ec2, { preAllocate: 0, firstInterfaceIndex: 1 });
    const hosts = ec2.subnets.get("subnet-a")!;
    hosts.cap = 0;
    ec2.fail("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet");
    const start = ec2.log.length;
    const err = await rejection(pool.allocate());
    expect(err).toBeInstanceOf(NoSubnetError);
    expect(err).toMatchObject({ vpcId: "vpc-1", availabilityZone: "us-east-1a" });
    expect((err as Error).message).toBe(
      'Cannot create an ENI for instance "i-0123456789abcdef0": no subnet of VPC "vpc-1" in zone "us-east-1a" has a free address',
    );
    expect(callsSince(ec2, start)).toEqual(["CreateNetworkInterface", "DescribeSubnets"]);
  });

  test("a subnet that fills up stops assignments on its ENIs and new ENIs go elsewhere", async () => {
    const ec2 = new MemoryEc2({
      subnets: [
        { id: "subnet-a", cidr: "10.0.1.0/24" },
        { id: "subnet-b", cidr: "10.0.2.0/24" },
      ],
    });
    const pool = await open(ec2, { preAllocate: 0 });
    ec2.fail("AssignPrivateIpAddresses", "InsufficientFreeAddressesInSubnet");
    const a = await pool.allocate();
    expect(a.subnetId).toBe("subnet-b");
    expect(a.deviceIndex).toBe(1);
  });
});
