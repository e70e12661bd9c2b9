import { describe, expect, test } from "vitest";
import { type NetlinkSocket, NetlinkWriter, parseNetlinkMessages } from "@dp/core";
import { RTM } from "@dp/core/internal";
import { decodeRule, encodeRuleRequest, type RuleRequest, Rules, type RuleSpec } from "@dp/routing";
import { fixtureRequest, loadFixture, normalize } from "./_test_fixtures.ts";

/** Rules on a socket that fails the test on any use: proves no request is sent. */
function offline(): Rules {
  const nl = new Proxy({} as NetlinkSocket, {
    get(_, name) {
      throw new Error(`unexpected use of the netlink socket: ${String(name)}`);
    },
  });
  return new Rules({ nl, netns: undefined });
}

function encode(request: RuleRequest): string {
  const w = new NetlinkWriter();
  encodeRuleRequest(w, request);
  return normalize(w.bytes());
}

describe("encodeRuleRequest()", () => {
  const cases: [string, RuleRequest["op"], RuleSpec][] = [
    ["rule_add_from_to", "add", { from: "10.0.0.5", to: "10.1.0.0/16", table: 100, priority: 30 }],
    ["rule_add_to_main", "add", { to: "10.0.0.5", table: "main", priority: 20 }],
    ["rule_add_fwmark", "add", { fwmark: 0x10, fwmask: 0xff, table: 200, priority: 40 }],
    ["rule_add_iif", "add", { iif: "d0", table: 100, priority: 50 }],
    ["rule_add_ipv6", "add", { from: "fd00::/64", table: 100, priority: 60 }],
    ["rule_add_table1000", "add", { invert: true, from: "10.0.0.0/8", oif: "d0", table: 1000, priority: 70 }],
    ["rule_add_blackhole", "add", { from: "10.9.0.0/16", action: "blackhole", priority: 80 }],
    ["rule_add_goto", "add", { from: "10.9.0.0/16", goto: 100, priority: 90 }],
    ["rule_add_protocol", "add", { from: "10.9.0.0/16", table: 100, priority: 91, protocol: "static" }],
    ["rule_del", "delete", { from: "10.0.0.5", to: "10.1.0.0/16", table: 100, priority: 30 }],
    ["rule_add_ipproto_dport", "add", { table: 100, priority: 100, ipProto: "tcp", dport: 80 }],
    [
      "rule_add_sport_range",
      "add",
      { table: 100, priority: 101, ipProto: 17, sport: { start: 1000, end: 2000 }, dport: { start: 53, end: 53 } },
    ],
    ["rule_add_uidrange", "add", { table: 100, priority: 102, uidRange: { start: 1000, end: 2000 } }],
    ["rule_add_l3mdev", "add", { priority: 103, l3mdev: true }],
    ["rule_add_suppress", "add", { table: "main", priority: 104, suppressPrefixLength: 0, suppressIfgroup: 5 }],
    ["rule_add_tos", "add", { tos: 0x10, table: 100, priority: 105 }],
    ["rule_add_realms", "add", { from: "10.0.0.0/8", table: 100, priority: 106, realms: { from: 1, to: 2 } }],
    ["rule_add_fwmark_zero", "add", { fwmark: 0, fwmask: 0xff00, table: 100, priority: 107 }],
    ["rule_del_ipproto", "delete", { table: 100, priority: 100, ipProto: "tcp", dport: 80 }],
  ];
  for (const [fixture, op, spec] of cases) {
    test(`encodeRuleRequest() sends the bytes of ${fixture.replaceAll("_", " ")}`, () => {
      expect(encode({ op, seq: 0, spec })).toBe(fixtureRequest(fixture, op === "add" ? RTM.NEWRULE : RTM.DELRULE));
    });
  }

  test("encodeRuleRequest() sends the two seed rules exactly as ip rule add does", () => {
    // priority 20: from all to POD_IP lookup main; priority 30: from POD_IP to VPC_CIDR lookup TABLE
    expect(encode({ op: "add", seq: 0, spec: { priority: 20, to: "10.0.0.5", table: "main" } })).toBe(
      fixtureRequest("rule_add_to_main", RTM.NEWRULE),
    );
    expect(encode({ op: "add", seq: 0, spec: { priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 } })).toBe(
      fixtureRequest("rule_add_from_to", RTM.NEWRULE),
    );
  });

  test("encodeRuleRequest() leaves the action and table out of a delete unless given", () => {
    const w = new NetlinkWriter();
    encodeRuleRequest(w, { op: "delete", seq: 1, spec: { priority: 30 } });
    const payload = parseNetlinkMessages(w.bytes())[0]!.payload;
    expect([payload[4], payload[7]]).toEqual([0, 0]);
  });
});

