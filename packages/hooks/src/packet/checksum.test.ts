import { describe, expect, test } from "vitest";
import { internetChecksum } from "@dp/hooks";
import { foldSum, l4Check, pseudoHeaderSum, sumWords } from "./checksum.ts";

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
}

describe("internetChecksum()", () => {
  test("internetChecksum() matches the RFC 1071 §3 numerical example", () => {
    // 0001 f203 f4f5 f6f7: the sum is ddf2, the checksum its complement.
    expect(internetChecksum(hex("0001 f203 f4f5 f6f7"))).toBe(0x220d);
    expect(foldSum(sumWords(hex("0001 f203 f4f5 f6f7")))).toBe(0xddf2);
  });

  test("internetChecksum() gives the checksum of a well-known IPv4 header", () => {
    // 192.168.0.1 -> 192.168.0.199, UDP, DF, total length 115: checksum b861.
    const header = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
    expect(internetChecksum(header)).toBe(0xb861);
    header.set([0xb8, 0x61], 10);
    expect(internetChecksum(header)).toBe(0);
  });

  test("internetChecksum() pads an odd last byte with zero", () => {
    expect(internetChecksum(hex("0102 03"))).toBe(internetChecksum(hex("0102 0300")));
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
  });

  test("internetChecksum() stays exact over large inputs (the running sum is folded)", () => {
    const big = new Uint8Array(200_000).fill(0xff);
    expect(internetChecksum(big)).toBe(0);
    big[0] = 0xfe;
    expect(internetChecksum(big)).toBe(0x0100);
  });

  test("internetChecksum() starts from a partial sum", () => {
    const data = hex("4500 0073");
    expect(internetChecksum(data, 0x1234)).toBe(internetChecksum(hex("1234 4500 0073")));
  });
});

describe("pseudoHeaderSum()", () => {
  test("pseudoHeaderSum() sums addresses, protocol and length", () => {
    const src = hex("0a000001");
    const dst = hex("0a000002");
    expect(foldSum(pseudoHeaderSum(src, dst, 6, 20))).toBe(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20);
  });

  test("l4Check() of a kernel-built TCP RST is 0", () => {
    // 10.0.0.2:81 -> 10.0.0.1:40000 RST|ACK, as Linux sent it (software checksum).
    const segment = hex("00519c4000000000000003e950140000fb530000");
    expect(l4Check(hex("0a000002"), hex("0a000001"), 6, segment)).toBe(0);
    segment[19] = 1;
    expect(l4Check(hex("0a000002"), hex("0a000001"), 6, segment)).not.toBe(0);
  });
});
