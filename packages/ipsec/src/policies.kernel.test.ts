import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError, openNetlink } from "@dp/core";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { Policies } from "./policies.ts";
import type { XfrmPolicy, XfrmPolicySpec, XfrmTemplate } from "./types.ts";

beforeEach((t) => requireRoot(t));

/** A Policies on a fresh xfrm socket in the namespace (closed with the returned disposer). */
function policiesIn(ns: TestNetns): Policies & Disposable {
  const nl = openNetlink("xfrm", { netns: ns.ns });
  const p = new Policies({ nl, netns: ns.ns }) as Policies & Disposable;
  p[Symbol.dispose] = () => nl.close();
  return p;
}

const PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, "ipv6-icmp": 58, sctp: 132 };

/** A policy without its counters, as `ip -s xfrm policy` and dp both show it. */
type Shown = Omit<XfrmPolicy, "current">;

function prefix(text: string): string {
  return text.includes("/") ? text : `${text}/${text.includes(":") ? 128 : 32}`;
}

/** `ip -s xfrm policy` inside the namespace, parsed into dp's shape (iproute2 6.1 has no JSON output for xfrm). */
function ipPolicies(ns: TestNetns): Shown[] {
  const out: Shown[] = [];
  let cur: Record<string, unknown> | undefined;
  let tmpl: Record<string, unknown> | undefined;
  const lifetime: Record<string, bigint> = {};
  const finish = (): void => {
    if (cur === undefined) return;
    if (Object.keys(lifetime).length > 0) cur["lifetime"] = { ...lifetime };
    out.push(cur as unknown as Shown);
  };
  for (const line of ns.exec("ip", ["-s", "xfrm", "policy"]).split("\n")) {
    if (line.trim() === "") continue;
    const w = line.trim().split(/\s+/);
    if (!line.startsWith("\t")) {
      finish();
      for (const k of Object.keys(lifetime)) delete lifetime[k];
      const sel: Record<string, unknown> = {};
      for (let i = 0; i < w.length; i += 2) {
        const [k, v] = [w[i]!, w[i + 1]!];
        if (k === "src" || k === "dst") {
          if (v !== "0.0.0.0/0" && v !== "::/0") sel[k] = prefix(v);
          sel["family"] = v.includes(":") ? 6 : 4;
        } else if (k === "proto") sel["proto"] = PROTOS[v] ?? Number(v);
        else if (k === "sport" || k === "type") sel["sport"] = Number(v);
        else if (k === "dport" || k === "code") sel["dport"] = Number(v);
      }
      cur = { selector: sel, templates: [] };
      continue;
    }
    if (cur === undefined) continue;
    if (w[0] === "dir") {
      cur["dir"] = w[1];
      cur["action"] = w[3];
      cur["index"] = Number(w[5]);
      cur["priority"] = Number(w[7]);
      cur["type"] = w[9];
      const bits = /\(0x([01]{8})\)/.exec(line)?.[1] ?? "0";
      const flags = parseInt(bits, 2);
      const names: ("localok" | "icmp")[] = [];
      if (flags & 1) names.push("localok");
      if (flags & 2) names.push("icmp");
      if (names.length > 0) cur["flags"] = names;
    } else if (w[0] === "limit:" || w[0] === "expire") {
      const kinds =
        w[0] === "limit:"
          ? line.includes("bytes")
            ? ["softBytes", "hardBytes"]
            : ["softPackets", "hardPackets"]
          : w[1] === "add:"
            ? ["softAddSeconds", "hardAddSeconds"]
            : ["softUseSeconds", "hardUseSeconds"];
      const values = [...line.matchAll(/(soft|hard) (\(INF\)|\d+)/g)].map((m) => m[2]!);
      values.forEach((v, i) => {
        if (v !== "(INF)" && !(w[0] === "expire" && v === "0")) lifetime[kinds[i]!] = BigInt(v);
      });
    } else if (w[0] === "mark") {
      const [v, m] = w[1]!.split("/");
      cur["mark"] = { value: Number(v), mask: Number(m) };
    } else if (w[0] === "if_id") {
      cur["ifId"] = Number(w[1]);
    } else if (w[0] === "tmpl") {
      tmpl = { family: w[2]!.includes(":") ? 6 : 4 };
      if (w[2] !== "0.0.0.0" && w[2] !== "::") tmpl["src"] = w[2];
      if (w[4] !== "0.0.0.0" && w[4] !== "::") tmpl["dst"] = w[4];
      (cur["templates"] as XfrmTemplate[]).push(tmpl);
    } else if (w[0] === "proto" && tmpl !== undefined) {
      tmpl["proto"] = w[1];
      tmpl["spi"] = Number(w[3]!.split("(")[0]);
      tmpl["reqid"] = Number(w[5]!.split("(")[0]);
      tmpl["mode"] = w[7];
    } else if (w[0] === "level" && tmpl !== undefined) {
      tmpl["level"] = w[1];
    }
  }
  finish();
  return out;
}

