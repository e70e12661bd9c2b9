import { describe, expect, test } from "vitest";
import { type BpfProgram, Fd, type NetlinkSocket, NetlinkWriter, parseCidr, parseNetlinkMessages } from "@dp/core";
import { RTM } from "@dp/core/internal";
import {
  decodeRoute,
  encodeRouteRequest,
  type Route,
  type RouteEncap,
  type RouteRequest,
  Routes,
  type RouteSpec,
} from "@dp/routing";
import { fixtureRequest, loadFixture, normalize, zeroPadding } from "./_test_fixtures.ts";
import { parsePrefix } from "./_check.ts";
import { encodeRouteDump } from "./routes.ts";

/** Routes on a socket that fails the test on any use: proves no request is sent. */
function offline(): Routes {
  const nl = new Proxy({} as NetlinkSocket, {
    get(_, name) {
      throw new Error(`unexpected use of the netlink socket: ${String(name)}`);
    },
  });
  return new Routes({ nl, netns: undefined });
}

function encode(request: RouteRequest): string {
  const w = new NetlinkWriter();
  encodeRouteRequest(w, request);
  return normalize(w.bytes());
}

// In the fixtures' namespace lo is 1, d1 is 2 and d0 (the veth end with 10.1.0.2/24) is 3.
const D0 = 3;

