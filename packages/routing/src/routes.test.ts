import { describe, expect, test } from "vitest";
import { type NetlinkSocket, NetlinkWriter, parseCidr, parseNetlinkMessages } from "@dp/core";
import { RTM } from "@dp/core/internal";
import { decodeRoute, encodeRouteRequest, type RouteRequest, Routes, type RouteSpec } from "@dp/routing";
import { fixtureRequest, normalize } from "./_test_fixtures.ts";
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
      { dst: "10.8.0.0/24", via: "10.9.9.9", src: "10.1.0.2", protocol: "static", metric: 7, dev: D0, mtu: 1400, onlink: true },
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
  ];
  for (const [fixture, op, spec] of cases) {
    test(`encodeRouteRequest() sends the bytes of ${fixture.replaceAll("_", " ")}`, () => {
      const type = op === "delete" ? RTM.DELROUTE : RTM.NEWROUTE;
      expect(encode({ op, seq: 0, spec })).toBe(fixtureRequest(fixture, type));
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
      spec: { dst: "10.8.0.0/24", via: "10.9.9.9", src: "10.1.0.2", protocol: "static", metric: 7, dev: 3, mtu: 1400, onlink: true, table: 1000 },
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
    });
  });

  test("decodeRoute() reads multipath next hops, RTA_VIA gateways and IPv6 default routes", () => {
    const w = new NetlinkWriter();
    encodeRouteRequest(w, {
      op: "add",
      seq: 1,
      spec: { dst: "10.6.0.0/24", nexthops: [{ via: "10.1.0.1", dev: 3 }, { via: "fd00::1", dev: 4, weight: 256, onlink: true }] },
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
      { dst: "10.6.0.0/24", nexthops: [{ via: "10.1.0.1", dev: 3 }, { via: "10.1.0.3", dev: 3, weight: 2, onlink: true }] },
      { dst: "10.8.0.0/24", via: "10.9.9.9", src: "10.1.0.2", protocol: 4, metric: 7, dev: 3, mtu: 1400, onlink: true, table: 1000 },
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

  test("decodeRoute() skips attributes it does not know and rejects truncated messages", () => {
    const w = new NetlinkWriter();
    w.begin(RTM.NEWROUTE, 0, 1).u8(2).u8(32).u8(0).u8(0).u8(254).u8(2).u8(253).u8(1).u32(0);
    w.attr(1, new Uint8Array([10, 0, 0, 1]));
    w.attrU32(999, 7);
    w.attr(12, new Uint8Array(16)); // RTA_CACHEINFO
    w.end();
    const payload = parseNetlinkMessages(w.bytes())[0]!.payload;
    expect(decodeRoute(payload)).toEqual({ family: 4, dst: "10.0.0.1/32", table: 254, type: "unicast", protocol: 2, scope: 253, metric: 0, onlink: false });
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
      "0.0.0.0/0", "10.0.0.0/8", "10.1.2.0/24", "10.1.2.3", "10.1.2.3/32", "255.255.255.255/32", "10.0.0.0/08",
      "01.2.3.0/24", "1.2.3/24", "1.2.3.4.5/32", "256.1.1.0/24", "1.2.3.0/33", "1..2.3/8", "1.2.3.0/", "1.2.3.0/ 8",
      "1.2.3.0/-1", "1.2.3.0/024", "1.2.3.0/0x8", " 1.2.3.0/24", "1.2.3.0/24 ", "1000.2.3.0/24", "fd00::/64", "::/0", "",
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
    ["a malformed prefix", { dst: "10.0.0.0/33" }, SyntaxError, /Invalid route dst "10.0.0.0\/33": prefix length must be 0-32/],
    ["a malformed address in dst", { dst: "10.0.0.256/24" }, SyntaxError, /Invalid route dst "10.0.0.256\/24"/],
    ["host bits in dst", { dst: "10.0.0.5/24" }, SyntaxError, /host bits are set \(the prefix is "10.0.0.0\/24"\)/],
    ["a malformed gateway", { dst: "10.0.0.0/24", via: "10.1.0" }, SyntaxError, /Invalid route via "10.1.0"/],
    ["a malformed source", { dst: "10.0.0.0/24", src: "x" }, SyntaxError, /Invalid route src "x"/],
    ["an IPv4 gateway for IPv6", { dst: "fd00::/64", via: "10.0.0.1" }, RangeError, /an IPv6 route needs an IPv6 gateway/],
    ["a source of the other family", { dst: "10.0.0.0/24", src: "fd00::1" }, RangeError, /the route is IPv4/],
    ["a family that disagrees", { dst: "10.0.0.0/24", family: 6 }, RangeError, /dst "10.0.0.0\/24" is IPv4/],
    ["a missing dst", {} as RouteSpec, TypeError, /route dst: a prefix or "default" is required/],
    ["an unknown field", { dst: "default", gateway: "10.0.0.1" } as unknown as RouteSpec, TypeError, /route gateway: not a route field/],
    ["an unknown type", { dst: "default", type: "drop" as "blackhole" }, TypeError, /Invalid route type "drop"/],
    ["table 0", { dst: "default", table: 0 }, RangeError, /route table 0: must be an integer from 1 to 4294967295/],
    ["an unknown table name", { dst: "default", table: "pods" as "main" }, TypeError, /Invalid route table "pods"/],
    ["a fractional metric", { dst: "default", metric: 1.5 }, RangeError, /route metric 1.5/],
    ["a negative mtu", { dst: "default", mtu: -1 }, RangeError, /route mtu -1/],
    ["a protocol above 255", { dst: "default", protocol: 256 }, RangeError, /route protocol 256/],
    ["an unknown scope", { dst: "default", scope: "global" as "universe" }, TypeError, /route scope "global"/],
    ["a bad interface name", { dst: "default", dev: "a b" }, RangeError, /route dev "a b"/],
    ["onlink as a string", { dst: "default", onlink: "yes" as unknown as boolean }, TypeError, /route onlink: expected a boolean/],
    ["no next hops", { dst: "default", nexthops: [] }, RangeError, /give at least one next hop/],
    ["nexthops with via", { dst: "default", via: "10.0.0.1", nexthops: [{ dev: 2 }] }, TypeError, /not on the route/],
    ["an empty next hop", { dst: "default", nexthops: [{}] }, TypeError, /nexthops\[0\]: give via, dev or both/],
    ["a weight of 0", { dst: "default", nexthops: [{ dev: 2, weight: 0 }] }, RangeError, /nexthops\[0\]\.weight 0: must be an integer from 1 to 256/],
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
    expect(() => routes.addMany([{ dst: "10.0.0.0/24", type: "blackhole" }], { replace: 1 as unknown as boolean })).toThrow(TypeError);
  });

  test("routes.list() and routes.get() refuse bad options before any system call", () => {
    const routes = offline();
    expect(() => routes.list({ table: -1 })).toThrow(RangeError);
    expect(() => routes.list({ family: 5 as 4 })).toThrow(TypeError);
    expect(() => routes.list({ dev: "" })).toThrow(RangeError);
    expect(() => routes.get("10.0.0.0/99")).toThrow(SyntaxError);
  });
});
