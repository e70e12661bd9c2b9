// Restart recovery end to end: pod addresses come from the pool (real SDK,
// fake EC2), the datapath writes their rules into a namespace, the agent
// "restarts", and the new pool learns which addresses are in use from the
// kernel's rules: none of them is released.
import { beforeEach, expect, test } from "vitest";
import { createEc2Api, listEniPodIps, openEniPool, reconcileEniDatapath } from "@dp/eni";
import { startFakeEc2 } from "@dp/eni/testing";
import { openRouting } from "@dp/routing";
import { netns, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

test("a restarted pool rebuilds its in-use set from the kernel's rules and keeps those addresses", async () => {
  await using fake = await startFakeEc2({ instances: [{ type: "m5.large" }] });
  const options = {
    endpoint: fake.endpoint,
    region: fake.region,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test" },
    retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
  };
  using node = netns({ label: "eninode" });
  node.exec("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "vpc0"]);
  node.exec("ip", ["link", "set", "eth0", "up"]);
  const subnet = fake.state.subnets()[0];
  if (subnet === undefined) throw new Error("the fake has no subnet");
  const vpcCidrs = ["10.0.0.0/16"];

  let podIps: string[];
  {
    using api = createEc2Api(options);
    const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0 });
    const allocations = await Promise.all(["a", "b", "c"].map((p) => pool.allocate(`pod-${p}`)));
    podIps = allocations.map((a) => a.ip);
    using rt = openRouting({ netns: node.ns });
    reconcileEniDatapath(rt, {
      enis: [{ dev: "eth0", deviceIndex: 0, subnetCidr: subnet.cidr, vpcCidrs }],
      pods: podIps.map((ip) => ({ ip, eni: "eth0" })),
    });
  }

  // Restart: a new process knows nothing but EC2 and the kernel.
  using rt = openRouting({ netns: node.ns });
  const inUse = listEniPodIps(rt);
  expect([...inUse].sort()).toEqual([...podIps].sort());
  using api = createEc2Api(options);
  const pool = await openEniPool(api, { instance: fake.instanceId, preAllocate: 0, maxAboveWatermark: 0, inUse });
  await pool.resync();
  expect(pool.status().used).toBe(3);
  const held = new Set(fake.state.networkInterfaces().flatMap((e) => e.ips));
  for (const ip of podIps) expect(held.has(ip)).toBe(true);
  // The rules are still what the datapath wrote.
  const rules = JSON.parse(node.exec("ip", ["-json", "rule", "show"])) as { priority: number; dst?: string }[];
  expect(
    rules
      .filter((r) => r.priority === 20)
      .map((r) => r.dst)
      .sort(),
  ).toEqual([...podIps].sort());
});
