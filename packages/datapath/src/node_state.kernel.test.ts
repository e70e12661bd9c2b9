// What a node keeps on bpffs for a restart: the record store (JSON in a
// pinned map, chunked), and reopening after a pod went away meanwhile.
import { mkdirSync, readdirSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { createMap, MapCompatibilityError } from "@dp/core";
import { bpffsDir, requireRoot } from "@dp/core/testing";
import { openStateStore } from "./_state_store.ts";
import { NET, Topology } from "./_test_node.ts";
import { openNode } from "./node.ts";

beforeEach((t) => requireRoot(t));

describe("node state", () => {
  test("records survive reopening the store, split over chunks and shrunk again", () => {
    using dir = bpffsDir();
    const path = dir.join("state");
    const big = { labels: Array.from({ length: 800 }, (_, i) => `k8s:key${i}=value${i}`) };
    {
      const { store, existed } = openStateStore(path);
      expect(existed).toBe(false);
      store.set("ep/1", big);
      store.set("ep/2", { small: true });
      store.set("rules", []);
      store.close();
    }
    const { store, existed } = openStateStore(path);
    try {
      expect(existed).toBe(true);
      expect(store.get("ep/1")).toEqual(big);
      expect(store.names("ep/")).toEqual(["ep/1", "ep/2"]);
      store.set("ep/1", { shrunk: 1 });
      expect(store.get("ep/1")).toEqual({ shrunk: 1 });
      expect(store.delete("ep/2")).toBe(true);
      expect(store.delete("ep/2")).toBe(false);
      expect(store.get("ep/2")).toBeUndefined();
      expect(store.names("")).toEqual(["ep/1", "rules"]);
    } finally {
      store.close();
    }
  });

  test("a pod that went away while no process held the node is cleaned up at the next open", async () => {
    using topo = new Topology(2);
    const [p1, p2] = topo.pods as [typeof topo.node, typeof topo.node];
    const options = {
      stateDir: topo.stateDir,
      netns: topo.node.ns,
      hostRouting: "legacy",
      router: NET.router,
    } as const;
    const first = await openNode(options);
    await first.addEndpoint({ netns: p1.ns, ...NET.pods[0], labels: ["k8s:app=web"] });
    const gone = await first.addEndpoint({ netns: p2.ns, ...NET.pods[1], labels: ["k8s:app=db"] });
    first.close();
    p2.close(); // the namespace and with it the veth pair

    const node = await openNode(options);
    try {
      expect(node.endpoints().map((e) => e.id)).toEqual([1]);
      expect(node.status().adopted).toMatchObject({ endpoints: 1, attachments: 2 });
      const prefixes = node.ipcache.entries().map((e) => e.prefix);
      expect(prefixes).toContain(`${NET.pods[0].ipv4}/32`);
      expect(prefixes).not.toContain(`${NET.pods[1].ipv4}/32`);
      expect(prefixes).not.toContain(`${NET.pods[1].ipv6}/128`);
      expect(node.ipcache.get(NET.pods[1].ipv4)).toBe(2); // world, as any unknown address
      expect(node.datapath().policy.get(gone.id)).toBeUndefined();
      expect([...node.datapath().endpoints.values()].map((v) => v.id)).toEqual([1, 1]);
      expect(readdirSync(`${topo.stateDir}/ledger`).sort()).toEqual(["index", "link-ep1-egress", "link-ep1-ingress"]);
      expect(topo.ping(p1, NET.router.ipv4, 2)).toBe(true);
    } finally {
      await node.destroy();
    }
  });

  test("reopening in the other host routing mode swaps the programs in place and attaches or detaches the uplink", async () => {
    using topo = new Topology(2);
    const [p1, p2] = topo.pods as [typeof topo.node, typeof topo.node];
    const base = { stateDir: topo.stateDir, netns: topo.node.ns, router: NET.router, uplink: topo.uplink } as const;
    const legacy = await openNode({ ...base, hostRouting: "legacy" });
    await legacy.addEndpoint({ netns: p1.ns, ...NET.pods[0], labels: ["k8s:app=a"] });
    await legacy.addEndpoint({ netns: p2.ns, ...NET.pods[1], labels: ["k8s:app=b"] });
    const before = legacy.status().attachments;
    expect(before.map((a) => a.name)).toEqual(["ep1-egress", "ep1-ingress", "ep2-egress", "ep2-ingress"]);
    expect(topo.ping(p1, NET.pods[1].ipv4, 3)).toBe(true);
    legacy.close();

    const bpf = await openNode({ ...base, hostRouting: "bpf", trace: true });
    try {
      const after = bpf.status().attachments;
      expect(after.map((a) => a.name)).toEqual([
        "ep1-egress",
        "ep1-ingress",
        "ep2-egress",
        "ep2-ingress",
        "uplink-ingress",
      ]);
      // The same links, running the newly loaded programs.
      for (const a of before) expect(after.find((b) => b.name === a.name)?.programId).not.toBe(a.programId);
      bpf.datapath().events.drain();
      expect(topo.ping(p1, NET.pods[1].ipv4, 3)).toBe(true);
      // Delivered by bpf_redirect_peer now: trace point 2 (to an endpoint) seen at from_container, none to the stack.
      const traces = bpf
        .datapath()
        .events.drain()
        .filter((e) => e.type === 2);
      expect(traces.length).toBeGreaterThan(0);
      expect(traces.every((e) => e.reason === 2)).toBe(true);
    } finally {
      bpf.close();
    }
    const again = await openNode({ ...base, hostRouting: "legacy" });
    try {
      expect(again.status().attachments.map((a) => a.name)).not.toContain("uplink-ingress");
      expect(topo.ping(p2, NET.pods[0].ipv4, 3)).toBe(true);
    } finally {
      await again.destroy();
    }
  });

  test("a counters map pinned with another layout is replaced; any other map that does not fit fails the open", async () => {
    using topo = new Topology(1);
    const [p1] = topo.pods as [typeof topo.node];
    const options = {
      stateDir: topo.stateDir,
      netns: topo.node.ns,
      hostRouting: "legacy",
      router: NET.router,
    } as const;
    mkdirSync(topo.stateDir, { recursive: true });
    // dp_metrics as an older dp pinned it: a per-CPU hash keyed by {reason, direction}.
    using old = createMap({ name: "dp_metrics", type: "percpuHash", keySize: 4, valueSize: 16, maxEntries: 1024 });
    old.pin(`${topo.stateDir}/dp_metrics`);
    const node = await openNode(options);
    try {
      await node.addEndpoint({ netns: p1.ns, ...NET.pods[0], labels: ["k8s:app=web"] });
      expect(topo.ping(p1, NET.router.ipv4, 2)).toBe(true);
      const forwarded = node.counters().metrics.find((c) => c.reason === 0 && c.direction === "egress");
      expect(forwarded?.packets).toBeGreaterThan(0n);
    } finally {
      await node.destroy();
    }
    mkdirSync(topo.stateDir, { recursive: true });
    using wrong = createMap({ name: "dp_endpoints", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    wrong.pin(`${topo.stateDir}/dp_endpoints`);
    await expect(openNode(options)).rejects.toThrow(MapCompatibilityError);
  });
});
