import { describe, expect, test } from "vitest";
import { decodeKey, encodeKey, encodePrefix, KEY_SIZE, reverseKey } from "./_key.ts";

describe("sockhash keys", () => {
  test("a tuple round-trips; the peer's key is the reversed tuple", () => {
    const t = { localAddress: "127.0.0.1", localPort: 40000, remoteAddress: "127.0.0.2", remotePort: 80 };
    const key = encodeKey(t, "t");
    expect(key.length).toBe(KEY_SIZE);
    expect([...key.subarray(0, 12)]).toEqual([2, 0, 0, 0, 0x40, 0x9c, 0, 0, 80, 0, 0, 0]);
    expect([...key.subarray(12, 16)]).toEqual([127, 0, 0, 1]);
    expect(decodeKey(key)).toEqual(t);
    expect(decodeKey(reverseKey(key))).toEqual({
      localAddress: "127.0.0.2",
      localPort: 80,
      remoteAddress: "127.0.0.1",
      remotePort: 40000,
    });
    expect(reverseKey(reverseKey(key))).toEqual(key);
  });

  test("IPv6 tuples, and IPv4-mapped ones normalized to IPv4 as the programs do", () => {
    const v6 = { localAddress: "::1", localPort: 1, remoteAddress: "fd00::2", remotePort: 2 };
    expect(decodeKey(encodeKey(v6, "t"))).toEqual(v6);
    expect(encodeKey(v6, "t")[0]).toBe(10);
    const mapped = encodeKey(
      { localAddress: "::ffff:127.0.0.1", localPort: 1, remoteAddress: "::ffff:127.0.0.1", remotePort: 2 },
      "t",
    );
    expect(decodeKey(mapped)).toEqual({
      localAddress: "127.0.0.1",
      localPort: 1,
      remoteAddress: "127.0.0.1",
      remotePort: 2,
    });
  });

  test("bad tuples and prefixes are refused", () => {
    expect(() =>
      encodeKey({ localAddress: "127.0.0.1", localPort: 70000, remoteAddress: "127.0.0.1", remotePort: 1 }, "t"),
    ).toThrow(RangeError);
    expect(() =>
      encodeKey({ localAddress: "127.0.0.1", localPort: 1, remoteAddress: "::1", remotePort: 1 }, "t"),
    ).toThrow(/same family/);
    expect(() => encodePrefix("10.0.0.0/33", "t")).toThrow(TypeError);
    const p = encodePrefix("10.1.0.0/16", "t");
    expect(p.family).toBe(4);
    expect([...p.key]).toEqual([16, 0, 0, 0, 10, 1, 0, 0]);
    expect(encodePrefix("::1", "t").key.length).toBe(20);
  });
});