describe("encodeRouteRequest()", () => {
  const cases: [string, RouteRequest["op"], RouteSpec][] = [
    ["route_add_via", "add", { dst: "10.2.0.0/24", via: "10.1.0.1" }],
    ["route_add_dev", "add", { dst: "10.3.0.0/24", dev: D0 }],
    ["route_add_table_metric", "add", { dst: "10.4.0.0/24", via: "10.1.0.1", dev: D0, table: 100, metric: 50 }],
    ["route_add_table1000", "add", { dst: "10.7.0.0/24", dev: D0, table: 1000 }],
    ["route_add_blackhole", "add", { dst: "10.5.0.0/24", type: "blackhole" }],
    ["route_add_unreachable", "add", { dst: "10.11.0.0/16", type: "unreachable" }],
    ["route_add_local", "add", { dst: "10.10.0.1", type: "local", dev: D0 }],
    [
      "route_add_full",
      "add",
      {
        dst: "10.8.0.0/24",
        via: "10.9.9.9",
        src: "10.1.0.2",
        protocol: "static",
        metric: 7,
        dev: D0,
        mtu: 1400,
        onlink: true,
      },
    ],
    ["route_add_ipv6", "add", { dst: "fd00:2::/64", via: "fd00:1::1", dev: D0 }],
    ["route_add_via_inet6", "add", { dst: "10.12.0.0/24", via: "fd00:1::1", dev: D0 }],
    [
      "route_add_multipath",
      "add",
      {
        dst: "10.6.0.0/24",
        nexthops: [
          { via: "10.1.0.1", dev: D0, weight: 1 },
          { via: "10.1.0.3", dev: D0, weight: 2 },
        ],
      },
    ],
    ["route_replace", "replace", { dst: "10.2.0.0/24", via: "10.1.0.1" }],
    ["route_del", "delete", { dst: "10.2.0.0/24", via: "10.1.0.1" }],
    [
      "route_add_metrics",
      "add",
      {
        dst: "10.2.0.0/24",
        via: "10.1.0.1",
        dev: D0,
        metrics: {
          mtu: 1400,
          window: 1000,
          rtt: 100,
          rttvar: 50,
          ssthresh: 5,
          cwnd: 10,
          advmss: 1300,
          reordering: 3,
          hoplimit: 10,
          initcwnd: 5,
          features: 1,
          rtoMin: 200,
          initrwnd: 6,
          quickack: 1,
          congctl: "bbr",
          fastopenNoCookie: 1,
          lock: ["mtu", "congctl"],
        },
      },
    ],
    ["route_add_realms", "add", { dst: "10.6.0.0/24", dev: D0, realms: { from: 1, to: 2 } }],
    [
      "route_add_encap_ip",
      "add",
      { dst: "10.4.0.0/24", dev: D0, encap: { type: "ip", id: 5n, dst: "10.1.0.9", src: "10.1.0.2", ttl: 3, tos: 4 } },
    ],
    [
      "route_add_encap_ip6",
      "add",
      {
        dst: "10.5.0.0/24",
        dev: D0,
        encap: { type: "ip6", id: 6n, dst: "fd00:1::9", src: "fd00:1::2", hoplimit: 3, tc: 1 },
      },
    ],
    ["route_add_nhid", "add", { dst: "10.7.0.0/24", nhid: 10 }],
    // Captured although this kernel refuses it (no CONFIG_MPLS_IPTUNNEL): the request is what counts.
    [
      "route_add_encap_mpls",
      "add",
      { dst: "10.9.0.0/24", dev: D0, encap: { type: "mpls", labels: [100, 200], ttl: 9 } },
    ],
    [
      "route_add_multipath_encap",
      "add",
      {
        dst: "10.6.0.0/24",
        nexthops: [
          { via: "10.1.0.1", dev: D0, realms: { from: 1, to: 2 } },
          { via: "10.1.0.3", dev: D0, weight: 2, encap: { type: "ip", id: 5n, dst: "10.1.0.9", ttl: 3 } },
        ],
      },
    ],
    ["route_add_v6_from", "add", { dst: "fd00:5::/64", from: "fd00:6::/64", via: "fd00:1::1", dev: D0 }],
    ["route_add_v6_pref_expires", "add", { dst: "fd00:2::/64", via: "fd00:1::1", dev: D0, pref: "high", expires: 300 }],
  ];
  for (const [fixture, op, spec] of cases) {
    test(`encodeRouteRequest() sends the bytes of ${fixture.replaceAll("_", " ")}`, () => {
      const type = op === "delete" ? RTM.DELROUTE : RTM.NEWROUTE;
      // RTA_METRICS and RTA_MULTIPATH are nested without NLA_F_NESTED.
      expect(zeroPadding(encode({ op, seq: 0, spec }), 12, [8])).toBe(
        zeroPadding(fixtureRequest(fixture, type), 12, [8]),
      );
    });
  }

  test("encodeRouteDump() sends the bytes of ip route show table 100", () => {
    const w = new NetlinkWriter();
    encodeRouteDump(w, 4, 100, undefined);
    expect(normalize(w.bytes())).toBe(fixtureRequest("route_show_table100", RTM.GETROUTE));
  });

  test("encodeRouteRequest() refuses interface names: they need a kernel to resolve", () => {
    expect(() => encode({ op: "add", seq: 1, spec: { dst: "10.0.0.0/24", dev: "d0" } })).toThrow(TypeError);
    expect(() => encode({ op: "add", seq: 1, spec: { dst: "10.0.0.0/24", nexthops: [{ dev: "d0" }] } })).toThrow(
      /nexthops\[0\]\.dev "d0": encodeRouteRequest\(\) takes interface indexes/,
    );
  });

  test("encodeRouteRequest() takes a default route's family from its gateway, else from family", () => {
    const family = (spec: RouteSpec): number => {
      const w = new NetlinkWriter();
      encodeRouteRequest(w, { op: "add", seq: 1, spec });
      return parseNetlinkMessages(w.bytes())[0]?.payload[0] as number;
    };
    expect(family({ dst: "default", via: "10.0.0.1" })).toBe(2);
    expect(family({ dst: "default", via: "fe80::1", dev: 2 })).toBe(10);
    expect(family({ dst: "default", dev: 2 })).toBe(2);
    expect(family({ dst: "default", dev: 2, family: 6 })).toBe(10);
  });
});

