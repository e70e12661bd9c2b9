import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { EtcdConfigError } from "./config.ts";
import { type IpcacheEntry, openIpcacheSync } from "./ipcache.ts";
import { KvstoreError, type KvstoreStatus, openKvstore } from "./kvstore.ts";
import { openNodeRegistry } from "./nodes.ts";
import { PrefixMirror } from "./_mirror.ts";
import { startEtcd, startEtcdCluster } from "./testing/etcd.ts";

const FAST = { healthCheckInterval: 200, requestTimeout: 1000, leaseTtl: 2 };

async function until(what: string, fn: () => boolean | Promise<boolean>, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("openKvstore", () => {
  it("connects and revokes its lease on close", async () => {
    await using etcd = await startEtcd();
    const kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    assert.equal(kv.status.state, "connected");
    assert.equal(kv.nodeName, "a");
    await kv.putLeased("dp/test/k", "v");
    await using other = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    assert.equal(await other.client().get("dp/test/k").string(), "v");
    await kv.close();
    assert.equal(kv.status.state, "closed");
    assert.equal(await other.client().get("dp/test/k").string(), null);
    assert.throws(() => kv.client(), KvstoreError);
  });

  it("fails with a KvstoreError when no endpoint answers", async () => {
    await using etcd = await startEtcd();
    const url = etcd.endpoints[0] as string;
    await etcd.member.stop();
    await assert.rejects(
      openKvstore({ endpoints: [url] }, { nodeName: "a", connectTimeout: 1500, requestTimeout: 500 }),
      (err) => err instanceof KvstoreError && err.op === "connect to etcd" && err.message.includes(url),
    );
  });

  it("refuses bad configuration and options before connecting", async () => {
    await assert.rejects(openKvstore({ endpoints: ["127.0.0.1:2379"] }), EtcdConfigError);
    await assert.rejects(
      openKvstore({ endpoints: ["https://127.0.0.1:2379"], trustedCaFile: "/nonexistent/ca.pem" }, { nodeName: "a" }),
      (err) => err instanceof EtcdConfigError && err.field === "trusted-ca-file",
    );
    await assert.rejects(openKvstore({ endpoints: ["http://127.0.0.1:1"] }, { leaseTtl: 0 }), RangeError);
    await assert.rejects(openKvstore({ endpoints: ["http://127.0.0.1:1"] }, { nodeName: "a/b" }), TypeError);
  });

  it("reports unhealthy while etcd is stopped, then reconnects, resyncs and keeps its keys", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a", leaseTtl: 3 });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    const states: string[] = [];
    kvB.onStatus((s: KvstoreStatus) => states.push(s.state));
    await using nodesA = await openNodeRegistry(kvA);
    await using nodesB = await openNodeRegistry(kvB);
    const seen = new Map<string, IpcacheEntry>();
    await using ipB = await openIpcacheSync(kvB, {
      upsert: (p, e) => void seen.set(p, e),
      delete: (p) => void seen.delete(p),
    });
    await using ipA = await openIpcacheSync(kvA, { upsert: () => undefined, delete: () => undefined });
    await nodesA.register({ name: "a", ipv4: "192.168.1.10", podCidrs: ["10.1.0.0/24"] });
    await ipA.publish("10.1.0.5", { identity: 256, hostIp: "192.168.1.10" });
    await until("b sees a", () => nodesB.get("a") !== undefined && seen.has("10.1.0.5/32"));

    await etcd.member.stop();
    await until("unhealthy", () => kvB.status.state === "unhealthy");
    assert.match(kvB.status.reason ?? "", /does not answer/);
    // The last known state stays while etcd is away.
    assert.equal(nodesB.get("a")?.ipv4, "192.168.1.10");
    assert.equal(seen.get("10.1.0.5/32")?.identity, 256);

    await etcd.member.start();
    await until("connected", () => kvB.status.state === "connected");
    await until("b resynced", () => nodesB.resyncs.count >= 1 && ipB.resyncs.count >= 1);
    assert.deepEqual(states.slice(0, 2), ["unhealthy", "connected"]);
    await until("a's keys are there", async () => {
      const node = await kvB.client().get("dp/state/nodes/v1/default/a").string();
      const ip = await kvB.client().get("dp/state/ip/v1/default/10.1.0.5/32").string();
      return node !== null && ip !== null;
    });
    assert.equal(nodesB.get("a")?.ipv4, "192.168.1.10");
    assert.equal(seen.get("10.1.0.5/32")?.identity, 256);
    // Changes flow again.
    await ipA.publish("10.1.0.6", { identity: 257 });
    await ipB.settled(() => seen.get("10.1.0.6/32")?.identity === 257);
  });

  it("puts its keys again under a new lease when the lease is lost", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using nodesA = await openNodeRegistry(kvA);
    await using nodesB = await openNodeRegistry(kvB);
    const events: string[] = [];
    nodesB.subscribe((ev) => events.push(`${ev.type} ${ev.node.name}`), { replay: false });
    await nodesA.register({ name: "a", ipv4: "192.168.1.10" });
    await until("join", () => events.includes("join a"));
    const lease = await kvA.leaseId();
    // Revoke a's lease behind its back (as etcd does when the TTL runs out).
    const res = await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, {
      method: "POST",
      body: JSON.stringify({ ID: lease }),
    });
    assert.equal(res.status, 200);
    await until("leave", () => events.includes("leave a"));
    await until("join again", () => events.filter((e) => e === "join a").length === 2);
    assert.notEqual(await kvA.leaseId(), lease);
    assert.equal(nodesB.get("a")?.ipv4, "192.168.1.10");
  });

  it("retries the lease with a backoff while etcd is down and puts its keys again after", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a", leaseTtl: 1 });
    await using other = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b", leaseTtl: 30 });
    const client = kv.client() as unknown as { lease: (...a: unknown[]) => unknown };
    let leases = 0;
    const lease = client.lease.bind(client);
    client.lease = (...a: unknown[]) => {
      leases++;
      return lease(...a);
    };
    await kv.putLeased("dp/test/renew", "v");
    await etcd.member.stop();
    const before = leases;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 100);
    try {
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      clearInterval(timer);
    }
    // A backoff, not a tight loop: a handful of grants, and the event loop stays free.
    assert.ok(leases - before <= 15, `${leases - before} leases granted while etcd was down`);
    assert.ok(ticks >= 20, `a 100 ms timer fired only ${ticks} times in 3 s`);
    await etcd.member.start();
    // The other client's own requests may fail while it reconnects (its circuit breaker opens): ask again.
    await until("the key is back", async () => {
      try {
        return (await other.client().get("dp/test/renew").string()) === "v";
      } catch {
        return false;
      }
    });
  });

  it("forgets a key whose put failed, so a renewal does not bring it back", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a", requestTimeout: 500 });
    await kv.putLeased("dp/test/kept", "v");
    await etcd.member.stop();
    await assert.rejects(
      kv.putLeased("dp/test/failed", "v"),
      (err) => err instanceof KvstoreError && err.key === "dp/test/failed",
    );
    await etcd.member.start();
    await using other = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    const lease = await kv.leaseId();
    await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, { method: "POST", body: JSON.stringify({ ID: lease }) });
    await until("renewed", async () => (await other.client().get("dp/test/kept").string()) === "v");
    assert.equal(await other.client().get("dp/test/failed").string(), null);
  });

  it("keeps the watch when two resyncs overlap", async () => {
    await using etcd = await startEtcd();
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "b" });
    await using nodesA = await openNodeRegistry(kvA);
    for (let i = 0; i < 3; i++) {
      await using nodesB = await openNodeRegistry(kvB);
      const first = nodesB.resync();
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      const second = nodesB.resync();
      await Promise.all([first, second]);
      await nodesA.register({ name: `n${i}` });
      await until(`b sees n${i}`, () => nodesB.get(`n${i}`) !== undefined, 5000);
    }
  });

  it("keeps working when one member of three is killed", async () => {
    await using etcd = await startEtcdCluster(3);
    // The default request timeout (5 s) covers a leader election (about 1 s here).
    const opts = { ...FAST, requestTimeout: 5000 };
    await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { ...opts, nodeName: "a" });
    await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { ...opts, nodeName: "b" });
    await using nodesB = await openNodeRegistry(kvB);
    await using nodesA = await openNodeRegistry(kvA);
    await nodesA.register({ name: "a" });
    const unhealthy: string[] = [];
    kvA.onStatus((s) => unhealthy.push(s.state));
    // Kill the leader: the hardest member to lose.
    let leader = etcd.members[0]!;
    for (const m of etcd.members) {
      const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: "POST", body: "{}" });
      const st = (await res.json()) as { header: { member_id: string }; leader: string };
      if (st.leader === st.header.member_id) leader = m;
    }
    await leader.stop("SIGKILL");
    await nodesA.register({ name: "a", ipv4: "192.168.1.10" });
    await until("b sees the update", () => nodesB.get("a")?.ipv4 === "192.168.1.10");
    assert.equal((await kvA.checkHealth()).state, "connected");
    assert.equal(unhealthy.length, 0, "no status change");
  });
});

