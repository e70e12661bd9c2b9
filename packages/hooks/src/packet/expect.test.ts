import { describe, expect, test } from "vitest";
import {
  eth,
  expectPacket,
  expectRewrite,
  icmp,
  ipv4,
  ipv6,
  packet,
  PacketAssertionError,
  parsePacket,
  tcp,
  udp,
  vxlan,
} from "@dp/hooks";

function caught(fn: () => void): PacketAssertionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PacketAssertionError) return e;
    throw e;
  }
  throw new Error("expected a PacketAssertionError");
}

/** Overwrites the IPv4 destination without touching any checksum. */
function patchDst(bytes: Uint8Array, last: number): Uint8Array {
  const out = bytes.slice();
  out[33] = last;
  return out;
}

const before = packet(
  eth(),
  ipv4({ dst: "10.0.0.2", ttl: 64 }),
  tcp({ sport: 1000, dport: 80, flags: ["syn"] }),
  "data",
);
const rewritten = packet(
  eth(),
  ipv4({ dst: "10.0.0.9", ttl: 64 }),
  tcp({ sport: 1000, dport: 80, flags: ["syn"] }),
  "data",
);

describe("expectRewrite()", () => {
  test("expectRewrite() passes when exactly the named fields changed and checksums are valid", () => {
    expectRewrite(before, rewritten, { ipv4: { dst: "10.0.0.9" } });
    expectRewrite(parsePacket(before), parsePacket(rewritten), { ipv4: { dst: "10.0.0.9" } });
  });

  test("expectRewrite() lists a field that changed without being named", () => {
    const e = caught(() => expectRewrite(before, rewritten, {}));
    expect(e.message).toBe(
      'Packet was not rewritten as expected: 1 difference\n  ipv4.dst: expected it unchanged ("10.0.0.2"), got "10.0.0.9"',
    );
    expect(e.name).toBe("PacketAssertionError");
    expect(e.differences).toEqual([
      {
        path: "ipv4.dst",
        expected: "10.0.0.2",
        actual: "10.0.0.9",
        description: 'ipv4.dst: expected it unchanged ("10.0.0.2"), got "10.0.0.9"',
      },
    ]);
    expect(e.actual).toEqual({ "ipv4.dst": "10.0.0.9" });
    expect(e.expected).toEqual({ "ipv4.dst": "10.0.0.2" });
  });

  test("expectRewrite() lists a named field with another value, and every other difference", () => {
    const after = packet(
      eth(),
      ipv4({ dst: "10.0.0.8", ttl: 63 }),
      tcp({ sport: 1000, dport: 8080, flags: ["syn"] }),
      "data",
    );
    const e = caught(() => expectRewrite(before, after, { ipv4: { dst: "10.0.0.9" } }));
    expect(e.differences.map((d) => d.path)).toEqual(["ipv4.dst", "ipv4.ttl", "tcp.dport"]);
    expect(e.message).toContain('ipv4.dst: expected "10.0.0.9", got "10.0.0.8"');
    expect(e.message).toContain("ipv4.ttl: expected it unchanged (64), got 63");
  });

  test("expectRewrite() fails when the rewrite left checksums wrong", () => {
    const broken = patchDst(before, 9);
    const e = caught(() => expectRewrite(before, broken, { ipv4: { dst: "10.0.0.9" } }));
    expect(e.differences.map((d) => d.path)).toEqual(["ipv4.checksumValid", "tcp.checksumValid"]);
    expect(e.message).toMatch(/ipv4\.checksum: expected a valid checksum, got 0x[0-9a-f]{4}, which is wrong/);
    expectRewrite(before, broken, { ipv4: { dst: "10.0.0.9" } }, { checksums: "ignore" });
    expectRewrite(before, broken, { ipv4: { dst: "10.0.0.9", checksumValid: false }, tcp: { checksumValid: false } });
  });

  test("expectRewrite() compares addresses, MACs and TCP flags in their normal form", () => {
    const a = packet(eth({ src: "02:00:00:00:00:01" }), ipv6({ dst: "fd00::2" }), tcp({ dport: 1, flags: ["syn"] }));
    const b = packet(
      eth({ src: "02:00:00:00:00:aa" }),
      ipv6({ dst: "fd00::9" }),
      tcp({ dport: 1, flags: ["syn", "ack"] }),
    );
    expectRewrite(a, b, {
      eth: { src: "02:00:00:00:00:AA" },
      ipv6: { dst: "FD00:0:0::9" },
      tcp: { flags: ["ack", "syn"] },
    });
  });

  test("expectRewrite() checks the VLAN tag, a removed one included", () => {
    const tagged = packet(eth({ vlan: 10 }), ipv4(), icmp());
    const untagged = packet(eth(), ipv4(), icmp());
    expectRewrite(tagged, untagged, { eth: { vlan: undefined } });
    expectRewrite(untagged, tagged, { eth: { vlan: 10 } });
    expect(() => expectRewrite(untagged, tagged, { eth: { vlan: { id: 10, pcp: 1 } } })).toThrow(
      /eth\.vlan: expected \{ id: 10, pcp: 1/,
    );
    expect(() => expectRewrite(tagged, untagged, {})).toThrow(/eth\.vlan: expected it unchanged/);
  });

  test("expectRewrite() reports layers that appeared or disappeared", () => {
    const tcpPacket = packet(eth(), ipv4(), tcp({ dport: 1 }));
    const udpPacket = packet(eth(), ipv4(), udp({ dport: 1 }));
    const e = caught(() => expectRewrite(tcpPacket, udpPacket, { ipv4: { protocol: 17, totalLength: 28 } }));
    expect(e.differences.map((d) => d.description)).toEqual([
      "tcp: expected a tcp header, got none",
      "udp: expected no udp header (the input has none), got one",
    ]);
    expectRewrite(tcpPacket, udpPacket, { ipv4: { protocol: 17, totalLength: 28 }, tcp: undefined, udp: { dport: 1 } });
  });

  test("expectRewrite() checks the inner frame of VXLAN field by field", () => {
    const outer = [eth(), ipv4(), udp(), vxlan({ vni: 5 })] as const;
    const a = packet(...outer, eth(), ipv4({ dst: "192.168.0.2" }), icmp(), "x");
    const b = packet(...outer, eth(), ipv4({ dst: "192.168.0.3" }), icmp(), "x");
    expectRewrite(a, b, { inner: { ipv4: { dst: "192.168.0.3" } } });
    const e = caught(() => expectRewrite(a, b, { vxlan: { vni: 6 } }));
    expect(e.differences.map((d) => d.path)).toEqual(["vxlan.vni", "inner.ipv4.dst"]);
  });

  test("expectRewrite() checks payload and lengths unless named", () => {
    const a = packet(eth(), ipv4(), udp({ dport: 1 }), "abc");
    const b = packet(eth(), ipv4(), udp({ dport: 1 }), "abcd");
    expect(caught(() => expectRewrite(a, b, {})).differences.map((d) => d.path)).toEqual([
      "ipv4.totalLength",
      "udp.length",
      "payload",
    ]);
    expectRewrite(a, b, { ipv4: { totalLength: 32 }, udp: { length: 12 }, payload: "abcd" });
  });

  test("expectRewrite() throws a TypeError for an unknown layer or field before comparing", () => {
    expect(() => expectRewrite(before, rewritten, { ipv4: { dest: "10.0.0.9" } } as never)).toThrow(
      /unknown field "ipv4\.dest": ipv4 has src, dst/,
    );
    expect(() => expectRewrite(before, rewritten, { ip: {} } as never)).toThrow(/unknown layer "ip"/);
    expect(() => expectRewrite(before, rewritten, { inner: { tcp: { port: 1 } } } as never)).toThrow(
      /unknown field "inner\.tcp\.port"/,
    );
  });
});

describe("expectPacket()", () => {
  test("expectPacket() passes when the named fields match and checksums are valid", () => {
    expectPacket(rewritten, { ipv4: { dst: "10.0.0.9" }, tcp: { flags: ["syn"] }, payload: "data" });
    expectPacket(rewritten, {});
  });

  test("expectPacket() lists missing layers, wrong fields and wrong checksums", () => {
    const broken = patchDst(before, 9);
    const e = caught(() => expectPacket(broken, { ipv4: { dst: "10.0.0.8" }, udp: {}, payload: "x" }));
    expect(e.message.split("\n")[0]).toBe("Packet does not match: 5 differences");
    expect(e.differences.map((d) => d.path)).toEqual([
      "ipv4.dst",
      "ipv4.checksumValid",
      "tcp.checksumValid",
      "udp",
      "payload",
    ]);
  });

  test("expectPacket() checks that a layer set to undefined is absent", () => {
    expectPacket(rewritten, { udp: undefined, inner: undefined, trailer: undefined });
    expect(() => expectPacket(rewritten, { tcp: undefined })).toThrow(/tcp: expected no tcp header, got one/);
  });
});
