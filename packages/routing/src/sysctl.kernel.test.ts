import { readFileSync, readlinkSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { SyscallError } from "@dp/core";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { openRouting } from "@dp/routing";

beforeEach((t) => requireRoot(t));

/** The test process's own (host) value; these tests never write it. */
function hostValue(name: string): string {
  return readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim();
}

function nsValue(ns: TestNetns, name: string): string {
  return ns.exec("sysctl", ["-n", name]).trim();
}

const WATCHED = [
  "net.ipv4.ip_forward",
  "net.ipv6.conf.all.forwarding",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv4.conf.default.rp_filter",
  "net.ipv4.conf.all.proxy_arp",
  "net.ipv4.conf.default.proxy_arp",
  "net.ipv4.conf.all.arp_ignore",
  "net.core.somaxconn",
];

function hostSnapshot(): Record<string, string> {
  return Object.fromEntries(WATCHED.map((n) => [n, hostValue(n)]));
}

describe("sysctl", () => {
  test("setIpForward() changes the namespace's forwarding, which sysctl there sees, and not the host's", () => {
    const before = hostSnapshot();
    const thread = readlinkSync("/proc/thread-self/ns/net");
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    expect(rt.sysctl.ipForward()).toBe(false);
    rt.sysctl.setIpForward(true);
    expect(nsValue(ns, "net.ipv4.ip_forward")).toBe("1");
    expect(nsValue(ns, "net.ipv6.conf.all.forwarding")).toBe("0");
    rt.sysctl.setIpForward(true, { family: "both" });
    expect(nsValue(ns, "net.ipv6.conf.all.forwarding")).toBe("1");
    expect(rt.sysctl.ipForward({ family: 6 })).toBe(true);
    rt.sysctl.setIpForward(false, { family: 6 });
    expect(nsValue(ns, "net.ipv6.conf.all.forwarding")).toBe("0");
    expect(nsValue(ns, "net.ipv4.ip_forward")).toBe("1");
    expect(hostSnapshot()).toEqual(before);
    expect(readlinkSync("/proc/thread-self/ns/net")).toBe(thread);
  });

  test("set() writes any net.* sysctl of the namespace and get() reads it back", () => {
    const before = hostSnapshot();
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.sysctl.set("net.ipv4.conf.all.arp_ignore", 1);
    rt.sysctl.set("net.core.somaxconn", "1000");
    rt.sysctl.set("net.ipv4.ip_local_port_range", "20000 30000");
    expect(ns.exec("cat", ["/proc/sys/net/ipv4/conf/all/arp_ignore"]).trim()).toBe("1");
    expect(nsValue(ns, "net.core.somaxconn")).toBe("1000");
    expect(rt.sysctl.get("net.core.somaxconn")).toBe("1000");
    expect(rt.sysctl.get("net.ipv4.ip_local_port_range")).toBe("20000\t30000");
    expect(hostSnapshot()).toEqual(before);
  });

  test("setRpFilter() and setProxyArp() change one link, all or default, as sysctl there sees", () => {
    const before = hostSnapshot();
    using ns = netns();
    ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d0.5"]);
    using rt = openRouting({ netns: ns.ns });
    rt.sysctl.setRpFilter("d0", 2);
    rt.sysctl.setRpFilter("all", 1);
    rt.sysctl.setRpFilter("default", 2);
    // A name with a dot is one component for the per-link helpers.
    rt.sysctl.setRpFilter("d0.5", 1);
    expect(nsValue(ns, "net.ipv4.conf.d0.rp_filter")).toBe("2");
    expect(nsValue(ns, "net.ipv4.conf.all.rp_filter")).toBe("1");
    expect(nsValue(ns, "net.ipv4.conf.default.rp_filter")).toBe("2");
    expect(ns.exec("cat", ["/proc/sys/net/ipv4/conf/d0.5/rp_filter"]).trim()).toBe("1");
    expect(rt.sysctl.rpFilter("d0")).toBe(2);
    const index = (JSON.parse(ns.exec("ip", ["-json", "link", "show", "d0"])) as { ifindex: number }[])[0]!.ifindex;
    rt.sysctl.setProxyArp(index, true);
    expect(nsValue(ns, "net.ipv4.conf.d0.proxy_arp")).toBe("1");
    expect(rt.sysctl.proxyArp("d0")).toBe(true);
    expect(rt.sysctl.proxyArp("all")).toBe(false);
    rt.sysctl.setProxyArp("d0", false);
    expect(nsValue(ns, "net.ipv4.conf.d0.proxy_arp")).toBe("0");
    expect(hostSnapshot()).toEqual(before);
  });

  test("values set with sysctl -w in the namespace are read back", () => {
    using ns = netns();
    ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.exec("sysctl", [
      "-q",
      "-w",
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.d1.rp_filter=2",
      "net.ipv4.conf.d0.proxy_arp=1",
    ]);
    ns.exec("sysctl", ["-q", "-w", "net.ipv6.conf.all.forwarding=1", "net.core.somaxconn=777"]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.sysctl.ipForward()).toBe(true);
    expect(rt.sysctl.ipForward({ family: 6 })).toBe(true);
    expect(rt.sysctl.rpFilter("d1")).toBe(2);
    expect(rt.sysctl.rpFilter("d0")).toBe(0);
    expect(rt.sysctl.proxyArp("d0")).toBe(true);
    expect(rt.sysctl.get("net.core.somaxconn")).toBe("777");
  });

  test("a handle without a namespace reads the caller's values", () => {
    using rt = openRouting();
    expect(rt.sysctl.get("net.ipv4.ip_forward")).toBe(hostValue("net.ipv4.ip_forward"));
    expect(rt.sysctl.rpFilter("all")).toBe(Number(hostValue("net.ipv4.conf.all.rp_filter")));
  });

  test("a missing link or sysctl is a SyscallError ENOENT naming it", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    let err: unknown;
    try {
      rt.sysctl.rpFilter("eth9");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe("ENOENT");
    expect((err as SyscallError).message).toBe(
      'Cannot read sysctl "net.ipv4.conf.eth9.rp_filter": ENOENT (no such file or directory)',
    );
    expect(() => rt.sysctl.setProxyArp("eth9", true)).toThrow(
      /^Cannot set sysctl "net.ipv4.conf.eth9.proxy_arp" to "1": ENOENT/,
    );
    expect(() => rt.sysctl.get("net.ipv4.no_such_thing")).toThrow(/ENOENT/);
    // The host's links are not visible from the namespace.
    expect(() => rt.sysctl.proxyArp(9999)).toThrow(/ENODEV/);
  });

  test("a value the kernel cannot parse is a SyscallError EINVAL and changes nothing", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.sysctl.set("net.ipv4.ip_forward", "yes")).toThrow(
      /^Cannot set sysctl "net.ipv4.ip_forward" to "yes": EINVAL/,
    );
    expect(nsValue(ns, "net.ipv4.ip_forward")).toBe("0");
  });

  test("names outside net. and malformed names are rejected", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    expect(() => rt.sysctl.get("kernel.hostname")).toThrow(RangeError);
    expect(() => rt.sysctl.set("net.ipv4..ip_forward", 1)).toThrow(RangeError);
    expect(() => rt.sysctl.get("net/ipv4/ip_forward")).toThrow(RangeError);
    expect(() => rt.sysctl.setRpFilter("..", 1)).toThrow(RangeError);
  });
});
