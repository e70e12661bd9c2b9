import { describe, expect, test } from "vitest";
import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
import { SIZEOF, XFRM_MSG, XFRMA } from "./_uapi.ts";
import { decodePolicy, encodePolicyRequest, Policies, PolicyOverlapError, type PolicyRequest } from "./policies.ts";
import type { XfrmPolicySpec } from "./types.ts";
import {
  fixtureReplies,
  fixtureRequest,
  forbiddenSocket,
  normalize,
  recordingSocket,
  zeroPadding,
} from "./_test_fixtures.ts";

const SEL4 = { src: "10.0.0.0/24", dst: "10.1.0.0/24" } as const;
const TUNNEL = { src: "192.168.0.1", dst: "192.168.0.2", proto: "esp", reqid: 1, mode: "tunnel" } as const;

function encode(request: PolicyRequest): string {
  const w = new NetlinkWriter();
  encodePolicyRequest(w, request);
  return normalize(w.bytes());
}

const TYPES: Record<PolicyRequest["op"], number> = {
  add: XFRM_MSG.NEWPOLICY,
  update: XFRM_MSG.UPDPOLICY,
  delete: XFRM_MSG.DELPOLICY,
  get: XFRM_MSG.GETPOLICY,
  flush: XFRM_MSG.FLUSHPOLICY,
};
/** The fixed part before the attributes, per op. */
const HEADER: Record<PolicyRequest["op"], number> = { add: 168, update: 168, delete: 64, get: 64, flush: 0 };

