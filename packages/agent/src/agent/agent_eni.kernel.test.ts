// ipam: eni in the agent, against the fake EC2 and IMDSv2 of
// @dp/eni/testing on loopback (the real AWS SDK talks to it): endpoints get
// secondary addresses of the instance's ENIs, the ENI datapath's FIB rules
// and tables appear in the node's namespace (`ip -json rule/route` is the
// oracle), two pods on different ENIs talk over real TCP, a deleted
// endpoint's rules go and its address is handed out again, and an agent
// restart hands out nothing twice.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { startFakeEc2 } from "@dp/eni/testing";
import { ApiClient } from "../api/client.ts";
import type { ApiEndpoint } from "../api/types.ts";
import { AgentTestbed } from "./_test_agent.ts";
import { startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

beforeEach((t) => requireRoot(t));

const quiet = createLogger({ stream: { write: () => true } });

// The SDK's default credential chain reads these (the fake accepts any).
const savedEnv = { id: process.env["AWS_ACCESS_KEY_ID"], secret: process.env["AWS_SECRET_ACCESS_KEY"] };
beforeAll(() => {
  process.env["AWS_ACCESS_KEY_ID"] = "test";
  process.env["AWS_SECRET_ACCESS_KEY"] = "test";
});
afterAll(() => {
  for (const [name, value] of [
    ["AWS_ACCESS_KEY_ID", savedEnv.id],
    ["AWS_SECRET_ACCESS_KEY", savedEnv.secret],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

interface IpRule {
  readonly priority: number;
  readonly src?: string;
  readonly srclen?: number;
  readonly dst?: string;
  readonly dstlen?: number;
  readonly table: string;
  readonly protocol?: string;
}

interface IpRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev: string;
  readonly scope?: string;
}

/** The ENI datapath's rules for one pod address, as `ip -json rule` shows them. */
function rulesOf(bed: AgentTestbed, ip: string): string[] {
  const rules = JSON.parse(bed.node.exec("ip", ["-json", "rule", "show"])) as IpRule[];
  return rules
    .filter((r) => r.src === ip || r.dst === ip)
    .map((r) =>
      r.dst === ip
        ? `${r.priority} to ${r.dst} lookup ${r.table}`
        : `${r.priority} from ${r.src} to ${r.dst}/${r.dstlen} lookup ${r.table}`,
    )
    .sort();
}

function routesOf(bed: AgentTestbed, table: number): string[] {
  const routes = JSON.parse(bed.node.exec("ip", ["-json", "route", "show", "table", String(table)])) as IpRoute[];
  return routes.map((r) => `${r.dst}${r.gateway === undefined ? "" : ` via ${r.gateway}`} dev ${r.dev}`).sort();
}

describe("ipam: eni", () => {
  test("endpoints get ENI addresses and FIB rules, pods on two ENIs talk, delete frees the address, a restart allocates nothing twice", async () => {
    // t3.small: 3 ENIs of 4 addresses (3 secondary), so the fourth pod needs a second ENI.
    await using fake = await startFakeEc2({ instances: [{ type: "t3.small" }] });
    using bed = new AgentTestbed(5);
    // The instance's interfaces as the node names them: veth pairs inside the node's namespace only.
    for (const n of [0, 1, 2]) {
      bed.node.exec("ip", ["link", "add", `eth${n}`, "type", "veth", "peer", "name", `vpc${n}`]);
      for (const dev of [`eth${n}`, `vpc${n}`]) bed.node.exec("ip", ["link", "set", dev, "up"]);
    }
    const config = bed.config({
      ipam: "eni",
      devices: "eth0",
      "ec2-api-endpoint": fake.endpoint,
      "eni-imds-endpoint": fake.imdsEndpoint,
      "eni-pre-allocate": "0",
    });
    const vpc = fake.state.vpc().cidrs[0];
    const instanceEnis = (): { ips: readonly string[]; deviceIndex: number }[] =>
      fake.state
        .networkInterfaces()
        .filter((n) => n.attachment?.instanceId === fake.instanceId)
        .map((n) => ({ ips: n.ips.filter((ip) => ip !== n.primaryIp), deviceIndex: n.attachment?.deviceIndex ?? -1 }));
    const deviceOf = (ip: string): number => instanceEnis().find((e) => e.ips.includes(ip))?.deviceIndex ?? -1;

    let agent = await startAgent(config, { logger: quiet });
    try {
      const client = new ApiClient({ socketPath: agent.socketPath });
      const status = await client.status();
      expect(status.unsupported.map((u) => u.key)).toEqual(["enable-ipv6"]);
      const eps: ApiEndpoint[] = [];
      for (const [i, ns] of bed.pods.slice(0, 4).entries())
        eps.push(await client.createEndpoint({ netns: ns.name, labels: [`k8s:app=pod${i}`], containerId: `c${i}` }));
      const [a, , , d] = eps as [ApiEndpoint, ApiEndpoint, ApiEndpoint, ApiEndpoint];

      // Addresses: secondary addresses of the instance's ENIs, three on eth0, the fourth on a new ENI; no IPv6.
      expect(eps.map((e) => deviceOf(e.ipv4))).toEqual([0, 0, 0, 1]);
      expect(new Set(eps.map((e) => e.ipv4)).size).toBe(4);
      expect(eps.map((e) => e.ipv6)).toEqual([undefined, undefined, undefined, undefined]);

      // The ENI datapath for each pod: rule 20 to the pod via main, rule 30 from the pod to the VPC via its ENI's table.
      for (const e of eps) {
        const table = 10 + deviceOf(e.ipv4);
        expect(rulesOf(bed, e.ipv4)).toEqual([
          `20 to ${e.ipv4} lookup main`,
          `30 from ${e.ipv4} to ${vpc} lookup ${table}`,
        ]);
      }
      expect(routesOf(bed, 10)).toEqual(["10.0.0.1 dev eth0", "default via 10.0.0.1 dev eth0"]);
      expect(routesOf(bed, 11)).toEqual(["10.0.0.1 dev eth1", "default via 10.0.0.1 dev eth1"]);

      // Real traffic between a pod of eth0 and a pod of eth1.
      const [nsA, , , nsD, nsE] = bed.pods as [
        (typeof bed.pods)[0],
        (typeof bed.pods)[0],
        (typeof bed.pods)[0],
        (typeof bed.pods)[0],
        (typeof bed.pods)[0],
      ];
      await bed.server(nsA, 8080);
      await bed.server(nsD, 8080);
      expect(await bed.tcp(nsD, a.ipv4, 8080)).toBe("ok 10000");
      expect(await bed.tcp(nsA, d.ipv4, 8080)).toBe("ok 10000");

      // Delete: the rules go; the address stays on its ENI in EC2, free in the pool, and is handed out next.
      await client.deleteEndpoint(a.id);
      expect(rulesOf(bed, a.ipv4)).toEqual([]);
      expect(instanceEnis().find((e) => e.deviceIndex === 0)?.ips).toContain(a.ipv4);
      const again = await client.createEndpoint({ netns: nsE.name, labels: ["k8s:app=again"] });
      expect(again.ipv4).toBe(a.ipv4);
      await client.deleteEndpoint(again.id);

      // Restart without teardown: the pool is rebuilt from EC2, the rules and the endpoints; nothing is handed out twice.
      await agent.close();
      expect(rulesOf(bed, d.ipv4)).toHaveLength(2);
      agent = await startAgent(config, { logger: quiet });
      const before = (await client.endpoints()).map((e) => e.ipv4);
      expect(before.sort()).toEqual(
        eps
          .slice(1)
          .map((e) => e.ipv4)
          .sort(),
      );
      const fresh: ApiEndpoint[] = [];
      for (const ns of [nsA, nsE])
        fresh.push(await client.createEndpoint({ netns: ns.name, labels: ["k8s:app=fresh"] }));
      const all = [...before, ...fresh.map((e) => e.ipv4)];
      expect(new Set(all).size).toBe(all.length);
      expect(fresh[0]?.ipv4).toBe(a.ipv4); // the one free address of eth0
      for (const e of fresh) expect(rulesOf(bed, e.ipv4)).toHaveLength(2);
      for (const ip of before) expect(rulesOf(bed, ip)).toHaveLength(2);
      expect(await bed.tcp(nsA, d.ipv4, 8080)).toBe("ok 10000");
    } finally {
      await agent.close({ teardown: true });
    }
    // Teardown removes the ENI datapath's rules and tables.
    expect(bed.node.exec("ip", ["rule", "show"])).not.toContain("proto 219");
    expect(routesOf(bed, 10)).toEqual([]);
  });
});
