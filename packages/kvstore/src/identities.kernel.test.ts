import assert from "node:assert/strict";
import type { IdentityEvent } from "@dp/datapath";
import { describe, it } from "vitest";
import { createKvstoreIdentityAllocator } from "./identities.ts";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { KvstoreError, openKvstore } from "./kvstore.ts";
import { startChildNode } from "./_test_child.ts";
import { startEtcd } from "./testing/etcd.ts";

const FAST = { healthCheckInterval: 200, requestTimeout: 2000, leaseTtl: 3 };

async function until(what: string, fn: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("KvstoreIdentityAllocator", () => {
  it("gives two nodes allocating the same labels at once one identity", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using a = await createKvstoreIdentityAllocator(kvA, { gcInterval: 0 });
    await using b = await createKvstoreIdentityAllocator(kvB, { gcInterval: 0 });
    const sets = Array.from({ length: 20 }, (_, i) => [`k8s:app=app${i}`, "k8s:ns=x"]);
    const [ra, rb] = await Promise.all([
      Promise.all(sets.map((s) => a.allocate(s))),
      Promise.all([...sets].reverse().map((s) => b.allocate(s))),
    ]);
    rb.reverse();
    for (let i = 0; i < sets.length; i++) {
      assert.equal(ra[i]?.id, rb[i]?.id, `labels ${sets[i]?.join(",")}`);
      assert.equal(ra[i]?.labels.key, `k8s:app=app${i},k8s:ns=x`);
    }
    const ids = new Set(ra.map((x) => x.id));
    assert.equal(ids.size, 20, "distinct label sets got distinct identities");
    for (const id of ids) assert.ok(id >= 256 && id <= 65535);
    // Each node holds a reference to each identity.
    const refs = await kvA.client().getAll().prefix(`${KVSTORE_PREFIXES.identities}refs/`).keys();
    assert.equal(refs.length, 40);
    // Both mirrors converge on all 20.
    await until("b's copy", async () => (await b.list()).filter((x) => x.id >= 256).length === 20);
    assert.equal((await b.lookup(ra[0]!.id))?.labels.key, "k8s:app=app0,k8s:ns=x");
    assert.equal((await a.lookupByLabels(["k8s:ns=x", "k8s:app=app3"]))?.id, ra[3]?.id);
  });

  it("encodes the cluster ID in bits 16-23 and keeps reserved and CIDR identities local", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using alloc = await createKvstoreIdentityAllocator(kv, { clusterId: 5, gcInterval: 0 });
    const web = await alloc.allocate(["k8s:app=web"]);
    assert.equal(web.id, (5 << 16) | 256);
    assert.equal((await alloc.allocate(["reserved:host"])).id, 1);
    const net = await alloc.allocateCidr("10.0.0.0/8");
    assert.equal(net.id, 1 << 24);
    assert.equal(await alloc.release(net.id), true);
    await assert.rejects(alloc.allocate(["reserved:host", "k8s:app=x"]), TypeError);
    await assert.rejects(alloc.allocate([]), TypeError);
    await assert.rejects(alloc.allocate(["cidr:10.0.0.0/8"]), TypeError);
    await assert.rejects(alloc.release(300), RangeError);
    await assert.rejects(createKvstoreIdentityAllocator(kv, { clusterId: 256 }), RangeError);
  });

  it("counts references per node with leases and collects identities no node uses", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    const a = await createKvstoreIdentityAllocator(kvA, { gcInterval: 0 });
    await using b = await createKvstoreIdentityAllocator(kvB, { gcInterval: 0, gcGracePeriod: 0 });
    const events: string[] = [];
    b.subscribe((ev: IdentityEvent) => events.push(`${ev.type} ${ev.identity.id}`), { replay: false });

    const shared = await a.allocate(["k8s:app=shared"]);
    const onlyA = await a.allocate(["k8s:app=only-a"]);
    assert.equal((await b.allocate(["k8s:app=shared"])).id, shared.id);
    assert.equal((await b.allocate(["k8s:app=shared"])).id, shared.id);
    await until("b sees a's identities", () => events.includes(`add ${onlyA.id}`));
    assert.deepEqual(await b.runGc(), [], "every identity is referenced");

    // Node a dies: its lease goes, with its references.
    await a.close();
    await kvA.close();
    assert.deepEqual(await b.runGc(), [onlyA.id]);
    assert.ok(events.includes(`remove ${onlyA.id}`));
    assert.equal(await b.lookup(onlyA.id), undefined);

    // b still holds "shared" twice.
    assert.equal(await b.release(shared.id), false);
    assert.deepEqual(await b.runGc(), []);
    assert.equal(await b.release(shared.id), true);
    assert.deepEqual(await b.runGc(), [shared.id]);
    const left = await kvB.client().getAll().prefix(KVSTORE_PREFIXES.identities).keys();
    assert.deepEqual(left, []);
    // The number is free again.
    assert.equal((await b.allocate(["k8s:app=new"])).id, Math.min(shared.id, onlyA.id));
  });

  it("keeps an identity it holds that was collected meanwhile and creates it again under a new lease", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using a = await createKvstoreIdentityAllocator(kv, { gcInterval: 0 });
    const events: string[] = [];
    a.subscribe((ev: IdentityEvent) => events.push(`${ev.type} ${ev.identity.id}`), { replay: false });
    const held = await a.allocate(["k8s:app=held"]);
    const c = kv.client();
    const P = KVSTORE_PREFIXES.identities;
    const idKey = `${P}id/${held.id}`;
    const valueKey = `${P}value/k8s:app=held`;
    // Another node's collector removed it (as after an outage longer than the TTL)...
    await c.delete().key(idKey).exec();
    await c.delete().key(valueKey).exec();
    // Give the watch time to deliver the deletes.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(events, [`add ${held.id}`], "no remove for an identity this node holds");
    assert.equal((await a.lookup(held.id))?.labels.key, "k8s:app=held");
    // ...and the lease is lost: the renewal puts it back under the same number.
    const lease = await kv.leaseId();
    const res = await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, {
      method: "POST",
      body: JSON.stringify({ ID: lease }),
    });
    assert.equal(res.status, 200);
    await until("retaken", async () => (await c.get(valueKey).string()) === String(held.id));
    assert.equal(await c.get(idKey).string(), JSON.stringify(["k8s:app=held"]));
    assert.equal(await c.get(`${P}refs/${held.id}/a`).string(), "a");
    assert.deepEqual(a.conditions, []);
  });

  it("drops an identity it lost and allocates the labels again", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using a = await createKvstoreIdentityAllocator(kv, { gcInterval: 0 });
    const held = await a.allocate(["k8s:app=held"]);
    const c = kv.client();
    const P = KVSTORE_PREFIXES.identities;
    // Collected, and the number taken by other labels.
    await c.delete().key(`${P}value/k8s:app=held`).exec();
    await c
      .put(`${P}id/${held.id}`)
      .value(JSON.stringify(["k8s:app=other"]))
      .exec();
    await c.put(`${P}value/k8s:app=other`).value(String(held.id)).exec();
    const lease = await kv.leaseId();
    await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, { method: "POST", body: JSON.stringify({ ID: lease }) });
    await until("IdentityLost", () => a.conditions.some((x) => x.type === "IdentityLost"));
    const again = await a.allocate(["k8s:app=held"]);
    assert.notEqual(again.id, held.id);
    assert.equal(again.labels.key, "k8s:app=held");
    assert.equal(await c.get(`${P}refs/${again.id}/a`).string(), "a");
  });

  it("returns the labels it was asked for when etcd's number disagrees with its copy", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using a = await createKvstoreIdentityAllocator(kv, { gcInterval: 0 });
    const first = await a.allocate(["k8s:app=first"]);
    // value/<labels> names a number the local copy knows under other labels.
    await kv.client().put(`${KVSTORE_PREFIXES.identities}value/k8s:app=second`).value(String(first.id)).exec();
    const second = await a.allocate(["k8s:app=second"]);
    assert.equal(second.labels.key, "k8s:app=second");
  });

  it("names the key when etcd is unreachable", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a", requestTimeout: 500 });
    await using a = await createKvstoreIdentityAllocator(kv, { gcInterval: 0 });
    await etcd.member.stop();
    await assert.rejects(
      a.allocate(["k8s:app=down"]),
      (err) => err instanceof KvstoreError && err.key === `${KVSTORE_PREFIXES.identities}value/k8s:app=down`,
    );
  });

  it("frees the identities of a killed node once its lease expired", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using b = await createKvstoreIdentityAllocator(kv, { gcInterval: 0, gcGracePeriod: 0 });
    await using child = await startChildNode({
      endpoints: etcd.endpoints,
      nodeName: "a",
      leaseTtl: 2,
      identities: [["k8s:app=x"], ["k8s:app=y"]],
    });
    const [x, y] = child.identities;
    await until("b sees them", async () => (await b.lookup(y!)) !== undefined);
    assert.equal((await b.allocate(["k8s:app=y"])).id, y);
    assert.deepEqual(await b.runGc(), []);
    await child.kill();
    // Until the lease expires, a's references hold.
    assert.deepEqual(await b.runGc(), []);
    await until("a's references expired", async () => (await b.runGc()).length > 0);
    assert.equal(await b.lookup(x!), undefined);
    assert.equal((await b.lookup(y!))?.labels.key, "k8s:app=y", "b still uses y");
  });

  it("collects on its own every gcInterval", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using alloc = await createKvstoreIdentityAllocator(kv, { gcInterval: 100, gcGracePeriod: 0 });
    const removed: number[] = [];
    alloc.subscribe((ev) => ev.type === "remove" && removed.push(ev.identity.id), { replay: false });
    const x = await alloc.allocate(["k8s:app=x"]);
    await alloc.release(x.id);
    await until("collected", () => removed.includes(x.id));
    assert.equal(await alloc.lookup(x.id), undefined);
  });

  it("waits for the grace period before collecting", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using alloc = await createKvstoreIdentityAllocator(kv, { gcInterval: 0, gcGracePeriod: 300 });
    const x = await alloc.allocate(["k8s:app=x"]);
    await alloc.release(x.id);
    assert.deepEqual(await alloc.runGc(), [], "first seen unreferenced");
    // Taken again within the grace period: not collected.
    await alloc.allocate(["k8s:app=x"]);
    await new Promise((r) => setTimeout(r, 350));
    assert.deepEqual(await alloc.runGc(), []);
    await alloc.release(x.id);
    assert.deepEqual(await alloc.runGc(), []);
    await new Promise((r) => setTimeout(r, 350));
    assert.deepEqual(await alloc.runGc(), [x.id]);
  });

  it("resyncs its copy after etcd restarted", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using a = await createKvstoreIdentityAllocator(kvA, { gcInterval: 0 });
    await using b = await createKvstoreIdentityAllocator(kvB, { gcInterval: 0 });
    const x = await a.allocate(["k8s:app=x"]);
    await until("b sees x", async () => (await b.lookup(x.id)) !== undefined);
    // The watch is lost with etcd; b lists again when it is back.
    await etcd.member.stop();
    await etcd.member.start();
    await until("b resynced", () => b.resyncs.count >= 1);
    const y = await a.allocate(["k8s:app=y"]);
    await until("b sees y", async () => (await b.list()).some((i) => i.id === y.id));
  });
});