describe("encodePolicyRequest()", () => {
  const spec = (s: Omit<XfrmPolicySpec, "selector"> & { selector?: XfrmPolicySpec["selector"] }): XfrmPolicySpec => ({
    selector: SEL4,
    ...s,
  });
  const cases: [string, PolicyRequest][] = [
    ["policy_add_v4", { op: "add", seq: 0, spec: spec({ dir: "out" }) }],
    ["policy_add_empty", { op: "add", seq: 0, spec: { selector: {}, dir: "out" } }],
    [
      "policy_add_v4_ports",
      {
        op: "add",
        seq: 0,
        spec: { selector: { src: "10.0.0.1/32", dst: "10.1.0.1", proto: 6, sport: 1000, dport: 80 }, dir: "in" },
      },
    ],
    [
      "policy_add_v6",
      {
        op: "add",
        seq: 0,
        spec: { selector: { src: "fd00::/64", dst: "fd01::/64", proto: 17, dport: 4500 }, dir: "fwd" },
      },
    ],
    ["policy_add_v6_host", { op: "add", seq: 0, spec: { selector: { src: "fd00::1", dst: "fd01::2" }, dir: "out" } }],
    [
      "policy_add_icmp",
      {
        op: "add",
        seq: 0,
        spec: { selector: { src: "10.0.0.0/8", dst: "10.1.0.0/16", proto: 1, sport: 8, dport: 0 }, dir: "out" },
      },
    ],
    [
      // proto gre key 0x00070005: the key's high half in sport, its low half in dport.
      "policy_add_gre_key",
      {
        op: "add",
        seq: 0,
        spec: { selector: { dst: "10.9.0.0/24", proto: 47, sport: 7, dport: 5 }, dir: "out" },
      },
    ],
    ["policy_add_dev", { op: "add", seq: 0, spec: { selector: { ...SEL4, ifindex: 3 }, dir: "out" } }],
    ["policy_add_priority_index", { op: "add", seq: 0, spec: spec({ dir: "out", priority: 100, index: 9 }) }],
    ["policy_add_block", { op: "add", seq: 0, spec: spec({ dir: "in", action: "block" }) }],
    ["policy_add_mark", { op: "add", seq: 0, spec: spec({ dir: "out", mark: { value: 0xe00, mask: 0xf00 } }) }],
    ["policy_add_mark_nomask", { op: "add", seq: 0, spec: spec({ dir: "out", mark: { value: 5 } }) }],
    ["policy_add_mark_zero", { op: "add", seq: 0, spec: spec({ dir: "out", mark: { value: 0, mask: 0xff } }) }],
    ["policy_add_if_id", { op: "add", seq: 0, spec: spec({ dir: "out", ifId: 7 }) }],
    ["policy_add_tmpl_tunnel", { op: "add", seq: 0, spec: spec({ dir: "out", templates: [TUNNEL] }) }],
    [
      "policy_add_tmpl_transport",
      { op: "add", seq: 0, spec: spec({ dir: "out", templates: [{ proto: "esp", spi: 0x100, mode: "transport" }] }) },
    ],
    [
      "policy_add_tmpl_use",
      {
        op: "add",
        seq: 0,
        spec: spec({
          dir: "in",
          templates: [{ src: "192.168.0.2", dst: "192.168.0.1", reqid: 2, mode: "tunnel", level: "use" }],
        }),
      },
    ],
    [
      "policy_add_tmpl_multi",
      {
        op: "add",
        seq: 0,
        spec: spec({
          dir: "out",
          templates: [
            { proto: "ah", reqid: 3 },
            { src: "192.168.0.1", dst: "192.168.0.2", reqid: 4, mode: "tunnel" },
          ],
        }),
      },
    ],
    [
      "policy_add_tmpl_v6",
      {
        op: "add",
        seq: 0,
        spec: {
          selector: { src: "fd00::/64", dst: "fd01::/64" },
          dir: "out",
          templates: [{ src: "fc00::1", dst: "fc00::2", reqid: 5, mode: "tunnel" }],
        },
      },
    ],
    [
      "policy_add_tmpl_v6_in_v4",
      {
        op: "add",
        seq: 0,
        spec: spec({ dir: "out", templates: [{ src: "fc00::1", dst: "fc00::2", reqid: 6, mode: "tunnel" }] }),
      },
    ],
    [
      "policy_add_tmpl_v6_noaddr",
      { op: "add", seq: 0, spec: { selector: { src: "fd00::/64", dst: "fd01::/64" }, dir: "out", templates: [{}] } },
    ],
    [
      "policy_add_tmpl_dst_only",
      { op: "add", seq: 0, spec: spec({ dir: "out", templates: [{ dst: "192.168.0.2", mode: "tunnel" }] }) },
    ],
    [
      "policy_add_limits",
      {
        op: "add",
        seq: 0,
        spec: spec({
          dir: "out",
          lifetime: {
            softBytes: 1000n,
            hardBytes: 2000n,
            softPackets: 10n,
            hardPackets: 20n,
            softAddSeconds: 30n,
            hardAddSeconds: 60n,
            softUseSeconds: 40n,
            hardUseSeconds: 80n,
          },
        }),
      },
    ],
    ["policy_add_flags", { op: "add", seq: 0, spec: spec({ dir: "out", flags: ["localok", "icmp"] }) }],
    ["policy_add_ptype_sub", { op: "add", seq: 0, spec: spec({ dir: "out", type: "sub" }) }],
    [
      "policy_add_full",
      {
        op: "add",
        seq: 0,
        spec: {
          selector: { src: "10.0.0.0/16", dst: "10.2.0.0/16", proto: 17, sport: 53 },
          dir: "in",
          priority: 5,
          mark: { value: 0xe00, mask: 0xff00 },
          ifId: 3,
          type: "main",
          templates: [{ ...TUNNEL, spi: 7, level: "use" }],
        },
      },
    ],
    ["policy_update", { op: "update", seq: 0, spec: spec({ dir: "out", priority: 7 }) }],
    ["policy_delete", { op: "delete", seq: 0, id: { selector: SEL4, dir: "out" } }],
    ["policy_delete_index", { op: "delete", seq: 0, id: { index: 9, dir: "out" } }],
    [
      "policy_delete_mark",
      { op: "delete", seq: 0, id: { selector: SEL4, dir: "out", mark: { value: 0xe00, mask: 0xf00 } } },
    ],
    [
      "policy_delete_ptype_sub_if_id",
      { op: "delete", seq: 0, id: { selector: SEL4, dir: "out", type: "sub", ifId: 3 } },
    ],
    [
      "policy_delete_all_attrs",
      {
        op: "delete",
        seq: 0,
        id: { selector: SEL4, dir: "out", mark: { value: 0xe00, mask: 0xf00 }, type: "sub", ifId: 3 },
      },
    ],
    [
      "policy_delete_v6_ports",
      {
        op: "delete",
        seq: 0,
        id: { selector: { src: "fd00::/64", dst: "fd01::/64", proto: 17, dport: 4500 }, dir: "fwd" },
      },
    ],
    ["policy_get", { op: "get", seq: 0, id: { selector: SEL4, dir: "out" } }],
    ["policy_get_index", { op: "get", seq: 0, id: { index: 9, dir: "out" } }],
    ["policy_get_mark", { op: "get", seq: 0, id: { selector: SEL4, dir: "in", mark: { value: 0x10 } } }],
    ["policy_flush", { op: "flush", seq: 0 }],
    ["policy_flush_sub", { op: "flush", seq: 0, type: "sub" }],
  ];
  for (const [fixture, request] of cases) {
    test(`encodePolicyRequest() sends the bytes of ${fixture.replaceAll("_", " ")}`, () => {
      const want = zeroPadding(fixtureRequest(fixture, TYPES[request.op]), HEADER[request.op]);
      expect(encode(request)).toBe(want);
    });
  }

  test("policies.list() sends the dump request of ip xfrm policy list", () => {
    const { nl, sent } = recordingSocket();
    new Policies({ nl, netns: undefined }).list();
    expect(normalize(sent[0]!)).toBe(fixtureRequest("policy_list", XFRM_MSG.GETPOLICY));
  });

  test("policies.addMany() batches with one acknowledgement per datagram and the same bytes as ip", () => {
    const { nl, sent } = recordingSocket();
    const specs = Array.from({ length: 600 }, (_, i) => ({
      selector: { src: "10.0.0.0/24", dst: `10.${1 + (i >> 8)}.${i & 255}.0/24` },
      dir: "out" as const,
    }));
    new Policies({ nl, netns: undefined }).addMany(specs);
    expect(sent.length).toBe(2);
    const msgs = sent.flatMap((b) => parseNetlinkMessages(b));
    expect(msgs.length).toBe(600);
    expect(msgs.map((m) => m.flags & 4)).toEqual(msgs.map((_, i) => (i === 511 || i === 599 ? 4 : 0)));
    // The first request is ip's but for NLM_F_ACK, which only the datagram's last one carries.
    const first = sent[0]!.slice(0, 184);
    first[6] = (first[6] as number) | 4;
    expect(normalize(first)).toBe(fixtureRequest("policy_add_v4", XFRM_MSG.NEWPOLICY));
  });
});

