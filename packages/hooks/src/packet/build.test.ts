// Built packets against bytes Linux put on a veth (captured with a packet
// socket on the receiving end). Where the kernel left a TCP or UDP checksum
// for the NIC to finish (CHECKSUM_PARTIAL: the field holds the folded
// pseudo-header sum), the right checksum is what the NIC would compute:
// the Internet checksum of the segment as captured.
import { describe, expect, test } from "vitest";
import {
  eth,
  icmp,
  icmpv6,
  internetChecksum,
  ipv4,
  ipv6,
  packet,
  parsePacket,
  tcp,
  udp,
  vxlan,
  VXLAN_PORT,
} from "@dp/hooks";

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** The captured frame with the L4 checksum a NIC would have filled in. */
function completed(frame: Uint8Array, l4: number, field: number): Uint8Array {
  const out = frame.slice();
  const sum = internetChecksum(out.subarray(l4));
  out[l4 + field] = sum >> 8;
  out[l4 + field + 1] = sum & 0xff;
  return out;
}

/** ping 10.0.0.2 -p abcd -s 8 */
const ECHO4 =
  "863c2b29c9ca a6c0e37755f7 0800 4500 0024 026d 4000 4001 246a 0a000001 0a000002 0800 db39 70f7 0001 abcd000000000000";
/** ping fd00::2 -s 8 */
const ECHO6 =
  "863c2b29c9ca a6c0e37755f7 86dd 600199ba 0010 3a 40 fd000000000000000000000000000001 fd000000000000000000000000000002 8000 08a7 70f8 0001 0001020304050607";
/** The RST|ACK Linux answers a SYN to a closed port with. */
const RST4 =
  "a6c0e37755f7 863c2b29c9ca 0800 4500 0028 0000 4000 4006 26ce 0a000002 0a000001 0051 9c40 00000000 000003e9 5014 0000 fb53 0000";
/** The ICMP port unreachable Linux answers a datagram to a closed port with. */
const UNREACH4 =
  "a6c0e37755f7 863c2b29c9ca 0800 45c0 003a 1a48 0000 4001 4bb9 0a000002 0a000001 0303 111b 00000000 4500001e00020000401166cb0a0000010a0000029c400009000ae7246869";
/** A SYN from connect(): MSS, SACK permitted, timestamps, NOP, window scale; checksum left to the NIC. */
const SYN4 =
  "8a555d7754ad a21423485e4d 0800 4500 003c a120 4000 4006 8599 0a000001 0a000002 ae6e 0052 4f346bae 00000000 a002 faf0 1431 0000 020405b4 0402 080ab56396be00000000 01 03030a";
const SYN6 =
  "6a0576e29fb2 9a7802af23d6 86dd 600dc1d3 0028 06 40 fd000000000000000000000000000001 fd000000000000000000000000000002 eda8 0053 dba8b6e6 00000000 a002 fd20 fa32 0000 020405a0 0402 080af68dcec700000000 01 03030a";
/** A datagram from a UDP socket over IPv4 and IPv6; checksum left to the NIC. */
const UDP4 =
  "6a0576e29fb2 9a7802af23d6 0800 4500 0021 f8a8 4000 4011 2e21 0a000001 0a000002 b6a2 0009 000d 1421 68656c6c6f";
const UDP6 =
  "6a0576e29fb2 9a7802af23d6 86dd 6006e391 000e 11 40 fd000000000000000000000000000001 fd000000000000000000000000000002 e9d0 000a 000e fa23 68656c6c6f36";
/** An echo reply a Linux VXLAN device (noudpcsum) sent back inside VNI 42. */
const VXLAN4 =
  "16e3f937b632 c22ea0f005a4 0800 4500 0053 e621 0000 4011 8076 0a000002 0a000001 b6cf 12b5 003f 0000 08000000 00002a00 020000000101 020000000202 0800 4500 0021 aacc 0000 4001 4cbc c0a80102 c0a80101 0000 bc25 0007 0001 68656c6c6f";

