import { describe, expect, test } from "vitest";
import {
  eth,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  type Layer,
  packet,
  PacketParseError,
  type ParsedPacket,
  parsePacket,
  tcp,
  udp,
  vxlan,
} from "@dp/hooks";

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Layers that rebuild a parsed packet: every parsed header is valid builder input. */
function layersOf(p: ParsedPacket): (Layer | Uint8Array)[] {
  const out: (Layer | Uint8Array)[] = [eth(p.eth)];
  if (p.ipv4) out.push(ipv4(p.ipv4));
  if (p.ipv6) out.push(ipv6(p.ipv6));
  if (p.tcp) out.push(tcp(p.tcp));
  if (p.udp) out.push(udp(p.udp));
  if (p.icmp) out.push(icmp(p.icmp));
  if (p.icmpv6) out.push(icmpv6(p.icmpv6));
  if (p.vxlan) out.push(vxlan(p.vxlan));
  if (p.inner) out.push(...layersOf(p.inner));
  else out.push(p.payload);
  return out;
}

// Frames Linux sent (see build.test.ts for how they were captured).
const RST4 =
  "a6c0e37755f7 863c2b29c9ca 0800 4500 0028 0000 4000 4006 26ce 0a000002 0a000001 0051 9c40 00000000 000003e9 5014 0000 fb53 0000";
const UNREACH4 =
  "a6c0e37755f7 863c2b29c9ca 0800 45c0 003a 1a48 0000 4001 4bb9 0a000002 0a000001 0303 111b 00000000 4500001e00020000401166cb0a0000010a0000029c400009000ae7246869";
const SYN6 =
  "6a0576e29fb2 9a7802af23d6 86dd 600dc1d3 0028 06 40 fd000000000000000000000000000001 fd000000000000000000000000000002 eda8 0053 dba8b6e6 00000000 a002 fd20 fa32 0000 020405a0 0402 080af68dcec700000000 01 03030a";
const VXLAN4 =
  "16e3f937b632 c22ea0f005a4 0800 4500 0053 e621 0000 4011 8076 0a000002 0a000001 b6cf 12b5 003f 0000 08000000 00002a00 020000000101 020000000202 0800 4500 0021 aacc 0000 4001 4cbc c0a80102 c0a80101 0000 bc25 0007 0001 68656c6c6f";

const SAMPLES: Record<string, Uint8Array> = {
  tcp4: packet(
    eth(),
    ipv4({ df: true, id: 7 }),
    tcp({
      dport: 80,
      seq: 1,
      flags: ["syn", "ece", "cwr"],
      options: [{ kind: "mss", value: 1400 }, { kind: "nop" }, { kind: "windowScale", shift: 3 }],
    }),
    "GET",
  ),
  tcp6: packet(
    eth(),
    ipv6({ flowLabel: 5 }),
    tcp({
      dport: 443,
      flags: ["ack", "psh"],
      options: [
        { kind: "timestamp", value: 1, echo: 2 },
        { kind: 30, data: hex("0102") },
      ],
    }),
    "x",
  ),
  udp4: packet(eth({ vlan: { id: 7, pcp: 3 } }), ipv4(), udp({ sport: 1, dport: 2 }), "payload"),
  udp6: packet(eth(), ipv6(), udp({ dport: 53 }), hex("00")),
  icmp4: packet(eth(), ipv4({ options: hex("01010100") }), icmp({ id: 1, seq: 2 }), "ping"),
  icmp6: packet(eth(), ipv6(), icmpv6({ type: "echoReply", id: 3 })),
  vxlan: packet(
    eth(),
    ipv4(),
    udp(),
    vxlan({ vni: 9 }),
    eth({ vlan: 5 }),
    ipv6(),
    tcp({ dport: 22, flags: ["fin", "ack"] }),
    "inner",
  ),
  vxlanRaw: packet(eth(), ipv6(), udp({ dport: 4789 }), vxlan({ vni: 1 }), eth({ type: 0x88b5 }), "raw"),
  other: packet(eth({ type: 0x0806 }), hex("0001080006040001")),
};

