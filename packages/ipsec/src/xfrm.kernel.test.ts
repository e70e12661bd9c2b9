import { beforeEach, describe, expect, test } from "vitest";
import { ClosedError } from "@dp/core";
import { netns, requireRoot } from "@dp/core/testing";
import { openXfrm } from "@dp/ipsec";

beforeEach((t) => requireRoot(t));

describe("Xfrm", () => {
  test("spdInfo() counts the policies per direction as ip xfrm policy count does", () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    expect(x.spdInfo()).toMatchObject({ in: 0, out: 0, fwd: 0, inSocket: 0, outSocket: 0, fwdSocket: 0 });
    x.policies.addMany([
      ...Array.from({ length: 3 }, (_, i) => ({ selector: { dst: `10.${i}.0.0/16` }, dir: "out" as const })),
      { selector: { dst: "10.0.0.0/16" }, dir: "in" },
      { selector: { dst: "fd00::/64" }, dir: "fwd" },
    ]);
    const info = x.spdInfo();
    expect([info.in, info.out, info.fwd]).toEqual([1, 3, 1]);
    expect(ns.exec("ip", ["xfrm", "policy", "count"])).toContain(`SPD IN  ${info.in} OUT ${info.out} FWD ${info.fwd}`);
    expect(info.hashBuckets).toBeGreaterThan(0);
    expect(info.hashMaxBuckets).toBeGreaterThanOrEqual(info.hashBuckets);
    expect(info.ipv4Threshold).toEqual({ local: 32, remote: 32 });
    expect(info.ipv6Threshold).toEqual({ local: 128, remote: 128 });
  });

  test("sadInfo() reads the SAD's count and hash size", () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    expect(x.sadInfo().count).toBe(0);
    // Larval states from SPI allocation count in the SAD and need no ESP in the kernel.
    for (const dst of ["10.0.0.2", "10.0.0.3", "10.0.0.4"]) x.states.allocSpi({ src: "10.0.0.1", dst });
    const info = x.sadInfo();
    expect(info.count).toBe(3);
    expect(ns.exec("ip", ["xfrm", "state", "count"])).toContain(`SAD count ${info.count}`);
    expect(info.hashBuckets).toBeGreaterThan(0);
    expect(info.hashMaxBuckets).toBeGreaterThanOrEqual(info.hashBuckets);
  });

  test("a handle is bound to its namespace and close() is idempotent", () => {
    using a = netns();
    using b = netns();
    using xa = openXfrm({ netns: a.ns });
    using xb = openXfrm({ netns: b.ns });
    xa.policies.add({ selector: { dst: "10.1.0.0/16" }, dir: "out" });
    expect(xa.policies.list().length).toBe(1);
    expect(xb.policies.list()).toEqual([]);
    expect(b.exec("ip", ["xfrm", "policy"]).trim()).toBe("");
    xa.close();
    xa.close();
    expect(xa.closed).toBe(true);
    expect(() => xa.policies.list()).toThrow(ClosedError);
  });
});