/** dp's list without the counters, in ip's order (both list by the kernel's walk). */
function shown(list: readonly XfrmPolicy[]): Shown[] {
  return list.map(({ current: _, ...rest }) => rest);
}

const SEL4 = { src: "10.0.0.0/24", dst: "10.1.0.0/24" } as const;
const TUNNEL = { src: "192.168.0.1", dst: "192.168.0.2", reqid: 1, mode: "tunnel" } as const;

describe("Policies against the kernel", () => {
  test("dp creates policies and ip -s xfrm policy shows exactly them", () => {
    using ns = netns();
    using policies = policiesIn(ns);
    const specs: XfrmPolicySpec[] = [
      { selector: SEL4, dir: "out", priority: 10, templates: [TUNNEL] },
      {
        selector: { src: "10.2.0.0/16", dst: "10.3.0.1", proto: 6, sport: 1000, dport: 80 },
        dir: "in",
        mark: { value: 0xd00, mask: 0xf00 },
        templates: [{ ...TUNNEL, src: "192.168.0.2", dst: "192.168.0.1", level: "use" }],
      },
      {
        selector: { src: "fd00::/64", dst: "fd01::1", proto: 17, dport: 4500 },
        dir: "fwd",
        action: "block",
        index: 18,
        ifId: 3,
        type: "sub",
        flags: ["localok", "icmp"],
        lifetime: { softBytes: 100n, hardPackets: 7n, hardAddSeconds: 50n, softUseSeconds: 9n },
      },
      { selector: { src: "10.0.0.0/8", proto: 1, sport: 8, dport: 0 }, dir: "out", priority: 2 },
      {
        selector: { dst: "10.9.0.0/16" },
        dir: "out",
        templates: [
          { proto: "ah", reqid: 3 },
          { src: "fc00::1", dst: "fc00::2", proto: "esp", spi: 0x100, reqid: 4, mode: "tunnel" },
        ],
      },
    ];
    for (const s of specs) policies.add(s);
    const mine = shown(policies.list());
    expect(mine).toEqual(ipPolicies(ns));
    expect(mine.length).toBe(specs.length);
    const byDst = (d: string | undefined): Shown | undefined => mine.find((p) => p.selector.dst === d);
    expect(byDst("10.1.0.0/24")).toMatchObject({
      dir: "out",
      priority: 10,
      templates: [{ ...TUNNEL, proto: "esp", spi: 0, level: "required", family: 4 }],
    });
    expect(byDst("fd01::1/128")).toMatchObject({
      index: 18,
      ifId: 3,
      type: "sub",
      action: "block",
      flags: ["localok", "icmp"],
      lifetime: { softBytes: 100n, hardPackets: 7n, hardAddSeconds: 50n, softUseSeconds: 9n },
    });
    expect(byDst("10.9.0.0/16")?.templates.map((t) => [t.proto, t.family, t.dst, t.spi])).toEqual([
      ["ah", 4, undefined, 0],
      ["esp", 6, "fc00::2", 0x100],
    ]);
  });

  test("ip creates policies and dp lists and decodes them exactly", () => {
    using ns = netns();
    using policies = policiesIn(ns);
    const sel = "src 10.0.0.0/24 dst 10.1.0.0/24";
    for (const cmd of [
      `${sel} dir out priority 3 mark 0xe00 mask 0xf00 tmpl src 1.1.1.1 dst 2.2.2.2 proto esp reqid 4 mode tunnel`,
      `${sel} proto tcp dport 443 dir in action block if_id 9 limit byte-hard 5000 limit time-soft 30`,
      "src fd00::/64 dst fd01::2 proto udp sport 53 dir fwd ptype sub flag icmp index 10",
      "src 10.0.0.0/8 dst 10.9.0.0/16 proto icmp type 8 code 0 dir in tmpl proto ah mode transport tmpl src 1.1.1.1 dst 2.2.2.2 proto esp spi 5 mode tunnel level use",
      "dir out",
    ]) {
      ns.exec("ip", ["xfrm", "policy", "add", ...cmd.split(" ")]);
    }
    const mine = shown(policies.list());
    expect(mine).toEqual(ipPolicies(ns));
    expect(mine.length).toBe(5);
    const first = mine.find((p) => p.mark !== undefined);
    expect(first).toEqual({
      selector: { family: 4, ...SEL4 },
      dir: "out",
      priority: 3,
      index: first!.index,
      action: "allow",
      type: "main",
      mark: { value: 0xe00, mask: 0xf00 },
      templates: [
        {
          src: "1.1.1.1",
          dst: "2.2.2.2",
          proto: "esp",
          spi: 0,
          reqid: 4,
          mode: "tunnel",
          level: "required",
          family: 4,
        },
      ],
    });
    expect(mine.find((p) => p.ifId === 9)).toMatchObject({
      selector: { proto: 6, dport: 443 },
      action: "block",
      lifetime: { hardBytes: 5000n, softAddSeconds: 30n },
    });
    expect(mine.find((p) => p.type === "sub")).toMatchObject({ index: 10, flags: ["icmp"], selector: { sport: 53 } });
    expect(mine.find((p) => p.selector.src === undefined && p.selector.dst === undefined)?.selector).toEqual({
      family: 4,
    });
    // What dp decoded deletes what ip made.
    for (const p of policies.list()) expect(policies.delete(p)).toBe(true);
    expect(ipPolicies(ns)).toEqual([]);
  });

  test("add refuses a duplicate, update replaces, get and delete by selector or index, flush by type", () => {
    using ns = netns();
    using policies = policiesIn(ns);
    const spec: XfrmPolicySpec = { selector: SEL4, dir: "out", templates: [TUNNEL] };
    policies.add(spec);
    expect(() => policies.add(spec)).toThrow(NetlinkError);
    expect(() => policies.add(spec)).toThrow(/Cannot add xfrm policy out 10.0.0.0\/24 -> 10.1.0.0\/24: EEXIST/);
    policies.update({ ...spec, priority: 42, action: "block" });
    expect(ipPolicies(ns)).toMatchObject([{ priority: 42, action: "block" }]);
    const got = policies.get({ selector: SEL4, dir: "out" });
    expect(got).toMatchObject({ priority: 42, action: "block" });
    expect(policies.get({ index: got!.index, dir: "out" })?.selector).toEqual({ family: 4, ...SEL4 });
    expect(policies.get({ selector: SEL4, dir: "in" })).toBeUndefined();
    expect(policies.delete({ selector: SEL4, dir: "in" })).toBe(false);
    expect(policies.delete({ index: got!.index, dir: "out" })).toBe(true);
    expect(ipPolicies(ns)).toEqual([]);

    policies.add({ ...spec, mark: { value: 1 } });
    expect(policies.get({ selector: SEL4, dir: "out" })).toBeUndefined();
    expect(policies.get({ selector: SEL4, dir: "out", mark: { value: 1 } })?.mark).toEqual({
      value: 1,
      mask: 0xffffffff,
    });
    policies.add({ selector: SEL4, dir: "in", type: "sub" });
    expect(policies.list({ type: "sub" }).map((p) => p.dir)).toEqual(["in"]);
    expect(policies.list({ mark: { value: 1 } }).map((p) => p.dir)).toEqual(["out"]);
    policies.flush();
    expect(ipPolicies(ns).map((p) => p.type)).toEqual(["sub"]);
    policies.flush("sub");
    expect(ipPolicies(ns)).toEqual([]);
  });

  test("addMany installs 2000 policies and names the spec the kernel refused", () => {
    using ns = netns();
    using policies = policiesIn(ns);
    const specs = Array.from({ length: 2000 }, (_, i) => ({
      selector: { src: "10.0.0.0/16", dst: `10.${100 + (i >> 8)}.${i & 255}.0/24` },
      dir: "out" as const,
      templates: [TUNNEL],
    }));
    policies.addMany(specs);
    expect(policies.list().length).toBe(2000);
    expect(ns.exec("ip", ["xfrm", "policy", "count"])).toMatch(/OUT 2000/);
    expect(() => policies.addMany([{ selector: { dst: "10.200.0.0/16" }, dir: "out" }, specs[7]!])).toThrow(
      /Cannot add xfrm policy out 10.0.0.0\/16 -> 10.100.7.0\/24 \(specs\[1\] of 2\): EEXIST/,
    );
    expect(policies.list().length).toBe(2001);
    policies.addMany(
      specs.slice(0, 300).map((s) => ({ ...s, action: "block" as const })),
      { update: true },
    );
    expect(policies.list({ dir: "out" }).filter((p) => p.action === "block").length).toBe(300);
  });
});
