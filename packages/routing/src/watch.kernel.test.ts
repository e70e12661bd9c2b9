import { beforeEach, describe, expect, test } from "vitest";
import { openRouting, type RoutingEvent, type RouteSpec, watchRouting } from "@dp/routing";
import { netns, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("watchRouting()", () => {
  test("lists existing objects, then reports link, address and route changes as they happen", async () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "w0", "type", "veth", "peer", "name", "w1"]);
    const stop = new AbortController();
    const events: RoutingEvent[] = [];
    const watching = (async () => {
      for await (const ev of watchRouting({ netns: ns.ns, listExisting: true, signal: stop.signal })) {
        events.push(ev);
        if (ev.type === "route" && ev.action === "delete" && ev.route.dst === "10.9.0.0/24") stop.abort();
      }
    })();
    await sleep(50);
    using rt = openRouting({ netns: ns.ns });
    rt.links.set("w0", { up: true });
    rt.addresses.add("10.8.0.1/24", { dev: "w0" });
    rt.routes.add({ dst: "10.9.0.0/24", via: "10.8.0.2" });
    rt.routes.delete({ dst: "10.9.0.0/24", via: "10.8.0.2" });
    await watching;

    const synced = events.findIndex((e) => e.type === "synced");
    expect(synced).toBeGreaterThan(0);
    const listed = events.slice(0, synced);
    expect(listed.every((e) => e.type !== "synced" && e.type !== "resync" && e.existing)).toBe(true);
    expect(listed.some((e) => e.type === "link" && e.link.name === "w1")).toBe(true);
    const live = events.slice(synced + 1);
    expect(live.some((e) => e.type === "address" && e.action === "new" && e.address.address === "10.8.0.1/24")).toBe(true);
    const routeEvents = live.filter((e) => e.type === "route" && e.route.dst === "10.9.0.0/24");
    expect(routeEvents.map((e) => e.type === "route" && e.action)).toEqual(["new", "delete"]);
  });

  test("a stalled consumer during a flood of 20k route changes gets a resync with the full state, and the process lives", async () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "f0", "type", "veth", "peer", "name", "f1"]);
    ns.exec("ip", ["link", "set", "f0", "up"]);
    ns.exec("ip", ["addr", "add", "10.255.0.1/16", "dev", "f0"]);
    const stop = new AbortController();
    const it = watchRouting({ netns: ns.ns, kinds: ["route"], signal: stop.signal, receiveBufferSize: 64 * 1024 })[Symbol.asyncIterator]();
    // Start the watch (it joins the multicast group), then stall: nothing reads while the kernel sends 20k events.
    const first = it.next();
    await sleep(50);
    using rt = openRouting({ netns: ns.ns });
    const specs: RouteSpec[] = Array.from({ length: 20_000 }, (_, i) => ({
      dst: `10.${i >> 8}.${i & 0xff}.0/24`,
      via: "10.255.0.2",
      table: 100,
    }));
    rt.routes.addMany(specs);
    const seen: string[] = [];
    let listedAfterResync = 0;
    let inResync = false;
    for (let r = await first; !r.done; r = await it.next()) {
      const ev = r.value;
      seen.push(ev.type);
      if (ev.type === "resync") inResync = true;
      else if (ev.type === "synced" && inResync) break;
      else if (ev.type === "route" && inResync && ev.existing && ev.route.table === 100) listedAfterResync++;
    }
    stop.abort();
    await it.return?.(undefined);
    expect(seen).toContain("resync");
    expect(listedAfterResync).toBe(20_000);
    expect(process.exitCode ?? 0).toBe(0);
  });

  test("rejects unknown kinds", async () => {
    await expect(watchRouting({ kinds: ["links" as "link"] }).next()).rejects.toThrow(TypeError);
  });
});