describe("decodeRule()", () => {
  test("decodeRule() gives a spec that encodeRuleRequest() takes back, table 0 of a blackhole rule included", () => {
    for (const spec of [
      { from: "10.9.0.0/16", action: "blackhole", priority: 80 },
      { from: "10.9.0.0/16", goto: 100, priority: 90 },
      { invert: true, from: "10.0.0.0/8", oif: "d0", table: 1000, priority: 70 },
    ] as const) {
      const w = new NetlinkWriter();
      encodeRuleRequest(w, { op: "add", seq: 0, spec });
      const rule = decodeRule(parseNetlinkMessages(w.bytes())[0]!.payload);
      const again = new NetlinkWriter();
      encodeRuleRequest(again, { op: "add", seq: 0, spec: rule });
      expect(decodeRule(parseNetlinkMessages(again.bytes())[0]!.payload)).toEqual(rule);
    }
  });

  test("decodeRule() reads back every field encodeRuleRequest() wrote", () => {
    const w = new NetlinkWriter();
    encodeRuleRequest(w, {
      op: "add",
      seq: 1,
      spec: {
        invert: true,
        from: "10.0.0.0/8",
        to: "10.2.0.0/16",
        iif: "d0",
        oif: "d1",
        fwmark: 0x10,
        fwmask: 0xff,
        table: 1000,
        priority: 70,
        protocol: 4,
      },
    });
    encodeRuleRequest(w, { op: "add", seq: 2, spec: { from: "fd00::/64", goto: 100, priority: 9 } });
    const [a, b] = parseNetlinkMessages(w.bytes()).map((m) => decodeRule(m.payload));
    expect(a).toEqual({
      family: 4,
      priority: 70,
      action: "toTable",
      table: 1000,
      from: "10.0.0.0/8",
      to: "10.2.0.0/16",
      iif: "d0",
      oif: "d1",
      fwmark: 0x10,
      fwmask: 0xff,
      invert: true,
      protocol: 4,
    });
    expect(b).toEqual({
      family: 6,
      priority: 9,
      action: "goto",
      table: 0,
      from: "fd00::/64",
      goto: 100,
      invert: false,
      protocol: 0,
    });
  });

  test("decodeRule() keeps attributes it does not know and rejects truncated messages", () => {
    const w = new NetlinkWriter();
    // fib_rule_hdr of the kernel's "0: from all lookup local", plus FRA_SPORT_RANGE and an unknown type.
    w.begin(RTM.NEWRULE, 0, 1).u8(2).u8(0).u8(0).u8(0).u8(255).u8(0).u8(0).u8(1).u32(0);
    w.attrU32(15, 255);
    w.attrU8(21, 2);
    w.attr(23, new Uint8Array([0, 80, 0, 80]));
    w.attrU32(999, 1);
    w.end();
    const payload = parseNetlinkMessages(w.bytes())[0]!.payload;
    expect(decodeRule(payload)).toEqual({
      family: 4,
      priority: 0,
      action: "toTable",
      table: 255,
      invert: false,
      protocol: 2,
      sport: { start: 0x5000, end: 0x5000 },
      unknown: [{ type: 999, data: new Uint8Array([1, 0, 0, 0]) }],
    });
    expect(() => decodeRule(payload.subarray(0, 11))).toThrow(SyntaxError);
    const ipmr = payload.slice();
    ipmr[0] = 128;
    expect(() => decodeRule(ipmr)).toThrow(/address family 128/);
  });
});

describe("Rules input checks", () => {
  const bad: [string, RuleSpec, typeof Error, RegExp][] = [
    [
      "a malformed prefix",
      { from: "10.0.0.0/40", table: 100 },
      SyntaxError,
      /Invalid rule from "10.0.0.0\/40": prefix length must be 0-32/,
    ],
    ["a malformed address", { to: "10.0.0.x" }, SyntaxError, /Invalid rule to "10.0.0.x"/],
    ["host bits in a prefix", { to: "10.1.2.3/16" }, SyntaxError, /host bits are set \(the prefix is "10.1.0.0\/16"\)/],
    [
      "families that disagree",
      { from: "10.0.0.0/8", to: "fd00::/64" },
      RangeError,
      /Invalid rule to "fd00::\/64": the rule is IPv4/,
    ],
    ["a mark above 32 bits", { fwmark: 2 ** 32 }, RangeError, /Invalid rule fwmark 4294967296/],
    ["a negative mask", { fwmark: 1, fwmask: -1 }, RangeError, /Invalid rule fwmask -1/],
    ["a mark as a string", { fwmark: "0x10" as unknown as number }, TypeError, /rule fwmark: expected a number/],
    ["table 0", { from: "10.0.0.5", table: 0 }, RangeError, /Invalid rule table 0/],
    [
      "a table on a blackhole rule",
      { action: "blackhole", table: 100 },
      TypeError,
      /only a "toTable" rule has a table/,
    ],
    ["a goto rule without a target", { action: "goto" }, TypeError, /a "goto" rule needs goto/],
    ["a target on a nop rule", { action: "nop", goto: 100 }, TypeError, /only a "goto" rule has a target/],
    ["an unknown action", { action: "drop" as "blackhole" }, TypeError, /Invalid rule action "drop"/],
    ["the unspec action", { action: "unspec" }, TypeError, /Invalid rule action "unspec": a rule needs an action/],
    ["a long interface name", { iif: "0123456789abcdef" }, RangeError, /rule iif "0123456789abcdef"/],
    ["an interface index", { oif: 2 as unknown as string }, TypeError, /rule oif: expected an interface name/],
    ["an unknown field", { src: "10.0.0.5" } as unknown as RuleSpec, TypeError, /Invalid rule src: not a rule field/],
  ];
  for (const [name, spec, kind, message] of bad) {
    test(`rules.add() refuses ${name} before any system call`, () => {
      const rules = offline();
      expect(() => rules.add(spec)).toThrow(kind);
      expect(() => rules.add(spec)).toThrow(message);
    });
  }

  test("rules.delete() and rules.list() check their input before any system call", () => {
    const rules = offline();
    expect(() => rules.delete({ from: "10.0.0.0/8x" })).toThrow(SyntaxError);
    expect(() => rules.delete({ priority: -1 })).toThrow(RangeError);
    expect(() => rules.list({ family: 10 as 6 })).toThrow(TypeError);
  });
});

