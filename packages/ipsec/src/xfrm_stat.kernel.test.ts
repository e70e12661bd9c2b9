import { beforeEach, describe, expect, test } from "vitest";
import { netns, requireConfig, requireRoot, vethPair } from "@dp/core/testing";
import { parseXfrmStat, readXfrmStat, XFRM_STAT_COUNTERS } from "./xfrm_stat.ts";

beforeEach((t) => {
  requireRoot(t);
  requireConfig(t, "CONFIG_XFRM_STATISTICS");
});

describe("readXfrmStat", () => {
  test("a fresh namespace: every counter 0, the same as cat /proc/net/xfrm_stat there, all known to dp", () => {
    using ns = netns();
    const stat = readXfrmStat({ netns: ns.ns });
    const text = ns.exec("cat", ["/proc/net/xfrm_stat"]);
    expect(stat).toEqual(parseXfrmStat(text));
    expect(Object.keys(stat).length).toBeGreaterThanOrEqual(28);
    for (const [name, value] of Object.entries(stat)) {
      expect(value, name).toBe(0n);
      expect(
        XFRM_STAT_COUNTERS.some((c) => c.name === name),
        `${name} has an explanation`,
      ).toBe(true);
    }
  });

  test("counters are per namespace: a block policy's drops show only where they happened", () => {
    using a = netns();
    using b = netns();
    // Loopback skips xfrm (disable_xfrm), so the packets go to b over a veth pair.
    vethPair(a, b, { addressA: "10.99.0.1/24", addressB: "10.99.0.2/24" });
    a.exec("ip", ["xfrm", "policy", "add", "dst", "10.99.0.2/32", "dir", "out", "action", "block"]);
    expect(() => a.exec("ping", ["-c", "2", "-i", "0.2", "-W", "1", "10.99.0.2"])).toThrow();
    const sa = readXfrmStat({ netns: a.ns });
    const sb = readXfrmStat({ netns: b.ns });
    expect(sa.xfrmOutPolBlock).toBeGreaterThanOrEqual(1n);
    expect(sb.xfrmOutPolBlock).toBe(0n);
    expect(sa).toEqual(parseXfrmStat(a.exec("cat", ["/proc/net/xfrm_stat"])));
  });

  test("without a namespace it reads the caller's own file", () => {
    using ns = netns();
    const inside = ns.run(() => readXfrmStat());
    expect(inside).toEqual(readXfrmStat({ netns: ns.ns }));
  });
});
