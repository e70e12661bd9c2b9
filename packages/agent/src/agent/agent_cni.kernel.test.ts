// The agent API's additions for CNI plugins, over a real node in a test
// namespace: endpoints found and deleted by container id (idempotently),
// chained endpoints on a veth another plugin made (`existing`), and
// concurrent creates that never hand out one address twice.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { ApiClient } from "../api/client.ts";
import { AgentTestbed } from "./_test_agent.ts";
import { type Agent, startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

beforeEach((t) => requireRoot(t));

const quiet = createLogger({ stream: { write: () => true } });

async function withAgent(
  pods: number,
  fn: (bed: AgentTestbed, agent: Agent, client: ApiClient) => Promise<void>,
): Promise<void> {
  using bed = new AgentTestbed(pods);
  const agent = await startAgent(bed.config({ "enable-ipv6": "false" }), { logger: quiet });
  try {
    await fn(bed, agent, new ApiClient({ socketPath: agent.socketPath }));
  } finally {
    await agent.close({ teardown: true });
  }
}

describe("the agent API for CNI plugins", () => {
  test("endpoints are listed and deleted by container id; deleting twice or an unknown id succeeds", async () => {
    await withAgent(2, async (bed, agent, client) => {
      const [a, b] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0]];
      const epA = await client.createEndpoint({ netns: a.name, labels: ["k8s:app=a"], containerId: "cid-a" });
      const epB = await client.createEndpoint({ netns: b.name, labels: ["k8s:app=b"], containerId: "cid-b" });
      expect(epA.router).toEqual({ ipv4: agent.resolved.ipv4.router, ipv6: undefined });
      expect((await client.endpoints({ containerId: "cid-a" })).map((e) => e.id)).toEqual([epA.id]);
      expect(await client.endpoints({ containerId: "cid-x" })).toEqual([]);

      await client.deleteContainerEndpoints("cid-a");
      expect((await client.endpoints()).map((e) => e.containerId)).toEqual(["cid-b"]);
      expect(bed.node.exec("ip", ["-o", "link", "show"])).not.toContain(`${epA.hostIfname}@`);
      expect(a.exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
      await client.deleteContainerEndpoints("cid-a");
      await client.deleteContainerEndpoints("never-created");
      // The released address is free again: a given address that equals it is accepted.
      const again = await client.createEndpoint({ netns: a.name, labels: ["k8s:app=a"], ipv4: epA.ipv4 });
      expect(again.ipv4).toBe(epA.ipv4);
      expect(again.containerId).toBeUndefined();
      // The agent lost the endpoint (removed behind the container id's back): DEL by container id still succeeds.
      await client.deleteEndpoint(epB.id);
      await client.deleteContainerEndpoints("cid-b");
    });
  });

  test("existing: the endpoint takes over a veth another plugin made and leaves it when deleted", async () => {
    await withAgent(1, async (bed, _agent, client) => {
      const [pod] = bed.pods as [(typeof bed.pods)[0]];
      // What a bridge or ptp plugin would have done: a veth into the pod, an address and a route.
      bed.node.exec("ip", ["link", "add", "vchain0", "type", "veth", "peer", "name", "eth0", "netns", pod.name]);
      bed.node.exec("ip", ["link", "set", "vchain0", "up"]);
      pod.exec("ip", ["addr", "add", "10.99.0.5/24", "dev", "eth0"]);
      pod.exec("ip", ["link", "set", "eth0", "up"]);
      const ep = await client.createEndpoint({
        netns: pod.name,
        labels: ["k8s:app=chained"],
        ipv4: "10.99.0.5",
        containerId: "cid-chained",
        existing: true,
      });
      expect(ep).toMatchObject({
        hostIfname: "vchain0",
        ipv4: "10.99.0.5",
        existing: true,
        containerId: "cid-chained",
      });
      expect(ep.router).toBeUndefined();
      expect(ep.ipv6).toBeUndefined();
      await client.deleteContainerEndpoints("cid-chained");
      expect(await client.endpoints()).toEqual([]);
      expect(bed.node.exec("ip", ["-o", "link", "show", "vchain0"])).toContain("vchain0");
      expect(pod.exec("ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain("10.99.0.5/24");
      await expect(client.createEndpoint({ netns: pod.name, labels: [], existing: true })).rejects.toMatchObject({
        code: "bad-request",
        field: "ipv4",
      });
    });
  });

  test("20 concurrent creates get 20 distinct addresses; concurrent deletes free them all", async () => {
    await withAgent(20, async (bed, _agent, client) => {
      const eps = await Promise.all(
        bed.pods.map((pod, i) =>
          client.createEndpoint({ netns: pod.name, labels: ["k8s:app=many"], containerId: `cid-${i}` }),
        ),
      );
      expect(new Set(eps.map((e) => e.ipv4)).size).toBe(20);
      expect(new Set(eps.map((e) => e.id)).size).toBe(20);
      // Each pod has the address the API answered.
      bed.pods.forEach((pod, i) =>
        expect(pod.exec("ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain(`${eps[i]?.ipv4}/32`),
      );
      await Promise.all(eps.map((e) => client.deleteContainerEndpoints(e.containerId ?? "")));
      expect(await client.endpoints()).toEqual([]);
    });
  });
});
