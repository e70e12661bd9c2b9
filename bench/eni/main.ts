// bench/eni: allocate 500 pod IPs across ENIs through the rate limiter
// (Cilium's defaults: 4 calls/s, burst 20) with the real AWS SDK against the
// local fake EC2 endpoint, and compare the EC2 calls made with the fewest
// that can do the job.
import { cpus, release } from "node:os";
import { createEc2Api, instanceLimits, openEniPool } from "@dp/eni";
import { startFakeEc2 } from "@dp/eni/testing";

const IPS = 500;
const INSTANCE_TYPE = "m5.24xlarge";

/**
 * The fewest EC2 calls that can allocate `ips` addresses on an instance
 * whose primary ENI has `primaryRoom` free slots: DescribeInstances,
 * DescribeNetworkInterfaces and DescribeSubnets to learn the state; one
 * AssignPrivateIpAddresses for the primary ENI if it has room; per new ENI
 * CreateNetworkInterface (with its addresses), AttachNetworkInterface and
 * ModifyNetworkInterfaceAttribute (delete on termination).
 */
function minimumCalls(ips: number, primaryRoom: number, perEni: number): number {
  const describes = 3;
  const onPrimary = Math.min(ips, primaryRoom);
  const newEnis = Math.ceil((ips - onPrimary) / perEni);
  return describes + (onPrimary > 0 ? 1 : 0) + newEnis * 3;
}

/** Runs the benchmark and prints the summary line last. */
export async function main(): Promise<void> {
  const limits = instanceLimits(INSTANCE_TYPE);
  if (limits === undefined) throw new Error(`eni: no limits for ${INSTANCE_TYPE}`);
  await using fake = await startFakeEc2({
    vpcCidrs: ["10.0.0.0/16"],
    subnets: [{ cidr: "10.0.0.0/20" }],
    instances: [{ type: INSTANCE_TYPE }],
    instanceTypes: [limits],
  });
  using api = createEc2Api({
    endpoint: fake.endpoint,
    region: fake.region,
    credentials: { accessKeyId: "AKIDBENCH", secretAccessKey: "bench" },
  });
  const start = performance.now();
  const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
  const allocations = await Promise.all(Array.from({ length: IPS }, (_, i) => pool.allocate(`pod-${i}`)));
  const ms = performance.now() - start;

  const distinct = new Set(allocations.map((a) => a.ip));
  if (distinct.size !== IPS) throw new Error(`eni: ${distinct.size} distinct addresses for ${IPS} allocations`);
  const status = pool.status();
  const stats = api.stats();
  const perEni = limits.ipv4PerEni - 1;
  const min = minimumCalls(IPS, perEni, perEni);

  console.log(
    `eni: ${IPS} pod IPs on a ${INSTANCE_TYPE} (${limits.maxEnis} ENIs x ${limits.ipv4PerEni} IPv4), real AWS SDK against the local fake endpoint`,
  );
  console.log(
    `  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}; rate limit 4/s, burst 20`,
  );
  console.log(`  ENIs used: ${status.enis.length}; time ${(ms / 1000).toFixed(2)} s (the rate limiter sets the pace)`);
  for (const [op, n] of Object.entries(stats.byOperation).sort()) console.log(`  ${op.padEnd(34)} ${n}`);
  console.log(
    `  calls ${stats.calls} (throttled and retried: ${stats.throttled}); minimum ${min}: ${stats.calls <= min ? "met" : `${stats.calls - min} extra`}`,
  );
  console.log("");
  console.log(`eni calls=${stats.calls} min_calls=${min}`);
}
