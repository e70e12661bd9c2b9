import { describe, expect, test } from "vitest";
import { NetlinkWriter, parseIp, parseNetlinkMessages } from "@dp/core";
import { RTM } from "@dp/core/internal";
import {
  Addresses,
  decodeAddress,
  decodeNeighbor,
  decodeRoute,
  decodeRule,
  encodeAddressRequest,
  encodeNeighborRequest,
  encodeRouteRequest,
  encodeRuleRequest,
  Links,
  Neighbors,
  Routes,
  Rules,
  Sysctl,
} from "@dp/routing";
import { forbiddenSocket } from "./_test_fixtures.ts";
import { formatAddress } from "./_text.ts";

const ctx = { nl: forbiddenSocket(), netns: undefined };
const MAC = "02:00:00:00:00:01";

describe("link names and indexes are checked once, the same way, before any system call", () => {
  // Every entry point that takes a link: the kernel would read an index
  // above 2³¹−1 as another link (2³²+3 is 3), stop a name at its NUL and
  // expand "%d" in a new name.
  const entryPoints: [string, (dev: string | number) => unknown][] = [
    ["addresses.add()", (dev) => new Addresses(ctx).add("10.9.9.9/32", { dev })],
    ["addresses.delete()", (dev) => new Addresses(ctx).delete("10.9.9.9/32", { dev })],
    ["addresses.list()", (dev) => new Addresses(ctx).list({ dev })],
    ["neighbors.add()", (dev) => new Neighbors(ctx).add({ ip: "10.1.0.1", mac: MAC, dev })],
    ["neighbors.replace()", (dev) => new Neighbors(ctx).replace({ ip: "10.1.0.1", mac: MAC, dev })],
    ["neighbors.delete()", (dev) => new Neighbors(ctx).delete({ ip: "10.1.0.1", dev })],
    ["neighbors.get()", (dev) => new Neighbors(ctx).get({ ip: "10.1.0.1", dev })],
    ["neighbors.list()", (dev) => new Neighbors(ctx).list({ dev })],
    ["routes.add()", (dev) => new Routes(ctx).add({ dst: "10.9.0.0/24", dev })],
    ["routes.add() next hop", (dev) => new Routes(ctx).add({ dst: "10.9.0.0/24", nexthops: [{ dev }] })],
    ["routes.delete()", (dev) => new Routes(ctx).delete({ dst: "10.9.0.0/24", dev })],
    ["routes.list()", (dev) => new Routes(ctx).list({ dev })],
    ["links.get()", (dev) => new Links(ctx).get(dev)],
    ["links.delete()", (dev) => new Links(ctx).delete(dev)],
    ["links.set()", (dev) => new Links(ctx).set(dev, { up: true })],
    ["links.set() master", (dev) => new Links(ctx).set("v0", { master: dev })],
    ["links.add() macvlan parent", (dev) => new Links(ctx).add({ kind: "macvlan", name: "mv0", parent: dev })],
    ["links.add() vxlan dev", (dev) => new Links(ctx).add({ kind: "vxlan", name: "vx0", vni: 1, dev })],
    ["sysctl.proxyArp()", (dev) => new Sysctl(ctx).proxyArp(dev)],
  ];
  const bad: [string, string | number, typeof Error, RegExp][] = [
    ["an index of 2³²+3", 2 ** 32 + 3, RangeError, /4294967299: an interface index is from 1 to 2147483647/],
    ["an index of 2³¹", 2 ** 31, RangeError, /an interface index is from 1 to 2147483647/],
    ["an index of 0", 0, RangeError, /an interface index is from 1/],
    ["a negative index", -1, RangeError, /an interface index is from 1/],
    ["a fractional index", 1.5, TypeError, /an interface index is an integer/],
    ["NaN", Number.NaN, TypeError, /an interface index is an integer/],
    ["a name with a NUL", "v0\u0000x", RangeError, /cannot contain NUL/],
    ["an empty name", "", RangeError, /an interface name is 1-/],
    ["a name of 128 bytes", "x".repeat(128), RangeError, /bytes, this one 128/],
    ["a name of 64 two-byte characters", "é".repeat(64), RangeError, /this one 128/],
    ["a name with a space", "v 0", RangeError, /no whitespace/],
    ["a name with a tab", "v\t0", RangeError, /no whitespace/],
    ["a name with /", "v/0", RangeError, /"\/"/],
    ["a name with :", "v:0", RangeError, /":"/],
    ["the name ..", "..", RangeError, /not "\." or "\.\."/],
  ];
  for (const [entry, call] of entryPoints) {
    for (const [what, dev, kind, message] of bad) {
      test(`${entry} refuses ${what}`, () => {
        expect(() => call(dev)).toThrow(kind);
        expect(() => call(dev)).toThrow(message);
      });
    }
    test(`${entry} refuses a link that is neither a name nor a number`, () => {
      if (entry !== "links.set() master") expect(() => call(null as unknown as string)).toThrow(TypeError);
      expect(() => call(5n as unknown as string)).toThrow(/expected an interface name or index, got bigint/);
    });
  }

  const newNames: [string, (name: string) => unknown][] = [
    ["links.add() name", (name) => new Links(ctx).add({ kind: "bridge", name })],
    ["links.add() veth peer name", (name) => new Links(ctx).add({ kind: "veth", name: "va", peer: { name } })],
    ["links.set() new name", (name) => new Links(ctx).set("va", { name })],
  ];
  const badNew: [string, string, RegExp][] = [
    ["%d, which the kernel would expand", "v%d", /cannot contain "%"/],
    ["another %", "v%x", /cannot contain "%"/],
    ["16 bytes (a link's own name is at most 15)", "x".repeat(16), /1-15 bytes, this one 16/],
    ["a NUL", "v0\u0000x", /cannot contain NUL/],
  ];
  for (const [entry, call] of newNames) {
    for (const [what, name, message] of badNew) {
      test(`${entry} refuses ${what}`, () => {
        expect(() => call(name)).toThrow(RangeError);
        expect(() => call(name)).toThrow(message);
      });
    }
  }

  test("rules refuse an iif or oif the kernel would cut or never match", () => {
    const rules = new Rules(ctx);
    expect(() => rules.add({ iif: "v0\u0000x", table: 100 })).toThrow(
      /Invalid rule iif "v0\\u0000x": an interface name cannot contain NUL/,
    );
    expect(() => rules.add({ oif: "x".repeat(16), table: 100 })).toThrow(
      /Invalid rule oif "x{16}": an interface name is 1-15 bytes/,
    );
    expect(() => rules.delete({ iif: "a b" })).toThrow(RangeError);
  });

  test("every list() refuses null options with its own TypeError", () => {
    const lists: [string, () => unknown][] = [
      ["addresses", () => new Addresses(ctx).list(null as never)],
      ["neighbors", () => new Neighbors(ctx).list(null as never)],
      ["routes", () => new Routes(ctx).list(null as never)],
      ["rules", () => new Rules(ctx).list(null as never)],
    ];
    for (const [, call] of lists) {
      expect(call).toThrow(TypeError);
      expect(call).toThrow(/^Invalid .*: expected an object, got null$/);
    }
  });
});

