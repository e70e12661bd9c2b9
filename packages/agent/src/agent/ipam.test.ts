import { describe, expect, test } from "vitest";
import { Ipam } from "./_ipam.ts";

describe("Ipam", () => {
  test("allocate() skips the network address, the router and claimed addresses", () => {
    const ipam = new Ipam({ ipv4: "10.200.0.0/16", ipv6: "fd10::/112" }, ["10.200.0.1", "fd10::1"]);
    ipam.claim("10.200.0.2");
    expect(ipam.allocate(4)).toBe("10.200.0.3");
    expect(ipam.allocate(4)).toBe("10.200.0.4");
    expect(ipam.allocate(6)).toBe("fd10::2");
    expect(ipam.inUse("10.200.0.3")).toBe(true);
  });

  test("allocate() does not reuse a released address at once, and wraps around", () => {
    const ipam = new Ipam({ ipv4: "10.0.0.0/29" }, ["10.0.0.1"]);
    const got = [2, 3, 4, 5, 6].map(() => ipam.allocate(4));
    expect(got).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    expect(() => ipam.allocate(4)).toThrow(/Cannot allocate an IPv4 address: 10.0.0.0\/29 is full/);
    ipam.release("10.0.0.3");
    expect(ipam.allocate(4)).toBe("10.0.0.3");
  });

  test("allocate() throws RangeError for a family without a range; claim() ignores addresses outside", () => {
    const ipam = new Ipam({ ipv4: "10.0.0.0/24" });
    expect(ipam.has(6)).toBe(false);
    expect(() => ipam.allocate(6)).toThrow(RangeError);
    ipam.claim("192.168.0.1");
    expect(ipam.inUse("192.168.0.1")).toBe(false);
  });

  test("the constructor rejects a range of the wrong family", () => {
    expect(() => new Ipam({ ipv4: "fd00::/64" })).toThrow(TypeError);
  });
});