describe("decodePolicy()", () => {
  test("decodePolicy() reads the kernel's reply to ip xfrm policy get", () => {
    const [m] = fixtureReplies("policy_get", XFRM_MSG.NEWPOLICY);
    const p = decodePolicy(m!.payload);
    expect({ ...p, current: { ...p.current, addTime: 0n } }).toEqual({
      selector: { family: 4, ...SEL4 },
      dir: "out",
      priority: 5,
      index: p.index,
      action: "allow",
      type: "main",
      templates: [{ ...TUNNEL, spi: 0, level: "required", family: 4 }],
      current: { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n },
    });
    expect(p.index & 7).toBe(1);
    expect(p.current.addTime).toBeGreaterThan(0n);
  });

  test("decodePolicy() reads every part of a dump: v6 ports, block, limits, flags, mark, if_id", () => {
    const [a, b] = fixtureReplies("policy_list", XFRM_MSG.NEWPOLICY).map((m) => decodePolicy(m.payload));
    expect(a).toMatchObject({
      selector: { family: 6, src: "fd00::/64", dst: "fd01::/64", proto: 6, dport: 443 },
      dir: "in",
      action: "block",
      priority: 9,
      lifetime: { softBytes: 1000n },
      flags: ["localok"],
      templates: [],
      type: "main",
    });
    expect(a).not.toHaveProperty("mark");
    expect(b).toMatchObject({
      selector: { family: 4, ...SEL4 },
      dir: "out",
      mark: { value: 0xe00, mask: 0xf00 },
      ifId: 3,
      templates: [{ ...TUNNEL, spi: 0, level: "required", family: 4 }],
    });
  });

  test("a decoded policy encodes back to the request that made it", () => {
    const specs: XfrmPolicySpec[] = [
      {
        selector: { src: "10.0.0.0/16", dst: "10.2.0.0/16", proto: 17, sport: 53 },
        dir: "in",
        priority: 5,
        mark: { value: 0xe00, mask: 0xff00 },
        ifId: 3,
        type: "sub",
        flags: ["icmp"],
        lifetime: { hardPackets: 5n },
        templates: [{ ...TUNNEL, spi: 7, level: "use" }],
      },
      { selector: { src: "fd00::1/128", dst: "::ffff:10.0.0.1/128" }, dir: "fwd", action: "block", index: 10 },
    ];
    for (const spec of specs) {
      const w = new NetlinkWriter();
      encodePolicyRequest(w, { op: "add", seq: 0, spec });
      const p = decodePolicy(parseNetlinkMessages(w.bytes())[0]!.payload);
      const again = new NetlinkWriter();
      encodePolicyRequest(again, { op: "add", seq: 0, spec: p });
      expect(decodePolicy(parseNetlinkMessages(again.bytes())[0]!.payload)).toEqual(p);
      // Only the type attribute is new: a decoded policy names its type.
      expect(normalize(again.bytes()).slice(8 * 2)).toContain(normalize(w.bytes()).slice(8 * 2, 184 * 2));
    }
  });

  test("decodePolicy() refuses a truncated message", () => {
    expect(() => decodePolicy(new Uint8Array(100))).toThrow(/100 bytes, expected at least 168/);
  });
});