describe("decodeRoute()", () => {
  test("decodeRoute() reads back every field encodeRouteRequest() wrote", () => {
    const w = new NetlinkWriter();
    encodeRouteRequest(w, {
      op: "add",
      seq: 1,
      spec: {
        dst: "10.8.0.0/24",
        via: "10.9.9.9",
        src: "10.1.0.2",
        protocol: "static",
        metric: 7,
        dev: 3,
        mtu: 1400,
        onlink: true,
        table: 1000,
      },
    });
    const [msg] = parseNetlinkMessages(w.bytes());
    expect(decodeRoute(msg!.payload)).toEqual({
      family: 4,
      dst: "10.8.0.0/24",
      table: 1000,
      type: "unicast",
      protocol: 4,
      scope: 0,
      metric: 7,
      onlink: true,
      via: "10.9.9.9",
      dev: 3,
      src: "10.1.0.2",
      mtu: 1400,
      metrics: { mtu: 1400 },
    });
  });

  test("decodeRoute() reads multipath next hops, RTA_VIA gateways and IPv6 default routes", () => {
    const w = new NetlinkWriter();
    encodeRouteRequest(w, {
      op: "add",
      seq: 1,
      spec: {
        dst: "10.6.0.0/24",
        nexthops: [
          { via: "10.1.0.1", dev: 3 },
          { via: "fd00::1", dev: 4, weight: 256, onlink: true },
        ],
      },
    });
    encodeRouteRequest(w, { op: "add", seq: 2, spec: { dst: "::/0", via: "fe80::1", dev: 2 } });
    const [mp, def] = parseNetlinkMessages(w.bytes()).map((m) => decodeRoute(m.payload));
    expect(mp?.nexthops).toEqual([
      { via: "10.1.0.1", dev: 3, weight: 1, onlink: false },
      { via: "fd00::1", dev: 4, weight: 256, onlink: true },
    ]);
    expect(mp?.scope).toBe(0);
    expect(def).toMatchObject({ family: 6, dst: "default", via: "fe80::1", dev: 2, table: 254 });
  });

  test("decodeRoute() gives a spec that encodeRouteRequest() takes back", () => {
    for (const spec of [
      {
        dst: "10.6.0.0/24",
        nexthops: [
          { via: "10.1.0.1", dev: 3 },
          { via: "10.1.0.3", dev: 3, weight: 2, onlink: true },
        ],
      },
      {
        dst: "10.8.0.0/24",
        via: "10.9.9.9",
        src: "10.1.0.2",
        protocol: 4,
        metric: 7,
        dev: 3,
        mtu: 1400,
        onlink: true,
        table: 1000,
      },
      { dst: "default", family: 6, type: "unreachable", table: 100 },
    ] satisfies RouteSpec[]) {
      const w = new NetlinkWriter();
      encodeRouteRequest(w, { op: "add", seq: 0, spec });
      const route = decodeRoute(parseNetlinkMessages(w.bytes())[0]!.payload);
      const again = new NetlinkWriter();
      encodeRouteRequest(again, { op: "delete", seq: 0, spec: route });
      expect(decodeRoute(parseNetlinkMessages(again.bytes())[0]!.payload)).toEqual(route);
    }
  });

  test("decodeRoute() keeps attributes it does not know and rejects truncated messages", () => {
    const w = new NetlinkWriter();
    w.begin(RTM.NEWROUTE, 0, 1).u8(2).u8(32).u8(0).u8(0).u8(254).u8(2).u8(253).u8(1).u32(0);
    w.attr(1, new Uint8Array([10, 0, 0, 1]));
    w.attrU32(999, 7);
    w.attr(12, new Uint8Array(16)); // RTA_CACHEINFO
    w.end();
    const payload = parseNetlinkMessages(w.bytes())[0]!.payload;
    expect(decodeRoute(payload)).toEqual({
      family: 4,
      dst: "10.0.0.1/32",
      table: 254,
      type: "unicast",
      protocol: 2,
      scope: 253,
      metric: 0,
      onlink: false,
      unknown: [{ type: 999, data: new Uint8Array([7, 0, 0, 0]) }],
    });
    expect(() => decodeRoute(payload.subarray(0, 8))).toThrow(SyntaxError);
    const broken = payload.slice();
    broken[12] = 200; // first attribute's length overruns
    expect(() => decodeRoute(broken)).toThrow(/Invalid route attribute at offset 12/);
    const ipmr = payload.slice();
    ipmr[0] = 128;
    expect(() => decodeRoute(ipmr)).toThrow(/address family 128 is neither IPv4 nor IPv6/);
  });
});