describe("packet() against frames Linux built", () => {
  test("packet() builds an ICMP echo request byte for byte as ping does", () => {
    const built = packet(
      eth({ src: "a6:c0:e3:77:55:f7", dst: "86:3c:2b:29:c9:ca" }),
      ipv4({ src: "10.0.0.1", dst: "10.0.0.2", id: 621, df: true }),
      icmp({ type: "echoRequest", id: 28919, seq: 1 }),
      hex("abcd000000000000"),
    );
    expect(built).toEqual(hex(ECHO4));
  });

  test("packet() builds an ICMPv6 echo request byte for byte as ping does", () => {
    const built = packet(
      eth({ src: "a6:c0:e3:77:55:f7", dst: "86:3c:2b:29:c9:ca" }),
      ipv6({ src: "fd00::1", dst: "fd00::2", flowLabel: 0x199ba }),
      icmpv6({ type: "echoRequest", id: 28920, seq: 1 }),
      hex("0001020304050607"),
    );
    expect(built).toEqual(hex(ECHO6));
  });

  test("packet() builds a TCP RST|ACK byte for byte as the kernel does", () => {
    const built = packet(
      eth({ src: "86:3c:2b:29:c9:ca", dst: "a6:c0:e3:77:55:f7" }),
      ipv4({ src: "10.0.0.2", dst: "10.0.0.1", df: true }),
      tcp({ sport: 81, dport: 40000, ack: 1001, flags: ["ack", "rst"], window: 0 }),
    );
    expect(built).toEqual(hex(RST4));
  });

  test("packet() builds an ICMP port unreachable byte for byte as the kernel does", () => {
    const quoted = hex("4500001e00020000401166cb0a0000010a0000029c400009000ae7246869");
    const built = packet(
      eth({ src: "86:3c:2b:29:c9:ca", dst: "a6:c0:e3:77:55:f7" }),
      ipv4({ src: "10.0.0.2", dst: "10.0.0.1", tos: 0xc0, id: 6728 }),
      icmp({ type: 3, code: 3 }),
      quoted,
    );
    expect(built).toEqual(hex(UNREACH4));
  });

  test.each([
    [
      "IPv4",
      SYN4,
      ipv4({ src: "10.0.0.1", dst: "10.0.0.2", id: 0xa120, df: true }),
      34,
      { sport: 44654, dport: 82, seq: 0x4f346bae, window: 64240, mss: 1460, ts: 0xb56396be },
    ],
    [
      "IPv6",
      SYN6,
      ipv6({ src: "fd00::1", dst: "fd00::2", flowLabel: 0xdc1d3 }),
      54,
      { sport: 60840, dport: 83, seq: 0xdba8b6e6, window: 64800, mss: 1440, ts: 0xf68dcec7 },
    ],
  ] as const)(
    "packet() builds a SYN with options over %s and the checksum the NIC would finish",
    (_, frame, ip, l4, f) => {
      const layers = (forceChecksum?: number) => [
        eth({
          src: frame === SYN4 ? "a2:14:23:48:5e:4d" : "9a:78:02:af:23:d6",
          dst: frame === SYN4 ? "8a:55:5d:77:54:ad" : "6a:05:76:e2:9f:b2",
        }),
        ip,
        tcp({
          sport: f.sport,
          dport: f.dport,
          seq: f.seq,
          flags: ["syn"],
          window: f.window,
          options: [
            { kind: "mss", value: f.mss },
            { kind: "sackPermitted" },
            { kind: "timestamp", value: f.ts, echo: 0 },
            { kind: "nop" },
            { kind: "windowScale", shift: 10 },
          ],
          ...(forceChecksum === undefined ? {} : { forceChecksum }),
        }),
      ];
      const captured = hex(frame);
      const partial = (captured[l4 + 16] as number) * 256 + (captured[l4 + 17] as number);
      expect(packet(...layers(partial))).toEqual(captured);
      expect(packet(...layers())).toEqual(completed(captured, l4, 16));
    },
  );

  test.each([
    ["IPv4", UDP4, ipv4({ src: "10.0.0.1", dst: "10.0.0.2", id: 0xf8a8, df: true }), 34, 46754, 9, "hello"],
    ["IPv6", UDP6, ipv6({ src: "fd00::1", dst: "fd00::2", flowLabel: 0x6e391 }), 54, 59856, 10, "hello6"],
  ] as const)(
    "packet() builds a UDP datagram over %s with the checksum the NIC would finish",
    (_, frame, ip, l4, sport, dport, text) => {
      const built = packet(
        eth({ src: "9a:78:02:af:23:d6", dst: "6a:05:76:e2:9f:b2" }),
        ip,
        udp({ sport, dport }),
        text,
      );
      expect(built).toEqual(completed(hex(frame), l4, 6));
    },
  );

  test("packet() builds a VXLAN packet byte for byte as a Linux VXLAN device does", () => {
    const built = packet(
      eth({ src: "c2:2e:a0:f0:05:a4", dst: "16:e3:f9:37:b6:32" }),
      ipv4({ src: "10.0.0.2", dst: "10.0.0.1", id: 0xe621 }),
      udp({ sport: 46799, forceChecksum: 0 }),
      vxlan({ vni: 42 }),
      eth({ src: "02:00:00:00:02:02", dst: "02:00:00:00:01:01" }),
      ipv4({ src: "192.168.1.2", dst: "192.168.1.1", id: 0xaacc }),
      icmp({ type: "echoReply", id: 7, seq: 1 }),
      "hello",
    );
    expect(built).toEqual(hex(VXLAN4));
  });
});

