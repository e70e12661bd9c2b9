import { describe, expect, test } from "vitest";
import { DEFAULT_MAP_SIZES, resolveMapSizes } from "./map_sizes.ts";

const GiB = 2 ** 30;

describe("resolveMapSizes", () => {
  test("defaults are the node's", () => {
    expect(resolveMapSizes()).toEqual({ ...DEFAULT_MAP_SIZES, source: { ctTcp: "default", ctAny: "default" } });
  });

  test("the dynamic ratio shares memory among the conntrack tables in proportion to their defaults, within Cilium's bounds", () => {
    // 64 GiB × 0.0025 = 171.8 MB for 1.25Mi entries of 104 bytes (136 MB): a little more than the defaults.
    const big = resolveMapSizes({ "bpf-map-dynamic-size-ratio": 0.0025 }, 64 * GiB);
    expect(big.ctTcp).toBe(Math.floor((1048576 * Math.floor(64 * GiB * 0.0025)) / ((1048576 + 262144) * 104)));
    expect(big.ctTcp / big.ctAny).toBeCloseTo(4, 3);
    expect(big.source).toEqual({ ctTcp: "dynamic", ctAny: "dynamic" });
    // Little memory: the minimums (128Ki TCP, 64Ki other).
    expect(resolveMapSizes({ "bpf-map-dynamic-size-ratio": 0.001 }, GiB)).toMatchObject({
      ctTcp: 131072,
      ctAny: 65536,
    });
    // Much memory: the 16Mi maximum.
    expect(resolveMapSizes({ "bpf-map-dynamic-size-ratio": 1 }, 4096 * GiB)).toMatchObject({
      ctTcp: 1 << 24,
      ctAny: 1 << 24,
    });
  });

  test("explicit sizes win over the ratio", () => {
    const s = resolveMapSizes(
      { "bpf-map-dynamic-size-ratio": 0.5, "bpf-ct-global-any-max": 4096, "bpf-policy-map-max": 1024 },
      GiB,
    );
    expect(s).toMatchObject({ ctAny: 4096, policy: 1024, source: { ctTcp: "dynamic", ctAny: "option" } });
  });

  test("out-of-range sizes and ratios are RangeErrors naming the key", () => {
    expect(() => resolveMapSizes({ "bpf-ct-global-tcp-max": 100 })).toThrow(
      /Invalid map size "bpf-ct-global-tcp-max": expected an integer in 1024-16777216, got 100/,
    );
    expect(() => resolveMapSizes({ "bpf-map-dynamic-size-ratio": 0 })).toThrow(RangeError);
    expect(() => resolveMapSizes({ "bpf-map-dynamic-size-ratio": 1.5 })).toThrow(/bpf-map-dynamic-size-ratio/);
    expect(() => resolveMapSizes({ endpoints: 1.5 })).toThrow(/"endpoints"/);
  });
});