describe("parsePacket() on frames Linux built", () => {
  test("parsePacket() reads a TCP RST and finds its checksums valid", () => {
    const p = parsePacket(hex(RST4));
    expect(p.eth).toEqual({ src: "86:3c:2b:29:c9:ca", dst: "a6:c0:e3:77:55:f7", type: 0x0800 });
    expect(p.ipv4).toMatchObject({
      src: "10.0.0.2",
      dst: "10.0.0.1",
      df: true,
      ttl: 64,
      protocol: 6,
      totalLength: 40,
      checksumValid: true,
    });
    expect(p.tcp).toEqual({
      sport: 81,
      dport: 40000,
      seq: 0,
      ack: 1001,
      flags: ["rst", "ack"],
      window: 0,
      urgent: 0,
      headerLength: 20,
      options: [],
      checksum: 0xfb53,
      checksumValid: true,
    });
    expect(p.payload).toEqual(new Uint8Array(0));
    expect(p.trailer).toBeUndefined();
  });

  test("parsePacket() reads an ICMP error and leaves the quoted datagram in the payload", () => {
    const p = parsePacket(hex(UNREACH4));
    expect(p.ipv4?.tos).toBe(0xc0);
    expect(p.icmp).toEqual({ type: 3, code: 3, id: 0, seq: 0, checksum: 0x111b, checksumValid: true });
    expect(p.payload.length).toBe(30);
  });

  test("parsePacket() reads TCP options and reports a checksum the kernel left to the NIC as invalid", () => {
    const p = parsePacket(hex(SYN6));
    expect(p.ipv6).toEqual({
      src: "fd00::1",
      dst: "fd00::2",
      trafficClass: 0,
      flowLabel: 0xdc1d3,
      hopLimit: 64,
      nextHeader: 6,
      payloadLength: 40,
    });
    expect(p.tcp?.options).toEqual([
      { kind: "mss", value: 1440 },
      { kind: "sackPermitted" },
      { kind: "timestamp", value: 0xf68dcec7, echo: 0 },
      { kind: "nop" },
      { kind: "windowScale", shift: 10 },
    ]);
    expect(p.tcp?.checksumValid).toBe(false);
  });

  test("parsePacket() reads a VXLAN packet and its inner frame", () => {
    const p = parsePacket(hex(VXLAN4));
    expect(p.udp).toEqual({ sport: 46799, dport: 4789, length: 63, checksum: 0, checksumValid: true });
    expect(p.vxlan).toEqual({ flags: 8, vni: 42 });
    expect(p.inner?.eth).toEqual({ src: "02:00:00:00:02:02", dst: "02:00:00:00:01:01", type: 0x0800 });
    expect(p.inner?.ipv4).toMatchObject({ src: "192.168.1.2", dst: "192.168.1.1", checksumValid: true });
    expect(p.inner?.icmp).toMatchObject({ type: 0, id: 7, seq: 1, checksumValid: true });
    expect(new TextDecoder().decode(p.inner?.payload)).toBe("hello");
    expect(p.payload.length).toBe(14 + 33);
  });
});

