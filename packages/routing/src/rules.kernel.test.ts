import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { openRouting, type Rule, RuleShadowedError } from "@dp/routing";
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
  tos?: string;
  ipproto?: string;
  sport?: number;
  sport_start?: number;
  sport_end?: number;
  dport?: number;
  dport_start?: number;
  dport_end?: number;
  uid_start?: number;
  uid_end?: number;
  l3mdev?: null;
  suppress_prefixlen?: number;
  suppress_ifgroup?: string;
  flow_from?: string;
  flow_to?: string;
  unresolved?: null;
  iif_detached?: null;
  oif_detached?: null;
}

const IP_PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, "ipv6-icmp": 58, sctp: 132 };

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
    if (r.tos !== undefined) rule["tos"] = Number(r.tos);
    if (r.ipproto !== undefined) rule["ipProto"] = IP_PROTOS[r.ipproto] ?? Number(r.ipproto.replace("ipproto-", ""));
    if (r.sport !== undefined) rule["sport"] = { start: r.sport, end: r.sport };
    if (r.sport_start !== undefined) rule["sport"] = { start: r.sport_start, end: r.sport_end };
    if (r.dport !== undefined) rule["dport"] = { start: r.dport, end: r.dport };
    if (r.dport_start !== undefined) rule["dport"] = { start: r.dport_start, end: r.dport_end };
    if (r.uid_start !== undefined) rule["uidRange"] = { start: r.uid_start, end: r.uid_end };
    if (r.l3mdev !== undefined) rule["l3mdev"] = true;
    if (r.suppress_prefixlen !== undefined) rule["suppressPrefixLength"] = r.suppress_prefixlen;
    if (r.suppress_ifgroup !== undefined) rule["suppressIfgroup"] = Number(r.suppress_ifgroup);
    if (r.flow_to !== undefined) rule["realms"] = { from: Number(r.flow_from ?? 0), to: Number(r.flow_to) };
    if (r.unresolved !== undefined) rule["unresolved"] = true;
    if (r.iif_detached !== undefined) rule["iifDetached"] = true;
    if (r.oif_detached !== undefined) rule["oifDetached"] = true;
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
    expect(at(30)).toEqual({
      family: 4,
      priority: 30,
      action: "toTable",
      table: 100,
      from: "10.0.0.5/32",
      to: "10.1.0.0/16",
      invert: false,
      protocol: 0,
    });
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
    expect(listed.find((r) => r.priority === 61)).toMatchObject({
      to: "fd00:1::5/128",
      iif: "d0",
      table: 1000,
      family: 6,
    });
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
    for (const args of [
      ["-j", "rule", "show"],
      ["-d", "-j", "rule", "show"],
      ["rule", "show"],
    ]) {
      expect(byDp.exec("ip", args)).toBe(byIp.exec("ip", args));
    }
    expect(byDp.exec("ip", ["rule", "show", "priority", "30"]).trim()).toBe(
      "30:\tfrom 10.0.0.5 to 172.31.0.0/16 lookup 2",
    );
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
    ip(
      "rule",
      "add",
      "not",
      "from",
      "10.0.0.0/8",
      "iif",
      "d0",
      "oif",
      "d1",
      "fwmark",
      "0x10/0xff",
      "lookup",
      "1000",
      "priority",
      "70",
      "protocol",
      "static",
    );
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
      // No link is named d0 or d1 in this namespace.
      iifDetached: true,
      oifDetached: true,
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
      expect.objectContaining({
        code: "EINVAL",
        extAck: "Backward goto not supported",
        message: 'Cannot add rule 50 "from all goto 40": EINVAL (invalid argument): Backward goto not supported',
      }),
    );
    // A goto to a priority nobody holds yet is allowed: ip shows it as unresolved.
    rt.rules.add({ priority: 60, goto: 4000 });
    expect(JSON.parse(ns.exec("ip", ["-j", "rule", "show", "priority", "60"]))).toEqual([
      { priority: 60, src: "all", goto: 4000, unresolved: null },
    ]);
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

  // Every selector and action iproute2 6.1 knows, in the words of ip rule add.
  const IP_RULES = [
    "pref 100 ipproto tcp dport 80 lookup 100",
    "pref 100 lookup 100",
    "pref 101 ipproto udp sport 1000-2000 dport 53 lookup 100",
    "pref 102 uidrange 1000-2000 lookup 100",
    "pref 103 l3mdev",
    "pref 104 lookup main suppress_prefixlength 0 suppress_ifgroup 5",
    "pref 105 tos 0x10 lookup 100",
    "pref 106 from 10.0.0.0/8 realms 1/2 lookup 100",
    "pref 107 fwmark 0/0xff00 lookup 100",
    "pref 108 not iif lo oif lo goto 200",
    "pref 109 realms 7 lookup 100",
    "pref 110 ipproto 200 lookup 100",
    "pref 111 nop",
  ];

  test("rules.list() reads every attribute of rules ip rule add made, as ip -json shows them", () => {
    using ns = netns();
    for (const r of IP_RULES) ns.exec("ip", ["rule", "add", ...r.split(" ")]);
    using rt = openRouting({ netns: ns.ns });
    const listed = rt.rules.list({ family: 4 });
    expect(listed).toEqual(ipRules(ns, 4));
    // "fwmark 0/0xff00" is mark 0 under that mask, not any mark.
    expect(listed.find((r) => r.priority === 107)).toMatchObject({ fwmark: 0, fwmask: 0xff00 });
  });

  test("rules.add() makes every attribute ip -json shows, and re-adding a listed rule into a fresh namespace reproduces it", () => {
    using ns = netns();
    for (const r of IP_RULES) ns.exec("ip", ["rule", "add", ...r.split(" ")]);
    using rt = openRouting({ netns: ns.ns });
    const listed = rt.rules.list({ family: 4 }).filter((r) => r.protocol !== 2);
    using fresh = netns();
    using rt2 = openRouting({ netns: fresh.ns });
    for (const r of listed) rt2.rules.add(r);
    expect(ipRules(fresh, 4)).toEqual(ipRules(ns, 4));
    expect(rt2.rules.list({ family: 4 })).toEqual(rt.rules.list({ family: 4 }));
  });

  test("rules.add() sets the selectors iproute2 6.1 cannot (dscp, port masks, flow label, tunnel id) and lists them back", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    const specs = [
      { family: 6, priority: 200, flowlabel: 0x12345, flowlabelMask: 0xfffff, table: 100 },
      { family: 4, priority: 201, dscp: 10, table: 100 },
      { family: 4, priority: 202, ipProto: 6, dport: 0x1000, dportMask: 0xf000, table: 100 },
      { family: 4, priority: 203, tunId: 42n, table: 100 },
    ] as const;
    for (const spec of specs) rt.rules.add(spec);
    const mine = rt.rules.list().filter((r) => r.priority >= 200 && r.priority < 300);
    expect(mine).toEqual([
      { family: 4, priority: 201, action: "toTable", table: 100, invert: false, protocol: 0, dscp: 10 },
      {
        family: 4,
        priority: 202,
        action: "toTable",
        table: 100,
        invert: false,
        protocol: 0,
        ipProto: 6,
        dport: { start: 0x1000, end: 0x1000 },
        dportMask: 0xf000,
      },
      { family: 4, priority: 203, action: "toTable", table: 100, invert: false, protocol: 0, tunId: 42n },
      {
        family: 6,
        priority: 200,
        action: "toTable",
        table: 100,
        invert: false,
        protocol: 0,
        flowlabel: 0x12345,
        flowlabelMask: 0xfffff,
      },
    ]);
    for (const r of mine) expect(rt.rules.delete(r)).toBe(true);
    expect(rt.rules.list().filter((r) => r.priority >= 200 && r.priority < 300)).toEqual([]);
  });

  test("rules.delete() of a listed rule refuses when the kernel would delete an earlier, more specific one, and deletes nothing", () => {
    using ns = netns();
    ns.exec("ip", ["rule", "add", "pref", "100", "ipproto", "tcp", "dport", "80", "lookup", "100"]);
    ns.exec("ip", ["rule", "add", "pref", "100", "lookup", "100"]);
    using rt = openRouting({ netns: ns.ns });
    const [specific, plain] = rt.rules.list({ family: 4 }).filter((r) => r.priority === 100);
    expect(specific?.ipProto).toBe(6);
    expect(plain?.ipProto).toBeUndefined();
    const before = ipRules(ns, 4);
    expect(() => rt.rules.delete(plain!)).toThrow(RuleShadowedError);
    expect(() => rt.rules.delete(plain!)).toThrow(
      'Cannot delete rule 100 "from all lookup 100": the kernel would delete rule 100 "from all ipproto 6 dport 80 lookup 100" instead, which comes first and matches the request',
    );
    expect(() => rt.rules.delete({ priority: 100, table: 100 })).toThrow(RuleShadowedError);
    expect(ipRules(ns, 4)).toEqual(before);
    // The specific one is first: deleting it takes it, and then the plain one can go.
    expect(rt.rules.delete(specific!)).toBe(true);
    expect(ipRules(ns, 4).filter((r) => r.priority === 100)).toEqual([{ ...plain }]);
    expect(rt.rules.delete(plain!)).toBe(true);
    expect(rt.rules.delete(plain!)).toBe(false);
  });

  test("rules.delete() never takes a rule that differs in what the kernel does not compare (not, goto target), as ip rule del does", () => {
    using ns = netns();
    using rt = openRouting({ netns: ns.ns });
    rt.rules.add({ priority: 50, goto: 60 });
    rt.rules.add({ priority: 51, from: "10.0.0.0/8", table: 100 });
    const before = ipRules(ns, 4);
    // ip rule del pref 50 goto 70 deletes "50: goto 60"; dp refuses.
    expect(() => rt.rules.delete({ priority: 50, goto: 70 })).toThrow(
      /the kernel would delete rule 50 "from all goto 60" instead, which comes first and matches the request but not the spec/,
    );
    expect(() => rt.rules.delete({ priority: 51, from: "10.0.0.0/8", invert: true })).toThrow(RuleShadowedError);
    expect(ipRules(ns, 4)).toEqual(before);
    expect(rt.rules.delete({ priority: 50, goto: 60 })).toBe(true);
    expect(rt.rules.delete({ priority: 51, from: "10.0.0.0/8", invert: false })).toBe(true);
  });

  test("rules.delete() by a pattern takes the first rule that has it, as ip rule del would", () => {
    using ns = netns();
    for (const r of IP_RULES) ns.exec("ip", ["rule", "add", ...r.split(" ")]);
    using rt = openRouting({ netns: ns.ns });
    expect(rt.rules.delete({ priority: 101 })).toBe(true);
    expect(rt.rules.delete({ ipProto: 200 })).toBe(true);
    expect(rt.rules.delete({ fwmark: 0, fwmask: 0xff00 })).toBe(true);
    expect(rt.rules.delete({ uidRange: { start: 1000, end: 2000 } })).toBe(true);
    expect(rt.rules.delete({ l3mdev: true })).toBe(true);
    expect(ipRules(ns, 4).map((r) => r.priority)).toEqual([0, 100, 100, 104, 105, 106, 108, 109, 111, 32766, 32767]);
  });
});
