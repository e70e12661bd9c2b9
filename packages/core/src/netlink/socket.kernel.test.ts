import { beforeEach, describe, expect, test } from "vitest";
import {
  attrString,
  NetlinkError,
  type NetlinkSocket,
  NetlinkWriter,
  NLM_F,
  openNetlink,
  parseNetlinkAttributes,
} from "@dp/core";
import { IFLA, RTA, RTM, RTNLGRP, rawFd, sys } from "@dp/core/internal";
import { netns, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const AF_INET = 2;
const RTPROT_BOOT = 3;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

/** Writes RTM_NEWROUTE for 10.x.y.0/24 dev `oif` (struct rtmsg + RTA_DST + RTA_OIF). */
function newRoute(
  w: NetlinkWriter,
  nl: NetlinkSocket,
  a: number,
  b: number,
  oif: number,
  dstLen = 24,
  ack = true,
): void {
  w.begin(RTM.NEWROUTE, NLM_F.REQUEST | (ack ? NLM_F.ACK : 0) | NLM_F.CREATE | NLM_F.EXCL, nl.nextSeq());
  w.u8(AF_INET).u8(dstLen).u8(0).u8(0).u8(254).u8(RTPROT_BOOT).u8(RT_SCOPE_LINK).u8(RTN_UNICAST).u32(0);
  w.attr(RTA.DST, new Uint8Array([10, a, b, 0]));
  w.attrU32(RTA.OIF, oif);
  w.end();
}

/** Creates veth b0/b1 with b0 up; returns b0's index. */
function upVeth(ns: ReturnType<typeof netns>): number {
  ns.exec("ip", ["link", "add", "b0", "type", "veth", "peer", "name", "b1"]);
  ns.exec("ip", ["link", "set", "b0", "up"]);
  return Number(JSON.parse(ns.exec("ip", ["-json", "link", "show", "b0"]))[0].ifindex);
}

function routeCount(ns: ReturnType<typeof netns>): number {
  return ns
    .exec("ip", ["route", "show"])
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("10.")).length;
}

describe("openNetlink()", () => {
  test("dumps only the namespace it was opened in", () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "nl0", "type", "veth", "peer", "name", "nl1"]);
    using nl = openNetlink("route", { netns: ns.ns });
    const w = nl.writer();
    w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, 0).zeros(16);
    w.end();
    const names = nl
      .dump(w, "list links", "RTM_GETLINK")
      .map((m) => attrString(parseNetlinkAttributes(m.payload.subarray(16)).find((a) => a.type === IFLA.IFNAME)!.data));
    expect(names.sort()).toEqual(["lo", "nl0", "nl1"]);
    // The same socket runs dump after dump.
    expect(nl.dump(w, "list links", "RTM_GETLINK")).toHaveLength(3);
  });

  test("opens xfrm and generic netlink sockets", () => {
    using ns = netns();
    using xfrm = openNetlink("xfrm", { netns: ns.ns });
    using generic = openNetlink("generic", { netns: ns.ns });
    expect([xfrm.protocol, generic.protocol]).toEqual([6, 16]);
    expect(() => openNetlink("nope" as "route")).toThrow(TypeError);
  });
});

describe("NetlinkSocket.request()", () => {
  test("surfaces the kernel's errno and extended-ack text in a NetlinkError", () => {
    using ns = netns();
    using nl = openNetlink("route", { netns: ns.ns });
    const w = nl.writer();
    newRoute(w, nl, 1, 1, 1, 8); // 10.1.1.0 is not a /8 network address
    try {
      nl.request(w, 'add route "10.1.1.0/8"', "RTM_NEWROUTE");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NetlinkError);
      const e = err as NetlinkError;
      expect(e).toMatchObject({
        name: "NetlinkError",
        syscall: "netlink",
        op: "RTM_NEWROUTE",
        code: "EINVAL",
        errno: 22,
      });
      expect(e.extAck).toBe("Invalid prefix for given prefix length");
      expect(e.message).toBe(
        'Cannot add route "10.1.1.0/8": EINVAL (invalid argument): Invalid prefix for given prefix length',
      );
    }
  });

  test("sends many requests in one datagram, acknowledged by the last one", () => {
    using ns = netns();
    const oif = upVeth(ns);
    using nl = openNetlink("route", { netns: ns.ns });
    const w = new NetlinkWriter();
    for (let i = 0; i < 500; i++) newRoute(w, nl, i >> 8, i & 0xff, oif, 24, i === 499);
    expect(w.count).toBe(500);
    expect(nl.request(w, "add 500 routes", "RTM_NEWROUTE")).toEqual([]);
    expect(routeCount(ns)).toBe(500);
  });

  test("a refused message in a batch is reported while the others are applied", () => {
    using ns = netns();
    const oif = upVeth(ns);
    using nl = openNetlink("route", { netns: ns.ns });
    const w = new NetlinkWriter();
    newRoute(w, nl, 0, 1, oif, 24, false);
    newRoute(w, nl, 0, 1, oif, 24, false); // duplicate: its error arrives before the final ACK
    newRoute(w, nl, 0, 2, oif);
    expect(() => nl.request(w, "add routes", "RTM_NEWROUTE")).toThrow(/EEXIST/);
    expect(routeCount(ns)).toBe(2);
  });
});