describe("parsePacket() and the builders", () => {
  test.each(Object.entries(SAMPLES))("parsePacket() round-trips %s through the builders", (_, bytes) => {
    const parsed = parsePacket(bytes);
    expect(packet(...layersOf(parsed))).toEqual(bytes);
  });

  test.each(Object.entries(SAMPLES))("parsePacket() finds every checksum of %s valid", (_, bytes) => {
    const walk = (p: ParsedPacket): void => {
      for (const h of [p.ipv4, p.tcp, p.udp, p.icmp, p.icmpv6]) if (h) expect(h.checksumValid).toBe(true);
      if (p.inner) walk(p.inner);
    };
    walk(parsePacket(bytes));
  });

  test("parsePacket() reports forced wrong checksums as invalid, layer by layer", () => {
    const p = parsePacket(packet(eth(), ipv4({ forceChecksum: 1 }), tcp({ dport: 1, forceChecksum: 2 })));
    expect(p.ipv4).toMatchObject({ checksum: 1, checksumValid: false });
    expect(p.tcp).toMatchObject({ checksum: 2, checksumValid: false });
    expect(parsePacket(packet(eth(), ipv6(), icmpv6({ forceChecksum: 3 }))).icmpv6?.checksumValid).toBe(false);
    expect(parsePacket(packet(eth(), ipv4(), icmp({ forceChecksum: 3 }))).icmp?.checksumValid).toBe(false);
  });

  test("parsePacket() accepts a zero UDP checksum over IPv4 but not over IPv6", () => {
    expect(parsePacket(packet(eth(), ipv4(), udp({ dport: 1, forceChecksum: 0 }))).udp?.checksumValid).toBe(true);
    expect(parsePacket(packet(eth(), ipv6(), udp({ dport: 1, forceChecksum: 0 }))).udp?.checksumValid).toBe(false);
  });

  test("parsePacket() reads the VLAN tag and the EtherType after it", () => {
    const p = parsePacket(SAMPLES["udp4"] as Uint8Array);
    expect(p.eth).toEqual({
      src: "02:00:00:00:00:01",
      dst: "02:00:00:00:00:02",
      type: 0x0800,
      vlan: { id: 7, pcp: 3, dei: false, tpid: 0x8100 },
    });
  });

  test("parsePacket() keeps bytes after the IP datagram as the trailer", () => {
    // Ethernet pads short frames to 60 bytes.
    const frame = packet(eth(), ipv4(), icmp(), new Uint8Array(4));
    const padded = new Uint8Array(60);
    padded.set(frame);
    const p = parsePacket(padded);
    expect(p.payload).toEqual(new Uint8Array(4));
    expect(p.trailer).toEqual(new Uint8Array(14));
    expect(p.icmp?.checksumValid).toBe(true);
  });

  test("parsePacket() bounds the UDP payload by the UDP length", () => {
    const bytes = packet(eth(), ipv4(), udp({ dport: 9 }), "abc");
    bytes[39] = 8 + 2; // UDP length 10: one byte of the datagram is not UDP's
    const p = parsePacket(bytes);
    expect(new TextDecoder().decode(p.payload)).toBe("ab");
    expect(p.udp?.checksumValid).toBe(false);
  });

  test("parsePacket() leaves fragments, unknown protocols and other EtherTypes in the payload", () => {
    const frag = parsePacket(packet(eth(), ipv4({ mf: true }), udp({ dport: 1 }), "x"));
    expect(frag.udp).toBeUndefined();
    expect(frag.payload.length).toBe(9);
    expect(parsePacket(packet(eth(), ipv4({ fragmentOffset: 1, protocol: 6 }), "x")).tcp).toBeUndefined();
    const hopByHop = parsePacket(packet(eth(), ipv6({ nextHeader: 0 }), hex("3a00000000000000")));
    expect(hopByHop.icmpv6).toBeUndefined();
    expect(hopByHop.payload).toEqual(hex("3a00000000000000"));
    const arp = parsePacket(SAMPLES["other"] as Uint8Array);
    expect(arp.ipv4).toBeUndefined();
    expect(arp.payload).toEqual(hex("0001080006040001"));
  });

  test("parsePacket() keeps unknown TCP options and options with unexpected lengths as kind and data", () => {
    const bytes = packet(
      eth(),
      ipv4(),
      tcp({
        dport: 1,
        options: [
          { kind: 2, data: hex("0102030405") },
          { kind: 99, data: new Uint8Array(0) },
        ],
      }),
    );
    expect(parsePacket(bytes).tcp?.options).toEqual([
      { kind: 2, data: hex("0102030405") },
      { kind: 99, data: new Uint8Array(0) },
    ]);
  });

  test("parsePacket() parses VXLAN only on the ports it is told", () => {
    const bytes = packet(eth(), ipv4(), udp({ dport: 8472 }), vxlan({ vni: 3 }), eth(), ipv4(), icmp());
    expect(parsePacket(bytes).vxlan).toBeUndefined();
    expect(parsePacket(bytes, { vxlanPorts: [8472] }).inner?.icmp?.type).toBe(8);
    expect(parsePacket(SAMPLES["vxlan"] as Uint8Array, { vxlanPorts: [] }).inner).toBeUndefined();
  });
});