describe("decodeRule() of a kernel dump", () => {
  test("decodeRule() reads every rule of a dump captured from ip rule show as ip shows them", () => {
    const reply = loadFixture("rule_show_all").recvmsg?.[0];
    expect(reply).toBeDefined();
    const messages = parseNetlinkMessages(Uint8Array.from(Buffer.from(reply as string, "hex"))).filter(
      (m) => m.type === RTM.NEWRULE,
    );
    const rules = messages.map((m) => decodeRule(m.payload));
    const unspec = { family: 4, invert: false, protocol: 0 } as const;
    expect(rules).toEqual([
      { family: 4, priority: 0, action: "toTable", table: 255, invert: false, protocol: 2 },
      { ...unspec, priority: 100, action: "toTable", table: 100, ipProto: 6, dport: { start: 80, end: 80 } },
      { ...unspec, priority: 100, action: "toTable", table: 100 },
      {
        ...unspec,
        priority: 101,
        action: "toTable",
        table: 100,
        ipProto: 17,
        sport: { start: 1000, end: 2000 },
        dport: { start: 53, end: 53 },
      },
      { ...unspec, priority: 102, action: "toTable", table: 100, uidRange: { start: 1000, end: 2000 } },
      { ...unspec, priority: 103, action: "toTable", table: 0, l3mdev: true },
      { ...unspec, priority: 104, action: "toTable", table: 254, suppressPrefixLength: 0, suppressIfgroup: 5 },
      { ...unspec, priority: 105, action: "toTable", table: 100, tos: 0x10 },
      { ...unspec, priority: 106, action: "toTable", table: 100, from: "10.0.0.0/8", realms: { from: 1, to: 2 } },
      { ...unspec, priority: 107, action: "toTable", table: 100, fwmark: 0, fwmask: 0xff00 },
      {
        ...unspec,
        priority: 108,
        action: "goto",
        table: 0,
        goto: 200,
        iif: "lo",
        oif: "lo",
        invert: true,
        unresolved: true,
      },
      { family: 4, priority: 32766, action: "toTable", table: 254, invert: false, protocol: 2 },
      { family: 4, priority: 32767, action: "toTable", table: 253, invert: false, protocol: 2 },
    ]);
  });

  test("encodeRuleRequest() round-trips every attribute through decodeRule()", () => {
    const spec: RuleSpec = {
      family: 6,
      priority: 7,
      from: "fd00::/64",
      to: "::ffff:10.0.0.0/120",
      iif: "a",
      oif: "b",
      fwmark: 1,
      fwmask: 3,
      table: 1000,
      protocol: 4,
      dscp: 10,
      dscpMask: 0x3c,
      ipProto: "tcp",
      sport: 80,
      sportMask: 0xff00,
      dport: { start: 1, end: 1 },
      dportMask: 0xf,
      uidRange: { start: 0, end: 10 },
      suppressPrefixLength: 64,
      suppressIfgroup: 3,
      realms: { from: 0, to: 9 },
      tunId: 0x1_0000_0001n,
      flowlabel: 0x12345,
      flowlabelMask: 0xff000,
      unknown: [{ type: 200, data: new Uint8Array([9, 9, 9, 9]) }],
    };
    const w = new NetlinkWriter();
    encodeRuleRequest(w, { op: "add", seq: 1, spec });
    const rule = decodeRule(parseNetlinkMessages(w.bytes())[0]!.payload);
    expect(rule).toEqual({ ...spec, action: "toTable", invert: false, ipProto: 6, sport: { start: 80, end: 80 } });
  });
});
