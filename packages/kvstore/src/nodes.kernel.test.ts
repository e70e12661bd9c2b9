import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { openKvstore } from "./kvstore.ts";
import { InvalidNodeError, type NodeEvent, openNodeRegistry } from "./nodes.ts";
import { startChildNode } from "./_test_child.ts";
import { startEtcd } from "./testing/etcd.ts";

const FAST = { healthCheckInterval: 200, requestTimeout: 2000, leaseTtl: 2 };

async function until(what: string, fn: () => boolean, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!fn()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("NodeRegistry", () => {
  it("sees other nodes join, update and leave when their lease expires", async () => {
    await using etcd = await startEtcd();
    await using kvW = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "watcher" });
    await using watcher = await openNodeRegistry(kvW);
    const events: string[] = [];
    watcher.subscribe((ev: NodeEvent) => events.push(`${ev.type} ${ev.node.name}`));

    const node = { name: "a", ipv4: "192.168.1.10", podCidrs: ["10.1.0.0/24"], encryption: { ipsecKeyIds: [3] } };
    await using child = await startChildNode({ endpoints: etcd.endpoints, nodeName: "a", leaseTtl: 2, node });
    await until("join", () => events.includes("join a"));
    assert.deepEqual(watcher.get("a")?.encryption?.ipsecKeyIds, [3]);
    // An update by another writer of the same record (a restarted agent).
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a", leaseTtl: 2 });
    await using a = await openNodeRegistry(kvA);
    await a.register({ ...node, encryption: { ipsecKeyIds: [4, 3] } });
    await until("update", () => events.includes("update a"));
    assert.deepEqual(watcher.get("a")?.encryption?.ipsecKeyIds, [4, 3]);
    await a.deregister("a");
    await until("leave", () => events.includes("leave a"));

    // A node that is killed: its keepalives stop and the lease expires after its TTL.
    await using childB = await startChildNode({
      endpoints: etcd.endpoints,
      nodeName: "b",
      leaseTtl: 2,
      node: { name: "b" },
    });
    await until("join b", () => events.includes("join b"));
    await childB.kill();
    const killed = Date.now();
    await until("leave b", () => events.includes("leave b"));
    assert.ok(Date.now() - killed >= 500, "left only when the lease ran out");
    assert.equal(watcher.get("b"), undefined);
    assert.deepEqual(events, ["join a", "update a", "leave a", "join b", "leave b"]);
    void child;
  });

  it("reports overlapping pod CIDRs naming both nodes, and invalid records naming the key", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using a = await openNodeRegistry(kvA);
    await using b = await openNodeRegistry(kvB);
    await a.register({ name: "a", podCidrs: ["10.1.0.0/16"] });
    await b.register({ name: "b", podCidrs: ["10.2.0.0/16", "fd00:b::/64"] });
    await until("both", () => a.list().length === 2);
    assert.equal(a.conditions.length, 0);
    await b.register({ name: "b", podCidrs: ["10.1.7.0/24"] });
    await until("overlap", () => a.conditions.length === 1);
    const c = a.conditions[0]!;
    assert.equal(c.type, "PodCidrOverlap");
    assert.deepEqual(c.nodes, ["a", "b"]);
    assert.equal(c.message, 'Pod CIDR 10.1.0.0/16 of node "a" overlaps 10.1.7.0/24 of node "b"');
    await b.register({ name: "b", podCidrs: ["10.2.0.0/16"] });
    await until("resolved", () => a.conditions.length === 0);

    const bad = `${KVSTORE_PREFIXES.nodes}default/c`;
    await kvA.client().put(bad).value('{"name":"c","podCidrs":["nope"]}').exec();
    await until("invalid", () => a.conditions.some((x) => x.type === "InvalidNodeRecord"));
    assert.deepEqual(a.conditions[0]?.keys, [bad]);
    assert.equal(a.get("c"), undefined);
    await kvA.client().delete().key(bad).exec();
    await until("gone", () => a.conditions.length === 0);

    await assert.rejects(a.register({ name: "x", cluster: { name: "other", id: 1 } }), InvalidNodeError);
    await assert.rejects(
      a.register({ name: "x", ipv4: "300.0.0.1" }),
      (e) => e instanceof InvalidNodeError && e.field === "ipv4",
    );
  });

  it("resyncs after a forced relist and after etcd restarts", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using a = await openNodeRegistry(kvA);
    await using b = await openNodeRegistry(kvB);
    await a.register({ name: "a" });
    await until("b sees a", () => b.get("a") !== undefined);
    const events: string[] = [];
    b.subscribe((ev) => events.push(`${ev.type} ${ev.node.name}`), { replay: false });
    await b.resync();
    assert.equal(events.length, 0, "a relist with no change reports nothing");
    assert.equal(b.resyncs.count, 1);
    await etcd.member.stop();
    await etcd.member.start();
    await until("resynced", () => b.resyncs.count >= 2);
    await a.register({ name: "a", ipv4: "192.168.1.10" });
    await until("update after restart", () => events.includes("update a"));
  });

  it("does not replay the watch events of its own older writes", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using reg = await openNodeRegistry(kv);
    const events: string[] = [];
    reg.subscribe((ev: NodeEvent) => events.push(`${ev.type} ${ev.node.ipv4 ?? "-"}`), { replay: false });
    await reg.register({ name: "a", ipv4: "192.168.1.1" });
    // Writes in flight together: the watch delivers each after some of them were applied.
    await Promise.all(Array.from({ length: 29 }, (_, i) => reg.register({ name: "a", ipv4: `192.168.1.${i + 2}` })));
    // Let the watch deliver every put.
    await new Promise((r) => setTimeout(r, 700));
    // Each record once, never back to an older one; the last is etcd's.
    assert.equal(new Set(events).size, events.length, events.join(", "));
    const stored = await kv.client().get(`${KVSTORE_PREFIXES.nodes}default/a`).json();
    assert.equal(reg.get("a")?.ipv4, (stored as { ipv4: string }).ipv4);
    assert.equal(events.at(-1), `update ${(stored as { ipv4: string }).ipv4}`);
  });
});