describe("NetlinkSocket.receive()", () => {
  test("delivers events without blocking the event loop and stops on abort", async () => {
    using ns = netns();
    using nl = openNetlink("route", { netns: ns.ns, groups: [RTNLGRP.LINK] });
    const stop = new AbortController();
    const seen: string[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const done = (async () => {
      for await (const r of nl.receive({ signal: stop.signal })) {
        if (r.kind !== "messages") continue;
        for (const m of r.messages) {
          const name = parseNetlinkAttributes(m.payload.subarray(16)).find((a) => a.type === IFLA.IFNAME);
          if (m.type === RTM.NEWLINK && name) seen.push(attrString(name.data));
        }
        if (seen.includes("ev0") && seen.includes("ev1")) stop.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    ns.exec("ip", ["link", "add", "ev0", "type", "veth", "peer", "name", "ev1"]);
    await done;
    clearInterval(timer);
    expect(seen).toEqual(expect.arrayContaining(["ev0", "ev1"]));
    expect(ticks).toBeGreaterThan(3);
  });

  test("abort ends a receive that is waiting with nothing to read", async () => {
    using ns = netns();
    using nl = openNetlink("route", { netns: ns.ns, groups: [RTNLGRP.LINK] });
    const stop = new AbortController();
    const it = nl.receive({ signal: stop.signal })[Symbol.asyncIterator]();
    const next = it.next();
    setTimeout(() => stop.abort(), 20);
    expect(await next).toEqual({ done: true, value: undefined });
  });

  test("reports a receive-buffer overflow as an overrun and keeps going", async () => {
    using ns = netns();
    const oif = upVeth(ns);
    using events = openNetlink("route", { netns: ns.ns, groups: [RTNLGRP.IPV4_ROUTE], receiveBufferSize: 4096 });
    using nl = openNetlink("route", { netns: ns.ns });
    const w = new NetlinkWriter();
    for (let i = 0; i < 2000; i++) newRoute(w, nl, i >> 8, i & 0xff, oif, 24, i === 1999);
    nl.request(w, "add routes", "RTM_NEWROUTE");
    const stop = new AbortController();
    const kinds: string[] = [];
    for await (const r of events.receive({ signal: stop.signal })) {
      kinds.push(r.kind);
      if (r.kind === "overrun") stop.abort();
    }
    expect(kinds).toContain("overrun");
  });

  test("drops datagrams another socket sent to its port id: only the kernel's reach the caller", async () => {
    using ns = netns();
    using nl = openNetlink("route", { netns: ns.ns, groups: [RTNLGRP.LINK] });
    const addr = new Uint8Array(12);
    expect(sys().getsockname(rawFd(nl.fd), addr, new Uint32Array([12]))).toBe(0);
    const port = new DataView(addr.buffer).getUint32(4, true);
    // A forged RTM_NEWLINK sent by another socket straight to this one's port id.
    using forger = openNetlink("route", { netns: ns.ns });
    const w = new NetlinkWriter();
    w.begin(RTM.NEWLINK, 0, 0).u8(0).u8(0).u16(1).u32(4242).u32(0).u32(0);
    w.attrString(IFLA.IFNAME, "forged0");
    w.end();
    const to = new Uint8Array(12);
    new DataView(to.buffer).setUint16(0, 16, true);
    new DataView(to.buffer).setUint32(4, port, true);
    const bytes = w.bytes();
    expect(sys().sendto(rawFd(forger.fd), bytes, bytes.length, 0, to, 12)).toBe(bytes.length);
    ns.exec("ip", ["link", "add", "real0", "type", "bridge"]);
    const stop = new AbortController();
    const names: string[] = [];
    for await (const r of nl.receive({ signal: stop.signal })) {
      if (r.kind !== "messages") continue;
      for (const m of r.messages) {
        const name = parseNetlinkAttributes(m.payload.subarray(16)).find((a) => a.type === IFLA.IFNAME);
        if (name) names.push(attrString(name.data));
      }
      stop.abort();
    }
    expect(names[0]).toBe("real0");
    expect(names).not.toContain("forged0");
  });
});