describe("parsePrefix()", () => {
  test("parsePrefix() accepts and rejects exactly what parseCidr() does, on its fast IPv4 path too", () => {
    const inputs = [
      "0.0.0.0/0",
      "10.0.0.0/8",
      "10.1.2.0/24",
      "10.1.2.3",
      "10.1.2.3/32",
      "255.255.255.255/32",
      "10.0.0.0/08",
      "01.2.3.0/24",
      "1.2.3/24",
      "1.2.3.4.5/32",
      "256.1.1.0/24",
      "1.2.3.0/33",
      "1..2.3/8",
      "1.2.3.0/",
      "1.2.3.0/ 8",
      "1.2.3.0/-1",
      "1.2.3.0/024",
      "1.2.3.0/0x8",
      " 1.2.3.0/24",
      "1.2.3.0/24 ",
      "1000.2.3.0/24",
      "fd00::/64",
      "::/0",
      "",
    ];
    for (const text of inputs) {
      let expected: unknown;
      try {
        const p = parseCidr(text);
        expected = { family: p.family, bytes: p.bytes, prefixLength: p.prefixLength };
      } catch (err) {
        expected = (err as Error).constructor;
      }
      let actual: unknown;
      try {
        const p = parsePrefix(text, "dst");
        actual = { family: p.family, bytes: p.bytes, prefixLength: p.prefixLength };
      } catch (err) {
        actual = (err as Error).constructor;
      }
      expect([text, actual]).toEqual([text, expected]);
    }
  });

  test("parsePrefix() refuses host bits beyond the prefix length in both families", () => {
    expect(() => parsePrefix("10.1.2.128/25", "dst")).not.toThrow();
    expect(() => parsePrefix("10.1.2.64/25", "dst")).toThrow(/host bits are set \(the prefix is "10.1.2.0\/25"\)/);
    expect(() => parsePrefix("fd00::1/64", "dst")).toThrow(/the prefix is "fd00::\/64"/);
    expect(() => parsePrefix("fd00:0:0:1::/63", "dst")).toThrow(/the prefix is "fd00::\/63"/);
  });
});