describe("packet() layout", () => {
  test("packet() fills in EtherType, protocol and lengths from the layers", () => {
    const bytes = packet(eth(), ipv6(), udp({ dport: 53 }), "abc");
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint16(12)).toBe(0x86dd);
    expect(dv.getUint16(18)).toBe(8 + 3);
    expect(bytes[20]).toBe(17);
    expect(dv.getUint16(54 + 4)).toBe(11);
  });

  test.each([
    ["icmp", [icmp()], 1],
    ["tcp", [tcp({ dport: 1 })], 6],
    ["udp", [udp({ dport: 1 })], 17],
    ["ipv4", [ipv4(), icmp()], 4],
    ["ipv6", [ipv6(), icmpv6()], 41],
  ] as const)("packet() sets the IPv4 protocol for %s", (_, next, protocol) => {
    expect(packet(eth(), ipv4(), ...next)[23]).toBe(protocol);
  });

  test("packet() uses the defaults it documents", () => {
    const bytes = packet(eth(), ipv4(), tcp({ dport: 80 }));
    expect(bytes.subarray(0, 12)).toEqual(hex("020000000002 020000000001"));
    expect(bytes.subarray(26, 34)).toEqual(hex("0a000001 0a000002"));
    expect(bytes[22]).toBe(64);
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint16(34)).toBe(49152);
    expect(dv.getUint16(48)).toBe(65535);
    expect(packet(eth(), ipv6(), icmpv6()).subarray(22, 54)).toEqual(
      hex("fd000000000000000000000000000001 fd000000000000000000000000000002"),
    );
  });

  test("packet() writes a VLAN tag with priority, DEI and an 802.1ad TPID", () => {
    const bytes = packet(eth({ vlan: { id: 100, pcp: 5, dei: true, tpid: 0x88a8 } }), ipv4(), icmp());
    expect(bytes.subarray(12, 18)).toEqual(hex("88a8 b064 0800"));
  });

  test("packet() pads IPv4 options and TCP options to 32-bit words", () => {
    const bytes = packet(
      eth(),
      ipv4({ options: hex("9404 00") }),
      tcp({ dport: 1, options: [{ kind: "windowScale", shift: 7 }] }),
    );
    expect(bytes[14]).toBe(0x46);
    expect(bytes.subarray(34, 38)).toEqual(hex("94040000"));
    expect(bytes[38 + 12]).toBe(6 << 4);
    expect(bytes.subarray(38 + 20, 38 + 24)).toEqual(hex("03030700"));
  });

  test("packet() writes unnamed TCP options as kind, length and data", () => {
    const bytes = packet(
      eth(),
      ipv4(),
      tcp({
        dport: 1,
        options: [
          { kind: 5, data: hex("0000000100000002") },
          { kind: 1, data: new Uint8Array(0) },
        ],
      }),
    );
    expect(bytes.subarray(54, 54 + 12)).toEqual(hex("050a 0000000100000002 01 00"));
  });

  test("packet() sends a UDP checksum that computes to 0 as 0xffff", () => {
    // With a zero payload word the checksum is c; a payload word of c makes the sum 0xffff and the checksum 0.
    const probe = packet(eth(), ipv4(), udp({ sport: 1, dport: 2 }), hex("0000"));
    const c = (probe[40] as number) * 256 + (probe[41] as number);
    const word = c === 0xffff ? 0 : c;
    const bytes = packet(eth(), ipv4(), udp({ sport: 1, dport: 2 }), new Uint8Array([word >> 8, word & 0xff]));
    expect(bytes.subarray(40, 42)).toEqual(hex("ffff"));
    expect(parsePacket(bytes).udp?.checksumValid).toBe(true);
  });

  test("packet() writes forced checksums instead of the right ones", () => {
    const bytes = packet(eth(), ipv4({ forceChecksum: 0xbeef }), icmp({ forceChecksum: 0x1234 }));
    expect(bytes.subarray(24, 26)).toEqual(hex("beef"));
    expect(bytes.subarray(36, 38)).toEqual(hex("1234"));
  });

  test("packet() defaults the UDP port before VXLAN to 4789 and takes raw inner bytes", () => {
    const bytes = packet(eth(), ipv4(), udp(), vxlan({ vni: 0xabcdef, flags: 0x0c }), hex("0102"));
    expect(VXLAN_PORT).toBe(4789);
    expect(bytes.subarray(36, 38)).toEqual(hex("12b5"));
    expect(bytes.subarray(42)).toEqual(hex("0c000000 abcdef00 0102"));
  });

  test("packet() takes several payload parts and an explicit EtherType", () => {
    expect(packet(eth({ type: 0x88b5 }), "ab", hex("63")).subarray(12)).toEqual(hex("88b5 616263"));
    expect(packet("x")).toEqual(hex("78"));
    expect(packet()).toEqual(new Uint8Array(0));
  });

  test("packet() builds IPv4 fragments with the flags and offset given", () => {
    const bytes = packet(eth(), ipv4({ mf: true, fragmentOffset: 185, protocol: 17 }), hex("00"));
    expect(bytes.subarray(20, 22)).toEqual(hex("20b9"));
  });
});

