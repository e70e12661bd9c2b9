// The agent with `kvstore: etcd` against a real etcd (@dp/kvstore/testing):
// its node in the registry, endpoint identities allocated in etcd and seen
// by another node's allocator, the status through an etcd outage, the lease
// revoked on close, and an unreachable etcd refused at start.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test, vi } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { createKvstoreIdentityAllocator, KvstoreError, openKvstore, openNodeRegistry } from "@dp/kvstore";
import { startEtcd } from "@dp/kvstore/testing";
import { ApiClient } from "../api/client.ts";
import { formatStatus } from "../cli/_format.ts";
import { AgentTestbed } from "./_test_agent.ts";
import { startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

beforeEach((t) => requireRoot(t));

const quiet = createLogger({ stream: { write: () => true } });

describe("startAgent() with kvstore etcd", () => {
  test("registers the node, allocates endpoint identities in etcd, reports etcd's health and leaves on close", async () => {
    await using etcd = await startEtcd();
    using bed = new AgentTestbed(1);
    const etcdConfig = `endpoints:\n- ${etcd.endpoints[0]}\n`;
    const agent = await startAgent(
      bed.config({
        kvstore: "etcd",
        "etcd-config": etcdConfig,
        "identity-allocation-mode": "kvstore",
        "node-name": "dpt-node-a",
      }),
      { logger: quiet },
    );
    // Another node of the cluster, watching the same etcd.
    await using other = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "dpt-node-b" });
    await using nodes = await openNodeRegistry(other);
    await nodes.register({ name: "dpt-node-b", podCidrs: ["10.201.0.0/16"] });
    await using identities = await createKvstoreIdentityAllocator(other, { gcInterval: 0 });
    let closed = false;
    try {
      const client = new ApiClient({ socketPath: agent.socketPath });
      const ep = await client.createEndpoint({ netns: bed.pods[0]!.name, labels: ["k8s:app=web"] });

      // The other node sees this node's record, with its pod ranges and cluster.
      await vi.waitFor(() => expect(nodes.get("dpt-node-a")).toBeDefined(), { timeout: 5000 });
      expect(nodes.get("dpt-node-a")).toMatchObject({
        cluster: { name: "default", id: 0 },
        podCidrs: ["10.200.0.0/16", "fd10::/112"],
      });

      // The endpoint's identity lives in etcd: the other node gets the same number for the same labels.
      const mine = (await client.identities()).find((i) => i.id === ep.identity);
      expect(mine).toBeDefined();
      expect((await identities.lookup(ep.identity))?.labels.toStrings()).toEqual(mine?.labels);
      expect((await identities.allocate(mine?.labels ?? [])).id).toBe(ep.identity);

      // The status: connected, the endpoints, the nodes the registry holds (both).
      await vi.waitFor(() => expect(agent.status().kvstore.nodes).toBe(2), { timeout: 5000 });
      const status = (await client.status()).kvstore;
      expect(status).toMatchObject({
        state: "connected",
        endpoints: etcd.endpoints,
        node: "dpt-node-a",
        nodes: 2,
        identityAllocation: "kvstore",
      });
      expect(formatStatus(await client.status(), false)).toContain(
        `KVStore:       Ok   etcd: 1/1 connected (endpoints ${etcd.endpoints[0]}); 2 nodes; identities in the kvstore`,
      );

      // etcd stopped: unhealthy with the reason; the datapath keeps its endpoint.
      await etcd.member.stop();
      await vi.waitFor(() => expect(agent.status().kvstore.state).toBe("unhealthy"), {
        timeout: 20_000,
        interval: 200,
      });
      expect(formatStatus(agent.status(), false)).toMatch(/KVStore: +Unhealthy: \S/);
      expect(agent.node.endpoints().map((e) => e.id)).toEqual([ep.id]);

      // etcd back: connected again; then close revokes the lease and the node leaves.
      await etcd.member.start();
      await vi.waitFor(() => expect(agent.status().kvstore.state).toBe("connected"), {
        timeout: 20_000,
        interval: 200,
      });
      await vi.waitFor(() => expect(nodes.get("dpt-node-a")).toBeDefined(), { timeout: 10_000 });
      await agent.close({ teardown: true });
      closed = true;
      await vi.waitFor(() => expect(nodes.get("dpt-node-a")).toBeUndefined(), { timeout: 10_000 });
    } finally {
      if (!closed) await agent.close({ teardown: true });
    }
  }, 90_000);

  test("without identity-allocation-mode kvstore, identities stay on the node; the node's IPs come from the uplink", async () => {
    await using etcd = await startEtcd();
    using bed = new AgentTestbed(0);
    bed.node.exec("ip", ["link", "add", "up0", "type", "veth", "peer", "name", "up0p"]);
    bed.node.exec("ip", ["link", "set", "up0p", "up"]);
    bed.node.exec("ip", ["addr", "add", "192.168.77.10/24", "dev", "up0"]);
    bed.node.exec("ip", ["-6", "addr", "add", "fd77::10/64", "dev", "up0", "nodad"]);
    bed.node.exec("ip", ["link", "set", "up0", "up"]);
    const agent = await startAgent(
      bed.config({
        kvstore: "etcd",
        "etcd-config": `endpoints: [${etcd.endpoints[0]}]`,
        "node-name": "dpt-node-c",
        devices: "up0",
      }),
      { logger: quiet },
    );
    try {
      expect(agent.status().kvstore).toMatchObject({ state: "connected", nodes: 1, identityAllocation: "node" });
      expect(agent.status().kvstore.message).toContain("identities on the node");
      await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "dpt-observer" });
      await using nodes = await openNodeRegistry(kv);
      expect(nodes.get("dpt-node-c")).toMatchObject({ ipv4: "192.168.77.10", ipv6: "fd77::10" });
    } finally {
      await agent.close({ teardown: true });
    }
  }, 30_000);

  test("a restarted agent adopts its endpoint with the same identity from etcd and registers again", async () => {
    await using etcd = await startEtcd();
    using bed = new AgentTestbed(1);
    const config = bed.config({
      kvstore: "etcd",
      "etcd-config": `endpoints: [${etcd.endpoints[0]}]`,
      "identity-allocation-mode": "kvstore",
      "node-name": "dpt-node-d",
    });
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "dpt-observer" });
    await using nodes = await openNodeRegistry(kv);
    const first = await startAgent(config, { logger: quiet });
    let id: number;
    try {
      const client = new ApiClient({ socketPath: first.socketPath });
      id = (await client.createEndpoint({ netns: bed.pods[0]!.name, labels: ["k8s:app=db"] })).identity;
    } finally {
      await first.close({ teardown: false });
    }
    await vi.waitFor(() => expect(nodes.get("dpt-node-d")).toBeUndefined(), { timeout: 10_000 });
    const second = await startAgent(config, { logger: quiet });
    try {
      expect(second.node.endpoints().map((e) => e.identity)).toEqual([id]);
      await vi.waitFor(() => expect(nodes.get("dpt-node-d")).toBeDefined(), { timeout: 10_000 });
      expect(second.status().kvstore.state).toBe("connected");
    } finally {
      await second.close({ teardown: true });
    }
  }, 60_000);

  test("an etcd that does not answer is a KvstoreError naming the endpoint, before the node is opened", async () => {
    using bed = new AgentTestbed(0);
    const config = bed.config({ kvstore: "etcd", "etcd-config": "endpoints: [http://127.0.0.1:9]" });
    const err: unknown = await startAgent(config, { logger: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvstoreError);
    expect((err as KvstoreError).op).toBe("connect to etcd");
    expect((err as Error).message).toContain("http://127.0.0.1:9");
    expect(existsSync(join(bed.bpf.path, "dp"))).toBe(false);
    expect(existsSync(bed.socketPath)).toBe(false);
  }, 30_000);
});