describe("addresses are written as iproute2 writes them", () => {
  // glibc's inet_ntop, which iproute2 prints with (RFC 5952 §5 for the mapped form).
  const cases: [string, string][] = [
    ["::ffff:10.0.0.0", "::ffff:10.0.0.0"],
    ["::ffff:0:0", "::ffff:0.0.0.0"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["::10.0.0.1", "::10.0.0.1"],
    ["::1.0.0.0", "::1.0.0.0"],
    ["::0.1.0.0", "::0.1.0.0"],
    ["::1", "::1"],
    ["::", "::"],
    ["::0.0.0.2", "::2"],
    ["::ffff:0:1.2.3.4", "::ffff:0:102:304"],
    ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
    ["fe80::ffff:1.2.3.4", "fe80::ffff:102:304"],
    ["10.0.0.1", "10.0.0.1"],
  ];
  for (const [input, text] of cases) {
    test(`formatAddress() writes ${input} as ${text}`, () => {
      expect(formatAddress(parseIp(input).bytes)).toBe(text);
    });
  }

  test("decoders write IPv4-mapped addresses in dotted form: routes, rules, addresses, neighbours", () => {
    const w = new NetlinkWriter();
    encodeRouteRequest(w, { op: "add", seq: 1, spec: { dst: "::ffff:10.0.0.0/120", via: "::ffff:10.0.0.1", dev: 3 } });
    encodeRuleRequest(w, { op: "add", seq: 2, spec: { from: "::ffff:10.0.0.0/104", table: 100 } });
    encodeAddressRequest(w, RTM.NEWADDR, 0, 3, { cidr: "::ffff:10.0.0.9/128", index: 3 });
    encodeNeighborRequest(w, RTM.NEWNEIGH, 0, 4, { ip: "::ffff:10.0.0.7", mac: "02:00:00:00:00:01", index: 3 });
    const [route, rule, address, neighbor] = parseNetlinkMessages(w.bytes()).map((m) => m.payload);
    expect([decodeRoute(route!).dst, decodeRoute(route!).via]).toEqual(["::ffff:10.0.0.0/120", "::ffff:10.0.0.1"]);
    expect(decodeRule(rule!).from).toBe("::ffff:10.0.0.0/104");
    expect(decodeAddress(address!).address).toBe("::ffff:10.0.0.9/128");
    expect(decodeNeighbor(neighbor!).ip).toBe("::ffff:10.0.0.7");
    expect(() => new Routes(ctx).add({ dst: "::ffff:10.0.0.1/120" })).toThrow(/the prefix is "::ffff:10.0.0.0\/120"/);
  });
});