describe("packet() and the builders refuse bad input", () => {
  test.each([
    [() => packet(tcp({ dport: 1 })), TypeError, /cannot start with tcp/],
    [
      () => packet(eth(), tcp({ dport: 1 })),
      TypeError,
      /tcp cannot follow eth \(layer 1\): eth takes ipv4, ipv6 or payload/,
    ],
    [() => packet(eth(), ipv4(), icmpv6()), TypeError, /icmpv6 cannot follow ipv4/],
    [() => packet(eth(), ipv6(), icmp()), TypeError, /icmp cannot follow ipv6/],
    [() => packet(eth(), ipv4(), tcp({ dport: 1 }), udp({ dport: 2 })), TypeError, /tcp takes only payload/],
    [() => packet(eth(), "x", ipv4()), TypeError, /ipv4 \(part 2\) comes after payload/],
    [() => packet(eth()), TypeError, /eth type is required when nothing follows/],
    [() => packet(eth(), ipv4(), "x"), TypeError, /ipv4 protocol is required when payload follows/],
    [() => packet(eth(), ipv6(), "x"), TypeError, /ipv6 nextHeader is required/],
    [() => packet(eth(), ipv4(), udp()), TypeError, /udp dport is required/],
    [() => packet(eth(), { layer: "bogus" } as never), TypeError, /Invalid packet part 1/],
    [() => packet(eth(), ipv4(), udp({ dport: 1 }), new Uint8Array(65536)), RangeError, /UDP datagram is 65544 bytes/],
    [() => packet(eth(), ipv6(), icmpv6(), new Uint8Array(65536)), RangeError, /IPv6 payload is 65544 bytes/],
  ])("packet() throws for a bad layering (%#)", (build, type, message) => {
    expect(build).toThrow(type);
    expect(build).toThrow(message);
  });

  test.each([
    [() => eth({ src: "02:00:00:00:00" }), SyntaxError, /Invalid MAC address/],
    [() => eth({ vlan: 4096 }), RangeError, /Invalid eth vlan id: expected 0 to 4095, got 4096/],
    [() => eth({ vlan: { id: 1, tpid: 0x9100 } }), RangeError, /tpid: expected 0x8100 or 0x88a8/],
    [() => ipv4({ src: "fd00::1" }), SyntaxError, /Invalid ipv4 src "fd00::1": expected an IPv4 address/],
    [() => ipv4({ ttl: 256 }), RangeError, /Invalid ipv4 ttl: expected 0 to 255, got 256/],
    [() => ipv4({ id: 1.5 }), TypeError, /Invalid ipv4 id: expected an integer, got 1.5/],
    [() => ipv4({ df: 1 as never }), TypeError, /Invalid ipv4 df: expected a boolean/],
    [() => ipv4({ options: new Uint8Array(41) }), RangeError, /at most 40 bytes/],
    [() => ipv6({ dst: "10.0.0.1" }), SyntaxError, /expected an IPv6 address/],
    [() => ipv6({ flowLabel: 0x100000 }), RangeError, /flowLabel/],
    [() => tcp({} as never), TypeError, /dport is required/],
    [() => tcp({ dport: 70000 }), RangeError, /tcp dport/],
    [() => tcp({ dport: 1, flags: ["syn", "nope" as never] }), TypeError, /Invalid tcp flag "nope"/],
    [
      () =>
        tcp({
          dport: 1,
          options: [
            { kind: "timestamp", value: 1, echo: 0 },
            { kind: 5, data: new Uint8Array(30) },
          ],
        }),
      RangeError,
      /at most 40 bytes fit, got 42/,
    ],
    [() => tcp({ dport: 1, options: [{ kind: 0, data: new Uint8Array(1) }] }), RangeError, /single byte/],
    [() => udp({ sport: -1 }), RangeError, /udp sport/],
    [() => icmp({ type: "redirect" as never }), TypeError, /Invalid icmp type "redirect"/],
    [() => icmpv6({ code: 256 }), RangeError, /icmpv6 code/],
    [() => vxlan({ vni: 1 << 24 }), RangeError, /vxlan vni/],
  ])("a builder throws for a bad field (%#)", (build, type, message) => {
    expect(build).toThrow(type);
    expect(build).toThrow(message);
  });
});
