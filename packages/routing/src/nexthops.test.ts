import { describe, expect, test } from "vitest";
import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
import { RTM } from "@dp/core/internal";
import { decodeNexthop, encodeNexthopRequest, type NexthopRequest, Nexthops } from "@dp/routing";
import { CAPTURE_D0, fixtureRequest, forbiddenSocket, loadFixture, normalize, zeroPadding } from "./_test_fixtures.ts";

function encode(request: NexthopRequest): string {
  const w = new NetlinkWriter();
  encodeNexthopRequest(w, request);
  return normalize(w.bytes());
}

describe("encodeNexthopRequest()", () => {
  const cases: [string, NexthopRequest["op"], NexthopRequest["spec"]][] = [
    ["nexthop_add_via", "add", { id: 1, via: "10.1.0.1", dev: CAPTURE_D0 }],
    ["nexthop_add_dev_onlink", "add", { id: 2, via: "10.9.0.1", dev: CAPTURE_D0, onlink: true, protocol: "static" }],
    ["nexthop_add_v6", "add", { id: 3, via: "fd00:1::1", dev: CAPTURE_D0 }],
    ["nexthop_add_blackhole", "add", { id: 4, blackhole: true }],
    ["nexthop_add_fdb", "add", { id: 5, via: "10.1.0.1", fdb: true }],
    ["nexthop_add_group", "add", { id: 10, group: [{ id: 1 }, { id: 2, weight: 3 }] }],
    [
      "nexthop_add_resilient",
      "add",
      {
        id: 12,
        group: [{ id: 1 }],
        groupType: "resilient",
        resilient: { buckets: 8, idleTimer: 10, unbalancedTimer: 20 },
      },
    ],
    ["nexthop_replace", "replace", { id: 1, via: "10.1.0.3", dev: CAPTURE_D0 }],
    ["nexthop_del", "delete", { id: 1 }],
    [
      "nexthop_add_encap",
      "add",
      { id: 6, via: "10.1.0.1", dev: CAPTURE_D0, encap: { type: "ip", id: 7n, dst: "10.1.0.9", ttl: 3 } },
    ],
  ];
  for (const [fixture, op, spec] of cases) {
    test(`encodeNexthopRequest() sends the bytes of ${fixture.replaceAll("_", " ")}`, () => {
      const type = op === "delete" ? RTM.DELNEXTHOP : RTM.NEWNEXTHOP;
      expect(zeroPadding(encode({ op, seq: 0, spec }), 8)).toBe(zeroPadding(fixtureRequest(fixture, type), 8));
    });
  }

  test("encodeNexthopRequest() writes weights above 256 in the high byte (kernel 6.12+)", () => {
    const w = new NetlinkWriter();
    encodeNexthopRequest(w, {
      op: "add",
      seq: 1,
      spec: {
        id: 10,
        group: [
          { id: 1, weight: 65536 },
          { id: 2, weight: 257 },
        ],
      },
    });
    expect(decodeNexthop(parseNetlinkMessages(w.bytes())[0]!.payload).group).toEqual([
      { id: 1, weight: 65536 },
      { id: 2, weight: 257 },
    ]);
  });

  const bad: [string, NexthopRequest["spec"], typeof Error, RegExp][] = [
    [
      "no id",
      { via: "10.1.0.1" } as unknown as NexthopRequest["spec"],
      TypeError,
      /Invalid nexthop id: expected a number/,
    ],
    ["id 0", { id: 0, blackhole: true }, RangeError, /Invalid nexthop id 0/],
    ["nothing to do", { id: 1 }, TypeError, /give via, dev, blackhole or group/],
    ["a group with a gateway", { id: 1, group: [{ id: 2 }], via: "10.1.0.1" }, TypeError, /a group has members/],
    ["a weight of 0", { id: 1, group: [{ id: 2, weight: 0 }] }, RangeError, /group\[0\].weight 0/],
    ["a malformed gateway", { id: 1, via: "10.1.0" }, SyntaxError, /Invalid nexthop via "10.1.0"/],
    ["families that disagree", { id: 1, family: 6, via: "10.1.0.1" }, RangeError, /the next hop is IPv6/],
    [
      "resilient settings on an mpath group",
      { id: 1, group: [{ id: 2 }], resilient: { buckets: 8 } },
      TypeError,
      /give groupType "resilient"/,
    ],
    [
      "an unknown field",
      { id: 1, gateway: "10.1.0.1" } as unknown as NexthopRequest["spec"],
      TypeError,
      /Invalid nexthop gateway: not a nexthop field/,
    ],
  ];
  for (const [what, spec, kind, message] of bad) {
    test(`Nexthops.add() refuses ${what} before any system call`, () => {
      const nexthops = new Nexthops({ nl: forbiddenSocket(), netns: undefined });
      expect(() => nexthops.add(spec)).toThrow(kind);
      expect(() => nexthops.add(spec)).toThrow(message);
    });
  }

  test("Nexthops refuses a bad dev, id or options before any system call", () => {
    const nexthops = new Nexthops({ nl: forbiddenSocket(), netns: undefined });
    expect(() => nexthops.add({ id: 1, via: "10.1.0.1", dev: 2 ** 32 + 3 })).toThrow(RangeError);
    expect(() => nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0\u0000x" })).toThrow(/cannot contain NUL/);
    expect(() => nexthops.delete(2 ** 32)).toThrow(RangeError);
    expect(() => nexthops.get(-1)).toThrow(RangeError);
    expect(() => nexthops.list(null as never)).toThrow(/expected an object, got null/);
    expect(() => nexthops.list({ family: 5 as 4 })).toThrow(TypeError);
  });
});

describe("decodeNexthop()", () => {
  test("decodeNexthop() reads every object of a dump captured from ip nexthop show as ip printed them", () => {
    const hex = loadFixture("nexthop_show_all").recvmsg?.[0] as string;
    const objects = parseNetlinkMessages(Uint8Array.from(Buffer.from(hex, "hex")))
      .filter((m) => m.type === RTM.NEWNEXTHOP)
      .map((m) => decodeNexthop(m.payload));
    const base = { onlink: false, blackhole: false, fdb: false, dead: false, protocol: 0 } as const;
    const single = { ...base, family: 4, scope: 253, dev: CAPTURE_D0 } as const;
    expect(objects).toEqual([
      { ...single, id: 1, via: "10.1.0.1" },
      { ...single, id: 2, via: "10.9.0.1", onlink: true, protocol: 4 },
      { ...single, id: 3, family: 6, via: "fd00:1::1" },
      { ...base, id: 4, family: 4, scope: 0, blackhole: true },
      { ...base, id: 5, family: 4, scope: 253, via: "10.1.0.1", fdb: true },
      {
        ...single,
        id: 6,
        via: "10.1.0.1",
        encap: { type: "ip", id: 7n, dst: "10.1.0.9", src: "0.0.0.0", ttl: 0, tos: 0, flags: 0 },
      },
      {
        ...base,
        id: 10,
        family: undefined,
        scope: 0,
        groupType: "mpath",
        group: [
          { id: 1, weight: 1 },
          { id: 2, weight: 3 },
        ],
      },
      {
        ...base,
        id: 12,
        family: undefined,
        scope: 0,
        groupType: "resilient",
        group: [{ id: 1, weight: 1 }],
        resilient: { buckets: 8, idleTimer: 10, unbalancedTimer: 20, unbalancedTime: 0 },
      },
    ]);
  });

  test("decodeNexthop() keeps attributes it does not know and rejects truncated messages", () => {
    const w = new NetlinkWriter();
    w.begin(RTM.NEWNEXTHOP, 0, 1).u8(2).u8(0).u8(0).u8(0).u32(0);
    w.attrU32(1, 9);
    w.attrU32(200, 5);
    w.end();
    const payload = parseNetlinkMessages(w.bytes())[0]!.payload;
    expect(decodeNexthop(payload).unknown).toEqual([{ type: 200, data: new Uint8Array([5, 0, 0, 0]) }]);
    expect(() => decodeNexthop(payload.subarray(0, 7))).toThrow(SyntaxError);
  });
});
