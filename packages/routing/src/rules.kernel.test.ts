import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { openRouting, type Rule } from "@dp/routing";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

interface IpRule {
  priority: number;
  not?: null;
  src: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  iif?: string;
  oif?: string;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  goto?: number;
  nop?: null;
  action?: string;
  protocol: string;
}

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const PROTOCOLS: Record<string, number> = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, dhcp: 16 };

/** `ip -d -json rule show` inside the namespace, converted to dp's shape. */
function ipRules(ns: TestNetns, family: 4 | 6): Rule[] {
  const out = ns.exec("ip", [`-${family}`, "-d", "-j", "rule", "show"]).trim();
  const host = family === 4 ? 32 : 128;
  return (JSON.parse(out) as IpRule[]).map((r) => {
    let action: Rule["action"] = "toTable";
    if (r.goto !== undefined) action = "goto";
    else if (r.nop !== undefined) action = "nop";
    else if (r.action !== undefined) action = r.action as Rule["action"];
    const rule: Record<string, unknown> = {
      family,
      priority: r.priority,
      action,
      table: r.table === undefined ? 0 : (TABLES[r.table] ?? Number(r.table)),
      invert: r.not !== undefined,
      protocol: PROTOCOLS[r.protocol] ?? Number(r.protocol),
    };
    if (r.src !== "all") rule["from"] = `${r.src}/${r.srclen ?? host}`;
    if (r.dst !== undefined) rule["to"] = `${r.dst}/${r.dstlen ?? host}`;
    if (r.iif !== undefined) rule["iif"] = r.iif;
    if (r.oif !== undefined) rule["oif"] = r.oif;
    if (r.fwmark !== undefined) {
      rule["fwmark"] = Number(r.fwmark);
      rule["fwmask"] = r.fwmask === undefined ? 0xffffffff : Number(r.fwmask);
    }
    if (r.goto !== undefined) rule["goto"] = r.goto;
    return rule as unknown as Rule;
  });
}

/** Tries a TCP connection from inside `ns` and says how it ended: "refused" means the peer's kernel answered. */
function probe(ns: TestNetns, host: string, localAddress?: string): string {
  const script = `
    const s = require("node:net").connect({ host: ${JSON.stringify(host)}, port: 9, timeout: 2000${localAddress === undefined ? "" : `, localAddress: ${JSON.stringify(localAddress)}`} });
    s.on("connect", () => { console.log("connected"); s.destroy(); });
    s.on("timeout", () => { console.log("timeout"); s.destroy(); });
    s.on("error", (e) => console.log(e.code === "ECONNREFUSED" ? "refused" : e.code));`;
  return ns.exec(process.execPath, ["-e", script]).trim();
}

