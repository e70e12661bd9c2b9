import { readdirSync, readlinkSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot } from "@dp/core/testing";
import { openXfrm, watchXfrm, type XfrmEvent, type XfrmPolicySpec } from "@dp/ipsec";

beforeEach((t) => requireRoot(t));

/** The open descriptors of this process that are sockets, by number. */
function openFds(): string[] {
  return readdirSync("/proc/self/fd")
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:");
      } catch {
        return false; // the descriptor readdir itself used, closed since
      }
    })
    .sort();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const SEL4 = { src: "10.0.0.0/24", dst: "10.1.0.0/24" } as const;

describe("watchXfrm()", () => {
  test("lists the existing policies, then reports policy add, update, delete and flush", async () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    x.policies.add({ selector: { dst: "10.7.0.0/16" }, dir: "in" });
    const stop = new AbortController();
    const events: XfrmEvent[] = [];
    const watching = (async () => {
      for await (const ev of watchXfrm({ netns: ns.ns, listExisting: true, signal: stop.signal })) {
        events.push(ev);
        if (ev.type === "flush") stop.abort();
      }
    })();
    await sleep(50);
    const spec: XfrmPolicySpec = {
      selector: SEL4,
      dir: "out",
      mark: { value: 0xe00, mask: 0xf00 },
      templates: [{ src: "192.168.0.1", dst: "192.168.0.2", mode: "tunnel", reqid: 1 }],
    };
    x.policies.add(spec);
    x.policies.update({ ...spec, priority: 4 });
    x.policies.delete({ selector: SEL4, dir: "out", mark: { value: 0xe00, mask: 0xf00 } });
    ns.exec("ip", ["xfrm", "policy", "add", "src", "10.5.0.0/16", "dir", "fwd", "index", "10"]);
    ns.exec("ip", ["xfrm", "policy", "delete", "index", "10", "dir", "fwd"]);
    x.policies.flush();
    await watching;

    // The listing: the existing policy (no states here), then synced.
    expect(events.slice(0, 2)).toMatchObject([
      { type: "policy", action: "new", existing: true, policy: { selector: { dst: "10.7.0.0/16" } } },
      { type: "synced" },
    ]);
    const live = events.slice(2);
    expect(live.every((e) => e.type !== "policy" || !e.existing)).toBe(true);
    expect(live.map((e) => (e.type === "policy" ? `${e.action} ${e.policy.selector.src ?? "-"}` : e.type))).toEqual([
      "new 10.0.0.0/24",
      "update 10.0.0.0/24",
      "delete 10.0.0.0/24",
      "new 10.5.0.0/16",
      "delete 10.5.0.0/16",
      "flush",
    ]);
    const [added, updated, deleted] = live as Extract<XfrmEvent, { type: "policy" }>[];
    expect(added!.policy).toMatchObject({
      dir: "out",
      mark: { value: 0xe00, mask: 0xf00 },
      templates: [{ dst: "192.168.0.2", mode: "tunnel", reqid: 1 }],
    });
    expect(updated!.policy.priority).toBe(4);
    // A delete notification carries the whole policy, templates and mark included.
    expect(deleted!.policy).toMatchObject({
      priority: 4,
      mark: { value: 0xe00, mask: 0xf00 },
      templates: [{ reqid: 1 }],
    });
    expect((live[4] as Extract<XfrmEvent, { type: "policy" }>).policy.index).toBe(10);
    expect(live[5]).toEqual({ type: "flush", what: "policies", policyType: "main" });
  });

  test("a stalled consumer during 5000 policy adds gets a resync with every policy, and the process lives", async () => {
    using ns = netns();
    const stop = new AbortController();
    const it = watchXfrm({ netns: ns.ns, groups: ["policy"], signal: stop.signal, receiveBufferSize: 16 * 1024 });
    // Start the watch (it joins the group), then stall: nothing reads while the kernel sends 5000 events.
    const first = it.next();
    await sleep(50);
    using x = openXfrm({ netns: ns.ns });
    const specs = Array.from({ length: 5000 }, (_, i) => ({
      selector: { src: "10.0.0.0/16", dst: `10.${100 + (i >> 8)}.${i & 255}.0/24` },
      dir: "out" as const,
    }));
    x.policies.addMany(specs);
    const seen: string[] = [];
    let listed = 0;
    let synced = false;
    let inResync = false;
    for (let r = await first; !r.done; r = await it.next()) {
      const ev = r.value;
      seen.push(ev.type);
      if (ev.type === "resync") {
        inResync = true;
        listed = 0;
      } else if (ev.type === "policy" && inResync && ev.existing) listed++;
      else if (ev.type === "synced" && inResync) {
        synced = true;
        break;
      }
    }
    stop.abort();
    await it.return(undefined);
    expect(seen).toContain("resync");
    expect(seen).not.toContain("error");
    expect(synced).toBe(true);
    expect(listed).toBe(5000);
    expect(process.exitCode ?? 0).toBe(0);
  });

  test("reports soft and hard policy expiry and an acquire for traffic without a state", async () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.exec("ip", ["link", "set", "d0", "up"]);
    ns.exec("ip", ["link", "set", "d1", "up"]);
    ns.exec("ip", ["addr", "add", "10.9.0.1/24", "dev", "d0"]);
    const stop = new AbortController();
    const events: XfrmEvent[] = [];
    const watching = (async () => {
      for await (const ev of watchXfrm({ netns: ns.ns, groups: ["expire", "acquire"], signal: stop.signal })) {
        events.push(ev);
        if (ev.type === "policyExpire" && ev.hard) stop.abort();
      }
    })();
    await sleep(50);
    using x = openXfrm({ netns: ns.ns });
    x.policies.add({
      selector: { src: "10.9.0.1", dst: "10.9.0.2" },
      dir: "out",
      templates: [{ src: "10.9.0.1", dst: "10.9.0.2", reqid: 7, mode: "tunnel" }],
    });
    x.policies.add({
      selector: { src: "10.8.0.0/24" },
      dir: "in",
      lifetime: { softAddSeconds: 1n, hardAddSeconds: 2n },
    });
    try {
      // No state exists for the template: the kernel asks a key manager for one.
      ns.exec("ping", ["-c", "1", "-W", "1", "10.9.0.2"]);
    } catch {
      // the ping itself fails: nothing is encrypted without a state
    }
    await watching;
    const acquire = events.find((e) => e.type === "acquire");
    expect(acquire).toMatchObject({
      type: "acquire",
      family: 4,
      src: "10.9.0.1",
      dst: "10.9.0.2",
      proto: "esp",
      selector: { family: 4, src: "10.9.0.1/32", dst: "10.9.0.2/32" },
      policy: { dir: "out", selector: { dst: "10.9.0.2/32" }, templates: [{ reqid: 7, mode: "tunnel" }] },
    });
    const expiries = events.filter((e) => e.type === "policyExpire");
    expect(expiries.map((e) => e.type === "policyExpire" && [e.hard, e.policy.selector.src])).toEqual([
      [false, "10.8.0.0/24"],
      [true, "10.8.0.0/24"],
    ]);
    expect(x.policies.list({ dir: "in" })).toEqual([]);
  });

  test("rejects unknown groups", async () => {
    using ns = netns();
    const before = openFds();
    await expect(watchXfrm({ netns: ns.ns, groups: ["policies" as "policy"] }).next()).rejects.toThrow(
      /Invalid xfrm watch group "policies"/,
    );
    expect(openFds()).toEqual(before);
  });

  test("an aborted signal yields nothing and opens no socket", async () => {
    using ns = netns();
    const stop = new AbortController();
    stop.abort();
    const before = openFds();
    expect(await watchXfrm({ netns: ns.ns, signal: stop.signal }).next()).toEqual({ done: true, value: undefined });
    expect(openFds()).toEqual(before);
  });

  test("return() with a next() pending closes both sockets", async () => {
    using ns = netns();
    const before = openFds();
    const it = watchXfrm({ netns: ns.ns, groups: ["policy"] });
    const pending = it.next();
    await sleep(50);
    // The event socket and the listing socket are open while the watch waits.
    expect(openFds().length).toBe(before.length + 2);
    await it.return(undefined);
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(openFds()).toEqual(before);
  });

  test("aborting the signal closes both sockets, also while the consumer holds the iterator", async () => {
    using ns = netns();
    const before = openFds();
    const stop = new AbortController();
    const it = watchXfrm({ netns: ns.ns, listExisting: true, signal: stop.signal });
    // The consumer takes the first event (synced: nothing is installed) and then stops reading.
    expect((await it.next()).value).toEqual({ type: "synced" });
    expect(openFds().length).toBe(before.length + 2);
    stop.abort();
    expect(openFds()).toEqual(before);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });
});
