import { describe, expect, test } from "vitest";
import {
  attrString,
  attrU32,
  decodeAttributes,
  encodeAttributes,
  formatIp,
  formatMac,
  NLA_F_NESTED,
  NetlinkWriter,
  parseCidr,
  parseIp,
  parseMac,
  parseNetlinkAttributes,
  parseNetlinkMessages,
} from "@dp/core";

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

describe("NetlinkWriter", () => {
  test("encodes `ip link add va type veth peer name vb` exactly as iproute2 does", () => {
    // Captured from iproute2 6.1 (seq zeroed): see packages/routing/testdata/iproute2/veth_add.json.
    const expected =
      "54000000100005060000000000000000000000000000000000000000000000000700030076610000" +
      "2c0012000800010076657468200002001c000100000000000000000000000000000000000700030076620000";
    const w = new NetlinkWriter(16);
    w.begin(16, 0x605, 0).zeros(16).attrString(3, "va");
    w.nest(18, () => {
      // iproute2 sends IFLA_INFO_KIND without the terminating NUL.
      w.attr(1, new TextEncoder().encode("veth"));
      w.nest(2, () => {
        w.nest(1, () => {
          w.zeros(16).attrString(3, "vb");
        });
      });
    });
    w.end();
    expect(hex(w.bytes())).toBe(expected);
  });

  test("pads attributes to 4 bytes and batches several messages in one buffer", () => {
    const w = new NetlinkWriter();
    w.begin(24, 0x5, 1)
      .zeros(12)
      .attrU8(1, 7)
      .attrU16(2, 0x1234)
      .attrU64(3, 1n << 40n);
    w.end();
    w.begin(24, 0x5, 2).zeros(12).attrBe16(4, 4789).attrFlag(5);
    w.end();
    expect(w.count).toBe(2);
    const msgs = parseNetlinkMessages(w.bytes());
    expect(msgs.map((m) => m.seq)).toEqual([1, 2]);
    const a = parseNetlinkAttributes(msgs[0]!.payload.subarray(12));
    expect(a.map((x) => [x.type, x.data.length])).toEqual([
      [1, 1],
      [2, 2],
      [3, 8],
    ]);
    expect(msgs[0]!.payload.length % 4).toBe(0);
    const b = parseNetlinkAttributes(msgs[1]!.payload.subarray(12));
    expect(hex(b[0]!.data)).toBe("12b5");
    expect(b[1]!.data.length).toBe(0);
  });

  test("nested attributes can carry NLA_F_NESTED and parse back with the flag stripped", () => {
    const w = new NetlinkWriter();
    w.nest(7, () => w.attrU32(1, 99), true);
    const [outer] = parseNetlinkAttributes(w.bytes());
    expect(outer).toMatchObject({ type: 7, nested: true });
    expect(attrU32(parseNetlinkAttributes(outer!.data)[0]!.data)).toBe(99);
    expect(new DataView(w.bytes().buffer).getUint16(2, true)).toBe(7 | NLA_F_NESTED);
  });

  test("grows past its initial capacity and rejects unbalanced begin/end", () => {
    const w = new NetlinkWriter(8);
    w.begin(1, 0).attrString(1, "x".repeat(1000));
    w.end();
    expect(attrString(parseNetlinkAttributes(parseNetlinkMessages(w.bytes())[0]!.payload)[0]!.data)).toHaveLength(1000);
    expect(() => w.end()).toThrow(/none was begun/);
    w.begin(1, 0);
    expect(() => w.begin(1, 0)).toThrow(/not ended/);
  });
});

describe("netlink parsing of bad input", () => {
  test("truncated and inconsistent messages and attributes are SyntaxErrors", () => {
    const w = new NetlinkWriter();
    w.begin(16, 0).zeros(16).attrString(3, "eth0");
    w.end();
    const good = w.bytes();
    expect(() => parseNetlinkMessages(good.subarray(0, good.length - 4))).toThrow(SyntaxError);
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(0, 8, true);
    expect(() => parseNetlinkMessages(bad)).toThrow(/Invalid netlink message at offset 0: length 8/);
    const attrs = good.slice(32);
    new DataView(attrs.buffer).setUint16(0, 200, true);
    expect(() => parseNetlinkAttributes(attrs)).toThrow(/Invalid netlink attribute at offset 0/);
  });

  test("random corruption never throws anything but SyntaxError", () => {
    const w = new NetlinkWriter();
    for (let i = 0; i < 4; i++) {
      w.begin(16, 0, i)
        .zeros(16)
        .attrString(3, `if${i}`)
        .nest(18, () => w.attrString(1, "veth"));
      w.end();
    }
    const base = w.bytes();
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 2000; i++) {
      const b = base.slice(0, rand() % (base.length + 1));
      for (let j = 0; j < 4 && b.length > 0; j++) b[rand() % b.length] = rand() & 0xff;
      try {
        for (const m of parseNetlinkMessages(b))
          parseNetlinkAttributes(m.payload.subarray(Math.min(16, m.payload.length)));
      } catch (err) {
        expect(err).toBeInstanceOf(SyntaxError);
      }
    }
  });
});

