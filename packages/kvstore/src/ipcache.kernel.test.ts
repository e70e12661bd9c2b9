import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { type IpcacheEntry, type IpcacheSink, openIpcacheSync } from "./ipcache.ts";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { openKvstore } from "./kvstore.ts";
import { startChildNode } from "./_test_child.ts";
import { startEtcd } from "./testing/etcd.ts";

const FAST = { healthCheckInterval: 200, requestTimeout: 2000, leaseTtl: 2 };

function recordingSink(): { sink: IpcacheSink; map: Map<string, IpcacheEntry>; log: string[] } {
  const map = new Map<string, IpcacheEntry>();
  const log: string[] = [];
  return {
    map,
    log,
    sink: {
      upsert: (p, e) => {
        map.set(p, e);
        log.push(`upsert ${p} ${e.identity}`);
      },
      delete: (p) => {
        map.delete(p);
        log.push(`delete ${p}`);
      },
    },
  };
}

describe("IpcacheSync", () => {
  it("publishes local entries and applies remote ones incrementally", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    const ra = recordingSink();
    const rb = recordingSink();
    await using a = await openIpcacheSync(kvA, ra.sink);
    await using b = await openIpcacheSync(kvB, rb.sink);
    assert.equal(await a.publish("10.1.0.5", { identity: 256, hostIp: "192.168.1.10", nodeId: 1 }), "10.1.0.5/32");
    await a.publish("fd01::5", { identity: 256, hostIp: "fd00::10" });
    await a.publish("192.168.1.10/32", { identity: 6 });
    await b.publish("10.2.0.5", { identity: 257, hostIp: "192.168.1.11" });
    await b.settled(() => rb.map.size === 3);
    assert.deepEqual(rb.map.get("10.1.0.5/32"), { identity: 256, hostIp: "192.168.1.10", nodeName: "a", nodeId: 1 });
    assert.equal(rb.map.get("fd01::5/128")?.hostIp, "fd00::10");
    await a.settled(() => ra.map.size === 1);
    assert.deepEqual([...ra.map.keys()], ["10.2.0.5/32"], "a node's own entries are not applied to its sink");
    assert.deepEqual(a.published().get("10.1.0.5/32")?.identity, 256);

    rb.log.length = 0;
    await a.publish("10.1.0.5", { identity: 300, hostIp: "192.168.1.10", nodeId: 1 });
    assert.equal(await a.unpublish("fd01::5"), true);
    assert.equal(await a.unpublish("fd01::6"), false);
    await b.settled(() => rb.log.length === 2);
    assert.deepEqual(rb.log, ["upsert 10.1.0.5/32 300", "delete fd01::5/128"]);

    await assert.rejects(a.publish("10.1.0.0/33", { identity: 1 }), SyntaxError);
    await assert.rejects(a.publish("10.1.0.1/24", { identity: 1 }), SyntaxError);
    await assert.rejects(a.publish("10.1.0.9", { identity: 0 }), RangeError);
    await assert.rejects(a.publish("10.1.0.9", { identity: 1, encryptKey: 16 }), RangeError);
  });

  it("does not delete or overwrite another node's entry for a prefix it published before", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using a = await openIpcacheSync(kvA, recordingSink().sink);
    await using b = await openIpcacheSync(kvB, recordingSink().sink);
    const key = `${KVSTORE_PREFIXES.ip}default/10.1.0.7/32`;
    await a.publish("10.1.0.7", { identity: 256 });
    await a.publish("10.1.0.8", { identity: 256 });
    // The address moved to node b.
    await b.publish("10.1.0.7", { identity: 300 });
    // a's lease is lost: its renewal leaves b's entry alone.
    const lease = await kvA.leaseId();
    await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, { method: "POST", body: JSON.stringify({ ID: lease }) });
    const c = kvB.client();
    const other = `${KVSTORE_PREFIXES.ip}default/10.1.0.8/32`;
    const deadline = Date.now() + 10_000;
    while ((await c.get(other).string()) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.notEqual(await c.get(other).string(), null, "a's other entry is back");
    assert.equal(JSON.parse((await c.get(key).string()) ?? "{}").nodeName, "b");
    // Nor does unpublishing it on a.
    assert.equal(await a.unpublish("10.1.0.7"), true);
    assert.equal(JSON.parse((await c.get(key).string()) ?? "{}").nodeName, "b");
  });

  it("drops a dead node's entries with its lease and applies only the difference on resync", async () => {
    await using etcd = await startEtcd();
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    const rb = recordingSink();
    await using b = await openIpcacheSync(kvB, rb.sink);
    const entries: Array<[string, { identity: number }]> = [];
    for (let i = 1; i <= 20; i++) entries.push([`10.1.0.${i}`, { identity: 256 + (i % 3) }]);
    await using a = await startChildNode({ endpoints: etcd.endpoints, nodeName: "a", leaseTtl: 2, ipcache: entries });
    await b.settled(() => rb.map.size === 20);

    rb.log.length = 0;
    await b.resync();
    assert.equal(rb.log.length, 0, "nothing changed");
    assert.equal(b.resyncs.count, 1);

    // An entry that does not parse is reported, not applied.
    const bad = `${KVSTORE_PREFIXES.ip}default/10.9.9.9/32`;
    await kvB.client().put(bad).value("{").exec();
    await b.settled(() => b.conditions.length === 1);
    assert.deepEqual(b.conditions[0]?.keys, [bad]);
    await kvB.client().delete().key(bad).exec();
    await b.settled(() => b.conditions.length === 0);

    // Node a is killed: its entries go with its lease.
    await a.kill();
    await b.settled(() => rb.map.size === 0, 15_000);
    assert.equal(rb.log.filter((l) => l.startsWith("delete")).length, 20);
  });
});
