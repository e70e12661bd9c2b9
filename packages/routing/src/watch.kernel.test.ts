import { pbkdf2 } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { NetlinkWriter, openNetlink } from "@dp/core";
import { IFLA, openFds, RTM, RTNLGRP, rawFd, reactorState, setSys, type Sys, sys } from "@dp/core/internal";
import { openRouting, type RoutingEvent, type RouteSpec, watchRouting } from "@dp/routing";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

let restore: Sys | undefined;
afterEach(() => {
  if (restore !== undefined) setSys(restore);
  restore = undefined;
});

/** Settles with `p`, or rejects when it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads events until `stop` says so (or the watch ends); returns them. */
async function collect(it: AsyncIterator<RoutingEvent>, stop: (ev: RoutingEvent) => boolean): Promise<RoutingEvent[]> {
  const out: RoutingEvent[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) {
    out.push(r.value);
    if (stop(r.value)) break;
  }
  return out;
}

function isLink(ev: RoutingEvent, name: string): boolean {
  return ev.type === "link" && ev.action === "new" && ev.link.name === name;
}

/** Starts a route flood of `n` routes in table 100 of `ns` (device f0 with 10.255.0.1/16). */
function flood(ns: TestNetns, n: number): void {
  ns.exec("ip", ["link", "add", "f0", "type", "veth", "peer", "name", "f1"]);
  ns.exec("ip", ["link", "set", "f0", "up"]);
  ns.exec("ip", ["addr", "add", "10.255.0.1/16", "dev", "f0"]);
  using rt = openRouting({ netns: ns.ns });
  rt.routes.addMany(
    Array.from({ length: n }, (_, i) => ({ dst: `10.${i >> 8}.${i & 0xff}.0/24`, via: "10.255.0.2", table: 100 })),
  );
}

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
    expect(listed.every((e) => e.type !== "synced" && e.type !== "resync" && e.type !== "error" && e.existing)).toBe(
      true,
    );
    expect(listed.some((e) => e.type === "link" && e.link.name === "w1")).toBe(true);
    const live = events.slice(synced + 1);
    expect(live.some((e) => e.type === "address" && e.action === "new" && e.address.address === "10.8.0.1/24")).toBe(
      true,
    );
    const routeEvents = live.filter((e) => e.type === "route" && e.route.dst === "10.9.0.0/24");
    expect(routeEvents.map((e) => e.type === "route" && e.action)).toEqual(["new", "delete"]);
  });

  test("a stalled consumer during a flood of 20k route changes gets a resync with the full state, and the process lives", async () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "f0", "type", "veth", "peer", "name", "f1"]);
    ns.exec("ip", ["link", "set", "f0", "up"]);
    ns.exec("ip", ["addr", "add", "10.255.0.1/16", "dev", "f0"]);
    const stop = new AbortController();
    const it = watchRouting({ netns: ns.ns, kinds: ["route"], signal: stop.signal, receiveBufferSize: 64 * 1024 })[
      Symbol.asyncIterator
    ]();
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

  test("ignores netlink messages that another socket sent to its groups (sender port id not 0)", async () => {
    using ns = netns();
    const it = watchRouting({ netns: ns.ns, kinds: ["link"] });
    const pending = collect(it, (ev) => ev.type === "link");
    await sleep(50);
    // A forged RTM_NEWLINK multicast to RTNLGRP_LINK from a user-space socket
    // (allowed with CAP_NET_ADMIN): its sender port id is the socket's, not 0.
    using forger = openNetlink("route", { netns: ns.ns });
    const w = new NetlinkWriter();
    w.begin(RTM.NEWLINK, 0, 1).u8(0).u8(0).u16(1).u32(4242).u32(0).u32(0);
    w.attrString(IFLA.IFNAME, "forged0");
    w.end();
    const to = new Uint8Array(12);
    new DataView(to.buffer).setUint16(0, 16, true);
    new DataView(to.buffer).setUint32(8, 1 << (RTNLGRP.LINK - 1), true);
    const bytes = w.bytes();
    expect(sys().sendto(rawFd(forger.fd), bytes, bytes.length, 0, to, 12)).toBe(bytes.length);
    await sleep(50);
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "bridge", name: "br-real" });
    const events = await within(pending, 5_000, "the first link event");
    await it.return();
    expect(events).toHaveLength(1);
    expect(events[0]?.type === "link" && events[0].link.name).toBe("br-real");
  });

  test("a malformed message or datagram becomes an error item and the watch goes on", async () => {
    using ns = netns();
    // Corrupt the first two link events the kernel sends: the first one's
    // message is cut short, the second datagram's header is broken.
    const real = sys();
    let corrupted = 0;
    restore = setSys({
      ...real,
      recvfrom(fd, buf, len, flags, addr, addrlen) {
        const n = real.recvfrom(fd, buf, len, flags, addr, addrlen);
        if (n < 16 || corrupted >= 2) return n;
        const dv = new DataView(buf.buffer, buf.byteOffset);
        if (dv.getUint16(4, true) !== RTM.NEWLINK || dv.getUint32(8, true) !== 0) return n;
        corrupted++;
        if (corrupted === 1) {
          dv.setUint32(0, 20, true);
          return 20;
        }
        dv.setUint32(0, n + 64, true);
        return n;
      },
    });
    const it = watchRouting({ netns: ns.ns, kinds: ["link"] });
    const pending = collect(it, (ev) => isLink(ev, "br-ok"));
    await sleep(50);
    using rt = openRouting({ netns: ns.ns });
    rt.links.add({ kind: "bridge", name: "br-bad1" });
    rt.links.add({ kind: "bridge", name: "br-bad2" });
    rt.links.add({ kind: "bridge", name: "br-ok" });
    const events = await within(pending, 5_000, "the event of br-ok");
    await it.return();
    const errors = events.flatMap((e) => (e.type === "error" ? [e.error] : []));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(SyntaxError);
    expect(errors[0]?.message).toMatch(/^Cannot decode RTM_NEWLINK event: Invalid link message: 4 bytes/);
    expect(errors[1]).toBeInstanceOf(SyntaxError);
    expect(errors[1]?.message).toMatch(/^Invalid netlink message/);
    expect(events.at(-1)?.type === "link" && events.at(-1)).toMatchObject({ link: { name: "br-ok" } });
  });

  test("a signal that is already aborted yields nothing, even with listExisting, and leaves no socket open", async () => {
    using ns = netns();
    const before = openFds().length;
    const it = watchRouting({ netns: ns.ns, listExisting: true, signal: AbortSignal.abort() });
    const first = await it.next();
    expect(openFds().length).toBe(before);
    expect(first).toEqual({ done: true, value: undefined });
  });

  test("aborting during a resync ends the watch cleanly", async () => {
    using ns = netns();
    const stop = new AbortController();
    const it = watchRouting({ netns: ns.ns, kinds: ["route"], signal: stop.signal, receiveBufferSize: 64 * 1024 });
    const first = it.next();
    await sleep(50);
    flood(ns, 5_000);
    let resync = false;
    for (let r = await first; !r.done && !resync; r = await it.next()) resync = r.value.type === "resync";
    expect(resync).toBe(true);
    stop.abort();
    const after = await within(
      collect(it, () => false),
      5_000,
      "the end of the watch",
    );
    expect(after).toEqual([]);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  test("return() with a next() pending completes at once, and so does that next()", async () => {
    using ns = netns();
    const before = openFds().length;
    const it = watchRouting({ netns: ns.ns });
    const pending = it.next();
    await sleep(50);
    expect(openFds().length).toBe(before + 2);
    expect(await within(it.return(), 2_000, "return() with a pending next()")).toEqual({
      done: true,
      value: undefined,
    });
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(openFds().length).toBe(before);
  });

  test("64 idle watches take at most one thread: fs, dns and crypto stay prompt, and each watch wakes for its namespace", async () => {
    const WATCHES = 64;
    const namespaces: TestNetns[] = [];
    const watches: AsyncGenerator<RoutingEvent, void, undefined>[] = [];
    try {
      for (let i = 0; i < WATCHES; i++) namespaces.push(netns({ label: "w" }));
      for (const ns of namespaces) watches.push(watchRouting({ netns: ns.ns, kinds: ["link"] }));
      const firsts = watches.map((w) => w.next());
      await sleep(200);
      expect(reactorState()).toMatchObject({ waiting: WATCHES, armed: true });
      const self = fileURLToPath(import.meta.url);
      await within(
        Promise.all([
          ...Array.from({ length: 8 }, () => readFile(self)),
          ...Array.from({ length: 4 }, () => lookup("localhost")),
          ...Array.from({ length: 4 }, (_, i) => promisify(pbkdf2)("secret", `salt${i}`, 1000, 32, "sha256")),
        ]),
        5_000,
        "fs.readFile, dns.lookup and crypto.pbkdf2 with 64 idle watches",
      );
      namespaces.forEach((ns, i) => {
        using rt = openRouting({ netns: ns.ns });
        rt.links.add({ kind: "bridge", name: `br-w${i}` });
      });
      const got = await within(Promise.all(firsts), 5_000, "waking 64 watches");
      got.forEach((r, i) => expect(!r.done && r.value.type === "link" && r.value.link.name).toBe(`br-w${i}`));
    } finally {
      await Promise.all(watches.map((w) => w.return()));
      for (const ns of namespaces) ns.close();
    }
    expect(reactorState()).toMatchObject({ waiting: 0, armed: false });
  });
});
