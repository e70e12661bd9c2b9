import { beforeEach, describe, expect, test } from "vitest";
import { openNetlink } from "@dp/core";
import { netns, requireConfig, requireRoot, type TestNetns } from "@dp/core/testing";
import { parseKeyFile } from "./keys.ts";
import { Policies } from "./policies.ts";
import { reconcile, type XfrmTables } from "./reconcile.ts";
import { buildMeshXfrm, buildPeerXfrm, type IpsecNode } from "./scheme.ts";
import { openXfrm } from "./xfrm.ts";
import type { XfrmPolicy } from "./types.ts";

beforeEach((t) => requireRoot(t));

const key1 = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${"11".repeat(20)} 128`).current;
const local: IpsecNode = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
function peer(id: number): IpsecNode {
  return { id, ips: [`192.168.0.${id}`], podCidrs: [`10.${id}.0.0/24`] };
}

/** Policy tables on a fresh xfrm socket in the namespace; states are refused (the tests pass states: false). */
function tablesIn(ns: TestNetns): XfrmTables & Disposable & { policies: Policies } {
  const nl = openNetlink("xfrm", { netns: ns.ns });
  const policies = new Policies({ nl, netns: ns.ns });
  const refuse = (): never => {
    throw new Error("states are not reconciled in this test");
  };
  return {
    policies,
    states: { list: refuse, add: refuse, update: refuse, delete: refuse },
    [Symbol.dispose]: () => nl.close(),
  };
}

/** `ip xfrm policy` blocks (one per policy), as text. */
function ipPolicyBlocks(ns: TestNetns): string[] {
  const out = ns.exec("ip", ["xfrm", "policy"]);
  return out
    .split(/\n(?=\S)/)
    .map((b) => b.trim())
    .filter((b) => b !== "");
}

function summary(p: XfrmPolicy): string {
  const t = p.templates
    .map((x) => `${x.src ?? "-"}>${x.dst ?? "-"} spi ${x.spi} reqid ${x.reqid} ${x.level}`)
    .join(",");
  const mark =
    p.mark === undefined ? "" : ` mark 0x${p.mark.value.toString(16)}/0x${(p.mark.mask ?? 0xffffffff).toString(16)}`;
  return `${p.dir} ${p.selector.src ?? "any"} -> ${p.selector.dst ?? "any"}${mark} prio ${p.priority} ${p.action} [${t}]`;
}

describe("reconcile policies against the kernel", () => {
  test("adds what is missing, repairs what changed, removes stale dp policies, keeps foreign ones", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    // Foreign policies made with ip: an IKE-style policy with reqid 1 and no mark, one with
    // Cilium's encrypt magic but another reqid, and a plain block policy.
    ns.exec("ip", [
      "xfrm",
      "policy",
      "add",
      "src",
      "10.9.0.0/16",
      "dst",
      "10.8.0.0/16",
      "dir",
      "out",
      "tmpl",
      "src",
      "1.1.1.1",
      "dst",
      "2.2.2.2",
      "proto",
      "esp",
      "reqid",
      "1",
      "mode",
      "tunnel",
    ]);
    ns.exec("ip", [
      "xfrm",
      "policy",
      "add",
      "dst",
      "10.7.0.0/16",
      "dir",
      "out",
      "mark",
      "0x00091e00",
      "mask",
      "0xffffff00",
      "tmpl",
      "proto",
      "esp",
      "reqid",
      "44",
      "mode",
      "tunnel",
    ]);
    ns.exec("ip", ["xfrm", "policy", "add", "src", "10.5.0.0/16", "dir", "in", "action", "block", "priority", "7"]);
    const foreignBefore = ipPolicyBlocks(ns);
    expect(foreignBefore).toHaveLength(3);

    // What a previous run left: policies for a peer that is gone (3), and peer 2's out
    // policy with a wrong template SPI (a changed key id) and the fwd policy at another priority.
    const previous = buildMeshXfrm(local, [
      { node: peer(2), keys: [key1] },
      { node: peer(3), keys: [key1] },
    ]);
    for (const p of previous.policies) {
      if (p.dir === "out" && p.action !== "block" && p.selector.dst === "10.2.0.0/24") {
        tables.policies.add({ ...p, templates: [{ ...p.templates![0]!, spi: 9 }] });
      } else {
        tables.policies.add(p);
      }
    }
    expect(tables.policies.list()).toHaveLength(3 + previous.policies.length);

    const desired = buildMeshXfrm(local, [
      { node: peer(2), keys: [key1] },
      { node: peer(4), keys: [key1] },
    ]);
    const plan = reconcile(tables, desired, { states: false });
    expect(plan.policies.add.map((p) => `${p.dir} ${p.selector.dst}`)).toEqual(["out 10.4.0.0/24"]);
    expect(plan.policies.repair.map((p) => `${p.dir} ${p.selector.dst}`)).toEqual(["out 10.2.0.0/24"]);
    expect(plan.policies.remove.map((p) => `${p.dir} ${p.selector.dst}`)).toEqual(["out 10.3.0.0/24"]);
    expect(plan.policies.foreign).toBe(3);
    expect(plan.policies.conflicts).toEqual([]);

    // The kernel now holds exactly the desired policies plus the three foreign ones.
    const after = tables.policies.list();
    expect(after).toHaveLength(3 + desired.policies.length);
    const out2 = after.find((p) => p.dir === "out" && p.selector.dst === "10.2.0.0/24");
    expect(out2?.templates[0]?.spi).toBe(1);
    expect(after.some((p) => p.selector.dst === "10.3.0.0/24")).toBe(false);
    expect(after.some((p) => p.selector.dst === "10.4.0.0/24")).toBe(true);
    // The shared in policy's template names no source: it accepts every peer.
    const in1 = after.find((p) => p.dir === "in" && p.mark?.value === 0x0d00);
    expect(in1?.templates[0]?.src).toBeUndefined();
    // ip shows the foreign policies unchanged.
    const blocks = ipPolicyBlocks(ns);
    for (const f of foreignBefore) expect(blocks).toContain(f);

    // A second run finds nothing to do: dp reads back exactly what it wrote.
    const again = reconcile(tables, desired, { states: false });
    expect(again.policies).toMatchObject({ add: [], repair: [], remove: [], conflicts: [], foreign: 3 });
    expect(again.policies.unchanged).toBe(desired.policies.length);
    expect(tables.policies.list().map(summary).sort()).toEqual(after.map(summary).sort());
  });

  test("what dp reads back compares equal to what it asked for (lifetimes, priorities, flags, IPv6)", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    const l6: IpsecNode = { id: 1, ips: ["192.168.0.1", "fd00::1"], podCidrs: ["10.1.0.0/24", "fd01::/64"] };
    const r6: IpsecNode = { id: 0xbeef, ips: ["192.168.0.2", "fd00::2"], podCidrs: ["10.2.0.0/24", "fd02::/64"] };
    const built = buildMeshXfrm(l6, [{ node: r6, keys: [key1] }]);
    const desired = {
      states: [],
      policies: built.policies.map((p, i) =>
        i === 0 ? { ...p, lifetime: { hardAddSeconds: 3600n, softBytes: 1_000_000n }, flags: ["localok" as const] } : p,
      ),
    };
    const first = reconcile(tables, desired, { states: false });
    expect(first.policies.add).toHaveLength(desired.policies.length);
    const second = reconcile(tables, desired, { states: false });
    expect(second.policies).toMatchObject({ add: [], repair: [], remove: [], unchanged: desired.policies.length });
    // Changing only the lifetime is a repair, and it sticks.
    desired.policies[0] = { ...desired.policies[0]!, lifetime: { hardAddSeconds: 7200n } };
    expect(reconcile(tables, desired, { states: false }).policies.repair).toHaveLength(1);
    expect(reconcile(tables, desired, { states: false }).policies.unchanged).toBe(desired.policies.length);
  });

  test("an empty desired set removes every dp policy and nothing else", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    ns.exec("ip", [
      "xfrm",
      "policy",
      "add",
      "dst",
      "10.7.0.0/16",
      "dir",
      "out",
      "tmpl",
      "proto",
      "esp",
      "reqid",
      "1",
      "mode",
      "tunnel",
    ]);
    ns.exec("ip", [
      "xfrm",
      "policy",
      "add",
      "dst",
      "10.6.0.0/16",
      "dir",
      "fwd",
      "priority",
      "2975",
      "tmpl",
      "proto",
      "esp",
      "reqid",
      "2",
      "mode",
      "tunnel",
      "level",
      "use",
    ]);
    for (const p of buildPeerXfrm(local, peer(2), key1).policies) tables.policies.add(p);
    const plan = reconcile(tables, { states: [], policies: [] }, { states: false });
    expect(plan.policies.remove.length).toBeGreaterThan(0);
    expect(plan.policies.foreign).toBe(2);
    const left = tables.policies.list();
    expect(left.map((p) => p.dir).sort()).toEqual(["fwd", "out"]);
    expect(left.every((p) => p.mark === undefined)).toBe(true);
  });

  test("a foreign policy in a desired policy's place is reported and left alone", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    // Same selector, direction and mark as dp's decrypt in policy, but reqid 9.
    ns.exec("ip", [
      "xfrm",
      "policy",
      "add",
      "dst",
      "10.1.0.0/24",
      "dir",
      "in",
      "mark",
      "0xd00",
      "mask",
      "0xf00",
      "tmpl",
      "proto",
      "esp",
      "reqid",
      "9",
      "mode",
      "tunnel",
    ]);
    const before = ipPolicyBlocks(ns);
    const desired = buildPeerXfrm(local, peer(2), key1);
    expect(() => reconcile(tables, desired, { states: false })).toThrow(AggregateError);
    const after = ipPolicyBlocks(ns);
    expect(after).toContain(before[0]);
    // Everything else was installed.
    expect(tables.policies.list()).toHaveLength(desired.policies.length);
  });
});

describe("reconcile policies of a mesh", () => {
  test("two peers: one in policy whose template accepts a state from either peer", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    const built = buildMeshXfrm(local, [
      { node: peer(2), keys: [key1] },
      { node: peer(3), keys: [key1] },
    ]);
    reconcile(tables, built, { states: false });
    const decrypt = ipPolicyBlocks(ns).filter((b) => /dir in/.test(b) && /mark 0xd00\/0xf00/.test(b));
    expect(decrypt).toHaveLength(1);
    // iproute2 prints the template's tunnel endpoints: the source is the unspecified address.
    expect(decrypt[0]).toMatch(/tmpl src 0\.0\.0\.0 dst 192\.168\.0\.1/);
    expect(decrypt[0]).not.toMatch(/192\.168\.0\.[23]/);
    expect(reconcile(tables, built, { states: false }).policies).toMatchObject({ add: [], repair: [], remove: [] });
  });

  test("a foreign GRE-key policy is counted as foreign and left alone", () => {
    using ns = netns();
    using tables = tablesIn(ns);
    ns.exec("ip", ["xfrm", "policy", "add", "dst", "10.9.0.0/24", "proto", "gre", "key", "5", "dir", "out"]);
    const before = ipPolicyBlocks(ns);
    const desired = buildPeerXfrm(local, peer(2), key1);
    const plan = reconcile(tables, desired, { states: false });
    expect(plan.policies.foreign).toBe(1);
    expect(plan.policies.add).toHaveLength(desired.policies.length);
    expect(ipPolicyBlocks(ns)).toContain(before[0]);
    const gre = tables.policies.list().find((p) => p.selector.proto === 47);
    expect(gre?.selector).toMatchObject({ dst: "10.9.0.0/24", proto: 47, sport: 0, dport: 5 });
    // What was read back names the policy again.
    tables.policies.delete(gre!);
    expect(ipPolicyBlocks(ns).some((b) => /proto gre/.test(b))).toBe(false);
  });
});

/** A boot id made of one digit. */
function boot(n: number): string {
  return `${String(n).repeat(8)}-1111-2222-3333-444444444444`;
}

describe("reconcile states against the kernel", () => {
  test("adds, replaces a changed key, removes stale dp states, keeps foreign ones; a second run is a no-op", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using xfrm = openXfrm({ netns: ns.ns });
    // A foreign state: reqid 1 as an IKE daemon would use, no mark.
    ns.exec("ip", [
      "xfrm",
      "state",
      "add",
      "src",
      "1.1.1.1",
      "dst",
      "2.2.2.2",
      "proto",
      "esp",
      "spi",
      "0x1000",
      "reqid",
      "1",
      "mode",
      "tunnel",
      "aead",
      "rfc4106(gcm(aes))",
      `0x${"22".repeat(20)}`,
      "128",
    ]);
    const foreignBefore = ns.exec("ip", [
      "xfrm",
      "state",
      "get",
      "src",
      "1.1.1.1",
      "dst",
      "2.2.2.2",
      "proto",
      "esp",
      "spi",
      "0x1000",
    ]);
    const l: IpsecNode = { ...local, bootId: boot(1) };
    const p2: IpsecNode = { ...peer(2), bootId: boot(2) };
    const p3: IpsecNode = { ...peer(3), bootId: boot(3) };
    const keyPlus = parseKeyFile(`1+ rfc4106(gcm(aes)) 0x${"11".repeat(20)} 128`).current;
    const oldKey = parseKeyFile(`1+ rfc4106(gcm(aes)) 0x${"33".repeat(20)} 128`).current;
    // A previous run: peer 3 (gone) and peer 2 with other key bytes.
    for (const s of buildPeerXfrm(l, p3, keyPlus).states) xfrm.states.add(s);
    for (const s of buildPeerXfrm(l, p2, oldKey).states) xfrm.states.add(s);
    const desired = buildMeshXfrm(l, [{ node: p2, keys: [keyPlus] }]);
    const plan = reconcile(xfrm, desired);
    expect(plan.states.add).toEqual([]);
    expect(plan.states.repair.map((r) => r.how)).toEqual(["replace", "replace"]);
    expect(plan.states.remove).toHaveLength(2);
    expect(plan.states.foreign).toBe(1);
    const states = xfrm.states.list();
    expect(states).toHaveLength(3);
    const out2 = states.find((s) => s.dst === "192.168.0.2");
    expect(out2?.aead?.key).toEqual(desired.states[0]?.aead?.key);
    expect(
      ns.exec("ip", ["xfrm", "state", "get", "src", "1.1.1.1", "dst", "2.2.2.2", "proto", "esp", "spi", "0x1000"]),
    ).toBe(foreignBefore);
    const again = reconcile(xfrm, desired);
    expect(again.states).toMatchObject({ add: [], repair: [], remove: [], unchanged: 2, foreign: 1 });
    expect(again.policies).toMatchObject({ add: [], repair: [], remove: [], unchanged: desired.policies.length });
  });

  test("an output mark change is repaired in place (XFRM_MSG_UPDSA)", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using xfrm = openXfrm({ netns: ns.ns });
    const built = buildPeerXfrm(local, peer(2), key1);
    reconcile(xfrm, built);
    const zero = buildPeerXfrm(local, peer(2), key1, { zeroOutputMark: true });
    const plan = reconcile(xfrm, zero);
    expect(plan.states.repair.map((r) => r.how)).toEqual(["update"]);
    const inState = xfrm.states.list().find((s) => s.dst === "192.168.0.1");
    expect(inState?.outputMark).toEqual({ value: 0, mask: 0xffffff00 });
    expect(reconcile(xfrm, zero).states.unchanged).toBe(2);
  });
});
