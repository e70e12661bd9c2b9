// The ENI pool over the real AWS SDK against the local fake EC2 endpoint:
// the wire format, EC2's error codes and the rate limiter are all real.
import { describe, expect, test } from "vitest";
import { createEc2Api, Ec2Error, EniPoolError, openEniPool, PoolExhaustedError } from "@dp/eni";
import { type FakeEc2, startFakeEc2 } from "@dp/eni/testing";

const CREDENTIALS = { accessKeyId: "AKIDTEST", secretAccessKey: "test" };

/** A client with fast retries (the rate limiter is left at Cilium's defaults). */
function client(fake: FakeEc2): ReturnType<typeof createEc2Api> {
  return createEc2Api({
    endpoint: fake.endpoint,
    region: fake.region,
    credentials: CREDENTIALS,
    retry: { attempts: 6, baseDelayMs: 1, maxDelayMs: 5 },
  });
}

function enisOf(fake: FakeEc2): number {
  return fake.calls.filter((c) => c.action === "CreateNetworkInterface" && c.status === 200).length;
}

describe("EniPool over the AWS SDK and the fake EC2 endpoint", () => {
  test("allocates up to the instance limit, then fails with a clear error", async () => {
    // t3.micro: 2 ENIs x 2 IPv4 addresses: one secondary address per ENI.
    await using fake = await startFakeEc2({ instances: [{ type: "t3.micro" }] });
    using api = client(fake);
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
    const a = await pool.allocate("pod-a");
    const b = await pool.allocate("pod-b");
    expect(new Set([a.ip, b.ip]).size).toBe(2);
    expect(pool.status()).toMatchObject({ used: 2, free: 0, maxPods: 4 });
    const err = await pool.allocate("pod-c").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as Error).message).toMatch(/t3\.micro.*limit of 2 ENIs/);
    // The fake agrees: two ENIs, each with one secondary address.
    const enis = fake.state.networkInterfaces().filter((e) => e.attachment?.instanceId === fake.instanceId);
    expect(enis.map((e) => e.ips.length)).toEqual([2, 2]);
  });

  test("keeps pre-allocate addresses free, and resync releases the surplus above the watermark", async () => {
    await using fake = await startFakeEc2({ instances: [{ type: "m5.large" }] });
    using api = client(fake);
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 4, maxAboveWatermark: 0 });
    const used = await Promise.all([1, 2, 3].map((i) => pool.allocate(`pod-${i}`)));
    expect(pool.status().free).toBeGreaterThanOrEqual(4);
    for (const u of used) expect(pool.release(u.ip)).toBe(true);
    await pool.resync();
    // Nothing used: exactly pre-allocate addresses stay, the rest went back to EC2.
    expect(pool.status()).toMatchObject({ used: 0, free: 4 });
    const primary = fake.state.networkInterfaces().find((e) => e.attachment?.deviceIndex === 0);
    expect(primary?.ips.length).toBe(1 + 4);
    expect(fake.calls.some((c) => c.action === "UnassignPrivateIpAddresses" && c.status === 200)).toBe(true);
  });

  test("rolls back a new ENI whose attachment fails, leaving no ENI behind", async () => {
    // t3.micro's primary ENI has one slot; the second address needs a new ENI.
    await using fake = await startFakeEc2({ instances: [{ type: "t3.micro" }] });
    using api = client(fake);
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
    await pool.allocate("pod-a");
    fake.failNext("AttachNetworkInterface", "InvalidParameterValue", { message: "injected attach failure" });
    const err = await pool.allocate("pod-b").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EniPoolError);
    expect((err as EniPoolError).cause).toBeInstanceOf(Ec2Error);
    expect(((err as EniPoolError).cause as Ec2Error).code).toBe("InvalidParameterValue");
    expect(enisOf(fake)).toBe(1);
    expect(fake.calls.some((c) => c.action === "DeleteNetworkInterface" && c.status === 200)).toBe(true);
    // Only the primary ENI is left.
    expect(fake.state.networkInterfaces()).toHaveLength(1);
    // And the pool recovers: the next try attaches.
    const b = await pool.allocate("pod-b");
    expect(b.deviceIndex).toBe(1);
  });

  test("absorbs throttling with backoff: every call still succeeds", async () => {
    await using fake = await startFakeEc2({ instances: [{ type: "m5.xlarge" }] });
    using api = client(fake);
    fake.throttle({ every: 2 });
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
    const ips = await Promise.all(Array.from({ length: 30 }, (_, i) => pool.allocate(`pod-${i}`)));
    expect(new Set(ips.map((a) => a.ip)).size).toBe(30);
    const stats = api.stats();
    expect(stats.throttled).toBeGreaterThan(0);
    expect(fake.calls.filter((c) => c.errorCode === "RequestLimitExceeded").length).toBe(stats.throttled);
  });

  test("rebuilds from EC2 after a restart and never releases addresses in use", async () => {
    await using fake = await startFakeEc2({ instances: [{ type: "m5.large" }] });
    let inUse: string[];
    {
      using api = client(fake);
      const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
      inUse = (await Promise.all(Array.from({ length: 12 }, (_, i) => pool.allocate(`pod-${i}`)))).map((a) => a.ip);
    }
    // The agent restarts: nothing in memory, the kernel says which addresses pods use.
    using api = client(fake);
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0, maxAboveWatermark: 0, inUse });
    expect(pool.status().used).toBe(12);
    await pool.resync();
    const held = new Set(fake.state.networkInterfaces().flatMap((e) => e.ips));
    for (const ip of inUse) expect(held.has(ip)).toBe(true);
    const fresh = await pool.allocate("pod-new");
    expect(inUse).not.toContain(fresh.ip);
  });
});