describe("Routes input checks", () => {
  // Each bad spec is refused before any system call: the gateway throws on every call.
  const bad: [string, RouteSpec, typeof Error, RegExp][] = [
    [
      "a malformed prefix",
      { dst: "10.0.0.0/33" },
      SyntaxError,
      /Invalid route dst "10.0.0.0\/33": prefix length must be 0-32/,
    ],
    ["a malformed address in dst", { dst: "10.0.0.256/24" }, SyntaxError, /Invalid route dst "10.0.0.256\/24"/],
    ["host bits in dst", { dst: "10.0.0.5/24" }, SyntaxError, /host bits are set \(the prefix is "10.0.0.0\/24"\)/],
    ["a malformed gateway", { dst: "10.0.0.0/24", via: "10.1.0" }, SyntaxError, /Invalid route via "10.1.0"/],
    ["a malformed source", { dst: "10.0.0.0/24", src: "x" }, SyntaxError, /Invalid route src "x"/],
    [
      "an IPv4 gateway for IPv6",
      { dst: "fd00::/64", via: "10.0.0.1" },
      RangeError,
      /an IPv6 route needs an IPv6 gateway/,
    ],
    ["a source of the other family", { dst: "10.0.0.0/24", src: "fd00::1" }, RangeError, /the route is IPv4/],
    ["a family that disagrees", { dst: "10.0.0.0/24", family: 6 }, RangeError, /dst "10.0.0.0\/24" is IPv4/],
    ["a missing dst", {} as RouteSpec, TypeError, /route dst: a prefix or "default" is required/],
    [
      "an unknown field",
      { dst: "default", gateway: "10.0.0.1" } as unknown as RouteSpec,
      TypeError,
      /route gateway: not a route field/,
    ],
    ["an unknown type", { dst: "default", type: "drop" as "blackhole" }, TypeError, /Invalid route type "drop"/],
    ["table 0", { dst: "default", table: 0 }, RangeError, /route table 0: must be an integer from 1 to 4294967295/],
    ["an unknown table name", { dst: "default", table: "pods" as "main" }, TypeError, /Invalid route table "pods"/],
    ["a fractional metric", { dst: "default", metric: 1.5 }, RangeError, /route metric 1.5/],
    ["a negative mtu", { dst: "default", mtu: -1 }, RangeError, /route mtu -1/],
    ["a protocol above 255", { dst: "default", protocol: 256 }, RangeError, /route protocol 256/],
    ["an unknown scope", { dst: "default", scope: "global" as "universe" }, TypeError, /route scope "global"/],
    ["a bad interface name", { dst: "default", dev: "a b" }, RangeError, /route dev "a b"/],
    [
      "onlink as a string",
      { dst: "default", onlink: "yes" as unknown as boolean },
      TypeError,
      /route onlink: expected a boolean/,
    ],
    ["no next hops", { dst: "default", nexthops: [] }, RangeError, /give at least one next hop/],
    ["nexthops with via", { dst: "default", via: "10.0.0.1", nexthops: [{ dev: 2 }] }, TypeError, /not on the route/],
    ["an empty next hop", { dst: "default", nexthops: [{}] }, TypeError, /nexthops\[0\]: give via, dev or both/],
    [
      "a weight of 0",
      { dst: "default", nexthops: [{ dev: 2, weight: 0 }] },
      RangeError,
      /nexthops\[0\]\.weight 0: must be an integer from 1 to 256/,
    ],
  ];
  for (const [name, spec, kind, message] of bad) {
    test(`routes.add() refuses ${name} before any system call`, () => {
      const routes = offline();
      expect(() => routes.add(spec)).toThrow(kind);
      expect(() => routes.add(spec)).toThrow(message);
      expect(() => routes.replace(spec)).toThrow(message);
      expect(() => routes.delete(spec)).toThrow(kind);
    });
  }

  test("routes.addMany() names the bad spec and sends nothing", () => {
    const routes = offline();
    expect(() => routes.addMany([{ dst: "10.0.0.0/24", type: "blackhole" }, { dst: "10.0.1.0/244" }])).toThrow(
      /^Invalid specs\[1\]\.dst "10.0.1.0\/244": prefix length must be 0-32$/,
    );
    expect(() =>
      routes.addMany([{ dst: "10.0.0.0/24", type: "blackhole" }], { replace: 1 as unknown as boolean }),
    ).toThrow(TypeError);
  });

  test("routes.list() and routes.get() refuse bad options before any system call", () => {
    const routes = offline();
    expect(() => routes.list({ table: -1 })).toThrow(RangeError);
    expect(() => routes.list({ family: 5 as 4 })).toThrow(TypeError);
    expect(() => routes.list({ dev: "" })).toThrow(RangeError);
    expect(() => routes.get("10.0.0.0/99")).toThrow(SyntaxError);
  });
});