describe("Policies input checks", () => {
  const offline = (): Policies => new Policies({ nl: forbiddenSocket(), netns: undefined });
  const bad: [string, unknown, typeof Error, RegExp][] = [
    ["no selector", { dir: "out" }, TypeError, /Invalid xfrm policy: selector is required/],
    ["no dir", { selector: SEL4 }, TypeError, /Invalid xfrm policy.dir: dir is required/],
    ["a bad dir", { selector: SEL4, dir: "up" }, TypeError, /Invalid xfrm policy.dir "up": use "in", "out", "fwd"/],
    [
      "a malformed prefix",
      { selector: { src: "10.0.0.x/24" }, dir: "out" },
      SyntaxError,
      /xfrm policy.selector.src "10.0.0.x\/24"/,
    ],
    [
      "a prefix too long",
      { selector: { dst: "10.0.0.0/33" }, dir: "out" },
      RangeError,
      /selector.dst "10.0.0.0\/33": an IPv4 prefix is at most \/32/,
    ],
    [
      "families that disagree",
      { selector: { src: "10.0.0.0/8", dst: "fd00::/64" }, dir: "out" },
      RangeError,
      /selector.dst "fd00::\/64": an IPv6 prefix in an IPv4 selector/,
    ],
    [
      "ports without a protocol that has them",
      { selector: { proto: 50, dport: 80 }, dir: "out" },
      TypeError,
      /selector: dport needs a proto with ports/,
    ],
    ["a port above 65535", { selector: { proto: 6, dport: 70000 }, dir: "out" }, RangeError, /selector.dport 70000/],
    [
      "an ICMP type above 255",
      { selector: { proto: 1, sport: 300 }, dir: "out" },
      RangeError,
      /an ICMP type is from 0 to 255/,
    ],
    [
      "a mark above 32 bits",
      { selector: SEL4, dir: "out", mark: { value: 2 ** 32 } },
      RangeError,
      /mark.value 4294967296/,
    ],
    [
      "mark bits outside the mask",
      { selector: SEL4, dir: "out", mark: { value: 0xe01, mask: 0xf00 } },
      RangeError,
      /mark: value 0xe01 has bits outside mask 0xf00/,
    ],
    ["an index of another direction", { selector: SEL4, dir: "out", index: 8 }, RangeError, /index % 8 must be 1/],
    ["a bad action", { selector: SEL4, dir: "out", action: "drop" }, TypeError, /action "drop": use "allow", "block"/],
    ["a bad flag", { selector: SEL4, dir: "out", flags: ["fast"] }, TypeError, /flags\[0\] "fast"/],
    ["a bad type", { selector: SEL4, dir: "out", type: "any" }, TypeError, /type "any": use "main", "sub"/],
    ["an unknown field", { selector: SEL4, dir: "out", prio: 5 }, TypeError, /unknown field "prio"/],
    [
      "an unknown selector field",
      { selector: { source: "10.0.0.0/8" }, dir: "out" },
      TypeError,
      /selector: unknown field "source"/,
    ],
    [
      "a template address of the wrong kind",
      { selector: SEL4, dir: "out", templates: [{ dst: "192.168.0.0/24" }] },
      SyntaxError,
      /templates\[0\].dst "192.168.0.0\/24": expected an address/,
    ],
    [
      "template addresses of two families",
      { selector: SEL4, dir: "out", templates: [{ src: "192.168.0.1", dst: "fc00::1" }] },
      RangeError,
      /templates\[0\].dst "fc00::1": an IPv6 address in an IPv4 template/,
    ],
    [
      "an optional tunnel template on an outbound policy",
      { selector: SEL4, dir: "out", templates: [{ ...TUNNEL, level: "use" }] },
      TypeError,
      /templates\[0\].level "use": an optional template of an outbound policy must be in transport mode/,
    ],
    [
      "a bad template mode",
      { selector: SEL4, dir: "out", templates: [{ mode: "bypass" }] },
      TypeError,
      /templates\[0\].mode "bypass"/,
    ],
    [
      "a negative limit",
      { selector: SEL4, dir: "out", lifetime: { softBytes: -1n } },
      RangeError,
      /lifetime.softBytes -1/,
    ],
    [
      "a limit as a string",
      { selector: SEL4, dir: "out", lifetime: { hardBytes: "1" } },
      TypeError,
      /lifetime.hardBytes: expected a bigint/,
    ],
  ];
  for (const [name, spec, kind, message] of bad) {
    test(`policies.add() refuses ${name} before any system call`, () => {
      const policies = offline();
      expect(() => policies.add(spec as XfrmPolicySpec)).toThrow(kind);
      expect(() => policies.add(spec as XfrmPolicySpec)).toThrow(message);
    });
  }

  test("policies.delete() and get() check the id before any system call", () => {
    const policies = offline();
    expect(() => policies.delete({ dir: "out" } as never)).toThrow(/selector or index is required/);
    expect(() => policies.delete({ index: 9, dir: "out", prio: 1 } as never)).toThrow(/unknown field "prio"/);
    expect(() => policies.get({ index: 0, dir: "out" })).toThrow(RangeError);
    expect(() => policies.get({ selector: { dst: "10.0.0.0/8" }, dir: "sideways" as "in" })).toThrow(/dir "sideways"/);
    expect(() => policies.list({ dir: "up" as "in" })).toThrow(/list options.dir "up"/);
    expect(() => policies.flush("all" as "main")).toThrow(/flush type "all"/);
  });

  test("policies.addMany() names the bad spec and sends nothing", () => {
    const policies = offline();
    expect(() =>
      policies.addMany([
        { selector: SEL4, dir: "out" },
        { selector: { dst: "10.0.0.0/40" }, dir: "out" },
      ]),
    ).toThrow(/Invalid specs\[1\].selector.dst "10.0.0.0\/40"/);
  });

  test("policies.addMany() refuses overlapping selectors with the same dir, mark, priority and type, naming both indexes", () => {
    const policies = offline();
    const overlap = (specs: XfrmPolicySpec[]): PolicyOverlapError => {
      try {
        policies.addMany(specs);
      } catch (err) {
        if (err instanceof PolicyOverlapError) return err;
        throw err;
      }
      throw new Error("no overlap reported");
    };
    const e1 = overlap([
      { selector: { dst: "10.1.0.0/16" }, dir: "out" },
      { selector: { dst: "10.2.0.0/16" }, dir: "out" },
      { selector: { src: "10.0.0.0/8", dst: "10.1.2.0/24" }, dir: "out" },
    ]);
    expect([e1.first, e1.second]).toEqual([0, 2]);
    expect(e1.message).toMatch(
      /specs\[0\] \(0.0.0.0\/0 -> 10.1.0.0\/16\) and specs\[2\] \(10.0.0.0\/8 -> 10.1.2.0\/24\)/,
    );
    const e2 = overlap([
      { selector: { dst: "10.1.2.0/24", proto: 6, dport: 80 }, dir: "in" },
      { selector: { dst: "10.1.0.0/16", proto: 6, dport: 80 }, dir: "in" },
    ]);
    expect([e2.first, e2.second]).toEqual([0, 1]);
    const e3 = overlap([
      { selector: SEL4, dir: "fwd", mark: { value: 1 } },
      { selector: SEL4, dir: "fwd", mark: { value: 1 } },
    ]);
    expect([e3.first, e3.second]).toEqual([0, 1]);
  });

  test("policies.addMany() accepts selectors that differ in dir, mark, priority, type, ports or prefixes", () => {
    const { nl, sent } = recordingSocket();
    new Policies({ nl, netns: undefined }).addMany([
      { selector: SEL4, dir: "out" },
      { selector: SEL4, dir: "in" },
      { selector: SEL4, dir: "out", mark: { value: 1 } },
      { selector: SEL4, dir: "out", priority: 1 },
      { selector: SEL4, dir: "out", type: "sub" },
      { selector: { ...SEL4, proto: 6, dport: 80 }, dir: "fwd" },
      { selector: { ...SEL4, proto: 6, dport: 81 }, dir: "fwd" },
      { selector: { ...SEL4, proto: 17, dport: 80 }, dir: "fwd" },
      { selector: { src: "10.0.0.0/24", dst: "10.1.1.0/24" }, dir: "out" },
      { selector: { src: "fd00::/64" }, dir: "out" },
    ]);
    expect(parseNetlinkMessages(sent[0]!).length).toBe(10);
  });

  test("policies.addMany() names the spec the kernel refused", () => {
    const { nl } = recordingSocket({ fail: { errno: 17 } });
    const policies = new Policies({ nl, netns: undefined });
    expect(() => policies.addMany([{ selector: SEL4, dir: "out" }])).toThrow(/EEXIST/);
  });
});

