import { describe, expect, test } from "vitest";
import { NetlinkWriter } from "@dp/core";
import { decodeState, encodeStateRequest } from "./states.ts";
import { parseKeyFile } from "./keys.ts";
import { ownsPolicy, ownsState, planReconcile, reconcile, type XfrmTables } from "./reconcile.ts";
import { buildMeshXfrm, buildPeerXfrm, encryptMark, type IpsecNode } from "./scheme.ts";
import type { XfrmPolicy, XfrmPolicyId, XfrmPolicySpec, XfrmState, XfrmStateId, XfrmStateSpec } from "./types.ts";

const GCM = "00112233445566778899aabbccddeeff00112233";
const key1 = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${GCM} 128`).current;
const key1b = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${GCM.replace(/^00/, "ff")} 128`).current;
const local: IpsecNode = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
const peer2: IpsecNode = { id: 2, ips: ["192.168.0.2"], podCidrs: ["10.2.0.0/24"] };
const peer3: IpsecNode = { id: 3, ips: ["192.168.0.3"], podCidrs: ["10.3.0.0/24"] };

const ZERO_CUR = { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n };

/** A policy as the kernel reports a spec back (decodePolicy's shape: any prefixes and defaults spelled out or left out). */
function installed(spec: XfrmPolicySpec, index: number): XfrmPolicy {
  const family = spec.selector.family ?? 4;
  const sel: Record<string, unknown> = { family };
  if (spec.selector.src !== undefined && !/^(0\.0\.0\.0|::)\/0$/.test(spec.selector.src)) sel.src = spec.selector.src;
  if (spec.selector.dst !== undefined && !/^(0\.0\.0\.0|::)\/0$/.test(spec.selector.dst)) sel.dst = spec.selector.dst;
  const p: Record<string, unknown> = {
    selector: sel,
    dir: spec.dir,
    priority: spec.priority ?? 0,
    index,
    action: spec.action ?? "allow",
    templates: (spec.templates ?? []).map((t) => ({
      ...(t.src === undefined ? {} : { src: t.src }),
      ...(t.dst === undefined ? {} : { dst: t.dst }),
      proto: t.proto ?? "esp",
      spi: t.spi ?? 0,
      reqid: t.reqid ?? 0,
      mode: t.mode ?? "transport",
      level: t.level ?? "required",
      family: t.family ?? family,
    })),
    current: ZERO_CUR,
    type: "main",
  };
  if (spec.mark !== undefined) p.mark = { value: spec.mark.value, mask: spec.mark.mask ?? 0xffffffff };
  return p as unknown as XfrmPolicy;
}

/** A state as the kernel reports a spec back. */
function installedState(spec: XfrmStateSpec): XfrmState {
  return {
    ...spec,
    family: 4,
    proto: spec.proto ?? "esp",
    reqid: spec.reqid ?? 0,
    mode: spec.mode ?? "transport",
    replayWindow: spec.replayWindow ?? 0,
    flags: spec.esn === true ? ["esn"] : [],
    selector: { family: 4 },
    current: ZERO_CUR,
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
    seq: 0,
  };
}

const desired = buildMeshXfrm(local, [{ node: peer2, keys: [key1] }]);

describe("ownsState / ownsPolicy", () => {
  test("dp's tag needs both the reqid and the mark magic", () => {
    for (const s of desired.states) expect(ownsState(s)).toBe(true);
    for (const p of desired.policies) expect(ownsPolicy(p)).toBe(true);
    const out = desired.states[0]!;
    expect(ownsState({ ...out, reqid: 2 })).toBe(false);
    expect(ownsState({ ...out, reqid: 2 }, 2)).toBe(true);
    const { mark: _m, ...unmarked } = out;
    expect(ownsState(unmarked)).toBe(false); // an IKE daemon's state with reqid 1
    expect(ownsState({ ...out, mark: { value: 0x0e00, mask: 0x0e00 } })).toBe(false);
    expect(ownsState({ ...out, mark: { value: 0x0a00, mask: 0x0f00 } })).toBe(false);
    const outPolicy = desired.policies.find((p) => p.dir === "out" && p.action !== "block")!;
    expect(ownsPolicy({ ...outPolicy, templates: [{ ...outPolicy.templates![0]!, reqid: 5 }] })).toBe(false);
    expect(ownsPolicy({ selector: {}, dir: "fwd", priority: 2975, templates: [{ reqid: 1 }] })).toBe(true);
    expect(ownsPolicy({ selector: {}, dir: "fwd", priority: 2976, templates: [{ reqid: 1 }] })).toBe(false);
    expect(
      ownsPolicy({ selector: {}, dir: "out", action: "block", priority: 100, mark: { value: 0xe00, mask: 0xf00 } }),
    ).toBe(true);
    expect(
      ownsPolicy({ selector: {}, dir: "out", action: "block", priority: 99, mark: { value: 0xe00, mask: 0xf00 } }),
    ).toBe(false);
    expect(ownsPolicy({ selector: {}, dir: "out", action: "block" })).toBe(false);
  });
});

