import { beforeEach, describe, expect, test } from "vitest";
import { hasHelper, hasLinkType, hasMapType, hasProgramType, hasTcx, kernelVersion, type MapType } from "@dp/core";
import { requireKernel, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const MAP_TYPES: MapType[] = [
  "hash",
  "array",
  "progArray",
  "percpuHash",
  "percpuArray",
  "lruHash",
  "lruPercpuHash",
  "lpmTrie",
  "arrayOfMaps",
  "hashOfMaps",
  "devmap",
  "devmapHash",
  "sockmap",
  "sockhash",
  "cpumap",
  "queue",
  "stack",
  "ringbuf",
  "bloomFilter",
  "xskmap",
];

describe("feature probes", () => {
  test("hasMapType() finds every map type dp uses on this kernel", () => {
    for (const type of MAP_TYPES) expect([type, hasMapType(type)]).toEqual([type, true]);
  });

  test("hasProgramType() finds the networking program types", () => {
    for (const type of [
      "xdp",
      "schedCls",
      "sockOps",
      "skMsg",
      "skSkb",
      "cgroupSkb",
      "cgroupSockAddr",
      "socketFilter",
    ] as const) {
      expect([type, hasProgramType(type)]).toEqual([type, true]);
    }
  });

  test("hasProgramType() is inconclusive, not false, for types it cannot probe", () => {
    expect(() => hasProgramType("tracing")).toThrow(/Cannot detect support for tracing programs/);
  });

  test("hasHelper() tells helpers a program type may call from ones it may not", () => {
    expect(hasHelper("schedCls", "redirectPeer")).toBe(true);
    expect(hasHelper("schedCls", "redirectNeigh")).toBe(true);
    expect(hasHelper("xdp", "mapLookupElem")).toBe(true);
    expect(hasHelper("socketFilter", "redirectPeer")).toBe(false);
    expect(hasHelper("xdp", "skbChangeTail")).toBe(false);
  });

  test("hasTcx() and hasLinkType() agree with the kernel version", (t) => {
    requireKernel(t, "6.6", "tcx");
    expect(hasTcx()).toBe(true);
    expect(hasLinkType("tcx")).toBe(true);
    expect(hasLinkType("xdp")).toBe(true);
    expect(hasLinkType("cgroup")).toBe(true);
  });

  test("probes reject unknown names with a TypeError", () => {
    expect(() => hasMapType("nope" as MapType)).toThrow(TypeError);
    expect(() => hasHelper("xdp", "nope" as "redirect")).toThrow(TypeError);
    expect(() => hasLinkType("nope" as "xdp")).toThrow(TypeError);
    expect(kernelVersion().major).toBeGreaterThanOrEqual(5);
  });
});