describe("decodeRoute() of kernel dumps", () => {
  function dump(name: string): Route[] {
    return (loadFixture(name).recvmsg ?? [])
      .flatMap((hex) => parseNetlinkMessages(Uint8Array.from(Buffer.from(hex, "hex"))))
      .filter((m) => m.type === RTM.NEWROUTE)
      .map((m) => decodeRoute(m.payload));
  }
  const boot = { family: 4, table: 254, type: "unicast", protocol: 3, metric: 0, onlink: false, dev: D0 } as const;

  test("decodeRoute() reads metrics, realms, ip and ip6 encapsulation, nhid and onlink as ip route show printed them", () => {
    expect(dump("route_show_all")).toEqual([
      { ...boot, dst: "10.1.0.0/24", protocol: 2, scope: 253, src: "10.1.0.2" },
      {
        ...boot,
        dst: "10.2.0.0/24",
        scope: 0,
        via: "10.1.0.1",
        mtu: 1400,
        metrics: {
          mtu: 1400,
          window: 1000,
          rtt: 100,
          rttvar: 50,
          advmss: 1300,
          hoplimit: 10,
          initcwnd: 5,
          initrwnd: 6,
          quickack: 1,
          congctl: "bbr",
          fastopenNoCookie: 1,
          lock: ["mtu"],
        },
      },
      { ...boot, dst: "10.3.0.0/24", scope: 0, via: "10.9.0.1", onlink: true },
      {
        ...boot,
        dst: "10.4.0.0/24",
        scope: 253,
        encap: { type: "ip", id: 5n, dst: "10.1.0.9", src: "10.1.0.2", ttl: 3, tos: 4, flags: 0 },
      },
      {
        ...boot,
        dst: "10.5.0.0/24",
        scope: 253,
        encap: { type: "ip6", id: 6n, dst: "fd00:1::9", src: "fd00:1::2", hoplimit: 3, tc: 1, flags: 0 },
      },
      { ...boot, dst: "10.6.0.0/24", scope: 253, realms: { from: 1, to: 2 } },
      // nexthop_compat_mode=1 (the default) adds the group's next hop to a route with nhid.
      { ...boot, dst: "10.7.0.0/24", scope: 0, nhid: 10, via: "10.1.0.1" },
    ]);
  });

  test("decodeRoute() reads IPv6 expiry, preference, onlink and IPv4-mapped prefixes as ip -6 route show printed them", () => {
    const v6 = { ...boot, family: 6, scope: 0, metric: 1024, pref: "medium" } as const;
    expect(dump("route_show_v6")).toEqual([
      { ...v6, dst: "::ffff:10.0.0.0/120" },
      { ...v6, dst: "fd00:1::/64", protocol: 2, metric: 256 },
      { ...v6, dst: "fd00:2::/64", via: "fd00:1::1", expires: 299, pref: "high" },
      { ...v6, dst: "fd00:3::/64", via: "fd00:1::1", onlink: true },
      { ...v6, dst: "fe80::/64", protocol: 2, metric: 256, dev: 2 },
      { ...v6, dst: "fe80::/64", protocol: 2, metric: 256 },
    ]);
  });

  test("decodeRoute() reads MPLS and BPF encapsulation and keeps an encapsulation it does not know", () => {
    const spec = (encap: RouteEncap): Route => {
      const w = new NetlinkWriter();
      encodeRouteRequest(w, { op: "add", seq: 1, spec: { dst: "10.9.0.0/24", dev: D0, encap } });
      return decodeRoute(parseNetlinkMessages(w.bytes())[0]!.payload);
    };
    expect(spec({ type: "mpls", labels: [100, 200], ttl: 9 }).encap).toEqual({
      type: "mpls",
      labels: [100, 200],
      ttl: 9,
    });
    const seg6 = new Uint8Array([8, 0, 1, 0, 1, 2, 3, 4]);
    expect(spec({ type: "other", encapType: 5, data: seg6 }).encap).toEqual({
      type: "other",
      encapType: 5,
      data: seg6,
    });
    // What the kernel sends for "encap bpf in ... xmit ... headroom 14": names only.
    const w = new NetlinkWriter();
    w.begin(RTM.NEWROUTE, 0, 1).u8(2).u8(24).u8(0).u8(0).u8(254).u8(3).u8(253).u8(1).u32(0);
    w.attr(1, new Uint8Array([10, 9, 0, 0]));
    w.nest(
      22,
      () => {
        w.nest(1, () => w.attrString(2, "lwt_in"), true);
        w.nest(3, () => w.attrString(2, "obj.o:[lwt_xmit]"), true);
        w.attrU32(4, 14);
      },
      true,
    );
    w.attrU16(21, 6);
    w.end();
    expect(decodeRoute(parseNetlinkMessages(w.bytes())[0]!.payload).encap).toEqual({
      type: "bpf",
      in: { name: "lwt_in" },
      xmit: { name: "obj.o:[lwt_xmit]" },
      headroom: 14,
    });
  });

  test("encodeRouteRequest() sends the bytes of ip route add … encap bpf in obj … xmit obj … headroom 14", () => {
    // ip loaded the programs as descriptors 7 and 9: stand-ins with those numbers, disowned after.
    const fdIn = new Fd(7, "stand-in for lwt_in");
    const fdXmit = new Fd(9, "stand-in for lwt_xmit");
    try {
      const program = (fd: Fd): BpfProgram => ({ fd }) as unknown as BpfProgram;
      const spec: RouteSpec = {
        dst: "10.9.0.0/24",
        dev: D0,
        encap: {
          type: "bpf",
          in: { name: "lwt.o:[lwt_in]", program: program(fdIn) },
          xmit: { name: "lwt.o:[lwt_xmit]", program: program(fdXmit) },
          headroom: 14,
        },
      };
      expect(zeroPadding(encode({ op: "add", seq: 0, spec }), 12)).toBe(
        zeroPadding(fixtureRequest("route_add_encap_bpf", RTM.NEWROUTE), 12),
      );
    } finally {
      fdIn.disown();
      fdXmit.disown();
    }
  });

  test("encodeRouteRequest() sends a route with a nexthop object without the gateway and device a listing shows for it", () => {
    const nhidOnly = encode({ op: "add", seq: 0, spec: { dst: "10.7.0.0/24", nhid: 10 } });
    expect(encode({ op: "add", seq: 0, spec: { dst: "10.7.0.0/24", nhid: 10, via: "10.1.0.1", dev: D0 } })).toBe(
      nhidOnly,
    );
    expect(
      encode({
        op: "add",
        seq: 0,
        spec: {
          dst: "10.7.0.0/24",
          nhid: 10,
          nexthops: [
            { via: "10.1.0.1", dev: D0 },
            { via: "10.1.0.3", dev: D0 },
          ],
        },
      }),
    ).toBe(nhidOnly);
  });

  test("encodeRouteRequest() refuses a BPF encapsulation without its loaded program, and bad metrics", () => {
    const add = (spec: RouteSpec): string => encode({ op: "add", seq: 1, spec });
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, encap: { type: "bpf", in: { name: "x" } } })).toThrow(
      /needs its loaded program/,
    );
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, encap: { type: "bpf" } })).toThrow(/give in, out or xmit/);
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, metrics: { mtu: 1400 }, mtu: 1300 })).toThrow(/give the MTU once/);
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, metrics: { lock: ["nope" as "mtu"] } })).toThrow(
      /metrics.lock "nope"/,
    );
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, metrics: { hoplimit: -1 } })).toThrow(RangeError);
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, pref: "top" as "high" })).toThrow(/use "low", "medium" or "high"/);
    expect(() => add({ dst: "10.9.0.0/24", dev: D0, encap: { type: "ip", dst: "fd00::1" } })).toThrow(
      /expected an IPv4 address/,
    );
    // Deleting leaves the encapsulation out: the kernel cannot rebuild a BPF one from names.
    const del = encode({
      op: "delete",
      seq: 1,
      spec: { dst: "10.9.0.0/24", dev: D0, encap: { type: "bpf", in: { name: "x" } } },
    });
    expect(del).toBe(encode({ op: "delete", seq: 1, spec: { dst: "10.9.0.0/24", dev: D0 } }));
  });
});