describe("planReconcile", () => {
  test("nothing installed: everything is added", () => {
    const plan = planReconcile({ states: [], policies: [] }, desired);
    expect(plan.states.add).toEqual(desired.states);
    expect(plan.policies.add).toEqual(desired.policies);
    expect(plan.policies.remove).toEqual([]);
    expect(plan.states.repair).toEqual([]);
  });

  test("installed as desired (in the kernel's spelling): nothing to do", () => {
    const current = {
      states: desired.states.map(installedState),
      policies: desired.policies.map((p, i) => installed(p, 8 + i * 8)),
    };
    const plan = planReconcile(current, desired);
    expect(plan.states).toMatchObject({ add: [], repair: [], remove: [], conflicts: [], unchanged: 2, foreign: 0 });
    expect(plan.policies).toMatchObject({
      add: [],
      repair: [],
      remove: [],
      conflicts: [],
      unchanged: desired.policies.length,
      foreign: 0,
    });
  });

  test("stale dp objects are removed; foreign ones, also look-alikes, are left alone", () => {
    const stale = buildPeerXfrm(local, peer3, key1);
    const foreignPolicies: XfrmPolicySpec[] = [
      {
        selector: { src: "10.9.0.0/16", dst: "10.8.0.0/16" },
        dir: "out",
        templates: [{ src: "1.1.1.1", dst: "2.2.2.2", reqid: 1, mode: "tunnel" }],
      },
      { selector: { dst: "10.7.0.0/16" }, dir: "out", mark: encryptMark(1, 9), templates: [{ reqid: 44 }] },
      { selector: { dst: "10.6.0.0/16" }, dir: "out", mark: { value: 0x100, mask: 0xff00 }, templates: [{ reqid: 1 }] },
      { selector: {}, dir: "fwd", templates: [{ reqid: 1 }] },
    ];
    const foreignStates: XfrmStateSpec[] = [
      { src: "1.1.1.1", dst: "2.2.2.2", spi: 0x1000, reqid: 1, aead: key1.aead! },
      { src: "1.1.1.1", dst: "2.2.2.3", spi: 0x1001, reqid: 7, mark: encryptMark(1, 9), aead: key1.aead! },
    ];
    const current = {
      states: [...desired.states, ...stale.states, ...foreignStates].map(installedState),
      policies: [...desired.policies, ...stale.policies, ...foreignPolicies].map((p, i) => installed(p, 8 + 8 * i)),
    };
    const plan = planReconcile(current, desired);
    expect(plan.states.remove.map((s) => [s.dst, s.spi, s.mark?.value])).toEqual([
      ["192.168.0.3", 1, 0x00031e00],
      ["192.168.0.1", 1, 0x00030d00],
    ]);
    expect(plan.states.foreign).toBe(2);
    expect(plan.states.add).toEqual([]);
    // peer3's out policy; its in/fwd policies are the same as peer2's (shared), so they stay.
    expect(plan.policies.remove.map((p) => [p.dir, p.selector.dst])).toEqual([["out", "10.3.0.0/24"]]);
    expect(plan.policies.foreign).toBe(4);
    expect(plan.policies.add).toEqual([]);
  });

  test("changed objects are repaired: policies by update, states by update or replace", () => {
    const outPolicy = desired.policies.find((p) => p.dir === "out" && p.action !== "block")!;
    const wrongTemplate: XfrmPolicySpec = { ...outPolicy, templates: [{ ...outPolicy.templates![0]!, spi: 9 }] };
    const fwd = desired.policies.find((p) => p.dir === "fwd")!;
    const wrongPriority = { ...fwd, priority: 2975 };
    const current = {
      states: [
        installedState({
          ...desired.states[0]!,
          outputMark: { value: 0x0e00, mask: 0xffffff00 },
          lifetime: { hardBytes: 10n },
        }),
        installedState({ ...desired.states[1]!, aead: key1b.aead! }),
      ],
      policies: desired.policies.map((p, i) =>
        installed(p === outPolicy ? wrongTemplate : p === fwd ? wrongPriority : p, 8 + 8 * i),
      ),
    };
    const plan = planReconcile(current, desired);
    expect(plan.states.repair.map((r) => [r.desired.dst, r.how])).toEqual([
      ["192.168.0.2", "update"],
      ["192.168.0.1", "replace"],
    ]);
    expect(plan.policies.repair).toEqual([outPolicy]);
  });

  test("a state whose key, mode, replay window or ESN differs is replaced", () => {
    const want = desired.states[0]!;
    for (const change of [
      { mode: "transport" as const },
      { replayWindow: 32 },
      { esn: true },
      { src: "192.168.0.9" },
      { reqid: 1, aead: key1b.aead! },
    ]) {
      const plan = planReconcile(
        { states: [installedState({ ...want, ...change })], policies: [] },
        { states: [want], policies: [] },
      );
      expect(
        plan.states.repair.map((r) => r.how),
        JSON.stringify(Object.keys(change)),
      ).toEqual(["replace"]);
    }
  });

  test("an ESN state's window is read from the replay counters (the legacy field is capped at 32)", () => {
    const want = { ...desired.states[0]!, esn: true, replayWindow: 1024 };
    const have = {
      ...installedState(want),
      replayWindow: 32,
      replay: { oseq: 5, seq: 0, oseqHi: 0, seqHi: 0, window: 1024 },
    };
    expect(planReconcile({ states: [have], policies: [] }, { states: [want], policies: [] }).states.unchanged).toBe(1);
    const smaller = { ...have, replay: { ...have.replay, window: 64 } };
    expect(
      planReconcile({ states: [smaller], policies: [] }, { states: [want], policies: [] }).states.repair,
    ).toHaveLength(1);
  });

  test("lifetimes: absent, infinite byte/packet limits and 0 time limits are the same", () => {
    const outPolicy = desired.policies.find((p) => p.dir === "out" && p.action !== "block")!;
    const spelled = {
      ...outPolicy,
      lifetime: { hardBytes: 0xffffffffffffffffn, softPackets: 0xffffffffffffffffn, hardAddSeconds: 0n },
    };
    const have = installed(outPolicy, 8);
    expect(
      planReconcile({ states: [], policies: [have] }, { states: [], policies: [spelled] }).policies.unchanged,
    ).toBe(1);
    const limited = { ...outPolicy, lifetime: { hardAddSeconds: 3600n } };
    expect(
      planReconcile({ states: [], policies: [have] }, { states: [], policies: [limited] }).policies.repair,
    ).toEqual([limited]);
  });

  test("truncation bits count only when the desired spec names them", () => {
    const { current: k } = parseKeyFile(`2 hmac(sha256) 0x${"aa".repeat(32)} cbc(aes) 0x${"bb".repeat(16)}`);
    const want = buildPeerXfrm(local, peer2, k).states[0]!;
    const have = installedState({ ...want, auth: { ...want.auth!, truncBits: 128 } });
    expect(planReconcile({ states: [have], policies: [] }, { states: [want], policies: [] }).states.unchanged).toBe(1);
    const want96 = { ...want, auth: { ...want.auth!, truncBits: 96 } };
    expect(
      planReconcile({ states: [have], policies: [] }, { states: [want96], policies: [] }).states.repair,
    ).toHaveLength(1);
  });

  test("a protocol or mode number dp has no name for makes an object foreign", () => {
    const desired = buildPeerXfrm(local, peer2, key1);
    const inPolicy = desired.policies.find((p) => p.dir === "in" && p.mark?.value === 0x0d00)!;
    expect(ownsPolicy(inPolicy)).toBe(true);
    const t = inPolicy.templates![0]!;
    expect(ownsPolicy({ ...inPolicy, templates: [{ ...t, proto: 99 }] })).toBe(false);
    expect(ownsPolicy({ ...inPolicy, templates: [{ ...t, mode: 7 }] })).toBe(false);
    const s = desired.states[0]!;
    expect(ownsState(s)).toBe(true);
    expect(ownsState({ ...s, proto: 99 })).toBe(false);
    expect(ownsState({ ...s, mode: 7 })).toBe(false);
    const odd = installed({ ...inPolicy, templates: [{ ...t, mode: 7 }] }, 5);
    const plan = planReconcile({ states: [], policies: [odd] }, desired);
    expect(plan.policies.foreign).toBe(1);
    expect(plan.policies.repair).toEqual([]);
    expect(plan.policies.conflicts).toHaveLength(1);
  });

  test("an installed object dp would not accept as input is foreign, never touched", () => {
    const desired = buildPeerXfrm(local, peer2, key1);
    const odd = [
      // ip xfrm policy add dst 10.9.0.0/24 proto gre key 5 dir out
      { selector: { family: 4, dst: "10.9.0.0/24", proto: 47, sport: 0, dport: 5 }, dir: "out" },
      // ports on a protocol without ports, as another tool may install
      { selector: { family: 4, dst: "10.8.0.0/24", proto: 50, sport: 7 }, dir: "out" },
      // an ICMP type beyond a byte
      { selector: { family: 4, dst: "10.7.0.0/24", proto: 1, sport: 300 }, dir: "in" },
      // an unparsable prefix
      { selector: { family: 4, dst: "not a prefix" }, dir: "in" },
    ].map((p, i) => installed(p as XfrmPolicySpec, 100 + i));
    const plan = planReconcile({ states: [], policies: odd }, desired);
    expect(plan.policies.foreign).toBe(odd.length);
    expect(plan.policies.remove).toEqual([]);
    expect(plan.policies.add).toHaveLength(desired.policies.length);
    const oddState = { ...installedState(desired.states[0]!), selector: { family: 4, proto: 50, sport: 7 } };
    expect(planReconcile({ states: [oddState as XfrmState], policies: [] }, desired).states.repair).toHaveLength(1);
  });

  test("a foreign object in a desired object's place is a conflict, never changed", () => {
    const inPolicy = desired.policies.find((p) => p.dir === "in" && p.mark?.value === 0x0d00)!;
    const squatter = installed({ ...inPolicy, templates: [{ reqid: 77 }] }, 8);
    const plan = planReconcile({ states: [], policies: [squatter] }, desired);
    expect(plan.policies.conflicts).toEqual([inPolicy]);
    expect(plan.policies.repair).toEqual([]);
    expect(plan.policies.remove).toEqual([]);
    expect(plan.policies.foreign).toBe(1);
  });

  test("desired objects without dp's tag, or conflicting duplicates, are refused before anything", () => {
    const untagged: XfrmPolicySpec = { selector: { dst: "10.0.0.0/8" }, dir: "out", templates: [{ reqid: 1 }] };
    expect(() => planReconcile({ states: [], policies: [] }, { states: [], policies: [untagged] })).toThrow(
      /lacks dp's tag/,
    );
    const { mark: _m, ...unmarked } = desired.states[0]!;
    expect(() => planReconcile({ states: [], policies: [] }, { states: [unmarked], policies: [] })).toThrow(TypeError);
    const p = desired.policies[0]!;
    expect(() =>
      planReconcile({ states: [], policies: [] }, { states: [], policies: [p, { ...p, priority: 5 }] }),
    ).toThrow(RangeError);
    expect(planReconcile({ states: [], policies: [] }, { states: [], policies: [p, p] }).policies.add).toEqual([p]);
    expect(() => planReconcile({ states: [], policies: [] }, desired, { reqid: 0 })).toThrow(RangeError);
    // Another reqid tag: the scheme's objects are then not dp's.
    expect(() => planReconcile({ states: [], policies: [] }, desired, { reqid: 2 })).toThrow(/lacks dp's tag/);
  });

  test("states: false and policies: false leave a table alone", () => {
    const current = { states: buildPeerXfrm(local, peer3, key1).states.map(installedState), policies: [] };
    const plan = planReconcile(current, desired, { states: false });
    expect(plan.states).toMatchObject({ add: [], remove: [], foreign: 0, unchanged: 0 });
    expect(plan.policies.add).toHaveLength(desired.policies.length);
    expect(planReconcile(current, desired, { policies: false }).policies.add).toEqual([]);
  });
});

/** An in-memory xfrm table that records calls. */
function fakeTables(
  states: XfrmState[],
  policies: XfrmPolicy[],
  fail?: (op: string) => Error | undefined,
): XfrmTables & { calls: string[] } {
  const calls: string[] = [];
  const run = (op: string): void => {
    calls.push(op);
    const err = fail?.(op);
    if (err !== undefined) throw err;
  };
  return {
    calls,
    states: {
      list: () => states,
      add: (s: XfrmStateSpec) => run(`state add ${s.dst} ${s.spi}`),
      update: (s: XfrmStateSpec) => run(`state update ${s.dst} ${s.spi}`),
      delete: (id: XfrmStateId) => run(`state delete ${id.dst} ${id.spi} ${id.src}`),
    },
    policies: {
      list: () => policies,
      add: (p: XfrmPolicySpec) => run(`policy add ${p.dir} ${p.selector.dst}`),
      update: (p: XfrmPolicySpec) => run(`policy update ${p.dir} ${p.selector.dst}`),
      delete: (id: XfrmPolicyId) => run(`policy delete ${id.dir} ${"index" in id ? id.index : "?"}`),
    },
  };
}

describe("reconcile", () => {
  test("order: states added and repaired, policies added and repaired, stale policies then stale states removed", () => {
    const stale = buildPeerXfrm(local, peer3, key1);
    const states = [installedState({ ...desired.states[1]!, aead: key1b.aead! }), ...stale.states.map(installedState)];
    const policies = stale.policies.filter((p) => p.dir === "out").map((p) => installed(p, 16));
    const t = fakeTables(states, policies);
    const plan = reconcile(t, desired);
    expect(plan.states.add).toHaveLength(1);
    expect(t.calls).toEqual([
      "state add 192.168.0.2 1",
      "state delete 192.168.0.1 1 192.168.0.2",
      "state add 192.168.0.1 1",
      ...desired.policies.map((p) => `policy add ${p.dir} ${p.selector.dst}`),
      "policy delete out 16",
      "state delete 192.168.0.3 1 192.168.0.1",
      "state delete 192.168.0.1 1 192.168.0.3",
    ]);
  });

  test("every change is attempted; failures and conflicts come back together", () => {
    const inPolicy = desired.policies.find((p) => p.dir === "in" && p.mark?.value === 0x0d00)!;
    const squatter = installed({ ...inPolicy, templates: [{ reqid: 77 }] }, 8);
    const t = fakeTables([], [squatter], (op) =>
      op.startsWith("state add 192.168.0.2") ? new Error("ENOSYS") : undefined,
    );
    let caught: unknown;
    try {
      reconcile(t, desired);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AggregateError);
    const errors = (caught as AggregateError).errors as Error[];
    expect(errors.map((e) => e.message)).toEqual([
      "ENOSYS",
      "Cannot install xfrm policy in 0.0.0.0/0 -> 10.1.0.0/24: a policy without dp's tag has its direction, selector and mark",
    ]);
    expect((caught as Error).message).toBe("Cannot reconcile xfrm: 2 change(s) failed");
    // The other state and every other policy were still installed; the squatter was not touched.
    expect(t.calls).toContain("state add 192.168.0.1 1");
    expect(t.calls.filter((c) => c.startsWith("policy add"))).toHaveLength(desired.policies.length - 1);
    expect(t.calls.some((c) => c.includes("delete"))).toBe(false);
  });

  test("states: false never lists or touches states", () => {
    const t = fakeTables([], []);
    t.states.list = () => {
      throw new Error("listed");
    };
    reconcile(t, { states: [], policies: desired.policies }, { states: false });
    expect(t.calls.every((c) => c.startsWith("policy add"))).toBe(true);
  });
});

describe("round trip through the state codec", () => {
  test("the scheme's states, encoded as ip would send them and decoded back, need no repair", () => {
    const boot = (n: number): string => `${String(n).repeat(8)}-1111-2222-3333-444444444444`;
    const keys = [
      parseKeyFile(`4+ rfc4106(gcm(aes)) 0x${GCM} 128`).current,
      parseKeyFile(`5 hmac(sha256) 0x${"aa".repeat(32)} cbc(aes) 0x${"bb".repeat(16)}`).current,
    ];
    const l: IpsecNode = { id: 1, ips: ["192.168.0.1", "fd00::1"], podCidrs: ["10.1.0.0/24"], bootId: boot(1) };
    const r: IpsecNode = { id: 0xbeef, ips: ["192.168.0.2", "fd00::2"], podCidrs: ["10.2.0.0/24"], bootId: boot(2) };
    const want = buildMeshXfrm(l, [{ node: r, keys }]);
    const decoded = want.states.map((spec, seq) => {
      const w = new NetlinkWriter();
      encodeStateRequest(w, { op: "add", seq, spec });
      return decodeState(w.view().subarray(16));
    });
    expect(decoded).toHaveLength(8);
    const plan = planReconcile({ states: decoded, policies: [] }, { states: want.states, policies: [] });
    expect(plan.states).toMatchObject({ add: [], repair: [], remove: [], unchanged: 8 });
  });
});