describe("watch resync", () => {
  it("lists again after the watch's revision was compacted and reports only the difference", async () => {
    await using etcd = await startEtcd();
    await using kv = await openKvstore({ endpoints: etcd.endpoints }, { ...FAST, nodeName: "a" });
    const c = kv.client();
    await c.put("dp/t/keep").value("1").exec();
    await c.put("dp/t/change").value("1").exec();
    await c.put("dp/t/gone").value("1").exec();
    const log: string[] = [];
    let first = true;
    const mirror = new PrefixMirror(kv, "dp/t/", {
      upsert: (k, v, prev) => log.push(`upsert ${k}=${v}${prev === undefined ? "" : ` (was ${prev})`}`),
      delete: (k) => log.push(`delete ${k}`),
      synced: (resync) => log.push(resync ? "resynced" : "synced"),
      // Between the first list and its watch: change the prefix and compact
      // past the list's revision, so the watch is refused.
      beforeWatch: async () => {
        if (!first) return;
        first = false;
        await c.put("dp/t/change").value("2").exec();
        await c.delete().key("dp/t/gone").exec();
        await c.put("dp/t/new").value("1").exec();
        await etcd.compact();
      },
    });
    try {
      await mirror.start();
      await until("resync", () => mirror.stats.resyncs === 1);
      assert.match(mirror.stats.lastResyncReason ?? "", /compacted/);
      assert.deepEqual(log, [
        "upsert dp/t/change=1",
        "upsert dp/t/gone=1",
        "upsert dp/t/keep=1",
        "synced",
        "upsert dp/t/change=2 (was 1)",
        "upsert dp/t/new=1",
        "delete dp/t/gone",
        "resynced",
      ]);
      await c.put("dp/t/after").value("1").exec();
      await until("watch works", () => log.includes("upsert dp/t/after=1"));
    } finally {
      await mirror.close();
    }
  });
});