describe("Rules", () => {
  test("rules.list() reads the kernel's default rules of both families", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const all = rt.rules.list();
    expect(all.filter((r) => r.family === 4)).toEqual(ipRules(ns, 4));
    expect(all.filter((r) => r.family === 6)).toEqual(ipRules(ns, 6));
    expect(rt.rules.list({ family: 6 }).map((r) => [r.priority, r.table, r.protocol])).toEqual([
      [0, 255, 2],
      [32766, 254, 2],
    ]);
    expect(rt.rules.list({ family: 4 })).toHaveLength(3);
  });

  test("rules.add() IPv4 rules with every field show in ip rule as dp lists them", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.rules.add({ priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 });
    rt.rules.add({ priority: 40, fwmark: 0x10, fwmask: 0xff, table: 200 });
    rt.rules.add({ priority: 41, fwmark: 0x20, table: 200 });
    rt.rules.add({ priority: 50, iif: "d0", oif: "d1", table: "main" });
    rt.rules.add({ priority: 70, invert: true, from: "10.0.0.0/8", table: 1000, protocol: "static" });
    rt.rules.add({ priority: 80, from: "10.9.0.0/16", action: "blackhole" });
    rt.rules.add({ priority: 81, to: "10.9.0.0/16", action: "unreachable" });
    rt.rules.add({ priority: 82, iif: "lo", action: "prohibit" });
    rt.rules.add({ priority: 83, action: "nop", protocol: 150 });
    rt.rules.add({ priority: 84, fwmark: 7, goto: 90 });
    rt.rules.add({ priority: 90, to: "10.8.0.0/24", table: "default" });
    const listed = rt.rules.list({ family: 4 });
    expect(listed).toEqual(ipRules(ns, 4));
    const at = (p: number): Rule | undefined => listed.find((r) => r.priority === p);
    expect(at(30)).toEqual({ family: 4, priority: 30, action: "toTable", table: 100, from: "10.0.0.5/32", to: "10.1.0.0/16", invert: false, protocol: 0 });
    expect(at(41)).toMatchObject({ fwmark: 0x20, fwmask: 0xffffffff });
    expect(at(70)).toMatchObject({ invert: true, table: 1000, protocol: 4 });
    expect(at(84)).toMatchObject({ action: "goto", goto: 90, table: 0 });
    expect(at(80)).toMatchObject({ action: "blackhole", table: 0 });
  });

  test("rules.add() IPv6 rules show in ip -6 rule as dp lists them", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.rules.add({ priority: 60, from: "fd00::/64", table: 100 });
    rt.rules.add({ priority: 61, to: "fd00:1::5", iif: "d0", table: 1000 });
    rt.rules.add({ family: 6, priority: 62, fwmark: 0x200, fwmask: 0xf00, action: "unreachable" });
    rt.rules.add({ family: 6, priority: 63, oif: "d1", invert: true, table: "main" });
    const listed = rt.rules.list({ family: 6 });
    expect(listed).toEqual(ipRules(ns, 6));
    expect(listed.find((r) => r.priority === 61)).toMatchObject({ to: "fd00:1::5/128", iif: "d0", table: 1000, family: 6 });
    expect(rt.rules.list({ family: 4 }).some((r) => r.priority >= 60 && r.priority <= 63)).toBe(false);
  });

  test("rules.add() makes the two seed rules exactly as ip rule add makes them", () => {
    using byDp = netns();
    using byIp = netns();
    using rt = openRouting({ netns: byDp.ns });
    // priority 20: from all to POD_IP lookup main; priority 30: from POD_IP to VPC_CIDR lookup TABLE
    rt.rules.add({ priority: 20, to: "10.0.0.5", table: "main" });
    rt.rules.add({ priority: 30, from: "10.0.0.5", to: "172.31.0.0/16", table: 2 });
    byIp.exec("ip", ["rule", "add", "to", "10.0.0.5", "lookup", "main", "priority", "20"]);
    byIp.exec("ip", ["rule", "add", "from", "10.0.0.5", "to", "172.31.0.0/16", "lookup", "2", "priority", "30"]);
    for (const args of [["-j", "rule", "show"], ["-d", "-j", "rule", "show"], ["rule", "show"]]) {
      expect(byDp.exec("ip", args)).toBe(byIp.exec("ip", args));
    }
    expect(byDp.exec("ip", ["rule", "show", "priority", "30"]).trim()).toBe("30:\tfrom 10.0.0.5 to 172.31.0.0/16 lookup 2");
  });

  test("rules.delete() removes the first matching rule and returns false when none matches", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.rules.add({ priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 });
    rt.rules.add({ priority: 31, fwmark: 0x10, fwmask: 0xff, table: 1000 });
    rt.rules.add({ priority: 32, from: "fd00::/64", table: 100 });
    rt.rules.add({ priority: 33, from: "10.0.0.6", table: 100 });
    expect(rt.rules.delete({ priority: 30, from: "10.0.0.6" })).toBe(false);
    expect(rt.rules.delete({ priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 })).toBe(true);
    expect(rt.rules.delete({ priority: 30 })).toBe(false);
    expect(rt.rules.delete({ fwmark: 0x10, fwmask: 0xff, table: 1000 })).toBe(true);
    expect(rt.rules.delete({ family: 6, priority: 32 })).toBe(true);
    expect(rt.rules.delete({ priority: 33, action: "blackhole" })).toBe(false);
    expect(rt.rules.delete({ priority: 33 })).toBe(true);
    expect(ns.exec("ip", ["rule", "show"]).trim().split("\n")).toHaveLength(3);
    expect(ns.exec("ip", ["-6", "rule", "show"]).trim().split("\n")).toHaveLength(2);
  });

  test("rules made by ip rule add are read back by dp and deleted by it", () => {
    using ns = netns();
    const ip = (...args: string[]): string => ns.exec("ip", args);
    ip("rule", "add", "from", "10.0.0.5", "to", "10.1.0.0/16", "lookup", "100", "priority", "30");
    ip("rule", "add", "not", "from", "10.0.0.0/8", "iif", "d0", "oif", "d1", "fwmark", "0x10/0xff", "lookup", "1000", "priority", "70", "protocol", "static");
    ip("rule", "add", "from", "10.9.0.0/16", "goto", "100", "priority", "90");
    ip("rule", "add", "to", "10.9.0.0/16", "prohibit", "priority", "91");
    ip("rule", "add", "fwmark", "3", "nop", "priority", "92");
    ip("-6", "rule", "add", "from", "fd00::/64", "lookup", "100", "priority", "60");
    ip("-6", "rule", "add", "to", "fd00:1::/48", "blackhole", "priority", "61");
    using rt = openRouting({ netns: ns.ns });
    expect(rt.rules.list({ family: 4 })).toEqual(ipRules(ns, 4));
    expect(rt.rules.list({ family: 6 })).toEqual(ipRules(ns, 6));
    expect(rt.rules.list().find((r) => r.priority === 70)).toEqual({
      family: 4,
      priority: 70,
      action: "toTable",
      table: 1000,
      from: "10.0.0.0/8",
      iif: "d0",
      oif: "d1",
      fwmark: 0x10,
      fwmask: 0xff,
      invert: true,
      protocol: 4,
    });
    // A listed rule is a spec that matches itself.
    for (const r of rt.rules.list()) {
      if (r.protocol === 2) continue; // the kernel's defaults
      expect(rt.rules.delete(r)).toBe(true);
    }
    expect(rt.rules.list().every((r) => r.protocol === 2)).toBe(true);
  });

  test("rules.add() refuses a duplicate (EEXIST) and a backward goto (EINVAL, the kernel's reason), and accepts an unresolved goto and a table with no routes", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.rules.add({ priority: 30, from: "10.0.0.5", table: 100 });
    try {
      rt.rules.add({ priority: 30, from: "10.0.0.5", table: 100 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as Error).message).toBe('Cannot add rule 30 "from 10.0.0.5 lookup 100": EEXIST (file exists)');
    }
    expect(() => rt.rules.add({ priority: 50, goto: 40 })).toThrow(
      expect.objectContaining({ code: "EINVAL", extAck: "Backward goto not supported", message: 'Cannot add rule 50 "from all goto 40": EINVAL (invalid argument): Backward goto not supported' }),
    );
    // A goto to a priority nobody holds yet is allowed: ip shows it as unresolved.
    rt.rules.add({ priority: 60, goto: 4000 });
    expect(JSON.parse(ns.exec("ip", ["-j", "rule", "show", "priority", "60"]))).toEqual([{ priority: 60, src: "all", goto: 4000, unresolved: null }]);
    // A lookup in a table that has no routes is allowed in both families; the table stays empty.
    rt.rules.add({ priority: 70, from: "10.0.0.7", table: 4242 });
    rt.rules.add({ priority: 70, from: "fd00::7", table: 4242 });
    expect(rt.routes.list({ table: 4242 })).toEqual([]);
    expect(rt.rules.list().filter((r) => r.table === 4242)).toHaveLength(2);
    // Table 0 would make the kernel pick an empty table for IPv4 and refuse for IPv6: dp refuses it for both.
    expect(() => rt.rules.add({ priority: 80, from: "10.0.0.8", table: 0 })).toThrow(RangeError);
    expect(() => rt.rules.add({ priority: 80, from: "fd00::8", table: 0 })).toThrow(RangeError);
    expect(rt.rules.list().some((r) => r.priority === 30 && r.table !== 100)).toBe(false);
  });

  test("a from-prefix rule selects the only table that reaches a peer namespace", () => {
    using a = netns({ label: "qa" });
    using b = netns({ label: "qb" });
    vethPair(a, b, { addressA: "10.50.0.1/24", addressB: "10.50.0.2/24", nameA: "va", nameB: "vb" });
    a.exec("ip", ["addr", "add", "10.50.0.11/24", "dev", "va"]);
    b.exec("ip", ["addr", "add", "10.60.0.1/32", "dev", "lo"]);
    using rt = openRouting({ netns: a.ns });
    rt.routes.add({ dst: "10.60.0.1/32", via: "10.50.0.2", dev: "va", table: 100 });
    expect(probe(a, "10.60.0.1", "10.50.0.11")).toBe("ENETUNREACH");
    rt.rules.add({ priority: 30, from: "10.50.0.11", table: 100 });
    expect(probe(a, "10.60.0.1", "10.50.0.11")).toBe("refused");
    // Another source address does not match the rule.
    expect(probe(a, "10.60.0.1", "10.50.0.1")).toBe("ENETUNREACH");
    expect(rt.rules.delete({ priority: 30 })).toBe(true);
    expect(probe(a, "10.60.0.1", "10.50.0.11")).toBe("ENETUNREACH");
  });
});