describe("parsePacket() on bad input", () => {
  test.each(Object.entries(SAMPLES))(
    "parsePacket() throws a truncated PacketParseError for every prefix of %s",
    (_, bytes) => {
      // An ARP frame has no length field: any prefix of 14 bytes or more is a frame.
      const end = bytes[12] === 0x08 && bytes[13] === 0x06 ? 14 : bytes.length;
      for (let n = 0; n < end; n++) {
        let error: unknown;
        try {
          parsePacket(bytes.subarray(0, n));
        } catch (e) {
          error = e;
        }
        expect(error, `prefix of ${n} bytes`).toBeInstanceOf(PacketParseError);
        expect((error as PacketParseError).truncated).toBe(true);
      }
    },
  );

  test("parsePacket() names the layer and the absolute offset of a truncated inner header", () => {
    const bytes = packet(eth(), ipv4(), udp(), vxlan({ vni: 1 }), hex("0102030405"));
    const error = (() => {
      try {
        parsePacket(bytes);
      } catch (e) {
        return e as PacketParseError;
      }
      throw new Error("no error");
    })();
    expect(error).toMatchObject({ name: "PacketParseError", layer: "eth", offset: 50, truncated: true });
    expect(error).toBeInstanceOf(SyntaxError);
    expect(error.message).toBe(
      "Cannot parse packet: the eth header at offset 50 is truncated: it needs 14 bytes, 5 are left",
    );
  });

  test.each([
    [
      "an IPv4 version other than 4",
      14,
      (b: Uint8Array): void => {
        b[14] = 0x55;
      },
      "ipv4",
      /version 5 is not 4/,
    ],
    [
      "an IPv4 header length below 5",
      14,
      (b: Uint8Array): void => {
        b[14] = 0x44;
      },
      "ipv4",
      /header length 4 is below 5/,
    ],
    [
      "an IPv4 total length below the header",
      14,
      (b: Uint8Array): void => {
        b[17] = 19;
      },
      "ipv4",
      /total length 19 is below the header length 20/,
    ],
    [
      "a TCP data offset below 5",
      34,
      (b: Uint8Array): void => {
        b[46] = 0x40;
      },
      "tcp",
      /data offset 4 is below 5/,
    ],
    [
      "a TCP option running past the header",
      34,
      (b: Uint8Array): void => {
        b[55] = 9;
      },
      "tcp",
      /option 2 at offset 54 has length 9/,
    ],
    [
      "a TCP option of length 1",
      34,
      (b: Uint8Array): void => {
        b[55] = 1;
      },
      "tcp",
      /has length 1/,
    ],
  ] as const)("parsePacket() throws a malformed PacketParseError for %s", (_, offset, corrupt, layer, message) => {
    const bytes = packet(eth(), ipv4(), tcp({ dport: 1, options: [{ kind: "mss", value: 1 }] }));
    corrupt(bytes);
    expect(() => parsePacket(bytes)).toThrow(message);
    expect(() => parsePacket(bytes)).toThrow(expect.objectContaining({ layer, offset, truncated: false }));
  });

  test("parsePacket() throws for a UDP length below 8 and an IPv6 version other than 6", () => {
    const u = packet(eth(), ipv4(), udp({ dport: 1 }));
    u[39] = 7;
    expect(() => parsePacket(u)).toThrow(expect.objectContaining({ layer: "udp", offset: 34, truncated: false }));
    const v = packet(eth(), ipv6(), icmpv6());
    v[14] = 0x40;
    expect(() => parsePacket(v)).toThrow(/the ipv6 header at offset 14 is malformed: version 4 is not 6/);
  });

  test("parsePacket() throws a TypeError for something that is not bytes", () => {
    expect(() => parsePacket("x" as never)).toThrow(TypeError);
  });

  test("parsePacket() returns or throws a PacketParseError for randomly corrupted frames, nothing else", () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const samples = Object.values(SAMPLES);
    for (let i = 0; i < 5000; i++) {
      const bytes = (samples[random(samples.length)] as Uint8Array).slice(0, 14 + random(200));
      for (let k = random(4) + 1; k > 0; k--) bytes[random(bytes.length)] = random(256);
      try {
        parsePacket(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(PacketParseError);
      }
    }
  });
});