describe("decodePolicy() and truncated attributes", () => {
  /** A policy message: `struct xfrm_userpolicy_info` (IPv4, dir out) and one attribute. */
  function withAttribute(type: number, data: Uint8Array): Uint8Array {
    const w = new NetlinkWriter();
    encodePolicyRequest(w, { op: "add", seq: 0, spec: { selector: { dst: "10.1.0.0/16" }, dir: "out" } });
    const base = parseNetlinkMessages(w.bytes())[0]!.payload.subarray(0, SIZEOF.userpolicy_info);
    const len = 4 + data.length;
    const out = new Uint8Array(SIZEOF.userpolicy_info + ((len + 3) & ~3));
    out.set(base);
    const dv = new DataView(out.buffer);
    dv.setUint16(SIZEOF.userpolicy_info, len, true);
    dv.setUint16(SIZEOF.userpolicy_info + 2, type, true);
    out.set(data, SIZEOF.userpolicy_info + 4);
    return out;
  }

  test("a short mark is a SyntaxError naming XFRMA_MARK", () => {
    expect(() => decodePolicy(withAttribute(XFRMA.MARK, new Uint8Array(4)))).toThrow(
      new SyntaxError("Invalid XFRMA_MARK attribute: 4 bytes, expected at least 8"),
    );
  });

  test("a partial trailing template is a SyntaxError, not a dropped template", () => {
    const one = decodePolicy(withAttribute(XFRMA.TMPL, new Uint8Array(64)));
    expect(one.templates).toHaveLength(1);
    expect(() => decodePolicy(withAttribute(XFRMA.TMPL, new Uint8Array(64 + 40)))).toThrow(
      new SyntaxError("Invalid XFRMA_TMPL attribute: 104 bytes, not a multiple of the 64-byte template"),
    );
  });

  test("policies.list() refuses a short policy message instead of skipping it", () => {
    const { nl } = recordingSocket({
      reply: [{ type: XFRM_MSG.NEWPOLICY, flags: 0, seq: 1, pid: 0, payload: new Uint8Array(100) }],
    });
    expect(() => new Policies({ nl, netns: undefined }).list()).toThrow(
      new SyntaxError("Invalid xfrm policy message: 100 bytes, expected at least 168"),
    );
  });
});

describe("unknown protocol and mode numbers", () => {
  test("a template's protocol or mode dp has no name for decodes as its number and encodes back", () => {
    const w = new NetlinkWriter();
    const spec: XfrmPolicySpec = {
      selector: { dst: "10.1.0.0/16" },
      dir: "out",
      templates: [{ dst: "10.0.0.2", proto: 99, mode: 7, reqid: 1 }],
    };
    encodePolicyRequest(w, { op: "add", seq: 0, spec });
    const p = decodePolicy(parseNetlinkMessages(w.bytes())[0]!.payload);
    expect(p.templates[0]).toMatchObject({ proto: 99, mode: 7 });
    const again = new NetlinkWriter();
    encodePolicyRequest(again, { op: "add", seq: 0, spec: p });
    expect(decodePolicy(parseNetlinkMessages(again.bytes())[0]!.payload).templates).toEqual(p.templates);
  });

  test("a number outside 0-255 is a RangeError", () => {
    const w = new NetlinkWriter();
    const spec: XfrmPolicySpec = { selector: {}, dir: "out", templates: [{ proto: 256 }] };
    expect(() => encodePolicyRequest(w, { op: "add", seq: 0, spec })).toThrow(RangeError);
  });
});