describe("addresses", () => {
  test.each([
    ["10.0.0.1", 4, "10.0.0.1"],
    ["fd00::1", 6, "fd00::1"],
    ["::", 6, "::"],
    ["2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1"],
    ["::ffff:10.1.2.3", 6, "::ffff:a01:203"],
    ["fe80::", 6, "fe80::"],
  ])("parseIp(%s) and formatIp round-trip", (text, family, formatted) => {
    const ip = parseIp(text);
    expect(ip.family).toBe(family);
    expect(formatIp(ip.bytes)).toBe(formatted);
  });

  test.each(["10.0.0", "10.0.0.01", "1.2.3.4.5", "fd00:::1", "1:2:3:4:5:6:7:8:9", "g::1", "", "10.0.0.1 "])(
    "parseIp(%j) is a SyntaxError",
    (text) => {
      expect(() => parseIp(text)).toThrow(SyntaxError);
    },
  );

  test("parseCidr() and parseMac() reject malformed input with SyntaxError naming it", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ family: 4, prefixLength: 8 });
    expect(() => parseCidr("10.0.0.0/")).toThrow(/Invalid CIDR "10.0.0.0\/"/);
    expect(() => parseCidr("fd00::/129")).toThrow(/prefix length must be 0-128/);
    expect(() => parseCidr("x/24")).toThrow(/bad address/);
    expect(formatMac(parseMac("02:42:ac:11:00:02"))).toBe("02:42:ac:11:00:02");
    expect(() => parseMac("02-42-ac-11-00-02")).toThrow(/Invalid MAC address "02-42-ac-11-00-02"/);
  });
});

describe("attribute schemas", () => {
  const schema = {
    name: [3, "string"],
    mtu: [4, "u32"],
    mac: [1, "mac"],
    local: [6, "ip"],
    port: [15, "be16"],
    bytes: [2, "u64"],
    learning: [7, "flag"],
    info: [18, "nested", { kind: [1, "string"], vni: [2, "u32"] }],
  } as const;

  test("decodeAttributes() and encodeAttributes() round-trip every kind and keep unknown attributes", () => {
    const w = new NetlinkWriter();
    encodeAttributes(w, schema, {
      name: "vx0",
      mtu: 1450,
      mac: "02:00:00:00:00:01",
      local: "fd00::1",
      port: 4789,
      bytes: 1n << 40n,
      learning: true,
      info: { kind: "vxlan", vni: 42 },
    });
    w.attrU32(200, 7);
    const { values, unknown } = decodeAttributes(schema, w.bytes());
    expect(values).toEqual({
      name: "vx0",
      mtu: 1450,
      mac: "02:00:00:00:00:01",
      local: "fd00::1",
      port: 4789,
      bytes: 1n << 40n,
      learning: true,
      info: { kind: "vxlan", vni: 42 },
    });
    expect(unknown.map((a) => [a.type, attrU32(a.data)])).toEqual([[200, 7]]);
  });

  test("bad values and short payloads are typed errors naming the attribute", () => {
    expect(() => encodeAttributes(new NetlinkWriter(), schema, { mtu: "1500" as unknown as number })).toThrow(
      /Invalid value for netlink attribute "mtu": expected an integer, got string/,
    );
    expect(() => encodeAttributes(new NetlinkWriter(), schema, { mac: "zz" })).toThrow(SyntaxError);
    const w = new NetlinkWriter();
    w.attr(4, new Uint8Array(2));
    expect(() => decodeAttributes(schema, w.bytes())).toThrow(
      /Invalid netlink attribute "mtu" \(type 4\): 2 bytes, need 4/,
    );
  });
});
